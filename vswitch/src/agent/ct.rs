//! Conntrack dumps for the control socket, made on the PMD thread (which owns
//! the table) between batches.

use crate::conntrack::{ConnState, Tuple};
use crate::control::{ConnInfo, CtStatsInfo};
use crate::edge::EdgeState;

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        n => n.to_string(),
    }
}

fn tuple_text(t: &Tuple) -> String {
    use std::net::Ipv4Addr;
    format!(
        "{}:{} -> {}:{}",
        Ipv4Addr::from(t.src),
        t.sport,
        Ipv4Addr::from(t.dst),
        t.dport
    )
}

/// Every connection (of one zone), oldest slot first.
pub fn list(e: &EdgeState, zone: Option<u32>) -> Vec<ConnInfo> {
    e.ct.iter()
        .filter(|c| zone.is_none_or(|z| c.orig.zone == z))
        .map(|c| ConnInfo {
            zone: c.orig.zone,
            proto: proto_name(c.orig.proto),
            orig: tuple_text(&c.orig),
            reply: tuple_text(&c.reply),
            state: c.state.name().into(),
            nat: c.reply != c.orig.reverse(),
            packets_orig: c.packets[0],
            packets_reply: c.packets[1],
            idle_ms: e.now_ms.saturating_sub(c.last_ms),
            mark: c.mark,
            label: c.label,
        })
        .collect()
}

/// Counters and entries by state.
pub fn stats(e: &EdgeState) -> CtStatsInfo {
    let s = e.ct.stats;
    let mut by_state: std::collections::BTreeMap<String, u64> = [
        ConnState::TcpSynSent,
        ConnState::TcpSynRecv,
        ConnState::TcpEstablished,
        ConnState::TcpUnconfirmed,
        ConnState::TcpClosing,
        ConnState::TcpTimeWait,
        ConnState::First,
        ConnState::Multiple,
    ]
    .iter()
    .map(|st| (st.name().to_string(), 0))
    .collect();
    for c in e.ct.iter() {
        *by_state.entry(c.state.name().to_string()).or_default() += 1;
    }
    CtStatsInfo {
        entries: e.ct.len() as u64,
        capacity: e.ct.capacity() as u64,
        inserts: s.inserts,
        inserts_per_second: 0.0,
        full_drops: s.full_drops,
        invalid: s.invalid,
        expired: s.expired,
        rst_ignored: s.rst_ignored,
        nat_collisions: s.nat_collisions,
        early_drops: s.early_drops,
        pickups: s.pickups,
        zone_limit_drops: s.zone_limit_drops,
        closed_reused: s.closed_reused,
        zone_limits: {
            let mut z: Vec<_> =
                e.ct.zone_limits()
                    .map(|(zone, l)| crate::control::ZoneLimitInfo {
                        zone,
                        limit: l.limit,
                        count: l.count,
                    })
                    .collect();
            z.sort_by_key(|z| z.zone);
            z
        },
        by_state,
    }
}
