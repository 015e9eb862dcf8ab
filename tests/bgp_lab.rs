//! Bans beyond the box, on real daemons (issue 14's "Done when"): three
//! network namespaces made by `scripts/bgp-lab.sh` (BIRD 2 as the router and
//! iBGP route reflector, a gobgpd per box), two `btblocker run` daemons A and
//! B each talking to its own gobgpd over the gRPC Unix socket.
//!
//! - `lab_plumbing_with_the_gobgp_cli`: the lab alone, driven with the gobgp
//!   CLI: what the router must accept, reject, install in its kernel and
//!   reflect; what a session flap and a speaker restart do to the routes.
//! - `the_detection_capture_bans_one_ipv4_and_one_ipv6_host`: no BGP, the
//!   exact detections the BGP test expects of box A's capture.
//! - the others start the real binary with a `bgp:` section (the agreed
//!   schema): A's bans reach the router and B, withdrawals, expiry,
//!   FlowSpec, and the faults (flap, gobgpd restart, kill -9, 10,000 bans);
//!   operations: max_announced, a SIGHUP of communities and never_announce,
//!   on_session_loss keep and drop, and the `btblocker_bgp_*` metrics.
//!
//! Needs root and bird2 + gobgpd (scripts/install-deps.sh): otherwise each
//! test prints why and passes without asserting. The binary tests also skip
//! (saying so) while the binary does not know the `bgp:` section yet.
#![cfg(feature = "dpdk")]

mod common;
#[path = "common/bgp_lab.rs"]
mod lab;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use lab::*;
use serde_json::Value;

/// The communities the lab's router requires (RFC 7999 BLACKHOLE) plus no-export,
/// as BIRD prints them.
const BIRD_COMMUNITIES: &str = "(65535,666) (65535,65281)";

