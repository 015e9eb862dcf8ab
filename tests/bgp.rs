//! The BGP announcer against a real `gobgpd` (started here on a temp Unix
//! socket, `port = -1`, no neighbours): the daemon's `bans add|del` reach
//! the RIB with the exact prefixes and communities; a killed and restarted
//! gobgpd is reconciled; 10,000 bans announced and withdrawn give exact
//! RIB counts. Skipped, with the reason printed, when gobgpd is absent.
#![cfg(feature = "dpdk")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use btblocker::ban::keeper::BanKeeper;
use btblocker::bgp::BgpLink;
use common::*;

const GUARD: Duration = Duration::from_secs(90);

fn have_gobgp() -> bool {
    let ok = |b: &str| Command::new(b).arg("--help").output().is_ok();
    if !(ok("gobgpd") && ok("gobgp")) {
        eprintln!("SKIPPED: gobgpd/gobgp not installed (apt-get install gobgpd)");
        return false;
    }
    true
}

/// A gobgpd on `socket`, killed when dropped.
struct Gobgpd(Child);

impl Gobgpd {
    fn start(s: &Scratch, socket: &Path) -> Gobgpd {
        let conf = s.write(
            "gobgpd.toml",
            "[global.config]\n  as = 65001\n  router-id = \"192.0.2.254\"\n  port = -1\n",
        );
        let _ = std::fs::remove_file(socket);
        let child = Command::new("gobgpd")
            .args([
                "-f",
                conf.to_str().unwrap(),
                "-t",
                "toml",
                "--pprof-disable",
            ])
            .arg(format!("--api-hosts=unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gobgpd");
        wait_until("gobgpd's socket", || rib_count(socket, "ipv4").is_some());
        Gobgpd(child)
    }

    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Gobgpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gobgp(socket: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("gobgp")
        .arg(format!("--target=unix://{}", socket.display()))
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Paths in the global RIB of family `ipv4` / `ipv6`.
fn rib_count(socket: &Path, family: &str) -> Option<u64> {
    let text = gobgp(socket, &["global", "rib", "summary", "-a", family])?;
    let after = text.split("Path:").nth(1)?;
    after
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The RIB as JSON: prefix → paths.
fn rib(socket: &Path, family: &str) -> serde_json::Value {
    let text = gobgp(socket, &["global", "rib", "-a", family, "-j"]).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < GUARD, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn attrs(rib: &serde_json::Value, prefix: &str) -> String {
    rib[prefix][0]["attrs"].to_string()
}

fn bans(socket: &Path, args: &[&str]) {
    let mut all = vec!["bans"];
    all.extend_from_slice(args);
    all.extend(["--socket", socket.to_str().unwrap()]);
    let out = run_to_end(&all);
    assert!(out.status.success(), "bans {args:?}: {}", describe(&out));
}

#[test]
fn daemon_announces_withdraws_and_reconciles_a_restarted_gobgpd() {
    if !have_gobgp() {
        return;
    }
    let s = Scratch::new("bgp-daemon");
    let api = s.path("gobgp.sock");
    let control = s.path("control.sock");
    let gobgpd = Gobgpd::start(&s, &api);
    let cfg = s.write(
        "run.yaml",
        &format!(
            "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {prefix}\n\
ports:\n  - name: inside\n    device: net_null0\n    role: inside\n\
pipeline:\n  control_lcore: 0\n  worker_lcores: [1]\n  stats_interval_ms: 100\n\
metrics:\n  enabled: false\nban:\n  persist: false\ncontrol:\n  socket: {control}\n\
bgp:\n  enabled: true\n  api_socket: {api}\n  local_asn: 65001\n  box_id: 7\n  \
next_hop_v4: 192.0.2.1\n  next_hop_v6: \"100::1\"\n",
            prefix = s.prefix,
            control = control.display(),
            api = api.display(),
        ),
    );
    let mut daemon = spawn(&["run", "-c", cfg.to_str().unwrap()]);
    wait_until("the control socket", || {
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "btblocker exited early"
        );
        control.exists()
    });
    bans(&control, &["add", "198.51.100.7"]);
    bans(&control, &["add", "2001:db8::7"]);
    wait_until("both routes", || {
        rib_count(&api, "ipv4") == Some(1) && rib_count(&api, "ipv6") == Some(1)
    });
    let v4 = rib(&api, "ipv4");
    let v6 = rib(&api, "ipv6");
    assert_eq!(
        v4.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["198.51.100.7/32"]
    );
    assert_eq!(
        v6.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["2001:db8::7/128"]
    );
    let a = attrs(&v4, "198.51.100.7/32");
    // 65535:666 and no-export, then 65001:2:7 (box tag) and 65001:1:<expiry>.
    assert!(a.contains("[4294902426,4294967041]"), "communities: {a}");
    assert!(
        a.contains(r#""ASN":65001,"LocalData1":2,"LocalData2":7"#),
        "box tag: {a}"
    );
    assert!(a.contains(r#""ASN":65001,"LocalData1":1,"#), "expiry: {a}");
    assert!(a.contains("192.0.2.1"), "next hop: {a}");
    assert!(attrs(&v6, "2001:db8::7/128").contains("100::1"));

    bans(&control, &["del", "198.51.100.7"]);
    wait_until("the withdrawal", || rib_count(&api, "ipv4") == Some(0));
    assert_eq!(rib_count(&api, "ipv6"), Some(1));

    // A gobgpd killed and restarted comes back empty: the box reconciles.
    gobgpd.kill();
    let gobgpd = Gobgpd::start(&s, &api);
    wait_until("the reconciled route", || {
        rib_count(&api, "ipv6") == Some(1)
    });
    assert_eq!(rib_count(&api, "ipv4"), Some(0));
    assert!(rib(&api, "ipv6").get("2001:db8::7/128").is_some());

    // A clean stop withdraws (withdraw_on_shutdown defaults to true).
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let out = wait_with_limit(daemon, GUARD);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(rib_count(&api, "ipv6"), Some(0));
    drop(gobgpd);
}

/// 10,000 bans announced and withdrawn through the library (the same
/// BgpLink the daemon's control loop drives): exact RIB counts both times.
#[test]
fn ten_thousand_bans_announced_then_withdrawn_exactly() {
    if !have_gobgp() {
        return;
    }
    let s = Scratch::new("bgp-10k");
    let api = s.path("gobgp.sock");
    let _gobgpd = Gobgpd::start(&s, &api);
    let yaml = format!(
        "ports:\n  - name: p\n    device: net_null0\n    role: inside\n\
ban:\n  persist: false\nbgp:\n  enabled: true\n  api_socket: {}\n  local_asn: 65001\n  box_id: 7\n  \
next_hop_v4: 192.0.2.1\n  next_hop_v6: \"100::1\"\n  never_announce: [\"10.255.0.0/16\"]\n",
        api.display()
    );
    let cfg = btblocker::config::from_str(&yaml).unwrap();
    let now = btblocker::clock::unix_now_ms();
    let mut keeper = BanKeeper::start(&cfg.ban, &cfg.networks, now).unwrap();
    let mut link = BgpLink::start(cfg.bgp.as_ref().unwrap(), &mut keeper).unwrap();
    let n = 10_000u32;
    let ip = |i: u32| std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
    for i in 0..n {
        keeper.add_manual(ip(i), None, now).unwrap();
    }
    // Never announced, still banned.
    keeper
        .add_manual("10.255.0.9".parse().unwrap(), None, now)
        .unwrap();
    let start = Instant::now();
    let tick = |link: &mut BgpLink, keeper: &mut BanKeeper| {
        link.tick(keeper, btblocker::clock::unix_now_ms());
        std::thread::sleep(Duration::from_millis(1));
    };
    while rib_count(&api, "ipv4") != Some(u64::from(n)) {
        tick(&mut link, &mut keeper);
        assert!(start.elapsed() < GUARD, "announcing 10k");
    }
    let announced = start.elapsed();
    for i in 0..n {
        keeper.remove(ip(i), now);
    }
    let start = Instant::now();
    while rib_count(&api, "ipv4") != Some(0) {
        tick(&mut link, &mut keeper);
        assert!(start.elapsed() < GUARD, "withdrawing 10k");
    }
    let withdrawn = start.elapsed();
    eprintln!(
        "bgp: 10000 bans announced in {:.0} ms, withdrawn in {:.0} ms",
        announced.as_secs_f64() * 1e3,
        withdrawn.as_secs_f64() * 1e3
    );
    let c = link.counts();
    assert_eq!(
        (c.announced, c.withdrawn, c.refused),
        (u64::from(n), u64::from(n), 0)
    );
    assert_eq!(keeper.list().len(), 1, "the never_announce ban stays");
    link.stop();
}

/// Figures for BENCHMARKS.md (no assertion on time; run with `--ignored`):
/// the reconciliation of 100,000 bans into an empty gobgpd, and the control
/// loop's tick (keeper tick + BGP link tick) p50/p99 while 10,000 bans are
/// added and announced, against the same loop without BGP, interleaved.
#[test]
#[ignore = "benchmark: cargo test --release --test bgp -- --ignored --nocapture"]
fn bench_reconcile_100k_and_tick_with_10k_in_flight() {
    if !have_gobgp() {
        return;
    }
    let s = Scratch::new("bgp-bench");
    let api = s.path("gobgp.sock");
    let gobgpd = Gobgpd::start(&s, &api);
    let yaml = |max: u32| {
        format!(
            "ports:\n  - name: p\n    device: net_null0\n    role: inside\n\
ban:\n  persist: false\nbgp:\n  enabled: true\n  api_socket: {}\n  local_asn: 65001\n  \
box_id: 7\n  next_hop_v4: 192.0.2.1\n  next_hop_v6: \"100::1\"\n  max_announced: {max}\n",
            api.display()
        )
    };
    let ip = |i: u32| std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
    let now = btblocker::clock::unix_now_ms();

    // Reconcile 100 k: a restarted (empty) gobgpd, a box holding 100 k bans.
    let cfg = btblocker::config::from_str(&yaml(200_000)).unwrap();
    let mut keeper = BanKeeper::start(&cfg.ban, &cfg.networks, now).unwrap();
    for i in 0..100_000 {
        keeper.add_manual(ip(i), None, now).unwrap();
    }
    let start = Instant::now();
    let mut link = BgpLink::start(cfg.bgp.as_ref().unwrap(), &mut keeper).unwrap();
    while rib_count(&api, "ipv4") != Some(100_000) {
        link.tick(&mut keeper, btblocker::clock::unix_now_ms());
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = start.elapsed();
    gobgpd.kill();
    let gobgpd = Gobgpd::start(&s, &api);
    let start = Instant::now();
    while rib_count(&api, "ipv4") != Some(100_000) {
        link.tick(&mut keeper, btblocker::clock::unix_now_ms());
        std::thread::sleep(Duration::from_millis(5));
    }
    let again = start.elapsed();
    eprintln!(
        "bgp bench: reconcile 100000 bans: at start {:.0} ms, after a gobgpd restart {:.0} ms (incl. reconnect)",
        first.as_secs_f64() * 1e3,
        again.as_secs_f64() * 1e3
    );
    link.stop();
    drop(gobgpd);

    // Tick time with 10 k announcements in flight vs without BGP.
    let gobgpd = Gobgpd::start(&s, &api);
    let mut base = 1_000_000u32;
    // Wall time per tick, and the control thread's CPU time during it
    // (CLOCK_THREAD_CPUTIME_ID): a tick that waits or works shows in both, one
    // preempted by other threads (the BGP thread, gobgpd, builds) only in the wall time.
    let on_cpu = || -> Duration {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    let mut run = |with_bgp: bool| -> (Vec<Duration>, Vec<Duration>) {
        let cfg = btblocker::config::from_str(&yaml(200_000)).unwrap();
        let now = btblocker::clock::unix_now_ms();
        let mut keeper = BanKeeper::start(&cfg.ban, &cfg.networks, now).unwrap();
        let mut link =
            with_bgp.then(|| BgpLink::start(cfg.bgp.as_ref().unwrap(), &mut keeper).unwrap());
        let mut ticks = Vec::new();
        let mut cpu = Vec::new();
        // 10,000 bans over 100 ticks of 1 ms, then 400 more ticks while they drain.
        for t in 0..500u32 {
            if t < 100 {
                for i in 0..100 {
                    keeper
                        .add_manual(ip(base + t * 100 + i), None, now)
                        .unwrap();
                }
            }
            let cpu_start = on_cpu();
            let start = Instant::now();
            let now = btblocker::clock::unix_now_ms();
            keeper.tick(now);
            if let Some(l) = link.as_mut() {
                l.tick(&mut keeper, now);
            }
            ticks.push(start.elapsed());
            cpu.push(on_cpu().saturating_sub(cpu_start));
            std::thread::sleep(Duration::from_millis(1));
        }
        base += 20_000;
        if let Some(l) = link {
            l.stop();
        }
        ticks.sort();
        cpu.sort();
        (ticks, cpu)
    };
    let pct = |v: &[Duration], p: f64| v[((v.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6;
    for round in 0..3 {
        for with_bgp in [false, true] {
            let (t, c) = run(with_bgp);
            eprintln!(
                "bgp bench: round {round} {}: tick wall p50 {:.1} us, p99 {:.1} us, max {:.1} us; on CPU p50 {:.1} us, p99 {:.1} us, max {:.1} us",
                if with_bgp {
                    "bgp, 10k in flight"
                } else {
                    "no bgp"
                },
                pct(&t, 0.5),
                pct(&t, 0.99),
                pct(&t, 1.0),
                pct(&c, 0.5),
                pct(&c, 0.99),
                pct(&c, 1.0)
            );
        }
    }
    drop(gobgpd);
}
