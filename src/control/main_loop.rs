//! The control lcore's loop: a 1 ms tick that applies the workers'
//! detections to the ban table (so a ban reaches every worker within about a
//! tick), SIGHUP reloads and operator commands; every 10 ms it checks the stop
//! conditions, and each stats interval it prints the summary line and exports
//! metrics. It sleeps between ticks instead of polling: the control lcore
//! serves people and files, not packets.
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tracing::info;

use super::metrics::Metrics;
use super::operator::Operator;
use super::reload::Reloader;
use super::report::RunSummary;
use crate::ban::keeper::BanKeeper;
use crate::clock::unix_now_ms;
use crate::config::Config;

/// What the control loop drives besides the clock: the ban table (its only
/// writer), operator commands, SIGHUP reloads and the metrics export.
pub struct ControlServices<'a> {
    pub bans: &'a mut BanKeeper,
    pub operator: &'a mut Operator,
    pub reloader: Option<&'a mut Reloader>,
    pub metrics: Option<&'a Metrics>,
    /// The BGP announcer (`bgp:` enabled).
    pub bgp: Option<&'a mut crate::bgp::BgpLink>,
}

/// Every millisecond applies the workers' detections (bans reach every worker
/// within about a tick) and a SIGHUP reload if one was asked for; every 10 ms
/// checks the stop conditions (a signal, or for finite inputs every RX queue
/// idle long enough); prints the summary line each interval.
pub fn run(
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
        mut bgp,
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
            r.poll(bans, bgp.as_deref_mut(), unix_now_ms());
        }
        bans.tick(unix_now_ms());
        operator.tick(bans, bgp.as_deref(), unix_now_ms());
        if let Some(b) = bgp.as_deref_mut() {
            b.tick(bans, unix_now_ms());
        }
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
                if let Some(b) = bgp.as_deref() {
                    m.publish_bgp(&b.counts());
                }
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
