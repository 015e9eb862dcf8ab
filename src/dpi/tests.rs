//! Engine-level tests: the combining rule, flow state, the known-peer cache
//! and each detector as `inspect` drives it, on packets built from the specs.
use std::net::{IpAddr, Ipv4Addr};

use super::*;

const SEC: u64 = 1_000_000_000;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))
}

/// A bidirectional flow between 198.51.100.1:port_a (originator) and
/// 198.51.100.2:port_b.
struct Flow {
    transport: Transport,
    port_a: u16,
    port_b: u16,
    a: IpAddr,
    b: IpAddr,
    state: FlowDpiState,
}

impl Flow {
    fn tcp(port_a: u16, port_b: u16) -> Self {
        Flow {
            transport: Transport::Tcp,
            port_a,
            port_b,
            a: ip(1),
            b: ip(2),
            state: FlowDpiState::default(),
        }
    }

    fn udp(port_a: u16, port_b: u16) -> Self {
        Flow {
            transport: Transport::Udp,
            ..Flow::tcp(port_a, port_b)
        }
    }

    fn send(&mut self, e: &mut DpiEngine, direction: Direction, payload: &[u8]) -> Inspection {
        let (src, src_port, dst, dst_port) = match direction {
            Direction::Originator => (self.a, self.port_a, self.b, self.port_b),
            Direction::Responder => (self.b, self.port_b, self.a, self.port_a),
        };
        let ctx = PayloadCtx {
            transport: self.transport,
            direction,
            src,
            src_port,
            dst,
            dst_port,
            tcp_flags: if self.transport == Transport::Tcp {
                0x18
            } else {
                0
            },
            payload,
        };
        e.inspect(&mut self.state, &ctx, 100 * SEC)
    }

    fn orig(&mut self, e: &mut DpiEngine, p: &[u8]) -> Inspection {
        self.send(e, Direction::Originator, p)
    }

    fn resp(&mut self, e: &mut DpiEngine, p: &[u8]) -> Inspection {
        self.send(e, Direction::Responder, p)
    }
}

fn engine() -> DpiEngine {
    DpiEngine::new(&DpiConfig::default())
}

fn bt(detector: DetectorId, confidence: Confidence) -> Inspection {
    Inspection::BitTorrent(Detection {
        detector,
        confidence,
    })
}

/// Feeds alternating packets until the engine decides; returns the decision.
fn run_out(e: &mut DpiEngine, f: &mut Flow, mut gen: impl FnMut(usize) -> Vec<u8>) -> Inspection {
    for i in 0..64 {
        let p = gen(i);
        let r = if i.is_multiple_of(2) {
            f.orig(e, &p)
        } else {
            f.resp(e, &p)
        };
        if r != Inspection::Pending {
            return r;
        }
    }
    Inspection::Pending
}

#[test]
fn flow_state_size() {
    // Keeps the per-flow cost visible: the flow table holds one per flow.
    assert_eq!(std::mem::size_of::<FlowDpiState>(), 144);
}

#[test]
fn detector_names_are_unique_snake_case() {
    let names: Vec<_> = DetectorId::ALL.iter().map(|d| d.name()).collect();
    for (i, n) in names.iter().enumerate() {
        assert!(
            n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{n}"
        );
        assert!(!names[i + 1..].contains(n), "{n}");
    }
    assert_eq!(DetectorId::ALL.len(), DetectorId::COUNT);
}

#[test]
fn handshake_in_one_segment_is_definitive() {
    let mut e = engine();
    let mut f = Flow::tcp(50000, 6881);
    let hs = handshake::tests::handshake();
    assert_eq!(
        f.orig(&mut e, &hs),
        bt(DetectorId::PeerWireHandshake, Confidence::Definitive)
    );
    let info = f.state.handshake_info().unwrap();
    assert_eq!(&info.client, b"qB");
    assert_ne!(info.flags & handshake::FLAG_EXTENSION_PROTOCOL, 0);
    // Decided flows stay decided.
    assert_eq!(
        f.orig(&mut e, b"x"),
        bt(DetectorId::PeerWireHandshake, Confidence::Definitive)
    );
}

