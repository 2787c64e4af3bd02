//! An AF_XDP port: one socket and UMEM per interface queue, frames recycled through
//! a free list sized once at setup, and the copy-mode pitfalls handled: TX is
//! kicked while descriptors are outstanding, the fill ring is topped up only with
//! what it reports free, and a busy bind is retried.
//!
//! Frames longer than one chunk (jumbo MTUs) arrive as a chain of
//! descriptors (`XDP_USE_SG`); the port gathers a chain into one of its
//! per-batch buffers so that the datapath always sees a frame as one slice,
//! and spreads a long frame over a chain again on transmit. Single-chunk
//! frames, the common case, are handled in place as before.

mod queue;

use super::rx_queue_count;
use super::xdp::{AttachMode, XdpAttachment};
use crate::port::{PortIo, BATCH, MAX_FRAME};
use crate::stats::RxqStats;
use queue::{open_queue, Queue, PKT_CONTD};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use switchyard_southbound::DropReason;
use xsk_rs::FrameDesc;

/// Most descriptors one frame may span: a [`MAX_FRAME`] frame in chunks of
/// [`queue::CHUNK`] less the XDP headroom. A longer chain (a GSO
/// super-frame, a hostile or broken driver) is dropped whole and counted as
/// `rx_chain_too_long`.
const MAX_CHAIN: usize = MAX_FRAME.div_ceil(queue::CHUNK as usize - 256);

/// Descriptors one receive takes: a batch, and the rest of a chain the
/// batch cut.
const RX_DESCS: usize = BATCH + MAX_CHAIN;

/// One received frame of the current batch: its descriptors in `rx_descs`,
/// and, for a chain, its gathered length.
#[derive(Clone, Copy, Debug, Default)]
struct Rx {
    first: u8,
    descs: u8,
    sent: bool,
    len: u16,
}

/// Options for opening a port.
#[derive(Clone, Copy, Debug)]
pub struct XskOptions {
    pub frames_per_queue: u32,
    pub ring_size: u32,
    pub attach: AttachMode,
    /// Try zero-copy first (falls back to copy where the driver lacks it).
    pub zero_copy: bool,
    /// Steer only Geneve to the socket (an underlay interface).
    pub geneve_only: bool,
}

impl Default for XskOptions {
    fn default() -> Self {
        XskOptions {
            frames_per_queue: 4096,
            ring_size: 2048,
            attach: AttachMode::Auto,
            zero_copy: true,
            geneve_only: false,
        }
    }
}

/// An interface served by AF_XDP: all its queues, or the share of them one
/// PMD polls (see [`XskPort::split`]).
pub struct XskPort {
    iface: String,
    queues: Vec<Queue>,
    /// Queue whose frames are in the current batch.
    cur: usize,
    /// Queue the next receive looks at first: the one after the last that
    /// gave frames, so that a busy queue never starves the others.
    next: usize,
    /// Rotates copied transmits of frames without a flow hash over the queues.
    tx_rr: usize,
    rx_descs: [FrameDesc; RX_DESCS],
    /// Descriptors taken in the current batch.
    nd: usize,
    rx: [Rx; BATCH],
    /// Gathered chains of the current batch, by frame index (made at open
    /// only on a multi-buffer socket: nothing is allocated per packet).
    gather: Vec<Box<[u8; MAX_FRAME]>>,
    /// Chains refused since housekeeping last asked: too long, cut short.
    chain_too_long: u64,
    chain_short: u64,
    /// Calls of `take_rx_drops` (kernel statistics are read every 64th).
    housekeeps: u32,
    n: usize,
    zero_copy: bool,
    xdp_mode: &'static str,
    /// The XDP program and its socket map, shared by every part of a split
    /// port; detached when the last part closes.
    xdp: Arc<Mutex<XdpAttachment>>,
}

impl std::fmt::Debug for XskPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XskPort({}, {} queues)", self.iface, self.queues.len())
    }
}

