//! A poll-mode driver thread's datapath: it owns a set of ports, polls them in
//! batches, and sends each packet through parse -> exact-match cache -> (on a
//! miss) the logical pipeline -> transmit. Tables arrive as an atomically swapped
//! immutable set; nothing here locks, allocates or logs per packet. The
//! packets a PMD generates in answer (ICMP, RSTs, ARP) and their rate limits
//! are in [`answers`].

mod answers;
mod batch;
pub mod handoff;
mod housekeep;
mod inspect;
mod ports;

use crate::ct::edge::EdgeState;
use crate::dp::emc::Emc;
use crate::dp::flow::{pack_tunnel, FlowKey};
use crate::dp::megaflow::Megaflow;
use crate::dp::packet::extract;
use crate::dp::pipeline::{run_wc, Learned};
use crate::port::PortIo;
use crate::stats::{PmdStats, PortStats};
use crate::tables::Tables;
use crate::tables::ANY_TUNNEL;
use crate::tables::{Tunnel, Underlay};
use answers::ArpLimiter;
pub use answers::{RateLimiter, DNS_BURST, DNS_RATE, ICMP_BURST, ICMP_RATE};
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex, MutexGuard};
use switchyard_geneve::tunnel::{decap, DecapError, Metadata, ENCAP_LEN};
use switchyard_geneve::Error as GeneveError;
use switchyard_southbound::DropReason;

/// Where PMDs pick up new tables.
#[derive(Debug)]
pub struct SharedTables {
    pub tables: ArcSwap<Tables>,
    /// Neighbours the PMDs learned, for the agent to report (bounded; when full,
    /// a learned binding is dropped and learned again from the next ARP reply).
    pub learned: crossbeam::queue::ArrayQueue<Learned>,
    /// Table sets a PMD stopped using, for the agent to free: a set with
    /// 100,000 services takes milliseconds to free, which the PMD must not
    /// spend between two batches.
    pub retired: crossbeam::queue::ArrayQueue<Arc<Tables>>,
    /// The table generation each PMD runs (written once per new set), for
    /// the agent to tell northd what is in the datapath (`--wait=hv`).
    pub adopted: Box<[std::sync::atomic::AtomicU64]>,
}

impl SharedTables {
    pub fn new(t: Tables) -> Arc<Self> {
        Self::with_pmds(t, 1)
    }

    /// Tables for `pmds` PMD threads.
    pub fn with_pmds(t: Tables, pmds: usize) -> Arc<Self> {
        Arc::new(SharedTables {
            tables: ArcSwap::from_pointee(t),
            learned: crossbeam::queue::ArrayQueue::new(1024),
            retired: crossbeam::queue::ArrayQueue::new(64 * pmds.max(1)),
            adopted: (0..pmds.max(1))
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
        })
    }

