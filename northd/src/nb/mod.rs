//! The northbound database's contents and the vocabulary of its validation:
//! [`Nb`], [`NbError`], names and addresses. The transaction engine that
//! applies writes is `model.rs`; each feature's checks live with the feature.

pub mod acl;
pub mod dhcp;
pub mod dns;
pub mod ipam;
pub mod lb;
pub mod ra;
pub mod router;
pub mod switch_config;

use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use switchyard_southbound::parse_mac;
use switchyard_southbound::pb::{
    self, LoadBalancer, LogicalRouter, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort,
    NatRule, StaticRoute,
};
use thiserror::Error;

/// Why a northbound write was refused. Nothing of the transaction was written.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NbError {
    #[error("logical switch {0:?} already exists")]
    SwitchExists(String),
    #[error("logical switch {0:?} does not exist")]
    NoSuchSwitch(String),
    #[error("logical switch port {0:?} already exists")]
    PortExists(String),
    #[error("logical switch port {0:?} does not exist")]
    NoSuchPort(String),
    #[error("invalid name {0:?}: use 1-63 characters from [A-Za-z0-9_.:-]")]
    BadName(String),
    #[error("invalid {field} {value:?}: {why}")]
    BadValue {
        field: &'static str,
        value: String,
        why: String,
    },
    #[error(
        "{field} {value:?} of port {port:?} is already used by port {other:?} on switch {switch:?}"
    )]
    AddressInUse {
        field: &'static str,
        value: String,
        port: String,
        other: String,
        switch: String,
    },
    #[error("{0} {1:?} already exists")]
    Exists(&'static str, String),
    #[error("{0} {1:?} does not exist")]
    Missing(&'static str, String),
    #[error("{table} {record:?}: {why}")]
    Db {
        table: &'static str,
        record: String,
        why: String,
    },
    #[error("empty operation")]
    EmptyOp,
    #[error("no free tunnel key left in {0}")]
    KeysExhausted(&'static str),
}

/// Largest datapath tunnel key (24-bit VNI).
pub const MAX_DP_KEY: u32 = 0x00ff_ffff;
/// Largest unicast port key (15 bits, as in OVN's Geneve option).
pub const MAX_PORT_KEY: u32 = 0x7fff;

/// One parsed `addresses` / `port_security` entry: a MAC and its IPs (with prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrEntry {
    pub mac: u64,
    pub ips: Vec<IpNet>,
}

/// A parsed `addresses` column: entries plus whether "unknown" was listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    pub entries: Vec<AddrEntry>,
    pub unknown: bool,
    /// "router": the addresses of the router port this switch port attaches to.
    pub router: bool,
}

/// Parses an `addresses` or `port_security` column. `allow_prefix` permits
/// `IP/len` (port security accepts networks; addresses take host IPs).
pub fn parse_addresses(
    field: &'static str,
    list: &[String],
    allow_prefix: bool,
) -> Result<Addresses, NbError> {
    let mut out = Addresses::default();
    for item in list {
        let item = item.trim();
        if item == "unknown" && !allow_prefix {
            out.unknown = true;
            continue;
        }
        if item == "router" && !allow_prefix {
            out.router = true;
            continue;
        }
        if !allow_prefix && request(item).is_some() {
            // Assigned by northd; what it assigned is in dynamic_addresses.
            continue;
        }
        let mut words = item.split_whitespace();
        let bad = |why: &str| NbError::BadValue {
            field,
            value: item.to_string(),
            why: why.to_string(),
        };
        let mac_s = words.next().ok_or_else(|| bad("empty entry"))?;
        let mac =
            parse_mac(mac_s).ok_or_else(|| bad(&format!("{mac_s:?} is not a MAC address")))?;
        if mac & (1 << 40) != 0 {
            return Err(bad(&format!("{mac_s} is a multicast MAC")));
        }
        if mac == 0 {
            return Err(bad("the all-zero MAC is not a port address"));
        }
        let mut ips = Vec::new();
        for w in words {
            let net = if w.contains('/') {
                if !allow_prefix {
                    return Err(bad(&format!("{w:?}: give host addresses without a prefix")));
                }
                w.parse::<IpNet>()
                    .map_err(|_| bad(&format!("{w:?} is not an IP network")))?
            } else {
                IpNet::from(
                    w.parse::<IpAddr>()
                        .map_err(|_| bad(&format!("{w:?} is not an IP address")))?,
                )
            };
            if ips.contains(&net) {
                return Err(bad(&format!("{w} is listed twice")));
            }
            ips.push(net);
        }
        out.entries.push(AddrEntry { mac, ips });
    }
    Ok(out)
}

pub(crate) fn check_name(name: &str) -> Result<(), NbError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
        && !name.starts_with('_');
    if ok {
        Ok(())
    } else {
        Err(NbError::BadName(name.to_string()))
    }
}

/// The northbound database contents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Nb {
    pub switches: BTreeMap<String, LogicalSwitch>,
    pub ports: BTreeMap<String, LogicalSwitchPort>,
    pub routers: BTreeMap<String, LogicalRouter>,
    pub router_ports: BTreeMap<String, LogicalRouterPort>,
    /// Static routes by [`crate::nb::router::route_key`].
    pub routes: BTreeMap<String, StaticRoute>,
    pub load_balancers: BTreeMap<String, LoadBalancer>,
    /// NAT rules by [`crate::nb::lb::nat_key`].
    pub nats: BTreeMap<String, NatRule>,
    /// ACLs by [`crate::nb::acl::acl_key`].
    pub acls: BTreeMap<String, pb::Acl>,
    /// DNS records by [`crate::nb::dns::dns_key`].
    pub dns: BTreeMap<String, pb::DnsRecord>,
    /// DHCPv4 options by id.
    pub dhcp_options: BTreeMap<String, pb::DhcpOptions>,
}

/// The addresses item asking for a dynamic assignment.
pub const DYNAMIC: &str = "dynamic";

/// What one `addresses` item asks of IPAM: `None` when it is not a dynamic
/// request, `Some(None)` for `dynamic`, `Some(Some(mac))` for `MAC dynamic`.
pub fn request(item: &str) -> Option<Option<u64>> {
    let mut w = item.split_whitespace();
    match (w.next(), w.next(), w.next()) {
        (Some(DYNAMIC), None, None) => Some(None),
        (Some(mac), Some(DYNAMIC), None) => parse_mac(mac).map(Some),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use switchyard_southbound::pb::nb_op::Op;

    pub(crate) fn op(o: Op) -> pb::NbOp {
        pb::NbOp {
            op: Some(o),
            ..Default::default()
        }
    }
    pub(crate) fn txn(ops: Vec<Op>) -> pb::TransactRequest {
        pb::TransactRequest {
            ops: ops.into_iter().map(op).collect(),
            ..Default::default()
        }
    }
    pub(crate) fn ls(name: &str, subnet: &str) -> Op {
        Op::LsAdd(LogicalSwitch {
            name: name.into(),
            subnet: subnet.into(),
            ..Default::default()
        })
    }
    pub(crate) fn lsp(name: &str, sw: &str, addr: &str) -> Op {
        Op::LspAdd(LogicalSwitchPort {
            name: name.into(),
            switch_name: sw.into(),
            addresses: vec![addr.into()],
            enabled: true,
            ..Default::default()
        })
    }
}
