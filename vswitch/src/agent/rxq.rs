//! Receive queues and PMDs: which PMD polls each queue of an interface (OVS's
//! rxq assignment), pinning a port's queues to cores (`rxq-affinity`), and
//! what `pmd-rxq-show` lists.
//!
//! Every queue of an interface is polled by exactly one PMD; a PMD that polls
//! some of a port's queues also transmits on them (each PMD its own TX
//! queues, no lock between PMDs). A PMD with none of the port's queues hands
//! its frames for it to one that has (the hand-off rings).

use super::{Agent, PmdCmd};
use crate::control::RxqInfo;
use crate::stats::{PortStats, RxqStats};
use crate::sys::xsk::XskPort;
use std::sync::Arc;

/// One receive queue of a bound interface, as the agent tracks it.
pub(super) struct RxqEntry {
    /// The interface's queue number.
    pub id: u32,
    pub pmd: usize,
    pub pinned: bool,
    pub stats: Arc<RxqStats>,
}

/// Parses an `rxq-affinity` value, "QUEUE:CORE,..." (OVS's
/// `other_config:pmd-rxq-affinity`); empty clears it.
pub fn parse_affinity(s: &str) -> Result<Vec<(u32, usize)>, String> {
    let mut out: Vec<(u32, usize)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (q, c) = part
            .split_once(':')
            .ok_or_else(|| format!("rxq-affinity {part:?}: want QUEUE:CORE"))?;
        let q: u32 = q
            .trim()
            .parse()
            .map_err(|_| format!("rxq-affinity {part:?}: queue {q:?} is not a number"))?;
        let c: usize = c
            .trim()
            .parse()
            .map_err(|_| format!("rxq-affinity {part:?}: core {c:?} is not a number"))?;
        if out.iter().any(|&(oq, _)| oq == q) {
            return Err(format!("rxq-affinity: queue {q} is given twice"));
        }
        out.push((q, c));
    }
    Ok(out)
}

/// Formats an affinity as [`parse_affinity`] reads it.
pub fn format_affinity(a: &[(u32, usize)]) -> String {
    a.iter()
        .map(|(q, c)| format!("{q}:{c}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The PMD of each of `nq` queues. A pinned queue goes to the PMD on its
/// core; the others go one at a time to the PMD with the fewest queues,
/// the lowest first (round-robin as ports come and go), skipping PMDs that
/// have pinned queues (OVS's `pmd-rxq-isolate`) unless every PMD has some.
/// `load` (queues per PMD) is updated.
pub fn assign(
    nq: usize,
    cores: &[Option<usize>],
    affinity: &[(u32, usize)],
    isolated: &[bool],
    load: &mut [usize],
) -> Result<Vec<(usize, bool)>, String> {
    let mut out = vec![(usize::MAX, false); nq];
    for &(q, core) in affinity {
        let qi = q as usize;
        if qi >= nq {
            return Err(format!(
                "rxq-affinity: queue {q} does not exist (the interface has {nq})"
            ));
        }
        let Some(pmd) = cores.iter().position(|c| *c == Some(core)) else {
            let list: Vec<String> = cores.iter().flatten().map(|c| c.to_string()).collect();
            return Err(format!(
                "rxq-affinity: no PMD on core {core} (PMD cores: {})",
                if list.is_empty() {
                    "none pinned".to_string()
                } else {
                    list.join(",")
                }
            ));
        };
        out[qi] = (pmd, true);
        load[pmd] += 1;
    }
    let open: Vec<usize> = (0..load.len()).filter(|&i| !isolated[i]).collect();
    let pool: Vec<usize> = if open.is_empty() {
        (0..load.len()).collect()
    } else {
        open
    };
    for slot in out.iter_mut().filter(|s| s.0 == usize::MAX) {
        let pmd = pool
            .iter()
            .copied()
            .min_by_key(|&i| (load[i], i))
            .unwrap_or(0);
        *slot = (pmd, false);
        load[pmd] += 1;
    }
    Ok(out)
}

/// One queue as [`plan_by_load`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub cycles: u64,
    /// The PMD it is pinned to.
    pub pinned: Option<usize>,
}

/// A PMD for each queue by measured load (OVS's `cycles` assignment): pinned
/// queues stay and count on their PMD; the others, busiest first, each go to
/// the PMD with the fewest cycles so far (then the fewest queues, then the
/// lowest), skipping PMDs with pinned queues unless every PMD has some.
pub fn plan_by_load(queues: &[Load], npmds: usize) -> Vec<usize> {
    let mut cyc = vec![0u64; npmds];
    let mut cnt = vec![0usize; npmds];
    let mut iso = vec![false; npmds];
    let mut out = vec![0usize; queues.len()];
    for (i, q) in queues.iter().enumerate() {
        if let Some(p) = q.pinned.filter(|&p| p < npmds) {
            out[i] = p;
            cyc[p] += q.cycles;
            cnt[p] += 1;
            iso[p] = true;
        }
    }
    let pool: Vec<usize> = if iso.iter().all(|&x| x) {
        (0..npmds).collect()
    } else {
        (0..npmds).filter(|&i| !iso[i]).collect()
    };
    let mut order: Vec<usize> = (0..queues.len())
        .filter(|&i| queues[i].pinned.is_none())
        .collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(queues[i].cycles), i));
    for i in order {
        let p = pool
            .iter()
            .copied()
            .min_by_key(|&p| (cyc[p], cnt[p], p))
            .unwrap_or(0);
        out[i] = p;
        cyc[p] += queues[i].cycles;
        cnt[p] += 1;
    }
    out
}

