//! btblocker: recognise BitTorrent by deep packet inspection and ban the hosts
//! that run it.
//!
//! The folders follow a packet and then a ban:
//! - [`wire`]: zero-copy header views (Ethernet to TCP/UDP), lengths checked once;
//! - [`dpi`]: the detectors and the rule that combines their evidence;
//! - [`dataplane`]: what a worker runs per packet (parse → ban check → flow →
//!   DPI → verdict), DPDK-free, so `analyze`, tests and fuzzing run it too;
//! - [`ban`]: the ban table, its published snapshot, the policy, the journal;
//! - [`control`]: the control lcore's loop and its services (reload, operator
//!   socket, metrics, report);
//! - [`config`]: the YAML schema and its validation;
//! - `app` (DPDK): `btblocker run`, start-up to shutdown, and the worker's burst loop;
//! - `dpdk`: bindings and sound wrappers, the one module that may call C and
//!   dereference raw pointers;
//! - [`tools`]: the offline commands (`analyze`, `replay`) and the bench harness.
//!
//! Everything but `dpdk` and `app` builds without DPDK
//! (`cargo test --no-default-features`). Cargo.toml denies the lint against
//! raw-pointer code for the whole package; `dpdk` alone allows it.

// `pub` means part of the library's interface: reachable from this root.
#![warn(unreachable_pub)]

pub mod ban;
pub mod bgp;
pub mod clock;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod dpi;
pub mod tools;
pub mod wire;

#[cfg(feature = "dpdk")]
pub mod app;

#[cfg(feature = "dpdk")]
pub mod dpdk;
