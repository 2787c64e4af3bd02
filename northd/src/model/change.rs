//! The row-level difference between two NB states ([`Change`]): what the
//! stores persist (one record per committed transaction) and what a
//! restarted or standby northd replays onto its model.

use crate::model::Nb;
use std::collections::BTreeMap;
use switchyard_southbound::pb::{
    self, LoadBalancer, LogicalRouter, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort,
    NatRule, StaticRoute,
};

/// Row-level difference between two NB states: what the store persists.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub version: u64,
    pub put_switches: Vec<LogicalSwitch>,
    pub put_ports: Vec<LogicalSwitchPort>,
    pub del_switches: Vec<String>,
    pub del_ports: Vec<String>,
    #[serde(default)]
    pub put_routers: Vec<LogicalRouter>,
    #[serde(default)]
    pub put_router_ports: Vec<LogicalRouterPort>,
    #[serde(default)]
    pub put_routes: Vec<StaticRoute>,
    #[serde(default)]
    pub del_routers: Vec<String>,
    #[serde(default)]
    pub del_router_ports: Vec<String>,
    #[serde(default)]
    pub del_routes: Vec<String>,
    #[serde(default)]
    pub put_lbs: Vec<LoadBalancer>,
    #[serde(default)]
    pub del_lbs: Vec<String>,
    #[serde(default)]
    pub put_nats: Vec<NatRule>,
    #[serde(default)]
    pub del_nats: Vec<String>,
    #[serde(default)]
    pub put_acls: Vec<pb::Acl>,
    #[serde(default)]
    pub del_acls: Vec<String>,
    #[serde(default)]
    pub put_dns: Vec<pb::DnsRecord>,
    #[serde(default)]
    pub del_dns: Vec<String>,
    #[serde(default)]
    pub put_dhcp: Vec<pb::DhcpOptions>,
    #[serde(default)]
    pub del_dhcp: Vec<String>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.put_switches.is_empty()
            && self.put_ports.is_empty()
            && self.del_switches.is_empty()
            && self.del_ports.is_empty()
            && self.put_routers.is_empty()
            && self.put_router_ports.is_empty()
            && self.put_routes.is_empty()
            && self.del_routers.is_empty()
            && self.del_router_ports.is_empty()
            && self.del_routes.is_empty()
            && self.put_lbs.is_empty()
            && self.del_lbs.is_empty()
            && self.put_nats.is_empty()
            && self.del_nats.is_empty()
            && self.put_acls.is_empty()
            && self.del_acls.is_empty()
            && self.put_dns.is_empty()
            && self.del_dns.is_empty()
            && self.put_dhcp.is_empty()
            && self.del_dhcp.is_empty()
    }
}

fn diff_map<T: Clone + PartialEq>(
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
) -> (Vec<T>, Vec<String>) {
    let puts = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(_, v)| v.clone())
        .collect();
    let dels = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    (puts, dels)
}

impl Nb {
    /// The row-level change from `self` to `new`.
    pub fn diff(&self, new: &Nb, version: u64) -> Change {
        let (put_switches, del_switches) = diff_map(&self.switches, &new.switches);
        let (put_ports, del_ports) = diff_map(&self.ports, &new.ports);
        let (put_routers, del_routers) = diff_map(&self.routers, &new.routers);
        let (put_router_ports, del_router_ports) = diff_map(&self.router_ports, &new.router_ports);
        let (put_routes, del_routes) = diff_map(&self.routes, &new.routes);
        let (put_lbs, del_lbs) = diff_map(&self.load_balancers, &new.load_balancers);
        let (put_nats, del_nats) = diff_map(&self.nats, &new.nats);
        let (put_acls, del_acls) = diff_map(&self.acls, &new.acls);
        let (put_dns, del_dns) = diff_map(&self.dns, &new.dns);
        let (put_dhcp, del_dhcp) = diff_map(&self.dhcp_options, &new.dhcp_options);
        Change {
            version,
            put_switches,
            put_ports,
            del_switches,
            del_ports,
            put_routers,
            put_router_ports,
            put_routes,
            del_routers,
            del_router_ports,
            del_routes,
            put_lbs,
            del_lbs,
            put_nats,
            del_nats,
            put_acls,
            del_acls,
            put_dns,
            del_dns,
            put_dhcp,
            del_dhcp,
        }
    }

    /// Applies a persisted change (no validation: it was validated when written).
    pub fn apply_change(&mut self, c: &Change) {
        for n in &c.del_ports {
            self.ports.remove(n);
        }
        for n in &c.del_switches {
            self.switches.remove(n);
        }
        for s in &c.put_switches {
            self.switches.insert(s.name.clone(), s.clone());
        }
        for p in &c.put_ports {
            self.ports.insert(p.name.clone(), p.clone());
        }
        for n in &c.del_routes {
            self.routes.remove(n);
        }
        for n in &c.del_router_ports {
            self.router_ports.remove(n);
        }
        for n in &c.del_routers {
            self.routers.remove(n);
        }
        for r in &c.put_routers {
            self.routers.insert(r.name.clone(), r.clone());
        }
        for p in &c.put_router_ports {
            self.router_ports.insert(p.name.clone(), p.clone());
        }
        for r in &c.put_routes {
            self.routes
                .insert(crate::nb::router::route_key(r), r.clone());
        }
        for n in &c.del_lbs {
            self.load_balancers.remove(n);
        }
        for l in &c.put_lbs {
            self.load_balancers.insert(l.name.clone(), l.clone());
        }
        for n in &c.del_nats {
            self.nats.remove(n);
        }
        for n in &c.put_nats {
            self.nats.insert(crate::nb::lb::nat_key(n), n.clone());
        }
        for n in &c.del_acls {
            self.acls.remove(n);
        }
        for a in &c.put_acls {
            self.acls.insert(crate::nb::acl::acl_key(a), a.clone());
        }
        for n in &c.del_dns {
            self.dns.remove(n);
        }
        for r in &c.put_dns {
            self.dns
                .insert(crate::nb::dns::dns_key(&r.switch_name, &r.name), r.clone());
        }
        for n in &c.del_dhcp {
            self.dhcp_options.remove(n);
        }
        for d in &c.put_dhcp {
            self.dhcp_options.insert(d.id.clone(), d.clone());
        }
    }
}
