//! OVN's microflow syntax for describing one packet, e.g.
//! `inport == "pod1" && ip4.dst == 10.0.0.3 && tcp.dst == 80` (or over IPv6,
//! `ip6.dst == fd00::3`), parsed into a flow key with the blanks filled in from
//! the southbound contents (the inport's MAC and IP of the packet's family, the
//! destination port's MAC, protocol defaults). Errors point at the byte
//! where the expression went wrong.

use crate::dp::flow::FlowKey;
use switchyard_southbound::parse_mac;
use switchyard_southbound::pb::SbSnapshot;

/// A parse or resolution error, with the byte offset it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroflowError {
    pub pos: usize,
    pub msg: String,
}

impl MicroflowError {
    /// The expression with a caret under the error position.
    pub fn render(&self, expr: &str) -> String {
        format!(
            "{}\n  {}\n  {}^",
            self.msg,
            expr,
            " ".repeat(self.pos.min(expr.len()))
        )
    }
}

impl std::fmt::Display for MicroflowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at column {}: {}", self.pos + 1, self.msg)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Str(String),
    Int(u64),
    Mac(u64),
    Ip4(u32),
    Ip6(u128),
}

/// One `field == value` (or a bare protocol name such as `tcp`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: String,
    value: Option<Value>,
    pos: usize,
    /// Where the value starts (the field's position for bare protocols).
    vpos: usize,
}

/// A parsed microflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Microflow {
    terms: Vec<Term>,
}

const FIELDS: &[&str] = &[
    "inport",
    "eth.src",
    "eth.dst",
    "eth.type",
    "vlan.tci",
    "ip4.src",
    "ip4.dst",
    "ip6.src",
    "ip6.dst",
    "ip.ttl",
    "ip.proto",
    "tcp.src",
    "tcp.dst",
    "udp.src",
    "udp.dst",
    "icmp4.type",
    "icmp4.code",
    "icmp6.type",
    "icmp6.code",
    "arp.op",
    "arp.sha",
    "arp.spa",
    "arp.tpa",
    "ct_mark",
    "ct_label",
    "dns.qname",
    "dns.qtype",
];
const PROTOCOLS: &[&str] = &[
    "ip4", "ip6", "tcp", "udp", "icmp4", "icmp6", "icmp", "arp", "eth",
];

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        while self.s[self.pos..].starts_with(char::is_whitespace) {
            self.pos += 1;
        }
    }
    fn err(&self, pos: usize, msg: impl Into<String>) -> MicroflowError {
        MicroflowError {
            pos,
            msg: msg.into(),
        }
    }
    fn word(&mut self) -> (usize, &'a str) {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.s[start..];
        let n = rest
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == ':' || c == '/')
            })
            .unwrap_or(rest.len());
        self.pos += n;
        (start, &rest[..n])
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.s[self.pos..].starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }
}

fn parse_value(text: &str, pos: usize) -> Result<Value, MicroflowError> {
    let err = |m: &str| MicroflowError {
        pos,
        msg: m.to_string(),
    };
    if let Some(m) = parse_mac(text) {
        return Ok(Value::Mac(m));
    }
    if let Ok(ip) = text.parse::<std::net::Ipv4Addr>() {
        return Ok(Value::Ip4(u32::from(ip)));
    }
    if let Ok(ip) = text.parse::<std::net::Ipv6Addr>() {
        return Ok(Value::Ip6(u128::from(ip)));
    }
    if let Some(h) = text.strip_prefix("0x") {
        return u64::from_str_radix(h, 16)
            .map(Value::Int)
            .map_err(|_| err("bad hexadecimal number"));
    }
    text.parse::<u64>().map(Value::Int).map_err(|_| {
        err(&format!(
            "{text:?} is not a number, MAC, IPv4 or IPv6 address or quoted string"
        ))
    })
}

