//! In-memory: the IPv6 router end to end over the memory port (the real-netns
//! twin is tests/ipv6.rs): the switch answers a pod's solicitation for its
//! gateway, the router forwards between switches with the hop limit lowered,
//! answers hop limit 1 with time exceeded, and resolves a nexthop no NB port
//! names by solicitation, learning it from the NA.

use smoltcp::wire::{Icmpv6Packet, Icmpv6Repr, Ipv6Packet, NdiscRepr, RawHardwareAddress};
use std::net::Ipv6Addr;
use switchyard_northd::model::Nb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_southbound::DropReason;
use switchyard_tests::frames;
use switchyard_tests::memory::{mem, pmd_on, southbound};
use switchyard_vswitch::dp::generate6::{ip6_key_words, nd_solicit};
use switchyard_vswitch::tables::Tables;

const POD1_MAC: u64 = 0x0a58_0af4_000b;
const POD2_MAC: u64 = 0x0a58_0af4_010c;
const EXT_MAC: u64 = 0x0a58_0af4_01fe;
const GW0_MAC: u64 = 0x0a58_0af4_0001;
const GW1_MAC: u64 = 0x0a58_0af4_0101;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
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

/// ls0 (pod1) and ls1 (pod2, ext with "unknown" addresses) joined by lr0,
/// dual-stack, and fd00:99::/48 via fd00:af4:1::fe (ext, not known in NB).
fn topology() -> Nb {
    let mut ops = Vec::new();
    for (sw, mac, nets) in [
        (
            "ls0",
            "0a:58:0a:f4:00:01",
            ["10.244.0.1/24", "fd00:af4::1/64"],
        ),
        (
            "ls1",
            "0a:58:0a:f4:01:01",
            ["10.244.1.1/24", "fd00:af4:1::1/64"],
        ),
    ] {
        ops.push(Op::LsAdd(pb::LogicalSwitch {
            name: sw.into(),
            ..Default::default()
        }));
        if sw == "ls0" {
            ops.push(Op::LrAdd(pb::LogicalRouter {
                name: "lr0".into(),
                enabled: true,
                ..Default::default()
            }));
        }
        ops.push(Op::LrpAdd(pb::LogicalRouterPort {
            name: format!("lr0-{sw}"),
            router_name: "lr0".into(),
            mac: mac.into(),
            networks: nets.map(String::from).to_vec(),
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
    ops.push(lsp(
        "pod1",
        "ls0",
        "0a:58:0a:f4:00:0b 10.244.0.11 fd00:af4::b",
        true,
    ));
    ops.push(lsp(
        "pod2",
        "ls1",
        "0a:58:0a:f4:01:0c 10.244.1.12 fd00:af4:1::c",
        true,
    ));
    ops.push(lsp("ext", "ls1", "unknown", false));
    ops.push(Op::RouteAdd(pb::StaticRoute {
        router_name: "lr0".into(),
        prefix: "fd00:99::/48".into(),
        nexthop: "fd00:af4:1::fe".into(),
        output_port: String::new(),
    }));
    let mut nb = Nb::default();
    nb.apply_all(ops).expect("valid topology");
    nb
}

fn lports() -> Vec<String> {
    ["pod1", "pod2", "ext"].map(String::from).to_vec()
}

/// UDP from pod1 to `dst` through its gateway, with `hops`.
fn udp6(dst: &str, hops: u8) -> Vec<u8> {
    let mut f = frames::ipv6_from(
        POD1_MAC,
        GW0_MAC,
        a("fd00:af4::b").octets(),
        a(dst).octets(),
        17,
        b"routed6",
    );
    f[21] = hops;
    f
}

fn icmp6(frame: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
    let ip = Ipv6Packet::new_checked(&frame[14..]).expect("IPv6");
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let icmp = Icmpv6Packet::new_checked(ip.payload()).expect("ICMPv6");
    assert!(icmp.verify_checksum(&s, &d), "ICMPv6 checksum");
    (s, d, ip.hop_limit(), ip.payload().to_vec())
}

#[test]
fn ipv6_router_answers_forwards_and_resolves() {
    let nb = topology();
    let mut snap = southbound(&nb);
    let (mut pmd, stats, shared) = pmd_on(&snap, &lports());

    // pod1 asks for its gateway: the switch answers in place, as a router.
    let mut ns = vec![0u8; 128];
    let n = nd_solicit(
        &mut ns,
        POD1_MAC,
        ip6_key_words(a("fd00:af4::b")),
        ip6_key_words(a("fd00:af4::1")),
    )
    .unwrap();
    ns.truncate(n);
    mem(&mut pmd, 0).rx.push_back(ns);
    pmd.poll_once();
    let tx = std::mem::take(&mut mem(&mut pmd, 0).tx);
    assert_eq!(tx.len(), 1, "one NA back to pod1");
    let (s, d, hops, body) = icmp6(&tx[0]);
    assert_eq!((s, d, hops), (a("fd00:af4::1"), a("fd00:af4::b"), 255));
    let ip = Ipv6Packet::new_checked(&tx[0][14..]).unwrap();
    let repr = Icmpv6Repr::parse(
        &s,
        &d,
        &Icmpv6Packet::new_checked(&body[..]).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { flags, lladdr, .. }) = repr else {
        panic!("{repr:?}")
    };
    assert!(flags.bits() & 0x80 != 0, "R flag: {ip:?}");
    assert_eq!(
        lladdr,
        Some(RawHardwareAddress::from_bytes(&GW0_MAC.to_be_bytes()[2..]))
    );
    assert!(mem(&mut pmd, 1).tx.is_empty(), "the NS was not flooded");

    // Routed to pod2: MACs rewritten, hop limit lowered.
    mem(&mut pmd, 0).rx.push_back(udp6("fd00:af4:1::c", 64));
    pmd.poll_once();
    let tx = std::mem::take(&mut mem(&mut pmd, 1).tx);
    assert_eq!(tx.len(), 1, "delivered to pod2");
    let k = switchyard_vswitch::dp::packet::extract(&tx[0], 0).unwrap();
    assert_eq!((k.eth_src, k.eth_dst, k.ip_ttl), (GW1_MAC, POD2_MAC, 63));

    // Hop limit 1: time exceeded, from the gateway, quoting the packet.
    let before = stats.drops[DropReason::TtlExceeded as usize].get();
    let dying = udp6("fd00:af4:1::c", 1);
    mem(&mut pmd, 0).rx.push_back(dying.clone());
    pmd.poll_once();
    assert_eq!(
        stats.drops[DropReason::TtlExceeded as usize].get(),
        before + 1
    );
    let tx = std::mem::take(&mut mem(&mut pmd, 0).tx);
    assert_eq!(tx.len(), 1, "time exceeded back to pod1");
    let (s, d, _, body) = icmp6(&tx[0]);
    assert_eq!(
        (s, d, body[0], body[1]),
        (a("fd00:af4::1"), a("fd00:af4::b"), 3, 0)
    );
    assert_eq!(&body[8..], &dying[14..], "the whole packet quoted");
    assert_eq!(&tx[0][0..6], &POD1_MAC.to_be_bytes()[2..]);

    // A nexthop no NB port names: one solicitation (rate-limited), flooded
    // on ls1, to the solicited-node group of fd00:af4:1::fe.
    let far = udp6("fd00:99::1", 64);
    for _ in 0..3 {
        mem(&mut pmd, 0).rx.push_back(far.clone());
    }
    pmd.poll_once();
    assert_eq!(
        stats.drops[DropReason::NeighborUnresolved as usize].get(),
        3
    );
    for port in [1, 2] {
        let tx = std::mem::take(&mut mem(&mut pmd, port).tx);
        assert_eq!(tx.len(), 1, "port {port}: one NS");
        let (s, d, hops, body) = icmp6(&tx[0]);
        assert_eq!(
            (s, d, hops, body[0]),
            (a("fd00:af4:1::1"), a("ff02::1:ff00:fe"), 255, 135)
        );
        assert_eq!(&tx[0][0..6], &[0x33, 0x33, 0xff, 0, 0, 0xfe]);
    }
    // ext answers; the router learns it, as the agent reports it to SB.
    let na = frames::neighbor_advert(
        (EXT_MAC, GW1_MAC),
        a("fd00:af4:1::fe").octets(),
        a("fd00:af4:1::1").octets(),
        a("fd00:af4:1::fe").octets(),
        EXT_MAC,
    );
    mem(&mut pmd, 2).rx.push_back(na);
    pmd.poll_once();
    let learned = shared.learned.pop().expect("learned a neighbour");
    assert_eq!(
        (learned.ip6, learned.mac),
        (Some(ip6_key_words(a("fd00:af4:1::fe"))), EXT_MAC)
    );
    snap.mac_bindings.push(pb::MacBinding {
        datapath: learned.dp,
        logical_port: "lr0-ls1".into(),
        mac: learned.mac,
        ip6: a("fd00:af4:1::fe").octets().to_vec(),
        ..Default::default()
    });
    let local = switchyard_tests::memory::bindings(&lports());
    shared
        .tables
        .store(std::sync::Arc::new(Tables::build(2, &snap, "", &local)));
    pmd.refresh_tables();
    mem(&mut pmd, 0).rx.push_back(far);
    pmd.poll_once();
    let tx = std::mem::take(&mut mem(&mut pmd, 2).tx);
    assert_eq!(tx.len(), 1, "forwarded to the learned nexthop");
    let k = switchyard_vswitch::dp::packet::extract(&tx[0], 0).unwrap();
    assert_eq!((k.eth_src, k.eth_dst, k.ip_ttl), (GW1_MAC, EXT_MAC, 63));
}
