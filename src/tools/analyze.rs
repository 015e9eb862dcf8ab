//! `btblocker analyze`: the worker pipeline (parse → flow → DPI) over capture
//! files, without DPDK. Files are analysed in parallel (rayon), each by its own
//! pipeline, so a file's result does not depend on the others.
use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::config::{FlowsConfig, Mode};
use crate::dataplane::counters::WorkerCounters;
use crate::dataplane::flow::{Endpoint, Flow, FlowVerdict, Retired};
use crate::dataplane::{Burst, EventSink, FlowDetection, Pipeline};
use crate::dpi::{DpiConfig, FlowDpiState, Reasons};
use crate::tools::capture::{self, CaptureError, Damage};
use crate::wire::{LinkType, Transport};

/// Files larger than this get a progress bar when stderr is a terminal.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FlowReport {
    pub proto: &'static str,
    /// The endpoint that sent the flow's first packet.
    pub src: String,
    pub sport: u16,
    pub dst: String,
    pub dport: u16,
    /// "bittorrent", "clean" or "undecided".
    pub verdict: &'static str,
    pub detector: Option<&'static str>,
    pub confidence: Option<&'static str>,
    /// Index (from 0, in file order) of the packet that decided the verdict.
    pub packet_index: Option<u64>,
    pub packets: u64,
    pub bytes: u64,
    /// The reason chain (`Reasons::names`: detectors with evidence, then
    /// facts). For a BitTorrent flow, every piece of evidence its verdict
    /// rests on. For a clean or undecided flow, what DPI saw short of a
    /// verdict (e.g. `mse_envelope` alone, which never condemns): how close
    /// a look-alike came. Empty when nothing was seen.
    pub reasons: Vec<&'static str>,
    /// For a flow DPI decided: what it had inspected by then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_verdict: Option<UntilVerdict>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FileReport {
    pub file: String,
    pub packets: u64,
    pub flows: Vec<FlowReport>,
    /// Hosts that took part in BitTorrent flows (multicast, broadcast and
    /// loopback addresses excluded): those a ban would hit.
    pub banned_hosts: Vec<String>,
    /// Frames whose link type we cannot parse, and malformed frames.
    pub skipped_frames: u64,
    pub malformed_frames: u64,
    /// What was wrong with the file, if anything (see `capture::Damage`):
    /// the packets before damage that stops reading are analysed all the same.
    pub damage: Vec<Damage>,
}

impl FileReport {
    pub fn bittorrent_flows(&self) -> impl Iterator<Item = &FlowReport> {
        self.flows.iter().filter(|f| f.verdict == "bittorrent")
    }
}

/// How much of a flow DPI had seen when it decided: payload packets (both
/// directions) and, for TCP, payload bytes by stream position.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct UntilVerdict {
    pub payload_packets: u32,
    pub payload_bytes: u64,
}

/// What a decided flow's DPI state said as it was given back.
#[derive(Clone, Copy, Debug, Default)]
struct Decided {
    reasons: Reasons,
    until: Option<UntilVerdict>,
}

/// One flow's lifetime: its key and when it started (a later flow of the
/// same 5-tuple is another flow).
type FlowId = (Endpoint, Endpoint, Transport, u64);

fn flow_id(flow: &Flow) -> FlowId {
    (
        flow.key.lo(),
        flow.key.hi(),
        flow.key.proto,
        flow.first_seen_ns,
    )
}

/// Collects flows as they leave the table (offline only: allocation is fine).
#[derive(Default)]
struct Collect {
    retired: Vec<FlowReport>,
    /// The reason chains of decided flows still in the table (their DPI
    /// state went back to the pool when they were decided); only non-empty
    /// chains are kept.
    decided: HashMap<FlowId, Decided>,
}

impl Collect {
    /// `flow`'s reason chain: from its DPI state while it is undecided,
    /// else as it was when decided.
    fn decided(&self, flow: &Flow, dpi: Option<&FlowDpiState>) -> Decided {
        match dpi {
            Some(state) => Decided {
                reasons: state.reasons(),
                until: None,
            },
            None => self
                .decided
                .get(&flow_id(flow))
                .copied()
                .unwrap_or_default(),
        }
    }
}

impl EventSink for Collect {
    fn detection(&mut self, _event: &FlowDetection) {}

