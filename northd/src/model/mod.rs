//! The northbound model in memory, and the validation every write goes through:
//! a transaction is applied to a copy, checked op by op, and only a fully valid
//! result is committed. Errors name the field and the value that are wrong.

pub mod change;
pub mod db;

use ipnet::IpNet;
use switchyard_southbound::pb::{self, nb_op::Op, LogicalSwitch, LogicalSwitchPort};

use crate::nb::switch_config::check_other_config;
pub use crate::nb::switch_config::{ct_zone_limit, mtu, SWITCH_CONFIG_KEYS};
pub use crate::nb::*;

pub use crate::model::change::Change;

impl Nb {
    /// The ports of one switch.
    pub fn ports_of<'a>(&'a self, switch: &'a str) -> impl Iterator<Item = &'a LogicalSwitchPort> {
        self.ports.values().filter(move |p| p.switch_name == switch)
    }

    /// As a protobuf message.
    pub fn to_pb(&self, version: u64) -> pb::NbDatabase {
        pb::NbDatabase {
            version,
            switches: self.switches.values().cloned().collect(),
            ports: self.ports.values().cloned().collect(),
            routers: self.routers.values().cloned().collect(),
            router_ports: self.router_ports.values().cloned().collect(),
            routes: self.routes.values().cloned().collect(),
            load_balancers: self.load_balancers.values().cloned().collect(),
            nats: self.nats.values().cloned().collect(),
            acls: self.acls.values().cloned().collect(),
            dns_records: self.dns.values().cloned().collect(),
            dhcp_options: self.dhcp_options.values().cloned().collect(),
        }
    }

    /// [`Nb::apply_ops`] of a transaction made of `ops` alone (no flags): how
    /// tests, benches and fixtures build a database.
    pub fn apply_all(&mut self, ops: Vec<Op>) -> Result<(), NbError> {
        self.apply_ops(&switchyard_southbound::transaction(ops, false, false))
    }

