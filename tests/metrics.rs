//! The Prometheus export: summaries built by hand, published into a local
//! recorder (no global state), rendered, parsed back and checked value by
//! value; plus one real HTTP listener.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use btblocker::ban::keeper::BanSummary;
use btblocker::control::metrics::{Kind, Metrics, MetricsError, DESCRIPTIONS};
use btblocker::control::reload::ReloadCounts;
use btblocker::control::report::{
    DpiSummary, EnforcementSummary, HwPortStats, ParseSummary, PortSummary, RunSummary, Traffic,
    WorkerSummary,
};
use metrics_exporter_prometheus::PrometheusBuilder;

type Labels = BTreeMap<String, String>;

/// A parsed text exposition: samples by metric name, and `# TYPE` lines.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<String, Vec<(Labels, f64)>>,
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut out = Exposition::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line has a kind");
                out.types.insert(name.to_string(), kind.to_string());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP line has text");
                out.helps.insert(name.to_string(), help.to_string());
            } else {
                assert!(!line.starts_with('#'), "unexpected comment: {line}");
                let (series, value) = line.rsplit_once(' ').expect("sample has a value");
                let value: f64 = value.parse().expect("sample value is a number");
                let (name, labels) = parse_series(series);
                out.samples.entry(name).or_default().push((labels, value));
            }
        }
        out
    }

    /// The one sample of `name` whose labels are exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<f64> = self
            .samples
            .get(name)
            .unwrap_or_else(|| panic!("no metric {name}"))
            .iter()
            .filter(|(l, _)| *l == want)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0]
    }
}

/// `name{k="v",k2="v2"}` or `name` -> (name, labels). Label values may hold
/// `\"` and `\\` escapes.
fn parse_series(series: &str) -> (String, Labels) {
    let Some((name, rest)) = series.split_once('{') else {
        return (series.to_string(), Labels::new());
    };
    let body = rest.strip_suffix('}').expect("labels end with }");
    let mut labels = Labels::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value is quoted");
        let mut value = String::new();
        loop {
            match chars.next().expect("label value is closed") {
                '\\' => value.push(chars.next().expect("escape has a char")),
                '"' => break,
                c => value.push(c),
            }
        }
        if chars.peek() == Some(&',') {
            chars.next();
        }
        labels.insert(key, value);
    }
    (name.to_string(), labels)
}

fn port(name: &str, role: &'static str, t: [u64; 6], hw: HwPortStats) -> PortSummary {
    PortSummary {
        name: name.to_string(),
        role,
        traffic: Traffic {
            rx_packets: t[0],
            rx_bytes: t[1],
            tx_packets: t[2],
            tx_bytes: t[3],
            dropped: t[4],
            tx_failed: t[5],
        },
        hw,
    }
}

fn worker(lcore: u32, rx_packets: u64, dropped: u64) -> WorkerSummary {
    WorkerSummary {
        lcore,
        traffic: Traffic {
            rx_packets,
            rx_bytes: rx_packets * 100,
            tx_packets: rx_packets - dropped,
            tx_bytes: 0,
            dropped,
            tx_failed: 0,
        },
    }
}