    fn flow_decided(&mut self, flow: &Flow, dpi: &FlowDpiState) {
        let [a, b] = dpi.payload_packets;
        let [x, y] = dpi.stream_bytes();
        let until = UntilVerdict {
            payload_packets: u32::from(a) + u32::from(b),
            payload_bytes: u64::from(x) + u64::from(y),
        };
        self.decided.insert(
            flow_id(flow),
            Decided {
                reasons: dpi.reasons(),
                until: Some(until),
            },
        );
    }

    fn flow_retired(&mut self, flow: &Flow, _why: Retired, dpi: Option<&FlowDpiState>) {
        let decided = self.decided(flow, dpi);
        self.decided.remove(&flow_id(flow));
        self.retired.push(flow_report(flow, decided));
    }
}

fn flow_report(flow: &Flow, decided: Decided) -> FlowReport {
    let Decided { reasons, until } = decided;
    let (src, dst) = flow.endpoints();
    let decided = flow.verdict != FlowVerdict::Pending;
    FlowReport {
        proto: flow.key.proto.name(),
        src: src.ip().to_string(),
        sport: src.port,
        dst: dst.ip().to_string(),
        dport: dst.port,
        verdict: match flow.verdict {
            FlowVerdict::BitTorrent => "bittorrent",
            FlowVerdict::Clean => "clean",
            FlowVerdict::Pending => "undecided",
        },
        detector: flow.detection.map(|d| d.detector.name()),
        confidence: flow.detection.map(|d| d.confidence.name()),
        packet_index: decided.then_some(flow.decided_at_packet),
        packets: flow.dirs[0].packets + flow.dirs[1].packets,
        bytes: flow.dirs[0].bytes + flow.dirs[1].bytes,
        reasons: reasons.names().collect(),
        until_verdict: until.filter(|_| flow.verdict != FlowVerdict::Pending),
    }
}

/// Analyses one capture file.
pub fn analyze_file(
    path: &Path,
    flows: &FlowsConfig,
    dpi: &DpiConfig,
    progress: bool,
) -> Result<FileReport, CaptureError> {
    analyze_file_looped(path, flows, dpi, progress, 1)
}

/// Slots per packet the offline flow table gets: flows never outnumber
/// packets, and at one flow per 8 slots (≤ 1 per 8-way bucket on average) a
/// full bucket, hence an eviction that would blur the report, is ~10^-6.
const SLOTS_PER_PACKET: usize = 8;
/// Below this the table costs nothing worth saving.
const MIN_OFFLINE_FLOWS: usize = 1024;
/// Files up to this size are counted before they are analysed (a cheap pass
/// over the page cache) to size the flow table; larger ones are not re-read.
const PRECOUNT_MAX_BYTES: u64 = 64 << 20;
/// No frame that can open a flow takes fewer bytes of a capture file: a
/// 16-byte pcap record header, a 20-byte IPv4 header and an 8-byte UDP header.
const MIN_FLOW_RECORD_BYTES: u64 = 16 + 20 + 8;

/// The flow and DPI settings for a capture of `packets` packets (an upper
/// bound) and `file_bytes` bytes: offline, eviction would only blur the
/// report, so the table holds every flow the capture can have, up to the
/// larger of the config's capacity and 2^20 flows; but it is not bigger than
/// that, because allocating (and zeroing) it is most of a small file's cost.
fn offline_sizing(
    flows: &FlowsConfig,
    dpi: &DpiConfig,
    packets: u64,
    file_bytes: u64,
) -> (FlowsConfig, DpiConfig) {
    let most = flows.capacity.max(1 << 20);
    let wanted = usize::try_from(packets)
        .unwrap_or(usize::MAX)
        .saturating_mul(SLOTS_PER_PACKET)
        .max(MIN_OFFLINE_FLOWS);
    let capacity = wanted.min(most);
    // Flows left undecided by a full DPI pool would blur the report: one
    // entry per flow.
    let flow_cfg = FlowsConfig {
        capacity,
        dpi_pool: capacity,
        ..flows.clone()
    };
    // A known peer takes at least 6 bytes of the capture (a compact peer in
    // a DHT or tracker reply), so one entry per byte is ample.
    let dpi_cfg = DpiConfig {
        known_peer_capacity: dpi
            .known_peer_capacity
            .min(usize::try_from(file_bytes).unwrap_or(usize::MAX).max(1)),
        ..dpi.clone()
    };
    (flow_cfg, dpi_cfg)
}

