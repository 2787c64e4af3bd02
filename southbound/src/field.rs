//! The packet fields a logical flow can match on, and the reasons a datapath drops
//! a packet. Both are closed vocabularies shared by northd, vswitchd and syctl.

macro_rules! named_enum {
    ($(#[$m:meta])* $ty:ident { $($variant:ident => $name:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $ty { $($variant,)* }

        impl $ty {
            /// Every value, in declaration order (the index is `self as usize`).
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)*];
            /// How many values there are.
            pub const COUNT: usize = [$($name,)*].len();
            /// The stable name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name,)* }
            }
            /// Parses a stable name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some($ty::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// A matchable field of the flow key.
    Field {
        Inport => "inport",
        Outport => "outport",
        EthSrc => "eth.src",
        EthDst => "eth.dst",
        EthType => "eth.type",
        Ip4Src => "ip4.src",
        Ip4Dst => "ip4.dst",
        IpProto => "ip.proto",
        IpTtl => "ip.ttl",
        ArpOp => "arp.op",
        ArpSha => "arp.sha",
        ArpSpa => "arp.spa",
        ArpTpa => "arp.tpa",
        L4Src => "l4.src",
        L4Dst => "l4.dst",
        Reg0 => "reg0",
        Reg1 => "reg1",
        CtState => "ct_state",
        CtMark => "ct_mark",
        CtLabel => "ct_label",
        Ip6SrcHi => "ip6.src[64..127]",
        Ip6SrcLo => "ip6.src[0..63]",
        Ip6DstHi => "ip6.dst[64..127]",
        Ip6DstLo => "ip6.dst[0..63]",
        NdTargetHi => "nd.target[64..127]",
        NdTargetLo => "nd.target[0..63]",
        NdSll => "nd.sll",
        NdTll => "nd.tll",
        Xxreg0Hi => "xxreg0[64..127]",
        Xxreg0Lo => "xxreg0[0..63]",
    }
}

/// `ct_state` bits, as OVN's matches name them (`ct.new` is `ct_state & NEW`).
/// A packet no connection tracker looked at has `ct_state == 0`.
pub mod ct {
    pub const NEW: u8 = 1;
    pub const EST: u8 = 2;
    pub const REL: u8 = 4;
    pub const RPL: u8 = 8;
    pub const INV: u8 = 16;
    pub const TRK: u8 = 32;
    /// (bit, name) in display order.
    pub const NAMES: [(u8, &str); 6] = [
        (TRK, "trk"),
        (NEW, "new"),
        (EST, "est"),
        (REL, "rel"),
        (RPL, "rpl"),
        (INV, "inv"),
    ];

    /// `+trk+est-new`: the bits of `mask` set (+) or clear (-) in `value`.
    pub fn flags_text(value: u8, mask: u8) -> String {
        let mut s = String::new();
        for (bit, name) in NAMES {
            if mask & bit != 0 {
                s.push(if value & bit != 0 { '+' } else { '-' });
                s.push_str(name);
            }
        }
        s
    }

    /// Parses [`flags_text`]'s form into (value, mask).
    pub fn parse_flags(s: &str) -> Option<(u8, u8)> {
        let (mut value, mut mask) = (0u8, 0u8);
        let mut rest = s.trim();
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let set = match rest.as_bytes()[0] {
                b'+' => true,
                b'-' => false,
                _ => return None,
            };
            rest = &rest[1..];
            let end = rest.find(['+', '-']).unwrap_or(rest.len());
            let bit = NAMES.iter().find(|(_, n)| *n == &rest[..end])?.0;
            mask |= bit;
            if set {
                value |= bit;
            }
            rest = &rest[end..];
        }
        Some((value, mask))
    }
}

impl Field {
    /// Width of the field in bits (a full mask).
    pub fn bits(self) -> u32 {
        match self {
            Field::Inport | Field::Outport => 32,
            Field::EthSrc | Field::EthDst | Field::ArpSha | Field::NdSll | Field::NdTll => 48,
            Field::Ip6SrcHi
            | Field::Ip6SrcLo
            | Field::Ip6DstHi
            | Field::Ip6DstLo
            | Field::NdTargetHi
            | Field::NdTargetLo
            | Field::Xxreg0Hi
            | Field::Xxreg0Lo => 64,
            Field::EthType | Field::ArpOp | Field::L4Src | Field::L4Dst => 16,
            Field::Ip4Src | Field::Ip4Dst | Field::ArpSpa | Field::ArpTpa => 32,
            Field::Reg0 | Field::Reg1 | Field::CtMark | Field::CtLabel => 32,
            Field::IpProto | Field::IpTtl | Field::CtState => 8,
        }
    }
    /// The all-ones mask of this field.
    pub fn full_mask(self) -> u64 {
        if self.bits() == 64 {
            u64::MAX
        } else {
            (1u64 << self.bits()) - 1
        }
    }
}

