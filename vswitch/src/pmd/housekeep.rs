//! The PMD's work between batches: picking up a new table set (megaflow
//! revalidation, conntrack zone changes) and housekeeping (expiry, counters,
//! mask order), run about once a millisecond rather than every pass.

use super::*;

/// Retired table sets a PMD holds while the agent's queue is full.
pub(super) const HELD_RETIRED: usize = 8;

impl Pmd {
    /// Runs [`Self::housekeep`] when [`HOUSEKEEP_INTERVAL`] has passed (the
    /// clock is read every [`HOUSEKEEP_CHECK_EVERY`] passes); the PMD loop
    /// calls this every pass.
    #[inline]
    pub fn housekeep_if_due(&mut self) {
        self.passes += 1;
        if self.passes < HOUSEKEEP_CHECK_EVERY {
            return;
        }
        self.passes = 0;
        let now = std::time::Instant::now();
        if now.duration_since(self.last_housekeep) >= HOUSEKEEP_INTERVAL {
            self.last_housekeep = now;
            self.housekeep();
        }
    }

    /// Expires connections and mirrors conntrack counters (between batches);
    /// every [`MASK_SORT_EVERY`] calls, puts the most-hit megaflow masks first.
    pub fn housekeep(&mut self) {
        if self.edge_keeper {
            let now = self.clock.now_ms();
            lock(&self.edge).housekeep(&self.tables, &self.stats, EXPIRE_BUDGET, now);
        }
        let stats = &self.stats;
        for p in self.ports.iter_mut().flatten() {
            p.io.take_rx_drops(&mut |r, n| stats.count_drops(r, n));
        }
        self.housekeeps = self.housekeeps.wrapping_add(1);
        if self.housekeeps.is_multiple_of(MASK_SORT_EVERY) {
            self.megaflow.sort_masks();
            self.stats
                .megaflow_masks
                .set(self.megaflow.mask_count() as u64);
        }
    }

    /// Picks up a newer table set if one was published. Conntrack zones the
    /// new set no longer has (a deleted switch or router, a topology whose
    /// stateful zone changed) are flushed, NAT bindings included, so a
    /// datapath key reused later starts clean.
    #[inline]
    pub fn refresh_tables(&mut self) {
        let cur = self.shared.tables.load();
        if cur.generation != self.tables.generation {
            let old = std::mem::replace(&mut self.tables, arc_swap::Guard::into_inner(cur));
            // The keeper PMD applies zone changes to the shared state.
            if self.edge_keeper {
                let mut edge = lock(&self.edge);
                if !edge.ct.is_empty() && self.tables.lost_zones(&old) {
                    // Rare (a datapath went away): one pass over the table.
                    let t = &self.tables;
                    edge.ct.flush_if(|z| !t.has_zone(z));
                }
                if self.tables.ct_zone_limits != old.ct_zone_limits {
                    // Rare (an operator changed a limit): counts a pass over the table.
                    edge.ct.set_zone_limits(&self.tables.ct_zone_limits);
                }
            }
            // Megaflows that still hold under the new tables stay (a learned
            // MAC binding does not cost every flow a slow-path walk).
            let t = self.tables.clone();
            let mut out = std::mem::take(&mut self.out);
            let r = self.megaflow.revalidate(
                t.generation,
                REVALIDATE_BUDGET,
                |k, out, wc| run_wc(&t, k, out, wc),
                &mut out,
            );
            self.out = out;
            self.stats.megaflow_kept.add(r.kept as u64);
            self.stats.megaflow_dropped.add(r.dropped as u64);
            self.stats
                .megaflow_masks
                .set(self.megaflow.mask_count() as u64);
            // Freed by the agent, off the fast path; a full queue (the agent
            // is behind) keeps it here until there is room.
            self.retire(old);
            if let Some(a) = self.shared.adopted.get(self.id) {
                a.store(self.tables.generation, std::sync::atomic::Ordering::Release);
            }
        }
    }

    /// Hands a retired table set to the agent; while its queue is full the
    /// set waits here (a few, preallocated) rather than being freed on the PMD.
    fn retire(&mut self, old: Arc<Tables>) {
        while let Some(h) = self.held_retired.pop() {
            if let Err(h) = self.shared.retired.push(h) {
                self.held_retired.push(h);
                break;
            }
        }
        if let Err(old) = self.shared.retired.push(old) {
            if self.held_retired.len() < HELD_RETIRED {
                self.held_retired.push(old);
            } else {
                // The agent has not run for eight table changes: free here.
                drop(old);
            }
        }
    }
}