    /// Applies a transaction, validating each op. On error `self` may be partly
    /// changed: callers apply to a clone and keep it only on success.
    pub fn apply_ops(&mut self, req: &pb::TransactRequest) -> Result<(), NbError> {
        for op in &req.ops {
            let may_exist = req.may_exist || op.may_exist;
            let if_exists = req.if_exists || op.if_exists;
            match op.op.as_ref().ok_or(NbError::EmptyOp)? {
                Op::LsAdd(ls) => self.ls_add(ls, may_exist)?,
                Op::LsDel(name) => {
                    if self.switches.remove(name).is_none() {
                        if !if_exists {
                            return Err(NbError::NoSuchSwitch(name.clone()));
                        }
                    } else {
                        self.ports.retain(|_, p| &p.switch_name != name);
                        self.acls.retain(|_, a| &a.switch_name != name);
                        self.dns.retain(|_, r| &r.switch_name != name);
                    }
                }
                Op::LspAdd(lsp) => self.lsp_add(lsp, may_exist)?,
                Op::LspDel(name) => {
                    if self.ports.remove(name).is_none() && !if_exists {
                        return Err(NbError::NoSuchPort(name.clone()));
                    }
                }
                Op::LspSetAddresses(s) => {
                    let mut p = self.port(&s.port)?.clone();
                    p.addresses = s.addresses.clone();
                    self.check_port(&p)?;
                    self.ports.insert(p.name.clone(), p);
                }
                Op::LspSetPortSecurity(s) => {
                    let mut p = self.port(&s.port)?.clone();
                    p.port_security = s.addresses.clone();
                    self.check_port(&p)?;
                    self.ports.insert(p.name.clone(), p);
                }
                Op::LspSetEnabled(s) => {
                    let mut p = self.port(&s.port)?.clone();
                    p.enabled = s.enabled;
                    self.ports.insert(p.name.clone(), p);
                }
                Op::LspSetType(s) => {
                    let mut p = self.port(&s.port)?.clone();
                    p.r#type = s.r#type.clone();
                    self.check_port(&p)?;
                    self.ports.insert(p.name.clone(), p);
                }
                Op::LspSetOptions(s) => {
                    let mut p = self.port(&s.port)?.clone();
                    p.options = s.options.clone();
                    self.ports.insert(p.name.clone(), p);
                }
                Op::LsSetOtherConfig(c) => {
                    let mut ls = self
                        .switches
                        .get(&c.record)
                        .ok_or_else(|| NbError::NoSuchSwitch(c.record.clone()))?
                        .clone();
                    for (k, v) in &c.config {
                        if v.is_empty() {
                            ls.other_config.remove(k);
                        } else {
                            ls.other_config.insert(k.clone(), v.clone());
                        }
                    }
                    check_other_config(&ls.other_config)?;
                    self.switches.insert(ls.name.clone(), ls);
                }
                Op::LspSetExternalIds(c) => {
                    let mut p = self.port(&c.record)?.clone();
                    for (k, v) in &c.config {
                        if k.is_empty() || k.len() > 255 || v.len() > 4096 {
                            return Err(NbError::BadValue {
                                field: "external_ids",
                                value: k.clone(),
                                why: "keys of 1-255 bytes, values up to 4096".into(),
                            });
                        }
                        if v.is_empty() {
                            p.external_ids.remove(k);
                        } else {
                            p.external_ids.insert(k.clone(), v.clone());
                        }
                    }
                    self.ports.insert(p.name.clone(), p);
                }
                Op::LrAdd(lr) => self.lr_add(lr, may_exist)?,
                Op::LrDel(name) => self.lr_del(name, if_exists)?,
                Op::LrpAdd(lrp) => self.lrp_add(lrp, may_exist)?,
                Op::LrpDel(name) => self.lrp_del(name, if_exists)?,
                Op::RouteAdd(r) => self.route_add(r, may_exist)?,
                Op::RouteDel(r) => self.route_del(r, if_exists)?,
                Op::LbAdd(lb) => self.lb_add(lb, may_exist)?,
                Op::LbDel(d) => self.lb_del(d, if_exists)?,
                Op::LbAttach(a) => self.lb_attach(a, true, may_exist)?,
                Op::LbDetach(a) => self.lb_attach(a, false, if_exists)?,
                Op::NatAdd(n) => self.nat_add(n, may_exist)?,
                Op::NatDel(n) => self.nat_del(n, if_exists)?,
                Op::AclAdd(a) => self.acl_add(a, may_exist)?,
                Op::AclDel(d) => self.acl_del(d, if_exists)?,
                Op::DnsAdd(r) => self.dns_add(r, may_exist)?,
                Op::DnsDel(d) => self.dns_del(d, if_exists)?,
                Op::DhcpOptionsAdd(d) => self.dhcp_options_add(d, may_exist)?,
                Op::DhcpOptionsDel(id) => self.dhcp_options_del(id, if_exists)?,
                Op::DhcpOptionsSet(c) => self.dhcp_options_set(c)?,
                Op::LspSetDhcpv4Options(s) => self.lsp_set_dhcpv4_options(s)?,
                Op::DbMutate(m) => self.db_mutate(m, if_exists)?,
            }
        }
        // A deleted switch or router takes its load balancer attachments and
        // NAT rules with it.
        self.lb_forget();
        crate::nb::ipam::assign(self)?;
        self.check_references()?;
        if let Some(p) = self.ports.values().find(|p| {
            !p.dhcpv4_options.is_empty() && !self.dhcp_options.contains_key(&p.dhcpv4_options)
        }) {
            return Err(NbError::BadValue {
                field: "dhcpv4_options",
                value: p.dhcpv4_options.clone(),
                why: format!("port {:?}: no DHCP options with this id", p.name),
            });
        }
        self.check_lb_nat_references()
    }

    fn port(&self, name: &str) -> Result<&LogicalSwitchPort, NbError> {
        self.ports
            .get(name)
            .ok_or_else(|| NbError::NoSuchPort(name.to_string()))
    }

    pub(crate) fn ls_add(&mut self, ls: &LogicalSwitch, may_exist: bool) -> Result<(), NbError> {
        check_name(&ls.name)?;
        let subnet = if ls.subnet.is_empty() {
            None
        } else {
            Some(ls.subnet.parse::<IpNet>().map_err(|_| NbError::BadValue {
                field: "subnet",
                value: ls.subnet.clone(),
                why: "not a CIDR such as 10.0.0.0/24".into(),
            })?)
        };
        if let Some(n) = subnet {
            if n.trunc() != n {
                return Err(NbError::BadValue {
                    field: "subnet",
                    value: ls.subnet.clone(),
                    why: format!("host bits set; did you mean {}?", n.trunc()),
                });
            }
        }
        check_other_config(&ls.other_config)?;
        if let Some(old) = self.switches.get(&ls.name) {
            let same = old.subnet == ls.subnet && old.other_config == ls.other_config;
            if may_exist && same {
                return Ok(());
            }
            return Err(NbError::SwitchExists(ls.name.clone()));
        }
        if self.routers.contains_key(&ls.name) {
            return Err(NbError::BadValue {
                field: "name",
                value: ls.name.clone(),
                why: "a logical router already has this name".into(),
            });
        }
        let key = self.free_dp_key()?;
        let mut ls = ls.clone();
        ls.tunnel_key = key;
        self.switches.insert(ls.name.clone(), ls);
        Ok(())
    }

