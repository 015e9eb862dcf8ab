//! What a worker runs on each packet, safe and DPDK-free: the [`pipeline`]
//! (parse → ban check → flow → DPI → verdict) over the worker's own
//! [`flow`] table and the DPI state of its undecided flows ([`dpi_pool`]),
//! its [`counters`], the settings a reload changes
//! ([`live_settings`]) and, with the `stage-timing` feature, per-stage cycle
//! histograms ([`stage_timing`]). The DPDK worker loop, `analyze`, the tests and
//! the fuzzers all drive this same code.
pub mod counter;
pub mod counters;
pub mod dpi_pool;
pub mod flow;
pub mod live_settings;
pub mod pipeline;
pub mod sink;
pub mod stage_timing;

pub use pipeline::{Burst, FlowDetection, Pipeline, Verdict};
pub use sink::{EventSink, NoEvents, RingSink};
