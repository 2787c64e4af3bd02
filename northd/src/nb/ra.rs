//! A router port's `ipv6_ra_configs` (OVN's column of the same name): the
//! router advertisements it answers router solicitations with, so a host
//! on the attached switch configures itself by SLAAC (or learns to ask
//! DHCPv6). Checked on write; every key known or refused.

use crate::nb::NbError;
use std::collections::HashMap;
use std::net::Ipv6Addr;

/// The keys Switchyard knows. OVN's `send_periodic`, `max_interval`,
/// `min_interval`, `dnssl` and `route_info` are refused by name rather than
/// ignored: Switchyard answers solicitations and sends no unsolicited RAs.
pub const RA_KEYS: [&str; 4] = ["address_mode", "mtu", "rdnss", "router_preference"];

/// What the M and O flags and the prefixes' A flag say (RFC 4861 4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressMode {
    /// Hosts form addresses from the prefixes (A), no DHCPv6.
    Slaac,
    /// Addresses from DHCPv6 (M and O), prefixes on-link only.
    Dhcpv6Stateful,
    /// SLAAC addresses, other configuration from DHCPv6 (O).
    Dhcpv6Stateless,
}

impl AddressMode {
    pub fn name(self) -> &'static str {
        match self {
            AddressMode::Slaac => "slaac",
            AddressMode::Dhcpv6Stateful => "dhcpv6_stateful",
            AddressMode::Dhcpv6Stateless => "dhcpv6_stateless",
        }
    }
}

/// A parsed `ipv6_ra_configs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaConfig {
    pub mode: AddressMode,
    /// The MTU option; `None`: no option (hosts keep the link's).
    pub mtu: Option<u32>,
    /// "HIGH", "MEDIUM" (default) or "LOW" (RFC 4191).
    pub preference: &'static str,
    /// Recursive DNS servers (RFC 8106).
    pub rdnss: Vec<Ipv6Addr>,
}

/// The router lifetime advertised. With no unsolicited advertisements the
/// default route a host learns must not expire while it has no reason to
/// solicit again: the largest lifetime RFC 8319 allows (about 18 hours).
pub const ROUTER_LIFETIME: u32 = 65535;

fn bad(field: &'static str, value: &str, why: impl Into<String>) -> NbError {
    NbError::BadValue {
        field,
        value: value.to_string(),
        why: why.into(),
    }
}

/// Parses and checks a port's `ipv6_ra_configs`; `None` when it is empty
/// (the port sends no advertisements).
pub fn parse_ra_configs(c: &HashMap<String, String>) -> Result<Option<RaConfig>, NbError> {
    if c.is_empty() {
        return Ok(None);
    }
    for k in c.keys() {
        if !RA_KEYS.contains(&k.as_str()) {
            return Err(bad(
                "ipv6_ra_configs key",
                k,
                format!(
                    "not one Switchyard knows ({}); periodic advertisements are not sent",
                    RA_KEYS.join(", ")
                ),
            ));
        }
    }
    let mode = match c.get("address_mode").map(String::as_str) {
        Some("slaac") => AddressMode::Slaac,
        Some("dhcpv6_stateful") => AddressMode::Dhcpv6Stateful,
        Some("dhcpv6_stateless") => AddressMode::Dhcpv6Stateless,
        Some(v) => {
            return Err(bad(
                "ipv6_ra_configs:address_mode",
                v,
                "one of slaac, dhcpv6_stateful, dhcpv6_stateless",
            ))
        }
        None => {
            return Err(bad(
                "ipv6_ra_configs",
                "",
                "address_mode is required (slaac, dhcpv6_stateful or dhcpv6_stateless)",
            ))
        }
    };
    let mtu = match c.get("mtu") {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .ok()
                .filter(|m| (1280..=9000).contains(m))
                .ok_or_else(|| {
                    bad(
                        "ipv6_ra_configs:mtu",
                        v,
                        "an MTU from 1280 (IPv6's minimum) to 9000",
                    )
                })?,
        ),
    };
    let preference = match c.get("router_preference").map(String::as_str) {
        None | Some("MEDIUM") => "MEDIUM",
        Some("HIGH") => "HIGH",
        Some("LOW") => "LOW",
        Some(v) => {
            return Err(bad(
                "ipv6_ra_configs:router_preference",
                v,
                "HIGH, MEDIUM or LOW",
            ))
        }
    };
    let mut rdnss = Vec::new();
    if let Some(v) = c.get("rdnss") {
        for a in v.split([',', ' ']).filter(|s| !s.is_empty()) {
            let ip: Ipv6Addr = a.parse().map_err(|_| {
                bad(
                    "ipv6_ra_configs:rdnss",
                    v,
                    "IPv6 addresses separated by commas",
                )
            })?;
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(bad("ipv6_ra_configs:rdnss", a, "a unicast IPv6 address"));
            }
            rdnss.push(ip);
        }
        if rdnss.is_empty() || rdnss.len() > 8 {
            return Err(bad(
                "ipv6_ra_configs:rdnss",
                v,
                "one to eight IPv6 addresses",
            ));
        }
    }
    Ok(Some(RaConfig {
        mode,
        mtu,
        preference,
        rdnss,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn configs_are_parsed_and_checked() {
        assert_eq!(parse_ra_configs(&cfg(&[])).unwrap(), None);
        let c = parse_ra_configs(&cfg(&[
            ("address_mode", "slaac"),
            ("mtu", "1400"),
            ("rdnss", "fd00::53,fd00::54"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.mode, AddressMode::Slaac);
        assert_eq!(c.mtu, Some(1400));
        assert_eq!(c.preference, "MEDIUM");
        assert_eq!(c.rdnss.len(), 2);
        for bad in [
            vec![("mtu", "1400")],
            vec![("address_mode", "auto")],
            vec![("address_mode", "slaac"), ("mtu", "1000")],
            vec![("address_mode", "slaac"), ("send_periodic", "true")],
            vec![("address_mode", "slaac"), ("router_preference", "high")],
            vec![("address_mode", "slaac"), ("rdnss", "10.0.0.1")],
            vec![("address_mode", "slaac"), ("rdnss", "ff02::1")],
            vec![("address_mode", "slaac"), ("rdnss", ",")],
        ] {
            let e = parse_ra_configs(&cfg(&bad));
            assert!(e.is_err(), "{bad:?} accepted: {e:?}");
        }
        let e = parse_ra_configs(&cfg(&[("address_mode", "slaac"), ("max_interval", "6")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("address_mode, mtu, rdnss, router_preference"),
            "{e}"
        );
    }
}
