//! The per-PMD megaflow cache, OVS's dpcls: between the exact-match cache and
//! the slow path. The slow path records which bits of the flow key it consulted
//! ([`Wildcards`], "unwildcarding"); the cache installs one entry that matches
//! those bits only, so every packet that agrees on them (every source port of a
//! connection burst, every client of a service) gets the same decision without
//! walking the pipeline. Entries with the same mask share a hash table
//! (tuple-space search, one probe per distinct mask); masks are tried most-hit
//! first.
//!
//! Sized once at start (fixed arrays, no allocation per packet). Entries carry
//! the table generation they were computed under: a table swap either
//! revalidates them ([`Megaflow::revalidate`]: each entry's slow path run again
//! on its masked key, kept when the decision and mask still hold) or drops them.

use crate::dp::emc::INLINE_OUTPUTS;
use crate::dp::flow::FlowKey;
pub use crate::dp::mask::{blend, masked, Wildcards};
use crate::dp::verdict::{Commit, Decision, Verdict};

/// Most distinct masks (a megaflow miss costs one probe per mask). Past it a
/// decision is not installed (counted as uncacheable).
pub const MAX_MASKS: usize = 64;
/// Slots probed from an entry's hash (linear probing window).
const WAYS: usize = 4;

/// A cached decision for every packet whose masked key is `key`.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The masked key (bits outside the mask are 0).
    pub key: FlowKey,
    /// Index of its mask ([`Megaflow::mask`]).
    pub mask: u8,
    pub generation: u64,
    pub verdict: Verdict,
    pub tun_md: u64,
    pub commit: Option<Commit>,
    pub n_out: u8,
    pub out: [u16; INLINE_OUTPUTS],
    pub hits: u64,
    /// Milliseconds since the cache was created: installed, last hit.
    pub installed_ms: u64,
    pub used_ms: u64,
    hash: u32,
    valid: bool,
}

const EMPTY: Entry = Entry {
    key: FlowKey::ZERO,
    mask: 0,
    generation: 0,
    verdict: Verdict::Output,
    tun_md: 0,
    commit: None,
    n_out: 0,
    out: [0; INLINE_OUTPUTS],
    hits: 0,
    installed_ms: 0,
    used_ms: 0,
    hash: 0,
    valid: false,
};

/// Why a decision was not installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotInstalled {
    /// More output ports than an entry stores.
    FanOut,
    /// [`MAX_MASKS`] distinct masks already.
    Masks,
}

/// What a table swap did to the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Revalidated {
    pub kept: usize,
    pub dropped: usize,
}

/// The cache.
#[derive(Debug)]
pub struct Megaflow {
    entries: Box<[Entry]>,
    index_mask: usize,
    masks: Vec<FlowKey>,
    /// Hits per mask since the last [`Megaflow::sort_masks`].
    mask_hits: [u64; MAX_MASKS],
    /// Mask indices in lookup order (most hit first).
    order: Vec<u8>,
    /// The generation `masks` belong to.
    generation: u64,
    seed: u64,
}

impl Megaflow {
    /// A cache of `entries` (rounded up to a power of two, at least `WAYS`);
    /// `seed` keys the hash so a sender cannot choose colliding keys.
    pub fn new(entries: usize, seed: u64) -> Self {
        let n = entries.next_power_of_two().max(WAYS);
        Megaflow {
            entries: vec![EMPTY; n].into_boxed_slice(),
            index_mask: n - 1,
            masks: Vec::with_capacity(MAX_MASKS),
            mask_hits: [0; MAX_MASKS],
            order: Vec::with_capacity(MAX_MASKS),
            generation: 0,
            seed,
        }
    }

    /// The hash of a masked key (not of its mask: entries keep their place
    /// when masks are renumbered).
    #[inline]
    fn hash(&self, k: &FlowKey) -> u32 {
        k.hash32_seeded(self.seed)
    }

    /// Forgets every mask when the tables changed without a revalidation.
    #[inline]
    pub fn sync(&mut self, generation: u64) {
        if generation != self.generation {
            self.masks.clear();
            self.order.clear();
            self.mask_hits = [0; MAX_MASKS];
            self.generation = generation;
        }
    }

