//! Prometheus export of what the control thread already gathers each stats
//! interval: a [`RunSummary`] (ports, workers, parsing, flows, enforcement)
//! and a [`BanSummary`] (the ban table).
//!
//! Only the control thread calls [`Metrics::publish`]: `metrics` resolves
//! every key in a shared registry under a lock and allocates label values, so
//! workers never touch the facade. They bump their own counters, which the
//! summaries already total; here those totals become `Counter::absolute`
//! values (cumulative since start, as Prometheus expects of `_total`) and
//! `Gauge::set` values.
//!
//! [`DESCRIPTIONS`] lists every metric exported, with its kind, unit and
//! help text. Each name is spelled once, in its constant (such as
//! [`RX_PACKETS`]): the Grafana dashboard (`dashboards/`) and the testbed
//! checks (`scripts/`) query these names, so renaming one breaks them.
use std::net::SocketAddr;
use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, gauge, Unit};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

use crate::ban::keeper::BanSummary;
use crate::control::report::RunSummary;
use crate::dpi::DetectorId;
use crate::wire::ParseError;

// Per port (`port` = configured port name).
pub const RX_PACKETS: &str = "btblocker_rx_packets_total";
pub const RX_BYTES: &str = "btblocker_rx_bytes_total";
pub const TX_PACKETS: &str = "btblocker_tx_packets_total";
pub const TX_BYTES: &str = "btblocker_tx_bytes_total";
pub const PORT_DROPPED: &str = "btblocker_port_dropped_packets_total";
pub const PORT_TX_FAILED: &str = "btblocker_port_tx_failed_packets_total";
pub const PORT_HW_RX_PACKETS: &str = "btblocker_port_hw_rx_packets_total";
pub const PORT_HW_TX_PACKETS: &str = "btblocker_port_hw_tx_packets_total";
pub const PORT_IMISSED: &str = "btblocker_port_imissed_total";
pub const PORT_RX_NOMBUF: &str = "btblocker_port_rx_nombuf_total";
pub const PORT_IERRORS: &str = "btblocker_port_ierrors_total";
pub const PORT_OERRORS: &str = "btblocker_port_oerrors_total";
// Drops by cause, all ports together.
pub const DROPPED: &str = "btblocker_dropped_packets_total";
// Per worker (`worker` = lcore id).
pub const WORKER_RX_PACKETS: &str = "btblocker_worker_rx_packets_total";
pub const WORKER_RX_BYTES: &str = "btblocker_worker_rx_bytes_total";
pub const WORKER_TX_PACKETS: &str = "btblocker_worker_tx_packets_total";
pub const WORKER_DROPPED: &str = "btblocker_worker_dropped_packets_total";
// Parsing.
pub const PACKETS_PARSED: &str = "btblocker_packets_parsed_total";
pub const PARSE_ERRORS: &str = "btblocker_parse_errors_total";
// Flows and DPI.
pub const FLOWS_ACTIVE: &str = "btblocker_flows_active";
pub const FLOWS_CREATED: &str = "btblocker_flows_created_total";
pub const FLOWS_EXPIRED: &str = "btblocker_flows_expired_total";
pub const FLOWS_EVICTED: &str = "btblocker_flows_evicted_total";
pub const FLOWS_JUDGED: &str = "btblocker_flows_judged_total";
pub const PAYLOAD_INSPECTED: &str = "btblocker_payload_packets_inspected_total";
pub const DPI_POOL_EXHAUSTED: &str = "btblocker_dpi_pool_exhausted_total";
pub const FLOW_LOOKAHEAD_BURSTS: &str = "btblocker_flow_lookahead_bursts_total";
pub const DETECTIONS: &str = "btblocker_detections_total";
pub const DETECTION_EVENTS_SENT: &str = "btblocker_detection_events_sent_total";
// BGP (issue 14): the announcer thread and imports.
pub const BGP_ANNOUNCED: &str = "btblocker_bgp_announced_total";
pub const BGP_WITHDRAWN: &str = "btblocker_bgp_withdrawn_total";
pub const BGP_IMPORTED: &str = "btblocker_bgp_imported_total";
pub const BGP_IMPORT_WITHDRAWN: &str = "btblocker_bgp_import_withdrawn_total";
pub const BGP_QUEUE_DEPTH: &str = "btblocker_bgp_queue_depth";
pub const BGP_QUEUE_FULL: &str = "btblocker_bgp_queue_full_total";
pub const BGP_ERRORS: &str = "btblocker_bgp_errors_total";
pub const BGP_SESSION_UP: &str = "btblocker_bgp_session_up";
pub const BGP_ANNOUNCED_ROUTES: &str = "btblocker_bgp_announced_routes";
pub const BGP_RIB_DIFFERENCE: &str = "btblocker_bgp_rib_difference";
pub const BGP_RECONCILES: &str = "btblocker_bgp_reconciles_total";
pub const BGP_REFUSED: &str = "btblocker_bgp_refused_total";
pub const BGP_WAITING: &str = "btblocker_bgp_waiting_bans";
// Bans (control thread).
pub const DETECTION_EVENTS_RECEIVED: &str = "btblocker_detection_events_received_total";
pub const DETECTIONS_BELOW_THRESHOLD: &str = "btblocker_detections_below_threshold_total";
pub const RING_OVERFLOWS: &str = "btblocker_ring_overflows_total";
pub const BANS_ACTIVE: &str = "btblocker_bans_active";
pub const BANS_RESTORED: &str = "btblocker_bans_restored";
pub const BANS_ADDED: &str = "btblocker_bans_added_total";
pub const BANS_REFRESHED: &str = "btblocker_bans_refreshed_total";
pub const BANS_EXPIRED: &str = "btblocker_bans_expired_total";
pub const BANS_EVICTED: &str = "btblocker_bans_evicted_total";
pub const BANS_REFUSED: &str = "btblocker_bans_refused_total";
pub const SNAPSHOT_GENERATION: &str = "btblocker_snapshot_generation";
pub const SNAPSHOT_PUBLISH: &str = "btblocker_snapshot_publish_seconds";
// The run itself.
pub const UPTIME: &str = "btblocker_uptime_seconds";
pub const CONFIG_RELOADS: &str = "btblocker_config_reloads_total";

