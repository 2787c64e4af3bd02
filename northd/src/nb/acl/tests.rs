//! ACL unit tests: the match language, validation on write, compiled flows.

use super::*;
use crate::nb::tests_support::txn;
use switchyard_southbound::pb::nb_op::Op;
use switchyard_southbound::Stage;

fn acl(dir: &str, prio: u32, m: &str, action: &str) -> Op {
    Op::AclAdd(Acl {
        switch_name: "ls1".into(),
        direction: dir.into(),
        priority: prio,
        r#match: m.into(),
        action: action.into(),
        name: String::new(),
    })
}

fn del(dir: &str, prio: u32, m: &str) -> Op {
    Op::AclDel(AclDel {
        switch_name: "ls1".into(),
        direction: dir.into(),
        priority: prio,
        r#match: m.into(),
    })
}

fn acl_flows(nb: &Nb) -> Vec<String> {
    let c = crate::compile::compile(nb);
    let mut v = crate::compile::tests::flows_of(&c, Stage::LsInAcl);
    v.extend(crate::compile::tests::flows_of(&c, Stage::LsOutAcl));
    v
}

#[test]
fn arbitrary_matches_get_an_answer_never_a_panic() {
    // Pieces of valid and invalid syntax, multi-byte characters included,
    // glued at random (a fixed LCG: the same 20,000 inputs every run).
    let pieces = [
        "ip4",
        "tcp",
        "udp.dst",
        "==",
        "&&",
        "||",
        "{",
        "}",
        ",",
        "\"",
        "\"p2\"",
        "10.0.0.1",
        "10.0.0.0/8",
        "/33",
        "0x",
        "0xfff",
        "80",
        "99999999999999999999",
        "é",
        "名",
        " ",
        "outport",
        "eth.src",
        "0a:00:00:00:00:01",
        "!",
        "-",
        ".",
        "icmp4.type",
    ];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let mut m = String::new();
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        for _ in 0..(x >> 60) {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            m.push_str(pieces[(x >> 33) as usize % pieces.len()]);
        }
        match parse_match(&m) {
            Ok(alts) => {
                assert!(!alts.is_empty() && alts.len() <= MAX_EXPANSION, "{m:?}");
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("column"), "{m:?}: {e}");
                refused += 1;
            }
        }
    }
    assert!(ok > 0 && refused > 0, "{ok} parsed, {refused} refused");
}

#[test]
fn acls_are_keyed_replaced_deleted_and_go_with_their_switch() {
    let mut nb = crate::compile::tests::topo();
    let p2 = r#"outport == "p2" && ip4"#;
    nb.apply_ops(&txn(vec![
        acl("to-lport", 10, p2, "drop"),
        acl("to-lport", 100, "tcp.dst == 80", "allow-related"),
        acl("from-lport", 100, "udp", "drop"),
    ]))
    .unwrap();
    assert_eq!(nb.acls.len(), 3);
    // The same identity again: refused, or replaced with may_exist.
    let again = txn(vec![acl("to-lport", 10, p2, "allow")]);
    assert!(nb
        .clone()
        .apply_ops(&again)
        .unwrap_err()
        .to_string()
        .contains("already exists"));
    let mut replace = again.clone();
    replace.may_exist = true;
    nb.apply_ops(&replace).unwrap();
    assert_eq!(
        nb.acls_of("ls1").find(|a| a.priority == 10).unwrap().action,
        "allow"
    );
    // Delete one, then a direction; a missing one is an error unless if_exists.
    nb.apply_ops(&txn(vec![del("to-lport", 100, "tcp.dst == 80")]))
        .unwrap();
    let missing = txn(vec![del("to-lport", 100, "tcp.dst == 80")]);
    assert!(nb.clone().apply_ops(&missing).is_err());
    let mut quiet = missing.clone();
    quiet.if_exists = true;
    nb.apply_ops(&quiet).unwrap();
    nb.apply_ops(&txn(vec![del("from-lport", 0, "")])).unwrap();
    assert_eq!(nb.acls.len(), 1);
    // Deleting the switch takes its ACLs along.
    nb.apply_ops(&txn(vec![Op::LsDel("ls1".into())])).unwrap();
    assert!(nb.acls.is_empty());
}

