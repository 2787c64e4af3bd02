//! DHCPv4 options (OVN's DHCP_Options): rows of a subnet's options that
//! switch ports point at (`dhcpv4_options`), validated here on write, and
//! compiled into one `SbDhcp` row and one `ls_in_dhcp` flow per port that
//! has options and an IPv4 address inside their CIDR: the datapath answers
//! that port's DISCOVER, REQUEST and INFORM with its own address.

use crate::nb::{Nb, NbError};
use ipnet::{IpNet, Ipv4Net};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use switchyard_southbound::parse_mac;
use switchyard_southbound::pb::{self, DhcpOptions};

/// The options Switchyard knows (OVN's names); the first three are required.
pub const KEYS: [&str; 8] = [
    "server_id",
    "server_mac",
    "lease_time",
    "router",
    "dns_server",
    "mtu",
    "domain_name",
    "netmask",
];

fn bad(field: &'static str, value: &str, why: &str) -> NbError {
    NbError::BadValue {
        field,
        value: value.to_string(),
        why: why.to_string(),
    }
}

fn ip4(field: &'static str, v: &str) -> Result<Ipv4Addr, NbError> {
    v.trim()
        .parse()
        .map_err(|_| bad(field, v, "not an IPv4 address"))
}

/// `dns_server`: one address, or OVN's `{a, b}` (commas or spaces).
fn dns_servers(v: &str) -> Result<Vec<Ipv4Addr>, NbError> {
    let list: Vec<&str> = v
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() || list.len() > 8 {
        return Err(bad("dns_server", v, "1 to 8 IPv4 addresses"));
    }
    list.iter().map(|a| ip4("dns_server", a)).collect()
}

/// Options as the datapath uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub net: Ipv4Net,
    pub server_id: Ipv4Addr,
    pub server_mac: u64,
    pub lease_time: u32,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub mtu: u32,
    pub domain_name: String,
    pub netmask: Ipv4Addr,
}

/// Validates a row.
pub fn parse(cidr: &str, o: &HashMap<String, String>) -> Result<Parsed, NbError> {
    let net = match cidr.trim().parse::<IpNet>() {
        Ok(IpNet::V4(n)) if n.prefix_len() <= 30 => n.trunc(),
        _ => return Err(bad("cidr", cidr, "an IPv4 network of /30 or wider")),
    };
    for k in o.keys() {
        if !KEYS.contains(&k.as_str()) {
            return Err(bad(
                "options key",
                k,
                &format!("not a DHCPv4 option Switchyard knows ({})", KEYS.join(", ")),
            ));
        }
    }
    let need = |k: &'static str| {
        o.get(k)
            .ok_or_else(|| bad("options", k, "required (server_id, server_mac, lease_time)"))
    };
    let server_mac = need("server_mac")?;
    let lease = need("lease_time")?;
    let lease_time = lease
        .parse::<u32>()
        .ok()
        .filter(|l| (60..=u32::MAX - 1).contains(l))
        .ok_or_else(|| bad("lease_time", lease, "seconds, at least 60"))?;
    let mtu = match o.get("mtu") {
        None => 0,
        Some(m) => m
            .parse::<u32>()
            .ok()
            .filter(|m| (68..=9000).contains(m))
            .ok_or_else(|| bad("mtu", m, "68 to 9000"))?,
    };
    let domain_name = match o.get("domain_name") {
        None => String::new(),
        Some(d) => crate::nb::dns::normalize_name("domain_name", d.trim_matches('"'))?,
    };
    let netmask = match o.get("netmask") {
        None => net.netmask(),
        Some(m) => {
            let a = ip4("netmask", m)?;
            if u32::from(a).leading_ones() + u32::from(a).trailing_zeros() != 32 {
                return Err(bad("netmask", m, "not a contiguous mask"));
            }
            a
        }
    };
    Ok(Parsed {
        net,
        server_id: ip4("server_id", need("server_id")?)?,
        server_mac: parse_mac(server_mac)
            .ok_or_else(|| bad("server_mac", server_mac, "not a MAC address"))?,
        lease_time,
        router: o.get("router").map(|r| ip4("router", r)).transpose()?,
        dns: o
            .get("dns_server")
            .map(|d| dns_servers(d))
            .transpose()?
            .unwrap_or_default(),
        mtu,
        domain_name,
        netmask,
    })
}

impl Nb {
    pub(crate) fn dhcp_options_add(
        &mut self,
        d: &DhcpOptions,
        may_exist: bool,
    ) -> Result<(), NbError> {
        crate::nb::check_name(&d.id)?;
        parse(&d.cidr, &d.options)?;
        if self.dhcp_options.contains_key(&d.id) && !may_exist {
            return Err(NbError::Exists("DHCP options", d.id.clone()));
        }
        self.dhcp_options.insert(d.id.clone(), d.clone());
        Ok(())
    }

