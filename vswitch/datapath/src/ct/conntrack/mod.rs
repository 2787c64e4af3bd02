//! Connection tracking, the datapath's memory of connections: a bounded table
//! keyed by zone + 5-tuple that answers, per packet, the `ct_state` flags
//! (new, established, related, reply, invalid), tracks TCP's state machine with
//! window checks (an out-of-window RST is ignored), and expires connections by
//! per-state timeouts.
//!
//! Ownership rule: a table belongs to one PMD thread and is never shared, so
//! there is no lock at all; both directions of a connection must reach the same
//! PMD (one PMD per chassis today; with several, symmetric steering per port).
//! Capacity is fixed at creation; when full, a new connection is refused and
//! counted while established ones keep flowing. Nothing allocates per packet:
//! the index map is sized for the capacity up front, and slots are reused.
//! Expiry is incremental ([`Conntrack::expire`], a bounded number of slots per
//! call from the PMD's housekeeping), never on the per-packet path.
//!
//! Against floods: a TCP segment that is not a SYN opens at most an
//! *unconfirmed* entry (picked up mid-stream, so connections survive a
//! vswitchd restart) that lives seconds, not a day, until the other direction
//! answers; RST, FIN and SYN-ACK segments open nothing. A full table first
//! evicts an unconfirmed or not yet assured entry near a rotating cursor
//! (Linux's `early_drop`), and only then refuses. The index is hashed with a
//! per-process random key, so nobody can aim packets at one bucket.
//!
//! NAT bindings live with the entry: a connection knows the tuple its reply
//! direction carries after translation ([`Conn::reply`]), and both that tuple
//! and the original are keys of the index, so a packet of either direction
//! finds its connection and [`Conntrack::target`] says what to rewrite it to.

/// Hash maps keyed by packet fields: keyed with a per-process random seed.
pub type KeyedMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One direction of a connection: zone, protocol, addresses and ports (for ICMP
/// echo, the identifier as source port and 0 as destination).
///
/// Addresses are 128 bits wide for both families; an IPv4 address sits in the
/// low 32 bits and `v6` is false. The family is part of the identity, so an
/// IPv6 packet can never find an IPv4 connection (whatever addresses it
/// carries, `::a.b.c.d` included) and be translated with IPv4's rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tuple {
    /// The conntrack zone: a logical datapath's key (a client's switch for load
    /// balancing, a router for its NAT rules).
    pub zone: u32,
    pub proto: u8,
    pub v6: bool,
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
}

impl std::hash::Hash for Tuple {
    /// Two words for IPv4 (as before the addresses widened), four for IPv6,
    /// plus one for the rest: the per-packet lookup hashes this.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        if self.v6 {
            h.write_u128(self.src);
            h.write_u128(self.dst);
        } else {
            h.write_u64((self.src as u64) << 32 | (self.dst as u64 & 0xffff_ffff));
        }
        h.write_u64(
            u64::from(self.zone) << 40
                | u64::from(self.v6) << 39
                | u64::from(self.proto) << 32
                | u64::from(self.sport) << 16
                | u64::from(self.dport),
        );
    }
}

impl Tuple {
    /// The tuple of the other direction.
    pub fn reverse(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    /// The IPv4 source (meaningful only when `!v6`).
    #[inline]
    pub fn src4(&self) -> u32 {
        self.src as u32
    }

    /// The IPv4 destination (meaningful only when `!v6`).
    #[inline]
    pub fn dst4(&self) -> u32 {
        self.dst as u32
    }
}

/// `ct_state` bits, as OVN's matches name them (shared with the match language).
pub use switchyard_southbound::field::ct as state;

/// TCP flags the tracker looks at.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// What the tracker needs of a TCP segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// Window as advertised, already scaled when scaling is known (else raw).
    pub window: u32,
    pub payload_len: u32,
}

/// A connection's protocol state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    TcpSynSent,
    TcpSynRecv,
    TcpEstablished,
    /// Picked up from a mid-stream segment, waiting for the other side to
    /// answer (then ESTABLISHED); short-lived, the first to be evicted.
    TcpUnconfirmed,
    /// One side sent FIN.
    TcpClosing,
    /// Both sides sent FIN, or a valid RST: lingers briefly for late segments.
    TcpTimeWait,
    /// UDP or ICMP: seen in one direction only.
    First,
    /// UDP or ICMP: seen in both directions.
    Multiple,
}

