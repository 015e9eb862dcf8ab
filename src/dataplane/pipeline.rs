//! The per-packet pipeline a worker runs on each burst:
//! parse → ban check → flow → DPI → verdict. It works on "a frame as bytes", so
//! the DPDK workers, the offline `analyze` command and the tests run the same
//! code. Read `process_parsed` top to bottom to see where a packet goes.
use std::sync::Arc;

use super::sink::{EventSink, NoEvents};
use crate::ban::{BanKey, PayloadPrefix, Snapshot};
use crate::config::{BanAction, FlowsConfig, Mode, PortRole};
use crate::dataplane::counters::WorkerCounters;
use crate::dataplane::counters::MAX_PORTS;
use crate::dataplane::dpi_pool::{DpiPool, DpiRef};
use crate::dataplane::flow::{
    BanStamp, Endpoint, Flow, FlowKey, FlowTable, FlowVerdict, Retired, HOT_BYTES, SLOT_BYTES,
};
use crate::dataplane::live_settings::{LiveSettings, WorkerSettings};
use crate::dataplane::stage_timing::{Lap, Stage};
use crate::dpi::{
    Detection, Direction, DpiConfig, DpiEngine, FlowDpiState, Inspection, PayloadCtx, Reasons,
};
use crate::wire::{self, Fragment, LinkType, Packet, Parsed, Transport, L4};

const NS_PER_S: u64 = 1_000_000_000;

/// Live flow slots beyond which workers look flows up ahead: a quarter of a
/// typical server L3, so a table this big mostly misses the caches.
const FLOW_LOOKAHEAD_ABOVE_BYTES: usize = 8 << 20;

/// What happens to a packet after the pipeline has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    Drop,
}

/// A flow judged BitTorrent, as reported to the event sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowDetection {
    pub proto: Transport,
    /// The endpoint that sent the flow's first packet, and its peer.
    pub originator: Endpoint,
    pub responder: Endpoint,
    pub detection: Detection,
    /// Every piece of evidence the verdict rests on (the flow's reason
    /// chain, read from its DPI state as it was decided).
    pub reasons: Reasons,
    /// Index (from 0) of the deciding packet among those this pipeline saw.
    pub packet_index: u64,
    pub ts_ns: u64,
    /// Wall-clock time of the burst, unix ms.
    pub unix_ms: u64,
    /// Source of the deciding packet, and whether it arrived on an inside port
    /// (so it is the subscriber's side unless `networks.inside` says otherwise).
    pub deciding_src: Endpoint,
    pub deciding_src_inside: bool,
    /// Index of the port the deciding packet arrived on.
    pub port: u8,
    /// The first bytes of the deciding packet's L4 payload (as many as
    /// `log.payload_bytes` asks for; empty by default).
    pub payload: PayloadPrefix,
}

/// What a worker knows once per burst: the clock and the ban snapshot.
pub struct Burst<'a> {
    /// Monotonic time (flow timeouts).
    pub now_ns: u64,
    /// Wall-clock time (ban expiry, events).
    pub unix_ms: u64,
    /// The ban snapshot loaded for this burst; `None` offline.
    pub bans: Option<&'a Snapshot>,
}

impl Burst<'_> {
    /// A burst with no bans (offline analysis, tests), at capture time `ts_ns`.
    pub fn offline(ts_ns: u64) -> Burst<'static> {
        Burst {
            now_ns: ts_ns,
            unix_ms: ts_ns / 1_000_000,
            bans: None,
        }
    }
}

/// A burst's ban check: the snapshot, and the stamp a flow checked against
/// it carries.
#[derive(Clone, Copy)]
struct BanCheck<'a> {
    snapshot: &'a Snapshot,
    stamp: BanStamp,
    unix_ms: u64,
}

impl BanCheck<'_> {
    /// Is either end of `packet` banned?
    #[inline(always)]
    fn either_banned(&self, packet: &Packet<'_>) -> bool {
        self.snapshot.contains_either(
            &BanKey::from(packet.src),
            &BanKey::from(packet.dst),
            self.unix_ms,
        )
    }
}

/// A host of the packet is banned: it is dropped.
struct Banned;

/// One worker's pipeline state. Owned by exactly one worker; never shared.
pub struct Pipeline<S: EventSink = NoEvents> {
    counters: Arc<WorkerCounters>,
    mode: Mode,
    flows: FlowTable,
    /// The DPI state of the undecided flows of `flows`.
    dpi_pool: DpiPool,
    dpi: DpiEngine,
    sink: S,
    packets_seen: u64,
    /// Role of each port, by index (which side a packet came from).
    roles: [PortRole; MAX_PORTS],
    action: BanAction,
    /// Payload bytes copied into each detection event.
    payload_bytes: u8,
    /// Where a reload's settings come from (the DPDK workers); `None` offline.
    live: Option<Arc<LiveSettings>>,
    /// Whether each flow's packets and payload bytes are counted
    /// (`Flow::dirs`): only offline reports read them, and on the dataplane
    /// they would cost every packet of a known flow a second cache line of
    /// its slot.
    flow_counters: bool,
}

