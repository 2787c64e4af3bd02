//! Equal-cost multipath: two static routes for one prefix through two next
//! hops; each flow takes one of them, always the same, and the flows between
//! them use both.

use super::{routed, Case, Expect, Scenario, Topo, Want};
use crate::frames;
use smoltcp::wire::Ipv4Address;
use switchyard_southbound::pb::{self, nb_op::Op};

/// Flows the scenario sends (with 2 next hops, all on one is 2^-15 likely
/// for a fair hash; this one is not random, so the outcome is fixed).
const FLOWS: u16 = 16;

const NAMES: [&str; FLOWS as usize] = [
    "ecmp flow 0",
    "ecmp flow 1",
    "ecmp flow 2",
    "ecmp flow 3",
    "ecmp flow 4",
    "ecmp flow 5",
    "ecmp flow 6",
    "ecmp flow 7",
    "ecmp flow 8",
    "ecmp flow 9",
    "ecmp flow 10",
    "ecmp flow 11",
    "ecmp flow 12",
    "ecmp flow 13",
    "ecmp flow 14",
    "ecmp flow 15",
];

/// pod1 on ls0; pod2 and pod4 on ls1 are the next hops of 10.99.0.0/16 (their
/// port security cleared: they forward for others, as gateways do).
pub fn scenario() -> Scenario {
    let topo = Topo {
        subnets: 2,
        pods: 4,
        chassis: 1,
        external: false,
    };
    let p = topo.endpoints();
    let (gw0_mac, _) = p[0].gateway.expect("routed");
    let (gw1_mac, _) = p[1].gateway.expect("routed");
    let far = Ipv4Address::new(10, 99, 0, 1);
    let hops = [1usize, 3];
    let cases = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let f = frames::udp_ports(
                p[0].mac,
                gw0_mac,
                p[0].ip,
                far,
                42000 + i as u16,
                9,
                name.as_bytes(),
            );
            Case {
                name,
                from: 0,
                expect: Expect::OneOf(
                    hops.iter()
                        .map(|h| (*h, Want::exact(routed(&f, gw1_mac, p[*h].mac))))
                        .collect(),
                ),
                frame: f,
            }
        })
        .collect();
    let mut config = Vec::new();
    for h in hops {
        config.push(Op::LspSetPortSecurity(pb::SetAddresses {
            port: p[h].lport.clone(),
            addresses: Vec::new(),
        }));
        config.push(Op::RouteAdd(pb::StaticRoute {
            router_name: "lr0".into(),
            prefix: "10.99.0.0/16".into(),
            nexthop: p[h].ip.to_string(),
            output_port: String::new(),
        }));
    }
    Scenario {
        name: "ecmp",
        topo,
        config,
        cases,
        spread: hops.to_vec(),
    }
}
