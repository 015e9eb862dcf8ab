//! YAML configuration: schema, defaults, validation with key paths and lines.
//!
//! [`load_file`] (or [`from_str`]) reads the whole file into a [`Config`],
//! with every default filled in and every rule checked, before anything is
//! started: a typo must stop `btblocker run` (and `check-config`) rather
//! than leave a port or a ban rule silently at its default.
//!
//! # Schema
//!
//! The sections below; any other key, at any level, is an error. Every
//! [`ConfigError`] names the key path and the line, e.g. `eal.memroy_mb:
//! unknown key, … (line 3)` or `ports[0].device: required (line 5)`.
//!
//! ```yaml
//! eal:                      # optional section
//!   lcores: "0@0,1@1,2@1"   # optional raw EAL --lcores map; must contain the
//!                           #   control and every worker lcore. Default: none,
//!                           #   `-l <control>,<workers>` is passed instead.
//!   memory_mb: 512          # default 512, >= 64 (EAL -m)
//!   hugepages: true         # default true; false passes --no-huge
//!   file_prefix: btblocker  # default "btblocker", [A-Za-z0-9_-]+
//!   vdevs: []               # extra --vdev strings, default []
//!   pci_allow: []           # PCI addresses (DDDD:BB:DD.F or BB:DD.F) passed
//!                           #   with -a, default []
//!   extra_args: []          # appended verbatim to the EAL argv, default []
//! ports:                    # required, 1 to 8 entries
//!   - name: wan             # required, unique, non-empty
//!     device: 0000:03:00.0  # required, unique: a PCI address, or a vdev
//!                           #   `<driver>[,key=value…]` whose driver is
//!                           #   net_*, eth_* or virtio_user<N>
//!     role: outside         # required: inside | outside
//!     rx_queues: 1          # default and only allowed value: the number of
//!     tx_queues: 1          #   worker lcores (one RX and one TX queue each)
//!     rx_descriptors: 1024  # default 1024, power of two in 64..=16384
//!     tx_descriptors: 1024  # default 1024, power of two in 64..=16384
//!     peer: lan             # port that this port's packets leave by in
//!                           #   inline mode. Default: with 1 port, itself
//!                           #   (one-armed); with 2, the other port; with
//!                           #   more, required in inline mode (itself in
//!                           #   monitor mode). Peers must be mutual.
//! pipeline:                 # optional section
//!   mode: inline            # default inline; inline | monitor
//!   burst_size: 32          # default 32, 1..=512
//!   worker_lcores: [1]      # default [1]; non-empty, unique, each < 128
//!   control_lcore: 0        # default 0, < 128, not a worker
//!   mbuf_pool_size: 8191    # default 8191, >= 1024
//!   mbuf_cache_size: 256    # default 256, <= 512 (so always <= DPDK's limit
//!                           #   of mbuf_pool_size / 1.5)
//!   stats_interval_ms: 1000 # default 1000, >= 100
//!   stop_after_idle_ms: 500 # optional, > 0: stop once every RX queue has
//!                           #   been idle this long (finite inputs)
//! flows:                    # optional section: each worker's flow table
//!   capacity: 65536         # default 65536 flows per worker, 64..=2^26;
//!                           #   allocated once at start-up
//!   tcp_idle_timeout_s: 300 # default 300, 1..=86400
//!   udp_idle_timeout_s: 60  # default 60, 1..=86400
//!   dpi_pool: 65536         # default = capacity, 1..=capacity: undecided
//!                           #   flows per worker DPI inspects at once (296 B
//!                           #   of detector state each, allocated at start-up;
//!                           #   a flow is 128 B). A flow whose first payload
//!                           #   finds the pool full is never inspected: it
//!                           #   stays undecided, counted in
//!                           #   btblocker_dpi_pool_exhausted_total
//! dpi:                      # optional section
//!   max_payload_packets: 8  # default 8, 1..=64: payload packets inspected per
//!                           #   direction before a flow is judged clean (a
//!                           #   flow showing the MSE envelope gets 48, to
//!                           #   measure its message lengths)
//!   known_peer_capacity: 65536 # default 65536 per worker, 0 disables the
//!                           #   known-peer cache
//!   known_peer_ttl_s: 1800  # default 1800, 1..=604800
//!   learn_advertised_peers: true # default true: peers named in DHT values
//!                           #   and tracker replies corroborate weaker evidence
//!   disabled_detectors: []  # detector names to switch off, e.g. [mse, utp]
//! ban:                      # optional section
//!   ttl_s: 18000            # default 18000 (5 h): how long a ban lasts
//!   target: inside          # default inside (the subscriber); outside | both
//!   action: ban_host        # default ban_host: drop all traffic of a banned
//!                           #   host, both directions; drop_flow: drop only
//!                           #   the flows judged BitTorrent; log_only: drop
//!                           #   nothing, record bans (first rollout)
//!   threshold: 2            # default 2 detections of a host ...
//!   window_s: 300           # ... within this many seconds (default 300)
//!   definitive_bans_at_once: true # default true: one definitive detection bans
//!   allowlist: []           # CIDRs or addresses never banned (refusals counted)
//!   denylist: []            # addresses banned from start-up, never expiring
//!   max_entries: 1000000    # default 1000000
//!   when_full: evict_oldest # default evict_oldest (earliest expiry); refuse
//!   persist: true           # default true; false keeps no state file
//!   state_file: /var/lib/btblocker/bans.jsonl # default; journal + compaction
//!   flush_ms: 1000          # default 1000, 10..=60000: longest a new ban
//!                           #   waits for fsync (what kill -9 can lose)
//! log:                      # optional section: the detection log
//!   path: /var/log/btblocker/detections.jsonl # default none (no log): one
//!                           #   JSON line per detection (time, worker, port,
//!                           #   5-tuple, detector, confidence, reasons,
//!                           #   action, expiry)
//!   max_bytes: 67108864     # default 64 MiB, >= 1: rotate to FILE.1, FILE.2, ...
//!   keep: 5                 # default 5 rotated files, 0..=1000
//!   payload_bytes: 0        # default 0, 0..=64: the first N bytes of the
//!                           #   deciding packet's L4 payload, as payload_hex
//! metrics:                  # optional section: the Prometheus endpoint
//!   enabled: true           # default true
//!   listen: 127.0.0.1:9977  # default 127.0.0.1:9977; GET /metrics
//! control:                  # optional section: operator commands
//!   enabled: true           # default true
//!   socket: /run/btblocker/control.sock # default; `btblocker bans …` talks
//!                           #   to the daemon here (mode 0600); null: none
//! networks:                 # optional section
//!   inside: []              # CIDRs of the ISP's customers; when empty, a
//!                           #   packet's side is its arrival port's role
//! bgp:                      # optional section: bans as routes via gobgpd
//!   enabled: false          # default false (absent section: no BGP)
//!   api_socket: /run/btblocker/gobgp.sock # gobgpd --api-hosts unix://<path>
//!   local_asn: 65001        # required when enabled: our AS
//!   box_id: 1               # required when enabled, > 0: large community
//!                           #   local_asn:2:box_id tags our routes
//!   next_hop_v4: 192.0.2.1  # discard next hop; required if announce_v4
//!   next_hop_v6: "100::1"   # required if announce_v6; "::" refused
//!   communities: ["65535:666", "no-export"] # default: BLACKHOLE + no-export
//!   announce_v4: true       # default true
//!   announce_v6: true       # default true
//!   flowspec: off           # off (default) | beside | instead
//!   flowspec_action: discard # discard (default) | rate_limit
//!   flowspec_rate_bps: 1000 # bytes/s, required with rate_limit
//!   import: false           # default false: learn other boxes' bans
//!   import_community: "65535:666" # default: the first of communities
//!   import_max_ttl_s: 86400 # default 86400: cap on an imported expiry
//!   on_session_loss: keep   # keep (default) | drop imported bans
//!   withdraw_on_shutdown: true # default true
//!   never_announce: []      # CIDRs never announced (still banned locally)
//!   max_announced: 100000   # default 100000: beyond it bans wait for room (counted)
//!   queue_capacity: 65536   # default 65536: control loop -> BGP thread
//! ```
//!
//! # Reloading
//!
//! A running `btblocker run` re-reads its file on SIGHUP, validates it whole
//! with `load_file`, and applies what it can without touching the ports
//! ([`crate::control::reload`] lists which keys apply live and which need a
//! restart).
//!
//! # Adding a section
//!
//! One module holding the section's raw serde struct (`deny_unknown_fields`,
//! `Spanned` fields) and a `validate` function turning it into the public
//! type; one field in `raw::RawConfig`; one call in `validate`.
use std::path::Path;

