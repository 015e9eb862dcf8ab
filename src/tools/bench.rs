//! The pipeline bench harness (benches/pipeline.rs drives it): EAL with one
//! in-memory loopback port per worker, then the REAL worker loop
//! ([`worker::run`], or [`worker::run_bare`] for the I/O floor) on each worker
//! lcore for a warm-up and a measured window. Rates come from the workers' own
//! counters; cycles per packet from the TSC over the window (a polling lcore is
//! 100 % busy, so every cycle of the window belongs to its packets).
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::worker::{self, Clock, Poll, WorkerPlan};
use crate::ban::{
    event_ring, BanKey, EventConsumer, KeyHasher, Shard, SnapshotPublisher, DEFAULT_RING_CAPACITY,
    SHARD_COUNT,
};
use crate::config::{BanAction, FlowsConfig, Mode, PortRole};
use crate::dataplane::counters::WorkerCounters;
use crate::dataplane::{Pipeline, RingSink};
use crate::dpdk::loopback::{self, LoopbackPort};
use crate::dpdk::memory::{self, HugePageReport};
use crate::dpdk::{gettid, lcore, tsc, tsc_hz, DpdkError, Eal, Mempool};
use crate::dpi::DpiConfig;

/// What each worker lcore runs.
#[derive(Clone, Debug)]
pub enum LoopKind {
    /// rx_burst → tx_burst, no pipeline: the I/O floor.
    Bare,
    /// rx_burst → read each packet's length and Ethernet header → tx_burst:
    /// the floor of a forwarder that touches its packets (l2fwd's work).
    ReadHeaders,
    /// rx_burst → pipeline (parse, ban check, flow, DPI) → tx_burst, inline
    /// mode. With `ban.action: log_only` no packet is dropped and the capture
    /// keeps circulating whole; with `ban_host` the packets of flows judged
    /// BitTorrent are dropped (they leave the loop on their first pass). `huge_pages`: the flow table is
    /// backed with transparent huge pages as `run` does; `nic_hash`: the
    /// worker takes the hash each mbuf carries (the traffic set must have
    /// been started with hashes) as a NIC with symmetric RSS delivers it.
    Pipeline {
        flows: FlowsConfig,
        dpi: DpiConfig,
        huge_pages: bool,
        nic_hash: bool,
        action: BanAction,
        /// Bans in the snapshot the workers check: addresses in 240.0.0.0/4
        /// (reserved, in no capture), so none matches the traffic and every
        /// lookup is a miss, the common case on a real link.
        bans: u32,
    },
}

/// One worker's result over the measured window.
pub struct WorkerRun {
    pub lcore: u32,
    pub packets: u64,
    pub tsc_cycles: u64,
    pub seconds: f64,
    /// Time the worker's thread was on a CPU during the window (from the
    /// kernel's schedstat): less than `seconds` when the machine is shared.
    /// NaN when /proc does not say.
    pub cpu_seconds: f64,
    /// Heap allocations (as counted by the caller's probe) during the window.
    pub allocations: u64,
    /// The worker's counters (stage histograms with `stage-timing`).
    pub counters: Arc<WorkerCounters>,
    /// How much of the flow table landed on huge pages (pipeline loops).
    pub huge_pages: Option<HugePageReport>,
}

impl WorkerRun {
    pub fn mpps(&self) -> f64 {
        self.packets as f64 / self.seconds / 1e6
    }

    pub fn cycles_per_packet(&self) -> f64 {
        self.tsc_cycles as f64 / self.packets.max(1) as f64
    }

    /// Packets per second of CPU time the worker actually got, in millions:
    /// the per-lcore rate on a machine nobody else uses.
    pub fn mpps_on_cpu(&self) -> f64 {
        self.packets as f64 / self.cpu_seconds / 1e6
    }

    /// TSC cycles per packet counting only the time the worker was on a CPU.
    pub fn cycles_per_packet_on_cpu(&self) -> f64 {
        self.cycles_per_packet() * self.cpu_seconds / self.seconds
    }
}

/// The counters at one edge of a measured window.
struct Sample {
    packets: Vec<u64>,
    cpu: Vec<f64>,
    allocations: u64,
    tsc: u64,
    at: Instant,
}

