//! Offline commands and harnesses that share the dataplane's code but never
//! run in the appliance's data path: [`analyze`] (the pipeline over capture
//! files), [`capture`] reading, [`replay`] (the virtio testbed's traffic
//! generator) and, with the `bench` feature, the pipeline bench harness.
pub mod analyze;
#[cfg(feature = "bench")]
pub mod bench;
pub mod capture;
pub mod replay;
