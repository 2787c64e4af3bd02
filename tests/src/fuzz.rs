//! The fuzz targets' bodies, shared by `fuzz/` (cargo-fuzz, libFuzzer) and by
//! the corpus replay test (`tests/fuzz_corpus.rs`), so that CI runs every
//! committed input and every crash reproduction as an ordinary test.
//!
//! Each entry takes arbitrary bytes and must return without panicking; the
//! invariants it checks are stated where it checks them.

use crate::memory::southbound_with_chassis;
use std::cell::RefCell;
use std::sync::Arc;
use switchyard_northd::model::Nb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_vswitch::ct::conntrack::{Conntrack, TcpInfo, Tuple};
use switchyard_vswitch::pmd::{Pmd, SharedTables};
use switchyard_vswitch::port::{MemPort, MAX_FRAME};
use switchyard_vswitch::stats::{PmdStats, PortStats};
use switchyard_vswitch::tables::{LocalBinding, Tables, Underlay};

/// Slots of the frame target's PMD: p1, p3 (ls0), p4 (ls1), the underlay.
pub const SLOTS: [u16; 4] = [0, 1, 2, 3];
const UNDERLAY_SLOT: u16 = 3;
/// Our encap IP and the remote chassis' (ch2, which hosts p2).
pub const LOCAL_IP: u32 = 0xac1f_000b;
pub const REMOTE_IP: u32 = 0xac1f_000c;
/// Conntrack capacity of the frame target: small, so full-table paths run.
const CT_CAPACITY: usize = 256;

fn ops(nb: &mut Nb, ops: Vec<Op>) -> Result<(), String> {
    nb.apply_all(ops).map(|_| ()).map_err(|e| e.to_string())
}

fn lsp(name: &str, sw: &str, addr: &str) -> Op {
    Op::LspAdd(pb::LogicalSwitchPort {
        name: name.into(),
        switch_name: sw.into(),
        addresses: vec![addr.into()],
        port_security: if addr == "unknown" {
            vec![]
        } else {
            vec![addr.into()]
        },
        enabled: true,
        ..Default::default()
    })
}

