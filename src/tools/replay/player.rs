//! `btblocker replay` on DPDK: two `net_vhost` ports (vhost-user servers), one
//! lcore that sends the plan's frames and polls every RX queue of both ports
//! all the time. What to send where, pacing and counting are safe code in
//! [`crate::tools::replay`]; this file only moves mbufs.
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::barrier;
use super::flight::Flight;
use super::pacing::{Pacer, Room, Window};
use super::settings::{remove_stale_socket, MAX_QUEUES};
use super::summary::{queue_slot, RecordError};
use super::SettingsError;
use super::{PassSummary, Plan, PlanError, Recorder, ReplaySettings, ReplaySummary, Side};
use crate::dpdk::mbuf::{FillError, MbufArray};
use crate::dpdk::{port, tsc, tsc_hz, DpdkError, Eal, Mempool};

/// Packets per TX burst and per RX poll.
const BURST: usize = 32;
/// Mbufs in the pool: TX bursts in flight and RX bursts being recorded.
const POOL_SIZE: u32 = 8191;
const POOL_CACHE: u32 = 256;
/// The window is full and nothing came back for this long: probe with
/// barriers to learn what btblocker dropped.
const STALL: Duration = Duration::from_millis(2);
/// A reply waits on what it answers; after this long with nothing back, a
/// barrier finds out whether btblocker dropped it.
const REPLY_PROBE: Duration = Duration::from_micros(100);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
    #[error("cannot remove the stale socket {path}: {source}")]
    StaleSocket {
        path: String,
        source: std::io::Error,
    },
    #[error("nothing connected to the {side} socket {path} within {secs} s: start `btblocker run` with a virtio_user port on that path (see dpdk-config/virtio-testbed.yaml)")]
    NoPeer {
        side: &'static str,
        path: String,
        secs: u64,
    },
    #[error("btblocker took no packet on the {side} port, queue {queue}, for {secs} s: did it disconnect, or does it run fewer workers than --queues?")]
    Stuck {
        side: &'static str,
        queue: u16,
        secs: u64,
    },
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
    #[error("packet {0} of the capture does not fit an mbuf")]
    FrameTooLong(usize),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("cannot write the summary to {path}: {source}")]
    Summary {
        path: String,
        source: std::io::Error,
    },
}

