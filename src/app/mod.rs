//! `btblocker run`: the appliance from start to stop. Start-up goes in
//! order — the operator socket (before EAL, so a second daemon touches no DPDK
//! resource), EAL, the control-plane services (ban keeper, metrics, signals,
//! reload), the ports, then one worker per worker lcore — and fails whole or
//! not at all. The main lcore then runs the control loop until a signal or
//! idle inputs stop it; shutdown waits for the workers, applies their last
//! detections, closes the ban journal and every port (PMDs flush what they
//! buffer), and prints the report.
pub mod ports;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use crate::ban::keeper::{BanKeeper, KeeperError};
use crate::ban::{event_ring, DEFAULT_RING_CAPACITY};
use crate::clock::unix_now_ms;
use crate::config::{Config, PortRole};
use crate::control::main_loop::{self, ControlServices};
use crate::control::metrics::Metrics;
use crate::control::operator::{telemetry_view, Operator, OperatorServer, ServerError};
use crate::control::reload::Reloader;
use crate::control::report::RunSummary;
use crate::dataplane::counters::WorkerCounters;
use crate::dataplane::live_settings::{LiveSettings, WorkerSettings};
use crate::dataplane::{Pipeline, RingSink};
use crate::dpdk::telemetry::TelemetrySource;
use crate::dpdk::{lcore, memory, DpdkError, Eal};
use ports::ActivePort;
use worker::{Clock, WorkerPlan};

