//! The flow key: every header field the pipeline can match on, extracted once per
//! packet and used as the exact-match cache key. Layout is fixed-size and
//! allocation-free; ARP's spa/tpa share the IPv4 address slots, and ND's
//! source/target link-layer address shares ARP's sha, as in OVS. IPv6
//! addresses are two words each (high half first, both big-endian), so the
//! classifier's 64-bit fields cover them as two subfields.

use switchyard_southbound::Field;

/// Header fields of one packet plus its input port slot.
#[derive(Clone, Copy, Debug, Default, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct FlowKey {
    pub eth_src: u64,
    pub eth_dst: u64,
    /// ARP sender hardware address (0 for non-ARP).
    pub arp_sha: u64,
    pub ip_src: u32,
    pub ip_dst: u32,
    pub in_port: u16,
    pub eth_type: u16,
    pub vlan_tci: u16,
    pub l4_src: u16,
    pub l4_dst: u16,
    pub ip_proto: u8,
    pub ip_ttl: u8,
    pub arp_op: u8,
    /// [`FRAG_NONE`], [`FRAG_FIRST`] (L4 header here, more to come) or
    /// [`FRAG_LATER`] (no L4 header).
    pub ip_frag: u8,
    /// Conntrack's verdict on the packet (`ct_state` bits; 0: not tracked);
    /// with `ct_mark` and `ct_label`, on datapaths whose flows match them.
    pub ct_state: u8,
    /// Flags of the pipeline's working copy ([`WORK_COMMIT`],
    /// [`WORK_ANSWER_PASSED`]); 0 in a parsed key.
    pub ct_commit: u8,
    /// Tunnel metadata of a decapsulated packet ([`pack_tunnel`]); 0 otherwise.
    pub tun: u64,
    /// The connection's mark and label.
    pub ct_mark: u32,
    pub ct_label: u32,
    /// IPv6 source and destination (0 for other packets).
    pub ip6_src: [u64; 2],
    pub ip6_dst: [u64; 2],
    /// The target address of a neighbor solicitation or advertisement.
    pub nd_target: [u64; 2],
}

/// Equality word by word: 14 compares the compiler can merge, where the
/// derived field-by-field form costs one branch per field.
impl PartialEq for FlowKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.words() == other.words()
    }
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.words().hash(state)
    }
}

/// How many 64-bit words the key is.
pub const KEY_WORDS: usize = 14;

/// Set in the working copy by `ct_commit`.
pub const WORK_COMMIT: u8 = 1;
/// Set by the PMD on a DNS query or DHCP message the datapath did not
/// answer: `dns_lookup` and `dhcp_reply` are then `next`, and the packet
/// goes on to where it was sent.
pub const WORK_ANSWER_PASSED: u8 = 2;

/// `ip_frag` of a packet that is not a fragment.
pub const FRAG_NONE: u8 = 0;
/// `ip_frag` of a later IPv4 fragment (offset > 0: no L4 header).
pub const FRAG_LATER: u8 = 1;
/// `ip_frag` of a first fragment (offset 0, more fragments: ports are here).
pub const FRAG_FIRST: u8 = 2;

/// Tunnel metadata as one word: datapath key, ingress and egress port keys.
#[inline]
pub fn pack_tunnel(dp: u32, ingress: u16, egress: u16) -> u64 {
    u64::from(dp) << 32 | u64::from(ingress) << 16 | u64::from(egress)
}

/// The inverse of [`pack_tunnel`].
#[inline]
pub fn unpack_tunnel(t: u64) -> (u32, u16, u16) {
    ((t >> 32) as u32, (t >> 16) as u16, t as u16)
}

/// Logical metadata the pipeline sets while a packet crosses it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub inport: u32,
    pub outport: u32,
    /// Router registers: reg0 = nexthop IP, reg1 = the router port's IP;
    /// for IPv6, xxreg0 and xxreg1 (as `FlowKey` words).
    pub reg0: u32,
    pub reg1: u32,
    pub xxreg0: [u64; 2],
    pub xxreg1: [u64; 2],
}

impl FlowKey {
    /// Every field 0 (the `Default`, usable in constants).
    pub const ZERO: FlowKey = FlowKey {
        eth_src: 0,
        eth_dst: 0,
        arp_sha: 0,
        ip_src: 0,
        ip_dst: 0,
        in_port: 0,
        eth_type: 0,
        vlan_tci: 0,
        l4_src: 0,
        l4_dst: 0,
        ip_proto: 0,
        ip_ttl: 0,
        arp_op: 0,
        ip_frag: 0,
        ct_state: 0,
        ct_commit: 0,
        tun: 0,
        ct_mark: 0,
        ct_label: 0,
        ip6_src: [0; 2],
        ip6_dst: [0; 2],
        nd_target: [0; 2],
    };

    /// The key as [`KEY_WORDS`] words (the megaflow cache masks and compares it so;
    /// `Pod` proves at compile time the layout has no padding).
    #[inline]
    pub fn words(&self) -> &[u64; KEY_WORDS] {
        bytemuck::cast_ref(self)
    }

