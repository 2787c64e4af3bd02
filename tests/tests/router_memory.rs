//! The routed pipeline over in-memory ports: the real compiler output for two
//! subnets joined by a router, executed by the real PMD. Checks what each frame
//! looks like when it leaves: rewritten MACs, TTL and checksum, generated ICMP
//! and ARP, and neighbour learning.

use smoltcp::wire::{EthernetFrame, Icmpv4Packet, Ipv4Address, Ipv4Packet};
use switchyard_northd::model::Nb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_southbound::DropReason;
use switchyard_tests::frames;
use switchyard_tests::memory::{mem, pmd_on, southbound};
use switchyard_vswitch::tables::Tables;

const POD1_MAC: u64 = 0x0a58_0af4_000b;
const POD2_MAC: u64 = 0x0a58_0af4_010c;
const EXT_MAC: u64 = 0x0a58_0af4_01fe;
const GW0_MAC: u64 = 0x0a58_0af4_0001;
const GW1_MAC: u64 = 0x0a58_0af4_0101;

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Address {
    Ipv4Address::new(a, b, c, d)
}

fn lsp(name: &str, sw: &str, addr: &str, psec: bool) -> Op {
    Op::LspAdd(pb::LogicalSwitchPort {
        name: name.into(),
        switch_name: sw.into(),
        addresses: vec![addr.into()],
        port_security: if psec { vec![addr.into()] } else { vec![] },
        enabled: true,
        ..Default::default()
    })
}

/// ls0 (pod1) and ls1 (pod2, ext with "unknown" addresses) joined by lr0, and a
/// static route 10.99.0.0/16 via 10.244.1.254 (ext's address, not known in NB).
fn topology() -> Nb {
    let mut ops = vec![
        Op::LsAdd(pb::LogicalSwitch {
            name: "ls0".into(),
            subnet: "10.244.0.0/24".into(),
            ..Default::default()
        }),
        Op::LsAdd(pb::LogicalSwitch {
            name: "ls1".into(),
            subnet: "10.244.1.0/24".into(),
            ..Default::default()
        }),
        Op::LrAdd(pb::LogicalRouter {
            name: "lr0".into(),
            enabled: true,
            ..Default::default()
        }),
    ];
    for (sw, mac, net) in [
        ("ls0", "0a:58:0a:f4:00:01", "10.244.0.1/24"),
        ("ls1", "0a:58:0a:f4:01:01", "10.244.1.1/24"),
    ] {
        ops.push(Op::LrpAdd(pb::LogicalRouterPort {
            name: format!("lr0-{sw}"),
            router_name: "lr0".into(),
            mac: mac.into(),
            networks: vec![net.into()],
            enabled: true,
            ..Default::default()
        }));
        ops.push(Op::LspAdd(pb::LogicalSwitchPort {
            name: format!("{sw}-lr0"),
            switch_name: sw.into(),
            addresses: vec!["router".into()],
            r#type: "router".into(),
            options: [("router-port".to_string(), format!("lr0-{sw}"))].into(),
            enabled: true,
            ..Default::default()
        }));
    }
    ops.push(lsp("pod1", "ls0", "0a:58:0a:f4:00:0b 10.244.0.11", true));
    ops.push(lsp("pod2", "ls1", "0a:58:0a:f4:01:0c 10.244.1.12", true));
    ops.push(lsp("ext", "ls1", "unknown", false));
    ops.push(Op::RouteAdd(pb::StaticRoute {
        router_name: "lr0".into(),
        prefix: "10.99.0.0/16".into(),
        nexthop: "10.244.1.254".into(),
        output_port: String::new(),
    }));
    let mut nb = Nb::default();
    nb.apply_ops(&pb::TransactRequest {
        ops: ops.into_iter().map(|o| pb::NbOp { op: Some(o) }).collect(),
        ..Default::default()
    })
    .expect("valid topology");
    nb
}

fn lports() -> Vec<String> {
    ["pod1", "pod2", "ext"].map(String::from).to_vec()
}