impl<S: EventSink> Pipeline<S> {
    pub fn new(
        counters: Arc<WorkerCounters>,
        mode: Mode,
        flow: &FlowsConfig,
        dpi: &DpiConfig,
        sink: S,
    ) -> Self {
        // The seed only needs to differ between runs and workers.
        let seed = Arc::as_ptr(&counters) as u64 ^ u64::from(std::process::id()).rotate_left(32);
        let flows = FlowTable::new(
            flow.capacity,
            flow.tcp_idle_timeout_s * NS_PER_S,
            flow.udp_idle_timeout_s * NS_PER_S,
            seed,
        );
        // More entries than slots could never be used.
        let dpi_pool = DpiPool::new(flow.dpi_pool.min(flows.capacity()));
        Pipeline {
            counters,
            mode,
            flows,
            dpi_pool,
            dpi: DpiEngine::new(dpi),
            sink,
            packets_seen: 0,
            roles: [PortRole::Inside; MAX_PORTS],
            action: BanAction::BanHost,
            payload_bytes: 0,
            live: None,
            flow_counters: false,
        }
    }

    /// Counts each flow's packets and payload bytes per direction
    /// (`Flow::dirs`), for a report of the flows (`analyze`).
    pub fn with_flow_counters(mut self) -> Self {
        self.flow_counters = true;
        self
    }

    /// Sets each port's role (by index) and what enforcement drops.
    pub fn with_enforcement(mut self, roles: &[PortRole], action: BanAction) -> Self {
        for (slot, role) in self.roles.iter_mut().zip(roles) {
            *slot = *role;
        }
        self.action = action;
        self
    }

    /// Takes the detector switches, the action and the payload prefix length
    /// from `live` now and at every [`Pipeline::start_burst`], so a reload
    /// reaches this worker from its next burst on.
    pub fn with_live_settings(mut self, live: Arc<LiveSettings>) -> Self {
        self.apply(live.load());
        self.live = Some(live);
        self
    }

    /// Called once per burst, before its packets: picks up a reload. Three
    /// relaxed atomic loads; no lock, no allocation.
    #[inline]
    pub fn start_burst(&mut self) {
        if let Some(live) = &self.live {
            let settings = live.load();
            self.apply(settings);
        }
    }

    #[inline]
    fn apply(&mut self, s: WorkerSettings) {
        self.action = s.action;
        self.payload_bytes = s.payload_bytes;
        self.dpi.set_detectors(s.detectors);
    }