fn run_summary() -> RunSummary {
    RunSummary {
        elapsed_s: 12.5,
        mode: "inline",
        ports: vec![
            port(
                "inside",
                "inside",
                [1355, 812_000, 1290, 790_000, 65, 3],
                HwPortStats {
                    ipackets: 1360,
                    opackets: 1290,
                    imissed: 5,
                    ierrors: 2,
                    oerrors: 1,
                    rx_nombuf: 7,
                },
            ),
            port(
                "outside",
                "outside",
                [2210, 2_100_000, 1300, 800_001, 11, 9],
                HwPortStats {
                    ipackets: 2210,
                    opackets: 1300,
                    imissed: 0,
                    ierrors: 0,
                    oerrors: 0,
                    rx_nombuf: 13,
                },
            ),
        ],
        workers: vec![worker(2, 1800, 40), worker(3, 1765, 36)],
        parse: ParseSummary {
            non_ip: 165,
            vlan: 120,
            ipv4: 3000,
            ipv6: 400,
            tcp: 2500,
            udp: 800,
            other_l4: 100,
            fragments: 17,
            malformed: 8,
            malformed_by_reason: vec![("truncated_tcp", 5), ("bad_udp_length", 3)],
        },
        dpi: DpiSummary {
            flows_created: 500,
            flows_expired: 120,
            flows_evicted: 30,
            payload_packets_inspected: 900,
            flows_clean: 400,
            flows_bittorrent: 11,
            dpi_pool_exhausted: 3,
            flow_lookahead_bursts: 41,
            bittorrent_by_detector: vec![("dht", 4), ("peer_wire_handshake", 7)],
        },
        enforcement: EnforcementSummary {
            dropped_banned_host: 60,
            dropped_bittorrent_flow: 16,
            events_sent: 11,
        },
        bans: None,
        config_reloads: ReloadCounts { ok: 3, failed: 1 },
    }
}

fn ban_summary() -> BanSummary {
    BanSummary {
        active: 6,
        restored: 2,
        events: 10,
        events_dropped_ring_full: 1,
        added: 5,
        refreshed: 3,
        refused_allowlisted: 2,
        refused_full: 1,
        evicted: 0,
        expired: 1,
        pending_below_threshold: 4,
        generation: 17,
        hosts: vec![("192.0.2.7".to_string(), "dht".to_string())],
    }
}

/// Publishes each `(run, bans, latency)` in turn into a fresh local recorder
/// and parses what a scrape would return afterwards.
fn publish_all(steps: &[(RunSummary, Option<BanSummary>, Option<Duration>)]) -> Exposition {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let m = Metrics::describe();
        for (run, bans, latency) in steps {
            m.publish(run, bans.as_ref(), *latency);
        }
    });
    Exposition::parse(&handle.render())
}

