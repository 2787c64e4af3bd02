//! Lock-free counters. Each counter has exactly one writer (its PMD thread), so
//! increments are a relaxed load and store, no atomic read-modify-write; readers
//! (the control socket) see values that are at most a batch old.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use switchyard_southbound::DropReason;

/// A single-writer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }
    /// Sets a gauge (single writer).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
}

/// Counters of one PMD thread.
#[derive(Debug)]
pub struct PmdStats {
    pub packets: CachePadded<Counter>,
    pub emc_hits: Counter,
    pub emc_misses: Counter,
    pub uncacheable: Counter,
    /// Exact-match misses the megaflow cache answered, and those it did not
    /// (slow-path walks).
    pub megaflow_hits: Counter,
    pub megaflow_misses: Counter,
    /// Megaflows a table swap kept after revalidation, and dropped.
    pub megaflow_kept: Counter,
    pub megaflow_dropped: Counter,
    /// Masks in use (gauge).
    pub megaflow_masks: Counter,
    pub busy_cycles: Counter,
    pub iterations: Counter,
    pub idle_sleeps: Counter,
    /// Packets handed to the slow path's generator (ICMP, ARP, learning).
    pub punted: Counter,
    /// Packets the datapath generated and sent (ICMP replies/errors, ARP requests).
    pub generated: Counter,
    /// Connections a load balancer sent to a backend (first packets).
    pub lb_new: Counter,
    /// Packets whose addresses or ports conntrack translated (LB and NAT).
    pub nat_rewrites: Counter,
    /// Partial TCP/UDP checksums (a pod's checksum offload) the datapath
    /// completed on the way in: work done, not a drop.
    pub csum_completed: Counter,
    /// Conntrack, mirrored by the PMD's housekeeping: entries now (gauge),
    /// connections entered, refused because the table was full, expired.
    pub ct_entries: Counter,
    pub ct_inserts: Counter,
    pub ct_full: Counter,
    pub ct_expired: Counter,
    pub ct_early_drops: Counter,
    /// DNS queries the datapath answered from a switch's records, answered
    /// NXDOMAIN (a name under its domain without one), let go on (a name it
    /// has nothing for), and could not read (let go on too).
    pub dns_answered: Counter,
    pub dns_nxdomain: Counter,
    pub dns_passed: Counter,
    pub dns_malformed: Counter,
    /// DHCPv4 replies the datapath sent (OFFER, ACK, NAK), and messages it
    /// let go on (a REQUEST to another server, a port without a lease).
    pub dhcp_offers: Counter,
    pub dhcp_acks: Counter,
    pub dhcp_naks: Counter,
    pub dhcp_passed: Counter,
    pub drops: [Counter; DropReason::COUNT],
}

impl Default for PmdStats {
    fn default() -> Self {
        PmdStats {
            packets: Default::default(),
            emc_hits: Default::default(),
            emc_misses: Default::default(),
            uncacheable: Default::default(),
            megaflow_hits: Default::default(),
            megaflow_misses: Default::default(),
            megaflow_kept: Default::default(),
            megaflow_dropped: Default::default(),
            megaflow_masks: Default::default(),
            busy_cycles: Default::default(),
            iterations: Default::default(),
            idle_sleeps: Default::default(),
            punted: Default::default(),
            generated: Default::default(),
            lb_new: Default::default(),
            nat_rewrites: Default::default(),
            csum_completed: Default::default(),
            ct_entries: Default::default(),
            ct_inserts: Default::default(),
            ct_full: Default::default(),
            ct_expired: Default::default(),
            ct_early_drops: Default::default(),
            dns_answered: Default::default(),
            dns_nxdomain: Default::default(),
            dns_passed: Default::default(),
            dns_malformed: Default::default(),
            dhcp_offers: Default::default(),
            dhcp_acks: Default::default(),
            dhcp_naks: Default::default(),
            dhcp_passed: Default::default(),
            drops: std::array::from_fn(|_| Counter::default()),
        }
    }
}

impl PmdStats {
    #[inline]
    pub fn count_drop(&self, r: DropReason) {
        self.drops[r as usize].add(1);
    }
    #[inline]
    pub fn count_drops(&self, r: DropReason, n: u64) {
        self.drops[r as usize].add(n);
    }
    pub fn reset(&self) {
        for c in [
            &*self.packets,
            &self.emc_hits,
            &self.emc_misses,
            &self.uncacheable,
            &self.megaflow_hits,
            &self.megaflow_misses,
            &self.megaflow_kept,
            &self.megaflow_dropped,
            &self.busy_cycles,
            &self.iterations,
            &self.idle_sleeps,
            &self.punted,
            &self.generated,
            &self.lb_new,
            &self.nat_rewrites,
            &self.csum_completed,
            &self.dns_answered,
            &self.dns_nxdomain,
            &self.dns_passed,
            &self.dns_malformed,
            &self.dhcp_offers,
            &self.dhcp_acks,
            &self.dhcp_naks,
            &self.dhcp_passed,
        ] {
            c.reset();
        }
        for d in &self.drops {
            d.reset();
        }
    }
}

/// Counters of one port.
#[derive(Debug, Default)]
pub struct PortStats {
    pub rx_packets: CachePadded<Counter>,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    pub rx_dropped: Counter,
    pub tx_dropped: Counter,
    /// Cycles the PMD spent on batches from this port (`pmd-rxq-show`).
    pub rx_cycles: Counter,
}

impl PortStats {
    /// rx/tx packets, bytes and drops summed over several PMDs' copies of a
    /// port's counters (each PMD writes its own; the agent adds them up).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a PortStats>) -> [u64; 6] {
        let mut t = [0u64; 6];
        for s in all {
            for (x, c) in t.iter_mut().zip([
                &*s.rx_packets,
                &s.rx_bytes,
                &s.tx_packets,
                &s.tx_bytes,
                &s.rx_dropped,
                &s.tx_dropped,
            ]) {
                *x += c.get();
            }
        }
        t
    }
}

/// Counters of one receive queue of an interface, written by the PMD that
/// polls it (`pmd-rxq-show`).
#[derive(Debug, Default)]
pub struct RxqStats {
    pub packets: Counter,
    /// Cycles spent on batches from this queue.
    pub cycles: Counter,
    /// The kernel's own counts for an AF_XDP socket (XDP_STATISTICS), read
    /// by the PMD's housekeeping now and then: frames it dropped before the
    /// RX ring (no room, or longer than the socket takes), invalid
    /// descriptors, and fill-ring-empty events.
    pub kernel_rx_dropped: Counter,
    pub kernel_rx_invalid: Counter,
    pub kernel_rx_ring_full: Counter,
    pub kernel_fill_empty: Counter,
}

/// A counter several PMDs write (an atomic add: no increment is lost).
#[derive(Debug, Default)]
pub struct SharedCounter(AtomicU64);

impl SharedCounter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Counters of one tunnel (one remote chassis), written by every PMD that
/// sends through it or receives from it.
#[derive(Debug, Default)]
pub struct TunnelStats {
    pub tx_packets: SharedCounter,
    pub tx_bytes: SharedCounter,
    pub rx_packets: SharedCounter,
    pub rx_bytes: SharedCounter,
    /// Packets that could not be sent: remote MAC unresolved, ring full, too big.
    pub tx_errors: SharedCounter,
}
