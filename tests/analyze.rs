//! `btblocker analyze` as an operator runs it: text and JSON output, every
//! supported link type, and clear failures on bad input.
mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

const BT: &str = "../shared/corpus/ndpi/positive/bittorrent.pcap";

/// Rewrites an Ethernet capture (IPv4 only) with another link-layer header.
fn reencapsulate(src: &Path, dst: &Path, link: DataLink, header: impl Fn(&[u8]) -> Vec<u8>) {
    let header_cfg = PcapHeader {
        datalink: link,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(dst).unwrap(), header_cfg).unwrap();
    for (i, frame) in read_packets(src).iter().enumerate() {
        assert_eq!(
            &frame[12..14],
            &[0x08, 0x00],
            "test input must be untagged IPv4"
        );
        let mut data = header(frame);
        data.extend_from_slice(&frame[14..]);
        let p = PcapPacket::new(Duration::from_millis(i as u64), data.len() as u32, &data);
        w.write_packet(&p).unwrap();
    }
}

fn analyze_json(file: &Path) -> serde_json::Value {
    let out = run_to_end(&["analyze", "--json", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object per file");
    serde_json::from_str(&text).unwrap()
}

fn bittorrent_flows(report: &serde_json::Value) -> usize {
    report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"] == "bittorrent")
        .count()
}

#[test]
fn json_report_has_the_documented_fields() {
    let r = analyze_json(&repo().join(BT));
    assert_eq!(u(&r["packets"]), 299);
    assert_eq!(bittorrent_flows(&r), 24);
    let f = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["verdict"] == "bittorrent")
        .unwrap();
    for key in [
        "proto",
        "src",
        "sport",
        "dst",
        "dport",
        "verdict",
        "detector",
        "confidence",
        "packet_index",
        "reasons",
    ] {
        assert!(!f[key].is_null(), "flow field {key} missing: {f}");
    }
    assert_eq!(f["proto"], "tcp");
    assert_eq!(f["detector"], "peer_wire_handshake");
    assert_eq!(f["confidence"], "definitive");
    assert_eq!(r["banned_hosts"].as_array().unwrap().len(), 16);
}

/// (verdict, detector, reasons) of each flow, in report order.
fn verdicts_and_reasons(r: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let reasons = f["reasons"].as_array().unwrap();
            (
                text(&f["verdict"]),
                text(&f["detector"]),
                reasons.iter().map(text).collect(),
            )
        })
        .collect()
}

/// The reason chain names every piece of evidence a verdict rests on: the
/// handshake alone for each of bittorrent.pcap's flows; the endpoint cache's
/// word (and why) for a flow judged by it; DHT and uTP on their own flows.
#[test]
fn json_report_gives_each_flow_its_reason_chain() {
    let r = analyze_json(&repo().join(BT));
    let flows = verdicts_and_reasons(&r);
    assert_eq!(flows.len(), 24);
    for f in &flows {
        assert_eq!(
            f,
            &(
                "bittorrent".to_string(),
                "peer_wire_handshake".to_string(),
                vec!["peer_wire_handshake".to_string()]
            )
        );
    }

    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let r = analyze_json(&repo().join("../shared/corpus/ndpi/positive/lru_ipv6_caches.pcapng"));
    let decided: Vec<_> = verdicts_and_reasons(&r)
        .into_iter()
        .filter(|f| f.0 == "bittorrent")
        .map(|f| (f.1, f.2))
        .collect();
    assert_eq!(
        decided,
        [
            ("utp".to_string(), owned(&["utp"])),
            (
                "known_peer".to_string(),
                owned(&["known_peer", "endpoint_confirmed"])
            ),
            ("dht".to_string(), owned(&["dht"])),
            ("dht".to_string(), owned(&["dht"])),
            ("dht".to_string(), owned(&["dht"])),
        ]
    );

    let r = analyze_json(&repo().join("../shared/corpus/ndpi/positive/bittorrent_utp.pcap"));
    let decided: Vec<_> = verdicts_and_reasons(&r).into_iter().map(|f| f.2).collect();
    assert_eq!(decided, [owned(&["dht"]), owned(&["utp"])]);
}

