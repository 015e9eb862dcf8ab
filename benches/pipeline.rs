//! Pipeline bench: the REAL DPDK worker loop (`rx_burst → pipeline → tx_burst`)
//! over in-memory `net_ring` loopback ports pre-filled from a capture, next to
//! the same loop with the pipeline switched off (the I/O floor), in one run.
//!
//!     cargo bench --features bench --bench pipeline                       # the table
//!     cargo bench --features bench --bench pipeline -- --workers 14       # scaling (needs 15 lcores)
//!     cargo bench --features bench --bench pipeline -- --soak 600         # 10-minute RSS soak
//!     cargo bench --features bench,stage-timing --bench pipeline   # + p50/p99 per stage
//!     cargo bench --features bench --bench pipeline -- --bans 1000000  # + ban_host, 0 vs 1 M bans
//!
//! Two traffic sets, both from the capture (default data/demo.pcap, the corpus
//! mix; `--pcap FILE` repeatable):
//! - `same-flows`: the capture once; when it loops the same flows come back,
//!   already decided, so after the first pass most packets take the fast path.
//! - `new-flows`: `--copies` (16) copies, each with its IP addresses rewritten
//!   (XOR of the copy number into two address bytes), in a flow table much
//!   smaller than the distinct flows (`--new-flows-capacity`, 256), so a flow
//!   is evicted before it comes round again: every pass re-creates and
//!   re-inspects its flows (the churn worst case), over a ring far larger
//!   than the caches.
//!
//! - `many-flows` (only with `--many-flows N`): N one-packet TCP flows (ACKs of
//!   N clients to one server), in a flow table of 2N, so in steady state every
//!   packet finds its flow in a table far larger than the caches: the flow
//!   lookup misses to DRAM each time, as on an ISP link with a million
//!   concurrent flows per worker. N = 1,048,576 needs ~2.7 GB of memory.
//!   Its full pipeline runs once per flow-table variant asked for, the
//!   variants interleaved repetition by repetition so they see the same
//!   machine: `--flow-pages huge|small|both` (the table collapsed onto 2 MiB
//!   transparent huge pages as `run` does, or left on 4 KiB pages) and
//!   `--nic-hash toeplitz|ideal` (besides the software hash, the worker
//!   takes a hash carried in each mbuf, as from a NIC with RSS: `toeplitz` is
//!   what a NIC computes with the symmetric 0x6d5a key, which `run` never
//!   uses as index, `ideal` a symmetric 32-bit hash of full entropy, as the
//!   symmetric Toeplitz hash function delivers, which `run` uses).
//!
//! The many-flows comparison (1 M flows exist before measuring):
//!
//! ```text
//! cargo bench --features bench --bench pipeline -- --many-flows 1000000 \
//!     --only 'many-flows full' --flow-pages both --nic-hash ideal --warmup 10 --repeat 3
//! ```
//!
//! `--mbuf-pages huge` puts EAL's memory, so the mbufs, on hugetlbfs pages
//! (as a production box does) instead of `--no-huge`'s 4 KiB pages, where
//! every many-flows packet's mbuf costs its own TLB miss. It needs pages
//! reserved and hugetlbfs mounted (root):
//!
//! ```text
//! echo 4096 > /proc/sys/vm/nr_hugepages && mount -t hugetlbfs nodev /dev/hugepages
//! ```
//!
//! A counting global allocator checks that the workers allocate nothing after
//! warm-up: the bench fails loudly otherwise.
// The allocation probe is a GlobalAlloc, an unsafe trait: allowed in this
// bench (not the library, where only src/dpdk/ may).
#![allow(unsafe_code)]
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[path = "../tests/common/frames.rs"]
mod frames;

use btblocker::config::{BanAction, FlowsConfig};
use btblocker::dpi::DpiConfig;
use btblocker::tools::bench::{LoopKind, LoopbackBench, MbufPages, WorkerRun};
use btblocker::tools::capture::for_each_frame;