/// What `--pmd-auto-lb` decides each interval: a new placement (one PMD
/// per queue) when it lowers the busiest PMD's load by at least
/// `improvement_pct` percent; `current` is each queue's PMD now, `loads` its
/// cycles over the interval.
pub fn auto_lb_plan(
    current: &[usize],
    loads: &[Load],
    npmds: usize,
    improvement_pct: u32,
) -> Option<Vec<usize>> {
    let busiest = |plan: &[usize]| {
        let mut per = vec![0u64; npmds];
        for (&pmd, l) in plan.iter().zip(loads) {
            if let Some(x) = per.get_mut(pmd) {
                *x += l.cycles;
            }
        }
        per.into_iter().max().unwrap_or(0)
    };
    let now = busiest(current);
    if now == 0 {
        return None;
    }
    let plan = plan_by_load(loads, npmds);
    let then = busiest(&plan);
    let gain = now.saturating_sub(then) as u128 * 100;
    (gain >= u128::from(improvement_pct) * now as u128 && plan != current).then_some(plan)
}

/// `--pmd-auto-lb`'s memory between intervals: each queue's cycles and
/// each PMD's busy cycles at the last look, and the clock then.
#[derive(Default)]
pub(super) struct AutoLb {
    cycles: std::collections::HashMap<(String, u32), u64>,
    busy: Vec<u64>,
    tsc: u64,
}

impl Agent {
    /// `port-set IFACE rxq-affinity=...`: the port's queues move to their
    /// new PMDs. The interface is closed and reopened on the same slot, so
    /// it forwards nothing for the few milliseconds that takes.
    pub async fn port_set(&mut self, iface: &str, affinity: &str) -> Result<(), String> {
        let affinity = parse_affinity(affinity)?;
        let Some(p) = self.ports.get(iface) else {
            return Err(format!("interface {iface:?} is not bound"));
        };
        // Validate against the interface and the PMDs before touching it.
        let nq = p.rxqs.len();
        let cores: Vec<Option<usize>> = self.pmds.iter().map(|h| h.core).collect();
        assign(
            nq,
            &cores,
            &affinity,
            &vec![false; cores.len()],
            &mut vec![0; cores.len()],
        )?;
        let slot = p.slot;
        self.unplace(slot).await;
        let port = self.open_port(iface).await?;
        let (rxqs, stats) = self.place(slot, port, &affinity, Some(iface))?;
        if let Some(p) = self.ports.get_mut(iface) {
            p.rxqs = rxqs;
            p.stats = stats;
            p.affinity = affinity;
        }
        self.save()
            .map_err(|e| format!("affinity not saved: {e}"))?;
        tracing::info!(iface, "port re-pinned");
        Ok(())
    }