fn udp_with_ttl(
    src_mac: u64,
    dst_mac: u64,
    src: Ipv4Address,
    dst: Ipv4Address,
    ttl: u8,
) -> Vec<u8> {
    let mut f = frames::udp(src_mac, dst_mac, src, dst, 9, b"routed");
    let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
    p.set_hop_limit(ttl);
    p.fill_checksum();
    f
}

#[test]
fn routed_unicast_is_rewritten_and_keeps_a_valid_checksum() {
    let (mut pmd, stats, _) = pmd_on(&southbound(&topology()), &lports());
    let f = udp_with_ttl(
        POD1_MAC,
        GW0_MAC,
        ip(10, 244, 0, 11),
        ip(10, 244, 1, 12),
        64,
    );
    mem(&mut pmd, 0).rx.push_back(f.clone());
    pmd.poll_once();
    let tx = std::mem::take(&mut mem(&mut pmd, 1).tx);
    assert_eq!(
        tx.len(),
        1,
        "delivered to pod2 once; drops {:?}",
        stats.drops
    );
    let eth = EthernetFrame::new_checked(&tx[0][..]).unwrap();
    assert_eq!(eth.src_addr(), frames::mac(GW1_MAC));
    assert_eq!(eth.dst_addr(), frames::mac(POD2_MAC));
    let ipp = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(ipp.hop_limit(), 63);
    assert!(ipp.verify_checksum());
    assert_eq!(&tx[0][34..], &f[34..], "L4 untouched");
    assert!(mem(&mut pmd, 2).tx.is_empty(), "not flooded");
    // The second packet of the flow is answered by the cache, the same way.
    mem(&mut pmd, 0).rx.push_back(f);
    pmd.poll_once();
    assert_eq!(mem(&mut pmd, 1).tx.len(), 1);
    assert_eq!(stats.emc_hits.get(), 1);
}

/// The ICMP message pod1 receives, as (type, code, source).
fn icmp_back(pmd: &mut switchyard_vswitch::pmd::Pmd) -> (u8, u8, Ipv4Address) {
    let tx = std::mem::take(&mut mem(pmd, 0).tx);
    assert_eq!(tx.len(), 1, "one ICMP message back to pod1");
    let eth = EthernetFrame::new_checked(&tx[0][..]).unwrap();
    assert_eq!(eth.dst_addr(), frames::mac(POD1_MAC));
    assert_eq!(eth.src_addr(), frames::mac(GW0_MAC));
    let ipp = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ipp.verify_checksum());
    let icmp = Icmpv4Packet::new_checked(ipp.payload()).unwrap();
    assert!(icmp.verify_checksum());
    (ipp.payload()[0], ipp.payload()[1], ipp.src_addr())
}

#[test]
fn ttl_expiry_and_no_route_answer_with_icmp_from_the_router() {
    let (mut pmd, stats, _) = pmd_on(&southbound(&topology()), &lports());
    let f = udp_with_ttl(POD1_MAC, GW0_MAC, ip(10, 244, 0, 11), ip(10, 244, 1, 12), 1);
    mem(&mut pmd, 0).rx.push_back(f);
    pmd.poll_once();
    assert_eq!(icmp_back(&mut pmd), (11, 0, ip(10, 244, 0, 1)));
    assert!(mem(&mut pmd, 1).tx.is_empty());
    assert_eq!(stats.drops[DropReason::TtlExceeded as usize].get(), 1);

    let f = udp_with_ttl(POD1_MAC, GW0_MAC, ip(10, 244, 0, 11), ip(192, 0, 2, 1), 64);
    mem(&mut pmd, 0).rx.push_back(f);
    pmd.poll_once();
    assert_eq!(icmp_back(&mut pmd), (3, 0, ip(10, 244, 0, 1)));
    assert_eq!(stats.drops[DropReason::NoRoute as usize].get(), 1);
}

