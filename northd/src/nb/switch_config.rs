//! A logical switch's other_config: the keys Switchyard knows, each checked
//! on write, and what they mean to the compiler.

use crate::nb::NbError;
use switchyard_southbound::pb;

/// The Logical_Switch other_config keys Switchyard knows. Others are refused,
/// not kept: a misspelt key would otherwise be silently ignored.
pub const SWITCH_CONFIG_KEYS: [&str; 4] = ["ct-zone-limit", "dns_domain", "exclude_ips", "mtu"];

/// The MTU range other_config:mtu accepts: IPv4's minimum to the largest
/// frame the datapath carries (jumbo, 9,000).
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 576..=9000;

pub(crate) fn check_other_config(
    c: &std::collections::HashMap<String, String>,
) -> Result<(), NbError> {
    for (k, v) in c {
        match k.as_str() {
            "ct-zone-limit" => {
                v.parse::<u32>().map_err(|_| NbError::BadValue {
                    field: "other_config:ct-zone-limit",
                    value: v.clone(),
                    why: "not a number of connections (0: no limit)".into(),
                })?;
            }
            "dns_domain" => {
                crate::nb::dns::normalize_name("other_config:dns_domain", v)?;
            }
            "exclude_ips" => {
                crate::nb::ipam::parse_exclude_ips(v)?;
            }
            "mtu" => {
                let ok = v.parse::<u32>().ok().filter(|m| MTU_RANGE.contains(m));
                ok.ok_or_else(|| NbError::BadValue {
                    field: "other_config:mtu",
                    value: v.clone(),
                    why: format!(
                        "not an MTU in bytes from {} to {}",
                        MTU_RANGE.start(),
                        MTU_RANGE.end()
                    ),
                })?;
            }
            _ => {
                return Err(NbError::BadValue {
                    field: "other_config key",
                    value: k.clone(),
                    why: format!(
                        "not one Switchyard knows ({})",
                        SWITCH_CONFIG_KEYS.join(", ")
                    ),
                })
            }
        }
    }
    Ok(())
}

/// A switch's conntrack limit (other_config:ct-zone-limit; 0: none).
pub fn ct_zone_limit(ls: &pb::LogicalSwitch) -> u32 {
    ls.other_config
        .get("ct-zone-limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A switch's MTU (other_config:mtu; 0: not set, the datapath does not check).
pub fn mtu(ls: &pb::LogicalSwitch) -> u32 {
    ls.other_config
        .get("mtu")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
