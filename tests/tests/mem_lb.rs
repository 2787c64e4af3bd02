//! In-memory only: load-balancer and NAT cases the AF_XDP runner cannot play
//! (a pod's kernel would answer the TCP segments itself) and mutation storms of
//! thousands of frames. A VIP's translation both ways, the RST of a VIP
//! without backends and ICMP errors through NAT are the `lb` and `nat`
//! scenarios (tests/scenarios.rs), run over both datapaths.

use smoltcp::wire::{Ipv4Address, Ipv4Packet, TcpControl, TcpPacket};
use switchyard_benches::{port_mac, routed_nb, router_mac};
use switchyard_northd::model::Nb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_tests::frames;
use switchyard_tests::memory::{mem, pmd_on, southbound};

const VIP: Ipv4Address = Ipv4Address::new(10, 96, 0, 10);
const P1: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const P2: Ipv4Address = Ipv4Address::new(10, 1, 0, 2);

/// routed_nb (p1 on ls0, p2 on ls1, lr0 between) with load balancers on ls0:
/// udp VIP:53 -> p2:5353, tcp VIP:80 -> p2:8080, tcp VIP:90 -> no backends.
fn topology() -> Nb {
    let mut nb = routed_nb(0);
    let lb = switchyard_tests::memory::lb_op;
    let attach = |name: &str| switchyard_tests::memory::lb_attach_op(name, "ls0");
    let ops = vec![
        lb("dns", "udp", "10.96.0.10:53", "10.1.0.2:5353"),
        lb("web", "tcp", "10.96.0.10:80", "10.1.0.2:8080"),
        lb("none", "tcp", "10.96.0.10:90", ""),
        attach("dns"),
        attach("web"),
        attach("none"),
    ];
    nb.apply_all(ops).expect("valid load balancers");
    nb
}

fn lports() -> Vec<String> {
    ["p1", "p2"].map(String::from).to_vec()
}

/// The one frame port `i` transmitted.
fn sent(pmd: &mut switchyard_vswitch::pmd::Pmd, i: usize) -> Vec<u8> {
    let tx = std::mem::take(&mut mem(pmd, i).tx);
    assert_eq!(tx.len(), 1, "port {i} sent {} frames", tx.len());
    tx.into_iter().next().unwrap()
}

#[test]
fn a_client_port_reused_for_a_direct_connection_is_not_rewritten() {
    let (mut pmd, _, _) = pmd_on(&southbound(&topology()), &lports());
    // A connection to the VIP from port 40002, translated to p2:8080.
    let syn = frames::tcp(
        port_mac(1),
        router_mac(0),
        P1,
        VIP,
        40002,
        80,
        TcpControl::Syn,
        None,
    );
    mem(&mut pmd, 0).rx.push_back(syn);
    pmd.poll_once();
    let f = sent(&mut pmd, 1);
    let t = TcpPacket::new_checked(&f[34..]).unwrap();
    assert_eq!(t.dst_port(), 8080);
    // The same client port, now straight to p2:8080: the earlier entry's
    // reply tuple is this connection's, and must not rewrite its SYN-ACK.
    let syn = frames::tcp(
        port_mac(1),
        router_mac(0),
        P1,
        P2,
        40002,
        8080,
        TcpControl::Syn,
        None,
    );
    mem(&mut pmd, 0).rx.push_back(syn);
    pmd.poll_once();
    let _ = sent(&mut pmd, 1);
    let synack = frames::tcp(
        port_mac(2),
        router_mac(1),
        P2,
        P1,
        8080,
        40002,
        TcpControl::Syn,
        Some(1001),
    );
    mem(&mut pmd, 1).rx.push_back(synack);
    pmd.poll_once();
    let f = sent(&mut pmd, 0);
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(
        ip.src_addr(),
        P2,
        "the direct connection's reply keeps its source"
    );
    assert!(pmd.edge().ct.is_empty(), "the stale entry is gone");
}

#[test]
fn mutated_frames_through_the_load_balancer_are_counted_never_a_panic() {
    let (mut pmd, stats, _) = pmd_on(&southbound(&topology()), &lports());
    let seeds = [
        frames::udp(port_mac(1), router_mac(0), P1, VIP, 53, b"query"),
        frames::tcp(
            port_mac(1),
            router_mac(0),
            P1,
            VIP,
            40003,
            80,
            TcpControl::Syn,
            None,
        ),
        frames::tcp(
            port_mac(1),
            router_mac(0),
            P1,
            VIP,
            40004,
            90,
            TcpControl::Syn,
            None,
        ),
    ];
    // A deterministic xorshift: the same mutations every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..3000 {
        let mut f = seeds[i % seeds.len()].clone();
        for _ in 0..(next() % 4 + 1) {
            let at = 14 + (next() as usize % (f.len() - 14));
            f[at] = next() as u8;
        }
        if next().is_multiple_of(5) {
            let n = 14 + next() as usize % (f.len() - 14);
            f.truncate(n);
        }
        mem(&mut pmd, 0).rx.push_back(f);
        pmd.poll_once();
        mem(&mut pmd, 0).tx.clear();
        mem(&mut pmd, 1).tx.clear();
    }
    let drops: u64 = stats.drops.iter().map(|d| d.get()).sum();
    assert!(drops > 0, "malformed frames are counted");
    assert_eq!(stats.packets.get(), 3000);
}

