//! Reloads against files on disk, a real ban control plane and journal.
use std::net::Ipv4Addr;
use std::path::Path;

use super::*;
use crate::ban::{self, event_ring, BanKey, Confidence, HostDetection, PayloadPrefix};
use crate::config::BanAction;
use crate::dpi::{DetectorId, DetectorSwitches};
use crate::wire::Transport;

const NOW: u64 = 1_795_000_000_000;

/// A config for one net_null port, no metrics, the state file in `dir`.
fn yaml(dir: &Path, pipeline: &str, ban: &str, rest: &str) -> String {
    format!(
        "ports:\n  - name: a\n    device: net_null0\n    role: inside\n\
pipeline:\n  worker_lcores: [1]\n{pipeline}\
metrics:\n  enabled: false\n\
ban:\n  state_file: {}\n{ban}{rest}",
        dir.join("bans.jsonl").display()
    )
}

struct Rig {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    reloader: Reloader,
    live: Arc<LiveSettings>,
    bans: BanKeeper,
}

impl Rig {
    fn start(text: impl Fn(&Path) -> String) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("btblocker.yaml");
        std::fs::write(&path, text(dir.path())).unwrap();
        let cfg = config::load_file(&path).unwrap();
        let live = Arc::new(LiveSettings::new(WorkerSettings::from_config(&cfg)));
        let mut bans = BanKeeper::start(&cfg.ban, &cfg.networks, NOW)
            .unwrap()
            .with_detection_log(cfg.log.open().unwrap(), vec!["a".into()]);
        bans.set_payload_bytes(cfg.log.payload_bytes);
        let reloader = Reloader::new(&path, &cfg, Arc::clone(&live));
        Rig {
            dir,
            path,
            reloader,
            live,
            bans,
        }
    }

    fn rewrite(&self, text: impl Fn(&Path) -> String) {
        std::fs::write(&self.path, text(self.dir.path())).unwrap();
    }

    fn hosts(&self) -> Vec<(String, String)> {
        self.bans.summary().hosts
    }
}

fn hosts(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(h, r)| (h.to_string(), r.to_string()))
        .collect()
}

fn detection(host: [u8; 4], payload: &[u8]) -> HostDetection {
    HostDetection {
        host: BanKey::from(Ipv4Addr::from(host)),
        peer: BanKey::from(Ipv4Addr::new(198, 51, 100, 9)),
        host_port: 51413,
        peer_port: 6881,
        proto: Transport::Tcp,
        port: 0,
        detector: crate::dpi::DetectorId::PeerWireHandshake,
        reasons: crate::dpi::Reasons::NONE,
        confidence: Confidence::Definitive,
        at_ms: NOW,
        payload: PayloadPrefix::copy_from(payload, 64),
    }
}

#[test]
fn a_bad_file_changes_nothing_and_is_counted() {
    let good = |d: &Path| yaml(d, "", "  denylist: [192.0.2.1]\n", "");
    let mut rig = Rig::start(good);
    let before = rig.live.load();
    rig.rewrite(|d| {
        yaml(
            d,
            "",
            "  denylist: [192.0.2.1, not-an-ip]\n  action: log_only\n",
            "",
        )
    });
    let err = rig.reloader.reload(&mut rig.bans, NOW).unwrap_err();
    // The same text check-config prints: key and line.
    assert_eq!(
        err.to_string(),
        "ban.denylist[1]: \"not-an-ip\" is not an IP address (line 11)"
    );
    assert_eq!(rig.reloader.counts(), ReloadCounts { ok: 0, failed: 1 });
    assert_eq!(rig.live.load(), before);
    assert_eq!(rig.reloader.in_force().ban.action, BanAction::BanHost);
    assert_eq!(rig.hosts(), hosts(&[("192.0.2.1", "denylist")]));

    // Fixed: the next reload applies.
    rig.rewrite(|d| yaml(d, "", "  denylist: [192.0.2.1]\n  action: log_only\n", ""));
    let report = rig.reloader.reload(&mut rig.bans, NOW).unwrap();
    assert_eq!(report.applied, ["ban.action"]);
    assert_eq!(rig.reloader.counts(), ReloadCounts { ok: 1, failed: 1 });
    assert_eq!(rig.live.load().action, BanAction::LogOnly);
}