impl XskPort {
    fn with(
        iface: &str,
        queues: Vec<Queue>,
        zero_copy: bool,
        xdp_mode: &'static str,
        xdp: Arc<Mutex<XdpAttachment>>,
    ) -> Self {
        let sg = queues.iter().any(|q| q.sg);
        XskPort {
            gather: if sg {
                (0..BATCH).map(|_| Box::new([0u8; MAX_FRAME])).collect()
            } else {
                Vec::new()
            },
            iface: iface.to_string(),
            queues,
            cur: 0,
            next: 0,
            tx_rr: 0,
            rx_descs: [FrameDesc::default(); RX_DESCS],
            nd: 0,
            rx: [Rx::default(); BATCH],
            chain_too_long: 0,
            chain_short: 0,
            housekeeps: 0,
            n: 0,
            zero_copy,
            xdp_mode,
            xdp,
        }
    }

    /// Opens every RX queue of `iface` with AF_XDP and attaches the XDP program.
    pub fn open(iface: &str, o: &XskOptions) -> anyhow::Result<Self> {
        let nq = rx_queue_count(iface);
        let mut queues = Vec::new();
        let mut zero_copy = o.zero_copy;
        for q in 0..nq {
            let queue = match open_queue(iface, q, o, zero_copy) {
                Ok(q) => q,
                Err(_) if zero_copy => {
                    zero_copy = false;
                    open_queue(iface, q, o, false)?
                }
                Err(e) => return Err(e),
            };
            queues.push(queue);
        }
        let mut xdp = XdpAttachment::attach(iface, o.attach, o.geneve_only)?;
        for (i, q) in queues.iter().enumerate() {
            xdp.register(i as u32, &q.rx.fd().as_raw_fd())?;
        }
        let mode = xdp.mode;
        let mut p = XskPort::with(iface, queues, zero_copy, mode, Arc::new(Mutex::new(xdp)));
        for q in &mut p.queues {
            q.refill();
        }
        Ok(p)
    }

    /// The underlay program's trust maps (only for a port opened `geneve_only`).
    pub fn take_underlay_filter(&mut self) -> anyhow::Result<super::xdp::UnderlayFilter> {
        self.xdp
            .lock()
            .map_err(|_| anyhow::anyhow!("XDP attachment poisoned"))?
            .take_underlay_filter()
    }

    /// Number of queues this port (or part) polls.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Each queue's interface number and counters.
    pub fn rxq_stats(&self) -> Vec<(u32, Arc<RxqStats>)> {
        self.queues
            .iter()
            .map(|q| (q.id, q.stats.clone()))
            .collect()
    }

    /// Splits the port into parts, one per group of queue indices (each
    /// queue in exactly one group; empty groups are skipped): each PMD then
    /// polls and transmits on its own queues, with no lock between them.
    /// Called before any frame moves, so no batch is in flight.
    pub fn split(self, groups: &[Vec<usize>]) -> anyhow::Result<Vec<XskPort>> {
        let nq = self.queues.len();
        let mut seen = vec![false; nq];
        for &q in groups.iter().flatten() {
            anyhow::ensure!(
                q < nq && !seen[q],
                "queue {q} of {} is not assignable once",
                self.iface
            );
            seen[q] = true;
        }
        anyhow::ensure!(
            seen.iter().all(|&s| s),
            "every queue of {} needs a PMD",
            self.iface
        );
        let XskPort {
            iface,
            queues,
            zero_copy,
            xdp_mode,
            xdp,
            ..
        } = self;
        let mut slots: Vec<Option<Queue>> = queues.into_iter().map(Some).collect();
        Ok(groups
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| {
                let queues = g.iter().filter_map(|&q| slots[q].take()).collect();
                XskPort::with(&iface, queues, zero_copy, xdp_mode, xdp.clone())
            })
            .collect())
    }

    /// The queue a copied frame leaves on: with several, one per flow (a
    /// hash of the IPv4 addresses and ports, so a flow keeps its order) or,
    /// for frames that are not IPv4, in rotation.
    fn tx_queue(&mut self, head: &[u8], data: &[u8]) -> usize {
        let nq = self.queues.len();
        if nq < 2 {
            return 0;
        }
        // Encapsulated frames hash on their outer headers, which is the head.
        let f = if head.is_empty() { data } else { head };
        match flow_hash(f) {
            Some(h) => (h % nq as u64) as usize,
            None => {
                self.tx_rr = (self.tx_rr + 1) % nq;
                self.tx_rr
            }
        }
    }

    /// XDP attach mode and copy/zero-copy, for `port-list`.
    pub fn describe(&self) -> String {
        format!(
            "afxdp {} {}{} queues={}",
            self.xdp_mode,
            if self.zero_copy { "zero-copy" } else { "copy" },
            if self.queues.iter().any(|q| q.sg) {
                " multi-buffer"
            } else {
                ""
            },
            self.queues.len()
        )
    }

    /// Groups the descriptors of this batch into frames: a chain is
    /// gathered into its frame's buffer; a chain too long or cut short is
    /// recycled at once and counted. Returns the number of frames.
    fn group(&mut self, qi: usize) -> usize {
        let (nd, mut np, mut d) = (self.nd, 0, 0);
        while d < nd {
            let start = d;
            let (end, chain) = next_chain(&self.rx_descs[..nd], start, |x| x.options());
            d = end;
            let descs = d - start;
            let q = &mut self.queues[qi];
            match chain {
                Chain::Frame => {}
                Chain::TooLong => self.chain_too_long += 1,
                Chain::Short => self.chain_short += 1,
            }
            if chain != Chain::Frame {
                q.free.extend_from_slice(&self.rx_descs[start..d]);
                continue;
            }
            let mut len = 0usize;
            if descs > 1 {
                let buf = &mut self.gather[np];
                for desc in &self.rx_descs[start..d] {
                    // SAFETY: received in this batch on queue `qi`: the
                    // descriptor is ours and in that UMEM until recycled.
                    let part = unsafe { q.umem.data(desc) }.contents();
                    // At most MAX_CHAIN chunks of `room` bytes: within MAX_FRAME
                    // unless a chunk claims more than its room (then refuse).
                    let Some(dst) = buf.get_mut(len..len + part.len()) else {
                        len = usize::MAX;
                        break;
                    };
                    dst.copy_from_slice(part);
                    len += part.len();
                }
                if len == usize::MAX {
                    self.chain_too_long += 1;
                    q.free.extend_from_slice(&self.rx_descs[start..d]);
                    continue;
                }
            }
            self.rx[np] = Rx {
                first: start as u8,
                descs: descs as u8,
                sent: false,
                len: len as u16,
            };
            np += 1;
        }
        np
    }
}