#[test]
fn router_answers_echo_requests_to_its_own_addresses() {
    let (mut pmd, _, _) = pmd_on(&southbound(&topology()), &lports());
    let mut f = udp_with_ttl(POD1_MAC, GW0_MAC, ip(10, 244, 0, 11), ip(10, 244, 1, 1), 64);
    {
        let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
        p.set_next_header(smoltcp::wire::IpProtocol::Icmp);
        p.fill_checksum();
        let icmp = p.payload_mut();
        icmp[..8].copy_from_slice(&[8, 0, 0, 0, 0, 7, 0, 1]);
        Icmpv4Packet::new_unchecked(icmp).fill_checksum();
    }
    mem(&mut pmd, 0).rx.push_back(f.clone());
    pmd.poll_once();
    assert_eq!(icmp_back(&mut pmd), (0, 0, ip(10, 244, 1, 1)));
    // As OVN: the reply leaves the router with TTL 255, less its own hop.
    mem(&mut pmd, 0).rx.push_back(f);
    pmd.poll_once();
    let tx = std::mem::take(&mut mem(&mut pmd, 0).tx);
    let ipp = Ipv4Packet::new_checked(&tx[0][14..]).unwrap();
    assert_eq!(ipp.hop_limit(), 254);
    // ICMP errors leave with 254 (then 253 past the hop), as OVN's.
    let ttl1 = udp_with_ttl(POD1_MAC, GW0_MAC, ip(10, 244, 0, 11), ip(10, 244, 1, 12), 1);
    mem(&mut pmd, 0).rx.push_back(ttl1);
    pmd.poll_once();
    let tx = std::mem::take(&mut mem(&mut pmd, 0).tx);
    assert_eq!(
        Ipv4Packet::new_checked(&tx[0][14..]).unwrap().hop_limit(),
        253
    );
}

#[test]
fn unresolved_nexthop_sends_one_arp_then_learns_and_forwards() {
    let nb = topology();
    let mut snap = southbound(&nb);
    let (mut pmd, stats, shared) = pmd_on(&snap, &lports());
    let f = udp_with_ttl(POD1_MAC, GW0_MAC, ip(10, 244, 0, 11), ip(10, 99, 1, 1), 64);
    for _ in 0..3 {
        mem(&mut pmd, 0).rx.push_back(f.clone());
    }
    pmd.poll_once();
    assert_eq!(
        stats.drops[DropReason::NeighborUnresolved as usize].get(),
        3
    );
    // One ARP request (rate-limited), flooded on ls1: pod2 and ext see it.
    for port in [1, 2] {
        let tx = std::mem::take(&mut mem(&mut pmd, port).tx);
        assert_eq!(tx.len(), 1, "port {port}: one ARP request");
        let k = switchyard_vswitch::packet::extract(&tx[0], 0).unwrap();
        assert_eq!((k.arp_op, k.eth_src), (1, GW1_MAC));
        assert_eq!((k.ip_src, k.ip_dst), (0x0af4_0101, 0x0af4_01fe));
    }
    // ext answers; the router learns it.
    let mut reply = frames::arp_request(EXT_MAC, ip(10, 244, 1, 254), ip(10, 244, 1, 1));
    reply[0..6].copy_from_slice(&GW1_MAC.to_be_bytes()[2..]);
    reply[21] = 2; // op = reply
    mem(&mut pmd, 2).rx.push_back(reply);
    pmd.poll_once();
    let learned = shared.learned.pop().expect("learned a neighbour");
    assert_eq!((learned.ip, learned.mac), (0x0af4_01fe, EXT_MAC));
    // What the agent does: report it, and SB brings it back to every chassis.
    snap.mac_bindings.push(pb::MacBinding {
        datapath: learned.dp,
        logical_port: "lr0-ls1".into(),
        ip: learned.ip,
        mac: learned.mac,
    });
    let local = switchyard_tests::memory::bindings(&lports());
    shared
        .tables
        .store(std::sync::Arc::new(Tables::build(2, &snap, "", &local)));
    pmd.refresh_tables();
    mem(&mut pmd, 0).rx.push_back(f);
    pmd.poll_once();
    let tx = std::mem::take(&mut mem(&mut pmd, 2).tx);
    assert_eq!(tx.len(), 1, "forwarded to the learned nexthop");
    let eth = EthernetFrame::new_checked(&tx[0][..]).unwrap();
    assert_eq!(eth.dst_addr(), frames::mac(EXT_MAC));
}
