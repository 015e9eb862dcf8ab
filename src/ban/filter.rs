//! The ban snapshot's membership filter: "certainly not banned" from one
//! 64-bit word, so the common packet (its hosts not banned) never touches
//! the snapshot's slot arrays.
//!
//! # Why this filter
//!
//! A key sets [`BITS_SET`] bits, all inside one 64-bit word: a query is one
//! load, a mask built from one multiply, one AND and compare, about what a
//! plain hashed bitmap costs, with ~10 times fewer false positives at the
//! same memory. At [`BITS_PER_KEY`] bits a key of room about 0.6 % of the
//! addresses that are not banned pass when the filter is full (fewer while
//! it has room to spare) and go on to the slot array, where the probe says
//! no. Measured against it (benches/ban.rs `filter_probe`, BENCHMARKS.md
//! "Issue 13"): a hashed bitmap (one bit a key; 5.8 % false positives at
//! 16 bits a key) and a split-block Bloom filter (eight bits in a 64-byte
//! block; 0.45 % at 12 bits a key, but about 2.5 times the instructions a
//! query). An xor/binary-fuse filter is smaller still for the same rate but
//! reads three places a query and can only be rebuilt, not added to.
//!
//! # One filter, shared by the snapshots, only ever gaining bits
//!
//! There is one filter for the whole snapshot (no per-shard header to
//! follow), and successive snapshots share it: copying a megabyte-sized
//! filter per publish would cost more than the publish itself. The control
//! thread, through the only [`FilterWriter`], sets the bits of the keys a
//! publish adds *before* it publishes the snapshot holding them; the
//! publish's pointer store (release) orders those stores before any
//! worker's load of the new snapshot (acquire), so a worker that sees a key
//! in the slots sees its bits. Workers read the words with `Relaxed` loads
//! through a [`FilterView`]; a worker still on an older snapshot may see
//! bits of keys it does not hold yet, which only sends it to the slots.
//!
//! Bits are never cleared: a removed or expired key's bits stay (stale),
//! costing at most a slot probe. The publisher counts them and, when keys
//! plus stale bits outgrow the filter's room, builds a fresh filter from
//! the slots into the next snapshot (old snapshots keep the old one until
//! they are freed). A key in the slots is therefore always in its
//! snapshot's filter: a false negative would be a lost ban.
use super::{BanKey, KeyHasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Filter bits per key of room: ~0.6 % false positives with [`BITS_SET`] =
/// 4 at full room (the `false_positive_rate_is_under_one_percent` test
/// measures it).
pub const BITS_PER_KEY: usize = 16;

/// Bits a key sets in its word (and a query tests).
pub const BITS_SET: u32 = 4;

/// The filter's own keyed hash: one 64×64→128 multiply folded to 64 bits,
/// half the work of the slot arrays' [`KeyHasher::hash`], because every
/// packet pays it twice while the slots' hash is needed only for the <1 %
/// of lookups that pass the filter. Its seeds are drawn from the snapshot's
/// secret-seeded [`KeyHasher`], so a sender cannot aim addresses at one
/// filter word either (that would only cost slot probes, never a lost ban).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterHasher {
    seed_lo: u64,
    /// Odd, so the multiply of an IPv4 key (upper half zero) is a bijection.
    seed_hi: u64,
}

impl FilterHasher {
    pub fn new(keys: &KeyHasher) -> Self {
        FilterHasher {
            seed_lo: keys.hash(&BanKey::from_u128(0x0066_696c_7465_725f_6c6f)),
            seed_hi: keys.hash(&BanKey::from_u128(0x0066_696c_7465_725f_6869)) | 1,
        }
    }

    /// The key's low half (the IPv4 address, for IPv4) times its high half,
    /// both seeded; the 128-bit product's halves folded together.
    #[inline]
    pub fn hash(&self, key: &BanKey) -> u64 {
        let (hi, lo) = key.halves();
        let full = u128::from(lo ^ self.seed_lo) * u128::from((hi ^ self.seed_hi) | 1);
        (full as u64) ^ ((full >> 64) as u64)
    }
}

/// The read side, held by every snapshot: a clone shares the words.
#[derive(Clone)]
pub struct FilterView {
    /// Empty for a filter with no room (then nothing passes).
    words: Arc<[AtomicU64]>,
}

impl FilterView {
    /// False if no key with hash `hash` was ever added; true if one may
    /// have been.
    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        let bits = mask(hash);
        self.words
            .get(word_index(hash, self.words.len()))
            .is_some_and(|word| word.load(Ordering::Relaxed) & bits == bits)
    }

    /// Bytes of filter bits.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.words)
    }

    /// True if both views read the same words.
    pub fn shares_words_with(&self, other: &FilterView) -> bool {
        Arc::ptr_eq(&self.words, &other.words)
    }
}

