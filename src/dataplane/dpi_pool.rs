//! A worker's fixed pool of DPI state for its undecided flows.
//!
//! Most of a flow's life is spent after its verdict, or before its first
//! payload, and neither needs the detectors' memory (`FlowDpiState`, larger
//! than everything else a flow keeps). So a flow-table slot keeps only a
//! [`DpiRef`] to an entry of this pool: taken at the flow's first inspected
//! payload, given back when DPI decides the flow or the flow leaves the table.
//! The pool is sized in the config (`flows.dpi_pool`) independently of the
//! table, so a table of millions of mostly idle or decided flows does not pay
//! for millions of detector states.
//!
//! Every entry and the free list are allocated and written at construction
//! (the dataplane faults its memory in before the first packet); `take` and
//! `give_back` only move a `u32` on a fixed array. An empty pool answers
//! `None`: the caller counts it and leaves the flow undecided.
use crate::dpi::FlowDpiState;

/// Where a flow's DPI state is: a pool entry, or why it has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DpiRef(u32);

impl DpiRef {
    /// No entry: the flow has had no payload yet, or DPI has decided it.
    pub const NONE: DpiRef = DpiRef(u32::MAX);
    /// The pool was empty when the flow first needed an entry: it is never
    /// inspected and stays undecided (counted once, when refused).
    pub const REFUSED: DpiRef = DpiRef(u32::MAX - 1);

    /// The entry's index, when the flow holds one.
    #[inline]
    pub fn entry(self) -> Option<u32> {
        (self.0 < Self::REFUSED.0).then_some(self.0)
    }
}

impl Default for DpiRef {
    fn default() -> Self {
        DpiRef::NONE
    }
}

/// Largest pool: indexes stay below the sentinels of [`DpiRef`].
pub const MAX_ENTRIES: usize = (u32::MAX - 1) as usize;

/// The per-worker pool: `entries`, and a stack of the free ones' indexes.
pub struct DpiPool {
    entries: Box<[FlowDpiState]>,
    /// `free[..free_len]` are the indexes of the entries not in use.
    free: Box<[u32]>,
    free_len: usize,
}

impl DpiPool {
    /// A pool of `entries` states (at most [`MAX_ENTRIES`]), every one
    /// written here, so its pages are in memory before the first packet.
    pub fn new(entries: usize) -> Self {
        let entries = entries.min(MAX_ENTRIES);
        // Highest index at the bottom of the stack: entries are handed out
        // from index 0 up, so a lightly used pool touches its first lines only.
        let free: Box<[u32]> = (0..entries as u32).rev().collect();
        DpiPool {
            entries: vec![FlowDpiState::default(); entries].into_boxed_slice(),
            free_len: free.len(),
            free,
        }
    }

    /// Entries in the pool, used or not.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Entries held by flows now.
    pub fn in_use(&self) -> usize {
        self.entries.len() - self.free_len
    }

    /// A fresh (default) state for a flow starting DPI, or `None` when every
    /// entry is in use.
    #[inline]
    pub fn take(&mut self) -> Option<DpiRef> {
        let top = self.free_len.checked_sub(1)?;
        let index = *self.free.get(top)?;
        let state = self.entries.get_mut(index as usize)?;
        *state = FlowDpiState::default();
        self.free_len = top;
        Some(DpiRef(index))
    }

    /// The state behind `r`, when it names an entry of this pool.
    #[inline]
    pub fn get(&self, r: DpiRef) -> Option<&FlowDpiState> {
        self.entries.get(r.entry()? as usize)
    }

    /// The state behind `r`, when it names an entry of this pool.
    #[inline]
    pub fn get_mut(&mut self, r: DpiRef) -> Option<&mut FlowDpiState> {
        self.entries.get_mut(r.entry()? as usize)
    }

    /// Returns `r`'s entry to the pool; a ref without an entry is ignored.
    /// The caller forgets `r` (sets the flow's ref to [`DpiRef::NONE`], or
    /// the slot is being reused).
    #[inline]
    pub fn give_back(&mut self, r: DpiRef) {
        let Some(index) = r.entry() else {
            return;
        };
        if let Some(top) = self.free.get_mut(self.free_len) {
            *top = index;
            self.free_len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_go_out_and_come_back() {
        let mut pool = DpiPool::new(2);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_eq!((a.entry(), b.entry()), (Some(0), Some(1)));
        assert_eq!(pool.take(), None);
        assert_eq!(pool.in_use(), 2);
        pool.give_back(a);
        assert_eq!(pool.in_use(), 1);
        assert_eq!(pool.take(), Some(a));
        pool.give_back(DpiRef::NONE);
        pool.give_back(DpiRef::REFUSED);
        assert_eq!(pool.in_use(), 2);
        assert!(pool.get_mut(DpiRef::REFUSED).is_none());
        assert!(pool.get_mut(b).is_some());
    }

    #[test]
    fn a_taken_entry_starts_fresh() {
        let mut pool = DpiPool::new(1);
        let r = pool.take().unwrap();
        pool.get_mut(r).unwrap().payload_packets = [3, 4];
        pool.give_back(r);
        let r = pool.take().unwrap();
        assert_eq!(pool.get_mut(r).unwrap().payload_packets, [0, 0]);
    }

    #[test]
    fn an_empty_pool_refuses_without_panicking() {
        let mut pool = DpiPool::new(0);
        assert_eq!(pool.take(), None);
        pool.give_back(DpiRef(0));
        assert_eq!(pool.in_use(), 0);
    }
}