/// Whether a metric only grows (rendered `counter`) or goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Every metric this module exports: name, kind, unit, help text. Described
/// to the recorder once at install, so `# HELP`/`# TYPE` lines are there
/// from the first scrape.
pub const DESCRIPTIONS: &[(&str, Kind, Unit, &str)] = &[
    (RX_PACKETS, Kind::Counter, Unit::Count, "Packets received on the port, by port and role (inside/outside)."),
    (RX_BYTES, Kind::Counter, Unit::Bytes, "Bytes received on the port."),
    (TX_PACKETS, Kind::Counter, Unit::Count, "Packets sent on the port."),
    (TX_BYTES, Kind::Counter, Unit::Bytes, "Bytes sent on the port."),
    (PORT_DROPPED, Kind::Counter, Unit::Count, "Packets received on the port and dropped by policy (banned host or BitTorrent flow)."),
    (PORT_TX_FAILED, Kind::Counter, Unit::Count, "Packets the port's TX queue refused (ring full) and that were freed."),
    (PORT_HW_RX_PACKETS, Kind::Counter, Unit::Count, "Packets the NIC received (rte_eth_stats ipackets)."),
    (PORT_HW_TX_PACKETS, Kind::Counter, Unit::Count, "Packets the NIC sent (rte_eth_stats opackets)."),
    (PORT_IMISSED, Kind::Counter, Unit::Count, "Packets the NIC dropped because the RX queue was full (imissed): workers too slow."),
    (PORT_RX_NOMBUF, Kind::Counter, Unit::Count, "RX mbuf allocation failures (rx_nombuf): mempool exhausted."),
    (PORT_IERRORS, Kind::Counter, Unit::Count, "Erroneous packets received by the NIC (ierrors)."),
    (PORT_OERRORS, Kind::Counter, Unit::Count, "Packets the NIC failed to send (oerrors)."),
    (DROPPED, Kind::Counter, Unit::Count, "Packets dropped, all ports, by reason (banned_host, bittorrent_flow, tx_full)."),
    (WORKER_RX_PACKETS, Kind::Counter, Unit::Count, "Packets received by the worker (lcore), all ports."),
    (WORKER_RX_BYTES, Kind::Counter, Unit::Bytes, "Bytes received by the worker (lcore), all ports."),
    (WORKER_TX_PACKETS, Kind::Counter, Unit::Count, "Packets sent by the worker (lcore), all ports."),
    (WORKER_DROPPED, Kind::Counter, Unit::Count, "Packets dropped by policy in the worker (lcore)."),
    (PACKETS_PARSED, Kind::Counter, Unit::Count, "Packets parsed, by what they carry (ipv4, ipv6, vlan, tcp, udp, other_l4, fragment, non_ip); a packet counts under several kinds."),
    (PARSE_ERRORS, Kind::Counter, Unit::Count, "Malformed packets (counted and forwarded), by reason."),
    (FLOWS_ACTIVE, Kind::Gauge, Unit::Count, "Flows in the flow tables now (created - expired - evicted)."),
    (FLOWS_CREATED, Kind::Counter, Unit::Count, "Flows created."),
    (FLOWS_EXPIRED, Kind::Counter, Unit::Count, "Flows removed after their idle timeout."),
    (FLOWS_EVICTED, Kind::Counter, Unit::Count, "Flows evicted to make room in a full flow table."),
    (FLOWS_JUDGED, Kind::Counter, Unit::Count, "Flows DPI reached a verdict on, by verdict (clean, bittorrent)."),
    (PAYLOAD_INSPECTED, Kind::Counter, Unit::Count, "Payload packets DPI inspected."),
    (DPI_POOL_EXHAUSTED, Kind::Counter, Unit::Count, "Flows whose first payload found the DPI pool full (flows.dpi_pool): never inspected, left undecided."),
    (FLOW_LOOKAHEAD_BURSTS, Kind::Counter, Unit::Count, "Bursts whose flows were looked up ahead (bucket lines, then slots) before their first packet: the live flows outgrew the caches."),
    (DETECTIONS, Kind::Counter, Unit::Count, "Flows judged BitTorrent, by the deciding detector."),
    (DETECTION_EVENTS_SENT, Kind::Counter, Unit::Count, "Detection events workers sent to the control thread."),
    (DETECTION_EVENTS_RECEIVED, Kind::Counter, Unit::Count, "Detection events the control thread received."),
    (DETECTIONS_BELOW_THRESHOLD, Kind::Counter, Unit::Count, "Detections that did not (yet) reach the ban threshold."),
    (RING_OVERFLOWS, Kind::Counter, Unit::Count, "Detection events lost because a worker's ring was full."),
    (BANS_ACTIVE, Kind::Gauge, Unit::Count, "Hosts banned now."),
    (BANS_RESTORED, Kind::Gauge, Unit::Count, "Bans restored from the state file at start."),
    (BANS_ADDED, Kind::Counter, Unit::Count, "Bans added."),
    (BANS_REFRESHED, Kind::Counter, Unit::Count, "Bans whose expiry a new detection pushed back."),
    (BANS_EXPIRED, Kind::Counter, Unit::Count, "Bans removed when their TTL ran out."),
    (BANS_EVICTED, Kind::Counter, Unit::Count, "Bans evicted to make room in a full ban table."),
    (BANS_REFUSED, Kind::Counter, Unit::Count, "Bans refused, by reason (allowlisted, full)."),
    (SNAPSHOT_GENERATION, Kind::Gauge, Unit::Count, "Generation of the ban snapshot the workers read."),
    (SNAPSHOT_PUBLISH, Kind::Gauge, Unit::Seconds, "How long the last ban snapshot publication took."),
    (UPTIME, Kind::Gauge, Unit::Seconds, "Seconds since the run started."),
    (CONFIG_RELOADS, Kind::Counter, Unit::Count, "SIGHUP config reloads, by result (ok: applied, failed: refused, old config kept)."),
    (BGP_ANNOUNCED, Kind::Counter, Unit::Count, "Routes announced to gobgpd (re-announcements with a new expiry included)."),
    (BGP_WITHDRAWN, Kind::Counter, Unit::Count, "Routes withdrawn from gobgpd."),
    (BGP_IMPORTED, Kind::Counter, Unit::Count, "Bans imported from other boxes over BGP."),
    (BGP_IMPORT_WITHDRAWN, Kind::Counter, Unit::Count, "Imported bans lifted by a withdrawal or a session loss."),
    (BGP_QUEUE_DEPTH, Kind::Gauge, Unit::Count, "Commands waiting in the control loop -> BGP thread queue."),
    (BGP_QUEUE_FULL, Kind::Counter, Unit::Count, "Commands that found the BGP queue full (the whole set is replayed later)."),
    (BGP_ERRORS, Kind::Counter, Unit::Count, "Failed calls to gobgpd (connects included)."),
    (BGP_SESSION_UP, Kind::Gauge, Unit::Count, "1 when gobgpd's API answers and it has an established peer."),
    (BGP_ANNOUNCED_ROUTES, Kind::Gauge, Unit::Count, "Routes of ours gobgpd holds."),
    (BGP_RIB_DIFFERENCE, Kind::Gauge, Unit::Count, "Routes the table wants but gobgpd lacks, plus routes it holds but the table does not want."),
    (BGP_RECONCILES, Kind::Counter, Unit::Count, "Reconciliations (RIB listed and made equal to the table)."),
    (BGP_REFUSED, Kind::Counter, Unit::Count, "Bans bgp.max_announced kept from being announced, each counted once as it starts to wait."),
    (BGP_WAITING, Kind::Gauge, Unit::Count, "Bans waiting for room under bgp.max_announced: each is announced as soon as a withdrawal makes room."),
];

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen for Prometheus scrapes on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("a metrics recorder is already installed in this process")]
    AlreadyInstalled,
    #[error("cannot start the Prometheus exporter thread: {0}")]
    Runtime(String),
    #[error("cannot build the Prometheus exporter: {0}")]
    Exporter(String),
}

