//! `syctl vswitch ...`: talks to a running switchyard-vswitchd over its control socket.

use crate::table;
use std::path::Path;
use switchyard_control::{call, Request, Response};

fn expect(resp: Response) -> anyhow::Result<Response> {
    match resp {
        Response::Error(e) => anyhow::bail!("{e}"),
        r => Ok(r),
    }
}

/// How long `port-add` waits for a logical port that vswitchd's southbound
/// copy does not have yet (`syctl lsp-add ...; syctl vswitch port-add ...`
/// in a row: the new port is still on its way through northd).
const PORT_ADD_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends `req`; a `PortAdd` for a logical port vswitchd has not seen yet is
/// tried again until it appears or [`PORT_ADD_WAIT`] passes.
fn call_waiting(sock: &Path, req: &Request) -> anyhow::Result<Response> {
    let deadline = std::time::Instant::now() + PORT_ADD_WAIT;
    loop {
        let resp = call(sock, req)?;
        let not_yet = matches!((&resp, req), (Response::Error(e), Request::PortAdd { .. })
            if e.contains("does not exist in the southbound database"));
        if !not_yet || std::time::Instant::now() >= deadline {
            return Ok(resp);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub fn run(sock: &Path, req: Request, json: bool) -> anyhow::Result<()> {
    let resp = expect(call_waiting(sock, &req)?)?;
    if json {
        let v = match &resp {
            Response::Ports(p) => serde_json::to_value(p)?,
            Response::Rxqs(q) => serde_json::to_value(q)?,
            Response::Moved(n) => serde_json::json!({ "moved": n }),
            Response::Pmds(p) => serde_json::to_value(p)?,
            Response::DpFlows(f) => serde_json::to_value(f)?,
            Response::Status(s) => serde_json::to_value(s)?,
            Response::Tunnels(t) => serde_json::to_value(t)?,
            Response::Conns(c) => serde_json::to_value(c)?,
            Response::CtStats(s) => serde_json::to_value(s)?,
            _ => serde_json::json!({"ok": true}),
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    match resp {
        Response::Moved(n) => println!("{n} port(s) moved"),
        Response::Rxqs(rxqs) => {
            // OVS's dpif-netdev/pmd-rxq-show layout: a PMD, then its queues.
            let mut last = None;
            for q in &rxqs {
                if last != Some(q.pmd) {
                    match q.core {
                        Some(c) => println!("pmd {} core {c}:", q.pmd),
                        None => println!("pmd {} (not pinned):", q.pmd),
                    }
                    last = Some(q.pmd);
                }
                println!(
                    "  port: {:<16} queue-id: {:>2}{}  packets: {:>10}  pmd usage: {:>3.0} %{}",
                    q.iface,
                    q.queue,
                    if q.pinned { " (pinned)" } else { "" },
                    q.packets,
                    q.usage_pct,
                    if q.kernel_rx_dropped + q.kernel_rx_invalid > 0 {
                        format!(
                            "  kernel drops: {} invalid: {}",
                            q.kernel_rx_dropped, q.kernel_rx_invalid
                        )
                    } else {
                        String::new()
                    }
                );
            }
        }
        Response::Conns(conns) => {
            let rows: Vec<Vec<String>> = conns
                .iter()
                .map(|c| {
                    vec![
                        if c.zone >= switchyard_datapath::tables::STATEFUL_ZONE {
                            format!("0x{:x}", c.zone)
                        } else {
                            c.zone.to_string()
                        },
                        c.proto.clone(),
                        c.orig.clone(),
                        c.reply.clone(),
                        c.state.clone(),
                        if c.nat { "yes" } else { "-" }.into(),
                        format!("{}/{}", c.packets_orig, c.packets_reply),
                        format!("{:.1}", c.idle_ms as f64 / 1000.0),
                        match (c.mark, c.label) {
                            (0, 0) => "-".into(),
                            (m, 0) => format!("0x{m:x}"),
                            (m, l) => format!("0x{m:x}/0x{l:x}"),
                        },
                    ]
                })
                .collect();
            table::print(
                &[
                    "ZONE",
                    "PROTO",
                    "ORIGINAL",
                    "REPLY",
                    "STATE",
                    "NAT",
                    "PKTS O/R",
                    "IDLE S",
                    "MARK/LABEL",
                ],
                &rows,
            );
        }
        Response::CtStats(s) => {
            println!("entries:            {} of {}", s.entries, s.capacity);
            println!(
                "inserts:            {} ({:.1}/s since last ct-stats)",
                s.inserts, s.inserts_per_second
            );
            println!("dropped, table full: {}", s.full_drops);
            println!("invalid:            {}", s.invalid);
            println!("expired:            {}", s.expired);
            println!("blind RSTs ignored: {}", s.rst_ignored);
            println!("NAT collisions:     {}", s.nat_collisions);
            println!("evicted when full:  {}", s.early_drops);
            println!("picked up (no SYN): {}", s.pickups);
            println!("zone at its limit:  {}", s.zone_limit_drops);
            println!("closed, tuple reused: {}", s.closed_reused);
            for z in &s.zone_limits {
                println!("  zone {:#x}: {} of {}", z.zone, z.count, z.limit);
            }
            println!("by state:");
            for (k, v) in &s.by_state {
                println!("  {k:<12} {v}");
            }
        }
        Response::Tunnels(tunnels) => {
            let rows: Vec<Vec<String>> = tunnels
                .iter()
                .map(|t| {
                    vec![
                        t.chassis.clone(),
                        t.remote_ip.clone(),
                        t.remote_mac.clone(),
                        t.tx_packets.to_string(),
                        t.tx_bytes.to_string(),
                        t.rx_packets.to_string(),
                        t.rx_bytes.to_string(),
                        t.tx_errors.to_string(),
                    ]
                })
                .collect();
            table::print(
                &[
                    "CHASSIS",
                    "REMOTE IP",
                    "REMOTE MAC",
                    "TX PKTS",
                    "TX BYTES",
                    "RX PKTS",
                    "RX BYTES",
                    "TX ERRORS",
                ],
                &rows,
            );
        }
        Response::Ports(ports) => {
            let rows: Vec<Vec<String>> = ports
                .iter()
                .map(|p| {
                    vec![
                        p.iface.clone(),
                        p.lport.clone(),
                        if p.bound { "yes" } else { "no" }.into(),
                        p.mode.clone(),
                        p.rx_packets.to_string(),
                        p.tx_packets.to_string(),
                        p.rx_dropped.to_string(),
                        p.tx_dropped.to_string(),
                    ]
                })
                .collect();
            table::print(
                &[
                    "IFACE", "LPORT", "BOUND", "MODE", "RX", "TX", "RX-DROP", "TX-DROP",
                ],
                &rows,
            );
        }
        Response::Pmds(pmds) => {
            if pmds.len() > 1 {
                let sum = |f: fn(&switchyard_control::PmdInfo) -> u64| -> u64 {
                    pmds.iter().map(f).sum()
                };
                let drops: u64 = pmds.iter().flat_map(|p| p.drops.iter().map(|d| d.1)).sum();
                println!(
                    "all {} pmd threads: packets received {}, exact-match hits {}, megaflow hits {}, slow-path lookups {}, drops {}",
                    pmds.len(),
                    sum(|p| p.packets),
                    sum(|p| p.emc_hits),
                    sum(|p| p.megaflow_hits),
                    sum(|p| p.megaflow_misses),
                    drops
                );
            }
            for p in pmds {
                let core = p
                    .core
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "unpinned".into());
                let lookups = p.emc_hits + p.emc_misses;
                let rate = if lookups > 0 {
                    100.0 * p.emc_hits as f64 / lookups as f64
                } else {
                    0.0
                };
                println!("pmd thread {} core {}:", p.pmd, core);
                println!("  packets received:       {}", p.packets);
                println!("  exact-match cache hits: {} ({rate:.1}%)", p.emc_hits);
                println!(
                    "  megaflow hits:          {} ({} masks; kept {}, dropped {} by table changes)",
                    p.megaflow_hits, p.megaflow_masks, p.megaflow_kept, p.megaflow_dropped
                );
                println!("  slow-path lookups:      {}", p.megaflow_misses);
                println!("  uncacheable verdicts:   {}", p.uncacheable);
                println!("  checksums completed:    {}", p.csum_completed);
                println!("  cycles per packet:      {:.0}", p.cycles_per_packet);
                println!(
                    "  poll iterations:        {} (idle sleeps {})",
                    p.iterations, p.idle_sleeps
                );
                let [offers, acks, naks, dpassed] = p.dhcp;
                if offers + acks + naks + dpassed > 0 {
                    println!(
                        "  dhcp:                   {offers} offers, {acks} acks, {naks} naks, {dpassed} passed on"
                    );
                }
                let [ans, nx, passed, bad] = p.dns;
                if ans + nx + passed + bad > 0 {
                    println!(
                        "  dns queries:            {ans} answered, {nx} nxdomain, {passed} passed on, {bad} malformed"
                    );
                }
                let drops: Vec<(String, u64)> =
                    p.drops.into_iter().filter(|(_, v)| *v > 0).collect();
                if drops.is_empty() {
                    println!("  drops:                  0");
                } else {
                    println!("  drops:");
                    for (r, v) in drops {
                        println!("    {r:<24}{v}");
                    }
                }
            }
        }
        Response::DpFlows(flows) => {
            for f in flows {
                let idle = f
                    .idle_ms
                    .map(|i| format!(" used:{:.1}s", i as f64 / 1000.0))
                    .unwrap_or_default();
                println!(
                    "{}: {} hits:{}{idle} age:{:.1}s actions:{}",
                    if f.cache.is_empty() { "emc" } else { &f.cache },
                    f.key,
                    f.hits,
                    f.age_ms as f64 / 1000.0,
                    f.actions
                );
            }
        }
        Response::Status(s) => {
            println!("chassis {}: SB {} (version {}), runs NB version {}, table generation {}, {} ports, {} untranslatable flows",
                s.chassis, if s.sb_connected { "connected" } else { "DISCONNECTED" }, s.sb_version, s.nb_cfg, s.table_generation, s.ports, s.untranslatable_flows);
        }
        _ => {}
    }
    Ok(())
}
