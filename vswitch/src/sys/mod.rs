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

/// Wakes a PMD blocked in [`Poller::wait`] from another thread (an eventfd
/// in its poll set): another PMD handed it frames to transmit. The sleeper
/// says it sleeps before its last look at its rings, the waker looks after
/// queuing (both sequentially consistent), so no wake-up is lost.
#[derive(Debug)]
pub struct Waker {
    fd: std::os::fd::OwnedFd,
    sleeping: std::sync::atomic::AtomicBool,
}

impl Waker {
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new
        // descriptor that nothing else owns, so OwnedFd may take it.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: as above: `fd` is open and ours alone.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Waker {
            fd,
            sleeping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }

    /// The owner is about to block (`true`) or is awake again (`false`).
    pub fn set_sleeping(&self, s: bool) {
        self.sleeping.store(s, std::sync::atomic::Ordering::SeqCst);
        if !s {
            let mut v = 0u64;
            // SAFETY: reads 8 bytes into `v`, a live u64; the descriptor is
            // non-blocking, so an empty counter returns EAGAIN at once.
            unsafe { libc::read(self.fd(), (&raw mut v).cast(), 8) };
        }
    }

    /// Wakes the owner if it sleeps (a relaxed check otherwise: per batch).
    pub fn wake(&self) {
        if self.sleeping.load(std::sync::atomic::Ordering::SeqCst) {
            let v = 1u64;
            // SAFETY: writes 8 bytes from `v`, a live u64, to our eventfd.
            unsafe { libc::write(self.fd(), (&raw const v).cast(), 8) };
        }
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

/// Number of RX queues the interface has (1 when sysfs does not say).
pub fn rx_queue_count(iface: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}
