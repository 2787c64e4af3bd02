//! One AF_XDP socket and its UMEM: opening it (multi-buffer where the kernel
//! has it), topping up the fill ring, and the transmit side (pending
//! descriptors, whole chains pushed to the TX ring, completions reaped).

use super::XskOptions;
use crate::port::{BATCH, MAX_FRAME};
use crate::stats::RxqStats;
use std::ffi::CString;
use std::num::NonZeroU32;
use std::sync::Arc;
use switchyard_southbound::DropReason;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// Size of every UMEM chunk: a page, the largest an aligned UMEM takes. A
/// frame longer than one chunk's data room (the chunk less the kernel's
/// 256-byte XDP headroom) arrives and leaves as a chain of descriptors
/// (`XDP_USE_SG`); a 9,000-byte MTU takes three.
pub(super) const CHUNK: u32 = 4096;

/// Frames a queue holds for transmission that the TX ring had no room for yet.
const PENDING_MAX: usize = BATCH * 2;

/// Frames kept out of the fill ring so that transmission never starves.
const TX_RESERVE_DIV: usize = 4;

/// `XDP_PKT_CONTD`: more descriptors of this frame follow.
pub(super) const PKT_CONTD: u32 = 1;

pub(super) struct Queue {
    /// The interface's queue number.
    pub id: u32,
    pub stats: Arc<RxqStats>,
    ring_size: u32,
    pub umem: Umem,
    fq: FillQueue,
    cq: CompQueue,
    pub rx: RxQueue,
    tx: TxQueue,
    pub free: Vec<FrameDesc>,
    frames: usize,
    pending: Vec<FrameDesc>,
    pub outstanding: usize,
    scratch: Vec<FrameDesc>,
    /// Bytes of frame one chunk carries.
    pub room: usize,
    /// Bound with `XDP_USE_SG`: frames may span several chunks.
    pub sg: bool,
}

pub(super) fn open_queue(
    iface: &str,
    queue: u32,
    o: &XskOptions,
    zero_copy: bool,
) -> anyhow::Result<Queue> {
    // Multi-buffer first; a driver without it (some zero-copy drivers refuse
    // XDP_USE_SG) gets single-chunk frames, as before.
    match open_queue_with(iface, queue, o, zero_copy, true) {
        Ok(q) => Ok(q),
        Err(_) => open_queue_with(iface, queue, o, zero_copy, false),
    }
}

fn open_queue_with(
    iface: &str,
    queue: u32,
    o: &XskOptions,
    zero_copy: bool,
    sg: bool,
) -> anyhow::Result<Queue> {
    let ring = QueueSize::new(o.ring_size)?;
    let ucfg = UmemConfig::builder()
        .frame_size(FrameSize::new(CHUNK)?)
        .fill_queue_size(ring)
        .comp_queue_size(ring)
        .build()?;
    let room = ucfg.mtu() as usize;
    let (umem, descs) = Umem::new(
        ucfg,
        NonZeroU32::new(o.frames_per_queue)
            .ok_or_else(|| anyhow::anyhow!("frames_per_queue is 0"))?,
        false,
    )
    .map_err(|e| anyhow::anyhow!("UMEM for {iface}: {e}"))?;
    let mut bind = BindFlags::XDP_USE_NEED_WAKEUP
        | if zero_copy {
            BindFlags::XDP_ZEROCOPY
        } else {
            BindFlags::XDP_COPY
        };
    if sg {
        bind |= BindFlags::XDP_USE_SG;
    }
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
                    pending: Vec::with_capacity(PENDING_MAX),
                    outstanding: 0,
                    scratch: vec![FrameDesc::default(); BATCH * 2],
                    room,
                    sg,
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
        "AF_XDP socket on {iface} queue {queue} ({}{}): {}",
        if zero_copy { "zero-copy" } else { "copy" },
        if sg { ", multi-buffer" } else { "" },
        last_err.unwrap_or_default()
    )
}

impl Queue {
    /// Gives the kernel free frames to receive into, keeping a share back
    /// for transmission.
    pub fn refill(&mut self) {
        let keep = self.frames / TX_RESERVE_DIV;
        if self.free.len() <= keep {
            return;
        }
        let want = (self.free.len() - keep) as u32;
        // The free count can lag: give only what the ring reports free.
        let n = self.fq.nb_free(want).min(want) as usize;
        if n == 0 {
            return;
        }
        let start = self.free.len() - n;
        // SAFETY: these frames belong to this queue's UMEM and are owned by us
        // (in the free list), so nothing else reads or writes them.
        let done = unsafe { self.fq.produce(&self.free[start..]) };
        self.free.truncate(self.free.len() - done);
        if self.fq.needs_wakeup() {
            let _ = self.fq.wakeup(self.rx.fd_mut(), 0);
        }
    }

