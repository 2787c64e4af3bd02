//! One switch: unicast, flooding, the ARP responder, port security in both
//! directions (IPv6 from an IPv4-only port included), loops.

use super::{Case, Expect, Scenario, Topo, Want};
use crate::frames;
use smoltcp::wire::Ipv4Address;
use switchyard_southbound::DropReason;

/// Three pods on ls0.
pub fn scenario() -> Scenario {
    let topo = Topo::switch(3);
    let p = topo.endpoints();
    let udp = |from: usize, dst_mac: u64, dst: Ipv4Address, src_ip: Ipv4Address, tag: &str| {
        frames::udp(p[from].mac, dst_mac, src_ip, dst, 9, tag.as_bytes())
    };
    let unicast = udp(0, p[1].mac, p[1].ip, p[0].ip, "l2 known unicast");
    let bcast = udp(
        1,
        0xffff_ffff_ffff,
        Ipv4Address::BROADCAST,
        p[1].ip,
        "l2 broadcast",
    );
    let (pod2_mac, pod2_ip) = (p[1].mac, p[1].ip);
    let cases = vec![
        Case {
            name: "l2 known unicast",
            from: 0,
            expect: Expect::Delivered(vec![(1, Want::exact(unicast.clone()))]),
            frame: unicast,
        },
        Case {
            name: "l2 broadcast",
            from: 1,
            expect: Expect::Delivered(vec![
                (0, Want::exact(bcast.clone())),
                (2, Want::exact(bcast.clone())),
            ]),
            frame: bcast,
        },
        Case {
            name: "l2 unknown unicast",
            from: 0,
            frame: udp(0, 0x0a58_0000_0099, p[2].ip, p[0].ip, "l2 unknown unicast"),
            expect: Expect::Dropped(DropReason::NoL2Destination),
        },
        Case {
            name: "l2 spoofed source MAC",
            from: 0,
            frame: frames::udp(
                0x0a58_0000_0bad,
                p[1].mac,
                p[0].ip,
                p[1].ip,
                9,
                b"l2 spoofed source MAC",
            ),
            expect: Expect::Dropped(DropReason::PortSecurityMac),
        },
        Case {
            name: "l2 spoofed source IP",
            from: 2,
            frame: udp(
                2,
                p[1].mac,
                p[1].ip,
                Ipv4Address::new(10, 244, 0, 99),
                "l2 spoofed source IP",
            ),
            expect: Expect::Dropped(DropReason::PortSecurityIp),
        },
        Case {
            name: "l2 loop to the sender",
            from: 1,
            frame: udp(1, p[1].mac, p[1].ip, p[1].ip, "l2 loop to the sender"),
            expect: Expect::Dropped(DropReason::LoopToInport),
        },
        Case {
            name: "l2 IPv6 from an IPv4-only port",
            from: 0,
            frame: frames::ipv6(
                p[0].mac,
                p[1].mac,
                0x66,
                frames::link_local(2),
                17,
                b"l2 IPv6 from an IPv4-only port",
            ),
            expect: Expect::Dropped(DropReason::PortSecurityIpv6),
        },
        Case {
            name: "l2 router advertisement from a pod",
            from: 0,
            frame: frames::router_advertisement(p[0].mac, b"l2 router advertisement from a pod"),
            expect: Expect::Dropped(DropReason::PortSecurityIpv6),
        },
        Case {
            name: "l2 to a pod's MAC, not its IP",
            from: 0,
            frame: udp(
                0,
                p[1].mac,
                Ipv4Address::new(10, 244, 0, 99),
                p[0].ip,
                "l2 to a pod's MAC, not its IP",
            ),
            expect: Expect::Dropped(DropReason::EgressPortSecurityIp),
        },
        Case {
            name: "l2 ARP answered by the switch",
            from: 0,
            frame: frames::arp_request(p[0].mac, p[0].ip, p[1].ip),
            expect: Expect::Delivered(vec![(
                0,
                Want::like("an ARP reply: pod2's IP is at pod2's MAC", move |f| {
                    is_arp_reply(f, pod2_mac, pod2_ip)
                }),
            )]),
        },
    ];
    Scenario {
        name: "l2",
        topo,
        config: Vec::new(),
        cases,
        spread: Vec::new(),
    }
}

/// Whether `f` is an ARP reply saying `ip` is at `mac`.
pub fn is_arp_reply(f: &[u8], mac: u64, ip: Ipv4Address) -> bool {
    f.len() >= 42
        && f[12..14] == [0x08, 0x06]
        && f[20..22] == [0, 2]
        && f[22..28] == frames::mac(mac).0
        && f[28..32] == ip.octets()
}
