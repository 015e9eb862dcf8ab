//! Operator commands and DPDK telemetry against the real daemon on DPDK
//! vdevs: `bans list|add|del|flush` over the control socket, the socket's
//! mode and single-daemon rule, the state file after a restart, and
//! `/btblocker/stats` + `/btblocker/bans` through dpdk-telemetry.py.
#![cfg(feature = "dpdk")]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const DEMO: &str = "data/demo.pcap";
/// Frames in the bundled capture.
const DEMO_PACKETS: u64 = 1355;
/// Hang guard for anything the test waits for.
const GUARD: Duration = Duration::from_secs(90);

/// A daemon started by a test: SIGTERMed (then killed) if the test fails.
struct Daemon(Option<Child>);

impl Daemon {
    fn start(cmd: &mut Command) -> Daemon {
        let child = cmd
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start btblocker");
        Daemon(Some(child))
    }

    /// SIGTERM, then the exit status and output.
    fn stop(mut self) -> Output {
        let child = self.0.take().expect("running");
        sigterm(child.id());
        wait_with_limit(child, GUARD)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            sigterm(child.id());
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() && start.elapsed() < GUARD {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `ready` holds, checking every 50 ms (a hang guard, not a
/// timing assertion).
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < GUARD, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the daemon answers on `socket` (its ports are up then: the
/// control loop answers only once the dataplane runs).
fn wait_for_socket(socket: &Path, daemon: &mut Daemon) {
    wait_until("the control socket", || {
        if let Some(status) = daemon.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("the daemon exited early: {status}");
        }
        socket.exists() && bans(socket, &["list", "--json"]).status.success()
    });
}

/// Runs DPDK's own client, `dpdk-telemetry.py -f PREFIX`, with `commands` on
/// stdin, and returns each reply keyed by its command.
fn telemetry(prefix: &str, commands: &[&str]) -> BTreeMap<String, Value> {
    let mut child = Command::new("dpdk-telemetry.py")
        .args(["-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dpdk-telemetry.py (package dpdk-dev)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for c in commands {
            writeln!(stdin, "{c}").unwrap();
        }
    }
    let out = wait_with_limit(child, GUARD);
    assert!(
        out.status.success(),
        "dpdk-telemetry.py: {}",
        describe(&out)
    );
    let mut replies = BTreeMap::new();
    for line in stdout(&out).lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line).expect("telemetry reply is JSON");
        for (k, v) in v.as_object().unwrap() {
            replies.insert(k.clone(), v.clone());
        }
    }
    replies
}

fn stats(prefix: &str) -> Value {
    telemetry(prefix, &["/btblocker/stats"])["/btblocker/stats"].clone()
}

fn yaml(s: &Scratch, prefix: &str, device: &str, extra: &str) -> String {
    format!(
        "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {prefix}\n\
ports:\n  - name: inside\n    device: {device}\n    role: inside\n\
pipeline:\n  control_lcore: 0\n  worker_lcores: [1]\n  stats_interval_ms: 100\n\
metrics:\n  enabled: false\nban:\n  state_file: {state}\n{extra}",
        state = s.path("bans.jsonl").display(),
    )
}

/// Runs to the end on an empty capture (control socket off) and returns the
/// summary: what the state file brings back after a restart.
fn restart_summary(s: &Scratch) -> Value {
    let empty = s.path("empty.pcap");
    write_pcap(&empty, &[]);
    run_with_summary(
        s,
        &yaml(
            s,
            &s.prefix,
            &format!("net_pcap0,rx_pcap={}", empty.display()),
            "  action: log_only\ncontrol:\n  enabled: false\n",
        )
        .replace("  stats_interval_ms: 100\n", "  stop_after_idle_ms: 300\n"),
    )
}

#[test]
fn bans_list_add_flush_reach_the_daemon_its_state_file_and_telemetry() {
    let s = Scratch::new("ops-list");
    let socket = s.path("run/control.sock");
    let device = format!(
        "net_pcap0,rx_pcap={},tx_pcap={}",
        repo().join(DEMO).display(),
        s.path("out.pcap").display()
    );
    // log_only: every flow reaches DPI, so the ban set is exact (tests/bans.rs).
    let extra = format!(
        "  action: log_only\ncontrol:\n  socket: {}\n",
        socket.display()
    );
    let cfg = s.write("daemon.yaml", &yaml(&s, &s.prefix, &device, &extra));
    let mut daemon = Daemon::start(Command::new(bin()).args(["run", "-c", cfg.to_str().unwrap()]));
    wait_for_socket(&socket, &mut daemon);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "control socket mode");

    // The whole capture is in, then its bans are exactly the demo's.
    wait_until("every packet of the capture", || {
        stats(&s.prefix)["rx_packets"] == DEMO_PACKETS
    });
    wait_until("the demo's bans", || {
        hosts(&list(&socket)) == pairs(DEMO_BANS)
    });
    let listed = list(&socket);

    // Paging: the first two by address, then the rest after the second.
    let page = bans(&socket, &["list", "--json", "--limit", "2"]);
    let page: Value = serde_json::from_slice(&page.stdout).expect("JSON");
    assert_eq!(page["total"], 6);
    assert_eq!(hosts(page["bans"].as_array().unwrap()), hosts(&listed[..2]));
    let second = listed[1]["ip"].as_str().unwrap();
    let rest = bans(&socket, &["list", "--json", "--after", second]);
    let rest: Value = serde_json::from_slice(&rest.stdout).expect("JSON");
    assert_eq!(hosts(rest["bans"].as_array().unwrap()), hosts(&listed[2..]));
    let table = bans(&socket, &["list", "--limit", "2"]);
    assert_eq!(stdout(&table).lines().count(), 3, "header and two bans");
    assert_eq!(
        String::from_utf8_lossy(&table.stderr),
        format!("2 bans shown (6 in force); the next ones: bans list --limit N --after {second}\n")
    );
    for b in &listed {
        assert!(b["hits"].as_u64().unwrap() >= 1);
        let (expires, remaining) = (
            b["expires_ms"].as_u64().unwrap(),
            b["remaining_ms"].as_u64().unwrap(),
        );
        assert!(
            remaining <= 18_000_000 && expires >= b["first_seen_ms"].as_u64().unwrap() + 18_000_000
        );
    }

    // Telemetry shows the same: counters and bans.
    let t = telemetry(&s.prefix, &["/btblocker/stats", "/btblocker/bans"]);
    let st = &t["/btblocker/stats"];
    assert_eq!(st["rx_packets"], DEMO_PACKETS);
    assert_eq!(
        st["tx_packets"], DEMO_PACKETS,
        "log_only forwards everything"
    );
    assert_eq!(st["dropped_packets"], 0);
    assert_eq!(st["bans_active"], 6);
    assert_eq!(st["bans_added"], 6);
    assert_eq!(st["bans_refused"], 0);
    let want_lines: Vec<Value> = listed
        .iter()
        .map(|b| {
            Value::from(format!(
                "{} {} {}",
                b["ip"].as_str().unwrap(),
                b["reason"].as_str().unwrap(),
                b["expires_ms"]
            ))
        })
        .collect();
    assert_eq!(t["/btblocker/bans"], Value::from(want_lines));

    // A second daemon on the same socket refuses to start and leaves the
    // first one's socket alone.
    let second_cfg = s.write(
        "second.yaml",
        &yaml(&s, &format!("{}-2", s.prefix), "net_null0", &extra).replace(
            &format!("  state_file: {}", s.path("bans.jsonl").display()),
            "  persist: false",
        ),
    );
    let second = run_to_end(&["run", "-c", second_cfg.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(1), "{}", describe(&second));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr).lines().last().unwrap(),
        format!(
            "error: another btblocker is already running: it answers on the control socket {} (stop it first, or give this one another control.socket)",
            socket.display()
        )
    );
    assert_eq!(list(&socket).len(), 6, "the first daemon still answers");

