//! `btblocker check-config FILE` on real files: exit status 2 and a message
//! naming the key path and line for a bad config, 0 and "ok" for a good one.
use std::path::PathBuf;
use std::process::Command;

/// A config file in the temp dir that is removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    /// `test` names the file, so tests running in parallel never share one.
    fn new(test: &str, lines: &[&str]) -> TempConfig {
        let path = std::env::temp_dir().join(format!(
            "btblocker-check-config-{}-{test}.yaml",
            std::process::id()
        ));
        std::fs::write(&path, lines.join("\n") + "\n").expect("write temp config");
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn check_config(file: &std::path::Path) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_btblocker"))
        .arg("check-config")
        .arg(file)
        .env_remove("BTBLOCKER_LOG")
        .output()
        .expect("run btblocker");
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Exit status 2, nothing on stdout, and `error: <expected>` on stderr.
fn assert_refused(test: &str, lines: &[&str], expected: &str) {
    let file = TempConfig::new(test, lines);
    let out = check_config(&file.0);
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains(&format!("error: {expected}\n")),
        "expected `error: {expected}` in stderr:\n{}",
        out.stderr
    );
}

/// Lines 1-7: two valid vdev ports.
const PORTS: [&str; 7] = [
    "ports:",
    "  - name: wan",
    "    device: net_pcap0,rx_pcap=wan.pcap,tx_pcap=wan-out.pcap",
    "    role: outside",
    "  - name: lan",
    "    device: net_pcap1,rx_pcap=lan.pcap,tx_pcap=lan-out.pcap",
    "    role: inside",
];

fn ports_and<'a>(more: &[&'a str]) -> Vec<&'a str> {
    PORTS.iter().copied().chain(more.iter().copied()).collect()
}

#[test]
fn a_good_config_is_ok() {
    let lines = ports_and(&[
        "eal:",
        "  hugepages: false",
        "pipeline:",
        "  worker_lcores: [1, 2]",
        "  stop_after_idle_ms: 500",
    ]);
    let file = TempConfig::new("good", &lines);
    let out = check_config(&file.0);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "{}: ok (2 ports, 2 workers, mode Inline)\n",
            file.0.display()
        )
    );
}

/// The shipped virtio testbed config (README: "Virtio testbed").
#[test]
fn the_virtio_testbed_config_is_ok() {
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dpdk-config/virtio-testbed.yaml");
    let out = check_config(&file);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("{}: ok (2 ports, 1 workers, mode Inline)\n", file.display())
    );
}

#[test]
fn a_missing_file_is_refused() {
    let path = std::env::temp_dir().join(format!(
        "btblocker-check-config-{}-does-not-exist.yaml",
        std::process::id()
    ));
    let out = check_config(&path);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains(&format!("error: {}: cannot read: ", path.display())),
        "{}",
        out.stderr
    );
}

#[test]
fn an_empty_file_is_refused() {
    assert_refused(
        "empty",
        &["# nothing here"],
        "the config is empty: expected a mapping with at least a `ports` list",
    );
}

#[test]
fn a_syntax_error_is_refused() {
    assert_refused(
        "syntax",
        &["pipeline:", "  worker_lcores: [1, 2", ""],
        "yaml syntax error: unclosed bracket '[' (line 2)",
    );
}

#[test]
fn a_misspelt_eal_key_is_refused() {
    assert_refused(
        "eal-typo",
        &ports_and(&["eal:", "  memroy_mb: 256"]),
        "eal.memroy_mb: unknown key, expected one of: lcores, memory_mb, hugepages, file_prefix, \
         vdevs, pci_allow, extra_args (line 9)",
    );
}

#[test]
fn an_unknown_section_is_refused() {
    assert_refused(
        "bans-section",
        &ports_and(&["bans:", "  seconds: 60"]),
        "bans: unknown key, expected one of: eal, ports, pipeline, flows, dpi, ban, networks, log, metrics, control, bgp (line 8)",
    );
}

