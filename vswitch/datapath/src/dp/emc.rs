//! The per-PMD exact-match cache: flow key -> verdict, a fixed array of
//! two-way buckets sized once at start. Entries carry the table generation they
//! were computed under, so a table swap invalidates them all at no cost.

use crate::dp::flow::FlowKey;
use crate::dp::verdict::{Commit, Decision, Verdict};

/// Most output slots an entry stores inline; larger fan-outs are not cached.
pub const INLINE_OUTPUTS: usize = 6;

/// A cached decision.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub key: FlowKey,
    pub generation: u64,
    pub verdict: Verdict,
    /// Tunnel metadata for outputs to remote chassis (see [`crate::dp::pipeline`]).
    pub tun_md: u64,
    /// The connection commit that goes with the verdict (stateful datapaths).
    pub commit: Option<Commit>,
    pub n_out: u8,
    pub out: [u16; INLINE_OUTPUTS],
    pub hits: u64,
    /// Milliseconds since the cache was created, when the entry was installed.
    pub installed_ms: u64,
    hash: u32,
    valid: bool,
}

const EMPTY: Entry = Entry {
    key: FlowKey::ZERO,
    tun_md: 0,
    commit: None,
    generation: 0,
    verdict: Verdict::Output,
    n_out: 0,
    out: [0; INLINE_OUTPUTS],
    hits: 0,
    installed_ms: 0,
    hash: 0,
    valid: false,
};

/// The cache.
#[derive(Debug)]
pub struct Emc {
    entries: Box<[Entry]>,
    mask: usize,
    /// The time entries are installed at ([`Emc::tick`]).
    now_ms: u64,
}

impl Emc {
    /// A cache of `entries` (rounded up to a power of two, at least 2).
    pub fn new(entries: usize) -> Self {
        let n = entries.next_power_of_two().max(2);
        Emc {
            entries: vec![EMPTY; n].into_boxed_slice(),
            mask: n - 1,
            now_ms: 0,
        }
    }

    #[inline]
    fn slots(&self, hash: u32) -> (usize, usize) {
        let a = hash as usize & self.mask;
        let b = (hash.rotate_right(16) as usize) & self.mask;
        (a, if b == a { a ^ 1 } else { b })
    }

    /// Looks `key` up; counts the hit on the entry.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, hash: u32, generation: u64) -> Option<&Entry> {
        let (a, b) = self.slots(hash);
        for i in [a, b] {
            let e = &self.entries[i];
            if e.valid && e.hash == hash && e.generation == generation && e.key == *key {
                let e = &mut self.entries[i];
                e.hits += 1;
                return Some(e);
            }
        }
        None
    }

    /// Looks `key` up without counting a hit (traces).
    pub fn peek(&self, key: &FlowKey, hash: u32, generation: u64) -> Option<&Entry> {
        let (a, b) = self.slots(hash);
        [a, b]
            .into_iter()
            .map(|i| &self.entries[i])
            .find(|e| e.valid && e.hash == hash && e.generation == generation && e.key == *key)
    }

    /// Installs a verdict; returns false when it cannot be cached (fan-out too wide).
    #[inline]
    pub fn insert(
        &mut self,
        key: &FlowKey,
        hash: u32,
        generation: u64,
        d: &Decision,
        out: &[u16],
    ) -> bool {
        if out.len() > INLINE_OUTPUTS {
            return false;
        }
        let (a, b) = self.slots(hash);
        let ea = &self.entries[a];
        let eb = &self.entries[b];
        let same = |e: &Entry| e.valid && e.hash == hash && e.key == *key;
        // The key's own entry first (never two copies), then an invalid or stale
        // slot, else the one with fewer hits.
        let victim = if same(ea) {
            a
        } else if same(eb) {
            b
        } else if !ea.valid || ea.generation != generation {
            a
        } else if !eb.valid || eb.generation != generation || eb.hits < ea.hits {
            b
        } else {
            a
        };
        let mut e = Entry {
            key: *key,
            generation,
            verdict: d.verdict,
            tun_md: d.tun_md,
            commit: d.commit,
            n_out: out.len() as u8,
            out: [0; INLINE_OUTPUTS],
            hits: 0,
            installed_ms: self.now_ms,
            hash,
            valid: true,
        };
        e.out[..out.len()].copy_from_slice(out);
        self.entries[victim] = e;
        true
    }

    /// Valid entries of `generation` (for dumps).
    pub fn iter(&self, generation: u64) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |e| e.valid && e.generation == generation)
    }

    /// Sets the time the next entries are installed at (the PMD's clock,
    /// read once per batch).
    #[inline]
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// How long before `now_ms` an entry was installed, in milliseconds.
    pub fn age_ms(&self, e: &Entry, now_ms: u64) -> u64 {
        now_ms.saturating_sub(e.installed_ms)
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        for e in self.entries.iter_mut() {
            e.valid = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_southbound::DropReason;

    fn d(verdict: Verdict) -> Decision {
        Decision {
            verdict,
            tun_md: 0,
            commit: None,
        }
    }

    #[test]
    fn an_entry_ages_on_the_time_it_is_given_not_a_clock_of_its_own() {
        let mut c = Emc::new(8);
        let k = FlowKey {
            eth_dst: 5,
            ..Default::default()
        };
        c.tick(1_000);
        assert!(c.insert(&k, k.hash32(), 1, &d(Verdict::Output), &[3]));
        c.tick(9_000);
        let e = *c.lookup(&k, k.hash32(), 1).unwrap();
        assert_eq!(e.installed_ms, 1_000, "installed at the batch's time");
        assert_eq!(c.age_ms(&e, 1_500), 500);
        assert_eq!(c.age_ms(&e, 0), 0, "a time before install is age 0");
    }

    #[test]
    fn hit_miss_and_generation() {
        let mut c = Emc::new(64);
        let k = FlowKey {
            eth_dst: 5,
            ..Default::default()
        };
        let h = k.hash32();
        assert!(c.lookup(&k, h, 1).is_none());
        assert!(c.insert(&k, h, 1, &d(Verdict::Output), &[3, 4]));
        let e = c.lookup(&k, h, 1).unwrap();
        assert_eq!(&e.out[..e.n_out as usize], &[3, 4]);
        assert!(c.lookup(&k, h, 2).is_none(), "a table swap invalidates");
        let k2 = FlowKey { eth_dst: 6, ..k };
        assert!(c.lookup(&k2, k2.hash32(), 1).is_none());
        assert!(
            !c.insert(&k, h, 1, &d(Verdict::Output), &[1; 7]),
            "too wide to cache"
        );
        assert!(c.insert(
            &k,
            h,
            1,
            &d(Verdict::Drop(DropReason::PortSecurityMac)),
            &[]
        ));
        assert_eq!(
            c.lookup(&k, h, 1).unwrap().verdict,
            Verdict::Drop(DropReason::PortSecurityMac)
        );
    }
}
