//! The DPI engine against the capture lab (`tests/data/lab`, made by
//! `scripts/capture-lab.sh`; see its MANIFEST): real BitTorrent clients with
//! encryption required (TCP, uTP, IPv6), at default settings, and benign
//! look-alikes (Shadowsocks, obfs4, TLS, SSH, random streams, an
//! envelope-shaped random ping-pong). Exact hosts and flow counts per file,
//! against the ground truth in `truth.tsv`. Runs `analyze`'s code, the same
//! pipeline the workers run.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use btblocker::config::FlowsConfig;
use btblocker::dpi::DpiConfig;
use btblocker::tools::analyze::{analyze_file, FileReport};

fn lab() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/lab")
}

/// truth.tsv: file → (addresses labelled `ban`, addresses labelled `never`).
fn truth() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let text = std::fs::read_to_string(lab().join("truth.tsv")).expect("tests/data/lab/truth.tsv");
    let mut files: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let c: Vec<&str> = line.split('\t').collect();
        let entry = files.entry(c[0].to_string()).or_default();
        match c[2] {
            "ban" => entry.0.insert(c[1].to_string()),
            "never" => entry.1.insert(c[1].to_string()),
            other => panic!("label {other:?} in truth.tsv"),
        };
    }
    files
}

fn analyze(file: &str) -> FileReport {
    analyze_file(
        &lab().join(file),
        &FlowsConfig::default(),
        &DpiConfig::default(),
        false,
    )
    .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Per file: (flows, flows judged BitTorrent). The flows left undecided in
/// the encrypted captures carry no exchange to judge (a SYN and a RST, or
/// A1 alone, from a peer that dropped a duplicate connection), except one
/// per file that stopped after the key exchange (A1 and B1 only).
/// `scripts/lab-figures.py tests/data/lab` prints the shares.
const EXPECTED: &[(&str, usize, usize)] = &[
    // Encryption required, TCP only, no tracker/DHT/LSD/PEX in sight: MSE
    // (size signatures, message lengths) and the endpoints it confirmed.
    ("enc-tcp-v4.pcap", 21, 17),
    ("enc-tcp-v6.pcap", 21, 15),
    // uTP only: the plaintext uTP header, then the known-peer cache.
    ("enc-utp-v4.pcap", 3, 3),
    ("default-dht.pcap", 30, 26),
    // 24 obfs4, 40 Shadowsocks, 120 envelope-shaped random ping-pong,
    // 30 TLS, 12 SSH: none.
    ("benign-envelope.pcap", 226, 0),
    ("benign-obfs4.pcap", 3, 0),
    ("benign-raw.pcap", 6, 0),
    ("benign-ss.pcap", 4, 0),
    ("benign-ssh.pcap", 3, 0),
    ("benign-tls.pcap", 3, 0),
];

#[test]
fn every_lab_capture_has_its_expected_counts() {
    let files: BTreeSet<String> = truth().into_keys().collect();
    let listed: BTreeSet<String> = EXPECTED.iter().map(|e| e.0.to_string()).collect();
    assert_eq!(
        files, listed,
        "truth.tsv and EXPECTED list the same captures"
    );
}

#[test]
fn encrypted_flows_are_judged_by_mse_not_only_by_their_hosts() {
    // Flows judged by MSE (not by the known-peer cache) name the evidence
    // the rule needs: the envelope and a certain fact, two size
    // signatures, or the envelope and the host's behaviour.
    for file in ["enc-tcp-v4.pcap", "enc-tcp-v6.pcap"] {
        let report = analyze(file);
        let by_mse: Vec<_> = report
            .bittorrent_flows()
            .filter(|f| f.detector == Some("mse"))
            .collect();
        assert!(!by_mse.is_empty(), "{file}");
        for f in by_mse {
            assert!(
                f.reasons.contains(&"mse_envelope"),
                "{file}: {:?}",
                f.reasons
            );
            let facts = ["mse_a2_124", "mse_b2_14_or_82", "mse_third_flight_68"]
                .iter()
                .filter(|r| f.reasons.contains(r))
                .count();
            let certain = f.reasons.contains(&"mse_message_lengths")
                || f.reasons.contains(&"mse_plaintext_selected");
            // Or the envelope's 2 points and 2 from the host's behaviour.
            let host =
                f.reasons.contains(&"endpoint_advertised") || f.reasons.contains(&"host_fan_out");
            assert!(certain || facts >= 2 || host, "{file}: {:?}", f.reasons);
        }
    }
}

#[test]
fn every_client_is_banned_and_no_benign_host_is() {
    for (file, (ban, never)) in truth() {
        let report = analyze(&file);
        let banned: BTreeSet<String> = report.banned_hosts.iter().cloned().collect();
        let wrongly: Vec<_> = banned.intersection(&never).collect();
        assert!(
            wrongly.is_empty(),
            "{file}: benign hosts banned: {wrongly:?}"
        );
        // The multicast group of LSD is labelled `never` and is not bannable.
        assert_eq!(banned, ban, "{file}: banned hosts differ from truth.tsv");
    }
}

#[test]
fn exact_flow_counts() {
    for &(file, flows, bittorrent) in EXPECTED {
        let report = analyze(file);
        let bt = report.bittorrent_flows().count();
        assert_eq!((report.flows.len(), bt), (flows, bittorrent), "{file}");
    }
}
