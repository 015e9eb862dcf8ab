//! Every rule of the schema, each with the exact message it gives.
use super::*;

/// The lines joined: line N of the YAML is `lines[N - 1]`.
fn yaml<S: AsRef<str>>(lines: &[S]) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(line.as_ref());
        text.push('\n');
    }
    text
}

fn err<S: AsRef<str>>(lines: &[S]) -> String {
    match from_str(&yaml(lines)) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(e) => e.to_string(),
    }
}

fn ok<S: AsRef<str>>(lines: &[S]) -> Config {
    from_str(&yaml(lines)).unwrap_or_else(|e| panic!("refused: {e}"))
}

/// Two vdev ports, lines 1-7.
const TWO_PORTS: [&str; 7] = [
    "ports:",
    "  - name: wan",
    "    device: net_pcap0,rx_pcap=wan.pcap",
    "    role: outside",
    "  - name: lan",
    "    device: net_pcap1,rx_pcap=lan.pcap",
    "    role: inside",
];

/// `TWO_PORTS` followed by `more` (which starts at line 8).
fn two_ports_and(more: &[&str]) -> Vec<String> {
    TWO_PORTS
        .iter()
        .chain(more)
        .map(|l| l.to_string())
        .collect()
}

// ---- defaults -------------------------------------------------------------

#[test]
fn a_minimal_config_gets_every_default() {
    let config = ok(&[
        "ports:",
        "  - name: lan",
        "    device: net_pcap0,rx_pcap=in.pcap",
        "    role: inside",
    ]);
    assert_eq!(
        config,
        Config {
            eal: EalConfig {
                lcores: None,
                memory_mb: 512,
                hugepages: true,
                file_prefix: Some("btblocker".into()),
                vdevs: vec![],
                pci_allow: vec![],
                extra_args: vec![],
            },
            ports: vec![PortConfig {
                name: "lan".into(),
                device: "net_pcap0,rx_pcap=in.pcap".into(),
                role: PortRole::Inside,
                rx_queues: 1,
                tx_queues: 1,
                rx_descriptors: 1024,
                tx_descriptors: 1024,
                peer: 0,
            }],
            pipeline: PipelineConfig {
                mode: Mode::Inline,
                burst_size: 32,
                worker_lcores: vec![1],
                control_lcore: 0,
                mbuf_pool_size: 8191,
                mbuf_cache_size: 256,
                stats_interval_ms: 1000,
                stop_after_idle_ms: None,
            },
            flows: FlowsConfig {
                capacity: 65536,
                tcp_idle_timeout_s: 300,
                udp_idle_timeout_s: 60,
                dpi_pool: 65536,
            },
            dpi: crate::dpi::DpiConfig::default(),
            ban: BanConfig::default(),
            networks: NetworksConfig::default(),
            log: Default::default(),
            metrics: MetricsConfig::default(),
            operator: OperatorConfig::default(),
            bgp: None,
        }
    );
}

