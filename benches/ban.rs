//! Ban machinery benches: the per-packet snapshot lookup (with the
//! snapshot's filter, and without it as before issue 13, side by side), the
//! candidate filters alone, the per-detection ring push, and the control
//! thread's add → publish → visible latency.
//!
//!     cargo bench --no-default-features --bench ban -- --warm-up-time 1 --measurement-time 3
//!     cargo bench --no-default-features --bench ban -- --warm-up-time 1 --measurement-time 3 'snapshot_lookup|filter_probe'
use btblocker::ban::filter::{FilterWriter, BITS_PER_KEY};
use btblocker::ban::{
    event_ring, Allowlist, BanKey, BanTable, BanTableConfig, Confidence, FullPolicy, HostDetection,
    KeyHasher, PayloadPrefix,
};
use btblocker::wire::Transport;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(3_600);
const NOW: u64 = 1_700_000_000_000;
/// Packets per burst: the worker loads the snapshot once per burst.
const BURST: usize = 32;
/// Queries cycled through by the lookup bench (power of two).
const QUERIES: usize = 1 << 16;

/// xorshift64*: reproducible keys without a dependency.
struct Rng(u64);

impl Rng {
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    fn ipv4_key(&mut self) -> BanKey {
        BanKey::from(Ipv4Addr::from(self.next_u32()))
    }
}

fn table_with(n: usize, rng: &mut Rng) -> (BanTable, Vec<BanKey>) {
    let config = BanTableConfig {
        max_entries: 4_000_000,
        when_full: FullPolicy::Refuse,
    };
    let mut table = BanTable::new(config, Allowlist::default());
    let mut keys = Vec::with_capacity(n);
    while table.len() < n {
        let key = rng.ipv4_key();
        if table.get(&key).is_none() {
            table.add(key, TTL, "bench", NOW);
            keys.push(key);
        }
    }
    table.publish();
    (table, keys)
}

/// One lookup in `HIT_EVERY` is of a banned host (1 %): most packets'
/// hosts are not banned.
const HIT_EVERY: usize = 100;

/// Per-lookup cost at 0, 10 k and 1 M bans with 1 % hits: `filtered` is
/// `Snapshot::contains` (the snapshot's filter, then slots),
/// `filtered_pairs` the same keys two at a time through
/// `Snapshot::contains_either`, `unfiltered` the lookup
/// as it was before the filter (`contains_unfiltered`), on the same
/// snapshot and queries. Throughput is per lookup: criterion's "elem/s"
/// inverted is ns/lookup.
fn snapshot_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_lookup");
    group.throughput(Throughput::Elements(BURST as u64));
    for n in [0usize, 10_000, 1_000_000] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (table, banned) = table_with(n, &mut rng);
        let queries: Vec<BanKey> = (0..QUERIES)
            .map(
                |i| match banned.get(rng.next_u32() as usize % banned.len().max(1)) {
                    Some(&key) if i % HIT_EVERY == 0 => key,
                    _ => loop {
                        let key = rng.ipv4_key();
                        if table.get(&key).is_none() {
                            break key;
                        }
                    },
                },
            )
            .collect();
        let reader = table.reader();
        let expected_hits = queries.iter().filter(|k| table.get(k).is_some()).count();
        let hits = queries
            .iter()
            .filter(|k| reader.load().contains(k, NOW))
            .count();
        assert_eq!(hits, expected_hits);
        eprintln!(
            "{n} bans: {} bytes of filter ({:.1} bits a ban), {hits} of {QUERIES} queries hit",
            table.snapshot().filter_bytes(),
            table.snapshot().filter_bytes() as f64 * 8.0 / n.max(1) as f64
        );
        let mut pos = 0;
        group.bench_with_input(BenchmarkId::new("filtered", n), &n, |b, _| {
            b.iter(|| {
                let snapshot = reader.load();
                let burst = queries.get(pos..pos + BURST).unwrap_or_default();
                pos = (pos + BURST) % QUERIES;
                burst
                    .iter()
                    .filter(|key| snapshot.contains(key, NOW))
                    .count()
            })
        });
        // A packet's two hosts in one call (`contains_either`, what the
        // pipeline asks): 16 packets, so 32 lookups as above.
        group.bench_with_input(BenchmarkId::new("filtered_pairs", n), &n, |b, _| {
            b.iter(|| {
                let snapshot = reader.load();
                let burst = queries.get(pos..pos + BURST).unwrap_or_default();
                pos = (pos + BURST) % QUERIES;
                burst
                    .chunks_exact(2)
                    .filter(|pair| snapshot.contains_either(&pair[0], &pair[1], NOW))
                    .count()
            })
        });
        group.bench_with_input(BenchmarkId::new("unfiltered", n), &n, |b, _| {
            b.iter(|| {
                let snapshot = reader.load();
                let burst = queries.get(pos..pos + BURST).unwrap_or_default();
                pos = (pos + BURST) % QUERIES;
                burst
                    .iter()
                    .filter(|key| snapshot.contains_unfiltered(key, NOW))
                    .count()
            })
        });
    }
    group.finish();
}

