//! The DPI engine against the public corpus (../shared/corpus/ndpi): exact
//! BitTorrent flow and banned-host counts per file, compared with nDPI's ground
//! truth (expected.tsv). Runs `analyze`'s code, the same pipeline the workers run.
use std::path::PathBuf;

use btblocker::config::FlowsConfig;
use btblocker::dpi::DpiConfig;
use btblocker::tools::analyze::analyze_file;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/ndpi")
}

/// One row of expected.tsv: (class, file, packets, nDPI's BitTorrent flows).
fn ground_truth() -> Vec<(String, String, u64, u64)> {
    let text = std::fs::read_to_string(corpus().join("expected.tsv"))
        .expect("corpus present beside the repo (../shared)");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                c[1].to_string(),
                c[4].parse().unwrap(),
                c[6].parse().unwrap(),
            )
        })
        .collect()
}

/// btblocker's exact result per positive file: (file, BitTorrent flows, hosts to ban).
/// `bt-dns.pcap` and `tls_torrent.pcapng` are hostname-only positives in nDPI's
/// truth (a DNS lookup / a TLS SNI of utorrent.com) and carry no BitTorrent protocol.
const POSITIVES: &[(&str, usize, usize)] = &[
    ("positive/bittorrent.pcap", 24, 16),
    // The MSE handshake (Strong on its own) is followed by a plaintext
    // peer-wire handshake in payload packet 6, which decides the flow.
    ("positive/bittorrent_tcp_miss.pcapng", 1, 2),
    // DHT + a uTP connection on loopback (127.0.0.1 is never banned).
    ("positive/bittorrent_utp.pcap", 2, 2),
    ("positive/bt-dns.pcap", 0, 0),
    ("positive/bt-http.pcapng", 1, 2),
    // Two LSD announces from one host, further apart than the UDP idle timeout
    // (so two flows for us, one for nDPI); the multicast group is not a host to ban.
    ("positive/bt_search.pcap", 2, 1),
    ("positive/h323_false_positive.pcap", 1, 2),
    // 3 DHT + 1 uTP + 1 flow to a peer confirmed earlier (known-peer cache).
    ("positive/lru_ipv6_caches.pcapng", 5, 6),
    ("positive/targusdataspeed_false_positives.pcap", 2, 3),
    ("positive/tls_torrent.pcapng", 0, 0),
    // 27 DHT flows in nDPI; our flow table splits one long flow at its idle timeout.
    ("positive/viber_mobile.pcap", 28, 27),
];

#[test]
fn every_corpus_file_parses_with_its_packet_count() {
    for (_, file, packets, _) in ground_truth() {
        let report = analyze_file(
            &corpus().join(&file),
            &FlowsConfig::default(),
            &DpiConfig::default(),
            false,
        )
        .unwrap();
        assert_eq!(report.packets, packets, "{file}");
        assert_eq!(report.skipped_frames, 0, "{file}");
    }
}

#[test]
fn negatives_have_no_bittorrent_and_no_bans() {
    for (class, file, _, _) in ground_truth() {
        if class != "negative" {
            continue;
        }
        let report = analyze_file(
            &corpus().join(&file),
            &FlowsConfig::default(),
            &DpiConfig::default(),
            false,
        )
        .unwrap();
        let bt: Vec<_> = report.bittorrent_flows().collect();
        assert!(bt.is_empty(), "{file}: false positives {bt:#?}");
        assert!(report.banned_hosts.is_empty(), "{file}");
    }
}

#[test]
fn positives_match_exact_counts_and_cover_ndpi() {
    let listed: Vec<&str> = POSITIVES.iter().map(|p| p.0).collect();
    for (class, file, _, _) in ground_truth() {
        assert!(
            class != "positive" || listed.contains(&file.as_str()),
            "{file} has no expected counts"
        );
    }
    for (file, flows, hosts) in POSITIVES {
        let (_, _, _, ndpi) = ground_truth()
            .into_iter()
            .find(|r| r.1 == *file)
            .expect("file in expected.tsv");
        let report = analyze_file(
            &corpus().join(file),
            &FlowsConfig::default(),
            &DpiConfig::default(),
            false,
        )
        .unwrap();
        let found = report.bittorrent_flows().count();
        assert_eq!(found, *flows, "{file}: BitTorrent flows");
        assert_eq!(report.banned_hosts.len(), *hosts, "{file}: hosts to ban");
        if !file.ends_with("bt-dns.pcap") && !file.ends_with("tls_torrent.pcapng") {
            assert!(
                found as u64 >= ndpi,
                "{file}: found {found} < nDPI's {ndpi}"
            );
        }
    }
}
