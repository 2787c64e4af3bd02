//! In-memory: DNS answered by the PMD, what it lets go on, and what it
//! refuses (a spoofing pod, a flood past the per-port rate, malformed
//! queries), through the real pipeline and exact-match cache.

use smoltcp::wire::Ipv4Address;
use switchyard_benches::{port_mac, switch_nb};
use switchyard_northd::model::Nb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_southbound::DropReason;
use switchyard_tests::frames;
use switchyard_tests::memory::{mem, pmd_on, southbound};
use switchyard_vswitch::pmd::Pmd;

fn ip(i: u8) -> Ipv4Address {
    Ipv4Address::new(10, 0, 0, i)
}

/// A DNS query message for `name`, type A, with `qdcount` questions claimed.
fn query(name: &str, qdcount: u8) -> Vec<u8> {
    let mut m = vec![0xbe, 0xef, 0x01, 0x00, 0, qdcount, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// A query from p1 (or `src` spoofed) to p2's address, port 53.
fn query_frame(src: Ipv4Address, sport: u16, name: &str, qdcount: u8) -> Vec<u8> {
    frames::udp_ports(
        port_mac(1),
        port_mac(2),
        src,
        ip(2),
        sport,
        53,
        &query(name, qdcount),
    )
}

fn send(pmd: &mut Pmd, f: Vec<u8>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    mem(pmd, 0).rx.push_back(f);
    pmd.poll_once();
    (
        std::mem::take(&mut mem(pmd, 0).tx),
        std::mem::take(&mut mem(pmd, 1).tx),
    )
}

fn nb() -> Nb {
    let mut nb = switch_nb(2);
    nb.apply_all(vec![
        Op::LsSetOtherConfig(pb::SetConfig {
            record: "ls0".into(),
            config: [("dns_domain".to_string(), "cluster.local".to_string())].into(),
        }),
        Op::DnsAdd(pb::DnsRecord {
            switch_name: "ls0".into(),
            name: "web.default.svc.cluster.local".into(),
            addresses: vec!["10.96.0.1".into()],
            ..Default::default()
        }),
    ])
    .expect("valid ops");
    nb
}

#[test]
fn the_pmd_answers_its_names_and_lets_the_others_go_on_unchanged() {
    let lports = vec!["p1".to_string(), "p2".to_string()];
    let (mut pmd, stats, _) = pmd_on(&southbound(&nb()), &lports);
    // Twice on one 5-tuple: the second comes from the cached verdict.
    for n in 1..=2 {
        let (back, to_p2) = send(
            &mut pmd,
            query_frame(ip(1), 33333, "web.default.svc.cluster.local", 1),
        );
        assert!(to_p2.is_empty(), "the query ends at the datapath");
        assert_eq!(back.len(), 1);
        let a = &back[0];
        assert_eq!(&a[0..6], &port_mac(1).to_be_bytes()[2..], "to the asker");
        assert_eq!(&a[26..30], &[10, 0, 0, 2], "from the address it asked");
        assert_eq!(u16::from_be_bytes([a[34], a[35]]), 53);
        assert_eq!(&a[a.len() - 4..], &[10, 96, 0, 1], "the record");
        assert_eq!(stats.dns_answered.get(), n);
    }
    // Another name, and a query with two questions: to p2 as they were sent.
    for (name, qd) in [("www.example.com", 1), ("web.default.svc.cluster.local", 2)] {
        let q = query_frame(ip(1), 33334, name, qd);
        let (back, to_p2) = send(&mut pmd, q.clone());
        assert!(back.is_empty());
        assert_eq!(to_p2, vec![q], "{name} went on unchanged");
    }
    assert_eq!(stats.dns_passed.get(), 1);
    assert_eq!(stats.dns_malformed.get(), 1);
    // Under the domain without a record: NXDOMAIN (rcode 3) to the asker.
    let (back, to_p2) = send(
        &mut pmd,
        query_frame(ip(1), 33335, "db.default.svc.cluster.local", 1),
    );
    assert!(to_p2.is_empty());
    assert_eq!(back[0][42 + 3] & 0x0f, 3);
    assert_eq!(stats.dns_nxdomain.get(), 1);
}

#[test]
fn a_spoofing_pod_gets_no_answer_and_a_flood_is_held_to_the_ports_rate() {
    let lports = vec!["p1".to_string(), "p2".to_string()];
    let (mut pmd, stats, _) = pmd_on(&southbound(&nb()), &lports);
    let name = "web.default.svc.cluster.local";
    // A source address p1 does not own: port security drops it first.
    let (back, to_p2) = send(&mut pmd, query_frame(ip(99), 33333, name, 1));
    assert!(back.is_empty() && to_p2.is_empty());
    assert_eq!(stats.drops[DropReason::PortSecurityIp as usize].get(), 1);
    assert_eq!(stats.dns_answered.get(), 0);
    // A burst of 5 and about a token a second: 20 queries at once get 5 answers.
    pmd.set_dns_rate(1, 5);
    let mut answered = 0;
    for i in 0..20 {
        let (back, to_p2) = send(&mut pmd, query_frame(ip(1), 40000 + i, name, 1));
        assert!(to_p2.is_empty(), "a limited query is not passed on either");
        answered += back.len();
    }
    assert!((5..=6).contains(&answered), "{answered} answered");
    assert_eq!(
        stats.drops[DropReason::DnsRateLimited as usize].get(),
        20 - answered as u64
    );
}
