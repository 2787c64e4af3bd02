//! Logical routers in the northbound model: routers, their ports, static routes
//! and switch ports of type `router` that attach a switch to a router port.
//! Column checks run per operation; references between rows (a switch port naming
//! a router port, a route's nexthop reachable from a port) are checked once the
//! whole transaction is applied, so an operator may create both ends in one go.

use crate::model::{check_name, Nb, NbError, MAX_DP_KEY, MAX_PORT_KEY};
use ipnet::{IpNet, Ipv4Net};
use std::net::Ipv4Addr;
use switchyard_southbound::parse_mac;
use switchyard_southbound::pb::{LogicalRouter, LogicalRouterPort, StaticRoute};

/// The switch port type that attaches a switch to a router port.
pub const LSP_TYPE_ROUTER: &str = "router";
/// The option of a `router` switch port that names its router port.
pub const OPT_ROUTER_PORT: &str = "router-port";

/// The identity of a static route: router, prefix and nexthop.
pub fn route_key(r: &StaticRoute) -> String {
    format!("{}|{}|{}", r.router_name, r.prefix, r.nexthop)
}

fn bad(field: &'static str, value: &str, why: impl Into<String>) -> NbError {
    NbError::BadValue {
        field,
        value: value.to_string(),
        why: why.into(),
    }
}

/// Parses a router port's MAC.
pub fn parse_lrp_mac(mac: &str) -> Result<u64, NbError> {
    let m = parse_mac(mac).ok_or_else(|| bad("mac", mac, "not a MAC address"))?;
    if m & (1 << 40) != 0 || m == 0 {
        return Err(bad("mac", mac, "a router port needs a unicast MAC"));
    }
    Ok(m)
}

/// Parses a router port's `networks`: IPv4 "address/len" entries.
pub fn parse_networks(list: &[String]) -> Result<Vec<Ipv4Net>, NbError> {
    if list.is_empty() {
        return Err(bad(
            "networks",
            "",
            "a router port needs at least one network",
        ));
    }
    let mut out: Vec<Ipv4Net> = Vec::new();
    for n in list {
        let net = match n.parse::<IpNet>() {
            Ok(IpNet::V4(v4)) => v4,
            Ok(IpNet::V6(_)) => {
                return Err(bad(
                    "networks",
                    n,
                    "IPv6 router networks are not supported yet",
                ))
            }
            Err(_) => {
                return Err(bad(
                    "networks",
                    n,
                    "not an address with a prefix such as 10.0.0.1/24",
                ))
            }
        };
        if net.prefix_len() > 30 {
            return Err(bad(
                "networks",
                n,
                "a router network needs a prefix of /30 or shorter",
            ));
        }
        if net.addr() == net.network() || net.addr() == net.broadcast() {
            return Err(bad(
                "networks",
                n,
                "give the router's own address in the subnet, e.g. 10.0.0.1/24",
            ));
        }
        if out
            .iter()
            .any(|o| o.contains(&net.addr()) || net.contains(&o.addr()))
        {
            return Err(bad(
                "networks",
                n,
                "overlaps another network of the same port",
            ));
        }
        out.push(net);
    }
    Ok(out)
}

/// Parses a route's prefix (no host bits).
pub fn parse_prefix(p: &str) -> Result<Ipv4Net, NbError> {
    let net = match p.parse::<IpNet>() {
        Ok(IpNet::V4(v4)) => v4,
        Ok(IpNet::V6(_)) => return Err(bad("prefix", p, "IPv6 routes are not supported yet")),
        Err(_) => match p.parse::<Ipv4Addr>() {
            Ok(a) => Ipv4Net::from(a),
            Err(_) => return Err(bad("prefix", p, "not a CIDR such as 10.9.0.0/16")),
        },
    };
    if net.trunc() != net {
        return Err(bad(
            "prefix",
            p,
            format!("host bits set; did you mean {}?", net.trunc()),
        ));
    }
    Ok(net)
}

impl Nb {
    /// Every datapath key in use (switches and routers share the 24-bit space).
    pub(crate) fn free_dp_key(&self) -> Result<u32, NbError> {
        let used: std::collections::HashSet<u32> = self
            .switches
            .values()
            .map(|s| s.tunnel_key)
            .chain(self.routers.values().map(|r| r.tunnel_key))
            .collect();
        (1..=MAX_DP_KEY)
            .find(|k| !used.contains(k))
            .ok_or(NbError::KeysExhausted("datapaths"))
    }

