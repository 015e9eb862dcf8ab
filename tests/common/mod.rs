//! Helpers for integration tests that start the real `btblocker` binary.
#![allow(dead_code)]

pub mod frames;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_btblocker")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for one test, removed on drop, plus a unique DPDK file prefix.
pub struct Scratch {
    pub dir: PathBuf,
    pub prefix: String,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let prefix = format!("btbtest-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir, prefix }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.prefix));
    }
}

/// Waits for a child, killing it if it outlives `limit` (a hang guard, not a
/// speed assertion).
/// Waits for `child` to exit, at most `limit` (then kills it and panics
/// with its output). Its stdout and stderr are read while it runs, so a
/// large output (a list of 10,000 bans) cannot fill a pipe nobody reads.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> Output {
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "btblocker did not exit within {limit:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

pub fn spawn(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start btblocker")
}

/// Starts `btblocker run -c CFG --summary-json SUMMARY` (stopped by the test).
pub fn spawn_run(cfg: &Path, summary: &Path) -> Child {
    spawn(&[
        "run",
        "-c",
        cfg.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ])
}

pub fn run_to_end(args: &[&str]) -> Output {
    wait_with_limit(spawn(args), Duration::from_secs(120))
}

/// `btblocker bans ARGS --socket SOCKET`, run to its end.
pub fn bans(socket: &Path, args: &[&str]) -> Output {
    let mut all = vec!["bans"];
    all.extend_from_slice(args);
    all.extend(["--socket", socket.to_str().unwrap()]);
    run_to_end(&all)
}

/// Every ban in force (`bans list --json` fetches all pages), asserting
/// success.
pub fn list(socket: &Path) -> Vec<serde_json::Value> {
    let out = bans(socket, &["list", "--json"]);
    assert!(out.status.success(), "bans list: {}", describe(&out));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(reply["ok"], true);
    reply["bans"].as_array().unwrap().clone()
}

/// (ip, reason) of each ban, in list order.
pub fn hosts(bans: &[serde_json::Value]) -> Vec<(String, String)> {
    bans.iter()
        .map(|b| {
            (
                b["ip"].as_str().unwrap().to_string(),
                b["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Owned (ip, reason) pairs, to compare with `hosts`.
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(h, r)| (h.to_string(), r.to_string()))
        .collect()
}

pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Packet payloads (captured bytes) of a pcap or pcapng file, in order.
pub fn read_packets(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut packets = Vec::new();
    if data.len() >= 4 && data[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut r = pcap_file::pcapng::PcapNgReader::new(&data[..]).expect("pcapng header");
        while let Some(block) = r.next_block() {
            match block.expect("pcapng block") {
                pcap_file::pcapng::Block::EnhancedPacket(p) => packets.push(p.data.into_owned()),
                pcap_file::pcapng::Block::SimplePacket(p) => packets.push(p.data.into_owned()),
                _ => {}
            }
        }
    } else {
        let mut r = pcap_file::pcap::PcapReader::new(&data[..]).expect("pcap header");
        while let Some(p) = r.next_packet() {
            packets.push(p.expect("pcap packet").data.into_owned());
        }
    }
    packets
}

/// Writes packets as a classic Ethernet pcap.
pub fn write_pcap(path: &Path, packets: &[Vec<u8>]) {
    let file = std::fs::File::create(path).expect("create pcap");
    let mut w = pcap_file::pcap::PcapWriter::new(file).expect("pcap writer");
    for (i, p) in packets.iter().enumerate() {
        let pkt =
            pcap_file::pcap::PcapPacket::new(Duration::from_micros(i as u64), p.len() as u32, p);
        w.write_packet(&pkt).expect("write packet");
    }
}

/// The final counters the binary wrote with `--summary-json`.
pub fn read_summary(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("summary is JSON")
}

pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

/// Runs the binary on `yaml` (written into the scratch dir) until it exits by
/// itself, asserts success, and returns its `--summary-json`.
pub fn run_with_summary(s: &Scratch, yaml: &str) -> serde_json::Value {
    let cfg = s.write("config.yaml", yaml);
    let summary = s.path("summary.json");
    let _ = std::fs::remove_file(&summary);
    let out = run_to_end(&[
        "run",
        "-c",
        cfg.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "run failed: {}", describe(&out));
    read_summary(&summary)
}

/// The hosts the bundled capture (data/demo.pcap) gets banned for with
/// `ban.target: inside` and one inside port (the deciding packet's source),
/// with the detector, sorted as `bans list` sorts them (IPv4 first).
pub const DEMO_BANS: &[(&str, &str)] = &[
    ("82.243.113.43", "dht"),
    ("178.71.206.1", "peer_wire_handshake"),
    ("192.168.0.102", "lsd"),
    ("192.168.1.3", "peer_wire_handshake"),
    ("192.168.1.128", "http_tracker"),
    ("3991:72d:336e:65ec:c5bf:a5fa:83ad:23de", "utp"),
];

/// Sends `frames` out of `btbB` inside namespace `ns` (so they arrive on its
/// veth peer `btbA`), in order, through a raw socket; `scratch` holds them.
pub fn inject_frames(ns: &str, frames: &[Vec<u8>], scratch: &Path) -> Output {
    let hex: String = frames
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n")
        .collect();
    let file = scratch.join("frames.hex");
    std::fs::write(&file, hex).unwrap();
    let script = "import socket,sys\n\
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
s.bind(('btbB',0))\n\
for line in open(sys.argv[1]):\n    s.send(bytes.fromhex(line.strip()))\n";
    Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", script])
        .arg(&file)
        .output()
        .expect("python3")
}
