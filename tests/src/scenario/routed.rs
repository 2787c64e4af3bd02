//! Two switches joined by router lr0: the rewritten hop, and everything the
//! router answers itself (ICMP errors, echo, ARP, its own ports).

use super::l2::is_arp_reply;
use super::{forwarded, is_icmp, udp_between, Case, Expect, Scenario, Topo, Want};
use crate::frames;
use smoltcp::wire::{Ipv4Address, Ipv4Packet, TcpControl};

/// pod1 on ls0, pod2 on ls1 (`syctl sandbox up --subnets 2`).
pub fn scenario() -> Scenario {
    let topo = Topo {
        subnets: 2,
        pods: 2,
        chassis: 1,
        external: false,
    };
    let p = topo.endpoints();
    let (gw0_mac, gw0) = p[0].gateway.expect("routed");
    let pod1 = p[0].ip;
    let pod2 = p[1].ip;
    let mut ttl1 = udp_between(&topo, 0, 1, 40000, 9, "routed ttl 1");
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut ttl1[14..]);
        ip.set_hop_limit(1);
        ip.fill_checksum();
    }
    let no_route = Ipv4Address::new(10, 99, 0, 1);
    // ICMP errors leave the router with TTL 254, 253 past its own hop (OVN's).
    let icmp_from_gw = move |what: &str, ty: u8, quoted: Option<Ipv4Address>| {
        Want::like(what, move |f| {
            is_icmp(f, ty, gw0, pod1, quoted) && f[22] == 253
        })
    };
    let cases = vec![
        forwarded(&topo, "routed unicast", 0, 1, 40000, 9),
        forwarded(&topo, "routed back", 1, 0, 9, 40000),
        Case {
            name: "routed ttl 1",
            from: 0,
            frame: ttl1,
            expect: Expect::Delivered(vec![(
                0,
                icmp_from_gw("time exceeded from the gateway", 11, Some(pod2)),
            )]),
        },
        Case {
            name: "routed no route",
            from: 0,
            frame: frames::udp(p[0].mac, gw0_mac, pod1, no_route, 9, b"routed no route"),
            expect: Expect::Delivered(vec![(
                0,
                icmp_from_gw(
                    "destination unreachable from the gateway",
                    3,
                    Some(no_route),
                ),
            )]),
        },
        Case {
            name: "routed echo to the gateway",
            from: 0,
            frame: frames::icmp_echo(p[0].mac, gw0_mac, pod1, gw0, b"routed echo to the gateway"),
            expect: Expect::Delivered(vec![(
                0,
                // TTL 255 less the routing stage's hop, as OVN answers (ping shows 254).
                Want::like("an echo reply from the gateway, TTL 254", move |f| {
                    is_icmp(f, 0, gw0, pod1, None) && f[22] == 254
                }),
            )]),
        },
        Case {
            name: "routed echo to the far gateway",
            from: 0,
            frame: frames::icmp_echo(
                p[0].mac,
                gw0_mac,
                pod1,
                Ipv4Address::new(10, 244, 1, 1),
                b"far gateway",
            ),
            expect: Expect::Delivered(vec![(
                0,
                Want::like("an echo reply from 10.244.1.1", move |f| {
                    is_icmp(f, 0, Ipv4Address::new(10, 244, 1, 1), pod1, None)
                }),
            )]),
        },
        Case {
            name: "routed ARP for the gateway",
            from: 0,
            frame: frames::arp_request(p[0].mac, pod1, gw0),
            expect: Expect::Delivered(vec![(
                0,
                Want::like("an ARP reply: the gateway's IP at its MAC", move |f| {
                    is_arp_reply(f, gw0_mac, gw0)
                }),
            )]),
        },
        Case {
            name: "routed UDP to the gateway",
            from: 0,
            frame: frames::udp(
                p[0].mac,
                gw0_mac,
                pod1,
                gw0,
                53,
                b"routed UDP to the gateway",
            ),
            expect: Expect::Delivered(vec![(
                0,
                icmp_from_gw("port unreachable from the gateway", 3, Some(gw0)),
            )]),
        },
        syn_gets_reset(&topo, "routed TCP to the gateway", gw0, 22),
    ];
    Scenario {
        name: "routed",
        topo,
        config: Vec::new(),
        cases,
        spread: Vec::new(),
    }
}

/// A case: pod1 sends a TCP SYN to `dst:dport` through its gateway, and gets a
/// TCP reset from `dst` (a router's own address, a VIP without backends).
pub fn syn_gets_reset(topo: &Topo, name: &'static str, dst: Ipv4Address, dport: u16) -> Case {
    let p = topo.endpoints();
    let (gw_mac, _) = p[0].gateway.expect("routed");
    let pod1 = p[0].ip;
    Case {
        name,
        from: 0,
        frame: frames::tcp(
            p[0].mac,
            gw_mac,
            pod1,
            dst,
            40001,
            dport,
            TcpControl::Syn,
            None,
        ),
        expect: Expect::Delivered(vec![(
            0,
            Want::like(&format!("a TCP reset from {dst}"), move |f| {
                is_tcp_rst(f, dst, pod1)
            }),
        )]),
    }
}

/// Whether `f` is a TCP RST from `src` to `dst` with valid checksums.
pub fn is_tcp_rst(f: &[u8], src: Ipv4Address, dst: Ipv4Address) -> bool {
    let Ok(p) = Ipv4Packet::new_checked(f.get(14..).unwrap_or(&[])) else {
        return false;
    };
    let ok = f[12..14] == [0x08, 0x00]
        && p.next_header() == smoltcp::wire::IpProtocol::Tcp
        && p.src_addr() == src
        && p.dst_addr() == dst
        && p.verify_checksum();
    if !ok {
        return false;
    }
    smoltcp::wire::TcpPacket::new_checked(p.payload())
        .map(|t| t.rst() && t.verify_checksum(&src.into(), &dst.into()))
        .unwrap_or(false)
}