/// Ethernet + IPv4 + TCP (PSH|ACK), sequence number `seq`.
fn tcp_frame(src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + 20 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0]);
    f.extend_from_slice(&[64, 6, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A flow that stays short of a verdict still shows what DPI saw: a
/// BitTorrent client's User-Agent (Strong, which needs a second signal) on
/// plain HTTP, once while undecided and once judged clean. Every flow shows
/// its packets and payload bytes.
#[test]
fn clean_and_undecided_flows_show_their_partial_evidence() {
    let s = Scratch::new("partial");
    let client = [10, 0, 0, 1];
    let server = [10, 0, 0, 2];
    let get =
        b"GET /file.iso HTTP/1.1\r\nHost: example.org\r\nUser-Agent: Transmission/3.00\r\n\r\n";
    let mut frames = Vec::new();
    // Undecided: one request, nothing back.
    frames.push(tcp_frame((client, 40000), (server, 8000), 1, get));
    // Clean: the request, then 7 more client segments and none back (8 =
    // the default `max_payload_packets`).
    let mut seq = 1;
    for i in 0..8 {
        let payload: &[u8] = if i == 0 { get } else { b"more bytes" };
        frames.push(tcp_frame((client, 40001), (server, 8000), seq, payload));
        seq += payload.len() as u32;
    }
    // No evidence at all: no reasons.
    frames.push(tcp_frame((client, 40002), (server, 8000), 1, b"hello"));
    let file = s.path("partial.pcap");
    write_pcap(&file, &frames);
    let r = analyze_json(&file);
    let mut flows: Vec<_> = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["sport"].as_u64().unwrap(),
                f["verdict"].as_str().unwrap().to_string(),
                f["reasons"].clone(),
                // Each flow's packets and payload bytes, both directions.
                (f["packets"].as_u64().unwrap(), f["bytes"].as_u64().unwrap()),
            )
        })
        .collect();
    flows.sort_by_key(|f| f.0);
    let get_len = get.len() as u64;
    assert_eq!(
        flows,
        [
            (
                40000,
                "undecided".into(),
                serde_json::json!(["http_client"]),
                (1, get_len)
            ),
            (
                40001,
                "clean".into(),
                serde_json::json!(["http_client"]),
                (8, get_len + 7 * 10)
            ),
            (40002, "undecided".into(), serde_json::json!([]), (1, 5)),
        ]
    );
}

#[test]
fn every_link_type_gives_the_same_verdicts() {
    let s = Scratch::new("links");
    let src = repo().join(BT);
    type Header = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let cases: [(&str, DataLink, Header); 4] = [
        ("raw.pcap", DataLink::RAW, Box::new(|_| Vec::new())),
        (
            "null.pcap",
            DataLink::NULL,
            Box::new(|_| 2u32.to_le_bytes().to_vec()),
        ),
        (
            "sll.pcap",
            DataLink::LINUX_SLL,
            Box::new(|f| {
                let mut h = vec![0, 0, 0, 1, 0, 6];
                h.extend_from_slice(&f[6..12]);
                h.extend_from_slice(&[0, 0, 0x08, 0x00]);
                h
            }),
        ),
        (
            "sll2.pcap",
            DataLink::LINUX_SLL2,
            Box::new(|f| {
                let mut h = vec![0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6];
                h.extend_from_slice(&f[6..12]);
                h.extend_from_slice(&[0, 0]);
                h
            }),
        ),
    ];
    for (name, link, header) in cases {
        let dst = s.path(name);
        reencapsulate(&src, &dst, link, header);
        let r = analyze_json(&dst);
        assert_eq!(u(&r["packets"]), 299, "{name}");
        assert_eq!(bittorrent_flows(&r), 24, "{name}");
        assert_eq!(u(&r["malformed_frames"]), 0, "{name}");
        assert_eq!(u(&r["skipped_frames"]), 0, "{name}");
    }
}

