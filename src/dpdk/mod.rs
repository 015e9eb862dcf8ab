//! The only module with `unsafe`: DPDK bindings and safe wrappers over EAL,
//! mempools, ports, mbufs and lcores. Everything outside this module is safe
//! Rust; every `unsafe` block here says why it is sound, and no safe call can
//! make one unsound (an mbuf is owned by exactly one array slot, one `Mbuf`
//! handle, or a driver).
#![allow(unsafe_code)]

mod eal;
mod ffi;
pub mod lcore;
pub mod loopback;
pub mod mbuf;
pub mod memory;
mod mempool;
pub mod port;
mod rss;
pub mod telemetry;

pub use eal::Eal;
pub use mbuf::{prefetch, Mbuf, MbufArray, MAX_BURST};
pub use mempool::Mempool;

/// An error from a DPDK call, with the call and DPDK's own explanation.
#[derive(Debug, thiserror::Error)]
#[error("{call}: {reason}")]
pub struct DpdkError {
    pub call: String,
    pub reason: String,
}

impl DpdkError {
    /// Builds an error from a negative errno-style return value.
    fn from_code(call: impl Into<String>, code: i32) -> Self {
        DpdkError {
            call: call.into(),
            reason: strerror(code.unsigned_abs() as i32),
        }
    }

    /// Builds an error from the calling lcore's `rte_errno`.
    fn from_errno(call: impl Into<String>) -> Self {
        // SAFETY: btb_errno only reads the calling thread's rte_errno.
        let code = unsafe { ffi::btb_errno() };
        Self::from_code(call, code)
    }
}

fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local,
    // NUL-terminated string that stays valid until the next call on this thread;
    // we copy it out at once.
    unsafe {
        let p = ffi::rte_strerror(code);
        if p.is_null() {
            return format!("error {code}");
        }
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// TSC ticks per second, for turning cycle counts into time on the hot path.
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at init; no preconditions.
    unsafe { ffi::rte_get_tsc_hz() }
}

/// The calling thread's kernel thread id (one syscall: call it once, not per packet).
pub fn gettid() -> i32 {
    // SAFETY: a plain syscall wrapper with no arguments.
    unsafe { ffi::rte_sys_gettid() }
}

/// The current TSC value.
#[inline(always)]
pub fn tsc() -> u64 {
    // SAFETY: rte_rdtsc reads the CPU's time-stamp counter; no memory access.
    unsafe { ffi::rte_rdtsc() }
}
