//! Ban machinery benches: the per-packet snapshot lookup, the per-detection
//! ring push, and the control thread's add → publish → visible latency.
//!
//!     cargo bench --no-default-features --bench ban -- --warm-up-time 1 --measurement-time 3
use btblocker::ban::{
    event_ring, Allowlist, BanKey, BanTable, BanTableConfig, Confidence, FullPolicy, HostDetection,
    PayloadPrefix,
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

fn snapshot_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_lookup");
    group.throughput(Throughput::Elements(BURST as u64));
    for n in [0usize, 10_000, 1_000_000] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (table, banned) = table_with(n, &mut rng);
        // Even queries hit (when there are bans), odd ones miss: 50 % hits.
        let queries: Vec<BanKey> = (0..QUERIES)
            .map(
                |i| match banned.get(rng.next_u32() as usize % banned.len().max(1)) {
                    Some(&key) if i % 2 == 0 => key,
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
        let mut pos = 0;
        group.bench_with_input(BenchmarkId::new("contains_x32", n), &n, |b, _| {
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
        detector: "peer_wire_handshake",
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

criterion_group!(benches, snapshot_lookup, publish_latency, ring_push);
criterion_main!(benches);
