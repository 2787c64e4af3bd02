//! Dynamic addresses, OVN's way: a switch port whose `addresses` says
//! `dynamic` (or `MAC dynamic`) gets a MAC and an IPv4 address from its
//! switch's subnet, chosen by northd inside the transaction that asks for it
//! and kept in the port's `dynamic_addresses`, so they are stored with the
//! port (a restart changes nothing) and two concurrent requests can never get
//! the same address (transactions are serial).
//!
//! Never handed out: the subnet's network and broadcast addresses, its first
//! host address (the gateway by convention, as in OVN-Kubernetes and the
//! sandbox), the switch's `other_config:exclude_ips` (`"10.0.0.9
//! 10.0.0.20..10.0.0.29"`), and every address a port of the switch holds
//! (static, dynamic, or the router port it attaches to). The MAC is
//! `0a:58:` and the IP's four bytes (OVN-Kubernetes' scheme), unless the
//! entry names one; without a subnet only a MAC is assigned (as OVN does).

use crate::nb::{parse_addresses, NbError};
use ipnet::Ipv4Net;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use switchyard_southbound::fmt_mac;
use switchyard_southbound::pb::LogicalSwitchPort;

pub use crate::nb::{request, DYNAMIC};

/// The port's dynamic request, if it makes one.
pub fn port_request(p: &LogicalSwitchPort) -> Option<Option<u64>> {
    p.addresses.iter().find_map(|a| request(a))
}

/// The `addresses` column as the switch uses it: a dynamic request replaced by
/// what was assigned (dropped while nothing is).
pub fn resolved(p: &LogicalSwitchPort) -> Vec<String> {
    p.addresses
        .iter()
        .filter_map(|a| match request(a) {
            None => Some(a.clone()),
            Some(_) if p.dynamic_addresses.is_empty() => None,
            Some(_) => Some(p.dynamic_addresses.clone()),
        })
        .collect()
}

/// Parses `other_config:exclude_ips`: addresses and `A..B` ranges, separated by spaces.
pub fn parse_exclude_ips(v: &str) -> Result<Vec<(Ipv4Addr, Ipv4Addr)>, NbError> {
    let bad = |why: String| NbError::BadValue {
        field: "other_config:exclude_ips",
        value: v.to_string(),
        why,
    };
    let mut out = Vec::new();
    for w in v.split_whitespace() {
        let (a, b) = w.split_once("..").unwrap_or((w, w));
        let (Ok(a), Ok(b)) = (a.parse::<Ipv4Addr>(), b.parse::<Ipv4Addr>()) else {
            return Err(bad(format!(
                "{w:?} is not an IPv4 address or a range such as 10.0.0.2..10.0.0.9"
            )));
        };
        if u32::from(a) > u32::from(b) {
            return Err(bad(format!("{w:?}: the range ends before it starts")));
        }
        out.push((a, b));
    }
    Ok(out)
}

fn derived_mac(ip: Ipv4Addr) -> u64 {
    (0x0a58u64 << 32) | u64::from(u32::from(ip))
}

