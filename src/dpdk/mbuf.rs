//! Packet buffers this code owns: one [`Mbuf`], or an [`MbufArray`] of up to a
//! burst of them (fixed-size, on the worker's stack: no allocation per burst).
//!
//! Ownership moves in the types, so safe code can neither free an mbuf twice
//! nor lose one: an mbuf is owned by exactly one array slot, one `Mbuf`
//! handle, or a driver. `pop_front` moves the front mbuf out of its array into
//! a handle, `push` moves a handle into an array, `tx_burst` hands what the
//! driver took over to it and keeps the rest, and whatever an array or handle
//! still owns when dropped goes back to its pool.
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};

use super::ffi;
use super::mempool::Mempool;

/// The largest burst a worker asks for (config caps `burst_size` at this).
pub const MAX_BURST: usize = 512;

/// One mbuf, owned here: back to its pool when dropped, unless moved into an
/// array with [`MbufArray::push`].
pub struct Mbuf(NonNull<ffi::rte_mbuf>);

impl Mbuf {
    /// The bytes of the packet's first segment (where every header we parse
    /// lives; a multi-segment tail is not inspected).
    #[inline(always)]
    pub fn frame(&self) -> &[u8] {
        // SAFETY: the handle owns a live mbuf; the slice borrows the handle,
        // so the mbuf cannot be sent or freed while the slice lives.
        unsafe { first_segment(self.0.as_ptr()) }
    }

    /// Total length of the packet over all its segments.
    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: the handle owns a live mbuf.
        unsafe { (*self.0.as_ptr()).pkt_len }
    }

    /// The RSS hash the NIC computed for this packet, when it delivered one
    /// (`RTE_MBUF_F_RX_RSS_HASH`); net_ring, net_null and net_pcap never do.
    #[inline(always)]
    pub fn rss_hash(&self) -> Option<u32> {
        // SAFETY: the handle owns a live mbuf.
        unsafe { rss_hash(self.0.as_ptr()) }
    }

    /// Gives up the handle without freeing: the caller takes ownership.
    #[inline(always)]
    fn into_raw(self) -> *mut ffi::rte_mbuf {
        ManuallyDrop::new(self).0.as_ptr()
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: the handle owns a live mbuf and is never used again.
        unsafe { ffi::rte_pktmbuf_free(self.0.as_ptr()) };
    }
}

/// `m`'s RSS hash if the PMD set one.
///
/// # Safety
/// `m` is a live mbuf.
#[inline(always)]
unsafe fn rss_hash(m: *const ffi::rte_mbuf) -> Option<u32> {
    // SAFETY: (caller) a live mbuf; `hash.rss` is a plain u32 in a union of
    // plain integers, meaningful when the flag says so.
    unsafe {
        ((*m).ol_flags & u64::from(ffi::RTE_MBUF_F_RX_RSS_HASH) != 0)
            .then(|| (*m).__bindgen_anon_2.hash.rss)
    }
}

/// The first segment's data of `m`, borrowed for `'a`.
///
/// # Safety
/// `m` is a live mbuf the caller owns for `'a`.
#[inline(always)]
unsafe fn first_segment<'a>(m: *const ffi::rte_mbuf) -> &'a [u8] {
    // SAFETY: (caller) a live mbuf; its first segment holds data_len
    // initialised bytes at buf_addr + data_off.
    unsafe {
        let mb = &*m;
        std::slice::from_raw_parts(
            (mb.buf_addr as *const u8).add(mb.data_off as usize),
            mb.data_len as usize,
        )
    }
}

/// Up to MAX_BURST mbufs this array owns, front first. Packet `i` is the
/// `i`th mbuf it still owns: after `pop_front` or a `tx_burst`, packet 0 is
/// the first one left.
pub struct MbufArray {
    bufs: [*mut ffi::rte_mbuf; MAX_BURST],
    /// `bufs[head..len]` are the mbufs this array owns: live, non-null, in no
    /// other array or handle, not given to a driver. The slots before `head`
    /// left (popped or sent) and are stale. Always head <= len <= MAX_BURST.
    head: usize,
    len: usize,
}

impl MbufArray {
    pub fn new() -> Self {
        MbufArray {
            bufs: [ptr::null_mut(); MAX_BURST],
            head: 0,
            len: 0,
        }
    }

