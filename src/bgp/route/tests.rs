use super::*;
use crate::config::{FlowSpecAction, FlowSpecMode};

/// Settings for tests: box 7, both families, RTBH + no-export communities.
pub(crate) fn settings(flowspec: FlowSpecMode) -> RouteSettings {
    RouteSettings {
        local_asn: 65001,
        box_id: 7,
        next_hop_v4: Some("192.0.2.1".parse().unwrap()),
        next_hop_v6: Some("100::1".parse().unwrap()),
        communities: vec![(65535 << 16) | 666, 0xFFFF_FF01],
        announce_v4: true,
        announce_v6: true,
        flowspec,
        flowspec_action: FlowSpecAction::Discard,
    }
}

fn decoded<M: Message + Default>(a: &Any, name: &str) -> M {
    assert_eq!(a.type_url, format!("type.googleapis.com/apipb.{name}"));
    M::decode(&a.value[..]).unwrap()
}

#[test]
fn host_route_v4_has_prefix_next_hop_communities_and_tags() {
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    let p = announce(
        &settings(FlowSpecMode::Off),
        RouteKind::Host,
        ip,
        1_800_000_123,
    )
    .unwrap();
    let nlri: api::IpAddressPrefix = decoded(p.nlri.as_ref().unwrap(), "IPAddressPrefix");
    assert_eq!(
        (nlri.prefix.as_str(), nlri.prefix_len),
        ("198.51.100.7", 32)
    );
    assert_eq!(p.family, Some(api::Family { afi: 1, safi: 1 }));
    let names: Vec<&str> = p
        .pattrs
        .iter()
        .map(|a| a.type_url.rsplit('.').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "OriginAttribute",
            "NextHopAttribute",
            "CommunitiesAttribute",
            "LargeCommunitiesAttribute"
        ]
    );
    let nh: api::NextHopAttribute = decoded(&p.pattrs[1], "NextHopAttribute");
    assert_eq!(nh.next_hop, "192.0.2.1");
    let c: api::CommunitiesAttribute = decoded(&p.pattrs[2], "CommunitiesAttribute");
    assert_eq!(c.communities, vec![0xFFFF_029A, 0xFFFF_FF01]);
    let seen = parse(&p).unwrap();
    assert_eq!(seen.route, (RouteKind::Host, ip));
    assert_eq!(seen.neighbor, None);
    assert_eq!(seen.large, vec![(65001, 1, 1_800_000_123), (65001, 2, 7)]);
}

#[test]
fn host_route_v6_is_a_128_with_the_v6_next_hop() {
    let ip: IpAddr = "2001:db8::42".parse().unwrap();
    let p = announce(&settings(FlowSpecMode::Off), RouteKind::Host, ip, 5).unwrap();
    let nlri: api::IpAddressPrefix = decoded(p.nlri.as_ref().unwrap(), "IPAddressPrefix");
    assert_eq!(
        (nlri.prefix.as_str(), nlri.prefix_len),
        ("2001:db8::42", 128)
    );
    assert_eq!(p.family, Some(api::Family { afi: 2, safi: 1 }));
    let nh: api::NextHopAttribute = decoded(&p.pattrs[1], "NextHopAttribute");
    assert_eq!(nh.next_hop, "100::1");
}

#[test]
fn flowspec_rule_matches_the_source_and_discards_or_limits() {
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    let mut s = settings(FlowSpecMode::Beside);
    let p = announce(&s, RouteKind::FlowSpec, ip, 9).unwrap();
    assert_eq!(p.family, Some(api::Family { afi: 1, safi: 133 }));
    let f: api::FlowSpecNlri = decoded(p.nlri.as_ref().unwrap(), "FlowSpecNLRI");
    let rule: api::FlowSpecIpPrefix = decoded(&f.rules[0], "FlowSpecIPPrefix");
    assert_eq!(
        (rule.r#type, rule.prefix_len, rule.prefix.as_str()),
        (2, 32, "198.51.100.7")
    );
    let ext: api::ExtendedCommunitiesAttribute =
        decoded(&p.pattrs[3], "ExtendedCommunitiesAttribute");
    let rate: api::TrafficRateExtended = decoded(&ext.communities[0], "TrafficRateExtended");
    assert_eq!(rate.rate, 0.0);
    s.flowspec_action = FlowSpecAction::RateLimit(1250.0);
    let p = announce(&s, RouteKind::FlowSpec, ip, 9).unwrap();
    let ext: api::ExtendedCommunitiesAttribute =
        decoded(&p.pattrs[3], "ExtendedCommunitiesAttribute");
    let rate: api::TrafficRateExtended = decoded(&ext.communities[0], "TrafficRateExtended");
    assert_eq!(rate.rate, 1250.0);
    assert_eq!(parse(&p).unwrap().route, (RouteKind::FlowSpec, ip));
}

#[test]
fn kinds_follow_flowspec_mode_and_families() {
    let v4: IpAddr = "192.0.2.9".parse().unwrap();
    let v6: IpAddr = "2001:db8::9".parse().unwrap();
    let kinds = |s: &RouteSettings, ip| s.kinds(ip).collect::<Vec<_>>();
    assert_eq!(kinds(&settings(FlowSpecMode::Off), v4), [RouteKind::Host]);
    assert_eq!(
        kinds(&settings(FlowSpecMode::Beside), v6),
        [RouteKind::Host, RouteKind::FlowSpec]
    );
    assert_eq!(
        kinds(&settings(FlowSpecMode::Instead), v4),
        [RouteKind::FlowSpec]
    );
    let mut s = settings(FlowSpecMode::Beside);
    s.announce_v6 = false;
    assert_eq!(kinds(&s, v6), []);
}

#[test]
fn withdrawal_and_expiry_encoding() {
    let ip: IpAddr = "192.0.2.9".parse().unwrap();
    let w = withdraw(RouteKind::Host, ip);
    assert!(w.is_withdraw && w.pattrs.is_empty());
    assert_eq!(expiry_s(1_700_000_000_001), 1_700_000_001);
    assert_eq!(expiry_s(crate::ban::NEVER), NEVER_S);
    // Garbage from the wire is ignored, not a panic.
    let junk = api::Path {
        nlri: Some(Any {
            type_url: "type.googleapis.com/apipb.IPAddressPrefix".into(),
            value: vec![0xff, 0xff, 0xff],
        }),
        ..Default::default()
    };
    assert_eq!(parse(&junk), None);
}