/// Runs the whole replay: validate, load the captures, start EAL and the
/// vhost ports, wait for btblocker, send every pass, write the reports.
pub fn run(settings: &ReplaySettings) -> Result<ReplaySummary, ReplayError> {
    settings.validate()?;
    let plan = Plan::load(&settings.pcaps, &settings.sides, settings.queues)?;
    info!(
        "{} packets to send per pass ({} bytes), {} pass(es)",
        plan.len(),
        plan.total_bytes(),
        settings.passes
    );
    for side in Side::BOTH {
        let path = settings.socket(side);
        remove_stale_socket(path).map_err(|source| ReplayError::StaleSocket {
            path: path.display().to_string(),
            source,
        })?;
    }
    let args = settings.eal_args();
    info!("starting EAL: {}", args.join(" "));
    let eal = Eal::init(&args)?;
    let result = replay_on_ports(settings, &plan);
    drop(eal);
    let summary = result?;
    print!("{}", summary.render_text());
    if let Some(path) = &settings.summary_json {
        let json = serde_json::to_string_pretty(&summary).expect("the summary is plain data");
        std::fs::write(path, json + "\n").map_err(|source| ReplayError::Summary {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(summary)
}

fn replay_on_ports(settings: &ReplaySettings, plan: &Plan) -> Result<ReplaySummary, ReplayError> {
    let pool = Mempool::create("replay_pool", POOL_SIZE, POOL_CACHE, 0)?;
    let mut ids = [0u16; 2];
    for side in Side::BOTH {
        let info = port::info(port::find_by_name(ReplaySettings::vdev_name(side))?)?;
        port::configure_and_start(&info, settings.queues, settings.queues, 1024, 1024, &pool)?;
        ids[side.index()] = info.id;
        info!(
            "{side} port: vhost-user server on {} ({} queue(s))",
            settings.socket(side).display(),
            settings.queues,
            side = side.name()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(ReplayError::Signal)?;
    }
    let outcome = wait_for_peer(settings, &ids, &stop).and_then(|()| {
        let mut sender = Sender::new(settings, plan, &pool, ids, &stop);
        sender.run()?;
        Ok(sender.finish())
    });
    for id in ids {
        // The vhost driver removes its socket file on close.
        let _ = port::stop_and_close(id);
    }
    let (summary, recorder) = outcome?;
    if let (Some(dir), Some(recorder)) = (&settings.received_dir, recorder) {
        recorder.write_pcaps(dir)?;
    }
    Ok(summary)
}

/// net_vhost reports link up once the virtio side has set up its rings.
fn wait_for_peer(
    settings: &ReplaySettings,
    ids: &[u16; 2],
    stop: &AtomicBool,
) -> Result<(), ReplayError> {
    info!("waiting for btblocker's virtio_user ports to connect");
    let limit = Duration::from_secs(settings.connect_timeout_s);
    let start = Instant::now();
    for side in Side::BOTH {
        while !port::link_up(ids[side.index()]) {
            if start.elapsed() >= limit || stop.load(Relaxed) {
                return Err(ReplayError::NoPeer {
                    side: side.name(),
                    path: settings.socket(side).display().to_string(),
                    secs: settings.connect_timeout_s,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    info!("both ports up after {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// The send/receive loop and what it counts.
struct Sender<'a> {
    settings: &'a ReplaySettings,
    plan: &'a Plan,
    pool: &'a Mempool,
    ids: [u16; 2],
    stop: &'a AtomicBool,
    hz: u64,
    start_tsc: u64,
    /// The burst being sent: its port, queue and the frame lengths.
    pending: MbufArray,
    pending_side: Side,
    pending_queue: u16,
    pending_lens: [u32; BURST],
    barrier: MbufArray,
    rx: MbufArray,
    recorder: Option<Recorder>,
    summary: ReplaySummary,
    pass: PassSummary,
    flight: Flight,
    window: Window,
    /// When `flight.progress()` last changed, for the stuck guard.
    last_progress: (u64, u64),
    last_rx_tsc: u64,
}

impl<'a> Sender<'a> {
    fn new(
        settings: &'a ReplaySettings,
        plan: &'a Plan,
        pool: &'a Mempool,
        ids: [u16; 2],
        stop: &'a AtomicBool,
    ) -> Self {
        let hz = tsc_hz().max(1);
        let now = tsc();
        let passes = settings.passes as usize;
        // Room for everything sent, every pass: nothing more can come back
        // from a device that only forwards or drops.
        let recorder = settings
            .received_dir
            .as_ref()
            .map(|_| Recorder::with_capacity(plan.len() * passes, plan.total_bytes() * passes));
        Sender {
            settings,
            plan,
            pool,
            ids,
            stop,
            hz,
            start_tsc: now,
            pending: MbufArray::new(),
            pending_side: Side::Inside,
            pending_queue: 0,
            pending_lens: [0; BURST],
            barrier: MbufArray::new(),
            rx: MbufArray::new(),
            recorder,
            summary: ReplaySummary::new(
                plan.len() as u64,
                (plan.skipped_oversize, plan.skipped_empty),
                settings.queues,
            ),
            pass: PassSummary::new(1, settings.queues),
            flight: Flight::default(),
            window: Window::new(settings.window, ticks(STALL, hz), now),
            last_progress: (0, now),
            last_rx_tsc: now,
        }
    }

    fn run(&mut self) -> Result<(), ReplayError> {
        for pass in 1..=self.settings.passes {
            self.pass = PassSummary::new(pass, self.settings.queues);
            if pass == 1 {
                self.warm_up()?;
            }
            self.send_pass()?;
            self.settle()?;
            let last = pass == self.settings.passes;
            self.drain(last);
            let done = std::mem::replace(&mut self.pass, PassSummary::new(0, 0));
            self.summary.push_pass(done);
            if self.stop.load(Relaxed) {
                info!("signal received: stopping after pass {pass}");
                break;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> (ReplaySummary, Option<Recorder>) {
        self.summary.dropped = self.flight.dropped();
        if let Some(r) = &self.recorder {
            self.summary.not_recorded = r.not_recorded;
        }
        (self.summary, self.recorder.take())
    }

    /// Fails when nothing was sent, received or settled for
    /// `--connect-timeout-s` while something waits (btblocker went away).
    fn check_stuck(&mut self, now: u64, side: Side, queue: u16) -> Result<(), ReplayError> {
        let progress = self.flight.progress();
        if progress != self.last_progress.0 {
            self.last_progress = (progress, now);
            return Ok(());
        }
        let limit = ticks(
            Duration::from_secs(self.settings.connect_timeout_s),
            self.hz,
        );
        if now.saturating_sub(self.last_progress.1) >= limit {
            return Err(ReplayError::Stuck {
                side: side.name(),
                queue,
                secs: self.settings.connect_timeout_s,
            });
        }
        Ok(())
    }

    /// The vhost link comes up when btblocker's virtio_user port starts, but
    /// virtio's start then flushes whatever already sits in its RX rings,
    /// uncounted. So before the capture, a barrier goes round every port and
    /// queue (again each second until it comes back). Only barriers that came
    /// back are counted, as sent and received: btblocker never saw the others.
    fn warm_up(&mut self) -> Result<(), ReplayError> {
        let resend = ticks(Duration::from_secs(1), self.hz);
        let limit = ticks(
            Duration::from_secs(self.settings.connect_timeout_s),
            self.hz,
        );
        let start = tsc();
        let mut last_sent = [[None::<u64>; MAX_QUEUES as usize]; 2];
        loop {
            self.poll_rx();
            let now = tsc();
            let mut missing = None;
            for side in Side::BOTH {
                for q in 0..self.settings.queues {
                    if self.flight.barriers_back(side, q) > 0 {
                        continue;
                    }
                    missing.get_or_insert((side, q));
                    let slot = &mut last_sent[side.index()][usize::from(q)];
                    if slot.is_none_or(|t| now.saturating_sub(t) >= resend)
                        && self.put_barrier(side, q)
                    {
                        *slot = Some(now);
                    }
                }
            }
            let Some((side, queue)) = missing else {
                break;
            };
            if now.saturating_sub(start) >= limit || self.stop.load(Relaxed) {
                return Err(ReplayError::Stuck {
                    side: side.name(),
                    queue,
                    secs: self.settings.connect_timeout_s,
                });
            }
        }
        for side in Side::BOTH {
            for q in 0..self.settings.queues {
                let back = self.flight.barriers_back(side, q);
                let port = self.pass.port(side);
                port.barriers_sent += back;
                port.sent_per_queue[queue_slot(q)] += back;
            }
        }
        info!(
            "every port and queue forwards: warm-up took {:.3} s",
            ns_since(start, tsc(), self.hz) as f64 / 1e9
        );
        Ok(())
    }

    /// Puts one barrier frame on `side`'s queue; false if it did not go.
    fn put_barrier(&mut self, side: Side, queue: u16) -> bool {
        if self
            .barrier
            .fill_from(self.pool, std::iter::once(&barrier::FRAME[..]))
            .is_err()
        {
            return false; // the pool refills as the driver sends and we receive
        }
        if self.barrier.tx_burst(self.ids[side.index()], queue) == 1 {
            true
        } else {
            self.barrier.free_all();
            false
        }
    }

    /// Sends a barrier into `side` on `queue` unless one is out already.
    fn send_barrier(&mut self, side: Side, queue: u16) {
        if self.flight.barrier_out(side, queue) {
            return;
        }
        if self.put_barrier(side, queue) {
            self.flight.barrier_sent(side, queue);
            let port = self.pass.port(side);
            port.barriers_sent += 1;
            port.sent_per_queue[queue_slot(queue)] += 1;
        }
    }

    /// Sends every frame of the plan once, receiving all the while.
    fn send_pass(&mut self) -> Result<(), ReplayError> {
        let n = self.plan.len();
        let ordered = self.settings.ordered;
        let mut next = 0usize;
        let mut pacer = Pacer::new(self.settings.rate_pps, self.hz, tsc());
        let (mut first_send, mut last_send) = (None, 0u64);
        while (next < n || !self.pending.is_empty()) && !self.stop.load(Relaxed) {
            self.poll_rx();
            let now = tsc();
            if self.pending.is_empty() {
                let first = self.plan.packet(next);
                // A reply goes only once what it replies to went through
                // btblocker (came back, or a barrier says it was dropped).
                let other = first.side.peer();
                if ordered && first.after_reply && self.flight.in_flight(other, first.queue) > 0 {
                    self.check_stuck(now, other, first.queue)?;
                    // Forwarded packets are back within microseconds; only
                    // when nothing moves is a barrier needed to find drops.
                    if now.saturating_sub(self.last_progress.1) >= ticks(REPLY_PROBE, self.hz) {
                        self.send_barrier(other, first.queue);
                    }
                    continue;
                }
                let room = match self.window.room(
                    self.flight.total_in_flight(),
                    self.flight.progress(),
                    now,
                ) {
                    Room::Send(room) => room,
                    Room::Wait => {
                        self.check_stuck(now, first.side, first.queue)?;
                        continue;
                    }
                    Room::Probe => {
                        self.probe_all();
                        continue;
                    }
                };
                let allow = pacer.allowance(now, BURST).min(room as usize);
                if allow == 0 {
                    continue;
                }
                let mut end = next + 1;
                while end < n && end - next < allow {
                    let p = self.plan.packet(end);
                    if p.side != first.side || p.queue != first.queue || (ordered && p.after_reply)
                    {
                        break;
                    }
                    end += 1;
                }
                let plan = self.plan;
                match self
                    .pending
                    .fill_from(self.pool, (next..end).map(|k| plan.frame(k)))
                {
                    Ok(()) => {}
                    // The driver and the receive path give mbufs back.
                    Err(FillError::PoolEmpty) => continue,
                    // The plan holds frames <= MAX_FRAME, well within an mbuf.
                    Err(FillError::TooLong) => return Err(ReplayError::FrameTooLong(next)),
                }
                for (slot, k) in (next..end).enumerate() {
                    self.pending_lens[slot] = plan.frame(k).len() as u32;
                }
                self.pending_side = first.side;
                self.pending_queue = first.queue;
                pacer.sent(end - next, now, BURST);
                next = end;
            }
            let (side, queue) = (self.pending_side, self.pending_queue);
            let sent = self.pending.tx_burst(self.ids[side.index()], queue);
            if sent > 0 {
                let bytes: u64 = self.pending_lens[..sent]
                    .iter()
                    .map(|&l| u64::from(l))
                    .sum();
                let port = self.pass.port(side);
                port.sent.add(sent as u64, bytes);
                port.sent_per_queue[queue_slot(queue)] += sent as u64;
                self.flight.sent(side, queue, sent as u64);
                // tx_burst kept the unsent mbufs, front first: their lengths too.
                self.pending_lens.copy_within(sent.., 0);
                first_send.get_or_insert(now);
                last_send = now;
            }
            self.check_stuck(now, side, queue)?;
        }
        if let Some(first) = first_send {
            self.pass.send_s = (last_send - first) as f64 / self.hz as f64;
        }
        Ok(())
    }

    /// A barrier on every lane with packets in flight.
    fn probe_all(&mut self) {
        for side in Side::BOTH {
            for q in 0..self.settings.queues {
                if self.flight.in_flight(side, q) > 0 {
                    self.send_barrier(side, q);
                }
            }
        }
    }

    /// Ends a pass exactly: barriers on every lane until nothing is in flight,
    /// so every packet of the pass is back or known dropped.
    fn settle(&mut self) -> Result<(), ReplayError> {
        while self.flight.total_in_flight() > 0 && !self.stop.load(Relaxed) {
            self.probe_all();
            self.poll_rx();
            let now = tsc();
            self.check_stuck(now, Side::Inside, 0)?;
        }
        Ok(())
    }

    /// Receives until the line is quiet: between passes, `pause_ms` (so bans
    /// publish before the next pass); after the last, `idle_ms` with nothing
    /// received.
    fn drain(&mut self, last: bool) {
        let start = tsc();
        let wait = if last {
            self.settings.idle_ms
        } else {
            self.settings.pause_ms
        };
        let wait = ticks(Duration::from_millis(wait), self.hz);
        loop {
            self.poll_rx();
            let now = tsc();
            let since = if last {
                self.last_rx_tsc.max(start)
            } else {
                start
            };
            if now.saturating_sub(since) >= wait || self.stop.load(Relaxed) {
                return;
            }
        }
    }

    /// One RX burst from every queue of both ports.
    #[inline]
    fn poll_rx(&mut self) {
        for side in Side::BOTH {
            for q in 0..self.settings.queues {
                let n = self.rx.rx_burst(self.ids[side.index()], q, BURST as u16);
                if n == 0 {
                    continue;
                }
                let now = tsc();
                self.last_rx_tsc = now;
                let at_ns = ns_since(self.start_tsc, now, self.hz);
                let (mut packets, mut bytes, mut barriers) = (0u64, 0u64, 0u64);
                // Packets of this burst not yet counted back into `flight`.
                let mut uncounted = 0u64;
                for i in 0..n {
                    if barrier::is_barrier(self.rx.frame(i)) {
                        // What came before the barrier is back before it settles.
                        self.flight.received(side, q, uncounted);
                        uncounted = 0;
                        self.flight.barrier_back(side.peer(), q);
                        barriers += 1;
                        continue;
                    }
                    let len = self.rx.pkt_len(i) as usize;
                    packets += 1;
                    uncounted += 1;
                    bytes += len as u64;
                    if let Some(r) = self.recorder.as_mut() {
                        r.record(side, at_ns, len, self.rx.segments(i));
                    }
                }
                let port = self.pass.port(side);
                port.received.add(packets, bytes);
                port.barriers_received += barriers;
                port.received_per_queue[queue_slot(q)] += packets + barriers;
                self.flight.received(side, q, uncounted);
                self.rx.free_all();
            }
        }
    }
}

fn ticks(d: Duration, hz: u64) -> u64 {
    (d.as_nanos() * u128::from(hz) / 1_000_000_000) as u64
}

fn ns_since(start: u64, now: u64, hz: u64) -> u64 {
    (u128::from(now.saturating_sub(start)) * 1_000_000_000 / u128::from(hz)) as u64
}
