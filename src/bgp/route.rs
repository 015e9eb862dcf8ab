//! One ban as BGP paths, and paths read back from gobgpd as bans.
//!
//! A ban of X becomes an IPv4 /32 or IPv6 /128 (RTBH: next hop the discard
//! address, the configured standard communities) and/or a FlowSpec rule
//! `source X/32 → traffic-rate 0 (discard) or N bytes/s`. Both carry two RFC
//! 8092 large communities: `ASN:1:<expiry, unix s>` (BGP has no TTL; a
//! receiver can enforce the expiry itself) and `ASN:2:<box id>` (whose route
//! it is: our own routes are found by it, other boxes' bans are imported by it).
use std::net::IpAddr;

use prost::Message;
use prost_types::Any;

use super::api;
use crate::config::{BgpConfig, FlowSpecAction, FlowSpecMode};

/// Large community function: the ban's expiry in unix seconds.
pub const LC_EXPIRY: u32 = 1;
/// Large community function: the announcing box's id.
pub const LC_BOX: u32 = 2;
/// `ASN:1:<expiry>` of a ban that never expires (denylist).
pub const NEVER_S: u32 = u32::MAX;
/// FlowSpec component type 2: source prefix (RFC 8955 §4.2.2).
const FLOWSPEC_SOURCE: u32 = 2;

/// The two kinds of route a ban can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    /// /32 or /128 with the discard next hop (RTBH).
    Host,
    /// FlowSpec `source X → action`.
    FlowSpec,
}

/// One route of one banned address.
pub type RouteKey = (RouteKind, IpAddr);

/// What route building needs from `bgp:` (the keys SIGHUP may change
/// included: a change re-announces).
#[derive(Clone, Debug, PartialEq)]
pub struct RouteSettings {
    pub local_asn: u32,
    pub box_id: u32,
    pub next_hop_v4: Option<std::net::Ipv4Addr>,
    pub next_hop_v6: Option<std::net::Ipv6Addr>,
    pub communities: Vec<u32>,
    pub announce_v4: bool,
    pub announce_v6: bool,
    pub flowspec: FlowSpecMode,
    pub flowspec_action: FlowSpecAction,
}

impl RouteSettings {
    pub fn from_config(c: &BgpConfig) -> RouteSettings {
        RouteSettings {
            local_asn: c.local_asn,
            box_id: c.box_id,
            next_hop_v4: c.next_hop_v4,
            next_hop_v6: c.next_hop_v6,
            communities: c.communities.clone(),
            announce_v4: c.announce_v4,
            announce_v6: c.announce_v6,
            flowspec: c.flowspec,
            flowspec_action: c.flowspec_action,
        }
    }

    /// The routes a ban of `ip` wants (none when its family is off).
    pub fn kinds(&self, ip: IpAddr) -> impl Iterator<Item = RouteKind> {
        let family_on = if ip.is_ipv4() {
            self.announce_v4
        } else {
            self.announce_v6
        };
        let host = family_on && self.flowspec != FlowSpecMode::Instead;
        let flow = family_on && self.flowspec != FlowSpecMode::Off;
        [
            host.then_some(RouteKind::Host),
            flow.then_some(RouteKind::FlowSpec),
        ]
        .into_iter()
        .flatten()
    }
}

fn any<M: Message>(name: &str, m: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/apipb.{name}"),
        value: m.encode_to_vec(),
    }
}

/// The address family (and SAFI) a route lives in.
pub fn family(kind: RouteKind, ip: IpAddr) -> api::Family {
    let afi = if ip.is_ipv4() {
        api::family::Afi::Ip
    } else {
        api::family::Afi::Ip6
    };
    let safi = match kind {
        RouteKind::Host => api::family::Safi::Unicast,
        RouteKind::FlowSpec => api::family::Safi::FlowSpecUnicast,
    };
    api::Family {
        afi: afi as i32,
        safi: safi as i32,
    }
}

