//! The port abstraction a PMD drives, and the in-memory port used by unit tests
//! and benches (the product path uses `switchyard_vswitch::sys::xsk::XskPort`).
//!
//! A port hands out a batch of received frames addressed by index; each is then
//! either transmitted back out the same port after an in-place rewrite, or
//! released when the batch is done. Transmitting to another port copies.

use std::collections::VecDeque;
use switchyard_southbound::DropReason;

/// Most frames received in one batch.
pub const BATCH: usize = 32;
/// Largest frame a port carries: an MTU of [`MAX_MTU`] plus Ethernet, a VLAN
/// tag and the Geneve encapsulation (with room to spare).
pub const MAX_FRAME: usize = 9216;
/// Largest MTU a logical switch, router port or pod may have.
pub const MAX_MTU: usize = 9000;

/// A datapath port.
pub trait PortIo: Send {
    /// Receives up to [`BATCH`] frames; returns how many.
    fn rx_burst(&mut self) -> usize;
    /// Frame `i` of the current batch.
    fn rx_frame(&self, i: usize) -> &[u8];
    /// Frame `i` of the current batch, writable.
    fn rx_frame_mut(&mut self, i: usize) -> &mut [u8];
    /// Sends frame `i` of the current batch back out this port, as it now is.
    fn tx_rx_frame(&mut self, i: usize) -> Result<(), DropReason>;
    /// Queues a copy of `data` for transmission.
    fn tx_copy(&mut self, data: &[u8]) -> Result<(), DropReason>;
    /// Transmits `head` followed by `data` as one frame (tunnel encapsulation).
    fn tx_copy2(&mut self, head: &[u8], data: &[u8]) -> Result<(), DropReason>;
    /// Ends the current batch: frames not transmitted are recycled.
    fn rx_done(&mut self);
    /// Pushes queued frames to the device and recycles completed ones.
    fn flush(&mut self);
    /// Whether transmitted frames still wait for the device (keep polling).
    fn tx_outstanding(&self) -> bool {
        false
    }
    /// Adds the file descriptors that become readable when frames arrive
    /// (one per queue) to `out`.
    fn rx_fds(&self, _out: &mut Vec<i32>) {}
    /// Accounts the cycles the PMD spent on the current batch to the queue
    /// it came from (`pmd-rxq-show`).
    fn rx_account(&mut self, _cycles: u64) {}
    /// Hands over the frames the port itself refused since the last call
    /// (malformed descriptor chains), by reason: called from housekeeping,
    /// never per packet, so that every drop lands in a PMD's counters.
    fn take_rx_drops(&mut self, _out: &mut dyn FnMut(DropReason, u64)) {}
    /// How the port is attached, for `port-list` (e.g. "afxdp native copy").
    fn mode(&self) -> String;
    /// For tests that need the concrete port back.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

/// An in-memory port: frames are injected into `rx` and collected from `tx`.
/// With `repeat` set, the injected frames are replayed forever (benches).
#[derive(Debug, Default)]
pub struct MemPort {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: Vec<Vec<u8>>,
    /// Only count transmitted frames instead of keeping them (benches).
    pub count_only: bool,
    pub tx_count: u64,
    repeat: Vec<Vec<u8>>,
    repeat_pos: usize,
    batch: Vec<[u8; MAX_FRAME]>,
    lens: [usize; BATCH],
    n: usize,
}

impl MemPort {
    pub fn new() -> Self {
        MemPort::default()
    }
    /// A port that replays `frames` endlessly and counts what it transmits.
    pub fn replaying(frames: Vec<Vec<u8>>) -> Self {
        MemPort {
            repeat: frames,
            count_only: true,
            ..Self::new()
        }
    }
}

impl PortIo for MemPort {
    fn rx_burst(&mut self) -> usize {
        self.n = 0;
        if self.batch.is_empty() {
            if self.repeat.is_empty() && self.rx.is_empty() {
                return 0;
            }
            // Allocated on first use, so that thousands of transmit-only ports are cheap.
            self.batch = vec![[0u8; MAX_FRAME]; BATCH];
        }
        while self.n < BATCH {
            let src = if !self.repeat.is_empty() {
                let f = &self.repeat[self.repeat_pos];
                self.repeat_pos = (self.repeat_pos + 1) % self.repeat.len();
                f.as_slice()
            } else if let Some(f) = self.rx.front() {
                f.as_slice()
            } else {
                break;
            };
            let len = src.len().min(MAX_FRAME);
            self.batch[self.n][..len].copy_from_slice(&src[..len]);
            self.lens[self.n] = len;
            if self.repeat.is_empty() {
                self.rx.pop_front();
            }
            self.n += 1;
        }
        self.n
    }
    fn rx_frame(&self, i: usize) -> &[u8] {
        &self.batch[i][..self.lens[i]]
    }
    fn rx_frame_mut(&mut self, i: usize) -> &mut [u8] {
        let len = self.lens[i];
        &mut self.batch[i][..len]
    }
    fn tx_rx_frame(&mut self, i: usize) -> Result<(), DropReason> {
        self.tx_count += 1;
        if !self.count_only {
            let f = self.batch[i][..self.lens[i]].to_vec();
            self.tx.push(f);
        }
        Ok(())
    }
    fn tx_copy(&mut self, data: &[u8]) -> Result<(), DropReason> {
        if data.len() > MAX_FRAME {
            return Err(DropReason::OversizeFrame);
        }
        self.tx_count += 1;
        if !self.count_only {
            self.tx.push(data.to_vec());
        }
        Ok(())
    }
    fn tx_copy2(&mut self, head: &[u8], data: &[u8]) -> Result<(), DropReason> {
        if head.len() + data.len() > MAX_FRAME {
            return Err(DropReason::OversizeFrame);
        }
        self.tx_count += 1;
        if !self.count_only {
            self.tx.push([head, data].concat());
        }
        Ok(())
    }
    fn rx_done(&mut self) {
        self.n = 0;
    }
    fn flush(&mut self) {}
    fn mode(&self) -> String {
        "memory".into()
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
