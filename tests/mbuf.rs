//! Mbuf ownership through the safe API, counted in the pool: after any mix of
//! receive, forward, drop and TX failure, the pool's in-use count equals the
//! packets the loopback rings hold, exactly. A leak shows as more in use; a
//! double free as fewer (the mbuf goes back to the pool twice), so every test
//! keeps some mbufs in a ring to make a double free visible.
//!
//! Runs the real DPDK EAL (`--no-huge --no-pci --no-shconf`) once for the
//! whole binary; the tests take turns, each with its own pool and ports.
#![cfg(feature = "dpdk")]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard, OnceLock};

use btblocker::dpdk::loopback::{self, LoopbackPort};
use btblocker::dpdk::mbuf::FillError;
use btblocker::dpdk::{Eal, MbufArray, Mempool, MAX_BURST};

/// Packets a loopback ring of 64 slots holds (every ring here: each is
/// created with fewer than 64 frames).
const RING: usize = 63;

/// Mbufs in each test's pool: more than its rings and arrays ever hold.
const POOL: u32 = 1024;

/// EAL, started by the first test; the guard makes the tests take turns.
fn eal() -> MutexGuard<'static, ()> {
    static EAL: OnceLock<Eal> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    EAL.get_or_init(|| {
        let mut args: Vec<String> = [
            "-l",
            "0",
            "--no-huge",
            "--no-pci",
            "--no-shconf",
            "--no-telemetry",
            "-m",
            "128",
            "--log-level=lib.eal:warning",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let prefix = format!("btbtest-mbuf-{}", std::process::id());
        args.push(format!("--file-prefix={prefix}"));
        let eal = Eal::init(&args).expect("EAL starts");
        // EAL is never cleaned up (it lives in a static): remove its runtime
        // directory now, empty with --no-shconf and --no-telemetry.
        let _ = std::fs::remove_dir(std::path::Path::new("/var/run/dpdk").join(prefix));
        eal
    });
    turn
}

/// A 64-byte frame carrying `tag` in its first four bytes.
fn frame(tag: u32) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..4].copy_from_slice(&tag.to_le_bytes());
    f
}

fn tag_of(frame: &[u8]) -> u32 {
    u32::from_le_bytes(frame[..4].try_into().expect("a tagged frame"))
}

/// A loopback port (its RX and TX are one ring) holding frames `tags`.
fn port(name: &str, tags: std::ops::Range<u32>, pool: &Mempool) -> LoopbackPort {
    let frames: Vec<Vec<u8>> = tags.map(frame).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let port = loopback::create(name, &refs, pool).expect("loopback port");
    assert_eq!(port.packets, frames.len());
    port
}

/// Receives everything `port` holds (fewer than MAX_BURST): their tags.
fn drain_tags(port: &LoopbackPort) -> Vec<u32> {
    let mut rx = MbufArray::new();
    let n = rx.rx_burst(port.id, 0, MAX_BURST as u16);
    (0..n).map(|i| tag_of(rx.frame(i))).collect()
}

