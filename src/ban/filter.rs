//! A register-blocked Bloom filter in front of each snapshot shard:
//! "certainly not banned" from one 64-bit word, so the common packet (its
//! hosts not banned) never touches the shard's slot array.
//!
//! # Why this filter
//!
//! A key sets [`BITS_SET`] bits, all inside one 64-bit word: a query is one
//! load, a mask built from one multiply, one AND and compare, about what a
//! plain hashed bitmap costs, with ~10 times fewer false positives at the
//! same memory. At [`BITS_PER_KEY`] bits a key about 0.6 % of the addresses
//! that are not banned pass (and go on to the slot array, where the probe
//! says no); a million bans take 2 MB of filter against 48 MB of slots.
//! Measured against it (benches/ban.rs `filter_probe`, BENCHMARKS.md
//! "Issue 13"): a hashed bitmap (one bit a key; 5.8 % false positives at
//! 16 bits a key) and a split-block Bloom filter (eight bits in a 64-byte
//! block; 0.45 % at 12 bits a key, but about 2.5 times the instructions a
//! query). An xor/binary-fuse filter is smaller still for the same rate but
//! reads three places a query and can only be rebuilt, not patched.
//!
//! # Never a false negative
//!
//! Only the control thread writes a filter, at publish, into a fresh copy
//! (workers read the previous one meanwhile). A shard built from scratch
//! gets the filter of exactly its keys ([`ShardFilter::of`]); a patched shard
//! gets a copy of its predecessor's filter with the keys it inserted or
//! updated added ([`ShardFilter::with_added`]). Every key in the slot array
//! is therefore in the filter. A removed key's bits stay (they can only let
//! more misses through to the slots) and are counted as stale; the shard
//! rebuilds its filter from its slots once they pile up. Expiry is not the
//! filter's business: an expired ban still in the array passes the filter
//! and the slot's `expires_at` decides, as without a filter.
use std::sync::Arc;

/// Filter bits a key is given: ~0.6 % false positives with [`BITS_SET`] = 4
/// (the `false_positive_rate_is_under_one_percent` test measures it).
pub const BITS_PER_KEY: usize = 16;

/// Bits a key sets in its word (and a query tests).
pub const BITS_SET: u32 = 4;

/// The filter for one shard: `Arc`'d so an unchanged shard shares it with
/// the previous snapshot, like its slot array.
#[derive(Clone)]
pub struct ShardFilter {
    /// Empty for an empty shard (then nothing passes).
    words: Arc<[u64]>,
    /// Keys removed since the filter was built whose bits are still set.
    stale: usize,
}

impl ShardFilter {
    pub fn empty() -> Self {
        ShardFilter {
            words: Arc::new([]),
            stale: 0,
        }
    }

    /// The filter of exactly the keys whose hashes `hashes` yields, sized
    /// for `room` keys (the most its shard holds, so that keys added later
    /// by [`ShardFilter::with_added`] keep the false-positive rate).
    pub fn of(room: usize, hashes: impl Iterator<Item = u64>) -> Self {
        if room == 0 {
            return ShardFilter::empty();
        }
        let count = room.saturating_mul(BITS_PER_KEY).div_ceil(64).max(1);
        let mut words: Arc<[u64]> = std::iter::repeat_n(0, count).collect();
        if let Some(table) = Arc::get_mut(&mut words) {
            for hash in hashes {
                if let Some(word) = table.get_mut(word_index(hash, count)) {
                    *word |= mask(hash);
                }
            }
        }
        ShardFilter { words, stale: 0 }
    }

    /// A copy with the keys of `hashes` added and `removed` more keys
    /// counted stale (their bits stay). An empty filter has no room: build
    /// one with [`ShardFilter::of`] instead (this returns it unchanged).
    pub fn with_added(&self, hashes: impl Iterator<Item = u64>, removed: usize) -> Self {
        let mut words: Arc<[u64]> = self.words.iter().copied().collect();
        if let Some(table) = Arc::get_mut(&mut words) {
            let count = table.len();
            for hash in hashes {
                if let Some(word) = table.get_mut(word_index(hash, count)) {
                    *word |= mask(hash);
                }
            }
        }
        ShardFilter {
            words,
            stale: self.stale.saturating_add(removed),
        }
    }