macro_rules! skip_without_lab {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

#[test]
fn lab_plumbing_with_the_gobgp_cli() {
    skip_without_lab!();
    let lab = Lab::up();
    let a = BoxId::A;
    let b = BoxId::B;
    // What a box announces: a host route per address family with the
    // communities and the large communities (expiry, box id), plus what the
    // router's import filter must refuse: a /24, and a /32 without the community.
    lab.gobgp(
        a,
        &[
            "global",
            "rib",
            "add",
            "203.0.113.7/32",
            "nexthop",
            "192.0.2.1",
            "community",
            "65535:666,no-export",
            "large-community",
            "65001:1:1999999999,65001:2:1",
        ],
    );
    lab.gobgp(
        a,
        &[
            "global",
            "rib",
            "-a",
            "ipv6",
            "add",
            "2001:db8::7/128",
            "nexthop",
            "100::1",
            "community",
            "65535:666,no-export",
            "large-community",
            "65001:1:1999999999,65001:2:1",
        ],
    );
    lab.gobgp(
        a,
        &[
            "global",
            "rib",
            "add",
            "198.51.100.0/24",
            "nexthop",
            "192.0.2.1",
            "community",
            "65535:666",
        ],
    );
    lab.gobgp(
        a,
        &[
            "global",
            "rib",
            "add",
            "198.51.100.9/32",
            "nexthop",
            "192.0.2.1",
        ],
    );
    lab.gobgp(
        a,
        &[
            "global",
            "rib",
            "-a",
            "ipv4-flowspec",
            "add",
            "match",
            "source",
            "203.0.113.8/32",
            "then",
            "discard",
        ],
    );
    lab.gobgp(
        a,
        &[
            "global",
            "rib",
            "-a",
            "ipv6-flowspec",
            "add",
            "match",
            "source",
            "2001:db8::8/128",
            "then",
            "discard",
        ],
    );

    let took = poll_eq(
        "the router's RIB",
        LAB_GUARD,
        &set(&["203.0.113.7/32"]),
        || nets(&lab.bird_routes("master4")),
    );
    eprintln!("203.0.113.7/32 in the router's RIB after {took:?}");
    let r4 = &lab.bird_routes("master4")["203.0.113.7/32"];
    assert_eq!(r4.from, "box_a");
    assert_eq!(
        r4.kind, "blackhole",
        "resolved through the static discard route"
    );
    assert_eq!(r4.next_hop, "192.0.2.1");
    assert_eq!(r4.communities, BIRD_COMMUNITIES);
    assert_eq!(r4.large_communities, "(65001, 1, 1999999999) (65001, 2, 1)");
    poll_eq(
        "the router's IPv6 RIB",
        LAB_GUARD,
        &set(&["2001:db8::7/128"]),
        || nets(&lab.bird_routes("master6")),
    );
    let r6 = &lab.bird_routes("master6")["2001:db8::7/128"];
    assert_eq!(
        (
            r6.kind.as_str(),
            r6.next_hop.as_str(),
            r6.communities.as_str()
        ),
        ("blackhole", "100::1", BIRD_COMMUNITIES)
    );
    poll_eq(
        "flowtab4",
        LAB_GUARD,
        &set(&["flow4 { src 203.0.113.8/32; }"]),
        || nets(&lab.bird_routes("flowtab4")),
    );
    poll_eq(
        "flowtab6",
        LAB_GUARD,
        &set(&["flow6 { src 2001:db8::8/128; }"]),
        || nets(&lab.bird_routes("flowtab6")),
    );
    // Traffic action 0x8006, rate 0: discard (RFC 8955).
    assert_eq!(
        lab.bird_routes("flowtab4")["flow4 { src 203.0.113.8/32; }"].ext_communities,
        "(generic, 0x80060000, 0x0)"
    );
    // The router's forwarding plane: exactly the two tagged host routes.
    let both = set(&["203.0.113.7", "2001:db8::7"]);
    poll_eq("the router's kernel blackholes", LAB_GUARD, &both, || {
        lab.kernel_blackholes()
    });
    // Reflected to box B, communities and all.
    poll_eq("B's RIB", LAB_GUARD, &set(&["203.0.113.7/32"]), || {
        nets(&lab.gobgp_rib(b, "ipv4"))
    });
    poll_eq(
        "B's IPv6 RIB",
        LAB_GUARD,
        &set(&["2001:db8::7/128"]),
        || nets(&lab.gobgp_rib(b, "ipv6")),
    );
    poll_eq(
        "B's FlowSpec RIB",
        LAB_GUARD,
        &set(&["[source: 203.0.113.8/32]"]),
        || nets(&lab.gobgp_rib(b, "ipv4-flowspec")),
    );
    let seen_by_b = lab.gobgp(b, &["global", "rib", "203.0.113.7/32"]);
    assert!(
        seen_by_b.contains("{Communities: blackhole, no-export}")
            && seen_by_b.contains("{LargeCommunity: [ 65001:1:1999999999, 65001:2:1]}")
            && seen_by_b.contains("{Originator: 10.200.0.2}"),
        "{seen_by_b}"
    );

    // The router's session with A flaps: A's routes leave the router and B,
    // then GoBGP re-advertises its RIB by itself once the session is back.
    lab.birdc(&["disable", "box_a"]);
    poll_eq(
        "the router's RIB after A's session went down",
        LAB_GUARD,
        &set(&[]),
        || nets(&lab.bird_routes("master4")),
    );
    poll_eq(
        "B's RIB after A's session went down",
        LAB_GUARD,
        &set(&[]),
        || nets(&lab.gobgp_rib(b, "ipv4")),
    );
    assert_eq!(lab.kernel_blackholes(), set(&[]));
    lab.birdc(&["enable", "box_a"]);
    let took = poll_eq(
        "the RIB after the flap",
        LAB_GUARD,
        &set(&["203.0.113.7/32"]),
        || nets(&lab.bird_routes("master4")),
    );
    eprintln!("A's routes back in the router's RIB {took:?} after the session was enabled");
    poll_eq("blackholes after the flap", LAB_GUARD, &both, || {
        lab.kernel_blackholes()
    });
    poll_eq(
        "B after the flap",
        LAB_GUARD,
        &set(&["2001:db8::7/128"]),
        || nets(&lab.gobgp_rib(b, "ipv6")),
    );

    // Withdrawal reaches the router's RIB, its kernel and B.
    lab.gobgp(a, &["global", "rib", "del", "203.0.113.7/32"]);
    poll_eq("the withdrawal at the router", LAB_GUARD, &set(&[]), || {
        nets(&lab.bird_routes("master4"))
    });
    poll_eq(
        "the withdrawal in the kernel",
        LAB_GUARD,
        &set(&["2001:db8::7"]),
        || lab.kernel_blackholes(),
    );
    poll_eq("the withdrawal at B", LAB_GUARD, &set(&[]), || {
        nets(&lab.gobgp_rib(b, "ipv4"))
    });

    // A's speaker restarts: its routes leave the router at once and it comes
    // back with an empty RIB: only the box replaying its bans brings them back.
    lab.stop_speaker(a, "KILL");
    poll_eq(
        "the router after A's gobgpd died",
        LAB_GUARD,
        &set(&[]),
        || nets(&lab.bird_routes("master6")),
    );
    lab.start_speaker(a);
    lab.wait_established();
    assert_eq!(
        lab.gobgp_rib(a, "ipv6").len(),
        0,
        "a restarted gobgpd holds nothing"
    );
    assert_eq!(lab.bird_count("master4") + lab.bird_count("master6"), 0);
    assert_eq!(lab.bird_count("flowtab4") + lab.bird_count("flowtab6"), 0);
    assert_eq!(lab.kernel_blackholes(), set(&[]));
}

/// The router's max-prefix: routes beyond the limit are blocked, the
/// session stays up (what protects a router from a runaway box).
#[test]
fn the_routers_prefix_limit_blocks_routes_beyond_it() {
    skip_without_lab!();
    let lab = Lab::up_with_max_prefix(Some(3));
    for i in 1..=5 {
        let net = format!("203.0.113.{i}/32");
        lab.gobgp(
            BoxId::A,
            &[
                "global",
                "rib",
                "add",
                &net,
                "nexthop",
                "192.0.2.1",
                "community",
                "65535:666",
            ],
        );
    }
    let words = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    poll("all 5 updates at the router", LAB_GUARD, || {
        words(lab.birdc(&["show", "protocols", "all", "box_a"]))
            .contains("Import updates: 5 0 0 2 3")
    });
    let state = words(lab.birdc(&["show", "protocols", "all", "box_a"]));
    assert!(
        state.contains("Import limit: 3 [HIT] Action: block"),
        "{state}"
    );
    assert!(
        state.contains("box_a BGP --- up"),
        "the session stays up: {state}"
    );
    assert_eq!(lab.bird_count("master4"), 3);
    assert_eq!(lab.kernel_blackholes().len(), 3);
}

// ---- the real binary: two boxes A (box_id 1) and B (box_id 2) -------------

/// Two busy-polling daemons per test on a shared machine: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A's traffic: an IPv4 BitTorrent capture, then an IPv6 one.
const CAPTURES: [&str; 2] = [
    "../shared/corpus/ndpi/positive/bittorrent.pcap",
    "../shared/corpus/ndpi/positive/lru_ipv6_caches.pcapng",
];
/// What A's detection bans on `CAPTURES` (checked without BGP by
/// `the_detection_capture_bans_one_ipv4_and_one_ipv6_host`).
const DETECTED: &str = "192.168.1.3";
const DETECTED6: &str = "3991:72d:336e:65ec:c5bf:a5fa:83ad:23de";

/// `CAPTURES` in one classic pcap, for one net_pcap port.
fn detection_capture(s: &Scratch) -> PathBuf {
    let frames: Vec<Vec<u8>> = CAPTURES
        .iter()
        .flat_map(|c| read_packets(&repo().join(c)))
        .collect();
    let path = s.path("detect.pcap");
    write_pcap(&path, &frames);
    path
}

/// The detections the BGP test expects of A, without BGP: the same capture
/// and ban policy ban exactly one IPv4 and one IPv6 host.
#[test]
fn the_detection_capture_bans_one_ipv4_and_one_ipv6_host() {
    let s = Scratch::new("bgp-detect");
    let capture = detection_capture(&s);
    let sum = run_with_summary(
        &s,
        &format!(
            "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {prefix}\n\
ports:\n  - name: inside\n    device: net_pcap0,rx_pcap={rx}\n    role: inside\n\
pipeline:\n  control_lcore: 0\n  worker_lcores: [1]\n  stop_after_idle_ms: 400\n\
metrics:\n  enabled: false\ncontrol:\n  enabled: false\nban:\n  action: ban_host\n  persist: false\n",
            prefix = s.prefix,
            rx = capture.display()
        ),
    );
    let banned: BTreeSet<(String, String)> = sum["bans"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        banned,
        pair_set(&[(DETECTED, "peer_wire_handshake"), (DETECTED6, "utp")])
    );
}
/// Hang guard for the daemons (start-up, replies).
const GUARD: Duration = Duration::from_secs(90);

/// A `btblocker run` inside one of the lab's namespaces, SIGTERMed (then
/// killed) on drop.
struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
    prefix: String,
    summary: PathBuf,
    /// Its stdout and stderr.
    log: PathBuf,
}