#[test]
fn handshake_split_over_segments_and_a_retransmission() {
    let mut e = engine();
    let mut f = Flow::tcp(50000, 6881);
    let hs = handshake::tests::handshake();
    assert_eq!(f.orig(&mut e, &hs[..1]), Inspection::Pending);
    // The same 1-byte segment retransmitted must not shift the buffer.
    assert_eq!(f.orig(&mut e, &hs[..1]), Inspection::Pending);
    assert_eq!(f.orig(&mut e, &hs[1..3]), Inspection::Pending);
    assert_eq!(
        f.orig(&mut e, &hs[3..]),
        bt(DetectorId::PeerWireHandshake, Confidence::Definitive)
    );
}

#[test]
fn handshake_after_mse_negotiating_plaintext() {
    let mut e = engine();
    let mut f = Flow::tcp(50000, 6881);
    let r = mse::tests::random_bytes;
    for (i, (dir, len)) in mse::tests::TCP_MISS_SIZES.iter().enumerate() {
        let p = r(i as u32 + 1, *len);
        let res = if *dir == 0 {
            f.orig(&mut e, &p)
        } else {
            f.resp(&mut e, &p)
        };
        assert_eq!(res, Inspection::Pending, "packet {i}");
    }
    assert_eq!(f.state.evidence(DetectorId::Mse), Some(Confidence::Strong));
    assert_eq!(f.orig(&mut e, &r(9, 68)), Inspection::Pending);
    let hs = handshake::tests::handshake();
    assert_eq!(
        f.resp(&mut e, &hs),
        bt(DetectorId::PeerWireHandshake, Confidence::Definitive)
    );
}

#[test]
fn responder_handshake_confirms_its_endpoint_for_later_flows() {
    let mut e = engine();
    let mut f = Flow::tcp(50000, 6881);
    f.orig(&mut e, &handshake::tests::handshake());
    assert!(
        !e.is_known_peer(ip(2), 6881, 100 * SEC),
        "decided on the originator's handshake"
    );
    let mut g = Flow::tcp(50001, 6881);
    g.orig(&mut e, b"\x13Bit");
    assert_eq!(
        g.resp(&mut e, &handshake::tests::handshake()),
        bt(DetectorId::PeerWireHandshake, Confidence::Definitive)
    );
    assert!(e.is_known_peer(ip(2), 6881, 100 * SEC));
    assert!(
        !e.is_known_peer(ip(1), 50001, 100 * SEC),
        "ephemeral client port"
    );
    // An opaque flow to that endpoint, even over UDP.
    let mut h = Flow::udp(40000, 6881);
    assert_eq!(
        h.orig(&mut e, &[0x42; 50]),
        bt(DetectorId::KnownPeer, Confidence::Strong)
    );
    // Not a flow that shows another protocol (an ephemeral port may equal
    // the peer's port).
    let mut tls = Flow::tcp(6881, 443);
    tls.a = ip(2);
    let hello = [
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ];
    assert_eq!(tls.orig(&mut e, &hello), Inspection::Pending);
    // …until the TTL runs out.
    assert!(!e.is_known_peer(ip(2), 6881, 100 * SEC + 31 * 60 * SEC));
}

#[test]
fn dht_query_is_definitive_and_confirms_the_sender() {
    let mut e = engine();
    let mut f = Flow::udp(6881, 23994);
    let q = dht::tests::query("get_peers", "9:info_hash20:mnopqrstuvwxyz123456");
    assert_eq!(
        f.orig(&mut e, &q),
        bt(DetectorId::Dht, Confidence::Definitive)
    );
    assert!(e.is_known_peer(ip(1), 6881, 100 * SEC));
    assert_eq!(
        e.known_peer(ip(2), 23994, 100 * SEC),
        Some(PeerTier::Advertised)
    );
}

