use super::*;

/// Whether the IPv4 header and UDP checksums of an answer frame verify.
fn checksums_ok(a: &[u8]) -> bool {
    let ip = smoltcp::wire::Ipv4Packet::new_checked(&a[14..]).expect("IPv4");
    let udp = smoltcp::wire::UdpPacket::new_checked(ip.payload()).expect("UDP");
    ip.verify_checksum() && udp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into())
}

const CLIENT_MAC: [u8; 6] = [0x0a, 0, 0, 0, 0, 0x05];
const GW_MAC: [u8; 6] = [0x0a, 0, 0, 0, 0, 0x01];

/// A query frame from 10.0.0.5:33333 to 10.96.0.10:53.
pub(crate) fn query_frame(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    if edns {
        // OPT: root name, type 41, UDP payload 4096, no options.
        m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    }
    frame_with(&m)
}

fn frame_with(msg: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + msg.len();
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0xab,
        0xcd,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&[10, 0, 0, 5, 10, 96, 0, 10]);
    let ulen = 8 + msg.len();
    f.extend_from_slice(&[0x82, 0x35, 0, 53, (ulen >> 8) as u8, ulen as u8, 0, 0]);
    f.extend_from_slice(msg);
    f
}

pub(crate) fn zones() -> Zones {
    let rows = vec![
        pb::SbDns {
            datapath: 1,
            name: "web.default.svc.cluster.local".into(),
            a: vec![0x0a60_000a, 0x0a60_000b],
            aaaa: vec![[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10].to_vec()],
            srv: vec![pb::SbSrv {
                priority: 0,
                weight: 100,
                port: 80,
                target: "web.default.svc.cluster.local".into(),
            }],
            ttl: 30,
            ..Default::default()
        },
        pb::SbDns {
            datapath: 1,
            name: "big.cluster.local".into(),
            srv: (0..16)
                .map(|i| pb::SbSrv {
                    priority: i,
                    weight: 1,
                    port: 8000 + i,
                    target: format!("{}.backend-with-a-long-name.default.svc.cluster.local", i),
                })
                .collect(),
            ttl: 5,
            ..Default::default()
        },
    ];
    Zones::build(&rows, [(1, "cluster.local"), (2, "")].into_iter())
}

struct Parsed {
    rcode: u16,
    flags: u16,
    answers: Vec<(u16, Vec<u8>)>,
    question: Vec<u8>,
}

/// Checks the headers of an answer and reads its records.
fn parse(q: &[u8], a: &[u8]) -> Parsed {
    assert_eq!(&a[0..6], &q[6..12], "back to the client's MAC");
    assert_eq!(&a[6..12], &q[0..6], "from the MAC it was sent to");
    assert_eq!(&a[26..30], &q[30..34], "from the address it was sent to");
    assert_eq!(&a[30..34], &q[26..30]);
    assert_eq!(&a[34..36], &q[36..38], "from port 53");
    assert_eq!(&a[36..38], &q[34..36]);
    let ulen = usize::from(u16::from_be_bytes([a[38], a[39]]));
    assert_eq!(ulen + 34, a.len());
    assert!(checksums_ok(a), "IPv4 and UDP checksums");
    let m = &a[42..];
    assert!(m.len() <= MAX_UDP_MESSAGE);
    assert_eq!(&m[0..2], &[0x12, 0x34], "the query's id");
    let flags = u16::from_be_bytes([m[2], m[3]]);
    assert_eq!(u16::from_be_bytes([m[4], m[5]]), 1);
    let an = u16::from_be_bytes([m[6], m[7]]);
    let mut at = 12;
    while m[at] != 0 {
        at += 1 + usize::from(m[at]);
    }
    let question = m[12..at + 1].to_vec();
    at += 5;
    let mut answers = Vec::new();
    for _ in 0..an {
        assert_eq!(&m[at..at + 2], &[0xc0, 0x0c], "points at the question");
        let ty = u16::from_be_bytes([m[at + 2], m[at + 3]]);
        let rdlen = usize::from(u16::from_be_bytes([m[at + 10], m[at + 11]]));
        answers.push((ty, m[at + 12..at + 12 + rdlen].to_vec()));
        at += 12 + rdlen;
    }
    assert_eq!(at, m.len());
    Parsed {
        rcode: flags & 0xf,
        flags,
        answers,
        question,
    }
}

fn ask(zones: &Zones, dp: u32, q: &[u8]) -> Outcome {
    let mut buf = [0u8; MAX_ANSWER_FRAME];
    answer(zones.get(dp).unwrap(), q, &mut buf)
}

fn answered(zones: &Zones, q: &[u8]) -> Parsed {
    let mut buf = [0u8; MAX_ANSWER_FRAME];
    match answer(zones.get(1).unwrap(), q, &mut buf) {
        Outcome::Answer { len, .. } => parse(q, &buf[..len]),
        o => panic!("not answered: {o:?}"),
    }
}

