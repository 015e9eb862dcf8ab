//! One single-writer counter. Each worker is the only writer of its own
//! counters and the control lcore reads them: a single writer needs no atomic
//! read-modify-write (a relaxed load + store compiles to plain moves), and the
//! atomic type keeps the concurrent read well defined.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Only the owning worker may call this (single writer).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}
