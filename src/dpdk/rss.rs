//! Which RSS hash a port delivers, and whether it may index the flow table.
//!
//! Two different jobs use the NIC's Toeplitz hash:
//! - *queue spreading*: both directions of a flow must reach the same worker.
//!   A key that repeats every 16 bits (0x6d5a…) makes plain Toeplitz
//!   symmetric, and a handful of queues need only a few bits of the hash.
//! - *flow-table index*: the hash picks one of up to millions of buckets and
//!   its high bits are the tag. There the 0x6d5a key is unfit: Toeplitz is
//!   linear (the XOR of the key windows at the input's set bits), and a key
//!   with period 16 has the same window at every 16th bit, so the hash depends
//!   only on the XOR of the input's 16-bit words: at most 65,536 values
//!   (`symmetric_key_hash_has_16_bits` shows it). A million flows would share
//!   65,536 buckets and tags.
//!
//! So the workers index the table with the NIC's hash only where the port
//! runs DPDK's *symmetric Toeplitz hash function*
//! (`RTE_ETH_HASH_FUNCTION_SYMMETRIC_TOEPLITZ`, an rte_flow RSS action): the
//! PMD makes the input symmetric (sorts or XORs the two endpoints) and hashes
//! it with an ordinary, non-periodic key ([`FLOW_HASH_KEY`]), so the 32 bits
//! are all entropy and both directions agree. Otherwise: the software hash.

use std::fmt;

/// The 0x6d5a key: plain Toeplitz with it is symmetric for any 16-bit-aligned
/// endpoint swap. For queue spreading only (see the module docs).
pub(crate) const SYMMETRIC_QUEUE_KEY: [u8; 52] = {
    let mut k = [0u8; 52];
    let mut i = 0;
    while i < 52 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// The key of the symmetric-Toeplitz flow rule: Microsoft's RSS key (the
/// default most PMDs load; its first 40 bytes), continued with 12 bytes that
/// do not repeat it, for PMDs with 52-byte keys (i40e, ice). Given
/// explicitly: a rule with `key_len = 0` keeps the port's current key, which
/// here is [`SYMMETRIC_QUEUE_KEY`], and would hash with 16 bits again.
pub(crate) const FLOW_HASH_KEY: [u8; 52] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa, 0x3c, 0x97, 0xe1, 0x58, 0x2b, 0x6f, 0x94, 0xd3,
    0x71, 0x0e, 0xa5, 0x36,
];

/// The hash the workers index a port's flows with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowHash {
    /// The NIC's symmetric-Toeplitz hash (full 32 bits), from each mbuf.
    Nic,
    /// The worker hashes the flow key itself, for the reason given.
    Software(String),
}

impl FlowHash {
    /// Decides for one port: `rss_types` are the RSS types both wanted and
    /// offered (0: the PMD has no RSS); `try_rule` asks the PMD for the
    /// symmetric-Toeplitz rule (validate, then create) and is called only
    /// when there is RSS at all.
    pub(crate) fn decide(rss_types: u64, try_rule: impl FnOnce() -> Result<(), String>) -> Self {
        if rss_types == 0 {
            return FlowHash::Software("the driver offers no RSS hash".into());
        }
        match try_rule() {
            Ok(()) => FlowHash::Nic,
            Err(why) => FlowHash::Software(format!(
                "the driver refused the symmetric Toeplitz hash function ({why}); its RSS hash \
                 with the symmetric 0x6d5a key has only 16 bits, fit to spread queues but not \
                 to index flows"
            )),
        }
    }

    pub fn is_nic(&self) -> bool {
        *self == FlowHash::Nic
    }
}