impl Microflow {
    /// Parses a conjunction of `field == value` terms and bare protocol names.
    pub fn parse(expr: &str) -> Result<Microflow, MicroflowError> {
        let mut lx = Lexer { s: expr, pos: 0 };
        let mut terms = Vec::new();
        loop {
            let (pos, name) = lx.word();
            if name.is_empty() {
                return Err(lx.err(pos, "expected a field name"));
            }
            if lx.eat("==") {
                if !FIELDS.contains(&name) {
                    return Err(lx.err(
                        pos,
                        format!("unknown field {name:?}; known: {}", FIELDS.join(", ")),
                    ));
                }
                lx.skip_ws();
                let vpos = lx.pos;
                let value = if lx.eat("\"") {
                    let rest = &expr[lx.pos..];
                    let end = rest
                        .find('"')
                        .ok_or_else(|| lx.err(vpos, "unterminated string"))?;
                    lx.pos += end + 1;
                    Value::Str(rest[..end].to_string())
                } else {
                    let (vpos, text) = lx.word();
                    if text.is_empty() {
                        return Err(lx.err(vpos, "expected a value"));
                    }
                    if name == "dns.qtype" && text.bytes().all(|b| b.is_ascii_alphabetic()) {
                        Value::Str(text.to_string())
                    } else {
                        parse_value(text, vpos)?
                    }
                };
                terms.push(Term {
                    field: name.to_string(),
                    value: Some(value),
                    pos,
                    vpos,
                });
            } else if PROTOCOLS.contains(&name) {
                terms.push(Term {
                    field: name.to_string(),
                    value: None,
                    pos,
                    vpos: pos,
                });
            } else if FIELDS.contains(&name) {
                lx.skip_ws();
                return Err(lx.err(lx.pos, format!("expected \"==\" after {name}")));
            } else {
                return Err(lx.err(pos, format!("unknown field or protocol {name:?}")));
            }
            lx.skip_ws();
            if lx.pos == expr.len() {
                break;
            }
            if !lx.eat("&&") {
                return Err(lx.err(
                    lx.pos,
                    "expected \"&&\" (a microflow is one packet: no ||, no !)",
                ));
            }
        }
        Ok(Microflow { terms })
    }

    fn get(&self, f: &str) -> Option<&Term> {
        self.terms.iter().find(|t| t.field == f)
    }

    /// The inport's name.
    pub fn inport(&self) -> Result<&str, MicroflowError> {
        match self.get("inport") {
            Some(Term {
                value: Some(Value::Str(s)),
                ..
            }) => Ok(s),
            Some(t) => Err(MicroflowError {
                pos: t.pos,
                msg: "inport takes a quoted port name".into(),
            }),
            None => Err(MicroflowError {
                pos: 0,
                msg: "the microflow needs inport == \"PORT\"".into(),
            }),
        }
    }

    /// The DNS question the microflow asks (`dns.qname == "NAME"`, with
    /// `dns.qtype == AAAA` or a number; A when not given), if it asks one.
    pub fn dns_question(&self) -> Result<Option<(String, u16)>, MicroflowError> {
        let Some(t) = self.get("dns.qname") else {
            if let Some(t) = self.get("dns.qtype") {
                return Err(MicroflowError {
                    pos: t.pos,
                    msg: "dns.qtype needs dns.qname == \"NAME\" too".into(),
                });
            }
            return Ok(None);
        };
        let Some(Value::Str(name)) = &t.value else {
            return Err(MicroflowError {
                pos: t.vpos,
                msg: "dns.qname takes a quoted name".into(),
            });
        };
        let qtype = match self.get("dns.qtype") {
            None => 1,
            Some(t) => match &t.value {
                Some(Value::Int(n)) if *n <= 0xffff => *n as u16,
                Some(Value::Str(s)) => {
                    crate::answer::dns::qtype_of(s).ok_or_else(|| MicroflowError {
                        pos: t.vpos,
                        msg: format!("{s:?} is not a type (A, AAAA, SRV, PTR, ANY, or a number)"),
                    })?
                }
                _ => {
                    return Err(MicroflowError {
                        pos: t.vpos,
                        msg: "dns.qtype takes A, AAAA, SRV, PTR, ANY or a number".into(),
                    })
                }
            },
        };
        Ok(Some((name.clone(), qtype)))
    }

