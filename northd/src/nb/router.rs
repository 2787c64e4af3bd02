//! Logical routers in the northbound model: routers, their ports, static routes
//! and switch ports of type `router` that attach a switch to a router port.
//! Column checks run per operation; references between rows (a switch port naming
//! a router port, a route's nexthop reachable from a port) are checked once the
//! whole transaction is applied, so an operator may create both ends in one go.

use crate::nb::{check_name, Nb, NbError, MAX_DP_KEY, MAX_PORT_KEY};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv6Addr};
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

/// Parses a router port's `networks`: "address/len" entries of either
/// family (at least one). Returns the IPv4 ones; [`parse_networks6`] the
/// IPv6 ones.
pub fn parse_networks(list: &[String]) -> Result<Vec<Ipv4Net>, NbError> {
    Ok(parse_all_networks(list)?.0)
}

/// The IPv6 networks of a router port (validated as [`parse_networks`]).
pub fn parse_networks6(list: &[String]) -> Result<Vec<Ipv6Net>, NbError> {
    Ok(parse_all_networks(list)?.1)
}

type Networks = (Vec<Ipv4Net>, Vec<Ipv6Net>);

fn parse_all_networks(list: &[String]) -> Result<Networks, NbError> {
    if list.is_empty() {
        return Err(bad(
            "networks",
            "",
            "a router port needs at least one network",
        ));
    }
    let (mut out, mut out6): Networks = Default::default();
    for n in list {
        let net = match n.parse::<IpNet>() {
            Ok(IpNet::V4(v4)) => v4,
            Ok(IpNet::V6(v6)) => {
                check_network6(n, &v6, &out6)?;
                out6.push(v6);
                continue;
            }
            Err(_) => {
                return Err(bad(
                    "networks",
                    n,
                    "not an address with a prefix such as 10.0.0.1/24 or fd00::1/64",
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
    Ok((out, out6))
}

/// An IPv6 router network: a global or unique-local unicast address in a
/// prefix of /127 or shorter (RFC 6164 point-to-point links), not the
/// subnet-router anycast address (RFC 4291 §2.6.1) but on a /127. The
/// link-local address comes from the port's MAC and is not listed.
fn check_network6(text: &str, net: &Ipv6Net, others: &[Ipv6Net]) -> Result<(), NbError> {
    let a = net.addr();
    let why = if net.prefix_len() > 127 {
        "a router network needs a prefix of /127 or shorter"
    } else if a.is_multicast() || a.is_unspecified() || a.is_loopback() {
        "a router port's address must be unicast"
    } else if a.is_unicast_link_local() {
        "the link-local address comes from the port's MAC; list global or unique-local networks"
    } else if a == net.network() && net.prefix_len() < 127 {
        "give the router's own address in the subnet, e.g. fd00::1/64 (the subnet's first address is the subnet-router anycast)"
    } else if others
        .iter()
        .any(|o| o.contains(&a) || net.contains(&o.addr()))
    {
        "overlaps another network of the same port"
    } else {
        return Ok(());
    };
    Err(bad("networks", text, why))
}

/// A static route's nexthop: a unicast address of either family.
fn parse_nexthop(nh: &str) -> Result<IpAddr, NbError> {
    let a: IpAddr = nh
        .parse()
        .map_err(|_| bad("nexthop", nh, "not an IPv4 or IPv6 address"))?;
    if a.is_multicast() || a.is_unspecified() {
        return Err(bad("nexthop", nh, "a nexthop must be a unicast address"));
    }
    Ok(a)
}

/// The link-local address of a router port: fe80::/64 with the modified
/// EUI-64 of its MAC (RFC 4291 appendix A), as OVN gives every IPv6 port.
pub fn link_local(mac: u64) -> Ipv6Addr {
    let m = mac.to_be_bytes();
    let iid = u64::from_be_bytes([m[2] ^ 0x02, m[3], m[4], 0xff, 0xfe, m[5], m[6], m[7]]);
    Ipv6Addr::from(0xfe80u128 << 112 | u128::from(iid))
}

/// Parses a route's prefix (no host bits), of either family; a bare
/// address is a host route.
pub fn parse_prefix(p: &str) -> Result<IpNet, NbError> {
    let net = match p.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match p.parse::<IpAddr>() {
            Ok(a) => IpNet::from(a),
            Err(_) => {
                return Err(bad(
                    "prefix",
                    p,
                    "not a CIDR such as 10.9.0.0/16 or fd00:9::/64",
                ))
            }
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
        if crate::nb::ra::parse_ra_configs(&lrp.ipv6_ra_configs)?.is_some()
            && parse_networks6(&lrp.networks)?.is_empty()
        {
            return Err(bad(
                "ipv6_ra_configs",
                &lrp.name,
                "the port has no IPv6 network to advertise",
            ));
        }
        if let Some(old) = self.router_ports.get(&lrp.name) {
            let same = old.router_name == lrp.router_name
                && old.mac == lrp.mac
                && old.networks == lrp.networks
                && old.ipv6_ra_configs == lrp.ipv6_ra_configs;
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
        let prefix = parse_prefix(&r.prefix)?;
        r.prefix = prefix.to_string();
        let nh = parse_nexthop(&r.nexthop)?;
        if nh.is_ipv4() != matches!(prefix, IpNet::V4(_)) {
            return Err(bad(
                "nexthop",
                &r.nexthop,
                format!("the prefix {prefix} is of the other address family"),
            ));
        }
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
    ) -> Result<(&'a LogicalRouterPort, IpNet), NbError> {
        let nh = parse_nexthop(&r.nexthop)?;
        for p in self.router_ports_of(&r.router_name) {
            if !r.output_port.is_empty() && p.name != r.output_port {
                continue;
            }
            let (v4, v6) = parse_all_networks(&p.networks)?;
            let nets = v4
                .into_iter()
                .map(IpNet::V4)
                .chain(v6.into_iter().map(IpNet::V6));
            for n in nets {
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
            let mut nets: Vec<(&str, IpNet)> = Vec::new();
            for p in self.router_ports_of(&lr.name) {
                let (v4, v6) = parse_all_networks(&p.networks)?;
                for n in v4
                    .into_iter()
                    .map(IpNet::V4)
                    .chain(v6.into_iter().map(IpNet::V6))
                {
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

/// The router port a switch port of type router attaches to, if it exists.
pub(crate) fn router_peer<'a>(
    nb: &'a Nb,
    p: &switchyard_southbound::pb::LogicalSwitchPort,
) -> Option<&'a LogicalRouterPort> {
    if p.r#type != LSP_TYPE_ROUTER {
        return None;
    }
    nb.router_ports.get(p.options.get(OPT_ROUTER_PORT)?)
}

/// "MAC IP/len ..." of a router port, as port bindings show it.
pub(crate) fn lrp_address_text(lrp: &LogicalRouterPort) -> String {
    std::iter::once(lrp.mac.clone())
        .chain(lrp.networks.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::compile::compile;
    use crate::nb::tests_support::*;
    use crate::nb::Nb;
    use switchyard_southbound::pb::{self, nb_op::Op};
    use switchyard_southbound::Stage;

    fn lr(name: &str) -> Op {
        Op::LrAdd(pb::LogicalRouter {
            name: name.into(),
            enabled: true,
            ..Default::default()
        })
    }
    fn lrp(name: &str, router: &str, mac: &str, net: &str) -> Op {
        Op::LrpAdd(pb::LogicalRouterPort {
            name: name.into(),
            router_name: router.into(),
            mac: mac.into(),
            networks: vec![net.into()],
            enabled: true,
            ..Default::default()
        })
    }
    fn attach(lsp_name: &str, sw: &str, lrp: &str) -> Op {
        Op::LspAdd(pb::LogicalSwitchPort {
            name: lsp_name.into(),
            switch_name: sw.into(),
            addresses: vec!["router".into()],
            r#type: "router".into(),
            options: [("router-port".to_string(), lrp.to_string())].into(),
            enabled: true,
            ..Default::default()
        })
    }
    fn route(prefix: &str, nh: &str) -> Op {
        Op::RouteAdd(pb::StaticRoute {
            router_name: "lr0".into(),
            prefix: prefix.into(),
            nexthop: nh.into(),
            output_port: String::new(),
        })
    }

    pub(crate) fn topo() -> Nb {
        let mut nb = Nb::default();
        nb.apply_ops(&txn(vec![
            ls("ls0", "10.0.0.0/24"),
            ls("ls1", "10.1.0.0/24"),
            lr("lr0"),
            lrp("lr0-ls0", "lr0", "0a:00:00:00:ff:00", "10.0.0.1/24"),
            lrp("lr0-ls1", "lr0", "0a:00:00:00:ff:01", "10.1.0.1/24"),
            attach("ls0-lr0", "ls0", "lr0-ls0"),
            attach("ls1-lr0", "ls1", "lr0-ls1"),
            lsp("p1", "ls0", "0a:00:00:00:00:01 10.0.0.11"),
            lsp("p2", "ls1", "0a:00:00:00:00:02 10.1.0.12"),
        ]))
        .unwrap();
        nb
    }

    fn flows(nb: &Nb, stage: Stage) -> Vec<String> {
        crate::compile::tests::flows_of(&compile(nb), stage)
    }

    #[test]
    fn routers_share_the_datapath_key_space_and_patch_ports_pair_up() {
        let nb = topo();
        assert_eq!(nb.routers["lr0"].tunnel_key, 3);
        let c = compile(&nb);
        let pb_of = |n: &str| {
            c.port_bindings
                .iter()
                .find(|p| p.logical_port == n)
                .unwrap()
        };
        assert_eq!(
            (
                pb_of("ls0-lr0").r#type.as_str(),
                pb_of("ls0-lr0").peer.as_str()
            ),
            ("patch", "lr0-ls0")
        );
        assert_eq!(pb_of("lr0-ls1").peer, "ls1-lr0");
        // The switch answers ARP for its gateway and sends frames for its MAC to the router.
        let arp = flows(&nb, Stage::LsInArpRsp);
        assert!(
            arp.iter().any(
                |f| f.contains("arp.tpa == 10.0.0.1 => arp_reply(eth.src = 0a:00:00:00:ff:00)")
            ),
            "{arp:#?}"
        );
        let l2 = flows(&nb, Stage::LsInL2Lkup);
        assert!(
            l2.contains(
                &"50 eth.dst == 0a:00:00:00:ff:00 => outport = \"ls0-lr0\"; output;".to_string()
            ),
            "{l2:#?}"
        );
    }

    #[test]
    fn routing_is_longest_prefix_first_with_ecmp_for_shared_prefixes() {
        let mut nb = topo();
        nb.apply_ops(&txn(vec![
            route("10.9.0.0/16", "10.1.0.100"),
            route("10.9.0.0/16", "10.1.0.101"),
            route("0.0.0.0/0", "10.0.0.254"),
        ]))
        .unwrap();
        let r = flows(&nb, Stage::LrInIpRouting);
        let want = [
            "49 eth.type == 0x0800 && ip4.dst == 10.1.0.0/24 => ip.ttl--; reg0 = ip4.dst; reg1 = 10.1.0.1; eth.src = 0a:00:00:00:ff:01; outport = \"lr0-ls1\"; next;",
            "32 eth.type == 0x0800 && ip4.dst == 10.9.0.0/16 => ecmp_select { 1: ip.ttl--; reg0 = 10.1.0.100; reg1 = 10.1.0.1; eth.src = 0a:00:00:00:ff:01; outport = \"lr0-ls1\"; next; 2: ip.ttl--; reg0 = 10.1.0.101; reg1 = 10.1.0.1; eth.src = 0a:00:00:00:ff:01; outport = \"lr0-ls1\"; next; }",
            "0 eth.type == 0x0800 && ip4.dst == 0.0.0.0/0 => ip.ttl--; reg0 = 10.0.0.254; reg1 = 10.0.0.1; eth.src = 0a:00:00:00:ff:00; outport = \"lr0-ls0\"; next;",
        ];
        for w in want {
            assert!(r.contains(&w.to_string()), "missing {w}\n{r:#?}");
        }
        let resolve = flows(&nb, Stage::LrInArpResolve);
        assert!(resolve.contains(&"100 outport == \"lr0-ls1\" && reg0 == 10.1.0.12 => eth.dst = 0a:00:00:00:00:02; next;".to_string()), "{resolve:#?}");
    }

    #[test]
    fn invalid_router_writes_are_refused_whole() {
        let mut nb = topo();
        let before = nb.clone();
        let cases: Vec<(Vec<Op>, &str)> = vec![
            (
                vec![lrp("x", "lr0", "0a:00:00:00:ff:09", "10.0.0.77/16")],
                "overlaps",
            ),
            (
                vec![lrp("x", "lr0", "01:00:00:00:ff:09", "10.5.0.1/24")],
                "unicast MAC",
            ),
            (
                vec![lrp("x", "lr0", "0a:00:00:00:ff:09", "10.5.0.0/24")],
                "router's own address",
            ),
            (
                vec![lrp("x", "lr9", "0a:00:00:00:ff:09", "10.5.0.1/24")],
                "does not exist",
            ),
            (vec![route("10.9.0.0/16", "192.0.2.1")], "not reachable"),
            (vec![route("10.9.0.1/16", "10.1.0.5")], "host bits set"),
            (
                vec![route("10.9.0.0/16", "nope")],
                "not an IPv4 or IPv6 address",
            ),
            // IPv6 networks and routes.
            (
                vec![lrp("x", "lr0", "0a:00:00:00:ff:09", "fe80::1/64")],
                "link-local address comes from the port's MAC",
            ),
            (
                vec![lrp("x", "lr0", "0a:00:00:00:ff:09", "fd00:5::/64")],
                "subnet-router anycast",
            ),
            (
                vec![lrp("x", "lr0", "0a:00:00:00:ff:09", "fd00:5::1/128")],
                "/127 or shorter",
            ),
            (
                vec![lrp("x", "lr0", "0a:00:00:00:ff:09", "ff02::1/64")],
                "must be unicast",
            ),
            (
                vec![route("fd00:9::/64", "10.1.0.5")],
                "other address family",
            ),
            (vec![route("10.9.0.0/16", "ff02::1")], "unicast address"),
            (vec![route("fd00:9::/64", "fd00:1::5")], "not reachable"),
            (vec![attach("again", "ls0", "lr0-ls1")], "attached twice"),
            (
                vec![attach("dangling", "ls0", "nope")],
                "no logical router port",
            ),
            (vec![lr("ls0")], "a logical switch already has this name"),
            // Deleting a router port a switch port attaches to: refused.
            (vec![Op::LrpDel("lr0-ls1".into())], "no logical router port"),
            // Deleting the port a route leaves by strands the route: refused.
            (
                vec![
                    route("10.9.0.0/16", "10.1.0.100"),
                    Op::LspDel("ls1-lr0".into()),
                    Op::LrpDel("lr0-ls1".into()),
                ],
                "not reachable",
            ),
        ];
        for (ops, want) in cases {
            let mut copy = nb.clone();
            let err = copy.apply_ops(&txn(ops)).unwrap_err().to_string();
            assert!(err.contains(want), "error {err:?} should contain {want:?}");
        }
        assert_eq!(nb, before);
        // Deleting the router removes its ports and routes with it.
        nb.apply_ops(&txn(vec![route("10.9.0.0/16", "10.1.0.100")]))
            .unwrap();
        nb.apply_ops(&txn(vec![
            Op::LspDel("ls0-lr0".into()),
            Op::LspDel("ls1-lr0".into()),
            Op::LrDel("lr0".into()),
        ]))
        .unwrap();
        assert!(nb.router_ports.is_empty() && nb.routes.is_empty());
    }
}
