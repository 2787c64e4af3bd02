//! Mask arithmetic over the flow key, and what the slow path consulted of a
//! packet ([`Wildcards`]): the megaflow cache and the classifier both use it.

use crate::dp::flow::FlowKey;
use switchyard_southbound::Field;

/// Word by word over two keys.
#[inline]
pub(crate) fn zip(a: &FlowKey, b: &FlowKey, f: impl Fn(u64, u64) -> u64) -> FlowKey {
    let (a, b) = (a.words(), b.words());
    FlowKey::from_words(std::array::from_fn(|i| f(a[i], b[i])))
}

/// `k` with only the bits of `m` kept.
#[inline]
pub fn masked(k: &FlowKey, m: &FlowKey) -> FlowKey {
    zip(k, m, |x, y| x & y)
}

/// `a`'s bits where `m` is set, `b`'s elsewhere (tests build packets a
/// megaflow must cover with it).
pub fn blend(a: &FlowKey, m: &FlowKey, b: &FlowKey) -> FlowKey {
    let outside = zip(b, m, |x, y| x & !y);
    zip(&masked(a, m), &outside, |x, y| x | y)
}

/// What the slow path consulted of one packet: a mask over the flow key (a bit
/// set: the decision depends on it), and whether the walk rewrote headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wildcards {
    pub mask: FlowKey,
    /// The walk wrote eth.src, eth.dst or the TTL (the verdict's rewrite is
    /// then computed from the packet's own values: those become exact).
    pub wrote: bool,
}

impl Wildcards {
    /// Marks the bits `m` of field `f` consulted. Logical metadata (ports,
    /// registers) is derived from consulted bits and needs no bits of its own.
    #[inline]
    pub fn field(&mut self, f: Field, m: u64) {
        let k = &mut self.mask;
        match f {
            Field::EthSrc => k.eth_src |= m,
            Field::EthDst => k.eth_dst |= m,
            Field::EthType => k.eth_type |= m as u16,
            Field::Ip4Src | Field::ArpSpa => k.ip_src |= m as u32,
            Field::Ip4Dst | Field::ArpTpa => k.ip_dst |= m as u32,
            Field::IpProto => k.ip_proto |= m as u8,
            Field::IpTtl => k.ip_ttl |= m as u8,
            Field::ArpOp => k.arp_op |= m as u8,
            Field::ArpSha | Field::NdSll | Field::NdTll => k.arp_sha |= m,
            Field::Ip6SrcHi => k.ip6_src[0] |= m,
            Field::Ip6SrcLo => k.ip6_src[1] |= m,
            Field::Ip6DstHi => k.ip6_dst[0] |= m,
            Field::Ip6DstLo => k.ip6_dst[1] |= m,
            Field::NdTargetHi => k.nd_target[0] |= m,
            Field::NdTargetLo => k.nd_target[1] |= m,
            Field::L4Src => k.l4_src |= m as u16,
            Field::L4Dst => k.l4_dst |= m as u16,
            Field::CtState => k.ct_state |= m as u8,
            Field::CtMark => k.ct_mark |= m as u32,
            Field::CtLabel => k.ct_label |= m as u32,
            Field::Inport
            | Field::Outport
            | Field::Reg0
            | Field::Reg1
            | Field::Xxreg0Hi
            | Field::Xxreg0Lo => {}
        }
    }

    /// Marks every bit of `f` consulted.
    #[inline]
    pub fn exact(&mut self, f: Field) {
        self.field(f, u64::MAX);
    }

    /// Adds the bits of another mask.
    #[inline]
    pub fn or(&mut self, m: &FlowKey) {
        self.mask = zip(&self.mask, m, |x, y| x | y);
    }

    /// Whether every bit of `other` is in this mask.
    pub fn covers(&self, other: &FlowKey) -> bool {
        zip(other, &self.mask, |x, y| x & !y) == FlowKey::ZERO
    }
}
