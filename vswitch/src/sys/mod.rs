//! Every system interaction of the datapath that needs `unsafe`: AF_XDP sockets
//! and UMEM, the XDP program, `poll(2)` for the idle policy, the cycle counter.
//! Nothing outside this module contains an `unsafe` block.

pub mod xdp;
pub mod xsk;

/// Reads the CPU's cycle counter (for cycles-per-packet statistics).
#[inline]
pub fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no memory effects and is available on every x86_64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }
}

/// Waits for any of a set of file descriptors to become readable. The set is
/// rebuilt only when ports change, so waiting allocates nothing.
#[derive(Debug, Default)]
pub struct Poller {
    pfds: Vec<libc::pollfd>,
}

impl Poller {
    /// Replaces the watched descriptors (control path).
    pub fn set(&mut self, fds: &[i32]) {
        self.pfds.clear();
        self.pfds.extend(fds.iter().map(|fd| libc::pollfd {
            fd: *fd,
            events: libc::POLLIN,
            revents: 0,
        }));
    }

    /// Blocks until a descriptor is readable or `timeout_ms` passes.
    pub fn wait(&mut self, timeout_ms: i32) {
        if self.pfds.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(timeout_ms.max(0) as u64));
            return;
        }
        // SAFETY: `pfds` points to `len` initialized pollfd structs owned by
        // `self`, alive and not otherwise borrowed for the duration of the call.
        unsafe {
            libc::poll(
                self.pfds.as_mut_ptr(),
                self.pfds.len() as libc::nfds_t,
                timeout_ms,
            )
        };
    }
}

/// The interface index of `name`, or None when it does not exist.
pub fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// Pins the calling thread to `core`.
pub fn pin_to_core(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}
