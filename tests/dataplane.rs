//! The real binary on DPDK virtual devices (`--no-huge --no-pci`), each process
//! with its own `--file-prefix`.
#![cfg(feature = "dpdk")]

mod common;

use std::time::Duration;

use common::*;

const DEMO: &str = "data/demo.pcap";

fn pcap_port_config(
    s: &Scratch,
    mode: &str,
    rx: &[String],
    tx: &[String],
    lcores: Option<&str>,
    workers: &str,
) -> String {
    let mut device = "net_pcap0".to_string();
    for f in rx {
        device.push_str(&format!(",rx_pcap={f}"));
    }
    for f in tx {
        device.push_str(&format!(",tx_pcap={f}"));
    }
    let lcores = lcores
        .map(|l| format!("  lcores: \"{l}\"\n"))
        .unwrap_or_default();
    format!(
        "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {prefix}\n{lcores}\
ports:\n  - name: inside\n    device: {device}\n    role: inside\n\
pipeline:\n  mode: {mode}\n  control_lcore: 0\n  worker_lcores: {workers}\n  stop_after_idle_ms: 400\n\
ban:\n  action: log_only\n  persist: false\nmetrics:\n  enabled: false\ncontrol:\n  enabled: false\n",
        prefix = s.prefix
    )
}

/// Runs one inline worker on a `net_pcap` port reading `input` (config plus
/// `extra_yaml`): the run's summary and the frames it sent.
fn run_inline_pcap(
    s: &Scratch,
    input: &std::path::Path,
    extra_yaml: &str,
) -> (serde_json::Value, Vec<Vec<u8>>) {
    let output = s.path("out.pcap");
    let yaml = pcap_port_config(
        s,
        "inline",
        &[input.display().to_string()],
        &[output.display().to_string()],
        None,
        "[1]",
    ) + extra_yaml;
    let sum = run_with_summary(s, &yaml);
    (sum, read_packets(&output))
}

/// (a) Inline, one queue: what comes out of the TX pcap is the capture itself,
/// same packets, same bytes, same order; the counters equal the capture's.
#[test]
fn inline_pcap_forwards_every_packet_unchanged() {
    let s = Scratch::new("inline");
    let input = repo().join(DEMO);
    let (sum, got) = run_inline_pcap(&s, &input, "");
    let sent = read_packets(&input);
    assert_eq!(
        sent.len(),
        1355,
        "the bundled capture changed: update this test"
    );
    assert_eq!(got.len(), sent.len(), "packet count through the dataplane");
    for (i, (a, b)) in sent.iter().zip(&got).enumerate() {
        assert_eq!(a, b, "packet {i} differs after forwarding");
    }
    let bytes: u64 = sent.iter().map(|p| p.len() as u64).sum();
    let port = &sum["ports"][0];
    assert_eq!(u(&port["rx_packets"]), 1355);
    assert_eq!(u(&port["rx_bytes"]), bytes);
    assert_eq!(u(&port["tx_packets"]), 1355);
    assert_eq!(u(&port["tx_bytes"]), bytes);
    assert_eq!(u(&port["dropped"]), 0);
    assert_eq!(u(&port["tx_failed"]), 0);
    assert_eq!(u(&port["hw"]["ipackets"]), 1355, "rte_eth_stats agrees");
    assert_eq!(u(&port["hw"]["opackets"]), 1355, "rte_eth_stats agrees");
    // Every frame was classified: IP (v4 + v6) plus non-IP plus malformed.
    let p = &sum["parse"];
    assert_eq!(
        u(&p["ipv4"]) + u(&p["ipv6"]) + u(&p["non_ip"]) + u(&p["malformed"]),
        1355
    );
}

/// (c) Monitor mode inspects everything and transmits nothing.
#[test]
fn monitor_mode_transmits_nothing() {
    let s = Scratch::new("monitor");
    let input = repo().join(DEMO);
    let output = s.path("out.pcap");
    let yaml = pcap_port_config(
        &s,
        "monitor",
        &[input.display().to_string()],
        &[output.display().to_string()],
        None,
        "[1]",
    );
    let sum = run_with_summary(&s, &yaml);
    assert_eq!(read_packets(&output).len(), 0);
    let port = &sum["ports"][0];
    assert_eq!(u(&port["rx_packets"]), 1355);
    assert_eq!(u(&port["tx_packets"]), 0);
    assert_eq!(u(&port["hw"]["opackets"]), 0);
}