impl PortIo for XskPort {
    fn rx_burst(&mut self) -> usize {
        let nq = self.queues.len();
        for k in 0..nq {
            let qi = (self.next + k) % nq;
            let q = &mut self.queues[qi];
            // SAFETY: rx_descs receive frames of this queue's UMEM; they stay ours
            // until rx_done() recycles them or tx hands them back to the kernel.
            let mut nd = unsafe { q.rx.consume(&mut self.rx_descs[..BATCH]) };
            if nd == 0 {
                continue;
            }
            // The kernel publishes a chain whole; take the rest of one the
            // batch cut (a chain longer than RX_DESCS allows is consumed and
            // recycled here, and `group` refuses what was kept of it).
            while self.rx_descs[nd - 1].options() & PKT_CONTD != 0 {
                let mut one = [FrameDesc::default()];
                // SAFETY: as above.
                if unsafe { q.rx.consume(&mut one) } == 0 {
                    break; // `group` counts the chain as cut short
                }
                if nd < RX_DESCS {
                    self.rx_descs[nd] = one[0];
                    nd += 1;
                    continue;
                }
                // Longer than any frame a port carries: recycle it whole.
                let mut start = nd - 1;
                while start > 0 && self.rx_descs[start - 1].options() & PKT_CONTD != 0 {
                    start -= 1;
                }
                q.free.extend_from_slice(&self.rx_descs[start..nd]);
                q.free.push(one[0]);
                let mut more = one[0].options() & PKT_CONTD != 0;
                while more {
                    // SAFETY: as above.
                    if unsafe { q.rx.consume(&mut one) } == 0 {
                        break;
                    }
                    q.free.push(one[0]);
                    more = one[0].options() & PKT_CONTD != 0;
                }
                nd = start;
                self.chain_too_long += 1;
                break;
            }
            self.nd = nd;
            self.cur = qi;
            self.next = (qi + 1) % nq;
            let n = if nd == 0 { 0 } else { self.group(qi) };
            self.queues[qi].stats.packets.add(n as u64);
            self.n = n;
            if n > 0 {
                return n;
            }
        }
        self.n = 0;
        self.nd = 0;
        0
    }

