//! Conntrack at the edge of the logical network: load balancing and router NAT
//! happen where a packet enters from, or leaves to, a local port, before and
//! after the cached pipeline, so the caches keep forwarding on plain headers.
//!
//! - A packet from a pod to a VIP served on the pod's switch is DNATed to a
//!   backend on the way in (conntrack zone: the client's switch); the backend's
//!   replies are un-DNATed on their way out to the client. Both happen on the
//!   client's chassis, so per-PMD conntrack sees both directions. A hairpinned
//!   connection (the client is the backend it got) is also SNATed, to the
//!   load balancer's hairpin IP (default: the VIP).
//! - Router NAT applies at the ports of the switch behind the router's gateway
//!   port: traffic leaving to them from a translated source is SNATed (zone:
//!   the router), traffic arriving from them to an external IP is un-SNATed or
//!   DNATed. Again both directions cross the same chassis: the one that hosts
//!   the external port.
//!
//! Nothing here allocates: conntrack and the affinity map are sized up front.
//! What the datapath trace shows of the edge, read-only, is in [`preview`].

mod preview;
pub use preview::{peek_track, preview};

use crate::ct::conntrack::{state, tcp_flags, Conntrack, CtStats, TcpInfo, Tuple};
use crate::ct::frag::{fragment_of, FragEntry, FragKey, FragTable, Fragment};
use crate::ct::nat::{icmp_error_tuple, is_icmp_error, rewrite, rewrite_icmp_error, tcp_info};
use crate::ct::nat::{tuple_of, ICMP, TCP};
use crate::dp::flow::FlowKey;
use crate::stats::PmdStats;
use crate::tables::lb::NatKind;
use crate::tables::Tables;
use switchyard_southbound::DropReason;

/// ClientIP affinity entries kept per PMD.
pub const AFFINITY_CAPACITY: usize = 65_536;
/// Source ports tried for a SNAT connection before giving up.
const SNAT_TRIES: u32 = 64;

/// What the edge decided for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Go on (possibly translated).
    Pass,
    Drop(DropReason),
    /// A VIP without backends: answer TCP with a RST, UDP with port unreachable.
    NoBackend {
        vip: u32,
    },
}

/// (protocol, VIP, VIP port, client IP) -> (backend, last use in ms).
type Affinity = crate::ct::conntrack::KeyedMap<(u8, u32, u16, u32), ((u32, u16), u64)>;

/// The per-PMD state behind the edge.
#[derive(Debug)]
pub struct EdgeState {
    pub ct: Conntrack,
    /// Datagrams whose first fragment was seen ([`crate::ct::frag`]).
    pub frags: FragTable,
    affinity: Affinity,
    /// Milliseconds on the PMDs' [`Clock`](crate::dp::clock::Clock), set
    /// once per batch by the PMD that holds the state.
    pub now_ms: u64,
}

impl EdgeState {
    pub fn new(ct_capacity: usize) -> Self {
        let mut affinity = Affinity::default();
        affinity.reserve(AFFINITY_CAPACITY);
        EdgeState {
            ct: Conntrack::new(ct_capacity),
            frags: FragTable::new(crate::ct::frag::FRAG_CAPACITY),
            affinity,
            now_ms: 0,
        }
    }

    /// Sets the time the next packets are handled at.
    #[inline]
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// Off the fast path: expire a bounded number of connections and forget
    /// affinity entries that timed out when the map runs full.
    pub fn housekeep(&mut self, t: &Tables, stats: &PmdStats, budget: usize, now_ms: u64) {
        self.tick(now_ms);
        self.ct.expire(self.now_ms, budget);
        self.frags.housekeep(self.now_ms);
        if self.affinity.len() >= AFFINITY_CAPACITY / 2 {
            let now = self.now_ms;
            let longest = t.services.max_affinity_ms;
            self.affinity
                .retain(|_, (_, last)| now.saturating_sub(*last) <= longest);
        }
        stats.ct_entries.set(self.ct.len() as u64);
        stats.ct_inserts.set(self.ct.stats.inserts);
        stats.ct_full.set(self.ct.stats.full_drops);
        stats.ct_expired.set(self.ct.stats.expired);
        stats.ct_early_drops.set(self.ct.stats.early_drops);
    }
}

/// A connection hash for backend selection (stable for a 5-tuple).
#[inline]
fn conn_hash(t: &Tuple) -> u32 {
    let mut h = (u64::from(t.src4()) << 32 | u64::from(t.dst4()))
        ^ (u64::from(t.sport) << 24 | u64::from(t.dport) << 8 | u64::from(t.proto));
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (h ^ (h >> 33)) as u32
}