#[test]
fn dht_values_are_learned_as_advertised_peers() {
    let mut e = engine();
    let resp = b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:\x0a\x00\x00\x07\x1a\xe1ee1:t2:aa1:y1:re";
    let ctx = PayloadCtx {
        transport: Transport::Udp,
        direction: Direction::Responder,
        src: ip(2),
        src_port: 6881,
        dst: ip(1),
        dst_port: 6881,
        tcp_flags: 0,
        payload: resp,
    };
    e.learn_from_bittorrent_flow(&ctx, 0);
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
    assert_eq!(e.known_peer(peer, 6881, 1), Some(PeerTier::Advertised));
    assert!(!e.is_known_peer(peer, 6881, 1));
}

#[test]
fn mse_alone_is_never_enough_but_an_advertised_peer_corroborates() {
    let r = mse::tests::random_bytes;
    let exchange = |e: &mut DpiEngine, f: &mut Flow| {
        let mut out = Vec::new();
        for (i, (dir, len)) in mse::tests::TCP_MISS_SIZES.iter().enumerate() {
            let p = r(i as u32 + 40, *len);
            out.push(if *dir == 0 {
                f.orig(e, &p)
            } else {
                f.resp(e, &p)
            });
        }
        out
    };
    let mut e = engine();
    let mut f = Flow::tcp(50000, 6881);
    assert!(exchange(&mut e, &mut f)
        .iter()
        .all(|&x| x == Inspection::Pending));
    let tail = run_out(&mut e, &mut f, |i| r(100 + i as u32, 1400));
    assert_eq!(tail, Inspection::Clean);

    let mut e = engine();
    e.add_known_peer(ip(2), 6881, PeerTier::Advertised, 0);
    let mut f = Flow::tcp(50000, 6881);
    let got = exchange(&mut e, &mut f);
    assert_eq!(got[2], bt(DetectorId::Mse, Confidence::Strong));
}

#[test]
fn advertised_peer_alone_condemns_nothing() {
    let mut e = engine();
    e.add_known_peer(ip(2), 8443, PeerTier::Advertised, 0);
    let mut f = Flow::tcp(50000, 8443);
    let r = mse::tests::random_bytes;
    assert_eq!(
        run_out(&mut e, &mut f, |i| r(i as u32 + 1, 1400)),
        Inspection::Clean
    );
}

#[test]
fn tls_and_random_payloads_are_clean() {
    let r = mse::tests::random_bytes;
    let mut e = engine();
    // High-entropy 200-byte payloads both ways: MSE-sized, but the originator
    // keeps talking before any answer… and then a reply: never Definitive.
    let mut f = Flow::tcp(50000, 40000);
    assert_eq!(
        run_out(&mut e, &mut f, |i| r(i as u32 + 7, 200)),
        Inspection::Clean
    );
    assert!(!f.state.score().0);

    let mut hello = vec![
        0x16, 0x03, 0x01, 0x01, 0x3b, 0x01, 0x00, 0x01, 0x37, 0x03, 0x03,
    ];
    hello.extend(r(3, 309));
    let mut g = Flow::tcp(50001, 6881);
    assert_eq!(g.orig(&mut e, &hello), Inspection::Pending);
    assert!(g.state.guarded());
    assert_eq!(
        run_out(&mut e, &mut g, |i| r(i as u32 + 70, 300)),
        Inspection::Clean
    );
}

#[test]
fn utp_syn_alone_is_weak_and_its_answer_is_definitive() {
    let mut e = engine();
    let mut f = Flow::udp(6881, 51413);
    assert_eq!(
        f.orig(&mut e, &utp::tests::syn(0x4000, 7)),
        Inspection::Pending
    );
    assert_eq!(
        f.orig(&mut e, &utp::tests::syn(0x4000, 7)),
        Inspection::Pending
    );
    assert_eq!(
        f.resp(&mut e, &utp::tests::state(0x4000, 3000, 7)),
        bt(DetectorId::Utp, Confidence::Definitive)
    );
    assert!(e.is_known_peer(ip(1), 6881, 100 * SEC));
    assert!(e.is_known_peer(ip(2), 51413, 100 * SEC));
}