impl MetricsError {
    fn from_build(e: BuildError, listen: Option<SocketAddr>) -> Self {
        match (e, listen) {
            (BuildError::FailedToCreateHTTPListener(reason), Some(addr)) => {
                MetricsError::Listen { addr, reason }
            }
            (BuildError::FailedToSetGlobalRecorder(_), _) => MetricsError::AlreadyInstalled,
            (BuildError::FailedToCreateRuntime(reason), _) => MetricsError::Runtime(reason),
            (other, _) => MetricsError::Exporter(other.to_string()),
        }
    }
}

/// The exporter, installed. Holds nothing: the recorder is process-global;
/// the type marks that descriptions were registered and gives `publish` a
/// home.
#[derive(Debug)]
pub struct Metrics {
    _installed: (),
}

impl Metrics {
    /// Installs the global recorder and serves `GET /metrics` on `listen`
    /// from the exporter's own thread (a current-thread tokio runtime).
    /// Call it from the control thread so that thread inherits the control
    /// core's affinity, never a worker's.
    pub fn install(listen: SocketAddr) -> Result<Metrics, MetricsError> {
        PrometheusBuilder::new()
            .with_http_listener(listen)
            .install()
            .map_err(|e| MetricsError::from_build(e, Some(listen)))?;
        Ok(Metrics::describe())
    }

