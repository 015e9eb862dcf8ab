//! SIGHUP reload of a running `btblocker run`: re-read the config file,
//! validate it whole with the start-up loader, and apply what a running
//! dataplane can change without touching its ports or losing a ban.
//!
//! Applied live:
//! - `ban.allowlist` (bans it now covers are lifted and journaled),
//!   `ban.denylist` (new addresses banned, removed ones lifted),
//!   `ban.threshold` / `window_s` / `definitive_bans_at_once`, `ban.ttl_s`
//!   (for new bans), `ban.target`, `networks.inside`: by the control lcore,
//!   the only writer of the ban table;
//! - `ban.action`, `dpi.disabled_detectors`, `log.payload_bytes`: stored in
//!   [`LiveSettings`], which every worker reads once per burst;
//! - `log.path` / `max_bytes` / `keep`: the detection log is reopened.
//!
//! Everything else (`eal`, `ports`, `pipeline`, `flows`, `metrics`, the other
//! `dpi` keys, `ban.max_entries` / `when_full` / `persist` / `state_file` /
//! `flush_ms`) is fixed for the run: a change is reported, one warning per
//! key, and the running value kept. A file that does not validate (or whose
//! detection log cannot be opened) changes nothing: the error is logged as
//! `check-config` would print it and counted.
//!
//! The signal handler only sets a flag; the control loop calls
//! [`Reloader::poll`] each tick, so the reload runs on the control lcore.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use serde::Serialize;
use tracing::{error, info, warn};

use crate::ban::detection_log::DetectionLogError;
use crate::ban::keeper::BanKeeper;
use crate::config::{self, Config, ConfigError};
use crate::dataplane::live_settings::{LiveSettings, WorkerSettings};

/// Reloads so far (`btblocker_config_reloads_total{result}`).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ReloadCounts {
    pub ok: u64,
    pub failed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    DetectionLog(#[from] DetectionLogError),
}

/// What one successful reload did, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Keys whose new value is now in force.
    pub applied: Vec<&'static str>,
    /// Keys that changed in the file but need a restart: kept as they were.
    pub needs_restart: Vec<&'static str>,
}

pub struct Reloader {
    path: PathBuf,
    /// The config in force: the start-up one with every reload applied.
    in_force: Config,
    live: Arc<LiveSettings>,
    requested: Arc<AtomicBool>,
    counts: ReloadCounts,
}

impl Reloader {
    /// `cfg` is what the run started with, read from `path`; `live` is what
    /// the workers read.
    pub fn new(path: &Path, cfg: &Config, live: Arc<LiveSettings>) -> Reloader {
        Reloader {
            path: path.to_path_buf(),
            in_force: cfg.clone(),
            live,
            requested: Arc::new(AtomicBool::new(false)),
            counts: ReloadCounts::default(),
        }
    }

    /// Makes SIGHUP request a reload (the handler only sets a flag).
    pub fn register_sighup(&self) -> std::io::Result<()> {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&self.requested))
            .map(|_| ())
    }

    /// The flag SIGHUP sets (tests set it by hand).
    pub fn request(&self) {
        self.requested.store(true, Relaxed);
    }

    /// Called by the control loop each tick: reloads if asked to since the
    /// last call. Errors are logged and counted, never returned: the daemon
    /// keeps running on the config in force.
    pub fn poll(
        &mut self,
        bans: &mut BanKeeper,
        bgp: Option<&mut crate::bgp::BgpLink>,
        now_ms: u64,
    ) {
        if !self.requested.swap(false, Relaxed) {
            return;
        }
        info!("SIGHUP: reloading {}", self.path.display());
        match self.reload(bans, now_ms) {
            Ok(report) => {
                if let (Some(link), Some(b)) = (bgp, &self.in_force.bgp) {
                    if link.reconfigure(b, bans) {
                        info!("config reload: bgp route settings / never_announce applied: re-announcing");
                    }
                }
                for key in &report.needs_restart {
                    warn!("config reload: {key} changed: needs a restart, kept as it was");
                }
                let applied = if report.applied.is_empty() {
                    "nothing to apply".to_string()
                } else {
                    format!("applied {}", report.applied.join(", "))
                };
                info!("config reloaded from {}: {applied}", self.path.display());
            }
            Err(e) => error!(
                "config reload of {} failed, keeping the running config: {e}",
                self.path.display()
            ),
        }
    }

    /// Reads, validates and applies the file; all or nothing.
    pub fn reload(
        &mut self,
        bans: &mut BanKeeper,
        now_ms: u64,
    ) -> Result<ReloadReport, ReloadError> {
        let result = self.try_reload(bans, now_ms);
        match result {
            Ok(_) => self.counts.ok += 1,
            Err(_) => self.counts.failed += 1,
        }
        result
    }

    fn try_reload(
        &mut self,
        bans: &mut BanKeeper,
        now_ms: u64,
    ) -> Result<ReloadReport, ReloadError> {
        let new = config::load_file(&self.path)?;
        let report = ReloadReport {
            applied: live_changes(&self.in_force, &new),
            needs_restart: restart_only_changes(&self.in_force, &new),
        };
        let next = keep_restart_only(&self.in_force, new);
        // The one step that can still fail goes first, so a failure leaves
        // everything as it was.
        if next.log.path != self.in_force.log.path
            || next.log.max_bytes != self.in_force.log.max_bytes
            || next.log.keep != self.in_force.log.keep
        {
            bans.flush_detection_log();
            let log = next.log.open()?;
            bans.replace_detection_log(log);
        }
        bans.reconfigure(&next.ban, &next.networks, now_ms);
        bans.set_payload_bytes(next.log.payload_bytes);
        self.live.store(WorkerSettings::from_config(&next));
        self.in_force = next;
        Ok(report)
    }

    pub fn counts(&self) -> ReloadCounts {
        self.counts
    }

    pub fn in_force(&self) -> &Config {
        &self.in_force
    }
}

