//! Load balancers and router NAT in the northbound model: validation of every
//! write (VIPs, backends, options, NAT addresses), the references checked at the
//! end of a transaction (attachments, one owner per VIP, a gateway port for each
//! NAT external IP) and the load-balancer-only fast path; their compilation
//! into southbound rows is `compile_lb`.

use crate::nb::router::{parse_networks, LSP_TYPE_ROUTER, OPT_ROUTER_PORT};
use crate::nb::{check_name, Nb, NbError};
use ipnet::Ipv4Net;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use switchyard_southbound::pb::{self, LbAttach, LbDel, LoadBalancer, NatRule};

/// Most backends one VIP may have.
pub const MAX_BACKENDS: usize = 1024;
/// Longest ClientIP affinity (Kubernetes' limit: one day).
pub const MAX_AFFINITY_S: u32 = 86_400;
/// Load balancer options an operator may set.
pub const LB_OPTIONS: &[&str] = &["affinity_timeout", "hairpin_snat_ip"];
/// NAT rule types.
pub const NAT_TYPES: &[&str] = &["snat", "dnat", "dnat_and_snat"];

fn bad(field: &'static str, value: &str, why: impl Into<String>) -> NbError {
    NbError::BadValue {
        field,
        value: value.to_string(),
        why: why.into(),
    }
}

/// The IP protocol number of a load balancer's protocol ("" is tcp).
pub fn proto_number(p: &str) -> Result<u32, NbError> {
    match p {
        "" | "tcp" => Ok(6),
        "udp" => Ok(17),
        other => Err(bad("protocol", other, "use tcp or udp")),
    }
}

fn unicast(field: &'static str, text: &str, ip: Ipv4Addr) -> Result<Ipv4Addr, NbError> {
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return Err(bad(field, text, "needs a unicast IPv4 address"));
    }
    Ok(ip)
}

