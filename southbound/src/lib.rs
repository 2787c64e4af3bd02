//! The southbound contract: generated protobuf/gRPC types shared by northd, every
//! vswitchd and syctl, plus the typed vocabulary on top of them (pipeline stages,
//! match fields, drop reasons) that both sides must agree on.
#![forbid(unsafe_code)]

pub mod config;
pub mod display;
pub mod field;
pub mod metrics;
pub mod nb_tables;
pub mod stage;
pub mod tls;

pub mod pb {
    //! Generated from `proto/switchyard.proto`.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("switchyard.v1");
}

pub use field::{DropReason, Field};

/// A transaction of `ops`, each under the request's `may_exist` / `if_exists`.
pub fn transaction(
    ops: Vec<pb::nb_op::Op>,
    may_exist: bool,
    if_exists: bool,
) -> pb::TransactRequest {
    pb::TransactRequest {
        ops: ops
            .into_iter()
            .map(|o| pb::NbOp {
                op: Some(o),
                ..Default::default()
            })
            .collect(),
        may_exist,
        if_exists,
    }
}
pub use stage::{Pipeline, Stage};

use pb::{sb_row::Row, SbDelta, SbRow, SbSnapshot};
use std::collections::BTreeMap;

/// The neighbour address of a learned binding: IPv6 when `ip6` holds one.
pub fn mac_binding_ip(m: &pb::MacBinding) -> std::net::IpAddr {
    match <[u8; 16]>::try_from(m.ip6.as_slice()) {
        Ok(a) => std::net::Ipv6Addr::from(a).into(),
        Err(_) => std::net::Ipv4Addr::from(m.ip).into(),
    }
}

/// The row key of a learned binding (`mb/DP/PORT/IP`; an IPv4 address as
/// its number, as it always was, an IPv6 one as text).
pub fn mac_binding_key(m: &pb::MacBinding) -> String {
    match mac_binding_ip(m) {
        std::net::IpAddr::V6(a) => format!("mb/{}/{}/{a}", m.datapath, m.logical_port),
        std::net::IpAddr::V4(_) => format!("mb/{}/{}/{}", m.datapath, m.logical_port, m.ip),
    }
}

/// The key that identifies a southbound row across snapshots and deltas.
pub fn row_key(row: &SbRow) -> String {
    match &row.row {
        Some(Row::Chassis(c)) => format!("chassis/{}", c.name),
        Some(Row::Datapath(d)) => format!("dp/{}", d.tunnel_key),
        Some(Row::PortBinding(p)) => format!("pb/{}", p.logical_port),
        Some(Row::MulticastGroup(m)) => format!("mc/{}/{}", m.datapath, m.tunnel_key),
        Some(Row::Flow(f)) => format!("lf/{:016x}", flow_hash(f)),
        Some(Row::MacBinding(m)) => mac_binding_key(m),
        Some(Row::LoadBalancer(l)) => format!("lb/{}", l.name),
        Some(Row::Nat(n)) => format!("nat/{}/{}/{}", n.router, n.r#type, n.external_ip),
        Some(Row::Dns(d)) => format!("dns/{}/{}", d.datapath, d.name),
        Some(Row::Dhcp(d)) => format!("dhcp/{}", d.logical_port),
        None => String::from("none"),
    }
}

/// A content hash of a logical flow, used as its identity: two flows with the same
/// datapath, stage, priority, match and actions are the same flow.
pub fn flow_hash(f: &pb::LogicalFlow) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (f.datapath, &f.pipeline, &f.stage, f.priority).hash(&mut h);
    for m in &f.matches {
        (&m.field, m.value, m.mask).hash(&mut h);
    }
    display::actions_text(&f.actions).hash(&mut h);
    h.finish()
}

/// Every row of a snapshot (the inverse of [`push_row`]).
pub fn snapshot_rows(s: SbSnapshot) -> impl Iterator<Item = SbRow> {
    let SbSnapshot {
        chassis,
        datapaths,
        port_bindings,
        multicast_groups,
        flows,
        mac_bindings,
        load_balancers,
        nats,
        dns,
        dhcp,
        ..
    } = s;
    chassis
        .into_iter()
        .map(Row::Chassis)
        .chain(datapaths.into_iter().map(Row::Datapath))
        .chain(port_bindings.into_iter().map(Row::PortBinding))
        .chain(multicast_groups.into_iter().map(Row::MulticastGroup))
        .chain(flows.into_iter().map(Row::Flow))
        .chain(mac_bindings.into_iter().map(Row::MacBinding))
        .chain(load_balancers.into_iter().map(Row::LoadBalancer))
        .chain(nats.into_iter().map(Row::Nat))
        .chain(dns.into_iter().map(Row::Dns))
        .chain(dhcp.into_iter().map(Row::Dhcp))
        .map(row)
}

/// Adds one row to the table of a snapshot it belongs in.
pub fn push_row(s: &mut SbSnapshot, r: SbRow) {
    match r.row {
        Some(Row::Chassis(c)) => s.chassis.push(c),
        Some(Row::Datapath(x)) => s.datapaths.push(x),
        Some(Row::PortBinding(x)) => s.port_bindings.push(x),
        Some(Row::MulticastGroup(x)) => s.multicast_groups.push(x),
        Some(Row::Flow(x)) => s.flows.push(x),
        Some(Row::MacBinding(x)) => s.mac_bindings.push(x),
        Some(Row::LoadBalancer(x)) => s.load_balancers.push(x),
        Some(Row::Nat(x)) => s.nats.push(x),
        Some(Row::Dns(x)) => s.dns.push(x),
        Some(Row::Dhcp(x)) => s.dhcp.push(x),
        None => {}
    }
}