/// Started EAL plus, per traffic set (scenario), one pre-filled loopback port
/// per worker.
pub struct LoopbackBench {
    /// `ports[set][worker]`.
    ports: Vec<Vec<LoopbackPort>>,
    lcores: Vec<u32>,
    _pool: Mempool,
    _eal: Eal,
}

/// Bytes of memory one mbuf takes in the pool, to size EAL's `-m`: without
/// hugepages the mempool keeps each ~2.4 KiB object inside one 4 KiB page, so
/// an mbuf costs a page (2,560 was too little for 290,000 mbufs).
const MBUF_FOOTPRINT: usize = 4096 + 256;

/// The same on hugetlbfs pages, where the objects pack (~2.4 KiB each).
const MBUF_FOOTPRINT_HUGE: usize = 2560;

/// Where EAL puts its memory, and so the mbufs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MbufPages {
    /// `--no-huge`: anonymous 4 KiB pages, as on a machine without
    /// hugetlbfs pages (the default, and what CI has).
    #[default]
    Small,
    /// hugetlbfs pages (`--in-memory`: nothing left in the mount): as on a
    /// production box. Needs pages reserved (`vm.nr_hugepages`) and
    /// hugetlbfs mounted.
    Huge,
}

impl MbufPages {
    /// The EAL argument that puts its memory on these pages.
    fn eal_arg(self) -> &'static str {
        match self {
            MbufPages::Small => "--no-huge",
            MbufPages::Huge => "--in-memory",
        }
    }

    /// Bytes of EAL memory one mbuf takes on these pages.
    fn mbuf_footprint(self) -> usize {
        match self {
            MbufPages::Small => MBUF_FOOTPRINT,
            MbufPages::Huge => MBUF_FOOTPRINT_HUGE,
        }
    }

    /// The page size, for reports.
    pub fn label(self) -> &'static str {
        match self {
            MbufPages::Small => "4 KiB",
            MbufPages::Huge => "2 MiB (hugetlbfs)",
        }
    }
}

impl LoopbackBench {
    /// Starts EAL (`--no-huge --no-pci`, main lcore 0, workers on lcores
    /// 1..=`workers`) and gives every worker one loopback port per traffic
    /// set in `sets`, its ring filled with a copy of that set's frames.
    /// `extra_eal_args` go last (e.g. `-d` PMD paths on a machine without
    /// DPDK's plugin directory).
    pub fn start(
        sets: &[Vec<&[u8]>],
        workers: usize,
        file_prefix: &str,
        extra_eal_args: &[String],
    ) -> Result<Self, DpdkError> {
        Self::start_with_rss(
            sets,
            &[],
            workers,
            file_prefix,
            MbufPages::Small,
            extra_eal_args,
        )
    }

    /// `start`, the mbufs of set `s` carrying `rss[s][i]` (when given) as the
    /// RSS hash of frame `i`, as a NIC with RSS would deliver them, and EAL's
    /// memory (the mbufs) on the pages `pages` says.
    pub fn start_with_rss(
        sets: &[Vec<&[u8]>],
        rss: &[Option<Vec<u32>>],
        workers: usize,
        file_prefix: &str,
        pages: MbufPages,
        extra_eal_args: &[String],
    ) -> Result<Self, DpdkError> {
        let workers = workers.max(1);
        let total: usize = sets.iter().map(Vec::len).sum::<usize>() * workers;
        let pool_size = (total + 1024 * workers + 4096) as u32;
        let memory_mb = pool_size as usize * pages.mbuf_footprint() / (1 << 20) + 256;
        let mut args = vec![
            "-l".to_string(),
            format!("0-{workers}"),
            pages.eal_arg().into(),
            "--no-pci".into(),
            "-m".into(),
            memory_mb.to_string(),
            format!("--file-prefix={file_prefix}"),
            "--log-level=lib.eal:warning".into(),
        ];
        args.extend_from_slice(extra_eal_args);
        let eal = Eal::init(&args)?;
        let pool = Mempool::create("btb_bench_pool", pool_size, 256, 0)?;
        let mut ports = Vec::with_capacity(sets.len());
        for (s, frames) in sets.iter().enumerate() {
            let mut per_worker = Vec::with_capacity(workers);
            for w in 0..workers {
                per_worker.push(loopback::create_with_rss(
                    &format!("btb_loop{s}_{w}"),
                    frames,
                    rss.get(s).and_then(Option::as_deref),
                    &pool,
                )?);
            }
            ports.push(per_worker);
        }
        Ok(LoopbackBench {
            ports,
            lcores: (1..=workers as u32).collect(),
            _pool: pool,
            _eal: eal,
        })
    }