    // Manual bans: add, refresh, refusals, del.
    let out = bans(&socket, &["add", "10.1.1.1", "--ttl", "2d"]);
    assert_eq!(
        stdout(&out),
        "banned 10.1.1.1 (manual) for 2days\n",
        "{}",
        describe(&out)
    );
    let out = bans(&socket, &["add", "10.1.1.2"]);
    assert_eq!(
        stdout(&out),
        "banned 10.1.1.2 (manual) for 5h\n",
        "{}",
        describe(&out)
    );
    let out = bans(&socket, &["add", "255.255.255.255"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: 255.255.255.255 is never banned (multicast, broadcast, unspecified or loopback)\n"
    );
    let out = bans(&socket, &["add", "10.1.1"]);
    assert_eq!(out.status.code(), Some(2), "a bad IP is a usage error");
    let out = bans(&socket, &["del", "10.1.1.2"]);
    assert_eq!(stdout(&out), "lifted the ban on 10.1.1.2 (manual)\n");
    let out = bans(&socket, &["del", "10.1.1.2"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: 10.1.1.2 is not banned\n"
    );
    let mut want = pairs(DEMO_BANS);
    want.insert(0, ("10.1.1.1".into(), "manual".into()));
    let now = list(&socket);
    assert_eq!(hosts(&now), want);
    let manual = &now[0];
    assert_eq!(manual["hits"], 1);
    assert_eq!(
        manual["expires_ms"].as_u64().unwrap() - manual["first_seen_ms"].as_u64().unwrap(),
        2 * 86_400_000
    );
    // The human table: header plus one row per ban.
    let table = stdout(&bans(&socket, &["list"]));
    assert!(table.starts_with("IP "), "{table}");
    assert_eq!(table.lines().count(), 1 + want.len());
    assert!(table.lines().nth(1).unwrap().starts_with("10.1.1.1 "));

    let out = daemon.stop();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!socket.exists(), "a clean stop removes the socket");
    let out = bans(&socket, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: btblocker is not running (nothing answers on the control socket {})\n",
            socket.display()
        )
    );