/// Two workers, two RX queues (net_pcap: one file per queue): each worker
/// handles exactly its queue and sends to its own TX queue.
#[test]
fn two_workers_each_own_their_queue() {
    let s = Scratch::new("twoworkers");
    let all = read_packets(&repo().join(DEMO));
    let (a, b): (Vec<_>, Vec<_>) = all
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 3 == 0);
    let a: Vec<Vec<u8>> = a.into_iter().map(|(_, p)| p).collect();
    let b: Vec<Vec<u8>> = b.into_iter().map(|(_, p)| p).collect();
    let (in_a, in_b, out_a, out_b) = (
        s.path("a.pcap"),
        s.path("b.pcap"),
        s.path("oa.pcap"),
        s.path("ob.pcap"),
    );
    write_pcap(&in_a, &a);
    write_pcap(&in_b, &b);
    let names = |v: &[&std::path::PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    };
    // Three lcores on what may be a two-CPU machine: the workers share CPU 1.
    let yaml = pcap_port_config(
        &s,
        "inline",
        &names(&[&in_a, &in_b]),
        &names(&[&out_a, &out_b]),
        Some("0@0,1@1,2@1"),
        "[1, 2]",
    );
    let sum = run_with_summary(&s, &yaml);
    assert_eq!(read_packets(&out_a), a, "queue 0 → worker 1 → tx queue 0");
    assert_eq!(read_packets(&out_b), b, "queue 1 → worker 2 → tx queue 1");
    let w = &sum["workers"];
    assert_eq!(u(&w[0]["lcore"]), 1);
    assert_eq!(u(&w[0]["rx_packets"]), a.len() as u64);
    assert_eq!(u(&w[1]["rx_packets"]), b.len() as u64);
    assert_eq!(u(&sum["ports"][0]["tx_packets"]), all.len() as u64);
}

/// (b) Two net_null ports forwarding to each other until SIGTERM: per-port
/// counters add up, and agree with DPDK's own port statistics.
#[test]
fn two_null_ports_counters_add_up() {
    let s = Scratch::new("null");
    let yaml = format!(
        "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {}\n\
ports:\n  - name: inside\n    device: net_null0\n    role: inside\n  - name: outside\n    device: net_null1\n    role: outside\n\
pipeline:\n  mode: inline\n  control_lcore: 0\n  worker_lcores: [1]\nban:\n  persist: false\nmetrics:\n  enabled: false\ncontrol:\n  enabled: false\n",
        s.prefix
    );
    let cfg = s.write("config.yaml", &yaml);
    let summary = s.path("summary.json");
    let child = spawn_run(&cfg, &summary);
    std::thread::sleep(Duration::from_millis(2500));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_with_limit(child, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "SIGTERM must end the run cleanly: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("run finished"),
        "{}",
        describe(&out)
    );
    let sum = read_summary(&summary);
    let ports = &sum["ports"];
    for (i, peer) in [(0, 1), (1, 0)] {
        let rx = u(&ports[i]["rx_packets"]);
        assert!(rx > 0, "port {i} received nothing: {}", describe(&out));
        // Every packet received on a port was either sent to its peer, refused by
        // the peer's TX queue, or dropped by the pipeline.
        let accounted =
            u(&ports[peer]["tx_packets"]) + u(&ports[peer]["tx_failed"]) + u(&ports[i]["dropped"]);
        assert_eq!(rx, accounted, "port {i}: rx vs what became of it");
        assert_eq!(
            u(&ports[i]["hw"]["ipackets"]),
            rx,
            "port {i}: DPDK's ipackets"
        );
        assert_eq!(
            u(&ports[i]["hw"]["opackets"]),
            u(&ports[i]["tx_packets"]),
            "port {i}: DPDK's opackets"
        );
    }
    let w = &sum["workers"][0];
    assert_eq!(
        u(&w["rx_packets"]),
        u(&ports[0]["rx_packets"]) + u(&ports[1]["rx_packets"])
    );
}

