//! `syctl --wait=sb|hv`: what each chassis runs, and when a change has reached
//! the southbound database / every chassis's datapath (OVN's nb_cfg -> sb_cfg
//! -> hv_cfg).
//!
//! A chassis reports, after each SB update it applied and its PMD adopted, the
//! NB version of those contents, the SB version, and the SB version of its
//! latest port claim. A change at NB version N has reached every chassis when
//! each has reported N or later and each runs an SB version at least as new as
//! every chassis's latest claim: a port added at N is claimed by its chassis
//! while it applies N, and the others must have seen that claim to reach it.

use std::collections::BTreeMap;
use switchyard_southbound::pb;

/// What one chassis last said it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub nb_version: u64,
    pub sb_version: u64,
    pub claimed_sb: u64,
}

/// Wait levels, as `--wait` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Only report.
    None,
    /// Compiled into the SB.
    Sb,
    /// Running on every chassis.
    Hv,
}

impl Level {
    pub fn parse(s: &str) -> Result<Level, String> {
        match s {
            "" | "none" => Ok(Level::None),
            "sb" => Ok(Level::Sb),
            "hv" => Ok(Level::Hv),
            other => Err(format!("wait level {other:?}: none, sb or hv")),
        }
    }
}

/// The status against NB version `nb`: whether `level` is reached, and what
/// every registered chassis runs.
pub fn status(
    level: Level,
    nb: u64,
    committed: u64,
    sb: &crate::server::sb::Sb,
    applied: &BTreeMap<String, Applied>,
) -> pb::WaitReply {
    let hv_sb = applied.values().map(|a| a.claimed_sb).max().unwrap_or(0);
    let chassis: Vec<pb::ChassisApplied> = sb
        .chassis
        .keys()
        .map(|name| match applied.get(name) {
            Some(a) => pb::ChassisApplied {
                name: name.clone(),
                reported: true,
                nb_version: a.nb_version,
                sb_version: a.sb_version,
            },
            None => pb::ChassisApplied {
                name: name.clone(),
                ..Default::default()
            },
        })
        .collect();
    let compiled = sb.nb_version >= nb;
    let everywhere = chassis
        .iter()
        .all(|c| c.reported && c.nb_version >= nb && c.sb_version >= hv_sb);
    pb::WaitReply {
        done: match level {
            Level::None => true,
            Level::Sb => compiled,
            Level::Hv => compiled && everywhere,
        },
        nb_version: committed,
        sb_nb_version: sb.nb_version,
        sb_version: sb.version,
        hv_sb_version: hv_sb,
        chassis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chassis_must_run_the_version_and_see_every_claim() {
        let mut sb = crate::server::sb::Sb::default();
        sb.nb_version = 7;
        sb.version = 20;
        for c in ["ch1", "ch2"] {
            sb.chassis.insert(c.into(), Default::default());
        }
        let mut applied = BTreeMap::new();
        let done = |a: &BTreeMap<String, Applied>, l| status(l, 7, 7, &sb, a).done;
        assert!(done(&applied, Level::Sb));
        assert!(!done(&applied, Level::Hv), "nobody reported");
        let at = |nb, sb, claimed| Applied {
            nb_version: nb,
            sb_version: sb,
            claimed_sb: claimed,
        };
        applied.insert("ch1".to_string(), at(7, 19, 19));
        applied.insert("ch2".to_string(), at(6, 18, 0));
        assert!(!done(&applied, Level::Hv), "ch2 runs NB 6");
        applied.insert("ch2".to_string(), at(7, 18, 0));
        assert!(!done(&applied, Level::Hv), "ch2 has not seen ch1's claim");
        applied.insert("ch2".to_string(), at(7, 19, 0));
        assert!(done(&applied, Level::Hv));
        let r = status(Level::Hv, 8, 8, &sb, &applied);
        assert!(!r.done && !status(Level::Sb, 8, 8, &sb, &applied).done);
        assert_eq!(r.chassis.len(), 2);
        assert!(Level::parse("hv").is_ok() && Level::parse("all").is_err());
    }
}
