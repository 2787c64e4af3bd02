//! One switch stretched over two chassis through Geneve: pod1 and pod3 on the
//! first, pod2 on the second.

use super::l2::is_arp_reply;
use super::{forwarded, Case, Expect, Scenario, Topo, Want};
use crate::frames;
use smoltcp::wire::Ipv4Address;
use switchyard_southbound::DropReason;

pub fn scenario() -> Scenario {
    let topo = Topo {
        subnets: 1,
        pods: 3,
        chassis: 2,
        external: false,
    };
    let p = topo.endpoints();
    let bcast = frames::udp(
        p[0].mac,
        0xffff_ffff_ffff,
        p[0].ip,
        Ipv4Address::BROADCAST,
        9,
        b"overlay broadcast",
    );
    let (pod2_mac, pod2_ip) = (p[1].mac, p[1].ip);
    let cases = vec![
        forwarded(&topo, "overlay to the other chassis", 0, 1, 40000, 9),
        forwarded(&topo, "overlay back from the other chassis", 1, 0, 40000, 9),
        forwarded(&topo, "overlay on one chassis", 0, 2, 40000, 9),
        Case {
            name: "overlay broadcast",
            from: 0,
            expect: Expect::Delivered(vec![
                (1, Want::exact(bcast.clone())),
                (2, Want::exact(bcast.clone())),
            ]),
            frame: bcast,
        },
        Case {
            name: "overlay ARP for a remote pod",
            from: 0,
            frame: frames::arp_request(p[0].mac, p[0].ip, p[1].ip),
            expect: Expect::Delivered(vec![(
                0,
                Want::like("an ARP reply for pod2, answered locally", move |f| {
                    is_arp_reply(f, pod2_mac, pod2_ip)
                }),
            )]),
        },
        Case {
            name: "overlay spoofing on the other chassis",
            from: 1,
            frame: frames::udp(
                p[1].mac,
                p[0].mac,
                Ipv4Address::new(10, 244, 0, 99),
                p[0].ip,
                9,
                b"overlay spoofing on the other chassis",
            ),
            expect: Expect::Dropped(DropReason::PortSecurityIp),
        },
    ];
    Scenario {
        name: "overlay",
        topo,
        config: Vec::new(),
        cases,
        spread: Vec::new(),
    }
}