#[test]
fn ban_section_is_read_and_checked() {
    let base = "ports:\n  - name: lan\n    device: net_null0\n    role: inside\n";
    let config = ok(&[format!(
        "{base}ban:\n  ttl_s: 60\n  target: both\n  action: drop_flow\n  threshold: 3\n  window_s: 10\n  \
         allowlist: [10.0.0.0/8, \"2001:db8::1\"]\n  denylist: [192.0.2.1]\n  when_full: refuse\n  \
         state_file: /tmp/x.jsonl\nnetworks:\n  inside: [100.64.0.0/10]"
    )]);
    let b = &config.ban;
    assert_eq!(
        (b.ttl_s, b.target, b.action),
        (60, BanTarget::Both, BanAction::DropFlow)
    );
    assert_eq!((b.policy.threshold, b.policy.window_ms), (3, 10_000));
    assert_eq!(b.allowlist.len(), 2);
    assert_eq!(
        b.denylist,
        vec!["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(b.table.when_full, crate::ban::FullPolicy::Refuse);
    assert_eq!(
        b.state_file.as_deref(),
        Some(std::path::Path::new("/tmp/x.jsonl"))
    );
    assert_eq!(config.networks.inside.len(), 1);
    assert_eq!(
        err(&[format!("{base}ban:\n  allowlist: [10.1.2.3/8]")])
            .split(':')
            .next()
            .unwrap(),
        "ban.allowlist[0]"
    );
    assert_eq!(
        err(&[format!("{base}ban:\n  denylist: [nope]")]),
        "ban.denylist[0]: \"nope\" is not an IP address (line 6)"
    );
    assert_eq!(
        err(&[format!("{base}ban:\n  ttl_s: 0")]),
        "ban.ttl_s: must be >= 1 (line 6)"
    );
    assert!(ok(&[format!("{base}ban:\n  persist: false")])
        .ban
        .state_file
        .is_none());
}

#[test]
fn dpi_section_is_read_and_checked() {
    use crate::dpi::DetectorId;
    let base = "ports:\n  - name: lan\n    device: net_null0\n    role: inside\n";
    let config = ok(&[format!(
        "{base}dpi:\n  max_payload_packets: 4\n  known_peer_ttl_s: 60\n  disabled_detectors: [mse, utp]"
    )]);
    assert_eq!(config.dpi.max_payload_packets, 4);
    assert_eq!(config.dpi.known_peer_ttl_secs, 60);
    assert!(!config.dpi.detectors.is_enabled(DetectorId::Mse));
    assert!(!config.dpi.detectors.is_enabled(DetectorId::Utp));
    assert!(config.dpi.detectors.is_enabled(DetectorId::Dht));
    assert_eq!(
        err(&[format!("{base}dpi:\n  max_payload_packets: 0")]),
        "dpi.max_payload_packets: must be >= 1 (line 6)"
    );
    assert!(err(&[format!("{base}dpi:\n  disabled_detectors: [emule]")])
        .starts_with("dpi.disabled_detectors[0]: unknown detector \"emule\", expected one of: peer_wire_handshake"));
}

#[test]
fn log_section_is_read_and_checked() {
    let base = "ports:\n  - name: lan\n    device: net_null0\n    role: inside\n";
    let config = ok(&[format!(
        "{base}log:\n  path: /tmp/d.jsonl\n  max_bytes: 4096\n  keep: 2\n  payload_bytes: 64"
    )]);
    assert_eq!(config.log.path.as_deref(), Some(Path::new("/tmp/d.jsonl")));
    assert_eq!(config.log.max_bytes, 4096);
    assert_eq!(config.log.keep, 2);
    assert_eq!(config.log.payload_bytes, 64);
    assert_eq!(ok(&[base]).log, Default::default());
    assert_eq!(
        err(&[format!("{base}log:\n  path: x\n  payload_bytes: 65")]),
        "log.payload_bytes: must be <= 64 (line 7)"
    );
    assert_eq!(
        err(&[format!("{base}log:\n  payload_bytes: -1")]),
        "log.payload_bytes: must be >= 0 (line 6)"
    );
    assert_eq!(
        err(&[format!("{base}log:\n  max_bytes: 0")]),
        "log.max_bytes: must be >= 1 (line 6)"
    );
    assert_eq!(
        err(&[format!("{base}log:\n  path: \"\"")]),
        "log.path: must not be empty (leave log.path out to keep no detection log) (line 6)"
    );
    assert!(err(&[format!("{base}log:\n  payload: 3")]).starts_with(
        "log.payload: unknown key, expected one of: path, max_bytes, keep, payload_bytes"
    ));
}

#[test]
fn flows_section_is_read_and_checked() {
    let base = "ports:\n  - name: lan\n    device: net_null0\n    role: inside\n";
    let config = ok(&[format!(
        "{base}flows:\n  capacity: 1024\n  tcp_idle_timeout_s: 10\n  udp_idle_timeout_s: 5\n  dpi_pool: 100"
    )]);
    assert_eq!(
        config.flows,
        FlowsConfig {
            capacity: 1024,
            tcp_idle_timeout_s: 10,
            udp_idle_timeout_s: 5,
            dpi_pool: 100,
        }
    );
    // Absent, the pool has one entry per flow.
    let config = ok(&[format!("{base}flows:\n  capacity: 2048")]);
    assert_eq!(config.flows.dpi_pool, 2048);
    assert_eq!(
        err(&[format!("{base}flows:\n  capacity: 1024\n  dpi_pool: 1025")]),
        "flows.dpi_pool: must be <= flows.capacity (1024) (line 7)"
    );
    assert_eq!(
        err(&[format!("{base}flows:\n  dpi_pool: 0")]),
        "flows.dpi_pool: must be >= 1 (line 6)"
    );
    assert_eq!(
        err(&[format!("{base}flows:\n  capacity: 10")]),
        "flows.capacity: must be >= 64 (line 6)"
    );
    assert_eq!(
        err(&[format!("{base}flows:\n  udp_idle_timeout_s: 0")]),
        "flows.udp_idle_timeout_s: must be >= 1 (line 6)"
    );
    assert_eq!(
        err(&[format!("{base}flows:\n  capacty: 100")])
            .split(',')
            .next()
            .unwrap(),
        "flows.capacty: unknown key"
    );
}

#[test]
fn every_key_given_is_taken() {
    let config = ok(&two_ports_and(&[
        "    rx_queues: 2",
        "    tx_queues: 2",
        "    rx_descriptors: 512",
        "    tx_descriptors: 4096",
        "eal:",
        "  lcores: \"0@0,(1-2)@1\"",
        "  memory_mb: 64",
        "  hugepages: false",
        "  file_prefix: bt-1",
        "  vdevs: [net_null0]",
        "  pci_allow: [\"0000:03:00.0\"]",
        "  extra_args: [--log-level, \"8\"]",
        "pipeline:",
        "  mode: monitor",
        "  burst_size: 64",
        "  worker_lcores: [2, 1]",
        "  control_lcore: 0",
        "  mbuf_pool_size: 4095",
        "  mbuf_cache_size: 128",
        "  stats_interval_ms: 250",
        "  stop_after_idle_ms: 500",
    ]));
    assert_eq!(
        config.eal,
        EalConfig {
            lcores: Some("0@0,(1-2)@1".into()),
            memory_mb: 64,
            hugepages: false,
            file_prefix: Some("bt-1".into()),
            vdevs: vec!["net_null0".into()],
            pci_allow: vec!["0000:03:00.0".into()],
            extra_args: vec!["--log-level".into(), "8".into()],
        }
    );
    assert_eq!(
        config.pipeline,
        PipelineConfig {
            mode: Mode::Monitor,
            burst_size: 64,
            worker_lcores: vec![2, 1],
            control_lcore: 0,
            mbuf_pool_size: 4095,
            mbuf_cache_size: 128,
            stats_interval_ms: 250,
            stop_after_idle_ms: Some(500),
        }
    );
    let lan = &config.ports[1];
    assert_eq!(
        (
            lan.rx_queues,
            lan.tx_queues,
            lan.rx_descriptors,
            lan.tx_descriptors
        ),
        (2, 2, 512, 4096)
    );
    // Queues not given default to the worker count.
    assert_eq!(
        (config.ports[0].rx_queues, config.ports[0].tx_queues),
        (2, 2)
    );
}

// ---- document shape and YAML errors ---------------------------------------

#[test]
fn an_empty_file_is_refused() {
    let expected = "the config is empty: expected a mapping with at least a `ports` list";
    assert_eq!(from_str("").unwrap_err().to_string(), expected);
    assert_eq!(from_str("# nothing\n\n").unwrap_err().to_string(), expected);
    assert_eq!(from_str("---\n").unwrap_err().to_string(), expected);
}

#[test]
fn a_top_level_that_is_not_a_mapping_is_refused() {
    assert_eq!(
        err(&["# a list", "- ports"]),
        "the config must be a mapping of sections (eal, ports, pipeline, flows, dpi, ban, networks, log, metrics, control, bgp) (line 2)"
    );
    assert_eq!(
        err(&["42"]),
        "the config must be a mapping of sections (eal, ports, pipeline, flows, dpi, ban, networks, log, metrics, control, bgp) (line 1)"
    );
}

#[test]
fn yaml_syntax_errors_give_the_line() {
    assert_eq!(
        err(&["pipeline:", "  burst_size: 32", "ports: [", ""]),
        "yaml syntax error: unclosed bracket '[' (line 3)"
    );
    assert_eq!(
        err(&["ports:", "  - name: a", "     device: x"]),
        "yaml syntax error: mapping values are not allowed in this context (line 3)"
    );
}

#[test]
fn duplicate_keys_are_refused() {
    assert_eq!(
        err(&two_ports_and(&[
            "eal:",
            "  memory_mb: 128",
            "  memory_mb: 256"
        ])),
        "eal.memory_mb: duplicate key (line 10)"
    );
}

#[test]
fn unknown_sections_are_refused_with_the_known_ones() {
    assert_eq!(
        err(&two_ports_and(&["bans:", "  enabled: true"])),
        "bans: unknown key, expected one of: eal, ports, pipeline, flows, dpi, ban, networks, log, metrics, control, bgp (line 8)"
    );
    // raw::SECTIONS feeds the "not a mapping" message: it must match serde's list.
    assert_eq!(
        raw::SECTIONS.join(", "),
        "eal, ports, pipeline, flows, dpi, ban, networks, log, metrics, control, bgp"
    );
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    assert_eq!(
        err(&["eal:", "  memory_mb: 128", "  memroy_mb: 3"]),
        "eal.memroy_mb: unknown key, expected one of: lcores, memory_mb, hugepages, \
         file_prefix, vdevs, pci_allow, extra_args (line 3)"
    );
    assert_eq!(
        err(&two_ports_and(&["    rx_queue: 1"])),
        "ports[1].rx_queue: unknown key, expected one of: name, device, role, rx_queues, \
         tx_queues, rx_descriptors, tx_descriptors, peer (line 8)"
    );
    assert_eq!(
        err(&two_ports_and(&["pipeline:", "  workers: [1]"])),
        "pipeline.workers: unknown key, expected one of: mode, burst_size, worker_lcores, \
         control_lcore, mbuf_pool_size, mbuf_cache_size, stats_interval_ms, \
         stop_after_idle_ms (line 9)"
    );
}

#[test]
fn an_unknown_key_spelt_like_spanneds_inner_field_keeps_its_path() {
    assert!(err(&two_ports_and(&["    value: 1"]))
        .starts_with("ports[1].value: unknown key, expected one of: name,"));
}

#[test]
fn values_of_the_wrong_type_are_refused() {
    assert_eq!(
        err(&two_ports_and(&["eal:", "  memory_mb: lots"])),
        "eal.memory_mb: expected an integer (line 9)"
    );
    assert_eq!(
        err(&two_ports_and(&["eal:", "  memory_mb: 1.5"])),
        "eal.memory_mb: expected an integer (line 9)"
    );
    assert_eq!(
        err(&two_ports_and(&["eal:", "  hugepages: maybe"])),
        "eal.hugepages: expected true or false (line 9)"
    );
    assert_eq!(
        err(&two_ports_and(&["eal:", "  vdevs: net_null0"])),
        "eal.vdevs: expected a list (line 9)"
    );
    assert_eq!(
        err(&two_ports_and(&["eal:", "  lcores: {a: 1}"])),
        "eal.lcores: expected a string (line 9)"
    );
    assert_eq!(
        err(&["eal: 5", "ports: []"]),
        "eal: expected a mapping (line 1)"
    );
    assert_eq!(err(&["ports: wan"]), "ports: expected a list (line 1)");
}

#[test]
fn enumerations_name_their_values() {
    assert_eq!(
        err(&[
            "ports:",
            "  - name: a",
            "    device: net_null0",
            "    role: sideways"
        ]),
        "ports[0].role: `sideways` is not one of: inside, outside (line 4)"
    );
    assert_eq!(
        err(&two_ports_and(&["pipeline:", "  mode: tap"])),
        "pipeline.mode: `tap` is not one of: inline, monitor (line 9)"
    );
}

// ---- eal ------------------------------------------------------------------

#[test]
fn eal_memory_has_a_floor() {
    assert_eq!(
        err(&two_ports_and(&["eal:", "  memory_mb: 63"])),
        "eal.memory_mb: must be >= 64 (line 9)"
    );
    assert_eq!(
        err(&two_ports_and(&["eal:", "  memory_mb: -1"])),
        "eal.memory_mb: must be >= 64 (line 9)"
    );
}

#[test]
fn eal_file_prefix_must_be_path_safe() {
    assert_eq!(
        err(&two_ports_and(&["eal:", "  file_prefix: ../etc"])),
        "eal.file_prefix: must match [A-Za-z0-9_-]+ (line 9)"
    );
}

#[test]
fn eal_vdevs_must_be_vdevs() {
    assert_eq!(
        err(&two_ports_and(&[
            "eal:",
            "  vdevs:",
            "    - net_null0",
            "    - null0"
        ])),
        "eal.vdevs[1]: `null0` is neither a PCI address (DDDD:BB:DD.F or BB:DD.F) nor a vdev \
         named net_*, eth_* or virtio_user<N> with optional ,key=value arguments (line 11)"
    );
}

#[test]
fn eal_pci_allow_must_be_pci_addresses() {
    assert_eq!(
        err(&two_ports_and(&[
            "eal:",
            "  pci_allow: [\"0000:03:00.0\", \"03:00\"]"
        ])),
        "eal.pci_allow[1]: `03:00` is not a PCI address (DDDD:BB:DD.F or BB:DD.F) (line 9)"
    );
}

#[test]
fn eal_lcores_must_parse() {
    assert_eq!(
        err(&two_ports_and(&["eal:", "  lcores: \"0,1@x\""])),
        "eal.lcores: cannot parse `1@x`: expected comma separated N, N-M or (N,M-K), each \
         optionally followed by @cpu, @cpu-cpu or @(cpus) (line 9)"
    );
}

#[test]
fn eal_lcores_must_define_the_control_lcore() {
    assert_eq!(
        err(&two_ports_and(&["eal:", "  lcores: \"1-3\""])),
        "eal.lcores: does not define lcore 0 (pipeline.control_lcore) (line 9)"
    );
}

#[test]
fn eal_lcores_must_define_every_worker() {
    assert_eq!(
        err(&two_ports_and(&[
            "eal:",
            "  lcores: \"0-2\"",
            "pipeline:",
            "  worker_lcores: [1, 3]",
        ])),
        "eal.lcores: does not define lcore 3 (pipeline.worker_lcores[1]) (line 9)"
    );
}

// ---- ports ----------------------------------------------------------------

#[test]
fn ports_are_required() {
    assert_eq!(
        err(&["# no ports", "pipeline:", "  burst_size: 32"]),
        "ports: required (line 2)"
    );
}

#[test]
fn ports_count_is_1_to_8() {
    assert_eq!(
        err(&["ports: []"]),
        "ports: must list 1 to 8 ports, found 0 (line 1)"
    );
    let mut nine = vec!["ports:".to_owned()];
    for i in 0..9 {
        nine.push(format!(
            "  - {{name: p{i}, device: net_null{i}, role: inside, peer: p{i}}}"
        ));
    }
    let nine: Vec<&str> = nine.iter().map(String::as_str).collect();
    assert_eq!(
        err(&nine),
        "ports: must list 1 to 8 ports, found 9 (line 2)"
    );
}

#[test]
fn port_name_is_required() {
    assert_eq!(
        err(&["ports:", "  - device: net_null0", "    role: inside"]),
        "ports[0].name: required (line 2)"
    );
}

#[test]
fn port_name_must_not_be_empty() {
    assert_eq!(
        err(&[
            "ports:",
            "  - name: \"\"",
            "    device: net_null0",
            "    role: inside"
        ]),
        "ports[0].name: must not be empty (line 2)"
    );
}

#[test]
fn port_names_are_unique() {
    let mut lines = TWO_PORTS;
    lines[4] = "  - name: wan";
    assert_eq!(
        err(&lines),
        "ports[1].name: \"wan\" is already the name of ports[0] (line 5)"
    );
}

#[test]
fn port_device_is_required() {
    assert_eq!(
        err(&two_ports_and(&["  - name: dmz", "    role: inside"])),
        "ports[2].device: required (line 8)"
    );
}

#[test]
fn port_device_must_be_pci_or_vdev() {
    let mut lines = TWO_PORTS;
    lines[5] = "    device: pcap1,rx_pcap=lan.pcap";
    assert_eq!(
        err(&lines),
        "ports[1].device: `pcap1,rx_pcap=lan.pcap` is neither a PCI address (DDDD:BB:DD.F or \
         BB:DD.F) nor a vdev named net_*, eth_* or virtio_user<N> with optional ,key=value \
         arguments (line 6)"
    );
}

#[test]
fn port_vdev_arguments_are_key_value() {
    let mut lines = TWO_PORTS;
    lines[5] = "    device: net_pcap1,rx_pcap";
    assert_eq!(
        err(&lines),
        "ports[1].device: vdev argument `rx_pcap` is not key=value (line 6)"
    );
}

#[test]
fn port_devices_are_unique_by_dpdk_name() {
    let mut lines = TWO_PORTS;
    lines[5] = "    device: net_pcap0,rx_pcap=other.pcap";
    assert_eq!(
        err(&lines),
        "ports[1].device: \"net_pcap0\" is already the device of ports[0] (line 6)"
    );
}

#[test]
fn port_pci_devices_are_unique_in_either_spelling() {
    let mut lines = TWO_PORTS;
    lines[2] = "    device: 0000:03:00.0";
    lines[5] = "    device: 03:00.0";
    assert_eq!(
        err(&lines),
        "ports[1].device: \"03:00.0\" is already the device of ports[0] (line 6)"
    );
}

#[test]
fn a_port_device_is_not_repeated_in_eal_vdevs() {
    assert_eq!(
        err(&two_ports_and(&[
            "eal:",
            "  vdevs: [\"net_pcap1,rx_pcap=x.pcap\"]"
        ])),
        "ports[1].device: \"net_pcap1\" is also in eal.vdevs; a port's device is passed to EAL \
         already, remove it from eal.vdevs (line 6)"
    );
}

#[test]
fn port_role_is_required() {
    assert_eq!(
        err(&["ports:", "  - name: a", "    device: net_null0"]),
        "ports[0].role: required (line 2)"
    );
}

#[test]
fn port_queues_must_be_at_least_one() {
    assert_eq!(
        err(&two_ports_and(&["    rx_queues: 0"])),
        "ports[1].rx_queues: must be >= 1 (line 8)"
    );
}

#[test]
fn port_rx_queues_must_match_the_workers() {
    assert_eq!(
        err(&two_ports_and(&["    rx_queues: 2"])),
        "ports[1].rx_queues: must equal the number of worker lcores (1): each worker polls one \
         RX queue per port (line 8)"
    );
}

#[test]
fn port_tx_queues_must_match_the_workers() {
    assert_eq!(
        err(&two_ports_and(&[
            "    tx_queues: 1",
            "pipeline:",
            "  worker_lcores: [1, 2, 3]"
        ])),
        "ports[1].tx_queues: must equal the number of worker lcores (3): each worker owns one \
         TX queue per port (line 8)"
    );
}

#[test]
fn port_descriptors_are_powers_of_two_in_range() {
    for (value, key) in [
        ("1000", "rx_descriptors"),
        ("32", "rx_descriptors"),
        ("32768", "tx_descriptors"),
        ("-64", "tx_descriptors"),
    ] {
        let line = format!("    {key}: {value}");
        assert_eq!(
            err(&two_ports_and(&[&line])),
            format!("ports[1].{key}: must be a power of two in 64..=16384 (line 8)")
        );
    }
    let config = ok(&two_ports_and(&[
        "    rx_descriptors: 64",
        "    tx_descriptors: 16384",
    ]));
    assert_eq!(
        (
            config.ports[1].rx_descriptors,
            config.ports[1].tx_descriptors
        ),
        (64, 16384)
    );
}

// ---- peers ----------------------------------------------------------------

fn peers(config: &Config) -> Vec<usize> {
    config.ports.iter().map(|p| p.peer).collect()
}

#[test]
fn one_port_is_its_own_peer() {
    let config = ok(&[
        "ports:",
        "  - name: a",
        "    device: net_null0",
        "    role: inside",
    ]);
    assert_eq!(peers(&config), [0]);
}

#[test]
fn two_ports_peer_with_each_other_by_default() {
    assert_eq!(peers(&ok(&TWO_PORTS)), [1, 0]);
}

#[test]
fn more_ports_pair_as_named() {
    let config = ok(&[
        "ports:",
        "  - {name: wan, device: net_null0, role: outside, peer: lan}",
        "  - {name: dmz, device: net_null1, role: outside, peer: dmz}",
        "  - {name: lan, device: net_null2, role: inside, peer: wan}",
    ]);
    assert_eq!(peers(&config), [2, 1, 0]);
}

#[test]
fn more_than_two_ports_in_inline_mode_must_name_peers() {
    assert_eq!(
        err(&two_ports_and(&[
            "    peer: dmz",
            "  - {name: dmz, device: net_null0, role: inside, peer: lan}"
        ])),
        "ports[0].peer: required in inline mode when there are more than 2 ports (3 here) (line 2)"
    );
}

#[test]
fn more_than_two_ports_in_monitor_mode_default_to_themselves() {
    let config = ok(&two_ports_and(&[
        "  - {name: dmz, device: net_null0, role: inside}",
        "pipeline:",
        "  mode: monitor",
    ]));
    assert_eq!(peers(&config), [0, 1, 2]);
}

#[test]
fn peers_must_exist() {
    assert_eq!(
        err(&two_ports_and(&["    peer: dmz"])),
        "ports[1].peer: no port is named \"dmz\" (line 8)"
    );
}

#[test]
fn peers_must_be_mutual() {
    let mut lines = two_ports_and(&[
        "    peer: dmz",
        "  - {name: dmz, device: net_null0, role: inside, peer: wan}",
    ]);
    lines.insert(4, "    peer: lan".into());
    // wan -> lan, lan -> dmz, dmz -> wan
    assert_eq!(
        err(&lines),
        "ports[0].peer: peers must be mutual: \"wan\" forwards to \"lan\", which forwards to \
         \"dmz\" (line 5)"
    );
}

#[test]
fn a_non_mutual_default_blames_the_peer_written_down() {
    // lan defaults to wan, but wan names itself.
    let mut lines = TWO_PORTS.to_vec();
    lines.insert(4, "    peer: wan");
    assert_eq!(
        err(&lines),
        "ports[0].peer: peers must be mutual: \"lan\" forwards to \"wan\", which forwards to \
         \"wan\" (line 5)"
    );
}

// ---- pipeline -------------------------------------------------------------

fn pipeline_err(key_line: &str) -> String {
    err(&two_ports_and(&["pipeline:", key_line]))
}

#[test]
fn burst_size_is_1_to_512() {
    assert_eq!(
        pipeline_err("  burst_size: 0"),
        "pipeline.burst_size: must be >= 1 (line 9)"
    );
    assert_eq!(
        pipeline_err("  burst_size: 513"),
        "pipeline.burst_size: must be <= 512 (line 9)"
    );
}

#[test]
fn worker_lcores_must_not_be_empty() {
    assert_eq!(
        pipeline_err("  worker_lcores: []"),
        "pipeline.worker_lcores: must list at least one lcore (line 9)"
    );
}

#[test]
fn worker_lcores_are_unique() {
    assert_eq!(
        err(&two_ports_and(&[
            "pipeline:",
            "  worker_lcores:",
            "    - 1",
            "    - 2",
            "    - 1"
        ])),
        "pipeline.worker_lcores[2]: lcore 1 is already pipeline.worker_lcores[0] (line 12)"
    );
}

#[test]
fn worker_lcores_are_below_128() {
    assert_eq!(
        pipeline_err("  worker_lcores: [1, 128]"),
        "pipeline.worker_lcores[1]: must be <= 127 (line 9)"
    );
}

#[test]
fn control_lcore_is_below_128() {
    assert_eq!(
        pipeline_err("  control_lcore: 128"),
        "pipeline.control_lcore: must be <= 127 (line 9)"
    );
}

#[test]
fn control_lcore_is_not_a_worker() {
    assert_eq!(
        err(&two_ports_and(&[
            "pipeline:",
            "  worker_lcores: [1, 2]",
            "  control_lcore: 2"
        ])),
        "pipeline.control_lcore: lcore 2 is both the control lcore and \
         pipeline.worker_lcores[1]; a worker polls without pause and would starve the control \
         thread (line 10)"
    );
    // The default control lcore 0 is blamed on the worker that took it.
    assert_eq!(
        pipeline_err("  worker_lcores: [0]"),
        "pipeline.worker_lcores[0]: lcore 0 is both the control lcore and \
         pipeline.worker_lcores[0]; a worker polls without pause and would starve the control \
         thread (line 9)"
    );
}

#[test]
fn mbuf_pool_has_a_floor() {
    assert_eq!(
        pipeline_err("  mbuf_pool_size: 1023"),
        "pipeline.mbuf_pool_size: must be >= 1024 (line 9)"
    );
}

#[test]
fn mbuf_cache_is_at_most_512() {
    assert_eq!(
        pipeline_err("  mbuf_cache_size: 513"),
        "pipeline.mbuf_cache_size: must be <= 512 (line 9)"
    );
}

#[test]
fn stats_interval_has_a_floor() {
    assert_eq!(
        pipeline_err("  stats_interval_ms: 99"),
        "pipeline.stats_interval_ms: must be >= 100 (line 9)"
    );
}

#[test]
fn stop_after_idle_is_positive() {
    assert_eq!(
        pipeline_err("  stop_after_idle_ms: 0"),
        "pipeline.stop_after_idle_ms: must be >= 1 (line 9)"
    );
}

// ---- devices and EAL arguments --------------------------------------------

#[test]
fn dpdk_name_and_is_pci_tell_devices_apart() {
    let config = ok(&[
        "ports:",
        "  - {name: a, device: \"0000:03:00.0\", role: outside}",
        "  - {name: b, device: \"net_pcap0,rx_pcap=in.pcap\", role: inside}",
    ]);
    assert!(config.ports[0].is_pci());
    assert_eq!(config.ports[0].dpdk_name(), "0000:03:00.0");
    assert!(!config.ports[1].is_pci());
    assert_eq!(config.ports[1].dpdk_name(), "net_pcap0");
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

#[test]
fn eal_args_for_a_vdev_config() {
    let config = ok(&two_ports_and(&[
        "eal:",
        "  hugepages: false",
        "  memory_mb: 256",
        "  vdevs: [net_null0]",
        "  extra_args: [--log-level, \"lib.eal:debug\"]",
        "pipeline:",
        "  worker_lcores: [2, 3]",
        "  control_lcore: 1",
    ]));
    assert_eq!(
        config.eal_args(),
        args(&[
            "-l",
            "1,2,3",
            "--main-lcore",
            "1",
            "-m",
            "256",
            "--no-huge",
            "--file-prefix",
            "btblocker",
            "--no-pci",
            "--vdev",
            "net_pcap0,rx_pcap=wan.pcap",
            "--vdev",
            "net_pcap1,rx_pcap=lan.pcap",
            "--vdev",
            "net_null0",
            "--log-level",
            "lib.eal:debug",
        ])
    );
}

#[test]
fn eal_args_for_a_pci_config() {
    let config = ok(&[
        "eal:",
        "  lcores: \"0@0,(1-2)@(1-2)\"",
        "  file_prefix: bt0",
        "  pci_allow: [\"0000:81:00.0\", \"03:00.1\"]",
        "ports:",
        "  - {name: wan, device: \"0000:03:00.0\", role: outside}",
        "  - {name: lan, device: \"0000:03:00.1\", role: inside}",
        "pipeline:",
        "  worker_lcores: [1, 2]",
    ]);
    assert_eq!(
        config.eal_args(),
        args(&[
            "--lcores",
            "0@0,(1-2)@(1-2)",
            "--main-lcore",
            "0",
            "-m",
            "512",
            "--file-prefix",
            "bt0",
            "-a",
            "0000:81:00.0",
            "-a",
            "03:00.1",
            "-a",
            "0000:03:00.0",
        ])
    );
}

// ---- robustness -----------------------------------------------------------

#[test]
fn no_truncation_of_a_full_config_panics() {
    let text = yaml(&two_ports_and(&[
        "    peer: wan",
        "    rx_descriptors: 512",
        "eal:",
        "  lcores: \"0@0,(1-2)@(1,2)\"",
        "  pci_allow: [\"0000:03:00.0\"]",
        "  vdevs: [net_null0]",
        "pipeline:",
        "  worker_lcores: [1, 2]",
        "  mbuf_cache_size: 128",
    ]));
    assert!(from_str(&text).is_ok());
    let mut refused = 0;
    for (cut, _) in text.char_indices() {
        // Each prefix either parses or is refused with a message; none panics.
        if let Err(e) = from_str(&text[..cut]) {
            assert!(!e.to_string().is_empty());
            refused += 1;
        }
    }
    // The empty prefix and any prefix cut before the first port's role at least.
    assert!(refused > 100, "{refused}");
}

// ---- control ----------------------------------------------------------------

#[test]
fn the_control_socket_has_a_default_a_path_and_two_ways_off() {
    let socket = |more: &[&str]| ok(&two_ports_and(more)).operator.socket;
    assert_eq!(socket(&[]), Some(std::path::PathBuf::from(DEFAULT_SOCKET)));
    assert_eq!(
        socket(&["control:", "  socket: target/c.sock"]),
        Some("target/c.sock".into())
    );
    assert_eq!(socket(&["control:", "  socket: null"]), None);
    assert_eq!(socket(&["control:", "  enabled: false"]), None);
    assert_eq!(
        socket(&["control:", "  enabled: true"]),
        Some(DEFAULT_SOCKET.into())
    );
}

#[test]
fn a_control_socket_path_must_fit_a_unix_socket() {
    let long = format!("  socket: /{}", "x".repeat(107));
    assert_eq!(
        err(&two_ports_and(&["control:", &long])),
        "control.socket: 108 bytes is longer than a Unix socket path may be (107) (line 9)"
    );
    assert_eq!(
        err(&two_ports_and(&["control:", "  socket: \"\""])),
        "control.socket: must be a path (or null for no control socket) (line 9)"
    );
    assert_eq!(
        err(&two_ports_and(&["control:", "  sockett: x"])),
        "control.sockett: unknown key, expected one of: enabled, socket (line 9)"
    );
}

// ---- bgp --------------------------------------------------------------------

/// A valid `bgp:` section (line 8) with `more` keys after line 13.
fn bgp_and(more: &[&str]) -> Vec<String> {
    let mut lines: Vec<&str> = vec![
        "bgp:",
        "  enabled: true",
        "  local_asn: 65001",
        "  box_id: 3",
        "  next_hop_v4: 192.0.2.1",
        "  next_hop_v6: \"100::1\"",
    ];
    lines.extend_from_slice(more);
    two_ports_and(&lines)
}

#[test]
fn no_bgp_section_or_disabled_means_no_bgp() {
    assert_eq!(ok(&two_ports_and(&[])).bgp, None);
    assert_eq!(ok(&two_ports_and(&["bgp:", "  enabled: false"])).bgp, None);
}

#[test]
fn bgp_defaults_and_values() {
    let b = ok(&bgp_and(&[])).bgp.unwrap();
    assert_eq!(
        b.api_socket,
        std::path::PathBuf::from("/run/btblocker/gobgp.sock")
    );
    assert_eq!((b.local_asn, b.box_id), (65001, 3));
    assert_eq!(b.communities, vec![(65535 << 16) | 666, 0xFFFF_FF01]);
    assert_eq!(b.import_community, (65535 << 16) | 666);
    assert_eq!(
        (b.announce_v4, b.announce_v6, b.import),
        (true, true, false)
    );
    assert_eq!(
        (b.flowspec, b.flowspec_action),
        (FlowSpecMode::Off, FlowSpecAction::Discard)
    );
    assert_eq!(
        (b.import_max_ttl_s, b.max_announced, b.queue_capacity),
        (86_400, 100_000, 65_536)
    );
    assert_eq!(
        (b.on_session_loss, b.withdraw_on_shutdown),
        (SessionLoss::Keep, true)
    );
    let b = ok(&bgp_and(&[
        "  communities: [\"65001:666\", no-export, blackhole]",
        "  flowspec: instead",
        "  flowspec_action: rate_limit",
        "  flowspec_rate_bps: 1250",
        "  import: true",
        "  on_session_loss: drop",
        "  never_announce: [10.0.0.0/8, 192.0.2.77]",
    ]))
    .bgp
    .unwrap();
    assert_eq!(
        b.communities,
        vec![(65001 << 16) | 666, 0xFFFF_FF01, (65535 << 16) | 666]
    );
    assert_eq!(b.import_community, (65001 << 16) | 666);
    assert_eq!(b.flowspec, FlowSpecMode::Instead);
    assert_eq!(b.flowspec_action, FlowSpecAction::RateLimit(1250.0));
    assert_eq!(b.on_session_loss, SessionLoss::Drop);
    assert_eq!(b.never_announce.len(), 2);
    // YAML's `off` may arrive as a boolean: both spellings mean off.
    assert_eq!(
        ok(&bgp_and(&["  flowspec: off"])).bgp.unwrap().flowspec,
        FlowSpecMode::Off
    );
}

#[test]
fn bad_bgp_keys_name_the_key_and_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["  box_idd: 2"], "bgp.box_idd: unknown key"),
        (
            &["  communities: [\"65536:1\"]"],
            "bgp.communities[0]: \"65536:1\" is not a community",
        ),
        (&["  next_hop_v6: \"::\""], "bgp.next_hop_v6"),
        (
            &["  never_announce: [10.0.0.0/33]"],
            "bgp.never_announce[0]:",
        ),
        (
            &["  max_announced: 0"],
            "bgp.max_announced: must be >= 1 (line 14)",
        ),
        (
            &["  queue_capacity: 1"],
            "bgp.queue_capacity: must be >= 16 (line 14)",
        ),
        (
            &["  import_max_ttl_s: 0"],
            "bgp.import_max_ttl_s: must be >= 1 (line 14)",
        ),
        (&["  flowspec: sideways"], "bgp.flowspec"),
        (
            &["  flowspec_action: rate_limit"],
            "bgp.flowspec_rate_bps: required (line 9)",
        ),
        (
            &["  flowspec_action: rate_limit", "  flowspec_rate_bps: -1"],
            "bgp.flowspec_rate_bps: must be a positive number of bytes per second (line 15)",
        ),
        (&["  on_session_loss: maybe"], "bgp.on_session_loss"),
        (
            &["  import_community: nope"],
            "bgp.import_community: \"nope\" is not a community",
        ),
        (
            &["  api_socket: \"\""],
            "bgp.api_socket: must be a Unix socket path",
        ),
    ];
    for (more, want) in cases {
        let got = err(&bgp_and(more));
        assert!(
            got.starts_with(want),
            "{more:?}: got {got:?}, want {want:?}"
        );
        assert!(got.contains("(line "), "{more:?}: no line in {got:?}");
    }
    assert_eq!(
        err(&two_ports_and(&["bgp:", "  enabled: true", "  box_id: 1"])),
        "bgp.local_asn: required (line 9)"
    );
    assert_eq!(
        err(&two_ports_and(&[
            "bgp:",
            "  enabled: true",
            "  local_asn: 1",
            "  next_hop_v6: \"100::1\""
        ])),
        "bgp.box_id: required (line 9)"
    );
    assert_eq!(
        err(&two_ports_and(&[
            "bgp:",
            "  enabled: true",
            "  local_asn: 1",
            "  box_id: 0"
        ])),
        "bgp.box_id: must be >= 1 (line 11)"
    );
    assert_eq!(
        err(&two_ports_and(&[
            "bgp:",
            "  enabled: true",
            "  local_asn: 1",
            "  box_id: 2"
        ])),
        "bgp.next_hop_v4: required (line 9)"
    );
}
