//! btblocker: recognise BitTorrent by deep packet inspection and ban the hosts
//! that run it. Everything above `dpdk` is safe Rust and builds without DPDK
//! (`cargo test --no-default-features`).
#![deny(unsafe_code)]

pub mod analyze;
pub mod ban;
pub mod capture;
pub mod config;
pub mod control;
pub mod detection_log;
pub mod dpi;
pub mod flow;
pub mod live_settings;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod reload;
pub mod replay;
pub mod report;
pub mod stage_timing;
pub mod stats;
pub mod wire;

#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
pub mod dpdk;