/// An ICMP port unreachable from p2 about the UDP datagram in `quoted`
/// (its IPv4 packet), addressed to `to` through the router.
fn port_unreachable(quoted: &[u8], to: Ipv4Address) -> Vec<u8> {
    let q = &quoted[14..14 + 28];
    let mut f = frames::udp(port_mac(2), router_mac(1), P2, to, 9, &[0u8; 36]);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_next_header(smoltcp::wire::IpProtocol::Icmp);
        ip.fill_checksum();
        let icmp = ip.payload_mut();
        icmp[..8].copy_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
        icmp[8..36].copy_from_slice(q);
        smoltcp::wire::Icmpv4Packet::new_unchecked(icmp).fill_checksum();
    }
    f
}

#[test]
fn icmp_errors_about_snat_connections_are_translated_and_mutations_never_panic() {
    let mut nb = routed_nb(0);
    nb.apply_all(vec![Op::NatAdd(pb::NatRule {
        router_name: "lr0".into(),
        r#type: "snat".into(),
        external_ip: "10.1.0.100".into(),
        logical_ip: "10.0.0.0/24".into(),
    })])
    .expect("valid NAT rule");
    let (mut pmd, stats, _) = pmd_on(&southbound(&nb), &lports());
    // p1 -> p2 leaves ls1 SNATed to 10.1.0.100.
    let q = frames::udp(port_mac(1), router_mac(0), P1, P2, 53, b"query");
    mem(&mut pmd, 0).rx.push_back(q);
    pmd.poll_once();
    let out = sent(&mut pmd, 1);
    let ext = Ipv4Address::new(10, 1, 0, 100);
    assert_eq!(Ipv4Packet::new_checked(&out[14..]).unwrap().src_addr(), ext);
    // p2's port unreachable about it reaches p1, quoting what p1 sent.
    let err = port_unreachable(&out, ext);
    mem(&mut pmd, 1).rx.push_back(err.clone());
    pmd.poll_once();
    let back = sent(&mut pmd, 0);
    let ip = Ipv4Packet::new_checked(&back[14..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (P2, P1));
    assert!(ip.verify_checksum());
    let icmp = smoltcp::wire::Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    let inner = Ipv4Packet::new_checked(&ip.payload()[8..]).unwrap();
    assert_eq!(
        (inner.src_addr(), inner.dst_addr()),
        (P1, P2),
        "quoted packet translated"
    );
    assert!(inner.verify_checksum());
    // Mutations of that error (outer and quoted headers): counted, never a panic.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut f = err.clone();
        let at = 14 + (x as usize % (f.len() - 14));
        f[at] = (x >> 32) as u8;
        if x.is_multiple_of(7) {
            f.truncate(14 + (x >> 40) as usize % (f.len() - 14));
        }
        mem(&mut pmd, 1).rx.push_back(f);
        pmd.poll_once();
        mem(&mut pmd, 0).tx.clear();
        mem(&mut pmd, 1).tx.clear();
    }
    assert!(stats.packets.get() >= 3002);
}

/// Two PMDs, each owning one port and handing the other's frames over: a
/// connection to the VIP is DNATed by the client's PMD and its reply
/// un-DNATed by the backend's, through the one conntrack they share.
#[test]
fn a_connection_whose_directions_land_on_two_pmds_is_translated_both_ways() {
    use std::sync::Arc;
    use switchyard_vswitch::pmd::handoff::Handoff;
    use switchyard_vswitch::pmd::Pmd;
    use switchyard_vswitch::port::MemPort;
    use switchyard_vswitch::stats::{PmdStats, PortStats};
    let snap = southbound(&topology());
    let tables = switchyard_vswitch::tables::Tables::build(
        1,
        &snap,
        "",
        &switchyard_tests::memory::bindings(&lports()),
    );
    let shared = switchyard_vswitch::pmd::SharedTables::with_pmds(tables, 2);
    let mut a = Pmd::new(shared.clone(), Arc::new(PmdStats::default()), 4096);
    let mut b = Pmd::new(shared.clone(), Arc::new(PmdStats::default()), 4096);
    b.set_id(1);
    b.share_edge(a.edge_handle());
    a.set_staged(true);
    let to_b = Handoff::new(1, 64, b.waker());
    let to_a = Handoff::new(0, 64, a.waker());
    b.add_inbound(to_b.clone());
    a.add_inbound(to_a.clone());
    let st = || Arc::new(PortStats::default());
    a.add_port(0, Box::new(MemPort::new()), st());
    a.add_remote(1, to_b, st());
    b.add_port(1, Box::new(MemPort::new()), st());
    b.add_remote(0, to_a, st());

    let syn = frames::tcp(
        port_mac(1),
        router_mac(0),
        P1,
        VIP,
        40100,
        80,
        TcpControl::Syn,
        None,
    );
    mem(&mut a, 0).rx.push_back(syn);
    a.poll_once();
    assert!(mem(&mut b, 1).tx.is_empty(), "not sent before B drains");
    b.poll_once();
    let f = sent(&mut b, 1);
    let t = TcpPacket::new_checked(&f[34..]).unwrap();
    assert_eq!(t.dst_port(), 8080, "DNATed by the client's PMD");
    let synack = frames::tcp(
        port_mac(2),
        router_mac(1),
        P2,
        P1,
        8080,
        40100,
        TcpControl::Syn,
        Some(1001),
    );
    mem(&mut b, 1).rx.push_back(synack);
    b.poll_once();
    a.poll_once();
    let f = sent(&mut a, 0);
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(ip.src_addr(), VIP, "un-DNATed by the backend's PMD");
    let t = TcpPacket::new_checked(&f[34..]).unwrap();
    assert_eq!(t.src_port(), 80);
    assert_eq!(a.edge().ct.len(), 1, "one connection, in the shared table");
}
