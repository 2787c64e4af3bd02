//! A priority classifier by tuple-space search, as in OVS: flows with the same set
//! of (field, mask) pairs share a hash table, so a lookup costs one hash probe per
//! distinct mask shape, not one comparison per flow. Subtables are visited in
//! order of their highest priority and the search stops once no remaining
//! subtable can beat the best match found.
//!
//! Staged lookup (OVS's `classifier.c`): a subtable's fields are ordered
//! metadata, L2, L3, L4, and each stage but the last keeps the set of its
//! rules' prefixes. A packet whose metadata or L2 prefix no rule has leaves
//! the subtable there, and the megaflow mask takes only the bits it looked
//! at: an ARP responder's `arp.tpa` or a DHCP flow's `udp.src` does not make
//! every packet that probes past it exact on those fields.

use crate::dp::flow::{FlowKey, Meta};
use crate::dp::mask::Wildcards;
use rustc_hash::{FxHashMap, FxHashSet};
use switchyard_southbound::Field;

/// Most fields one flow may match on.
pub const MAX_FIELDS: usize = switchyard_southbound::MAX_MATCH_FIELDS;

/// A rule's (or a packet's) values under a subtable's masks: the key of the
/// subtable's rule map. Its hash is written here, inlined into the lookup,
/// rather than through the array's generic `Hash` (a call per lookup where
/// the compiler does not inline it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Masked([u64; MAX_FIELDS]);

impl std::hash::Hash for Masked {
    #[inline(always)]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for &w in &self.0 {
            state.write_u64(w);
        }
    }
}

/// One step of the prefix hash of a subtable's staged lookup.
#[inline]
fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// Lookup stages: metadata (ports, registers, conntrack), L2, L3, L4.
const STAGES: usize = 4;

fn stage(f: Field) -> usize {
    match f {
        Field::Inport
        | Field::Outport
        | Field::Reg0
        | Field::Reg1
        | Field::Xxreg0Hi
        | Field::Xxreg0Lo
        | Field::CtState
        | Field::CtMark
        | Field::CtLabel => 0,
        Field::EthSrc | Field::EthDst | Field::EthType => 1,
        Field::Ip6SrcHi
        | Field::Ip6SrcLo
        | Field::Ip6DstHi
        | Field::Ip6DstLo
        | Field::Ip4Src
        | Field::Ip4Dst
        | Field::IpProto
        | Field::IpTtl
        | Field::ArpOp
        | Field::ArpSha
        | Field::ArpSpa
        | Field::ArpTpa => 2,
        Field::L4Src
        | Field::L4Dst
        | Field::NdTargetHi
        | Field::NdTargetLo
        | Field::NdSll
        | Field::NdTll => 3,
    }
}

#[derive(Debug)]
struct Subtable {
    /// Sorted by stage.
    fields: Vec<(Field, u64)>,
    /// Where each stage's fields end in `fields`, for the stages before the
    /// last one present (a stage check after it would be the rule lookup).
    stage_ends: Vec<usize>,
    /// Per entry of `stage_ends`: hashes ([`mix`]) of the rules' masked
    /// values up to there. A collision only makes a packet look further
    /// (more bits unwildcarded), never miss a rule.
    prefixes: Vec<FxHashSet<u64>>,
    /// The key bits a probe consults through each entry of `stage_ends`,
    /// then through the whole subtable (for megaflows).
    stage_wc: Vec<FlowKey>,
    wc: FlowKey,
    max_priority: u32,
    /// Masked values -> (priority, rule) sorted by priority, highest first.
    rules: FxHashMap<Masked, Vec<(u32, u32)>>,
}

/// Error when a flow cannot be added.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyFields(pub usize);

/// A set of rules `(priority, [(field, value, mask)])` identified by `u32` ids.
#[derive(Debug, Default)]
pub struct Classifier {
    subtables: Vec<Subtable>,
}

impl Classifier {
    /// Adds rule `id`. Rules with equal priority and overlapping matches are
    /// resolved by insertion order (first added wins), as northd never emits those.
    pub fn insert(
        &mut self,
        id: u32,
        priority: u32,
        matches: &[(Field, u64, u64)],
    ) -> Result<(), TooManyFields> {
        if matches.len() > MAX_FIELDS {
            return Err(TooManyFields(matches.len()));
        }
        let mut shape: Vec<(Field, u64)> = matches.iter().map(|(f, _, m)| (*f, *m)).collect();
        shape.sort_by_key(|&(f, m)| (stage(f), f, m));
        shape.dedup();
        let mut masked = [0u64; MAX_FIELDS];
        for (i, (f, m)) in shape.iter().enumerate() {
            // Combine all comparisons on the same field and mask (a conjunction).
            let v = matches
                .iter()
                .filter(|(g, _, mm)| g == f && mm == m)
                .fold(0, |a, (_, v, _)| a | v);
            masked[i] = v & m;
        }
        let n = shape.len();
        let st = match self.subtables.iter_mut().position(|s| s.fields == shape) {
            Some(i) => &mut self.subtables[i],
            None => {
                let mut wc = Wildcards::default();
                let mut stage_ends = Vec::new();
                let mut stage_wc = Vec::new();
                for (i, (f, m)) in shape.iter().enumerate() {
                    wc.field(*f, *m);
                    let ends_stage = shape
                        .get(i + 1)
                        .is_some_and(|(g, _)| stage(*g) != stage(*f));
                    if ends_stage {
                        stage_ends.push(i + 1);
                        stage_wc.push(wc.mask);
                    }
                }
                debug_assert!(stage_ends.len() < STAGES);
                self.subtables.push(Subtable {
                    prefixes: vec![FxHashSet::default(); stage_ends.len()],
                    stage_ends,
                    stage_wc,
                    wc: wc.mask,
                    fields: shape,
                    max_priority: 0,
                    rules: FxHashMap::default(),
                });
                self.subtables.last_mut().expect("just pushed")
            }
        };
        let mut h = 0;
        let mut from = 0;
        for (s, &end) in st.stage_ends.iter().enumerate() {
            h = masked[from..end].iter().fold(h, |h, &v| mix(h, v));
            from = end;
            st.prefixes[s].insert(h);
        }
        debug_assert!(n <= MAX_FIELDS);
        st.max_priority = st.max_priority.max(priority);
        let list = st.rules.entry(Masked(masked)).or_default();
        let pos = list
            .iter()
            .position(|(p, _)| *p < priority)
            .unwrap_or(list.len());
        list.insert(pos, (priority, id));
        Ok(())
    }

