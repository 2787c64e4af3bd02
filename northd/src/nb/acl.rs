//! Access control lists of logical switches (Kubernetes NetworkPolicy): the
//! match language and validation at the API (their compilation into the
//! stateful stages is `compile_acl`).
//!
//! The match language is OVN's, the part a classifier executes directly: a
//! conjunction (`&&`) of `field == value` terms, where a value may be a set
//! (`{80, 443}`, expanded into one flow per combination), an IPv4 prefix or a
//! port name, and bare protocol names (`ip4`, `tcp`, `udp`, `icmp4`) that
//! a field implies anyway. ACLs are stateful: a connection an ACL allows is
//! committed to conntrack, and its replies and related ICMP errors pass in
//! both stages before any ACL is looked at.

use crate::compile::flows::ETH_IPV4;
use crate::nb::{Nb, NbError};
use switchyard_southbound::pb::{Acl, AclDel};
use switchyard_southbound::{parse_mac, Field};

/// Highest ACL priority (as OVN).
pub const MAX_PRIORITY: u32 = 32767;
/// Most flows one ACL may expand to (sets multiply).
pub const MAX_EXPANSION: usize = 256;
const DIRECTIONS: [&str; 2] = ["from-lport", "to-lport"];
const ACTIONS: [&str; 3] = ["allow-related", "allow", "drop"];
/// ACL priorities sit above the stage's defaults and below the conntrack rules.
pub(crate) const BASE: u32 = 1000;

/// A value in a match, before ports are resolved to keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// (value, mask).
    Num(u64, u64),
    Port(String),
}

/// One conjunct of a compiled match.
pub type Cond = (Field, Val);

fn err(m: &str, at: usize, why: impl std::fmt::Display) -> NbError {
    NbError::BadValue {
        field: "match",
        value: m.to_string(),
        why: format!("at column {}: {why}", at + 1),
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    EqEq,
    And,
    Open,
    Close,
    Comma,
}

fn lex(m: &str) -> Result<Vec<(Tok, usize)>, NbError> {
    let b = m.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' => {
                i += 1;
                continue;
            }
            b'=' if b.get(i + 1) == Some(&b'=') => {
                out.push((Tok::EqEq, start));
                i += 2;
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                out.push((Tok::And, start));
                i += 2;
            }
            b'{' | b'}' | b',' => {
                out.push((
                    match c {
                        b'{' => Tok::Open,
                        b'}' => Tok::Close,
                        _ => Tok::Comma,
                    },
                    start,
                ));
                i += 1;
            }
            b'"' => {
                let end = m[i + 1..]
                    .find('"')
                    .ok_or_else(|| err(m, i, "unterminated string"))?;
                out.push((Tok::Str(m[i + 1..i + 1 + end].to_string()), start));
                i += end + 2;
            }
            c if c.is_ascii_alphanumeric() || b"._:/-".contains(&c) => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b"._:/-".contains(&b[i])) {
                    i += 1;
                }
                out.push((Tok::Word(m[start..i].to_string()), start));
            }
            _ => {
                let what = m[i..].chars().next().unwrap_or('?');
                let hint = match what {
                    '|' => ": disjunctions are written as sets, {a, b}",
                    '!' => ": negation is not supported; use a higher-priority rule",
                    '<' | '>' => ": ranges are not supported; list the values as a set",
                    _ => "",
                };
                return Err(err(m, i, format!("unexpected {what:?}{hint}")));
            }
        }
    }
    Ok(out)
}