mod ban;
mod bgp;
pub use bgp::{
    community_text, parse_community, BgpConfig, FlowSpecAction, FlowSpecMode, SessionLoss,
};
mod dpi;
mod eal;
mod eal_args;
mod operator;
pub use ban::{BanAction, BanConfig, BanTarget, NetworksConfig};
pub use operator::{OperatorConfig, DEFAULT_SOCKET};
mod field;
mod flows;
mod lcores;
mod log;
mod names;
pub(crate) use names::is_file_prefix;
mod pipeline;
mod ports;
mod raw;
mod yaml;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub eal: EalConfig,
    pub ports: Vec<PortConfig>,
    pub pipeline: PipelineConfig,
    pub flows: FlowsConfig,
    pub dpi: crate::dpi::DpiConfig,
    pub ban: BanConfig,
    pub networks: NetworksConfig,
    pub log: crate::ban::detection_log::DetectionLogConfig,
    pub metrics: MetricsConfig,
    /// The operator socket (YAML section `control`).
    pub operator: OperatorConfig,
    /// `None`: no `bgp:` section, or `enabled: false` (no BGP at all).
    pub bgp: Option<BgpConfig>,
}

/// Each worker's flow table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowsConfig {
    /// Flows per worker (rounded up to the table's bucket geometry).
    pub capacity: usize,
    pub tcp_idle_timeout_s: u64,
    pub udp_idle_timeout_s: u64,
    /// Undecided flows per worker that DPI can inspect at once: entries of
    /// the worker's DPI state pool (at most `capacity` are used).
    pub dpi_pool: usize,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            capacity: 1 << 16,
            tcp_idle_timeout_s: 300,
            udp_idle_timeout_s: 60,
            dpi_pool: 1 << 16,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EalConfig {
    /// Raw EAL `--lcores` map (e.g. "0@0,1@1,2@1"); when absent, `-l` is built
    /// from the control and worker lcores.
    pub lcores: Option<String>,
    pub memory_mb: u32,
    pub hugepages: bool,
    /// Always `Some` after validation (default "btblocker").
    pub file_prefix: Option<String>,
    /// Extra `--vdev` strings not already named by a port's `device`.
    pub vdevs: Vec<String>,
    /// PCI addresses to allow (`-a`); ports with a PCI `device` are added too.
    pub pci_allow: Vec<String>,
    pub extra_args: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortRole {
    Inside,
    Outside,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    pub name: String,
    /// A PCI address (0000:03:00.0) or a vdev string (net_pcap0,rx_pcap=…).
    pub device: String,
    pub role: PortRole,
    /// One RX and one TX queue per worker: equal to the worker count.
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// Index in `Config::ports` of the port this port's packets are forwarded
    /// to in inline mode (itself for a one-armed port). Always mutual.
    pub peer: usize,
}

impl PortConfig {
    /// True when `device` names a PCI device rather than a vdev.
    pub fn is_pci(&self) -> bool {
        names::PciAddress::parse(&self.device).is_some()
    }

    /// The name DPDK knows the device by: the PCI address, or for a vdev the
    /// driver instance before the first comma (`net_pcap0`).
    pub fn dpdk_name(&self) -> &str {
        names::dpdk_name(&self.device)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bump in the wire: forward what passes, drop what is banned.
    Inline,
    /// Mirror port: inspect, never transmit.
    Monitor,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    pub mode: Mode,
    pub burst_size: u16,
    pub worker_lcores: Vec<u32>,
    pub control_lcore: u32,
    pub mbuf_pool_size: u32,
    pub mbuf_cache_size: u32,
    pub stats_interval_ms: u64,
    /// End the run once every RX queue has been idle this long (finite inputs).
    pub stop_after_idle_ms: Option<u64>,
}

/// Why a config was refused. Every variant but `Io` and `Empty` names the
/// line; `Missing`, `UnknownKey` and `Invalid` also name the key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The document holds nothing (only whitespace, comments or `null`).
    #[error("the config is empty: expected a mapping with at least a `ports` list")]
    Empty,
    /// The top level is a list or a scalar instead of a mapping of sections.
    #[error("the config must be a mapping of sections ({}){}", raw::SECTIONS.join(", "), at_line(.line))]
    NotAMapping { line: Option<u64> },
    /// The text is not well-formed YAML.
    #[error("yaml syntax error: {message}{}", at_line(.line))]
    Syntax { message: String, line: Option<u64> },
    /// A key the schema does not have (a typo, or a section not supported yet).
    #[error("{key}: unknown key, expected one of: {expected}{}", at_line(.line))]
    UnknownKey {
        key: String,
        expected: String,
        line: Option<u64>,
    },
    /// A required key is absent; `line` is where its enclosing mapping starts.
    #[error("{key}: required{}", at_line(.line))]
    Missing { key: String, line: Option<u64> },
    /// A key is present but its value breaks a rule of the schema.
    #[error("{key}: {problem}{}", at_line(.line))]
    Invalid {
        key: String,
        problem: String,
        line: Option<u64>,
    },
}

/// " (line N)", or nothing when the parser could not place the problem.
fn at_line(line: &Option<u64>) -> String {
    line.map(|n| format!(" (line {n})")).unwrap_or_default()
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    from_str(&text)
}

pub fn from_str(text: &str) -> Result<Config, ConfigError> {
    let raw = yaml::parse(text)?;
    validate(raw)
}

/// Sections are validated in dependency order: the pipeline fixes the lcores
/// that `eal.lcores` must contain and the queue count every port must use.
fn validate(raw: serde_saphyr::Spanned<raw::RawConfig>) -> Result<Config, ConfigError> {
    let root_line = field::line(&raw);
    let raw = raw.value;
    let pipeline = pipeline::validate(raw.pipeline)?;
    let eal = eal::validate(raw.eal, &pipeline)?;
    let ports = ports::validate(raw.ports, root_line, &eal, &pipeline)?;
    let flows = flows::validate(raw.flows)?;
    let dpi = dpi::validate(raw.dpi)?;
    let ban = ban::validate(raw.ban)?;
    let networks = ban::validate_networks(raw.networks)?;
    let log = log::validate(raw.log)?;
    let metrics = validate_metrics(raw.metrics)?;
    let operator = operator::validate(raw.control)?;
    let bgp = bgp::validate(raw.bgp)?;
    Ok(Config {
        eal,
        ports,
        pipeline,
        flows,
        dpi,
        ban,
        networks,
        log,
        metrics,
        operator,
        bgp,
    })
}

/// The Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `None`: no endpoint (`metrics.enabled: false`).
    pub listen: Option<std::net::SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9977))),
        }
    }
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    enabled: Option<bool>,
    listen: Option<serde_saphyr::Spanned<String>>,
}

fn validate_metrics(
    raw: Option<serde_saphyr::Spanned<RawMetrics>>,
) -> Result<MetricsConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();
    if raw.enabled == Some(false) {
        return Ok(MetricsConfig { listen: None });
    }
    match raw.listen {
        None => Ok(MetricsConfig::default()),
        Some(l) => match l.value.parse() {
            Ok(addr) => Ok(MetricsConfig { listen: Some(addr) }),
            Err(_) => Err(field::invalid(
                "metrics.listen",
                &l,
                format!(
                    "{:?} is not an address:port such as 127.0.0.1:9977",
                    l.value
                ),
            )),
        },
    }
}

#[cfg(test)]
mod tests;
