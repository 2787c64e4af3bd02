//! Transmitting to a port another PMD owns: a queue with one transmitting
//! PMD per socket (AF_XDP's rings are single-producer), so a PMD that does
//! not own a port hands the frame to the PMD that does, through a ring per
//! ordered pair of PMDs (OVS gets the same effect with XPS and a lock per
//! transmit queue; this takes no lock at all).
//!
//! A ring holds a fixed set of frame buffers made at start, moved between a
//! free list and a full list (both lock-free bounded queues): pushing copies
//! the frame once into a free buffer, the owner copies it once more into the
//! port's UMEM and returns the buffer. Nothing is allocated after start; a
//! full ring refuses the frame, counted as `pmd_handoff_full`. Buffers come
//! in two sizes: most hold a standard frame, a few ([`HANDOFF_JUMBO`]) a
//! jumbo one, so that N PMDs' N x (N - 1) rings stay a few MiB each.

use crate::port::{PortIo, MAX_FRAME};
use crossbeam::queue::ArrayQueue;
use std::sync::Arc;
use switchyard_southbound::DropReason;

/// Frames a ring between two PMDs holds (32 batches, 2.5 MiB): a TCP burst
/// of a few hundred segments must fit while the owner finishes a pass.
pub const HANDOFF_FRAMES: usize = 1024;

/// Of those, buffers that hold up to [`MAX_FRAME`] (jumbo MTUs); the others
/// hold [`SMALL_FRAME`].
pub const HANDOFF_JUMBO: usize = 64;

/// Size of a standard buffer: a 1,500-byte MTU frame with room for a tag
/// and the Geneve encapsulation.
const SMALL_FRAME: usize = 2048;

/// One frame in flight from one PMD to another.
struct Frame {
    slot: u16,
    len: u16,
    data: Box<[u8]>,
}

/// The ring from one PMD to another.
pub struct Handoff {
    full: ArrayQueue<Box<Frame>>,
    free: ArrayQueue<Box<Frame>>,
    free_jumbo: ArrayQueue<Box<Frame>>,
    /// The PMD that drains it, and how to wake it.
    pub to: usize,
    waker: Arc<crate::sys::Waker>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handoff(to pmd{}, {} queued)", self.to, self.full.len())
    }
}

impl Handoff {
    /// A ring of `frames` buffers toward PMD `to`, woken through `waker`.
    pub fn new(to: usize, frames: usize, waker: Arc<crate::sys::Waker>) -> Arc<Self> {
        let frames = frames.max(2);
        let jumbo = HANDOFF_JUMBO.min(frames / 2).max(1);
        let make = |size: usize, n: usize| {
            let q = ArrayQueue::new(n);
            for _ in 0..n {
                let _ = q.push(Box::new(Frame {
                    slot: 0,
                    len: 0,
                    data: vec![0; size].into_boxed_slice(),
                }));
            }
            q
        };
        Arc::new(Handoff {
            full: ArrayQueue::new(frames),
            free: make(SMALL_FRAME, frames - jumbo),
            free_jumbo: make(MAX_FRAME, jumbo),
            to,
            waker,
        })
    }

    /// Queues `head` + `data` for port `slot` of the receiving PMD.
    pub fn push(&self, slot: u16, head: &[u8], data: &[u8]) -> Result<(), DropReason> {
        let len = head.len() + data.len();
        if len > MAX_FRAME {
            return Err(DropReason::OversizeFrame);
        }
        let f = if len <= SMALL_FRAME {
            self.free.pop()
        } else {
            self.free_jumbo.pop()
        };
        let Some(mut f) = f else {
            return Err(DropReason::HandoffFull);
        };
        f.slot = slot;
        f.len = len as u16;
        f.data[..head.len()].copy_from_slice(head);
        f.data[head.len()..len].copy_from_slice(data);
        // Cannot fail: full and free hold the same buffers between them.
        if let Err(f) = self.full.push(f) {
            self.give_back(f);
            return Err(DropReason::HandoffFull);
        }
        Ok(())
    }

