//! The edge as the datapath trace sees it: what load balancing, NAT and
//! conntrack would do with a packet, computed from the live state without
//! changing any of it.

use super::{conn_hash, EdgeState};
use crate::ct::conntrack::{state, Tuple};
use crate::ct::nat::{key_tuple, ICMP, ICMP6, TCP};
use crate::dp::flow::FlowKey;
use crate::tables::lb::NatKind;
use crate::tables::Tables;

/// For the datapath trace: the `ct_state`, mark and label [`track`] would
/// give the packet (set in `key`), as a line; `None` when its datapath is
/// not tracked. Changes nothing.
pub fn peek_track(t: &Tables, st: &EdgeState, key: &mut FlowKey) -> Option<String> {
    let zone = t.slot(key.in_port).map_or(0, |b| b.ct_zone);
    if zone == 0 || !matches!(key.eth_type, 0x0800 | 0x86dd) {
        return None;
    }
    let (state, mark, label) = peek_state(st, key, zone);
    (key.ct_state, key.ct_mark, key.ct_label) = (state, mark, label);
    Some(format!(
        "ct(zone=0x{zone:x}): ct_state={} (live conntrack)",
        state::flags_text(state, state)
    ))
}

/// The `ct_state` (and mark, label) [`track`] would give a packet (a key has
/// no ICMP echo id, so pings show as new).
fn peek_state(st: &EdgeState, key: &FlowKey, zone: u32) -> (u8, u32, u32) {
    let (sport, dport) = match key.ip_proto {
        TCP | crate::ct::nat::UDP => (key.l4_src, key.l4_dst),
        ICMP | ICMP6 => return (state::TRK | state::NEW, 0, 0),
        _ => return (0, 0, 0),
    };
    let tu = key_tuple(key, zone, sport, dport);
    match st.ct.peek(&tu, st.now_ms).and_then(|s| st.ct.get(s)) {
        Some(c) => {
            let reply = if c.orig == tu { 0 } else { state::RPL };
            (state::TRK | state::EST | reply, c.mark, c.label)
        }
        None => (state::TRK | state::NEW, 0, 0),
    }
}

/// What the edge would do with a packet, without changing any state: for the
/// datapath trace. Returns a description and the key the pipeline would see.
/// Load balancing and NAT are IPv4's (docs/ipv6.md).
pub fn preview(t: &Tables, st: &EdgeState, key: &FlowKey) -> Option<(String, FlowKey)> {
    let b = t.slot(key.in_port)?;
    if key.eth_type != 0x0800 {
        return None;
    }
    let tuple = |zone| key_tuple(key, zone, key.l4_src, key.l4_dst);
    let ip = |v: u128| std::net::Ipv4Addr::from(v as u32);
    // As on the fast path, the pipeline sees the translated destination and
    // the source the sender used.
    let apply = |to: &Tuple| FlowKey {
        ip_dst: to.dst4(),
        l4_dst: to.dport,
        ..*key
    };
    if b.lb && t.services.is_vip_ip(key.ip_dst) && key.ip_proto != ICMP {
        let tu = tuple(b.datapath);
        if let Some(slot) = st.ct.peek(&tu, st.now_ms) {
            let to = st.ct.target(slot, &tu);
            return Some((
                format!(
                    "ct(zone={}): established connection, translated to {}:{} -> {}:{}",
                    b.datapath,
                    ip(to.src),
                    to.sport,
                    ip(to.dst),
                    to.dport
                ),
                apply(&to),
            ));
        }
        let vip = t
            .services
            .vip_for(tu.proto, tu.dst4(), tu.dport, b.datapath)?;
        let lb = &*vip.lb;
        let Some(be) = vip.select(conn_hash(&tu)) else {
            return Some((
                format!(
                    "ct_lb({}): VIP {}:{} has no backends: answered with {}",
                    lb.name,
                    ip(vip.ip.into()),
                    vip.port,
                    if tu.proto == TCP {
                        "TCP RST"
                    } else {
                        "ICMP port unreachable"
                    }
                ),
                *key,
            ));
        };
        let to = Tuple {
            dst: be.0.into(),
            dport: be.1,
            ..tu
        };
        return Some((
            format!(
                "ct_lb({}): new connection to VIP {}:{}, backend {}:{} by Maglev hash of {} backends (committed in zone {})",
                lb.name, ip(vip.ip.into()), vip.port, ip(be.0.into()), be.1, vip.backends.len(), b.datapath
            ),
            apply(&to),
        ));
    }
    if b.nat {
        let &ri = t.nats.by_external.get(&(b.datapath, key.ip_dst))?;
        let rule = &t.nats.rules[usize::from(ri)];
        let tu = tuple(rule.router);
        if let Some(slot) = st.ct.peek(&tu, st.now_ms) {
            let to = st.ct.target(slot, &tu);
            return Some((
                format!(
                    "ct(zone={}, nat) on router {}: established, translated to {}:{} -> {}:{}",
                    rule.router,
                    rule.router_name,
                    ip(to.src),
                    to.sport,
                    ip(to.dst),
                    to.dport
                ),
                apply(&to),
            ));
        }
        if rule.kind != NatKind::Snat {
            let to = Tuple {
                dst: rule.logical.into(),
                ..tu
            };
            return Some((
                format!(
                    "ct_dnat({}) on router {}: new connection, destination -> {}",
                    ip(rule.external.into()),
                    rule.router_name,
                    ip(rule.logical.into())
                ),
                apply(&to),
            ));
        }
    }
    None
}