    /// Packets circulating in each worker's loop of traffic set `set`.
    pub fn packets_per_worker(&self, set: usize) -> usize {
        self.ports[set][0].packets
    }

    pub fn tsc_hz(&self) -> u64 {
        tsc_hz()
    }

    /// Runs `kind` on every worker over its port of traffic set `set`:
    /// `warmup`, then the measured `window`,
    /// calling `tick(elapsed in window)` about every 100 ms (on this, the
    /// main lcore). `allocations` reads the caller's allocation counter.
    #[allow(clippy::too_many_arguments)]
    pub fn measure(
        &self,
        set: usize,
        kind: &LoopKind,
        burst: u16,
        warmup: Duration,
        window: Duration,
        allocations: &dyn Fn() -> u64,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<Vec<WorkerRun>, DpdkError> {
        let mut running = self.launch(set, kind, burst)?;
        std::thread::sleep(warmup);
        running.drain_events();
        let start = running.sample(allocations);
        while start.at.elapsed() < window {
            std::thread::sleep(Duration::from_millis(100).min(window));
            // The control lcore's share of the work: empty the event rings.
            running.drain_events();
            tick(start.at.elapsed());
        }
        let end = running.sample(allocations);
        self.stop_workers(&running)?;
        Ok(self.results(&running, &start, &end))
    }

    /// Starts `kind` on every worker lcore, each polling its own loopback
    /// port of traffic set `set`.
    fn launch(&self, set: usize, kind: &LoopKind, burst: u16) -> Result<Running, DpdkError> {
        let mut running = Running {
            stop: Arc::new(AtomicBool::new(false)),
            publisher: SnapshotPublisher::new(KeyHasher::random()),
            counters: self.lcores.iter().map(|_| Arc::default()).collect(),
            tids: self.lcores.iter().map(|_| Arc::default()).collect(),
            consumers: Vec::new(),
            huge_pages: Vec::new(),
        };
        let nic_hash = matches!(kind, LoopKind::Pipeline { nic_hash: true, .. });
        if let LoopKind::Pipeline { bans, .. } = kind {
            load_bans(&mut running.publisher, *bans);
        }
        for (w, &lcore_id) in self.lcores.iter().enumerate() {
            let port = self.ports[set][w].id;
            let plan = WorkerPlan {
                polls: vec![Poll {
                    port_index: 0,
                    port_id: port,
                    rx_queue: 0,
                    tx_port_index: 0,
                    tx_port_id: port,
                    tx_queue: 0,
                    nic_hash,
                }],
                burst,
                bans: running.publisher.reader(),
                clock: Clock::now(),
            };
            if let Some((consumer, huge)) = launch_worker(lcore_id, plan, kind, &running, w)? {
                running.consumers.push(consumer);
                running.huge_pages.push(huge);
            }
        }
        Ok(running)
    }

    /// Tells every worker to stop and waits for each; the first that failed
    /// is the error.
    fn stop_workers(&self, running: &Running) -> Result<(), DpdkError> {
        running.stop.store(true, Relaxed);
        let mut failed = None;
        for &lcore_id in &self.lcores {
            let status = lcore::wait(lcore_id);
            if status != 0 && failed.is_none() {
                failed = Some(DpdkError {
                    call: format!("bench worker on lcore {lcore_id}"),
                    reason: format!("returned status {status}"),
                });
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Each worker's share of the window between `start` and `end`.
    fn results(&self, running: &Running, start: &Sample, end: &Sample) -> Vec<WorkerRun> {
        let seconds = (end.at - start.at).as_secs_f64();
        self.lcores
            .iter()
            .enumerate()
            .map(|(w, &lcore)| WorkerRun {
                lcore,
                packets: end.packets[w] - start.packets[w],
                tsc_cycles: end.tsc - start.tsc,
                seconds,
                cpu_seconds: end.cpu[w] - start.cpu[w],
                allocations: end.allocations - start.allocations,
                counters: Arc::clone(&running.counters[w]),
                huge_pages: running.huge_pages.get(w).copied().flatten(),
            })
            .collect()
    }
}

/// The workers of one measurement while they run: what the main lcore
/// needs to stop them, sample them and serve their event rings.
struct Running {
    stop: Arc<AtomicBool>,
    /// The (empty) ban table the workers check, held until they stop as the
    /// control lcore holds it in a real run.
    publisher: SnapshotPublisher,
    /// Per worker, in `LoopbackBench::lcores` order.
    counters: Vec<Arc<WorkerCounters>>,
    /// Per worker, its kernel thread id, stored by the worker as it starts,
    /// to read its CPU time.
    tids: Vec<Arc<AtomicI32>>,
    /// The pipeline workers' event rings (the floors send no detections).
    consumers: Vec<EventConsumer>,
    /// Per pipeline worker, its flow table's huge pages (if asked for).
    huge_pages: Vec<Option<HugePageReport>>,
}

impl Running {
    fn drain_events(&mut self) {
        for c in self.consumers.iter_mut() {
            while c.pop().is_some() {}
        }
    }

    /// What the window is measured between: per-worker packets and CPU
    /// time, allocations, TSC and clock.
    fn sample(&self, allocations: &dyn Fn() -> u64) -> Sample {
        Sample {
            packets: self
                .counters
                .iter()
                .map(|c| c.ports[0].rx_packets.get())
                .collect(),
            cpu: self
                .tids
                .iter()
                .map(|t| on_cpu_seconds(t.load(Relaxed)))
                .collect(),
            allocations: allocations(),
            tsc: tsc(),
            at: Instant::now(),
        }
    }
}

/// Launches worker `w` of `running` on `lcore_id`: the bare loop for the
/// floors, the pipeline otherwise. Returns the pipeline's event ring, which
/// the main lcore must keep draining, and its flow table's huge pages.
fn launch_worker(
    lcore_id: u32,
    plan: WorkerPlan,
    kind: &LoopKind,
    running: &Running,
    w: usize,
) -> Result<Option<(EventConsumer, Option<HugePageReport>)>, DpdkError> {
    let stop = Arc::clone(&running.stop);
    let c = Arc::clone(&running.counters[w]);
    let tid = Arc::clone(&running.tids[w]);
    match kind {
        LoopKind::Bare | LoopKind::ReadHeaders => {
            let read_headers = matches!(kind, LoopKind::ReadHeaders);
            lcore::launch(lcore_id, move || {
                tid.store(gettid(), Relaxed);
                worker::run_bare(plan, &c, stop, read_headers)
            })?;
            Ok(None)
        }
        LoopKind::Pipeline {
            flows,
            dpi,
            huge_pages,
            action,
            ..
        } => {
            let (producer, consumer) = event_ring(DEFAULT_RING_CAPACITY);
            let pipeline = Pipeline::new(
                Arc::clone(&c),
                Mode::Inline,
                flows,
                dpi,
                RingSink::new(producer, c),
            )
            .with_enforcement(&[PortRole::Inside], *action);
            let huge = huge_pages
                .then(|| memory::back_with_huge_pages(&pipeline.flows().memory_regions()));
            lcore::launch(lcore_id, move || {
                tid.store(gettid(), Relaxed);
                worker::run(plan, pipeline, stop)
            })?;
            Ok(Some((consumer, huge)))
        }
    }
}

/// Publishes `count` distinct bans (never expiring) on addresses in
/// 240.0.0.0/4, spread by a fixed bijective scramble of 0..count.
fn load_bans(publisher: &mut SnapshotPublisher, count: u32) {
    if count == 0 {
        return;
    }
    let hasher = *publisher.hasher();
    let mut shards = vec![Vec::new(); SHARD_COUNT];
    // Odd multiplier: a bijection of the 28 low bits, so the keys are
    // distinct and not consecutive.
    for i in 0..count.min(1 << 28) {
        let low = i.wrapping_mul(0x9e37_79b1) & 0x0fff_ffff;
        let key = BanKey::from(std::net::Ipv4Addr::from(0xf000_0000 | low));
        if let Some(shard) = shards.get_mut(hasher.shard_of(&key)) {
            shard.push((key, u64::MAX));
        }
    }
    publisher.publish(
        shards
            .into_iter()
            .enumerate()
            .map(|(i, keys)| (i, Shard::build(keys.into_iter(), &hasher))),
    );
}

/// Seconds thread `tid` of this process has spent on a CPU (first field of
/// its schedstat, in ns); NaN if unknown.
fn on_cpu_seconds(tid: i32) -> f64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 / 1e9)
}