    // The state file has the manual ban and not the deleted one.
    let sum = restart_summary(&s);
    assert_eq!(sum["bans"]["restored"], 7);
    let mut restored: Vec<(String, String)> = sum["bans"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
        .collect();
    restored.sort();
    want.sort();
    assert_eq!(restored, want);

    // Flush on a running daemon; a flushed ban does not come back.
    let empty = s.path("empty.pcap");
    let cfg = s.write(
        "daemon2.yaml",
        &yaml(
            &s,
            &s.prefix,
            &format!("net_pcap0,rx_pcap={}", empty.display()),
            &extra,
        ),
    );
    let mut daemon = Daemon::start(Command::new(bin()).args(["run", "-c", cfg.to_str().unwrap()]));
    wait_for_socket(&socket, &mut daemon);
    assert_eq!(list(&socket).len(), 7);
    assert_eq!(stdout(&bans(&socket, &["flush"])), "lifted 7 ban(s)\n");
    assert_eq!(stdout(&bans(&socket, &["list"])), "no bans\n");
    assert_eq!(stats(&s.prefix)["bans_active"], 0);
    assert!(daemon.stop().status.success());
    let sum = restart_summary(&s);
    assert_eq!(sum["bans"]["restored"], 0);
    assert_eq!(sum["bans"]["hosts"], Value::Array(vec![]));
}

// ---- bans del lifts a ban: exact packets through a veth pair ----------------

/// A network namespace holding a veth pair (`btbA` for DPDK, `btbB` to
/// inject from), with IPv6 off so the kernel sends nothing of its own.
/// Deleted on drop, also when the test fails.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        // A leftover of an interrupted run.
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        let ns = Netns(name.to_string());
        let sh = |args: &[&str]| {
            let out = Command::new("ip")
                .args(args)
                .output()
                .expect("ip (iproute2)");
            assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
        };
        sh(&["netns", "add", name]);
        for key in ["all", "default"] {
            sh(&[
                "netns",
                "exec",
                name,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
            ]);
        }
        sh(&[
            "-n", name, "link", "add", "btbA", "type", "veth", "peer", "name", "btbB",
        ]);
        sh(&["-n", name, "link", "set", "btbA", "up"]);
        sh(&["-n", name, "link", "set", "btbB", "up"]);
        ns
    }

    /// Sends `frames` out of btbB (so they arrive on btbA), in order.
    fn inject(&self, frames: &[Vec<u8>], scratch: &Path) {
        let out = inject_frames(&self.0, frames, scratch);
        assert!(out.status.success(), "inject: {}", describe(&out));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// UDP from `src` to 10.20.0.9 port 9, payload naming the batch and index.
fn frame(src: [u8; 4], batch: u8, i: u16) -> Vec<u8> {
    let payload = format!("btblocker operator test batch {batch} frame {i:04} ........");
    let udp_len = 8 + payload.len() as u16;
    let ip_len = 20 + udp_len;
    let mut f = vec![0x02, 0, 0, 0, 0, 0x09, 0x02, 0, 0, 0, 0, 0x05, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&i.to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&[10, 20, 0, 9]);
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload.as_bytes());
    f
}