#[test]
fn publishes_exact_values() {
    let e = publish_all(&[(
        run_summary(),
        Some(ban_summary()),
        Some(Duration::from_micros(2500)),
    )]);
    let v = |name: &str, labels: &[(&str, &str)]| e.value(name, labels);

    // Ports.
    let inside = [("port", "inside")];
    let outside = [("port", "outside")];
    let rx = "btblocker_rx_packets_total";
    assert_eq!(v(rx, &[("port", "inside"), ("role", "inside")]), 1355.0);
    assert_eq!(v(rx, &[("port", "outside"), ("role", "outside")]), 2210.0);
    assert_eq!(v("btblocker_rx_bytes_total", &outside), 2_100_000.0);
    assert_eq!(v("btblocker_tx_packets_total", &inside), 1290.0);
    assert_eq!(v("btblocker_tx_bytes_total", &outside), 800_001.0);
    assert_eq!(v("btblocker_port_dropped_packets_total", &inside), 65.0);
    assert_eq!(v("btblocker_port_tx_failed_packets_total", &outside), 9.0);
    assert_eq!(v("btblocker_port_imissed_total", &inside), 5.0);
    assert_eq!(v("btblocker_port_imissed_total", &outside), 0.0);
    assert_eq!(v("btblocker_port_rx_nombuf_total", &outside), 13.0);
    assert_eq!(v("btblocker_port_ierrors_total", &inside), 2.0);
    assert_eq!(v("btblocker_port_oerrors_total", &inside), 1.0);
    assert_eq!(v("btblocker_port_hw_rx_packets_total", &inside), 1360.0);

    // Drops by reason; tx_full is both ports' tx_failed together.
    let dropped = "btblocker_dropped_packets_total";
    assert_eq!(v(dropped, &[("reason", "banned_host")]), 60.0);
    assert_eq!(v(dropped, &[("reason", "bittorrent_flow")]), 16.0);
    assert_eq!(v(dropped, &[("reason", "tx_full")]), 12.0);
    assert_eq!(e.samples[dropped].len(), 3);

    // Workers, labelled by lcore.
    assert_eq!(
        v("btblocker_worker_rx_packets_total", &[("worker", "3")]),
        1765.0
    );
    assert_eq!(
        v("btblocker_worker_dropped_packets_total", &[("worker", "2")]),
        40.0
    );
    assert_eq!(
        v("btblocker_worker_rx_bytes_total", &[("worker", "2")]),
        180_000.0
    );

    // Parsing: every error reason is there, unseen ones at zero.
    let parsed = "btblocker_packets_parsed_total";
    assert_eq!(v(parsed, &[("kind", "ipv4")]), 3000.0);
    assert_eq!(v(parsed, &[("kind", "fragment")]), 17.0);
    assert_eq!(v(parsed, &[("kind", "non_ip")]), 165.0);
    assert_eq!(e.samples[parsed].len(), 8);
    let errors = "btblocker_parse_errors_total";
    assert_eq!(v(errors, &[("kind", "truncated_tcp")]), 5.0);
    assert_eq!(v(errors, &[("kind", "bad_udp_length")]), 3.0);
    assert_eq!(v(errors, &[("kind", "truncated_ipv4")]), 0.0);
    assert_eq!(e.samples[errors].len(), 20);

    // Flows and DPI.
    assert_eq!(v("btblocker_flows_active", &[]), 350.0);
    assert_eq!(v("btblocker_flows_created_total", &[]), 500.0);
    assert_eq!(v("btblocker_flows_expired_total", &[]), 120.0);
    assert_eq!(v("btblocker_flows_evicted_total", &[]), 30.0);
    let judged = "btblocker_flows_judged_total";
    assert_eq!(v(judged, &[("verdict", "bittorrent")]), 11.0);
    assert_eq!(v(judged, &[("verdict", "clean")]), 400.0);
    assert_eq!(v("btblocker_payload_packets_inspected_total", &[]), 900.0);
    assert_eq!(v("btblocker_dpi_pool_exhausted_total", &[]), 3.0);
    assert_eq!(v("btblocker_flow_lookahead_bursts_total", &[]), 41.0);
    let det = "btblocker_detections_total";
    assert_eq!(v(det, &[("detector", "dht")]), 4.0);
    assert_eq!(v(det, &[("detector", "peer_wire_handshake")]), 7.0);
    assert_eq!(v(det, &[("detector", "utp")]), 0.0);
    assert_eq!(e.samples[det].len(), 11);
    assert_eq!(v("btblocker_detection_events_sent_total", &[]), 11.0);

    // Bans.
    assert_eq!(v("btblocker_bans_active", &[]), 6.0);
    assert_eq!(v("btblocker_bans_restored", &[]), 2.0);
    assert_eq!(v("btblocker_bans_added_total", &[]), 5.0);
    assert_eq!(v("btblocker_bans_refreshed_total", &[]), 3.0);
    assert_eq!(v("btblocker_bans_expired_total", &[]), 1.0);
    assert_eq!(v("btblocker_bans_evicted_total", &[]), 0.0);
    let refused = "btblocker_bans_refused_total";
    assert_eq!(v(refused, &[("reason", "allowlisted")]), 2.0);
    assert_eq!(v(refused, &[("reason", "full")]), 1.0);
    assert_eq!(v("btblocker_detection_events_received_total", &[]), 10.0);
    assert_eq!(v("btblocker_detections_below_threshold_total", &[]), 4.0);
    assert_eq!(v("btblocker_ring_overflows_total", &[]), 1.0);
    assert_eq!(v("btblocker_snapshot_generation", &[]), 17.0);
    assert_eq!(v("btblocker_snapshot_publish_seconds", &[]), 0.0025);
    assert_eq!(v("btblocker_uptime_seconds", &[]), 12.5);
    let reloads = "btblocker_config_reloads_total";
    assert_eq!(v(reloads, &[("result", "ok")]), 3.0);
    assert_eq!(v(reloads, &[("result", "failed")]), 1.0);
    assert_eq!(e.samples[reloads].len(), 2);
}

