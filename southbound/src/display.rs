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
        Some(Field::EthSrc | Field::EthDst | Field::ArpSha) => fmt_mac(m.value),
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

/// A whole conjunction; the empty match is `1`, as in OVN.
pub fn matches_text(ms: &[FieldMatch]) -> String {
    if ms.is_empty() {
        return "1".into();
    }
    ms.iter().map(match_text).collect::<Vec<_>>().join(" && ")
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
                "icmp4 { ip4.dst <-> ip4.src; icmp4.type = 0; ip.ttl = 255; } /* routed back */;",
            ),
            Some(Kind::ArpRequest(_)) => s.push_str(
                "arp { eth.dst = ff:ff:ff:ff:ff:ff; arp.spa = reg1; arp.tpa = reg0; arp.op = 1; output; };",
            ),
            Some(Kind::PutArp(_)) => s.push_str("put_arp(inport, arp.spa, arp.sha);"),
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

fn route_text(s: &mut String, r: &crate::pb::Route) {
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
}