/// The write side: one per filter, owned by the control thread's
/// publisher (not `Clone`: a single writer is what lets [`FilterWriter::insert`]
/// be a plain load and store instead of a locked read-modify-write).
pub struct FilterWriter {
    view: FilterView,
    room: usize,
}

impl FilterWriter {
    /// An all-zero filter sized for `room` keys (none for 0).
    pub fn with_room(room: usize) -> Self {
        let count = if room == 0 {
            0
        } else {
            room.saturating_mul(BITS_PER_KEY).div_ceil(64).max(1)
        };
        FilterWriter {
            view: FilterView {
                words: std::iter::repeat_with(|| AtomicU64::new(0))
                    .take(count)
                    .collect(),
            },
            room,
        }
    }

    /// Sets the bits of the key with hash `hash`. Readers see them once the
    /// snapshot published after this call is loaded (see the module docs).
    #[inline]
    pub fn insert(&mut self, hash: u64) {
        let bits = mask(hash);
        if let Some(word) = self.view.words.get(word_index(hash, self.view.words.len())) {
            // One writer (`&mut self`): no other store can come between the
            // load and the store.
            let old = word.load(Ordering::Relaxed);
            if old & bits != bits {
                word.store(old | bits, Ordering::Relaxed);
            }
        }
    }

    /// The keys this filter was sized for.
    pub fn room(&self) -> usize {
        self.room
    }

    /// A read handle for a snapshot.
    pub fn view(&self) -> FilterView {
        self.view.clone()
    }
}

/// The word for `hash` among `count`: the low 32 bits scaled to the range
/// (Lemire's multiply-shift), so any word count works, not only powers of
/// two. The mask takes the top bits, so the two are independent.
#[inline]
fn word_index(hash: u64, count: usize) -> usize {
    ((u64::from(hash as u32) * count as u64) >> 32) as usize
}

/// The [`BITS_SET`] bits `hash` sets: 6-bit positions from the top 24 bits
/// of the hash (the word index uses the low 32).
#[inline]
fn mask(hash: u64) -> u64 {
    (1..=BITS_SET).fold(0, |bits, i| bits | 1 << ((hash >> (64 - 6 * i)) & 63))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn hashes(hasher: &KeyHasher, range: std::ops::Range<u32>) -> Vec<u64> {
        let hasher = FilterHasher::new(hasher);
        range
            .map(|i| hasher.hash(&BanKey::from(Ipv4Addr::from(0x0a00_0000 + i))))
            .collect()
    }

    fn filter_of(room: usize, keys: &[u64]) -> FilterWriter {
        let mut filter = FilterWriter::with_room(room);
        keys.iter().for_each(|&h| filter.insert(h));
        filter
    }

    #[test]
    fn every_key_inserted_passes() {
        let hasher = KeyHasher::with_seed(21);
        for n in [1u32, 7, 64, 1_000, 5_000] {
            let keys = hashes(&hasher, 0..n);
            let filter = filter_of(keys.len(), &keys);
            let view = filter.view();
            assert!(keys.iter().all(|&h| view.may_contain(h)), "{n} keys");
            assert_eq!(view.bytes(), (n as usize * BITS_PER_KEY).div_ceil(64) * 8);
            assert_eq!(filter.room(), n as usize);
        }
    }

    #[test]
    fn a_view_taken_before_an_insert_sees_it() {
        let hasher = KeyHasher::with_seed(23);
        let keys = hashes(&hasher, 0..300);
        let mut filter = filter_of(600, &keys[..100]);
        let early = filter.view();
        keys[100..].iter().for_each(|&h| filter.insert(h));
        assert!(keys.iter().all(|&h| early.may_contain(h)));
        assert!(early.shares_words_with(&filter.view()));
        assert!(!early.shares_words_with(&FilterWriter::with_room(600).view()));
    }

    #[test]
    fn empty_filter_passes_nothing() {
        let mut filter = FilterWriter::with_room(0);
        filter.insert(7);
        let view = filter.view();
        assert!(!view.may_contain(0));
        assert!(!view.may_contain(7));
        assert!(!view.may_contain(u64::MAX));
        assert_eq!(view.bytes(), 0);
    }

    #[test]
    fn false_positive_rate_is_under_one_percent() {
        let hasher = KeyHasher::with_seed(22);
        let keys = hashes(&hasher, 0..20_000);
        let view = filter_of(keys.len(), &keys).view();
        let others = hashes(&hasher, 1_000_000..1_200_000);
        let passed = others.iter().filter(|&&h| view.may_contain(h)).count();
        // 200,000 non-members: ~0.6 % pass at 16 bits a key, 4 bits set.
        assert!(passed < 2_000, "{passed} of 200000 passed");
        assert!(passed > 200, "{passed}: suspiciously few, is it testing?");
    }
}