    /// One `--pmd-auto-lb` interval: when the busiest PMD was busy at least
    /// `load_pct` percent of the time and a placement by this interval's
    /// cycles lowers its load by `improvement_pct` percent, the queues move
    /// (OVS's pmd-auto-lb-load-threshold and -improvement-threshold).
    pub(super) async fn auto_lb_tick(&mut self, load_pct: u32, improvement_pct: u32) {
        let tsc = crate::sys::cycles();
        let busy: Vec<u64> = self
            .pmds
            .iter()
            .map(|h| h.stats.busy_cycles.get())
            .collect();
        let mut last = std::mem::take(&mut self.auto_lb);
        let mut deltas = Vec::new();
        let mut current = Vec::new();
        for p in self.ports.values() {
            for q in &p.rxqs {
                let now = q.stats.cycles.get();
                let key = (p.iface.clone(), q.id);
                // A queue reopened since (moved, re-pinned) starts from zero.
                let before = last
                    .cycles
                    .get(&key)
                    .copied()
                    .filter(|&b| b <= now)
                    .unwrap_or(0);
                deltas.push(now - before);
                current.push(q.pmd);
                last.cycles.insert(key, now);
            }
        }
        let elapsed = tsc.wrapping_sub(last.tsc).max(1);
        let busiest_pct = busy
            .iter()
            .zip(last.busy.iter().chain(std::iter::repeat(&0)))
            .map(|(&b, &a)| b.saturating_sub(a) as u128 * 100 / u128::from(elapsed))
            .max()
            .unwrap_or(0);
        let first = last.tsc == 0;
        last.busy = busy;
        last.tsc = tsc;
        self.auto_lb = last;
        if first || busiest_pct < u128::from(load_pct) {
            return;
        }
        let mut loads = self.loads(|_| 0);
        for (l, d) in loads.iter_mut().zip(&deltas) {
            l.cycles = *d;
        }
        let Some(plan) = auto_lb_plan(&current, &loads, self.pmds.len(), improvement_pct) else {
            return;
        };
        match self.apply_plan(&plan).await {
            Ok(n) => {
                self.pmds_auto_lb_moves += n as u64;
                tracing::info!(
                    moved = n,
                    busiest_pct = busiest_pct as u64,
                    "pmd-auto-lb rebalanced"
                );
            }
            Err(e) => tracing::warn!(error = %e, "pmd-auto-lb rebalance failed"),
        }
    }

    /// `pmd-rxq-rebalance`: every port's unpinned queues placed again by the
    /// cycles they took since they were placed ([`plan_by_load`]); ports
    /// whose placement changes are reopened on their new PMDs. Returns how
    /// many ports moved.
    pub(super) async fn rebalance(&mut self) -> Result<usize, String> {
        let loads = self.loads(|q| q.stats.cycles.get());
        let plan = plan_by_load(&loads, self.pmds.len());
        self.apply_plan(&plan).await
    }

    /// Every bound port's queues (in port order) with `cycles` of each.
    fn loads(&self, cycles: impl Fn(&RxqEntry) -> u64) -> Vec<Load> {
        let queues = self.ports.values().flat_map(|p| &p.rxqs);
        queues
            .map(|q| Load {
                cycles: cycles(q),
                pinned: q.pinned.then_some(q.pmd),
            })
            .collect()
    }

    /// Moves every port whose queues `plan` (one PMD per queue, in port
    /// order) places elsewhere; returns how many moved.
    async fn apply_plan(&mut self, plan: &[usize]) -> Result<usize, String> {
        let ifaces: Vec<String> = self.ports.keys().cloned().collect();
        let mut at = 0;
        let mut moved = 0;
        for iface in ifaces {
            let Some(p) = self.ports.get(&iface) else {
                continue;
            };
            let n = p.rxqs.len();
            let Some(mine) = plan.get(at..at + n) else {
                break;
            };
            let new: Vec<(usize, bool)> = mine
                .iter()
                .zip(&p.rxqs)
                .map(|(&pmd, q)| (pmd, q.pinned))
                .collect();
            at += n;
            if p.rxqs.iter().zip(&new).all(|(q, &(pmd, _))| q.pmd == pmd) {
                continue;
            }
            let slot = p.slot;
            self.unplace(slot).await;
            let port = self.open_port(&iface).await?;
            let (rxqs, stats) = self.place_as(slot, port, new)?;
            if let Some(p) = self.ports.get_mut(&iface) {
                p.rxqs = rxqs;
                p.stats = stats;
            }
            moved += 1;
        }
        Ok(moved)
    }

    /// Queues per PMD over every bound port and the underlay.
    fn queue_load(&self) -> Vec<usize> {
        let mut load = vec![0usize; self.pmds.len()];
        let ports = self.ports.values().map(|p| &p.rxqs);
        for q in ports.chain(std::iter::once(&self.underlay_rxqs)).flatten() {
            load[q.pmd] += 1;
        }
        load
    }

