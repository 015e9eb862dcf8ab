//! A burst of received mbufs and the arrays that route them to TX or back to
//! the pool. Fixed-size, on the worker's stack: no allocation per burst.
use std::ptr;

use super::ffi;
use super::mempool::Mempool;

/// The largest burst a worker asks for (config caps `burst_size` at this).
pub const MAX_BURST: usize = 512;

/// Up to MAX_BURST mbufs this worker owns.
pub struct MbufArray {
    bufs: [*mut ffi::rte_mbuf; MAX_BURST],
    len: usize,
}

impl MbufArray {
    pub fn new() -> Self {
        MbufArray {
            bufs: [ptr::null_mut(); MAX_BURST],
            len: 0,
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of packet `i`'s first segment (where every header we parse lives;
    /// a multi-segment tail is not inspected).
    #[inline(always)]
    pub fn frame(&self, i: usize) -> &[u8] {
        let m = self.bufs[..self.len][i];
        // SAFETY: every pointer in bufs[..len] is a live mbuf this worker owns
        // (received by rx_burst, not yet sent or freed). Its first segment holds
        // data_len initialised bytes at buf_addr + data_off. The slice borrows
        // self, so the mbuf cannot be sent or freed while it is alive.
        unsafe {
            let mb = &*m;
            std::slice::from_raw_parts(
                (mb.buf_addr as *const u8).add(mb.data_off as usize),
                mb.data_len as usize,
            )
        }
    }

    /// Starts loading packet `i`'s mbuf header (where `frame` finds the data)
    /// into the cache. A NIC PMD has just written it; a ring PMD never touched it.
    #[inline(always)]
    pub fn prefetch_header(&self, i: usize) {
        prefetch(self.bufs[..self.len][i] as *const u8);
    }

    /// A burst's prefetch schedule, first part: every mbuf header of the first
    /// `n` packets now, and the data of the first `ahead` of them. Then call
    /// `prefetch_ahead(i, ahead)` before reading packet `i`.
    #[inline(always)]
    pub fn prefetch_first(&self, n: usize, ahead: usize) {
        for i in 0..n {
            self.prefetch_header(i);
        }
        for i in 0..n.min(ahead) {
            self.prefetch_data(i);
        }
    }

    /// A burst's prefetch schedule, per packet: the data of packet `i + ahead`
    /// (if the burst has it).
    #[inline(always)]
    pub fn prefetch_ahead(&self, i: usize, ahead: usize) {
        if i + ahead < self.len {
            self.prefetch_data(i + ahead);
        }
    }

    /// Starts loading the first cache line of packet `i`'s data. Reads the
    /// mbuf header: call `prefetch_header(i)` some packets earlier.
    #[inline(always)]
    pub fn prefetch_data(&self, i: usize) {
        let m = self.bufs[..self.len][i];
        // SAFETY: a live mbuf owned by this worker (as in `frame`); only the
        // address is computed, nothing is dereferenced but the header.
        let p = unsafe { ((*m).buf_addr as *const u8).wrapping_add((*m).data_off as usize) };
        prefetch(p);
    }

    /// Total length of packet `i` over all its segments.
    #[inline(always)]
    pub fn pkt_len(&self, i: usize) -> u32 {
        let m = self.bufs[..self.len][i];
        // SAFETY: as in `frame`: a live mbuf owned by this worker.
        unsafe { (*m).pkt_len }
    }

    /// Moves packet `i` of `from` to the end of `self`.
    #[inline(always)]
    pub fn push_from(&mut self, from: &MbufArray, i: usize) {
        debug_assert!(self.len < MAX_BURST);
        self.bufs[self.len] = from.bufs[..from.len][i];
        self.len += 1;
    }

    /// Forgets every mbuf without freeing: their ownership moved elsewhere
    /// (to another array, or to the driver by tx_burst).
    #[inline(always)]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Receives up to `max` packets from a port's RX queue into this (empty) array.
    #[inline(always)]
    pub fn rx_burst(&mut self, port: u16, queue: u16, max: u16) -> usize {
        debug_assert!(self.len == 0 && max as usize <= MAX_BURST);
        // SAFETY: bufs has room for MAX_BURST >= max pointers; the port and queue
        // were configured and started before any worker was launched, and each
        // (port, queue) pair is polled by exactly one worker.
        let n = unsafe { ffi::rte_eth_rx_burst(port, queue, self.bufs.as_mut_ptr(), max) };
        self.len = n as usize;
        self.len
    }

    /// Hands every mbuf to a port's TX queue. Returns how many the driver took;
    /// those leave this array, the rest stay in `self.bufs[sent..]` for `free_from`.
    #[inline(always)]
    pub fn tx_burst(&mut self, port: u16, queue: u16) -> usize {
        if self.len == 0 {
            return 0;
        }
        // SAFETY: bufs[..len] are live mbufs this worker owns; the TX queue is
        // used by this worker only. The driver takes ownership of the first
        // `sent` mbufs.
        let sent =
            unsafe { ffi::rte_eth_tx_burst(port, queue, self.bufs.as_mut_ptr(), self.len as u16) }
                as usize;
        sent.min(self.len)
    }

    /// Returns mbufs `from..len` to their pool and empties the array.
    #[inline(always)]
    pub fn free_from(&mut self, from: usize) {
        if from < self.len {
            // SAFETY: bufs[from..len] are live mbufs this worker still owns; after
            // this call they are never touched again (len is reset).
            unsafe {
                ffi::rte_pktmbuf_free_bulk(
                    self.bufs.as_mut_ptr().add(from),
                    (self.len - from) as u32,
                )
            };
        }
        self.len = 0;
    }
}

/// Why [`MbufArray::fill_from`] built nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillError {
    /// The pool has fewer free mbufs than frames (they come back as the
    /// driver sends and the receiver frees).
    PoolEmpty,
    /// A frame is longer than an mbuf's room.
    TooLong,
}

impl MbufArray {
    /// Appends one fresh mbuf from `pool` per frame, holding a copy of it.
    /// All or nothing: on error no mbuf is taken from the pool.
    pub fn fill_from<'a>(
        &mut self,
        pool: &Mempool,
        frames: impl ExactSizeIterator<Item = &'a [u8]> + Clone,
    ) -> Result<(), FillError> {
        let n = frames.len();
        if n == 0 {
            return Ok(());
        }
        assert!(
            self.len + n <= MAX_BURST,
            "a burst holds at most MAX_BURST mbufs"
        );
        let room = ffi::RTE_MBUF_DEFAULT_BUF_SIZE as usize - ffi::RTE_PKTMBUF_HEADROOM as usize;
        if frames.clone().any(|f| f.len() > room) {
            return Err(FillError::TooLong);
        }
        // SAFETY: bufs[len..len + n] is in bounds (asserted above) and receives
        // n mbuf pointers; pool.raw is a live pktmbuf pool.
        let rc = unsafe {
            ffi::rte_pktmbuf_alloc_bulk(pool.raw, self.bufs.as_mut_ptr().add(self.len), n as u32)
        };
        if rc != 0 {
            return Err(FillError::PoolEmpty);
        }
        for (k, frame) in frames.enumerate() {
            let m = self.bufs[self.len + k];
            // SAFETY: m is a freshly allocated, reset mbuf this array owns: one
            // segment, data_off at the headroom, buf_len of the pool's data
            // room, so `room` >= frame.len() bytes are writable at
            // buf_addr + data_off (checked above against the pool's size).
            unsafe {
                let mb = &mut *m;
                let dst = (mb.buf_addr as *mut u8).add(mb.data_off as usize);
                std::ptr::copy_nonoverlapping(frame.as_ptr(), dst, frame.len());
                mb.data_len = frame.len() as u16;
                mb.pkt_len = frame.len() as u32;
            }
        }
        self.len += n;
        Ok(())
    }

    /// The segments of packet `i`, first to last (a packet the driver
    /// received into a chain of mbufs).
    pub fn segments(&self, i: usize) -> impl Iterator<Item = &[u8]> {
        let mut m = self.bufs[..self.len][i];
        std::iter::from_fn(move || {
            if m.is_null() {
                return None;
            }
            // SAFETY: m is packet i's head (a live mbuf this array owns, see
            // `frame`) or a later segment of its chain, which the head owns;
            // each holds data_len initialised bytes at buf_addr + data_off, and
            // the chain ends with a null `next`. The slices borrow self.
            unsafe {
                let mb = &*m;
                m = mb.next;
                Some(std::slice::from_raw_parts(
                    (mb.buf_addr as *const u8).add(mb.data_off as usize),
                    mb.data_len as usize,
                ))
            }
        })
    }

    /// Forgets the first `n` mbufs (the driver took them) and moves the rest
    /// to the front.
    pub fn consume_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.bufs.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl Default for MbufArray {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MbufArray {
    fn drop(&mut self) {
        self.free_from(0);
    }
}

/// A hint to the CPU; never faults, whatever the address. Also what the
/// pipeline's burst pass is handed to prefetch flow-table lines.
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint that cannot fault, even on a bad address;
    // SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
