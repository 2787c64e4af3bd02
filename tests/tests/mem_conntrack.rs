//! Stateful logical flows on the in-memory path: flows that match `ct_state`
//! and commit with `ct_commit` (mark and label), added to what northd compiles,
//! executed by the real PMD. A switch whose flows use conntrack has its
//! packets tracked where they enter; these tests check what the flows see
//! (new, established, reply, invalid, related) and what they leave behind.

use smoltcp::wire::{IpAddress, Ipv4Address, Ipv4Packet, TcpControl, TcpPacket};
use switchyard_benches::{port_mac, routed_nb, router_mac, switch_nb};
use switchyard_southbound::field::ct;
use switchyard_southbound::pb::{self, action::Kind};
use switchyard_southbound::{DropReason, Stage};
use switchyard_tests::frames;
use switchyard_tests::memory::{mem, pmd_on, southbound};
use switchyard_vswitch::pmd::Pmd;
use switchyard_vswitch::stats::PmdStats;
use switchyard_vswitch::tables::STATEFUL_ZONE;

const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

fn dp_key(sb: &pb::SbSnapshot, name: &str) -> u32 {
    sb.datapaths
        .iter()
        .find(|d| d.name == name)
        .unwrap()
        .tunnel_key
}

fn port_key(sb: &pb::SbSnapshot, name: &str) -> u32 {
    let p = sb.port_bindings.iter().find(|p| p.logical_port == name);
    p.unwrap().tunnel_key
}

fn state(bits: u8, mask: u8) -> pb::FieldMatch {
    pb::FieldMatch {
        field: "ct_state".into(),
        value: bits.into(),
        mask: mask.into(),
        port: String::new(),
    }
}

fn act(k: Kind) -> pb::Action {
    pb::Action { kind: Some(k) }
}

fn next() -> pb::Action {
    act(Kind::Next(pb::Next {}))
}

fn drop(r: DropReason) -> pb::Action {
    act(Kind::Drop(pb::Drop {
        reason: r.as_str().into(),
    }))
}

fn flow(
    dp: u32,
    st: Stage,
    prio: u32,
    m: Vec<pb::FieldMatch>,
    a: Vec<pb::Action>,
) -> pb::LogicalFlow {
    pb::LogicalFlow {
        datapath: dp,
        pipeline: st.pipeline().as_str().into(),
        stage: st.name().into(),
        table: st.table(),
        priority: prio,
        matches: m,
        actions: a,
        source: "tests/mem_conntrack.rs".into(),
    }
}

/// `ct_state` +trk plus `bits`, the other named bits in `clear` cleared.
fn st(bits: u8, clear: u8) -> pb::FieldMatch {
    state(ct::TRK | bits, ct::TRK | bits | clear)
}

/// Ingress ACL flows of a "p1 may open, nobody else" policy on `ls`:
/// invalid dropped, established and related allowed, new from p1 committed
/// with mark 0x2 and label 0x77, any other new dropped.
fn one_way_policy(sb: &mut pb::SbSnapshot, ls: &str, from: &str) {
    let dp = dp_key(sb, ls);
    let inport = pb::FieldMatch {
        field: "inport".into(),
        value: port_key(sb, from).into(),
        mask: 0xffff_ffff,
        port: from.into(),
    };
    let commit = act(Kind::CtCommit(pb::CtCommit {
        mark: 0x2,
        mark_mask: 0xff,
        label: 0x77,
        label_mask: u32::MAX,
    }));
    let s = Stage::LsInAcl;
    sb.flows.extend([
        flow(
            dp,
            s,
            65535,
            vec![st(ct::INV, 0)],
            vec![drop(DropReason::CtInvalid)],
        ),
        flow(dp, s, 1000, vec![st(ct::EST, ct::NEW)], vec![next()]),
        flow(dp, s, 1000, vec![st(ct::REL, 0)], vec![next()]),
        flow(
            dp,
            s,
            900,
            vec![st(ct::NEW, 0), inport],
            vec![commit, next()],
        ),
        flow(
            dp,
            s,
            800,
            vec![st(ct::NEW, 0)],
            vec![drop(DropReason::PipelineDrop)],
        ),
    ]);
}

fn drops(stats: &PmdStats, r: DropReason) -> u64 {
    stats.drops[r as usize].get()
}

