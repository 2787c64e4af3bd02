//! The agent's southbound side and its periodic work: following the SB stream
//! (snapshots and deltas, in place for load balancer changes), reporting the
//! neighbours the PMD learned, retrying pending bindings, refreshing tunnels.

use super::*;

impl Agent {
    /// Moves what the PMD learned into `learned`; returns the bindings that are
    /// new or changed (not yet in SB as they are).
    fn take_learned(&mut self) -> Vec<pb::MacBinding> {
        let t = self.shared.tables.load();
        let mut fresh = Vec::new();
        while let Some(l) = self.shared.learned.pop() {
            let b = pb::MacBinding {
                datapath: l.dp,
                logical_port: t.port_name(l.dp, l.port).to_string(),
                ip: l.ip,
                mac: l.mac,
                ip6: l
                    .ip6
                    .map(|w| {
                        switchyard_datapath::dp::generate6::addr(w)
                            .octets()
                            .to_vec()
                    })
                    .unwrap_or_default(),
            };
            let in_sb = self
                .sb
                .as_ref()
                .is_some_and(|sb| sb.mac_bindings.contains(&b));
            let k = (
                b.datapath,
                b.logical_port.clone(),
                switchyard_southbound::mac_binding_ip(&b),
            );
            if self.learned.get(&k) != Some(&b) {
                self.learned.insert(k, b.clone());
                if !in_sb && !fresh.contains(&b) {
                    fresh.push(b);
                }
            }
        }
        fresh
    }

    async fn report_learned(&mut self, list: Vec<pb::MacBinding>) {
        if list.is_empty() {
            return;
        }
        let Some(client) = self.client.as_mut() else {
            return; // re-reported on reconnect
        };
        let req = pb::ReportMacBindingsRequest {
            chassis: self.cfg.chassis.clone(),
            bindings: list,
        };
        if let Err(e) = client.report_mac_bindings(req).await {
            tracing::warn!(error = %e.message(), "MAC binding report failed; retried on reconnect");
        }
    }
}

impl Agent {
    /// Tells northd what the datapath runs, once the PMD runs the tables the
    /// last SB update made (and only when that changed).
    async fn report_applied(&mut self) {
        let (nb, sb, generation) = self.applied;
        let now = (nb, sb, self.claimed_sb);
        if sb == 0 || self.reported == Some(now) {
            return;
        }
        if self.shared.adopted() < generation {
            return;
        }
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let req = pb::ReportAppliedRequest {
            chassis: self.cfg.chassis.clone(),
            nb_version: nb,
            sb_version: sb,
            claimed_sb: self.claimed_sb,
        };
        match client.report_applied(req).await {
            Ok(_) => self.nb_cfg = nb,
            // Not retried until something changes: a broken session reconnects
            // and reports afresh.
            Err(e) => tracing::warn!(error = %e.message(), "applied report refused"),
        }
        self.reported = Some(now);
    }
}

/// Reports what the datapath runs to northd, every 10 ms when it changed.
pub async fn applied_loop(agent: Arc<Mutex<Agent>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        agent.lock().await.report_applied().await;
    }
}

/// `--pmd-auto-lb`: every `interval`, rebalances the PMDs' queues when the
/// busiest PMD is loaded and a placement by the last interval's cycles
/// relieves it enough ([`Agent::auto_lb_tick`]).
pub async fn auto_lb_loop(
    agent: Arc<Mutex<Agent>>,
    interval: Duration,
    load_pct: u32,
    improvement_pct: u32,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        agent
            .lock()
            .await
            .auto_lb_tick(load_pct, improvement_pct)
            .await;
    }
}

/// Resolves the remote chassis' underlay MACs, every 200 ms while any is missing.
pub async fn tunnel_loop(agent: Arc<Mutex<Agent>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut a = agent.lock().await;
        let t = a.shared.tables.load_full();
        let changed = a.underlay.as_mut().is_some_and(|u| u.resolve(&t));
        if changed {
            a.publish();
        }
    }
}

/// Reports neighbours the PMD learned to northd, every 100 ms.
pub async fn learn_loop(agent: Arc<Mutex<Agent>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut a = agent.lock().await;
        let fresh = a.take_learned();
        a.report_learned(fresh).await;
    }
}

/// Retries pending bindings, frees retired table sets and readies the spare
/// copy of the VIP index every second.
pub async fn pending_loop(agent: Arc<Mutex<Agent>>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut a = agent.lock().await;
        while let Some(old) = a.shared.retired.pop() {
            drop(old);
        }
        let Agent {
            services, maglev, ..
        } = &mut *a;
        services.prepare(maglev);
        if !a.pending.is_empty() {
            a.retry_pending().await;
        }
    }
}