#[test]
fn a_known_name_is_answered_in_any_case_with_the_clients_case_echoed() {
    let z = zones();
    let q = query_frame("WEB.default.Svc.cluster.local", TYPE_A, false);
    let p = answered(&z, &q);
    assert_eq!(p.rcode, 0);
    assert_ne!(p.flags & 0x0400, 0, "authoritative");
    assert_ne!(p.flags & 0x0100, 0, "RD echoed");
    assert_eq!(
        p.answers,
        [(TYPE_A, vec![10, 96, 0, 10]), (TYPE_A, vec![10, 96, 0, 11])]
    );
    assert_eq!(&p.question[1..4], b"WEB", "the case the client used");
}

#[test]
fn aaaa_srv_any_and_ptr_come_from_the_same_record() {
    let z = zones();
    let name = "web.default.svc.cluster.local";
    let p = answered(&z, &query_frame(name, TYPE_AAAA, false));
    assert_eq!(p.answers.len(), 1);
    assert_eq!(p.answers[0].1[15], 0x10);
    let p = answered(&z, &query_frame(name, TYPE_SRV, false));
    assert_eq!(p.answers.len(), 1);
    assert_eq!(&p.answers[0].1[..6], &[0, 0, 0, 100, 0, 80]);
    assert_eq!(&p.answers[0].1[6..10], b"\x03web");
    let p = answered(&z, &query_frame(name, TYPE_ANY, false));
    assert_eq!(p.answers.len(), 4);
    let p = answered(&z, &query_frame("11.0.96.10.in-addr.arpa", TYPE_PTR, false));
    assert_eq!(p.answers.len(), 1);
    assert_eq!(&p.answers[0].1[..4], b"\x03web");
    // A type the record does not have: NOERROR, no answer.
    let p = answered(&z, &query_frame(name, 15, false));
    assert_eq!((p.rcode, p.answers.len()), (0, 0));
}

#[test]
fn inside_the_domain_a_missing_name_is_nxdomain_and_a_parent_is_no_data() {
    let z = zones();
    let mut buf = [0u8; MAX_ANSWER_FRAME];
    let q = query_frame("nope.default.svc.cluster.local", TYPE_A, false);
    assert!(matches!(
        answer(z.get(1).unwrap(), &q, &mut buf),
        Outcome::Answer { nxdomain: true, .. }
    ));
    assert_eq!(answered(&z, &q).rcode, RCODE_NXDOMAIN);
    for parent in [
        "svc.cluster.local",
        "default.svc.cluster.local",
        "cluster.local",
    ] {
        let p = answered(&z, &query_frame(parent, TYPE_A, false));
        assert_eq!((p.rcode, p.answers.len()), (0, 0), "{parent}");
    }
    // Outside the domain, and on a switch without one: not ours.
    let out = query_frame("example.com", TYPE_A, false);
    assert_eq!(ask(&z, 1, &out), Outcome::Pass(Pass::NotOurs));
    assert!(z.get(2).is_none(), "no records, no domain: no zone");
    // "xcluster.local" is not under "cluster.local".
    assert_eq!(
        ask(&z, 1, &query_frame("xcluster.local", TYPE_A, false)),
        Outcome::Pass(Pass::NotOurs)
    );
}

#[test]
fn edns0_is_tolerated_and_an_answer_that_does_not_fit_is_truncated() {
    let z = zones();
    let p = answered(
        &z,
        &query_frame("web.default.svc.cluster.local", TYPE_A, true),
    );
    assert_eq!(p.answers.len(), 2);
    let p = answered(&z, &query_frame("big.cluster.local", TYPE_SRV, false));
    assert_ne!(p.flags & 0x0200, 0, "TC");
    assert!(!p.answers.is_empty() && p.answers.len() < 16);
}

#[test]
fn responses_other_opcodes_fragments_and_other_classes_go_on() {
    let z = zones();
    let name = "web.default.svc.cluster.local";
    let mut q = query_frame(name, TYPE_A, false);
    q[44] |= 0x80; // QR: a response
    assert_eq!(ask(&z, 1, &q), Outcome::Pass(Pass::NotOurs));
    let mut q = query_frame(name, TYPE_A, false);
    q[44] |= 0x28; // opcode 5 (UPDATE)
    assert_eq!(ask(&z, 1, &q), Outcome::Pass(Pass::NotOurs));
    let mut q = query_frame(name, TYPE_A, false);
    q[20] = 0x20; // MF: a first fragment
    assert_eq!(ask(&z, 1, &q), Outcome::Pass(Pass::NotOurs));
    let mut q = query_frame(name, TYPE_A, false);
    let n = q.len();
    q[n - 1] = 3; // class CH
    assert_eq!(ask(&z, 1, &q), Outcome::Pass(Pass::NotOurs));
}