/// Frames port `i` transmitted since the last call.
fn taken(pmd: &mut Pmd, i: usize) -> Vec<Vec<u8>> {
    std::mem::take(&mut mem(pmd, i).tx)
}

/// Sends `f` in on port `i` and returns what each port sent.
fn send(pmd: &mut Pmd, i: usize, f: Vec<u8>, ports: usize) -> Vec<Vec<Vec<u8>>> {
    mem(pmd, i).rx.push_back(f);
    pmd.poll_once();
    (0..ports).map(|p| taken(pmd, p)).collect()
}

/// A TCP segment from `a` (port i) to `b` (port j) on one switch.
fn seg(i: usize, j: usize, sport: u16, dport: u16, c: TcpControl, ack: Option<u32>) -> Vec<u8> {
    let ip = |k: usize| Ipv4Address::new(10, 0, 0, k as u8);
    frames::tcp(port_mac(i), port_mac(j), ip(i), ip(j), sport, dport, c, ack)
}

/// Rewrites a TCP segment's sequence number (checksum fixed).
fn with_seq(mut f: Vec<u8>, seq: u32) -> Vec<u8> {
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let mut t = TcpPacket::new_unchecked(ip.payload_mut());
    t.set_seq_number(smoltcp::wire::TcpSeqNumber(seq as i32));
    t.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
    f
}

#[test]
fn stateful_flows_let_connections_open_one_way_only() {
    let mut sb = southbound(&switch_nb(2));
    one_way_policy(&mut sb, "ls0", "p1");
    let (mut pmd, stats, shared) = pmd_on(&sb, &["p1".into(), "p2".into()]);
    let t = shared.tables.load();
    let zone = t.slot(0).unwrap().ct_zone;
    assert!(zone & STATEFUL_ZONE != 0, "ls0 is tracked: {zone:#x}");

    // p1 opens to p2: committed with the mark and label of the flow.
    let out = send(&mut pmd, 0, seg(1, 2, 40000, 80, TcpControl::Syn, None), 2);
    assert_eq!((out[0].len(), out[1].len()), (0, 1), "the SYN reaches p2");
    assert_eq!(pmd.edge().ct.len(), 1);
    let c = *pmd.edge().ct.iter().next().unwrap();
    assert_eq!((c.orig.zone, c.mark, c.label), (zone, 0x2, 0x77));

    // p2's answer is an established reply; p1's ACK established.
    let out = send(
        &mut pmd,
        1,
        seg(2, 1, 80, 40000, TcpControl::Syn, Some(1001)),
        2,
    );
    assert_eq!(out[0].len(), 1, "the SYN-ACK reaches p1");
    let out = send(
        &mut pmd,
        0,
        seg(1, 2, 40000, 80, TcpControl::None, Some(1001)),
        2,
    );
    assert_eq!(out[1].len(), 1, "the ACK reaches p2");

    // p2 may not open a connection of its own to p1.
    let out = send(&mut pmd, 1, seg(2, 1, 5000, 22, TcpControl::Syn, None), 2);
    assert!(out[0].is_empty(), "p2's SYN is dropped");
    assert_eq!(drops(&stats, DropReason::PipelineDrop), 1);
    assert_eq!(pmd.edge().ct.len(), 1, "a dropped packet commits nothing");

    // A blind RST far outside the window is invalid: dropped, the connection stays.
    let rst = with_seq(seg(2, 1, 80, 40000, TcpControl::Rst, None), 0x7000_0000);
    let out = send(&mut pmd, 1, rst, 2);
    assert!(out[0].is_empty(), "the blind RST is dropped");
    assert_eq!(drops(&stats, DropReason::CtInvalid), 1);
    assert_eq!(pmd.edge().ct.len(), 1);
    let out = send(
        &mut pmd,
        1,
        seg(2, 1, 80, 40000, TcpControl::None, Some(1001)),
        2,
    );
    assert_eq!(out[0].len(), 1, "the connection still carries p2's data");

    // A segment of no connection that is not a SYN or an ACK is invalid too.
    let out = send(&mut pmd, 1, seg(2, 1, 81, 40001, TcpControl::Rst, None), 2);
    assert!(out[0].is_empty());
    assert_eq!(drops(&stats, DropReason::CtInvalid), 2);

    // UDP: p1's datagram opens, p2's answer passes, p2's own does not.
    let udp = |i: usize, j: usize, sp: u16, dp: u16| {
        let ip = |k: usize| Ipv4Address::new(10, 0, 0, k as u8);
        let mut f = frames::udp(port_mac(i), port_mac(j), ip(i), ip(j), dp, b"x");
        f[34..36].copy_from_slice(&sp.to_be_bytes());
        let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
        let mut u = smoltcp::wire::UdpPacket::new_unchecked(p.payload_mut());
        u.fill_checksum(&IpAddress::Ipv4(ip(i)), &IpAddress::Ipv4(ip(j)));
        f
    };
    assert_eq!(send(&mut pmd, 0, udp(1, 2, 7000, 53), 2)[1].len(), 1);
    assert_eq!(send(&mut pmd, 1, udp(2, 1, 53, 7000), 2)[0].len(), 1);
    assert!(send(&mut pmd, 1, udp(2, 1, 53, 7001), 2)[0].is_empty());
    assert_eq!(drops(&stats, DropReason::PipelineDrop), 2);
    assert_eq!(pmd.edge().ct.len(), 2);

    // ARP is not tracked (ct_state 0): the responder still answers.
    let arp = frames::arp_request(port_mac(2), B, A);
    assert_eq!(send(&mut pmd, 1, arp, 2)[1].len(), 1, "ARP answered");

    // Established packets are cached like any other: a repeat hits the cache.
    let hits = stats.emc_hits.get();
    send(
        &mut pmd,
        0,
        seg(1, 2, 40000, 80, TcpControl::None, Some(1001)),
        2,
    );
    assert_eq!(stats.emc_hits.get(), hits + 1);
}