    /// The oldest generation any PMD still runs (what the datapath surely has).
    pub fn adopted(&self) -> u64 {
        self.adopted
            .iter()
            .map(|a| a.load(std::sync::atomic::Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }
}

/// Default exact-match cache size (entries) per PMD.
pub const EMC_ENTRIES: usize = 16384;
/// Default megaflow cache size (entries) per PMD.
pub const MEGAFLOW_ENTRIES: usize = 32768;
/// Default inverse probability of caching a megaflow hit in the exact-match
/// cache (OVS's `emc-insert-inv-prob`): 1 in 100, so 100,000 flows sharing a
/// few megaflows do not thrash it, while a long flow gets there in about
/// 100 packets. A slow-path result always goes in; 0 turns the exact-match
/// cache off (no lookups either).
pub const EMC_INSERT_INV_PROB: u32 = 100;
/// Megaflow entries a table swap revalidates before it drops the cache
/// instead (each costs a slow-path walk on the PMD, about a microsecond).
pub const REVALIDATE_BUDGET: usize = 1024;
/// Housekeeping calls between reorderings of the megaflow masks (about 1 s).
const MASK_SORT_EVERY: u32 = 1024;
/// Passes between looks at the clock for housekeeping.
const HOUSEKEEP_CHECK_EVERY: u32 = 64;
/// Housekeeping runs about this often (OVS's PMD: every 1,024 iterations or
/// so), not every pass: PMD 0 takes the shared conntrack's lock for it.
const HOUSEKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);
/// Conntrack capacity of a PMD made with [`Pmd::new`] (vswitchd sets its own).
pub const CT_DEFAULT: usize = 65_536;
/// Connection slots the housekeeping looks at per call (per millisecond: a
/// million-entry table is swept in about a second, a few microseconds a call).
const EXPIRE_BUDGET: usize = 1024;

struct PortSlot {
    io: Box<dyn PortIo>,
    stats: Arc<PortStats>,
    /// DNS and DHCP answers the datapath gives this port ([`Pmd::set_dns_rate`]).
    dns_limit: RateLimiter,
}

impl PortSlot {
    /// The one transmit path: copies `frame` into the port's ring and counts
    /// it on the port, or counts the refusal on the port (`tx_dropped`) and
    /// its reason on the PMD. Whether it went.
    #[inline(always)]
    fn send(&mut self, frame: &[u8], pmd: &PmdStats) -> bool {
        let r = self.io.tx_copy(frame);
        self.sent(r, frame.len(), pmd)
    }

    /// Counts the outcome of a transmit of `len` bytes (also for one that
    /// sends a received frame back in place).
    #[inline(always)]
    fn sent(&self, r: Result<(), DropReason>, len: usize, pmd: &PmdStats) -> bool {
        match r {
            Ok(()) => {
                self.stats.tx_packets.add(1);
                self.stats.tx_bytes.add(len as u64);
                true
            }
            Err(r) => {
                self.stats.tx_dropped.add(1);
                pmd.count_drop(r);
                false
            }
        }
    }

    /// The one receive-drop path: a frame of this port dropped for `r`,
    /// counted on the port (`rx_dropped`) and by reason on the PMD.
    #[inline(always)]
    fn drop_rx(&self, r: DropReason, pmd: &PmdStats) {
        pmd.count_drop(r);
        self.stats.rx_dropped.add(1);
    }
}

/// Both caches' live entries, copied off the PMD for `dp-flows`.
#[derive(Debug, Default)]
pub struct CacheDump {
    /// Megaflows with their masks.
    pub megaflows: Vec<(crate::dp::megaflow::Entry, FlowKey)>,
    /// The megaflow cache's clock (entries' times are on it).
    pub now_ms: u64,
    /// Exact-match entries with their age in ms.
    pub exact: Vec<(crate::dp::emc::Entry, u64)>,
}

/// The per-thread datapath.
pub struct Pmd {
    /// This PMD's index in the process (0 for a lone one).
    id: usize,
    ports: Vec<Option<PortSlot>>,
    /// Rings other PMDs hand this one frames on, for ports it owns.
    inbound: Vec<Arc<handoff::Handoff>>,
    /// How other PMDs wake this one when it blocks.
    waker: Arc<crate::sys::Waker>,
    active: Vec<u16>,
    /// Ports transmitted to since their last flush (each listed once).
    dirty: Vec<u16>,
    is_dirty: Vec<bool>,
    tables: Arc<Tables>,
    shared: Arc<SharedTables>,
    emc: Emc,
    megaflow: Megaflow,
    megaflow_on: bool,
    /// 1 in this many megaflow hits is copied to the exact-match cache (0: none).
    emc_insert_inv_prob: u32,
    /// xorshift state for that draw.
    rng: u64,
    housekeeps: u32,
    /// Passes since the clock was last read for housekeeping, and when it ran.
    passes: u32,
    last_housekeep: std::time::Instant,
    /// The one clock this PMD reads (once per batch, when a stage needs it).
    clock: crate::dp::clock::Clock,
    /// Retired table sets waiting for room in the agent's queue.
    held_retired: Vec<Arc<Tables>>,
    out: Vec<u16>,
    /// A stateful batch between its stages ([`batch`]).
    stages: Option<Box<batch::Stages>>,
    /// Where punted packets build what they generate (allocated once).
    scratch: Box<[u8; crate::port::MAX_FRAME]>,
    arp_limiter: Box<ArpLimiter>,
    /// Conntrack, load-balancer affinity and NAT state ([`crate::ct::edge`]),
    /// shared by every PMD of the process (a connection's two directions may
    /// arrive on different PMDs); taken once per batch that needs it.
    edge: Arc<Mutex<EdgeState>>,
    /// Whether this PMD expires connections and mirrors conntrack counters
    /// (one PMD does, so the totals are not counted twice).
    edge_keeper: bool,
    /// Stateful batches in stages ([`Pmd::set_staged`]).
    staged: bool,
    pub stats: Arc<PmdStats>,
    /// The exact-match cache's hash key, random per process.
    seed: u64,
    /// Generated answers (ICMP, RST), per PMD.
    answers: RateLimiter,
    /// DNS answers per second per port, and their burst.
    dns_rate: (u32, u32),
    /// The last (generation, tunnel, datapath, ingress port) a received
    /// Geneve packet was allowed to name: a stream of packets from one pod
    /// checks its binding once, not per packet.
    ingress_ok: std::cell::Cell<(u64, u16, u32, u16)>,
}

impl std::fmt::Debug for Pmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pmd({} ports)", self.active.len())
    }
}