    /// Whether `n` more descriptors fit the pending list (bounded, no
    /// allocation); a full one is flushed first.
    fn make_room(&mut self, n: usize) -> bool {
        if self.pending.len() + n <= PENDING_MAX {
            return true;
        }
        self.flush();
        self.pending.len() + n <= PENDING_MAX
    }

    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let want = self.pending.len() as u32;
            let mut room = self.tx.nb_free(want).min(want) as usize;
            // Only whole frames: a chain never waits half in the ring.
            while room > 0 && self.pending[room - 1].options() & PKT_CONTD != 0 {
                room -= 1;
            }
            // SAFETY: pending frames belong to this UMEM and were last written by us;
            // after produce the kernel owns them until they come back on the CQ.
            let sent = unsafe { self.tx.produce(&self.pending[..room]) };
            self.outstanding += sent;
            // What did not fit waits for the next flush; a full pending list
            // refuses the next frame, which the caller counts (tx_ring_full).
            self.pending.drain(..sent);
        }
        if self.outstanding > 0 {
            // Copy mode only transmits inside sendto(): kick while the kernel has
            // not consumed every descriptor. Completions arrive later (when the
            // receiver frees the skb) and need no kick, only reaping.
            if self.tx.nb_free_exact() < self.ring_size {
                let _ = self.tx.wakeup();
            }
            // SAFETY: completed frames come from this UMEM; the kernel has
            // released them, so they become ours again.
            let c = unsafe { self.cq.consume(&mut self.scratch) };
            self.outstanding -= c.min(self.outstanding);
            self.free.extend_from_slice(&self.scratch[..c]);
        }
        self.refill();
    }

    /// Queues a received frame (one descriptor) for transmission as it is.
    pub fn push_rx(&mut self, mut d: FrameDesc) -> Result<(), DropReason> {
        if !self.make_room(1) {
            return Err(DropReason::TxRingFull);
        }
        d.set_options(0);
        self.pending.push(d);
        if self.pending.len() >= BATCH {
            self.flush();
        }
        Ok(())
    }

    /// Queues a copy of `head` followed by `data` for transmission, over as
    /// many chunks as it needs (each but the last marked `XDP_PKT_CONTD`).
    pub fn push_copy(&mut self, head: &[u8], data: &[u8]) -> Result<(), DropReason> {
        let len = head.len() + data.len();
        let need = len.div_ceil(self.room).max(1);
        if len > MAX_FRAME || (need > 1 && !self.sg) {
            return Err(DropReason::OversizeFrame);
        }
        if !self.make_room(need) {
            return Err(DropReason::TxRingFull);
        }
        if self.free.len() < need {
            return Err(DropReason::TxNoFrame);
        }
        let start = self.pending.len();
        for k in 0..need {
            let Some(mut d) = self.free.pop() else {
                self.unqueue(start);
                return Err(DropReason::TxNoFrame); // checked above
            };
            let (from, to) = (k * self.room, ((k + 1) * self.room).min(len));
            {
                // SAFETY: `d` came from this queue's free list, so it belongs to
                // this UMEM and nothing else (kernel included) uses it now.
                let mut dm = unsafe { self.umem.data_mut(&mut d) };
                let mut cur = dm.cursor();
                cur.set_pos(0);
                let ok = write_range(&mut cur, head, from, to).and_then(|_| {
                    write_range(
                        &mut cur,
                        data,
                        from.max(head.len()) - head.len(),
                        to.max(head.len()) - head.len(),
                    )
                });
                if ok.is_err() {
                    self.free.push(d);
                    self.unqueue(start);
                    return Err(DropReason::OversizeFrame);
                }
            }
            d.set_options(if k + 1 < need { PKT_CONTD } else { 0 });
            self.pending.push(d);
        }
        if self.pending.len() >= BATCH {
            self.flush();
        }
        Ok(())
    }
}

impl Queue {
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes a half-queued chain (pending from `start`) back to the free list.
    fn unqueue(&mut self, start: usize) {
        let Queue { pending, free, .. } = self;
        free.extend(pending.drain(start..));
    }
}

/// Writes the part of `src` that falls in `from..to` (positions counted
/// from the start of `src`; clipped to it).
fn write_range(
    w: &mut impl std::io::Write,
    src: &[u8],
    from: usize,
    to: usize,
) -> std::io::Result<()> {
    let (a, b) = (from.min(src.len()), to.min(src.len()));
    if a < b {
        w.write_all(&src[a..b])?;
    }
    Ok(())
}
