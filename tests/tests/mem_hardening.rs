//! In-memory only: hostile input the sandbox's pods cannot send or that takes
//! thousands of frames: IPv6 from a port without port security toward an
//! IPv4-only one, a policy change against connections already open, a
//! blind-ACK flood against a small conntrack table, a flood that makes the
//! router answer, and fragments. Spoofing and misaddressing from a pod and
//! the router's answers to its own addresses are the `l2` and `routed`
//! scenarios (tests/scenarios.rs), run over both datapaths.

use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv4Packet, TcpControl};
use std::sync::Arc;
use switchyard_benches::{port_mac, routed_nb, router_mac, switch_nb};
use switchyard_northd::model::Nb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_southbound::DropReason;
use switchyard_tests::frames;
use switchyard_tests::memory::{bindings, mem, pmd_on, southbound};
use switchyard_vswitch::pmd::Pmd;
use switchyard_vswitch::stats::PmdStats;
use switchyard_vswitch::tables::Tables;

fn ip(i: u8) -> Ipv4Address {
    Ipv4Address::new(10, 0, 0, i)
}

fn apply(nb: &mut Nb, ops: Vec<Op>) {
    nb.apply_all(ops).expect("valid ops");
}

fn drops(stats: &PmdStats, r: DropReason) -> u64 {
    stats.drops[r as usize].get()
}

/// Sends `f` in on slot `i`; returns what each of `ports` slots sent.
fn send(pmd: &mut Pmd, i: usize, f: Vec<u8>, ports: usize) -> Vec<Vec<Vec<u8>>> {
    mem(pmd, i).rx.push_back(f);
    pmd.poll_once();
    (0..ports)
        .map(|p| std::mem::take(&mut mem(pmd, p).tx))
        .collect()
}

/// An IPv6/UDP frame (link-local source and destination) from `src_mac`.
fn ipv6_frame(src_mac: u64, dst_mac: u64) -> Vec<u8> {
    frames::ipv6(src_mac, dst_mac, 0x66, frames::link_local(2), 17, b"v6!!")
}

#[test]
fn egress_port_security_takes_only_its_own_family_and_addresses_from_an_open_port() {
    // p1 and p2 list a MAC and an IPv4 address; p3 lists nothing (a sender
    // the sandbox's pods cannot play: the l2 scenario has the rest).
    let mut nb = switch_nb(2);
    apply(
        &mut nb,
        vec![Op::LspAdd(pb::LogicalSwitchPort {
            name: "p3".into(),
            switch_name: "ls0".into(),
            addresses: vec!["unknown".into()],
            enabled: true,
            ..Default::default()
        })],
    );
    let lports: Vec<String> = ["p1", "p2", "p3"].map(String::from).to_vec();
    let (mut pmd, stats, _) = pmd_on(&southbound(&nb), &lports);

    // p3 (no port security) may send IPv6, but p2 takes none: it lists IPv4 only.
    let out = send(&mut pmd, 2, ipv6_frame(0x0a00_0000_0063, port_mac(2)), 3);
    assert!(out[1].is_empty());
    assert_eq!(drops(&stats, DropReason::EgressPortSecurityIp), 1);
    // To p2's MAC but an address p2 does not own, twice (the cached verdict too).
    for n in [2, 3] {
        let foreign = frames::udp(0x0a00_0000_0063, port_mac(2), ip(99), ip(77), 9, b"x");
        assert!(
            send(&mut pmd, 2, foreign, 3)[1].is_empty(),
            "p2 got a frame for 10.0.0.77"
        );
        assert_eq!(drops(&stats, DropReason::EgressPortSecurityIp), n);
    }

    // Its own address, IPv4 broadcast and multicast reach it.
    for dst in [
        ip(2),
        Ipv4Address::BROADCAST,
        Ipv4Address::new(239, 1, 2, 3),
    ] {
        let f = frames::udp(0x0a00_0000_0063, port_mac(2), ip(99), dst, 9, b"ok");
        assert_eq!(send(&mut pmd, 2, f, 3)[1].len(), 1, "to {dst}");
    }
    // And p1's own traffic still flows, twice (miss, then cache hit).
    for _ in 0..2 {
        let f = frames::udp(port_mac(1), port_mac(2), ip(1), ip(2), 9, b"ok");
        assert_eq!(send(&mut pmd, 0, f, 3)[1].len(), 1);
    }
    assert!(stats.emc_hits.get() > 0);
}

