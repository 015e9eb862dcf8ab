//! The virtio testbed end to end: `btblocker replay` owns two net_vhost ports
//! (vhost-user servers), `btblocker run` sits inline between two virtio_user
//! ports connected to them, both on `--no-huge` with their own file prefix.
//! A mix of benign and BitTorrent captures from the corpus is replayed twice;
//! pass 2 starts only after pass 1's bans are published, so it is exact:
//! every packet that touches no banned host comes back byte-identical, in
//! order, and not one packet of a banned host does.
#![cfg(feature = "dpdk")]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use btblocker::tools::replay::{queue_of, Plan, Side, Sides};
use btblocker::wire::{parse_ethernet, Parsed};
use common::*;

/// Busy-polling processes share the machine's cores: one testbed at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Benign captures (no BitTorrent in nDPI's truth, none in ours) and
/// BitTorrent ones whose verdicts hold per flow (no known-peer learning
/// across flows, which would depend on which worker saw what first).
const MIX: &[&str] = &[
    "negative/dns.pcap",
    "positive/bittorrent.pcap",
    "negative/quic.pcap",
    "negative/steam.pcapng",
    "positive/bt-http.pcapng",
    "negative/teredo.pcap",
    "positive/targusdataspeed_false_positives.pcap",
    "negative/windowsupdate_over_http.pcap",
    "positive/h323_false_positive.pcap",
    "negative/wireguard.pcap",
    "negative/tor.pcap",
    "positive/bittorrent_tcp_miss.pcapng",
    "negative/skype-conference-call.pcap",
];

fn corpus() -> PathBuf {
    repo().join("../shared/corpus/ndpi")
}

fn mix() -> Vec<PathBuf> {
    MIX.iter().map(|f| corpus().join(f)).collect()
}

/// The hosts the dataplane must ban for the mix: for every flow `btblocker
/// analyze --json` judges BitTorrent, its inside end (`ban.target: inside`
/// with `networks.inside` = the generator's inside space). Bans of both ends
/// would not be exact: once the subscriber is banned its later flows are
/// dropped before DPI, so which of its peers get banned too depends on timing.
fn expected_bans(files: &[PathBuf]) -> BTreeSet<IpAddr> {
    let mut args = vec!["analyze".to_string(), "--json".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_to_end(&args);
    assert!(out.status.success(), "analyze: {}", describe(&out));
    let sides = Sides::default_inside();
    let mut hosts = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let report: serde_json::Value = serde_json::from_str(line).expect("one JSON per line");
        let flows = report["flows"].as_array().expect("flows");
        for f in flows.iter().filter(|f| f["verdict"] == "bittorrent") {
            let ends: Vec<IpAddr> = ["src", "dst"]
                .iter()
                .map(|k| f[*k].as_str().unwrap().parse().unwrap())
                .collect();
            let inside: Vec<IpAddr> = ends.into_iter().filter(|ip| sides.is_inside(*ip)).collect();
            assert_eq!(inside.len(), 1, "one end inside: {f}");
            hosts.insert(inside[0]);
        }
    }
    hosts
}

fn touches(frame: &[u8], banned: &BTreeSet<IpAddr>) -> bool {
    match parse_ethernet(frame) {
        Ok(Parsed::Ip(p)) => banned.contains(&p.src_ip()) || banned.contains(&p.dst_ip()),
        _ => false,
    }
}

/// The frames of `frames` on `queue` (their flow hash), in order.
fn on_queue<'a>(frames: &[&'a [u8]], queue: u16, queues: u16) -> Vec<&'a [u8]> {
    frames
        .iter()
        .copied()
        .filter(|f| queue_of(f, queues) == queue)
        .collect()
}

/// Asserts `got` equals `want`, frame by frame, per queue (each queue keeps
/// its order; queues interleave freely).
fn assert_same_per_queue(got: &[&[u8]], want: &[&[u8]], queues: u16, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: packet count");
    for q in 0..queues {
        let (g, w) = (on_queue(got, q, queues), on_queue(want, q, queues));
        assert_eq!(g.len(), w.len(), "{what}: queue {q} packet count");
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            assert_eq!(a, b, "{what}: queue {q} packet {i} differs");
        }
    }
}