    /// PMDs with a pinned queue, counting `extra` (the affinity about to be
    /// applied) and leaving out `except` (the port being re-pinned).
    fn isolated(&self, except: Option<&str>, extra: &[(u32, usize)]) -> Vec<bool> {
        let mut iso = vec![false; self.pmds.len()];
        for p in self
            .ports
            .values()
            .filter(|p| Some(p.iface.as_str()) != except)
        {
            for q in p.rxqs.iter().filter(|q| q.pinned) {
                iso[q.pmd] = true;
            }
        }
        for &(_, core) in extra {
            if let Some(i) = self.pmds.iter().position(|h| h.core == Some(core)) {
                iso[i] = true;
            }
        }
        iso
    }

    /// Gives the queues of `port` (bound at `slot`) to PMDs: each PMD with
    /// queues polls and transmits on them; the others hand it their frames.
    /// Returns the queues and each PMD's counters for the port.
    pub(super) fn place(
        &self,
        slot: u16,
        port: XskPort,
        affinity: &[(u32, usize)],
        except: Option<&str>,
    ) -> Result<(Vec<RxqEntry>, Vec<Arc<PortStats>>), String> {
        let cores: Vec<Option<usize>> = self.pmds.iter().map(|h| h.core).collect();
        let mut load = self.queue_load();
        if let Some(p) = except.and_then(|e| self.ports.get(e)) {
            for q in &p.rxqs {
                load[q.pmd] -= 1;
            }
        }
        let iso = self.isolated(except, affinity);
        let plan = assign(port.queue_count(), &cores, affinity, &iso, &mut load)?;
        self.place_as(slot, port, plan)
    }

    /// [`Self::place`] with the PMD of each queue given (and whether it is pinned).
    fn place_as(
        &self,
        slot: u16,
        port: XskPort,
        plan: Vec<(usize, bool)>,
    ) -> Result<(Vec<RxqEntry>, Vec<Arc<PortStats>>), String> {
        let rxqs: Vec<RxqEntry> = port
            .rxq_stats()
            .into_iter()
            .zip(&plan)
            .map(|((id, stats), &(pmd, pinned))| RxqEntry {
                id,
                pmd,
                pinned,
                stats,
            })
            .collect();
        let mut groups = vec![Vec::new(); self.pmds.len()];
        for (qi, &(pmd, _)) in plan.iter().enumerate() {
            groups[pmd].push(qi);
        }
        let owners: Vec<usize> = (0..groups.len())
            .filter(|&i| !groups[i].is_empty())
            .collect();
        let parts = port.split(&groups).map_err(|e| format!("{e:#}"))?;
        let stats: Vec<Arc<PortStats>> = (0..self.pmds.len())
            .map(|_| Arc::new(PortStats::default()))
            .collect();
        let gone = |_| "PMD thread is gone".to_string();
        for (&pmd, part) in owners.iter().zip(parts) {
            self.pmds[pmd]
                .tx
                .send(PmdCmd::Add(slot, Box::new(part), stats[pmd].clone()))
                .map_err(gone)?;
        }
        for (i, h) in self.pmds.iter().enumerate() {
            if owners.contains(&i) {
                continue;
            }
            // Spread the PMDs without a queue over the owners.
            let owner = owners[i % owners.len()];
            if let Some(ring) = &self.rings[i][owner] {
                h.tx.send(PmdCmd::AddRemote(slot, ring.clone(), stats[i].clone()))
                    .map_err(gone)?;
            }
        }
        Ok((rxqs, stats))
    }

