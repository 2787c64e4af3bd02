//! The ports a PMD holds: its own (polled, transmitted on), those another
//! PMD owns (reached through a hand-off ring), the rings it drains, and the
//! flush of what a batch transmitted.

use super::{handoff, Pmd, PortSlot, RateLimiter};
use crate::port::PortIo;
use crate::stats::PortStats;
use std::sync::Arc;
use switchyard_southbound::DropReason;

impl Pmd {
    /// Drains `ring` each pass: frames another PMD sends to ports this one owns.
    pub fn add_inbound(&mut self, ring: Arc<handoff::Handoff>) {
        self.inbound.push(ring);
    }

    /// Whether frames wait on an inbound ring (checked before blocking).
    pub fn handoff_pending(&self) -> bool {
        self.inbound.iter().any(|r| !r.is_empty())
    }

    /// Takes ownership of a port at `slot`.
    pub fn add_port(&mut self, slot: u16, io: Box<dyn PortIo>, stats: Arc<PortStats>) {
        self.place_port(slot, io, stats);
        self.active.retain(|x| *x != slot);
        self.active.push(slot);
    }

    /// Knows port `slot` as owned by another PMD: frames to it go on `ring`.
    pub fn add_remote(&mut self, slot: u16, ring: Arc<handoff::Handoff>, stats: Arc<PortStats>) {
        self.place_port(slot, Box::new(handoff::RemotePort { ring, slot }), stats);
        self.active.retain(|x| *x != slot);
    }

    fn place_port(&mut self, slot: u16, io: Box<dyn PortIo>, stats: Arc<PortStats>) {
        let s = usize::from(slot);
        if self.ports.len() <= s {
            self.ports.resize_with(s + 1, || None);
            self.is_dirty.resize(s + 1, false);
        }
        self.ports[s] = Some(PortSlot {
            io,
            stats,
            dns_limit: RateLimiter::new(self.dns_rate.0, self.dns_rate.1),
        });
    }

    /// Removes (and so closes) the port at `slot`.
    pub fn del_port(&mut self, slot: u16) -> bool {
        self.active.retain(|x| *x != slot);
        self.dirty.retain(|x| *x != slot);
        if let Some(d) = self.is_dirty.get_mut(usize::from(slot)) {
            *d = false;
        }
        self.ports
            .get_mut(usize::from(slot))
            .and_then(Option::take)
            .is_some()
    }

    /// The port at `slot`, if this PMD owns one (tests read MemPort output).
    pub fn port_mut(&mut self, slot: u16) -> Option<&mut (dyn PortIo + 'static)> {
        self.ports
            .get_mut(usize::from(slot))?
            .as_mut()
            .map(|p| &mut *p.io)
    }

    /// File descriptors to wait on when idle.
    pub fn rx_fds(&self, out: &mut Vec<i32>) {
        out.clear();
        out.push(self.waker.fd());
        for p in self.ports.iter().flatten() {
            p.io.rx_fds(out);
        }
    }

    #[inline]
    pub(super) fn mark_dirty(&mut self, slot: u16) {
        let d = usize::from(slot);
        if !self.is_dirty[d] {
            self.is_dirty[d] = true;
            self.dirty.push(slot);
        }
    }

    /// Flushes the ports transmitted to; those still waiting on the device stay
    /// listed so that they keep being kicked.
    pub(super) fn flush_dirty(&mut self) {
        let mut i = 0;
        while i < self.dirty.len() {
            let slot = self.dirty[i];
            let d = usize::from(slot);
            let busy = match self.ports[d].as_mut() {
                Some(p) => {
                    p.io.flush();
                    p.io.tx_outstanding()
                }
                None => false,
            };
            if busy {
                i += 1;
            } else {
                self.is_dirty[d] = false;
                self.dirty.swap_remove(i);
            }
        }
    }

    /// Transmits what other PMDs handed this one (a bounded amount per pass,
    /// so a flood from them cannot starve this PMD's own queues).
    pub(super) fn drain_inbound(&mut self) {
        let Pmd {
            inbound,
            ports,
            stats,
            is_dirty,
            dirty,
            ..
        } = self;
        for ring in inbound.iter() {
            ring.drain(crate::port::BATCH * 8, |slot, frame| {
                let d = usize::from(slot);
                let Some(Some(p)) = ports.get_mut(d) else {
                    // Deleted meanwhile.
                    stats.count_drop(DropReason::NoL2Destination);
                    return;
                };
                p.send(frame, stats);
                if !is_dirty[d] {
                    is_dirty[d] = true;
                    dirty.push(slot);
                }
            });
        }
    }
}
