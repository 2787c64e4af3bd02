//! The canonical text form of typed matches and actions, as `syctl lflow-list` and
//! traces print them (OVN's syntax where it has one).

use crate::pb::{action::Kind, Action, FieldMatch};
use crate::{fmt_mac, Field};
use std::fmt::Write;

/// One field comparison as text, e.g. `eth.src == 0a:00:00:00:00:01`.
pub fn match_text(m: &FieldMatch) -> String {
    let field = Field::parse(&m.field);
    let full = field.map(|f| f.full_mask()).unwrap_or(u64::MAX);
    if field == Some(Field::EthDst) && m.mask == 1 << 40 {
        return if m.value != 0 {
            "eth.mcast"
        } else {
            "eth.ucast"
        }
        .to_string();
    }
    let value = match field {
        Some(Field::Inport | Field::Outport) if !m.port.is_empty() => format!("\"{}\"", m.port),
        Some(Field::EthSrc | Field::EthDst | Field::ArpSha | Field::NdSll | Field::NdTll) => {
            fmt_mac(m.value)
        }
        Some(
            Field::Ip4Src
            | Field::Ip4Dst
            | Field::ArpSpa
            | Field::ArpTpa
            | Field::Reg0
            | Field::Reg1,
        ) => {
            let ip = std::net::Ipv4Addr::from(m.value as u32);
            if m.mask == full {
                ip.to_string()
            } else {
                format!("{ip}/{}", (m.mask as u32).count_ones())
            }
        }
        Some(Field::EthType) => format!("0x{:04x}", m.value),
        Some(Field::CtState) => {
            return format!(
                "ct_state == {}",
                crate::field::ct::flags_text(m.value as u8, m.mask as u8)
            )
        }
        Some(Field::CtMark | Field::CtLabel) => format!("0x{:x}", m.value),
        _ => m.value.to_string(),
    };
    if m.mask != full && !field.is_some_and(is_ip4) {
        format!("{} == {}/0x{:x}", m.field, value, m.mask)
    } else {
        format!("{} == {}", m.field, value)
    }
}

/// Fields that hold an IPv4 address (shown dotted, masks as a prefix length).
fn is_ip4(f: Field) -> bool {
    matches!(
        f,
        Field::Ip4Src | Field::Ip4Dst | Field::ArpSpa | Field::ArpTpa | Field::Reg0 | Field::Reg1
    )
}

/// The 128-bit field a 64-bit half belongs to: (name, whether this is the high half).
fn ip6_half(f: Field) -> Option<(&'static str, bool)> {
    Some(match f {
        Field::Ip6SrcHi => ("ip6.src", true),
        Field::Ip6SrcLo => ("ip6.src", false),
        Field::Ip6DstHi => ("ip6.dst", true),
        Field::Ip6DstLo => ("ip6.dst", false),
        Field::NdTargetHi => ("nd.target", true),
        Field::NdTargetLo => ("nd.target", false),
        Field::Xxreg0Hi => ("xxreg0", true),
        Field::Xxreg0Lo => ("xxreg0", false),
        _ => return None,
    })
}

/// An IPv6 value under a mask: the address, a prefix, or address/mask.
pub fn ip6_text(value: u128, mask: u128) -> String {
    let ip = std::net::Ipv6Addr::from(value);
    if mask == u128::MAX {
        ip.to_string()
    } else if mask.leading_ones() + mask.trailing_zeros() == 128 {
        format!("{ip}/{}", mask.leading_ones())
    } else {
        format!("{ip}/{}", std::net::Ipv6Addr::from(mask))
    }
}

/// A whole conjunction; the empty match is `1`, as in OVN. The two halves
/// of an IPv6 field print as one comparison (`ip6.src == fd00::/64`).
pub fn matches_text(ms: &[FieldMatch]) -> String {
    if ms.is_empty() {
        return "1".into();
    }
    let mut out: Vec<String> = Vec::with_capacity(ms.len());
    let mut i = 0;
    while i < ms.len() {
        let half = Field::parse(&ms[i].field).and_then(ip6_half);
        let Some((name, hi)) = half else {
            out.push(match_text(&ms[i]));
            i += 1;
            continue;
        };
        let other = ms
            .get(i + 1)
            .filter(|n| Field::parse(&n.field).and_then(ip6_half) == Some((name, !hi)));
        let (h, l) = match (hi, other) {
            (true, Some(o)) => (&ms[i], Some(o)),
            (false, Some(o)) => (o, Some(&ms[i])),
            (true, None) => (&ms[i], None),
            (false, None) => {
                out.push(match_text(&ms[i]));
                i += 1;
                continue;
            }
        };
        let v = u128::from(h.value) << 64 | u128::from(l.map_or(0, |l| l.value));
        let m = u128::from(h.mask) << 64 | u128::from(l.map_or(0, |l| l.mask));
        out.push(format!("{name} == {}", ip6_text(v, m)));
        i += 1 + usize::from(other.is_some());
    }
    out.join(" && ")
}

