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
use btblocker::tools::bench::{LoopKind, LoopbackBench, WorkerRun};
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
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench pipeline -- [--workers N] [--pcap FILE]... [--copies K] \
         [--new-flows-capacity C] [--many-flows N] [--warmup S] [--seconds S] [--repeat R] [--burst B] [--soak S] [--only 'new-flows full'] [--eal 'EAL ARGS'] [--bans N]"
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
        bans: None,
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
    let prefix = format!("btb_bench_{}", std::process::id());
    let bench = LoopbackBench::start(&sets, o.workers, &prefix, &o.eal)
        .unwrap_or_else(|e| panic!("bench set-up failed: {e}"));
    let hz = bench.tsc_hz();
    let allocations = || ALLOCATIONS.load(Relaxed);
    let same_flows = LoopKind::Pipeline {
        flows: FlowsConfig::default(),
        dpi: DpiConfig::default(),
        action: BanAction::LogOnly,
        bans: 0,
    };
    let new_flows = LoopKind::Pipeline {
        flows: FlowsConfig {
            capacity: o.new_flows_capacity,
            ..FlowsConfig::default()
        },
        dpi: DpiConfig::default(),
        action: BanAction::LogOnly,
        bans: 0,
    };
    println!(
        "pipeline bench: {} worker(s), burst {}, TSC {:.3} GHz, {} packets from {:?}",
        o.workers,
        o.burst,
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

    let many_flows = LoopKind::Pipeline {
        flows: FlowsConfig {
            capacity: 2 * o.many_flows,
            ..FlowsConfig::default()
        },
        dpi: DpiConfig::default(),
        action: BanAction::LogOnly,
        bans: 0,
    };
    let mut traffic_sets = vec![("same-flows", &same_flows), ("new-flows", &new_flows)];
    if o.many_flows > 0 {
        traffic_sets.push(("many-flows", &many_flows));
    }
    // `--bans N`: the same full pipeline under `ban_host` with an empty ban
    // snapshot and with N bans, per traffic set.
    let ban_kinds: Vec<(String, String, LoopKind)> = match o.bans {
        Some(n) => traffic_sets
            .iter()
            .flat_map(|&(_, full)| {
                let LoopKind::Pipeline { flows, dpi, .. } = full else {
                    unreachable!("the full cases are pipelines")
                };
                [0, n].map(|bans| {
                    (
                        format!("{FULL}, ban_host, {bans} bans"),
                        String::new(),
                        LoopKind::Pipeline {
                            flows: flows.clone(),
                            dpi: dpi.clone(),
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
    for (set, &(traffic, full)) in traffic_sets.iter().enumerate() {
        cases.push((traffic, set, BARE, &LoopKind::Bare));
        cases.push((traffic, set, READ_HEADERS, &LoopKind::ReadHeaders));
        cases.push((traffic, set, FULL, full));
        for (label, _, kind) in ban_kinds.iter().skip(2 * set).take(2) {
            cases.push((traffic, set, label.as_str(), kind));
        }
    }
    cases.retain(|(traffic, _, label, _)| {
        o.only
            .as_ref()
            .is_none_or(|only| format!("{traffic} {label}").contains(only.as_str()))
    });
    // Per case, per worker: the Mpps and cycles/packet of every repetition.
    // The repetitions go round the cases (case 1, 2, ..., 1, 2, ...) so that
    // the machine's slow moments fall on all of them alike.
    let per_case = || vec![vec![Vec::new(); o.workers]; cases.len()];
    let (mut mpps, mut cpp, mut wall, mut share) = (per_case(), per_case(), per_case(), per_case());
    let mut last: Vec<Vec<WorkerRun>> = cases.iter().map(|_| Vec::new()).collect();
    let mut failures = Vec::new();
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
    let mut rows = Vec::new();
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
    for &(traffic, _) in &traffic_sets {
        println!(
            "aggregate {traffic}: bare {:.2} Mpps, read headers {:.2} Mpps, full pipeline {:.2} Mpps over {} worker(s)",
            total(traffic, BARE),
            total(traffic, READ_HEADERS),
            total(traffic, FULL),
            o.workers
        );
    }
    if let Some(n) = o.bans {
        let full_with = |traffic: &str, bans: u32| {
            let label = format!("{FULL}, ban_host, {bans} bans");
            rows.iter()
                .filter(|r| r.0 == traffic && r.1 == label)
                .map(|r| r.4)
                .sum::<f64>()
        };
        for &(traffic, _) in &traffic_sets {
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
            eprintln!("ALLOCATION CHECK FAILED: {f}");
        }
        std::process::exit(1);
    }
    println!("allocation check: 0 heap allocations on the workers in every measured window");
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
    if label != FULL {
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