/// Encapsulates `frame` toward `tun` and queues it on the underlay port `io`.
fn encap_send(
    io: &mut dyn PortIo,
    u: &Underlay,
    tun: &Tunnel,
    tun_md: u64,
    hash: u32,
    frame: &[u8],
) -> Result<(), DropReason> {
    let Some(template) = &tun.template else {
        return Err(DropReason::TunnelUnresolved);
    };
    // The outer packet must fit the underlay MTU (its IP header says DF).
    if frame.len() + ENCAP_LEN - 14 > usize::from(u.mtu) {
        return Err(DropReason::TunnelTooBig);
    }
    let (dp, ingress, egress) = crate::dp::flow::unpack_tunnel(tun_md);
    let mut hdr = [0u8; ENCAP_LEN];
    template.write(
        &mut hdr,
        &Metadata {
            datapath: dp,
            ingress,
            egress,
        },
        switchyard_geneve::tunnel::source_port(hash),
        frame.len(),
    );
    io.tx_copy2(&hdr, frame)
}

/// Locks the shared edge state; a PMD that panicked holding it left it
/// consistent enough to go on (every update is a few plain stores).
fn lock(m: &Mutex<EdgeState>) -> MutexGuard<'_, EdgeState> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A random 64-bit value (std's per-process random hash keys).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5377_6974_6368_7964);
    h.finish()
}

/// Borrows element `a` shared and element `b` mutably (`a != b`).
fn pair<T>(v: &mut [T], a: usize, b: usize) -> (&T, &mut T) {
    debug_assert_ne!(a, b);
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&y[0], &mut x[b])
    }
}

