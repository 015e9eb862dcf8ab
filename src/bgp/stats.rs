//! Counters the BGP thread and the control loop share with the metrics
//! export: plain atomics, written by one side, read at each stats interval.
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use arc_swap::ArcSwap;

/// Totals and gauges behind the `btblocker_bgp_*` metrics.
#[derive(Debug, Default)]
pub struct BgpStats {
    pub announced: AtomicU64,
    pub withdrawn: AtomicU64,
    pub imported: AtomicU64,
    pub import_withdrawn: AtomicU64,
    pub queue_full: AtomicU64,
    pub errors: AtomicU64,
    pub reconciles: AtomicU64,
    /// Bans `max_announced` kept out, each counted once as it starts to
    /// wait (extending a waiting ban does not count it again).
    pub refused: AtomicU64,
    /// Bans waiting for room under `max_announced` now.
    pub waiting: AtomicU64,
    /// 1 when the API connection is up and a peer is established.
    pub session_up: AtomicU64,
    /// 1 when the API connection to gobgpd is up.
    pub api_up: AtomicU64,
    /// Routes gobgpd holds from us, as far as the thread knows.
    pub announced_routes: AtomicU64,
    /// Routes wanted but not held, plus held but not wanted.
    pub rib_difference: AtomicU64,
    /// Commands waiting in the control loop → thread queue.
    pub queue_depth: AtomicU64,
    /// The hosts the thread announces (after `max_announced`), republished
    /// by the thread when it changes, read by `bans list`: only the thread
    /// knows which bans the limit refused.
    pub announced_hosts: ArcSwap<HashSet<IpAddr>>,
}

/// A copy of [`BgpStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BgpCounts {
    pub announced: u64,
    pub withdrawn: u64,
    pub imported: u64,
    pub import_withdrawn: u64,
    pub queue_full: u64,
    pub errors: u64,
    pub reconciles: u64,
    pub refused: u64,
    pub waiting: u64,
    pub session_up: u64,
    pub api_up: u64,
    pub announced_routes: u64,
    pub rib_difference: u64,
    pub queue_depth: u64,
}

impl BgpStats {
    pub fn counts(&self) -> BgpCounts {
        let g = |a: &AtomicU64| a.load(Relaxed);
        BgpCounts {
            announced: g(&self.announced),
            withdrawn: g(&self.withdrawn),
            imported: g(&self.imported),
            import_withdrawn: g(&self.import_withdrawn),
            queue_full: g(&self.queue_full),
            errors: g(&self.errors),
            reconciles: g(&self.reconciles),
            refused: g(&self.refused),
            waiting: g(&self.waiting),
            session_up: g(&self.session_up),
            api_up: g(&self.api_up),
            announced_routes: g(&self.announced_routes),
            rib_difference: g(&self.rib_difference),
            queue_depth: g(&self.queue_depth),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, v: usize) {
        gauge.store(v as u64, Relaxed);
    }
}