/// Every family our routes can live in (what reconciliation lists).
pub fn all_families() -> [api::Family; 4] {
    let v4: IpAddr = std::net::Ipv4Addr::UNSPECIFIED.into();
    let v6: IpAddr = std::net::Ipv6Addr::UNSPECIFIED.into();
    [
        family(RouteKind::Host, v4),
        family(RouteKind::Host, v6),
        family(RouteKind::FlowSpec, v4),
        family(RouteKind::FlowSpec, v6),
    ]
}

fn host_len(ip: IpAddr) -> u32 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn nlri(kind: RouteKind, ip: IpAddr) -> Any {
    match kind {
        RouteKind::Host => any(
            "IPAddressPrefix",
            &api::IpAddressPrefix {
                prefix_len: host_len(ip),
                prefix: ip.to_string(),
            },
        ),
        RouteKind::FlowSpec => any(
            "FlowSpecNLRI",
            &api::FlowSpecNlri {
                rules: vec![any(
                    "FlowSpecIPPrefix",
                    &api::FlowSpecIpPrefix {
                        r#type: FLOWSPEC_SOURCE,
                        prefix_len: host_len(ip),
                        prefix: ip.to_string(),
                        offset: 0,
                    },
                )],
            },
        ),
    }
}

/// The path announcing `kind` for a ban of `ip` until `expires_s`; `None`
/// when the family has no next hop configured (validation prevents it).
pub fn announce(
    s: &RouteSettings,
    kind: RouteKind,
    ip: IpAddr,
    expires_s: u32,
) -> Option<api::Path> {
    let next_hop = match (kind, ip) {
        (RouteKind::Host, IpAddr::V4(_)) => s.next_hop_v4?.to_string(),
        (RouteKind::Host, IpAddr::V6(_)) => s.next_hop_v6?.to_string(),
        // FlowSpec has no next hop; gobgpd wants one in MP_REACH all the same.
        (RouteKind::FlowSpec, IpAddr::V4(_)) => "0.0.0.0".to_string(),
        (RouteKind::FlowSpec, IpAddr::V6(_)) => "::".to_string(),
    };
    let mut pattrs = vec![
        // IGP: the route originates here.
        any("OriginAttribute", &api::OriginAttribute { origin: 0 }),
        any("NextHopAttribute", &api::NextHopAttribute { next_hop }),
    ];
    if !s.communities.is_empty() {
        pattrs.push(any(
            "CommunitiesAttribute",
            &api::CommunitiesAttribute {
                communities: s.communities.clone(),
            },
        ));
    }
    if kind == RouteKind::FlowSpec {
        let rate = match s.flowspec_action {
            FlowSpecAction::Discard => 0.0,
            FlowSpecAction::RateLimit(bps) => bps,
        };
        pattrs.push(any(
            "ExtendedCommunitiesAttribute",
            &api::ExtendedCommunitiesAttribute {
                communities: vec![any(
                    "TrafficRateExtended",
                    &api::TrafficRateExtended {
                        asn: s.local_asn & 0xFFFF,
                        rate,
                    },
                )],
            },
        ));
    }
    pattrs.push(any(
        "LargeCommunitiesAttribute",
        &api::LargeCommunitiesAttribute {
            communities: vec![
                api::LargeCommunity {
                    global_admin: s.local_asn,
                    local_data1: LC_EXPIRY,
                    local_data2: expires_s,
                },
                api::LargeCommunity {
                    global_admin: s.local_asn,
                    local_data1: LC_BOX,
                    local_data2: s.box_id,
                },
            ],
        },
    ));
    Some(api::Path {
        nlri: Some(nlri(kind, ip)),
        pattrs,
        family: Some(family(kind, ip)),
        ..Default::default()
    })
}

/// The path withdrawing `kind` for `ip` (gobgpd matches it by NLRI).
pub fn withdraw(kind: RouteKind, ip: IpAddr) -> api::Path {
    api::Path {
        nlri: Some(nlri(kind, ip)),
        family: Some(family(kind, ip)),
        is_withdraw: true,
        ..Default::default()
    }
}