#[test]
fn utp_data_with_the_handshake_is_definitive() {
    let mut e = engine();
    let mut f = Flow::udp(6881, 51413);
    let mut d = utp::tests::header(utp::ST_DATA, 0, 0x4001, 5, 6, 7, 8, 9);
    d.extend(handshake::tests::handshake());
    assert_eq!(
        f.orig(&mut e, &d),
        bt(DetectorId::Utp, Confidence::Definitive)
    );
}

#[test]
fn stun_binding_successes_that_parse_as_utp_never_condemn() {
    let mut e = engine();
    let mut f = Flow::udp(3478, 50000);
    let stun = |conn: u16| {
        let mut s = vec![0x01, 0x01];
        s.extend_from_slice(&conn.to_be_bytes());
        s.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        s.extend_from_slice(&[7; 12]);
        s.extend_from_slice(&[0, 4, 1, 2, 3, 4]);
        s.resize(20 + usize::from(conn), 0x55);
        s
    };
    // Ids differing by one and agreeing seq/ack fields, as a naive uTP
    // cross-direction check would want: the STUN guard voids it.
    assert_eq!(
        run_out(&mut e, &mut f, |i| stun(if i.is_multiple_of(2) {
            12
        } else {
            13
        })),
        Inspection::Clean
    );
}

#[test]
fn udp_tracker_connect_alone_waits_and_its_response_decides() {
    let mut e = engine();
    let mut f = Flow::udp(40000, 6969);
    assert_eq!(
        f.orig(&mut e, &udp_tracker::tests::connect_request(0x1234)),
        Inspection::Pending
    );
    assert_eq!(
        f.state.evidence(DetectorId::UdpTracker),
        Some(Confidence::Strong)
    );
    assert_eq!(
        f.resp(&mut e, &udp_tracker::tests::connect_response(0x1234, 99)),
        bt(DetectorId::UdpTracker, Confidence::Definitive)
    );
    // Trackers are not peers: nothing cached.
    assert_eq!(e.known_peer(ip(2), 6969, 100 * SEC), None);
}

#[test]
fn framing_alone_is_not_enough_but_the_extension_handshake_is() {
    let mut e = engine();
    let mut f = Flow::tcp(50000, 6881);
    let mut seg = framing::tests::msg(4, &7u32.to_be_bytes());
    seg.extend(framing::tests::msg(2, &[]));
    assert_eq!(f.orig(&mut e, &seg), Inspection::Pending);
    assert_eq!(
        f.resp(&mut e, &framing::tests::msg(1, &[])),
        Inspection::Pending
    );
    assert_eq!(
        f.state.evidence(DetectorId::PeerWireFraming),
        Some(Confidence::Strong)
    );
    assert_eq!(
        f.resp(&mut e, &framing::tests::ext_handshake()),
        bt(DetectorId::ExtensionHandshake, Confidence::Definitive)
    );
}

#[test]
fn framing_plus_mse_would_need_both_strong() {
    // Two Strong detectors reach the threshold (2 + 2).
    let mut s = FlowDpiState::default();
    s.note(DetectorId::PeerWireFraming, Confidence::Strong);
    assert_eq!(s.score(), (false, true, 2));
    s.note(DetectorId::HttpClient, Confidence::Weak);
    s.note(DetectorId::Lsd, Confidence::Weak);
    assert_eq!(s.score(), (false, true, 4));
    // Weak signals alone never condemn, however many.
    let mut w = FlowDpiState::default();
    for id in [
        DetectorId::Mse,
        DetectorId::Utp,
        DetectorId::UdpTracker,
        DetectorId::PeerWireFraming,
    ] {
        w.note(id, Confidence::Weak);
    }
    assert_eq!(w.score(), (false, false, 4));
    let e = engine();
    let ctx = PayloadCtx {
        transport: Transport::Tcp,
        direction: Direction::Originator,
        src: ip(1),
        src_port: 1,
        dst: ip(2),
        dst_port: 2,
        tcp_flags: 0,
        payload: b"",
    };
    w.payload_packets = [1, 1];
    assert_eq!(e.judge(&mut w, &ctx, 0), Inspection::Pending);
    assert_eq!(
        e.judge(&mut s, &ctx, 0),
        bt(DetectorId::PeerWireFraming, Confidence::Strong)
    );
}