    /// Hands up to `budget` queued frames to `send` (port slot, frame) and
    /// returns their buffers; returns how many.
    pub fn drain(&self, budget: usize, mut send: impl FnMut(u16, &[u8])) -> usize {
        let mut n = 0;
        while n < budget {
            let Some(f) = self.full.pop() else {
                break;
            };
            send(f.slot, &f.data[..usize::from(f.len)]);
            self.give_back(f);
            n += 1;
        }
        n
    }

    /// Returns a buffer to the free list of its size (cannot be full: every
    /// buffer has a place in it).
    fn give_back(&self, f: Box<Frame>) {
        let _ = if f.data.len() > SMALL_FRAME {
            self.free_jumbo.push(f)
        } else {
            self.free.push(f)
        };
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.full.len()
    }

    pub fn is_empty(&self) -> bool {
        self.full.is_empty()
    }
}

/// A port another PMD owns, as this PMD sees it: nothing to receive, and
/// transmitting queues the frame on the ring to its owner.
#[derive(Debug)]
pub struct RemotePort {
    pub ring: Arc<Handoff>,
    pub slot: u16,
}

impl PortIo for RemotePort {
    fn rx_burst(&mut self) -> usize {
        0
    }
    fn rx_frame(&self, _i: usize) -> &[u8] {
        &[]
    }
    fn rx_frame_mut(&mut self, _i: usize) -> &mut [u8] {
        &mut []
    }
    fn tx_rx_frame(&mut self, _i: usize) -> Result<(), DropReason> {
        Err(DropReason::TxNoFrame)
    }
    fn tx_copy(&mut self, data: &[u8]) -> Result<(), DropReason> {
        self.ring.push(self.slot, &[], data)
    }
    fn tx_copy2(&mut self, head: &[u8], data: &[u8]) -> Result<(), DropReason> {
        self.ring.push(self.slot, head, data)
    }
    fn rx_done(&mut self) {}
    /// Once per batch: wakes the owner if it blocked meanwhile.
    fn flush(&mut self) {
        if !self.ring.is_empty() {
            self.ring.waker.wake();
        }
    }
    fn mode(&self) -> String {
        format!("handoff to pmd{}", self.ring.to)
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_in_order_and_a_full_ring_refuses_without_losing_buffers() {
        // Eight buffers: four standard, four jumbo.
        let r = Handoff::new(1, 8, Arc::new(crate::sys::Waker::new().unwrap()));
        let mut p = RemotePort {
            ring: r.clone(),
            slot: 7,
        };
        for i in 0..4u8 {
            p.tx_copy2(&[i], &[i, i]).unwrap();
        }
        assert_eq!(p.tx_copy(&[9]), Err(DropReason::HandoffFull));
        assert_eq!(
            p.tx_copy(&[0; MAX_FRAME + 1]),
            Err(DropReason::OversizeFrame)
        );
        // Jumbo frames have buffers of their own.
        for _ in 0..4 {
            p.tx_copy(&[3; 9000]).unwrap();
        }
        assert_eq!(p.tx_copy(&[3; 9000]), Err(DropReason::HandoffFull));
        let mut got = Vec::new();
        assert_eq!(r.drain(3, |s, f| got.push((s, f.to_vec()))), 3);
        assert_eq!(got[0], (7, vec![0, 0, 0]));
        assert_eq!(got[2], (7, vec![2, 2, 2]));
        // The three buffers came back: three more fit, then it is full again.
        for _ in 0..3 {
            p.tx_copy(&[5]).unwrap();
        }
        assert_eq!(p.tx_copy(&[5]), Err(DropReason::HandoffFull));
        assert_eq!(r.len(), 8);
        let mut sizes = Vec::new();
        assert_eq!(r.drain(usize::MAX, |_, f| sizes.push(f.len())), 8);
        assert_eq!(sizes.iter().filter(|&&n| n == 9000).count(), 4);
        assert!(r.is_empty());
        // Every buffer is back where it belongs.
        for _ in 0..4 {
            p.tx_copy(&[3; 9000]).unwrap();
            p.tx_copy(&[1]).unwrap();
        }
    }
}