/// Rewrites the frame from tuple `from` to `to`, and the key's destination.
/// The key keeps the source the sender used: the ingress pipeline checks port
/// security and ACLs against who sent the packet, and a source translated on
/// the way in (hairpin SNAT, un-DNAT of a reply) must not fail them. Egress
/// translations come after the pipeline, where the key is not used again.
#[inline]
fn translate(frame: &mut [u8], key: &mut FlowKey, from: &Tuple, to: &Tuple, stats: &PmdStats) {
    if from == to || !rewrite(frame, from, to) {
        return;
    }
    stats.nat_rewrites.add(1);
    key.ip_dst = to.dst4();
    if from.proto != ICMP {
        key.l4_dst = to.dport;
    }
}

/// Why a commit that entered nothing was refused for lack of room: the
/// table full, or the connection's zone at its limit (`None`: for neither).
#[inline]
fn refusal(before: &CtStats, after: &CtStats) -> Option<DropReason> {
    if after.zone_limit_drops != before.zone_limit_drops {
        Some(DropReason::CtZoneLimit)
    } else if after.full_drops != before.full_drops {
        Some(DropReason::CtFull)
    } else {
        None
    }
}

/// Commits a new connection translated from `tu` to `to` and rewrites the
/// packet; a refusal is a drop, counted as table full or invalid.
#[inline]
fn open(
    st: &mut EdgeState,
    frame: &mut [u8],
    key: &mut FlowKey,
    tu: &Tuple,
    tcp: Option<&TcpInfo>,
    to: &Tuple,
    stats: &PmdStats,
) -> Edge {
    let before = st.ct.stats;
    let r = st.ct.commit(tu, tcp, st.now_ms, Some(to), true);
    if r.slot.is_none() || r.state & state::INV != 0 {
        return Edge::Drop(refusal(&before, &st.ct.stats).unwrap_or(DropReason::CtInvalid));
    }
    translate(frame, key, tu, to, stats);
    Edge::Pass
}

/// Tracks a packet of an existing connection and applies its translation;
/// false when the tuple has no connection.
#[inline]
fn existing(
    st: &mut EdgeState,
    frame: &mut [u8],
    key: &mut FlowKey,
    tu: &Tuple,
    tcp: Option<&TcpInfo>,
    stats: &PmdStats,
) -> bool {
    let Some(slot) = st.ct.lookup(tu, st.now_ms) else {
        return false;
    };
    if tcp.is_some_and(is_syn) && st.ct.is_over(slot) {
        // The client reuses the tuple of a connection that ended.
        st.ct.forget(slot);
        return false;
    }
    st.ct.track(slot, tu, tcp, st.now_ms);
    let to = st.ct.target(slot, tu);
    translate(frame, key, tu, &to, stats);
    true
}

/// An ICMP error about a tracked connection (ct.rel): translated like the
/// packets of the direction it travels in, the quoted packet included.
fn related(st: &mut EdgeState, frame: &mut [u8], key: &FlowKey, zone: u32, stats: &PmdStats) {
    if !is_icmp_error(key) {
        return;
    }
    let Some(t) = icmp_error_tuple(frame, zone) else {
        return;
    };
    let Some(slot) = st.ct.lookup(&t, st.now_ms) else {
        return;
    };
    let to = st.ct.target(slot, &t);
    if to != t && rewrite_icmp_error(frame, &t, &to) {
        stats.nat_rewrites.add(1);
    }
}

/// A connection-opening segment (SYN without ACK).
#[inline]
fn is_syn(s: &TcpInfo) -> bool {
    s.flags & 0x12 == 0x02
}

/// A segment that may open a connection with no entry: a SYN, or a plain
/// ACK (picked up mid-stream, unconfirmed until answered). RST, FIN and
/// SYN-ACK open nothing.
#[inline]
fn opens(s: &TcpInfo) -> bool {
    let f = s.flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST | tcp_flags::FIN);
    f == tcp_flags::SYN || f == tcp_flags::ACK
}

#[inline]
fn tcp_of(tu: &Tuple, frame: &[u8]) -> Option<TcpInfo> {
    if tu.proto == TCP {
        tcp_info(frame, tu.v6)
    } else {
        None
    }
}

