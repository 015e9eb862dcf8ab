//! `btblocker replay`: a traffic generator for the virtio testbed. It owns two
//! `net_vhost` ports (vhost-user servers) that btblocker's two `virtio_user`
//! ports connect to, sends a capture's inside→outside packets into the inside
//! port and outside→inside into the outside port, and counts and keeps what
//! btblocker forwards. This module is the safe part (what to send where, pacing,
//! counting, reports); the DPDK loop is `player` (DPDK builds only).
pub mod barrier;
pub mod flight;
pub mod pacing;
pub mod plan;
#[cfg(feature = "dpdk")]
pub mod player;
pub mod settings;
pub mod summary;

pub use plan::{flow_of, queue_of, FlowId, Plan, PlanError, PlannedPacket, Side, Sides, MAX_FRAME};
pub use settings::{parse_inside, ReplaySettings, SettingsError};
pub use summary::{rx_pcap_name, PassSummary, PortCounts, Recorder, ReplaySummary};
