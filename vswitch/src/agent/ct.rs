//! Conntrack dumps for the control socket, made on the agent's side: the
//! shared table is copied a chunk of slots at a time, so each hold of its
//! lock lasts microseconds and no PMD stalls behind a dump of a million
//! entries (like OVS's dump, the result is not one atomic snapshot).

use crate::control::{ConnInfo, CtStatsInfo};
use crate::ct::conntrack::{Conn, ConnState, Tuple};
use crate::ct::edge::EdgeState;
use std::sync::Mutex;

/// Slots copied per hold of the lock.
const CHUNK: usize = 4096;

fn lock(edge: &Mutex<EdgeState>) -> std::sync::MutexGuard<'_, EdgeState> {
    edge.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `f` on every live connection with the table's clock, copying a
/// chunk at a time under the lock and calling `f` outside it.
fn walk(edge: &Mutex<EdgeState>, mut f: impl FnMut(&Conn, u64)) {
    let mut buf = Vec::with_capacity(CHUNK);
    let mut at = 0;
    loop {
        buf.clear();
        let (next, slots, now) = {
            let e = lock(edge);
            (e.ct.copy_slots(at, CHUNK, &mut buf), e.ct.slots(), e.now_ms)
        };
        for c in &buf {
            f(c, now);
        }
        if next >= slots || next == at {
            return;
        }
        at = next;
    }
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmp6".into(),
        n => n.to_string(),
    }
}

/// `10.0.0.1:80 -> 10.0.0.2:5201`, or `[fd00::1]:80 -> [fd00::2]:5201`.
fn tuple_text(t: &Tuple) -> String {
    use std::net::{Ipv4Addr, Ipv6Addr};
    if t.v6 {
        format!(
            "[{}]:{} -> [{}]:{}",
            Ipv6Addr::from(t.src),
            t.sport,
            Ipv6Addr::from(t.dst),
            t.dport
        )
    } else {
        format!(
            "{}:{} -> {}:{}",
            Ipv4Addr::from(t.src4()),
            t.sport,
            Ipv4Addr::from(t.dst4()),
            t.dport
        )
    }
}

/// Every connection (of one zone), oldest slot first.
pub fn list(edge: &Mutex<EdgeState>, zone: Option<u32>) -> Vec<ConnInfo> {
    let mut out = Vec::new();
    walk(edge, |c, now| {
        if zone.is_none_or(|z| c.orig.zone == z) {
            out.push(ConnInfo {
                zone: c.orig.zone,
                proto: proto_name(c.orig.proto),
                orig: tuple_text(&c.orig),
                reply: tuple_text(&c.reply),
                state: c.state.name().into(),
                nat: c.reply != c.orig.reverse(),
                packets_orig: c.packets[0],
                packets_reply: c.packets[1],
                idle_ms: now.saturating_sub(c.last_ms),
                mark: c.mark,
                label: c.label,
            });
        }
    });
    out
}

/// Counters and entries by state.
pub fn stats(edge: &Mutex<EdgeState>) -> CtStatsInfo {
    let mut info = header(&lock(edge));
    walk(edge, |c, _| {
        *info.by_state.entry(c.state.name().to_string()).or_default() += 1;
    });
    info
}

/// The counters, limits and sizes (one short hold of the lock).
fn header(e: &EdgeState) -> CtStatsInfo {
    let s = e.ct.stats;
    let by_state: std::collections::BTreeMap<String, u64> = [
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::nat::TCP;

    #[test]
    fn a_dump_of_more_slots_than_a_chunk_lists_every_connection_once() {
        let mut e = EdgeState::new(3 * CHUNK);
        let n = 2 * CHUNK + 17;
        for i in 0..n as u32 {
            let t = Tuple {
                zone: 1 + i % 2,
                proto: TCP,
                v6: false,
                src: (0x0a00_0000 + i).into(),
                dst: 0x0a01_0001,
                sport: 40000,
                dport: 80,
            };
            let syn = crate::ct::conntrack::TcpInfo {
                flags: crate::ct::conntrack::tcp_flags::SYN,
                seq: 1,
                ack: 0,
                window: 1000,
                payload_len: 0,
            };
            e.ct.process(&t, Some(&syn), 0, true);
        }
        // Free a slot in the middle: the dump skips it.
        let gone = Tuple {
            zone: 2,
            proto: TCP,
            v6: false,
            src: 0x0a00_0001,
            dst: 0x0a01_0001,
            sport: 40000,
            dport: 80,
        };
        let slot = e.ct.lookup(&gone, 0).expect("entered");
        e.ct.forget(slot);
        let edge = Mutex::new(e);
        let all = list(&edge, None);
        assert_eq!(all.len(), n - 1);
        let mut seen: Vec<&str> = all.iter().map(|c| c.orig.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), n - 1, "a connection listed twice");
        assert_eq!(list(&edge, Some(1)).len(), n.div_ceil(2));
        let s = stats(&edge);
        assert_eq!(s.entries, (n - 1) as u64);
        assert_eq!(s.by_state["SYN_SENT"], (n - 1) as u64);
    }
}
