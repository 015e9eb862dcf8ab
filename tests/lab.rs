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

/// Per file: (flows, BitTorrent flows, TCP flows that completed an MSE
/// exchange, of those judged BitTorrent).
const EXPECTED: &[(&str, usize, usize)] = &[];

#[test]
fn every_client_is_banned_and_no_benign_host_is() {
    for (file, (ban, never)) in truth() {
        let report = analyze(&file);
        let banned: BTreeSet<String> = report.banned_hosts.iter().cloned().collect();
        let wrongly: Vec<_> = banned.intersection(&never).collect();
        assert!(wrongly.is_empty(), "{file}: benign hosts banned: {wrongly:?}");
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