/// The actions as text, e.g. `outport = "p2"; output;`.
pub fn actions_text(acts: &[Action]) -> String {
    let mut s = String::new();
    for a in acts {
        if !s.is_empty() {
            s.push(' ');
        }
        match &a.kind {
            Some(Kind::Next(_)) => s.push_str("next;"),
            Some(Kind::Output(_)) => s.push_str("output;"),
            Some(Kind::SetOutport(o)) => {
                let _ = write!(s, "outport = \"{}\";", o.name);
            }
            Some(Kind::Drop(d)) => {
                let _ = write!(s, "drop /* {} */;", d.reason);
            }
            Some(Kind::ArpReply(r)) => {
                let _ = write!(s, "arp_reply(eth.src = {});", fmt_mac(r.mac));
            }
            Some(Kind::NdNa(r)) => {
                let _ = write!(
                    s,
                    "nd_na{} {{ eth.src = {m}; ip6.src = nd.target; nd.tll = {m}; outport = inport; output; }};",
                    if r.router { "_router" } else { "" },
                    m = fmt_mac(r.mac)
                );
            }
            Some(Kind::Route(r)) => route_text(&mut s, r),
            Some(Kind::Ecmp(e)) => {
                s.push_str("ecmp_select {");
                for (i, r) in e.routes.iter().enumerate() {
                    let _ = write!(s, " {}: ", i + 1);
                    route_text(&mut s, r);
                }
                s.push_str(" }");
            }
            Some(Kind::GetArp(_)) => s.push_str("get_arp(outport, reg0); next;"),
            Some(Kind::SetEthDst(e)) => {
                let _ = write!(s, "eth.dst = {}; next;", fmt_mac(e.mac));
            }
            Some(Kind::IcmpError(e)) if e.src_ip6.len() == 16 => {
                let _ = write!(
                    s,
                    "icmp6_error {{ icmp6.type = {}; icmp6.code = {}; ip6.src = {};{} }};",
                    e.r#type,
                    e.code,
                    ip6_bytes(&e.src_ip6),
                    if e.mtu != 0 {
                        format!(" icmp6.frag_mtu = {};", e.mtu)
                    } else {
                        String::new()
                    }
                );
            }
            Some(Kind::IcmpError(e)) => {
                let _ = write!(
                    s,
                    "icmp4_error {{ icmp4.type = {}; icmp4.code = {}; ip4.src = {};{} }};",
                    e.r#type,
                    e.code,
                    ip4(e.src_ip),
                    if e.mtu != 0 {
                        format!(" icmp4.frag_mtu = {};", e.mtu)
                    } else {
                        String::new()
                    }
                );
            }
            Some(Kind::IcmpEchoReply(_)) => s.push_str(
                "icmp { ip.dst <-> ip.src; icmp.type = echo_reply; ip.ttl = 255; } /* routed back */;",
            ),
            Some(Kind::ArpRequest(_)) => s.push_str(
                "arp { eth.dst = ff:ff:ff:ff:ff:ff; arp.spa = reg1; arp.tpa = reg0; arp.op = 1; output; };",
            ),
            Some(Kind::PutArp(_)) => s.push_str("put_arp(inport, arp.spa, arp.sha);"),
            Some(Kind::NdNs(_)) => s.push_str(
                "nd_ns { eth.dst = 33:33:ff:xx:xx:xx; ip6.dst = solicited-node(xxreg0); ip6.src = xxreg1; nd.target = xxreg0; output; };",
            ),
            Some(Kind::PutNd(_)) => s.push_str("put_nd(inport, nd.target, nd.tll);"),
            Some(Kind::NdRa(r)) => {
                let _ = write!(
                    s,
                    "nd_ra {{ put_nd_ra_opts(addr_mode = \"{}\", slla = {}",
                    r.address_mode,
                    fmt_mac(r.mac)
                );
                for p in &r.prefixes {
                    let _ = write!(s, ", prefix = {}/{}", ip6_bytes(&p.prefix), p.len);
                }
                if r.mtu != 0 {
                    let _ = write!(s, ", mtu = {}", r.mtu);
                }
                for d in &r.rdnss {
                    let _ = write!(s, ", rdnss = {}", ip6_bytes(d));
                }
                let _ = write!(
                    s,
                    ", router_preference = \"{}\", lifetime = {}); eth.dst = eth.src; eth.src = {}; ip6.dst = ip6.src /* ff02::1 from :: */; ip6.src = {}; outport = inport; output; }};",
                    r.preference,
                    r.lifetime,
                    fmt_mac(r.mac),
                    ip6_bytes(&r.src_ip6)
                );
            }
            Some(Kind::TcpReset(_)) => s.push_str(
                "tcp_reset { ip4.dst <-> ip4.src; tcp.dst <-> tcp.src; } /* routed back */;",
            ),
            Some(Kind::DnsLookup(_)) => s.push_str(
                "dns_lookup { eth.dst <-> eth.src; ip4.src <-> ip4.dst; udp.dst <-> udp.src; outport = inport; output; } /* or next, for a name without a record */;",
            ),
            Some(Kind::DhcpReply(_)) => s.push_str(
                "dhcp_reply { put_dhcp_opts(offerip, router, netmask, lease_time, server_id, dns_server, mtu); eth.dst = eth.src; eth.src = server_mac; udp.src = 67; udp.dst = 68; outport = inport; output; } /* or next */;",
            ),
            Some(Kind::CtCommit(c)) => {
                s.push_str("ct_commit {");
                if c.mark_mask != 0 {
                    let _ = write!(s, " ct_mark = 0x{:x}/0x{:x};", c.mark, c.mark_mask);
                }
                if c.label_mask != 0 {
                    let _ = write!(s, " ct_label = 0x{:x}/0x{:x};", c.label, c.label_mask);
                }
                s.push_str(" };");
            }
            None => s.push_str("/* empty */"),
        }
    }
    s
}