    /// Builds the flow key (in_port left 0), filling blanks from `sb`.
    pub fn resolve(&self, sb: &SbSnapshot) -> Result<FlowKey, MicroflowError> {
        let inport = self.inport()?;
        let ip_pos = self.get("inport").map(|t| t.pos).unwrap_or(0);
        let pbs = &sb.port_bindings;
        let pb = pbs
            .iter()
            .find(|p| p.logical_port == inport)
            .ok_or_else(|| MicroflowError {
                pos: ip_pos,
                msg: format!("no logical port {inport:?}"),
            })?;
        let addr_of = |p: &switchyard_southbound::pb::PortBinding| -> (u64, u32) {
            for a in &p.mac {
                let mut w = a.split_whitespace();
                if let Some(m) = w.next().and_then(parse_mac) {
                    let ip = w
                        .find_map(|x| {
                            // Router ports list "IP/len".
                            x.split('/').next()?.parse::<std::net::Ipv4Addr>().ok()
                        })
                        .map(u32::from)
                        .unwrap_or(0);
                    return (m, ip);
                }
            }
            (0, 0)
        };
        // The first global IPv6 address a port lists (router ports: "IP/len").
        let addr6_of = |p: &switchyard_southbound::pb::PortBinding| -> u128 {
            p.mac
                .iter()
                .flat_map(|a| a.split_whitespace().skip(1))
                .filter_map(|x| x.split('/').next()?.parse::<std::net::Ipv6Addr>().ok())
                .find(|a| a.segments()[0] & 0xffc0 != 0xfe80)
                .map_or(0, u128::from)
        };
        let (src_mac, src_ip) = addr_of(pb);
        let mut k = FlowKey {
            eth_src: src_mac,
            ip_ttl: 64,
            ..Default::default()
        };
        let has = |f: &str| self.get(f).is_some();
        let named = |prefixes: &[&str]| {
            self.terms
                .iter()
                .any(|t| prefixes.iter().any(|p| t.field.starts_with(p)))
        };
        let is_arp = has("arp") || named(&["arp."]);
        let is_ip6 = !is_arp && (has("ip6") || has("icmp6") || named(&["ip6.", "icmp6."]));
        let is_ip = !is_arp
            && (is_ip6
                || has("ip4")
                || has("tcp")
                || has("udp")
                || has("icmp4")
                || has("icmp")
                || named(&["ip4.", "ip.", "tcp.", "udp.", "icmp4.", "dns."]));
        if is_arp {
            k.eth_type = 0x0806;
            k.arp_op = 1;
            k.arp_sha = src_mac;
            k.ip_src = src_ip;
            k.eth_dst = 0xffff_ffff_ffff;
        } else if is_ip {
            if is_ip6 {
                k.eth_type = 0x86dd;
                let a = addr6_of(pb);
                k.ip6_src = [(a >> 64) as u64, a as u64];
            } else {
                k.eth_type = 0x0800;
                k.ip_src = src_ip;
            }
            k.ip_proto = if has("tcp") || named(&["tcp."]) {
                6
            } else if has("udp") || named(&["udp.", "dns."]) {
                // A DNS question (dns.*) is a UDP query to port 53 unless told.
                if !has("udp.dst") && named(&["dns."]) {
                    k.l4_dst = 53;
                }
                17
            } else if is_ip6 && (has("icmp6") || has("icmp") || named(&["icmp6."])) {
                58
            } else if has("icmp4") || has("icmp") || named(&["icmp4."]) {
                1
            } else {
                0
            };
        }
        for t in &self.terms {
            let Some(v) = &t.value else { continue };
            let bad = |what: &str| MicroflowError {
                pos: t.vpos,
                msg: format!("{} takes {what}", t.field),
            };
            let int = |max: u64| match v {
                Value::Int(n) if *n <= max => Ok(*n),
                _ => Err(bad(&format!("a number up to {max}"))),
            };
            let mac = || match v {
                Value::Mac(m) => Ok(*m),
                _ => Err(bad("a MAC address")),
            };
            let ip = || match v {
                Value::Ip4(a) => Ok(*a),
                _ => Err(bad("an IPv4 address")),
            };
            let ip6 = || match v {
                Value::Ip6(a) => Ok([(*a >> 64) as u64, *a as u64]),
                _ => Err(bad("an IPv6 address")),
            };
            match t.field.as_str() {
                "inport" => {}
                "eth.src" => k.eth_src = mac()?,
                "eth.dst" => k.eth_dst = mac()?,
                "eth.type" => k.eth_type = int(0xffff)? as u16,
                "vlan.tci" => k.vlan_tci = int(0xffff)? as u16,
                "ip4.src" | "arp.spa" => k.ip_src = ip()?,
                "ip4.dst" | "arp.tpa" => k.ip_dst = ip()?,
                "ip6.src" => k.ip6_src = ip6()?,
                "ip6.dst" => k.ip6_dst = ip6()?,
                "ip.ttl" => k.ip_ttl = int(255)? as u8,
                "ip.proto" => k.ip_proto = int(255)? as u8,
                "tcp.src" | "udp.src" | "icmp4.type" | "icmp6.type" => {
                    k.l4_src = int(0xffff)? as u16
                }
                "tcp.dst" | "udp.dst" | "icmp4.code" | "icmp6.code" => {
                    k.l4_dst = int(0xffff)? as u16
                }
                "arp.op" => k.arp_op = int(255)? as u8,
                "arp.sha" => k.arp_sha = mac()?,
                "ct_mark" => k.ct_mark = int(u64::from(u32::MAX))? as u32,
                "ct_label" => k.ct_label = int(u64::from(u32::MAX))? as u32,
                "dns.qname" | "dns.qtype" => {}
                _ => return Err(bad("no value here")),
            }
        }
        if k.eth_dst == 0 {
            // Unicast to a known port's IP: that port's MAC, as the sender's ARP would find.
            // Elsewhere: the switch's router port, the gateway a pod would send to.
            let on_switch = || pbs.iter().filter(|p| p.datapath == pb.datapath);
            let dst6 = u128::from(k.ip6_dst[0]) << 64 | u128::from(k.ip6_dst[1]);
            let owns = |p: &&switchyard_southbound::pb::PortBinding| match k.eth_type {
                0x86dd => dst6 != 0 && addr6_of(p) == dst6,
                _ => k.ip_dst != 0 && addr_of(p).1 == k.ip_dst,
            };
            let target = on_switch().find(owns).map(addr_of).or_else(|| {
                on_switch()
                    .filter(|p| p.r#type == "patch" && matches!(k.eth_type, 0x0800 | 0x86dd))
                    .map(addr_of)
                    .next()
            });
            match target {
                Some((m, _)) => k.eth_dst = m,
                None => {
                    return Err(MicroflowError {
                        pos: 0,
                        msg: "cannot tell eth.dst: give eth.dst, or an ip4.dst or ip6.dst that a port on the switch owns or a router on the switch reaches".into(),
                    })
                }
            }
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_southbound::pb;

    fn sb() -> SbSnapshot {
        let pbind = |n: &str, key: u32, a: &str| pb::PortBinding {
            logical_port: n.into(),
            datapath: 1,
            tunnel_key: key,
            mac: vec![a.into()],
            enabled: true,
            ..Default::default()
        };
        SbSnapshot {
            port_bindings: vec![
                pbind("p1", 1, "0a:00:00:00:00:01 10.0.0.1"),
                pbind("p2", 2, "0a:00:00:00:00:02 10.0.0.2 fd00::2"),
                pbind("p3", 3, "0a:00:00:00:00:03 10.0.0.3 fe80::3 fd00::3"),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn fills_defaults_from_the_ports() {
        let k = Microflow::parse(r#"inport == "p1" && ip4.dst == 10.0.0.2 && tcp.dst == 80"#)
            .unwrap()
            .resolve(&sb())
            .unwrap();
        assert_eq!(
            (k.eth_src, k.eth_dst, k.eth_type),
            (0x0a00_0000_0001, 0x0a00_0000_0002, 0x0800)
        );
        assert_eq!(
            (k.ip_src, k.ip_dst, k.ip_proto, k.l4_dst, k.ip_ttl),
            (0x0a00_0001, 0x0a00_0002, 6, 80, 64)
        );
        let a = Microflow::parse(r#"inport=="p2" && arp.tpa == 10.0.0.1"#)
            .unwrap()
            .resolve(&sb())
            .unwrap();
        assert_eq!(
            (a.eth_type, a.arp_op, a.eth_dst, a.arp_sha),
            (0x0806, 1, 0xffff_ffff_ffff, 0x0a00_0000_0002)
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            (
                r#"inport == "p1" && ip4.dts == 10.0.0.2"#,
                18,
                "unknown field",
            ),
            (
                r#"inport == "p1" || ip4.dst == 10.0.0.2"#,
                15,
                "expected \"&&\"",
            ),
            (
                r#"inport == "p1" && ip4.dst == 10.0.0.300"#,
                29,
                "not a number",
            ),
            (r#"inport == "p1 && tcp"#, 10, "unterminated"),
            (r#"inport == "p1" && tcp.dst"#, 25, "expected \"==\""),
        ];
        for (e, pos, msg) in cases {
            let err = Microflow::parse(e).unwrap_err();
            assert_eq!(err.pos, pos, "{e}: {err}");
            assert!(err.msg.contains(msg), "{e}: {err}");
        }
        let e = Microflow::parse(r#"inport == "p9" && udp"#)
            .unwrap()
            .resolve(&sb())
            .unwrap_err();
        assert!(e.msg.contains("no logical port"));
        let e = Microflow::parse(r#"inport == "p1" && ip4.dst == 10.9.9.9"#)
            .unwrap()
            .resolve(&sb())
            .unwrap_err();
        assert!(e.msg.contains("cannot tell eth.dst"));
        let e = Microflow::parse(r#"inport == "p1" && tcp.dst == 70000 && ip4.dst == 10.0.0.2"#)
            .unwrap()
            .resolve(&sb())
            .unwrap_err();
        assert_eq!(e.pos, 29);
    }

    #[test]
    fn ipv6_microflows_take_the_ports_ipv6_addresses() {
        let k = Microflow::parse(r#"inport == "p3" && ip6.dst == fd00::2 && tcp.dst == 80"#)
            .unwrap()
            .resolve(&sb())
            .unwrap();
        assert_eq!(
            (k.eth_type, k.eth_dst, k.ip_proto, k.l4_dst),
            (0x86dd, 0x0a00_0000_0002, 6, 80)
        );
        assert_eq!(
            k.ip6_src,
            [0xfd00 << 48, 3],
            "the global address, not fe80::3"
        );
        assert_eq!(k.ip6_dst, [0xfd00 << 48, 2]);
        let k = Microflow::parse(
            r#"inport == "p2" && icmp6 && icmp6.type == 128 && ip6.dst == fd00::3"#,
        )
        .unwrap()
        .resolve(&sb())
        .unwrap();
        assert_eq!(
            (k.ip_proto, k.l4_src, k.eth_dst),
            (58, 128, 0x0a00_0000_0003)
        );
        let e = Microflow::parse(r#"inport == "p2" && ip6.dst == 10.0.0.3"#)
            .unwrap()
            .resolve(&sb())
            .unwrap_err();
        assert!(e.msg.contains("an IPv6 address"), "{e}");
        let e = Microflow::parse(r#"inport == "p2" && ip6.dst == fd00::9"#)
            .unwrap()
            .resolve(&sb())
            .unwrap_err();
        assert!(e.msg.contains("ip6.dst"), "{e}");
    }
}
