//! A logical switch's other_config: the keys Switchyard knows, each checked
//! on write, and what they mean to the compiler.

use crate::nb::NbError;
use switchyard_southbound::pb;

/// The Logical_Switch other_config keys Switchyard knows. Others are refused,
/// not kept: a misspelt key would otherwise be silently ignored.
pub const SWITCH_CONFIG_KEYS: [&str; 3] = ["ct-zone-limit", "dns_domain", "exclude_ips"];

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
