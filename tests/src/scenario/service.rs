//! Load balancing and NAT: a VIP on a switch, a floating IP and SNAT on the
//! router, each checked in both directions of a connection.

use super::routed::syn_gets_reset;
use super::{
    forwarded, is_icmp, routed, translated, udp_between, Case, Expect, Scenario, Topo, Want,
    EXT_NET,
};
use crate::frames;
use crate::memory::{lb_attach_op, lb_op};
use smoltcp::wire::{Ipv4Address, Ipv4Packet};
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_southbound::DropReason;

pub const VIP: Ipv4Address = Ipv4Address::new(10, 96, 0, 10);
/// ls0's other_config:ct-zone-limit in the `lb` scenario.
pub const ZONE_LIMIT: u32 = 2;

/// A client pod on ls0, its backend on ls1; UDP VIP:53 -> pod2:5353 and TCP
/// VIP:90 with no backends, both served on ls0, whose conntrack zone is
/// limited to [`ZONE_LIMIT`] connections.
pub fn lb() -> Scenario {
    let topo = Topo {
        subnets: 2,
        pods: 2,
        chassis: 1,
        external: false,
    };
    let p = topo.endpoints();
    let (gw0_mac, _) = p[0].gateway.expect("routed");
    let (gw1_mac, _) = p[1].gateway.expect("routed");
    let (pod1, pod2) = (p[0].ip, p[1].ip);
    // A query from client port `sport` to the VIP, and how the backend sees it.
    let vip_query = |sport: u16, text: &'static str| {
        let q = frames::udp_ports(p[0].mac, gw0_mac, pod1, VIP, sport, 53, text.as_bytes());
        let seen = routed(&translated(&q, None, Some((pod2, 5353))), gw1_mac, p[1].mac);
        (q, seen)
    };
    let (query, at_backend) = vip_query(40000, "lb query to the VIP");
    let answer = udp_between(&topo, 1, 0, 5353, 40000, "lb answer from the backend");
    let at_client = routed(
        &translated(&answer, Some((VIP, 53)), None),
        gw0_mac,
        p[0].mac,
    );
    let cases = vec![
        Case {
            name: "lb query to the VIP",
            from: 0,
            frame: query,
            expect: Expect::Delivered(vec![(1, Want::exact(at_backend))]),
        },
        Case {
            name: "lb answer from the backend",
            from: 1,
            frame: answer,
            expect: Expect::Delivered(vec![(0, Want::exact(at_client))]),
        },
        forwarded(&topo, "lb direct to the backend", 0, 1, 40002, 5353),
        syn_gets_reset(&topo, "lb VIP without backends", VIP, 90),
        // ls0's conntrack zone holds at most ZONE_LIMIT connections: the
        // first query's and this one's; a third client port is refused.
        {
            let (q, seen) = vip_query(40010, "lb second client connection");
            Case {
                name: "lb second client connection",
                from: 0,
                frame: q,
                expect: Expect::Delivered(vec![(1, Want::exact(seen))]),
            }
        },
        Case {
            name: "lb connection over the zone limit",
            from: 0,
            frame: vip_query(40011, "lb connection over the zone limit").0,
            expect: Expect::Dropped(DropReason::CtZoneLimit),
        },
    ];
    Scenario {
        name: "lb",
        topo,
        config: vec![
            lb_op("dns", "udp", "10.96.0.10:53", &format!("{pod2}:5353")),
            lb_op("none", "tcp", "10.96.0.10:90", ""),
            lb_attach_op("dns", "ls0"),
            lb_attach_op("none", "ls0"),
            Op::LsSetOtherConfig(pb::SetConfig {
                record: "ls0".into(),
                config: [("ct-zone-limit".into(), ZONE_LIMIT.to_string())].into(),
            }),
        ],
        cases,
        spread: Vec::new(),
    }
}

pub const FLOATING_IP: Ipv4Address = Ipv4Address::new(172, 16, 0, 50);
pub const SNAT_IP: Ipv4Address = Ipv4Address::new(172, 16, 0, 100);