    pub(crate) fn lsp_add(
        &mut self,
        lsp: &LogicalSwitchPort,
        may_exist: bool,
    ) -> Result<(), NbError> {
        check_name(&lsp.name)?;
        if !self.switches.contains_key(&lsp.switch_name) {
            return Err(NbError::NoSuchSwitch(lsp.switch_name.clone()));
        }
        if let Some(old) = self.ports.get(&lsp.name) {
            let same = old.switch_name == lsp.switch_name
                && old.addresses == lsp.addresses
                && old.port_security == lsp.port_security
                && old.r#type == lsp.r#type
                && old.options == lsp.options;
            if may_exist && same {
                return Ok(());
            }
            return Err(NbError::PortExists(lsp.name.clone()));
        }
        let used: std::collections::HashSet<u32> = self
            .ports_of(&lsp.switch_name)
            .map(|p| p.tunnel_key)
            .collect();
        let key = (1..=MAX_PORT_KEY)
            .find(|k| !used.contains(k))
            .ok_or(NbError::KeysExhausted("ports of a switch"))?;
        let mut lsp = lsp.clone();
        lsp.tunnel_key = key;
        // northd's to assign (ipam), never the client's to set.
        lsp.dynamic_addresses.clear();
        self.check_port(&lsp)?;
        self.ports.insert(lsp.name.clone(), lsp);
        Ok(())
    }