/// Every feature at once: ls0 (p1, p2 on chassis ch2, p3 with unknown
/// addresses) and ls1 (p4) behind lr0 with a static route, TCP and UDP
/// load balancers on ls0, SNAT and a floating IP on ls1's side, stateful
/// ACLs on ls0.
pub fn everything_nb() -> Nb {
    let mut nb = Nb::default();
    let mut v = Vec::new();
    for (sw, net) in [("ls0", "10.0.0.0/24"), ("ls1", "10.1.0.0/24")] {
        v.push(Op::LsAdd(pb::LogicalSwitch {
            name: sw.into(),
            subnet: net.into(),
            ..Default::default()
        }));
    }
    v.push(Op::LrAdd(pb::LogicalRouter {
        name: "lr0".into(),
        enabled: true,
        ..Default::default()
    }));
    for (j, sw) in ["ls0", "ls1"].iter().enumerate() {
        v.push(Op::LrpAdd(pb::LogicalRouterPort {
            name: format!("lr0-{sw}"),
            router_name: "lr0".into(),
            mac: format!("0a:00:00:00:ff:0{j}"),
            networks: vec![format!("10.{j}.0.254/24")],
            enabled: true,
            ..Default::default()
        }));
        v.push(Op::LspAdd(pb::LogicalSwitchPort {
            name: format!("{sw}-lr0"),
            switch_name: (*sw).into(),
            addresses: vec!["router".into()],
            r#type: "router".into(),
            options: [("router-port".to_string(), format!("lr0-{sw}"))].into(),
            enabled: true,
            ..Default::default()
        }));
    }
    v.push(lsp("p1", "ls0", "0a:00:00:00:00:01 10.0.0.1"));
    v.push(lsp("p2", "ls0", "0a:00:00:00:00:02 10.0.0.2"));
    v.push(lsp("p3", "ls0", "unknown"));
    v.push(lsp("p4", "ls1", "0a:00:00:00:01:04 10.1.0.4"));
    v.push(Op::RouteAdd(pb::StaticRoute {
        router_name: "lr0".into(),
        prefix: "10.99.0.0/16".into(),
        nexthop: "10.1.0.253".into(),
        output_port: String::new(),
    }));
    v.push(crate::memory::lb_op(
        "web",
        "tcp",
        "10.96.0.10:80",
        "10.1.0.4:8080,10.0.0.1:8080",
    ));
    v.push(crate::memory::lb_op(
        "dns",
        "udp",
        "10.96.0.10:53",
        "10.1.0.4:5353",
    ));
    v.push(crate::memory::lb_attach_op("web", "ls0"));
    v.push(crate::memory::lb_attach_op("dns", "ls0"));
    for (ty, ext, logical) in [
        ("snat", "10.1.0.100", "10.0.0.0/24"),
        ("dnat_and_snat", "10.1.0.50", "10.0.0.1"),
    ] {
        v.push(Op::NatAdd(pb::NatRule {
            router_name: "lr0".into(),
            r#type: ty.into(),
            external_ip: ext.into(),
            logical_ip: logical.into(),
        }));
    }
    for (prio, m, action) in [
        (
            100,
            r#"outport == "p1" && tcp.dst == {80, 8080}"#,
            "allow-related",
        ),
        (10, r#"outport == "p1" && ip4"#, "drop"),
    ] {
        v.push(Op::AclAdd(pb::Acl {
            switch_name: "ls0".into(),
            direction: "to-lport".into(),
            priority: prio,
            r#match: m.into(),
            action: action.into(),
            name: String::new(),
        }));
    }
    ops(&mut nb, v).expect("the fuzz topology is valid");
    nb
}

/// A PMD on [`everything_nb`] as chassis ch1 sees it, with in-memory ports
/// at [`SLOTS`] and a tunnel to ch2.
pub fn everything_pmd() -> Pmd {
    let snap = southbound_with_chassis(
        &everything_nb(),
        &[("ch1", LOCAL_IP), ("ch2", REMOTE_IP)],
        &[("p1", "ch1"), ("p2", "ch2"), ("p3", "ch1"), ("p4", "ch1")],
    );
    let local: Vec<LocalBinding> = ["p1", "p3", "p4"]
        .iter()
        .enumerate()
        .map(|(i, l)| LocalBinding {
            slot: i as u16,
            iface: format!("mem{i}"),
            lport: (*l).into(),
        })
        .collect();
    let mut t = Tables::build(1, &snap, "ch1", &local);
    let macs = [(REMOTE_IP, 0x0a58_ac1f_000c)].into_iter().collect();
    t.set_underlay(
        Underlay {
            slot: UNDERLAY_SLOT,
            ip: LOCAL_IP,
            mac: 0x0a58_ac1f_000b,
            mtu: 1500,
        },
        &macs,
        &mut Default::default(),
    );
    let mut pmd = Pmd::new(SharedTables::new(t), Arc::new(PmdStats::default()), 1024);
    pmd.set_ct_capacity(CT_CAPACITY);
    for s in SLOTS {
        pmd.add_port(s, Box::new(MemPort::new()), Arc::new(PortStats::default()));
    }
    pmd
}

thread_local! {
    static PMD: RefCell<Option<Pmd>> = const { RefCell::new(None) };
}

/// Frames into the datapath. The input is a sequence of records: one byte
/// choosing the port (of [`SLOTS`]), two bytes of length, that many bytes of
/// frame. Each frame goes through the PMD (parse, edge, conntrack, caches,
/// pipeline, generated answers, encapsulation), then the whole sequence once
/// more (cache hits and established state). One PMD serves every input; its
/// conntrack is emptied first, so an input's outcome depends on that input.
pub fn frames(data: &[u8]) {
    PMD.with(|cell| {
        let mut cell = cell.borrow_mut();
        let pmd = cell.get_or_insert_with(everything_pmd);
        pmd.edge().ct.flush();
        feed(pmd, data);
        for s in SLOTS {
            for f in sent(pmd, s) {
                // Nothing the datapath sends is larger than a frame.
                assert!(f.len() <= MAX_FRAME, "{} bytes sent", f.len());
            }
        }
        assert!(pmd.edge().ct.len() <= CT_CAPACITY);
    });
}

/// Sends the records of a [`frames`] input through `pmd`, twice over.
pub fn feed(pmd: &mut Pmd, data: &[u8]) {
    let mut rest = data;
    let mut batch: Vec<(u16, &[u8])> = Vec::new();
    while rest.len() >= 3 && batch.len() < 16 {
        let slot = SLOTS[usize::from(rest[0]) % SLOTS.len()];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(MAX_FRAME);
        let body = &rest[3..];
        let f = &body[..len.min(body.len())];
        batch.push((slot, f));
        rest = &body[f.len()..];
    }
    for _ in 0..2 {
        for &(slot, f) in &batch {
            if let Some(m) = mem_port(pmd, slot) {
                m.rx.push_back(f.to_vec());
            }
            pmd.poll_once();
        }
    }
}

fn mem_port(pmd: &mut Pmd, slot: u16) -> Option<&mut MemPort> {
    pmd.port_mut(slot)?.as_any_mut().downcast_mut::<MemPort>()
}

/// Takes what port `slot` transmitted.
pub fn sent(pmd: &mut Pmd, slot: u16) -> Vec<Vec<u8>> {
    mem_port(pmd, slot)
        .map(|m| std::mem::take(&mut m.tx))
        .unwrap_or_default()
}

/// Geneve decapsulation of a whole frame and the header view on its own:
/// an error or a result, never a panic; a result's inner frame lies inside
/// the input.
pub fn geneve(data: &[u8]) {
    if let Ok(d) = switchyard_geneve::tunnel::decap(data) {
        let start = d.inner.as_ptr() as usize - data.as_ptr() as usize;
        assert!(start + d.inner.len() <= data.len());
    }
    if let Ok(h) = switchyard_geneve::Header::new_checked(data) {
        let _ = h.ovn_metadata();
        for o in h.options() {
            if o.is_err() {
                break;
            }
        }
    }
}

/// The conntrack state machine fed a packet sequence. Each 8-byte record:
/// byte 0 picks one of four connections (two TCP, one UDP, one ICMP; bits
/// 0-1), the direction (bit 2), whether to commit (bit 3) or pick up
/// (bit 4), and how far the clock moves (bits 5-7, up to a minute); byte 1
/// is the TCP flags; bytes 2-5 the sequence number; 6-7 the payload length.
/// Invariants: never more entries than the capacity; every live entry is
/// found under both its tuples, in the same slot.
pub fn conntrack(data: &[u8]) {
    let mut ct = Conntrack::new(3);
    let mut now = 0u64;
    let conns = [
        (6u8, 40000u16, 80u16),
        (6, 40001, 443),
        (17, 5353, 53),
        (1, 7, 0),
    ];
    for r in data.chunks_exact(8).take(512) {
        let (proto, sport, dport) = conns[usize::from(r[0] & 3)];
        // Both families in one table: an IPv6 connection with the same low
        // address bits must stay apart from the IPv4 one.
        let v6 = r[0] & 8 != 0;
        let net: u128 = if v6 { 0xfd00 << 112 } else { 0 };
        let t = Tuple {
            zone: 1,
            proto: if v6 && proto == 1 { 58 } else { proto },
            v6,
            src: net | 0x0a00_0001,
            dst: net | 0x0a00_0002,
            sport,
            dport,
        };
        let t = if r[0] & 4 != 0 { t.reverse() } else { t };
        now += [0, 1, 10, 100, 1_000, 10_000, 30_001, 60_000][usize::from(r[0] >> 5)];
        let seg = TcpInfo {
            flags: r[1],
            seq: u32::from_be_bytes([r[2], r[3], r[4], r[5]]),
            ack: 0,
            window: 65535,
            payload_len: u32::from(u16::from_be_bytes([r[6], r[7]])),
        };
        let tcp = (proto == 6).then_some(&seg);
        if r[0] & 16 != 0 {
            let _ = ct.commit(&t, tcp, now, Some(&t), true);
        } else {
            let _ = ct.process(&t, tcp, now, r[0] & 8 != 0);
        }
        if r[0] & 0xe0 == 0xe0 {
            ct.expire(now, 2);
        }
        assert!(ct.len() <= ct.capacity());
        let live: Vec<_> = ct.iter().copied().collect();
        for c in live {
            let a = ct.peek(&c.orig, c.last_ms);
            let b = ct.peek(&c.reply, c.last_ms);
            assert!(a.is_some() && a == b, "{c:?} indexed as {a:?} / {b:?}");
        }
    }
}

/// Northbound input: the bytes as text, through the ACL match parser, the
/// address parsers, and as a transaction of line-per-op commands applied to
/// [`everything_nb`] and compiled: nothing panics, and what is applied
/// compiles.
pub fn nb(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = switchyard_northd::nb::acl::parse_match(text);
    for security in [false, true] {
        let _ = switchyard_northd::model::parse_addresses("addresses", &[text.into()], security);
    }
    let ops: Vec<Op> = text.lines().take(64).filter_map(nb_op).collect();
    if ops.is_empty() {
        return;
    }
    // As northd's transaction does: applied to a copy that replaces the
    // database only when every op succeeded (`Nb::apply_ops` may leave a
    // half-applied model behind on error; found by this target).
    let nb = everything_nb();
    let mut next = nb.clone();
    if self::ops(&mut next, ops).is_ok() {
        let _ = switchyard_northd::compile::compile(&next);
    }
}

/// One line of the `nb` target's command language (ovn-nbctl's words).
fn nb_op(line: &str) -> Option<Op> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let arg = |i: usize| w.get(i).copied().unwrap_or("").to_string();
    let rest = |i: usize| w.get(i..).map(|r| r.join(" ")).unwrap_or_default();
    Some(match *w.first()? {
        "ls-add" => Op::LsAdd(pb::LogicalSwitch {
            name: arg(1),
            subnet: arg(2),
            ..Default::default()
        }),
        "ls-del" => Op::LsDel(arg(1)),
        "lsp-add" => Op::LspAdd(pb::LogicalSwitchPort {
            name: arg(1),
            switch_name: arg(2),
            addresses: vec![rest(3)],
            enabled: true,
            ..Default::default()
        }),
        "lsp-del" => Op::LspDel(arg(1)),
        "lsp-set-port-security" => Op::LspSetPortSecurity(pb::SetAddresses {
            port: arg(1),
            addresses: vec![rest(2)],
        }),
        "lsp-set-type" => Op::LspSetType(pb::SetType {
            port: arg(1),
            r#type: arg(2),
        }),
        "lr-add" => Op::LrAdd(pb::LogicalRouter {
            name: arg(1),
            enabled: true,
            ..Default::default()
        }),
        "lr-del" => Op::LrDel(arg(1)),
        "lrp-add" => Op::LrpAdd(pb::LogicalRouterPort {
            name: arg(1),
            router_name: arg(2),
            mac: arg(3),
            networks: w
                .get(4..)
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
            enabled: true,
            ..Default::default()
        }),
        "lr-route-add" => Op::RouteAdd(pb::StaticRoute {
            router_name: arg(1),
            prefix: arg(2),
            nexthop: arg(3),
            output_port: String::new(),
        }),
        "lb-add" => crate::memory::lb_op(&arg(1), &arg(4), &arg(2), &arg(3)),
        "ls-lb-add" => crate::memory::lb_attach_op(&arg(2), &arg(1)),
        "lb-del" => Op::LbDel(pb::LbDel {
            name: arg(1),
            vip: arg(2),
        }),
        "lr-nat-add" => Op::NatAdd(pb::NatRule {
            router_name: arg(1),
            r#type: arg(2),
            external_ip: arg(3),
            logical_ip: arg(4),
        }),
        "acl-add" => Op::AclAdd(pb::Acl {
            switch_name: arg(1),
            direction: arg(2),
            priority: arg(3).parse().unwrap_or(u32::MAX),
            action: arg(4),
            r#match: rest(5),
            name: String::new(),
        }),
        "acl-del" => Op::AclDel(pb::AclDel {
            switch_name: arg(1),
            direction: arg(2),
            priority: arg(3).parse().unwrap_or(0),
            r#match: rest(4),
        }),
        // ovn-nbctl's column writes: `set TABLE RECORD COLUMN VALUE`,
        // `add|remove TABLE RECORD COLUMN VALUE...`, `clear TABLE RECORD COLUMN`.
        m @ ("set" | "add" | "remove" | "clear") => {
            let (mutator, values) = match m {
                "set" => (pb::Mutator::Set, vec![rest(4)]),
                "add" => (
                    pb::Mutator::Add,
                    w.get(4..)
                        .unwrap_or(&[])
                        .iter()
                        .map(|v| v.to_string())
                        .collect(),
                ),
                "remove" => (
                    pb::Mutator::Remove,
                    w.get(4..)
                        .unwrap_or(&[])
                        .iter()
                        .map(|v| v.to_string())
                        .collect(),
                ),
                _ => (pb::Mutator::Clear, Vec::new()),
            };
            Op::DbMutate(pb::DbMutate {
                table: arg(1),
                record: arg(2),
                mutations: vec![pb::Mutation {
                    mutator: mutator as i32,
                    column: arg(3),
                    values,
                }],
            })
        }
        _ => return None,
    })
}