    /// Sorts subtables for lookup; call once after inserting.
    pub fn finish(&mut self) {
        self.subtables
            .sort_by_key(|s| std::cmp::Reverse(s.max_priority));
    }

    /// The highest-priority rule matching the packet.
    pub fn lookup(&self, key: &FlowKey, meta: &Meta) -> Option<u32> {
        self.lookup_wc(key, meta, &mut Wildcards::default())
    }

    /// [`Self::lookup`], adding to `wc` the bits of every subtable probed (as
    /// OVS does: a packet agreeing on those bits probes the same subtables
    /// with the same outcome, so it gets the same rule).
    #[inline]
    pub fn lookup_wc(&self, key: &FlowKey, meta: &Meta, wc: &mut Wildcards) -> Option<u32> {
        let mut best: Option<(u32, u32)> = None;
        for st in &self.subtables {
            if let Some((bp, _)) = best {
                if st.max_priority <= bp {
                    break;
                }
            }
            let mut masked = [0u64; MAX_FIELDS];
            let mut from = 0;
            let mut missed = false;
            let mut h = 0;
            for (s, &end) in st.stage_ends.iter().enumerate() {
                for (v, &(f, m)) in masked[from..end].iter_mut().zip(&st.fields[from..end]) {
                    *v = key.get(f, meta) & m;
                    h = mix(h, *v);
                }
                from = end;
                if !st.prefixes[s].contains(&h) {
                    // No rule here has this prefix: the later stages' bits
                    // were never looked at.
                    wc.or(&st.stage_wc[s]);
                    missed = true;
                    break;
                }
            }
            if missed {
                continue;
            }
            wc.or(&st.wc);
            for (v, &(f, m)) in masked[from..].iter_mut().zip(&st.fields[from..]) {
                *v = key.get(f, meta) & m;
            }
            if let Some(list) = st.rules.get(&Masked(masked)) {
                let (p, id) = list[0];
                if best.is_none_or(|(bp, _)| p > bp) {
                    best = Some((p, id));
                }
            }
        }
        best.map(|(_, id)| id)
    }

    /// Number of distinct mask shapes (a lookup costs at most this many probes).
    pub fn subtable_count(&self) -> usize {
        self.subtables.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_priority_wins_across_shapes() {
        let mut c = Classifier::default();
        c.insert(1, 0, &[]).unwrap();
        c.insert(2, 50, &[(Field::EthDst, 0xaa, 0xffff_ffff_ffff)])
            .unwrap();
        c.insert(3, 110, &[(Field::EthDst, 1 << 40, 1 << 40)])
            .unwrap();
        c.insert(
            4,
            90,
            &[
                (Field::EthDst, 0xaa, 0xffff_ffff_ffff),
                (Field::EthType, 0x800, 0xffff),
            ],
        )
        .unwrap();
        c.finish();
        let m = Meta::default();
        let mut k = FlowKey {
            eth_dst: 0xaa,
            ..Default::default()
        };
        assert_eq!(c.lookup(&k, &m), Some(2));
        k.eth_type = 0x800;
        assert_eq!(c.lookup(&k, &m), Some(4));
        k.eth_dst = 0xffff_ffff_ffff;
        assert_eq!(c.lookup(&k, &m), Some(3));
        k.eth_dst = 0xbb;
        assert_eq!(c.lookup(&k, &m), Some(1));
    }

    #[test]
    fn prefix_masks_and_metadata() {
        let mut c = Classifier::default();
        c.insert(
            7,
            10,
            &[
                (Field::Ip4Dst, 0x0a00_0000, 0xffff_ff00),
                (Field::Inport, 3, 0xffff_ffff),
            ],
        )
        .unwrap();
        c.finish();
        let k = FlowKey {
            ip_dst: 0x0a00_0042,
            ..Default::default()
        };
        assert_eq!(
            c.lookup(
                &k,
                &Meta {
                    inport: 3,
                    outport: 0,
                    ..Meta::default()
                }
            ),
            Some(7)
        );
        assert_eq!(
            c.lookup(
                &k,
                &Meta {
                    inport: 4,
                    outport: 0,
                    ..Meta::default()
                }
            ),
            None
        );
        assert_eq!(
            c.insert(8, 1, &[(Field::EthDst, 0, 0); 11]),
            Err(TooManyFields(11))
        );
    }
}
