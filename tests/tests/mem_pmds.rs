//! Two PMDs on two threads at once, sharing one conntrack (issue 13 part 4):
//! each polls its own queue of the same ports, as a port split over PMDs
//! does, and both open connections through the same SNAT address at the
//! same time. Nothing is lost or entered twice, and every translated source
//! port is unique.

use smoltcp::wire::{Ipv4Address, Ipv4Packet, UdpPacket};
use std::collections::BTreeSet;
use std::sync::Arc;
use switchyard_benches::{port_mac, routed_nb, router_mac};
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_tests::frames;
use switchyard_tests::memory::{bindings, southbound};
use switchyard_vswitch::pmd::{Pmd, SharedTables};
use switchyard_vswitch::port::MemPort;
use switchyard_vswitch::stats::{PmdStats, PortStats};

const P1: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const P3: Ipv4Address = Ipv4Address::new(10, 0, 0, 3);
const P2: Ipv4Address = Ipv4Address::new(10, 1, 0, 2);
const EXT: Ipv4Address = Ipv4Address::new(10, 1, 0, 100);
/// Connections each PMD opens.
const N: u16 = 3000;

fn mem(pmd: &mut Pmd, slot: u16) -> &mut MemPort {
    pmd.port_mut(slot)
        .and_then(|p| p.as_any_mut().downcast_mut::<MemPort>())
        .expect("MemPort")
}

/// Sends one datagram per source port from `src` (by way of `slot`) to
/// p2, a batch at a time; returns what reached p2 on this PMD's queue.
fn run(pmd: &mut Pmd, slot: u16, mac: u64, src: Ipv4Address) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for chunk in (0..N).collect::<Vec<_>>().chunks(32) {
        for &i in chunk {
            let f = frames::udp_ports(mac, router_mac(0), src, P2, 20_000 + i, 5353, b"q");
            mem(pmd, slot).rx.push_back(f);
        }
        pmd.poll_once();
        out.append(&mut mem(pmd, 1).tx);
    }
    out
}

#[test]
fn two_pmds_at_once_lose_nothing_double_nothing_and_allocate_unique_nat_ports() {
    let mut nb = routed_nb(0);
    let addr = format!("0a:00:00:00:00:03 {P3}");
    nb.apply_all(vec![
        Op::LspAdd(pb::LogicalSwitchPort {
            name: "p3".into(),
            switch_name: "ls0".into(),
            addresses: vec![addr.clone()],
            port_security: vec![addr],
            enabled: true,
            ..Default::default()
        }),
        Op::NatAdd(pb::NatRule {
            router_name: "lr0".into(),
            r#type: "snat".into(),
            external_ip: EXT.to_string(),
            logical_ip: "10.0.0.0/24".into(),
        }),
    ])
    .expect("valid NB");
    let lports: Vec<String> = ["p1", "p2", "p3"].map(String::from).to_vec();
    let tables =
        switchyard_vswitch::tables::Tables::build(1, &southbound(&nb), "", &bindings(&lports));
    let shared = SharedTables::with_pmds(tables, 2);
    let stats = [Arc::new(PmdStats::default()), Arc::new(PmdStats::default())];
    let mut a = Pmd::new(shared.clone(), stats[0].clone(), 4096);
    let mut b = Pmd::new(shared.clone(), stats[1].clone(), 4096);
    b.set_id(1);
    b.share_edge(a.edge_handle());
    a.set_staged(true);
    // Each PMD its own queue of every port (the split an N-queue port gets).
    for pmd in [&mut a, &mut b] {
        for slot in 0..3 {
            pmd.add_port(
                slot,
                Box::new(MemPort::new()),
                Arc::new(PortStats::default()),
            );
        }
    }
    // The two sources use the same source ports towards the same server, so
    // every connection of one competes with one of the other for the SNAT
    // address's port.
    let (from_a, from_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| run(&mut a, 0, port_mac(1), P1));
        let tb = s.spawn(|| run(&mut b, 2, 0x0a00_0000_0003, P3));
        (ta.join().expect("PMD A"), tb.join().expect("PMD B"))
    });
    assert_eq!(from_a.len(), usize::from(N), "PMD A lost datagrams");
    assert_eq!(from_b.len(), usize::from(N), "PMD B lost datagrams");
    let mut ports = BTreeSet::new();
    for f in from_a.iter().chain(&from_b) {
        let ip = Ipv4Packet::new_checked(&f[14..]).expect("IPv4");
        assert_eq!(ip.src_addr(), EXT, "not SNATed");
        let udp = UdpPacket::new_checked(ip.payload()).expect("UDP");
        assert!(
            ports.insert(udp.src_port()),
            "SNAT port {} given twice",
            udp.src_port()
        );
    }
    let e = a.edge();
    assert_eq!(e.ct.len(), 2 * usize::from(N), "one entry per connection");
    assert_eq!(
        e.ct.stats.inserts,
        2 * u64::from(N),
        "nothing entered twice"
    );
    assert_eq!(e.ct.stats.nat_collisions, 0);
}