    pub(crate) fn dhcp_options_set(&mut self, c: &pb::SetConfig) -> Result<(), NbError> {
        let mut row = self
            .dhcp_options
            .get(&c.record)
            .ok_or_else(|| NbError::Missing("DHCP options", c.record.clone()))?
            .clone();
        row.options = c.config.clone();
        parse(&row.cidr, &row.options)?;
        self.dhcp_options.insert(row.id.clone(), row);
        Ok(())
    }

    /// Deletes a row; the ports that used it lose their DHCP (OVN's weak reference).
    pub(crate) fn dhcp_options_del(&mut self, id: &str, if_exists: bool) -> Result<(), NbError> {
        if self.dhcp_options.remove(id).is_none() {
            if if_exists {
                return Ok(());
            }
            return Err(NbError::Missing("DHCP options", id.to_string()));
        }
        for p in self.ports.values_mut() {
            if p.dhcpv4_options == id {
                p.dhcpv4_options.clear();
            }
        }
        Ok(())
    }

    pub(crate) fn lsp_set_dhcpv4_options(&mut self, s: &pb::SetDhcpOptions) -> Result<(), NbError> {
        if !s.id.is_empty() && !self.dhcp_options.contains_key(&s.id) {
            return Err(NbError::Missing("DHCP options", s.id.clone()));
        }
        let p = self
            .ports
            .get_mut(&s.port)
            .ok_or_else(|| NbError::NoSuchPort(s.port.clone()))?;
        p.dhcpv4_options = s.id.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_southbound::pb::nb_op::Op;

    fn opts(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn good() -> HashMap<String, String> {
        opts(&[
            ("server_id", "10.0.0.1"),
            ("server_mac", "0a:00:00:00:00:fe"),
            ("lease_time", "3600"),
            ("router", "10.0.0.1"),
            ("dns_server", "{10.0.0.53, 10.0.0.54}"),
            ("mtu", "1400"),
        ])
    }

    #[test]
    fn options_are_validated_with_their_reason() {
        let p = parse("10.0.0.0/24", &good()).unwrap();
        assert_eq!(p.dns.len(), 2);
        assert_eq!(p.netmask, Ipv4Addr::new(255, 255, 255, 0));
        for (cidr, change) in [
            ("10.0.0.0/31", None),
            ("fd00::/64", None),
            ("10.0.0.0/24", Some(("lease_time", "5"))),
            ("10.0.0.0/24", Some(("mtu", "20000"))),
            ("10.0.0.0/24", Some(("server_mac", "nope"))),
            ("10.0.0.0/24", Some(("router", "10.0.0.300"))),
            ("10.0.0.0/24", Some(("netmask", "255.0.255.0"))),
            ("10.0.0.0/24", Some(("bogus", "1"))),
        ] {
            let mut o = good();
            if let Some((k, v)) = change {
                o.insert(k.into(), v.into());
            }
            assert!(parse(cidr, &o).is_err(), "{cidr} {change:?}");
        }
        let mut o = good();
        o.remove("server_id");
        assert!(parse("10.0.0.0/24", &o).is_err(), "server_id is required");
    }

    #[test]
    fn a_port_with_options_and_an_address_in_the_cidr_gets_a_row_and_a_flow() {
        let mut nb = Nb::default();
        let lsp = |name: &str, addr: &str| {
            Op::LspAdd(pb::LogicalSwitchPort {
                name: name.into(),
                switch_name: "ls0".into(),
                addresses: vec![addr.into()],
                enabled: true,
                ..Default::default()
            })
        };
        nb.apply_all(vec![
            Op::LsAdd(pb::LogicalSwitch {
                name: "ls0".into(),
                ..Default::default()
            }),
            lsp("p1", "0a:00:00:00:00:01 10.0.0.5"),
            lsp("p2", "0a:00:00:00:00:02 192.168.0.5"),
            Op::DhcpOptionsAdd(DhcpOptions {
                id: "d1".into(),
                cidr: "10.0.0.0/24".into(),
                options: good(),
                ..Default::default()
            }),
        ])
        .unwrap();
        let set = |port: &str, id: &str| {
            Op::LspSetDhcpv4Options(pb::SetDhcpOptions {
                port: port.into(),
                id: id.into(),
            })
        };
        assert!(nb.clone().apply_all(vec![set("p1", "nope")]).is_err());
        nb.apply_all(vec![set("p1", "d1"), set("p2", "d1")])
            .unwrap();
        let c = crate::compile::compile(&nb);
        assert_eq!(c.dhcp.len(), 1, "p2's address is outside the cidr");
        assert_eq!(c.dhcp[0].ip, u32::from(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(c.dhcp[0].mtu, 1400);
        let flows = c
            .flows
            .iter()
            .filter(|f| f.stage == "ls_in_dhcp" && f.priority == 100);
        assert_eq!(flows.count(), 1);
        // Deleting the options takes them off the ports.
        nb.apply_all(vec![Op::DhcpOptionsDel("d1".into())]).unwrap();
        assert!(nb.ports.values().all(|p| p.dhcpv4_options.is_empty()));
        assert!(crate::compile::compile(&nb).dhcp.is_empty());
    }
}