impl Daemon {
    fn start(ns: &str, cfg: &Path, socket: &Path, prefix: &str, summary: &Path) -> Daemon {
        // Its output goes to a file, not a pipe: nobody reads a pipe while the
        // test runs, and a daemon logging 10,000 bans would block on a full one.
        let log_path = summary.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("daemon log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, bin(), "run", "-c"])
            .arg(cfg)
            .arg("--summary-json")
            .arg(summary)
            .current_dir(repo())
            .stdout(log.try_clone().expect("daemon log"))
            .stderr(log)
            .spawn()
            .expect("start btblocker");
        let mut d = Daemon {
            child: Some(child),
            socket: socket.to_path_buf(),
            prefix: prefix.to_string(),
            summary: summary.to_path_buf(),
            log: log_path,
        };
        d.wait_for_socket();
        d
    }

    /// Until the control socket answers (the dataplane runs then).
    fn wait_for_socket(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("the daemon exited early: {status}\n{}", self.log_text());
            }
            if self.socket.exists() && bans(&self.socket, &["list", "--json"]).status.success() {
                return;
            }
            assert!(
                start.elapsed() < GUARD,
                "gave up waiting for the control socket"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
    }

    /// SIGTERM: a clean stop; its output and `--summary-json`.
    fn stop(mut self) -> (Output, Value) {
        self.signal("-TERM");
        let out = wait_with_limit(self.child.take().unwrap(), GUARD);
        assert!(
            out.status.success(),
            "{:?}\n{}",
            out.status,
            self.log_text()
        );
        let sum = read_summary(&self.summary);
        (out, sum)
    }

    /// kill -9: no withdrawal, no last journal flush.
    fn kill9(mut self) {
        self.signal("-KILL");
        let _ = wait_with_limit(self.child.take().unwrap(), GUARD);
    }

    fn list(&self) -> Vec<Value> {
        list(&self.socket)
    }

    /// (ip, reason) of every ban in force.
    fn host_set(&self) -> BTreeSet<(String, String)> {
        host_set(&self.list())
    }

    fn bans(&self, args: &[&str]) -> String {
        let out = bans(&self.socket, args);
        assert!(out.status.success(), "bans {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stats(&self) -> Value {
        telemetry_stats(&self.prefix)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() && start.elapsed() < GUARD {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bans in force as a set of (ip, reason): the lab compares sets.
fn host_set(bans: &[Value]) -> BTreeSet<(String, String)> {
    hosts(bans).into_iter().collect()
}

fn pair_set(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs(list).into_iter().collect()
}

/// How many bans are in force (`total` of a one-ban page).
fn count(socket: &Path) -> u64 {
    let out = bans(socket, &["list", "--json", "--limit", "1"]);
    assert!(out.status.success(), "bans list: {}", describe(&out));
    let reply: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    reply["total"].as_u64().expect("total")
}

/// `/btblocker/stats` through DPDK's `dpdk-telemetry.py -f PREFIX`.
fn telemetry_stats(prefix: &str) -> Value {
    let mut child = Command::new("dpdk-telemetry.py")
        .args(["-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dpdk-telemetry.py (package dpdk-dev)");
    writeln!(child.stdin.take().unwrap(), "/btblocker/stats").unwrap();
    let out = wait_with_limit(child, GUARD);
    assert!(
        out.status.success(),
        "dpdk-telemetry.py: {}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            v.get("/btblocker/stats").cloned()
        })
        .expect("a /btblocker/stats reply")
}

/// One box of the test: its scratch paths and config.
struct BoxSetup {
    which: BoxId,
    box_id: u32,
    scratch: Scratch,
}

impl BoxSetup {
    fn new(which: BoxId, box_id: u32, test: &str) -> BoxSetup {
        BoxSetup {
            which,
            box_id,
            scratch: Scratch::new(&format!("{test}-{}", which.letter())),
        }
    }

    fn socket(&self) -> PathBuf {
        self.scratch.path("control.sock")
    }

    /// The config: `device` as the one inside port, action ban_host, the
    /// journal flushed every 100 ms, and the agreed `bgp:` section (plus
    /// `bgp_extra` lines) pointing at this box's gobgpd in the lab.
    fn config(&self, lab: &Lab, device: &str, bgp_extra: &str) -> PathBuf {
        let yaml = format!(
            "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {prefix}\n\
ports:\n  - name: inside\n    device: {device}\n    role: inside\n\
pipeline:\n  control_lcore: 0\n  worker_lcores: [1]\n  stats_interval_ms: 100\n\
metrics:\n  enabled: false\ncontrol:\n  socket: {socket}\n\
ban:\n  action: ban_host\n  state_file: {state}\n  flush_ms: 100\n\
bgp:\n  enabled: true\n  api_socket: {api}\n  local_asn: 65001\n  box_id: {id}\n  \
next_hop_v4: 192.0.2.1\n  next_hop_v6: \"100::1\"\n  communities: [\"65535:666\", \"no-export\"]\n  \
import: true\n{bgp_extra}",
            prefix = self.scratch.prefix,
            socket = self.socket().display(),
            state = self.scratch.path("bans.jsonl").display(),
            api = lab.api_socket(self.which).display(),
            id = self.box_id,
        );
        self.scratch.write("config.yaml", &yaml)
    }

    fn start(&self, lab: &Lab, cfg: &Path) -> Daemon {
        Daemon::start(
            lab.ns(self.which),
            cfg,
            &self.socket(),
            &self.scratch.prefix,
            &self.scratch.path("summary.json"),
        )
    }
}

/// Why the binary tests cannot run yet: the binary has no `bgp:` section
/// (the BGP core is another branch). Any other check-config failure of the
/// agreed schema's section fails the test.
fn binary_lacks_bgp() -> Option<String> {
    let s = Scratch::new("bgp-schema");
    let cfg = s.write(
        "check.yaml",
        "ports:\n  - name: inside\n    device: net_null0\n    role: inside\n\
bgp:\n  enabled: true\n  api_socket: /run/btblocker/gobgp.sock\n  local_asn: 65001\n  box_id: 1\n  \
next_hop_v4: 192.0.2.1\n  next_hop_v6: \"100::1\"\n  communities: [\"65535:666\", \"no-export\"]\n  \
import: true\n  flowspec: beside\n",
    );
    let out = run_to_end(&["check-config", cfg.to_str().unwrap()]);
    if out.status.success() {
        return None;
    }
    if String::from_utf8_lossy(&out.stderr).contains("bgp: unknown key") {
        return Some("this btblocker has no `bgp:` section yet (the BGP core)".into());
    }
    panic!(
        "check-config refused the agreed bgp: section: {}",
        describe(&out)
    );
}

/// Starts the lab, or says why the test cannot run (and returns).
macro_rules! lab_or_skip {
    () => {{
        if let Some(why) = skip_reason().or_else(binary_lacks_bgp) {
            eprintln!("SKIPPED: {why}");
            return;
        }
        Lab::up()
    }};
}

/// The large community `(ASN, 2, box_id)` as BIRD prints it.
fn box_tag(box_id: u32) -> String {
    format!("(65001, 2, {box_id})")
}

/// The routes a box's bans must become at the router: every /32 and /128 of
/// `ips`, all from box_a with the communities and A's box tag.
fn assert_announced_by_a(lab: &Lab, routes4: &[&str], routes6: &[&str]) {
    let want4: BTreeSet<String> = routes4.iter().map(|ip| format!("{ip}/32")).collect();
    let want6: BTreeSet<String> = routes6.iter().map(|ip| format!("{ip}/128")).collect();
    poll_eq("the router's IPv4 RIB", LAB_GUARD, &want4, || {
        nets(&lab.bird_routes("master4"))
    });
    poll_eq("the router's IPv6 RIB", LAB_GUARD, &want6, || {
        nets(&lab.bird_routes("master6"))
    });
    for (net, r) in lab
        .bird_routes("master4")
        .into_iter()
        .chain(lab.bird_routes("master6"))
    {
        assert_eq!(
            r.from, "box_a",
            "{net}: B never re-announces what it imported"
        );
        assert_eq!(
            r.kind, "blackhole",
            "{net}: resolved through the discard route"
        );
        // In whatever order the box sends them.
        let mut got: Vec<&str> = r.communities.split_whitespace().collect();
        got.sort_unstable();
        let mut want: Vec<&str> = BIRD_COMMUNITIES.split_whitespace().collect();
        want.sort_unstable();
        assert_eq!(got, want, "{net}: {r:?}");
        assert!(r.large_communities.contains(&box_tag(1)), "{net}: {r:?}");
        assert!(
            r.large_communities.contains("(65001, 1, "),
            "{net}: expiry: {r:?}"
        );
    }
    let mut kernel: BTreeSet<String> = routes4.iter().map(|s| s.to_string()).collect();
    kernel.extend(routes6.iter().map(|s| s.to_string()));
    poll_eq("the router's kernel blackholes", LAB_GUARD, &kernel, || {
        lab.kernel_blackholes()
    });
}

/// The expiry large community `(65001, 1, <unix s>)` of one route.
fn expiry_of(r: &BirdRoute) -> u64 {
    let start = r
        .large_communities
        .find("(65001, 1, ")
        .expect("expiry community")
        + 11;
    let rest = &r.large_communities[start..];
    rest[..rest.find(')').unwrap()].parse().unwrap()
}

#[test]
fn a_bans_reach_the_router_and_b_which_enforces_them_until_a_lifts_them() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab_or_skip!();
    let a = BoxSetup::new(BoxId::A, 1, "bgp-ab");
    let b = BoxSetup::new(BoxId::B, 2, "bgp-ab");
    let veth = Veth::new(&lab.ns_b);
    // A detects on the BitTorrent capture; B receives what the test injects.
    let cfg_a = a.config(
        &lab,
        &format!(
            "net_pcap0,rx_pcap={},tx_pcap={}",
            detection_capture(&a.scratch).display(),
            a.scratch.path("out.pcap").display()
        ),
        "",
    );
    let cfg_b = b.config(
        &lab,
        &format!(
            "net_pcap0,rx_iface_in=btbA,tx_pcap={}",
            b.scratch.path("out.pcap").display()
        ),
        "",
    );
    let box_b = b.start(&lab, &cfg_b);
    let box_a = a.start(&lab, &cfg_a);

    // Detection, then manual bans (IPv4 and IPv6), all announced.
    assert_eq!(
        box_a.bans(&["add", "203.0.113.7", "--ttl", "1h"]),
        "banned 203.0.113.7 (manual) for 1h\n"
    );
    assert_eq!(
        box_a.bans(&["add", "2001:db8::7", "--ttl", "1h"]),
        "banned 2001:db8::7 (manual) for 1h\n"
    );
    let started = Instant::now();
    assert_announced_by_a(
        &lab,
        &[DETECTED, "203.0.113.7"],
        &[DETECTED6, "2001:db8::7"],
    );
    eprintln!(
        "A's 4 bans at the router (RIB and kernel) {:?} after the last bans add",
        started.elapsed()
    );
    let a_table = pair_set(&[
        (DETECTED, "peer_wire_handshake"),
        (DETECTED6, "utp"),
        ("203.0.113.7", "manual"),
        ("2001:db8::7", "manual"),
    ]);
    assert_eq!(box_a.host_set(), a_table, "A imports nothing of its own");
    // The expiry travels: A's ban's expiry in unix seconds.
    let listed_a = box_a.list();
    let manual = listed_a.iter().find(|b| b["ip"] == "203.0.113.7").unwrap();
    let expires_s = manual["expires_ms"].as_u64().unwrap() / 1000;
    let at_router = expiry_of(&lab.bird_routes("master4")["203.0.113.7/32"]);
    assert!(
        at_router == expires_s || at_router == expires_s + 1,
        "expiry {at_router} at the router, {expires_s} in A's table"
    );

    // B imports them, naming A; its own table holds nothing else.
    let imported = pair_set(&[
        (DETECTED, "bgp:1"),
        (DETECTED6, "bgp:1"),
        ("203.0.113.7", "bgp:1"),
        ("2001:db8::7", "bgp:1"),
    ]);
    poll_eq("B's ban table", LAB_GUARD, &imported, || box_b.host_set());
    for ban in box_b.list() {
        let exp = ban["expires_ms"].as_u64().expect("an imported ban expires");
        let a_exp = listed_a.iter().find(|x| x["ip"] == ban["ip"]).unwrap()["expires_ms"]
            .as_u64()
            .unwrap();
        assert!(
            exp / 1000 <= a_exp / 1000 + 1,
            "{ban}: expires after A's ban"
        );
    }

    // B drops the packets of hosts A banned: N from each, not one forwarded.
    const N: u16 = 25;
    let dst: IpAddr = "10.20.0.9".parse().unwrap();
    let dst6: IpAddr = "2001:db8:1::9".parse().unwrap();
    let mut first: Vec<Vec<u8>> = (0..N)
        .map(|i| udp_frame("203.0.113.7".parse().unwrap(), dst, 1, i))
        .collect();
    first.extend((0..N).map(|i| udp_frame("2001:db8::7".parse().unwrap(), dst6, 1, i)));
    veth.inject(&first, &b.scratch.dir);
    poll("B receives the first batch", GUARD, || {
        box_b.stats()["rx_packets"] == u64::from(2 * N)
    });
    let st = box_b.stats();
    assert_eq!(st["dropped_banned_host"], u64::from(2 * N), "{st}");
    assert_eq!(st["tx_packets"], 0, "{st}");

    // bans del on A withdraws from the router (RIB and kernel) and from B.
    assert_eq!(
        box_a.bans(&["del", "203.0.113.7"]),
        "lifted the ban on 203.0.113.7 (manual)\n"
    );
    assert_announced_by_a(&lab, &[DETECTED], &[DETECTED6, "2001:db8::7"]);
    poll_eq(
        "B after A's bans del",
        LAB_GUARD,
        &pair_set(&[
            (DETECTED, "bgp:1"),
            (DETECTED6, "bgp:1"),
            ("2001:db8::7", "bgp:1"),
        ]),
        || box_b.host_set(),
    );
    // ... and B forwards that host's packets again.
    let lifted: Vec<Vec<u8>> = (0..N)
        .map(|i| udp_frame("203.0.113.7".parse().unwrap(), dst, 2, i))
        .collect();
    veth.inject(&lifted, &b.scratch.dir);
    poll("B receives the second batch", GUARD, || {
        box_b.stats()["rx_packets"] == u64::from(3 * N)
    });

    // Expiry withdraws: a 2 s ban leaves the router and B by itself.
    assert_eq!(
        box_a.bans(&["add", "198.51.100.9", "--ttl", "2s"]),
        "banned 198.51.100.9 (manual) for 2s\n"
    );
    assert_announced_by_a(
        &lab,
        &[DETECTED, "198.51.100.9"],
        &[DETECTED6, "2001:db8::7"],
    );
    assert_announced_by_a(&lab, &[DETECTED], &[DETECTED6, "2001:db8::7"]);
    poll_eq(
        "B after the expiry",
        LAB_GUARD,
        &pair_set(&[
            (DETECTED, "bgp:1"),
            (DETECTED6, "bgp:1"),
            ("2001:db8::7", "bgp:1"),
        ]),
        || box_b.host_set(),
    );

    let (_, sum_b) = box_b.stop();
    let port = &sum_b["ports"][0];
    assert_eq!(u(&port["rx_packets"]), u64::from(3 * N));
    assert_eq!(u(&port["tx_packets"]), u64::from(N));
    assert_eq!(
        u(&sum_b["enforcement"]["dropped_banned_host"]),
        u64::from(2 * N)
    );
    assert_eq!(
        read_packets(&b.scratch.path("out.pcap")),
        lifted,
        "B forwarded exactly the batch sent after the withdrawal, byte for byte"
    );
    // A clean stop withdraws (withdraw_on_shutdown defaults to true).
    let _ = box_a.stop();
    poll_eq("the router after A's clean stop", LAB_GUARD, &0, || {
        lab.bird_count("master4") + lab.bird_count("master6")
    });
    assert_eq!(lab.kernel_blackholes(), set(&[]));
}

/// A box with no traffic (an empty capture): its bans come from `bans add`.
fn idle_device(s: &Scratch) -> String {
    let empty = s.path("empty.pcap");
    write_pcap(&empty, &[]);
    format!("net_pcap0,rx_pcap={}", empty.display())
}

#[test]
fn flowspec_rules_reach_the_routers_flow_tables() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab_or_skip!();
    let a = BoxSetup::new(BoxId::A, 1, "bgp-flow");
    let cfg = a.config(&lab, &idle_device(&a.scratch), "  flowspec: beside\n");
    let box_a = a.start(&lab, &cfg);
    box_a.bans(&["add", "203.0.113.7", "--ttl", "1h"]);
    box_a.bans(&["add", "2001:db8::7", "--ttl", "1h"]);
    // `beside`: the host routes and the FlowSpec rules.
    assert_announced_by_a(&lab, &["203.0.113.7"], &["2001:db8::7"]);
    poll_eq(
        "flowtab4",
        LAB_GUARD,
        &set(&["flow4 { src 203.0.113.7/32; }"]),
        || nets(&lab.bird_routes("flowtab4")),
    );
    poll_eq(
        "flowtab6",
        LAB_GUARD,
        &set(&["flow6 { src 2001:db8::7/128; }"]),
        || nets(&lab.bird_routes("flowtab6")),
    );
    for (net, r) in lab
        .bird_routes("flowtab4")
        .into_iter()
        .chain(lab.bird_routes("flowtab6"))
    {
        assert_eq!(r.from, "box_a", "{net}");
        // Traffic-rate (type 0x8006) with rate 0.0: discard (RFC 8955
        // section 7.3); its 2-byte AS field is informational, any value.
        let ext = &r.ext_communities;
        assert!(
            ext.starts_with("(generic, 0x8006") && ext.ends_with(", 0x0)") && !ext.contains(") ("),
            "{net}: {ext}"
        );
    }
    box_a.bans(&["del", "203.0.113.7"]);
    box_a.bans(&["del", "2001:db8::7"]);
    poll_eq("the flow tables after bans del", LAB_GUARD, &0, || {
        lab.bird_count("flowtab4") + lab.bird_count("flowtab6")
    });
    poll_eq("the RIB after bans del", LAB_GUARD, &0, || {
        lab.bird_count("master4") + lab.bird_count("master6")
    });
}

#[test]
fn after_a_flap_a_speaker_restart_or_kill_9_the_router_holds_a_table_again() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab_or_skip!();
    let a = BoxSetup::new(BoxId::A, 1, "bgp-faults");
    let cfg = a.config(&lab, &idle_device(&a.scratch), "");
    let box_a = a.start(&lab, &cfg);
    for ip in ["203.0.113.7", "203.0.113.8", "2001:db8::7"] {
        box_a.bans(&["add", ip, "--ttl", "1h"]);
    }
    let v4 = ["203.0.113.7", "203.0.113.8"];
    let v6 = ["2001:db8::7"];
    assert_announced_by_a(&lab, &v4, &v6);

    // The router's session flaps: every ban is back afterwards.
    lab.flap(BoxId::A);
    let took = poll_eq("the router after the flap", LAB_GUARD, &3, || {
        lab.bird_count("master4") + lab.bird_count("master6")
    });
    eprintln!("after the flap: every ban back in the router's RIB in {took:?}");
    assert_announced_by_a(&lab, &v4, &v6);

    // A's gobgpd dies and comes back empty: A reconciles.
    lab.stop_speaker(BoxId::A, "KILL");
    poll_eq("the router after gobgpd died", LAB_GUARD, &0, || {
        lab.bird_count("master4") + lab.bird_count("master6")
    });
    // A ban made while the daemon is down is not lost either.
    box_a.bans(&["add", "203.0.113.9", "--ttl", "1h"]);
    lab.start_speaker(BoxId::A);
    let started = Instant::now();
    let v4 = ["203.0.113.7", "203.0.113.8", "203.0.113.9"];
    assert_announced_by_a(&lab, &v4, &v6);
    eprintln!(
        "after gobgpd's restart: A reconciled the router in {:?}",
        started.elapsed()
    );

    // kill -9 of A: the routes stay in gobgpd (nothing withdraws them); what
    // changed meanwhile (one route deleted behind A's back, one stray route
    // with A's tag) is set right when A starts again from its journal.
    std::thread::sleep(Duration::from_millis(500)); // > flush_ms: the journal holds every ban
    box_a.kill9();
    assert_announced_by_a(&lab, &v4, &v6);
    lab.gobgp(BoxId::A, &["global", "rib", "del", "203.0.113.8/32"]);
    lab.gobgp(
        BoxId::A,
        &[
            "global",
            "rib",
            "add",
            "198.51.100.77/32",
            "nexthop",
            "192.0.2.1",
            "community",
            "65535:666,no-export",
            "large-community",
            "65001:1:1999999999,65001:2:1",
        ],
    );
    assert_announced_by_a(&lab, &["198.51.100.77", "203.0.113.7", "203.0.113.9"], &v6);
    let box_a = a.start(&lab, &cfg);
    let started = Instant::now();
    assert_announced_by_a(&lab, &v4, &v6);
    eprintln!(
        "after kill -9: the restarted A reconciled the router in {:?}",
        started.elapsed()
    );
    let table: BTreeSet<String> = box_a.host_set().into_iter().map(|(ip, _)| ip).collect();
    let at_router: BTreeSet<String> = lab
        .bird_routes("master4")
        .keys()
        .chain(lab.bird_routes("master6").keys())
        .map(|n| n.split('/').next().unwrap().to_string())
        .collect();
    assert_eq!(at_router, table, "the router's RIB equals A's table");
}

/// `bans add` for every IP over the control socket, `threads` connections at
/// a time (the operator protocol has one request per connection).
fn add_many(socket: &Path, ips: &[String], ttl_s: u64, threads: usize) {
    std::thread::scope(|scope| {
        for chunk in ips.chunks(ips.len().div_ceil(threads)) {
            scope.spawn(move || {
                for ip in chunk {
                    loop {
                        let mut conn = UnixStream::connect(socket).expect("connect");
                        writeln!(conn, r#"{{"cmd":"add","ip":"{ip}","ttl_s":{ttl_s}}}"#).unwrap();
                        let mut line = String::new();
                        BufReader::new(conn).read_line(&mut line).unwrap();
                        let reply: Value = serde_json::from_str(&line).expect("JSON reply");
                        if reply["ok"] == true {
                            break;
                        }
                        // "busy" (the daemon's bounded queue): try again.
                        assert!(
                            reply["error"].as_str().unwrap_or("").contains("busy"),
                            "{ip}: {reply}"
                        );
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            });
        }
    });
}

#[test]
fn ten_thousand_bans_announced_and_withdrawn_exactly() {
    const BANS: u64 = 10_000;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab_or_skip!();
    let a = BoxSetup::new(BoxId::A, 1, "bgp-10k");
    let b = BoxSetup::new(BoxId::B, 2, "bgp-10k");
    let cfg_a = a.config(&lab, &idle_device(&a.scratch), "");
    let cfg_b = b.config(&lab, &idle_device(&b.scratch), "");
    let box_a = a.start(&lab, &cfg_a);
    let box_b = b.start(&lab, &cfg_b);
    // 100.64.0.0/10 (shared address space): 40 /24s of 250 hosts.
    let ips: Vec<String> = (0..BANS)
        .map(|i| format!("100.64.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let start = Instant::now();
    add_many(&box_a.socket, &ips, 3600, 8);
    let added = start.elapsed();
    let took = poll_eq(
        "10,000 routes at the router",
        Duration::from_secs(300),
        &BANS,
        || lab.bird_count("master4"),
    );
    let announced = start.elapsed();
    poll_eq(
        "10,000 bans imported by B",
        Duration::from_secs(300),
        &BANS,
        || count(&box_b.socket),
    );
    let imported = start.elapsed();
    assert_eq!(lab.kernel_blackholes().len() as u64, BANS);
    assert!(box_b.list().iter().all(|b| b["reason"] == "bgp:1"));
    eprintln!(
        "10,000 bans: added over the control socket in {added:?}, all at the router {announced:?} \
         (the last {took:?} after the last add), all imported by B {imported:?}"
    );
    let want: BTreeMap<String, ()> = ips.iter().map(|ip| (format!("{ip}/32"), ())).collect();
    assert_eq!(
        nets(&lab.bird_routes("master4")),
        nets(&want),
        "exactly these routes"
    );

    let start = Instant::now();
    assert_eq!(box_a.bans(&["flush"]), "lifted 10000 ban(s)\n");
    poll_eq(
        "the router after flush",
        Duration::from_secs(300),
        &0,
        || lab.bird_count("master4"),
    );
    let withdrawn = start.elapsed();
    poll_eq("B after flush", Duration::from_secs(300), &0, || {
        count(&box_b.socket)
    });
    eprintln!(
        "10,000 bans: withdrawn (bans flush) from the router in {withdrawn:?}, from B in {:?}",
        start.elapsed()
    );
    assert_eq!(lab.kernel_blackholes(), set(&[]));
}

// ---- operations: metrics, max_announced, SIGHUP, on_session_loss ----------

/// `config` with the Prometheus endpoint on 127.0.0.1:`port` of the box's
/// namespace (each box has its own loopback).
fn with_metrics(config: PathBuf, port: u16) -> PathBuf {
    let yaml = std::fs::read_to_string(&config).unwrap().replace(
        "metrics:\n  enabled: false\n",
        &format!("metrics:\n  listen: 127.0.0.1:{port}\n"),
    );
    std::fs::write(&config, yaml).unwrap();
    config
}

/// The `btblocker_bgp_*` series of the daemon in `ns` (prefix left off),
/// scraped with curl from inside the namespace; empty while it does not answer.
fn bgp_metrics(ns: &str, port: u16) -> BTreeMap<String, u64> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sf", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, value) = l.strip_prefix("btblocker_bgp_")?.split_once(' ')?;
            Some((name.to_string(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// The `names` of [`bgp_metrics`], polled until they equal `want`.
fn poll_metrics(what: &str, ns: &str, port: u16, want: &[(&str, u64)]) {
    let want: BTreeMap<String, u64> = want.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    poll_eq(what, LAB_GUARD, &want, || {
        let got = bgp_metrics(ns, port);
        want.keys()
            .filter_map(|k| Some((k.clone(), *got.get(k)?)))
            .collect()
    });
}

/// The router's routes from box A with their communities (sorted), both families.
fn communities_at_router(lab: &Lab) -> BTreeMap<String, String> {
    lab.bird_routes("master4")
        .into_iter()
        .chain(lab.bird_routes("master6"))
        .map(|(net, r)| {
            let mut c: Vec<&str> = r.communities.split_whitespace().collect();
            c.sort_unstable();
            (net, c.join(" "))
        })
        .collect()
}

#[test]
fn max_announced_sighup_session_loss_and_metrics_on_real_daemons() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab_or_skip!();
    let (port_a, port_b) = (9977, 9978);
    let a = BoxSetup::new(BoxId::A, 1, "bgp-ops");
    let b = BoxSetup::new(BoxId::B, 2, "bgp-ops");
    let cfg_a = with_metrics(
        a.config(
            &lab,
            &idle_device(&a.scratch),
            "  max_announced: 3\n  never_announce: [\"198.51.100.0/24\"]\n",
        ),
        port_a,
    );
    let cfg_b = with_metrics(
        b.config(&lab, &idle_device(&b.scratch), "  on_session_loss: keep\n"),
        port_b,
    );
    let box_a = a.start(&lab, &cfg_a);
    let mut box_b = b.start(&lab, &cfg_b);

    // never_announce and max_announced: banned locally, not announced.
    for ip in ["203.0.113.1", "203.0.113.2", "2001:db8::1", "198.51.100.9"] {
        box_a.bans(&["add", ip, "--ttl", "1h"]);
    }
    assert_announced_by_a(&lab, &["203.0.113.1", "203.0.113.2"], &["2001:db8::1"]);
    box_a.bans(&["add", "203.0.113.4", "--ttl", "1h"]);
    let ns_a = lab.ns_a.clone();
    poll_metrics(
        "A's metrics after the refusal",
        &ns_a,
        port_a,
        &[
            ("announced_total", 3),
            ("withdrawn_total", 0),
            ("announced_routes", 3),
            ("rib_difference", 0),
            ("refused_total", 1),
            ("waiting_bans", 1),
            ("session_up", 1),
            ("imported_total", 0),
            ("queue_full_total", 0),
            ("queue_depth", 0),
        ],
    );
    assert_announced_by_a(&lab, &["203.0.113.1", "203.0.113.2"], &["2001:db8::1"]);
    assert_eq!(
        box_a.host_set(),
        pair_set(&[
            ("203.0.113.1", "manual"),
            ("203.0.113.2", "manual"),
            ("2001:db8::1", "manual"),
            ("198.51.100.9", "manual"),
            ("203.0.113.4", "manual"),
        ]),
        "refused or never announced, still banned here"
    );
    // `bans list` says which are announced: the three in the RIB, not the
    // never_announce one nor the one max_announced refused.
    let announced: BTreeSet<String> = ["203.0.113.1", "203.0.113.2", "2001:db8::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    poll_eq(
        "A's announced bans in bans list",
        LAB_GUARD,
        &announced,
        || {
            box_a
                .list()
                .iter()
                .filter(|b| b["announced"] == true)
                .map(|b| b["ip"].as_str().unwrap().to_string())
                .collect()
        },
    );

    // SIGHUP: a new community re-announces every route with it, a new
    // never_announce withdraws 203.0.113.2, which makes room for 203.0.113.4.
    let yaml = std::fs::read_to_string(&cfg_a)
        .unwrap()
        .replace(
            "communities: [\"65535:666\", \"no-export\"]",
            "communities: [\"65535:666\", \"no-export\", \"65001:42\"]",
        )
        .replace(
            "never_announce: [\"198.51.100.0/24\"]",
            "never_announce: [\"198.51.100.0/24\", \"203.0.113.2/32\"]",
        );
    std::fs::write(&cfg_a, yaml).unwrap();
    box_a.signal("-HUP");
    let with_42 = "(65001,42) (65535,65281) (65535,666)".to_string();
    poll_eq(
        "the router after the reload",
        LAB_GUARD,
        &["203.0.113.1/32", "203.0.113.4/32", "2001:db8::1/128"]
            .iter()
            .map(|n| (n.to_string(), with_42.clone()))
            .collect(),
        || communities_at_router(&lab),
    );
    poll_metrics(
        "A's metrics after the reload",
        &ns_a,
        port_a,
        &[
            // 3, then all 3 of the new set again (new attributes).
            ("announced_total", 6),
            ("withdrawn_total", 1),
            ("announced_routes", 3),
            ("rib_difference", 0),
            ("refused_total", 1),
            ("waiting_bans", 0),
        ],
    );
    let imported = pair_set(&[
        ("203.0.113.1", "bgp:1"),
        ("203.0.113.4", "bgp:1"),
        ("2001:db8::1", "bgp:1"),
    ]);
    poll_eq("B's table", LAB_GUARD, &imported, || box_b.host_set());

    // on_session_loss: keep. B's session with the router goes down: its
    // gobgpd withdraws every path, then reports the peer down; B keeps the bans.
    let ns_b = lab.ns_b.clone();
    let loss = |port: u16| {
        lab.birdc(&["disable", "box_b"]);
        poll_eq(
            "B's gobgpd RIB after the loss",
            LAB_GUARD,
            &set(&[]),
            || nets(&lab.gobgp_rib(BoxId::B, "ipv4")),
        );
        poll_metrics("B's session down", &ns_b, port, &[("session_up", 0)]);
    };
    let back = |port: u16| {
        lab.birdc(&["enable", "box_b"]);
        lab.wait_established();
        poll_metrics("B's session up", &ns_b, port, &[("session_up", 1)]);
    };
    // 3 learned, then the reload: 2 refreshed, 203.0.113.4 learned, 203.0.113.2 lifted.
    poll_metrics(
        "B's imports",
        &ns_b,
        port_b,
        &[("imported_total", 6), ("import_withdrawn_total", 1)],
    );
    loss(port_b);
    assert_eq!(box_b.host_set(), imported, "kept while the session is down");
    back(port_b);
    // The paths come back and refresh the kept bans; none was ever lifted.
    poll_metrics(
        "B's imports after the session came back",
        &ns_b,
        port_b,
        &[
            ("imported_total", 9),
            ("import_withdrawn_total", 1),
            ("announced_routes", 0),
        ],
    );
    assert_eq!(box_b.host_set(), imported);

    // on_session_loss: drop. The bans leave with the session, come back with it.
    let _ = box_b.stop();
    let cfg_b = with_metrics(
        b.config(&lab, &idle_device(&b.scratch), "  on_session_loss: drop\n"),
        port_b + 1,
    );
    box_b = b.start(&lab, &cfg_b);
    poll_eq("B's table (drop)", LAB_GUARD, &imported, || {
        box_b.host_set()
    });
    loss(port_b + 1);
    poll_eq(
        "B's table after the loss",
        LAB_GUARD,
        &pair_set(&[]),
        || box_b.host_set(),
    );
    back(port_b + 1);
    poll_eq(
        "B's table when the session is back",
        LAB_GUARD,
        &imported,
        || box_b.host_set(),
    );
    poll_metrics(
        "B's imports (drop)",
        &ns_b,
        port_b + 1,
        &[("imported_total", 6), ("import_withdrawn_total", 3)],
    );

    // A's gobgpd dies: session_up 0; it comes back empty: A reconciles.
    lab.stop_speaker(BoxId::A, "KILL");
    poll_metrics("A's session down", &ns_a, port_a, &[("session_up", 0)]);
    lab.start_speaker(BoxId::A);
    poll_metrics(
        "A after gobgpd's restart",
        &ns_a,
        port_a,
        &[
            ("session_up", 1),
            ("announced_total", 9),
            ("withdrawn_total", 1),
            ("announced_routes", 3),
            ("rib_difference", 0),
            ("refused_total", 1),
        ],
    );

    // max_announced keeps a new ban waiting, counted once however often
    // the ban is extended, and announces it as soon as a withdrawal makes
    // room (not only at the next reload or replay).
    box_a.bans(&["add", "203.0.113.5", "--ttl", "1h"]);
    poll_metrics(
        "A with a ban waiting",
        &ns_a,
        port_a,
        &[("refused_total", 2), ("waiting_bans", 1)],
    );
    box_a.bans(&["add", "203.0.113.5", "--ttl", "2h"]);
    box_a.bans(&["add", "203.0.113.5", "--ttl", "3h"]);
    let at_router = |nets: &[&str]| -> BTreeMap<String, String> {
        nets.iter()
            .map(|n| (n.to_string(), with_42.clone()))
            .collect()
    };
    assert_eq!(
        communities_at_router(&lab),
        at_router(&["203.0.113.1/32", "203.0.113.4/32", "2001:db8::1/128"]),
        "the waiting ban is not announced while the cap is reached"
    );
    box_a.bans(&["del", "203.0.113.1"]);
    poll_eq(
        "the router once the del made room",
        LAB_GUARD,
        &at_router(&["203.0.113.4/32", "203.0.113.5/32", "2001:db8::1/128"]),
        || communities_at_router(&lab),
    );
    poll_metrics(
        "A once the waiting ban is announced",
        &ns_a,
        port_a,
        &[
            ("announced_routes", 3),
            ("rib_difference", 0),
            ("refused_total", 2),
            ("waiting_bans", 0),
        ],
    );
    let _ = box_b.stop();
    let _ = box_a.stop();
}