    pub fn counters(&self) -> &WorkerCounters {
        &self.counters
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    pub fn dpi_pool(&self) -> &DpiPool {
        &self.dpi_pool
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn into_sink(self) -> S {
        self.sink
    }

    /// Runs one received Ethernet frame through the stages and says what to do
    /// with it. `port` is the index of the port it arrived on; `frame` is the
    /// packet's first segment (every header we parse lives there) and `wire_len`
    /// its whole length over all segments.
    #[inline]
    pub fn process(
        &mut self,
        port: usize,
        frame: &[u8],
        wire_len: u32,
        burst: &Burst<'_>,
    ) -> Verdict {
        self.process_hashed(port, frame, wire_len, None, burst)
    }

    /// `process` with the flow hash the NIC computed (`nic_hash`, its
    /// symmetric-Toeplitz RSS hash), which then indexes the flow table in
    /// place of the software hash ([`flow_hash_from_nic`]). The caller
    /// supplies it for every packet of a flow or for none: one flow's
    /// packets must all be hashed the same way, or its two directions would
    /// land in two buckets.
    #[inline]
    pub fn process_hashed(
        &mut self,
        port: usize,
        frame: &[u8],
        wire_len: u32,
        nic_hash: Option<u32>,
        burst: &Burst<'_>,
    ) -> Verdict {
        let mut lap = Lap::start();
        self.count_rx(port, wire_len as usize);
        let parsed = wire::parse_ethernet(frame);
        lap.lap(&self.counters.stages, Stage::Parse);
        self.process_parsed(port, parsed, nic_hash, burst, &mut lap)
    }

    /// Whether a worker should look its flows up ahead (`flow_lookahead_*`):
    /// only when the live flows far outgrow the caches. Below that the two
    /// steps cost more than they save (+20-30 cycles a packet on the pipeline
    /// bench's cache-resident tables; BENCHMARKS.md).
    #[inline]
    pub fn wants_flow_lookahead(&self) -> bool {
        self.flows.live_bytes() > FLOW_LOOKAHEAD_ABOVE_BYTES
    }

    /// Lookahead, step 1 (before `process` sees `frame`): its
    /// flow key's hash, with the bucket's metadata line being prefetched;
    /// `None` when the frame has no flow.
    /// With the NIC's hash (`nic_hash`) the frame is not even read.
    #[inline]
    pub fn flow_lookahead_bucket(
        &self,
        frame: &[u8],
        nic_hash: Option<u32>,
        prefetch: impl Fn(*const u8),
    ) -> Option<u64> {
        if let Some(h) = nic_hash {
            let hash = flow_hash_from_nic(h);
            prefetch(self.flows.bucket_line(hash));
            return Some(hash);
        }
        let Ok(Parsed::Ip(p)) = wire::parse_ethernet(frame) else {
            return None;
        };
        let (proto, sport, dport) = p.l4.transport_ports()?;
        let (key, _) = FlowKey::of(
            proto,
            Endpoint::at(p.src, sport),
            Endpoint::at(p.dst, dport),
        );
        let hash = self.flows.hash(&key);
        prefetch(self.flows.bucket_line(hash));
        Some(hash)
    }

    /// Lookahead, step 2 (once step 1's line has had time to arrive): the
    /// flow's slot, being prefetched: the lines a packet of a known flow
    /// touches, its first ([`HOT_BYTES`]: key, timestamps, ban stamp,
    /// verdict), and the second too where the flow's packets are counted.
    /// (A line the lookup touches but nobody prefetched is a DRAM miss per
    /// packet on the many-flows set: BENCHMARKS.md.)
    #[inline]
    pub fn flow_lookahead_slot(&self, hash: u64, prefetch: impl Fn(*const u8)) {
        if let Some(slot) = self.flows.slot_line(hash) {
            let bytes = if self.flow_counters {
                SLOT_BYTES
            } else {
                HOT_BYTES
            };
            for offset in (0..bytes).step_by(64) {
                prefetch(slot.wrapping_add(offset));
            }
        }
    }

    /// As `process`, for a frame of any supported link type (offline captures).
    pub fn process_link(&mut self, link: LinkType, frame: &[u8], burst: &Burst<'_>) -> Verdict {
        let mut lap = Lap::start();
        self.count_rx(0, frame.len());
        let parsed = wire::parse_link(link, frame);
        lap.lap(&self.counters.stages, Stage::Parse);
        self.process_parsed(0, parsed, None, burst, &mut lap)
    }

    #[inline(always)]
    fn count_rx(&self, port: usize, len: usize) {
        let pc = &self.counters.ports[port];
        pc.rx_packets.inc();
        pc.rx_bytes.add(len as u64);
    }

    #[inline]
    fn process_parsed(
        &mut self,
        port: usize,
        parsed: Result<Parsed<'_>, wire::ParseError>,
        nic_hash: Option<u32>,
        burst: &Burst<'_>,
        lap: &mut Lap,
    ) -> Verdict {
        let index = self.packets_seen;
        self.packets_seen += 1;
        let packet = match parsed {
            Ok(Parsed::Ip(p)) => p,
            Ok(Parsed::NonIp { .. }) => {
                self.counters.parse.non_ip.inc();
                return Verdict::Forward;
            }
            Err(e) => {
                // Malformed frames are counted and forwarded: we are a bump in
                // the wire, not a firewall for broken packets.
                self.counters.parse.errors[e.index()].inc();
                return Verdict::Forward;
            }
        };
        self.count_parsed(&packet);
        let bans = self.ban_check(burst);
        let Some(ports) = packet.l4.transport_ports() else {
            // No flow to remember a check in: each such packet is checked.
            let banned = bans.is_some_and(|b| b.either_banned(&packet));
            lap.lap(&self.counters.stages, Stage::BanCheck);
            return self.host_verdict(banned);
        };
        match self.track_and_inspect(port, &packet, ports, bans, nic_hash, index, burst, lap) {
            Err(Banned) => self.host_verdict(true),
            Ok(FlowVerdict::BitTorrent) if self.action != BanAction::LogOnly => {
                self.counters.bans.dropped_bittorrent_flow.inc();
                Verdict::Drop
            }
            Ok(_) => Verdict::Forward,
        }
    }

    /// Drops (and counts) the packet of a banned host.
    #[inline(always)]
    fn host_verdict(&self, banned: bool) -> Verdict {
        if banned {
            self.counters.bans.dropped_banned_host.inc();
            Verdict::Drop
        } else {
            Verdict::Forward
        }
    }

    /// This burst's ban check: `None` when it can drop nothing (offline,
    /// an empty snapshot, or an action other than `ban_host`).
    #[inline(always)]
    fn ban_check<'b>(&self, burst: &Burst<'b>) -> Option<BanCheck<'b>> {
        match burst.bans {
            Some(snapshot) if self.action == BanAction::BanHost && !snapshot.is_empty() => {
                Some(BanCheck {
                    snapshot,
                    stamp: BanStamp::of_generation(snapshot.generation()),
                    unix_ms: burst.unix_ms,
                })
            }
            _ => None,
        }
    }