    /// The inverse of [`Self::words`].
    #[inline]
    pub fn from_words(w: [u64; KEY_WORDS]) -> FlowKey {
        bytemuck::cast(w)
    }

    /// Value of a field for classification.
    #[inline]
    pub fn get(&self, f: Field, meta: &Meta) -> u64 {
        match f {
            Field::Inport => meta.inport.into(),
            Field::Outport => meta.outport.into(),
            Field::EthSrc => self.eth_src,
            Field::EthDst => self.eth_dst,
            Field::EthType => self.eth_type.into(),
            Field::Ip4Src | Field::ArpSpa => self.ip_src.into(),
            Field::Ip6SrcHi => self.ip6_src[0],
            Field::Ip6SrcLo => self.ip6_src[1],
            Field::Ip6DstHi => self.ip6_dst[0],
            Field::Ip6DstLo => self.ip6_dst[1],
            Field::NdTargetHi => self.nd_target[0],
            Field::NdTargetLo => self.nd_target[1],
            Field::Ip4Dst | Field::ArpTpa => self.ip_dst.into(),
            Field::IpProto => self.ip_proto.into(),
            Field::IpTtl => self.ip_ttl.into(),
            Field::ArpOp => self.arp_op.into(),
            Field::ArpSha | Field::NdSll | Field::NdTll => self.arp_sha,
            Field::L4Src => self.l4_src.into(),
            Field::L4Dst => self.l4_dst.into(),
            Field::Reg0 => meta.reg0.into(),
            Field::Reg1 => meta.reg1.into(),
            Field::Xxreg0Hi => meta.xxreg0[0],
            Field::Xxreg0Lo => meta.xxreg0[1],
            Field::CtState => self.ct_state.into(),
            Field::CtMark => self.ct_mark.into(),
            Field::CtLabel => self.ct_label.into(),
        }
    }

    /// A fast hash of the key (FxHash-style multiply-mix over the key's words;
    /// the key is plain data with no padding bytes read), unkeyed.
    #[inline]
    pub fn hash32(&self) -> u32 {
        self.hash32_seeded(0)
    }

    /// [`Self::hash32`] started from `seed`: the exact-match cache uses a
    /// per-process random seed, so a sender cannot choose keys that collide.
    #[inline]
    pub fn hash32_seeded(&self, seed: u64) -> u32 {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = seed;
        for w in [
            self.eth_src,
            self.eth_dst,
            self.arp_sha,
            u64::from(self.ip_src) << 32 | u64::from(self.ip_dst),
            u64::from(self.in_port) << 48
                | u64::from(self.eth_type) << 32
                | u64::from(self.vlan_tci) << 16
                | u64::from(self.l4_src),
            u64::from(self.ct_state) << 48
                | u64::from(self.l4_dst) << 32
                | u64::from(self.ip_proto) << 24
                | u64::from(self.ip_ttl) << 16
                | u64::from(self.arp_op) << 8
                | u64::from(self.ip_frag),
            self.tun,
            u64::from(self.ct_mark) << 32 | u64::from(self.ct_label),
        ] {
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        // The IPv6 words only where they can be set: an IPv4 or ARP packet
        // pays no more than before (its IPv6 words are all 0).
        if self.eth_type == 0x86dd {
            for w in self
                .ip6_src
                .iter()
                .chain(&self.ip6_dst)
                .chain(&self.nd_target)
            {
                h = (h.rotate_left(5) ^ w).wrapping_mul(K);
            }
        }
        (h >> 32) as u32 ^ h as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_fourteen_words() {
        // The exact-match cache hashes and compares the whole key per packet.
        assert_eq!(std::mem::size_of::<FlowKey>(), KEY_WORDS * 8);
        let k = FlowKey::default();
        let with = |f: fn(&mut FlowKey)| {
            let mut x = k;
            f(&mut x);
            x.hash32()
        };
        // Every field takes part in the hash.
        assert_ne!(with(|x| x.ct_state = 1), k.hash32());
        assert_ne!(with(|x| x.ct_mark = 1), k.hash32());
        assert_ne!(with(|x| x.ct_label = 1), k.hash32());
        assert_ne!(with(|x| x.l4_dst = 1), k.hash32());
        let v6 = FlowKey {
            eth_type: 0x86dd,
            ..k
        };
        for i in 0..2 {
            for f in [
                |x: &mut FlowKey, i: usize| x.ip6_src[i] = 1,
                |x: &mut FlowKey, i: usize| x.ip6_dst[i] = 1,
                |x: &mut FlowKey, i: usize| x.nd_target[i] = 1,
            ] {
                let mut x = v6;
                f(&mut x, i);
                assert_ne!(x.hash32(), v6.hash32());
            }
        }
        assert_ne!(k.hash32_seeded(1), k.hash32_seeded(2), "the seed counts");
    }
}