impl Pmd {
    pub fn new(shared: Arc<SharedTables>, stats: Arc<PmdStats>, emc_entries: usize) -> Self {
        let seed = random_seed();
        let pmd = Pmd {
            id: 0,
            inbound: Vec::new(),
            waker: Arc::new(crate::sys::Waker::new().expect("eventfd")),
            megaflow: Megaflow::new(MEGAFLOW_ENTRIES, seed.rotate_left(17)),
            megaflow_on: true,
            emc_insert_inv_prob: EMC_INSERT_INV_PROB,
            rng: seed | 1,
            housekeeps: 0,
            passes: 0,
            last_housekeep: std::time::Instant::now(),
            clock: crate::dp::clock::Clock::new(),
            held_retired: Vec::with_capacity(housekeep::HELD_RETIRED),
            ports: Vec::new(),
            active: Vec::new(),
            dirty: Vec::with_capacity(1024),
            is_dirty: Vec::new(),
            tables: shared.tables.load_full(),
            shared,
            emc: Emc::new(emc_entries),
            out: Vec::with_capacity(1024),
            stages: Some(batch::Stages::new()),
            scratch: Box::new([0; crate::port::MAX_FRAME]),
            arp_limiter: ArpLimiter::new(),
            edge: Arc::new(Mutex::new(EdgeState::new(CT_DEFAULT))),
            edge_keeper: true,
            staged: false,
            stats,
            seed,
            answers: RateLimiter::new(ICMP_RATE, ICMP_BURST),
            dns_rate: (DNS_RATE, DNS_BURST),
            ingress_ok: std::cell::Cell::new((u64::MAX, 0, 0, 0)),
        };
        pmd.edge().ct.set_zone_limits(&pmd.tables.ct_zone_limits);
        pmd
    }

    /// Replaces the conntrack table with an empty one of `capacity` connections.
    pub fn set_ct_capacity(&mut self, capacity: usize) {
        let mut e = EdgeState::new(capacity);
        e.ct.set_zone_limits(&self.tables.ct_zone_limits);
        self.edge = Arc::new(Mutex::new(e));
    }

