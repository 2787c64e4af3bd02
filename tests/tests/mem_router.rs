//! In-memory only: neighbour learning for a next hop no NB port names (the
//! sandbox's pods all have known addresses). The routed hop, ICMP errors, echo
//! and ARP answers are the `routed` scenario (tests/scenarios.rs), run over
//! both datapaths.

use smoltcp::wire::{EthernetFrame, Ipv4Address, Ipv4Packet};
use switchyard_northd::model::Nb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_southbound::DropReason;
use switchyard_tests::frames;
use switchyard_tests::memory::{mem, pmd_on, southbound};
use switchyard_vswitch::tables::Tables;

const POD1_MAC: u64 = 0x0a58_0af4_000b;
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
    nb.apply_all(ops).expect("valid topology");
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
        let k = switchyard_vswitch::dp::packet::extract(&tx[0], 0).unwrap();
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
        ..Default::default()
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