/// Why `run` stopped before or after its work.
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
    Bans(#[from] KeeperError),
    #[error(transparent)]
    Metrics(#[from] crate::control::metrics::MetricsError),
    #[error(transparent)]
    OperatorSocket(#[from] ServerError),
    #[error("cannot start the BGP thread: {0}")]
    Bgp(std::io::Error),
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

/// Runs the appliance described by `cfg` until a signal (or, with
/// `pipeline.stop_after_idle_ms`, idle inputs) stops it.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<(), RunError> {
    // Before EAL: a second daemon on the same socket stops here, touching
    // no DPDK resource.
    let operator_server = cfg
        .operator
        .socket
        .as_deref()
        .map(OperatorServer::start)
        .transpose()?;
    let eal = start_eal(cfg)?;
    let mut services = Services::start(cfg, opts)?;
    let ports = ports::setup(cfg, cfg.pipeline.worker_lcores.len() as u16)?;
    let workers = launch_workers(cfg, &ports, &mut services)?;

    let started = Instant::now();
    let summary = || workers.summary(cfg, &ports, started);
    let mut operator = Operator::new(operator_server);
    let mut bgp = cfg
        .bgp
        .as_ref()
        .map(|b| crate::bgp::BgpLink::start(b, &mut services.bans))
        .transpose()
        .map_err(RunError::Bgp)?;
    main_loop::run(
        cfg,
        &services.stop,
        started,
        ControlServices {
            bans: &mut services.bans,
            operator: &mut operator,
            reloader: services.reloader.as_mut(),
            metrics: services.metrics.as_ref(),
            bgp: bgp.as_mut(),
        },
        summary,
    );
    if let Some(b) = bgp {
        b.stop();
    }
    // Commands from now on are told the daemon is stopping; the socket goes.
    drop(operator);

    let failed = workers.stop(&services.stop);
    let summary = shut_down(cfg, &ports, services, &workers, started);
    report(&summary, &workers, opts)?;
    drop(eal);
    failed.map_or(Ok(()), Err)
}

/// EAL with the config's arguments, on the lcores the config names.
fn start_eal(cfg: &Config) -> Result<Eal, RunError> {
    let args = cfg.eal_args();
    info!("starting EAL: {}", args.join(" "));
    let eal = Eal::init(&args)?;
    crate::dpdk::telemetry::register(TelemetrySource {
        stats: telemetry_view::visit_stats,
        bans: telemetry_view::visit_bans,
    })?;
    for &w in &cfg.pipeline.worker_lcores {
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
    Ok(eal)
}

/// The control plane's state: the ban keeper (the table's only writer), the
/// settings workers read live, the metrics exporter, the stop flag that
/// SIGINT/SIGTERM set, and the SIGHUP reloader.
struct Services {
    bans: BanKeeper,
    live: Arc<LiveSettings>,
    metrics: Option<Metrics>,
    stop: Arc<AtomicBool>,
    reloader: Option<Reloader>,
}

impl Services {
    fn start(cfg: &Config, opts: &RunOptions) -> Result<Services, RunError> {
        let detection_log = cfg.log.open().map_err(KeeperError::from)?;
        let port_names = cfg.ports.iter().map(|p| p.name.clone()).collect();
        let mut bans = BanKeeper::start(&cfg.ban, &cfg.networks, unix_now_ms())?
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
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(RunError::Signal)?;
        }
        let reloader = opts
            .config_path
            .as_deref()
            .map(|path| Reloader::new(path, cfg, Arc::clone(&live)));
        if let Some(r) = &reloader {
            r.register_sighup().map_err(RunError::Signal)?;
        }
        Ok(Services {
            bans,
            live,
            metrics,
            stop,
            reloader,
        })
    }
}

/// The launched workers: their lcores and counters.
struct Workers {
    lcores: Vec<u32>,
    counters: Vec<Arc<WorkerCounters>>,
}

/// One pipeline per worker lcore, each with its own event ring to the ban
/// keeper, launched on its lcore.
fn launch_workers(
    cfg: &Config,
    ports: &[ActivePort],
    services: &mut Services,
) -> Result<Workers, RunError> {
    let lcores = cfg.pipeline.worker_lcores.clone();
    let counters: Vec<Arc<WorkerCounters>> = lcores.iter().map(|_| Arc::default()).collect();
    let roles: Vec<PortRole> = cfg.ports.iter().map(|p| p.role).collect();
    for (w, &lcore_id) in lcores.iter().enumerate() {
        let plan = WorkerPlan {
            polls: ports::polls_for_worker(cfg, ports, w as u16),
            burst: cfg.pipeline.burst_size,
            bans: services.bans.reader(),
            clock: Clock::now(),
        };
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
        services.bans.add_consumer(consumer);
        let pipeline = Pipeline::new(
            Arc::clone(&counters[w]),
            cfg.pipeline.mode,
            &cfg.flows,
            &cfg.dpi,
            RingSink::new(producer, Arc::clone(&counters[w])),
        )
        .with_enforcement(&roles, cfg.ban.action)
        .with_live_settings(Arc::clone(&services.live));
        // EAL runs without hugetlbfs here: the table asks for transparent
        // huge pages, so a lookup that misses the caches skips the page walk.
        let huge = memory::back_with_huge_pages(&pipeline.flows().memory_regions());
        info!(
            "worker {w}: flow table {huge}, indexed by {}",
            if worker::indexes_with_nic_hash(&plan.polls) {
                "the NIC's symmetric Toeplitz hash (every port it polls delivers it)"
            } else {
                "the software hash (not every port it polls delivers the NIC's symmetric Toeplitz hash)"
            }
        );
        let stop = Arc::clone(&services.stop);
        lcore::launch(lcore_id, move || worker::run(plan, pipeline, stop))?;
    }
    Ok(Workers { lcores, counters })
}

impl Workers {
    /// The run's counters now (workers' and ports').
    fn summary(&self, cfg: &Config, ports: &[ActivePort], started: Instant) -> RunSummary {
        let views: Vec<(u32, &WorkerCounters)> = self
            .lcores
            .iter()
            .copied()
            .zip(self.counters.iter().map(|c| &**c))
            .collect();
        RunSummary::gather(
            cfg,
            started.elapsed().as_secs_f64(),
            &views,
            &ports::hw_stats(ports),
        )
    }

    /// Tells every worker to stop and waits for each; the first that failed.
    fn stop(&self, stop: &AtomicBool) -> Option<RunError> {
        stop.store(true, Relaxed);
        let mut failed = None;
        for &lcore_id in &self.lcores {
            let status = lcore::wait(lcore_id);
            if status != 0 && failed.is_none() {
                failed = Some(RunError::Worker {
                    lcore: lcore_id,
                    status,
                });
            }
        }
        failed
    }
}

/// After the workers stopped: their last detections are still in the rings,
/// so apply them, then flush and fsync the journal, and close the ports.
fn shut_down(
    cfg: &Config,
    ports: &[ActivePort],
    mut services: Services,
    workers: &Workers,
    started: Instant,
) -> RunSummary {
    services.bans.tick(unix_now_ms());
    let mut summary = workers.summary(cfg, ports, started);
    summary.bans = Some(services.bans.summary());
    summary.config_reloads = services
        .reloader
        .as_ref()
        .map(Reloader::counts)
        .unwrap_or_default();
    services.bans.close(unix_now_ms());
    ports::close_all(cfg, ports);
    summary
}

/// Prints the final report (and stage timings with that feature), and writes
/// it as JSON where asked.
fn report(summary: &RunSummary, workers: &Workers, opts: &RunOptions) -> Result<(), RunError> {
    print!("{summary}");
    #[cfg(feature = "stage-timing")]
    print!(
        "{}",
        crate::dataplane::stage_timing::report(
            workers.counters.iter().map(|c| &c.stages),
            crate::dpdk::tsc_hz()
        )
    );
    #[cfg(not(feature = "stage-timing"))]
    let _ = workers;
    if let Some(path) = &opts.summary_json {
        let json = serde_json::to_string_pretty(summary).expect("the summary is plain data");
        std::fs::write(path, json + "\n").map_err(|source| RunError::Summary {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}