#[test]
fn guards_void_shape_evidence_but_not_definitive_content() {
    let mut s = FlowDpiState::default();
    s.note(DetectorId::Mse, Confidence::Strong);
    s.note(DetectorId::HttpClient, Confidence::Strong);
    s.apply_guard();
    assert_eq!(s.evidence(DetectorId::Mse), None);
    assert_eq!(s.evidence(DetectorId::HttpClient), Some(Confidence::Strong));
    assert_eq!(s.tally.lead.unwrap().detector, DetectorId::HttpClient);
    s.note(DetectorId::Utp, Confidence::Strong);
    assert_eq!(s.evidence(DetectorId::Utp), None);
    s.note(DetectorId::Utp, Confidence::Definitive);
    assert_eq!(s.evidence(DetectorId::Utp), Some(Confidence::Definitive));
}

#[test]
fn http_announce_is_definitive_and_user_agent_needs_company() {
    let mut e = engine();
    let mut f = Flow::tcp(50000, 80);
    let req = b"GET /announce?info_hash=%12%34%56%78%9a%bc%de%f1%23%45%67%89%ab%cd%ef%12%34%56%78%9a&peer_id=-TR3000-abcdefghijkl&port=51413 HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_eq!(
        f.orig(&mut e, req),
        bt(DetectorId::HttpTracker, Confidence::Definitive)
    );

    // A later request on a keep-alive connection is inspected too.
    let mut k = Flow::tcp(50003, 8080);
    assert_eq!(
        k.orig(&mut e, b"GET /favicon.ico HTTP/1.1\r\nHost: t\r\n\r\n"),
        Inspection::Pending
    );
    assert_eq!(
        k.resp(&mut e, b"HTTP/1.1 404 Not Found\r\n\r\n"),
        Inspection::Pending
    );
    assert_eq!(
        k.orig(&mut e, req),
        bt(DetectorId::HttpTracker, Confidence::Definitive)
    );

    let mut g = Flow::tcp(50001, 8080);
    let ua =
        b"GET /file.iso HTTP/1.1\r\nUser-Agent: qBittorrent/4.6.5\r\nRange: bytes=0-16383\r\n\r\n";
    assert_eq!(g.orig(&mut e, ua), Inspection::Pending);
    let mut h = Flow::tcp(50002, 8080);
    let seed = b"GET /seed?info_hash=%12%34%56%78%9a%bc%de%f1%23%45%67%89%ab%cd%ef%12%34%56%78%9a&piece=1 HTTP/1.1\r\nUser-Agent: BitTorrent/7.10\r\n\r\n";
    // Two Strong signals (a lone info_hash, a client User-Agent): 2 + 2 points.
    assert_eq!(
        h.orig(&mut e, seed),
        bt(DetectorId::HttpTracker, Confidence::Strong)
    );
    assert_eq!(
        h.state.evidence(DetectorId::HttpClient),
        Some(Confidence::Strong)
    );
}

#[test]
fn lsd_to_the_multicast_group_is_definitive() {
    let mut e = engine();
    let mut f = Flow::udp(6771, 6771);
    f.b = IpAddr::V4(lsd::LSD_V4);
    let msg = b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n\r\n";
    assert_eq!(
        f.orig(&mut e, msg),
        bt(DetectorId::Lsd, Confidence::Definitive)
    );
}

#[test]
fn socks5_relayed_dht_is_detected_without_learning() {
    let mut e = engine();
    let mut f = Flow::udp(40000, 1080);
    let mut d = vec![0, 0, 0, 1, 10, 0, 0, 9, 0x1a, 0xe1];
    d.extend(dht::tests::query("ping", ""));
    assert_eq!(
        f.orig(&mut e, &d),
        bt(DetectorId::Dht, Confidence::Definitive)
    );
    assert_eq!(e.known_peer(ip(1), 40000, 100 * SEC), None);
}

