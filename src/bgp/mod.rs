//! Bans beyond the box: every ban in force becomes a route in a local
//! GoBGP daemon (`gobgpd`, driven over its gRPC API on a Unix socket), which
//! the routers act on (RTBH host routes with a discard next hop, or FlowSpec
//! rules), and other boxes' bans learned from it enter our table.
//!
//! # Threads and queues
//!
//! The control loop owns the ban table and never waits on the network. A
//! [`link::BgpLink`] on the control loop turns the keeper's changes into
//! [`announcer::Command`]s on a bounded queue (`try_send`: a full queue is
//! counted and the whole ban set replayed once there is room). The
//! [`announcer`] thread runs a current-thread tokio runtime, batches the
//! commands into AddPathStream calls, and reconciles — lists our routes in
//! the RIB and sends the [`reconcile::diff`] — whenever the RIB may differ
//! from the table (start, dead or restarted daemon, a session coming up, a
//! replay). Imports flow back on a second bounded queue.
//!
//! # Routes
//!
//! See [`route`]: /32 and /128 with the configured communities, FlowSpec
//! `source X`, and large communities `ASN:1:<expiry>` and `ASN:2:<box id>`
//! that tag our own routes and let other boxes import and expire them.
//! Pinned to GoBGP 3.x's API (package `apipb`; protos in `proto/gobgp/v3`).
pub mod announcer;
pub mod api;
pub mod client;
pub mod import;
pub mod link;
pub mod reconcile;
pub mod route;
pub mod stats;

pub use link::BgpLink;
pub use stats::{BgpCounts, BgpStats};
