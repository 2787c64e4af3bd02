//! Access control lists of logical switches (Kubernetes NetworkPolicy): the
//! match language and validation at the API (their compilation into the
//! stateful stages is `compile_acl`).
//!
//! The match language is OVN's, the part a classifier executes directly: a
//! conjunction (`&&`) of `field == value` terms, where a value may be a set
//! (`{80, 443}`, expanded into one flow per combination), an IPv4 or IPv6
//! prefix or a port name, and bare protocol names (`ip4`, `ip6`, `ip`, `tcp`,
//! `udp`, `icmp4`, `icmp6`, `icmp`) that a field implies anyway. As in OVN,
//! `ip`, `tcp`, `udp`, `icmp` and `ip.proto` stand for both families (one flow
//! each) unless another term names one: a default deny written `ip` covers
//! IPv6 too. ACLs are stateful: a connection an ACL allows is
//! committed to conntrack, and its replies and related ICMP errors pass in
//! both stages before any ACL is looked at.

use crate::compile::flows::{ETH_IPV4, ETH_IPV6};
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

/// The families a term allows (bits), and its L4 protocol if it names one.
const V4: u8 = 1;
const V6: u8 = 2;
const BOTH: u8 = V4 | V6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
    /// ICMP of the packet's family (1 for IPv4, 58 for IPv6).
    Icmp,
}

impl L4 {
    fn proto(self, fam: u8) -> u64 {
        match (self, fam) {
            (L4::Tcp, _) => 6,
            (L4::Udp, _) => 17,
            (L4::Icmp, V4) => 1,
            (L4::Icmp, _) => 58,
        }
    }
}

/// A term's prerequisites: the families it allows and its L4 protocol.
type Pre = (u8, Option<L4>);