    /// Keys removed since the filter was built whose bits are still set.
    pub fn stale(&self) -> usize {
        self.stale
    }

    /// True if the filter has no words (an empty shard's).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// False if no key with hash `hash` is in the shard; true if one may be.
    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        let bits = mask(hash);
        self.words
            .get(word_index(hash, self.words.len()))
            .is_some_and(|word| word & bits == bits)
    }

    /// Bytes of filter bits.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.words)
    }
}

/// The word for `hash` among `count`: the low 32 bits scaled to the range
/// (Lemire's multiply-shift), so any word count works, not only powers of
/// two. The shard index is the hash's top bits, so the low ones vary freely.
#[inline]
fn word_index(hash: u64, count: usize) -> usize {
    ((u64::from(hash as u32) * count as u64) >> 32) as usize
}

/// The [`BITS_SET`] bits `hash` sets: 6-bit positions taken from the top of
/// the hash remixed by one multiply (independent of the word index, which
/// uses the low bits of the hash itself).
#[inline]
fn mask(hash: u64) -> u64 {
    let mixed = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (1..=BITS_SET).fold(0, |bits, i| bits | 1 << ((mixed >> (64 - 6 * i)) & 63))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ban::{BanKey, KeyHasher};
    use std::net::Ipv4Addr;

    fn hashes(hasher: &KeyHasher, range: std::ops::Range<u32>) -> Vec<u64> {
        range
            .map(|i| hasher.hash(&BanKey::from(Ipv4Addr::from(0x0a00_0000 + i))))
            .collect()
    }

    #[test]
    fn every_key_built_in_passes() {
        let hasher = KeyHasher::with_seed(21);
        for n in [1u32, 7, 64, 1_000, 5_000] {
            let keys = hashes(&hasher, 0..n);
            let filter = ShardFilter::of(keys.len(), keys.iter().copied());
            assert!(keys.iter().all(|&h| filter.may_contain(h)), "{n} keys");
            assert_eq!(filter.bytes(), (n as usize * BITS_PER_KEY).div_ceil(64) * 8);
        }
    }

    #[test]
    fn added_keys_pass_and_removed_ones_count_stale() {
        let hasher = KeyHasher::with_seed(23);
        let keys = hashes(&hasher, 0..300);
        let filter = ShardFilter::of(600, keys[..100].iter().copied());
        let grown = filter.with_added(keys[100..].iter().copied(), 7);
        assert!(keys.iter().all(|&h| grown.may_contain(h)));
        assert_eq!((filter.stale(), grown.stale()), (0, 7));
        assert_eq!(grown.bytes(), filter.bytes());
        assert!(
            !filter.may_contain(keys[299]) || keys[100..].iter().any(|&h| !filter.may_contain(h))
        );
    }

    #[test]
    fn empty_filter_passes_nothing() {
        let filter = ShardFilter::empty();
        assert!(!filter.may_contain(0));
        assert!(!filter.may_contain(u64::MAX));
        assert_eq!(filter.bytes(), 0);
    }

    #[test]
    fn false_positive_rate_is_under_one_percent() {
        let hasher = KeyHasher::with_seed(22);
        let keys = hashes(&hasher, 0..20_000);
        let filter = ShardFilter::of(keys.len(), keys.iter().copied());
        let others = hashes(&hasher, 1_000_000..1_200_000);
        let passed = others.iter().filter(|&&h| filter.may_contain(h)).count();
        // 200,000 non-members: ~0.6 % pass at 16 bits a key, 4 bits set.
        assert!(passed < 2_000, "{passed} of 200000 passed");
        assert!(passed > 200, "{passed}: suspiciously few, is it testing?");
    }
}
