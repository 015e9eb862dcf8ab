//! Operator commands: `btblocker bans list | add | del | flush` talk to the
//! running daemon over a Unix socket. One JSON request line per connection,
//! one JSON reply line back ([`protocol`]). The socket's thread
//! ([`server`]) only parses and forwards: the control loop answers, because
//! it alone may change the ban table ([`execute()`]). Safe Rust, no DPDK.
pub mod client;
pub mod execute;
pub mod protocol;
pub mod server;
pub mod service;
pub mod telemetry_view;

pub use execute::execute;
pub use protocol::{BanInfo, Reply, Request};
pub use server::{OperatorServer, ServerError};
pub use service::Operator;