/// The keys a reload applies whose value differs between `old` and `new`.
pub fn live_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (ob, nb) = (&old.ban, &new.ban);
    let log_file = |c: &Config| (c.log.path.clone(), c.log.max_bytes, c.log.keep);
    [
        ("ban.allowlist", ob.allowlist != nb.allowlist),
        ("ban.denylist", ob.denylist != nb.denylist),
        ("ban.threshold", ob.policy.threshold != nb.policy.threshold),
        ("ban.window_s", ob.policy.window_ms != nb.policy.window_ms),
        (
            "ban.definitive_bans_at_once",
            ob.policy.definitive_bans_at_once != nb.policy.definitive_bans_at_once,
        ),
        ("ban.ttl_s", ob.ttl_s != nb.ttl_s),
        ("ban.target", ob.target != nb.target),
        ("ban.action", ob.action != nb.action),
        ("networks.inside", old.networks != new.networks),
        (
            "dpi.disabled_detectors",
            old.dpi.detectors != new.dpi.detectors,
        ),
        ("log", log_file(old) != log_file(new)),
        (
            "log.payload_bytes",
            old.log.payload_bytes != new.log.payload_bytes,
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

/// The keys that changed but are fixed for the run.
pub fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (od, nd) = (&old.dpi, &new.dpi);
    let (ob, nb) = (&old.ban, &new.ban);
    [
        ("eal", old.eal != new.eal),
        ("ports", old.ports != new.ports),
        ("pipeline", old.pipeline != new.pipeline),
        ("flows", old.flows != new.flows),
        ("metrics", old.metrics != new.metrics),
        ("control", old.operator != new.operator),
        (
            "bgp (enabled, api_socket, local_asn, box_id, import, queue)",
            bgp_fixed(old) != bgp_fixed(new),
        ),
        (
            "dpi.max_payload_packets",
            od.max_payload_packets != nd.max_payload_packets,
        ),
        (
            "dpi.known_peer_capacity",
            od.known_peer_capacity != nd.known_peer_capacity,
        ),
        (
            "dpi.known_peer_ttl_s",
            od.known_peer_ttl_secs != nd.known_peer_ttl_secs,
        ),
        (
            "dpi.learn_advertised_peers",
            od.learn_advertised_peers != nd.learn_advertised_peers,
        ),
        (
            "ban.max_entries",
            ob.table.max_entries != nb.table.max_entries,
        ),
        ("ban.when_full", ob.table.when_full != nb.table.when_full),
        (
            "ban.persist / ban.state_file",
            ob.state_file != nb.state_file,
        ),
        ("ban.flush_ms", ob.flush_ms != nb.flush_ms),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

/// The `bgp` keys fixed for the run; the others (communities, next hops,
/// families, FlowSpec, never_announce) apply on reload.
fn bgp_fixed(c: &Config) -> Option<(std::path::PathBuf, u32, u32, bool, usize)> {
    c.bgp.as_ref().map(|b| {
        (
            b.api_socket.clone(),
            b.local_asn,
            b.box_id,
            b.import,
            b.queue_capacity,
        )
    })
}

/// `new` with every restart-only key put back to its value in `old`.
fn keep_restart_only(old: &Config, mut new: Config) -> Config {
    new.eal = old.eal.clone();
    new.ports = old.ports.clone();
    new.pipeline = old.pipeline.clone();
    new.flows = old.flows.clone();
    new.metrics = old.metrics.clone();
    new.dpi = crate::dpi::DpiConfig {
        detectors: new.dpi.detectors,
        ..old.dpi.clone()
    };
    new.ban.table = old.ban.table;
    new.ban.state_file = old.ban.state_file.clone();
    new.ban.flush_ms = old.ban.flush_ms;
    new
}

#[cfg(test)]
mod tests;