impl ConnState {
    pub fn name(self) -> &'static str {
        match self {
            ConnState::TcpSynSent => "SYN_SENT",
            ConnState::TcpSynRecv => "SYN_RECV",
            ConnState::TcpEstablished => "ESTABLISHED",
            ConnState::TcpUnconfirmed => "UNCONFIRMED",
            ConnState::TcpClosing => "CLOSING",
            ConnState::TcpTimeWait => "TIME_WAIT",
            ConnState::First => "FIRST",
            ConnState::Multiple => "MULTIPLE",
        }
    }
}

/// Timeouts in milliseconds, per state (defaults after OVS's userspace conntrack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_syn: u64,
    pub tcp_established: u64,
    pub tcp_unconfirmed: u64,
    pub tcp_closing: u64,
    pub tcp_time_wait: u64,
    pub udp_first: u64,
    pub udp_multiple: u64,
    pub icmp: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn: 30_000,
            tcp_established: 24 * 3600 * 1000,
            tcp_unconfirmed: 10_000,
            tcp_closing: 30_000,
            tcp_time_wait: 30_000,
            udp_first: 30_000,
            udp_multiple: 180_000,
            icmp: 30_000,
        }
    }
}

/// Per-direction TCP sequence tracking (RFC 793 window, loosely as in OVS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seq {
    /// Highest sequence number sent plus length.
    end: u32,
    /// Largest window this side advertised (at least 1).
    max_win: u32,
    seen: bool,
}

/// One tracked connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    /// The direction that opened it.
    pub orig: Tuple,
    /// What the reply direction carries (the original reversed, unless NATed).
    pub reply: Tuple,
    pub state: ConnState,
    /// Last packet, ms on the caller's clock.
    pub last_ms: u64,
    /// Set by `ct_commit`; matched as `ct_mark` / `ct_label`.
    pub mark: u32,
    pub label: u32,
    pub packets: [u64; 2],
    seq: [Seq; 2],
    live: bool,
}

/// Counters, one per outcome that is not plain tracking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtStats {
    pub inserts: u64,
    pub full_drops: u64,
    pub invalid: u64,
    pub expired: u64,
    pub rst_ignored: u64,
    /// New connections refused because their translated reply tuple was taken.
    pub nat_collisions: u64,
    /// Entries evicted to make room for a new connection in a full table.
    pub early_drops: u64,
    /// Connections picked up mid-stream (unconfirmed until answered).
    pub pickups: u64,
    /// New connections refused because their zone was at its limit.
    pub zone_limit_drops: u64,
    /// Closing or TIME_WAIT connections evicted because a new SYN needed one
    /// of their tuples (a client port reused towards another VIP that lands
    /// on the same backend; Linux's NAT evicts them the same way).
    pub closed_reused: u64,
}

/// A zone's limit and the connections it holds now (OVS `ct-set-limits`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneLimit {
    pub limit: u32,
    pub count: u32,
}

/// The verdict for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtResult {
    /// `state::*` bits (always TRK).
    pub state: u8,
    /// The connection's slot, when tracked.
    pub slot: Option<u32>,
}

/// The table.
#[derive(Debug)]
pub struct Conntrack {
    conns: Vec<Conn>,
    /// Both directions' tuples -> slot (direction: orig when tuple == conn.orig).
    index: KeyedMap<Tuple, u32>,
    free: Vec<u32>,
    capacity: usize,
    pub timeouts: Timeouts,
    pub stats: CtStats,
    /// Next slot the incremental expiry looks at.
    sweep: usize,
    /// Next slot early drop looks at.
    evict: usize,
    /// Zones with a limit; their keys change only in [`Conntrack::set_zone_limits`],
    /// so counting in commit and remove never allocates.
    zone_limits: rustc_hash::FxHashMap<u32, ZoneLimit>,
}

const EMPTY_TUPLE: Tuple = Tuple {
    zone: 0,
    proto: 0,
    v6: false,
    src: 0,
    dst: 0,
    sport: 0,
    dport: 0,
};

