//! The `bgp` section: announcing bans to routers through a local GoBGP
//! daemon, and learning other boxes' bans from it (issue 14).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::field::{int_in_or, invalid, list, missing};
use super::ConfigError;
use crate::ban::Cidr;

/// Whether FlowSpec rules go out, and with or without the host routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowSpecMode {
    /// Host routes only (RTBH).
    Off,
    /// A FlowSpec rule beside each host route.
    Beside,
    /// A FlowSpec rule instead of the host route.
    Instead,
}

/// What a FlowSpec rule asks routers to do with the banned source's packets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlowSpecAction {
    Discard,
    /// Police to this many bytes per second (RFC 8955 traffic-rate).
    RateLimit(f32),
}

/// What happens to imported bans when the session that brought them drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionLoss {
    Keep,
    Drop,
}

/// The `bgp` section once validated; present in [`super::Config`] only when
/// `enabled: true`.
#[derive(Clone, Debug, PartialEq)]
pub struct BgpConfig {
    /// gobgpd's gRPC API: `gobgpd --api-hosts unix://<path>`.
    pub api_socket: PathBuf,
    pub local_asn: u32,
    /// This box's tag (large community `local_asn:2:box_id`), > 0.
    pub box_id: u32,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Standard communities, each `(high << 16) | low`.
    pub communities: Vec<u32>,
    pub announce_v4: bool,
    pub announce_v6: bool,
    pub flowspec: FlowSpecMode,
    pub flowspec_action: FlowSpecAction,
    pub import: bool,
    pub import_community: u32,
    pub import_max_ttl_s: u64,
    pub on_session_loss: SessionLoss,
    pub withdraw_on_shutdown: bool,
    pub never_announce: Vec<Cidr>,
    pub max_announced: usize,
    pub queue_capacity: usize,
}

// `Eq` is sound: the only float is a validated finite rate.
impl Eq for BgpConfig {}