/// Counts allocations made by every thread except those that opted out (the
/// main thread, which reports and samples RSS; the workers never opt out).
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static NOT_COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count_one() {
    if !NOT_COUNTED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
}

// SAFETY: forwards every call unchanged to the system allocator; the counter
// is an atomic and the thread-local a const-initialised Cell (no allocation).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// The three loops each traffic set runs (row labels of the table).
const BARE: &str = "bare rx→tx";
const READ_HEADERS: &str = "rx→read headers→tx";
const FULL: &str = "full pipeline";

struct Options {
    workers: usize,
    pcaps: Vec<PathBuf>,
    copies: usize,
    new_flows_capacity: usize,
    many_flows: usize,
    warmup: Duration,
    window: Duration,
    repeat: usize,
    burst: u16,
    soak: Option<Duration>,
    /// Run only the cases whose "traffic loop" name contains this.
    only: Option<String>,
    /// Extra EAL arguments (whitespace-separated), e.g. `-d` PMD paths.
    eal: Vec<String>,
    /// With `--bans N`: per traffic set, the full pipeline under
    /// `ban.action: ban_host` with 0 bans and with N bans (none matching).
    bans: Option<u32>,
    /// Flow table on huge pages (true) or 4 KiB pages, per many-flows variant.
    flow_pages: Vec<bool>,
    /// Simulated NIC hashes to run many-flows with, besides the software hash.
    nic_hashes: Vec<NicHash>,
    /// EAL's memory, so the mbufs: 4 KiB pages (`--no-huge`) or hugetlbfs.
    mbuf_pages: MbufPages,
}

