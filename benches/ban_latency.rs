//! Detection → enforced-on-every-worker latency, through the real control
//! plane (`BanKeeper`: worker rings → policy → master table → journal →
//! sharded snapshot publish) at the daemon's cadence (one tick per 1 ms
//! sleep), with a large ban table already in force and new bans arriving from
//! the workers at a steady rate.
//!
//!     cargo bench --no-default-features --bench ban_latency -- \
//!         [--workers 1] [--preload 1000000] [--rate 10000] [--seconds 10]
//!
//! Each "worker" thread spins like a DPDK worker: one snapshot load per
//! iteration (a burst), and on its share of a fixed schedule (one detection
//! every 1/rate s, round-robin over the workers) it pushes a `Definitive`
//! detection of a fresh address into its own ring and notes the time. Every
//! worker also checks, in each burst, whether the oldest address it has not
//! yet seen banned is in its snapshot. A ban's latency is the time from the
//! push to the moment the LAST worker sees it. Addresses are checked in
//! order, so a ban published before an older one is counted when the older
//! one shows up: the figure can only err on the slow side.
//!
//! The state file is a real journal in a temp dir (the 1 M bans are loaded
//! from it at start, as after a restart), so journal appends and fsyncs are
//! on the measured path as they are in the daemon.
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use btblocker::ban::keeper::BanKeeper;
use btblocker::ban::{
    event_ring, BanEntry, BanKey, BanTableConfig, Confidence, FullPolicy, HostDetection, Journal,
    JournalConfig, PolicyConfig, SnapshotReader, DEFAULT_RING_CAPACITY,
};
use btblocker::clock::unix_now_ms;
use btblocker::config::{BanConfig, NetworksConfig};
use btblocker::wire::Transport;

