//! The `ban` and `networks` sections: what a detection does to a host.
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::field::{int_in_or, invalid, list};
use super::ConfigError;
use crate::ban::{BanTableConfig, Cidr, FullPolicy, PolicyConfig};

/// Which end of a BitTorrent flow is banned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanTarget {
    /// The subscriber: the endpoint on the inside (ISP customer) side.
    Inside,
    /// The remote peer.
    Outside,
    Both,
}

/// What enforcement drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanAction {
    /// Drop only the flows judged BitTorrent; bans are recorded, not enforced.
    DropFlow,
    /// Drop every packet from or to a banned host, both directions.
    BanHost,
    /// Drop nothing: detect, ban in the table (and journal) only. For a
    /// first rollout, to see what would be dropped.
    LogOnly,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanConfig {
    pub ttl_s: u64,
    pub target: BanTarget,
    pub action: BanAction,
    pub policy: PolicyConfig,
    pub table: BanTableConfig,
    pub allowlist: Vec<Cidr>,
    /// Hosts banned from start-up, for as long as they stay in the config.
    pub denylist: Vec<IpAddr>,
    /// Where bans are kept across restarts; `None` only when `persist: false`.
    pub state_file: Option<PathBuf>,
    pub flush_ms: u64,
}

impl Default for BanConfig {
    fn default() -> Self {
        BanConfig {
            ttl_s: DEFAULT_TTL_S,
            target: BanTarget::Inside,
            action: BanAction::BanHost,
            policy: PolicyConfig::default(),
            table: BanTableConfig::default(),
            allowlist: Vec::new(),
            denylist: Vec::new(),
            state_file: Some(PathBuf::from(DEFAULT_STATE_FILE)),
            flush_ms: 1000,
        }
    }
}

/// Which addresses are the ISP's own customers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworksConfig {
    /// When empty, a packet's side comes from the role of the port it arrived on.
    pub inside: Vec<Cidr>,
}

const DEFAULT_TTL_S: u64 = 5 * 3600;
const DEFAULT_STATE_FILE: &str = "/var/lib/btblocker/bans.jsonl";

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawTarget {
    Inside,
    Outside,
    Both,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawAction {
    DropFlow,
    BanHost,
    LogOnly,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawWhenFull {
    Refuse,
    EvictOldest,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBan {
    ttl_s: Option<Spanned<i64>>,
    target: Option<Spanned<RawTarget>>,
    action: Option<Spanned<RawAction>>,
    threshold: Option<Spanned<i64>>,
    window_s: Option<Spanned<i64>>,
    definitive_bans_at_once: Option<Spanned<bool>>,
    allowlist: Option<Spanned<Vec<Spanned<String>>>>,
    denylist: Option<Spanned<Vec<Spanned<String>>>>,
    max_entries: Option<Spanned<i64>>,
    when_full: Option<Spanned<RawWhenFull>>,
    persist: Option<Spanned<bool>>,
    state_file: Option<Spanned<String>>,
    flush_ms: Option<Spanned<i64>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetworks {
    inside: Option<Spanned<Vec<Spanned<String>>>>,
}

fn cidrs(key: &str, raw: Option<Spanned<Vec<Spanned<String>>>>) -> Result<Vec<Cidr>, ConfigError> {
    list(raw)
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let text = s.value.trim();
            // A bare address is a /32 or /128.
            let parsed = match text.parse::<IpAddr>() {
                Ok(ip) => Cidr::new(ip, if ip.is_ipv4() { 32 } else { 128 }),
                Err(_) => text.parse::<Cidr>(),
            };
            parsed.map_err(|e| invalid(&format!("{key}[{i}]"), s, e.to_string()))
        })
        .collect()
}

pub(super) fn validate_networks(
    raw: Option<Spanned<RawNetworks>>,
) -> Result<NetworksConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();
    Ok(NetworksConfig {
        inside: cidrs("networks.inside", raw.inside)?,
    })
}

pub(super) fn validate(raw: Option<Spanned<RawBan>>) -> Result<BanConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();
    let d = BanConfig::default();
    let denylist = list(raw.denylist)
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.value.trim().parse::<IpAddr>().map_err(|_| {
                invalid(
                    &format!("ban.denylist[{i}]"),
                    s,
                    format!("{:?} is not an IP address", s.value),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let persist = raw.persist.as_ref().is_none_or(|p| p.value);
    let state_file = match (&raw.state_file, persist) {
        (_, false) => None,
        (Some(p), true) if p.value.trim().is_empty() => {
            return Err(invalid(
                "ban.state_file",
                p,
                "must not be empty (set ban.persist: false to keep no state)",
            ))
        }
        (Some(p), true) => Some(PathBuf::from(&p.value)),
        (None, true) => d.state_file.clone(),
    };
    Ok(BanConfig {
        ttl_s: int_in_or("ban.ttl_s", raw.ttl_s.as_ref(), d.ttl_s, 1, 365 * 86_400)?,
        target: match raw.target.map(|t| t.value) {
            None | Some(RawTarget::Inside) => BanTarget::Inside,
            Some(RawTarget::Outside) => BanTarget::Outside,
            Some(RawTarget::Both) => BanTarget::Both,
        },
        action: match raw.action.map(|a| a.value) {
            None | Some(RawAction::BanHost) => BanAction::BanHost,
            Some(RawAction::DropFlow) => BanAction::DropFlow,
            Some(RawAction::LogOnly) => BanAction::LogOnly,
        },
        policy: PolicyConfig {
            threshold: int_in_or(
                "ban.threshold",
                raw.threshold.as_ref(),
                d.policy.threshold,
                1,
                1000,
            )?,
            window_ms: int_in_or::<u64>(
                "ban.window_s",
                raw.window_s.as_ref(),
                d.policy.window_ms / 1000,
                1,
                86_400,
            )? * 1000,
            definitive_bans_at_once: raw
                .definitive_bans_at_once
                .map_or(d.policy.definitive_bans_at_once, |b| b.value),
            ..d.policy
        },
        table: BanTableConfig {
            max_entries: int_in_or(
                "ban.max_entries",
                raw.max_entries.as_ref(),
                d.table.max_entries,
                1,
                1 << 26,
            )?,
            when_full: match raw.when_full.map(|w| w.value) {
                None | Some(RawWhenFull::EvictOldest) => FullPolicy::EvictOldest,
                Some(RawWhenFull::Refuse) => FullPolicy::Refuse,
            },
        },
        allowlist: cidrs("ban.allowlist", raw.allowlist)?,
        denylist,
        state_file,
        flush_ms: int_in_or(
            "ban.flush_ms",
            raw.flush_ms.as_ref(),
            d.flush_ms,
            10,
            60_000,
        )?,
    })
}
