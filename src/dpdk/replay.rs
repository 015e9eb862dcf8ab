//! `btblocker replay` on DPDK: two `net_vhost` ports (vhost-user servers), one
//! lcore that sends the plan's frames and polls every RX queue of both ports
//! all the time. What to send where, pacing and counting are safe code in
//! `crate::replay`; this file only moves mbufs.
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::eal::Eal;
use super::mbuf::{FillError, MbufArray};
use super::mempool::Mempool;
use super::{ffi, port, tsc, tsc_hz, DpdkError};
use crate::replay::pacing::{Pacer, Window};
use crate::replay::settings::remove_stale_socket;
use crate::replay::summary::{queue_slot, RecordError};
use crate::replay::SettingsError;
use crate::replay::{PassSummary, Plan, PlanError, Recorder, ReplaySettings, ReplaySummary, Side};

/// Packets per TX burst and per RX poll.
const BURST: usize = 32;
/// Mbufs in the pool: TX bursts in flight and RX bursts being recorded.
const POOL_SIZE: u32 = 8191;
const POOL_CACHE: u32 = 256;
/// Nothing in flight came back for this long: btblocker dropped it.
const STALL: Duration = Duration::from_millis(20);

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

fn link_up(id: u16) -> bool {
    let mut link = ffi::rte_eth_link::default();
    // SAFETY: link is a valid out-struct; the port is started.
    let rc = unsafe { ffi::rte_eth_link_get_nowait(id, &mut link) };
    rc == 0 && link.link_status() != 0
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
        while !link_up(ids[side.index()]) {
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
    rx: MbufArray,
    recorder: Option<Recorder>,
    summary: ReplaySummary,
    pass: PassSummary,
    sent_total: u64,
    received_total: u64,
    last_rx_tsc: u64,
    window: Window,
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
            rx: MbufArray::new(),
            recorder,
            summary: ReplaySummary::new(
                plan.len() as u64,
                (plan.skipped_oversize, plan.skipped_empty),
                settings.queues,
            ),
            pass: PassSummary::new(1, settings.queues),
            sent_total: 0,
            received_total: 0,
            last_rx_tsc: now,
            window: Window::new(settings.window, ticks(STALL, hz), now),
        }
    }

    fn run(&mut self) -> Result<(), ReplayError> {
        for pass in 1..=self.settings.passes {
            self.pass = PassSummary::new(pass, self.settings.queues);
            self.send_pass()?;
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
        self.summary.written_off = self.window.written_off();
        if let Some(r) = &self.recorder {
            self.summary.not_recorded = r.not_recorded;
        }
        (self.summary, self.recorder.take())
    }

    /// Sends every frame of the plan once, receiving all the while.
    fn send_pass(&mut self) -> Result<(), ReplayError> {
        let n = self.plan.len();
        let mut next = 0usize;
        let mut pacer = Pacer::new(self.settings.rate_pps, self.hz, tsc());
        let stuck_limit = ticks(
            Duration::from_secs(self.settings.connect_timeout_s),
            self.hz,
        );
        let mut last_tx_progress = tsc();
        let (mut first_send, mut last_send) = (None, 0u64);
        while (next < n || !self.pending.is_empty()) && !self.stop.load(Relaxed) {
            self.poll_rx();
            let now = tsc();
            if self.pending.is_empty() {
                let room = self.window.room(self.sent_total, self.received_total, now);
                let allow = pacer.allowance(now, BURST).min(room as usize);
                if allow == 0 {
                    continue;
                }
                let first = self.plan.packet(next);
                let mut end = next + 1;
                while end < n && end - next < allow {
                    let p = self.plan.packet(end);
                    if p.side != first.side || p.queue != first.queue {
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
                    Err(FillError::TooLong) => unreachable!("the plan holds frames <= MAX_FRAME"),
                }
                for (slot, k) in (next..end).enumerate() {
                    self.pending_lens[slot] = plan.frame(k).len() as u32;
                }
                self.pending_side = first.side;
                self.pending_queue = first.queue;
                pacer.sent(end - next, now, BURST);
                next = end;
            }
            let side = self.pending_side;
            let sent = self
                .pending
                .tx_burst(self.ids[side.index()], self.pending_queue);
            if sent > 0 {
                let bytes: u64 = self.pending_lens[..sent]
                    .iter()
                    .map(|&l| u64::from(l))
                    .sum();
                let port = self.pass.port(side);
                port.sent.add(sent as u64, bytes);
                port.sent_per_queue[queue_slot(self.pending_queue)] += sent as u64;
                self.sent_total += sent as u64;
                self.pending.consume_front(sent);
                self.pending_lens.copy_within(sent.., 0);
                last_tx_progress = now;
                first_send.get_or_insert(now);
                last_send = now;
            } else if now.saturating_sub(last_tx_progress) >= stuck_limit {
                return Err(ReplayError::Stuck {
                    side: side.name(),
                    queue: self.pending_queue,
                    secs: self.settings.connect_timeout_s,
                });
            }
        }
        if let Some(first) = first_send {
            self.pass.send_s = (last_send - first) as f64 / self.hz as f64;
        }
        Ok(())
    }

    /// Receives until the line is quiet: between passes, `pause_ms` after the
    /// last send (so bans publish before the next pass); after the last,
    /// `idle_ms` with nothing received.
    fn drain(&mut self, last: bool) {
        let end_of_send = tsc();
        let quiet = if last {
            self.settings.idle_ms
        } else {
            self.settings.pause_ms.min(self.settings.idle_ms)
        };
        let quiet = ticks(Duration::from_millis(quiet), self.hz);
        let pause = ticks(Duration::from_millis(self.settings.pause_ms), self.hz);
        loop {
            self.poll_rx();
            let now = tsc();
            let paused = last || now.saturating_sub(end_of_send) >= pause;
            let idle = now.saturating_sub(self.last_rx_tsc.max(end_of_send)) >= quiet;
            if (paused && idle) || self.stop.load(Relaxed) {
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
                let mut bytes = 0u64;
                for i in 0..n {
                    let len = self.rx.pkt_len(i) as usize;
                    bytes += len as u64;
                    if let Some(r) = self.recorder.as_mut() {
                        r.record(side, at_ns, len, self.rx.segments(i));
                    }
                }
                let port = self.pass.port(side);
                port.received.add(n as u64, bytes);
                port.received_per_queue[queue_slot(q)] += n as u64;
                self.received_total += n as u64;
                self.rx.free_from(0);
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