pub(super) const DEFAULT_API_SOCKET: &str = "/run/btblocker/gobgp.sock";
/// RFC 7999 BLACKHOLE.
pub(super) const BLACKHOLE: u32 = (65535 << 16) | 666;
/// RFC 1997 well-known communities.
pub(super) const NO_EXPORT: u32 = 0xFFFF_FF01;
const NO_ADVERTISE: u32 = 0xFFFF_FF02;
const NO_EXPORT_SUBCONFED: u32 = 0xFFFF_FF03;
const NO_PEER: u32 = 0xFFFF_FF04;

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawFlowSpec {
    Off,
    Beside,
    Instead,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawFlowSpecAction {
    Discard,
    RateLimit,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawSessionLoss {
    Keep,
    Drop,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBgp {
    enabled: Option<bool>,
    api_socket: Option<Spanned<String>>,
    local_asn: Option<Spanned<i64>>,
    box_id: Option<Spanned<i64>>,
    next_hop_v4: Option<Spanned<String>>,
    next_hop_v6: Option<Spanned<String>>,
    communities: Option<Spanned<Vec<Spanned<String>>>>,
    announce_v4: Option<bool>,
    announce_v6: Option<bool>,
    // `off` is read by YAML 1.1 parsers as a boolean: accept both spellings.
    flowspec: Option<Spanned<FlowSpecValue>>,
    flowspec_action: Option<Spanned<RawFlowSpecAction>>,
    flowspec_rate_bps: Option<Spanned<f64>>,
    import: Option<bool>,
    import_community: Option<Spanned<String>>,
    import_max_ttl_s: Option<Spanned<i64>>,
    on_session_loss: Option<Spanned<RawSessionLoss>>,
    withdraw_on_shutdown: Option<bool>,
    never_announce: Option<Spanned<Vec<Spanned<String>>>>,
    max_announced: Option<Spanned<i64>>,
    queue_capacity: Option<Spanned<i64>>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(untagged)]
enum FlowSpecValue {
    Bool(bool),
    Mode(RawFlowSpec),
}

/// Parses a standard community: `A:B` (each 0..=65535) or a well-known name.
pub fn parse_community(text: &str) -> Result<u32, String> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "no-export" | "no_export" => return Ok(NO_EXPORT),
        "no-advertise" | "no_advertise" => return Ok(NO_ADVERTISE),
        "no-export-subconfed" | "local-as" => return Ok(NO_EXPORT_SUBCONFED),
        "no-peer" | "no_peer" => return Ok(NO_PEER),
        "blackhole" => return Ok(BLACKHOLE),
        _ => {}
    }
    let bad = || {
        format!(
            "{t:?} is not a community: expected A:B (0..=65535 each) or one of \
             blackhole, no-export, no-advertise, no-export-subconfed, no-peer"
        )
    };
    let (a, b) = t.split_once(':').ok_or_else(bad)?;
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    Ok((u32::from(a) << 16) | u32::from(b))
}

/// `A:B` form of a standard community (for logs and tests).
pub fn community_text(c: u32) -> String {
    format!("{}:{}", c >> 16, c & 0xFFFF)
}

pub(super) fn validate(raw: Option<Spanned<RawBgp>>) -> Result<Option<BgpConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let section_line = super::field::line(&raw);
    let raw = raw.value;
    if raw.enabled != Some(true) {
        return Ok(None);
    }
    let local_asn = match &raw.local_asn {
        None => return Err(missing("bgp.local_asn", section_line)),
        Some(v) => super::field::int_in("bgp.local_asn", v, 1, i64::from(u32::MAX))?,
    };
    let box_id = match &raw.box_id {
        None => return Err(missing("bgp.box_id", section_line)),
        Some(v) => super::field::int_in("bgp.box_id", v, 1, i64::from(u32::MAX))?,
    };
    let api_socket = match &raw.api_socket {
        None => PathBuf::from(DEFAULT_API_SOCKET),
        Some(s) if s.value.trim().is_empty() || s.value.len() > 107 => {
            return Err(invalid(
                "bgp.api_socket",
                s,
                "must be a Unix socket path of 1 to 107 bytes",
            ))
        }
        Some(s) => PathBuf::from(s.value.trim_start_matches("unix://")),
    };
    let flowspec = match raw.flowspec.as_ref().map(|f| f.value) {
        None | Some(FlowSpecValue::Bool(false)) | Some(FlowSpecValue::Mode(RawFlowSpec::Off)) => {
            FlowSpecMode::Off
        }
        Some(FlowSpecValue::Mode(RawFlowSpec::Beside)) => FlowSpecMode::Beside,
        Some(FlowSpecValue::Mode(RawFlowSpec::Instead)) => FlowSpecMode::Instead,
        Some(FlowSpecValue::Bool(true)) => {
            let at = raw.flowspec.as_ref().expect("matched Some");
            return Err(invalid(
                "bgp.flowspec",
                at,
                "expected off, beside or instead",
            ));
        }
    };
    let flowspec_action = match raw.flowspec_action.map(|a| a.value) {
        None | Some(RawFlowSpecAction::Discard) => FlowSpecAction::Discard,
        Some(RawFlowSpecAction::RateLimit) => match &raw.flowspec_rate_bps {
            None => return Err(missing("bgp.flowspec_rate_bps", section_line)),
            Some(r)
                if !(r.value.is_finite() && r.value > 0.0 && r.value <= f64::from(f32::MAX)) =>
            {
                return Err(invalid(
                    "bgp.flowspec_rate_bps",
                    r,
                    "must be a positive number of bytes per second",
                ))
            }
            Some(r) => FlowSpecAction::RateLimit(r.value as f32),
        },
    };
    let announce_v4 = raw.announce_v4.unwrap_or(true);
    let announce_v6 = raw.announce_v6.unwrap_or(true);
    let unicast = flowspec != FlowSpecMode::Instead;
    let next_hop_v4 = match &raw.next_hop_v4 {
        None if announce_v4 && unicast => return Err(missing("bgp.next_hop_v4", section_line)),
        None => None,
        Some(s) => match s.value.trim().parse::<Ipv4Addr>() {
            Ok(ip) if !ip.is_unspecified() => Some(ip),
            _ => {
                return Err(invalid(
                    "bgp.next_hop_v4",
                    s,
                    format!("{:?} is not a usable IPv4 next hop", s.value),
                ))
            }
        },
    };
    let next_hop_v6 = match &raw.next_hop_v6 {
        None if announce_v6 && unicast => return Err(missing("bgp.next_hop_v6", section_line)),
        None => None,
        Some(s) => match s.value.trim().parse::<Ipv6Addr>() {
            Ok(ip) if !ip.is_unspecified() => Some(ip),
            _ => {
                return Err(invalid(
                    "bgp.next_hop_v6",
                    s,
                    format!(
                        "{:?} is not a usable IPv6 next hop (\"::\" is refused by routers)",
                        s.value
                    ),
                ))
            }
        },
    };
    let communities = match raw.communities {
        None => vec![BLACKHOLE, NO_EXPORT],
        Some(list_raw) => list(Some(list_raw))
            .iter()
            .enumerate()
            .map(|(i, s)| {
                parse_community(&s.value)
                    .map_err(|e| invalid(&format!("bgp.communities[{i}]"), s, e))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let import = raw.import.unwrap_or(false);
    let import_community = match &raw.import_community {
        Some(s) => parse_community(&s.value).map_err(|e| invalid("bgp.import_community", s, e))?,
        None => match communities.first() {
            Some(c) => *c,
            None if import => return Err(missing("bgp.import_community", section_line)),
            None => BLACKHOLE,
        },
    };
    let never_announce = list(raw.never_announce)
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let text = s.value.trim();
            let parsed = match text.parse::<IpAddr>() {
                Ok(ip) => Cidr::new(ip, if ip.is_ipv4() { 32 } else { 128 }),
                Err(_) => text.parse::<Cidr>(),
            };
            parsed.map_err(|e| invalid(&format!("bgp.never_announce[{i}]"), s, e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(BgpConfig {
        api_socket,
        local_asn,
        box_id,
        next_hop_v4,
        next_hop_v6,
        communities,
        announce_v4,
        announce_v6,
        flowspec,
        flowspec_action,
        import,
        import_community,
        import_max_ttl_s: int_in_or(
            "bgp.import_max_ttl_s",
            raw.import_max_ttl_s.as_ref(),
            86_400,
            1,
            365 * 86_400,
        )?,
        on_session_loss: match raw.on_session_loss.map(|s| s.value) {
            None | Some(RawSessionLoss::Keep) => SessionLoss::Keep,
            Some(RawSessionLoss::Drop) => SessionLoss::Drop,
        },
        withdraw_on_shutdown: raw.withdraw_on_shutdown.unwrap_or(true),
        never_announce,
        max_announced: int_in_or(
            "bgp.max_announced",
            raw.max_announced.as_ref(),
            100_000,
            1,
            1 << 24,
        )?,
        queue_capacity: int_in_or(
            "bgp.queue_capacity",
            raw.queue_capacity.as_ref(),
            65_536,
            16,
            1 << 22,
        )?,
    }))
}