/// Parses "IP:PORT" (IPv4, port 1-65535).
pub fn parse_endpoint(field: &'static str, s: &str) -> Result<(Ipv4Addr, u16), NbError> {
    let (ip, port) = s
        .rsplit_once(':')
        .ok_or_else(|| bad(field, s, "use IP:PORT, e.g. 10.96.0.10:80"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| bad(field, s, "not an IPv4 address (IPv6 is not supported yet)"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(field, s, "the port must be 1-65535"))?;
    Ok((unicast(field, s, ip)?, port))
}

/// Parses a VIP's backend list "IP:PORT,IP:PORT" ("" : no backends yet).
pub fn parse_backends(s: &str) -> Result<Vec<(Ipv4Addr, u16)>, NbError> {
    let mut out = Vec::new();
    for b in s.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let e = parse_endpoint("backend", b)?;
        if out.contains(&e) {
            return Err(bad("backend", b, "listed twice"));
        }
        out.push(e);
    }
    if out.len() > MAX_BACKENDS {
        return Err(bad(
            "backends",
            &format!("{} backends", out.len()),
            format!("at most {MAX_BACKENDS} per VIP"),
        ));
    }
    Ok(out)
}

fn endpoint_text(e: &(Ipv4Addr, u16)) -> String {
    format!("{}:{}", e.0, e.1)
}

fn check_lb_options(opts: &std::collections::HashMap<String, String>) -> Result<(), NbError> {
    for (k, v) in opts {
        match k.as_str() {
            "affinity_timeout" => {
                v.parse::<u32>()
                    .ok()
                    .filter(|s| *s <= MAX_AFFINITY_S)
                    .ok_or_else(|| {
                        bad(
                            "affinity_timeout",
                            v,
                            format!("seconds, 0-{MAX_AFFINITY_S} (0: no affinity)"),
                        )
                    })?;
            }
            "hairpin_snat_ip" => {
                let ip = v
                    .parse::<Ipv4Addr>()
                    .map_err(|_| bad("hairpin_snat_ip", v, "not an IPv4 address"))?;
                unicast("hairpin_snat_ip", v, ip)?;
            }
            other => {
                return Err(bad(
                    "options",
                    other,
                    format!(
                        "unknown load balancer option; use {}",
                        LB_OPTIONS.join(", ")
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The identity of a NAT rule: router, type, external and logical IP.
pub fn nat_key(n: &NatRule) -> String {
    format!(
        "{}|{}|{}|{}",
        n.router_name, n.r#type, n.external_ip, n.logical_ip
    )
}

/// A NAT rule's logical side: a network for snat, one address otherwise.
pub fn nat_logical(n: &NatRule) -> Result<Ipv4Net, NbError> {
    if n.r#type == "snat" {
        let net: Ipv4Net = n
            .logical_ip
            .parse()
            .or_else(|_| n.logical_ip.parse::<Ipv4Addr>().map(Ipv4Net::from))
            .map_err(|_| bad("logical_ip", &n.logical_ip, "use an IPv4 address or CIDR"))?;
        if net.trunc() != net {
            return Err(bad(
                "logical_ip",
                &n.logical_ip,
                format!("host bits set; did you mean {}?", net.trunc()),
            ));
        }
        Ok(net)
    } else {
        let ip = n
            .logical_ip
            .parse::<Ipv4Addr>()
            .map_err(|_| bad("logical_ip", &n.logical_ip, "use one IPv4 address"))?;
        Ok(Ipv4Net::from(unicast("logical_ip", &n.logical_ip, ip)?))
    }
}

impl Nb {
    /// Creates a load balancer, or adds VIPs and options to an existing one.
    pub(crate) fn lb_add(&mut self, lb: &LoadBalancer, may_exist: bool) -> Result<(), NbError> {
        check_name(&lb.name)?;
        let proto = if lb.protocol.is_empty() {
            "tcp"
        } else {
            lb.protocol.as_str()
        };
        proto_number(proto)?;
        check_lb_options(&lb.options)?;
        let mut vips = BTreeMap::new();
        for (vip, backends) in &lb.vips {
            let v = parse_endpoint("vip", vip)?;
            let b = parse_backends(backends)?;
            let text: Vec<String> = b.iter().map(endpoint_text).collect();
            vips.insert(endpoint_text(&v), text.join(","));
        }
        let row = self
            .load_balancers
            .entry(lb.name.clone())
            .or_insert_with(|| LoadBalancer {
                name: lb.name.clone(),
                protocol: proto.to_string(),
                ..Default::default()
            });
        if row.protocol != proto {
            return Err(bad(
                "protocol",
                proto,
                format!(
                    "load balancer {:?} is {}; use another load balancer for {proto}",
                    lb.name, row.protocol
                ),
            ));
        }
        for (vip, backends) in vips {
            if let Some(old) = row.vips.get(&vip) {
                if *old != backends && !may_exist {
                    return Err(NbError::Exists(
                        "VIP",
                        format!(
                            "{vip} in load balancer {:?} (use --may-exist to replace its backends)",
                            lb.name
                        ),
                    ));
                }
            }
            row.vips.insert(vip, backends);
        }
        for (k, v) in &lb.options {
            row.options.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    /// Deletes a load balancer, or one of its VIPs.
    pub(crate) fn lb_del(&mut self, d: &LbDel, if_exists: bool) -> Result<(), NbError> {
        let Some(row) = self.load_balancers.get_mut(&d.name) else {
            return if if_exists {
                Ok(())
            } else {
                Err(NbError::Missing("load balancer", d.name.clone()))
            };
        };
        if d.vip.is_empty() {
            self.load_balancers.remove(&d.name);
            return Ok(());
        }
        let vip = endpoint_text(&parse_endpoint("vip", &d.vip)?);
        if row.vips.remove(&vip).is_none() && !if_exists {
            return Err(NbError::Missing(
                "VIP",
                format!("{vip} in load balancer {:?}", d.name),
            ));
        }
        Ok(())
    }

    /// Attaches a load balancer to a switch or a router (or detaches it).
    pub(crate) fn lb_attach(
        &mut self,
        a: &LbAttach,
        attach: bool,
        lenient: bool,
    ) -> Result<(), NbError> {
        let (what, name, exists) = match (a.switch_name.as_str(), a.router_name.as_str()) {
            (s, "") if !s.is_empty() => ("logical switch", s, self.switches.contains_key(s)),
            ("", r) if !r.is_empty() => ("logical router", r, self.routers.contains_key(r)),
            _ => {
                return Err(bad(
                    "attach",
                    &a.lb,
                    "name exactly one switch or one router",
                ))
            }
        };
        if !exists {
            return Err(NbError::Missing(what, name.to_string()));
        }
        let Some(row) = self.load_balancers.get_mut(&a.lb) else {
            return Err(NbError::Missing("load balancer", a.lb.clone()));
        };
        let list = if a.switch_name.is_empty() {
            &mut row.routers
        } else {
            &mut row.switches
        };
        let present = list.iter().any(|x| x == name);
        match (attach, present) {
            (true, false) => {
                list.push(name.to_string());
                list.sort();
            }
            (false, true) => list.retain(|x| x != name),
            _ if lenient => {}
            (true, true) => {
                return Err(NbError::Exists(
                    "attachment",
                    format!("load balancer {:?} on {what} {name:?}", a.lb),
                ))
            }
            (false, false) => {
                return Err(NbError::Missing(
                    "attachment",
                    format!("load balancer {:?} on {what} {name:?}", a.lb),
                ))
            }
        }
        Ok(())
    }

    /// Drops the attachments that name a deleted switch or router.
    pub(crate) fn lb_forget(&mut self) {
        let (switches, routers) = (&self.switches, &self.routers);
        for lb in self.load_balancers.values_mut() {
            lb.switches.retain(|s| switches.contains_key(s));
            lb.routers.retain(|r| routers.contains_key(r));
        }
        self.nats
            .retain(|_, n| routers.contains_key(&n.router_name));
    }

    pub(crate) fn nat_add(&mut self, n: &NatRule, may_exist: bool) -> Result<(), NbError> {
        if !self.routers.contains_key(&n.router_name) {
            return Err(NbError::Missing("logical router", n.router_name.clone()));
        }
        if !NAT_TYPES.contains(&n.r#type.as_str()) {
            return Err(bad("type", &n.r#type, "use snat, dnat or dnat_and_snat"));
        }
        let ext: Ipv4Addr = n
            .external_ip
            .parse()
            .map_err(|_| bad("external_ip", &n.external_ip, "not an IPv4 address"))?;
        unicast("external_ip", &n.external_ip, ext)?;
        let logical = nat_logical(n)?;
        let row = NatRule {
            router_name: n.router_name.clone(),
            r#type: n.r#type.clone(),
            external_ip: ext.to_string(),
            logical_ip: if n.r#type == "snat" {
                logical.to_string()
            } else {
                logical.addr().to_string()
            },
        };
        let key = nat_key(&row);
        if self.nats.contains_key(&key) {
            return if may_exist {
                Ok(())
            } else {
                Err(NbError::Exists(
                    "NAT rule",
                    format!(
                        "{} {} {} on {}",
                        row.r#type, row.external_ip, row.logical_ip, row.router_name
                    ),
                ))
            };
        }
        self.nats.insert(key, row);
        Ok(())
    }

    /// Deletes NAT rules of a router: all, of one type, or of one type and IP
    /// (the external IP, or for snat the logical network).
    pub(crate) fn nat_del(&mut self, n: &NatRule, if_exists: bool) -> Result<(), NbError> {
        if !self.routers.contains_key(&n.router_name) {
            return Err(NbError::Missing("logical router", n.router_name.clone()));
        }
        let ip = n.external_ip.as_str();
        let before = self.nats.len();
        self.nats.retain(|_, x| {
            !(x.router_name == n.router_name
                && (n.r#type.is_empty() || x.r#type == n.r#type)
                && (ip.is_empty() || x.external_ip == ip || x.logical_ip == ip))
        });
        if self.nats.len() == before && !if_exists {
            return Err(NbError::Missing(
                "NAT rule",
                format!("{} {} on {}", n.r#type, ip, n.router_name),
            ));
        }
        Ok(())
    }

    /// The router port whose network holds a NAT rule's external IP (its gateway
    /// port), and the switch attached to it.
    pub fn nat_gateway<'a>(
        &'a self,
        n: &'a NatRule,
    ) -> Option<(&'a pb::LogicalRouterPort, Option<&'a str>)> {
        let ext: Ipv4Addr = n.external_ip.parse().ok()?;
        let lrp = self.router_ports_of(&n.router_name).find(|p| {
            parse_networks(&p.networks)
                .map(|nets| nets.iter().any(|net| net.contains(&ext)))
                .unwrap_or(false)
        })?;
        let sw = self
            .ports
            .values()
            .find(|p| {
                p.r#type == LSP_TYPE_ROUTER
                    && p.options.get(OPT_ROUTER_PORT).map(String::as_str) == Some(lrp.name.as_str())
            })
            .map(|p| p.switch_name.as_str());
        Some((lrp, sw))
    }

    /// Load balancer and NAT references, checked once a transaction is applied.
    pub(crate) fn check_lb_nat_references(&self) -> Result<(), NbError> {
        let mut owner: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for lb in self.load_balancers.values() {
            for vip in lb.vips.keys() {
                if let Some(other) = owner.insert((lb.protocol.as_str(), vip.as_str()), &lb.name) {
                    return Err(vip_taken(vip, &lb.protocol, other));
                }
            }
        }
        let mut dnat_ext: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for n in self.nats.values() {
            if self.nat_gateway(n).is_none() {
                return Err(bad(
                    "external_ip",
                    &n.external_ip,
                    format!(
                        "no port of router {:?} has a network holding it (NAT needs a gateway port there)",
                        n.router_name
                    ),
                ));
            }
            if n.r#type != "snat" {
                if let Some(other) = dnat_ext.insert(
                    (n.router_name.as_str(), n.external_ip.as_str()),
                    &n.logical_ip,
                ) {
                    return Err(bad(
                        "external_ip",
                        &n.external_ip,
                        format!(
                            "already translated to {other} on router {:?}",
                            n.router_name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// NAT external IPs that the gateway port `lrp` answers ARP for (its own
    /// addresses excluded).
    pub fn nat_external_ips_on(&self, lrp: &pb::LogicalRouterPort) -> Vec<Ipv4Addr> {
        let nets = parse_networks(&lrp.networks).unwrap_or_default();
        let mut out: BTreeSet<Ipv4Addr> = BTreeSet::new();
        for n in self
            .nats
            .values()
            .filter(|n| n.router_name == lrp.router_name)
        {
            if let Ok(ip) = n.external_ip.parse::<Ipv4Addr>() {
                if nets.iter().any(|net| net.contains(&ip))
                    && nets.iter().all(|net| net.addr() != ip)
                {
                    out.insert(ip);
                }
            }
        }
        out.into_iter().collect()
    }

    /// The switches a router's ports attach to.
    pub fn switches_of_router(&self, router: &str) -> Vec<&str> {
        let lrps: BTreeSet<&str> = self
            .router_ports_of(router)
            .map(|p| p.name.as_str())
            .collect();
        self.ports
            .values()
            .filter(|p| p.r#type == LSP_TYPE_ROUTER)
            .filter(|p| {
                p.options
                    .get(OPT_ROUTER_PORT)
                    .is_some_and(|r| lrps.contains(r.as_str()))
            })
            .map(|p| p.switch_name.as_str())
            .collect()
    }
}

fn vip_taken(vip: &str, proto: &str, other: &str) -> NbError {
    bad(
        "vip",
        vip,
        format!("{proto} VIP already belongs to load balancer {other:?} (one owner per VIP)"),
    )
}

/// Who owns each (protocol, VIP): derived from the NB, kept by northd so that
/// a transaction touching a few load balancers checks only their VIPs.
pub type VipIndex = std::collections::HashMap<(String, String), String>;

/// The VIP index of `nb`.
pub fn vip_index(nb: &Nb) -> VipIndex {
    let mut ix = VipIndex::with_capacity(nb.load_balancers.len());
    for lb in nb.load_balancers.values() {
        for vip in lb.vips.keys() {
            ix.insert((lb.protocol.clone(), vip.clone()), lb.name.clone());
        }
    }
    ix
}

/// Whether a transaction only adds, changes, attaches or deletes load
/// balancers: those run incrementally ([`lb_transaction`]).
pub fn lb_only(req: &pb::TransactRequest) -> bool {
    use pb::nb_op::Op;
    !req.ops.is_empty()
        && req.ops.iter().all(|o| {
            matches!(
                o.op,
                Some(Op::LbAdd(_) | Op::LbDel(_) | Op::LbAttach(_) | Op::LbDetach(_))
            )
        })
}

/// Applies a load-balancer-only transaction in proportion to its size: its
/// ops run on a scratch model holding the switches, routers and the load
/// balancers it names; VIP ownership is checked against `index`. Returns the
/// rows to put and the names to delete (nothing written on error).
pub fn lb_transaction(
    nb: &Nb,
    index: &VipIndex,
    req: &pb::TransactRequest,
) -> Result<(Vec<LoadBalancer>, Vec<String>), NbError> {
    use pb::nb_op::Op;
    let mut touched: BTreeSet<String> = BTreeSet::new();
    for o in &req.ops {
        touched.insert(match o.op.as_ref().ok_or(NbError::EmptyOp)? {
            Op::LbAdd(l) => l.name.clone(),
            Op::LbDel(d) => d.name.clone(),
            Op::LbAttach(a) | Op::LbDetach(a) => a.lb.clone(),
            _ => return Err(NbError::EmptyOp),
        });
    }
    let mut scratch = Nb {
        switches: nb.switches.clone(),
        routers: nb.routers.clone(),
        ..Default::default()
    };
    for name in &touched {
        if let Some(lb) = nb.load_balancers.get(name) {
            scratch.load_balancers.insert(name.clone(), lb.clone());
        }
    }
    for o in &req.ops {
        let (may_exist, if_exists) = (req.may_exist || o.may_exist, req.if_exists || o.if_exists);
        match o.op.as_ref().ok_or(NbError::EmptyOp)? {
            Op::LbAdd(lb) => scratch.lb_add(lb, may_exist)?,
            Op::LbDel(d) => scratch.lb_del(d, if_exists)?,
            Op::LbAttach(a) => scratch.lb_attach(a, true, may_exist)?,
            Op::LbDetach(a) => scratch.lb_attach(a, false, if_exists)?,
            _ => return Err(NbError::EmptyOp),
        }
    }
    let mut claims: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for lb in scratch.load_balancers.values() {
        for vip in lb.vips.keys() {
            let key = (lb.protocol.as_str(), vip.as_str());
            if let Some(other) = claims.insert(key, &lb.name) {
                return Err(vip_taken(vip, &lb.protocol, other));
            }
            if let Some(o) = index.get(&(lb.protocol.clone(), vip.clone())) {
                if *o != lb.name && !touched.contains(o) {
                    return Err(vip_taken(vip, &lb.protocol, o));
                }
            }
        }
    }
    let mut puts = Vec::new();
    let mut dels = Vec::new();
    for name in &touched {
        match (
            nb.load_balancers.get(name),
            scratch.load_balancers.get(name),
        ) {
            (old, Some(new)) if old != Some(new) => puts.push(new.clone()),
            (Some(_), None) => dels.push(name.clone()),
            _ => {}
        }
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use crate::compile::compile;
    use crate::nb::router::tests::topo;
    use crate::nb::tests_support::txn;
    use crate::nb::Nb;
    use switchyard_southbound::pb::{self, nb_op::Op};

    fn lb(name: &str, vip: &str, backends: &str, proto: &str) -> Op {
        Op::LbAdd(pb::LoadBalancer {
            name: name.into(),
            protocol: proto.into(),
            vips: [(vip.to_string(), backends.to_string())].into(),
            ..Default::default()
        })
    }
    fn attach_ls(lb: &str, ls: &str) -> Op {
        Op::LbAttach(pb::LbAttach {
            lb: lb.into(),
            switch_name: ls.into(),
            router_name: String::new(),
        })
    }
    fn nat(ty: &str, ext: &str, logical: &str) -> Op {
        Op::NatAdd(pb::NatRule {
            router_name: "lr0".into(),
            r#type: ty.into(),
            external_ip: ext.into(),
            logical_ip: logical.into(),
        })
    }
    fn refused(nb: &Nb, ops: Vec<Op>) -> String {
        let mut n = nb.clone();
        n.apply_ops(&txn(ops)).unwrap_err().to_string()
    }

    #[test]
    fn load_balancers_compile_to_rows_scoped_to_their_switches() {
        let mut nb = topo();
        nb.apply_ops(&txn(vec![
            lb(
                "web",
                "10.96.0.10:80",
                "10.1.0.12:8080, 10.0.0.11:8080",
                "tcp",
            ),
            attach_ls("web", "ls0"),
            lb("all", "10.96.0.11:53", "", "udp"),
            Op::LbAttach(pb::LbAttach {
                lb: "all".into(),
                switch_name: String::new(),
                router_name: "lr0".into(),
            }),
        ]))
        .unwrap();
        let c = compile(&nb);
        let web = c.load_balancers.iter().find(|l| l.name == "web").unwrap();
        assert_eq!(web.protocol, 6);
        assert_eq!(web.datapaths, vec![nb.switches["ls0"].tunnel_key]);
        assert_eq!(web.vips[0].backends.len(), 2);
        let all = c.load_balancers.iter().find(|l| l.name == "all").unwrap();
        assert_eq!(
            all.datapaths.len(),
            2,
            "a router attachment serves its switches"
        );
        assert!(all.vips[0].backends.is_empty());
        // Deleting a switch drops its attachment; the LB stays.
        nb.apply_ops(&txn(vec![Op::LsDel("ls0".into())])).unwrap();
        assert!(nb.load_balancers["web"].switches.is_empty());
    }

    #[test]
    fn bad_load_balancers_are_refused_with_the_reason() {
        let mut nb = topo();
        for (ops, why) in [
            (vec![lb("a", "10.96.0.10", "10.0.0.11:80", "")], "IP:PORT"),
            (vec![lb("a", "10.96.0.10:0", "10.0.0.11:80", "")], "1-65535"),
            (
                vec![lb("a", "10.96.0.10:80", "10.0.0.11:80", "sctp")],
                "tcp or udp",
            ),
            (vec![lb("a", "224.0.0.1:80", "10.0.0.11:80", "")], "unicast"),
            (
                vec![lb("a", "10.96.0.10:80", "10.0.0.11:80,10.0.0.11:80", "")],
                "twice",
            ),
            (vec![attach_ls("nosuch", "ls0")], "does not exist"),
        ] {
            let e = refused(&nb, ops);
            assert!(e.contains(why), "{e} should mention {why}");
        }
        nb.apply_ops(&txn(vec![lb("a", "10.96.0.10:80", "10.0.0.11:80", "")]))
            .unwrap();
        let e = refused(&nb, vec![lb("b", "10.96.0.10:80", "10.0.0.12:80", "")]);
        assert!(e.contains("already belongs"), "{e}");
        // The same VIP/port on udp is another service.
        nb.apply_ops(&txn(vec![lb("b", "10.96.0.10:80", "10.0.0.12:80", "udp")]))
            .unwrap();
        let mut opts = pb::LoadBalancer {
            name: "a".into(),
            ..Default::default()
        };
        opts.options
            .insert("affinity_timeout".into(), "100000".into());
        let e = refused(&nb, vec![Op::LbAdd(opts)]);
        assert!(e.contains("affinity_timeout"), "{e}");
    }

    #[test]
    fn nat_rules_need_a_gateway_port_and_answer_arp_there() {
        let mut nb = topo();
        let e = refused(&nb, vec![nat("snat", "192.0.2.1", "10.0.0.0/24")]);
        assert!(e.contains("no port of router"), "{e}");
        let e = refused(&nb, vec![nat("dnat_and_snat", "10.1.0.50", "10.0.0.0/24")]);
        assert!(e.contains("one IPv4 address"), "{e}");
        nb.apply_ops(&txn(vec![
            nat("snat", "10.1.0.100", "10.0.0.0/24"),
            nat("dnat_and_snat", "10.1.0.50", "10.0.0.11"),
        ]))
        .unwrap();
        let e = refused(&nb, vec![nat("dnat", "10.1.0.50", "10.0.0.12")]);
        assert!(e.contains("already translated"), "{e}");
        let c = compile(&nb);
        assert_eq!(c.nats.len(), 2);
        assert!(c
            .nats
            .iter()
            .all(|n| n.switch == nb.switches["ls1"].tunnel_key));
        // ls1 answers ARP for the external IPs with the router port's MAC.
        let arp = crate::compile::tests::flows_of(&c, switchyard_southbound::Stage::LsInArpRsp);
        assert!(arp.iter().any(|f| f.contains("10.1.0.50")), "{arp:?}");
        assert!(arp.iter().any(|f| f.contains("10.1.0.100")), "{arp:?}");
        // A gateway port cannot go while a rule needs it.
        let e = refused(&nb, vec![Op::LrpDel("lr0-ls1".into())]);
        assert!(!e.is_empty());
        // Deleting the router deletes its rules.
        nb.apply_ops(&txn(vec![
            Op::LspDel("ls0-lr0".into()),
            Op::LspDel("ls1-lr0".into()),
            Op::LrDel("lr0".into()),
        ]))
        .unwrap();
        assert!(nb.nats.is_empty());
    }

    #[test]
    fn load_balancer_transactions_run_incrementally_with_the_same_result() {
        use crate::server::sb::Sb;
        let mut full = topo();
        let mut fast = topo();
        let mut sb = Sb::default();
        sb.set_compiled(compile(&fast), 1);
        let mut index = super::vip_index(&fast);
        let router_attach = Op::LbAttach(pb::LbAttach {
            lb: "b".into(),
            switch_name: String::new(),
            router_name: "lr0".into(),
        });
        let txns = vec![
            vec![
                lb("a", "10.96.0.10:80", "10.0.0.11:80", ""),
                attach_ls("a", "ls0"),
            ],
            vec![lb("b", "10.96.0.11:80", "", "udp"), router_attach],
            vec![lb("a", "10.96.0.12:80", "10.1.0.12:80", "")],
            vec![Op::LbDel(pb::LbDel {
                name: "b".into(),
                vip: String::new(),
            })],
            vec![Op::LbDetach(pb::LbAttach {
                lb: "a".into(),
                switch_name: "ls0".into(),
                router_name: String::new(),
            })],
        ];
        for (i, ops) in txns.into_iter().enumerate() {
            let req = txn(ops);
            assert!(super::lb_only(&req));
            full.apply_ops(&req).unwrap();
            let (puts, dels) = super::lb_transaction(&fast, &index, &req).unwrap();
            let change = crate::model::Change {
                put_lbs: puts,
                del_lbs: dels,
                ..Default::default()
            };
            fast.apply_change(&change);
            index = super::vip_index(&fast);
            let rows = change
                .put_lbs
                .iter()
                .map(|l| crate::compile::lb::compile_lb(&fast, l))
                .collect();
            sb.update_lbs(rows, &change.del_lbs, i as u64 + 2);
            assert_eq!(fast, full, "NB after transaction {i}");
            let mut want = Sb::default();
            want.set_compiled(compile(&full), i as u64 + 2);
            let (mut got, mut want) = (sb.snapshot(), want.snapshot());
            got.version = 0;
            want.version = 0;
            got.load_balancers.sort_by(|a, b| a.name.cmp(&b.name));
            assert_eq!(got, want, "SB after transaction {i}");
        }
        // A VIP another load balancer owns is refused on the fast path too.
        let req = txn(vec![lb("c", "10.96.0.10:80", "10.0.0.11:80", "")]);
        let e = super::lb_transaction(&fast, &index, &req).unwrap_err();
        assert!(e.to_string().contains("already belongs"), "{e}");
        assert!(full.apply_ops(&req).is_err());
    }
}
