//! SIGHUP reload of the running binary, and the detection log's payload
//! prefix, on DPDK vdevs. Every wait is for a line or a file, under a hang
//! guard; nothing is timed.
#![cfg(feature = "dpdk")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use btblocker::wire::{parse_ethernet, Parsed, L4};
use common::*;

/// Longest wait for a log line: a hang guard, not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// The binary running `run -c FILE --summary-json`, its stderr collected
/// line by line (and stdout drained) so the test can wait for a line.
struct Daemon {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn start(config: &std::path::Path, summary: &std::path::Path) -> Daemon {
        let mut child = spawn(&[
            "run",
            "-c",
            config.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ]);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let out_lines = Arc::clone(&stdout);
        let err = child.stderr.take().unwrap();
        let out = child.stdout.take().unwrap();
        let readers = vec![
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            }),
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    out_lines.lock().unwrap().push(line);
                }
            }),
        ];
        Daemon {
            child,
            stderr,
            stdout,
            readers,
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until a stderr line contains `needle`; returns that line.
    fn wait_for(&mut self, needle: &str) -> String {
        let stderr = Arc::clone(&self.stderr);
        self.wait_until(needle, || {
            stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned()
        })
    }

    /// Waits until a stdout line (the stats lines) satisfies `pred`.
    fn wait_for_stdout(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let stdout = Arc::clone(&self.stdout);
        self.wait_until(what, || {
            stdout.lock().unwrap().iter().find(|l| pred(l)).cloned()
        })
    }

    fn wait_until(&mut self, needle: &str, found: impl Fn() -> Option<String>) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = found() {
                return l;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "btblocker exited ({status}) before logging {needle:?}:\n{}",
                    self.stderr_text()
                );
            }
            if start.elapsed() > HANG_GUARD {
                let _ = self.child.kill();
                panic!(
                    "no line with {needle:?} within {HANG_GUARD:?}:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig}");
    }

    /// SIGTERM, then waits for the exit; returns (success, stderr).
    fn stop(mut self) -> (bool, String) {
        self.signal("-TERM");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > HANG_GUARD {
                let _ = self.child.kill();
                panic!("no exit after SIGTERM:\n{}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        (status.success(), self.stderr_text())
    }
}

/// Two net_null ports (endless traffic, so only a signal ends the run).
fn null_config(s: &Scratch, ban: &str) -> String {
    format!(
        "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {prefix}\n\
ports:\n  - name: inside\n    device: net_null0\n    role: inside\n  - name: outside\n    device: net_null1\n    role: outside\n\
pipeline:\n  control_lcore: 0\n  worker_lcores: [1]\n\
metrics:\n  enabled: false\ncontrol:\n  enabled: false\n\
ban:\n  state_file: {state}\n  flush_ms: 100\n{ban}",
        prefix = s.prefix,
        state = s.path("bans.jsonl").display(),
    )
}

fn hosts(sum: &serde_json::Value) -> Vec<(String, String)> {
    sum["bans"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(h, r)| (h.to_string(), r.to_string()))
        .collect()
}

#[test]
fn sighup_with_a_bad_file_keeps_the_daemon_on_its_old_config() {
    let s = Scratch::new("reload-bad");
    let cfg = s.write("config.yaml", &null_config(&s, "  denylist: [192.0.2.1]\n"));
    let summary = s.path("summary.json");
    let mut d = Daemon::start(&cfg, &summary);
    d.wait_for("worker 0 on lcore 1 polls");

    // A mistake on line 23, and a change that must not be applied.
    s.write(
        "config.yaml",
        &null_config(&s, "  denylist: [192.0.2.1, 192.0.2.7]\n  threshold: 0\n"),
    );
    d.signal("-HUP");
    let line = d.wait_for("config reload of");
    assert!(
        line.contains("failed, keeping the running config: ban.threshold: must be >= 1 (line 23)"),
        "{line}"
    );
    let (ok, stderr) = d.stop();
    assert!(ok, "SIGTERM after a failed reload must exit 0:\n{stderr}");
    assert!(!stderr.contains("config reloaded"), "{stderr}");
    let sum = read_summary(&summary);
    assert_eq!(sum["config_reloads"]["failed"], 1);
    assert_eq!(sum["config_reloads"]["ok"], 0);
    assert_eq!(hosts(&sum), pairs(&[("192.0.2.1", "denylist")]));
    assert!(
        u(&sum["ports"][0]["rx_packets"]) > 0,
        "the dataplane ran: {sum}"
    );
}

#[test]
fn sighup_applies_allowlist_and_denylist_and_the_state_file_agrees_after_a_restart() {
    let s = Scratch::new("reload-good");
    // Saved by an earlier run: two dynamic bans, and a static one whose
    // address is no longer in the denylist.
    let far = 4_000_000_000_000u64;
    let add = |ip: &str, reason: &str, extra: &str| {
        format!(
            "{{\"op\":\"add\",\"ip\":\"{ip}\",\"expires_at\":{far},\"reason\":\"{reason}\",\
\"first_seen\":1,\"last_seen\":1,\"hits\":1{extra}}}\n"
        )
    };
    s.write(
        "bans.jsonl",
        &[
            add("10.0.0.1", "dht", ""),
            add("10.0.0.2", "utp", ""),
            add("192.0.2.9", "denylist", ",\"static\":true"),
        ]
        .concat(),
    );
    let cfg = s.write(
        "config.yaml",
        &null_config(&s, "  denylist: [192.0.2.1, 192.0.2.2]\n"),
    );
    let summary = s.path("summary.json");
    let mut d = Daemon::start(&cfg, &summary);
    d.wait_for("worker 0 on lcore 1 polls");

    s.write(
        "config.yaml",
        &null_config(
            &s,
            "  denylist: [192.0.2.2, 192.0.2.3]\n  allowlist: [10.0.0.2]\n  ttl_s: 600\n",
        )
        .replace(
            "worker_lcores: [1]\n",
            "worker_lcores: [1]\n  burst_size: 16\n",
        ),
    );
    d.signal("-HUP");
    let line = d.wait_for("config reloaded from");
    assert!(
        line.ends_with("applied ban.allowlist, ban.denylist, ban.ttl_s"),
        "{line}"
    );
    let (ok, stderr) = d.stop();
    assert!(ok, "{stderr}");
    for expected in [
        "ban lifted: 192.0.2.9 is no longer in ban.denylist",
        "ban lifted: 10.0.0.2 is now in ban.allowlist",
        "ban lifted: 192.0.2.1 is no longer in ban.denylist",
        "config reload: pipeline changed: needs a restart, kept as it was",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
    let sum = read_summary(&summary);
    assert_eq!(sum["config_reloads"]["ok"], 1);
    assert_eq!(sum["config_reloads"]["failed"], 0);
    assert_eq!(u(&sum["bans"]["restored"]), 3);
    assert_eq!(
        hosts(&sum),
        pairs(&[
            ("10.0.0.1", "dht"),
            ("192.0.2.2", "denylist"),
            ("192.0.2.3", "denylist"),
        ])
    );

    // Restart with neither list: only the journal speaks, and it lifted
    // 10.0.0.2 for good.
    s.write("config.yaml", &null_config(&s, ""));
    let _ = std::fs::remove_file(&summary);
    let mut d = Daemon::start(&cfg, &summary);
    d.wait_for("worker 0 on lcore 1 polls");
    let (ok, stderr) = d.stop();
    assert!(ok, "{stderr}");
    let sum = read_summary(&summary);
    assert_eq!(u(&sum["bans"]["restored"]), 1);
    assert_eq!(hosts(&sum), pairs(&[("10.0.0.1", "dht")]));
}

/// The L4 payload of an Ethernet frame, if it is TCP or UDP.
fn l4_payload(frame: &[u8]) -> Option<&[u8]> {
    match parse_ethernet(frame) {
        Ok(Parsed::Ip(p)) => match p.l4 {
            L4::Tcp { payload, .. } | L4::Udp { payload, .. } => Some(payload),
            L4::Other { .. } => None,
        },
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn detection_log_shows_the_first_payload_bytes_of_the_deciding_packet() {
    let s = Scratch::new("reload-payload");
    let input = repo().join("data/demo.pcap");
    let log = s.path("detections.jsonl");
    let yaml = format!(
        "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {prefix}\n\
ports:\n  - name: inside\n    device: net_pcap0,rx_pcap={rx},tx_pcap={out}\n    role: inside\n\
pipeline:\n  control_lcore: 0\n  worker_lcores: [1]\n  stop_after_idle_ms: 400\n\
metrics:\n  enabled: false\ncontrol:\n  enabled: false\n\
ban:\n  persist: false\n  action: log_only\n\
log:\n  path: {log}\n  payload_bytes: 16\n",
        prefix = s.prefix,
        rx = input.display(),
        out = s.path("out.pcap").display(),
        log = log.display(),
    );
    let sum = run_with_summary(&s, &yaml);
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // log_only: every flow reaches DPI, whatever the timing of bans.
    assert_eq!(u(&sum["bans"]["events"]), 34);
    assert_eq!(records.len(), 33);

    // Derived from the protocols alone: a handshake decided on its first
    // segment starts with 0x13 "BitTorrent prot", an LSD announce with
    // "BT-SEARCH * HTTP", an HTTP announce with "GET /announce?in", a DHT
    // query with "d1:ad2:id20:" and the first 4 bytes of the node id.
    let of = |detector: &str| -> Vec<&str> {
        records
            .iter()
            .filter(|r| r["detector"] == detector)
            .map(|r| r["payload_hex"].as_str().unwrap())
            .collect()
    };
    let handshake16 = hex(b"\x13BitTorrent prot");
    assert_eq!(handshake16, "13426974546f7272656e742070726f74");
    assert_eq!(of("peer_wire_handshake"), vec![handshake16.as_str(); 25]);
    assert_eq!(of("lsd"), [hex(b"BT-SEARCH * HTTP")]);
    assert_eq!(of("http_tracker"), [hex(b"GET /announce?in")]);
    let dht = of("dht");
    assert_eq!(dht.len(), 4);
    assert!(
        dht.iter()
            .all(|h| h.starts_with(&hex(b"d1:ad2:id20:")) && h.len() == 32),
        "{dht:?}"
    );

    // Every record carries its flow's reason chain, which names at least
    // the lead detector; the HTTP announce also showed a client's
    // User-Agent, the LSD announce nothing else.
    let reasons = |r: &serde_json::Value| -> Vec<String> {
        let list = r["reasons"].as_array().unwrap_or_else(|| panic!("{r}"));
        list.iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    for r in &records {
        let detector = r["detector"].as_str().unwrap().to_string();
        assert!(reasons(r).contains(&detector), "{r}");
    }
    let chain_of = |detector: &str| -> Vec<Vec<String>> {
        records
            .iter()
            .filter(|r| r["detector"] == detector)
            .map(reasons)
            .collect()
    };
    assert_eq!(chain_of("lsd"), [["lsd"]]);
    assert_eq!(chain_of("http_tracker"), [["http_tracker", "http_client"]]);

    // Every record's prefix is exactly the first 16 bytes (or the whole
    // payload if shorter) of a packet of the capture.
    let prefixes: std::collections::BTreeSet<String> = read_packets(&input)
        .iter()
        .filter_map(|f| l4_payload(f))
        .filter(|p| !p.is_empty())
        .map(|p| hex(&p[..p.len().min(16)]))
        .collect();
    for r in &records {
        let h = r["payload_hex"].as_str().unwrap_or_else(|| panic!("{r}"));
        assert!(prefixes.contains(h), "{h} is no packet's first 16 bytes");
    }
}

/// The inside port's drop count in a stats line (`| inside: rx R tx T drop D …`).
fn inside_drops(line: &str) -> Option<u64> {
    let rest = line.split("| inside: ").nth(1)?;
    let mut words = rest.split_whitespace();
    while let Some(w) = words.next() {
        if w == "drop" {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[test]
fn sighup_switches_the_workers_from_log_only_to_ban_host() {
    let s = Scratch::new("reload-action");
    let input = repo().join("../shared/corpus/ndpi/positive/bittorrent.pcap");
    // infinite_rx replays the capture until the run is stopped.
    let yaml = |action: &str| {
        format!(
            "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {prefix}\n\
ports:\n  - name: inside\n    device: net_pcap0,rx_pcap={rx},infinite_rx=1\n    role: inside\n\
pipeline:\n  control_lcore: 0\n  worker_lcores: [1]\n  stats_interval_ms: 100\n\
metrics:\n  enabled: false\ncontrol:\n  enabled: false\n\
ban:\n  persist: false\n  action: {action}\n",
            prefix = s.prefix,
            rx = input.display(),
        )
    };
    let cfg = s.write("config.yaml", &yaml("log_only"));
    let summary = s.path("summary.json");
    let mut d = Daemon::start(&cfg, &summary);
    // log_only: the ban is recorded, nothing is dropped.
    d.wait_for("banned 192.168.1.3 (peer_wire_handshake)");
    d.wait_for_stdout("a stats line with no drop", |l| inside_drops(l) == Some(0));

    s.write("config.yaml", &yaml("ban_host"));
    d.signal("-HUP");
    let line = d.wait_for("config reloaded from");
    assert!(line.ends_with("applied ban.action"), "{line}");
    // The worker picks the action up from its next burst: the banned
    // host's packets start being dropped.
    d.wait_for_stdout("a stats line with drops", |l| {
        inside_drops(l).is_some_and(|n| n > 0)
    });
    let (ok, stderr) = d.stop();
    assert!(ok, "{stderr}");
    let sum = read_summary(&summary);
    assert_eq!(sum["config_reloads"]["ok"], 1);
    let e = &sum["enforcement"];
    assert!(u(&e["dropped_banned_host"]) > 0, "{sum}");
    assert_eq!(
        u(&sum["ports"][0]["dropped"]),
        u(&e["dropped_banned_host"]) + u(&e["dropped_bittorrent_flow"])
    );
}
