//! False-positive guards: recognisers for protocols whose packets can look like
//! uTP headers, tracker datagrams, peer-wire framing or an MSE key exchange.
//! A flow on which a guard fires is "guarded": the shape heuristics (which only
//! ever give Weak or Strong evidence) stand down for it, while content
//! detectors whose match is Definitive still apply.
//!
//! The list comes from the false positives other engines met in real traffic
//! (see shared/research/btblocker.md §2.5 and ndpi.md §7): STUN, DTLS, CAPWAP,
//! DNS, DHCP, WireGuard, QUIC, Teredo, AFS RX, RakNet over UDP; TLS, SSH,
//! HTTP, MSDO and Gnutella over TCP. Each check is on fixed offsets with exact
//! sizes or magic numbers, so a guard does not fire on BitTorrent itself.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Guard {
    Stun,
    StunClassic,
    Dtls,
    Capwap,
    Dns,
    Dhcp,
    Wireguard,
    Quic,
    Teredo,
    AfsRx,
    RakNet,
    Tls,
    Ssh,
    Http,
    Msdo,
    Gnutella,
}

const STUN_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
/// RFC 3489 message types: Binding and Shared Secret request/success/error.
const STUN_CLASSIC_TYPES: [u16; 6] = [0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112];
const CAPWAP_PORTS: [u16; 2] = [5246, 5247];
const TEREDO_PORT: u16 = 3544;
const DNS_PORTS: [u16; 3] = [53, 5353, 5355];
const DHCP_PORTS: [u16; 4] = [67, 68, 546, 547];
const DHCP_COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];
const AFS_PORTS: std::ops::RangeInclusive<u16> = 7000..=7009;
const RAKNET_MAGIC: [u8; 16] = [
    0x00, 0xff, 0xff, 0x00, 0xfe, 0xfe, 0xfe, 0xfe, 0xfd, 0xfd, 0xfd, 0xfd, 0x12, 0x34, 0x56, 0x78,
];

fn be16(d: &[u8], at: usize) -> Option<u16> {
    let b = d.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Guards for a UDP datagram.
pub(super) fn udp(d: &[u8], src_port: u16, dst_port: u16) -> Option<Guard> {
    let either = |ports: &[u16]| ports.contains(&src_port) || ports.contains(&dst_port);
    if either(&CAPWAP_PORTS) {
        return Some(Guard::Capwap);
    }
    if either(&[TEREDO_PORT]) {
        return Some(Guard::Teredo);
    }
    if stun(d) {
        return Some(Guard::Stun);
    }
    if stun_classic(d) {
        return Some(Guard::StunClassic);
    }
    if dtls(d) {
        return Some(Guard::Dtls);
    }
    if either(&DNS_PORTS) && dns(d) {
        return Some(Guard::Dns);
    }
    if either(&DHCP_PORTS) && d.get(236..240) == Some(&DHCP_COOKIE[..]) {
        return Some(Guard::Dhcp);
    }
    if wireguard(d) {
        return Some(Guard::Wireguard);
    }
    if quic_long_header(d) {
        return Some(Guard::Quic);
    }
    if (AFS_PORTS.contains(&src_port) || AFS_PORTS.contains(&dst_port)) && afs_rx(d) {
        return Some(Guard::AfsRx);
    }
    if raknet(d) {
        return Some(Guard::RakNet);
    }
    None
}

/// Guards for the first payload of a TCP direction.
pub(super) fn tcp(d: &[u8]) -> Option<Guard> {
    match d {
        // TLS record: handshake/alert/CCS/application data, version 3.x.
        [20..=23, 3, 0..=4, ..] => Some(Guard::Tls),
        _ if d.starts_with(b"SSH-") => Some(Guard::Ssh),
        _ if d.starts_with(b"\x0eSwarm protocol") => Some(Guard::Msdo),
        _ if d.starts_with(b"GNUTELLA") => Some(Guard::Gnutella),
        _ if http_start(d) => Some(Guard::Http),
        _ => None,
    }
}

fn http_start(d: &[u8]) -> bool {
    const STARTS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"OPTIONS ",
        b"CONNECT ",
        b"DELETE ",
        b"PATCH ",
        b"HTTP/1.",
    ];
    STARTS.iter().any(|s| d.starts_with(s))
}

/// RFC 5389: two zero bits, the magic cookie, a length that is the rest.
fn stun(d: &[u8]) -> bool {
    d.len() >= 20
        && d[0] & 0xc0 == 0
        && d[4..8] == STUN_COOKIE
        && be16(d, 2).is_some_and(|n| n.is_multiple_of(4) && usize::from(n) + 20 == d.len())
}