fn acl(prio: u32, m: &str, action: &str) -> Op {
    Op::AclAdd(pb::Acl {
        switch_name: "ls0".into(),
        direction: "to-lport".into(),
        priority: prio,
        r#match: m.into(),
        action: action.into(),
        name: String::new(),
    })
}

type Fixture = (
    Pmd,
    Arc<PmdStats>,
    Arc<switchyard_vswitch::pmd::SharedTables>,
);

/// switch_nb(3) where p2 admits only what `allow` matches (priority 100,
/// allow-related) over a default deny (priority 10); a PMD on it.
fn isolated_p2(allow: &str) -> (Nb, Vec<String>, Fixture) {
    let mut nb = switch_nb(3);
    apply(
        &mut nb,
        vec![
            acl(100, allow, "allow-related"),
            acl(10, r#"outport == "p2" && ip4"#, "drop"),
        ],
    );
    let lports: Vec<String> = ["p1", "p2", "p3"].map(String::from).to_vec();
    let f = pmd_on(&southbound(&nb), &lports);
    (nb, lports, f)
}

fn tcp(from: usize, to: usize, sport: u16, dport: u16, c: TcpControl, ack: Option<u32>) -> Vec<u8> {
    frames::tcp(
        port_mac(from),
        port_mac(to),
        ip(from as u8),
        ip(to as u8),
        sport,
        dport,
        c,
        ack,
    )
}

/// Opens a TCP connection from port `a` to `b` (slots a-1, b-1); panics if
/// any segment of the handshake is not delivered.
fn handshake(pmd: &mut Pmd, a: usize, b: usize, sport: u16, dport: u16) {
    let out = send(
        pmd,
        a - 1,
        tcp(a, b, sport, dport, TcpControl::Syn, None),
        3,
    );
    assert_eq!(out[b - 1].len(), 1, "SYN {a}->{b}");
    let out = send(
        pmd,
        b - 1,
        tcp(b, a, dport, sport, TcpControl::Syn, Some(1001)),
        3,
    );
    assert_eq!(out[a - 1].len(), 1, "SYN-ACK {b}->{a}");
    let out = send(
        pmd,
        a - 1,
        tcp(a, b, sport, dport, TcpControl::None, Some(1001)),
        3,
    );
    assert_eq!(out[b - 1].len(), 1, "ACK {a}->{b}");
}

#[test]
fn a_new_deny_cuts_open_connections_and_keeps_them_cut_while_others_flow() {
    let allow = r#"outport == "p2" && ip4.src == 10.0.0.1 && tcp.dst == 80"#;
    let (mut nb, lports, (mut pmd, stats, shared)) = isolated_p2(allow);
    handshake(&mut pmd, 1, 2, 40000, 80); // admitted by the ACL
    handshake(&mut pmd, 2, 3, 41000, 22); // p2's own connection

    // The policy changes: p1 may no longer reach p2 at all.
    apply(
        &mut nb,
        vec![acl(
            200,
            r#"outport == "p2" && ip4.src == 10.0.0.1"#,
            "drop",
        )],
    );
    let local = bindings(&lports);
    shared
        .tables
        .store(Arc::new(Tables::build(7, &southbound(&nb), "", &local)));
    pmd.refresh_tables();

    let data = || tcp(1, 2, 40000, 80, TcpControl::Psh, Some(1001));
    assert!(
        send(&mut pmd, 0, data(), 3)[1].is_empty(),
        "p1's next segment"
    );
    assert_eq!(drops(&stats, DropReason::AclDrop), 1);
    let conn = *pmd
        .edge()
        .ct
        .iter()
        .find(|c| c.orig.sport == 40000)
        .expect("the connection is still tracked");
    assert_eq!(conn.mark & 1, 1, "marked blocked");
    // Its replies are cut too, from the cache as well as the slow path.
    for n in 1..=2 {
        let r = tcp(2, 1, 80, 40000, TcpControl::None, Some(1001));
        assert!(send(&mut pmd, 1, r, 3)[0].is_empty());
        assert_eq!(drops(&stats, DropReason::AclBlocked), n);
    }
    // p2's own connection to p3 is untouched: its replies still pass.
    for _ in 0..2 {
        let r = tcp(3, 2, 22, 41000, TcpControl::None, Some(1001));
        assert_eq!(send(&mut pmd, 2, r, 3)[1].len(), 1);
    }
    // A new connection from p1 is refused as before.
    let syn = tcp(1, 2, 40001, 80, TcpControl::Syn, None);
    assert!(send(&mut pmd, 0, syn, 3)[1].is_empty());

    // The deny goes again: the connection's next segment re-admits it.
    nb.apply_all(vec![Op::AclDel(pb::AclDel {
        switch_name: "ls0".into(),
        direction: "to-lport".into(),
        priority: 200,
        r#match: r#"outport == "p2" && ip4.src == 10.0.0.1"#.into(),
    })])
    .unwrap();
    shared
        .tables
        .store(Arc::new(Tables::build(8, &southbound(&nb), "", &local)));
    pmd.refresh_tables();
    assert_eq!(send(&mut pmd, 0, data(), 3)[1].len(), 1);
    let r = tcp(2, 1, 80, 40000, TcpControl::None, Some(1001));
    assert_eq!(send(&mut pmd, 1, r, 3)[0].len(), 1);
}

const VIP: Ipv4Address = Ipv4Address::new(10, 96, 0, 10);

/// routed_nb with a TCP VIP 10.96.0.10:80 -> p2 (10.1.0.2):8080 on ls0.
fn service_nb() -> Nb {
    let mut nb = routed_nb(0);
    apply(
        &mut nb,
        vec![
            switchyard_tests::memory::lb_op("web", "tcp", "10.96.0.10:80", "10.1.0.2:8080"),
            switchyard_tests::memory::lb_attach_op("web", "ls0"),
        ],
    );
    nb
}

fn to_vip(sport: u16, c: TcpControl, ack: Option<u32>) -> Vec<u8> {
    frames::tcp(port_mac(1), router_mac(0), ip(1), VIP, sport, 80, c, ack)
}

#[test]
fn blind_acks_to_a_vip_cannot_fill_conntrack_for_real_clients() {
    let lports: Vec<String> = ["p1", "p2"].map(String::from).to_vec();
    let (mut pmd, stats, _) = pmd_on(&southbound(&service_nb()), &lports);
    pmd.set_ct_capacity(64);
    // A real client's connection, established (the backend answered).
    let out = send(&mut pmd, 0, to_vip(30000, TcpControl::Syn, None), 2);
    assert_eq!(out[1].len(), 1);
    let back = |sport: u16, c| {
        frames::tcp(
            port_mac(2),
            router_mac(1),
            Ipv4Address::new(10, 1, 0, 2),
            ip(1),
            8080,
            sport,
            c,
            Some(1001),
        )
    };
    assert_eq!(
        send(&mut pmd, 1, back(30000, TcpControl::Syn), 2)[0].len(),
        1
    );
    assert_eq!(
        send(&mut pmd, 0, to_vip(30000, TcpControl::None, Some(1001)), 2)[1].len(),
        1
    );

    // Thousands of blind ACKs from ever new ports.
    for sport in 0..3000u16 {
        mem(&mut pmd, 0)
            .rx
            .push_back(to_vip(1024 + sport, TcpControl::None, Some(77)));
    }
    while pmd.poll_once() > 0 {}
    let _ = std::mem::take(&mut mem(&mut pmd, 1).tx);
    assert!(pmd.edge().ct.len() <= 64);
    assert!(
        pmd.edge().ct.stats.early_drops > 2900,
        "{:?}",
        pmd.edge().ct.stats
    );

    // The real client's connection still works, and a new one gets in.
    assert_eq!(
        send(&mut pmd, 0, to_vip(30000, TcpControl::Psh, Some(1001)), 2)[1].len(),
        1
    );
    assert_eq!(
        send(&mut pmd, 0, to_vip(30001, TcpControl::Syn, None), 2)[1].len(),
        1
    );
    assert_eq!(drops(&stats, DropReason::CtFull), 0);

    // A RST or FIN with no connection opens nothing: dropped and counted.
    let before = pmd.edge().ct.stats.inserts;
    for c in [TcpControl::Rst, TcpControl::Fin] {
        let out = send(&mut pmd, 0, to_vip(50000, c, Some(5)), 2);
        assert!(out[1].is_empty(), "{c:?} reached the backend");
    }
    assert_eq!(drops(&stats, DropReason::CtNoConnection), 2);
    assert_eq!(pmd.edge().ct.stats.inserts, before);
}

/// A frame from p1 (10.0.0.1) to the router's address 10.0.0.254 on ls0.
fn to_router(proto: IpProtocol) -> Vec<u8> {
    let gw = Ipv4Address::new(10, 0, 0, 254);
    match proto {
        IpProtocol::Tcp => frames::tcp(
            port_mac(1),
            router_mac(0),
            ip(1),
            gw,
            40000,
            22,
            TcpControl::Syn,
            None,
        ),
        _ => frames::udp(port_mac(1), router_mac(0), ip(1), gw, 53, b"hello?"),
    }
}

#[test]
fn a_flood_that_makes_the_router_answer_gets_a_bounded_number_of_answers() {
    let lports: Vec<String> = ["p1", "p2"].map(String::from).to_vec();
    let (mut pmd, stats, _) = pmd_on(&southbound(&routed_nb(0)), &lports);
    // One answer a second after a burst of 50: the bound below allows for
    // however long the flood takes (the limiter reads the PMD's clock), so a
    // slow build or a busy machine changes nothing.
    pmd.set_answer_rate(1, 50);
    let t0 = std::time::Instant::now();
    for _ in 0..500 {
        mem(&mut pmd, 0).rx.push_back(to_router(IpProtocol::Udp));
    }
    while pmd.poll_once() > 0 {}
    let refill = t0.elapsed().as_secs() as usize + 1;
    let answers = std::mem::take(&mut mem(&mut pmd, 0).tx).len();
    assert!((50..=50 + refill).contains(&answers), "{answers} answers");
    assert_eq!(
        drops(&stats, DropReason::IcmpRateLimited) as usize,
        500 - answers
    );
    // Forwarding is not affected: p1 -> p2 across the router.
    let f = frames::udp(
        port_mac(1),
        router_mac(0),
        ip(1),
        Ipv4Address::new(10, 1, 0, 2),
        9,
        b"through",
    );
    assert_eq!(send(&mut pmd, 0, f, 2)[1].len(), 1);
}

/// service_nb plus a UDP VIP 10.96.0.10:53 -> p2 (10.1.0.2):5353.
fn udp_service_nb() -> Nb {
    let mut nb = service_nb();
    apply(
        &mut nb,
        vec![
            switchyard_tests::memory::lb_op("dns", "udp", "10.96.0.10:53", "10.1.0.2:5353"),
            switchyard_tests::memory::lb_attach_op("dns", "ls0"),
        ],
    );
    nb
}

/// Checks a reassembled UDP datagram: addresses, ports, checksum, size.
fn check_udp(frags: &[Vec<u8>], src: Ipv4Address, dst: Ipv4Address, ports: (u16, u16), len: usize) {
    let (s, d, data) = frames::reassemble(frags);
    assert_eq!((s, d), (src, dst));
    let u = smoltcp::wire::UdpPacket::new_checked(&data[..]).unwrap();
    assert_eq!((u.src_port(), u.dst_port()), ports);
    assert_eq!(u.payload().len(), len);
    assert!(
        u.verify_checksum(&src.into(), &dst.into()),
        "UDP checksum of the whole datagram"
    );
}

#[test]
fn fragmented_datagrams_are_load_balanced_whole_and_answered_from_the_vip() {
    let lports: Vec<String> = ["p1", "p2"].map(String::from).to_vec();
    let (mut pmd, stats, _) = pmd_on(&southbound(&udp_service_nb()), &lports);
    let backend = Ipv4Address::new(10, 1, 0, 2);
    let big: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let q = frames::udp(port_mac(1), router_mac(0), ip(1), VIP, 53, &big);
    let frags = frames::fragments(&q, 1500, 0x1234);
    assert_eq!(frags.len(), 3);
    for f in &frags {
        mem(&mut pmd, 0).rx.push_back(f.clone());
    }
    pmd.poll_once();
    let got = std::mem::take(&mut mem(&mut pmd, 1).tx);
    assert_eq!(
        got.len(),
        3,
        "every fragment reaches the backend; drops {:?}",
        stats.drops
    );
    check_udp(&got, ip(1), backend, (40000, 5353), 3000);

    // The backend's fragmented answer leaves as coming from the VIP.
    let mut r = frames::udp(port_mac(2), router_mac(1), backend, ip(1), 40000, &big);
    r[34..36].copy_from_slice(&5353u16.to_be_bytes());
    {
        let mut p = Ipv4Packet::new_unchecked(&mut r[14..]);
        let mut u = smoltcp::wire::UdpPacket::new_unchecked(p.payload_mut());
        u.fill_checksum(&backend.into(), &ip(1).into());
    }
    for f in frames::fragments(&r, 1500, 0x9999) {
        mem(&mut pmd, 1).rx.push_back(f);
    }
    pmd.poll_once();
    let back = std::mem::take(&mut mem(&mut pmd, 0).tx);
    assert_eq!(back.len(), 3, "drops {:?}", stats.drops);
    check_udp(&back, VIP, ip(1), (53, 40000), 3000);

    // A later fragment whose first never came: it cannot be translated.
    let orphan = frames::fragments(&q, 1500, 0x5555).pop().unwrap();
    assert!(send(&mut pmd, 0, orphan, 2)[1].is_empty());
    assert_eq!(drops(&stats, DropReason::FragNoFirst), 1);

    // A tiny TCP fragment (offset 8) that would rewrite the TCP flags.
    let mut tiny = frames::fragments(&q, 1500, 0x6666).pop().unwrap();
    {
        let mut p = Ipv4Packet::new_unchecked(&mut tiny[14..]);
        p.set_next_header(IpProtocol::Tcp);
        p.set_frag_offset(8);
        p.fill_checksum();
    }
    assert!(send(&mut pmd, 0, tiny, 2)[1].is_empty());
    assert_eq!(drops(&stats, DropReason::FragTiny), 1);
}

#[test]
fn stateful_acls_decide_later_fragments_like_their_first() {
    // p2 admits UDP 5000 only; everything else to p2 is dropped.
    let (_, _, (mut pmd, stats, _)) = isolated_p2(r#"outport == "p2" && udp.dst == 5000"#);
    let big = vec![7u8; 2500];
    let ok = frames::udp(port_mac(1), port_mac(2), ip(1), ip(2), 5000, &big);
    for f in frames::fragments(&ok, 1500, 0x0101) {
        mem(&mut pmd, 0).rx.push_back(f);
    }
    pmd.poll_once();
    let got = std::mem::take(&mut mem(&mut pmd, 1).tx);
    assert_eq!(
        got.len(),
        2,
        "both fragments admitted; drops {:?}",
        stats.drops
    );
    check_udp(&got, ip(1), ip(2), (40000, 5000), 2500);
    // To another port: the first fragment is refused, and so is the rest.
    let no = frames::udp(port_mac(1), port_mac(2), ip(1), ip(2), 6000, &big);
    for f in frames::fragments(&no, 1500, 0x0202) {
        mem(&mut pmd, 0).rx.push_back(f);
    }
    pmd.poll_once();
    assert!(mem(&mut pmd, 1).tx.is_empty());
    assert_eq!(drops(&stats, DropReason::AclDrop), 2);
}

#[test]
fn fragments_cross_a_floating_ip_on_a_switch_with_load_balancers_and_acls() {
    // The edge translates a datagram twice over (in from p1's port, out to
    // p4's): each side keeps its own record of the first fragment.
    let mut pmd = switchyard_tests::fuzz::everything_pmd();
    let (p1, p4) = (ip(1), Ipv4Address::new(10, 1, 0, 4));
    let fip = Ipv4Address::new(10, 1, 0, 50);
    let big = vec![3u8; 3000];
    let q = frames::udp(port_mac(1), router_mac(0), p1, p4, 7000, &big);
    for f in frames::fragments(&q, 1500, 0x77) {
        mem(&mut pmd, 0).rx.push_back(f);
    }
    pmd.poll_once();
    let got = switchyard_tests::fuzz::sent(&mut pmd, 2);
    assert_eq!(got.len(), 3, "drops {:?}", pmd.stats.drops);
    check_udp(&got, fip, p4, (40000, 7000), 3000);
    assert_eq!(drops(&pmd.stats, DropReason::FragNoFirst), 0);
}
