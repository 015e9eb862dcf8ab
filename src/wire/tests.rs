//! Whole-frame tests: hand-built frames through `parse_link`, every error
//! reached by some input, and robustness against truncated and corrupted
//! frames. Per-header tests live next to each header.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::tcp::flags;
use super::*;

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `base` with the bytes at the given offsets replaced.
fn patched(base: &[u8], patches: &[(usize, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(at, value) in patches {
        let byte = out.get_mut(at).expect("patch offset inside the frame");
        *byte = value;
    }
    out
}

const MACS: [u8; 12] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
const ET_IPV4: [u8; 2] = [0x08, 0x00];
const ET_IPV6: [u8; 2] = [0x86, 0xDD];
const ET_ARP: [u8; 2] = [0x08, 0x06];
const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_DST: [u8; 16] = [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// IPv4: total length 44, ident 0x1234, DF, TTL 64, TCP, 10.0.0.1 -> 10.0.0.2.
const IPV4_TCP: [u8; 20] = [
    0x45, 0x00, 0x00, 0x2C, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, //
    10, 0, 0, 1, 10, 0, 0, 2,
];
/// TCP: 51413 -> 6881, seq 1, ack 2, data offset 5, PSH|ACK, window 0xFAF0.
const TCP: [u8; 20] = [
    0xC8, 0xD5, 0x1A, 0xE1, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0xFA, 0xF0, 0, 0, 0, 0,
];
const BT: [u8; 4] = [0x13, b'B', b'i', b't'];

/// Offsets into `eth_ipv4_tcp()`.
const IP: usize = 14;
const L4_AT: usize = IP + 20;

fn eth_ipv4_tcp() -> Vec<u8> {
    cat(&[&MACS, &ET_IPV4, &IPV4_TCP, &TCP, &BT])
}

fn ipv4_packet(frame: &[u8]) -> Packet<'_> {
    match parse_ethernet(frame) {
        Ok(Parsed::Ip(p)) => p,
        other => panic!("expected an IP packet, got {other:?}"),
    }
}

#[test]
fn ipv4_tcp() {
    let frame = eth_ipv4_tcp();
    assert_eq!(frame.len(), 58);
    let p = ipv4_packet(&frame);
    assert_eq!(p.vlan_tags, 0);
    assert_eq!(p.vlan_ids, [0, 0]);
    assert_eq!(p.src_ip(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(p.dst_ip(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(p.fragment, Fragment::None);
    assert_eq!(p.ttl, 64);
    assert_eq!(p.ip_payload_len, 24);
    assert_eq!(
        p.l4,
        L4::Tcp {
            src_port: 51413,
            dst_port: 6881,
            seq: 1,
            ack: 2,
            flags: flags::PSH | flags::ACK,
            payload: &BT,
            window: 0xFAF0,
        }
    );
    assert_eq!(p.l4.protocol(), 6);
    assert_eq!(p.l4.ports(), Some((51413, 6881)));
    assert_eq!(p.l4.payload(), &BT);
}

#[test]
fn ethernet_padding_is_trimmed() {
    // A 40-byte IPv4/TCP packet (a bare ACK) padded to the 60-byte minimum.
    let ip = patched(&IPV4_TCP, &[(3, 40)]);
    let tcp = patched(&TCP, &[(13, flags::ACK)]);
    let frame = cat(&[&MACS, &ET_IPV4, &ip, &tcp, &[0; 6]]);
    assert_eq!(frame.len(), 60);
    let p = ipv4_packet(&frame);
    assert_eq!(p.ip_payload_len, 20);
    assert!(
        matches!(
            p.l4,
            L4::Tcp {
                flags: flags::ACK,
                payload: &[],
                ..
            }
        ),
        "{:?}",
        p.l4
    );
}

#[test]
fn vlan_ipv4_with_options_udp() {
    let frame = cat(&[
        &MACS,
        &[0x81, 0x00, 0x00, 0x64, 0x08, 0x00],
        // IHL 6, total length 36, TTL 128, UDP, 192.168.1.10 -> .20, router alert.
        &[
            0x46, 0x00, 0x00, 0x24, 0xAB, 0xCD, 0x00, 0x00, 0x80, 0x11, 0, 0,
        ],
        &[192, 168, 1, 10, 192, 168, 1, 20, 0x94, 0x04, 0x00, 0x00],
        // UDP 6881 -> 50000, length 12.
        &[0x1A, 0xE1, 0xC3, 0x50, 0x00, 0x0C, 0, 0],
        b"d1:a",
    ]);
    let p = ipv4_packet(&frame);
    assert_eq!(p.vlan_tags, 1);
    assert_eq!(p.vlan_ids, [100, 0]);
    assert_eq!(p.src_ip(), IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)));
    assert_eq!(p.dst_ip(), IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)));
    assert_eq!(p.ttl, 128);
    assert_eq!(p.ip_payload_len, 12);
    assert_eq!(
        p.l4,
        L4::Udp {
            src_port: 6881,
            dst_port: 50000,
            payload: b"d1:a"
        }
    );
}

fn eth_qinq_ipv6_tcp() -> Vec<u8> {
    cat(&[
        &MACS,
        &[0x88, 0xA8, 0x00, 0xC8, 0x81, 0x00, 0x00, 0x64],
        &ET_IPV6,
        // Payload length 34, next header TCP, hop limit 57.
        &[0x60, 0, 0, 0, 0x00, 0x22, 6, 57],
        &V6_SRC,
        &V6_DST,
        // TCP with 12 bytes of options (MSS, NOP, WS, SACK-perm, NOP, NOP), SYN.
        &[
            0xC8, 0xD5, 0x1A, 0xE1, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x80, 0x02, 0xFF, 0xFF, 0, 0, 0, 0,
        ],
        &[
            0x02, 0x04, 0x05, 0xB4, 0x01, 0x03, 0x03, 0x07, 0x04, 0x02, 0x01, 0x01,
        ],
        &[0xAA, 0xBB],
    ])
}

#[test]
fn qinq_ipv6_tcp_with_options() {
    let frame = eth_qinq_ipv6_tcp();
    let p = ipv4_packet(&frame);
    assert_eq!(p.vlan_tags, 2);
    assert_eq!(p.vlan_ids, [200, 100]);
    assert_eq!(p.src_ip(), IpAddr::V6(Ipv6Addr::from(V6_SRC)));
    assert_eq!(p.dst_ip(), IpAddr::V6(Ipv6Addr::from(V6_DST)));
    assert_eq!(p.ttl, 57);
    assert_eq!(p.fragment, Fragment::None);
    assert_eq!(p.ip_payload_len, 34);
    assert_eq!(
        p.l4,
        L4::Tcp {
            src_port: 51413,
            dst_port: 6881,
            seq: 0x1000,
            ack: 0,
            flags: flags::SYN,
            payload: &[0xAA, 0xBB],
            window: 0xFFFF,
        }
    );
}

fn eth_ipv4_first_fragment() -> Vec<u8> {
    cat(&[
        &MACS,
        &ET_IPV4,
        // Total length 32, ident 0x5566, MF, offset 0, UDP.
        &[
            0x45, 0, 0x00, 0x20, 0x55, 0x66, 0x20, 0x00, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ],
        // UDP length 1500: the whole datagram, most of it in later fragments.
        &[0x1A, 0xE1, 0x1A, 0xE1, 0x05, 0xDC, 0, 0],
        b"d1:a",
    ])
}

#[test]
fn ipv4_first_fragment_keeps_l4() {
    let frame = eth_ipv4_first_fragment();
    let p = ipv4_packet(&frame);
    assert_eq!(p.fragment, Fragment::First);
    assert_eq!(p.ip_payload_len, 12);
    assert_eq!(
        p.l4,
        L4::Udp {
            src_port: 6881,
            dst_port: 6881,
            payload: b"d1:a"
        }
    );
}

#[test]
fn ipv4_non_first_fragment_hides_l4() {
    let frame = cat(&[
        &MACS,
        &ET_IPV4,
        // Total length 28, offset 0xB9 (1480 bytes), MF clear, UDP.
        &[
            0x45, 0, 0x00, 0x1C, 0x55, 0x66, 0x00, 0xB9, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ],
        // Fragment data that happens to look like a UDP header.
        &[0x1A, 0xE1, 0x1A, 0xE1, 0x00, 0x08, 0, 0],
    ]);
    let p = ipv4_packet(&frame);
    assert_eq!(p.fragment, Fragment::NonFirst);
    assert_eq!(p.l4, L4::Other { protocol: 17 });
    assert_eq!(p.l4.ports(), None);
    assert_eq!(p.ip_payload_len, 8);
}

fn eth_ipv6_hbh_fragment_udp() -> Vec<u8> {
    cat(&[
        &MACS,
        &ET_IPV6,
        // Payload length 28, next header hop-by-hop, hop limit 64.
        &[0x60, 0, 0, 0, 0x00, 0x1C, 0, 64],
        &V6_SRC,
        &V6_DST,
        // Hop-by-hop: next fragment, length 0, PadN.
        &[44, 0, 0x01, 0x04, 0, 0, 0, 0],
        // Fragment: next UDP, offset 0, M=1, ident 0xDEADBEEF.
        &[17, 0, 0x00, 0x01, 0xDE, 0xAD, 0xBE, 0xEF],
        &[0x1A, 0xE1, 0x1A, 0xE1, 0x05, 0xDC, 0, 0],
        b"d1:a",
    ])
}

#[test]
fn ipv6_hop_by_hop_and_first_fragment() {
    let frame = eth_ipv6_hbh_fragment_udp();
    let p = ipv4_packet(&frame);
    assert_eq!(p.fragment, Fragment::First);
    assert_eq!(p.ttl, 64);
    assert_eq!(p.ip_payload_len, 12);
    assert_eq!(
        p.l4,
        L4::Udp {
            src_port: 6881,
            dst_port: 6881,
            payload: b"d1:a"
        }
    );
}

#[test]
fn ipv6_non_first_fragment_hides_l4() {
    let frame = cat(&[
        &MACS,
        &ET_IPV6,
        &[0x60, 0, 0, 0, 0x00, 0x10, 44, 64],
        &V6_SRC,
        &V6_DST,
        // Fragment: next TCP, offset 185, M=0.
        &[6, 0, 0x05, 0xC8, 0xDE, 0xAD, 0xBE, 0xEF],
        &[0xC8, 0xD5, 0x1A, 0xE1, 0, 0, 0, 1],
    ]);
    let p = ipv4_packet(&frame);
    assert_eq!(p.fragment, Fragment::NonFirst);
    assert_eq!(p.l4, L4::Other { protocol: 6 });
    assert_eq!(p.ip_payload_len, 8);
}

#[test]
fn esp_and_icmp_are_other() {
    let esp = cat(&[
        &MACS,
        &ET_IPV6,
        &[0x60, 0, 0, 0, 0x00, 0x08, 50, 64],
        &V6_SRC,
        &V6_DST,
        &[0; 8],
    ]);
    assert_eq!(ipv4_packet(&esp).l4, L4::Other { protocol: 50 });
    let icmp = patched(&eth_ipv4_tcp(), &[(IP + 9, 1)]);
    let p = ipv4_packet(&icmp);
    assert_eq!(p.l4, L4::Other { protocol: 1 });
    assert_eq!(p.l4.payload(), &[] as &[u8]);
    assert_eq!(p.ip_payload_len, 24);
}

#[test]
fn non_ip_ethertypes() {
    let arp = cat(&[&MACS, &ET_ARP, &[0; 28]]);
    assert_eq!(
        parse_ethernet(&arp),
        Ok(Parsed::NonIp { ethertype: 0x0806 })
    );
    let tagged_lldp = cat(&[&MACS, &[0x81, 0x00, 0x00, 0x05, 0x88, 0xCC], &[0; 10]]);
    assert_eq!(
        parse_ethernet(&tagged_lldp),
        Ok(Parsed::NonIp { ethertype: 0x88CC })
    );
}

#[test]
fn ethertype_and_version_must_agree() {
    // Ethertype IPv4 carrying an IPv6 header: an error, not a guess.
    let frame = cat(&[
        &MACS,
        &ET_IPV4,
        &[0x60, 0, 0, 0, 0x00, 0x00, 59, 64],
        &V6_SRC,
        &V6_DST,
    ]);
    assert_eq!(parse_ethernet(&frame), Err(ParseError::BadIpv4Version));
    let frame = cat(&[&MACS, &ET_IPV6, &IPV4_TCP, &TCP, &BT, &[0; 20]]);
    assert_eq!(parse_ethernet(&frame), Err(ParseError::BadIpv6Version));
}

#[test]
fn other_link_types_reach_the_same_packet() {
    let eth = eth_ipv4_tcp();
    let ip = eth.get(IP..).expect("frame has an IP part");
    let want = ipv4_packet(&eth);
    let sll = cat(&[&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0], &ET_IPV4, ip]);
    let sll2 = cat(&[
        &ET_IPV4,
        &[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0],
        ip,
    ]);
    let cases: [(LinkType, Vec<u8>); 5] = [
        (LinkType::Ethernet, eth.clone()),
        (LinkType::RawIp, ip.to_vec()),
        (LinkType::LinuxSll, sll),
        (LinkType::LinuxSll2, sll2),
        (LinkType::Null, cat(&[&[2, 0, 0, 0], ip])),
    ];
    for (link, frame) in &cases {
        assert_eq!(parse_link(*link, frame), Ok(Parsed::Ip(want)), "{link:?}");
    }
    assert_eq!(parse_ip(ip), Ok(want));
}

#[test]
fn null_ipv6_in_both_byte_orders_and_sll_with_vlan() {
    let ip6 = eth_qinq_ipv6_tcp();
    let ip6 = ip6.get(22..).expect("IPv6 part");
    for family in [[30, 0, 0, 0], [0, 0, 0, 24], [28, 0, 0, 0]] {
        let frame = cat(&[&family, ip6]);
        let p = match parse_link(LinkType::Null, &frame) {
            Ok(Parsed::Ip(p)) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!(p.src_ip(), IpAddr::V6(Ipv6Addr::from(V6_SRC)));
        assert_eq!(p.vlan_tags, 0);
    }
    // libpcap re-inserts VLAN tags after the SLL header.
    let sll = cat(&[
        &[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0],
        &[0x81, 0x00, 0x00, 0x07],
        &ET_IPV6,
        ip6,
    ]);
    match parse_link(LinkType::LinuxSll, &sll) {
        Ok(Parsed::Ip(p)) => assert_eq!((p.vlan_tags, p.vlan_ids), (1, [7, 0])),
        other => panic!("{other:?}"),
    }
    let sll2_arp = cat(&[&ET_ARP, &[0; 18], &[0; 28]]);
    assert_eq!(
        parse_link(LinkType::LinuxSll2, &sll2_arp),
        Ok(Parsed::NonIp { ethertype: 0x0806 })
    );
}

/// Nine destination-options headers behind a raw IPv6 header.
fn raw_ipv6_nine_extensions() -> Vec<u8> {
    let mut frame = cat(&[&[0x60, 0, 0, 0, 0x00, 72, 60, 64], &V6_SRC, &V6_DST]);
    for i in 0..9 {
        let next = if i == 8 { 59 } else { 60 };
        frame.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    frame
}

/// One input per error, with the error it must produce.
fn error_cases() -> Vec<(LinkType, Vec<u8>, ParseError)> {
    use LinkType::*;
    use ParseError::*;
    let tcp = eth_ipv4_tcp();
    let v6 = eth_qinq_ipv6_tcp();
    let v6_hbh = eth_ipv6_hbh_fragment_udp();
    let udp = patched(&tcp, &[(IP + 9, 17)]);
    let cut = |frame: &[u8], n: usize| frame.get(..n).expect("cut inside the frame").to_vec();
    vec![
        (Ethernet, cut(&tcp, 13), TruncatedEthernet),
        (Ethernet, cat(&[&MACS, &[0x81, 0x00, 0x00]]), TruncatedVlan),
        (
            Ethernet,
            cat(&[
                &MACS,
                &[0x88, 0xA8, 0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3],
                &ET_IPV4,
            ]),
            TooManyVlanTags,
        ),
        (LinuxSll, vec![0; 15], TruncatedLinkHeader),
        (LinuxSll2, vec![0; 19], TruncatedLinkHeader),
        (Null, vec![2, 0, 0], TruncatedLinkHeader),
        (Null, cat(&[&[10, 0, 0, 0], &IPV4_TCP]), UnknownLinkFamily),
        (RawIp, vec![], TruncatedIp),
        (RawIp, cat(&[&[0x55], &IPV4_TCP]), UnknownIpVersion),
        (Ethernet, cut(&tcp, IP + 19), TruncatedIpv4),
        (Ethernet, patched(&tcp, &[(IP, 0x4F)]), TruncatedIpv4),
        (Ethernet, patched(&tcp, &[(IP, 0x55)]), BadIpv4Version),
        (Ethernet, patched(&tcp, &[(IP, 0x44)]), BadIpv4HeaderLength),
        (Ethernet, patched(&tcp, &[(IP + 3, 45)]), BadIpv4TotalLength),
        (Ethernet, patched(&tcp, &[(IP + 3, 19)]), BadIpv4TotalLength),
        (Ethernet, cut(&v6, 22 + 39), TruncatedIpv6),
        (Ethernet, patched(&v6, &[(22, 0x40)]), BadIpv6Version),
        (
            Ethernet,
            patched(&v6, &[(22 + 5, 35)]),
            BadIpv6PayloadLength,
        ),
        (
            Ethernet,
            patched(&v6_hbh, &[(IP + 5, 4)]),
            TruncatedIpv6Extension,
        ),
        (
            Ethernet,
            patched(&v6_hbh, &[(IP + 5, 12)]),
            TruncatedIpv6Extension,
        ),
        (RawIp, raw_ipv6_nine_extensions(), TooManyIpv6Extensions),
        (Ethernet, patched(&tcp, &[(IP + 3, 39)]), TruncatedTcp),
        (
            Ethernet,
            patched(&tcp, &[(L4_AT + 12, 0x40)]),
            BadTcpDataOffset,
        ),
        (
            Ethernet,
            patched(&tcp, &[(L4_AT + 12, 0x70)]),
            BadTcpDataOffset,
        ),
        (Ethernet, patched(&udp, &[(IP + 3, 27)]), TruncatedUdp),
        (
            Ethernet,
            patched(&udp, &[(L4_AT + 4, 0), (L4_AT + 5, 7)]),
            BadUdpLength,
        ),
        (
            Ethernet,
            patched(&udp, &[(L4_AT + 4, 0), (L4_AT + 5, 25)]),
            BadUdpLength,
        ),
    ]
}

#[test]
fn every_error_is_reached() {
    let mut reached = [false; ParseError::COUNT];
    for (link, frame, want) in error_cases() {
        assert_eq!(parse_link(link, &frame), Err(want), "{link:?} {frame:02x?}");
        if let Some(seen) = reached.get_mut(want.index()) {
            *seen = true;
        }
    }
    for e in ParseError::ALL {
        assert!(
            reached.get(e.index()) == Some(&true),
            "no test input reaches {e:?}"
        );
    }
}

#[test]
fn udp_length_shorter_than_ip_payload_trims() {
    // UDP length 12 inside a 24-byte IP payload: 4 bytes of UDP payload
    // (what was the TCP ack field), not the 16 the IP layer holds.
    let udp = patched(
        &eth_ipv4_tcp(),
        &[(IP + 9, 17), (L4_AT + 4, 0), (L4_AT + 5, 12)],
    );
    let p = ipv4_packet(&udp);
    assert_eq!(p.ip_payload_len, 24);
    assert_eq!(p.l4.payload(), &[0, 0, 0, 2]);
}

/// Valid frames, each with its link type, all without padding.
fn valid_frames() -> Vec<(LinkType, Vec<u8>)> {
    vec![
        (LinkType::Ethernet, eth_ipv4_tcp()),
        (LinkType::Ethernet, eth_qinq_ipv6_tcp()),
        (LinkType::Ethernet, eth_ipv4_first_fragment()),
        (LinkType::Ethernet, eth_ipv6_hbh_fragment_udp()),
        (LinkType::RawIp, eth_ipv4_tcp().split_off(IP)),
        (
            LinkType::Null,
            cat(&[&[0, 0, 0, 30], &eth_qinq_ipv6_tcp().split_off(22)]),
        ),
    ]
}

#[test]
fn every_truncation_is_refused_without_panic() {
    for (link, frame) in valid_frames() {
        assert!(
            parse_link(link, &frame).is_ok(),
            "{link:?} fixture must parse"
        );
        for n in 0..frame.len() {
            let prefix = frame.get(..n).expect("n < len");
            // Every fixture's IP length fields cover the whole frame, so
            // any cut leaves a length field pointing past the end.
            assert!(
                parse_link(link, prefix).is_err(),
                "{link:?} cut at {n} parsed"
            );
        }
    }
}

/// What must hold for any frame that parses, however mangled.
fn check_invariants(frame: &[u8], parsed: &Parsed<'_>) {
    let Parsed::Ip(p) = parsed else { return };
    if let L4::Tcp { payload, .. } | L4::Udp { payload, .. } = p.l4 {
        let bounds = frame.as_ptr_range();
        let payload_at = payload.as_ptr_range();
        assert!(bounds.start <= payload_at.start && payload_at.end <= bounds.end);
        assert!(payload.len() <= usize::from(p.ip_payload_len));
    }
    assert!(usize::from(p.ip_payload_len) <= frame.len());
    assert!(p.vlan_tags <= 2);
    if p.fragment == Fragment::NonFirst {
        assert!(matches!(p.l4, L4::Other { .. }));
    }
}

#[test]
fn every_byte_through_several_values() {
    for (link, frame) in valid_frames() {
        let original = parse_link(link, &frame);
        for at in 0..frame.len() {
            let orig = frame.get(at).copied().unwrap_or(0);
            for value in [
                0x00,
                0x01,
                0x0F,
                0x40,
                0x7F,
                0x80,
                0xFF,
                orig ^ 0x01,
                orig ^ 0x80,
            ] {
                let mutated = patched(&frame, &[(at, value)]);
                for any_link in LinkType::ALL {
                    if let Ok(parsed) = parse_link(any_link, &mutated) {
                        check_invariants(&mutated, &parsed);
                    }
                }
                // MAC addresses never change the outcome.
                if link == LinkType::Ethernet && at < 12 {
                    assert_eq!(parse_link(link, &mutated), original, "byte {at} = {value}");
                }
            }
        }
    }
}
