//! Packet buffer pools, one per NUMA socket.
use std::ffi::CString;

use super::{ffi, DpdkError};

/// A pktmbuf pool. EAL owns its memory; it lives until EAL cleanup.
#[derive(Clone, Copy)]
pub struct Mempool {
    pub(super) raw: *mut ffi::rte_mempool,
}

// SAFETY: an rte_mempool is designed for concurrent use from every lcore (per-lcore
// caches plus a lock-free ring); we only pass the pointer to DPDK functions.
unsafe impl Send for Mempool {}
// SAFETY: see Send: DPDK synchronises access internally.
unsafe impl Sync for Mempool {}

impl Mempool {
    pub fn create(name: &str, size: u32, cache: u32, socket: i32) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError {
            call: "rte_pktmbuf_pool_create".into(),
            reason: format!("pool name {name:?} contains a NUL byte"),
        })?;
        let data_room = ffi::RTE_MBUF_DEFAULT_BUF_SIZE as u16;
        // SAFETY: cname is a valid C string for the duration of the call; the
        // other arguments are plain integers checked by DPDK.
        let raw = unsafe {
            ffi::rte_pktmbuf_pool_create(cname.as_ptr(), size, cache, 0, data_room, socket)
        };
        if raw.is_null() {
            return Err(DpdkError::from_errno(format!(
                "rte_pktmbuf_pool_create({name}, {size} mbufs, cache {cache}, socket {socket})"
            )));
        }
        Ok(Mempool { raw })
    }

    /// Mbufs taken from the pool and not returned yet (owned by an array, a
    /// handle or a driver queue). Exact once no other lcore allocates or frees.
    pub fn in_use(&self) -> u32 {
        // SAFETY: raw is a live mempool; the call only reads its counters and
        // per-lcore cache lengths.
        unsafe { ffi::rte_mempool_in_use_count(self.raw) }
    }

    /// Mbufs free in the pool (its ring and every lcore's cache).
    pub fn available(&self) -> u32 {
        // SAFETY: as in `in_use`.
        unsafe { ffi::rte_mempool_avail_count(self.raw) }
    }
}