/// (d) A bad config stops `run` with exit status 2 before EAL starts.
#[test]
fn run_with_bad_config_fails_before_eal() {
    let s = Scratch::new("badrun");
    let cfg = s.write(
        "bad.yaml",
        "ports:\n  - name: inside\n    device: net_null0\n    role: sideways\n",
    );
    let out = run_to_end(&["run", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("ports[0].role"), "{}", describe(&out));
    assert!(
        !all.contains("EAL:"),
        "EAL must not start: {}",
        describe(&out)
    );
}

/// A /metrics scrape while the run idles after its capture: the exposition
/// parses and its counters equal the run's final counts.
#[test]
fn metrics_scrape_matches_the_run() {
    use std::io::{Read, Write};
    let s = Scratch::new("metrics");
    let port = 20000 + (std::process::id() % 20000) as u16;
    let input = repo().join(DEMO);
    let yaml = format!(
        "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {}\n\
ports:\n  - name: inside\n    device: net_pcap0,rx_pcap={},tx_pcap={}\n    role: inside\n\
pipeline:\n  worker_lcores: [1]\n  stats_interval_ms: 100\n  stop_after_idle_ms: 2500\n\
ban:\n  action: log_only\n  persist: false\nmetrics:\n  listen: 127.0.0.1:{port}\ncontrol:\n  enabled: false\n",
        s.prefix,
        input.display(),
        s.path("out.pcap").display()
    );
    let cfg = s.write("config.yaml", &yaml);
    let summary = s.path("summary.json");
    let child = spawn_run(&cfg, &summary);
    // The capture takes milliseconds; then the run idles 2.5 s with its counters final.
    std::thread::sleep(Duration::from_millis(1500));
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint up");
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    let out = wait_with_limit(child, Duration::from_secs(60));
    assert!(out.status.success(), "{}", describe(&out));
    let sum = read_summary(&summary);
    let value = |series: &str| -> u64 {
        body.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("{series} missing in:\n{body}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap() as u64
    };
    assert_eq!(
        value("btblocker_rx_packets_total{port=\"inside\",role=\"inside\"}"),
        1355
    );
    assert_eq!(
        value("btblocker_rx_packets_total{port=\"inside\",role=\"inside\"}"),
        u(&sum["ports"][0]["rx_packets"])
    );
    assert_eq!(
        value("btblocker_tx_packets_total{port=\"inside\"}"),
        u(&sum["ports"][0]["tx_packets"])
    );
    assert_eq!(value("btblocker_detections_total{detector=\"dht\"}"), 4);
    assert_eq!(value("btblocker_bans_active"), 6);
}

/// (f) A flow table far larger than the caches: 100,000 flows (past 65,536
/// flows the live slots exceed 8 MB, and the worker looks each burst's
/// flows up ahead: bucket lines, then slots), every flow seen twice. The
/// lookahead only prefetches: the packets still come out exactly as they
/// went in, and each flow is created once. (50,000 flows, as this test had
/// before, never reached 8 MB: the lookahead never ran.)
#[test]
fn lookahead_on_a_large_flow_table_changes_nothing_but_speed() {
    const FLOWS: u32 = 100_000;
    let s = Scratch::new("lookahead");
    let frames: Vec<Vec<u8>> = (0..2 * FLOWS)
        .map(|i| frames::client_ack(i % FLOWS))
        .collect();
    let input = s.path("flows.pcap");
    write_pcap(&input, &frames);
    let (sum, got) = run_inline_pcap(&s, &input, "flows:\n  capacity: 1048576\n");
    assert_eq!(
        got.len(),
        frames.len(),
        "packet count through the dataplane"
    );
    assert!(got == frames, "the packets came out changed or reordered");
    let dpi = &sum["dpi"];
    assert_eq!(u(&dpi["flows_created"]), u64::from(FLOWS));
    assert_eq!(u(&dpi["flows_evicted"]), 0);
    assert_eq!(u(&sum["ports"][0]["tx_packets"]), u64::from(2 * FLOWS));
    // Every burst after the one that made the 65,537th flow was looked up
    // ahead; bursts hold at most 32 packets.
    let after = u64::from(2 * FLOWS) - 65_537 - 32;
    let bursts = u(&dpi["flow_lookahead_bursts"]);
    assert!(
        bursts >= after.div_ceil(32),
        "{bursts} bursts looked ahead, {after} packets needed it"
    );
}