    /// Flow lookup with the ban check, then DPI while the flow is
    /// undecided; records the verdict DPI reaches and reports a BitTorrent
    /// one to the sink. `Err(Banned)` when a host of the packet is banned.
    ///
    /// A flow's hosts are checked once per ban snapshot, not per packet:
    /// before a packet may create the flow (so a banned host takes no slot
    /// and evicts nothing), and again at the flow's first packet under each
    /// newer snapshot (`Flow::ban_checked`). Bans only arrive with a new
    /// snapshot, so a flow checked under the current one needs no other
    /// look; a ban that expires inside a snapshot's life ends with no flow
    /// to skip its check, since a banned host's packets never make one.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn track_and_inspect(
        &mut self,
        port: usize,
        packet: &Packet<'_>,
        (transport, sport, dport): (Transport, u16, u16),
        bans: Option<BanCheck<'_>>,
        nic_hash: Option<u32>,
        index: u64,
        burst: &Burst<'_>,
        lap: &mut Lap,
    ) -> Result<FlowVerdict, Banned> {
        let now_ns = burst.now_ns;
        let payload = packet.l4.payload();
        let src = Endpoint::at(packet.src, sport);
        let dst = Endpoint::at(packet.dst, dport);
        let on_retire = retire(&self.counters, &mut self.sink, &mut self.dpi_pool);
        let (key, src_is_lo) = FlowKey::of(transport, src, dst);
        let hash = match nic_hash {
            // A NIC hashes a fragment by its addresses only (RTE_ETH_RSS_FRAG_*),
            // not as the flow's other packets: a first fragment takes the
            // software hash (rare; its flow may then have a second entry).
            Some(h) if packet.fragment == Fragment::None => flow_hash_from_nic(h),
            _ => self.flows.hash(&key),
        };
        let admit = || !bans.is_some_and(|b| b.either_banned(packet));
        let (flow, dir, created) = self
            .flows
            .lookup_admitted(&key, src_is_lo, hash, now_ns, on_retire, admit)
            .ok_or(Banned)?;
        if let Some(b) = bans {
            if flow.ban_checked != b.stamp {
                // A flow just admitted was checked by `admit`.
                if !created && b.either_banned(packet) {
                    return Err(Banned);
                }
                flow.ban_checked = b.stamp;
            }
        }
        if created {
            self.counters.flows.created.inc();
        }
        if self.flow_counters {
            let d = &mut flow.dirs[dir.index()];
            d.packets += 1;
            d.bytes += payload.len() as u64;
        }
        lap.lap(&self.counters.stages, Stage::Flow);
        // Clean flows take the fast path; so do BitTorrent flows, except that
        // their UDP payloads (DHT responses) may name more peers to remember.
        let verdict = flow.verdict;
        if payload.is_empty()
            || verdict == FlowVerdict::Clean
            || (verdict == FlowVerdict::BitTorrent && transport != Transport::Udp)
        {
            return Ok(verdict);
        }
        let ctx = payload_ctx(packet, transport, sport, dport, dir);
        if verdict == FlowVerdict::BitTorrent {
            self.dpi.learn_from_bittorrent_flow(&ctx, now_ns);
            lap.lap(&self.counters.stages, Stage::Dpi);
            return Ok(verdict);
        }
        let Some(state) = dpi_state(flow, &mut self.dpi_pool, &self.counters) else {
            return Ok(FlowVerdict::Pending); // the pool was empty: left undecided
        };
        self.counters.flows.inspected_packets.inc();
        let inspection = self.dpi.inspect(state, &ctx, now_ns);
        lap.lap(&self.counters.stages, Stage::Dpi);
        let decided = settle(
            flow,
            &mut self.dpi_pool,
            &mut self.sink,
            inspection,
            index,
            &self.counters,
        );
        let Some((detection, reasons)) = decided else {
            return Ok(flow.verdict);
        };
        let endpoints = flow.endpoints();
        let event = self.detection_event(port, &ctx, endpoints, (detection, reasons), index, burst);
        self.sink.detection(&event);
        Ok(FlowVerdict::BitTorrent)
    }

    /// What the event sink hears of a flow judged BitTorrent by `ctx`'s packet.
    fn detection_event(
        &self,
        port: usize,
        ctx: &PayloadCtx<'_>,
        (originator, responder): (Endpoint, Endpoint),
        (detection, reasons): (Detection, Reasons),
        index: u64,
        burst: &Burst<'_>,
    ) -> FlowDetection {
        FlowDetection {
            proto: ctx.transport,
            originator,
            responder,
            detection,
            reasons,
            packet_index: index,
            ts_ns: burst.now_ns,
            unix_ms: burst.unix_ms,
            deciding_src: Endpoint::new(ctx.src, ctx.src_port),
            deciding_src_inside: self.roles[port] == PortRole::Inside,
            port: port as u8,
            payload: PayloadPrefix::copy_from(ctx.payload, usize::from(self.payload_bytes)),
        }
    }

    fn count_parsed(&self, packet: &Packet<'_>) {
        let c = &self.counters.parse;
        if packet.vlan_tags > 0 {
            c.vlan.inc();
        }
        if packet.ipv6 {
            c.ipv6.inc();
        } else {
            c.ipv4.inc();
        }
        if packet.fragment != Fragment::None {
            c.fragments.inc();
        }
        match packet.l4 {
            L4::Tcp { .. } => c.tcp.inc(),
            L4::Udp { .. } => c.udp.inc(),
            L4::Other { .. } => c.other_l4.inc(),
        }
    }
}

/// The flow-table hash (bucket index from its low bits, tag from its high
/// 32) made from the NIC's 32-bit RSS hash: one multiply by an odd constant,
/// rotated so the index bits are product bits 32 and up (each depends on
/// every bit of `rss`) and the tag is the product's low half (a bijection of
/// `rss`). Cost: one multiply and a rotate, in place of hashing the key.
/// It adds no entropy, so `rss` must have its full 32 bits: the symmetric
/// Toeplitz hash *function* has, a plain Toeplitz hash with the symmetric
/// 0x6d5a *key* has 16 (65,536 values: a large table would use a fraction of
/// its buckets), so `run` supplies only the former (src/dpdk/rss.rs). Flows
/// that share a hash share bucket and tag; the full key is always compared,
/// so that costs a slot read, never a wrong flow.
#[inline(always)]
pub fn flow_hash_from_nic(rss: u32) -> u64 {
    (u64::from(rss).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(32)
}

/// What happens to each live flow that leaves the table to make room or by
/// age: counted by why, told to the sink (with its DPI state, if undecided)
/// and its DPI pool entry given back.
#[inline]
fn retire<'a, S: EventSink>(
    counters: &'a WorkerCounters,
    sink: &'a mut S,
    pool: &'a mut DpiPool,
) -> impl FnMut(&Flow, Retired) + 'a {
    move |f, why| {
        match why {
            Retired::Expired => counters.flows.expired.inc(),
            Retired::Evicted => counters.flows.evicted.inc(),
        }
        sink.flow_retired(f, why, pool.get(f.dpi));
        pool.give_back(f.dpi);
    }
}

