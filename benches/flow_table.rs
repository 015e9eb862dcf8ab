//! Flow-table lookups at ISP table sizes: one by one, versus a batch of 32
//! whose bucket lines are prefetched before the first lookup (what the
//! pipeline's burst pass does). The pipeline bench's tables fit in cache; at a
//! million flows every lookup is a miss to DRAM, and this shows what
//! prefetching a burst's buckets buys there.
//!
//!     cargo bench --bench flow_table
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use btblocker::dataplane::flow::{Endpoint, FlowKey, FlowTable};
use btblocker::dpdk::prefetch;
use btblocker::wire::Transport;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const BATCH: usize = 32;
const SEC: u64 = 1_000_000_000;

/// `n` distinct TCP flows, in a shuffled order (a multiplicative walk).
fn keys(n: usize) -> Vec<(FlowKey, bool)> {
    (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % n as u32)
        .map(|i| {
            let src = Endpoint::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)), 50_000);
            let dst = Endpoint::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 6881);
            FlowKey::of(Transport::Tcp, src, dst)
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    for flows in [1usize << 14, 1 << 20] {
        let keys = keys(flows);
        let mut table = FlowTable::new(flows * 2, 300 * SEC, 60 * SEC, 7);
        for (k, lo) in &keys {
            let h = table.hash(k);
            table.lookup_hashed(k, *lo, h, SEC, |_, _| {});
        }
        let mut group = c.benchmark_group(format!("flow_table/{flows}_flows"));
        group.throughput(Throughput::Elements(BATCH as u64));
        let mut at = 0;
        group.bench_function("one_by_one", |b| {
            b.iter_batched(
                || {
                    at = (at + BATCH) % (flows - BATCH);
                    at
                },
                |start| {
                    for (k, lo) in &keys[start..start + BATCH] {
                        let h = table.hash(k);
                        black_box(table.lookup_hashed(k, *lo, h, 2 * SEC, |_, _| {}).1);
                    }
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("prefetched_batch", |b| {
            b.iter_batched(
                || {
                    at = (at + BATCH) % (flows - BATCH);
                    at
                },
                |start| {
                    let batch = &keys[start..start + BATCH];
                    let mut hashes = [0u64; BATCH];
                    for (h, (k, _)) in hashes.iter_mut().zip(batch) {
                        *h = table.hash(k);
                        prefetch(table.bucket_line(*h));
                    }
                    for (h, (k, lo)) in hashes.iter().zip(batch) {
                        black_box(table.lookup_hashed(k, *lo, *h, 2 * SEC, |_, _| {}).1);
                    }
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, lookups);
criterion_main!(benches);