    /// `pmd-rxq-show`: every PMD's queues, with their packets and share of
    /// the cycles the PMD spent on its queues.
    pub(super) fn rxq_show(&self) -> Vec<RxqInfo> {
        let mut rows = Vec::new();
        let under = self
            .underlay
            .as_ref()
            .map(|u| (u.iface.clone(), &self.underlay_rxqs));
        let ports = self.ports.values().map(|p| (p.iface.clone(), &p.rxqs));
        for (iface, qs) in ports.chain(under) {
            for q in qs {
                rows.push(RxqInfo {
                    pmd: q.pmd,
                    core: self.pmds[q.pmd].core,
                    iface: iface.clone(),
                    queue: q.id,
                    pinned: q.pinned,
                    packets: q.stats.packets.get(),
                    cycles: q.stats.cycles.get(),
                    usage_pct: 0.0,
                    kernel_rx_dropped: q.stats.kernel_rx_dropped.get()
                        + q.stats.kernel_rx_ring_full.get(),
                    kernel_rx_invalid: q.stats.kernel_rx_invalid.get(),
                });
            }
        }
        let mut per_pmd = vec![0u64; self.pmds.len()];
        for r in &rows {
            per_pmd[r.pmd] += r.cycles;
        }
        for r in &mut rows {
            if per_pmd[r.pmd] > 0 {
                r.usage_pct = 100.0 * r.cycles as f64 / per_pmd[r.pmd] as f64;
            }
        }
        rows.sort_by(|a, b| (a.pmd, &a.iface, a.queue).cmp(&(b.pmd, &b.iface, b.queue)));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebalancing_puts_the_busiest_queues_apart_and_keeps_pinned_ones() {
        let q = |cycles, pinned| Load { cycles, pinned };
        // Two busy queues that round-robin had put on one PMD go apart; the
        // light ones join the less loaded PMD (800 + 10 < 900).
        let plan = plan_by_load(&[q(900, None), q(10, None), q(800, None), q(0, None)], 2);
        assert_eq!(plan, [0, 1, 1, 1]);
        // A pinned queue stays, and its PMD takes no other.
        let plan = plan_by_load(&[q(5, Some(1)), q(900, None), q(800, None)], 2);
        assert_eq!(plan, [1, 0, 0]);
        // Nothing measured yet: spread by count.
        assert_eq!(plan_by_load(&[q(0, None); 4], 2), [0, 1, 0, 1]);
    }

    #[test]
    fn auto_lb_moves_only_when_the_busiest_pmd_gains_enough() {
        let q = |cycles| Load {
            cycles,
            pinned: None,
        };
        // Two busy queues on PMD 0, two idle on PMD 1: moving one halves PMD 0.
        let loads = [q(500), q(500), q(0), q(0)];
        let plan = auto_lb_plan(&[0, 0, 1, 1], &loads, 2, 25).expect("rebalances");
        assert_ne!(plan[0], plan[1]);
        // Already even: nothing to gain.
        assert_eq!(auto_lb_plan(&[0, 1, 0, 1], &loads, 2, 25), None);
        // 600/400 -> 500/500 is a 17% gain: below a 25% threshold, above 10%.
        let loads = [q(300), q(300), q(200), q(200)];
        assert_eq!(auto_lb_plan(&[0, 0, 1, 1], &loads, 2, 25), None);
        assert!(auto_lb_plan(&[0, 0, 1, 1], &loads, 2, 10).is_some());
        // No load at all: nothing.
        assert_eq!(auto_lb_plan(&[0, 0], &[q(0), q(0)], 2, 0), None);
    }

    #[test]
    fn affinity_parses_and_refuses_what_is_not_queue_colon_core() {
        assert_eq!(parse_affinity("0:2, 1:3"), Ok(vec![(0, 2), (1, 3)]));
        assert_eq!(parse_affinity(""), Ok(vec![]));
        assert_eq!(format_affinity(&[(0, 2), (1, 3)]), "0:2,1:3");
        for bad in ["0", "x:1", "0:y", "0:1,0:2", "-1:0"] {
            assert!(parse_affinity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queues_go_round_robin_pinned_ones_to_their_core_and_pinned_pmds_are_isolated() {
        let cores = [Some(2), Some(3), Some(4)];
        let none = [false; 3];
        // Round-robin: four queues over three PMDs, the least loaded first.
        let mut load = vec![0; 3];
        let a = assign(4, &cores, &[], &none, &mut load).unwrap();
        assert_eq!(a.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1, 2, 0]);
        assert_eq!(load, [2, 1, 1]);
        // The next port starts where the load is lowest.
        let b = assign(2, &cores, &[], &none, &mut load).unwrap();
        assert_eq!(b.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2]);
        // Pinned: queue 1 to core 4 (PMD 2); PMD 2 then takes no unpinned queue.
        let mut load = vec![0; 3];
        let iso = [false, false, true];
        let c = assign(3, &cores, &[(1, 4)], &iso, &mut load).unwrap();
        assert_eq!(c, [(0, false), (2, true), (1, false)]);
        // Every PMD isolated: unpinned queues still get one.
        let mut load = vec![0; 3];
        let d = assign(2, &cores, &[(0, 2)], &[true; 3], &mut load).unwrap();
        assert_eq!(d, [(0, true), (1, false)]);
        // A core without a PMD, a queue the interface lacks.
        let mut load = vec![0; 3];
        let e = assign(2, &cores, &[(0, 7)], &none, &mut load).unwrap_err();
        assert!(e.contains("no PMD on core 7 (PMD cores: 2,3,4)"), "{e}");
        let e = assign(2, &cores, &[(5, 2)], &none, &mut load).unwrap_err();
        assert!(e.contains("queue 5 does not exist"), "{e}");
    }
}
