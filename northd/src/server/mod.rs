//! northd's two gRPC services: Northbound (syctl's transactions, reads and
//! watches) and Southbound (chassis registration, watches and port claims).

pub mod auth;
pub mod ha;
pub mod sb;
pub mod wait;

use crate::compile::compile;
use crate::model::Nb;
use crate::server::sb::Sb;
use crate::store::NbStore;
use std::pin::Pin;
use std::sync::Arc;
use switchyard_southbound::pb::{
    self, northbound_server::Northbound, sb_update::Update, southbound_server::Southbound,
};
use tokio::sync::{mpsc, watch, Mutex};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Everything northd owns, behind one lock (control plane only: transactions are
/// serialized, as in OVSDB).
pub struct State {
    pub version: u64,
    pub nb: Nb,
    pub store: Box<dyn NbStore>,
    pub sb: Sb,
    pub compiles: u64,
    pub compile_seconds: f64,
    pub last_compile_seconds: f64,
    /// chassis -> last SB version sent to its watch stream.
    pub sent: std::collections::BTreeMap<String, u64>,
    /// Who owns each VIP (for load-balancer-only transactions).
    pub vips: crate::nb::lb::VipIndex,
    /// What each chassis last reported running (`--wait=hv`).
    pub applied: std::collections::BTreeMap<String, crate::server::wait::Applied>,
}

/// The shared service state.
#[derive(Clone)]
pub struct Northd {
    state: Arc<Mutex<State>>,
    nb_tx: Arc<watch::Sender<u64>>,
    sb_tx: Arc<watch::Sender<u64>>,
    /// Bumped on every applied report (wakes `--wait` callers).
    applied_tx: Arc<watch::Sender<u64>>,
    /// Who may call what (everyone, without TLS or tokens).
    auth: Arc<crate::server::auth::Auth>,
}

impl Northd {
    /// Loads the store and compiles the southbound contents from it.
    pub fn new(mut store: Box<dyn NbStore>) -> anyhow::Result<Self> {
        let loaded = store.load()?;
        let mut sb = Sb::default();
        sb.epoch = epoch();
        // Chassis registered before (with another northd, or before a
        // restart) are known until they say otherwise: `--wait=hv` waits for
        // them to report again.
        for c in &loaded.chassis {
            sb.chassis.insert(c.name.clone(), c.clone());
        }
        sb.claims = loaded.claims.clone();
        sb.set_compiled(compile(&loaded.nb), loaded.version);
        tracing::info!(
            version = loaded.version,
            switches = loaded.nb.switches.len(),
            ports = loaded.nb.ports.len(),
            "NB loaded"
        );
        let vips = crate::nb::lb::vip_index(&loaded.nb);
        let (nb_tx, _) = watch::channel(loaded.version);
        let (sb_tx, _) = watch::channel(sb.version);
        Ok(Northd {
            state: Arc::new(Mutex::new(State {
                version: loaded.version,
                nb: loaded.nb,
                store,
                sb,
                compiles: 0,
                compile_seconds: 0.0,
                last_compile_seconds: 0.0,
                sent: Default::default(),
                vips,
                applied: Default::default(),
            })),
            nb_tx: Arc::new(nb_tx),
            sb_tx: Arc::new(sb_tx),
            applied_tx: Arc::new(watch::channel(0).0),
            auth: Arc::default(),
        })
    }

    /// Checks callers as `auth` says (TLS identities, tokens).
    pub fn with_auth(mut self, auth: crate::server::auth::Auth) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// A commit the store refused. When another writer got there first, the
    /// state is read back from the store (and compiled) so the next
    /// transaction starts from what is really committed.
    fn refused(&self, st: &mut State, e: crate::store::StoreError) -> Status {
        if matches!(e, crate::store::StoreError::Conflict(_)) {
            match st.store.load() {
                Ok(l) => {
                    tracing::warn!(
                        version = l.version,
                        "another writer committed first; NB reloaded"
                    );
                    st.version = l.version;
                    st.nb = l.nb;
                    st.vips = crate::nb::lb::vip_index(&st.nb);
                    st.sb.set_compiled(compile(&st.nb), st.version);
                    self.nb_tx.send_replace(st.version);
                    self.publish_sb(st);
                }
                Err(e) => tracing::error!(error = %e, "cannot reload the NB after a conflict"),
            }
        }
        Status::unavailable(format!("not committed: {e}"))
    }

    fn publish_sb(&self, st: &State) {
        self.sb_tx.send_replace(st.sb.version);
    }

    /// A transaction of load balancer ops only (services come and go all the
    /// time): validated, stored, compiled and published in proportion to the
    /// load balancers it names, not to the whole database.
    fn transact_lbs(
        &self,
        st: &mut State,
        req: &pb::TransactRequest,
    ) -> Result<Response<pb::TransactReply>, Status> {
        let t0 = std::time::Instant::now();
        let (puts, dels) = crate::nb::lb::lb_transaction(&st.nb, &st.vips, req)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if puts.is_empty() && dels.is_empty() {
            return Ok(Response::new(pb::TransactReply {
                version: st.version,
            }));
        }
        let change = crate::model::Change {
            version: st.version + 1,
            put_lbs: puts,
            del_lbs: dels,
            ..Default::default()
        };
        // The store may snapshot the whole NB with this record: apply first,
        // and undo if the write fails.
        let undo: Vec<(String, Option<pb::LoadBalancer>)> = change
            .put_lbs
            .iter()
            .map(|l| &l.name)
            .chain(&change.del_lbs)
            .map(|n| (n.clone(), st.nb.load_balancers.get(n).cloned()))
            .collect();
        st.nb.apply_change(&change);
        if let Err(e) = st.store.commit(&change, &st.nb) {
            for (n, old) in undo {
                match old {
                    Some(l) => st.nb.load_balancers.insert(n, l),
                    None => st.nb.load_balancers.remove(&n),
                };
            }
            return Err(self.refused(st, e));
        }
        st.version += 1;
        for (n, old) in &undo {
            if let Some(l) = old {
                for vip in l.vips.keys() {
                    st.vips.remove(&(l.protocol.clone(), vip.clone()));
                }
            }
            if let Some(l) = st.nb.load_balancers.get(n) {
                for vip in l.vips.keys() {
                    st.vips.insert((l.protocol.clone(), vip.clone()), n.clone());
                }
            }
        }
        let rows: Vec<pb::SbLoadBalancer> = change
            .put_lbs
            .iter()
            .map(|l| crate::compile::lb::compile_lb(&st.nb, l))
            .collect();
        let v = st.version;
        st.sb.update_lbs(rows, &change.del_lbs, v);
        let secs = t0.elapsed().as_secs_f64();
        st.compiles += 1;
        st.compile_seconds += secs;
        st.last_compile_seconds = secs;
        tracing::info!(
            version = v,
            total_us = t0.elapsed().as_micros() as u64,
            load_balancers = change.put_lbs.len() + change.del_lbs.len(),
            sb_version = st.sb.version,
            "NB transaction committed (load balancers only)"
        );
        self.nb_tx.send_replace(v);
        self.publish_sb(st);
        Ok(Response::new(pb::TransactReply { version: v }))
    }

    /// The Prometheus page.
    pub async fn metrics(&self) -> String {
        let st = self.state.lock().await;
        let mut p = switchyard_southbound::metrics::Page::default();
        p.single(
            "switchyard_northd_nb_version",
            "gauge",
            "Version of the last committed NB transaction.",
            st.version as f64,
        )
        .single(
            "switchyard_northd_sb_version",
            "gauge",
            "Current SB version.",
            st.sb.version as f64,
        )
        .single(
            "switchyard_northd_auth_refused_total",
            "counter",
            "Calls refused for the caller's identity (certificate or token).",
            self.auth.refused() as f64,
        )
        .single(
            "switchyard_northd_compiles_total",
            "counter",
            "NB -> SB compilations.",
            st.compiles as f64,
        )
        .single(
            "switchyard_northd_compile_seconds_total",
            "counter",
            "Time spent compiling NB -> SB.",
            st.compile_seconds,
        )
        .single(
            "switchyard_northd_last_compile_seconds",
            "gauge",
            "Duration of the last compilation.",
            st.last_compile_seconds,
        )
        .single(
            "switchyard_northd_logical_switches",
            "gauge",
            "Logical switches.",
            st.nb.switches.len() as f64,
        )
        .single(
            "switchyard_northd_logical_switch_ports",
            "gauge",
            "Logical switch ports.",
            st.nb.ports.len() as f64,
        )
        .single(
            "switchyard_northd_chassis",
            "gauge",
            "Registered chassis.",
            st.sb.chassis.len() as f64,
        );
        let n = "switchyard_northd_chassis_sb_lag_versions";
        p.family(
            n,
            "gauge",
            "SB versions a chassis's watch stream is behind.",
        );
        for c in st.sb.chassis.keys() {
            let sent = st.sent.get(c).copied().unwrap_or(0);
            p.sample(
                n,
                &[("chassis", c)],
                st.sb.version.saturating_sub(sent) as f64,
            );
        }
        p.into_string()
    }
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Northbound for Northd {
    async fn transact(
        &self,
        req: Request<pb::TransactRequest>,
    ) -> Result<Response<pb::TransactReply>, Status> {
        self.auth.operator(&req, "Transact")?;
        let req = req.into_inner();
        let mut st = self.state.lock().await;
        if crate::nb::lb::lb_only(&req) {
            return self.transact_lbs(&mut st, &req);
        }
        let t_start = std::time::Instant::now();
        let mut next = st.nb.clone();
        let t_clone = t_start.elapsed();
        next.apply_ops(&req)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let t_apply = t_start.elapsed();
        let change = st.nb.diff(&next, st.version + 1);
        let t_diff = t_start.elapsed();
        if change.is_empty() {
            return Ok(Response::new(pb::TransactReply {
                version: st.version,
            }));
        }
        if let Err(e) = st.store.commit(&change, &next) {
            return Err(self.refused(&mut st, e));
        }
        st.version += 1;
        st.nb = next;
        st.vips = crate::nb::lb::vip_index(&st.nb);
        let t_commit = t_start.elapsed();
        let t0 = std::time::Instant::now();
        let compiled = compile(&st.nb);
        let v = st.version;
        st.sb.set_compiled(compiled, v);
        let secs = t0.elapsed().as_secs_f64();
        st.compiles += 1;
        st.compile_seconds += secs;
        st.last_compile_seconds = secs;
        tracing::info!(
            version = v,
            clone_us = t_clone.as_micros() as u64,
            apply_us = (t_apply - t_clone).as_micros() as u64,
            diff_us = (t_diff - t_apply).as_micros() as u64,
            store_us = (t_commit - t_diff).as_micros() as u64,
            total_us = t_start.elapsed().as_micros() as u64,
            compile_us = t0.elapsed().as_micros() as u64,
            sb_version = st.sb.version,
            "NB transaction committed"
        );
        self.nb_tx.send_replace(v);
        self.publish_sb(&st);
        Ok(Response::new(pb::TransactReply { version: v }))
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::NbDatabase>, Status> {
        self.auth.operator(&req, "Get")?;
        let st = self.state.lock().await;
        Ok(Response::new(st.nb.to_pb(st.version)))
    }

    type WatchStream = Stream_<pb::NbVersion>;
    async fn watch(
        &self,
        req: Request<pb::WatchNbRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.auth.operator(&req, "Watch")?;
        let from = req.into_inner().from_version;
        let mut rx = self.nb_tx.subscribe();
        let (tx, out) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut last = from;
            loop {
                let v = *rx.borrow_and_update();
                if v != last {
                    last = v;
                    if tx.send(Ok(pb::NbVersion { version: v })).await.is_err() {
                        return;
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }

    async fn get_southbound(
        &self,
        req: Request<pb::GetRequest>,
    ) -> Result<Response<pb::SbSnapshot>, Status> {
        self.auth.operator(&req, "GetSouthbound")?;
        Ok(Response::new(self.state.lock().await.sb.snapshot()))
    }

    async fn delete_chassis(
        &self,
        req: Request<pb::DeleteChassisRequest>,
    ) -> Result<Response<pb::TransactReply>, Status> {
        self.auth.operator(&req, "DeleteChassis")?;
        let req = req.into_inner();
        let mut st = self.state.lock().await;
        if st.sb.chassis.remove(&req.name).is_none() {
            if req.if_exists {
                return Ok(Response::new(pb::TransactReply {
                    version: st.sb.version,
                }));
            }
            return Err(Status::not_found(format!(
                "chassis {:?} is not registered",
                req.name
            )));
        }
        let gone: Vec<String> = st
            .sb
            .claims
            .iter()
            .filter(|(_, c)| **c == req.name)
            .map(|(p, _)| p.clone())
            .collect();
        st.sb.claims.retain(|_, c| *c != req.name);
        for p in &gone {
            record_claim(&mut st, p, None)?;
        }
        st.applied.remove(&req.name);
        save_chassis(&mut st)?;
        self.applied_tx.send_modify(|n| *n += 1);
        tracing::info!(chassis = %req.name, "chassis deleted");
        st.sb.rebuild();
        self.publish_sb(&st);
        Ok(Response::new(pb::TransactReply {
            version: st.sb.version,
        }))
    }

    async fn wait(&self, req: Request<pb::WaitRequest>) -> Result<Response<pb::WaitReply>, Status> {
        self.auth.operator(&req, "Wait")?;
        let req = req.into_inner();
        let level =
            crate::server::wait::Level::parse(&req.level).map_err(Status::invalid_argument)?;
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_millis(u64::from(req.timeout_ms));
        let mut sb_rx = self.sb_tx.subscribe();
        let mut applied_rx = self.applied_tx.subscribe();
        loop {
            {
                let st = self.state.lock().await;
                if req.nb_version > st.version {
                    return Err(Status::invalid_argument(format!(
                        "NB version {} is not committed (the latest is {})",
                        req.nb_version, st.version
                    )));
                }
                let r = crate::server::wait::status(
                    level,
                    req.nb_version,
                    st.version,
                    &st.sb,
                    &st.applied,
                );
                if r.done || tokio::time::Instant::now() >= deadline {
                    return Ok(Response::new(r));
                }
            }
            sb_rx.borrow_and_update();
            applied_rx.borrow_and_update();
            tokio::select! {
                _ = sb_rx.changed() => {}
                _ = applied_rx.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// Stores the chassis list (a registration or a deletion).
fn save_chassis(st: &mut State) -> Result<(), Status> {
    let list: Vec<pb::Chassis> = st.sb.chassis.values().cloned().collect();
    st.store
        .save_chassis(&list)
        .map_err(|e| Status::unavailable(format!("chassis not recorded: {e}")))
}

/// Stores one claim (None: released) after `st.sb.claims` changed.
fn record_claim(st: &mut State, port: &str, chassis: Option<&str>) -> Result<(), Status> {
    let State { store, sb, .. } = st;
    store
        .save_claim(port, chassis, &sb.claims)
        .map_err(|e| Status::unavailable(format!("claim not recorded: {e}")))
}

/// Chassis must register before they claim ports or report neighbours.
fn require_chassis(sb: &crate::server::sb::Sb, chassis: &str) -> Result<(), Status> {
    if sb.chassis.contains_key(chassis) {
        Ok(())
    } else {
        Err(Status::failed_precondition(format!(
            "chassis {chassis:?} is not registered"
        )))
    }
}

#[tonic::async_trait]
impl Southbound for Northd {
    async fn register_chassis(
        &self,
        req: Request<pb::RegisterChassisRequest>,
    ) -> Result<Response<pb::RegisterChassisReply>, Status> {
        let name = req.get_ref().chassis.as_ref().map(|c| c.name.clone());
        self.auth
            .chassis(&req, "RegisterChassis", name.as_deref().unwrap_or(""))?;
        let c = req
            .into_inner()
            .chassis
            .ok_or_else(|| Status::invalid_argument("chassis missing"))?;
        if c.name.is_empty() {
            return Err(Status::invalid_argument("chassis name is empty"));
        }
        for e in &c.encaps {
            if e.ip.parse::<std::net::IpAddr>().is_err() {
                return Err(Status::invalid_argument(format!(
                    "encap ip {:?} is not an IP address",
                    e.ip
                )));
            }
        }
        let mut st = self.state.lock().await;
        tracing::info!(chassis = %c.name, "chassis registered");
        // A (re)started chassis runs nothing until it says so.
        st.applied.remove(&c.name);
        let changed = st.sb.chassis.get(&c.name) != Some(&c);
        let c_name = c.name.clone();
        st.sb.chassis.insert(c.name.clone(), c);
        if changed {
            save_chassis(&mut st)?;
        }
        let key = format!("chassis/{}", c_name);
        st.sb.refresh(&[key]);
        self.publish_sb(&st);
        Ok(Response::new(pb::RegisterChassisReply {
            version: st.sb.version,
            epoch: st.sb.epoch.clone(),
        }))
    }

    type WatchStream = Stream_<pb::SbUpdate>;
    async fn watch(
        &self,
        req: Request<pb::WatchSbRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.auth
            .chassis(&req, "Watch", &req.get_ref().chassis.clone())?;
        let req = req.into_inner();
        let state = self.state.clone();
        let mut rx = self.sb_tx.subscribe();
        let (tx, out) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut last = req.from_version;
            let mut first = true;
            loop {
                let updates: Vec<Update> = {
                    let st = state.lock().await;
                    let since = if first {
                        let r = st.sb.resume(&req.epoch, last);
                        if r.is_some() {
                            tracing::info!(chassis = %req.chassis, from = last, "SB watch resumed with deltas");
                        }
                        r
                    } else {
                        st.sb.deltas_since(last)
                    };
                    match since {
                        Some(ds) => ds.into_iter().map(Update::Delta).collect(),
                        None => vec![Update::Snapshot(st.sb.snapshot())],
                    }
                };
                first = false;
                for u in updates {
                    last = match &u {
                        Update::Delta(d) => d.version,
                        Update::Snapshot(s) => s.version,
                    };
                    if tx.send(Ok(pb::SbUpdate { update: Some(u) })).await.is_err() {
                        return;
                    }
                }
                state.lock().await.sent.insert(req.chassis.clone(), last);
                rx.borrow_and_update();
                if *rx.borrow() == last && rx.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }

    async fn claim_port(
        &self,
        req: Request<pb::ClaimRequest>,
    ) -> Result<Response<pb::ClaimReply>, Status> {
        self.auth
            .chassis(&req, "ClaimPort", &req.get_ref().chassis.clone())?;
        let req = req.into_inner();
        let mut st = self.state.lock().await;
        require_chassis(&st.sb, &req.chassis)?;
        let before = st.sb.claims.get(&req.logical_port).cloned();
        if let Some(holder) = before.as_deref().filter(|_| !req.release) {
            if st.sb.chassis.contains_key(holder) {
                self.auth
                    .take_over(&req.chassis, &req.logical_port, holder)?;
            }
        }
        if req.release {
            if st.sb.claims.get(&req.logical_port) == Some(&req.chassis) {
                st.sb.claims.remove(&req.logical_port);
            }
        } else {
            if !st.nb.ports.contains_key(&req.logical_port) {
                return Err(Status::not_found(format!(
                    "logical port {:?} does not exist",
                    req.logical_port
                )));
            }
            if let Some(prev) = st
                .sb
                .claims
                .insert(req.logical_port.clone(), req.chassis.clone())
            {
                if prev != req.chassis {
                    tracing::warn!(port = %req.logical_port, from = %prev, to = %req.chassis, "port binding moved");
                }
            }
        }
        let after = st.sb.claims.get(&req.logical_port).cloned();
        if after != before {
            record_claim(&mut st, &req.logical_port, after.as_deref())?;
        }
        st.sb.refresh(&[format!("pb/{}", req.logical_port)]);
        self.publish_sb(&st);
        Ok(Response::new(pb::ClaimReply {
            version: st.sb.version,
        }))
    }

    async fn report_applied(
        &self,
        req: Request<pb::ReportAppliedRequest>,
    ) -> Result<Response<pb::ClaimReply>, Status> {
        self.auth
            .chassis(&req, "ReportApplied", &req.get_ref().chassis.clone())?;
        let req = req.into_inner();
        let mut st = self.state.lock().await;
        require_chassis(&st.sb, &req.chassis)?;
        if req.sb_version > st.sb.version || req.claimed_sb > st.sb.version {
            return Err(Status::invalid_argument(format!(
                "SB version {} is in the future (the latest is {})",
                req.sb_version.max(req.claimed_sb),
                st.sb.version
            )));
        }
        st.applied.insert(
            req.chassis,
            crate::server::wait::Applied {
                nb_version: req.nb_version,
                sb_version: req.sb_version,
                claimed_sb: req.claimed_sb,
            },
        );
        self.applied_tx.send_modify(|n| *n += 1);
        Ok(Response::new(pb::ClaimReply {
            version: st.sb.version,
        }))
    }

    async fn report_mac_bindings(
        &self,
        req: Request<pb::ReportMacBindingsRequest>,
    ) -> Result<Response<pb::ClaimReply>, Status> {
        self.auth
            .chassis(&req, "ReportMacBindings", &req.get_ref().chassis.clone())?;
        let req = req.into_inner();
        let mut st = self.state.lock().await;
        require_chassis(&st.sb, &req.chassis)?;
        let mut keys = Vec::new();
        for b in req.bindings {
            let known = st.nb.router_ports.get(&b.logical_port).and_then(|p| {
                st.nb
                    .routers
                    .get(&p.router_name)
                    .map(|r| r.tunnel_key == b.datapath)
            });
            if known != Some(true) {
                return Err(Status::not_found(format!(
                    "router port {:?} of datapath {} does not exist",
                    b.logical_port, b.datapath
                )));
            }
            if b.mac & (1 << 40) != 0 || b.mac == 0 || b.mac >> 48 != 0 {
                return Err(Status::invalid_argument(format!(
                    "MAC {:#x} is not a unicast MAC",
                    b.mac
                )));
            }
            match <[u8; 16]>::try_from(b.ip6.as_slice()).map(std::net::Ipv6Addr::from) {
                _ if b.ip6.is_empty() => {}
                Ok(a) if !(a.is_multicast() || a.is_unspecified()) && b.ip == 0 => {}
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "ip6 {:02x?} is not a unicast IPv6 address (16 bytes, with ip 0)",
                        b.ip6
                    )))
                }
            }
            keys.push(switchyard_southbound::mac_binding_key(&b));
            let ip = switchyard_southbound::mac_binding_ip(&b);
            st.sb
                .mac_bindings
                .insert((b.datapath, b.logical_port.clone(), ip), b);
        }
        st.sb.refresh(&keys);
        self.publish_sb(&st);
        Ok(Response::new(pb::ClaimReply {
            version: st.sb.version,
        }))
    }
}

/// A random epoch for this process's SB versions (std's random hash keys).
fn epoch() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}
