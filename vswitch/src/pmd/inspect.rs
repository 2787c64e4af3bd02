//! What the control socket reads of a PMD: traces through its live tables
//! and caches, and dumps of both cache levels.

use super::Pmd;
use crate::dp::flow::FlowKey;
use crate::dp::pipeline::{run, TraceStep, Verdict};

impl Pmd {
    /// Runs a packet through this PMD's live tables without transmitting it, and
    /// says which cache level would answer and whether its verdict agrees.
    pub fn trace(&self, key: &FlowKey, chassis: &str) -> crate::inspect::trace::TraceReport {
        let mut out = Vec::new();
        let mut steps: Vec<TraceStep> = Vec::new();
        // Conntrack at the edge first (load balancer, NAT), read-only.
        let e = self.edge();
        let edge = crate::ct::edge::preview(&self.tables, &e, key);
        let mut key = edge.as_ref().map(|(_, k)| *k).unwrap_or(*key);
        let tracked = crate::ct::edge::peek_track(&self.tables, &e, &mut key);
        drop(e);
        let key = &key;
        let v = run(&self.tables, key, &mut out, Some(&mut steps));
        let mut r = crate::inspect::trace::report(&self.tables, key, v, &out, steps, |_| {
            chassis.to_string()
        });
        if v == Verdict::Punt {
            r.generated =
                crate::inspect::trace::follow_generated(&self.tables, key, |_| chassis.to_string())
                    .map(Box::new);
        }
        r.conntrack = crate::inspect::trace::join_ct(edge.map(|(d, _)| d), tracked);
        if let Verdict::Dns(dp) = v {
            let (mut s, mut o) = (Vec::new(), Vec::new());
            r.dns = Some(
                crate::inspect::trace::dns_outcome(&self.tables, key, dp, None, &mut s, &mut o).1,
            );
            r.verdict = "dns_lookup".into();
        }
        let cached = self
            .emc
            .peek(key, key.hash32_seeded(self.seed), self.tables.generation);
        r.cache = Some(match cached {
            Some(e) if e.verdict == v && e.out[..usize::from(e.n_out)] == out[..] => {
                format!("exact-match cache hit ({} hits)", e.hits)
            }
            Some(e) => format!(
                "exact-match cache hit with a DIFFERENT verdict {:?} -> {:?}",
                e.verdict,
                &e.out[..usize::from(e.n_out)]
            ),
            None => match self.megaflow.peek(key) {
                Some((e, _)) if e.verdict == v && e.out[..usize::from(e.n_out)] == out[..] => {
                    format!("exact-match cache miss, megaflow hit ({} hits)", e.hits)
                }
                Some((e, _)) => format!(
                    "megaflow hit with a DIFFERENT verdict {:?} -> {:?}",
                    e.verdict,
                    &e.out[..usize::from(e.n_out)]
                ),
                None => {
                    "exact-match cache and megaflow miss: slow path (the result would be installed)"
                        .into()
                }
            },
        });
        r
    }

    /// The slow-path verdict for a key, without trace or transmit (benches).
    pub fn trace_verdict(&self, key: &FlowKey) -> Verdict {
        let mut out = Vec::new();
        run(&self.tables, key, &mut out, None)
    }

    /// A copy of both caches' live entries (`dp-flows`; formatted off the PMD).
    pub fn cache_dump(&self) -> super::CacheDump {
        super::CacheDump {
            megaflows: self
                .megaflow
                .iter()
                .map(|e| (*e, *self.megaflow.mask(e)))
                .collect(),
            now_ms: self.clock.now_ms(),
            exact: self.emc_entries(),
        }
    }

    /// Cache entries of the current generation with their age in ms (for dumps).
    pub fn emc_entries(&self) -> Vec<(crate::dp::emc::Entry, u64)> {
        let now = self.clock.now_ms();
        self.emc
            .iter(self.tables.generation)
            .map(|e| (*e, self.emc.age_ms(e, now)))
            .collect()
    }
}