/// What a field is: its flow-key field, how its value is written, and the
/// prerequisites it implies (eth.type, ip.proto).
fn field_of(name: &str) -> Option<(Field, ValueKind, Option<Pre>)> {
    Some(match name {
        "inport" => (Field::Inport, ValueKind::Port, None),
        "outport" => (Field::Outport, ValueKind::Port, None),
        "eth.src" => (Field::EthSrc, ValueKind::Mac, None),
        "eth.dst" => (Field::EthDst, ValueKind::Mac, None),
        "ip4.src" => (Field::Ip4Src, ValueKind::Ip, Some((V4, None))),
        "ip4.dst" => (Field::Ip4Dst, ValueKind::Ip, Some((V4, None))),
        "ip6.src" => (
            Field::Ip6SrcHi,
            ValueKind::Ip6(Field::Ip6SrcLo),
            Some((V6, None)),
        ),
        "ip6.dst" => (
            Field::Ip6DstHi,
            ValueKind::Ip6(Field::Ip6DstLo),
            Some((V6, None)),
        ),
        "ip.proto" => (Field::IpProto, ValueKind::Int(255), Some((BOTH, None))),
        "tcp.src" => (
            Field::L4Src,
            ValueKind::Int(65535),
            Some((BOTH, Some(L4::Tcp))),
        ),
        "tcp.dst" => (
            Field::L4Dst,
            ValueKind::Int(65535),
            Some((BOTH, Some(L4::Tcp))),
        ),
        "udp.src" => (
            Field::L4Src,
            ValueKind::Int(65535),
            Some((BOTH, Some(L4::Udp))),
        ),
        "udp.dst" => (
            Field::L4Dst,
            ValueKind::Int(65535),
            Some((BOTH, Some(L4::Udp))),
        ),
        "icmp4.type" => (
            Field::L4Src,
            ValueKind::Int(255),
            Some((V4, Some(L4::Icmp))),
        ),
        "icmp4.code" => (
            Field::L4Dst,
            ValueKind::Int(255),
            Some((V4, Some(L4::Icmp))),
        ),
        "icmp6.type" => (
            Field::L4Src,
            ValueKind::Int(255),
            Some((V6, Some(L4::Icmp))),
        ),
        "icmp6.code" => (
            Field::L4Dst,
            ValueKind::Int(255),
            Some((V6, Some(L4::Icmp))),
        ),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
enum ValueKind {
    Port,
    Mac,
    Ip,
    /// An IPv6 address or prefix: the term's field is the high half, this
    /// the low one.
    Ip6(Field),
    Int(u64),
}

/// Bare protocol names: the prerequisites each stands for.
fn protocol(name: &str) -> Option<Pre> {
    match name {
        "ip4" => Some((V4, None)),
        "ip6" => Some((V6, None)),
        "ip" => Some((BOTH, None)),
        "tcp" => Some((BOTH, Some(L4::Tcp))),
        "udp" => Some((BOTH, Some(L4::Udp))),
        "icmp4" => Some((V4, Some(L4::Icmp))),
        "icmp6" => Some((V6, Some(L4::Icmp))),
        "icmp" => Some((BOTH, Some(L4::Icmp))),
        _ => None,
    }
}

/// The ICMPv6 types of neighbour discovery and MLD (RS, RA, NS, NA, MLD
/// query/report/done, MLDv2 report): what IPv6 cannot work without. The
/// ACL stages let them through before any ACL (as OVN does); port security
/// has already checked who may send which.
pub const ND_AND_MLD: [u64; 8] = [130, 131, 132, 133, 134, 135, 136, 143];

/// The conditions a value of field `f` stands for (two for an IPv6 prefix
/// longer than /64: both halves).
fn value(m: &str, f: Field, k: ValueKind, tok: &Tok, at: usize) -> Result<Vec<Cond>, NbError> {
    if let ValueKind::Ip6(lo) = k {
        return value6(m, f, lo, tok, at);
    }
    Ok(vec![(f, value1(m, k, tok, at)?)])
}

/// An IPv6 address or prefix as conditions on the two 64-bit halves.
fn value6(m: &str, hi: Field, lo: Field, tok: &Tok, at: usize) -> Result<Vec<Cond>, NbError> {
    let text = match tok {
        Tok::Word(w) => w.as_str(),
        Tok::Str(s) => s.as_str(),
        _ => return Err(err(m, at, "expected a value")),
    };
    let net: ipnet::Ipv6Net = match text.parse() {
        Ok(n) => n,
        Err(_) => text
            .parse::<std::net::Ipv6Addr>()
            .map(ipnet::Ipv6Net::from)
            .map_err(|_| err(m, at, format!("{text:?} is not an IPv6 address or prefix")))?,
    };
    if net.network() != net.addr() {
        return Err(err(m, at, format!("{text} has host bits set")));
    }
    let (v, mask) = (u128::from(net.network()), u128::from(net.netmask()));
    let mut out = vec![(hi, Val::Num((v >> 64) as u64, (mask >> 64) as u64))];
    if mask as u64 != 0 {
        out.push((lo, Val::Num(v as u64, mask as u64)));
    }
    Ok(out)
}

fn value1(m: &str, k: ValueKind, tok: &Tok, at: usize) -> Result<Val, NbError> {
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
        ValueKind::Ip6(_) => Err(err(m, at, "an IPv6 value has two halves")),
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
    let mut protos: Vec<(Pre, usize)> = Vec::new();
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
                    vals.push(value(m, f, k, t, *a)?);
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
                vals.push(value(m, f, k, vt, *vat)?);
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
                        a.extend(v.iter().cloned());
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
    // Prerequisites: one L4 protocol at most; the families every term allows.
    let mut l4 = None;
    let mut fams = BOTH;
    for &((fam, p), at) in &protos {
        fams &= fam;
        if fams == 0 {
            return Err(err(
                m,
                at,
                "the match names both IPv4 and IPv6: it never matches",
            ));
        }
        if let Some(p) = p {
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
    // One alternative per family (none named: no IP prerequisite at all).
    let pres: Vec<Vec<Cond>> = if protos.is_empty() {
        vec![Vec::new()]
    } else {
        [(V4, ETH_IPV4), (V6, ETH_IPV6)]
            .into_iter()
            .filter(|(f, _)| fams & f != 0)
            .map(|(f, eth)| {
                let mut pre = vec![(Field::EthType, Val::Num(eth, u64::MAX))];
                if let Some(p) = l4 {
                    pre.push((Field::IpProto, Val::Num(p.proto(f), u64::MAX)));
                }
                pre
            })
            .collect()
    };
    if alts.len() * pres.len() > MAX_EXPANSION {
        return Err(err(
            m,
            0,
            format!("the sets and families expand to more than {MAX_EXPANSION} flows"),
        ));
    }
    let mut out = Vec::with_capacity(alts.len() * pres.len());
    let mut contradiction = None;
    for pre in &pres {
        'alt: for a in &alts {
            let mut conj = pre.clone();
            for c in a {
                // The same field twice: equal values merge, different ones
                // contradict (`icmp && ip.proto == 1`: IPv4's alternative only).
                match conj.iter().find(|(f, _)| *f == c.0) {
                    Some(prev) if prev.1 == c.1 => {}
                    Some(_) => {
                        contradiction.get_or_insert(c.0);
                        continue 'alt;
                    }
                    None => conj.push(c.clone()),
                }
            }
            out.push(conj);
        }
    }
    if out.is_empty() {
        let f = contradiction.map_or_else(String::new, |f| f.to_string());
        return Err(err(
            m,
            0,
            format!("{f} is compared with two different values"),
        ));
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
mod tests;