fn ip4(v: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(v)
}

/// A 16-byte address from a proto `bytes` field (anything else prints `::`).
pub fn ip6_bytes(b: &[u8]) -> std::net::Ipv6Addr {
    <[u8; 16]>::try_from(b).unwrap_or([0; 16]).into()
}

fn route_text(s: &mut String, r: &crate::pb::Route) {
    if r.src_ip6.len() == 16 {
        let nh = match r.nexthop6.as_slice() {
            b if b.len() == 16 && b.iter().any(|&x| x != 0) => ip6_bytes(b).to_string(),
            _ => "ip6.dst".to_string(),
        };
        let _ = write!(
            s,
            "ip.ttl--; xxreg0 = {nh}; xxreg1 = {}; eth.src = {}; outport = \"{}\"; next;",
            ip6_bytes(&r.src_ip6),
            fmt_mac(r.src_mac),
            r.port_name
        );
        return;
    }
    let nh = if r.nexthop == 0 {
        "ip4.dst".to_string()
    } else {
        ip4(r.nexthop).to_string()
    };
    let _ = write!(
        s,
        "ip.ttl--; reg0 = {nh}; reg1 = {}; eth.src = {}; outport = \"{}\"; next;",
        ip4(r.src_ip),
        fmt_mac(r.src_mac),
        r.port_name
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    #[test]
    fn texts() {
        let m = FieldMatch {
            field: "ip4.dst".into(),
            value: 0x0a00_0000,
            mask: 0xffff_ff00,
            port: String::new(),
        };
        assert_eq!(match_text(&m), "ip4.dst == 10.0.0.0/24");
        let p = FieldMatch {
            field: "inport".into(),
            value: 3,
            mask: 0xffff_ffff,
            port: "pod1".into(),
        };
        assert_eq!(match_text(&p), "inport == \"pod1\"");
        assert_eq!(matches_text(&[]), "1");
        let acts = vec![
            pb::Action {
                kind: Some(Kind::SetOutport(pb::SetOutport {
                    port: 2,
                    name: "pod2".into(),
                    multicast: false,
                })),
            },
            pb::Action {
                kind: Some(Kind::Output(pb::Output {})),
            },
        ];
        assert_eq!(actions_text(&acts), "outport = \"pod2\"; output;");
        let ct = FieldMatch {
            field: "ct_state".into(),
            value: u64::from(crate::field::ct::TRK | crate::field::ct::NEW),
            mask: u64::from(crate::field::ct::TRK | crate::field::ct::NEW),
            port: String::new(),
        };
        assert_eq!(match_text(&ct), "ct_state == +trk+new");
        let commit = vec![pb::Action {
            kind: Some(Kind::CtCommit(pb::CtCommit {
                mark: 2,
                mark_mask: 0xff,
                label: 0,
                label_mask: 0,
            })),
        }];
        assert_eq!(actions_text(&commit), "ct_commit { ct_mark = 0x2/0xff; };");
    }

    #[test]
    fn ip6_halves_print_as_one_field() {
        let fm = |f: &str, value: u64, mask: u64| FieldMatch {
            field: f.into(),
            value,
            mask,
            port: String::new(),
        };
        let host = [
            fm("ip6.src[64..127]", 0xfd00_0000_0000_0000, u64::MAX),
            fm("ip6.src[0..63]", 2, u64::MAX),
            fm("eth.type", 0x86dd, 0xffff),
        ];
        assert_eq!(
            matches_text(&host),
            "ip6.src == fd00::2 && eth.type == 0x86dd"
        );
        let net = [fm("ip6.dst[64..127]", 0xfd00_0010_0244_0000, !0xffff)];
        assert_eq!(matches_text(&net), "ip6.dst == fd00:10:244::/48");
        let multicast = [fm("ip6.dst[64..127]", 0xff00 << 48, 0xff00 << 48)];
        assert_eq!(matches_text(&multicast), "ip6.dst == ff00::/8");
        let lo_only = [fm("nd.target[0..63]", 1, 1)];
        assert_eq!(matches_text(&lo_only), "nd.target[0..63] == 1/0x1");
    }
}