/// Runs `f` on every file of `dir` (sorted), returning how many it ran.
pub fn replay_dir(dir: &std::path::Path, f: Target) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut files: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for p in &files {
        let data = std::fs::read(p).expect("corpus file");
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{} panicked", p.display());
    }
    files.len()
}

/// One record of the [`frames`] target's input.
fn record(slot: u8, f: &[u8]) -> Vec<u8> {
    let mut v = vec![slot];
    v.extend_from_slice(&(f.len() as u16).to_be_bytes());
    v.extend_from_slice(f);
    v
}

/// Seed inputs per target: one of each kind of packet and command the
/// datapath and northd handle, for the fuzzer to start from (written to
/// `fuzz/corpus/<target>/` by `benches/fuzz.sh --seed`, replayed in CI).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::frames::{arp_request, ipv6, link_local, tcp, udp};
    use smoltcp::wire::{Ipv4Address as A, TcpControl};
    let mac = |i: u64| 0x0a00_0000_0000 | i;
    let gw0 = 0x0a00_0000_ff00;
    let gw1 = 0x0a00_0000_ff01;
    let (p1, p2, p4) = (
        A::new(10, 0, 0, 1),
        A::new(10, 0, 0, 2),
        A::new(10, 1, 0, 4),
    );
    let vip = A::new(10, 96, 0, 10);
    let mut out = Vec::new();
    let mut ttl1 = udp(mac(1), gw0, p1, p4, 9, b"ttl");
    ttl1[14 + 8] = 1;
    let mut echo = udp(mac(1), gw0, p1, A::new(10, 0, 0, 254), 9, b"echo....");
    echo[14 + 9] = 1;
    echo[34..42].copy_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
    let inner = udp(mac(2), mac(1), p2, p1, 9, b"from ch2");
    let mut encap = [0u8; switchyard_geneve::tunnel::ENCAP_LEN];
    switchyard_geneve::tunnel::emit(
        &mut encap,
        &switchyard_geneve::tunnel::Outer {
            src_mac: 0x0a58_ac1f_000c,
            dst_mac: 0x0a58_ac1f_000b,
            src_ip: REMOTE_IP,
            dst_ip: LOCAL_IP,
        },
        &{
            let snap = crate::memory::southbound(&everything_nb());
            let key = |n: &str| {
                let b = snap.port_bindings.iter().find(|b| b.logical_port == n);
                b.map(|b| (b.datapath, b.tunnel_key as u16)).expect("port")
            };
            switchyard_geneve::tunnel::Metadata {
                datapath: key("p2").0,
                ingress: key("p2").1,
                egress: key("p1").1,
            }
        },
        switchyard_geneve::tunnel::source_port(1),
        inner.len(),
    );
    let encapsulated = [&encap[..], &inner[..]].concat();
    let frames = [
        (0, udp(mac(1), mac(2), p1, p2, 9, b"to the remote chassis")),
        (
            0,
            tcp(mac(1), gw0, p1, vip, 40000, 80, TcpControl::Syn, None),
        ),
        (
            0,
            tcp(mac(1), gw0, p1, vip, 40001, 80, TcpControl::None, Some(7)),
        ),
        (0, udp(mac(1), gw0, p1, vip, 53, b"query")),
        (0, arp_request(mac(1), p1, A::new(10, 0, 0, 254))),
        (0, echo),
        (0, ttl1),
        (
            0,
            udp(mac(1), gw0, p1, A::new(10, 99, 1, 1), 9, b"via a nexthop"),
        ),
        (
            0,
            tcp(
                mac(1),
                gw0,
                p1,
                A::new(10, 0, 0, 254),
                40002,
                22,
                TcpControl::Syn,
                None,
            ),
        ),
        (0, ipv6(mac(1), mac(2), 1, link_local(2), 17, b"v6")),
        (
            1,
            udp(mac(3), mac(1), A::new(10, 0, 0, 3), p1, 8080, b"to p1"),
        ),
        (2, udp(mac(0x104), gw1, p4, p1, 9, b"routed back")),
        (
            2,
            udp(mac(0x104), gw1, p4, A::new(10, 1, 0, 50), 9, b"floating ip"),
        ),
        (3, encapsulated.clone()),
        (3, encapsulated[..60].to_vec()),
    ];
    for (slot, f) in &frames {
        out.push(("frames", record(*slot, f)));
    }
    // A conversation: SYN to the VIP, the backend's answer, an ACK.
    let conv = [
        record(0, &frames[1].1),
        record(
            2,
            &tcp(
                mac(0x104),
                gw1,
                p4,
                p1,
                8080,
                40000,
                TcpControl::Syn,
                Some(1001),
            ),
        ),
        record(
            0,
            &tcp(
                mac(1),
                gw0,
                p1,
                vip,
                40000,
                80,
                TcpControl::None,
                Some(1001),
            ),
        ),
    ]
    .concat();
    out.push(("frames", conv));
    out.push(("geneve", encapsulated.clone()));
    out.push(("geneve", encapsulated[..50].to_vec()));
    let mut critical = encapsulated;
    critical[14 + 20 + 8 + 10] = 0x81;
    out.push(("geneve", critical));
    // Conntrack: a handshake, data, a blind RST, FINs; a UDP exchange.
    let rec = |sel: u8, flags: u8, seq: u32, len: u16| {
        let mut r = vec![sel, flags];
        r.extend_from_slice(&seq.to_be_bytes());
        r.extend_from_slice(&len.to_be_bytes());
        r
    };
    out.push((
        "conntrack",
        [
            rec(0x08, 0x02, 1000, 0),
            rec(0x0c, 0x12, 5000, 0),
            rec(0x28, 0x10, 1001, 100),
            rec(0x2c, 0x04, 9_000_000, 0),
            rec(0x48, 0x11, 1101, 0),
            rec(0x4c, 0x11, 5001, 0),
            rec(0xe8, 0x10, 1102, 0),
        ]
        .concat(),
    ));
    out.push((
        "conntrack",
        [
            rec(0x12, 0x10, 7, 10),
            rec(0x0a, 0, 0, 0),
            rec(0x0e, 0, 0, 0),
            rec(0xcb, 0, 0, 0),
        ]
        .concat(),
    ));
    for text in [
        r#"outport == "p1" && ip4.src == 10.0.0.0/24 && tcp.dst == {80, 443}"#,
        "tcp.dst == 80 || udp",
        "0a:00:00:00:00:09 10.0.0.9 unknown",
        "ls-add ls9 10.9.0.0/24\nlsp-add p9 ls9 0a:00:00:00:09:09 10.9.0.9\nlsp-set-port-security p9 0a:00:00:00:09:09 10.9.0.9",
        "acl-add ls0 from-lport 500 drop inport == \"p3\" && udp",
        "lb-add svc 10.96.0.20:80 10.1.0.4:80 tcp\nls-lb-add ls0 svc",
        "lr-nat-add lr0 dnat 10.1.0.60 10.0.0.1\nlr-route-add lr0 10.98.0.0/16 10.1.0.250",
        "lsp-del p2\nls-del ls1",
        "lrp-add lrp9 lr0 0a:00:00:00:09:ff 10.9.0.254/24",
        "set Logical_Switch_Port p1 addresses [\"0a:00:00:00:00:0b 10.0.0.11\"]\nadd Logical_Switch_Port p1 port_security 0a:00:00:00:00:0b\nclear Logical_Switch_Port p1 external_ids",
        "set Logical_Router_Port lr0-ls0 networks [10.0.0.1/24, 10.8.0.1/24]\nremove Logical_Router lr0 enabled true",
        "set Logical_Switch ls0 other_config {ct-zone-limit=5}\nadd Load_Balancer svc switches ls1\nset NAT lr0,snat,10.1.0.50 logical_ip 10.0.0.0/25",
    ] {
        out.push(("nb", text.as_bytes().to_vec()));
    }
    out.extend(crate::fuzz_dns::seeds().into_iter().map(|s| ("dns", s)));
    out.extend(
        crate::fuzz_dns::dhcp_seeds()
            .into_iter()
            .map(|s| ("dhcp", s)),
    );
    out
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, with their bodies.
pub const TARGETS: [(&str, Target); 6] = [
    ("frames", frames),
    ("geneve", geneve),
    ("conntrack", conntrack),
    ("nb", nb),
    ("dns", crate::fuzz_dns::dns),
    ("dhcp", crate::fuzz_dns::dhcp),
];
