//! What DPDK telemetry shows (`/btblocker/stats`, `/btblocker/bans`): a small
//! immutable view the control loop publishes by pointer swap, every stats
//! interval and after each operator command. DPDK's telemetry thread only
//! loads it: it never waits for, nor touches, the control loop's state.
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::ban::keeper::BanSummary;
use crate::ban::{BanEntry, BanKey};
use crate::control::report::RunSummary;

/// `rte_tel_data` holds at most this many array entries (RTE_TEL_MAX_ARRAY_ENTRIES).
pub const MAX_TELEMETRY_BANS: usize = 512;
/// DPDK writes a telemetry reply into a 16 KiB buffer and silently leaves
/// out entries that do not fit; stay below it (JSON quoting and commas
/// included) so what is shown is a clean prefix.
const MAX_TELEMETRY_BAN_BYTES: usize = 15 * 1024;

/// The view the telemetry callbacks read. Empty until the first publish.
pub static TELEMETRY: ArcSwapOption<TelemetryView> = ArcSwapOption::const_empty();

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TelemetryView {
    /// `/btblocker/stats`: name → value, in this order.
    pub stats: Vec<(&'static str, u64)>,
    /// `/btblocker/bans`: "IP reason expires_unix_ms" (0 for a static ban),
    /// sorted by address, at most [`MAX_TELEMETRY_BANS`].
    pub bans: Vec<String>,
}

/// `/btblocker/stats` from the latest published view, entry by entry until
/// `visit` says stop (nothing before the first publish). Runs on DPDK's
/// telemetry thread: a pointer load, never the ban table.
pub fn visit_stats(visit: &mut (dyn FnMut(&str, u64) -> bool + '_)) {
    if let Some(view) = TELEMETRY.load().as_ref() {
        for &(name, value) in &view.stats {
            if !visit(name, value) {
                break;
            }
        }
    }
}

/// `/btblocker/bans` from the latest published view, as [`visit_stats`].
pub fn visit_bans(visit: &mut (dyn FnMut(&str) -> bool + '_)) {
    if let Some(view) = TELEMETRY.load().as_ref() {
        for line in &view.bans {
            if !visit(line) {
                break;
            }
        }
    }
}

/// The stats dictionary from the run's counters and the ban totals.
pub fn stats(run: &RunSummary, bans: &BanSummary) -> Vec<(&'static str, u64)> {
    let sum = |f: fn(&crate::control::report::Traffic) -> u64| -> u64 {
        run.ports.iter().map(|p| f(&p.traffic)).sum()
    };
    let dpi = &run.dpi;
    vec![
        ("rx_packets", sum(|t| t.rx_packets)),
        ("tx_packets", sum(|t| t.tx_packets)),
        ("dropped_packets", sum(|t| t.dropped)),
        ("dropped_banned_host", run.enforcement.dropped_banned_host),
        (
            "dropped_bittorrent_flow",
            run.enforcement.dropped_bittorrent_flow,
        ),
        (
            "flows_active",
            dpi.flows_created
                .saturating_sub(dpi.flows_expired)
                .saturating_sub(dpi.flows_evicted),
        ),
        ("flows_created", dpi.flows_created),
        ("detections", dpi.flows_bittorrent),
        ("bans_active", bans.active as u64),
        ("bans_added", bans.added),
        ("bans_expired", bans.expired),
        ("bans_refused", bans.refused_allowlisted + bans.refused_full),
        ("generation", bans.generation),
    ]
}

/// One `/btblocker/bans` entry per ban, as many as fit.
pub fn ban_lines(bans: &[(BanKey, BanEntry)]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut bytes = 0;
    for (key, e) in bans.iter().take(MAX_TELEMETRY_BANS) {
        let expires = if e.is_static { 0 } else { e.expires_at };
        let line = format!("{key} {} {expires}", e.reason);
        bytes += line.len() + 3;
        if bytes > MAX_TELEMETRY_BAN_BYTES {
            break;
        }
        lines.push(line);
    }
    lines
}

pub fn publish(view: TelemetryView) {
    TELEMETRY.store(Some(Arc::new(view)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(reason: &str, expires_at: u64, is_static: bool) -> BanEntry {
        BanEntry {
            expires_at,
            reason: reason.into(),
            first_seen: 1,
            last_seen: 1,
            hits: 1,
            is_static,
        }
    }

    #[test]
    fn ban_lines_name_ip_reason_and_expiry() {
        let bans = [
            ("10.0.0.1".parse().unwrap(), entry("dht", 1234, false)),
            (
                "2001:db8::1".parse().unwrap(),
                entry("denylist", u64::MAX, true),
            ),
        ];
        assert_eq!(
            ban_lines(&bans),
            ["10.0.0.1 dht 1234", "2001:db8::1 denylist 0"]
        );
    }

    #[test]
    fn ban_lines_stop_at_what_dpdk_telemetry_holds() {
        let many: Vec<(BanKey, BanEntry)> = (0..2000u32)
            .map(|i| {
                (
                    BanKey::from(std::net::Ipv4Addr::from(i)),
                    entry("x", 1, false),
                )
            })
            .collect();
        assert_eq!(ban_lines(&many).len(), MAX_TELEMETRY_BANS);
        let long: Vec<(BanKey, BanEntry)> = (0..2000u32)
            .map(|i| {
                let ip = std::net::Ipv6Addr::from(u128::MAX - u128::from(i));
                (
                    BanKey::from(ip),
                    entry("peer_wire_handshake", u64::MAX - 1, false),
                )
            })
            .collect();
        let lines = ban_lines(&long);
        let bytes: usize = lines.iter().map(|l| l.len() + 3).sum();
        assert!(bytes <= MAX_TELEMETRY_BAN_BYTES && lines.len() < MAX_TELEMETRY_BANS);
        assert_eq!(lines.len(), MAX_TELEMETRY_BAN_BYTES / (lines[0].len() + 3));
    }
}
