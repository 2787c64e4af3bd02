//! DNS records (OVN's DNS table, one row per switch and name): what the
//! datapath answers queries from the switch's ports with. Validated here on
//! write (compiled in `crate::compile`) into southbound `SbDns` rows and one `ls_in_dns_lookup`
//! stage per switch.
//!
//! Names are stored as the resolver asks for them after normalisation: lower
//! case, no trailing dot. A record holds A and AAAA addresses and SRV entries;
//! PTR answers for its IPv4 addresses are derived by the datapath.

use crate::nb::{Nb, NbError};
use std::net::IpAddr;
use switchyard_southbound::pb::{self, DnsDel, DnsRecord};

/// The TTL of an answer whose record does not set one (Kubernetes' CoreDNS default).
pub const DEFAULT_TTL: u32 = 30;
/// Most addresses plus SRV entries in one record: an answer must fit the
/// 512 bytes of a DNS message over UDP without EDNS0.
pub const MAX_VALUES: usize = 16;
/// The switch other_config key naming the zone the switch is authoritative
/// for: a name under it without a record gets NXDOMAIN instead of going on.
pub const DNS_DOMAIN_KEY: &str = "dns_domain";

/// The store key of a record.
pub fn dns_key(switch: &str, name: &str) -> String {
    format!("{switch}/{name}")
}

/// A DNS name as stored: lower case, no trailing dot, 1-63 bytes per label
/// of letters, digits, '-' and '_' (SRV's `_http._tcp`), at most 253 bytes.
pub fn normalize_name(field: &'static str, name: &str) -> Result<String, NbError> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| NbError::BadValue {
        field,
        value: name.to_string(),
        why: why.to_string(),
    };
    if n.is_empty() || n.len() > 253 {
        return Err(bad("a DNS name of 1-253 characters"));
    }
    for label in n.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("every label 1-63 characters (no empty label)"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("labels of letters, digits, '-' and '_'"));
        }
    }
    Ok(n)
}

/// One parsed SRV entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// Parses "PRIORITY WEIGHT PORT TARGET" (spaces or colons between).
pub fn parse_srv(s: &str) -> Result<Srv, NbError> {
    let bad = || NbError::BadValue {
        field: "srv",
        value: s.to_string(),
        why: "use \"PRIORITY WEIGHT PORT TARGET\", numbers 0-65535".into(),
    };
    let parts: Vec<&str> = s.split([' ', ':']).filter(|p| !p.is_empty()).collect();
    let [p, w, port, target] = parts[..] else {
        return Err(bad());
    };
    let num = |v: &str| v.parse::<u16>().map_err(|_| bad());
    Ok(Srv {
        priority: num(p)?,
        weight: num(w)?,
        port: num(port)?,
        target: normalize_name("srv target", target)?,
    })
}