    /// Checks a port's columns against itself, its switch and the switch's other ports.
    pub(crate) fn check_port(&self, p: &LogicalSwitchPort) -> Result<(), NbError> {
        let addrs = parse_addresses("addresses", &p.addresses, false)?;
        parse_addresses("port_security", &p.port_security, true)?;
        if p.addresses
            .iter()
            .filter(|a| crate::nb::ipam::request(a).is_some())
            .count()
            > 1
        {
            return Err(NbError::BadValue {
                field: "addresses",
                value: p.addresses.join(", "),
                why: "one \"dynamic\" entry per port".into(),
            });
        }
        if addrs.router && p.r#type != crate::nb::router::LSP_TYPE_ROUTER {
            return Err(NbError::BadValue {
                field: "addresses",
                value: "router".into(),
                why: format!(
                    "only a port of type router takes \"router\" (port {:?})",
                    p.name
                ),
            });
        }
        let ls = self
            .switches
            .get(&p.switch_name)
            .ok_or_else(|| NbError::NoSuchSwitch(p.switch_name.clone()))?;
        if let Ok(subnet) = ls.subnet.parse::<IpNet>() {
            for e in &addrs.entries {
                for ip in &e.ips {
                    if ip.addr().is_ipv4() == subnet.addr().is_ipv4()
                        && !subnet.contains(&ip.addr())
                    {
                        return Err(NbError::BadValue {
                            field: "addresses",
                            value: ip.addr().to_string(),
                            why: format!("outside switch {:?}'s subnet {subnet}", ls.name),
                        });
                    }
                }
            }
        }
        for other in self.ports_of(&p.switch_name).filter(|o| o.name != p.name) {
            let theirs = parse_addresses("addresses", &crate::nb::ipam::resolved(other), false)?;
            for mine in &addrs.entries {
                for t in &theirs.entries {
                    let in_use = |field: &'static str, value: String| NbError::AddressInUse {
                        field,
                        value,
                        port: p.name.clone(),
                        other: other.name.clone(),
                        switch: p.switch_name.clone(),
                    };
                    if mine.mac == t.mac {
                        return Err(in_use("MAC", switchyard_southbound::fmt_mac(mine.mac)));
                    }
                    if let Some(ip) = mine.ips.iter().find(|ip| t.ips.contains(ip)) {
                        return Err(in_use("IP", ip.addr().to_string()));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    fn apply(nb: &mut Nb, ops: Vec<Op>) -> Result<(), NbError> {
        let mut copy = nb.clone();
        copy.apply_ops(&txn(ops))?;
        *nb = copy;
        Ok(())
    }

    #[test]
    fn valid_topology_gets_keys() {
        let mut nb = Nb::default();
        apply(
            &mut nb,
            vec![
                ls("ls1", "10.0.0.0/24"),
                lsp("p1", "ls1", "0a:00:00:00:00:01 10.0.0.1"),
                lsp("p2", "ls1", "0a:00:00:00:00:02 10.0.0.2"),
            ],
        )
        .unwrap();
        assert_eq!(nb.switches["ls1"].tunnel_key, 1);
        assert_eq!(nb.ports["p1"].tunnel_key, 1);
        assert_eq!(nb.ports["p2"].tunnel_key, 2);
    }

    #[test]
    fn invalid_writes_are_refused_whole() {
        let mut nb = Nb::default();
        apply(
            &mut nb,
            vec![
                ls("ls1", "10.0.0.0/24"),
                lsp("p1", "ls1", "0a:00:00:00:00:01 10.0.0.1"),
            ],
        )
        .unwrap();
        let before = nb.clone();
        let cases: Vec<(Vec<Op>, &str)> = vec![
            (vec![ls("ls1", "")], "already exists"),
            (vec![ls("bad name", "")], "invalid name"),
            (vec![ls("ls2", "10.0.0.1/24")], "host bits set"),
            (vec![ls("ls2", "nonsense")], "not a CIDR"),
            (
                vec![lsp("p9", "nope", "0a:00:00:00:00:09")],
                "does not exist",
            ),
            (
                vec![lsp("p1", "ls1", "0a:00:00:00:00:09")],
                "already exists",
            ),
            (
                vec![lsp("p2", "ls1", "0a:00:00:00:zz:02 10.0.0.2")],
                "not a MAC",
            ),
            (
                vec![lsp("p2", "ls1", "0a:00:00:00:00:02 10.0.0.300")],
                "not an IP address",
            ),
            (
                vec![lsp("p2", "ls1", "0a:00:00:00:00:02 10.9.0.2")],
                "outside switch",
            ),
            (
                vec![lsp("p2", "ls1", "0a:00:00:00:00:01 10.0.0.2")],
                "already used by port \"p1\"",
            ),
            (
                vec![lsp("p2", "ls1", "0a:00:00:00:00:02 10.0.0.1")],
                "IP \"10.0.0.1\"",
            ),
            (vec![lsp("p2", "ls1", "01:00:00:00:00:02")], "multicast"),
            // A valid op followed by an invalid one: the valid one is not written.
            (
                vec![ls("ls3", ""), lsp("p3", "ls9", "0a:00:00:00:00:03")],
                "\"ls9\" does not exist",
            ),
        ];
        for (ops, want) in cases {
            let err = apply(&mut nb, ops).unwrap_err().to_string();
            assert!(err.contains(want), "error {err:?} should contain {want:?}");
            assert_eq!(nb, before);
        }
    }

    #[test]
    fn deleting_a_switch_deletes_its_ports_and_keys_are_reused() {
        let mut nb = Nb::default();
        apply(
            &mut nb,
            vec![
                ls("a", ""),
                ls("b", ""),
                lsp("pa", "a", "0a:00:00:00:00:01"),
            ],
        )
        .unwrap();
        apply(&mut nb, vec![Op::LsDel("a".into())]).unwrap();
        assert!(nb.ports.is_empty());
        apply(&mut nb, vec![ls("c", "")]).unwrap();
        assert_eq!(nb.switches["c"].tunnel_key, 1);
        assert_eq!(nb.switches["b"].tunnel_key, 2);
    }

    #[test]
    fn diff_and_apply_change_round_trip() {
        let mut a = Nb::default();
        apply(
            &mut a,
            vec![ls("a", ""), lsp("pa", "a", "0a:00:00:00:00:01")],
        )
        .unwrap();
        let mut b = a.clone();
        apply(&mut b, vec![Op::LspDel("pa".into()), ls("b", "")]).unwrap();
        let c = a.diff(&b, 2);
        let mut replay = a.clone();
        replay.apply_change(&c);
        assert_eq!(replay, b);
    }
}
