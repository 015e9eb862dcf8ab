//! The BGP lab for integration tests: `scripts/bgp-lab.sh` (three network
//! namespaces on a private bridge, BIRD 2 as route reflector in one, a
//! gobgpd per box in the others) driven from Rust, torn down on drop even
//! when the test fails, and read back through `birdc`, `gobgp` and `ip`.
//! The script is the one source of the lab's shape, shared with `make bgp-demo`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::{describe, inject_frames, repo};

/// Hang guard for whatever the lab waits for (sessions, routes): GoBGP
/// redials at its connect-retry with jitter, so a session takes seconds.
pub const LAB_GUARD: Duration = Duration::from_secs(60);

/// Why the lab cannot run here (printed by the test, which then passes
/// without asserting), or `None`.
pub fn skip_reason() -> Option<String> {
    // The effective uid, by `id -u`: no libc call in tests.
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root: network namespaces need root".into());
    }
    for tool in ["bird", "birdc", "gobgpd", "gobgp", "ip"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !found {
            return Some(format!(
                "{tool} not installed (scripts/install-deps.sh installs bird2 and gobgpd)"
            ));
        }
    }
    None
}

/// One of the two boxes' speakers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoxId {
    A,
    B,
}

impl BoxId {
    pub fn letter(self) -> &'static str {
        match self {
            BoxId::A => "a",
            BoxId::B => "b",
        }
    }
}

/// A running lab; `down` on drop.
pub struct Lab {
    pub name: String,
    pub dir: PathBuf,
    pub ns_rtr: String,
    pub ns_a: String,
    pub ns_b: String,
}