    /// Installs the global recorder without a listener; the caller renders
    /// the text exposition with the handle. The handle's `run_upkeep` is not
    /// needed: only counters and gauges are exported.
    pub fn install_render_only() -> Result<(Metrics, PrometheusHandle), MetricsError> {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| MetricsError::from_build(e, None))?;
        Ok((Metrics::describe(), handle))
    }

    /// Registers the descriptions with the current recorder (the global one,
    /// or a local one inside `metrics::with_local_recorder`, as tests do).
    pub fn describe() -> Metrics {
        for &(name, kind, unit, help) in DESCRIPTIONS {
            match kind {
                Kind::Counter => describe_counter!(name, unit, help),
                Kind::Gauge => describe_gauge!(name, unit, help),
            }
        }
        Metrics { _installed: () }
    }

    /// Sets every series from this interval's summaries. `bans` falls back to
    /// `run.bans`; without either, ban series are left as they were.
    /// `publish_latency` is the last ban snapshot publication's duration.
    pub fn publish(
        &self,
        run: &RunSummary,
        bans: Option<&BanSummary>,
        publish_latency: Option<Duration>,
    ) {
        publish_run(run);
        if let Some(b) = bans.or(run.bans.as_ref()) {
            publish_bans(b);
        }
        if let Some(d) = publish_latency {
            gauge!(SNAPSHOT_PUBLISH).set(d.as_secs_f64());
        }
    }
}