    /// The ports of one router.
    pub fn router_ports_of<'a>(
        &'a self,
        router: &'a str,
    ) -> impl Iterator<Item = &'a LogicalRouterPort> {
        self.router_ports
            .values()
            .filter(move |p| p.router_name == router)
    }

    /// The static routes of one router.
    pub fn routes_of<'a>(&'a self, router: &'a str) -> impl Iterator<Item = &'a StaticRoute> {
        self.routes
            .values()
            .filter(move |r| r.router_name == router)
    }

    pub(crate) fn lr_add(&mut self, lr: &LogicalRouter, may_exist: bool) -> Result<(), NbError> {
        check_name(&lr.name)?;
        if self.switches.contains_key(&lr.name) {
            return Err(bad(
                "name",
                &lr.name,
                "a logical switch already has this name",
            ));
        }
        if self.routers.contains_key(&lr.name) {
            return if may_exist {
                Ok(())
            } else {
                Err(NbError::Exists("logical router", lr.name.clone()))
            };
        }
        let mut lr = lr.clone();
        lr.tunnel_key = self.free_dp_key()?;
        self.routers.insert(lr.name.clone(), lr);
        Ok(())
    }

    pub(crate) fn lr_del(&mut self, name: &str, if_exists: bool) -> Result<(), NbError> {
        if self.routers.remove(name).is_none() {
            return if if_exists {
                Ok(())
            } else {
                Err(NbError::Missing("logical router", name.to_string()))
            };
        }
        self.router_ports.retain(|_, p| p.router_name != name);
        self.routes.retain(|_, r| r.router_name != name);
        Ok(())
    }

    pub(crate) fn lrp_add(
        &mut self,
        lrp: &LogicalRouterPort,
        may_exist: bool,
    ) -> Result<(), NbError> {
        check_name(&lrp.name)?;
        if !self.routers.contains_key(&lrp.router_name) {
            return Err(NbError::Missing("logical router", lrp.router_name.clone()));
        }
        parse_lrp_mac(&lrp.mac)?;
        parse_networks(&lrp.networks)?;
        if let Some(old) = self.router_ports.get(&lrp.name) {
            let same = old.router_name == lrp.router_name
                && old.mac == lrp.mac
                && old.networks == lrp.networks;
            return if may_exist && same {
                Ok(())
            } else {
                Err(NbError::Exists("logical router port", lrp.name.clone()))
            };
        }
        if self.ports.contains_key(&lrp.name) {
            return Err(bad(
                "name",
                &lrp.name,
                "a logical switch port already has this name",
            ));
        }
        let used: std::collections::HashSet<u32> = self
            .router_ports_of(&lrp.router_name)
            .map(|p| p.tunnel_key)
            .collect();
        let key = (1..=MAX_PORT_KEY)
            .find(|k| !used.contains(k))
            .ok_or(NbError::KeysExhausted("ports of a router"))?;
        let mut lrp = lrp.clone();
        lrp.tunnel_key = key;
        self.router_ports.insert(lrp.name.clone(), lrp);
        Ok(())
    }

    pub(crate) fn lrp_del(&mut self, name: &str, if_exists: bool) -> Result<(), NbError> {
        if self.router_ports.remove(name).is_none() && !if_exists {
            return Err(NbError::Missing("logical router port", name.to_string()));
        }
        Ok(())
    }

    pub(crate) fn route_add(&mut self, r: &StaticRoute, may_exist: bool) -> Result<(), NbError> {
        if !self.routers.contains_key(&r.router_name) {
            return Err(NbError::Missing("logical router", r.router_name.clone()));
        }
        let mut r = r.clone();
        r.prefix = parse_prefix(&r.prefix)?.to_string();
        r.nexthop
            .parse::<Ipv4Addr>()
            .map_err(|_| bad("nexthop", &r.nexthop, "not an IPv4 address"))?;
        let key = route_key(&r);
        if let Some(old) = self.routes.get(&key) {
            return if may_exist && *old == r {
                Ok(())
            } else {
                Err(NbError::Exists(
                    "static route",
                    format!("{} via {} on {}", r.prefix, r.nexthop, r.router_name),
                ))
            };
        }
        self.routes.insert(key, r);
        Ok(())
    }

    pub(crate) fn route_del(&mut self, r: &StaticRoute, if_exists: bool) -> Result<(), NbError> {
        let prefix = parse_prefix(&r.prefix)?.to_string();
        let before = self.routes.len();
        self.routes.retain(|_, x| {
            !(x.router_name == r.router_name
                && x.prefix == prefix
                && (r.nexthop.is_empty() || x.nexthop == r.nexthop))
        });
        if self.routes.len() == before && !if_exists {
            return Err(NbError::Missing(
                "static route",
                format!(
                    "{prefix} via {} on {}",
                    if r.nexthop.is_empty() {
                        "any"
                    } else {
                        &r.nexthop
                    },
                    r.router_name
                ),
            ));
        }
        Ok(())
    }

    /// The router port a route leaves by: its `output_port`, else the port whose
    /// network holds the nexthop.
    pub fn route_port<'a>(
        &'a self,
        r: &'a StaticRoute,
    ) -> Result<(&'a LogicalRouterPort, Ipv4Net), NbError> {
        let nh: Ipv4Addr = r
            .nexthop
            .parse()
            .map_err(|_| bad("nexthop", &r.nexthop, "not an IPv4 address"))?;
        for p in self.router_ports_of(&r.router_name) {
            if !r.output_port.is_empty() && p.name != r.output_port {
                continue;
            }
            for n in parse_networks(&p.networks)? {
                if n.contains(&nh) {
                    return Ok((p, n));
                }
            }
        }
        if !r.output_port.is_empty()
            && !self
                .router_ports_of(&r.router_name)
                .any(|p| p.name == r.output_port)
        {
            return Err(bad(
                "output_port",
                &r.output_port,
                format!("not a port of router {:?}", r.router_name),
            ));
        }
        Err(bad(
            "nexthop",
            &r.nexthop,
            format!(
                "not reachable: no {}network of router {:?} contains it",
                if r.output_port.is_empty() {
                    String::new()
                } else {
                    format!("port {:?} ", r.output_port)
                },
                r.router_name
            ),
        ))
    }

    /// References between rows, checked once a transaction's ops are applied.
    pub(crate) fn check_references(&self) -> Result<(), NbError> {
        let mut attached: std::collections::BTreeMap<&str, &str> = Default::default();
        for p in self.ports.values() {
            match p.r#type.as_str() {
                "" => {}
                LSP_TYPE_ROUTER => {
                    let lrp = p
                        .options
                        .get(OPT_ROUTER_PORT)
                        .map(String::as_str)
                        .unwrap_or("");
                    if lrp.is_empty() {
                        return Err(bad(
                            "options",
                            &p.name,
                            format!("a switch port of type router needs {OPT_ROUTER_PORT}=<router port>"),
                        ));
                    }
                    if !self.router_ports.contains_key(lrp) {
                        return Err(bad(
                            "options",
                            &format!("{OPT_ROUTER_PORT}={lrp}"),
                            format!("port {:?}: no logical router port {lrp:?}", p.name),
                        ));
                    }
                    if let Some(other) = attached.insert(lrp, &p.name) {
                        return Err(bad(
                            "options",
                            &format!("{OPT_ROUTER_PORT}={lrp}"),
                            format!("router port {lrp:?} is attached twice: by switch ports {other:?} and {:?}", p.name),
                        ));
                    }
                }
                other => return Err(bad("type", other, "use \"\" (a VIF) or \"router\"")),
            }
        }
        for lr in self.routers.values() {
            let mut nets: Vec<(&str, Ipv4Net)> = Vec::new();
            for p in self.router_ports_of(&lr.name) {
                for n in parse_networks(&p.networks)? {
                    if let Some((other, on)) = nets
                        .iter()
                        .find(|(_, o)| o.contains(&n.network()) || n.contains(&o.network()))
                    {
                        return Err(bad(
                            "networks",
                            &n.to_string(),
                            format!("overlaps {on} of port {other:?} on router {:?}", lr.name),
                        ));
                    }
                    nets.push((&p.name, n));
                }
            }
        }
        for r in self.routes.values() {
            self.route_port(r)?;
        }
        Ok(())
    }
}
