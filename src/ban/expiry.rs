//! When each dynamic ban ends: a min-heap of `(expires_at, key)` with lazy
//! deletion, for the control thread's `expire` and `evict_oldest`.
//!
//! A refresh or removal does not search the heap for the old entry; it
//! leaves it behind, and whoever pops it checks it against the table and
//! skips it if the ban has changed or gone. Pushing a later expiry onto the
//! heap usually stops after one comparison, which keeps an add cheap at
//! 1 M bans (a `BTreeSet` insert there costs a microsecond of cache misses).
//! Left-behind entries are bounded by rebuilding the heap from the table
//! when they outnumber the live ones.
use super::key::BanKey;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Left-behind entries tolerated before a rebuild, on top of one per live
/// ban (so small tables are not rebuilt on every other refresh).
const SLACK: usize = 1_024;

#[derive(Default)]
pub(crate) struct ExpiryQueue {
    /// Keys as integers: cheaper to compare than 16-byte arrays.
    heap: BinaryHeap<Reverse<(u64, u128)>>,
}

impl ExpiryQueue {
    pub(crate) fn push(&mut self, expires_at: u64, key: BanKey) {
        self.heap.push(Reverse((expires_at, key.to_u128())));
    }

    /// Pops the earliest entry due at `now_ms` (`u64::MAX`: the earliest of
    /// all) for which `is_current(expires_at, key)` holds, dropping the
    /// left-behind ones on the way.
    pub(crate) fn pop_due(
        &mut self,
        now_ms: u64,
        is_current: impl Fn(u64, &BanKey) -> bool,
    ) -> Option<BanKey> {
        while let Some(&Reverse((expires_at, key))) = self.heap.peek() {
            if expires_at > now_ms {
                return None;
            }
            self.heap.pop();
            let key = BanKey::from_u128(key);
            if is_current(expires_at, &key) {
                return Some(key);
            }
        }
        None
    }

    /// True when left-behind entries outnumber `live` (the dynamic bans) by
    /// enough that [`ExpiryQueue::rebuild`] pays off.
    pub(crate) fn needs_rebuild(&self, live: usize) -> bool {
        self.heap.len() > live.saturating_mul(2).saturating_add(SLACK)
    }

    /// Replaces the heap with exactly `live` (O(n) heapify).
    pub(crate) fn rebuild(&mut self, live: impl Iterator<Item = (u64, BanKey)>) {
        let entries: Vec<_> = live.map(|(e, k)| Reverse((e, k.to_u128()))).collect();
        self.heap = BinaryHeap::from(entries);
    }

    pub(crate) fn clear(&mut self) {
        self.heap = BinaryHeap::new();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(i: u32) -> BanKey {
        BanKey::from(Ipv4Addr::from(i))
    }

    #[test]
    fn pops_in_expiry_order_up_to_now() {
        let mut q = ExpiryQueue::default();
        q.push(30, key(3));
        q.push(10, key(1));
        q.push(20, key(2));
        let all = |_: u64, _: &BanKey| true;
        assert_eq!(q.pop_due(9, all), None);
        assert_eq!(q.pop_due(20, all), Some(key(1)));
        assert_eq!(q.pop_due(20, all), Some(key(2)));
        assert_eq!(q.pop_due(20, all), None);
        assert_eq!(q.pop_due(u64::MAX, all), Some(key(3)));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn left_behind_entries_are_skipped_and_dropped() {
        let mut q = ExpiryQueue::default();
        q.push(10, key(1)); // refreshed to 50 below: left behind
        q.push(20, key(2)); // removed: left behind
        q.push(50, key(1));
        let current = |e: u64, k: &BanKey| *k == key(1) && e == 50;
        assert_eq!(q.pop_due(40, current), None);
        assert_eq!(q.len(), 1, "both stale entries dropped");
        assert_eq!(q.pop_due(50, current), Some(key(1)));
    }

    #[test]
    fn rebuild_threshold_and_result() {
        let mut q = ExpiryQueue::default();
        for i in 0..(SLACK as u32 + 2) {
            q.push(u64::from(i), key(i));
        }
        assert!(!q.needs_rebuild(1));
        q.push(0, key(0));
        assert!(q.needs_rebuild(1));
        q.rebuild([(7, key(9))].into_iter());
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_due(7, |_, _| true), Some(key(9)));
    }
}