fn script() -> PathBuf {
    repo().join("scripts/bgp-lab.sh")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run a lab command")
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Lab {
    /// Creates a lab with a name unique to this process and call, and waits
    /// until both boxes' sessions with the router are Established.
    pub fn up() -> Lab {
        Lab::up_with_max_prefix(None)
    }

    /// As [`Lab::up`], the router's per-session prefix limit set to `limit`
    /// (the script's default otherwise).
    pub fn up_with_max_prefix(limit: Option<u32>) -> Lab {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        sweep_dead_labs();
        let name = format!(
            "bl{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut up = Command::new(script());
        up.args(["up", &name]);
        if let Some(limit) = limit {
            up.env("BGP_LAB_MAX_PREFIX", limit.to_string());
        }
        let out = ok(run(&mut up), "bgp-lab.sh up");
        let vars: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
        let lab = Lab {
            dir: PathBuf::from(vars["DIR"]),
            ns_rtr: vars["NS_RTR"].to_string(),
            ns_a: vars["NS_A"].to_string(),
            ns_b: vars["NS_B"].to_string(),
            name,
        };
        lab.wait_established();
        lab
    }

    pub fn wait_established(&self) {
        let secs = LAB_GUARD.as_secs().to_string();
        ok(
            run(Command::new(script()).args(["wait", &self.name, &secs])),
            "bgp-lab.sh wait",
        );
    }

    /// gobgpd's gRPC API socket of one box (`bgp.api_socket`).
    pub fn api_socket(&self, b: BoxId) -> PathBuf {
        self.dir.join(b.letter()).join("gobgp.sock")
    }

    pub fn ns(&self, b: BoxId) -> &str {
        match b {
            BoxId::A => &self.ns_a,
            BoxId::B => &self.ns_b,
        }
    }

    /// `birdc` on the router, asserting success; its stdout.
    pub fn birdc(&self, args: &[&str]) -> String {
        let out = run(Command::new(script())
            .args(["birdc", &self.name])
            .args(args));
        ok(out, &format!("birdc {args:?}"))
    }

    /// The gobgp CLI on one box's API, asserting success; its stdout.
    pub fn gobgp(&self, b: BoxId, args: &[&str]) -> String {
        let out = run(Command::new(script())
            .args(["gobgp", &self.name, b.letter()])
            .args(args));
        ok(out, &format!("gobgp {} {args:?}", b.letter()))
    }

    /// Kills one box's gobgpd with `signal` (TERM, KILL) and waits for it to go.
    pub fn stop_speaker(&self, b: BoxId, signal: &str) {
        ok(
            run(Command::new(script()).args(["stop-speaker", &self.name, b.letter(), signal])),
            "bgp-lab.sh stop-speaker",
        );
    }

    /// Starts one box's gobgpd again (same config and socket) and waits for its API.
    pub fn start_speaker(&self, b: BoxId) {
        ok(
            run(Command::new(script()).args(["start-speaker", &self.name, b.letter()])),
            "bgp-lab.sh start-speaker",
        );
    }

    /// The router's session with one box goes down and up again.
    pub fn flap(&self, b: BoxId) {
        let proto = format!("box_{}", b.letter());
        self.birdc(&["disable", &proto]);
        self.birdc(&["enable", &proto]);
    }

    /// BGP routes in one BIRD table (`master4`, `master6`, `flowtab4`,
    /// `flowtab6`), keyed by network as BIRD prints it.
    pub fn bird_routes(&self, table: &str) -> BTreeMap<String, BirdRoute> {
        parse_bird_routes(&self.birdc(&[
            "show", "route", "table", table, "where", "source", "=", "RTS_BGP", "all",
        ]))
    }

    /// How many BGP routes one BIRD table holds (`show route ... count`).
    pub fn bird_count(&self, table: &str) -> u64 {
        let out = self.birdc(&[
            "show", "route", "table", table, "where", "source", "=", "RTS_BGP", "count",
        ]);
        // "10000 of 10002 routes for 10002 networks in table master4"
        out.lines()
            .find_map(|l| l.split(" of ").next()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count in {out:?}"))
    }

    /// `blackhole` routes in the router's kernel (both families), as `ip` prints their destinations.
    pub fn kernel_blackholes(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for family in ["-4", "-6"] {
            let out = ok(
                run(Command::new("ip").args([
                    family,
                    "-n",
                    &self.ns_rtr,
                    "route",
                    "show",
                    "type",
                    "blackhole",
                ])),
                "ip route show type blackhole",
            );
            for line in out.lines() {
                let mut words = line.split_whitespace();
                if words.next() == Some("blackhole") {
                    if let Some(dst) = words.next() {
                        all.insert(dst.to_string());
                    }
                }
            }
        }
        all
    }

    /// One box's gobgpd RIB for `family` (ipv4, ipv6, ipv4-flowspec,
    /// ipv6-flowspec): destination as gobgp names it -> its paths (JSON).
    pub fn gobgp_rib(&self, b: BoxId, family: &str) -> BTreeMap<String, serde_json::Value> {
        let out = self.gobgp(b, &["-j", "global", "rib", "-a", family]);
        if out.trim().is_empty() || out.trim() == "null" {
            return BTreeMap::new();
        }
        let v: serde_json::Value = serde_json::from_str(&out).expect("gobgp -j is JSON");
        v.as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["down", &self.name])
            .stdout(Stdio::null())
            .status();
    }
}

/// Takes down the labs of test processes that died without dropping them
/// (kill -9 of `cargo test`): their names are `bl<pid>x<n>`, the script
/// records each lab under /run/bgp-lab.
fn sweep_dead_labs() {
    let Ok(entries) = std::fs::read_dir("/run/bgp-lab") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("bl")
            .and_then(|rest| rest.split_once('x'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new(script())
                .args(["down", &name])
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// One route as `birdc show route all` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BirdRoute {
    /// The protocol it came from (`box_a`).
    pub from: String,
    /// `blackhole`, `unreachable`, … (empty for FlowSpec).
    pub kind: String,
    pub next_hop: String,
    /// `BGP.community`, as BIRD prints it: `(65535,666) (65535,65281)`.
    pub communities: String,
    /// `BGP.large_community`: `(65001, 1, 1999999999) (65001, 2, 1)`.
    pub large_communities: String,
    /// `BGP.ext_community` (FlowSpec actions): `(generic, 0x80060000, 0x0)`.
    pub ext_communities: String,
}

/// Parses `show route ... all`: a route line (network first, flow4/flow6
/// networks in braces), then tab-indented attribute lines.
pub fn parse_bird_routes(text: &str) -> BTreeMap<String, BirdRoute> {
    let mut routes = BTreeMap::new();
    let mut current: Option<(String, BirdRoute)> = None;
    for line in text.lines() {
        if line.starts_with("BIRD ") || line.starts_with("Table ") || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            if let Some((k, r)) = current.take() {
                routes.insert(k, r);
            }
            let (net, rest) = if line.starts_with("flow") {
                let end = line.find('}').map_or(line.len(), |i| i + 1);
                (line[..end].to_string(), &line[end..])
            } else {
                let mut it = line.splitn(2, char::is_whitespace);
                (it.next().unwrap_or("").to_string(), it.next().unwrap_or(""))
            };
            let kind = rest.split_whitespace().next().unwrap_or("");
            let from = rest
                .split_once('[')
                .and_then(|(_, r)| r.split_whitespace().next())
                .unwrap_or("");
            current = Some((
                net,
                BirdRoute {
                    from: from.to_string(),
                    kind: if kind.starts_with('[') { "" } else { kind }.to_string(),
                    ..BirdRoute::default()
                },
            ));
            continue;
        }
        let Some((_, route)) = current.as_mut() else {
            continue;
        };
        if let Some((key, value)) = line.trim().split_once(": ") {
            let value = value.trim().to_string();
            match key {
                "BGP.next_hop" => route.next_hop = value,
                "BGP.community" => route.communities = value,
                "BGP.large_community" => route.large_communities = value,
                "BGP.ext_community" => route.ext_communities = value,
                _ => {}
            }
        }
    }
    if let Some((k, r)) = current {
        routes.insert(k, r);
    }
    routes
}

/// Polls `ready` every 50 ms until it holds (a hang guard at `guard`, not a
/// timing assertion); returns how long it took, for the report.
pub fn poll(what: &str, guard: Duration, mut ready: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < guard, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Polls until `get` returns `want`; on the guard, fails showing the last value.
pub fn poll_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    guard: Duration,
    want: &T,
    mut get: impl FnMut() -> T,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = get();
        if &got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < guard,
            "gave up waiting for {what}:\n  want {want:?}\n  got  {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The set of networks of a table listing.
pub fn nets<V>(m: &BTreeMap<String, V>) -> BTreeSet<String> {
    m.keys().cloned().collect()
}

/// `["a", "b"]` as a set of owned strings.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A veth pair inside namespace `ns` (`btbA` for a daemon's net_pcap
/// `rx_iface_in`, `btbB` to inject from), IPv6 off on both so the kernel
/// sends nothing of its own on them. Removed with the lab's namespace.
pub struct Veth {
    pub ns: String,
}

impl Veth {
    pub fn new(ns: &str) -> Veth {
        let sh = |args: &[&str]| {
            let out = run(Command::new("ip").args(args));
            ok(out, &format!("ip {args:?}"));
        };
        sh(&[
            "-n", ns, "link", "add", "btbA", "type", "veth", "peer", "name", "btbB",
        ]);
        for dev in ["btbA", "btbB"] {
            sh(&[
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
            ]);
            sh(&["-n", ns, "link", "set", dev, "up"]);
        }
        Veth { ns: ns.to_string() }
    }

    /// Sends `frames` out of btbB (so they arrive on btbA), in order.
    pub fn inject(&self, frames: &[Vec<u8>], scratch: &std::path::Path) {
        ok(inject_frames(&self.ns, frames, scratch), "inject");
    }
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sum16(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// An Ethernet frame with UDP from `src` port 40000 to `dst` port 9, its
/// payload naming `batch` and `i` (so every frame differs), checksums right.
pub fn udp_frame(src: std::net::IpAddr, dst: std::net::IpAddr, batch: u8, i: u16) -> Vec<u8> {
    use std::net::IpAddr;
    let payload = format!("btblocker bgp lab batch {batch} frame {i:04} ........");
    let udp_len = 8 + payload.len() as u16;
    let mut udp = Vec::new();
    udp.extend_from_slice(&40000u16.to_be_bytes());
    udp.extend_from_slice(&9u16.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload.as_bytes());
    let mut f = vec![0x02, 0, 0, 0, 0, 0x09, 0x02, 0, 0, 0, 0, 0x05];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
            ip[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
            ip[4..6].copy_from_slice(&i.to_be_bytes());
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = fold(sum16(&ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
            // UDP checksum 0: none, allowed over IPv4.
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd]);
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&udp_len.to_be_bytes());
            ip.extend_from_slice(&[17, 64]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let pseudo =
                sum16(&s.octets()) + sum16(&d.octets()) + u32::from(udp_len) + 17 + sum16(&udp);
            let c = match fold(pseudo) {
                0 => 0xffff,
                c => c,
            };
            udp[6..8].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        _ => panic!("udp_frame: {src} and {dst} of different families"),
    }
    f.extend_from_slice(&udp);
    f
}
