//! Bans end to end with the real binary on net_pcap: which hosts get banned,
//! that a restart (clean or kill -9) keeps them and enforces them on every
//! packet, and that the allowlist wins.
#![cfg(feature = "dpdk")]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use btblocker::wire::{parse_ethernet, Parsed};
use common::*;

const DEMO: &str = "data/demo.pcap";
const BT: &str = "../shared/corpus/ndpi/positive/bittorrent.pcap";

fn config(s: &Scratch, rx: &Path, extra_device: &str, idle: bool, ban: &str) -> String {
    let out = s.path("out.pcap");
    let idle = if idle {
        "  stop_after_idle_ms: 400\n"
    } else {
        ""
    };
    format!(
        "eal:\n  hugepages: false\n  memory_mb: 512\n  file_prefix: {prefix}\n\
ports:\n  - name: inside\n    device: net_pcap0,rx_pcap={rx}{extra_device},tx_pcap={out}\n    role: inside\n\
pipeline:\n  control_lcore: 0\n  worker_lcores: [1]\n{idle}\
metrics:\n  enabled: false\ncontrol:\n  enabled: false\nban:\n  state_file: {state}\n  flush_ms: 100\n{ban}",
        prefix = s.prefix,
        rx = rx.display(),
        out = out.display(),
        state = s.path("bans.jsonl").display(),
    )
}

fn banned(sum: &serde_json::Value) -> Vec<(String, String)> {
    sum["bans"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn touches(frame: &[u8], hosts: &BTreeSet<IpAddr>) -> bool {
    match parse_ethernet(frame) {
        Ok(Parsed::Ip(p)) => hosts.contains(&p.src_ip()) || hosts.contains(&p.dst_ip()),
        _ => false,
    }
}

#[test]
fn detections_ban_exactly_these_hosts_and_a_restart_enforces_them_on_every_packet() {
    let s = Scratch::new("bans-restart");
    let input = repo().join(DEMO);
    // Run 1 only records (log_only), so every flow reaches DPI: the ban set
    // does not depend on how fast the control lcore publishes.
    let log = s.path("detections.jsonl");
    let first = run_with_summary(
        &s,
        &config(
            &s,
            &input,
            "",
            true,
            &format!("  action: log_only\nlog:\n  path: {}\n", log.display()),
        ),
    );
    let expected: Vec<(String, String)> = {
        let mut v: Vec<_> = DEMO_BANS
            .iter()
            .map(|(h, r)| (h.to_string(), r.to_string()))
            .collect();
        v.sort();
        v
    };
    let mut got = banned(&first);
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(u(&first["bans"]["restored"]), 0);
    assert_eq!(
        u(&first["ports"][0]["tx_packets"]),
        1355,
        "log_only drops nothing"
    );

    // Run 2: a restart with ban_host. The journal brings every ban back before
    // the first packet, so each packet from or to a banned host is dropped.
    let second = run_with_summary(&s, &config(&s, &input, "", true, "  action: ban_host\n"));
    assert_eq!(u(&second["bans"]["restored"]), DEMO_BANS.len() as u64);
    let hosts: BTreeSet<IpAddr> = DEMO_BANS.iter().map(|(h, _)| h.parse().unwrap()).collect();
    let frames = read_packets(&input);
    let of_banned = frames.iter().filter(|f| touches(f, &hosts)).count() as u64;
    assert_eq!(
        of_banned, 526,
        "packets of banned hosts in the bundled capture"
    );
    let e = &second["enforcement"];
    assert_eq!(u(&e["dropped_banned_host"]), of_banned);
    let port = &second["ports"][0];
    assert_eq!(
        u(&port["tx_packets"]) + u(&e["dropped_bittorrent_flow"]) + of_banned,
        1355,
        "every packet forwarded or dropped for a reason"
    );
    let forwarded = read_packets(&s.path("out.pcap"));
    assert_eq!(forwarded.len() as u64, u(&port["tx_packets"]));
    assert!(
        forwarded.iter().all(|f| !touches(f, &hosts)),
        "a banned host's packet was forwarded"
    );
}

#[test]
fn allowlisted_hosts_are_never_banned() {
    let s = Scratch::new("bans-allow");
    let yaml = config(
        &s,
        &repo().join(DEMO),
        "",
        true,
        "  action: log_only\n  allowlist: [192.168.1.0/24, \"3991:72d:336e:65ec::/64\"]\n",
    );
    let sum = run_with_summary(&s, &yaml);
    let hosts: Vec<String> = banned(&sum).into_iter().map(|(h, _)| h).collect();
    assert_eq!(hosts, ["82.243.113.43", "178.71.206.1", "192.168.0.102"]);
    // Every ban attempt on an allowlisted host is refused and counted.
    assert_eq!(u(&sum["bans"]["refused_allowlisted"]), 29);
}

#[test]
fn kill_9_loses_no_ban_older_than_the_flush_interval() {
    let s = Scratch::new("bans-kill9");
    let input = repo().join(BT);
    // infinite_rx replays the capture forever: the run never ends by itself.
    let yaml = config(&s, &input, ",infinite_rx=1", false, "  action: ban_host\n");
    let cfg = s.write("config.yaml", &yaml);
    let child = spawn(&["run", "-c", cfg.to_str().unwrap()]);
    // The ban happens within milliseconds; flush_ms is 100.
    std::thread::sleep(Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = wait_with_limit(child, Duration::from_secs(30));

    let sum = run_with_summary(&s, &config(&s, &input, "", true, "  action: ban_host\n"));
    assert_eq!(u(&sum["bans"]["restored"]), 1);
    assert_eq!(
        banned(&sum),
        [("192.168.1.3".to_string(), "peer_wire_handshake".to_string())]
    );
    assert_eq!(
        u(&sum["enforcement"]["dropped_banned_host"]),
        299,
        "every packet of the capture involves 192.168.1.3"
    );
    assert_eq!(u(&sum["ports"][0]["tx_packets"]), 0);
}