/// Unix seconds for the `ASN:1:` community (u32 until 2106; static: never).
pub fn expiry_s(expires_at_ms: u64) -> u32 {
    if expires_at_ms == crate::ban::NEVER {
        return NEVER_S;
    }
    u32::try_from(expires_at_ms.div_ceil(1000)).unwrap_or(NEVER_S)
}

/// A path gobgpd showed us, read back into what we care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenPath {
    pub route: RouteKey,
    /// `None`: originated by this gobgpd (AddPath); else the peer's address.
    pub neighbor: Option<IpAddr>,
    pub withdrawn: bool,
    pub communities: Vec<u32>,
    /// `(global_admin, function, value)` of each large community.
    pub large: Vec<(u32, u32, u32)>,
}

impl SeenPath {
    /// The `asn:function:<value>` large community's value.
    pub fn large_value(&self, asn: u32, function: u32) -> Option<u32> {
        self.large
            .iter()
            .find(|(a, f, _)| *a == asn && *f == function)
            .map(|l| l.2)
    }

    /// The box id of any `X:2:<id>` large community (a box tag, whoever's AS).
    pub fn box_tag(&self) -> Option<u32> {
        self.large.iter().find(|l| l.1 == LC_BOX).map(|l| l.2)
    }

    /// The expiry of any `X:1:<s>` large community.
    pub fn expiry(&self) -> Option<u32> {
        self.large.iter().find(|l| l.1 == LC_EXPIRY).map(|l| l.2)
    }
}

fn type_is(a: &Any, name: &str) -> bool {
    a.type_url.rsplit('/').next() == Some(&format!("apipb.{name}")[..])
}

/// Reads a host route or a single-source FlowSpec rule; anything else
/// (other prefixes, other NLRI types, garbage) is `None`.
pub fn parse(path: &api::Path) -> Option<SeenPath> {
    let nlri = path.nlri.as_ref()?;
    let route = if type_is(nlri, "IPAddressPrefix") {
        let p = api::IpAddressPrefix::decode(&nlri.value[..]).ok()?;
        let ip: IpAddr = p.prefix.parse().ok()?;
        (p.prefix_len == host_len(ip)).then_some((RouteKind::Host, ip))?
    } else if type_is(nlri, "FlowSpecNLRI") {
        let f = api::FlowSpecNlri::decode(&nlri.value[..]).ok()?;
        let [rule] = &f.rules[..] else { return None };
        if !type_is(rule, "FlowSpecIPPrefix") {
            return None;
        }
        let p = api::FlowSpecIpPrefix::decode(&rule.value[..]).ok()?;
        let ip: IpAddr = p.prefix.parse().ok()?;
        (p.r#type == FLOWSPEC_SOURCE && p.prefix_len == host_len(ip))
            .then_some((RouteKind::FlowSpec, ip))?
    } else {
        return None;
    };
    let mut seen = SeenPath {
        route,
        neighbor: path
            .neighbor_ip
            .parse()
            .ok()
            .filter(|ip: &IpAddr| !ip.is_unspecified()),
        withdrawn: path.is_withdraw,
        communities: Vec::new(),
        large: Vec::new(),
    };
    for a in &path.pattrs {
        if type_is(a, "CommunitiesAttribute") {
            if let Ok(c) = api::CommunitiesAttribute::decode(&a.value[..]) {
                seen.communities = c.communities;
            }
        } else if type_is(a, "LargeCommunitiesAttribute") {
            if let Ok(c) = api::LargeCommunitiesAttribute::decode(&a.value[..]) {
                seen.large = c
                    .communities
                    .iter()
                    .map(|l| (l.global_admin, l.local_data1, l.local_data2))
                    .collect();
            }
        }
    }
    Some(seen)
}

#[cfg(test)]
pub(crate) mod tests;