/// Twenty rounds of: receive a burst from A, drop every fourth packet,
/// forward the rest plus fresh ones to B (which takes only what its ring has
/// room for), then send a burst of B back to A. No `free_all` anywhere: the
/// arrays are dropped with whatever they still own. After each step the
/// pool's in-use count is exactly what the two rings hold.
#[test]
fn forward_drop_and_tx_failure_free_each_mbuf_exactly_once() {
    let _turn = eal();
    let pool = Mempool::create("mbuf_mix", POOL, 0, 0).expect("pool");
    let a = port("mbuf_mix_a", 0..48, &pool);
    let b = port("mbuf_mix_b", 1000..1040, &pool);
    let (mut in_a, mut in_b) = (48usize, 40usize);
    assert_eq!(pool.in_use() as usize, in_a + in_b);
    let fresh: Vec<Vec<u8>> = (0..8).map(|k| frame(5000 + k)).collect();
    let mut tx_failures = 0;
    for round in 0..20 {
        {
            let mut rx = MbufArray::new();
            let mut tx = MbufArray::new();
            let mut drop = MbufArray::new();
            let n = rx.rx_burst(a.id, 0, 32);
            assert_eq!(n, in_a.min(32), "round {round}: received from A");
            in_a -= n;
            let mut i = 0;
            while let Some(m) = rx.pop_front() {
                if i % 4 == 3 {
                    drop.push(m);
                } else {
                    tx.push(m);
                }
                i += 1;
            }
            assert_eq!(i, n);
            tx.fill_from(&pool, fresh.iter().map(Vec::as_slice))
                .expect("pool has room");
            let offered = tx.len();
            let sent = tx.tx_burst(b.id, 0);
            assert_eq!(sent, offered.min(RING - in_b), "round {round}: B took");
            assert_eq!(tx.len(), offered - sent, "the unsent stay in tx");
            tx_failures += tx.len();
            in_b += sent;
        }
        assert_eq!(pool.in_use() as usize, in_a + in_b, "round {round}, A to B");
        {
            let mut rx = MbufArray::new();
            let n = rx.rx_burst(b.id, 0, 32);
            assert_eq!(n, in_b.min(32), "round {round}: received from B");
            in_b -= n;
            let sent = rx.tx_burst(a.id, 0);
            assert_eq!(sent, n.min(RING - in_a), "round {round}: A took");
            in_a += sent;
        }
        assert_eq!(pool.in_use() as usize, in_a + in_b, "round {round}, B to A");
    }
    assert!(tx_failures > 0, "some bursts must have failed in part");
    assert_eq!(drain_tags(&a).len(), in_a);
    assert_eq!(drain_tags(&b).len(), in_b);
    assert_eq!(pool.in_use(), 0);
}

/// The replay's pattern: a burst the driver takes in part keeps its unsent
/// mbufs, front first, and sending again sends exactly those.
#[test]
fn a_partial_tx_burst_keeps_the_unsent_in_order() {
    let _turn = eal();
    let pool = Mempool::create("mbuf_partial", POOL, 0, 0).expect("pool");
    let full = port("mbuf_partial_b", 0..60, &pool);
    let frames: Vec<Vec<u8>> = (100..108).map(frame).collect();
    let mut pending = MbufArray::new();
    pending
        .fill_from(&pool, frames.iter().map(Vec::as_slice))
        .expect("pool has room");
    assert_eq!(pool.in_use(), 68);

    assert_eq!(pending.tx_burst(full.id, 0), 3, "room for 3 in the ring");
    assert_eq!(pending.len(), 5);
    let left: Vec<u32> = (0..5).map(|i| tag_of(pending.frame(i))).collect();
    assert_eq!(left, [103, 104, 105, 106, 107]);
    assert_eq!(pool.in_use(), 68, "sent or kept, none freed");

    let got = drain_tags(&full);
    assert_eq!(got.len(), RING);
    assert_eq!(got[60..], [100, 101, 102]);
    assert_eq!(pool.in_use(), 5, "the ring's 63 back in the pool");

    assert_eq!(pending.tx_burst(full.id, 0), 5);
    assert!(pending.is_empty());
    assert_eq!(pool.in_use(), 5);
    assert_eq!(drain_tags(&full), [103, 104, 105, 106, 107]);
    assert_eq!(pool.in_use(), 0);
}

/// A popped mbuf is owned by its handle: dropping the handle frees it, the
/// array no longer reads or frees it, and packet 0 is the next one.
#[test]
fn a_popped_mbuf_leaves_its_array() {
    let _turn = eal();
    let pool = Mempool::create("mbuf_pop", POOL, 0, 0).expect("pool");
    let keep = port("mbuf_pop_keep", 0..10, &pool);
    let frames: Vec<Vec<u8>> = (200..204).map(frame).collect();
    let mut arr = MbufArray::new();
    arr.fill_from(&pool, frames.iter().map(Vec::as_slice))
        .expect("pool has room");
    assert_eq!(pool.in_use(), 14);

    let m = arr.pop_front().expect("four in the array");
    assert_eq!(tag_of(m.frame()), 200);
    assert_eq!(m.pkt_len(), 64);
    assert_eq!(arr.len(), 3);
    assert_eq!(tag_of(arr.frame(0)), 201);
    assert_eq!(arr.pkt_len(2), 64);
    let stale = catch_unwind(AssertUnwindSafe(|| arr.frame(3).len()));
    assert!(stale.is_err(), "past the owned mbufs is out of range");
    drop(m);
    assert_eq!(pool.in_use(), 13);

    // Moved into another array: freed once, by that one.
    let mut other = MbufArray::new();
    other.push(arr.pop_front().expect("three left"));
    drop(arr);
    assert_eq!(pool.in_use(), 11);
    assert_eq!(tag_of(other.frame(0)), 201);
    drop(other);
    assert_eq!(pool.in_use(), 10);

    let mut empty = MbufArray::new();
    assert!(empty.pop_front().is_none());
    assert_eq!(empty.tx_burst(keep.id, 0), 0);
    assert_eq!(drain_tags(&keep).len(), 10);
    assert_eq!(pool.in_use(), 0);
}