/// RFC 3489: a known message type and an exact attribute length.
fn stun_classic(d: &[u8]) -> bool {
    d.len() >= 20
        && be16(d, 0).is_some_and(|t| STUN_CLASSIC_TYPES.contains(&t))
        && be16(d, 2).is_some_and(|n| n.is_multiple_of(4) && usize::from(n) + 20 == d.len())
}

/// DTLS record: content type 20..=25, version 1.0/1.2/1.3 (0xfeff/0xfefd/0xfefc),
/// a record length that fits the datagram.
fn dtls(d: &[u8]) -> bool {
    d.len() >= 13
        && (20..=25).contains(&d[0])
        && matches!(be16(d, 1), Some(0xfeff | 0xfefd | 0xfefc))
        && be16(d, 11).is_some_and(|n| usize::from(n) + 13 <= d.len())
}

/// A DNS header with a sane opcode and section counts.
fn dns(d: &[u8]) -> bool {
    let (Some(flags), Some(qd), Some(an)) = (be16(d, 2), be16(d, 4), be16(d, 6)) else {
        return false;
    };
    let opcode = (flags >> 11) & 0x0f;
    d.len() >= 12 && opcode <= 6 && qd <= 16 && an <= 512
}

/// WireGuard: message types 1–4 with three zero reserved bytes and the exact
/// sizes of the handshake messages (data messages: 32 + 16·k bytes).
fn wireguard(d: &[u8]) -> bool {
    match d {
        [1, 0, 0, 0, ..] => d.len() == 148,
        [2, 0, 0, 0, ..] => d.len() == 92,
        [3, 0, 0, 0, ..] => d.len() == 64,
        [4, 0, 0, 0, ..] => d.len() >= 32 && (d.len() - 32).is_multiple_of(16),
        _ => false,
    }
}

/// QUIC long header (RFC 9000/9369 and drafts, mvfst, version negotiation),
/// and Google QUIC's public header carrying a `Q0xx` version.
fn quic_long_header(d: &[u8]) -> bool {
    if let [b0, ..] = d {
        if b0 & 0xc0 == 0xc0 {
            let version = be32(d, 1).unwrap_or(u32::MAX);
            let known = matches!(version, 0 | 1 | 0x6b33_43cf)
                || version & 0xffff_ff00 == 0xff00_0000
                || version & 0xffff_fff0 == 0xface_b000
                || version & 0xffff_0000 == 0x5130_0000;
            let dcid_len = d.get(5).copied().unwrap_or(u8::MAX);
            if known && dcid_len <= 20 {
                return true;
            }
        }
        // gQUIC (Q043 and older): public flags with the version bit, 8-byte
        // connection id, then the ASCII version.
        if b0 & 0x01 != 0 && b0 & 0x80 == 0 {
            if let Some(v) = d.get(9..13) {
                return v[0] == b'Q' && v[1..].iter().all(u8::is_ascii_digit);
            }
        }
    }
    false
}

/// AFS RX header: packet type 1–13 at byte 20, flags at 21.
fn afs_rx(d: &[u8]) -> bool {
    d.len() >= 28 && (1..=13).contains(&d[20])
}