impl fmt::Display for FlowHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowHash::Nic => f.write_str(
                "the NIC's hash (rte_flow RSS rule with the symmetric Toeplitz function: 32 bits, both directions alike)",
            ),
            FlowHash::Software(why) => write!(f, "the software hash: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Toeplitz hash of `input` with `key` (as a NIC computes it).
    fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
        let mut hash = 0u32;
        for (i, byte) in input.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    // The 32-bit key window starting at input bit i*8+bit.
                    let start = i * 8 + bit;
                    let mut window = 0u32;
                    for k in 0..32 {
                        let b = start + k;
                        let kb = key.get(b / 8).map_or(0, |x| (x >> (7 - b % 8)) & 1);
                        window = (window << 1) | u32::from(kb);
                    }
                    hash ^= window;
                }
            }
        }
        hash
    }

    /// IPv4 4-tuple input: src ip, dst ip, src port, dst port.
    fn tuple(src: u32, dst: u32, sport: u16, dport: u16) -> [u8; 12] {
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&src.to_be_bytes());
        t[4..8].copy_from_slice(&dst.to_be_bytes());
        t[8..10].copy_from_slice(&sport.to_be_bytes());
        t[10..].copy_from_slice(&dport.to_be_bytes());
        t
    }

    /// Deterministic pseudo-random 4-tuples (splitmix64).
    fn tuples(n: usize) -> impl Iterator<Item = (u32, u32, u16, u16)> {
        let mut s = 0x1234_5678_9abc_def0u64;
        std::iter::repeat_with(move || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let w = s.rotate_left(17).wrapping_mul(0xff51_afd7_ed55_8ccd);
            (z as u32, (z >> 32) as u32, w as u16, (w >> 16) as u16)
        })
        .take(n)
    }

    #[test]
    fn toeplitz_matches_the_published_verification_vector() {
        // Microsoft's RSS verification suite: 66.9.149.187:2794 ->
        // 161.142.100.80:1766 hashes to 0x51ccc178 with the default key.
        let input = tuple(0x4209_95bb, 0xa18e_6450, 2794, 1766);
        assert_eq!(toeplitz(&FLOW_HASH_KEY, &input), 0x51cc_c178);
    }

    /// The 0x6d5a key is symmetric, but its hash takes at most 2^16 values.
    #[test]
    fn symmetric_key_hash_has_16_bits() {
        let mut seen = HashSet::new();
        for (a, b, p, q) in tuples(200_000) {
            let h = toeplitz(&SYMMETRIC_QUEUE_KEY, &tuple(a, b, p, q));
            assert_eq!(h, toeplitz(&SYMMETRIC_QUEUE_KEY, &tuple(b, a, q, p)));
            seen.insert(h);
        }
        assert!(seen.len() <= 65_536, "{} distinct", seen.len());
    }

    /// A symmetric hash function (here: the endpoints put in order, then
    /// hashed with the non-periodic key; PMDs may XOR them instead) keeps all
    /// 32 bits: 200,000
    /// flows give (nearly) 200,000 hashes (the birthday bound expects ~5
    /// collisions in 2^32), and both directions agree.
    #[test]
    fn symmetric_function_with_the_flow_key_has_32_bits() {
        let ordered = |a: u32, b: u32, p: u16, q: u16| {
            if (a, p) <= (b, q) {
                tuple(a, b, p, q)
            } else {
                tuple(b, a, q, p)
            }
        };
        let mut seen = HashSet::new();
        for (a, b, p, q) in tuples(200_000) {
            let h = toeplitz(&FLOW_HASH_KEY, &ordered(a, b, p, q));
            assert_eq!(h, toeplitz(&FLOW_HASH_KEY, &ordered(b, a, q, p)));
            seen.insert(h);
        }
        assert!(seen.len() >= 199_900, "{} distinct", seen.len());
    }

    #[test]
    fn the_flow_key_is_not_periodic() {
        assert!((2..=26).all(|p| FLOW_HASH_KEY[p..] != FLOW_HASH_KEY[..52 - p]));
    }

    #[test]
    fn the_nic_hash_is_used_only_when_the_symmetric_function_is_on() {
        assert_eq!(FlowHash::decide(0x3c, || Ok(())), FlowHash::Nic);
        let refused = FlowHash::decide(0x3c, || Err("Not supported action".into()));
        assert!(!refused.is_nic());
        assert!(refused.to_string().contains("Not supported action"));
        let mut asked = false;
        let no_rss = FlowHash::decide(0, || {
            asked = true;
            Ok(())
        });
        assert!(!no_rss.is_nic() && !asked);
    }
}
