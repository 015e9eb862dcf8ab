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
    ] {
        assert!(!f[key].is_null(), "flow field {key} missing: {f}");
    }
    assert_eq!(f["proto"], "tcp");
    assert_eq!(f["detector"], "peer_wire_handshake");
    assert_eq!(f["confidence"], "definitive");
    assert_eq!(r["banned_hosts"].as_array().unwrap().len(), 16);
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
            "UDP 192.168.0.102:6771 -> 239.192.152.143:6771  lsd (definitive) at packet 0"
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