    /// How many mbufs the array owns.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len - self.head
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.head == self.len
    }

    /// The owned slots, front first: the only slots any method reads.
    #[inline(always)]
    fn owned(&self) -> &[*mut ffi::rte_mbuf] {
        debug_assert!(self.head <= self.len && self.len <= MAX_BURST);
        // SAFETY: head <= len <= MAX_BURST (the type's invariant, kept by
        // every method), so the range is in bounds.
        unsafe { self.bufs.get_unchecked(self.head..self.len) }
    }

    /// The bytes of packet `i`'s first segment (where every header we parse lives;
    /// a multi-segment tail is not inspected). Panics if `i >= len()`.
    #[inline(always)]
    pub fn frame(&self, i: usize) -> &[u8] {
        let m = self.owned()[i];
        // SAFETY: an owned slot holds a live mbuf; the slice borrows self, so
        // the mbuf cannot be popped, sent or freed while the slice lives.
        unsafe { first_segment(m) }
    }

    /// Starts loading packet `i`'s mbuf header (where `frame` finds the data)
    /// into the cache. A NIC PMD has just written it; a ring PMD never touched it.
    #[inline(always)]
    pub fn prefetch_header(&self, i: usize) {
        prefetch(self.owned()[i] as *const u8);
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
    /// (if the array has it). A loop that pops each packet before reading
    /// the next always reads packet 0.
    #[inline(always)]
    pub fn prefetch_ahead(&self, i: usize, ahead: usize) {
        if let Some(j) = i.checked_add(ahead) {
            if j < self.len() {
                self.prefetch_data(j);
            }
        }
    }

    /// Starts loading the first cache line of packet `i`'s data. Reads the
    /// mbuf header: call `prefetch_header(i)` some packets earlier.
    #[inline(always)]
    pub fn prefetch_data(&self, i: usize) {
        let m = self.owned()[i];
        // SAFETY: an owned slot holds a live mbuf; only its header is read,
        // the data address is computed, not dereferenced.
        let p = unsafe { ((*m).buf_addr as *const u8).wrapping_add((*m).data_off as usize) };
        prefetch(p);
    }

    /// Packet `i`'s RSS hash, if the NIC delivered one (in the mbuf header,
    /// which `prefetch_first` loads). Panics if `i >= len()`.
    #[inline(always)]
    pub fn rss_hash(&self, i: usize) -> Option<u32> {
        // SAFETY: an owned slot holds a live mbuf.
        unsafe { rss_hash(self.owned()[i]) }
    }

    /// Total length of packet `i` over all its segments. Panics if `i >= len()`.
    #[inline(always)]
    pub fn pkt_len(&self, i: usize) -> u32 {
        let m = self.owned()[i];
        // SAFETY: an owned slot holds a live mbuf.
        unsafe { (*m).pkt_len }
    }

    /// Moves the front mbuf out of the array (None when empty).
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        let m = *self.owned().first()?;
        self.head += 1;
        // SAFETY: an owned slot holds a non-null live mbuf; moving `head` past
        // it ends the array's ownership, which passes to the handle.
        Some(Mbuf(unsafe { NonNull::new_unchecked(m) }))
    }

    /// Moves `m` to the back of the array. Panics (freeing `m`) when the last
    /// slot is taken: a burst holds at most MAX_BURST mbufs.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) {
        assert!(
            self.len < MAX_BURST,
            "an MbufArray holds at most MAX_BURST mbufs"
        );
        self.bufs[self.len] = m.into_raw();
        self.len += 1;
    }

    /// Receives up to `max` (at most MAX_BURST) packets from a port's RX queue
    /// into this array, which must be empty (panics otherwise: its mbufs
    /// would be lost).
    #[inline(always)]
    pub fn rx_burst(&mut self, port: u16, queue: u16, max: u16) -> usize {
        assert!(
            self.is_empty(),
            "rx_burst into an MbufArray that owns mbufs"
        );
        let max = max.min(MAX_BURST as u16);
        // SAFETY: bufs has room for MAX_BURST >= max pointers, none of them
        // owned (the array is empty); the port and queue were configured and
        // started before any worker was launched, and each (port, queue) pair
        // is polled by exactly one worker.
        let n = unsafe { ffi::rte_eth_rx_burst(port, queue, self.bufs.as_mut_ptr(), max) };
        self.head = 0;
        self.len = usize::from(n.min(max));
        self.len
    }

    /// Hands every mbuf to a port's TX queue. Returns how many the driver took:
    /// those leave the array; the rest stay in it, in order, as packets
    /// `0..len()` (to send again, or to free with `free_all` or by dropping).
    #[inline(always)]
    pub fn tx_burst(&mut self, port: u16, queue: u16) -> usize {
        let n = self.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: bufs[head..len] are live mbufs this array owns (n <=
        // MAX_BURST fits u16); the TX queue is used by this thread only. The
        // driver takes ownership of the first `sent` of them.
        let sent = unsafe {
            ffi::rte_eth_tx_burst(port, queue, self.bufs.as_mut_ptr().add(self.head), n as u16)
        };
        let sent = usize::from(sent).min(n);
        self.head += sent;
        if self.head == self.len {
            self.head = 0;
            self.len = 0;
        }
        sent
    }

    /// Returns every mbuf the array owns to its pool; the array is then empty.
    #[inline(always)]
    pub fn free_all(&mut self) {
        let n = self.len();
        if n > 0 {
            // SAFETY: bufs[head..len] are live mbufs this array owns; emptying
            // the array below ends that ownership, so none is touched again.
            unsafe { ffi::rte_pktmbuf_free_bulk(self.bufs.as_mut_ptr().add(self.head), n as u32) };
        }
        self.head = 0;
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
    /// All or nothing: on error no mbuf is taken from the pool. Panics if the
    /// array would own more than MAX_BURST mbufs.
    pub fn fill_from<'a>(
        &mut self,
        pool: &Mempool,
        frames: impl ExactSizeIterator<Item = &'a [u8]> + Clone,
    ) -> Result<(), FillError> {
        let n = frames.len();
        if n == 0 {
            return Ok(());
        }
        let room = ffi::RTE_MBUF_DEFAULT_BUF_SIZE as usize - ffi::RTE_PKTMBUF_HEADROOM as usize;
        if frames.clone().any(|f| f.len() > room) {
            return Err(FillError::TooLong);
        }
        // What `pop_front` or `tx_burst` left: the owned mbufs to the front.
        if self.head > 0 {
            self.bufs.copy_within(self.head..self.len, 0);
            self.len -= self.head;
            self.head = 0;
        }
        assert!(
            self.len + n <= MAX_BURST,
            "an MbufArray holds at most MAX_BURST mbufs"
        );
        let start = self.len;
        // SAFETY: bufs[start..start + n] is in bounds (asserted above), owned
        // by no one, and receives n mbuf pointers; pool.raw is a live pktmbuf pool.
        let rc = unsafe {
            ffi::rte_pktmbuf_alloc_bulk(pool.raw, self.bufs.as_mut_ptr().add(start), n as u32)
        };
        if rc != 0 {
            return Err(FillError::PoolEmpty);
        }
        // ExactSizeIterator and Clone are safe traits: an iterator that yields
        // fewer frames than its len(), or longer ones than its clone did, must
        // not make this unsound. Each frame is checked again, and the mbufs
        // left unfilled go back to the pool.
        let mut filled = 0;
        for frame in frames.take(n) {
            if frame.len() > room {
                break;
            }
            let m = self.bufs[start + filled];
            // SAFETY: m is a freshly allocated, reset mbuf we own: one
            // segment, data_off at the headroom, buf_len of the pool's data
            // room, so `room` >= frame.len() bytes are writable at
            // buf_addr + data_off.
            unsafe {
                let mb = &mut *m;
                let dst = (mb.buf_addr as *mut u8).add(mb.data_off as usize);
                ptr::copy_nonoverlapping(frame.as_ptr(), dst, frame.len());
                mb.data_len = frame.len() as u16;
                mb.pkt_len = frame.len() as u32;
            }
            filled += 1;
        }
        if filled < n {
            // SAFETY: bufs[start + filled..start + n] are fresh mbufs we own
            // that never become part of the array.
            unsafe {
                ffi::rte_pktmbuf_free_bulk(
                    self.bufs.as_mut_ptr().add(start + filled),
                    (n - filled) as u32,
                )
            };
        }
        self.len = start + filled;
        Ok(())
    }

    /// The segments of packet `i`, first to last (a packet the driver
    /// received into a chain of mbufs). Panics if `i >= len()`.
    pub fn segments(&self, i: usize) -> impl Iterator<Item = &[u8]> {
        let mut m = self.owned()[i];
        std::iter::from_fn(move || {
            if m.is_null() {
                return None;
            }
            // SAFETY: m is packet i's head (a live mbuf this array owns) or a
            // later segment of its chain, which the head owns; each holds
            // data_len initialised bytes at buf_addr + data_off, and the chain
            // ends with a null `next`. The slices borrow self.
            unsafe {
                let seg = first_segment(m);
                m = (*m).next;
                Some(seg)
            }
        })
    }
}

impl Default for MbufArray {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MbufArray {
    fn drop(&mut self) {
        self.free_all();
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
