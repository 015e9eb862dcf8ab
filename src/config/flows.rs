//! The `flows` section: each worker's flow table.
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::field::int_in_or;
use super::{ConfigError, FlowsConfig};

const DEFAULT_CAPACITY: usize = 1 << 16;
/// 64 M flows per worker is already gigabytes of RAM; more is a typo.
const MAX_CAPACITY: i64 = 1 << 26;
const DEFAULT_TCP_IDLE_S: u64 = 300;
const DEFAULT_UDP_IDLE_S: u64 = 60;
const MAX_IDLE_S: i64 = 86_400;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlows {
    capacity: Option<Spanned<i64>>,
    tcp_idle_timeout_s: Option<Spanned<i64>>,
    udp_idle_timeout_s: Option<Spanned<i64>>,
}

pub(super) fn validate(raw: Option<Spanned<RawFlows>>) -> Result<FlowsConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();
    Ok(FlowsConfig {
        capacity: int_in_or(
            "flows.capacity",
            raw.capacity.as_ref(),
            DEFAULT_CAPACITY,
            64,
            MAX_CAPACITY,
        )?,
        tcp_idle_timeout_s: int_in_or(
            "flows.tcp_idle_timeout_s",
            raw.tcp_idle_timeout_s.as_ref(),
            DEFAULT_TCP_IDLE_S,
            1,
            MAX_IDLE_S,
        )?,
        udp_idle_timeout_s: int_in_or(
            "flows.udp_idle_timeout_s",
            raw.udp_idle_timeout_s.as_ref(),
            DEFAULT_UDP_IDLE_S,
            1,
            MAX_IDLE_S,
        )?,
    })
}
