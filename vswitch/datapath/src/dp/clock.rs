//! The datapath's clock: milliseconds since an epoch taken once per process.
//! A PMD reads it at most once per batch and passes the value down to what
//! keeps time (cache entries' ages, conntrack, fragments, affinity, the
//! answer and ARP limiters), so nothing below the PMD reads a clock of its
//! own; every clock of a process shares the epoch, so PMDs that share the
//! conntrack agree on what "now" is, and tests pass any time they like.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// A monotonic millisecond clock on the process's epoch.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// The process's clock (its epoch is taken on the first call).
    pub fn new() -> Self {
        Clock {
            epoch: *EPOCH.get_or_init(Instant::now),
        }
    }

    /// Milliseconds since the epoch.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clock_of_a_process_shares_the_epoch_and_never_runs_backwards() {
        let a = Clock::new();
        std::thread::yield_now();
        let b = Clock::new();
        assert_eq!(a.epoch, b.epoch);
        let t0 = a.now_ms();
        assert!(b.now_ms() >= t0);
    }
}