/// A hashed bitmap (a Bloom filter with one bit a key): the simplest
/// candidate, measured against the blocked Bloom filter the snapshot uses.
struct HashedBitmap {
    words: Vec<u64>,
    shift: u32,
}

impl HashedBitmap {
    fn new(bits_per_key: usize, hashes: &[u64]) -> Self {
        let bits = (hashes.len() * bits_per_key).next_power_of_two().max(64);
        let mut map = HashedBitmap {
            words: vec![0; bits / 64],
            shift: u64::BITS - bits.trailing_zeros(),
        };
        for &h in hashes {
            let bit = map.bit(h);
            map.words[bit / 64] |= 1 << (bit % 64);
        }
        map
    }

    fn bit(&self, hash: u64) -> usize {
        (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    fn may_contain(&self, hash: u64) -> bool {
        let bit = self.bit(hash);
        self.words
            .get(bit / 64)
            .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }

    fn bytes(&self) -> usize {
        self.words.len() * 8
    }
}

/// A split-block Bloom filter (eight bits a key, one in each word of a
/// 64-byte block, as Parquet's but with 64-bit words): the snapshot's first
/// filter, measured and replaced (about 2.5 times the instructions a query).
struct SplitBlockBloom {
    blocks: Vec<[u64; 8]>,
}

const SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

impl SplitBlockBloom {
    fn new(bits_per_key: usize, hashes: &[u64]) -> Self {
        let count = (hashes.len() * bits_per_key).div_ceil(512).max(1);
        let mut f = SplitBlockBloom {
            blocks: vec![[0; 8]; count],
        };
        for &h in hashes {
            let i = f.index(h);
            for (word, bits) in f.blocks[i].iter_mut().zip(Self::pattern(h)) {
                *word |= bits;
            }
        }
        f
    }

    fn index(&self, hash: u64) -> usize {
        ((u64::from(hash as u32) * self.blocks.len() as u64) >> 32) as usize
    }

    fn pattern(hash: u64) -> [u64; 8] {
        let seed = (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32;
        SALT.map(|salt| 1u64 << (seed.wrapping_mul(salt) >> 26))
    }

    fn may_contain(&self, hash: u64) -> bool {
        self.blocks.get(self.index(hash)).is_some_and(|block| {
            block
                .iter()
                .zip(Self::pattern(hash))
                .fold(true, |all, (word, bits)| all & (word & bits == bits))
        })
    }

    fn bytes(&self) -> usize {
        self.blocks.len() * 64
    }
}

/// The filter candidates alone over the hashes of 1 M banned keys, probed
/// with keys 99 % not banned: ns per probe here, bytes and the measured
/// false-positive rate on stderr.
fn filter_probe(c: &mut Criterion) {
    const KEYS: usize = 1_000_000;
    let hasher = KeyHasher::with_seed(0x51);
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let hash = |rng: &mut Rng| hasher.hash(&rng.ipv4_key());
    let banned: Vec<u64> = (0..KEYS).map(|_| hash(&mut rng)).collect();
    let probes: Vec<u64> = (0..QUERIES)
        .map(|i| {
            if i % HIT_EVERY == 0 {
                banned[rng.next_u32() as usize % KEYS]
            } else {
                hash(&mut rng)
            }
        })
        .collect();
    let mut writer = FilterWriter::with_room(KEYS);
    banned.iter().for_each(|&h| writer.insert(h));
    let blocked = writer.view();
    let bitmaps = [16usize, 32].map(|bits| (bits, HashedBitmap::new(bits, &banned)));
    // False positives over 1 M fresh keys (a random key is almost surely
    // not among the 1 M banned of 2^32).
    let fresh: Vec<u64> = (0..1_000_000).map(|_| hash(&mut rng)).collect();
    let rate = |test: &dyn Fn(u64) -> bool| {
        fresh.iter().filter(|&&h| test(h)).count() as f64 / fresh.len() as f64
    };
    let split = SplitBlockBloom::new(12, &banned);
    eprintln!(
        "word-blocked Bloom (the snapshot's), {BITS_PER_KEY} bits a key: {} bytes, {:.3} % false positives",
        blocked.bytes(),
        100.0 * rate(&|h| blocked.may_contain(h))
    );
    eprintln!(
        "split-block Bloom, 12 bits a key: {} bytes, {:.3} % false positives",
        split.bytes(),
        100.0 * rate(&|h| split.may_contain(h))
    );
    for (bits, map) in &bitmaps {
        eprintln!(
            "hashed bitmap, {bits} bits a key (rounded up to a power of two): {} bytes, {:.3} % false positives",
            map.bytes(),
            100.0 * rate(&|h| map.may_contain(h))
        );
    }
    let mut group = c.benchmark_group("filter_probe_1m");
    group.throughput(Throughput::Elements(BURST as u64));
    let mut pos = 0;
    let mut burst = move || {
        let b = probes.get(pos..pos + BURST).unwrap_or_default().to_vec();
        pos = (pos + BURST) % QUERIES;
        b
    };
    let bursts: Vec<Vec<u64>> = (0..QUERIES / BURST).map(|_| burst()).collect();
    let mut i = 0;
    group.bench_function("word_blocked_bloom", |b| {
        b.iter(|| {
            i = (i + 1) % bursts.len();
            bursts[i]
                .iter()
                .filter(|&&h| blocked.may_contain(h))
                .count()
        })
    });
    group.bench_function("split_block_bloom", |b| {
        b.iter(|| {
            i = (i + 1) % bursts.len();
            bursts[i].iter().filter(|&&h| split.may_contain(h)).count()
        })
    });
    for (bits, map) in &bitmaps {
        group.bench_function(BenchmarkId::new("hashed_bitmap_bits", bits), |b| {
            b.iter(|| {
                i = (i + 1) % bursts.len();
                bursts[i].iter().filter(|&&h| map.may_contain(h)).count()
            })
        });
    }
    group.finish();
}

fn publish_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_after_adds_to_1m");
    group.sample_size(10);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut table, _) = table_with(1_000_000, &mut rng);
    let reader = table.reader();
    for adds in [1usize, 256, 10_000] {
        group.bench_with_input(BenchmarkId::new("adds", adds), &adds, |b, &adds| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let fresh: Vec<BanKey> = (0..adds)
                        .map(|_| loop {
                            let key = rng.ipv4_key();
                            if table.get(&key).is_none() {
                                break key;
                            }
                        })
                        .collect();
                    // Timed: from the first `add` to a worker's `load()`
                    // seeing the last new ban.
                    let start = Instant::now();
                    for key in &fresh {
                        table.add(*key, TTL, "bench", NOW);
                    }
                    table.publish();
                    let visible = reader.load().contains(fresh.last().unwrap(), NOW);
                    total += start.elapsed();
                    assert!(visible);
                    // Untimed: back to 1 M entries.
                    for key in &fresh {
                        table.remove(key);
                    }
                    table.publish();
                }
                total
            })
        });
    }
    group.finish();
}

fn ring_push(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_ring");
    group.throughput(Throughput::Elements(1));
    let (mut producer, mut consumer) = event_ring(4096);
    let event = HostDetection {
        host: BanKey::from(Ipv4Addr::new(192, 0, 2, 1)),
        peer: BanKey::from(Ipv4Addr::new(198, 51, 100, 1)),
        host_port: 51413,
        peer_port: 6881,
        proto: Transport::Tcp,
        port: 0,
        detector: btblocker::dpi::DetectorId::PeerWireHandshake,
        reasons: btblocker::dpi::Reasons::NONE,
        confidence: Confidence::Strong,
        at_ms: NOW,
        payload: PayloadPrefix::EMPTY,
    };
    group.bench_function("push_pop", |b| {
        b.iter(|| {
            producer.push(black_box(event));
            consumer.pop()
        })
    });
    group.bench_function("push_full_ring_dropped", |b| {
        while producer.push(event) {}
        b.iter(|| producer.push(black_box(event)))
    });
    group.finish();
}

criterion_group!(
    benches,
    snapshot_lookup,
    filter_probe,
    publish_latency,
    ring_push
);
criterion_main!(benches);