#[test]
fn dns_is_clean() {
    let mut e = engine();
    let mut f = Flow::udp(40000, 53);
    let q = [
        0x41, 0x00, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1, 0,
    ];
    assert_eq!(run_out(&mut e, &mut f, |_| q.to_vec()), Inspection::Clean);
}

#[test]
fn clean_after_the_packet_budget() {
    let mut e = DpiEngine::new(&DpiConfig {
        max_payload_packets: 2,
        ..DpiConfig::default()
    });
    let mut f = Flow::udp(40000, 40001);
    assert_eq!(f.orig(&mut e, b"hello"), Inspection::Pending);
    assert_eq!(f.orig(&mut e, b"hello again"), Inspection::Clean);
    let mut g = Flow::udp(40002, 40003);
    assert_eq!(g.orig(&mut e, b"a"), Inspection::Pending);
    assert_eq!(g.resp(&mut e, b"b"), Inspection::Pending);
    assert_eq!(g.orig(&mut e, b"c"), Inspection::Pending);
    assert_eq!(g.resp(&mut e, b"d"), Inspection::Clean);
}

#[test]
fn switched_off_detectors_do_not_fire() {
    let cfg = DpiConfig {
        detectors: DetectorSwitches::all().without(DetectorId::Dht),
        ..DpiConfig::default()
    };
    let mut e = DpiEngine::new(&cfg);
    let mut f = Flow::udp(6881, 6881);
    assert_eq!(
        f.orig(&mut e, &dht::tests::query("ping", "")),
        Inspection::Pending
    );
    let cfg = DpiConfig {
        detectors: DetectorSwitches::all().without(DetectorId::KnownPeer),
        ..DpiConfig::default()
    };
    let mut e = DpiEngine::new(&cfg);
    // The cache stays allocated (a reload may switch the detector back on),
    // but a confirmed peer no longer condemns a flow.
    assert!(e.known.capacity() > 0);
    e.add_known_peer(ip(2), 6881, PeerTier::Confirmed, 0);
    let mut f = Flow::udp(40000, 6881);
    assert_eq!(f.orig(&mut e, &[0x42; 50]), Inspection::Pending);
    // Switched on at run time (a reload): the next flow is judged by it.
    e.set_detectors(DetectorSwitches::all());
    let mut g = Flow::udp(40001, 6881);
    assert_eq!(
        g.orig(&mut e, &[0x42; 50]),
        bt(DetectorId::KnownPeer, Confidence::Strong)
    );
}

#[test]
fn arbitrary_bytes_never_panic_and_never_condemn() {
    // Deterministic noise, and truncations of every valid message above.
    let mut e = engine();
    let valid: Vec<Vec<u8>> = vec![
        handshake::tests::handshake(),
        framing::tests::ext_handshake(),
        dht::tests::query("get_peers", "9:info_hash20:mnopqrstuvwxyz123456"),
        utp::tests::syn(1, 2),
        udp_tracker::tests::announce(5, 6, b"-qB4650-abcdefghijkl"),
    ];
    for v in &valid {
        for cut in 0..v.len() {
            for t in [Transport::Tcp, Transport::Udp] {
                let mut f = Flow::udp(40000, 40001);
                f.transport = t;
                let _ = f.orig(&mut e, &v[..cut]);
                let _ = f.resp(&mut e, &v[cut..]);
            }
        }
    }
    let mut e = engine();
    let mut condemned = 0;
    for seed in 1..300u32 {
        let len = (seed as usize * 37) % 1500;
        let noise = mse::tests::random_bytes(seed, len);
        for t in [Transport::Tcp, Transport::Udp] {
            let mut f = Flow::udp(40000 + seed as u16, 40001);
            f.transport = t;
            if let Inspection::BitTorrent(_) = f.orig(&mut e, &noise) {
                condemned += 1;
            }
            if let Inspection::BitTorrent(_) = f.resp(&mut e, &noise[noise.len() / 2..]) {
                condemned += 1;
            }
        }
    }
    assert_eq!(condemned, 0);
}