/// Assigns, keeps or clears the `dynamic_addresses` of every port so that
/// each dynamic request holds a valid, unique assignment. Runs at the end of
/// every transaction, after all its ops (so static addresses written in the
/// same transaction are never handed out).
pub(crate) fn assign(nb: &mut crate::nb::Nb) -> Result<(), NbError> {
    let names: Vec<String> = nb.ports.keys().cloned().collect();
    for name in &names {
        let p = &nb.ports[name];
        if port_request(p).is_none() && !p.dynamic_addresses.is_empty() {
            nb.ports
                .get_mut(name)
                .expect("listed")
                .dynamic_addresses
                .clear();
        }
    }
    let switches: Vec<String> = nb
        .ports
        .values()
        .filter(|p| port_request(p).is_some())
        .map(|p| p.switch_name.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for sw in switches {
        assign_switch(nb, &sw)?;
    }
    Ok(())
}

fn assign_switch(nb: &mut crate::nb::Nb, sw: &str) -> Result<(), NbError> {
    let ls = nb
        .switches
        .get(sw)
        .ok_or_else(|| NbError::NoSuchSwitch(sw.to_string()))?;
    let subnet = ls.subnet.parse::<Ipv4Net>().ok();
    let exclude = match ls.other_config.get("exclude_ips") {
        Some(v) => parse_exclude_ips(v)?,
        None => Vec::new(),
    };
    let excluded = |ip: Ipv4Addr| {
        exclude
            .iter()
            .any(|(a, b)| (u32::from(*a)..=u32::from(*b)).contains(&u32::from(ip)))
    };
    // What the switch's ports hold, dynamic requests aside.
    let mut used_ips = HashSet::new();
    let mut used_macs = HashSet::new();
    let mut wanting = Vec::new();
    for p in nb.ports_of(sw) {
        if port_request(p).is_some() {
            wanting.push(p.name.clone());
            continue;
        }
        for e in effective_addresses(nb, p).entries {
            used_macs.insert(e.mac);
            for ip in e.ips {
                if let std::net::IpAddr::V4(v4) = ip.addr() {
                    used_ips.insert(v4);
                }
            }
        }
    }
    let usable = |ip: Ipv4Addr, used: &HashSet<Ipv4Addr>| match subnet {
        Some(n) => {
            let (first, last) = (u32::from(n.network()) + 1, u32::from(n.broadcast()));
            let v = u32::from(ip);
            n.prefix_len() <= 30 && v > first && v < last && !excluded(ip) && !used.contains(&ip)
        }
        None => false,
    };
    // Keep every assignment that is still valid, first, so that a new port
    // never takes an address from one that already has it.
    let mut fresh = Vec::new();
    for name in &wanting {
        let p = &nb.ports[name];
        let want_mac = port_request(p).flatten();
        let kept = parse_addresses(
            "dynamic_addresses",
            std::slice::from_ref(&p.dynamic_addresses),
            false,
        )
        .ok()
        .and_then(|a| a.entries.into_iter().next())
        .filter(|e| want_mac.is_none_or(|m| m == e.mac) && !used_macs.contains(&e.mac))
        .filter(|e| {
            let v4: Vec<Ipv4Addr> = e
                .ips
                .iter()
                .filter_map(|n| match n.addr() {
                    std::net::IpAddr::V4(a) => Some(a),
                    _ => None,
                })
                .collect();
            match subnet {
                Some(_) => v4.len() == 1 && usable(v4[0], &used_ips),
                None => v4.is_empty(),
            }
        });
        match kept {
            Some(e) => {
                used_macs.insert(e.mac);
                for ip in &e.ips {
                    if let std::net::IpAddr::V4(v4) = ip.addr() {
                        used_ips.insert(v4);
                    }
                }
            }
            None => fresh.push(name.clone()),
        }
    }
    for name in fresh {
        let want_mac = port_request(&nb.ports[&name]).flatten();
        let ip = match subnet {
            Some(n) => Some(n.hosts().find(|ip| usable(*ip, &used_ips)).ok_or_else(|| {
                NbError::BadValue {
                    field: "addresses",
                    value: DYNAMIC.into(),
                    why: format!(
                        "no free address left in switch {sw:?}'s subnet {n} for port {name:?}"
                    ),
                }
            })?),
            None => None,
        };
        let mac = want_mac
            .or_else(|| ip.map(derived_mac).filter(|m| !used_macs.contains(m)))
            .or_else(|| {
                (1u64..0xff_ffff)
                    .map(|k| (0x0a0000u64 << 24) | k)
                    .find(|m| !used_macs.contains(m))
            })
            .ok_or_else(|| NbError::BadValue {
                field: "addresses",
                value: DYNAMIC.into(),
                why: format!("no free MAC left on switch {sw:?}"),
            })?;
        used_macs.insert(mac);
        let text = match ip {
            Some(ip) => {
                used_ips.insert(ip);
                format!("{} {ip}", fmt_mac(mac))
            }
            None => fmt_mac(mac),
        };
        nb.ports.get_mut(&name).expect("listed").dynamic_addresses = text;
    }
    Ok(())
}

/// A switch port's addresses as the switch uses them: its own, or for a port of
/// type router the MAC and IPs of the router port it attaches to.
pub(crate) fn effective_addresses(
    nb: &crate::nb::Nb,
    p: &LogicalSwitchPort,
) -> crate::nb::Addresses {
    if let Some(lrp) = crate::nb::router::router_peer(nb, p) {
        let (Ok(mac), Ok(nets), Ok(nets6)) = (
            crate::nb::router::parse_lrp_mac(&lrp.mac),
            crate::nb::router::parse_networks(&lrp.networks),
            crate::nb::router::parse_networks6(&lrp.networks),
        ) else {
            return Default::default();
        };
        // The router port answers ARP for its addresses and for the NAT
        // external IPs in its networks (floating IPs, SNAT addresses), and
        // ND for its IPv6 addresses and its link-local one.
        let nat = nb.nat_external_ips_on(lrp);
        let v6 = nets6.iter().map(|n| n.addr());
        let link_local = (!nets6.is_empty()).then(|| crate::nb::router::link_local(mac));
        return crate::nb::Addresses {
            entries: vec![crate::nb::AddrEntry {
                mac,
                ips: nets
                    .iter()
                    .map(|n| n.addr())
                    .chain(nat)
                    .map(std::net::IpAddr::V4)
                    .chain(v6.chain(link_local).map(std::net::IpAddr::V6))
                    .map(ipnet::IpNet::from)
                    .collect(),
            }],
            ..Default::default()
        };
    }
    parse_addresses("addresses", &resolved(p), false).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nb::Nb;
    use switchyard_southbound::pb::{nb_op::Op, LogicalSwitch, SetAddresses};

    fn lsp(name: &str, addr: &str) -> Op {
        Op::LspAdd(LogicalSwitchPort {
            name: name.into(),
            switch_name: "ls0".into(),
            addresses: vec![addr.into()],
            enabled: true,
            ..Default::default()
        })
    }

    fn nb_with(exclude: Option<&str>, subnet: &str) -> Nb {
        let mut nb = Nb::default();
        let mut ls = LogicalSwitch {
            name: "ls0".into(),
            subnet: subnet.into(),
            ..Default::default()
        };
        if let Some(e) = exclude {
            ls.other_config.insert("exclude_ips".into(), e.into());
        }
        nb.apply_all(vec![Op::LsAdd(ls)]).unwrap();
        nb
    }

    #[test]
    fn skips_gateway_static_excluded_and_keeps_what_it_gave() {
        let mut nb = nb_with(Some("10.0.0.3..10.0.0.4"), "10.0.0.0/29");
        nb.apply_all(vec![
            lsp("s", "0a:00:00:00:00:01 10.0.0.2"),
            lsp("d1", "dynamic"),
        ])
        .unwrap();
        // .1 gateway, .2 static, .3-.4 excluded: .5.
        assert_eq!(
            nb.ports["d1"].dynamic_addresses,
            "0a:58:0a:00:00:05 10.0.0.5"
        );
        nb.apply_all(vec![lsp("d2", "dynamic")]).unwrap();
        assert_eq!(
            nb.ports["d2"].dynamic_addresses,
            "0a:58:0a:00:00:06 10.0.0.6"
        );
        assert_eq!(
            nb.ports["d1"].dynamic_addresses,
            "0a:58:0a:00:00:05 10.0.0.5"
        );
        // Full (.7 is the broadcast of a /29): a clear refusal, nothing written.
        let before = nb.clone();
        let e = nb
            .clone()
            .apply_all(vec![lsp("d3", "dynamic")])
            .unwrap_err();
        assert!(e.to_string().contains("no free address left"), "{e}");
        assert_eq!(nb, before);
        // A deleted port's address is free again.
        nb.apply_all(vec![Op::LspDel("d1".into()), lsp("d3", "dynamic")])
            .unwrap();
        assert_eq!(
            nb.ports["d3"].dynamic_addresses,
            "0a:58:0a:00:00:05 10.0.0.5"
        );
    }

    #[test]
    fn a_named_mac_is_kept_and_static_addresses_of_the_same_transaction_are_never_given() {
        let mut nb = nb_with(None, "10.0.0.0/24");
        nb.apply_all(vec![
            lsp("d", "0a:00:00:00:00:99 dynamic"),
            lsp("s", "0a:00:00:00:00:02 10.0.0.2"),
        ])
        .unwrap();
        assert_eq!(
            nb.ports["d"].dynamic_addresses,
            "0a:00:00:00:00:99 10.0.0.3"
        );
        assert_eq!(resolved(&nb.ports["d"]), vec!["0a:00:00:00:00:99 10.0.0.3"]);
        // Back to static: the assignment goes.
        nb.apply_all(vec![Op::LspSetAddresses(SetAddresses {
            port: "d".into(),
            addresses: vec!["0a:00:00:00:00:99 10.0.0.50".into()],
        })])
        .unwrap();
        assert!(nb.ports["d"].dynamic_addresses.is_empty());
    }

    #[test]
    fn no_subnet_gives_a_mac_only_and_bad_exclude_ips_are_refused() {
        let mut nb = nb_with(None, "");
        nb.apply_all(vec![lsp("d", "dynamic")]).unwrap();
        assert_eq!(nb.ports["d"].dynamic_addresses, "0a:00:00:00:00:01");
        for bad in ["10.0.0.9..10.0.0.2", "ten", "fd00::1"] {
            assert!(parse_exclude_ips(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_exclude_ips("10.0.0.2 10.0.0.5..10.0.0.9")
                .unwrap()
                .len(),
            2
        );
    }
}