    fn rx_frame(&self, i: usize) -> &[u8] {
        if i >= self.n {
            return &[]; // not a frame of this batch: its descriptor is not ours
        }
        let r = self.rx[i];
        if r.descs > 1 {
            return &self.gather[i][..usize::from(r.len)];
        }
        // SAFETY: i < n, so descriptor `first` was received in this batch on
        // queue `cur`: it belongs to that UMEM, and the kernel does not touch
        // it until we return it.
        unsafe {
            self.queues[self.cur]
                .umem
                .data(&self.rx_descs[usize::from(r.first)])
        }
        .contents()
    }

    fn rx_frame_mut(&mut self, i: usize) -> &mut [u8] {
        if i >= self.n {
            return &mut [];
        }
        let r = self.rx[i];
        if r.descs > 1 {
            return &mut self.gather[i][..usize::from(r.len)];
        }
        let q = &self.queues[self.cur];
        // SAFETY: as in rx_frame (i < n); we hold `&mut self`, so no other
        // reference to this frame's data exists.
        let mut d = unsafe { q.umem.data_mut(&mut self.rx_descs[usize::from(r.first)]) };
        let len = d.contents().len();
        let ptr = d.contents_mut().as_mut_ptr();
        // SAFETY: ptr/len describe the frame's data inside the UMEM mapping, which
        // outlives `&mut self`; the borrow is tied to `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }

    fn tx_rx_frame(&mut self, i: usize) -> Result<(), DropReason> {
        if i >= self.n || self.rx[i].sent {
            return Err(DropReason::TxNoFrame);
        }
        let r = self.rx[i];
        if r.descs > 1 {
            // A gathered chain leaves as a copy (spread over chunks again);
            // its own descriptors are recycled with the batch.
            let qi = self.cur;
            let XskPort { queues, gather, .. } = self;
            return queues[qi].push_copy(&[], &gather[i][..usize::from(r.len)]);
        }
        let d = self.rx_descs[usize::from(r.first)];
        self.queues[self.cur].push_rx(d)?;
        self.rx[i].sent = true;
        Ok(())
    }

    fn tx_copy(&mut self, data: &[u8]) -> Result<(), DropReason> {
        self.tx_copy2(&[], data)
    }

    fn tx_copy2(&mut self, head: &[u8], data: &[u8]) -> Result<(), DropReason> {
        let qi = self.tx_queue(head, data);
        self.queues[qi].push_copy(head, data)
    }

    fn rx_done(&mut self) {
        let q = &mut self.queues[self.cur];
        for r in &self.rx[..self.n] {
            if !r.sent {
                let (a, b) = (
                    usize::from(r.first),
                    usize::from(r.first) + usize::from(r.descs),
                );
                q.free.extend_from_slice(&self.rx_descs[a..b]);
            }
        }
        self.n = 0;
        self.nd = 0;
    }

    fn flush(&mut self) {
        for q in &mut self.queues {
            q.flush();
        }
    }

    fn tx_outstanding(&self) -> bool {
        self.queues
            .iter()
            .any(|q| q.outstanding > 0 || q.has_pending())
    }

    fn rx_fds(&self, out: &mut Vec<i32>) {
        out.extend(self.queues.iter().map(|q| q.rx.fd().as_raw_fd()));
    }

    fn rx_account(&mut self, cycles: u64) {
        if let Some(q) = self.queues.get(self.cur) {
            q.stats.cycles.add(cycles);
        }
    }

    fn take_rx_drops(&mut self, out: &mut dyn FnMut(DropReason, u64)) {
        // The kernel's counts cost a syscall per queue: every 64th call
        // (housekeeping runs about once a millisecond).
        self.housekeeps = self.housekeeps.wrapping_add(1);
        if self.housekeeps % 64 == 1 {
            for q in &self.queues {
                if let Ok(k) = q.rx.fd().xdp_statistics() {
                    q.stats.kernel_rx_dropped.set(k.rx_dropped());
                    q.stats.kernel_rx_invalid.set(k.rx_invalid_descs());
                    q.stats.kernel_rx_ring_full.set(k.rx_ring_full());
                    q.stats.kernel_fill_empty.set(k.rx_fill_ring_empty_descs());
                }
            }
        }
        if self.chain_too_long > 0 {
            out(
                DropReason::RxChainTooLong,
                std::mem::take(&mut self.chain_too_long),
            );
        }
        if self.chain_short > 0 {
            out(
                DropReason::RxChainShort,
                std::mem::take(&mut self.chain_short),
            );
        }
    }

    fn mode(&self) -> String {
        self.describe()
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// What the descriptors from one position up to the next end of a frame are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chain {
    /// A frame of at most [`MAX_CHAIN`] descriptors.
    Frame,
    /// A whole frame, but longer than any a port carries.
    TooLong,
    /// The descriptors ran out before the frame's last one.
    Short,
}

/// The frame starting at `start` of `descs` (whose `options` say which
/// continue): where it ends (exclusive) and what it is.
fn next_chain<T>(descs: &[T], start: usize, options: impl Fn(&T) -> u32) -> (usize, Chain) {
    let mut d = start;
    while d < descs.len() && options(&descs[d]) & PKT_CONTD != 0 {
        d += 1;
    }
    if d == descs.len() {
        return (d, Chain::Short);
    }
    let end = d + 1;
    let kind = if end - start > MAX_CHAIN {
        Chain::TooLong
    } else {
        Chain::Frame
    };
    (end, kind)
}

/// A hash of an untagged IPv4 frame's addresses, protocol and (when present)
/// first four L4 bytes; None for anything else.
fn flow_hash(f: &[u8]) -> Option<u64> {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let mut h = u64::from(u32::from_be_bytes([f[26], f[27], f[28], f[29]]))
        ^ u64::from(u32::from_be_bytes([f[30], f[31], f[32], f[33]])) << 32
        ^ u64::from(f[23]);
    if let Some(p) = f.get(14 + ihl..14 + ihl + 4) {
        h ^= u64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]])).rotate_left(17);
    }
    // Finish (a 64-bit multiply mix) so the low bits depend on every input.
    h = (h ^ (h >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Some(h ^ (h >> 29))
}

#[cfg(test)]
mod tests {
    use super::{flow_hash, next_chain, Chain, MAX_CHAIN, PKT_CONTD};

    /// Splits a batch of descriptor option words into (start, end, kind).
    fn split(opts: &[u32]) -> Vec<(usize, usize, Chain)> {
        let mut out = Vec::new();
        let mut d = 0;
        while d < opts.len() {
            let (end, kind) = next_chain(opts, d, |o| *o);
            assert!(end > d, "every step consumes a descriptor");
            out.push((d, end, kind));
            d = end;
        }
        out
    }

    #[test]
    fn chains_split_into_frames_and_malformed_ones_are_named() {
        const C: u32 = PKT_CONTD;
        assert_eq!(MAX_CHAIN, 3, "a 9,216-byte frame in 3,840-byte chunks");
        // Single frames, a jumbo chain of three, single again.
        assert_eq!(
            split(&[0, C, C, 0, 0]),
            vec![
                (0, 1, Chain::Frame),
                (1, 4, Chain::Frame),
                (4, 5, Chain::Frame)
            ]
        );
        // Four chunks: longer than any frame a port carries, dropped whole;
        // the frame after it is untouched.
        assert_eq!(
            split(&[C, C, C, 0, 0]),
            vec![(0, 4, Chain::TooLong), (4, 5, Chain::Frame)]
        );
        // A continuation whose end never came.
        assert_eq!(
            split(&[0, C, C]),
            vec![(0, 1, Chain::Frame), (1, 3, Chain::Short)]
        );
        // Other option bits (a kernel's future flags) do not join frames.
        assert_eq!(
            split(&[2, 4]),
            vec![(0, 1, Chain::Frame), (1, 2, Chain::Frame)]
        );
        assert_eq!(split(&[]), vec![]);
    }

    #[test]
    fn a_flow_hashes_the_same_both_ways_round_and_other_frames_do_not_hash() {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..38].copy_from_slice(&[0x9c, 0x40, 0x00, 0x35]);
        let a = flow_hash(&f).unwrap();
        assert_eq!(flow_hash(&f), Some(a), "a flow keeps its queue");
        let mut spread = std::collections::BTreeSet::new();
        for sport in 0..64u16 {
            f[34..36].copy_from_slice(&sport.to_be_bytes());
            spread.insert(flow_hash(&f).unwrap() % 4);
        }
        assert_eq!(spread.len(), 4, "source ports spread over four queues");
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(flow_hash(&f), None);
        assert_eq!(flow_hash(&f[..20]), None);
    }
}