#[test]
fn text_report_names_flows_and_hosts() {
    let out = run_to_end(&["analyze", "../shared/corpus/ndpi/positive/bt_search.pcap"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2 packets, 2 flows, 2 BitTorrent"), "{text}");
    assert!(text.contains("lsd (definitive)"), "{text}");
    assert!(
        text.contains(
            "UDP 192.168.0.102:6771 -> 239.192.152.143:6771  lsd (definitive) at packet 0 \
             [reasons: lsd]\n"
        ),
        "{text}"
    );
    assert!(text.contains("hosts to ban (1): 192.168.0.102\n"), "{text}");
}

#[test]
fn unreadable_and_foreign_files_fail_clearly_but_others_are_still_analysed() {
    let out = run_to_end(&["analyze", "Cargo.toml", "no-such.pcap", BT]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Cargo.toml: not a pcap or pcapng file"),
        "{err}"
    );
    assert!(err.contains("no-such.pcap: No such file"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("299 packets, 24 flows, 24 BitTorrent"));
}

/// A record as it is written, right or wrong: (ts_sec, ts_frac, caplen field,
/// orig_len field, bytes).
type Record = (u32, u32, u32, u32, Vec<u8>);

/// A little-endian microsecond pcap with `snaplen`, records written as given
/// (no check: they may be damaged on purpose). Returns the file's bytes and
/// each record's offset.
fn pcap_bytes(snaplen: u32, records: &[Record]) -> (Vec<u8>, Vec<u64>) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&snaplen.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut offsets = Vec::new();
    for (sec, frac, caplen, orig, data) in records {
        offsets.push(out.len() as u64);
        for word in [sec, frac, caplen, orig] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(data);
    }
    (out, offsets)
}

/// The BitTorrent capture's frames as well-formed records, 1 ms apart.
fn bt_records() -> Vec<Record> {
    read_packets(&repo().join(BT))
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            (
                1_700_000_000,
                i as u32 * 1_000,
                p.len() as u32,
                p.len() as u32,
                p,
            )
        })
        .collect()
}