#[test]
fn bans_del_lifts_a_ban_and_exactly_the_later_packets_flow() {
    const N: u16 = 25;
    let s = Scratch::new("ops-del");
    let ns = Netns::new(&format!("btb-del-{}", std::process::id()));
    let socket = s.path("control.sock");
    let out_pcap = s.path("out.pcap");
    let summary = s.path("summary.json");
    let cfg = s.write(
        "daemon.yaml",
        &yaml(
            &s,
            &s.prefix,
            &format!("net_pcap0,rx_iface_in=btbA,tx_pcap={}", out_pcap.display()),
            &format!(
                "  action: ban_host\ncontrol:\n  socket: {}\n",
                socket.display()
            ),
        ),
    );
    let mut daemon = Daemon::start(
        Command::new("ip")
            .args(["netns", "exec", &ns.0, bin(), "run", "-c"])
            .arg(&cfg)
            .arg("--summary-json")
            .arg(&summary),
    );
    wait_for_socket(&socket, &mut daemon);
    let host = [10, 20, 0, 5];

    let out = bans(&socket, &["add", "10.20.0.5", "--ttl", "1h"]);
    assert_eq!(
        stdout(&out),
        "banned 10.20.0.5 (manual) for 1h\n",
        "{}",
        describe(&out)
    );
    let banned: Vec<Vec<u8>> = (0..N).map(|i| frame(host, 1, i)).collect();
    ns.inject(&banned, &s.dir);
    wait_until("the first batch", || {
        stats(&s.prefix)["rx_packets"] == u64::from(N)
    });
    let st = stats(&s.prefix);
    assert_eq!(st["dropped_banned_host"], u64::from(N), "{st}");
    assert_eq!(st["tx_packets"], 0, "{st}");

    let out = bans(&socket, &["del", "10.20.0.5"]);
    assert_eq!(
        stdout(&out),
        "lifted the ban on 10.20.0.5 (manual)\n",
        "{}",
        describe(&out)
    );
    let lifted: Vec<Vec<u8>> = (0..N).map(|i| frame(host, 2, i)).collect();
    ns.inject(&lifted, &s.dir);
    wait_until("the second batch", || {
        stats(&s.prefix)["rx_packets"] == u64::from(2 * N)
    });

    let out = daemon.stop();
    assert!(out.status.success(), "{}", describe(&out));
    let sum = read_summary(&summary);
    let port = &sum["ports"][0];
    assert_eq!(u(&port["rx_packets"]), u64::from(2 * N));
    assert_eq!(u(&port["tx_packets"]), u64::from(N));
    assert_eq!(u(&sum["enforcement"]["dropped_banned_host"]), u64::from(N));
    assert_eq!(
        read_packets(&out_pcap),
        lifted,
        "exactly the second batch, byte for byte"
    );
    drop(ns);
}
