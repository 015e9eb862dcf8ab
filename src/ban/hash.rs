//! The keyed hash that places a [`BanKey`] in a snapshot shard and slot.
//!
//! Runs on every packet (twice: source and destination), so it is one
//! 64×64→128 multiply folded to 64 bits (the `folded multiply` of wyhash and
//! foldhash), not SipHash. The seed is random per process: the addresses we
//! ban are chosen by the traffic, and an unseeded hash would let a sender
//! pick addresses that pile into one shard or one probe chain.
use super::key::BanKey;
use std::hash::BuildHasher;

/// Number of snapshot shards. A power of two so the shard index is the top
/// bits of the hash. A publish copies every shard it touches, so more shards
/// mean less copying per new ban (1024: ~1 k keys, 48 KiB of slots per
/// shard at 1 M bans) but more `Arc`s to clone per publish (1024 × a few ns).
pub const SHARD_COUNT: usize = 1024;
const SHARD_BITS: u32 = SHARD_COUNT.trailing_zeros();

/// Hashes keys with a per-table secret seed. Copy: the snapshot carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHasher {
    seed_hi: u64,
    seed_lo: u64,
}

impl KeyHasher {
    /// A hasher with a fixed seed (tests, benches, reproducible layouts).
    pub const fn with_seed(seed: u64) -> Self {
        KeyHasher {
            // Two unrelated constants so neither half is the raw seed.
            seed_hi: seed ^ 0x243f_6a88_85a3_08d3,
            seed_lo: seed.rotate_left(32) ^ 0x1319_8a2e_0370_7344,
        }
    }

    /// A hasher seeded from the OS randomness behind std's `RandomState`.
    pub fn random() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x6261_6e73_u64);
        KeyHasher::with_seed(seed)
    }

    #[inline]
    pub fn hash(&self, key: &BanKey) -> u64 {
        let (hi, lo) = key.halves();
        // Two rounds: one multiply of the two halves alone leaves the top
        // bits (the shard index) nearly constant for IPv4 keys, whose upper
        // half is all zeros and whose lower half varies only in its low bits.
        let low = folded_multiply(lo ^ self.seed_lo, MUL_LOW);
        folded_multiply(low ^ hi ^ self.seed_hi, MUL_HIGH)
    }

    /// Which of the [`SHARD_COUNT`] shards `hash` belongs to: the top bits,
    /// so the slot index inside a shard (low bits) is independent of it.
    #[inline]
    pub const fn shard_of_hash(hash: u64) -> usize {
        (hash >> (u64::BITS - SHARD_BITS)) as usize
    }

    #[inline]
    pub fn shard_of(&self, key: &BanKey) -> usize {
        Self::shard_of_hash(self.hash(key))
    }
}

// Odd 64-bit constants with well-mixed bits (the fractional digits of pi,
// as in foldhash and wyhash).
const MUL_LOW: u64 = 0xa409_3822_299f_31d1;
const MUL_HIGH: u64 = 0x082e_fa98_ec4e_6c89;

#[inline]
const fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = (a as u128).wrapping_mul(b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn shard_index_is_in_range_and_deterministic_per_seed() {
        let h = KeyHasher::with_seed(7);
        let key = BanKey::from(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(h.hash(&key), KeyHasher::with_seed(7).hash(&key));
        assert!(h.shard_of(&key) < SHARD_COUNT);
        assert_eq!(KeyHasher::shard_of_hash(u64::MAX), SHARD_COUNT - 1);
        assert_eq!(KeyHasher::shard_of_hash(0), 0);
    }

    /// Shard occupancy (min, max) of 64 × SHARD_COUNT keys made by `make`.
    fn spread(seed: u64, make: impl Fn(u32) -> BanKey) -> (u32, u32) {
        let h = KeyHasher::with_seed(seed);
        let mut counts = [0u32; SHARD_COUNT];
        for i in 0..(SHARD_COUNT as u32 * 64) {
            counts[h.shard_of(&make(i))] += 1;
        }
        (*counts.iter().min().unwrap(), *counts.iter().max().unwrap())
    }

    #[test]
    fn structured_addresses_spread_over_all_shards() {
        type MakeKey = fn(u32) -> BanKey;
        let patterns: [(&str, MakeKey); 4] = [
            ("consecutive IPv4", |i| {
                BanKey::from(Ipv4Addr::from(0x0a00_0000 + i))
            }),
            ("IPv4 /24s", |i| BanKey::from(Ipv4Addr::from(i << 8))),
            ("IPv6 consecutive interface ids", |i| {
                BanKey::from_u128(0x2001_0db8_u128 << 96 | u128::from(i))
            }),
            ("IPv6 consecutive /64s", |i| {
                BanKey::from_u128((0x2001_0db8_u128 << 96 | u128::from(i) << 64) | 1)
            }),
        ];
        for seed in [0, 1, 0xdead_beef] {
            for (name, make) in patterns {
                // 64 per shard on average; a poor mix leaves shards empty or
                // several times over-full.
                let (min, max) = spread(seed, make);
                assert!(min >= 32 && max <= 112, "{name}, seed {seed}: {min}..{max}");
            }
        }
    }

    #[test]
    fn different_seeds_give_different_hashes() {
        let key = BanKey::from(Ipv4Addr::new(192, 0, 2, 1));
        assert_ne!(
            KeyHasher::with_seed(1).hash(&key),
            KeyHasher::with_seed(2).hash(&key)
        );
    }
}
