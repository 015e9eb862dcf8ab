//! The `flows` section: each worker's flow table.
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::field::{int_in, int_in_or, invalid};
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
    dpi_pool: Option<Spanned<i64>>,
}

pub(super) fn validate(raw: Option<Spanned<RawFlows>>) -> Result<FlowsConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();
    let capacity = int_in_or(
        "flows.capacity",
        raw.capacity.as_ref(),
        DEFAULT_CAPACITY,
        64,
        MAX_CAPACITY,
    )?;
    Ok(FlowsConfig {
        capacity,
        dpi_pool: dpi_pool(raw.dpi_pool.as_ref(), capacity)?,
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

/// `flows.dpi_pool`: undecided flows DPI can inspect at once, per worker;
/// by default one per flow (never exhausted), at most one per flow.
fn dpi_pool(raw: Option<&Spanned<i64>>, capacity: usize) -> Result<usize, ConfigError> {
    let Some(raw) = raw else {
        return Ok(capacity);
    };
    let entries: usize = int_in("flows.dpi_pool", raw, 1, MAX_CAPACITY)?;
    if entries > capacity {
        return Err(invalid(
            "flows.dpi_pool",
            raw,
            format!("must be <= flows.capacity ({capacity})"),
        ));
    }
    Ok(entries)
}