/// Follows the southbound database forever, reconnecting with backoff.
/// `--sb` may list several northds (comma-separated): one is active, the
/// others standbys that refuse connections, so a failed session moves on to
/// the next address.
pub async fn sb_loop(agent: Arc<Mutex<Agent>>) {
    let mut backoff = Duration::from_millis(100);
    let addrs: Vec<String> = {
        let a = agent.lock().await;
        a.cfg.sb.split(',').map(|s| s.trim().to_string()).collect()
    };
    let mut next = 0;
    loop {
        let addr = addrs[next % addrs.len()].clone();
        next += 1;
        let t0 = std::time::Instant::now();
        match sb_session(&agent, &addr).await {
            Ok(()) => tracing::warn!(sb = %addr, "SB stream ended; reconnecting"),
            Err(e) => {
                tracing::warn!(sb = %addr, error = %e, "SB session failed; keeping last tables")
            }
        }
        // A session that lived a while was healthy: start the backoff over.
        if t0.elapsed() > Duration::from_secs(5) {
            backoff = Duration::from_millis(100);
        }
        {
            let mut a = agent.lock().await;
            a.sb_connected = false;
            a.client = None;
        }
        // Try every address once before backing off.
        if next % addrs.len() == 0 {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

async fn sb_session(agent: &Arc<Mutex<Agent>>, addr: &str) -> anyhow::Result<()> {
    let (chassis, tls) = {
        let a = agent.lock().await;
        let tls = a.cfg.tls.clone();
        let c = pb::Chassis {
            name: a.cfg.chassis.clone(),
            hostname: a.cfg.hostname.clone(),
            encaps: vec![pb::Encap {
                r#type: "geneve".into(),
                ip: a.cfg.encap_ip.clone(),
            }],
        };
        (c, tls)
    };
    let channel = switchyard_southbound::tls::endpoint(addr, tls.as_ref())
        .map_err(|e| anyhow::anyhow!(e))?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?;
    let mut client = SouthboundClient::new(channel)
        .max_decoding_message_size(switchyard_southbound::MAX_MESSAGE)
        .max_encoding_message_size(switchyard_southbound::MAX_MESSAGE);
    let epoch = client
        .register_chassis(pb::RegisterChassisRequest {
            chassis: Some(chassis.clone()),
        })
        .await?
        .into_inner()
        .epoch;
    // The same northd as before (a broken connection, not a failover or a
    // restart): resume from the version we have, with the deltas since.
    let have = {
        let a = agent.lock().await;
        a.sb.as_ref()
            .filter(|s| !epoch.is_empty() && s.epoch == epoch)
            .map(|s| s.version)
    };
    let mut stream = client
        .watch(pb::WatchSbRequest {
            chassis: chassis.name.clone(),
            from_version: have.unwrap_or(0),
            epoch: if have.is_some() { epoch } else { String::new() },
        })
        .await?
        .into_inner();
    {
        let mut a = agent.lock().await;
        a.client = Some(client);
        a.sb_connected = true;
        // It knows nothing of what we run until we say it again; a new
        // northd's SB versions start afresh (what we applied is reported
        // again once its snapshot is in).
        a.claimed_sb = 0;
        a.reported = None;
        if have.is_none() {
            a.applied = (0, 0, 0);
        }
        let lports: Vec<String> = a.ports.values().map(|p| p.lport.clone()).collect();
        for l in lports {
            a.claim(&l, false).await;
        }
        let learned: Vec<pb::MacBinding> = a.learned.values().cloned().collect();
        a.report_learned(learned).await;
        match have {
            Some(v) => {
                a.sb_resumes += 1;
                tracing::info!(chassis = %chassis.name, from = v, "connected to SB; resuming from our version");
            }
            None => tracing::info!(chassis = %chassis.name, "connected to SB"),
        }
    }
    while let Some(u) = stream.message().await? {
        let mut a = agent.lock().await;
        let t0 = std::time::Instant::now();
        match u.update {
            Some(Update::Snapshot(s)) => {
                a.sb = Some(s);
                a.services.reset();
                a.sb_snapshots += 1;
            }
            Some(Update::Delta(d)) => {
                let Some(sb) = a.sb.as_mut() else {
                    anyhow::bail!("delta before snapshot");
                };
                if d.version != sb.version + 1 {
                    anyhow::bail!(
                        "SB delta {} after version {}: resync",
                        d.version,
                        sb.version
                    );
                }
                if switchyard_southbound::apply_lb_delta(sb, &d) {
                    a.update_services(&d);
                } else {
                    switchyard_southbound::apply_delta(sb, &d);
                    let lbs = d.deletes.iter().any(|k| k.starts_with("lb/"))
                        || d.upserts
                            .iter()
                            .any(|r| matches!(r.row, Some(pb::sb_row::Row::LoadBalancer(_))));
                    if lbs {
                        a.services.reset();
                    }
                }
            }
            None => continue,
        }
        let applied = t0.elapsed();
        a.publish();
        // A port whose binding waited for this update is claimed now, before
        // the update counts as applied (`--wait=hv` then means it forwards).
        if !a.pending.is_empty() {
            a.retry_pending().await;
        }
        if let Some(sb) = &a.sb {
            a.applied = (sb.nb_version, sb.version, a.generation);
        }
        tracing::debug!(
            apply_us = applied.as_micros() as u64,
            publish_us = (t0.elapsed() - applied).as_micros() as u64,
            "SB update applied"
        );
    }
    Ok(())
}