/// RakNet offline messages carry a 16-byte magic after the message id (open
/// connection requests), after id + time (unconnected ping) or after
/// id + time + GUID (unconnected pong).
fn raknet(d: &[u8]) -> bool {
    [1, 9, 17]
        .iter()
        .any(|&at| d.get(at..at + 16) == Some(&RAKNET_MAGIC[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_binding_request_and_success() {
        let mut req = vec![0x00, 0x01, 0x00, 0x08];
        req.extend_from_slice(&STUN_COOKIE);
        req.extend_from_slice(&[9; 12]);
        req.extend_from_slice(&[0x80, 0x22, 0x00, 0x04, b'a', b'b', b'c', b'd']);
        assert_eq!(udp(&req, 40000, 3478), Some(Guard::Stun));
        let mut ok = req.clone();
        ok[1] = 0x01;
        ok[0] = 0x01;
        assert_eq!(udp(&ok, 40000, 40001), Some(Guard::Stun));
        // A length that does not match the datagram is not STUN.
        ok[3] = 0x0c;
        assert_eq!(udp(&ok, 40000, 40001), None);
    }

    #[test]
    fn stun_classic_binding() {
        let mut req = vec![0x01, 0x01, 0x00, 0x04];
        req.extend_from_slice(&[0x5a; 16]);
        req.extend_from_slice(&[0, 1, 0, 0]);
        assert_eq!(udp(&req, 40000, 40001), Some(Guard::StunClassic));
    }

    #[test]
    fn dtls_record() {
        let mut rec = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 4];
        rec.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(udp(&rec, 40000, 40001), Some(Guard::Dtls));
        rec[2] = 0xfa;
        assert_eq!(udp(&rec, 40000, 40001), None);
    }

    #[test]
    fn port_guards() {
        assert_eq!(udp(b"anything", 5246, 40000), Some(Guard::Capwap));
        assert_eq!(udp(b"anything", 40000, 5247), Some(Guard::Capwap));
        assert_eq!(udp(b"anything", 3544, 40000), Some(Guard::Teredo));
    }

    #[test]
    fn dns_needs_its_port_and_header() {
        let q = [
            0x41, 0x00, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1, 0,
        ];
        assert_eq!(udp(&q, 40000, 53), Some(Guard::Dns));
        assert_eq!(udp(&q, 40000, 40001), None);
    }

    #[test]
    fn dhcp_cookie() {
        let mut d = vec![1u8; 300];
        d[236..240].copy_from_slice(&DHCP_COOKIE);
        assert_eq!(udp(&d, 68, 67), Some(Guard::Dhcp));
        assert_eq!(udp(&d, 40000, 40001), None);
    }

    #[test]
    fn wireguard_messages() {
        let mut init = vec![1, 0, 0, 0];
        init.resize(148, 0x77);
        assert_eq!(udp(&init, 40000, 51820), Some(Guard::Wireguard));
        let mut data = vec![4, 0, 0, 0];
        data.resize(32 + 64, 0x77);
        assert_eq!(udp(&data, 40000, 51820), Some(Guard::Wireguard));
        init.push(0);
        assert_eq!(udp(&init, 40000, 51820), None);
    }

    #[test]
    fn quic_headers() {
        let mut v1 = vec![0xc3, 0, 0, 0, 1, 8];
        v1.resize(1200, 0);
        assert_eq!(udp(&v1, 40000, 443), Some(Guard::Quic));
        let mut draft = vec![0xc0, 0xff, 0, 0, 29, 8];
        draft.resize(100, 0);
        assert_eq!(udp(&draft, 40000, 443), Some(Guard::Quic));
        let mut gquic = vec![0x0d, 1, 2, 3, 4, 5, 6, 7, 8, b'Q', b'0', b'4', b'3'];
        gquic.resize(100, 0);
        assert_eq!(udp(&gquic, 40000, 443), Some(Guard::Quic));
        let mut unknown = vec![0xc3, 0x12, 0x34, 0x56, 0x78, 8];
        unknown.resize(100, 0);
        assert_eq!(udp(&unknown, 40000, 443), None);
    }

    #[test]
    fn afs_rx_and_raknet() {
        let mut rx = vec![0u8; 40];
        rx[20] = 1;
        assert_eq!(udp(&rx, 7001, 40000), Some(Guard::AfsRx));
        assert_eq!(udp(&rx, 40000, 40001), None);
        let mut ping = vec![0x01, 0, 0, 0, 0, 0, 0, 0, 1];
        ping.extend_from_slice(&RAKNET_MAGIC);
        ping.extend_from_slice(&[0; 8]);
        assert_eq!(udp(&ping, 40000, 19132), Some(Guard::RakNet));
    }

    #[test]
    fn tcp_guards() {
        assert_eq!(tcp(&[0x16, 3, 1, 2, 0, 1]), Some(Guard::Tls));
        assert_eq!(tcp(b"SSH-2.0-OpenSSH_9.6\r\n"), Some(Guard::Ssh));
        assert_eq!(tcp(b"GET / HTTP/1.1\r\n"), Some(Guard::Http));
        assert_eq!(tcp(b"HTTP/1.1 200 OK\r\n"), Some(Guard::Http));
        assert_eq!(tcp(b"GNUTELLA CONNECT/0.6\r\n"), Some(Guard::Gnutella));
        assert_eq!(tcp(b"\x0eSwarm protocol\0\0"), Some(Guard::Msdo));
        assert_eq!(tcp(b"\x13BitTorrent protocol"), None);
        assert_eq!(tcp(&[0x5a, 0x05, 0xbe, 0x68]), None);
    }

    #[test]
    fn bittorrent_udp_is_not_guarded() {
        assert_eq!(
            udp(
                b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
                6881,
                6881
            ),
            None
        );
        let syn = crate::dpi::utp::tests::syn(0x1234, 1);
        assert_eq!(udp(&syn, 6881, 51413), None);
    }
}