#[test]
fn bad_acls_are_refused_and_nothing_is_written() {
    let mut nb = crate::compile::tests::topo();
    let before = nb.clone();
    for (op, why) in [
        (acl("sideways", 1, "ip4", "drop"), "from-lport or to-lport"),
        (acl("to-lport", 40_000, "ip4", "drop"), "0 to 32767"),
        (
            acl("to-lport", 1, "ip4", "reject"),
            "allow-related, allow or drop",
        ),
        (
            acl("to-lport", 1, r#"inport == "nope""#, "drop"),
            "no port \"nope\"",
        ),
        (
            acl("to-lport", 1, "tcp.dst == 80 || udp", "drop"),
            "column 15",
        ),
    ] {
        let e = nb.apply_ops(&txn(vec![op])).unwrap_err().to_string();
        assert!(e.contains(why), "{e}");
        assert_eq!(nb, before, "nothing written");
    }
    let mut orphan = acl("to-lport", 1, "ip4", "drop");
    if let Op::AclAdd(a) = &mut orphan {
        a.switch_name = "nope".into();
    }
    assert!(nb.apply_ops(&txn(vec![orphan])).is_err());
}

#[test]
fn a_switch_with_acls_gets_the_stateful_stages_and_one_flow_per_combination() {
    let mut nb = crate::compile::tests::topo();
    assert_eq!(
        acl_flows(&nb),
        ["0 1 => next;", "0 1 => next;"],
        "no ACLs: nothing but the defaults, and no ct_state match"
    );
    nb.apply_ops(&txn(vec![
        acl("to-lport", 10, r#"outport == "p2" && ip4"#, "drop"),
        acl(
            "to-lport",
            100,
            "ip4.src == 10.0.0.1 && tcp.dst == {80, 443}",
            "allow",
        ),
    ]))
    .unwrap();
    let f = acl_flows(&nb);
    let has = |s: &str| f.iter().any(|x| x == s);
    assert!(
        has("65535 ct_state == +trk+inv => drop /* ct_invalid */;"),
        "{f:#?}"
    );
    assert!(has("65534 ct_state == +trk+est+rpl => next;"), "{f:#?}");
    assert!(has(
        "65535 ct_state == +trk+rpl && ct_mark == 0x1/0x1 => drop /* acl_blocked */;"
    ));
    assert!(has(
        "1 ct_state == -est-rel => ct_commit { ct_mark = 0x0/0x1; }; next;"
    ));
    assert!(has(
        "1010 ct_state == -est-rel && eth.type == 0x0800 && outport == \"p2\" => drop /* acl_drop */;"
    ));
    // The same ACL decides established packets of the opening direction,
    // and cuts their connection when it drops them.
    assert!(has(
        "1010 ct_state == +trk+est-rel-rpl && eth.type == 0x0800 && outport == \"p2\" => ct_commit { ct_mark = 0x1/0x1; }; drop /* acl_drop */;"
    ), "{f:#?}");
    let allow: Vec<_> = f.iter().filter(|x| x.starts_with("1100 ")).collect();
    assert_eq!(
        allow.len(),
        4,
        "{{80, 443}}, new and established: four flows"
    );
    assert!(allow
        .iter()
        .all(|x| x.ends_with("=> ct_commit { ct_mark = 0x0/0x1; }; next;")));
    // A port deleted since: its terms match nothing (no flow names it).
    nb.apply_ops(&txn(vec![Op::LspDel("p2".into())])).unwrap();
    assert!(!acl_flows(&nb).iter().any(|x| x.starts_with("1010 ")));
}

fn conds(m: &str) -> Vec<Vec<Cond>> {
    parse_match(m).unwrap()
}

fn why(m: &str) -> String {
    parse_match(m).unwrap_err().to_string()
}

#[test]
fn parses_terms_sets_and_prerequisites() {
    let c = conds(r#"outport == "pod2" && ip4.src == 10.0.0.0/24 && tcp.dst == {80, 443}"#);
    assert_eq!(c.len(), 2);
    assert_eq!(
        c[0],
        vec![
            (Field::EthType, Val::Num(0x0800, u64::MAX)),
            (Field::IpProto, Val::Num(6, u64::MAX)),
            (Field::Outport, Val::Port("pod2".into())),
            (Field::Ip4Src, Val::Num(0x0a00_0000, 0xffff_ff00)),
            (Field::L4Dst, Val::Num(80, u64::MAX)),
        ]
    );
    assert_eq!(c[1][4], (Field::L4Dst, Val::Num(443, u64::MAX)));
    assert_eq!(conds("ip4").len(), 1);
    assert_eq!(conds("tcp && ip4.dst == 10.1.2.3")[0].len(), 3);
    assert_eq!(
        conds("icmp4 && icmp4.type == 8")[0][1].1,
        Val::Num(1, u64::MAX)
    );
    assert_eq!(
        conds("eth.src == 0a:00:00:00:00:01")[0],
        vec![(Field::EthSrc, Val::Num(0x0a00_0000_0001, 0xffff_ffff_ffff))]
    );
}

#[test]
fn refuses_what_it_cannot_execute_with_a_column() {
    assert!(why("").contains("empty match"));
    assert!(
        why("tcp.dst == 80 || udp").contains("column 15"),
        "{}",
        why("tcp.dst == 80 || udp")
    );
    assert!(why("tcp.dst == 80 || udp").contains("sets"));
    assert!(why("ip4.src != 10.0.0.1").contains("negation"));
    assert!(why("tcp.dst == 70000").contains("more than 65535"));
    assert!(why("ip4.src == 10.0.0.1/8").contains("host bits"));
    assert!(why("tcp && udp").contains("two protocols"));
    assert!(why("tcp.dst == 80 && tcp.dst == 81").contains("two different values"));
    assert!(why("foo == 1").contains("unknown field"));
    assert!(why("inport == pod1").contains("quotes"));
    assert!(why("tcp.dst ==").contains("expected a value"));
    assert!(why("tcp.dst == {80, 81").contains("set"));
    assert!(why("ip4 &&").contains("after &&"));
    let big = format!(
        "tcp.dst == {{{}}} && ip4.src == {{{}}}",
        (1..=20)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
        (1..=20)
            .map(|i| format!("10.0.0.{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(why(&big).contains("more than 256"));
}

#[test]
fn ip_tcp_udp_and_icmp_stand_for_both_families() {
    let eth = |c: &Vec<Cond>| c[0].clone();
    let v4 = (Field::EthType, Val::Num(0x0800, u64::MAX));
    let v6 = (Field::EthType, Val::Num(0x86dd, u64::MAX));
    let c = conds("tcp.dst == 80");
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!((eth(&c[0]), eth(&c[1])), (v4.clone(), v6.clone()));
    assert!(c
        .iter()
        .all(|a| a[1] == (Field::IpProto, Val::Num(6, u64::MAX))));
    assert_eq!(conds("ip").len(), 2, "a default deny on ip covers IPv6");
    assert_eq!(conds("ip.proto == 17").len(), 2);
    let c = conds("icmp");
    assert_eq!(c[0][1].1, Val::Num(1, u64::MAX));
    assert_eq!(c[1][1].1, Val::Num(58, u64::MAX));
    // One family named: that family only.
    assert_eq!(conds("ip4 && tcp").len(), 1);
    let c = conds("icmp6 && icmp6.type == 128");
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0][..2],
        [v6.clone(), (Field::IpProto, Val::Num(58, u64::MAX))]
    );
    assert_eq!(c[0][2], (Field::L4Src, Val::Num(128, u64::MAX)));
    // A contradiction in one family's alternative leaves the other.
    let c = conds("icmp && ip.proto == 1");
    assert_eq!(c.len(), 1);
    assert_eq!(eth(&c[0]), v4);
}

#[test]
fn ipv6_prefixes_match_the_halves_they_cover() {
    let c = conds("ip6.src == fd00:10:244:1::/64 && tcp");
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0][2..],
        [(Field::Ip6SrcHi, Val::Num(0xfd00_0010_0244_0001, u64::MAX))]
    );
    let c = conds("ip6.dst == {fd00::a, fd00::b}");
    assert_eq!(c.len(), 2);
    assert_eq!(
        c[1][1..],
        [
            (Field::Ip6DstHi, Val::Num(0xfd00 << 48, u64::MAX)),
            (Field::Ip6DstLo, Val::Num(0xb, u64::MAX)),
        ]
    );
    let c = conds("ip6.src == fd00::8:0/112");
    assert_eq!(c[0][2], (Field::Ip6SrcLo, Val::Num(0x8_0000, !0xffff)));
    assert!(why("ip6.src == fd00::1/64").contains("host bits"));
    assert!(why("ip6.src == 10.0.0.1").contains("not an IPv6 address"));
    assert!(why("ip4 && ip6").contains("both IPv4 and IPv6"));
    assert!(why("ip4.src == 10.0.0.1 && icmp6").contains("both IPv4 and IPv6"));
    assert!(why("icmp4.type == 8 && ip6.dst == fd00::1").contains("never matches"));
}

#[test]
fn neighbour_discovery_passes_the_acl_stages_before_any_acl() {
    let mut nb = crate::compile::tests::topo();
    nb.apply_ops(&txn(vec![acl("from-lport", 1, "ip", "drop")]))
        .unwrap();
    let f = acl_flows(&nb);
    for ty in ND_AND_MLD {
        let nd =
            format!("65535 eth.type == 0x86dd && ip.proto == 58 && icmp6.type == {ty} => next;");
        let n = f
            .iter()
            .filter(|x| **x == nd.replace("icmp6.type", "l4.src"))
            .count();
        assert_eq!(n, 2, "{nd} in both stages: {f:#?}");
    }
    assert!(f
        .iter()
        .any(|x| x.contains("eth.type == 0x86dd") && x.contains("acl_drop")));
}