    /// The conntrack, affinity and NAT state, locked (PMDs take it once per
    /// batch; hold it briefly).
    pub fn edge(&self) -> MutexGuard<'_, EdgeState> {
        lock(&self.edge)
    }

    /// The state to give another PMD of this process ([`Pmd::share_edge`]).
    pub fn edge_handle(&self) -> Arc<Mutex<EdgeState>> {
        self.edge.clone()
    }

    /// Makes this PMD number `id` of several: it reports its table
    /// generation in that slot of [`SharedTables::adopted`].
    pub fn set_id(&mut self, id: usize) {
        self.id = id;
    }

    /// This PMD's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// What other PMDs wake this one with (give it to their [`Handoff`]s).
    ///
    /// [`Handoff`]: handoff::Handoff
    pub fn waker(&self) -> Arc<crate::sys::Waker> {
        self.waker.clone()
    }

    /// Uses `edge` (another PMD's) instead of this PMD's own state; that PMD
    /// keeps expiring connections and counting them.
    pub fn share_edge(&mut self, edge: Arc<Mutex<EdgeState>>) {
        self.edge = edge;
        self.edge_keeper = false;
        self.staged = true;
    }

    /// Runs stateful batches in stages, so the shared conntrack is locked
    /// only for the conntrack work ([`batch`]): for every PMD whose state
    /// others share (the one that gave its [`Pmd::edge_handle`] too). A lone
    /// PMD goes packet by packet under one uncontended lock per batch, which
    /// costs fewer instructions.
    pub fn set_staged(&mut self, on: bool) {
        self.staged = on;
    }

    /// Sizes the megaflow cache (dropping its entries) and sets the inverse
    /// probability of copying a megaflow hit into the exact-match cache.
    pub fn set_megaflow(&mut self, entries: usize, emc_insert_inv_prob: u32) {
        self.megaflow = Megaflow::new(entries, self.seed.rotate_left(17));
        self.megaflow_on = entries > 0;
        self.emc_insert_inv_prob = emc_insert_inv_prob;
    }

    /// Whether this megaflow hit goes into the exact-match cache.
    #[inline]
    fn emc_draw(&mut self) -> bool {
        match self.emc_insert_inv_prob {
            0 => false,
            1 => true,
            n => {
                let mut x = self.rng;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.rng = x;
                // 1 in n without a division: the top 32 bits scaled to 0..n.
                ((x >> 32) * u64::from(n)) >> 32 == 0
            }
        }
    }

    /// The tables this PMD runs.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The current table generation.
    pub fn generation(&self) -> u64 {
        self.tables.generation
    }

    /// Whether any port still has transmissions in flight.
    pub fn tx_outstanding(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Processes one batch from one port and flushes what it sent (benches).
    pub fn poll_port(&mut self, slot: u16) -> usize {
        let n = self.process_port(slot);
        self.flush_dirty();
        n
    }

    /// One pass over every port: returns the packets processed.
    pub fn poll_once(&mut self) -> usize {
        self.stats.iterations.add(1);
        let t0 = crate::sys::cycles();
        self.drain_inbound();
        let mut total = 0;
        let mut t = t0;
        for i in 0..self.active.len() {
            let slot = self.active[i];
            let n = self.process_port(slot);
            if n > 0 {
                let now = crate::sys::cycles();
                if let Some(p) = &mut self.ports[usize::from(slot)] {
                    p.stats.rx_cycles.add(now.wrapping_sub(t));
                    p.io.rx_account(now.wrapping_sub(t));
                }
                t = now;
                total += n;
            }
        }
        // Receiving ports recycle frames into their fill rings on flush.
        for i in 0..self.active.len() {
            let slot = self.active[i];
            self.mark_dirty(slot);
        }
        self.flush_dirty();
        if total > 0 {
            self.stats.packets.add(total as u64);
            self.stats
                .busy_cycles
                .add(crate::sys::cycles().wrapping_sub(t0));
        }
        total
    }

    /// Parses frame `i` of port `slot`: its flow key and where the frame the
    /// pipeline sees begins (past the outer headers, for a tunnel packet).
    #[inline(always)]
    fn parse(&self, slot: u16, i: usize, underlay: bool) -> Result<(FlowKey, usize), DropReason> {
        let Some(src) = self.ports[usize::from(slot)].as_ref() else {
            return Err(DropReason::UnknownInport);
        };
        let frame = src.io.rx_frame(i);
        if !underlay {
            return extract(frame, slot).map(|k| (k, 0));
        }
        let d = decap(frame).map_err(|e| match e {
            DecapError::Geneve(GeneveError::UnknownCritical(..)) => {
                DropReason::TunnelUnknownCritical
            }
            _ => DropReason::MalformedTunnel,
        })?;
        // Only chassis of the southbound database may send here, and only to
        // this chassis's encap IP: anyone else on the underlay is a stranger.
        let Some(&t) = self.tables.tunnel_by_ip.get(&d.src_ip) else {
            return Err(DropReason::TunnelUnknownSource);
        };
        if self.tables.underlay.is_none_or(|u| u.ip != d.dst_ip) {
            return Err(DropReason::TunnelWrongDestination);
        }
        let tunnel = &self.tables.tunnels[usize::from(t)];
        let md = d.metadata;
        // The logical ingress port must live on the sending chassis (or be a
        // router's patch port, which lives everywhere): a chassis cannot
        // speak for another's pods and skip their port security.
        let memo = (self.tables.generation, t, md.datapath, md.ingress);
        if self.ingress_ok.get() != memo {
            let from = (md.datapath, u32::from(md.ingress));
            match self.tables.tunnel_ingress.get(&from) {
                Some(&w) if w == t || w == ANY_TUNNEL => self.ingress_ok.set(memo),
                _ if !self.tables.datapaths.contains_key(&md.datapath) => {
                    return Err(DropReason::UnknownTunnelKey);
                }
                _ => return Err(DropReason::TunnelIngressNotBound),
            }
        }
        // The inner frame is a subslice of `frame`; its offset from the addresses.
        let off = d.inner.as_ptr() as usize - frame.as_ptr() as usize;
        let mut key = extract(d.inner, slot)?;
        key.tun = pack_tunnel(md.datapath, md.ingress, md.egress);
        tunnel.stats.rx_packets.add(1);
        tunnel.stats.rx_bytes.add(d.inner.len() as u64);
        Ok((key, off))
    }
}
