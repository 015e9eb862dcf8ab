//! The control plane: the control lcore's loop and the services it drives
//! between ticks. It alone writes the ban table ([`crate::ban::keeper`]);
//! around it, SIGHUP [`reload`]s, the [`operator`] socket (`btblocker bans …`),
//! the Prometheus [`metrics`] and the run's [`report`]. Safe Rust, no DPDK:
//! nothing here may block the loop on the network or on a client.
pub mod main_loop;
pub mod metrics;
pub mod operator;
pub mod reload;
pub mod report;
