//! In-memory loopback ports for the pipeline bench: a `net_ring` ethdev whose
//! RX and TX queue are the same `rte_ring`, pre-filled with mbufs built from a
//! capture. What a worker sends comes back on its next receive: the capture
//! loops with no copying, and no device or kernel is involved.
use std::ffi::CString;

use super::mempool::Mempool;
use super::{ffi, DpdkError};

/// A started loopback port and how many packets circulate in it.
pub struct LoopbackPort {
    pub id: u16,
    pub packets: usize,
}

/// Creates an SP/SC ring of room for `frames.len()` packets, wraps it in a
/// net_ring port (one RX and one TX queue, the same ring), starts the port and
/// fills the ring with one mbuf per frame (frames longer than an mbuf's data
/// room are skipped). The port is never closed: it lives until EAL cleanup.
pub fn create(name: &str, frames: &[&[u8]], pool: &Mempool) -> Result<LoopbackPort, DpdkError> {
    create_with_rss(name, frames, None, pool)
}

/// `create`, each mbuf carrying `rss[i]` as its RSS hash (flag set) as a NIC
/// with RSS would deliver it: the bench's stand-in for the NIC's hash.
pub fn create_with_rss(
    name: &str,
    frames: &[&[u8]],
    rss: Option<&[u32]>,
    pool: &Mempool,
) -> Result<LoopbackPort, DpdkError> {
    let cname = CString::new(name).map_err(|_| DpdkError {
        call: "rte_ring_create".into(),
        reason: format!("ring name {name:?} contains a NUL byte"),
    })?;
    // A ring of 2^k slots holds 2^k - 1; the worker never has more than the
    // prefill in flight, so the ring can never be full on TX.
    let slots = (frames.len() + 1).next_power_of_two().max(64) as u32;
    let flags = ffi::RING_F_SP_ENQ | ffi::RING_F_SC_DEQ;
    // SAFETY: cname is a valid C string for the call; slots is a power of two;
    // socket -1 is SOCKET_ID_ANY.
    let ring = unsafe { ffi::rte_ring_create(cname.as_ptr(), slots, -1, flags) };
    if ring.is_null() {
        return Err(DpdkError::from_errno(format!(
            "rte_ring_create({name}, {slots})"
        )));
    }
    // SAFETY: ring is a live ring that outlives the port (never freed); the PMD
    // uses it as both the RX and the TX queue.
    let rc = unsafe { ffi::rte_eth_from_ring(ring) };
    if rc < 0 {
        return Err(DpdkError::from_errno(format!("rte_eth_from_ring({name})")));
    }
    let id = rc as u16;
    let info = super::port::info(id)?;
    super::port::configure_and_start(&info, 1, 1, 1024, 1024, pool)?;
    let packets = prefill(id, frames, rss, pool)?;
    Ok(LoopbackPort { id, packets })
}

/// Copies each frame into a fresh mbuf and sends it into the port's ring.
fn prefill(
    port: u16,
    frames: &[&[u8]],
    rss: Option<&[u32]>,
    pool: &Mempool,
) -> Result<usize, DpdkError> {
    let mut sent = 0;
    for (i, frame) in frames.iter().enumerate() {
        // SAFETY: pool is a live pktmbuf pool; a null return means "empty".
        let mut m = unsafe { ffi::rte_pktmbuf_alloc(pool.raw) };
        if m.is_null() {
            return Err(DpdkError {
                call: "rte_pktmbuf_alloc".into(),
                reason: format!("mbuf pool exhausted after {sent} packets"),
            });
        }
        let Ok(len) = u16::try_from(frame.len()) else {
            // SAFETY: m was just allocated and is owned here only.
            unsafe { ffi::rte_pktmbuf_free(m) };
            continue;
        };
        // SAFETY: m is a fresh, empty mbuf we own; append returns null when
        // the data room is too small (then nothing was reserved).
        let dst = unsafe { ffi::rte_pktmbuf_append(m, len) } as *mut u8;
        if dst.is_null() {
            // SAFETY: as above, m is owned here only.
            unsafe { ffi::rte_pktmbuf_free(m) };
            continue;
        }
        // SAFETY: append reserved `len` writable bytes at dst, which cannot
        // overlap `frame` (a Rust slice outside every mempool).
        unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), dst, frame.len()) };
        if let Some(&hash) = rss.and_then(|r| r.get(i)) {
            // SAFETY: m is ours alone until sent; ring PMDs pass mbufs
            // through untouched, so the hash comes back on every receive.
            unsafe {
                (*m).__bindgen_anon_2.hash.rss = hash;
                (*m).ol_flags |= u64::from(ffi::RTE_MBUF_F_RX_RSS_HASH);
            }
        }
        // SAFETY: queue 0 of a started port; the ring has room for every
        // frame, so the PMD takes the mbuf (and its ownership).
        let n = unsafe { ffi::rte_eth_tx_burst(port, 0, &mut m, 1) };
        if n != 1 {
            // SAFETY: not taken by the PMD, so still ours.
            unsafe { ffi::rte_pktmbuf_free(m) };
            return Err(DpdkError {
                call: "rte_eth_tx_burst".into(),
                reason: format!("loopback ring of port {port} full after {sent} packets"),
            });
        }
        sent += 1;
    }
    Ok(sent)
}