/// The DPI state of an undecided flow: its pool entry, taken at its first
/// inspected payload. `None` when the pool was empty then (counted once; the
/// flow is never inspected and stays undecided).
#[inline]
fn dpi_state<'p>(
    flow: &mut Flow,
    pool: &'p mut DpiPool,
    counters: &WorkerCounters,
) -> Option<&'p mut FlowDpiState> {
    if flow.dpi == DpiRef::NONE {
        flow.dpi = pool.take().unwrap_or_else(|| {
            counters.flows.dpi_pool_exhausted.inc();
            DpiRef::REFUSED
        });
    }
    pool.get_mut(flow.dpi)
}

/// The packet as DPI sees it, in direction `dir` of its flow.
#[inline]
fn payload_ctx<'a>(
    packet: &Packet<'a>,
    transport: Transport,
    sport: u16,
    dport: u16,
    direction: Direction,
) -> PayloadCtx<'a> {
    PayloadCtx {
        transport,
        direction,
        src: packet.src_ip(),
        src_port: sport,
        dst: packet.dst_ip(),
        dst_port: dport,
        tcp_flags: match packet.l4 {
            L4::Tcp { flags, .. } => flags,
            _ => 0,
        },
        tcp_seq: match packet.l4 {
            L4::Tcp { seq, .. } => seq,
            _ => 0,
        },
        tcp_ack: match packet.l4 {
            L4::Tcp { ack, .. } => ack,
            _ => 0,
        },
        payload: packet.l4.payload(),
    }
}

