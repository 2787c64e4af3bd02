//! An AF_XDP port: one socket and UMEM per interface queue, frames recycled through
//! a free list sized once at setup, and the copy-mode pitfalls handled: TX is
//! kicked while descriptors are outstanding, the fill ring is topped up only with
//! what it reports free, and a busy bind is retried.

use super::rx_queue_count;
use super::xdp::{AttachMode, XdpAttachment};
use crate::port::{PortIo, BATCH, MAX_FRAME};
use crate::stats::RxqStats;
use std::ffi::CString;
use std::io::Write;
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use switchyard_southbound::DropReason;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// Frames a queue holds for transmission that the TX ring had no room for yet.
const PENDING_MAX: usize = BATCH * 2;

/// Frames kept out of the fill ring so that transmission never starves.
const TX_RESERVE_DIV: usize = 4;

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

struct Queue {
    /// The interface's queue number.
    id: u32,
    stats: Arc<RxqStats>,
    ring_size: u32,
    umem: Umem,
    fq: FillQueue,
    cq: CompQueue,
    rx: RxQueue,
    tx: TxQueue,
    free: Vec<FrameDesc>,
    frames: usize,
    pending: Vec<FrameDesc>,
    outstanding: usize,
    scratch: Vec<FrameDesc>,
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
    rx_descs: [FrameDesc; BATCH],
    rx_sent: [bool; BATCH],
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

fn open_queue(iface: &str, queue: u32, o: &XskOptions, zero_copy: bool) -> anyhow::Result<Queue> {
    let ring = QueueSize::new(o.ring_size)?;
    let ucfg = UmemConfig::builder()
        .frame_size(FrameSize::new(MAX_FRAME as u32)?)
        .fill_queue_size(ring)
        .comp_queue_size(ring)
        .build()?;
    let (umem, descs) = Umem::new(
        ucfg,
        NonZeroU32::new(o.frames_per_queue)
            .ok_or_else(|| anyhow::anyhow!("frames_per_queue is 0"))?,
        false,
    )
    .map_err(|e| anyhow::anyhow!("UMEM for {iface}: {e}"))?;
    let bind = BindFlags::XDP_USE_NEED_WAKEUP
        | if zero_copy {
            BindFlags::XDP_ZEROCOPY
        } else {
            BindFlags::XDP_COPY
        };
    let scfg = SocketConfig::builder()
        .rx_queue_size(ring)
        .tx_queue_size(ring)
        .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
        .bind_flags(bind)
        .build();
    let ifname = Interface::new(CString::new(iface)?);
    let mut last_err = None;
    // Re-binding right after a socket on the same queue closed can fail with EBUSY.
    for attempt in 0..20 {
        // SAFETY: the UMEM is new and not shared with any other socket, so the
        // shared-UMEM precondition of `Socket::new` does not apply; the
        // INHIBIT_PROG_LOAD flag is set because we attach our own program.
        match unsafe { Socket::new(scfg, &umem, &ifname, queue) } {
            Ok((tx, rx, Some((fq, cq)))) => {
                let frames = descs.len();
                return Ok(Queue {
                    id: queue,
                    stats: Arc::default(),
                    ring_size: o.ring_size,
                    umem,
                    fq,
                    cq,
                    rx,
                    tx,
                    free: descs,
                    frames,
                    pending: Vec::with_capacity(BATCH * 2),
                    outstanding: 0,
                    scratch: vec![FrameDesc::default(); BATCH * 2],
                });
            }
            Ok(_) => {
                anyhow::bail!("socket on {iface} queue {queue} returned no fill/completion rings")
            }
            Err(e) => {
                let os = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .and_then(std::io::Error::raw_os_error);
                last_err = Some(match std::error::Error::source(&e) {
                    Some(src) => format!("{e}: {src}"),
                    None => e.to_string(),
                });
                // The previous owner's socket is released asynchronously after it
                // closes or dies: EBUSY then clears within a few hundred ms.
                if zero_copy || os != Some(libc::EBUSY) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20 * (attempt + 1)));
            }
        }
    }
    anyhow::bail!(
        "AF_XDP socket on {iface} queue {queue} ({}): {}",
        if zero_copy { "zero-copy" } else { "copy" },
        last_err.unwrap_or_default()
    )
}

