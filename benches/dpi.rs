//! DPI cost: ns per packet for the whole parse → flow → DPI stage on the corpus
//! mix (data/demo.pcap, every flow new at the start of each pass), and ns per
//! call of the engine on each detector's own kind of payload.
//!
//!     cargo bench --no-default-features --bench dpi
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;

use btblocker::config::{FlowsConfig, Mode};
use btblocker::dataplane::counters::WorkerCounters;
use btblocker::dataplane::{Burst, NoEvents, Pipeline};
use btblocker::dpi::{Direction, DpiConfig, DpiEngine, FlowDpiState, PayloadCtx};
use btblocker::tools::capture::for_each_frame;
use btblocker::wire::LinkType;
use btblocker::wire::Transport;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn demo_frames() -> Vec<(Vec<u8>, u64)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo.pcap");
    let mut frames = Vec::new();
    for_each_frame(&path, |f| frames.push((f.data.to_vec(), f.ts_ns)))
        .expect("read data/demo.pcap");
    frames
}

fn pipeline_on_corpus_mix(c: &mut Criterion) {
    let frames = demo_frames();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("demo_pcap_all_stages", |b| {
        b.iter_batched_ref(
            || {
                Pipeline::new(
                    Arc::new(WorkerCounters::default()),
                    Mode::Inline,
                    &FlowsConfig::default(),
                    &DpiConfig::default(),
                    NoEvents,
                )
            },
            |p| {
                for (frame, ts) in &frames {
                    black_box(p.process_link(LinkType::Ethernet, frame, &Burst::offline(*ts)));
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One payload per detector, each the first payload of a fresh flow.
fn detector_inputs() -> Vec<(&'static str, Transport, u16, Vec<u8>)> {
    let mut handshake = b"\x13BitTorrent protocol".to_vec();
    handshake.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
    handshake.extend_from_slice(&[0xab; 20]);
    handshake.extend_from_slice(b"-qB4630-abcdefghijkl");
    let dht = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe".to_vec();
    // uTP ST_SYN (type 4, version 1), conn id 0x1234, seq 1.
    let utp = hex("4100123400000001000000000010000000010000");
    // BEP 15 connect request: magic, action 0, transaction id.
    let tracker = hex("0000041727101980000000000000beef");
    let http = b"GET /announce?info_hash=%12%34%56%78%9a%bc%de%f0%12%34%56%78%9a%bc%de%f0%12%34%56%78&peer_id=-qB4630-abcdefghijkl&port=6881 HTTP/1.1\r\nHost: t.example\r\n\r\n".to_vec();
    let lsd = b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n".to_vec();
    let dns = hex("abcd01000001000000000000076578616d706c6503636f6d0000010001");
    let tls = hex("160301020001000200030300");
    // A high-entropy 300-byte first flight: the MSE shape's first half.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..300)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    vec![
        ("peer_wire_handshake", Transport::Tcp, 6881, handshake),
        ("dht_ping", Transport::Udp, 6881, dht),
        ("utp_syn", Transport::Udp, 6881, utp),
        ("udp_tracker_connect", Transport::Udp, 6969, tracker),
        ("http_announce", Transport::Tcp, 80, http),
        ("lsd", Transport::Udp, 6771, lsd),
        ("dns_guard", Transport::Udp, 53, dns),
        ("tls_guard", Transport::Tcp, 443, tls),
        ("random_300_bytes", Transport::Tcp, 40000, random),
    ]
}

fn per_detector(c: &mut Criterion) {
    let mut engine = DpiEngine::new(&DpiConfig::default());
    let mut g = c.benchmark_group("detector");
    g.throughput(Throughput::Elements(1));
    for (name, transport, dport, payload) in detector_inputs() {
        let mut port = 30000u16;
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                FlowDpiState::default,
                |state| {
                    // A new client port each time, so the known-peer cache
                    // never short-circuits the detector under test.
                    port = port.wrapping_add(1).max(1024);
                    let ctx = PayloadCtx {
                        transport,
                        direction: Direction::Originator,
                        src: IpAddr::from([10, 0, 0, 1]),
                        src_port: port,
                        dst: IpAddr::from([192, 0, 2, 7]),
                        dst_port: dport,
                        tcp_flags: 0x18,
                        tcp_seq: 1,
                        tcp_ack: 1,
                        payload: &payload,
                    };
                    black_box(engine.inspect(state, &ctx, 1_000_000_000))
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, pipeline_on_corpus_mix, per_detector);
criterion_main!(benches);