/// Misuse panics and loses nothing: receiving into a non-empty array,
/// pushing past MAX_BURST, filling past MAX_BURST.
#[test]
fn misuse_panics_without_losing_an_mbuf() {
    let _turn = eal();
    let pool = Mempool::create("mbuf_misuse", POOL, 0, 0).expect("pool");
    let src = port("mbuf_misuse_a", 0..20, &pool);
    let one = frame(7);

    let mut arr = MbufArray::new();
    arr.fill_from(&pool, [&one[..], &one[..]].into_iter())
        .expect("pool has room");
    let rx = catch_unwind(AssertUnwindSafe(|| arr.rx_burst(src.id, 0, 32)));
    assert!(rx.is_err(), "rx_burst into a non-empty array");
    assert_eq!(arr.len(), 2);
    assert_eq!(
        pool.in_use(),
        22,
        "the ring untouched, the array's two kept"
    );

    let too_many = vec![&one[..]; MAX_BURST - 1];
    let fill = catch_unwind(AssertUnwindSafe(|| {
        arr.fill_from(&pool, too_many.iter().copied())
    }));
    assert!(fill.is_err(), "more than MAX_BURST");
    assert_eq!(pool.in_use(), 22, "nothing taken from the pool");

    arr.fill_from(&pool, too_many[..MAX_BURST - 2].iter().copied())
        .expect("exactly MAX_BURST");
    assert_eq!(arr.len(), MAX_BURST);
    let mut one_more = MbufArray::new();
    one_more
        .fill_from(&pool, std::iter::once(&one[..]))
        .expect("pool has room");
    let m = one_more.pop_front().expect("one");
    let push = catch_unwind(AssertUnwindSafe(|| arr.push(m)));
    assert!(push.is_err(), "push into a full array");
    assert_eq!(
        pool.in_use() as usize,
        20 + MAX_BURST,
        "the refused mbuf freed"
    );

    drop(arr);
    assert_eq!(drain_tags(&src).len(), 20);
    assert_eq!(pool.in_use(), 0);
}

/// `fill_from` is all or nothing on error, and an iterator that yields fewer
/// frames than its `len()` says gets exactly what it yielded.
#[test]
fn fill_from_takes_exactly_what_it_keeps() {
    let _turn = eal();
    let pool = Mempool::create("mbuf_fill", 16, 0, 0).expect("pool");
    let one = frame(9);
    let mut arr = MbufArray::new();

    let many = vec![&one[..]; 17];
    assert_eq!(
        arr.fill_from(&pool, many.iter().copied()),
        Err(FillError::PoolEmpty)
    );
    assert!(arr.is_empty());
    assert_eq!(pool.in_use(), 0);

    let long = vec![0u8; 4096];
    assert_eq!(
        arr.fill_from(&pool, [&one[..], &long[..]].into_iter()),
        Err(FillError::TooLong)
    );
    assert_eq!(pool.in_use(), 0);

    arr.fill_from(&pool, Lying { yields: 2, says: 5 })
        .expect("pool has room");
    assert_eq!(arr.len(), 2);
    assert_eq!(pool.in_use(), 2, "the three unfilled mbufs went back");
    drop(arr);
    assert_eq!(pool.in_use(), 0);
}

/// Yields `yields` empty-ish frames but says it has `says`.
#[derive(Clone)]
struct Lying {
    yields: usize,
    says: usize,
}

impl Iterator for Lying {
    type Item = &'static [u8];
    fn next(&mut self) -> Option<&'static [u8]> {
        if self.yields == 0 {
            return None;
        }
        self.yields -= 1;
        self.says = self.says.saturating_sub(1);
        Some(&[0u8; 60])
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.says, Some(self.says))
    }
}

impl ExactSizeIterator for Lying {}