fn nat_op(ty: &str, external: Ipv4Address, logical: &str) -> Op {
    Op::NatAdd(pb::NatRule {
        router_name: "lr0".into(),
        r#type: ty.into(),
        external_ip: external.to_string(),
        logical_ip: logical.into(),
    })
}

/// pod1 and pod2 on ls0 behind lr0, the external host on 172.16.0.0/24: pod1
/// has floating IP .50 (dnat_and_snat), the rest of ls0 leaves as .100 (snat).
pub fn nat() -> Scenario {
    let topo = Topo {
        subnets: 1,
        pods: 2,
        chassis: 1,
        external: true,
    };
    let p = topo.endpoints();
    let ext = 2;
    let (gw0_mac, _) = p[0].gateway.expect("routed");
    let (gwx_mac, _) = Topo::gateway_of(EXT_NET);
    let (ext_mac, ext_ip) = (p[ext].mac, p[ext].ip);
    let out = udp_between(&topo, 0, ext, 40000, 9, "nat floating IP out");
    let out_seen = routed(
        &translated(&out, Some((FLOATING_IP, 40000)), None),
        gwx_mac,
        ext_mac,
    );
    let back = frames::udp_ports(
        ext_mac,
        gwx_mac,
        ext_ip,
        FLOATING_IP,
        9,
        40000,
        b"nat reply to the floating IP",
    );
    let back_seen = routed(
        &translated(&back, None, Some((p[0].ip, 40000))),
        gw0_mac,
        p[0].mac,
    );
    let inbound = frames::udp_ports(
        ext_mac,
        gwx_mac,
        ext_ip,
        FLOATING_IP,
        41000,
        8080,
        b"nat into the floating IP",
    );
    let inbound_seen = routed(
        &translated(&inbound, None, Some((p[0].ip, 8080))),
        gw0_mac,
        p[0].mac,
    );
    let refused = frames::icmp_error(ext_mac, gwx_mac, ext_ip, FLOATING_IP, 3, 3, &out_seen);
    let pod1 = p[0].ip;
    let snat_tag = "nat SNAT out";
    let cases = vec![
        Case {
            name: "nat floating IP out",
            from: 0,
            frame: out,
            expect: Expect::Delivered(vec![(ext, Want::exact(out_seen))]),
        },
        Case {
            name: "nat reply to the floating IP",
            from: ext,
            frame: back,
            expect: Expect::Delivered(vec![(0, Want::exact(back_seen))]),
        },
        Case {
            name: "nat into the floating IP",
            from: ext,
            frame: inbound,
            expect: Expect::Delivered(vec![(0, Want::exact(inbound_seen))]),
        },
        Case {
            name: "nat ICMP error about a translated datagram",
            from: ext,
            frame: refused,
            expect: Expect::Delivered(vec![(
                0,
                Want::like(
                    "port unreachable to pod1, quoting pod1's own datagram",
                    move |f| {
                        is_icmp(f, 3, ext_ip, pod1, Some(ext_ip))
                            && f.len() >= 14 + 20 + 8 + 20
                            && {
                                // The quote is cut short: read its header only.
                                let q = Ipv4Packet::new_unchecked(&f[14 + 20 + 8..]);
                                q.src_addr() == pod1 && q.verify_checksum()
                            }
                    },
                ),
            )]),
        },
        Case {
            name: snat_tag,
            from: 1,
            frame: udp_between(&topo, 1, ext, 40000, 9, snat_tag),
            expect: Expect::Delivered(vec![(
                ext,
                Want::like(
                    "the datagram from the SNAT address, a valid checksum",
                    move |f| {
                        let Ok(ip) = Ipv4Packet::new_checked(&f[14..]) else {
                            return false;
                        };
                        ip.src_addr() == SNAT_IP
                            && ip.dst_addr() == ext_ip
                            && ip.verify_checksum()
                            && f.windows(snat_tag.len()).any(|w| w == snat_tag.as_bytes())
                    },
                ),
            )]),
        },
    ];
    Scenario {
        name: "nat",
        topo,
        config: vec![
            nat_op("dnat_and_snat", FLOATING_IP, &p[0].ip.to_string()),
            nat_op("snat", SNAT_IP, "10.244.0.0/24"),
        ],
        cases,
        spread: Vec::new(),
    }
}