fn scrape(port: u16) -> Option<String> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    conn.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The value of `name` on the line whose labels include `port="<port>"`.
fn metric(body: &str, name: &str, port: &str) -> Option<u64> {
    let label = format!("port=\"{port}\"");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .find(|l| {
            l.split_once('}')
                .is_some_and(|(labels, _)| labels.contains(&label))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
}

fn wait_for(path: &Path, child: &mut Child, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "replay exited ({status}) before creating {}",
                path.display()
            );
        }
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn testbed(name: &str, workers: u16) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new(name);
    let files = mix();
    let expected_bans = expected_bans(&files);
    let want: BTreeSet<IpAddr> = [
        "10.0.2.15",
        "192.168.1.3",
        "192.168.1.128",
        "192.168.122.34",
    ]
    .iter()
    .map(|h| h.parse().unwrap())
    .collect();
    assert_eq!(expected_bans, want, "analyze's verdicts on the mix changed");

    let (inside_sock, outside_sock) = (s.path("inside.sock"), s.path("outside.sock"));
    let received = s.path("received");
    std::fs::create_dir_all(&received).unwrap();
    let replay_summary = s.path("replay.json");
    let queues = workers.to_string();
    let mut replay_args = vec![
        "replay".to_string(),
        "--inside-sock".into(),
        inside_sock.display().to_string(),
        "--outside-sock".into(),
        outside_sock.display().to_string(),
        "--queues".into(),
        queues.clone(),
        "--passes".into(),
        "2".into(),
        "--pause-ms".into(),
        "500".into(),
        "--connect-timeout-s".into(),
        "60".into(),
        "--received-dir".into(),
        received.display().to_string(),
        "--summary-json".into(),
        replay_summary.display().to_string(),
        "--file-prefix".into(),
        format!("{}-gen", s.prefix),
    ];
    for f in &files {
        replay_args.extend(["--pcap".to_string(), f.display().to_string()]);
    }
    let replay_args: Vec<&str> = replay_args.iter().map(String::as_str).collect();
    let mut replay = spawn(&replay_args);
    wait_for(&outside_sock, &mut replay, Duration::from_secs(60));

    // A scratch copy of dpdk-config/virtio-testbed.yaml: scratch sockets,
    // state file and prefix, a metrics port of its own; every detection bans
    // (threshold 1) the inside end of the flow.
    let metrics_port = 20000 + (std::process::id() % 20000) as u16 + workers;
    let template = std::fs::read_to_string(repo().join("dpdk-config/virtio-testbed.yaml")).unwrap();
    let multi = if workers > 1 {
        format!(",queues={workers}")
    } else {
        String::new()
    };
    let lcores = if workers > 1 {
        // Three lcores on what may be a two-CPU machine: the workers share CPU 1.
        "  lcores: \"0@0,1@1,2@1\"\n"
    } else {
        ""
    };
    let workers_list = if workers > 1 { "[1, 2]" } else { "[1]" };
    let state_file = s.path("bans.jsonl");
    let yaml = template
        .replace(
            "/tmp/btb-inside.sock",
            &format!("{}{multi}", inside_sock.display()),
        )
        .replace(
            "/tmp/btb-outside.sock",
            &format!("{}{multi}", outside_sock.display()),
        )
        .replace(
            "file_prefix: btblocker-virtio",
            &format!("file_prefix: {}\n{lcores}", s.prefix),
        )
        .replace(
            "worker_lcores: [1]",
            &format!("worker_lcores: {workers_list}"),
        )
        .replace("stats_interval_ms: 1000", "stats_interval_ms: 100")
        .replace("target: inside", "target: inside\n  threshold: 1")
        .replace(
            "/tmp/btblocker-virtio-bans.jsonl",
            &state_file.display().to_string(),
        )
        .replace("127.0.0.1:9977", &format!("127.0.0.1:{metrics_port}"))
        .replace(
            "/tmp/btb-testbed-control.sock",
            &s.path("control.sock").display().to_string(),
        );
    assert!(
        yaml.contains(&s.prefix) && yaml.contains("threshold: 1"),
        "{yaml}"
    );
    let cfg = s.write("config.yaml", &yaml);
    let run_summary = s.path("run.json");
    let run = spawn(&[
        "run",
        "-c",
        cfg.to_str().unwrap(),
        "--summary-json",
        run_summary.to_str().unwrap(),
    ]);

    let replay_out = wait_with_limit(replay, Duration::from_secs(120));
    assert!(
        replay_out.status.success(),
        "replay: {}",
        describe(&replay_out)
    );
    let rs = read_summary(&replay_summary);

    // /metrics, once its counters caught up with what the generator counted
    // (the control lcore publishes every 100 ms). btblocker also forwarded
    // the generator's barrier frames (60 bytes each), which it counts too.
    let barrier_bytes = btblocker::tools::replay::barrier::FRAME.len() as u64;
    let sent = |side: &str| u(&rs[side]["sent"]["packets"]) + u(&rs[side]["barriers_sent"]);
    let got = |side: &str| u(&rs[side]["received"]["packets"]) + u(&rs[side]["barriers_received"]);
    let want = [
        ("btblocker_rx_packets_total", "inside", sent("inside")),
        ("btblocker_rx_packets_total", "outside", sent("outside")),
        ("btblocker_tx_packets_total", "inside", got("inside")),
        ("btblocker_tx_packets_total", "outside", got("outside")),
        (
            "btblocker_rx_bytes_total",
            "inside",
            u(&rs["inside"]["sent"]["bytes"]) + barrier_bytes * u(&rs["inside"]["barriers_sent"]),
        ),
        (
            "btblocker_tx_bytes_total",
            "outside",
            u(&rs["outside"]["received"]["bytes"])
                + barrier_bytes * u(&rs["outside"]["barriers_received"]),
        ),
    ];
    let start = Instant::now();
    let body = loop {
        let body = scrape(metrics_port).unwrap_or_default();
        if want.iter().all(|(n, p, v)| metric(&body, n, p) == Some(*v))
            || start.elapsed() > Duration::from_secs(20)
        {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    sigterm(&run);
    let run_out = wait_with_limit(run, Duration::from_secs(60));
    assert!(run_out.status.success(), "run: {}", describe(&run_out));
    for (name, port, value) in want {
        assert_eq!(
            metric(&body, name, port),
            Some(value),
            "{name}{{port={port}}} vs the generator's count; replay summary {rs}; scraped:\n{}",
            body.lines()
                .filter(|l| l.contains("_packets_total{") || l.contains("_bytes_total{"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // The bans: exactly the hosts analyze names.
    let (bans, warnings) =
        btblocker::ban::journal::load(&state_file, btblocker::clock::unix_now_ms())
            .expect("state file");
    assert!(warnings.is_empty(), "{warnings:?}");
    let live: BTreeSet<IpAddr> = bans.iter().map(|b| b.key.to_ip()).collect();
    assert_eq!(
        live, expected_bans,
        "banned by the dataplane vs analyze --json"
    );
    let bans_active = body
        .lines()
        .find(|l| l.starts_with("btblocker_bans_active "))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as usize);
    assert_eq!(
        bans_active,
        Some(expected_bans.len()),
        "btblocker_bans_active"
    );

    // What was sent, and what came back, per direction and pass.
    let plan = Plan::load(&files, &Sides::default_inside(), workers).unwrap();
    assert_eq!(u(&rs["capture_packets"]), plan.len() as u64);
    let rx_pcap =
        |side: Side| read_packets(&received.join(btblocker::tools::replay::rx_pcap_name(side)));
    for side in Side::BOTH {
        let sent_into: Vec<&[u8]> = plan
            .packets()
            .filter(|(p, _)| p.side == side)
            .map(|(_, f)| f)
            .collect();
        let peer = side.peer();
        let came_back = rx_pcap(peer);
        let came_back: Vec<&[u8]> = came_back.iter().map(Vec::as_slice).collect();
        let pass1 = u(&rs["passes"][0][peer.name()]["received"]["packets"]) as usize;
        let pass2 = u(&rs["passes"][1][peer.name()]["received"]["packets"]) as usize;
        assert_eq!(came_back.len(), pass1 + pass2, "{} rx pcap", peer.name());
        let (got1, got2) = came_back.split_at(pass1);
        let benign: Vec<&[u8]> = sent_into
            .iter()
            .copied()
            .filter(|f| !touches(f, &expected_bans))
            .collect();
        let what = format!("{} -> {}", side.name(), peer.name());
        // Pass 1: every benign packet, byte-identical and in order.
        let got1_benign: Vec<&[u8]> = got1
            .iter()
            .copied()
            .filter(|f| !touches(f, &expected_bans))
            .collect();
        assert_same_per_queue(
            &got1_benign,
            &benign,
            workers,
            &format!("{what} pass 1 benign"),
        );
        // Pass 2: the bans are in force: exactly the benign packets, nothing else.
        assert_same_per_queue(got2, &benign, workers, &format!("{what} pass 2"));
        assert!(
            got2.iter().all(|f| !touches(f, &expected_bans)),
            "{what}: a banned host's packet was forwarded in pass 2"
        );
        assert!(
            benign.len() < sent_into.len(),
            "{what}: the mix has banned traffic in this direction"
        );
    }

    // btblocker's own counters: every packet sent arrived, nothing failed to
    // go out; each worker got exactly the queue the generator hashed its flows to.
    let sum = read_summary(&run_summary);
    for (i, side) in Side::BOTH.iter().enumerate() {
        let port = &sum["ports"][i];
        assert_eq!(port["name"], side.name());
        assert_eq!(u(&port["rx_packets"]), sent(side.name()));
        assert_eq!(u(&port["tx_packets"]), got(side.name()));
        assert_eq!(u(&port["tx_failed"]), 0);
    }
    // What btblocker dropped is exactly what the generator's barriers found missing.
    let dropped: u64 = (0..2).map(|i| u(&sum["ports"][i]["dropped"])).sum();
    assert_eq!(
        dropped,
        u(&rs["dropped"]),
        "btblocker's drops vs the generator's"
    );
    assert_eq!(
        u(&rs["dropped"]),
        u(&rs["inside"]["sent"]["packets"]) + u(&rs["outside"]["sent"]["packets"])
            - u(&rs["inside"]["received"]["packets"])
            - u(&rs["outside"]["received"]["packets"])
    );
    let w = sum["workers"].as_array().unwrap();
    assert_eq!(w.len(), usize::from(workers));
    for (q, worker) in w.iter().enumerate() {
        let hashed = u(&rs["inside"]["sent_per_queue"][q]) + u(&rs["outside"]["sent_per_queue"][q]);
        assert!(hashed > 0, "queue {q} got no flow: {rs}");
        assert_eq!(u(&worker["rx_packets"]), hashed, "worker {q} vs queue {q}");
    }
}

#[test]
fn virtio_testbed_one_worker() {
    testbed("virtio1", 1);
}

#[test]
fn virtio_testbed_two_workers() {
    testbed("virtio2", 2);
}

fn replay_with(s: &Scratch, extra: &[&str]) -> std::process::Output {
    let (inside, outside) = (s.path("in.sock"), s.path("out.sock"));
    let prefix = format!("{}-gen", s.prefix);
    let mut args = vec![
        "replay",
        "--inside-sock",
        inside.to_str().unwrap(),
        "--outside-sock",
        outside.to_str().unwrap(),
        "--file-prefix",
        &prefix,
    ];
    args.extend_from_slice(extra);
    run_to_end(&args)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn replay_refuses_a_socket_in_a_missing_directory_before_eal() {
    let s = Scratch::new("replay-nodir");
    let demo = repo().join("data/demo.pcap");
    let out = run_to_end(&[
        "replay",
        "--pcap",
        demo.to_str().unwrap(),
        "--inside-sock",
        "/nonexistent-btblocker-dir/in.sock",
        "--outside-sock",
        s.path("out.sock").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains(
            "error: --inside-sock /nonexistent-btblocker-dir/in.sock: the directory /nonexistent-btblocker-dir does not exist"
        ),
        "{}",
        describe(&out)
    );
    assert!(!stderr(&out).contains("EAL:"), "{}", describe(&out));
}

#[test]
fn replay_refuses_an_unreadable_capture_before_eal() {
    let s = Scratch::new("replay-nopcap");
    let missing = s.path("missing.pcap");
    let out = replay_with(&s, &["--pcap", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains(&format!("error: {}: No such file", missing.display())),
        "{}",
        describe(&out)
    );
    assert!(!stderr(&out).contains("EAL:"), "{}", describe(&out));
}

#[test]
fn replay_says_when_nothing_connects_and_removes_its_sockets() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new("replay-nopeer");
    let demo = repo().join("data/demo.pcap");
    let out = replay_with(
        &s,
        &["--pcap", demo.to_str().unwrap(), "--connect-timeout-s", "1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains(&format!(
            "error: nothing connected to the inside socket {} within 1 s",
            s.path("in.sock").display()
        )),
        "{}",
        describe(&out)
    );
    assert!(!s.path("in.sock").exists() && !s.path("out.sock").exists());
}