#[test]
fn compression_loops_forward_pointers_and_cut_messages_are_malformed_never_a_panic() {
    let z = zones();
    // A question that points at itself, and one that points forward.
    for name in [
        &[0xc0u8, 12][..],
        &[0xc0, 40][..],
        &[3, b'w', b'e', b'b', 0xc0, 12][..],
    ] {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(
            ask(&z, 1, &frame_with(&m)),
            Outcome::Pass(Pass::Malformed),
            "{name:?}"
        );
    }
    // Every prefix of a good query, and every byte flipped, is handled.
    let q = query_frame("web.default.svc.cluster.local", TYPE_A, true);
    for n in 0..q.len() {
        let _ = ask(&z, 1, &q[..n]);
    }
    for i in 0..q.len() {
        for bit in 0..8 {
            let mut f = q.clone();
            f[i] ^= 1 << bit;
            let _ = ask(&z, 1, &f);
        }
    }
    // Two questions, or answers in a query: not a query this answers.
    let mut q2 = q.clone();
    q2[47] = 2;
    assert_eq!(ask(&z, 1, &q2), Outcome::Pass(Pass::Malformed));
}

#[test]
fn a_name_longer_than_dns_allows_is_malformed() {
    let z = zones();
    let long = vec!["a".repeat(63); 5].join(".");
    assert_eq!(
        ask(&z, 1, &query_frame(&long, TYPE_A, false)),
        Outcome::Pass(Pass::Malformed)
    );
}

#[test]
fn an_alias_is_answered_with_its_cname_and_the_targets_records_when_they_are_here() {
    let rows = vec![
        pb::SbDns {
            datapath: 1,
            name: "web.default.svc.cluster.local".into(),
            a: vec![0x0a60_000a],
            ttl: 30,
            ..Default::default()
        },
        pb::SbDns {
            datapath: 1,
            name: "www.default.svc.cluster.local".into(),
            cname: "web.default.svc.cluster.local".into(),
            ttl: 30,
            ..Default::default()
        },
        pb::SbDns {
            datapath: 1,
            name: "ext.default.svc.cluster.local".into(),
            cname: "example.com".into(),
            ttl: 30,
            ..Default::default()
        },
    ];
    let z = Zones::build(&rows, [(1, "cluster.local")].into_iter());
    let mut buf = [0u8; MAX_ANSWER_FRAME];
    let q = query_frame("WWW.default.svc.cluster.local", TYPE_A, false);
    let Outcome::Answer { len, nxdomain } = answer(z.get(1).unwrap(), &q, &mut buf) else {
        panic!("answered");
    };
    assert!(!nxdomain);
    let a = &buf[..len];
    assert!(checksums_ok(a));
    let m = &a[42..];
    assert_eq!(
        u16::from_be_bytes([m[6], m[7]]),
        2,
        "CNAME, then the target's A"
    );
    let mut at = 12;
    while m[at] != 0 {
        at += 1 + usize::from(m[at]);
    }
    at += 5;
    assert_eq!(
        &m[at..at + 4],
        &[0xc0, 0x0c, 0, 5],
        "CNAME owned by the question"
    );
    let rdlen = usize::from(u16::from_be_bytes([m[at + 10], m[at + 11]]));
    let target_at = at + 12;
    assert_eq!(
        &m[target_at..target_at + rdlen],
        &*wire_name("web.default.svc.cluster.local")
    );
    at = target_at + rdlen;
    let ptr = u16::from_be_bytes([m[at], m[at + 1]]);
    assert_eq!(
        usize::from(ptr & 0x3fff),
        target_at,
        "A owned by the CNAME's target"
    );
    assert_eq!(&m[at + 2..at + 4], &[0, 1]);
    assert_eq!(&m[at + 10..at + 12], &[0, 4]);
    assert_eq!(&m[at + 12..at + 16], &[10, 96, 0, 10]);
    assert_eq!(at + 16, m.len());
    assert!(
        describe(a).contains("CNAME web.default.svc.cluster.local. (ttl 30), A 10.96.0.10"),
        "{}",
        describe(a)
    );

    // A target elsewhere: the CNAME alone, for every type; the resolver follows it.
    for t in [TYPE_A, TYPE_AAAA, TYPE_CNAME, TYPE_SRV] {
        let q = query_frame("ext.default.svc.cluster.local", t, false);
        let Outcome::Answer { len, .. } = answer(z.get(1).unwrap(), &q, &mut buf) else {
            panic!("answered");
        };
        let p = parse(&q, &buf[..len]);
        assert_eq!(p.answers.len(), 1, "type {t}");
        assert_eq!(
            p.answers[0],
            (TYPE_CNAME, wire_name("example.com").to_vec())
        );
    }
    // Asked for the CNAME itself: no chasing.
    let q = query_frame("www.default.svc.cluster.local", TYPE_CNAME, false);
    let Outcome::Answer { len, .. } = answer(z.get(1).unwrap(), &q, &mut buf) else {
        panic!("answered");
    };
    assert_eq!(parse(&q, &buf[..len]).answers.len(), 1);
}