/// What a field is: its flow-key field, how its value is written, and the
/// prerequisites it implies (eth.type, ip.proto).
fn field_of(name: &str) -> Option<(Field, ValueKind, Option<u8>)> {
    Some(match name {
        "inport" => (Field::Inport, ValueKind::Port, None),
        "outport" => (Field::Outport, ValueKind::Port, None),
        "eth.src" => (Field::EthSrc, ValueKind::Mac, None),
        "eth.dst" => (Field::EthDst, ValueKind::Mac, None),
        "ip4.src" => (Field::Ip4Src, ValueKind::Ip, Some(0)),
        "ip4.dst" => (Field::Ip4Dst, ValueKind::Ip, Some(0)),
        "ip.proto" => (Field::IpProto, ValueKind::Int(255), Some(0)),
        "tcp.src" => (Field::L4Src, ValueKind::Int(65535), Some(6)),
        "tcp.dst" => (Field::L4Dst, ValueKind::Int(65535), Some(6)),
        "udp.src" => (Field::L4Src, ValueKind::Int(65535), Some(17)),
        "udp.dst" => (Field::L4Dst, ValueKind::Int(65535), Some(17)),
        "icmp4.type" => (Field::L4Src, ValueKind::Int(255), Some(1)),
        "icmp4.code" => (Field::L4Dst, ValueKind::Int(255), Some(1)),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
enum ValueKind {
    Port,
    Mac,
    Ip,
    Int(u64),
}

/// Bare protocol names: the prerequisite each stands for (0: IPv4 only).
fn protocol(name: &str) -> Option<u8> {
    match name {
        "ip4" | "ip" => Some(0),
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp4" | "icmp" => Some(1),
        _ => None,
    }
}

fn value(m: &str, k: ValueKind, tok: &Tok, at: usize) -> Result<Val, NbError> {
    let text = match tok {
        Tok::Word(w) => w.as_str(),
        Tok::Str(s) => s.as_str(),
        _ => return Err(err(m, at, "expected a value")),
    };
    let bad = |what: &str| err(m, at, format!("{text:?} is not {what}"));
    match k {
        ValueKind::Port => match tok {
            Tok::Str(s) => Ok(Val::Port(s.clone())),
            _ => Err(err(m, at, "a port name is written in quotes")),
        },
        ValueKind::Mac => parse_mac(text)
            .map(|v| Val::Num(v, Field::EthSrc.full_mask()))
            .ok_or_else(|| bad("a MAC address")),
        ValueKind::Ip => {
            let net: ipnet::Ipv4Net = match text.parse() {
                Ok(n) => n,
                Err(_) => text
                    .parse::<std::net::Ipv4Addr>()
                    .map(ipnet::Ipv4Net::from)
                    .map_err(|_| bad("an IPv4 address or prefix"))?,
            };
            if net.network() != net.addr() {
                return Err(err(m, at, format!("{text} has host bits set")));
            }
            Ok(Val::Num(
                u32::from(net.network()).into(),
                u32::from(net.netmask()).into(),
            ))
        }
        ValueKind::Int(max) => {
            let n = match text.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => text.parse(),
            }
            .map_err(|_| bad("a number"))?;
            if n > max {
                return Err(err(m, at, format!("{n} is more than {max}")));
            }
            Ok(Val::Num(n, u64::MAX))
        }
    }
}

/// Parses a match into a disjunction of conjunctions (sets expanded), with
/// the prerequisites of its fields added. Errors name the column.
pub fn parse_match(m: &str) -> Result<Vec<Vec<Cond>>, NbError> {
    let toks = lex(m)?;
    if toks.is_empty() {
        return Err(err(
            m,
            0,
            "empty match (write ip4 to match every IPv4 packet)",
        ));
    }
    let mut alts: Vec<Vec<Cond>> = vec![Vec::new()];
    let mut protos: Vec<(u8, usize)> = Vec::new();
    let mut i = 0;
    loop {
        let (tok, at) = &toks[i];
        let Tok::Word(name) = tok else {
            return Err(err(m, *at, "expected a field or protocol name"));
        };
        i += 1;
        if toks.get(i).map(|t| &t.0) != Some(&Tok::EqEq) {
            let p = protocol(name).ok_or_else(|| {
                if field_of(name).is_some() {
                    err(m, *at, format!("{name} needs == and a value"))
                } else {
                    err(m, *at, format!("unknown field or protocol {name:?}"))
                }
            })?;
            protos.push((p, *at));
        } else {
            let (f, k, pre) =
                field_of(name).ok_or_else(|| err(m, *at, format!("unknown field {name:?}")))?;
            if let Some(p) = pre {
                protos.push((p, *at));
            }
            i += 1;
            let (vt, vat) = toks
                .get(i)
                .ok_or_else(|| err(m, m.len(), "expected a value"))?;
            let mut vals = Vec::new();
            if *vt == Tok::Open {
                i += 1;
                loop {
                    let (t, a) = toks
                        .get(i)
                        .ok_or_else(|| err(m, m.len(), "unterminated set"))?;
                    vals.push(value(m, k, t, *a)?);
                    i += 1;
                    match toks.get(i).map(|t| &t.0) {
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::Close) => {
                            i += 1;
                            break;
                        }
                        _ => return Err(err(m, *a, "expected , or } in the set")),
                    }
                }
            } else {
                vals.push(value(m, k, vt, *vat)?);
                i += 1;
            }
            vals.dedup();
            if alts.len() * vals.len() > MAX_EXPANSION {
                return Err(err(
                    m,
                    *vat,
                    format!("the sets expand to more than {MAX_EXPANSION} flows"),
                ));
            }
            alts = alts
                .into_iter()
                .flat_map(|a| {
                    vals.iter().map(move |v| {
                        let mut a = a.clone();
                        a.push((f, v.clone()));
                        a
                    })
                })
                .collect();
        }
        match toks.get(i) {
            None => break,
            Some((Tok::And, _)) => i += 1,
            Some((_, a)) => return Err(err(m, *a, "expected && between terms")),
        }
        if i >= toks.len() {
            return Err(err(m, m.len(), "expected a term after &&"));
        }
    }
    // Prerequisites: one L4 protocol at most; any protocol implies IPv4.
    let mut l4 = None;
    for &(p, at) in &protos {
        if p != 0 {
            match l4 {
                Some(q) if q != p => {
                    return Err(err(
                        m,
                        at,
                        "the match names two protocols: it never matches",
                    ))
                }
                _ => l4 = Some(p),
            }
        }
    }
    let mut pre = Vec::new();
    if !protos.is_empty() {
        pre.push((Field::EthType, Val::Num(ETH_IPV4, u64::MAX)));
    }
    if let Some(p) = l4 {
        pre.push((Field::IpProto, Val::Num(p.into(), u64::MAX)));
    }
    let mut out = Vec::with_capacity(alts.len());
    for a in alts {
        let mut conj = pre.clone();
        for c in a {
            // The same field twice: equal values merge, different ones contradict.
            match conj.iter().find(|(f, _)| *f == c.0) {
                Some(prev) if prev.1 == c.1 => {}
                Some(_) => {
                    return Err(err(
                        m,
                        0,
                        format!("{} is compared with two different values", c.0),
                    ))
                }
                None => conj.push(c),
            }
        }
        out.push(conj);
    }
    Ok(out)
}

/// The identity of an ACL: switch, direction, priority and match.
pub fn acl_key(a: &Acl) -> String {
    format!(
        "{}/{}/{:05}/{}",
        a.switch_name, a.direction, a.priority, a.r#match
    )
}

impl Nb {
    pub(crate) fn acl_add(&mut self, a: &Acl, may_exist: bool) -> Result<(), NbError> {
        if !self.switches.contains_key(&a.switch_name) {
            return Err(NbError::NoSuchSwitch(a.switch_name.clone()));
        }
        let bad = |field, value: &str, why: &str| NbError::BadValue {
            field,
            value: value.to_string(),
            why: why.to_string(),
        };
        if !DIRECTIONS.contains(&a.direction.as_str()) {
            return Err(bad("direction", &a.direction, "use from-lport or to-lport"));
        }
        if a.priority > MAX_PRIORITY {
            return Err(bad("priority", &a.priority.to_string(), "use 0 to 32767"));
        }
        if !ACTIONS.contains(&a.action.as_str()) {
            return Err(bad("action", &a.action, "use allow-related, allow or drop"));
        }
        let alts = parse_match(&a.r#match)?;
        for conj in &alts {
            for (_, v) in conj {
                if let Val::Port(p) = v {
                    if !self.ports_of(&a.switch_name).any(|x| &x.name == p) {
                        return Err(NbError::BadValue {
                            field: "match",
                            value: a.r#match.clone(),
                            why: format!("no port {p:?} on switch {:?}", a.switch_name),
                        });
                    }
                }
            }
        }
        let row = Acl {
            r#match: a.r#match.trim().to_string(),
            ..a.clone()
        };
        let key = acl_key(&row);
        if self.acls.contains_key(&key) && !may_exist {
            return Err(NbError::Exists(
                "ACL",
                format!(
                    "{} {} {} {}",
                    row.switch_name, row.direction, row.priority, row.r#match
                ),
            ));
        }
        self.acls.insert(key, row);
        Ok(())
    }

    pub(crate) fn acl_del(&mut self, d: &AclDel, if_exists: bool) -> Result<(), NbError> {
        if !self.switches.contains_key(&d.switch_name) {
            return Err(NbError::NoSuchSwitch(d.switch_name.clone()));
        }
        let before = self.acls.len();
        let m = d.r#match.trim();
        self.acls.retain(|_, a| {
            !(a.switch_name == d.switch_name
                && (d.direction.is_empty() || a.direction == d.direction)
                && (m.is_empty() || (a.priority == d.priority && a.r#match == m)))
        });
        if self.acls.len() == before && !if_exists {
            return Err(NbError::Missing(
                "ACL",
                format!("{} {} {} {}", d.switch_name, d.direction, d.priority, m)
                    .trim()
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// The ACLs of one switch, highest priority first.
    pub fn acls_of<'a>(&'a self, switch: &'a str) -> impl Iterator<Item = &'a Acl> {
        let mut v: Vec<&Acl> = self
            .acls
            .values()
            .filter(|a| a.switch_name == switch)
            .collect();
        v.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.r#match.cmp(&b.r#match)));
        v.into_iter()
    }
}

#[cfg(test)]
mod tests {
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
}