const EMPTY_CONN: Conn = Conn {
    orig: EMPTY_TUPLE,
    reply: EMPTY_TUPLE,
    state: ConnState::First,
    last_ms: 0,
    mark: 0,
    label: 0,
    packets: [0; 2],
    seq: [Seq {
        end: 0,
        max_win: 0,
        seen: false,
    }; 2],
    live: false,
};

const TCP: u8 = 6;
const UDP: u8 = 17;
/// Slots a full table looks at for an entry to evict.
pub const EARLY_DROP_SCAN: usize = 64;

/// `a` comes after `b` in sequence space (RFC 1982).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Conntrack {
    /// A table for at most `capacity` connections (all memory reserved now).
    pub fn new(capacity: usize) -> Self {
        let mut index = KeyedMap::default();
        index.reserve(capacity * 2);
        Conntrack {
            conns: Vec::with_capacity(capacity),
            index,
            free: Vec::with_capacity(capacity),
            capacity,
            timeouts: Timeouts::default(),
            stats: CtStats::default(),
            sweep: 0,
            evict: 0,
            zone_limits: Default::default(),
        }
    }

    /// Makes `limits` (zone -> connections) the zone limits and counts what
    /// each limited zone holds now. Connections over a lowered limit stay;
    /// new ones wait until the zone is under it (as OVS).
    pub fn set_zone_limits(&mut self, limits: &rustc_hash::FxHashMap<u32, u32>) {
        self.zone_limits = limits
            .iter()
            .map(|(&z, &limit)| (z, ZoneLimit { limit, count: 0 }))
            .collect();
        for c in self.conns.iter().filter(|c| c.live) {
            if let Some(z) = self.zone_limits.get_mut(&c.orig.zone) {
                z.count += 1;
            }
        }
    }

    /// Every limited zone, with what it holds now (for `ct-stats`).
    pub fn zone_limits(&self) -> impl Iterator<Item = (u32, ZoneLimit)> + '_ {
        self.zone_limits.iter().map(|(&z, &l)| (z, l))
    }

    /// The most connections the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Connections tracked now.
    pub fn len(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The connection in `slot`.
    pub fn get(&self, slot: u32) -> Option<&Conn> {
        self.conns.get(slot as usize).filter(|c| c.live)
    }

    /// Every live connection (for dumps).
    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.conns.iter().filter(|c| c.live)
    }

    /// Copies the live connections in slots `from..from + n` to `out`;
    /// returns the slot after the last one looked at (`slots()` at the end).
    pub fn copy_slots(&self, from: usize, n: usize, out: &mut Vec<Conn>) -> usize {
        let end = from.saturating_add(n).min(self.conns.len());
        let range = self.conns.get(from..end).unwrap_or(&[]);
        out.extend(range.iter().filter(|c| c.live).copied());
        end
    }

    /// Slots in the table (live or free).
    pub fn slots(&self) -> usize {
        self.conns.len()
    }

    fn timeout(&self, c: &Conn) -> u64 {
        let t = &self.timeouts;
        match (c.orig.proto, c.state) {
            (_, ConnState::TcpSynSent | ConnState::TcpSynRecv) => t.tcp_syn,
            (_, ConnState::TcpEstablished) => t.tcp_established,
            (_, ConnState::TcpUnconfirmed) => t.tcp_unconfirmed,
            (_, ConnState::TcpClosing) => t.tcp_closing,
            (_, ConnState::TcpTimeWait) => t.tcp_time_wait,
            (UDP, ConnState::First) => t.udp_first,
            (UDP, ConnState::Multiple) => t.udp_multiple,
            _ => t.icmp,
        }
    }

    fn remove(&mut self, slot: u32) {
        let c = self.conns[slot as usize];
        self.index.remove(&c.orig);
        self.index.remove(&c.reply);
        self.conns[slot as usize].live = false;
        self.free.push(slot);
        if let Some(z) = self.zone_limits.get_mut(&c.orig.zone) {
            z.count = z.count.saturating_sub(1);
        }
    }

    /// Tracks one packet with tuple `t` at time `now_ms`; `tcp` for TCP segments.
    /// With `commit`, a new connection is entered in the table (as OVN's
    /// `ct_commit`); without, a new packet is only classified.
    pub fn process(
        &mut self,
        t: &Tuple,
        tcp: Option<&TcpInfo>,
        now_ms: u64,
        commit: bool,
    ) -> CtResult {
        if let Some(slot) = self.lookup(t, now_ms) {
            return self.update(slot, t, tcp, now_ms);
        }
        self.commit(t, tcp, now_ms, commit.then_some(t), false)
    }

    /// The live connection a tuple belongs to (either direction); an entry whose
    /// timeout passed but that was not swept yet is removed and not found.
    #[inline]
    pub fn lookup(&mut self, t: &Tuple, now_ms: u64) -> Option<u32> {
        let slot = *self.index.get(t)?;
        let c = &self.conns[slot as usize];
        if now_ms.saturating_sub(c.last_ms) > self.timeout(c) {
            self.stats.expired += 1;
            self.remove(slot);
            return None;
        }
        Some(slot)
    }

    /// Sets the masked bits of a connection's mark and label (`ct_commit`).
    #[inline]
    pub fn set_mark_label(&mut self, slot: u32, mark: (u32, u32), label: (u32, u32)) {
        if let Some(c) = self.conns.get_mut(slot as usize).filter(|c| c.live) {
            c.mark = (c.mark & !mark.1) | (mark.0 & mark.1);
            c.label = (c.label & !label.1) | (label.0 & label.1);
        }
    }

    /// Forgets the connection in `slot` (a client reopened its tuple).
    pub fn forget(&mut self, slot: u32) {
        if self.conns.get(slot as usize).is_some_and(|c| c.live) {
            self.remove(slot);
        }
    }

    /// A TCP connection that is over (closing or closed): a new SYN on its
    /// tuple opens a new connection rather than joining it.
    pub fn is_over(&self, slot: u32) -> bool {
        self.get(slot)
            .is_some_and(|c| matches!(c.state, ConnState::TcpTimeWait | ConnState::TcpClosing))
    }

    /// [`Self::lookup`] without removing an expired entry (for traces).
    pub fn peek(&self, t: &Tuple, now_ms: u64) -> Option<u32> {
        let slot = *self.index.get(t)?;
        let c = &self.conns[slot as usize];
        (now_ms.saturating_sub(c.last_ms) <= self.timeout(c)).then_some(slot)
    }

    /// Whether a tuple is taken by a live or unswept connection (NAT port search).
    #[inline]
    pub fn contains(&self, t: &Tuple) -> bool {
        self.index.contains_key(t)
    }

    /// Tracks a packet of the connection in `slot` (found by [`Self::lookup`]).
    #[inline]
    pub fn track(&mut self, slot: u32, t: &Tuple, tcp: Option<&TcpInfo>, now_ms: u64) -> CtResult {
        self.update(slot, t, tcp, now_ms)
    }

    /// The tuple a packet of connection `slot` is rewritten to: the translated
    /// original for the original direction, the original reversed for replies.
    /// Equal to the packet's own tuple when the connection is not NATed.
    #[inline]
    pub fn target(&self, slot: u32, t: &Tuple) -> Tuple {
        let c = &self.conns[slot as usize];
        if *t == c.orig {
            c.reply.reverse()
        } else {
            c.orig.reverse()
        }
    }

    /// Classifies a packet with no connection and, with `xlate` (the tuple the
    /// original direction is translated to; `t` itself for no NAT), enters it.
    /// `pickup` accepts a TCP segment without SYN as an established connection
    /// (a load balancer picking up a flow after a restart: the consistent hash
    /// sends it to the backend it had).
    pub fn commit(
        &mut self,
        t: &Tuple,
        tcp: Option<&TcpInfo>,
        now_ms: u64,
        xlate: Option<&Tuple>,
        pickup: bool,
    ) -> CtResult {
        // A new connection: TCP must open with a SYN (no ACK), or, picked
        // up, with a plain ACK (no SYN, RST or FIN: those open nothing).
        if t.proto == TCP {
            let opens = tcp.is_some_and(|seg| {
                let f =
                    seg.flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST | tcp_flags::FIN);
                f == tcp_flags::SYN || pickup && f == tcp_flags::ACK
            });
            if !opens {
                self.stats.invalid += 1;
                return CtResult {
                    state: state::TRK | state::INV,
                    slot: None,
                };
            }
        }
        let Some(xlate) = xlate else {
            return CtResult {
                state: state::TRK | state::NEW,
                slot: None,
            };
        };
        let reply = xlate.reverse();
        if tcp.is_some_and(|s| s.flags & tcp_flags::SYN != 0) {
            // A new SYN may take a tuple from a connection that is over.
            for k in [t, &reply] {
                if let Some(&slot) = self.index.get(k) {
                    if self.is_over(slot) {
                        self.stats.closed_reused += 1;
                        self.remove(slot);
                    }
                }
            }
        }
        if self.index.contains_key(&reply) || self.index.contains_key(t) {
            self.stats.nat_collisions += 1;
            return CtResult {
                state: state::TRK | state::INV,
                slot: None,
            };
        }
        if self
            .zone_limits
            .get(&t.zone)
            .is_some_and(|z| z.count >= z.limit)
        {
            self.stats.zone_limit_drops += 1;
            return CtResult {
                state: state::TRK | state::INV,
                slot: None,
            };
        }
        if self.len() >= self.capacity && !self.early_drop() {
            self.stats.full_drops += 1;
            return CtResult {
                state: state::TRK | state::INV,
                slot: None,
            };
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(EMPTY_CONN);
                (self.conns.len() - 1) as u32
            }
        };
        let picked_up = pickup && tcp.is_some_and(|s| s.flags & tcp_flags::SYN == 0);
        let mut c = Conn {
            orig: *t,
            reply,
            state: if picked_up {
                ConnState::TcpUnconfirmed
            } else if t.proto == TCP {
                ConnState::TcpSynSent
            } else {
                ConnState::First
            },
            last_ms: now_ms,
            live: true,
            ..EMPTY_CONN
        };
        c.packets[0] = 1;
        if let Some(seg) = tcp {
            c.seq[0] = Seq {
                end: seg
                    .seq
                    .wrapping_add(seg.payload_len)
                    .wrapping_add(u32::from(!picked_up)),
                max_win: seg.window.max(1),
                seen: true,
            };
        }
        self.conns[slot as usize] = c;
        self.index.insert(*t, slot);
        self.index.insert(reply, slot);
        self.stats.inserts += 1;
        self.stats.pickups += u64::from(picked_up);
        if let Some(z) = self.zone_limits.get_mut(&t.zone) {
            z.count += 1;
        }
        CtResult {
            state: state::TRK | if picked_up { state::EST } else { state::NEW },
            slot: Some(slot),
        }
    }

    fn update(&mut self, slot: u32, t: &Tuple, tcp: Option<&TcpInfo>, now_ms: u64) -> CtResult {
        let c = &mut self.conns[slot as usize];
        let dir = usize::from(*t != c.orig);
        let reply = if dir == 1 { state::RPL } else { 0 };
        if let Some(seg) = tcp {
            let other = c.seq[1 - dir];
            if seg.flags & tcp_flags::RST != 0 {
                // Valid only near where the sender's sequence stands, within
                // the window its peer offered (RFC 5961's acceptable range): a
                // blind RST must not tear the connection down.
                let me = c.seq[dir];
                let off = seg.seq.wrapping_sub(me.end) as i32;
                let valid = !me.seen || off.unsigned_abs() <= other.max_win.max(1);
                if !valid {
                    self.stats.rst_ignored += 1;
                    return CtResult {
                        state: state::TRK | state::INV | reply,
                        slot: Some(slot),
                    };
                }
                c.state = ConnState::TcpTimeWait;
            } else {
                let end = seg
                    .seq
                    .wrapping_add(seg.payload_len)
                    .wrapping_add(u32::from(
                        seg.flags & (tcp_flags::SYN | tcp_flags::FIN) != 0,
                    ));
                let me = &mut c.seq[dir];
                if !me.seen || after(end, me.end) {
                    me.end = end;
                }
                me.max_win = me.max_win.max(seg.window.max(1));
                me.seen = true;
                c.state = match (c.state, dir, seg.flags) {
                    (ConnState::TcpSynSent, 1, f)
                        if f & tcp_flags::SYN != 0 && f & tcp_flags::ACK != 0 =>
                    {
                        ConnState::TcpSynRecv
                    }
                    (ConnState::TcpSynRecv, 0, f)
                        if f & tcp_flags::ACK != 0 && f & tcp_flags::SYN == 0 =>
                    {
                        ConnState::TcpEstablished
                    }
                    // The other side answers a picked-up connection.
                    (ConnState::TcpUnconfirmed, 1, _) => ConnState::TcpEstablished,
                    (ConnState::TcpEstablished, _, f) if f & tcp_flags::FIN != 0 => {
                        ConnState::TcpClosing
                    }
                    (ConnState::TcpClosing, _, f) if f & tcp_flags::FIN != 0 => {
                        ConnState::TcpTimeWait
                    }
                    (s, _, _) => s,
                };
            }
        } else if c.state == ConnState::First && dir == 1 {
            c.state = ConnState::Multiple;
        }
        c.last_ms = now_ms;
        c.packets[dir] += 1;
        let est = match c.state {
            ConnState::TcpSynSent => dir == 1, // the SYN-ACK answers: reply direction
            ConnState::First => false,
            _ => true,
        };
        let s = if est || dir == 1 {
            state::EST
        } else {
            state::NEW
        };
        CtResult {
            state: state::TRK | s | reply,
            slot: Some(slot),
        }
    }

    /// Removes connections whose timeout passed, looking at no more than `budget`
    /// slots (the PMD calls this from housekeeping). Returns how many went.
    pub fn expire(&mut self, now_ms: u64, budget: usize) -> usize {
        let n = self.conns.len();
        if n == 0 {
            return 0;
        }
        let mut gone = 0;
        for _ in 0..budget.min(n) {
            self.sweep = (self.sweep + 1) % n;
            let slot = self.sweep as u32;
            let c = &self.conns[slot as usize];
            if c.live && now_ms.saturating_sub(c.last_ms) > self.timeout(c) {
                self.remove(slot);
                gone += 1;
            }
        }
        self.stats.expired += gone as u64;
        gone
    }

    /// Makes room in a full table: looks at up to [`EARLY_DROP_SCAN`] slots
    /// from a rotating cursor and evicts the first unconfirmed entry, else the
    /// oldest one not yet assured (a handshake, one-way UDP/ICMP, a closed
    /// TCP connection lingering). Established connections are never evicted.
    fn early_drop(&mut self) -> bool {
        let n = self.conns.len();
        if n == 0 {
            return false;
        }
        let mut best: Option<(u32, u64)> = None;
        for _ in 0..EARLY_DROP_SCAN.min(n) {
            self.evict = (self.evict + 1) % n;
            let c = &self.conns[self.evict];
            if !c.live {
                continue;
            }
            let slot = self.evict as u32;
            match c.state {
                ConnState::TcpUnconfirmed => {
                    best = Some((slot, 0));
                    break;
                }
                ConnState::TcpSynSent
                | ConnState::TcpSynRecv
                | ConnState::TcpTimeWait
                | ConnState::First
                    if best.is_none_or(|(_, t)| c.last_ms < t) =>
                {
                    best = Some((slot, c.last_ms));
                }
                _ => {}
            }
        }
        let Some((slot, _)) = best else {
            return false;
        };
        self.remove(slot);
        self.stats.early_drops += 1;
        true
    }

    /// Forgets every connection.
    pub fn flush(&mut self) {
        self.flush_if(|_| true);
    }

    /// Forgets the connections (and their NAT bindings) of the zones `dead`
    /// says are gone: a deleted datapath's key, reused later, starts clean.
    /// Returns how many went.
    pub fn flush_if(&mut self, dead: impl Fn(u32) -> bool) -> usize {
        let gone: Vec<u32> = (0..self.conns.len() as u32)
            .filter(|s| {
                let c = &self.conns[*s as usize];
                c.live && dead(c.orig.zone)
            })
            .collect();
        for &s in &gone {
            self.remove(s);
        }
        gone.len()
    }
}

#[cfg(test)]
mod tests;