impl Nb {
    pub(crate) fn dns_add(&mut self, r: &DnsRecord, may_exist: bool) -> Result<(), NbError> {
        if !self.switches.contains_key(&r.switch_name) {
            return Err(NbError::NoSuchSwitch(r.switch_name.clone()));
        }
        let name = normalize_name("name", &r.name)?;
        let cname = if r.cname.trim().is_empty() {
            String::new()
        } else {
            normalize_name("cname", &r.cname)?
        };
        if !cname.is_empty() {
            // RFC 1034 3.6.2: an alias has no other data.
            let why = if cname == name {
                Some("a name cannot be an alias of itself")
            } else if !r.addresses.is_empty() || !r.srv.is_empty() {
                Some("an alias (cname) has no addresses or SRV entries of its own")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(NbError::BadValue {
                    field: "cname",
                    value: cname,
                    why: why.into(),
                });
            }
        } else if r.addresses.is_empty() && r.srv.is_empty() {
            return Err(NbError::BadValue {
                field: "record",
                value: name,
                why: "give at least one address or SRV entry, or a cname".into(),
            });
        }
        if r.addresses.len() + r.srv.len() > MAX_VALUES {
            return Err(NbError::BadValue {
                field: "record",
                value: name,
                why: format!("at most {MAX_VALUES} addresses and SRV entries (one UDP answer)"),
            });
        }
        let mut addresses = Vec::new();
        for a in &r.addresses {
            let ip: IpAddr = a.trim().parse().map_err(|_| NbError::BadValue {
                field: "address",
                value: a.clone(),
                why: "not an IPv4 or IPv6 address".into(),
            })?;
            if !addresses.contains(&ip.to_string()) {
                addresses.push(ip.to_string());
            }
        }
        let mut srv = Vec::new();
        for s in &r.srv {
            let e = parse_srv(s)?;
            srv.push(format!(
                "{} {} {} {}",
                e.priority, e.weight, e.port, e.target
            ));
        }
        if r.ttl > 86_400 {
            return Err(NbError::BadValue {
                field: "ttl",
                value: r.ttl.to_string(),
                why: "at most 86400 seconds".into(),
            });
        }
        for (k, v) in &r.external_ids {
            if k.is_empty() || k.len() > 255 || v.len() > 4096 {
                return Err(NbError::BadValue {
                    field: "external_ids",
                    value: k.clone(),
                    why: "keys of 1-255 bytes, values up to 4096".into(),
                });
            }
        }
        let key = dns_key(&r.switch_name, &name);
        if self.dns.contains_key(&key) && !may_exist {
            return Err(NbError::Exists("DNS record", key));
        }
        self.dns.insert(
            key,
            DnsRecord {
                switch_name: r.switch_name.clone(),
                name,
                addresses,
                srv,
                ttl: r.ttl,
                external_ids: r.external_ids.clone(),
                cname,
            },
        );
        Ok(())
    }

    pub(crate) fn dns_del(&mut self, d: &DnsDel, if_exists: bool) -> Result<(), NbError> {
        if !self.switches.contains_key(&d.switch_name) {
            if if_exists {
                return Ok(());
            }
            return Err(NbError::NoSuchSwitch(d.switch_name.clone()));
        }
        if d.name.is_empty() {
            self.dns.retain(|_, r| r.switch_name != d.switch_name);
            return Ok(());
        }
        let name = normalize_name("name", &d.name)?;
        let key = dns_key(&d.switch_name, &name);
        if self.dns.remove(&key).is_none() && !if_exists {
            return Err(NbError::Missing("DNS record", key));
        }
        Ok(())
    }

    /// The records of one switch.
    pub fn dns_of<'a>(&'a self, switch: &'a str) -> impl Iterator<Item = &'a DnsRecord> {
        self.dns.values().filter(move |r| r.switch_name == switch)
    }
}

