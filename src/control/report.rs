//! What a run prints: the one-line summary each interval and the final report,
//! built from the per-worker counters and the ports' hardware counters. Also
//! written as JSON (`run --summary-json`) for scripts and tests.
use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::ban::keeper::BanSummary;
use crate::config::{Config, PortRole};
use crate::control::reload::ReloadCounts;
pub use crate::dataplane::counters::HwPortStats;
use crate::dataplane::counters::{Counter, WorkerCounters};
use crate::dpi::DetectorId;
use crate::wire::ParseError;

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Traffic {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub dropped: u64,
    pub tx_failed: u64,
}

impl Traffic {
    fn add_port(&mut self, w: &WorkerCounters, port: usize) {
        let p = &w.ports[port];
        self.rx_packets += p.rx_packets.get();
        self.rx_bytes += p.rx_bytes.get();
        self.tx_packets += p.tx_packets.get();
        self.tx_bytes += p.tx_bytes.get();
        self.dropped += p.dropped.get();
        self.tx_failed += p.tx_failed.get();
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PortSummary {
    pub name: String,
    pub role: &'static str,
    #[serde(flatten)]
    pub traffic: Traffic,
    pub hw: HwPortStats,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WorkerSummary {
    pub lcore: u32,
    #[serde(flatten)]
    pub traffic: Traffic,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ParseSummary {
    pub non_ip: u64,
    pub vlan: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub other_l4: u64,
    pub fragments: u64,
    pub malformed: u64,
    /// Malformed packets by reason (only reasons seen).
    pub malformed_by_reason: Vec<(&'static str, u64)>,
}

/// What the flow table and the DPI engine did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct DpiSummary {
    pub flows_created: u64,
    pub flows_expired: u64,
    pub flows_evicted: u64,
    pub payload_packets_inspected: u64,
    pub flows_clean: u64,
    pub flows_bittorrent: u64,
    /// Flows left undecided because the DPI pool was empty (`flows.dpi_pool`).
    pub dpi_pool_exhausted: u64,
    /// Bursts whose flows were looked up ahead (the flow table outgrew the
    /// caches).
    pub flow_lookahead_bursts: u64,
    /// BitTorrent flows by deciding detector (only detectors that fired).
    pub bittorrent_by_detector: Vec<(&'static str, u64)>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RunSummary {
    pub elapsed_s: f64,
    pub mode: &'static str,
    pub ports: Vec<PortSummary>,
    pub workers: Vec<WorkerSummary>,
    pub parse: ParseSummary,
    pub dpi: DpiSummary,
    pub enforcement: EnforcementSummary,
    /// The control lcore's ban table (set by `btblocker run`).
    pub bans: Option<BanSummary>,
    /// SIGHUP reloads so far, applied and refused (set by `btblocker run`).
    pub config_reloads: ReloadCounts,
}

/// What the workers dropped, and the detections they sent.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct EnforcementSummary {
    pub dropped_banned_host: u64,
    pub dropped_bittorrent_flow: u64,
    pub events_sent: u64,
}

fn role_name(role: PortRole) -> &'static str {
    match role {
        PortRole::Inside => "inside",
        PortRole::Outside => "outside",
    }
}

impl RunSummary {
    /// Gathers the counters of `workers` (lcore id, counters) and each port's
    /// hardware stats (`hw[i]` for `cfg.ports[i]`).
    pub fn gather(
        cfg: &Config,
        elapsed_s: f64,
        workers: &[(u32, &WorkerCounters)],
        hw: &[HwPortStats],
    ) -> Self {
        let ports = cfg
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut traffic = Traffic::default();
                for (_, w) in workers {
                    traffic.add_port(w, i);
                }
                PortSummary {
                    name: p.name.clone(),
                    role: role_name(p.role),
                    traffic,
                    hw: hw.get(i).copied().unwrap_or_default(),
                }
            })
            .collect();
        let worker_summaries = workers
            .iter()
            .map(|(lcore, w)| {
                let mut traffic = Traffic::default();
                for i in 0..cfg.ports.len() {
                    traffic.add_port(w, i);
                }
                WorkerSummary {
                    lcore: *lcore,
                    traffic,
                }
            })
            .collect();
        let total = |f: &dyn Fn(&WorkerCounters) -> &Counter| {
            workers.iter().map(|(_, w)| f(w).get()).sum::<u64>()
        };
        let malformed_by_reason: Vec<(&'static str, u64)> = ParseError::ALL
            .iter()
            .map(|e| (e.name(), total(&|w| &w.parse.errors[e.index()])))
            .filter(|(_, n)| *n > 0)
            .collect();
        let parse = ParseSummary {
            non_ip: total(&|w| &w.parse.non_ip),
            vlan: total(&|w| &w.parse.vlan),
            ipv4: total(&|w| &w.parse.ipv4),
            ipv6: total(&|w| &w.parse.ipv6),
            tcp: total(&|w| &w.parse.tcp),
            udp: total(&|w| &w.parse.udp),
            other_l4: total(&|w| &w.parse.other_l4),
            fragments: total(&|w| &w.parse.fragments),
            malformed: malformed_by_reason.iter().map(|(_, n)| n).sum(),
            malformed_by_reason,
        };
        let bittorrent_by_detector: Vec<(&'static str, u64)> = DetectorId::ALL
            .iter()
            .map(|d| (d.name(), total(&|w| &w.flows.by_detector[d.index()])))
            .filter(|(_, n)| *n > 0)
            .collect();
        let dpi = DpiSummary {
            flows_created: total(&|w| &w.flows.created),
            flows_expired: total(&|w| &w.flows.expired),
            flows_evicted: total(&|w| &w.flows.evicted),
            payload_packets_inspected: total(&|w| &w.flows.inspected_packets),
            flows_clean: total(&|w| &w.flows.judged_clean),
            flows_bittorrent: total(&|w| &w.flows.judged_bittorrent),
            dpi_pool_exhausted: total(&|w| &w.flows.dpi_pool_exhausted),
            flow_lookahead_bursts: total(&|w| &w.flows.lookahead_bursts),
            bittorrent_by_detector,
        };
        let enforcement = EnforcementSummary {
            dropped_banned_host: total(&|w| &w.bans.dropped_banned_host),
            dropped_bittorrent_flow: total(&|w| &w.bans.dropped_bittorrent_flow),
            events_sent: total(&|w| &w.bans.events_sent),
        };
        RunSummary {
            elapsed_s,
            mode: match cfg.pipeline.mode {
                crate::config::Mode::Inline => "inline",
                crate::config::Mode::Monitor => "monitor",
            },
            ports,
            workers: worker_summaries,
            parse,
            dpi,
            enforcement,
            bans: None,
            config_reloads: ReloadCounts::default(),
        }
    }

    /// The one-line summary the control lcore prints each interval.
    pub fn line(&self) -> String {
        let mut s = format!("t={:.1}s", self.elapsed_s);
        for p in &self.ports {
            let t = &p.traffic;
            let _ = write!(
                s,
                " | {}: rx {} tx {} drop {} txfail {} imissed {} nombuf {} ierr {}",
                p.name,
                t.rx_packets,
                t.tx_packets,
                t.dropped,
                t.tx_failed,
                p.hw.imissed,
                p.hw.rx_nombuf,
                p.hw.ierrors
            );
        }
        for w in &self.workers {
            let t = &w.traffic;
            let _ = write!(
                s,
                " | w{}: rx {} tx {} drop {}",
                w.lcore, t.rx_packets, t.tx_packets, t.dropped
            );
        }
        s
    }
}

impl fmt::Display for RunSummary {
    /// The final report, for people: one section after another, each ending
    /// its own lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "btblocker: run finished after {:.2} s ({} mode, {} worker{})",
            self.elapsed_s,
            self.mode,
            self.workers.len(),
            if self.workers.len() == 1 { "" } else { "s" }
        )?;
        write_ports_table(f, &self.ports)?;
        write_workers(f, &self.workers)?;
        write_parse_line(f, &self.parse)?;
        write_flows_line(f, &self.dpi)?;
        write_drops_line(f, &self.enforcement)?;
        if let Some(bans) = &self.bans {
            write_bans(f, bans)?;
        }
        write_reloads_line(f, self.config_reloads)
    }
}

/// A header, then one row per port; the row format repeats the header's
/// column widths so the columns line up.
fn write_ports_table(f: &mut fmt::Formatter<'_>, ports: &[PortSummary]) -> fmt::Result {
    writeln!(
        f,
        "{:<12} {:<8} {:>10} {:>12} {:>10} {:>12} {:>8} {:>9} {:>8} {:>9} {:>8}",
        "port",
        "role",
        "rx_pkts",
        "rx_bytes",
        "tx_pkts",
        "tx_bytes",
        "dropped",
        "tx_failed",
        "imissed",
        "rx_nombuf",
        "ierrors"
    )?;
    for p in ports {
        let t = &p.traffic;
        writeln!(
            f,
            "{:<12} {:<8} {:>10} {:>12} {:>10} {:>12} {:>8} {:>9} {:>8} {:>9} {:>8}",
            p.name,
            p.role,
            t.rx_packets,
            t.rx_bytes,
            t.tx_packets,
            t.tx_bytes,
            t.dropped,
            t.tx_failed,
            p.hw.imissed,
            p.hw.rx_nombuf,
            p.hw.ierrors
        )?;
    }
    Ok(())
}

fn write_workers(f: &mut fmt::Formatter<'_>, workers: &[WorkerSummary]) -> fmt::Result {
    for w in workers {
        let t = &w.traffic;
        writeln!(
            f,
            "worker lcore {}: rx {} pkts / {} bytes, tx {} pkts / {} bytes, dropped {}, tx_failed {}",
            w.lcore, t.rx_packets, t.rx_bytes, t.tx_packets, t.tx_bytes, t.dropped, t.tx_failed
        )?;
    }
    Ok(())
}

/// Packets by header, then the malformed ones by reason on the same line.
fn write_parse_line(f: &mut fmt::Formatter<'_>, p: &ParseSummary) -> fmt::Result {
    write!(
        f,
        "parsed: ipv4 {}, ipv6 {}, vlan-tagged {}, tcp {}, udp {}, other L4 {}, fragments {}, non-IP {}, malformed {}",
        p.ipv4, p.ipv6, p.vlan, p.tcp, p.udp, p.other_l4, p.fragments, p.non_ip, p.malformed
    )?;
    for (reason, n) in &p.malformed_by_reason {
        write!(f, " [{reason}: {n}]")?;
    }
    writeln!(f)
}

/// The flow table and the verdicts, with the deciding detectors when any fired.
fn write_flows_line(f: &mut fmt::Formatter<'_>, d: &DpiSummary) -> fmt::Result {
    write!(
        f,
        "flows: {} created, {} expired, {} evicted; {} payload packets inspected; judged {} clean, {} BitTorrent",
        d.flows_created, d.flows_expired, d.flows_evicted, d.payload_packets_inspected, d.flows_clean, d.flows_bittorrent
    )?;
    if !d.bittorrent_by_detector.is_empty() {
        let by: Vec<String> = d
            .bittorrent_by_detector
            .iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect();
        write!(f, " ({})", by.join(", "))?;
    }
    if d.dpi_pool_exhausted > 0 {
        write!(
            f,
            "; {} left undecided (DPI pool full)",
            d.dpi_pool_exhausted
        )?;
    }
    writeln!(f)
}

fn write_drops_line(f: &mut fmt::Formatter<'_>, e: &EnforcementSummary) -> fmt::Result {
    writeln!(
        f,
        "dropped: {} packets of banned hosts, {} packets of BitTorrent flows; {} detections sent to the control lcore",
        e.dropped_banned_host, e.dropped_bittorrent_flow, e.events_sent
    )
}

/// The ban table's counts, then one line per banned host.
fn write_bans(f: &mut fmt::Formatter<'_>, b: &BanSummary) -> fmt::Result {
    writeln!(
        f,
        "bans: {} active ({} restored, {} added, {} refreshed, {} refused as allowlisted, {} refused full, {} evicted, {} expired; {} detections below threshold; {} lost to full rings)",
        b.active,
        b.restored,
        b.added,
        b.refreshed,
        b.refused_allowlisted,
        b.refused_full,
        b.evicted,
        b.expired,
        b.pending_below_threshold,
        b.events_dropped_ring_full
    )?;
    for (host, reason) in &b.hosts {
        writeln!(f, "  banned {host} ({reason})")?;
    }
    Ok(())
}

/// Only printed once a reload was tried, so runs without SIGHUP stay quiet.
fn write_reloads_line(f: &mut fmt::Formatter<'_>, r: ReloadCounts) -> fmt::Result {
    if r != ReloadCounts::default() {
        writeln!(f, "config reloads: {} applied, {} failed", r.ok, r.failed)?;
    }
    Ok(())
}