/// Runs `analyze --json`; returns the exit code, the report and stderr.
fn analyze_damaged(file: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out = run_to_end(&["analyze", "--json", file.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "{}", describe(&out));
    (
        out.status.code(),
        serde_json::from_str(&text).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_capture_cut_mid_record_keeps_every_packet_before_the_cut() {
    let s = Scratch::new("truncated");
    let records = bt_records();
    let (bytes, offsets) = pcap_bytes(65535, &records);
    // The whole file but the last 10 bytes of the last record.
    let cut = s.path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let last = records.last().unwrap().2;
    let (code, r, err) = analyze_damaged(&cut);
    assert_eq!(code, Some(0), "a truncated tail is a warning: {err}");
    assert_eq!(u(&r["packets"]), 298);
    assert_eq!(
        r["damage"],
        serde_json::json!([{
            "kind": "truncated",
            "record": 298,
            "offset": offsets[298],
            "count": 1,
            "detail": format!("file ends inside a record ({} of {last} bytes)", last - 10),
        }])
    );
    assert!(
        err.contains(&format!(
            "warning: {}: truncated at record 298 (byte {}): file ends inside a record",
            cut.display(),
            offsets[298]
        )),
        "{err}"
    );
    // Exactly what the first 298 packets, undamaged, give.
    let clean = s.path("clean.pcap");
    std::fs::write(&clean, &bytes[..offsets[298] as usize]).unwrap();
    let (code, c, _) = analyze_damaged(&clean);
    assert_eq!(code, Some(0));
    assert_eq!(c["damage"], serde_json::json!([]));
    assert_eq!(r["flows"], c["flows"]);
    assert_eq!(r["banned_hosts"], c["banned_hosts"]);
    assert_eq!(bittorrent_flows(&r), 24);

    // Cut inside the last record's header: the same packets, other words.
    let cut = s.path("cut-header.pcap");
    std::fs::write(&cut, &bytes[..offsets[298] as usize + 9]).unwrap();
    let (code, r, _) = analyze_damaged(&cut);
    assert_eq!(code, Some(0));
    assert_eq!(u(&r["packets"]), 298);
    assert_eq!(r["flows"], c["flows"]);
    assert_eq!(
        r["damage"][0]["detail"],
        "file ends inside a record header (9 of 16 bytes)"
    );
}

#[test]
fn the_text_report_says_where_reading_stopped() {
    let s = Scratch::new("truncated-text");
    let (bytes, offsets) = pcap_bytes(65535, &bt_records());
    let cut = s.path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let out = run_to_end(&["analyze", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(": 298 packets, "), "{text}");
    assert!(
        text.contains(&format!(
            "  damage: truncated at record 298 (byte {}): file ends inside a record (",
            offsets[298]
        )),
        "{text}"
    );
    assert!(
        text.contains("; reading stopped there, the packets before it are analysed\n"),
        "{text}"
    );
}

#[test]
fn frames_longer_than_the_snaplen_on_the_wire_are_normal() {
    let s = Scratch::new("snaplen");
    // Snaplen 96: every frame cut to 96 bytes, its wire length kept.
    let records: Vec<Record> = bt_records()
        .into_iter()
        .map(|(sec, frac, _, orig, mut data)| {
            data.truncate(96);
            (sec, frac, data.len() as u32, orig, data)
        })
        .collect();
    assert!(records.iter().any(|r| r.3 > 96), "some frame was cut");
    let path = s.path("snap96.pcap");
    std::fs::write(&path, pcap_bytes(96, &records).0).unwrap();
    let (code, r, err) = analyze_damaged(&path);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(u(&r["packets"]), 299);
    assert_eq!(r["damage"], serde_json::json!([]));
    assert_eq!(err, "");
}

#[test]
fn a_second_or_more_of_fraction_is_carried_and_reported() {
    let s = Scratch::new("nanos");
    let mut records = bt_records();
    records[10].1 = 1_500_000;
    records[20].1 = 4_000_000;
    let (bytes, offsets) = pcap_bytes(65535, &records);
    let path = s.path("ts.pcap");
    std::fs::write(&path, bytes).unwrap();
    let (code, r, err) = analyze_damaged(&path);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(u(&r["packets"]), 299);
    assert_eq!(bittorrent_flows(&r), 24);
    assert_eq!(
        r["damage"],
        serde_json::json!([{
            "kind": "timestamp",
            "record": 10,
            "offset": offsets[10],
            "count": 2,
            "detail": "fraction of a second 1500000000 ns is 1 s or more (carried into the seconds)",
        }])
    );
}

#[test]
fn a_record_over_the_snaplen_or_absurdly_long_ends_the_file_there() {
    let s = Scratch::new("caplen");
    for (name, snaplen, caplen, kind, detail) in [
        (
            "over.pcap",
            1600,
            1700,
            "caplen_over_snaplen",
            "caplen 1700 exceeds the snaplen 1600",
        ),
        (
            "absurd.pcap",
            u32::MAX,
            0x7fff_0000,
            "bad_length",
            "caplen 2147418112 bytes",
        ),
    ] {
        let mut records = bt_records();
        records[100].2 = caplen;
        let (bytes, offsets) = pcap_bytes(snaplen, &records);
        let path = s.path(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, r, err) = analyze_damaged(&path);
        assert_eq!(code, Some(0), "{name}: {err}");
        assert_eq!(u(&r["packets"]), 100, "{name}");
        assert_eq!(
            r["damage"],
            serde_json::json!([{
                "kind": kind,
                "record": 100,
                "offset": offsets[100],
                "count": 1,
                "detail": detail,
            }]),
            "{name}"
        );
    }
}

#[test]
fn a_pcapng_cut_mid_block_keeps_every_packet_before_the_cut() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::PcapNgWriter;
    let s = Scratch::new("pcapng-cut");
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![],
    })
    .unwrap();
    let packets = read_packets(&repo().join(BT));
    let mut last_offset = 0;
    for (i, p) in packets.iter().enumerate() {
        last_offset = w.get_ref().len() as u64;
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_micros(1_700_000_000_000_000 + i as u64 * 1_000),
            original_len: p.len() as u32,
            data: p.into(),
            options: vec![],
        })
        .unwrap();
    }
    let bytes = w.into_inner();
    let path = s.path("cut.pcapng");
    std::fs::write(&path, &bytes[..bytes.len() - 6]).unwrap();
    let (code, r, err) = analyze_damaged(&path);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(u(&r["packets"]), 298);
    assert_eq!(bittorrent_flows(&r), 24);
    let block = bytes.len() as u64 - last_offset;
    assert_eq!(
        r["damage"],
        serde_json::json!([{
            "kind": "truncated",
            // The interface block is record 0.
            "record": 299,
            "offset": last_offset,
            "count": 1,
            "detail": format!("file ends inside a block ({} of {block} bytes)", block - 6),
        }])
    );
}

#[test]
fn a_file_without_a_whole_header_is_an_error() {
    let s = Scratch::new("no-header");
    let path = s.path("stub.pcap");
    std::fs::write(&path, &pcap_bytes(65535, &[]).0[..10]).unwrap();
    let out = run_to_end(&["analyze", "--json", path.to_str().unwrap(), BT]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stub.pcap: pcap file header cut short (10 of 24 bytes)"),
        "{err}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "the good file is still analysed");
}
