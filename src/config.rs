//! YAML configuration: schema, defaults, validation with key paths and lines.
//!
//! CONTRACT (used by main.rs and the DPDK runtime; keep these names/types):
//! `load_file(path) -> Result<Config, ConfigError>`, `from_str(text)`,
//! `Config::eal_args(&self) -> Vec<String>`, `ConfigError: Display` naming the
//! key path and line, e.g. `ports[1].rx_queues: must be >= 1 (line 14)`.
//! STUB: validation is filled in by the config module's owner.
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub eal: EalConfig,
    pub ports: Vec<PortConfig>,
    pub pipeline: PipelineConfig,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EalConfig {
    /// Raw EAL `--lcores` map (e.g. "0@0,1@1,2@1"); when absent, `-l` is built
    /// from the control and worker lcores.
    pub lcores: Option<String>,
    pub memory_mb: u32,
    pub hugepages: bool,
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
    /// Index of the port this port's packets are forwarded to (inline mode).
    pub peer: usize,
}

impl PortConfig {
    /// True when `device` names a PCI device rather than a vdev.
    pub fn is_pci(&self) -> bool {
        false
    }

    /// The name DPDK knows the port by: the PCI address, or the vdev name.
    pub fn dpdk_name(&self) -> &str {
        self.device.split(',').next().unwrap_or_default()
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    from_str(&text)
}

pub fn from_str(_text: &str) -> Result<Config, ConfigError> {
    Err(ConfigError::Invalid("config: not implemented yet".into()))
}

impl Config {
    /// EAL argv (without argv[0]) for `rte_eal_init`.
    pub fn eal_args(&self) -> Vec<String> {
        let p = &self.pipeline;
        let mut lc = vec![p.control_lcore.to_string()];
        lc.extend(p.worker_lcores.iter().map(|w| w.to_string()));
        let mut a = vec![
            "-l".into(),
            lc.join(","),
            "--main-lcore".into(),
            p.control_lcore.to_string(),
        ];
        a.extend(["-m".into(), self.eal.memory_mb.to_string()]);
        if !self.eal.hugepages {
            a.push("--no-huge".into());
        }
        a.extend([
            "--file-prefix".into(),
            self.eal
                .file_prefix
                .clone()
                .unwrap_or_else(|| "btblocker".into()),
        ]);
        a.push("--no-pci".into());
        for port in &self.ports {
            a.extend(["--vdev".into(), port.device.clone()]);
        }
        a
    }
}