impl Metrics {
    /// Sets the `btblocker_bgp_*` series.
    pub fn publish_bgp(&self, c: &crate::bgp::BgpCounts) {
        counter!(BGP_ANNOUNCED).absolute(c.announced);
        counter!(BGP_WITHDRAWN).absolute(c.withdrawn);
        counter!(BGP_IMPORTED).absolute(c.imported);
        counter!(BGP_IMPORT_WITHDRAWN).absolute(c.import_withdrawn);
        gauge!(BGP_QUEUE_DEPTH).set(c.queue_depth as f64);
        counter!(BGP_QUEUE_FULL).absolute(c.queue_full);
        counter!(BGP_ERRORS).absolute(c.errors);
        gauge!(BGP_SESSION_UP).set(c.session_up as f64);
        gauge!(BGP_ANNOUNCED_ROUTES).set(c.announced_routes as f64);
        gauge!(BGP_RIB_DIFFERENCE).set(c.rib_difference as f64);
        counter!(BGP_RECONCILES).absolute(c.reconciles);
        counter!(BGP_REFUSED).absolute(c.refused);
        gauge!(BGP_WAITING).set(c.waiting as f64);
    }
}

fn publish_run(run: &RunSummary) {
    gauge!(UPTIME).set(run.elapsed_s);
    counter!(CONFIG_RELOADS, "result" => "ok").absolute(run.config_reloads.ok);
    counter!(CONFIG_RELOADS, "result" => "failed").absolute(run.config_reloads.failed);
    let mut tx_failed_all: u64 = 0;
    for p in &run.ports {
        let t = &p.traffic;
        counter!(RX_PACKETS, "port" => p.name.clone(), "role" => p.role).absolute(t.rx_packets);
        counter!(RX_BYTES, "port" => p.name.clone()).absolute(t.rx_bytes);
        counter!(TX_PACKETS, "port" => p.name.clone()).absolute(t.tx_packets);
        counter!(TX_BYTES, "port" => p.name.clone()).absolute(t.tx_bytes);
        counter!(PORT_DROPPED, "port" => p.name.clone()).absolute(t.dropped);
        counter!(PORT_TX_FAILED, "port" => p.name.clone()).absolute(t.tx_failed);
        counter!(PORT_HW_RX_PACKETS, "port" => p.name.clone()).absolute(p.hw.ipackets);
        counter!(PORT_HW_TX_PACKETS, "port" => p.name.clone()).absolute(p.hw.opackets);
        counter!(PORT_IMISSED, "port" => p.name.clone()).absolute(p.hw.imissed);
        counter!(PORT_RX_NOMBUF, "port" => p.name.clone()).absolute(p.hw.rx_nombuf);
        counter!(PORT_IERRORS, "port" => p.name.clone()).absolute(p.hw.ierrors);
        counter!(PORT_OERRORS, "port" => p.name.clone()).absolute(p.hw.oerrors);
        tx_failed_all = tx_failed_all.saturating_add(t.tx_failed);
    }
    let e = &run.enforcement;
    counter!(DROPPED, "reason" => "banned_host").absolute(e.dropped_banned_host);
    counter!(DROPPED, "reason" => "bittorrent_flow").absolute(e.dropped_bittorrent_flow);
    counter!(DROPPED, "reason" => "tx_full").absolute(tx_failed_all);
    counter!(DETECTION_EVENTS_SENT).absolute(e.events_sent);

    for w in &run.workers {
        let worker = w.lcore.to_string();
        counter!(WORKER_RX_PACKETS, "worker" => worker.clone()).absolute(w.traffic.rx_packets);
        counter!(WORKER_RX_BYTES, "worker" => worker.clone()).absolute(w.traffic.rx_bytes);
        counter!(WORKER_TX_PACKETS, "worker" => worker.clone()).absolute(w.traffic.tx_packets);
        counter!(WORKER_DROPPED, "worker" => worker.clone()).absolute(w.traffic.dropped);
    }

    let p = &run.parse;
    for (kind, n) in [
        ("ipv4", p.ipv4),
        ("ipv6", p.ipv6),
        ("vlan", p.vlan),
        ("tcp", p.tcp),
        ("udp", p.udp),
        ("other_l4", p.other_l4),
        ("fragment", p.fragments),
        ("non_ip", p.non_ip),
    ] {
        counter!(PACKETS_PARSED, "kind" => kind).absolute(n);
    }
    // Every reason, seen or not: a series that appears only on its first
    // error makes `rate()` miss that first increase.
    for e in ParseError::ALL {
        let n = lookup(&p.malformed_by_reason, e.name());
        counter!(PARSE_ERRORS, "kind" => e.name()).absolute(n);
    }

    let d = &run.dpi;
    let gone = d.flows_expired.saturating_add(d.flows_evicted);
    gauge!(FLOWS_ACTIVE).set(d.flows_created.saturating_sub(gone) as f64);
    counter!(FLOWS_CREATED).absolute(d.flows_created);
    counter!(FLOWS_EXPIRED).absolute(d.flows_expired);
    counter!(FLOWS_EVICTED).absolute(d.flows_evicted);
    counter!(FLOWS_JUDGED, "verdict" => "clean").absolute(d.flows_clean);
    counter!(FLOWS_JUDGED, "verdict" => "bittorrent").absolute(d.flows_bittorrent);
    counter!(PAYLOAD_INSPECTED).absolute(d.payload_packets_inspected);
    counter!(DPI_POOL_EXHAUSTED).absolute(d.dpi_pool_exhausted);
    counter!(FLOW_LOOKAHEAD_BURSTS).absolute(d.flow_lookahead_bursts);
    for det in DetectorId::ALL {
        let n = lookup(&d.bittorrent_by_detector, det.name());
        counter!(DETECTIONS, "detector" => det.name()).absolute(n);
    }
}

fn publish_bans(b: &BanSummary) {
    gauge!(BANS_ACTIVE).set(b.active as f64);
    gauge!(BANS_RESTORED).set(b.restored as f64);
    counter!(BANS_ADDED).absolute(b.added);
    counter!(BANS_REFRESHED).absolute(b.refreshed);
    counter!(BANS_EXPIRED).absolute(b.expired);
    counter!(BANS_EVICTED).absolute(b.evicted);
    counter!(BANS_REFUSED, "reason" => "allowlisted").absolute(b.refused_allowlisted);
    counter!(BANS_REFUSED, "reason" => "full").absolute(b.refused_full);
    counter!(DETECTION_EVENTS_RECEIVED).absolute(b.events);
    counter!(DETECTIONS_BELOW_THRESHOLD).absolute(b.pending_below_threshold);
    counter!(RING_OVERFLOWS).absolute(b.events_dropped_ring_full);
    gauge!(SNAPSHOT_GENERATION).set(b.generation as f64);
}

/// The summaries list only reasons/detectors seen; absent means zero.
fn lookup(seen: &[(&'static str, u64)], name: &str) -> u64 {
    seen.iter().find(|(n, _)| *n == name).map_or(0, |&(_, v)| v)
}
