//! `btblocker run`: EAL, mempools, ports, workers, and the control loop on the
//! main lcore. Start-up fails whole or not at all; shutdown closes every port so
//! PMDs flush what they buffer.
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::eal::Eal;
use super::mempool::Mempool;
use super::worker::{Clock, Poll, WorkerPlan};
use super::{lcore, port, DpdkError};
use crate::ban::{event_ring, unix_now_ms, SnapshotReader, DEFAULT_RING_CAPACITY};
use crate::config::Config;
use crate::config::PortRole;
use crate::control::{BanControl, ControlError};
use crate::live_settings::{LiveSettings, WorkerSettings};
use crate::metrics::Metrics;
use crate::ops::{ControlServer, Operator, ServerError};
use crate::pipeline::{Pipeline, RingSink};
use crate::reload::Reloader;
use crate::report::{HwPortStats, RunSummary};
use crate::stats::WorkerCounters;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
    #[error("port {port} ({device}): {reason}")]
    Port {
        port: String,
        device: String,
        reason: String,
    },
    #[error("lcore {0} is not enabled in EAL (check eal.lcores / pipeline.worker_lcores)")]
    Lcore(u32),
    #[error("the control loop must run on lcore {want} (EAL's main lcore), but runs on {got}")]
    MainLcore { want: u32, got: u32 },
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
    #[error("worker on lcore {lcore} failed (status {status})")]
    Worker { lcore: u32, status: i32 },
    #[error(transparent)]
    Bans(#[from] ControlError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error(transparent)]
    Control(#[from] ServerError),
    #[error("cannot write the summary to {path}: {source}")]
    Summary {
        path: String,
        source: std::io::Error,
    },
}

/// Options of `run` that are not part of the YAML config.
#[derive(Default)]
pub struct RunOptions {
    /// Write the final counters as JSON here.
    pub summary_json: Option<std::path::PathBuf>,
    /// The file the config came from: SIGHUP re-reads it. `None`: no reload.
    pub config_path: Option<std::path::PathBuf>,
}

struct ActivePort {
    id: u16,
    rx_queues: u16,
}

pub fn run(cfg: &Config, opts: &RunOptions) -> Result<(), RunError> {
    // Before EAL: a second daemon on the same socket stops here, touching
    // no DPDK resource.
    let control_socket = cfg
        .control
        .socket
        .as_deref()
        .map(ControlServer::start)
        .transpose()?;
    let args = cfg.eal_args();
    info!("starting EAL: {}", args.join(" "));
    let eal = Eal::init(&args)?;
    super::telemetry::register()?;
    let workers = &cfg.pipeline.worker_lcores;
    for &w in workers {
        if !eal.lcore_enabled(w) {
            return Err(RunError::Lcore(w));
        }
    }
    let main = eal.current_lcore();
    if main != cfg.pipeline.control_lcore {
        return Err(RunError::MainLcore {
            want: cfg.pipeline.control_lcore,
            got: main,
        });
    }

    let detection_log = cfg.log.open().map_err(ControlError::from)?;
    let port_names = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let mut bans = BanControl::start(&cfg.ban, &cfg.networks, unix_now_ms())?
        .with_detection_log(detection_log, port_names);
    bans.set_payload_bytes(cfg.log.payload_bytes);
    let live = Arc::new(LiveSettings::new(WorkerSettings::from_config(cfg)));
    let metrics = match cfg.metrics.listen {
        Some(addr) => {
            let m = Metrics::install(addr)?;
            info!("Prometheus metrics on http://{addr}/metrics");
            Some(m)
        }
        None => None,
    };
    let ports = setup_ports(cfg, workers.len() as u16)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(RunError::Signal)?;
    }
    let mut reloader = opts
        .config_path
        .as_deref()
        .map(|path| Reloader::new(path, cfg, Arc::clone(&live)));
    if let Some(r) = &reloader {
        r.register_sighup().map_err(RunError::Signal)?;
    }

    let counters: Vec<Arc<WorkerCounters>> = workers.iter().map(|_| Arc::default()).collect();
    for (w, &lcore_id) in workers.iter().enumerate() {
        let plan = plan_for_worker(cfg, &ports, w as u16, bans.reader());
        info!(
            "worker {w} on lcore {lcore_id} polls {}",
            plan.polls
                .iter()
                .map(|p| format!(
                    "{}:q{}→{}:q{}",
                    cfg.ports[p.port_index].name,
                    p.rx_queue,
                    cfg.ports[p.tx_port_index].name,
                    p.tx_queue
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let (producer, consumer) = event_ring(DEFAULT_RING_CAPACITY);
        bans.add_consumer(consumer);
        let roles: Vec<PortRole> = cfg.ports.iter().map(|p| p.role).collect();
        let pipeline = Pipeline::new(
            Arc::clone(&counters[w]),
            cfg.pipeline.mode,
            &cfg.flows,
            &cfg.dpi,
            RingSink::new(producer, Arc::clone(&counters[w])),
        )
        .with_enforcement(&roles, cfg.ban.action)
        .with_live_settings(Arc::clone(&live));
        let stop = Arc::clone(&stop);
        lcore::launch(lcore_id, move || super::worker::run(plan, pipeline, stop))?;
    }

    let started = Instant::now();
    let views = || -> Vec<(u32, &WorkerCounters)> {
        workers
            .iter()
            .copied()
            .zip(counters.iter().map(|c| &**c))
            .collect()
    };
    let hw = || -> Vec<HwPortStats> { ports.iter().map(|p| port::stats(p.id)).collect() };
    let mut operator = Operator::new(control_socket);
    control_loop(
        cfg,
        &stop,
        started,
        ControlServices {
            bans: &mut bans,
            operator: &mut operator,
            reloader: reloader.as_mut(),
            metrics: metrics.as_ref(),
        },
        || RunSummary::gather(cfg, started.elapsed().as_secs_f64(), &views(), &hw()),
    );
    // Commands from now on are told the daemon is stopping; the socket goes.
    drop(operator);

    stop.store(true, Relaxed);
    let mut failed = None;
    for &lcore_id in workers {
        let status = lcore::wait(lcore_id);
        if status != 0 && failed.is_none() {
            failed = Some(RunError::Worker {
                lcore: lcore_id,
                status,
            });
        }
    }
    // The workers' last detections are still in the rings: apply them, then
    // flush and fsync the journal before reporting.
    bans.tick(unix_now_ms());
    let mut summary = RunSummary::gather(cfg, started.elapsed().as_secs_f64(), &views(), &hw());
    summary.bans = Some(bans.summary());
    summary.config_reloads = reloader.as_ref().map(Reloader::counts).unwrap_or_default();
    bans.close(unix_now_ms());
    for (p, pc) in ports.iter().zip(&cfg.ports) {
        if let Err(e) = port::stop_and_close(p.id) {
            warn!("port {}: {e}", pc.name);
        }
    }
    print!("{summary}");
    #[cfg(feature = "stage-timing")]
    print!(
        "{}",
        crate::stage_timing::report(counters.iter().map(|c| &c.stages), super::tsc_hz())
    );
    if let Some(path) = &opts.summary_json {
        let json = serde_json::to_string_pretty(&summary).expect("the summary is plain data");
        std::fs::write(path, json + "\n").map_err(|source| RunError::Summary {
            path: path.display().to_string(),
            source,
        })?;
    }
    drop(eal);
    failed.map_or(Ok(()), Err)
}

/// What the control loop drives besides the clock: the ban table (its only
/// writer), operator commands, SIGHUP reloads and the metrics export.
struct ControlServices<'a> {
    bans: &'a mut BanControl,
    operator: &'a mut Operator,
    reloader: Option<&'a mut Reloader>,
    metrics: Option<&'a Metrics>,
}

/// Every millisecond applies the workers' detections (bans reach every worker
/// within about a tick) and a SIGHUP reload if one was asked for; every 10 ms
/// checks the stop conditions (a signal, or for finite inputs every RX queue
/// idle long enough); prints the summary line each interval.
fn control_loop(
    cfg: &Config,
    stop: &AtomicBool,
    started: Instant,
    services: ControlServices,
    summary: impl Fn() -> RunSummary,
) {
    let ControlServices {
        bans,
        operator,
        mut reloader,
        metrics,
    } = services;
    let interval = Duration::from_millis(cfg.pipeline.stats_interval_ms);
    let idle_limit = cfg.pipeline.stop_after_idle_ms.map(Duration::from_millis);
    let mut next_print = started + interval;
    let mut last_rx = 0u64;
    let mut last_activity = Instant::now();
    let mut tick = 0u64;
    operator.publish(&summary(), bans);
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(1));
        if let Some(r) = reloader.as_deref_mut() {
            r.poll(bans, unix_now_ms());
        }
        bans.tick(unix_now_ms());
        operator.tick(bans, unix_now_ms());
        tick += 1;
        if !tick.is_multiple_of(10) {
            continue;
        }
        let now = Instant::now();
        let mut s = summary();
        s.config_reloads = reloader.as_ref().map(|r| r.counts()).unwrap_or_default();
        let rx: u64 = s.ports.iter().map(|p| p.traffic.rx_packets).sum();
        if rx != last_rx {
            last_rx = rx;
            last_activity = now;
        }
        if now >= next_print {
            println!("{}", s.line());
            operator.publish(&s, bans);
            if let Some(m) = metrics {
                m.publish(&s, Some(&bans.counts()), None);
            }
            next_print += interval;
        }
        if let Some(limit) = idle_limit {
            if now.duration_since(last_activity) >= limit {
                info!("every RX queue idle for {} ms: stopping", limit.as_millis());
                break;
            }
        }
    }
    if stop.load(Relaxed) {
        info!("signal received: stopping");
    }
}

