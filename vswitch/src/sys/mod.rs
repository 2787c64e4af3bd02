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

/// Blocks until one of `fds` is readable or `timeout_ms` passes.
pub fn wait_readable(fds: &[i32], timeout_ms: i32) {
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 64];
    let n = fds.len().min(pfds.len());
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = *fd;
        p.events = libc::POLLIN;
    }
    // SAFETY: `pfds` is a valid array of at least `n` initialized pollfd structs
    // that lives for the duration of the call.
    unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
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