/// A switch's `other_config:dns_domain`, normalised ("" when unset).
pub fn dns_domain(ls: &pb::LogicalSwitch) -> String {
    ls.other_config
        .get(DNS_DOMAIN_KEY)
        .and_then(|d| normalize_name("dns_domain", d).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::Compiled;
    use switchyard_southbound::pb::nb_op::Op;

    fn nb() -> Nb {
        let mut nb = Nb::default();
        nb.apply_all(vec![Op::LsAdd(pb::LogicalSwitch {
            name: "ls0".into(),
            subnet: "10.0.0.0/24".into(),
            ..Default::default()
        })])
        .unwrap();
        nb
    }

    fn rec(name: &str, addrs: &[&str], srv: &[&str]) -> DnsRecord {
        DnsRecord {
            switch_name: "ls0".into(),
            name: name.into(),
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
            srv: srv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn records_are_normalised_validated_and_replaced_only_with_may_exist() {
        let mut nb = nb();
        nb.apply_all(vec![Op::DnsAdd(rec(
            "Web.Default.SVC.cluster.local.",
            &["10.96.0.10", "fd00::10", "10.96.0.10"],
            &["0 100 80 Web.default.svc.cluster.local"],
        ))])
        .unwrap();
        let r = &nb.dns["ls0/web.default.svc.cluster.local"];
        assert_eq!(r.addresses, ["10.96.0.10", "fd00::10"]);
        assert_eq!(r.srv, ["0 100 80 web.default.svc.cluster.local"]);
        let again = Op::DnsAdd(rec("web.default.svc.cluster.local", &["10.96.0.11"], &[]));
        let e = nb.clone().apply_all(vec![again.clone()]).unwrap_err();
        assert!(matches!(e, NbError::Exists(..)), "{e}");
        nb.apply_ops(&switchyard_southbound::transaction(
            vec![again],
            true,
            false,
        ))
        .unwrap();
        assert_eq!(
            nb.dns["ls0/web.default.svc.cluster.local"].addresses,
            ["10.96.0.11"]
        );
        nb.apply_all(vec![Op::DnsAdd(DnsRecord {
            cname: "Web.Default.svc.cluster.local.".into(),
            ..rec("www.default.svc.cluster.local", &[], &[])
        })])
        .unwrap();
        assert_eq!(
            nb.dns["ls0/www.default.svc.cluster.local"].cname, "web.default.svc.cluster.local",
            "an alias's target is normalised"
        );
        for bad in [
            rec("", &["10.0.0.1"], &[]),
            rec("a..b", &["10.0.0.1"], &[]),
            rec(&"x".repeat(64), &["10.0.0.1"], &[]),
            rec("sp ace", &["10.0.0.1"], &[]),
            rec("ok", &[], &[]),
            rec("ok", &["10.0.0.300"], &[]),
            rec("ok", &[], &["1 2 70000 t"]),
            rec("ok", &[], &["1 2 t"]),
            DnsRecord {
                switch_name: "nope".into(),
                ..rec("ok", &["10.0.0.1"], &[])
            },
            rec("ok", &["10.0.0.1"; MAX_VALUES + 1], &[]),
            DnsRecord {
                cname: "ok".into(),
                ..rec("ok", &[], &[])
            },
            DnsRecord {
                cname: "target.example".into(),
                ..rec("ok", &["10.0.0.1"], &[])
            },
            DnsRecord {
                cname: "bad..name".into(),
                ..rec("ok", &[], &[])
            },
        ] {
            let before = nb.clone();
            assert!(
                nb.clone().apply_all(vec![Op::DnsAdd(bad.clone())]).is_err(),
                "{bad:?} was accepted"
            );
            assert_eq!(nb, before);
        }
    }

    #[test]
    fn deleting_a_record_its_switch_or_all_of_a_switch_removes_it() {
        let mut nb = nb();
        nb.apply_all(vec![
            Op::DnsAdd(rec("a.cluster.local", &["10.0.0.5"], &[])),
            Op::DnsAdd(rec("b.cluster.local", &["10.0.0.6"], &[])),
        ])
        .unwrap();
        let del = |name: &str| {
            Op::DnsDel(DnsDel {
                switch_name: "ls0".into(),
                name: name.into(),
            })
        };
        assert!(nb.clone().apply_all(vec![del("c.cluster.local")]).is_err());
        nb.apply_all(vec![del("A.cluster.local.")]).unwrap();
        assert_eq!(nb.dns.len(), 1);
        nb.apply_all(vec![del("")]).unwrap();
        assert!(nb.dns.is_empty());
        nb.apply_all(vec![Op::DnsAdd(rec("a.cluster.local", &["10.0.0.5"], &[]))])
            .unwrap();
        nb.apply_all(vec![Op::LsDel("ls0".into())]).unwrap();
        assert!(nb.dns.is_empty(), "a deleted switch takes its records");
    }

    #[test]
    fn a_switch_with_records_sends_queries_to_dns_lookup_and_gets_its_rows() {
        let mut nb = nb();
        let c = crate::compile::compile(&nb);
        let lookups = |c: &Compiled| {
            c.flows
                .iter()
                .filter(|f| f.stage == "ls_in_dns_lookup" && f.priority > 0)
                .count()
        };
        assert_eq!(lookups(&c), 0, "no records, no domain: no lookup");
        nb.apply_all(vec![Op::DnsAdd(rec(
            "web.cluster.local",
            &["10.96.0.10", "fd00::10"],
            &["0 100 80 web.cluster.local"],
        ))])
        .unwrap();
        let c = crate::compile::compile(&nb);
        assert_eq!(lookups(&c), 1);
        assert_eq!(c.dns.len(), 1);
        assert_eq!(c.dns[0].a, [0x0a60_000a]);
        assert_eq!(c.dns[0].aaaa.len(), 1);
        assert_eq!(c.dns[0].srv[0].port, 80);
        assert_eq!(c.dns[0].ttl, DEFAULT_TTL);
    }
}
