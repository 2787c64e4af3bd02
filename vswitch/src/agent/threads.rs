//! The PMD threads: made, wired to each other (shared conntrack, hand-off
//! rings) and pinned at start, and the loop each runs: control commands,
//! table swaps, housekeeping, polling, and the idle wait.

use super::{Agent, Config, IdlePolicy, PmdCmd, PmdHandle};
use crate::pmd::handoff::{Handoff, HANDOFF_FRAMES};
use crate::pmd::{Pmd, SharedTables};
use crate::stats::PmdStats;
use crate::tables::lb::ServiceSets;
use crate::tables::Tables;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The PMD threads, joined at shutdown.
pub type PmdThreads = Vec<std::thread::JoinHandle<()>>;

/// Starts the PMD threads; returns the agent that drives them.
pub fn start(cfg: Config) -> anyhow::Result<(Arc<Mutex<Agent>>, PmdThreads)> {
    std::fs::create_dir_all(&cfg.state_dir)?;
    let n = cfg.pmd_cores.len().max(1);
    let shared = SharedTables::with_pmds(Tables::default(), n);
    let mut pmds = Vec::with_capacity(n);
    for id in 0..n {
        let mut pmd = Pmd::new(
            shared.clone(),
            Arc::new(PmdStats::default()),
            cfg.emc_entries,
        );
        pmd.set_id(id);
        if id == 0 {
            pmd.set_ct_capacity(cfg.ct_capacity);
        }
        pmd.set_megaflow(cfg.megaflow_entries, cfg.emc_insert_inv_prob);
        pmd.set_answer_rate(cfg.icmp_rate.0, cfg.icmp_rate.1);
        pmd.set_dns_rate(cfg.dns_rate.0, cfg.dns_rate.1);
        pmds.push(pmd);
    }
    // One conntrack for all (both directions of a connection may arrive on
    // different PMDs), expired by PMD 0.
    let edge = pmds[0].edge_handle();
    pmds[0].set_staged(n > 1);
    for p in &mut pmds[1..] {
        p.share_edge(edge.clone());
    }
    let mut rings = vec![vec![None; n]; n];
    for (from, row) in rings.iter_mut().enumerate() {
        for (to, r) in row.iter_mut().enumerate() {
            if from != to {
                let ring = Handoff::new(to, HANDOFF_FRAMES, pmds[to].waker());
                pmds[to].add_inbound(ring.clone());
                *r = Some(ring);
            }
        }
    }
    let spin = Duration::from_micros(cfg.idle_spin_us);
    let idle = cfg.idle;
    let mut handles = Vec::with_capacity(n);
    let mut handle_of = Vec::with_capacity(n);
    for (id, mut pmd) in pmds.into_iter().enumerate() {
        let (tx, rx) = crossbeam::channel::unbounded::<PmdCmd>();
        let core = cfg.pmd_cores.get(id).copied();
        handle_of.push(PmdHandle {
            tx,
            stats: pmd.stats.clone(),
            core,
        });
        handles.push(
            std::thread::Builder::new()
                .name(format!("pmd{id}"))
                .spawn(move || {
                    if let Some(c) = core {
                        if !crate::sys::pin_to_core(c) {
                            tracing::warn!(core = c, pmd = id, "could not pin PMD thread");
                        }
                    }
                    pmd_loop(&mut pmd, &rx, idle, spin);
                })?,
        );
    }
    let agent = Agent {
        cfg,
        ports: BTreeMap::new(),
        sb: None,
        sb_snapshots: 0,
        sb_resumes: 0,
        sb_connected: false,
        client: None,
        generation: 0,
        shared,
        pmds: handle_of,
        rings,
        untranslatable: 0,
        pending: BTreeMap::new(),
        learned: BTreeMap::new(),
        underlay: None,
        underlay_stats: None,
        underlay_pmd: 0,
        underlay_rxqs: Vec::new(),
        maglev: Default::default(),
        services: ServiceSets::default(),
        started: std::time::Instant::now(),
        ct_rate: None,
        applied: (0, 0, 0),
        claimed_sb: 0,
        reported: None,
        nb_cfg: 0,
        edge,
        auto_lb: Default::default(),
        pmds_auto_lb_moves: 0,
    };
    Ok((Arc::new(Mutex::new(agent)), handles))
}

fn pmd_loop(
    pmd: &mut Pmd,
    rx: &crossbeam::channel::Receiver<PmdCmd>,
    idle: IdlePolicy,
    spin: Duration,
) {
    // Empty polls before the first sleep, and the sleep's bounds: frames wake the
    // thread at once (POLLIN on the sockets), so the timeout only bounds how late
    // a control command or table swap is seen; it doubles while idle. Besides
    // the streak, the PMD polls for `spin` after the last packet: waking a
    // blocked thread costs tens of microseconds on a VM (an IPI), and
    // request-response traffic (a TCP handshake) comes back within that time.
    const IDLE_STREAK: u32 = 128;
    const MIN_SLEEP_MS: i32 = 1;
    const MAX_SLEEP_MS: i32 = 16;
    let mut empty = 0u32;
    let mut sleep_ms = MIN_SLEEP_MS;
    let mut last_busy = std::time::Instant::now();
    let mut poller = crate::sys::Poller::default();
    let mut fds = Vec::new();
    loop {
        while let Ok(cmd) = rx.try_recv() {
            sleep_ms = MIN_SLEEP_MS;
            match cmd {
                PmdCmd::Add(slot, io, stats) => {
                    pmd.add_port(slot, io, stats);
                    pmd.rx_fds(&mut fds);
                    poller.set(&fds);
                }
                PmdCmd::AddRemote(slot, ring, stats) => {
                    pmd.add_remote(slot, ring, stats);
                }
                PmdCmd::Del(slot, done) => {
                    pmd.del_port(slot);
                    pmd.rx_fds(&mut fds);
                    poller.set(&fds);
                    let _ = done.send(());
                }
                PmdCmd::DumpFlows(reply) => {
                    let _ = reply.send(pmd.cache_dump());
                }
                PmdCmd::Trace(key, chassis, reply) => {
                    let _ = reply.send(pmd.trace(&key, &chassis));
                }
                PmdCmd::ClearStats(reply) => {
                    pmd.stats.reset();
                    let _ = reply.send(());
                }
                PmdCmd::CtFlush(reply) => {
                    let mut e = pmd.edge();
                    let n = e.ct.len();
                    e.ct.flush();
                    let _ = reply.send(n);
                }
                PmdCmd::Stop => return,
            }
        }
        pmd.refresh_tables();
        pmd.housekeep_if_due();
        let n = pmd.poll_once();
        if n > 0 || pmd.tx_outstanding() {
            empty = 0;
            sleep_ms = MIN_SLEEP_MS;
            continue;
        }
        empty += 1;
        if empty == 1 {
            last_busy = std::time::Instant::now();
        }
        if idle == IdlePolicy::Adaptive && empty >= IDLE_STREAK && last_busy.elapsed() >= spin {
            // Say so before the last look at the rings: a PMD handing
            // frames over after that look sees it and wakes this one.
            let waker = pmd.waker();
            waker.set_sleeping(true);
            if !pmd.handoff_pending() {
                pmd.stats.idle_sleeps.add(1);
                poller.wait(sleep_ms);
                sleep_ms = (sleep_ms * 2).min(MAX_SLEEP_MS);
            }
            waker.set_sleeping(false);
        }
    }
}