fn setup_ports(cfg: &Config, nb_workers: u16) -> Result<Vec<ActivePort>, RunError> {
    let mut infos = Vec::with_capacity(cfg.ports.len());
    for pc in &cfg.ports {
        let id = port::find_by_name(pc.dpdk_name()).map_err(|e| RunError::Port {
            port: pc.name.clone(),
            device: pc.device.clone(),
            reason: e.reason,
        })?;
        infos.push(port::info(id)?);
    }
    // One pool per NUMA socket that has a port.
    let mut pools: Vec<(i32, Mempool)> = Vec::new();
    for info in &infos {
        let socket = info.socket.max(0);
        if !pools.iter().any(|(s, _)| *s == socket) {
            let pool = Mempool::create(
                &format!("btb_pool_s{socket}"),
                cfg.pipeline.mbuf_pool_size,
                cfg.pipeline.mbuf_cache_size,
                socket,
            )?;
            pools.push((socket, pool));
        }
    }
    let mut active = Vec::with_capacity(infos.len());
    for (pc, info) in cfg.ports.iter().zip(&infos) {
        let err = |reason: String| RunError::Port {
            port: pc.name.clone(),
            device: pc.device.clone(),
            reason,
        };
        if info.max_tx_queues < nb_workers {
            return Err(err(format!(
                "driver {} offers {} TX queue(s) but each of the {nb_workers} workers needs its own",
                info.driver, info.max_tx_queues
            )));
        }
        let rx_queues = if info.max_rx_queues < nb_workers {
            warn!(
                "port {}: driver {} offers {} RX queue(s) for {nb_workers} workers: using 1 queue, polled by the first worker only",
                pc.name, info.driver, info.max_rx_queues
            );
            1
        } else {
            nb_workers
        };
        let pool = &pools
            .iter()
            .find(|(s, _)| *s == info.socket.max(0))
            .expect("a pool per socket")
            .1;
        let setup = port::configure_and_start(
            info,
            rx_queues,
            nb_workers,
            pc.rx_descriptors,
            pc.tx_descriptors,
            pool,
        )
        .map_err(|e| err(e.to_string()))?;
        if setup.rx_queues > 1 && !setup.rss {
            warn!(
                "port {}: driver {} offers no RSS: each RX queue gets what the device puts on it (e.g. the sender's queue on vhost), not a flow hash",
                pc.name, info.driver
            );
        }
        info!(
            "port {} ({}) = DPDK port {} driver {} socket {}: {} rx / {} tx queues, RSS {}",
            pc.name,
            pc.device,
            info.id,
            info.driver,
            info.socket,
            setup.rx_queues,
            setup.tx_queues,
            if setup.rss { "symmetric" } else { "off" }
        );
        active.push(ActivePort {
            id: info.id,
            rx_queues: setup.rx_queues,
        });
    }
    Ok(active)
}

fn plan_for_worker(
    cfg: &Config,
    ports: &[ActivePort],
    worker: u16,
    bans: SnapshotReader,
) -> WorkerPlan {
    let polls = cfg
        .ports
        .iter()
        .enumerate()
        .filter(|(i, _)| worker < ports[*i].rx_queues)
        .map(|(i, pc)| Poll {
            port_index: i,
            port_id: ports[i].id,
            rx_queue: worker,
            tx_port_index: pc.peer,
            tx_port_id: ports[pc.peer].id,
            tx_queue: worker,
        })
        .collect();
    WorkerPlan {
        polls,
        burst: cfg.pipeline.burst_size,
        bans,
        clock: Clock::now(),
    }
}