/// An upper bound on the packets of a capture, for sizing: counted when the
/// file is small, else from its size.
fn packet_bound(path: &Path, file_bytes: u64) -> Result<u64, CaptureError> {
    if file_bytes > PRECOUNT_MAX_BYTES {
        return Ok(file_bytes / MIN_FLOW_RECORD_BYTES + 1);
    }
    Ok(capture::read_frames(path, |_| {})?.frames)
}

/// As `analyze_file`; `loops` > 1 reads the file into memory once and runs
/// the pipeline over it that many times (the same flows come back each pass,
/// timestamps unchanged): a throughput benchmark without disk in the loop.
pub fn analyze_file_looped(
    path: &Path,
    flows: &FlowsConfig,
    dpi: &DpiConfig,
    progress: bool,
    loops: u64,
) -> Result<FileReport, CaptureError> {
    let file_bytes = std::fs::metadata(path).map_or(u64::MAX, |m| m.len());
    let mut frames = Vec::new();
    let (read, packet_bound) = if loops <= 1 {
        (None, packet_bound(path, file_bytes)?)
    } else {
        let read = capture::read_frames(path, |f| {
            frames.push((f.dlt, f.ts_ns, f.data.to_vec()));
        })?;
        (Some(read), frames.len() as u64)
    };
    let (flow_cfg, dpi_cfg) = offline_sizing(flows, dpi, packet_bound, file_bytes);
    let counters = Arc::new(WorkerCounters::default());
    let mut pipeline = Pipeline::new(
        Arc::clone(&counters),
        Mode::Monitor,
        &flow_cfg,
        &dpi_cfg,
        Collect::default(),
    )
    .with_flow_counters();
    let bar = progress_bar(file_bytes, path, progress);
    let mut skipped = 0u64;
    let mut process = |dlt: u32, ts_ns: u64, data: &[u8]| match LinkType::from_dlt(dlt) {
        Some(link) => {
            pipeline.process_link(link, data, &Burst::offline(ts_ns));
        }
        None => skipped += 1,
    };
    let (packets, damage) = match read {
        None => {
            let read = capture::read_frames(path, |frame| {
                if let Some(bar) = &bar {
                    bar.inc(frame.data.len() as u64 + 16);
                }
                process(frame.dlt, frame.ts_ns, frame.data);
            })?;
            (read.frames, read.damage)
        }
        Some(read) => {
            for _ in 0..loops {
                for (dlt, ts_ns, data) in &frames {
                    process(*dlt, *ts_ns, data);
                }
            }
            (read.frames * loops, read.damage)
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let (sink, pool) = (pipeline.sink(), pipeline.dpi_pool());
    let mut flows: Vec<FlowReport> = pipeline
        .flows()
        .iter()
        .map(|f| flow_report(f, sink.decided(f, pool.get(f.dpi))))
        .collect();
    flows.extend(pipeline.into_sink().retired);
    flows.sort_by_key(|f| (f.packet_index.is_none(), f.packet_index));
    let banned: BTreeSet<IpAddr> = flows
        .iter()
        .filter(|f| f.verdict == "bittorrent")
        .flat_map(|f| [f.src.parse::<IpAddr>(), f.dst.parse::<IpAddr>()])
        .filter_map(Result::ok)
        .filter(|ip| crate::ban::keeper::bannable(*ip))
        .collect();
    Ok(FileReport {
        file: path.display().to_string(),
        packets,
        flows,
        banned_hosts: banned.iter().map(IpAddr::to_string).collect(),
        skipped_frames: skipped,
        malformed_frames: counters.parse.errors_total(),
        damage,
    })
}

fn progress_bar(size: u64, path: &Path, wanted: bool) -> Option<indicatif::ProgressBar> {
    if !wanted || size < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(size);
    bar.set_message(path.display().to_string());
    Some(bar)
}

/// Analyses every file (in parallel), keeping the input order in the result.
pub fn analyze_files(
    paths: &[PathBuf],
    flows: &FlowsConfig,
    dpi: &DpiConfig,
    loops: u64,
) -> Vec<Result<FileReport, CaptureError>> {
    let progress = paths.len() == 1 || rayon::current_num_threads() == 1;
    paths
        .par_iter()
        .map(|p| analyze_file_looped(p, flows, dpi, progress, loops))
        .collect()
}

/// The human-readable report of one file.
pub fn render_text(r: &FileReport) -> String {
    use std::fmt::Write as _;
    let bt: Vec<&FlowReport> = r.bittorrent_flows().collect();
    let mut s = format!(
        "{}: {} packets, {} flows, {} BitTorrent\n",
        r.file,
        r.packets,
        r.flows.len(),
        bt.len()
    );
    for f in &bt {
        let _ = write!(
            s,
            "  BitTorrent {} {}:{} -> {}:{}  {} ({}) at packet {}",
            f.proto.to_uppercase(),
            f.src,
            f.sport,
            f.dst,
            f.dport,
            f.detector.unwrap_or("?"),
            f.confidence.unwrap_or("?"),
            f.packet_index.map_or("-".to_string(), |i| i.to_string())
        );
        if !f.reasons.is_empty() {
            let _ = write!(s, " [reasons: {}]", f.reasons.join(", "));
        }
        s.push('\n');
    }
    for d in &r.damage {
        let _ = writeln!(s, "  damage: {}", describe_damage(d));
    }
    if r.skipped_frames > 0 {
        let _ = writeln!(
            s,
            "  {} frames of an unsupported link type skipped",
            r.skipped_frames
        );
    }
    if r.malformed_frames > 0 {
        let _ = writeln!(s, "  {} malformed frames", r.malformed_frames);
    }
    if r.banned_hosts.is_empty() {
        s.push_str("  hosts to ban: none\n");
    } else {
        let _ = writeln!(
            s,
            "  hosts to ban ({}): {}",
            r.banned_hosts.len(),
            r.banned_hosts.join(", ")
        );
    }
    s
}

/// One line about a file's damage: what, where, how often, and whether
/// reading stopped there.
pub fn describe_damage(d: &Damage) -> String {
    let kind = serde_json::to_value(d.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut s = format!(
        "{kind} at record {} (byte {}): {}",
        d.record, d.offset, d.detail
    );
    if d.count > 1 {
        s.push_str(&format!(" ({} records)", d.count));
    }
    if d.kind.stops_reading() {
        s.push_str("; reading stopped there, the packets before it are analysed");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    /// Ethernet + IPv4 + TCP (PSH|ACK) from 10.0.0.1:`sport` to 10.0.0.2:8000.
    fn tcp_frame(sport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        crate::dataplane::pipeline::tests::tcp_frame_to(sport, 8000, seq, payload)
    }

    /// Flows that leave the table mid-capture keep their reason chain: an
    /// undecided one from its DPI state, a decided one (clean or
    /// BitTorrent) from what was kept when it was decided; nothing is kept
    /// once they are reported.
    #[test]
    fn retired_flows_keep_their_reason_chain() {
        let flows = FlowsConfig {
            capacity: 64,
            tcp_idle_timeout_s: 10,
            ..FlowsConfig::default()
        };
        let dpi = DpiConfig {
            max_payload_packets: 2,
            ..DpiConfig::default()
        };
        let mut p = Pipeline::new(
            Arc::default(),
            Mode::Monitor,
            &flows,
            &dpi,
            Collect::default(),
        );
        let get = b"GET / HTTP/1.1\r\nUser-Agent: Transmission/3.00\r\n\r\n";
        let mut handshake = b"\x13BitTorrent protocol".to_vec();
        handshake.extend_from_slice(&[0; 8]);
        handshake.extend_from_slice(&[0xab; 20]);
        handshake.extend_from_slice(b"-TR3000-abcdefghijkl");
        let at = |s: u64| Burst::offline(s * SEC);
        let mut send = |sport: u16, seq: u32, payload: &[u8], s: u64| {
            p.process_link(LinkType::Ethernet, &tcp_frame(sport, seq, payload), &at(s));
        };
        send(40000, 1, get, 1); // undecided
        send(40001, 1, get, 1); // clean at its second payload
        send(40001, 1 + get.len() as u32, b"x", 1);
        send(40002, 1, &handshake, 1); // BitTorrent
        send(40003, 1, b"hello", 1); // undecided, nothing seen
                                     // Their 5-tuples 30 s later (bare ACKs): each old flow retires.
        for sport in 40000..40004 {
            send(sport, 9, b"", 30);
        }
        let sink = p.into_sink();
        assert!(sink.decided.is_empty());
        let mut got: Vec<_> = sink
            .retired
            .iter()
            .map(|f| (f.sport, f.verdict, f.reasons.clone()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                (40000, "undecided", vec!["http_client"]),
                (40001, "clean", vec!["http_client"]),
                (40002, "bittorrent", vec!["peer_wire_handshake"]),
                (40003, "undecided", vec![]),
            ]
        );
    }
}