#[test]
fn the_datapath_trace_shows_the_state_the_flows_match() {
    let mut sb = southbound(&switch_nb(2));
    one_way_policy(&mut sb, "ls0", "p1");
    let (mut pmd, _stats, _) = pmd_on(&sb, &["p1".into(), "p2".into()]);
    send(&mut pmd, 0, seg(1, 2, 40000, 80, TcpControl::Syn, None), 2);
    let key = |f: &[u8], slot| switchyard_vswitch::dp::packet::extract(f, slot).unwrap();

    let reply = seg(2, 1, 80, 40000, TcpControl::Syn, Some(1001));
    let r = pmd.trace(&key(&reply, 1), "");
    let ctl = r.conntrack.clone().unwrap_or_default();
    assert!(ctl.contains("+trk+est+rpl"), "{ctl}");
    assert!(
        r.packet.contains("ct_mark=0x2 ct_label=0x77"),
        "{}",
        r.packet
    );
    assert_eq!(r.verdict, "output");

    let fresh = seg(2, 1, 5000, 22, TcpControl::Syn, None);
    let r = pmd.trace(&key(&fresh, 1), "");
    assert!(r.conntrack.unwrap_or_default().contains("+trk+new"));
    assert_eq!(r.verdict, "drop");
    let acl = r.steps.iter().find(|s| s.stage == "ls_in_acl").unwrap();
    assert_eq!(acl.matched.as_deref(), Some("ct_state == +trk+new"));

    // The logical trace assumes the state it is told.
    let t = |ct: &[&str]| {
        switchyard_vswitch::inspect::trace::logical_ct(
            &sb,
            "inport == \"p2\" && ip4.dst == 10.0.0.1 && tcp.dst == 22",
            &switchyard_vswitch::inspect::trace::CtAssume::parse(ct).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(t(&["new"]).verdict, "drop");
    assert_eq!(t(&["rpl"]).verdict, "output");
    assert_eq!(t(&["trk,est,rpl"]).verdict, "output");
    let inv = t(&["inv"]);
    assert_eq!(inv.drop_reason.as_deref(), Some("ct_invalid"));
    // ovn-trace's default is an established packet, which the policy's
    // established flow lets through.
    assert_eq!(t(&[]).verdict, "output");
    assert!(t(&[])
        .conntrack
        .unwrap_or_default()
        .contains("--ct trk,est"));
    let e = switchyard_vswitch::inspect::trace::CtAssume::parse(&["trk,bogus"]).unwrap_err();
    assert!(e.contains("bogus") && e.contains("rpl"), "{e}");
    assert!(switchyard_vswitch::inspect::trace::CtAssume::parse(&["new,est"]).is_err());
}

#[test]
fn a_full_table_drops_the_new_connections_flows_commit_and_keeps_the_old() {
    let mut sb = southbound(&switch_nb(2));
    one_way_policy(&mut sb, "ls0", "p1");
    let (mut pmd, stats, _) = pmd_on(&sb, &["p1".into(), "p2".into()]);
    pmd.set_ct_capacity(1);
    let out = send(&mut pmd, 0, seg(1, 2, 40000, 80, TcpControl::Syn, None), 2);
    assert_eq!(out[1].len(), 1);
    // A handshake is not assured yet: a newcomer evicts it (early drop).
    let out = send(&mut pmd, 0, seg(1, 2, 40001, 80, TcpControl::Syn, None), 2);
    assert_eq!(out[1].len(), 1, "the half-open entry made room");
    assert_eq!(pmd.edge().ct.stats.early_drops, 1);
    // Completed, the connection is established and stays.
    let out = send(
        &mut pmd,
        1,
        seg(2, 1, 80, 40001, TcpControl::Syn, Some(1001)),
        2,
    );
    assert_eq!(out[0].len(), 1);
    let out = send(
        &mut pmd,
        0,
        seg(1, 2, 40001, 80, TcpControl::None, Some(1001)),
        2,
    );
    assert_eq!(out[1].len(), 1);
    let out = send(&mut pmd, 0, seg(1, 2, 40002, 80, TcpControl::Syn, None), 2);
    assert!(out[1].is_empty(), "no room: the third SYN is dropped");
    assert_eq!(drops(&stats, DropReason::CtFull), 1);
    let out = send(
        &mut pmd,
        1,
        seg(2, 1, 80, 40001, TcpControl::None, Some(1001)),
        2,
    );
    assert_eq!(out[0].len(), 1, "the established connection keeps working");
}

#[test]
fn behind_a_router_a_reply_meets_its_connection_in_the_shared_zone() {
    // p1 on ls0, p2 on ls1, lr0 between. Only ls0 has stateful flows: new
    // connections from p1 are committed on the way in; on the way out to p1,
    // only established traffic passes (ls0's egress also runs for packets to
    // the router port, as in OVN: hence the outport).
    let mut sb = southbound(&routed_nb(0));
    let (ls0, ls1) = (dp_key(&sb, "ls0"), dp_key(&sb, "ls1"));
    let commit = act(Kind::CtCommit(pb::CtCommit {
        mark: 1,
        mark_mask: 1,
        ..Default::default()
    }));
    let to_p1 = pb::FieldMatch {
        field: "outport".into(),
        value: port_key(&sb, "p1").into(),
        mask: 0xffff_ffff,
        port: "p1".into(),
    };
    let out = Stage::LsOutAcl;
    sb.flows.extend([
        flow(
            ls0,
            Stage::LsInAcl,
            900,
            vec![st(ct::NEW, 0)],
            vec![commit, next()],
        ),
        flow(
            ls0,
            out,
            1000,
            vec![st(ct::EST, 0), to_p1.clone()],
            vec![next()],
        ),
        flow(
            ls0,
            out,
            900,
            vec![st(ct::NEW, 0), to_p1],
            vec![drop(DropReason::PipelineDrop)],
        ),
    ]);
    let (mut pmd, stats, shared) = pmd_on(&sb, &["p1".into(), "p2".into()]);
    let t = shared.tables.load();
    let zone = STATEFUL_ZONE | ls0.min(ls1).min(dp_key(&sb, "lr0"));
    assert_eq!(t.slot(0).unwrap().ct_zone, zone);
    assert_eq!(t.slot(1).unwrap().ct_zone, zone, "ls1 shares the zone");

    let p2 = Ipv4Address::new(10, 1, 0, 2);
    let syn = frames::tcp(
        port_mac(1),
        router_mac(0),
        A,
        p2,
        40000,
        80,
        TcpControl::Syn,
        None,
    );
    assert_eq!(send(&mut pmd, 0, syn, 2)[1].len(), 1, "p1 reaches p2");
    let c = *pmd.edge().ct.iter().next().unwrap();
    assert_eq!((c.orig.zone, c.mark), (zone, 1));

    let ack = frames::tcp(
        port_mac(2),
        router_mac(1),
        p2,
        A,
        80,
        40000,
        TcpControl::Syn,
        Some(1001),
    );
    assert_eq!(
        send(&mut pmd, 1, ack, 2)[0].len(),
        1,
        "p2's reply reaches p1"
    );
    let own = frames::tcp(
        port_mac(2),
        router_mac(1),
        p2,
        A,
        80,
        6000,
        TcpControl::Syn,
        None,
    );
    assert!(
        send(&mut pmd, 1, own, 2)[0].is_empty(),
        "p2 cannot open to p1"
    );
    assert_eq!(drops(&stats, DropReason::PipelineDrop), 1);
}

#[test]
fn switches_without_stateful_flows_are_not_tracked() {
    let sb = southbound(&switch_nb(2));
    let (mut pmd, _stats, shared) = pmd_on(&sb, &["p1".into(), "p2".into()]);
    assert_eq!(shared.tables.load().slot(0).unwrap().ct_zone, 0);
    assert!(!shared.tables.load().ct_active);
    let out = send(&mut pmd, 1, seg(2, 1, 80, 40000, TcpControl::Rst, None), 2);
    assert_eq!(out[0].len(), 1, "no conntrack: a stray RST is forwarded");
    assert!(pmd.edge().ct.is_empty());
}

#[test]
fn a_connection_from_a_remote_chassis_is_tracked_where_it_arrives() {
    use switchyard_benches::{encapsulate_to_p1, frame64, overlay_with, UNDERLAY_SLOT};
    // p1 here (ch1), p2 on ch2. Policy on ls0: new connections to p1 are
    // committed in the egress pipeline (which runs on the receiving chassis);
    // from p1, only established traffic may leave.
    let (mut pmd, stats, snap) = overlay_with(Vec::new(), Vec::new(), false, |sb| {
        let ls0 = dp_key(sb, "ls0");
        let to_p1 = pb::FieldMatch {
            field: "outport".into(),
            value: port_key(sb, "p1").into(),
            mask: 0xffff_ffff,
            port: "p1".into(),
        };
        let commit = act(Kind::CtCommit(pb::CtCommit::default()));
        sb.flows.extend([
            flow(
                ls0,
                Stage::LsOutAcl,
                900,
                vec![st(ct::NEW, 0), to_p1],
                vec![commit, next()],
            ),
            flow(
                ls0,
                Stage::LsInAcl,
                1000,
                vec![st(ct::EST, 0)],
                vec![next()],
            ),
            flow(
                ls0,
                Stage::LsInAcl,
                900,
                vec![st(ct::NEW, 0)],
                vec![drop(DropReason::PipelineDrop)],
            ),
        ]);
    });
    let underlay = usize::from(UNDERLAY_SLOT);
    // p2 -> p1, UDP 40000 -> 9, through the tunnel.
    mem(&mut pmd, underlay)
        .rx
        .push_back(encapsulate_to_p1(&snap, &frame64(2, 1)));
    pmd.poll_once();
    assert_eq!(
        taken(&mut pmd, 0).len(),
        1,
        "delivered to p1: {:?}",
        stats.drops
    );
    assert_eq!(pmd.edge().ct.len(), 1, "committed on arrival");

    // p1's answer (9 -> 40000) is a reply and leaves through the tunnel.
    let mut reply = frame64(1, 2);
    reply[34..38].copy_from_slice(&[0, 9, 0x9c, 0x40]);
    send(&mut pmd, 0, reply, 1);
    assert_eq!(
        taken(&mut pmd, underlay).len(),
        1,
        "the reply is encapsulated"
    );

    // p1 opening a connection of its own (40000 -> 9) is not allowed.
    send(&mut pmd, 0, frame64(1, 2), 1);
    assert!(taken(&mut pmd, underlay).is_empty());
    assert_eq!(drops(&stats, DropReason::PipelineDrop), 1);
}

#[test]
fn acls_see_a_service_connection_after_dnat_and_let_its_replies_back() {
    use switchyard_southbound::pb::nb_op::Op;
    // p1 on ls0 reaches VIP 10.96.0.10 (tcp 80 -> p2:8080, udp 53 -> p2:5353);
    // p2 on ls1 is isolated but for TCP 8080: the ACL sees the backend port.
    let mut nb = routed_nb(0);
    let lb = switchyard_tests::memory::lb_op;
    let attach = |name: &str| switchyard_tests::memory::lb_attach_op(name, "ls0");
    let acl = |prio: u32, m: &str, action: &str| {
        Op::AclAdd(pb::Acl {
            switch_name: "ls1".into(),
            direction: "to-lport".into(),
            priority: prio,
            r#match: m.into(),
            action: action.into(),
            name: String::new(),
        })
    };
    let ops = vec![
        lb("web", "tcp", "10.96.0.10:80", "10.1.0.2:8080"),
        lb("dns", "udp", "10.96.0.10:53", "10.1.0.2:5353"),
        attach("web"),
        attach("dns"),
        acl(
            100,
            r#"outport == "p2" && tcp.dst == 8080"#,
            "allow-related",
        ),
        acl(1, r#"outport == "p2" && ip4"#, "drop"),
    ];
    nb.apply_all(ops).expect("valid");
    let (mut pmd, stats, _) = pmd_on(&southbound(&nb), &["p1".into(), "p2".into()]);
    let vip = Ipv4Address::new(10, 96, 0, 10);
    let p2 = Ipv4Address::new(10, 1, 0, 2);

    let syn = frames::tcp(
        port_mac(1),
        router_mac(0),
        A,
        vip,
        40000,
        80,
        TcpControl::Syn,
        None,
    );
    let out = send(&mut pmd, 0, syn, 2);
    assert_eq!(
        out[1].len(),
        1,
        "the SYN reaches p2:8080: {:?}",
        stats.drops
    );
    let ip = Ipv4Packet::new_checked(&out[1][0][14..]).unwrap();
    assert_eq!(ip.dst_addr(), p2);
    // The backend's answer passes (established) and leaves from the VIP.
    let ack = frames::tcp(
        port_mac(2),
        router_mac(1),
        p2,
        A,
        8080,
        40000,
        TcpControl::Syn,
        Some(1001),
    );
    let out = send(&mut pmd, 1, ack, 2);
    assert_eq!(out[0].len(), 1, "the SYN-ACK reaches p1");
    let ip = Ipv4Packet::new_checked(&out[0][0][14..]).unwrap();
    assert_eq!(ip.src_addr(), vip);

    // DNS to the VIP is DNATed to p2:5353, which no ACL allows.
    let q = frames::udp(port_mac(1), router_mac(0), A, vip, 53, b"q");
    assert!(
        send(&mut pmd, 0, q, 2)[1].is_empty(),
        "p2:5353 is not allowed"
    );
    assert_eq!(drops(&stats, DropReason::AclDrop), 1);
}

/// A stateful batch is looked at before it is committed (pmd/batch.rs): the
/// packets of a new connection that arrive together are all new, and the
/// connection is entered once, with every packet counted and none refused.
#[test]
fn a_batch_with_several_packets_of_a_new_connection_enters_it_once() {
    let mut sb = southbound(&switch_nb(2));
    one_way_policy(&mut sb, "ls0", "p1");
    // Packet by packet (a lone PMD) and in stages (PMDs sharing conntrack).
    for staged in [false, true] {
        several_packets_of_a_new_connection(&sb, staged);
    }
}

fn several_packets_of_a_new_connection(sb: &pb::SbSnapshot, staged: bool) {
    let (mut pmd, stats, _) = pmd_on(sb, &["p1".into(), "p2".into()]);
    pmd.set_staged(staged);
    let ip = |k: u8| Ipv4Address::new(10, 0, 0, k);
    let udp = frames::udp(port_mac(1), port_mac(2), ip(1), ip(2), 53, b"q");
    let syn = seg(1, 2, 40000, 80, TcpControl::Syn, None);
    for f in [&udp, &udp, &syn, &udp, &syn] {
        mem(&mut pmd, 0).rx.push_back(f.clone());
    }
    pmd.poll_once();
    assert_eq!(
        taken(&mut pmd, 1).len(),
        5,
        "every packet reaches p2 ({staged})"
    );
    let e = pmd.edge();
    assert_eq!(e.ct.len(), 2, "one UDP and one TCP connection");
    assert_eq!(e.ct.stats.nat_collisions, 0);
    let mut seen: Vec<_> =
        e.ct.iter()
            .map(|c| (c.orig.proto, c.packets[0], c.mark, c.label))
            .collect();
    seen.sort();
    assert_eq!(seen, [(6, 2, 0x2, 0x77), (17, 3, 0x2, 0x77)]);
    std::mem::drop(e);
    assert_eq!(drops(&stats, DropReason::CtInvalid), 0);
}