/// Records DPI's answer on the flow once it is a verdict, and counts it; a
/// decided flow is shown to the sink with its DPI state, which then goes back
/// to the pool. Returns the detection and its reason chain when the flow was
/// just judged BitTorrent (the chain is read here: the entry is reused after).
#[inline]
fn settle<S: EventSink>(
    flow: &mut Flow,
    pool: &mut DpiPool,
    sink: &mut S,
    inspection: Inspection,
    index: u64,
    counters: &WorkerCounters,
) -> Option<(Detection, Reasons)> {
    let detection = match inspection {
        Inspection::Pending => return None,
        Inspection::Clean => {
            flow.verdict = FlowVerdict::Clean;
            counters.flows.judged_clean.inc();
            None
        }
        Inspection::BitTorrent(detection) => {
            flow.verdict = FlowVerdict::BitTorrent;
            flow.detection = Some(detection);
            counters.flows.judged_bittorrent.inc();
            counters.flows.by_detector[detection.detector.index()].inc();
            Some(detection)
        }
    };
    flow.decided_at_packet = index;
    let mut reasons = Reasons::NONE;
    if let Some(state) = pool.get_mut(flow.dpi) {
        if detection.is_some() {
            reasons = state.reasons();
        }
        sink.flow_decided(flow, state);
    }
    pool.give_back(flow.dpi);
    flow.dpi = DpiRef::NONE;
    detection.map(|d| (d, reasons))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dpi::{DetectorId, DetectorSwitches};

    /// Keeps every detection.
    #[derive(Default)]
    struct Recorder(Vec<FlowDetection>);

    impl EventSink for Recorder {
        fn detection(&mut self, event: &FlowDetection) {
            self.0.push(*event);
        }
    }

    /// A BitTorrent handshake (BEP 3): pstrlen, pstr, reserved, info hash, peer id.
    fn handshake() -> Vec<u8> {
        let mut h = b"\x13BitTorrent protocol".to_vec();
        h.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        h.extend_from_slice(&[0xab; 20]);
        h.extend_from_slice(b"-qB4650-abcdefghijkl");
        h
    }

    /// Ethernet + IPv4 + TCP (PSH|ACK) from 10.0.0.1:`sport` to 10.0.0.2:6881.
    fn tcp_frame(sport: u16, payload: &[u8]) -> Vec<u8> {
        tcp_frame_to(sport, 6881, 1, payload)
    }

    /// Ethernet + IPv4 + TCP (PSH|ACK, sequence number `seq`) from
    /// 10.0.0.1:`sport` to 10.0.0.2:`dport`.
    pub(crate) fn tcp_frame_to(sport: u16, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (20 + 20 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0]);
        f.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// A pool of 2 DPI states and 3 concurrent undecided flows: the third is
    /// refused once (counted), never inspected, and stays undecided; entries
    /// come back when a flow is decided or leaves the table.
    #[test]
    fn a_full_dpi_pool_leaves_the_next_flow_undecided() {
        let mut p = Pipeline::new(
            Arc::default(),
            Mode::Inline,
            &FlowsConfig {
                capacity: 64,
                tcp_idle_timeout_s: 10,
                dpi_pool: 2,
                ..FlowsConfig::default()
            },
            &DpiConfig {
                max_payload_packets: 2,
                ..DpiConfig::default()
            },
            Recorder::default(),
        );
        let at = |s: u64| Burst::offline(s * NS_PER_S);
        let verdict_of = |p: &Pipeline<Recorder>, sport: u16| {
            let flow = p.flows().iter().find(|f| f.endpoints().0.port == sport);
            flow.map(|f| (f.verdict, f.dpi))
        };
        let (a, b, c) = (50_000, 50_001, 50_002);
        for sport in [a, b, c] {
            p.process(0, &tcp_frame(sport, b"hello"), 0, &at(1));
        }
        let flows = &p.counters().flows;
        assert_eq!(flows.dpi_pool_exhausted.get(), 1);
        assert_eq!(flows.inspected_packets.get(), 2);
        assert_eq!(p.dpi_pool().in_use(), 2);
        assert_eq!(
            verdict_of(&p, c),
            Some((FlowVerdict::Pending, DpiRef::REFUSED))
        );

        // The refused flow is not inspected, nor counted again.
        p.process(0, &tcp_frame(c, b"hello"), 0, &at(2));
        p.process(0, &tcp_frame(c, b"hello"), 0, &at(2));
        let flows = &p.counters().flows;
        assert_eq!(flows.dpi_pool_exhausted.get(), 1);
        assert_eq!(flows.inspected_packets.get(), 2);
        assert_eq!(
            verdict_of(&p, c),
            Some((FlowVerdict::Pending, DpiRef::REFUSED))
        );

        // `a`'s second payload (none back) decides it clean: its entry returns.
        p.process(0, &tcp_frame(a, b"hello"), 0, &at(3));
        assert_eq!(verdict_of(&p, a), Some((FlowVerdict::Clean, DpiRef::NONE)));
        assert_eq!(p.dpi_pool().in_use(), 1);
        assert_eq!(p.counters().flows.judged_clean.get(), 1);

        // `b` idles past the TCP timeout: a bare ACK of its 5-tuple retires it
        // (and starts a flow with no payload, so no entry): the pool is empty.
        p.process(0, &tcp_frame(b, b""), 0, &at(20));
        assert_eq!(p.counters().flows.expired.get(), 1);
        assert_eq!(p.dpi_pool().in_use(), 0);

        // Both entries serve new flows; the refusal count is unchanged.
        for sport in [50_010, 50_011] {
            p.process(0, &tcp_frame(sport, b"hello"), 0, &at(21));
        }
        assert_eq!(p.dpi_pool().in_use(), 2);
        assert_eq!(p.counters().flows.dpi_pool_exhausted.get(), 1);
        assert_eq!(p.counters().flows.inspected_packets.get(), 5);
        assert_eq!(p.counters().flows.judged_bittorrent.get(), 0);
    }

    fn pipeline(capacity: usize) -> Pipeline<Recorder> {
        Pipeline::new(
            Arc::default(),
            Mode::Inline,
            &FlowsConfig {
                capacity,
                ..FlowsConfig::default()
            },
            &DpiConfig::default(),
            Recorder::default(),
        )
        .with_flow_counters()
    }

    /// The reply to `tcp_frame(sport, ..)`: 10.0.0.2:6881 to 10.0.0.1:`sport`.
    fn tcp_reply(sport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = tcp_frame(sport, payload);
        f[26..30].copy_from_slice(&[10, 0, 0, 2]);
        f[30..34].copy_from_slice(&[10, 0, 0, 1]);
        f[34..36].copy_from_slice(&6881u16.to_be_bytes());
        f[36..38].copy_from_slice(&sport.to_be_bytes());
        f
    }

    /// With the NIC's hash, both directions of a flow (which a symmetric key
    /// hashes alike) are one flow; two flows that share a hash (and so bucket
    /// and tag) stay two, told apart by their keys.
    #[test]
    fn a_supplied_hash_indexes_the_flow_table_and_keys_still_decide() {
        let mut p = pipeline(64);
        let burst = Burst::offline(1_000_000_000);
        let same = Some(0xdead_beef);
        p.process_hashed(0, &tcp_frame(50000, b"hello"), 0, same, &burst);
        p.process_hashed(0, &tcp_reply(50000, b"world"), 0, same, &burst);
        assert_eq!(p.flows().active(), 1);
        p.process_hashed(0, &tcp_frame(50001, b"other"), 0, same, &burst);
        p.process_hashed(0, &tcp_reply(50001, b"flow"), 0, same, &burst);
        assert_eq!(p.flows().active(), 2);
        let mut flows: Vec<_> = p
            .flows()
            .iter()
            .map(|f| (f.endpoints().0.port, f.dirs[0].packets, f.dirs[1].packets))
            .collect();
        flows.sort();
        assert_eq!(flows, vec![(50000, 1, 1), (50001, 1, 1)]);
        assert_eq!(p.counters().flows.created.get(), 2);
    }

    /// Only a pipeline asked for flow counters counts a flow's packets: the
    /// dataplane's leaves them zero, so its packets touch one slot line.
    #[test]
    fn flow_counters_are_counted_only_when_asked_for() {
        let burst = Burst::offline(1_000_000_000);
        let counts = |p: &Pipeline<Recorder>| {
            let f = p.flows().iter().next().unwrap();
            (f.dirs[0].packets, f.dirs[0].bytes, f.dirs[1].packets)
        };
        let mut counted = pipeline(64);
        let mut uncounted = Pipeline::new(
            Arc::default(),
            Mode::Inline,
            &FlowsConfig::default(),
            &DpiConfig::default(),
            Recorder::default(),
        );
        for p in [&mut counted, &mut uncounted] {
            p.process(0, &tcp_frame(50000, b"hello"), 0, &burst);
            p.process(0, &tcp_frame(50000, b"again"), 0, &burst);
            p.process(0, &tcp_reply(50000, b"world!"), 0, &burst);
            assert_eq!(p.flows().active(), 1);
        }
        assert_eq!(counts(&counted), (2, 10, 1));
        assert_eq!(counts(&uncounted), (0, 0, 0));
    }

    /// A symmetric 32-bit hash of a frame's flow key, as a NIC with a
    /// symmetric RSS key delivers (None without a flow).
    fn symmetric_hash(frame: &[u8]) -> Option<u32> {
        use std::hash::{Hash, Hasher};
        let Ok(Parsed::Ip(p)) = wire::parse_ethernet(frame) else {
            return None;
        };
        let (proto, sport, dport) = p.l4.transport_ports()?;
        let (key, _) = FlowKey::of(
            proto,
            Endpoint::at(p.src, sport),
            Endpoint::at(p.dst, dport),
        );
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (key.lo(), key.hi(), proto.protocol()).hash(&mut h);
        Some(h.finish() as u32)
    }

    /// Every Ethernet capture of the corpus gives the same verdict per packet
    /// and the same detections whether the flow table is indexed by the
    /// software hash or by a supplied (NIC) hash.
    #[test]
    fn corpus_verdicts_are_the_same_with_a_supplied_hash() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/ndpi");
        let mut files: Vec<_> = ["positive", "negative"]
            .iter()
            .flat_map(|d| std::fs::read_dir(root.join(d)).into_iter().flatten())
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .collect();
        files.sort();
        assert!(files.len() >= 20, "corpus not found at {}", root.display());
        let (mut packets, mut detections) = (0, 0);
        for file in &files {
            let (mut soft, mut nic) = (pipeline(65_536), pipeline(65_536));
            let _ = crate::tools::capture::for_each_frame(file, |f| {
                if f.dlt != 1 {
                    return;
                }
                let burst = Burst::offline(f.ts_ns);
                let a = soft.process(0, f.data, f.data.len() as u32, &burst);
                let hash = symmetric_hash(f.data);
                let b = nic.process_hashed(0, f.data, f.data.len() as u32, hash, &burst);
                assert_eq!(a, b, "{}: packet {packets}", file.display());
                packets += 1;
            });
            assert_eq!(soft.sink().0, nic.sink().0, "{}", file.display());
            assert_eq!(soft.flows().active(), nic.flows().active());
            detections += soft.sink().0.len();
        }
        assert!(
            packets > 10_000 && detections > 20,
            "{packets} packets, {detections} detections"
        );
    }

    #[test]
    fn live_settings_reach_the_pipeline_from_the_next_burst_on() {
        let live = Arc::new(LiveSettings::new(WorkerSettings {
            detectors: DetectorSwitches::all(),
            action: BanAction::BanHost,
            payload_bytes: 16,
        }));
        let mut p = Pipeline::new(
            Arc::default(),
            Mode::Inline,
            &FlowsConfig {
                capacity: 64,
                ..FlowsConfig::default()
            },
            &DpiConfig::default(),
            Recorder::default(),
        )
        .with_live_settings(Arc::clone(&live));
        let burst = Burst::offline(1_000_000_000);
        let hs = handshake();

        // Burst 1: the handshake decides its flow, which is dropped; the
        // event carries exactly the first 16 payload bytes.
        p.start_burst();
        assert_eq!(
            p.process(0, &tcp_frame(50000, &hs), 0, &burst),
            Verdict::Drop
        );
        assert_eq!(p.sink().0.len(), 1);
        let event = p.sink().0[0];
        assert_eq!(event.detection.detector, DetectorId::PeerWireHandshake);
        assert_eq!(
            event.reasons.names().collect::<Vec<_>>(),
            ["peer_wire_handshake"]
        );
        assert_eq!(event.payload.as_bytes(), &hs[..16]);
        assert_eq!(event.payload.as_bytes(), b"\x13BitTorrent prot");

        // A reload switches the handshake detector off mid-burst: this
        // burst's packets still run under the settings it started with.
        live.store(WorkerSettings {
            detectors: DetectorSwitches::all().without(DetectorId::PeerWireHandshake),
            action: BanAction::BanHost,
            payload_bytes: 4,
        });
        assert_eq!(
            p.process(0, &tcp_frame(50001, &hs), 0, &burst),
            Verdict::Drop
        );
        assert_eq!(p.sink().0.len(), 2);
        assert_eq!(p.sink().0[1].payload.as_bytes().len(), 16);

        // Burst 2: the detector is off, the same handshake passes.
        p.start_burst();
        assert_eq!(
            p.process(0, &tcp_frame(50002, &hs), 0, &burst),
            Verdict::Forward
        );
        assert_eq!(p.sink().0.len(), 2, "no detection with the detector off");

        // Burst 3: back on, with log_only and no payload: detected, forwarded.
        live.store(WorkerSettings {
            detectors: DetectorSwitches::all(),
            action: BanAction::LogOnly,
            payload_bytes: 0,
        });
        p.start_burst();
        assert_eq!(
            p.process(0, &tcp_frame(50003, &hs), 0, &burst),
            Verdict::Forward
        );
        assert_eq!(p.sink().0.len(), 3);
        assert!(p.sink().0[2].payload.is_empty());
        let by = &p.counters().flows.by_detector[DetectorId::PeerWireHandshake.index()];
        assert_eq!(by.get(), 3);
    }

    /// A ban table whose snapshots the tests hand to their bursts; it
    /// starts with one unrelated ban, so the snapshot is never empty.
    fn ban_table() -> crate::ban::BanTable {
        let mut table = crate::ban::BanTable::new(
            crate::ban::BanTableConfig {
                max_entries: 1024,
                ..crate::ban::BanTableConfig::default()
            },
            crate::ban::Allowlist::default(),
        );
        ban(&mut table, "192.0.2.99", 3_600);
        table
    }

    /// Bans `host` for `ttl_s` seconds from unix ms 1,000 and publishes.
    fn ban(table: &mut crate::ban::BanTable, host: &str, ttl_s: u64) {
        let key: BanKey = host.parse().unwrap();
        let ttl = std::time::Duration::from_secs(ttl_s);
        table.add(key, ttl, "test", 1_000);
        table.publish();
    }

    fn at_ms<'a>(unix_ms: u64, snapshot: &'a Snapshot) -> Burst<'a> {
        Burst {
            now_ns: unix_ms * 1_000_000,
            unix_ms,
            bans: Some(snapshot),
        }
    }

    /// `frame` with its IPv4 source replaced.
    fn from_src(mut frame: Vec<u8>, src: [u8; 4]) -> Vec<u8> {
        frame[26..30].copy_from_slice(&src);
        frame
    }

    /// A flow checked under one snapshot is checked again under the next:
    /// a ban published mid-flow drops its next packets, both ways, and an
    /// unban lets them through, in the same flow.
    #[test]
    fn a_ban_published_mid_flow_drops_its_next_packet_and_an_unban_restores_it() {
        let mut p = pipeline(64);
        let mut table = ban_table();
        let reader = table.reader();
        let fwd = tcp_frame(50000, b"");
        let back = tcp_reply(50000, b"");
        let snap = reader.load();
        assert_eq!(
            p.process(0, &fwd, 0, &at_ms(1_100, &snap)),
            Verdict::Forward
        );
        assert_eq!(
            p.process(0, &back, 0, &at_ms(1_100, &snap)),
            Verdict::Forward
        );

        ban(&mut table, "10.0.0.2", 3_600);
        let snap = reader.load();
        assert_eq!(p.process(0, &fwd, 0, &at_ms(1_200, &snap)), Verdict::Drop);
        assert_eq!(p.process(0, &back, 0, &at_ms(1_200, &snap)), Verdict::Drop);
        assert_eq!(p.process(0, &fwd, 0, &at_ms(1_300, &snap)), Verdict::Drop);

        table.remove(&"10.0.0.2".parse().unwrap());
        table.publish();
        let snap = reader.load();
        assert_eq!(
            p.process(0, &fwd, 0, &at_ms(1_400, &snap)),
            Verdict::Forward
        );
        assert_eq!(p.counters().bans.dropped_banned_host.get(), 3);
        assert_eq!(p.flows().active(), 1);
        assert_eq!(p.counters().flows.created.get(), 1);
        let flow = p.flows().iter().next().unwrap();
        assert_eq!((flow.dirs[0].packets, flow.dirs[1].packets), (2, 1));
    }

    /// A banned host's new flows are refused before they take a slot: in a
    /// full one-bucket table nothing is evicted for them; its packets with
    /// no flow (ICMP) are dropped too.
    #[test]
    fn a_banned_hosts_packets_take_no_flow_slot_and_evict_nothing() {
        let mut p = pipeline(8);
        let mut table = ban_table();
        ban(&mut table, "10.0.0.1", 3_600);
        let snap = table.reader().load();
        let burst = at_ms(2_000, &snap);
        for i in 0..8u8 {
            let frame = from_src(tcp_frame(40_000, b""), [10, 0, 1, i]);
            assert_eq!(p.process(0, &frame, 0, &burst), Verdict::Forward);
        }
        assert_eq!(p.flows().active(), 8);
        for sport in 50_000..50_010 {
            assert_eq!(
                p.process(0, &tcp_frame(sport, b""), 0, &burst),
                Verdict::Drop
            );
        }
        let mut icmp = tcp_frame(0, b"");
        icmp[23] = wire::ip::protocol::ICMP;
        assert_eq!(p.process(0, &icmp, 0, &burst), Verdict::Drop);
        assert_eq!(p.counters().bans.dropped_banned_host.get(), 11);
        assert_eq!(p.flows().active(), 8);
        assert_eq!(p.counters().flows.evicted.get(), 0);
        assert_eq!(p.counters().flows.created.get(), 8);
    }

    /// A ban that expires while its snapshot is still current lets the
    /// host back in at once: its packets never made a flow that could skip
    /// the check.
    #[test]
    fn a_ban_expiring_within_one_snapshot_lets_the_host_back() {
        let mut p = pipeline(64);
        let mut table = ban_table();
        ban(&mut table, "10.0.0.1", 1);
        let snap = table.reader().load();
        let frame = tcp_frame(50000, b"");
        assert_eq!(p.process(0, &frame, 0, &at_ms(1_999, &snap)), Verdict::Drop);
        assert_eq!(
            p.process(0, &frame, 0, &at_ms(2_000, &snap)),
            Verdict::Forward
        );
        assert_eq!(p.flows().active(), 1);
    }

    /// Under `log_only` nothing is checked, so a flow made then carries no
    /// stamp: a reload to `ban_host` under the same snapshot drops its next
    /// packet.
    #[test]
    fn a_reload_to_ban_host_checks_flows_made_under_log_only() {
        let settings = |action| WorkerSettings {
            detectors: DetectorSwitches::all(),
            action,
            payload_bytes: 0,
        };
        let live = Arc::new(LiveSettings::new(settings(BanAction::LogOnly)));
        let mut p = pipeline(64).with_live_settings(Arc::clone(&live));
        let mut table = ban_table();
        ban(&mut table, "10.0.0.2", 3_600);
        let snap = table.reader().load();
        let frame = tcp_frame(50000, b"");
        p.start_burst();
        assert_eq!(
            p.process(0, &frame, 0, &at_ms(1_100, &snap)),
            Verdict::Forward
        );
        live.store(settings(BanAction::BanHost));
        p.start_burst();
        assert_eq!(p.process(0, &frame, 0, &at_ms(1_200, &snap)), Verdict::Drop);
        assert_eq!(p.counters().bans.dropped_banned_host.get(), 1);
    }
}