/// Applies a delta to a snapshot (what a chassis does); used by tests and clients.
pub fn apply_delta(snap: &mut SbSnapshot, d: &SbDelta) {
    let mut s = std::mem::take(snap);
    let nb_version = s.nb_version;
    let epoch = std::mem::take(&mut s.epoch);
    let mut rows: BTreeMap<String, SbRow> = snapshot_rows(s).map(|r| (row_key(&r), r)).collect();
    for k in &d.deletes {
        rows.remove(k);
    }
    for r in &d.upserts {
        rows.insert(row_key(r), r.clone());
    }
    let mut out = SbSnapshot {
        version: d.version,
        nb_version: nb_version.max(d.nb_version),
        epoch,
        ..Default::default()
    };
    for r in rows.into_values() {
        push_row(&mut out, r);
    }
    *snap = out;
}

/// Applies in place a delta that touches only load balancer rows (services
/// come and go far more often than anything else): the work is proportional to
/// the change, not to the snapshot. Returns false, changing nothing, for any
/// other delta ([`apply_delta`] then).
pub fn apply_lb_delta(snap: &mut SbSnapshot, d: &SbDelta) -> bool {
    let lb_only = d
        .upserts
        .iter()
        .all(|r| matches!(r.row, Some(Row::LoadBalancer(_))))
        && d.deletes.iter().all(|k| k.starts_with("lb/"));
    if !lb_only {
        return false;
    }
    let gone: std::collections::HashSet<&str> = d.deletes.iter().map(|k| &k[3..]).collect();
    if !gone.is_empty() {
        snap.load_balancers
            .retain(|l| !gone.contains(l.name.as_str()));
    }
    for r in &d.upserts {
        if let Some(Row::LoadBalancer(l)) = &r.row {
            match snap.load_balancers.iter_mut().find(|x| x.name == l.name) {
                Some(x) => *x = l.clone(),
                None => snap.load_balancers.push(l.clone()),
            }
        }
    }
    snap.version = d.version;
    snap.nb_version = snap.nb_version.max(d.nb_version);
    true
}

fn row(r: Row) -> SbRow {
    SbRow { row: Some(r) }
}

/// Largest gRPC message either side accepts: a snapshot or a transaction with
/// 100,000 load balancer VIPs is a few MB, past tonic's 4 MB default.
pub const MAX_MESSAGE: usize = 256 << 20;

/// Multicast group keys, as in OVN: fixed keys above the unicast port range.
pub const MC_FLOOD_KEY: u32 = 0x8000;
/// Ports that accept unknown unicast destinations (addresses "unknown").
pub const MC_UNKNOWN_KEY: u32 = 0x8001;
/// Port keys at or above this are multicast groups.
pub const MC_FIRST_KEY: u32 = 0x8000;

/// Most field comparisons one logical flow may have: vswitchd's classifier
/// refuses longer flows, so northd never writes one.
pub const MAX_MATCH_FIELDS: usize = 10;

/// Parses "aa:bb:cc:dd:ee:ff" into a 48-bit integer.
pub fn parse_mac(s: &str) -> Option<u64> {
    let mut v = 0u64;
    let mut n = 0;
    for part in s.split(':') {
        if part.len() != 2 {
            return None;
        }
        v = (v << 8) | u64::from(u8::from_str_radix(part, 16).ok()?);
        n += 1;
    }
    (n == 6).then_some(v)
}

/// Formats a 48-bit MAC.
pub fn fmt_mac(v: u64) -> String {
    let b = v.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancer_deltas_apply_in_place_like_the_general_path() {
        let lb = |name: &str, port: u32| {
            row(Row::LoadBalancer(pb::SbLoadBalancer {
                name: name.into(),
                protocol: 6,
                vips: vec![pb::SbVip {
                    ip: 1,
                    port,
                    backends: vec![],
                }],
                ..Default::default()
            }))
        };
        let mut base = SbSnapshot::default();
        for r in [lb("a", 1), lb("b", 2), lb("c", 3)] {
            push_row(&mut base, r);
        }
        base.chassis.push(pb::Chassis {
            name: "ch1".into(),
            ..Default::default()
        });
        let d = SbDelta {
            version: 7,
            upserts: vec![lb("b", 20), lb("d", 4)],
            deletes: vec!["lb/a".into()],
            nb_version: 3,
        };
        let mut fast = base.clone();
        assert!(apply_lb_delta(&mut fast, &d));
        let mut slow = base.clone();
        apply_delta(&mut slow, &d);
        fast.load_balancers.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(fast, slow);
        assert_eq!(fast.nb_version, 3, "both paths take the delta's NB version");
        // Anything else is left to the general path.
        let other = SbDelta {
            version: 8,
            upserts: vec![lb("e", 5)],
            deletes: vec!["chassis/ch1".into()],
            nb_version: 4,
        };
        assert!(!apply_lb_delta(&mut fast, &other));
        assert_eq!(fast.version, 7);
    }

    #[test]
    fn mac_round_trip() {
        let m = parse_mac("0a:00:00:00:01:ff").unwrap();
        assert_eq!(m, 0x0a00_0000_01ff);
        assert_eq!(fmt_mac(m), "0a:00:00:00:01:ff");
        assert_eq!(parse_mac("0a:00:00:00:01"), None);
        assert_eq!(parse_mac("0a:00:00:00:01:fg"), None);
        assert_eq!(parse_mac("0a:00:00:00:01:ff:00"), None);
        assert_eq!(parse_mac("a:00:00:00:01:ff"), None);
    }
}