named_enum! {
    /// Why a datapath dropped a packet. Every drop increments exactly one of these.
    DropReason {
        RuntFrame => "runt_frame",
        MalformedIp => "malformed_ip",
        MalformedArp => "malformed_arp",
        MalformedL4 => "malformed_l4",
        UnknownInport => "unknown_inport",
        PortDisabled => "port_disabled",
        PortSecurityMac => "port_security_mac",
        PortSecurityIp => "port_security_ip",
        NoL2Destination => "no_l2_destination",
        EgressPortSecurity => "egress_port_security",
        RemotePort => "remote_port",
        LoopToInport => "loop_to_inport",
        PipelineDrop => "pipeline_drop",
        NoFlow => "no_matching_flow",
        TxRingFull => "tx_ring_full",
        TxNoFrame => "tx_no_frame",
        OversizeFrame => "oversize_frame",
        NotForRouter => "l2_not_for_router",
        TtlExceeded => "ttl_exceeded",
        NoRoute => "no_route",
        NeighborUnresolved => "neighbor_unresolved",
        RouterIpNoReply => "router_ip_no_reply",
        ConsumedByRouter => "consumed_by_router",
        DatapathLoop => "datapath_loop",
        GenerateFailed => "generate_failed",
        MalformedTunnel => "malformed_tunnel",
        UnknownTunnelKey => "unknown_tunnel_key",
        TunnelUnresolved => "tunnel_unresolved",
        TunnelTooBig => "tunnel_too_big",
        LbNoBackend => "lb_no_backend",
        CtFull => "ct_full",
        CtZoneLimit => "ct_zone_limit",
        CtInvalid => "ct_invalid",
        NatPortsExhausted => "nat_ports_exhausted",
        AclDrop => "acl_drop",
        PortSecurityIpv6 => "port_security_ipv6",
        EgressPortSecurityIp => "egress_port_security_ip",
        AclBlocked => "acl_blocked",
        TunnelUnknownSource => "tunnel_unknown_source",
        TunnelWrongDestination => "tunnel_wrong_destination",
        TunnelUnknownCritical => "tunnel_unknown_critical_option",
        TunnelIngressNotBound => "tunnel_ingress_not_bound",
        RouterTcpReset => "router_tcp_reset",
        RouterPortUnreachable => "router_port_unreachable",
        IcmpRateLimited => "icmp_rate_limited",
        CtNoConnection => "ct_no_connection",
        FragNoFirst => "frag_no_first",
        FragTableFull => "frag_table_full",
        FragTiny => "frag_tiny",
        DnsRateLimited => "dns_rate_limited",
        DhcpRateLimited => "dhcp_rate_limited",
        DhcpConsumed => "dhcp_consumed",
        HandoffFull => "pmd_handoff_full",
        RxChainTooLong => "rx_chain_too_long",
        RxChainShort => "rx_chain_short",
        FrameTooBig => "frame_too_big_for_mtu",
        Ipv6ExtTooMany => "ipv6_ext_headers_too_many",
        MalformedIpv6Ext => "malformed_ipv6_ext",
        PortSecurityNd => "port_security_nd",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Field::ALL {
            assert_eq!(Field::parse(f.as_str()), Some(*f));
        }
        for r in DropReason::ALL {
            assert_eq!(DropReason::parse(r.as_str()), Some(*r));
        }
        assert_eq!(Field::parse("eth.nope"), None);
        assert_eq!(Field::EthSrc.full_mask(), 0xffff_ffff_ffff);
        assert_eq!(Field::CtLabel.full_mask(), 0xffff_ffff);
    }

    #[test]
    fn ct_flags_round_trip() {
        let (v, m) = ct::parse_flags("+trk+est-new").unwrap();
        assert_eq!(v, ct::TRK | ct::EST);
        assert_eq!(m, ct::TRK | ct::EST | ct::NEW);
        assert_eq!(ct::flags_text(v, m), "+trk-new+est");
        assert_eq!(ct::parse_flags("+trk+bogus"), None);
        assert_eq!(ct::parse_flags("trk"), None);
        assert_eq!(ct::parse_flags(""), None);
    }
}