struct Args {
    workers: usize,
    preload: u32,
    rate: u64,
    seconds: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        workers: 1,
        preload: 1_000_000,
        rate: 10_000,
        seconds: 10,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = || -> u64 {
            argv.get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{} needs a number", argv[i]))
        };
        match argv[i].as_str() {
            "--workers" => a.workers = value() as usize,
            "--preload" => a.preload = value() as u32,
            "--rate" => a.rate = value(),
            "--seconds" => a.seconds = value(),
            // `cargo bench` passes `--bench`; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    assert!(a.workers >= 1 && a.rate >= 1 && a.seconds >= 1);
    a
}

/// Preloaded bans: 10.0.0.0/8 and up, counting. New bans: 100.64.0.0/10 up.
fn preloaded_key(i: u32) -> BanKey {
    BanKey::from(Ipv4Addr::from(0x0a00_0000 + i))
}

fn new_key(i: u32) -> BanKey {
    BanKey::from(Ipv4Addr::from(0x6440_0000 + i))
}

fn write_state_file(path: &std::path::Path, n: u32, now_ms: u64) {
    let mut journal = Journal::open(path, JournalConfig::default(), now_ms).expect("journal");
    for i in 0..n {
        let entry = BanEntry {
            expires_at: now_ms + 5 * 3_600_000,
            reason: "preloaded".into(),
            first_seen: now_ms,
            last_seen: now_ms,
            hits: 1,
            is_static: false,
        };
        journal
            .append_add(&preloaded_key(i), &entry)
            .expect("append");
    }
    journal.close(now_ms).expect("close journal");
}

/// How long `bans list` holds the control loop (the only writer of the ban
/// table, so detections wait meanwhile) with the preloaded bans in force: one
/// page as the daemon answers it now, and the whole table in one reply as it
/// did before pages (median of 5 each; the reply's rendering to JSON happens
/// on the server thread and is not counted).
fn list_pause(control: &mut BanKeeper) {
    use btblocker::control::operator::protocol::MAX_LIST_PAGE;
    use btblocker::control::operator::{execute, Reply, Request};
    let now = unix_now_ms();
    let time = |f: &mut dyn FnMut() -> usize| {
        let mut runs: Vec<(f64, usize)> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let n = f();
                (t.elapsed().as_secs_f64() * 1e3, n)
            })
            .collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        runs[2]
    };
    let (page_ms, page_n) = time(&mut || match execute(
        control,
        &Request::List {
            after: None,
            limit: None,
        },
        now,
    ) {
        Reply::Bans { bans, .. } => bans.len(),
        _ => 0,
    });
    let (whole_ms, whole_n) = time(&mut || {
        control
            .list()
            .iter()
            .map(|(k, e)| btblocker::control::operator::execute::ban_info(*k, e, now))
            .collect::<Vec<_>>()
            .len()
    });
    println!(
        "bans list holds the control loop: one page ({page_n} of {} bans, MAX_LIST_PAGE {MAX_LIST_PAGE}) {page_ms:.1} ms; the whole table in one reply ({whole_n}) {whole_ms:.1} ms",
        control.page(None, 0).1
    );
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn main() {
    let args = parse_args();
    let total = (args.rate * args.seconds) as usize;
    let period_ns = 1_000_000_000 / args.rate;
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("bans.jsonl");

    let t = Instant::now();
    write_state_file(&state, args.preload, unix_now_ms());
    let cfg = BanConfig {
        state_file: Some(state),
        table: BanTableConfig {
            max_entries: args.preload as usize + total + 1,
            when_full: FullPolicy::Refuse,
        },
        policy: PolicyConfig {
            definitive_bans_at_once: true,
            ..PolicyConfig::default()
        },
        ..BanConfig::default()
    };
    let mut control =
        BanKeeper::start(&cfg, &NetworksConfig::default(), unix_now_ms()).expect("control");
    println!(
        "{} bans written and restored from the journal in {:.2} s",
        args.preload,
        t.elapsed().as_secs_f64()
    );

    list_pause(&mut control);

    let detect_ns: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let seen_ns: Arc<Vec<Vec<AtomicU64>>> = Arc::new(
        (0..args.workers)
            .map(|_| (0..total).map(|_| AtomicU64::new(0)).collect())
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now() + Duration::from_millis(50);
    let mut handles = Vec::new();
    for w in 0..args.workers {
        let (producer, consumer) = event_ring(DEFAULT_RING_CAPACITY);
        control.add_consumer(consumer);
        let reader = control.reader();
        let (detect_ns, seen_ns, stop) = (detect_ns.clone(), seen_ns.clone(), stop.clone());
        let workers = args.workers;
        handles.push(std::thread::spawn(move || {
            worker(
                w,
                workers,
                total,
                period_ns,
                start,
                producer,
                reader,
                &detect_ns,
                &seen_ns[w],
                &stop,
            )
        }));
    }

    // The control loop, as in src/dpdk/runtime.rs: sleep 1 ms, tick. Each
    // tick timed: drain, policy, table, journal and the snapshot publish,
    // the control thread's cost of the bans arriving.
    let deadline = start + Duration::from_nanos(period_ns * total as u64) + Duration::from_secs(2);
    let mut ticks_ns: Vec<u64> = Vec::with_capacity(2_000 * (args.seconds as usize + 3));
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        let tick = Instant::now();
        control.tick(unix_now_ms());
        ticks_ns.push(tick.elapsed().as_nanos() as u64);
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("worker");
    }
    let counts = control.counts();

    let mut latencies: Vec<u64> = (0..total)
        .filter_map(|i| {
            let d = detect_ns[i].load(Ordering::Relaxed);
            let seen = seen_ns.iter().map(|s| s[i].load(Ordering::Relaxed));
            let last = seen.clone().max()?;
            (d != 0 && seen.clone().all(|s| s != 0)).then(|| last.saturating_sub(d))
        })
        .collect();
    let enforced = latencies.len();
    latencies.sort_unstable();
    println!(
        "workers {}  preloaded {}  rate {}/s  detections {}  enforced on all workers {}  \
         bans active at end {}  ring drops {}",
        args.workers,
        args.preload,
        args.rate,
        total,
        enforced,
        counts.active,
        counts.events_dropped_ring_full
    );
    ticks_ns.sort_unstable();
    if !ticks_ns.is_empty() {
        let us = |ns: u64| ns as f64 / 1000.0;
        println!(
            "control tick (drain → policy → table → journal → publish), {} ticks: p50 {:.0} µs  \
             p90 {:.0} µs  p99 {:.0} µs  max {:.0} µs",
            ticks_ns.len(),
            us(percentile(&ticks_ns, 0.50)),
            us(percentile(&ticks_ns, 0.90)),
            us(percentile(&ticks_ns, 0.99)),
            us(*ticks_ns.last().unwrap_or(&0)),
        );
    }
    if enforced == 0 {
        eprintln!("no ban was enforced");
        std::process::exit(1);
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "detection → enforced on all workers: p50 {:.0} µs  p90 {:.0} µs  p99 {:.0} µs  \
         p99.9 {:.0} µs  max {:.0} µs",
        us(percentile(&latencies, 0.50)),
        us(percentile(&latencies, 0.90)),
        us(percentile(&latencies, 0.99)),
        us(percentile(&latencies, 0.999)),
        us(*latencies.last().unwrap()),
    );
    if enforced != total {
        eprintln!(
            "{} detections never became an enforced ban",
            total - enforced
        );
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_arguments)]
fn worker(
    w: usize,
    workers: usize,
    total: usize,
    period_ns: u64,
    start: Instant,
    mut producer: btblocker::ban::EventProducer,
    reader: SnapshotReader,
    detect_ns: &[AtomicU64],
    seen_ns: &[AtomicU64],
    stop: &AtomicBool,
) {
    let ns_since = |t: Instant| t.saturating_duration_since(start).as_nanos() as u64 + 1;
    let mut next_own = w; // the next detection this worker pushes
    let mut cursor = 0; // the oldest detection this worker has not yet seen banned
    while !stop.load(Ordering::Relaxed) {
        let snapshot = reader.load();
        let now = Instant::now();
        let now_ms = unix_now_ms();
        while cursor < total && detect_ns[cursor].load(Ordering::Acquire) != 0 {
            if !snapshot.contains(&new_key(cursor as u32), now_ms) {
                break;
            }
            seen_ns[cursor].store(ns_since(now), Ordering::Relaxed);
            cursor += 1;
        }
        drop(snapshot);
        if next_own < total && now >= start + Duration::from_nanos(period_ns * next_own as u64) {
            let event = HostDetection {
                host: new_key(next_own as u32),
                peer: BanKey::from(Ipv4Addr::new(198, 51, 100, 1)),
                host_port: 51413,
                peer_port: 6881,
                proto: Transport::Tcp,
                port: 0,
                detector: btblocker::dpi::DetectorId::PeerWireHandshake,
                reasons: btblocker::dpi::Reasons::NONE,
                confidence: Confidence::Definitive,
                at_ms: now_ms,
                payload: Default::default(),
            };
            detect_ns[next_own].store(ns_since(Instant::now()), Ordering::Release);
            assert!(producer.push(event), "ring full");
            next_own += workers;
        }
    }
}