/// The BGP thread's counters, each a distinct value so a swapped series shows.
fn bgp_counts() -> btblocker::bgp::BgpCounts {
    btblocker::bgp::BgpCounts {
        announced: 11,
        withdrawn: 3,
        imported: 7,
        import_withdrawn: 2,
        queue_full: 1,
        errors: 4,
        reconciles: 5,
        refused: 6,
        waiting: 12,
        session_up: 1,
        api_up: 1,
        announced_routes: 8,
        rib_difference: 0,
        queue_depth: 9,
    }
}

#[test]
fn bgp_series_carry_the_bgp_threads_counts() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let m = Metrics::describe();
        m.publish(&run_summary(), None, None);
        m.publish_bgp(&bgp_counts());
    });
    let e = Exposition::parse(&handle.render());
    let v = |name: &str| e.value(name, &[]);
    assert_eq!(v("btblocker_bgp_announced_total"), 11.0);
    assert_eq!(v("btblocker_bgp_withdrawn_total"), 3.0);
    assert_eq!(v("btblocker_bgp_imported_total"), 7.0);
    assert_eq!(v("btblocker_bgp_import_withdrawn_total"), 2.0);
    assert_eq!(v("btblocker_bgp_queue_full_total"), 1.0);
    assert_eq!(v("btblocker_bgp_errors_total"), 4.0);
    assert_eq!(v("btblocker_bgp_reconciles_total"), 5.0);
    assert_eq!(v("btblocker_bgp_refused_total"), 6.0);
    assert_eq!(v("btblocker_bgp_waiting_bans"), 12.0);
    assert_eq!(v("btblocker_bgp_session_up"), 1.0);
    assert_eq!(v("btblocker_bgp_announced_routes"), 8.0);
    assert_eq!(v("btblocker_bgp_rib_difference"), 0.0);
    assert_eq!(v("btblocker_bgp_queue_depth"), 9.0);
}

#[test]
fn without_bgp_no_bgp_series_is_rendered() {
    let e = publish_all(&[(run_summary(), Some(ban_summary()), None)]);
    assert!(e.samples.keys().all(|k| !k.starts_with("btblocker_bgp_")));
}

#[test]
fn names_follow_prometheus_conventions() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let m = Metrics::describe();
        m.publish(
            &run_summary(),
            Some(&ban_summary()),
            Some(Duration::from_millis(1)),
        );
        m.publish_bgp(&bgp_counts());
    });
    let e = Exposition::parse(&handle.render());
    // With bans, a latency and BGP, every described metric has samples, and
    // nothing undescribed does.
    let described: BTreeMap<&str, Kind> = DESCRIPTIONS.iter().map(|d| (d.0, d.1)).collect();
    assert_eq!(described.len(), DESCRIPTIONS.len(), "no name twice");
    let rendered: Vec<&str> = e.samples.keys().map(String::as_str).collect();
    let expected: Vec<&str> = described.keys().copied().collect();
    assert_eq!(rendered, expected);

    for (name, kind) in &described {
        assert!(name.starts_with("btblocker_"), "{name}");
        let want = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        assert_eq!(e.types.get(*name).map(String::as_str), Some(want), "{name}");
        assert_eq!(*kind == Kind::Counter, name.ends_with("_total"), "{name}");
        assert!(e.helps.contains_key(*name), "{name} has no HELP");
    }
    for name in e.types.keys() {
        assert!(described.contains_key(name.as_str()), "{name}");
    }
}