#[test]
fn a_good_file_applies_the_live_keys_and_keeps_the_restart_ones() {
    let mut rig = Rig::start(|d| {
        yaml(
            d,
            "",
            "  denylist: [192.0.2.1, 192.0.2.2]\n  threshold: 3\n",
            "",
        )
    });
    // A dynamic ban the new allowlist will cover.
    let (mut worker, consumer) = event_ring(8);
    rig.bans.add_consumer(consumer);
    assert!(worker.push(detection([10, 0, 0, 2], b"")));
    assert!(worker.push(detection([10, 0, 1, 7], b"")));
    rig.bans.tick(NOW);
    assert_eq!(
        rig.hosts(),
        hosts(&[
            ("10.0.0.2", "peer_wire_handshake"),
            ("10.0.1.7", "peer_wire_handshake"),
            ("192.0.2.1", "denylist"),
            ("192.0.2.2", "denylist"),
        ])
    );

    rig.rewrite(|d| {
        yaml(
            d,
            "  burst_size: 64\n",
            "  denylist: [192.0.2.2, 192.0.2.3]\n  allowlist: [10.0.0.0/24]\n  threshold: 2\n  \
action: drop_flow\n  max_entries: 10\n  ttl_s: 60\n",
            "dpi:\n  disabled_detectors: [mse, utp]\n  max_payload_packets: 4\n\
log:\n  payload_bytes: 16\n",
        )
    });
    let report = rig.reloader.reload(&mut rig.bans, NOW).unwrap();
    assert_eq!(
        report.applied,
        [
            "ban.allowlist",
            "ban.denylist",
            "ban.threshold",
            "ban.ttl_s",
            "ban.action",
            "dpi.disabled_detectors",
            "log.payload_bytes"
        ]
    );
    assert_eq!(
        report.needs_restart,
        ["pipeline", "dpi.max_payload_packets", "ban.max_entries"]
    );
    assert_eq!(
        rig.hosts(),
        hosts(&[
            ("10.0.1.7", "peer_wire_handshake"),
            ("192.0.2.2", "denylist"),
            ("192.0.2.3", "denylist"),
        ])
    );
    assert_eq!(
        rig.live.load(),
        WorkerSettings {
            detectors: DetectorSwitches::all()
                .without(DetectorId::Mse)
                .without(DetectorId::Utp),
            action: BanAction::DropFlow,
            payload_bytes: 16,
        }
    );
    let in_force = rig.reloader.in_force();
    assert_eq!(in_force.pipeline.burst_size, 32, "kept as it was");
    assert_eq!(in_force.dpi.max_payload_packets, 8, "kept as it was");
    assert_eq!(in_force.ban.table.max_entries, 1_000_000, "kept as it was");
    assert_eq!(in_force.ban.policy.threshold, 2);
    assert_eq!(rig.reloader.counts(), ReloadCounts { ok: 1, failed: 0 });

    // The same file again: nothing to apply, the restart keys still differ
    // from what runs.
    let again = rig.reloader.reload(&mut rig.bans, NOW).unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.needs_restart, report.needs_restart);

    // The journal agrees: the lifted dynamic ban is gone for good (static
    // bans come from the config, not the file).
    let state = rig.dir.path().join("bans.jsonl");
    rig.bans.close(NOW);
    let (saved, warnings) = ban::journal::load(&state, NOW).unwrap();
    assert!(warnings.is_empty());
    let saved: Vec<String> = saved.iter().map(|b| b.key.to_string()).collect();
    assert_eq!(saved, ["10.0.1.7"]);
}

#[test]
fn the_detection_log_is_reopened_and_shows_the_new_payload_prefix() {
    let log = |name: &str, bytes: u8| {
        let name = name.to_string();
        move |d: &Path| {
            yaml(
                d,
                "",
                "",
                &format!(
                    "log:\n  path: {}\n  payload_bytes: {bytes}\n",
                    d.join(&name).display()
                ),
            )
        }
    };
    let mut rig = Rig::start(log("first.jsonl", 8));
    let (mut worker, consumer) = event_ring(8);
    rig.bans.add_consumer(consumer);
    let hs = b"\x13BitTorrent protocol\0\0\0\0\0\x10\0\x05";
    // The worker copied 8 bytes under the old settings.
    assert!(worker.push(detection([10, 0, 0, 1], &hs[..8])));
    rig.bans.tick(NOW);

    rig.rewrite(log("second.jsonl", 4));
    let report = rig.reloader.reload(&mut rig.bans, NOW).unwrap();
    assert_eq!(report.applied, ["log", "log.payload_bytes"]);
    // An event copied before the reload is cut to the new length too.
    assert!(worker.push(detection([10, 0, 0, 2], &hs[..8])));
    rig.bans.tick(NOW);
    rig.bans.close(NOW);

    let read = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(rig.dir.path().join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let first = read("first.jsonl");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["src"], "10.0.0.1");
    assert_eq!(first[0]["payload_hex"], "13426974546f7272");
    let second = read("second.jsonl");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["src"], "10.0.0.2");
    assert_eq!(second[0]["payload_hex"], "13426974");
}

#[test]
fn a_log_that_cannot_be_opened_fails_the_reload_whole() {
    let mut rig = Rig::start(|d| yaml(d, "", "", ""));
    std::fs::create_dir(rig.dir.path().join("taken")).unwrap();
    rig.rewrite(|d| {
        yaml(
            d,
            "",
            "  denylist: [192.0.2.9]\n",
            &format!("log:\n  path: {}\n", d.join("taken").display()),
        )
    });
    let err = rig.reloader.reload(&mut rig.bans, NOW).unwrap_err();
    assert!(
        err.to_string().starts_with("detection log: cannot open"),
        "{err}"
    );
    assert!(rig.hosts().is_empty(), "the denylist was not applied");
    assert_eq!(rig.reloader.counts(), ReloadCounts { ok: 0, failed: 1 });
}

#[test]
fn sighup_only_requests_and_poll_runs_it_once() {
    let mut rig = Rig::start(|d| yaml(d, "", "", ""));
    rig.rewrite(|d| yaml(d, "", "  denylist: [192.0.2.5]\n", ""));
    rig.reloader.poll(&mut rig.bans, None, NOW);
    assert!(rig.hosts().is_empty(), "no request, no reload");
    rig.reloader.request();
    rig.reloader.poll(&mut rig.bans, None, NOW);
    rig.reloader.poll(&mut rig.bans, None, NOW);
    assert_eq!(rig.hosts(), hosts(&[("192.0.2.5", "denylist")]));
    assert_eq!(rig.reloader.counts(), ReloadCounts { ok: 1, failed: 0 });
}