#[test]
fn a_misspelt_ban_key_is_refused() {
    assert_refused(
        "ban-key",
        &ports_and(&["ban:", "  seconds: 60"]),
        "ban.seconds: unknown key, expected one of: ttl_s, target, action, threshold, window_s, definitive_bans_at_once, allowlist, denylist, max_entries, when_full, persist, state_file, flush_ms (line 9)",
    );
}

#[test]
fn missing_ports_are_refused() {
    assert_refused(
        "no-ports",
        &["eal:", "  memory_mb: 256"],
        "ports: required (line 1)",
    );
}

#[test]
fn a_port_without_device_is_refused() {
    assert_refused(
        "no-device",
        &["ports:", "  - name: wan", "    role: outside"],
        "ports[0].device: required (line 2)",
    );
}

#[test]
fn zero_rx_queues_are_refused() {
    assert_refused(
        "rx-queues-zero",
        &ports_and(&["    rx_queues: 0"]),
        "ports[1].rx_queues: must be >= 1 (line 8)",
    );
}

#[test]
fn queues_not_matching_the_workers_are_refused() {
    assert_refused(
        "tx-queues-mismatch",
        &ports_and(&["    tx_queues: 1", "pipeline:", "  worker_lcores: [1, 2]"]),
        "ports[1].tx_queues: must equal the number of worker lcores (2): each worker owns one \
         TX queue per port (line 8)",
    );
}

#[test]
fn descriptors_not_a_power_of_two_are_refused() {
    assert_refused(
        "descriptors",
        &ports_and(&["    rx_descriptors: 1000"]),
        "ports[1].rx_descriptors: must be a power of two in 64..=16384 (line 8)",
    );
}

#[test]
fn a_bad_device_is_refused() {
    assert_refused(
        "bad-device",
        &[
            "ports:",
            "  - name: wan",
            "    device: eth0",
            "    role: outside",
        ],
        "ports[0].device: `eth0` is neither a PCI address (DDDD:BB:DD.F or BB:DD.F) nor a vdev \
         named net_*, eth_* or virtio_user<N> with optional ,key=value arguments (line 3)",
    );
}

#[test]
fn duplicate_port_names_are_refused() {
    let mut lines = PORTS;
    lines[4] = "  - name: wan";
    assert_refused(
        "duplicate-name",
        &lines,
        "ports[1].name: \"wan\" is already the name of ports[0] (line 5)",
    );
}

#[test]
fn an_unknown_role_is_refused() {
    let mut lines = PORTS;
    lines[6] = "    role: dmz";
    assert_refused(
        "role",
        &lines,
        "ports[1].role: `dmz` is not one of: inside, outside (line 7)",
    );
}

#[test]
fn an_unknown_peer_is_refused() {
    assert_refused(
        "peer",
        &ports_and(&["    peer: dmz"]),
        "ports[1].peer: no port is named \"dmz\" (line 8)",
    );
}

#[test]
fn the_control_lcore_as_a_worker_is_refused() {
    assert_refused(
        "control-worker",
        &ports_and(&["pipeline:", "  worker_lcores: [0, 1]"]),
        "pipeline.worker_lcores[0]: lcore 0 is both the control lcore and \
         pipeline.worker_lcores[0]; a worker polls without pause and would starve the control \
         thread (line 9)",
    );
}

#[test]
fn an_lcores_map_without_a_worker_is_refused() {
    assert_refused(
        "lcores",
        &ports_and(&["eal:", "  lcores: \"0@0\""]),
        "eal.lcores: does not define lcore 1 (pipeline.worker_lcores[0]) (line 9)",
    );
}

#[test]
fn a_wrongly_typed_value_is_refused() {
    assert_refused(
        "type",
        &ports_and(&["pipeline:", "  burst_size: many"]),
        "pipeline.burst_size: expected an integer (line 9)",
    );
}