#[test]
fn publishing_again_sets_rather_than_adds() {
    let first = run_summary();
    let mut second = run_summary();
    second.ports[0].traffic.rx_packets = 2000;
    second.ports[1].hw.rx_nombuf = 20;
    second.dpi.flows_created = 520;
    second.dpi.flows_expired = 200;
    second.dpi.bittorrent_by_detector = vec![("dht", 9), ("peer_wire_handshake", 7)];
    let mut bans = ban_summary();
    bans.active = 4;
    bans.expired = 3;
    bans.generation = 18;
    let e = publish_all(&[
        (
            first,
            Some(ban_summary()),
            Some(Duration::from_micros(2500)),
        ),
        (second, Some(bans), None),
    ]);
    let rx = "btblocker_rx_packets_total";
    assert_eq!(
        e.value(rx, &[("port", "inside"), ("role", "inside")]),
        2000.0
    );
    assert_eq!(
        e.value(rx, &[("port", "outside"), ("role", "outside")]),
        2210.0
    );
    assert_eq!(
        e.value("btblocker_port_rx_nombuf_total", &[("port", "outside")]),
        20.0
    );
    assert_eq!(
        e.value("btblocker_detections_total", &[("detector", "dht")]),
        9.0
    );
    // Gauges go down as well as up.
    assert_eq!(e.value("btblocker_flows_active", &[]), 290.0);
    assert_eq!(e.value("btblocker_bans_active", &[]), 4.0);
    assert_eq!(e.value("btblocker_bans_expired_total", &[]), 3.0);
    assert_eq!(e.value("btblocker_snapshot_generation", &[]), 18.0);
    // No new latency: the last one stays.
    assert_eq!(e.value("btblocker_snapshot_publish_seconds", &[]), 0.0025);
}

#[test]
fn bans_come_from_the_run_summary_when_not_given() {
    let mut run = run_summary();
    run.bans = Some(ban_summary());
    let e = publish_all(&[(run, None, None)]);
    assert_eq!(e.value("btblocker_bans_active", &[]), 6.0);
    assert_eq!(e.value("btblocker_snapshot_generation", &[]), 17.0);
    assert!(!e.samples.contains_key("btblocker_snapshot_publish_seconds"));
}

#[test]
fn without_bans_no_ban_series_appear() {
    let e = publish_all(&[(run_summary(), None, None)]);
    assert!(e.samples.contains_key("btblocker_rx_packets_total"));
    let ban_series: Vec<&String> = e
        .samples
        .keys()
        .filter(|n| n.starts_with("btblocker_bans_") || n.contains("snapshot"))
        .collect();
    assert!(ban_series.is_empty(), "{ban_series:?}");
}

#[test]
fn install_reports_a_taken_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    match Metrics::install(addr) {
        Err(MetricsError::Listen { addr: a, reason }) => {
            assert_eq!(a, addr);
            assert!(reason.contains("in use"), "{reason}");
            let msg = MetricsError::Listen { addr, reason }.to_string();
            assert!(msg.contains(&addr.to_string()), "{msg}");
        }
        other => panic!("expected Listen error, got {other:?}"),
    }
}

/// The only test that installs the process-global recorder.
#[test]
fn install_serves_the_exposition_over_http() {
    // A port free a moment ago; the exporter binds it synchronously in
    // `install`, so once that returns, connecting succeeds.
    let addr: SocketAddr = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let m = Metrics::install(addr).expect("install");
    assert!(matches!(
        Metrics::install_render_only(),
        Err(MetricsError::AlreadyInstalled)
    ));
    m.publish(&run_summary(), Some(&ban_summary()), None);

    let mut conn = TcpStream::connect(addr).unwrap();
    // A guard against hanging the suite, not a timing assertion.
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("chunked"),
        "body is sent whole: {head}"
    );
    let e = Exposition::parse(body);
    assert_eq!(
        e.value(
            "btblocker_rx_packets_total",
            &[("port", "inside"), ("role", "inside")]
        ),
        1355.0
    );
    assert_eq!(e.value("btblocker_bans_active", &[]), 6.0);
}