impl XskPort {
    fn with(
        iface: &str,
        queues: Vec<Queue>,
        zero_copy: bool,
        xdp_mode: &'static str,
        xdp: Arc<Mutex<XdpAttachment>>,
    ) -> Self {
        XskPort {
            iface: iface.to_string(),
            queues,
            cur: 0,
            next: 0,
            tx_rr: 0,
            rx_descs: [FrameDesc::default(); BATCH],
            rx_sent: [false; BATCH],
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
        for q in 0..p.queues.len() {
            p.refill(q);
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

    fn refill(&mut self, qi: usize) {
        let q = &mut self.queues[qi];
        let keep = q.frames / TX_RESERVE_DIV;
        if q.free.len() <= keep {
            return;
        }
        let want = (q.free.len() - keep) as u32;
        // The free count can lag: give only what the ring reports free.
        let n = q.fq.nb_free(want).min(want) as usize;
        if n == 0 {
            return;
        }
        let start = q.free.len() - n;
        // SAFETY: these frames belong to this queue's UMEM and are owned by us
        // (in the free list), so nothing else reads or writes them.
        let done = unsafe { q.fq.produce(&q.free[start..]) };
        q.free.truncate(q.free.len() - done);
        if q.fq.needs_wakeup() {
            let _ = q.fq.wakeup(q.rx.fd_mut(), 0);
        }
    }

    /// Whether queue `qi` can take one more frame to transmit: its pending
    /// list is bounded (no allocation), and a full one is flushed first.
    fn make_room(&mut self, qi: usize) -> bool {
        if self.queues[qi].pending.len() < PENDING_MAX {
            return true;
        }
        self.flush_queue(qi);
        self.queues[qi].pending.len() < PENDING_MAX
    }

    fn flush_queue(&mut self, qi: usize) {
        let q = &mut self.queues[qi];
        if !q.pending.is_empty() {
            let want = q.pending.len() as u32;
            let room = q.tx.nb_free(want).min(want) as usize;
            // SAFETY: pending frames belong to this UMEM and were last written by us;
            // after produce the kernel owns them until they come back on the CQ.
            let sent = unsafe { q.tx.produce(&q.pending[..room]) };
            q.outstanding += sent;
            // What did not fit waits for the next flush; a full pending list
            // refuses the next frame, which the caller counts (tx_ring_full).
            q.pending.drain(..sent);
        }
        if q.outstanding > 0 {
            // Copy mode only transmits inside sendto(): kick while the kernel has
            // not consumed every descriptor. Completions arrive later (when the
            // receiver frees the skb) and need no kick, only reaping.
            if q.tx.nb_free_exact() < q.ring_size {
                let _ = q.tx.wakeup();
            }
            // SAFETY: completed frames come from this UMEM; the kernel has
            // released them, so they become ours again.
            let c = unsafe { q.cq.consume(&mut q.scratch) };
            q.outstanding -= c.min(q.outstanding);
            q.free.extend_from_slice(&q.scratch[..c]);
        }
        self.refill(qi);
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
            "afxdp {} {} queues={}",
            self.xdp_mode,
            if self.zero_copy { "zero-copy" } else { "copy" },
            self.queues.len()
        )
    }
}

impl PortIo for XskPort {
    fn rx_burst(&mut self) -> usize {
        let nq = self.queues.len();
        for k in 0..nq {
            let qi = (self.next + k) % nq;
            // SAFETY: rx_descs receive frames of this queue's UMEM; they stay ours
            // until rx_done() recycles them or tx hands them back to the kernel.
            let n = unsafe { self.queues[qi].rx.consume(&mut self.rx_descs) };
            if n > 0 {
                self.cur = qi;
                self.next = (qi + 1) % nq;
                self.queues[qi].stats.packets.add(n as u64);
                self.n = n;
                self.rx_sent[..n].fill(false);
                return n;
            }
        }
        self.n = 0;
        0
    }

    fn rx_frame(&self, i: usize) -> &[u8] {
        if i >= self.n {
            return &[]; // not a frame of this batch: its descriptor is not ours
        }
        // SAFETY: i < n, so descriptor i was received in this batch on queue
        // `cur`: it belongs to that UMEM, and the kernel does not touch it
        // until we return it.
        unsafe { self.queues[self.cur].umem.data(&self.rx_descs[i]) }.contents()
    }

    fn rx_frame_mut(&mut self, i: usize) -> &mut [u8] {
        if i >= self.n {
            return &mut [];
        }
        let q = &self.queues[self.cur];
        // SAFETY: as in rx_frame (i < n); we hold `&mut self`, so no other
        // reference to this frame's data exists.
        let mut d = unsafe { q.umem.data_mut(&mut self.rx_descs[i]) };
        let len = d.contents().len();
        let ptr = d.contents_mut().as_mut_ptr();
        // SAFETY: ptr/len describe the frame's data inside the UMEM mapping, which
        // outlives `&mut self`; the borrow is tied to `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }

    fn tx_rx_frame(&mut self, i: usize) -> Result<(), DropReason> {
        if i >= self.n || self.rx_sent[i] {
            return Err(DropReason::TxNoFrame);
        }
        let c = self.cur;
        if !self.make_room(c) {
            return Err(DropReason::TxRingFull);
        }
        self.rx_sent[i] = true;
        let q = &mut self.queues[self.cur];
        q.pending.push(self.rx_descs[i]);
        if q.pending.len() >= BATCH {
            let c = self.cur;
            self.flush_queue(c);
        }
        Ok(())
    }

    fn tx_copy(&mut self, data: &[u8]) -> Result<(), DropReason> {
        self.tx_copy2(&[], data)
    }

    fn tx_copy2(&mut self, head: &[u8], data: &[u8]) -> Result<(), DropReason> {
        if head.len() + data.len() > MAX_FRAME - 256 {
            return Err(DropReason::OversizeFrame);
        }
        let qi = self.tx_queue(head, data);
        if !self.make_room(qi) {
            return Err(DropReason::TxRingFull);
        }
        let q = &mut self.queues[qi];
        let Some(mut d) = q.free.pop() else {
            return Err(DropReason::TxNoFrame);
        };
        {
            // SAFETY: `d` came from this queue's free list, so it belongs to this
            // UMEM and nothing else (kernel included) uses it now.
            let mut data_mut = unsafe { q.umem.data_mut(&mut d) };
            let mut cur = data_mut.cursor();
            cur.set_pos(0);
            if cur
                .write_all(head)
                .and_then(|_| cur.write_all(data))
                .is_err()
            {
                q.free.push(d);
                return Err(DropReason::OversizeFrame);
            }
        }
        q.pending.push(d);
        if q.pending.len() >= BATCH {
            self.flush_queue(qi);
        }
        Ok(())
    }

    fn rx_done(&mut self) {
        let q = &mut self.queues[self.cur];
        for i in 0..self.n {
            if !self.rx_sent[i] {
                q.free.push(self.rx_descs[i]);
            }
        }
        self.n = 0;
    }

    fn flush(&mut self) {
        for qi in 0..self.queues.len() {
            self.flush_queue(qi);
        }
    }

    fn tx_outstanding(&self) -> bool {
        self.queues
            .iter()
            .any(|q| q.outstanding > 0 || !q.pending.is_empty())
    }

    fn rx_fds(&self, out: &mut Vec<i32>) {
        out.extend(self.queues.iter().map(|q| q.rx.fd().as_raw_fd()));
    }

    fn rx_account(&mut self, cycles: u64) {
        if let Some(q) = self.queues.get(self.cur) {
            q.stats.cycles.add(cycles);
        }
    }

    fn mode(&self) -> String {
        self.describe()
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
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
    use super::flow_hash;

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