    /// The entry covering `key`; counts the hit and its time.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, now_ms: u64) -> Option<&Entry> {
        for oi in 0..self.order.len() {
            let mi = usize::from(self.order[oi]);
            let k = masked(key, &self.masks[mi]);
            let h = self.hash(&k);
            let base = h as usize;
            for w in 0..WAYS {
                let i = (base + w) & self.index_mask;
                let e = &self.entries[i];
                if e.valid
                    && e.hash == h
                    && usize::from(e.mask) == mi
                    && e.generation == self.generation
                    && e.key == k
                {
                    self.mask_hits[mi] += 1;
                    let e = &mut self.entries[i];
                    e.hits += 1;
                    e.used_ms = now_ms;
                    return Some(e);
                }
            }
        }
        None
    }

    /// The entry covering `key`, without counting (traces).
    pub fn peek(&self, key: &FlowKey) -> Option<(&Entry, &FlowKey)> {
        self.order.iter().find_map(|&mi| {
            let mi = usize::from(mi);
            let k = masked(key, &self.masks[mi]);
            let h = self.hash(&k);
            (0..WAYS)
                .map(|w| &self.entries[(h as usize + w) & self.index_mask])
                .find(|e| {
                    e.valid
                        && e.hash == h
                        && usize::from(e.mask) == mi
                        && e.generation == self.generation
                        && e.key == k
                })
                .map(|e| (e, &self.masks[mi]))
        })
    }

    /// Installs the slow path's decision for every packet agreeing with `key`
    /// on the bits of `wc`.
    pub fn insert(
        &mut self,
        key: &FlowKey,
        wc: &Wildcards,
        d: &Decision,
        out: &[u16],
        now_ms: u64,
    ) -> Result<(), NotInstalled> {
        if out.len() > INLINE_OUTPUTS {
            return Err(NotInstalled::FanOut);
        }
        let mi = match self.masks.iter().position(|m| *m == wc.mask) {
            Some(i) => i,
            None if self.masks.len() < MAX_MASKS => {
                self.masks.push(wc.mask);
                self.order.push((self.masks.len() - 1) as u8);
                self.masks.len() - 1
            }
            None => return Err(NotInstalled::Masks),
        };
        let k = masked(key, &wc.mask);
        let h = self.hash(&k);
        let generation = self.generation;
        let slot = |w: usize| (h as usize + w) & self.index_mask;
        let same = |e: &Entry| e.valid && e.hash == h && usize::from(e.mask) == mi && e.key == k;
        let free = |e: &Entry| !e.valid || e.generation != generation;
        let victim = (0..WAYS)
            .map(slot)
            .find(|&i| same(&self.entries[i]))
            .or_else(|| (0..WAYS).map(slot).find(|&i| free(&self.entries[i])))
            .unwrap_or_else(|| {
                (0..WAYS)
                    .map(slot)
                    .min_by_key(|&i| self.entries[i].hits)
                    .expect("WAYS > 0")
            });
        let mut e = Entry {
            key: k,
            mask: mi as u8,
            generation,
            verdict: d.verdict,
            tun_md: d.tun_md,
            commit: d.commit,
            n_out: out.len() as u8,
            out: [0; INLINE_OUTPUTS],
            hits: 0,
            installed_ms: now_ms,
            used_ms: now_ms,
            hash: h,
            valid: true,
        };
        e.out[..out.len()].copy_from_slice(out);
        self.entries[victim] = e;
        Ok(())
    }

    /// Orders masks by their hits since the last call, most first, and
    /// starts counting again (housekeeping).
    pub fn sort_masks(&mut self) {
        let hits = self.mask_hits;
        self.order
            .sort_by_key(|&mi| std::cmp::Reverse(hits[usize::from(mi)]));
        self.mask_hits = [0; MAX_MASKS];
    }

    /// The mask an entry matches with.
    pub fn mask(&self, e: &Entry) -> &FlowKey {
        &self.masks[usize::from(e.mask)]
    }

    /// Number of masks in use.
    pub fn mask_count(&self) -> usize {
        self.masks.len()
    }

    /// Valid entries (for dumps).
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        let g = self.generation;
        self.entries
            .iter()
            .filter(move |e| e.valid && e.generation == g)
    }

    /// Number of valid entries.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no entry is valid.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Moves the cache to `generation` keeping what still holds: each entry's
    /// masked key runs through `slow` (the new tables' slow path); the entry
    /// stays when the decision and output list are the same and the new walk
    /// consulted no bit outside the entry's mask (then every packet the entry
    /// covers would get that decision too). At most `budget` entries are
    /// checked; with more, the cache is dropped instead (a PMD must not stall).
    pub fn revalidate(
        &mut self,
        generation: u64,
        budget: usize,
        mut slow: impl FnMut(&FlowKey, &mut Vec<u16>, &mut Wildcards) -> Decision,
        out: &mut Vec<u16>,
    ) -> Revalidated {
        let mut r = Revalidated::default();
        let live = self.len();
        if generation == self.generation {
            return r;
        }
        if live > budget {
            r.dropped = live;
            self.sync(generation);
            return r;
        }
        let old = self.generation;
        for i in 0..self.entries.len() {
            let e = self.entries[i];
            if !e.valid || e.generation != old {
                continue;
            }
            let mask = self.masks[usize::from(e.mask)];
            let mut wc = Wildcards::default();
            out.clear();
            let d = slow(&e.key, out, &mut wc);
            let same = d.verdict == e.verdict
                && d.tun_md == e.tun_md
                && d.commit == e.commit
                && out[..] == e.out[..usize::from(e.n_out)];
            let covered = Wildcards { mask, wrote: false }.covers(&wc.mask);
            if same && covered {
                self.entries[i].generation = generation;
                r.kept += 1;
            } else {
                self.entries[i].valid = false;
                r.dropped += 1;
            }
        }
        self.generation = generation;
        self.drop_unused_masks();
        r
    }

    /// Removes masks no live entry uses (each costs a probe per lookup),
    /// renumbering the entries' mask indices.
    fn drop_unused_masks(&mut self) {
        let g = self.generation;
        let mut used = [false; MAX_MASKS];
        for e in self.entries.iter().filter(|e| e.valid && e.generation == g) {
            used[usize::from(e.mask)] = true;
        }
        let mut remap = [0u8; MAX_MASKS];
        let mut n = 0;
        for mi in 0..self.masks.len() {
            if used[mi] {
                self.masks[n] = self.masks[mi];
                self.mask_hits[n] = self.mask_hits[mi];
                remap[mi] = n as u8;
                n += 1;
            }
        }
        self.masks.truncate(n);
        self.mask_hits[n..].fill(0);
        self.order.retain(|&mi| used[usize::from(mi)]);
        for mi in self.order.iter_mut() {
            *mi = remap[usize::from(*mi)];
        }
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.valid && e.generation == g)
        {
            e.mask = remap[usize::from(e.mask)];
        }
    }
}

#[cfg(test)]
mod tests;