/// The hash a simulated NIC puts in each many-flows mbuf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NicHash {
    /// Toeplitz with the symmetric 0x6d5a key over the IPv4 4-tuple, as a
    /// NIC computes it (16 bits of entropy: see `toeplitz`).
    Toeplitz,
    /// A symmetric 32-bit hash of full entropy (what a NIC with a symmetric
    /// hash function of its own, not a symmetric key, could deliver).
    Ideal,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench pipeline -- [--workers N] [--pcap FILE]... [--copies K] \
         [--new-flows-capacity C] [--many-flows N] [--flow-pages huge|small|both] [--mbuf-pages small|huge] [--nic-hash toeplitz|ideal] [--warmup S] [--seconds S] [--repeat R] [--burst B] [--soak S] [--only 'new-flows full'] [--eal 'EAL ARGS'] [--bans N]"
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut o = Options {
        workers: 1,
        pcaps: Vec::new(),
        copies: 16,
        new_flows_capacity: 256,
        many_flows: 0,
        warmup: Duration::from_millis(500),
        window: Duration::from_secs(2),
        repeat: 3,
        burst: 32,
        soak: None,
        only: None,
        eal: Vec::new(),
        flow_pages: vec![true],
        nic_hashes: Vec::new(),
        bans: None,
        mbuf_pages: MbufPages::Small,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        let secs = |v: String| Duration::from_secs_f64(v.parse().unwrap_or_else(|_| usage()));
        match a.as_str() {
            // cargo bench passes --bench to harness=false targets.
            "--bench" => {}
            "--workers" => o.workers = value().parse().unwrap_or_else(|_| usage()),
            "--pcap" => o.pcaps.push(value().into()),
            "--copies" => o.copies = value().parse().unwrap_or_else(|_| usage()),
            "--new-flows-capacity" => {
                o.new_flows_capacity = value().parse().unwrap_or_else(|_| usage())
            }
            "--many-flows" => o.many_flows = value().parse().unwrap_or_else(|_| usage()),
            "--warmup" => o.warmup = secs(value()),
            "--seconds" => o.window = secs(value()),
            "--repeat" => o.repeat = value().parse().unwrap_or_else(|_| usage()),
            "--burst" => o.burst = value().parse().unwrap_or_else(|_| usage()),
            "--soak" => o.soak = Some(secs(value())),
            "--only" => o.only = Some(value()),
            "--eal" => o.eal = value().split_whitespace().map(String::from).collect(),
            "--mbuf-pages" => {
                o.mbuf_pages = match value().as_str() {
                    "small" => MbufPages::Small,
                    "huge" => MbufPages::Huge,
                    _ => usage(),
                }
            }
            "--flow-pages" => {
                o.flow_pages = match value().as_str() {
                    "huge" => vec![true],
                    "small" => vec![false],
                    "both" => vec![false, true],
                    _ => usage(),
                }
            }
            "--nic-hash" => {
                o.nic_hashes = match value().as_str() {
                    "toeplitz" => vec![NicHash::Toeplitz],
                    "ideal" => vec![NicHash::Ideal],
                    _ => usage(),
                }
            }
            "--bans" => o.bans = Some(value().parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    if o.pcaps.is_empty() {
        o.pcaps
            .push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo.pcap"));
    }
    o.copies = o.copies.max(1);
    o.repeat = o.repeat.max(1);
    o
}

/// Ethernet frames of every capture, in order (other link types skipped).
fn load_frames(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    const DLT_EN10MB: u32 = 1;
    let mut frames = Vec::new();
    for p in paths {
        for_each_frame(p, |f| {
            if f.dlt == DLT_EN10MB {
                frames.push(f.data.to_vec());
            }
        })
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    }
    frames
}

/// XORs `k` into bytes 1-2 (IPv4) or 2-3 (IPv6) of both addresses, so copy k
/// of the capture has its own flows (same structure, new keys). Checksums are
/// left stale: the pipeline does not verify them.
fn rewrite_addresses(frame: &mut [u8], k: u16) {
    let mut off = 12;
    let ethertype = |f: &[u8], o: usize| f.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut et = ethertype(frame, off);
    while matches!(et, Some(0x8100 | 0x88a8)) {
        off += 4;
        et = ethertype(frame, off);
    }
    let ip = off + 2;
    let (src, dst, at) = match et {
        Some(0x0800) => (ip + 12, ip + 16, 1),
        Some(0x86dd) => (ip + 8, ip + 24, 2),
        _ => return,
    };
    let [hi, lo] = k.to_be_bytes();
    for base in [src, dst] {
        if let Some(b) = frame.get_mut(base + at..base + at + 2) {
            b[0] ^= hi;
            b[1] ^= lo;
        }
    }
}

/// One TCP ACK from each of `n` clients (10.0.0.0/8) to one server: one
/// packet per flow.
fn one_packet_flows(n: usize) -> Vec<Vec<u8>> {
    (0..n as u32).map(frames::client_ack).collect()
}

/// The Toeplitz hash (Microsoft RSS spec) of `input` under `key`, as a NIC
/// computes it: for each set input bit i, XOR in the 32 key bits from bit i.
fn toeplitz(input: &[u8], key: &[u8]) -> u32 {
    let bit = |i: usize| key.get(i / 8).is_some_and(|b| b >> (7 - i % 8) & 1 == 1);
    let window = |i: usize| (0..32).fold(0u32, |w, j| w << 1 | u32::from(bit(i + j)));
    let mut hash = 0;
    for i in 0..input.len() * 8 {
        if input[i / 8] >> (7 - i % 8) & 1 == 1 {
            hash ^= window(i);
        }
    }
    hash
}

/// What a simulated NIC delivers with each frame of `one_packet_flows(n)`:
/// the hash of source, destination, source port, destination port (IPv4,
/// network order; bytes 26..38 of the frame). The symmetric key repeats every
/// 16 bits, so the hash is a linear function of the XOR of the input's 16-bit
/// words: at most 65,536 values.
fn nic_hashes(frames: &[Vec<u8>], kind: NicHash) -> Vec<u32> {
    let key: Vec<u8> = [0x6d, 0x5a].repeat(20);
    frames
        .iter()
        .map(|f| {
            let tuple = &f[26..38];
            match kind {
                NicHash::Toeplitz => toeplitz(tuple, &key),
                NicHash::Ideal => {
                    // Symmetric: the two endpoints sorted, then mixed.
                    let a = u64::from_be_bytes([
                        tuple[0], tuple[1], tuple[2], tuple[3], tuple[8], tuple[9], 0, 0,
                    ]);
                    let b = u64::from_be_bytes([
                        tuple[4], tuple[5], tuple[6], tuple[7], tuple[10], tuple[11], 0, 0,
                    ]);
                    let (lo, hi) = (a.min(b), a.max(b));
                    let m = u128::from(lo ^ 0x243f_6a88_85a3_08d3)
                        * u128::from(hi ^ 0x1319_8a2e_0370_7344);
                    ((m >> 64) as u64 ^ m as u64) as u32
                }
            }
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    NOT_COUNTED.with(|c| c.set(true));
    let o = parse_options();
    let base = load_frames(&o.pcaps);
    assert!(!base.is_empty(), "no Ethernet frames in {:?}", o.pcaps);
    let mut copies = Vec::with_capacity(base.len() * o.copies);
    for k in 0..o.copies {
        for f in &base {
            let mut f = f.clone();
            rewrite_addresses(&mut f, k as u16 + 1);
            copies.push(f);
        }
    }
    let many = one_packet_flows(o.many_flows);
    let same: Vec<&[u8]> = base.iter().map(Vec::as_slice).collect();
    let new: Vec<&[u8]> = copies.iter().map(Vec::as_slice).collect();
    let mut sets = vec![same, new];
    if !many.is_empty() {
        sets.push(many.iter().map(Vec::as_slice).collect());
    }
    // The many-flows mbufs carry the simulated NIC's hash; the software-hash
    // runs ignore it.
    let rss = vec![
        None,
        None,
        o.nic_hashes.first().map(|&k| nic_hashes(&many, k)),
    ];
    let prefix = format!("btb_bench_{}", std::process::id());
    let bench =
        LoopbackBench::start_with_rss(&sets, &rss, o.workers, &prefix, o.mbuf_pages, &o.eal)
            .unwrap_or_else(|e| match o.mbuf_pages {
                MbufPages::Small => panic!("bench set-up failed: {e}"),
                MbufPages::Huge => panic!(
                    "bench set-up failed: {e} (--mbuf-pages huge needs 2 MiB pages reserved, \
                     e.g. `echo 4096 > /proc/sys/vm/nr_hugepages`, and hugetlbfs mounted, \
                     e.g. `mount -t hugetlbfs nodev /dev/hugepages`)"
                ),
            });
    let hz = bench.tsc_hz();
    let allocations = || ALLOCATIONS.load(Relaxed);
    let same_flows = LoopKind::Pipeline {
        flows: FlowsConfig::default(),
        dpi: DpiConfig::default(),
        huge_pages: true,
        nic_hash: false,
        action: BanAction::LogOnly,
        bans: 0,
    };
    let new_flows = LoopKind::Pipeline {
        flows: FlowsConfig {
            capacity: o.new_flows_capacity,
            ..FlowsConfig::default()
        },
        dpi: DpiConfig::default(),
        huge_pages: true,
        nic_hash: false,
        action: BanAction::LogOnly,
        bans: 0,
    };
    println!(
        "pipeline bench: {} worker(s), burst {}, mbufs on {} pages, TSC {:.3} GHz, {} packets from {:?}",
        o.workers,
        o.burst,
        o.mbuf_pages.label(),
        hz as f64 / 1e9,
        base.len(),
        o.pcaps
    );
    println!(
        "rings per worker: same-flows {} packets, new-flows {} packets ({} copies, flow table {})",
        bench.packets_per_worker(0),
        bench.packets_per_worker(1),
        o.copies,
        o.new_flows_capacity
    );

    if let Some(soak) = o.soak {
        run_soak(&bench, &new_flows, &o, soak, &allocations);
        return;
    }

    // The many-flows full pipeline, once per flow-table variant: labels
    // name the variant unless it is the only one (the default: huge pages,
    // software hash, as `run` on a PMD without RSS).
    let mut many_variants: Vec<(String, LoopKind)> = Vec::new();
    let hashes: Vec<Option<NicHash>> = std::iter::once(None)
        .chain(o.nic_hashes.iter().copied().map(Some))
        .collect();
    for &huge_pages in &o.flow_pages {
        for &hash in &hashes {
            let label = if o.flow_pages.len() == 1 && hashes.len() == 1 {
                FULL.to_string()
            } else {
                format!(
                    "{FULL} [{} pages, {} hash]",
                    if huge_pages { "2 MiB" } else { "4 KiB" },
                    match hash {
                        None => "software",
                        Some(NicHash::Toeplitz) => "NIC Toeplitz",
                        Some(NicHash::Ideal) => "NIC ideal",
                    }
                )
            };
            let kind = LoopKind::Pipeline {
                flows: FlowsConfig {
                    capacity: 2 * o.many_flows,
                    ..FlowsConfig::default()
                },
                dpi: DpiConfig::default(),
                huge_pages,
                nic_hash: hash.is_some(),
                action: BanAction::LogOnly,
                bans: 0,
            };
            many_variants.push((label, kind));
        }
    }
    let mut traffic_sets: Vec<(&str, Vec<(&str, &LoopKind)>)> = vec![
        ("same-flows", vec![(FULL, &same_flows)]),
        ("new-flows", vec![(FULL, &new_flows)]),
    ];
    if o.many_flows > 0 {
        traffic_sets.push((
            "many-flows",
            many_variants.iter().map(|(l, k)| (l.as_str(), k)).collect(),
        ));
    }
    // `--bans N`: the same full pipeline under `ban_host` with an empty ban
    // snapshot and with N bans, per traffic set.
    let ban_kinds: Vec<(String, String, LoopKind)> = match o.bans {
        Some(n) => traffic_sets
            .iter()
            .flat_map(|(_, fulls)| {
                // The first variant of the set's full pipeline (the default
                // flow table), under ban_host.
                let LoopKind::Pipeline { flows, dpi, .. } = fulls[0].1 else {
                    unreachable!("the full cases are pipelines")
                };
                [0, n].map(|bans| {
                    (
                        format!("{FULL}, ban_host, {bans} bans"),
                        String::new(),
                        LoopKind::Pipeline {
                            flows: flows.clone(),
                            dpi: dpi.clone(),
                            huge_pages: true,
                            nic_hash: false,
                            action: BanAction::BanHost,
                            bans,
                        },
                    )
                })
            })
            .collect(),
        None => Vec::new(),
    };
    let mut cases: Vec<(&str, usize, &str, &LoopKind)> = Vec::new();
    for (set, (traffic, fulls)) in traffic_sets.iter().enumerate() {
        cases.push((traffic, set, BARE, &LoopKind::Bare));
        cases.push((traffic, set, READ_HEADERS, &LoopKind::ReadHeaders));
        for &(label, full) in fulls {
            cases.push((traffic, set, label, full));
        }
        for (label, _, kind) in ban_kinds.iter().skip(2 * set).take(2) {
            cases.push((traffic, set, label.as_str(), kind));
        }
    }
    cases.retain(|(traffic, _, label, _)| {
        o.only
            .as_ref()
            .is_none_or(|only| format!("{traffic} {label}").contains(only.as_str()))
    });
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    // Per case, per worker: the Mpps and cycles/packet of every repetition;
    // the repetitions interleave the cases (A B C A B C ...), so a noisy
    // moment on a shared machine hits every case alike.
    let per_case = || vec![Vec::new(); o.workers];
    let mut mpps = vec![per_case(); cases.len()];
    let mut cpp = vec![per_case(); cases.len()];
    let mut wall = vec![per_case(); cases.len()];
    let mut share = vec![per_case(); cases.len()];
    let mut last: Vec<Vec<WorkerRun>> = cases.iter().map(|_| Vec::new()).collect();
    for _ in 0..o.repeat {
        for (c, &(traffic, set, label, kind)) in cases.iter().enumerate() {
            let runs = bench
                .measure(
                    set,
                    kind,
                    o.burst,
                    o.warmup,
                    o.window,
                    &allocations,
                    &mut |_| {},
                )
                .unwrap_or_else(|e| panic!("{traffic} {label}: {e}"));
            for (w, r) in runs.iter().enumerate() {
                mpps[c][w].push(r.mpps_on_cpu());
                cpp[c][w].push(r.cycles_per_packet_on_cpu());
                wall[c][w].push(r.mpps());
                share[c][w].push(r.cpu_seconds / r.seconds);
                if r.allocations != 0 {
                    failures.push(format!(
                        "{traffic} {label}: {} heap allocations in the measured window (after warm-up)",
                        r.allocations
                    ));
                }
                // The loaded bans are chosen to match none of the traffic.
                let banned = r.counters.bans.dropped_banned_host.get();
                if banned != 0 {
                    failures.push(format!(
                        "{traffic} {label}: {banned} packets of banned hosts"
                    ));
                }
            }
            last[c] = runs;
        }
    }
    for (c, &(traffic, _, label, _)) in cases.iter().enumerate() {
        for w in 0..o.workers {
            rows.push((
                traffic,
                label,
                w,
                median(mpps[c][w].clone()),
                median(cpp[c][w].clone()),
                median(wall[c][w].clone()),
                median(share[c][w].clone()),
            ));
        }
        report_stages(traffic, label, &last[c], hz);
        print_flow_counters(traffic, label, &last[c]);
        print_huge_pages(traffic, label, &last[c]);
    }
    println!();
    println!(
        "Medians of {} runs of {:.1} s. \"on CPU\": per second the worker's thread was on a CPU \
         (kernel schedstat), the per-lcore figure on a machine nobody else uses; \"wall\": per \
         second of the window, with the share of it the worker got.",
        o.repeat,
        o.window.as_secs_f64()
    );
    println!(
        "| traffic | loop | worker | Mpps on CPU | cycles/packet on CPU | ÷ bare | ÷ read headers | Mpps wall | CPU share |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for &(traffic, label, w, mpps, cpp, wall, share) in &rows {
        let floor = |floor: &str| {
            rows.iter()
                .find(|r| r.0 == traffic && r.1 == floor && r.2 == w)
                .filter(|_| label != floor && label != BARE)
                .map(|r| format!("{:.0} %", 100.0 * mpps / r.3))
                .unwrap_or_default()
        };
        println!(
            "| {traffic} | {label} | {w} | {mpps:.2} | {cpp:.0} | {} | {} | {wall:.2} | {:.0} % |",
            floor(BARE),
            floor(READ_HEADERS),
            100.0 * share
        );
    }
    let total = |traffic: &str, label: &str| -> f64 {
        rows.iter()
            .filter(|r| r.0 == traffic && r.1 == label)
            .map(|r| r.3)
            .sum()
    };
    // One figure per loop the run measured (each flow-table variant of the
    // full pipeline has its own label), summed over the workers.
    for (traffic, fulls) in &traffic_sets {
        let loops: Vec<String> = [BARE, READ_HEADERS]
            .into_iter()
            .chain(fulls.iter().map(|&(label, _)| label))
            .filter(|label| rows.iter().any(|r| r.0 == *traffic && r.1 == *label))
            .map(|label| format!("{label} {:.2} Mpps", total(traffic, label)))
            .collect();
        if !loops.is_empty() {
            println!(
                "aggregate {traffic}: {} over {} worker(s)",
                loops.join(", "),
                o.workers
            );
        }
    }
    if let Some(n) = o.bans {
        let full_with = |traffic: &str, bans: u32| {
            let label = format!("{FULL}, ban_host, {bans} bans");
            rows.iter()
                .filter(|r| r.0 == traffic && r.1 == label)
                .map(|r| r.4)
                .sum::<f64>()
        };
        for (traffic, _) in &traffic_sets {
            let (none, loaded) = (full_with(traffic, 0), full_with(traffic, n));
            if none > 0.0 && loaded > 0.0 {
                println!(
                    "ban load {traffic}: {loaded:.0} cycles/packet with {n} bans vs {none:.0} with 0 bans: {:.3}x",
                    loaded / none
                );
            }
        }
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("CHECK FAILED: {f}");
        }
        std::process::exit(1);
    }
    println!("allocation check: 0 heap allocations on the workers in every measured window");
}

fn print_huge_pages(traffic: &str, label: &str, runs: &[WorkerRun]) {
    for (w, r) in runs.iter().enumerate() {
        if let Some(h) = &r.huge_pages {
            println!("{traffic} {label} worker {w}: flow table {h}");
        }
    }
}

fn print_flow_counters(traffic: &str, label: &str, runs: &[WorkerRun]) {
    for (w, r) in runs.iter().enumerate() {
        let f = &r.counters.flows;
        if f.created.get() == 0 {
            continue;
        }
        println!(
            "{traffic} {label} worker {w} (whole last run): {} flows created, {} evicted, {} packets inspected, {} judged BitTorrent, {} clean",
            f.created.get(),
            f.evicted.get(),
            f.inspected_packets.get(),
            f.judged_bittorrent.get(),
            f.judged_clean.get()
        );
    }
}

#[cfg(feature = "stage-timing")]
fn report_stages(traffic: &str, label: &str, runs: &[WorkerRun], hz: u64) {
    if !label.starts_with(FULL) {
        return;
    }
    println!("\nstage timing, {traffic} {label} (last run, warm-up included):");
    print!(
        "{}",
        btblocker::dataplane::stage_timing::report(runs.iter().map(|r| &r.counters.stages), hz)
    );
}

#[cfg(not(feature = "stage-timing"))]
fn report_stages(_traffic: &str, _label: &str, _runs: &[WorkerRun], _hz: u64) {}

fn run_soak(
    bench: &LoopbackBench,
    kind: &LoopKind,
    o: &Options,
    soak: Duration,
    allocations: &dyn Fn() -> u64,
) {
    let mut samples = vec![(0.0, rss_kib())];
    let mut next = 10.0;
    let runs = bench
        .measure(1, kind, o.burst, o.warmup, soak, allocations, &mut |t| {
            if t.as_secs_f64() >= next {
                samples.push((t.as_secs_f64(), rss_kib()));
                next += 10.0;
            }
        })
        .unwrap_or_else(|e| panic!("soak: {e}"));
    samples.push((soak.as_secs_f64(), rss_kib()));
    println!(
        "soak: new-flows full pipeline for {:.0} s",
        soak.as_secs_f64()
    );
    for (t, kib) in &samples {
        println!("rss t={t:>6.1}s {kib} KiB");
    }
    let (first, lastv) = (samples[0].1, samples[samples.len() - 1].1);
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!("rss start {first} KiB, end {lastv} KiB, max {max} KiB");
    for (w, r) in runs.iter().enumerate() {
        println!(
            "worker {w}: {:.2} Mpps, {:.0} cycles/packet, {} packets, {} allocations in the window",
            r.mpps(),
            r.cycles_per_packet(),
            r.packets,
            r.allocations
        );
    }
    print_flow_counters("new-flows", "soak", &runs);
    if runs.iter().any(|r| r.allocations != 0) {
        eprintln!("ALLOCATION CHECK FAILED during the soak");
        std::process::exit(1);
    }
}