/// The IPv4 source and destination in a frame.
#[inline]
fn addresses(frame: &[u8], f: &Fragment) -> (u32, u32) {
    let a = |at: usize| {
        frame
            .get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    (a(f.ip + 12), a(f.ip + 16))
}

/// Where the edge translates: on the way in from a port, or out to one.
/// Their records are kept apart (a datagram crosses both, and the
/// addresses it carries into the one are those it carried into the other).
#[derive(Clone, Copy)]
enum Side {
    In = 0,
    Out = 1,
}

/// The record of a datagram at the edge: under the addresses its
/// fragments carry when they reach that side of the edge.
#[inline]
fn edge_frag_key(side: Side, f: &Fragment, key: &FlowKey, (src, dst): (u32, u32)) -> FragKey {
    FragKey {
        zone: side as u32,
        src,
        dst,
        id: f.id,
        proto: key.ip_proto,
    }
}

/// Runs `whole` (the edge for an unfragmented packet or a first fragment);
/// a first fragment whose addresses it translated is remembered, and a
/// later fragment gets what its first one got. `needs_first`: whether a
/// later fragment with no record must be dropped (it would need a
/// translation nobody can give it without its ports).
#[inline]
fn with_fragments(
    side: Side,
    st: &mut EdgeState,
    frame: &mut [u8],
    key: &mut FlowKey,
    needs_first: impl FnOnce(&FlowKey) -> bool,
    whole: impl FnOnce(&mut EdgeState, &mut [u8], &mut FlowKey) -> Edge,
) -> Edge {
    if key.ip_frag == crate::dp::flow::FRAG_NONE {
        return whole(st, frame, key);
    }
    let Some(f) = fragment_of(frame) else {
        return whole(st, frame, key);
    };
    let before = addresses(frame, &f);
    let k = edge_frag_key(side, &f, key, before);
    if !f.is_first() {
        return match st.frags.lookup(&k, st.now_ms) {
            Some(e) => {
                crate::ct::frag::rewrite_addresses(frame, &f, e.src, e.dst);
                key.ip_dst = e.dst;
                Edge::Pass
            }
            None if needs_first(key) => Edge::Drop(DropReason::FragNoFirst),
            None => Edge::Pass,
        };
    }
    let e = whole(st, frame, key);
    let after = addresses(frame, &f);
    if e == Edge::Pass
        && after != before
        && !st
            .frags
            .record(k, FragEntry::new(after.0, after.1), st.now_ms)
    {
        return Edge::Drop(DropReason::FragTableFull);
    }
    e
}

/// A packet entering from a local port (before the pipeline).
#[inline]
pub fn ingress(
    t: &Tables,
    st: &mut EdgeState,
    stats: &PmdStats,
    frame: &mut [u8],
    key: &mut FlowKey,
) -> Edge {
    let Some(b) = t.slot(key.in_port) else {
        return Edge::Pass;
    };
    // Load balancing and NAT are IPv4's: an IPv6 packet is never compared
    // with an IPv4 VIP or external address (docs/ipv6.md).
    if !b.lb && !b.nat || key.eth_type != 0x0800 {
        return Edge::Pass;
    }
    let needs_first = |k: &FlowKey| {
        b.lb && t.services.is_vip_ip(k.ip_dst)
            || b.nat && t.nats.by_external.contains_key(&(b.datapath, k.ip_dst))
    };
    with_fragments(Side::In, st, frame, key, needs_first, |st, frame, key| {
        ingress_whole(t, st, stats, frame, key, b)
    })
}

#[inline]
fn ingress_whole(
    t: &Tables,
    st: &mut EdgeState,
    stats: &PmdStats,
    frame: &mut [u8],
    key: &mut FlowKey,
    b: &crate::tables::SlotBinding,
) -> Edge {
    if b.lb && t.services.is_vip_ip(key.ip_dst) {
        if let Some(e) = to_vip(t, st, stats, frame, key, b.datapath) {
            return e;
        }
    }
    if b.lb && key.ip_proto == TCP && !st.ct.is_empty() {
        // A new connection straight to an address (not a VIP) whose reply
        // would look like the reply of an earlier load-balanced connection on
        // the same client port: that connection is over, forget it, or the
        // new one's replies would be rewritten to come from the VIP.
        if let Some(tu) = tuple_of(key, frame, b.datapath) {
            if tcp_info(frame, false).is_some_and(|s| is_syn(&s)) {
                if let Some(slot) = st.ct.lookup(&tu.reverse(), st.now_ms) {
                    st.ct.forget(slot);
                }
            }
        }
    }
    if b.nat {
        return from_outside(t, st, stats, frame, key, b.datapath);
    }
    Edge::Pass
}

/// A packet to a VIP or hairpin address on switch `dp`: an
/// established service connection is translated, a new one load-balanced.
/// `None`: not a service packet after all (a hairpin address, or a VIP of
/// another port or protocol): the other edge rules apply.
#[inline]
fn to_vip(
    t: &Tables,
    st: &mut EdgeState,
    stats: &PmdStats,
    frame: &mut [u8],
    key: &mut FlowKey,
    dp: u32,
) -> Option<Edge> {
    let tu = tuple_of(key, frame, dp)?;
    let tcp = tcp_of(&tu, frame);
    if existing(st, frame, key, &tu, tcp.as_ref(), stats) {
        return Some(Edge::Pass);
    }
    let vip = t.services.vip_for(tu.proto, tu.dst4(), tu.dport, dp)?;
    if tcp.is_some_and(|s| !opens(&s)) {
        // A RST, FIN or SYN-ACK for a connection the VIP does not have:
        // nothing to translate and nothing to open.
        return Some(Edge::Drop(DropReason::CtNoConnection));
    }
    let lb = &*vip.lb;
    let akey = (tu.proto, tu.dst4(), tu.dport, tu.src4());
    let sticky = (lb.affinity_ms > 0)
        .then(|| st.affinity.get(&akey))
        .flatten()
        .filter(|(be, last)| {
            st.now_ms.saturating_sub(*last) <= lb.affinity_ms && vip.backends.contains(be)
        })
        .map(|(be, _)| *be);
    let Some(be) = sticky.or_else(|| vip.select(conn_hash(&tu))) else {
        return Some(Edge::NoBackend { vip: vip.ip });
    };
    let mut to = Tuple {
        dst: be.0.into(),
        dport: be.1,
        ..tu
    };
    if be.0 == tu.src4() {
        // Hairpin: the backend would answer itself directly; make it
        // answer the hairpin address, which comes back through here.
        to.src = if lb.hairpin_ip != 0 {
            lb.hairpin_ip.into()
        } else {
            vip.ip.into()
        };
    }
    let e = open(st, frame, key, &tu, tcp.as_ref(), &to, stats);
    if e == Edge::Pass {
        stats.lb_new.add(1);
        if lb.affinity_ms > 0
            && (st.affinity.len() < AFFINITY_CAPACITY || st.affinity.contains_key(&akey))
        {
            st.affinity.insert(akey, (be, st.now_ms));
        }
    }
    Some(e)
}

/// A packet from the external switch `dp` of a router with NAT: un-SNAT or
/// DNAT to an external IP, and ICMP errors about translated connections.
#[inline]
fn from_outside(
    t: &Tables,
    st: &mut EdgeState,
    stats: &PmdStats,
    frame: &mut [u8],
    key: &mut FlowKey,
    dp: u32,
) -> Edge {
    let Some(&ri) = t.nats.by_external.get(&(dp, key.ip_dst)) else {
        return Edge::Pass;
    };
    let rule = &t.nats.rules[usize::from(ri)];
    let Some(tu) = tuple_of(key, frame, rule.router) else {
        // An ICMP error from the outside about a translated connection.
        let before = key.ip_dst;
        related(st, frame, key, rule.router, stats);
        if let Some(d) = crate::ct::nat::ipv4_dst(frame).filter(|d| *d != before) {
            key.ip_dst = d;
        }
        return Edge::Pass;
    };
    let tcp = tcp_of(&tu, frame);
    if existing(st, frame, key, &tu, tcp.as_ref(), stats) || rule.kind == NatKind::Snat {
        return Edge::Pass;
    }
    let to = Tuple {
        dst: rule.logical.into(),
        ..tu
    };
    open(st, frame, key, &tu, tcp.as_ref(), &to, stats)
}

/// A packet conntrack looked at before a stateful pipeline: what committing
/// its connection afterwards needs.
#[derive(Clone, Copy, Debug)]
pub struct Tracked {
    tuple: Tuple,
    tcp: Option<TcpInfo>,
    /// Its connection, when it has one.
    slot: Option<u32>,
    state: u8,
}

/// Tracks a packet entering a stateful part of the topology (from a local
/// port or a tunnel) in `zone`, after any translation at the edge: sets the
/// key's `ct_state`, `ct_mark` and `ct_label` for the pipeline to match.
/// Packets conntrack does not follow (fragments, other protocols) keep
/// `ct_state` 0; an ICMP error about a connection is `rel`, about none `inv`.
/// Nothing is entered in the table here: that is `ct_commit`'s ([`commit`]).
///
/// A later fragment gets the `ct_state`, mark, label and ports of its
/// datagram's first fragment, so the stateful flows decide it the same way.
#[inline]
pub fn track(st: &mut EdgeState, frame: &[u8], key: &mut FlowKey, zone: u32) -> Option<Tracked> {
    if key.ip_frag == crate::dp::flow::FRAG_NONE {
        return track_whole(st, frame, key, zone);
    }
    let Some(f) = fragment_of(frame) else {
        return track_whole(st, frame, key, zone);
    };
    let k = FragKey {
        zone, // stateful zones have bit 31 set; the edge's records use 0 and 1
        src: key.ip_src,
        dst: key.ip_dst,
        id: f.id,
        proto: key.ip_proto,
    };
    if !f.is_first() {
        if let Some(e) = st.frags.lookup(&k, st.now_ms) {
            (key.ct_state, key.ct_mark, key.ct_label) = (e.ct_state, e.ct_mark, e.ct_label);
            (key.l4_src, key.l4_dst) = (e.sport, e.dport);
        }
        return None;
    }
    let r = track_whole(st, frame, key, zone);
    if key.ct_state != 0 {
        let e = FragEntry {
            ct_state: key.ct_state,
            ct_mark: key.ct_mark,
            ct_label: key.ct_label,
            sport: key.l4_src,
            dport: key.l4_dst,
            ..FragEntry::new(key.ip_src, key.ip_dst)
        };
        // Full: the later fragments go untracked, as fragments did before.
        let _ = st.frags.record(k, e, st.now_ms);
    }
    r
}

#[inline]
fn track_whole(st: &mut EdgeState, frame: &[u8], key: &mut FlowKey, zone: u32) -> Option<Tracked> {
    let Some(tu) = tuple_of(key, frame, zone) else {
        if is_icmp_error(key) {
            key.ct_state = state::TRK | state::INV;
            let t = icmp_error_tuple(frame, zone)?;
            let slot = st.ct.lookup(&t, st.now_ms)?;
            let c = st.ct.get(slot)?;
            let reply = if c.orig == t { 0 } else { state::RPL };
            key.ct_state = state::TRK | state::REL | reply;
            key.ct_mark = c.mark;
            key.ct_label = c.label;
        }
        return None;
    };
    let tcp = tcp_of(&tu, frame);
    if let Some(slot) = st.ct.lookup(&tu, st.now_ms) {
        if tcp.is_some_and(|s| is_syn(&s)) && st.ct.is_over(slot) {
            st.ct.forget(slot); // the tuple is reused by a new connection
        } else {
            let r = st.ct.track(slot, &tu, tcp.as_ref(), st.now_ms);
            if let Some(c) = st.ct.get(slot) {
                key.ct_mark = c.mark;
                key.ct_label = c.label;
            }
            key.ct_state = r.state;
            return Some(Tracked {
                tuple: tu,
                tcp,
                slot: Some(slot),
                state: r.state,
            });
        }
    }
    // No connection. A SYN opens one; so does a mid-stream segment with ACK
    // (picked up on commit, as Linux's nf_conntrack_tcp_loose: connections
    // outlive a vswitchd restart; unconfirmed until the other side answers);
    // any other TCP segment is invalid.
    let valid = tcp.is_none_or(|s| opens(&s));
    key.ct_state = state::TRK | if valid { state::NEW } else { state::INV };
    Some(Tracked {
        tuple: tu,
        tcp,
        slot: None,
        state: key.ct_state,
    })
}

/// `ct_commit` for a packet [`track`] looked at and the pipeline sent: enters
/// its connection (if new) and sets its mark and label. A connection the table
/// has no room for is refused: the packet is dropped, counted as `ct_full`.
#[inline]
pub fn commit(
    st: &mut EdgeState,
    tr: &Tracked,
    c: crate::dp::pipeline::Commit,
) -> Result<(), DropReason> {
    if tr.state & state::INV != 0 {
        return Ok(()); // nothing valid to enter; the flows let it through
    }
    // The table was unlocked between the look and the commit: the slot may
    // have been expired, flushed or reused since (by another PMD, or by an
    // earlier packet of the batch evicting it), and a connection new at the
    // look may have been entered since (an earlier packet of the batch with
    // the same tuple, or the other PMD).
    let held = |st: &EdgeState, s: u32| {
        st.ct
            .get(s)
            .is_some_and(|c| c.orig == tr.tuple || c.reply == tr.tuple)
    };
    let slot = match tr.slot.filter(|&s| held(st, s)) {
        Some(s) => s,
        None => match st.ct.lookup(&tr.tuple, st.now_ms) {
            Some(s) => {
                if tr.slot.is_none() {
                    st.ct.track(s, &tr.tuple, tr.tcp.as_ref(), st.now_ms);
                }
                s
            }
            None => {
                let before = st.ct.stats;
                let r = st
                    .ct
                    .commit(&tr.tuple, tr.tcp.as_ref(), st.now_ms, Some(&tr.tuple), true);
                match r.slot {
                    Some(s) => s,
                    None => return refusal(&before, &st.ct.stats).map_or(Ok(()), Err),
                }
            }
        },
    };
    st.ct
        .set_mark_label(slot, (c.mark, u32::MAX), (c.label, u32::MAX));
    Ok(())
}

/// A packet leaving to the local port `out` (after the pipeline).
#[inline]
pub fn egress(
    t: &Tables,
    st: &mut EdgeState,
    stats: &PmdStats,
    frame: &mut [u8],
    key: &mut FlowKey,
    out: u16,
) -> Edge {
    let Some(b) = t.slot(out) else {
        return Edge::Pass;
    };
    if !b.lb && !b.nat || key.eth_type != 0x0800 {
        return Edge::Pass;
    }
    // A later fragment of a datagram that SNAT would translate.
    let needs_first = |k: &FlowKey| {
        b.nat
            && t.nats.by_switch.get(&b.datapath).is_some_and(|rules| {
                rules
                    .iter()
                    .any(|&i| t.nats.rules[usize::from(i)].matches_logical(k.ip_src))
            })
    };
    with_fragments(Side::Out, st, frame, key, needs_first, |st, frame, key| {
        egress_whole(t, st, stats, frame, key, b)
    })
}

#[inline]
fn egress_whole(
    t: &Tables,
    st: &mut EdgeState,
    stats: &PmdStats,
    frame: &mut [u8],
    key: &mut FlowKey,
    b: &crate::tables::SlotBinding,
) -> Edge {
    if b.lb && !st.ct.is_empty() {
        // Replies of load-balanced connections to this client.
        match tuple_of(key, frame, b.datapath) {
            Some(tu) => {
                let tcp = tcp_of(&tu, frame);
                existing(st, frame, key, &tu, tcp.as_ref(), stats);
            }
            None => related(st, frame, key, b.datapath, stats),
        }
        return Edge::Pass;
    }
    if !b.nat {
        return Edge::Pass;
    }
    let Some(rules) = t.nats.by_switch.get(&b.datapath) else {
        return Edge::Pass;
    };
    let Some(rule) = rules
        .iter()
        .map(|&i| &t.nats.rules[usize::from(i)])
        .find(|r| r.matches_logical(key.ip_src))
    else {
        return Edge::Pass;
    };
    let Some(tu) = tuple_of(key, frame, rule.router) else {
        related(st, frame, key, rule.router, stats);
        return Edge::Pass;
    };
    let tcp = tcp_of(&tu, frame);
    if existing(st, frame, key, &tu, tcp.as_ref(), stats) || rule.kind == NatKind::Dnat {
        return Edge::Pass;
    }
    // A new connection from the inside: SNAT to the external IP, keeping the
    // source port when it is free (always for a 1:1 floating IP), else
    // searching the port range from a hash of the connection.
    let mut to = Tuple {
        src: rule.external.into(),
        ..tu
    };
    let base: u32 = if tu.proto == ICMP { 1 } else { 1024 };
    let h = conn_hash(&tu);
    let mut found = false;
    for i in 0..=SNAT_TRIES {
        if i > 0 {
            // An ICMP echo identifier may take any value; ports stay >= 1024.
            to.sport = (base + h.wrapping_add(i.wrapping_mul(0x9e37_79b9)) % (65536 - base)) as u16;
        }
        if !st.ct.contains(&to.reverse()) {
            found = true;
            break;
        }
    }
    if !found {
        return Edge::Drop(DropReason::NatPortsExhausted);
    }
    open(st, frame, key, &tu, tcp.as_ref(), &to, stats)
}

#[cfg(test)]
mod tests;
