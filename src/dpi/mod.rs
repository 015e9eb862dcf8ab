//! The DPI engine: per-flow BitTorrent detectors, and the rule that combines
//! their evidence into a verdict on the flow.
//!
//! `DpiEngine::inspect` takes one payload-carrying packet of a flow
//! (`PayloadCtx`) with the flow's `FlowDpiState` and answers Pending,
//! BitTorrent or Clean. On the way:
//! 1. guards recognise other protocols (TLS, STUN, DNS, …) that BitTorrent
//!    heuristics could mistake for BitTorrent: a veto (see the combining rule);
//! 2. the detectors of the packet's transport look at the payload and report
//!    their evidence, at a `Confidence` each detector decides itself;
//! 3. the combining rule weighs the flow's evidence, with the known-peer cache
//!    (endpoints the detectors proved or saw named as BitTorrent peers).
//!
//! # Detectors (one module each)
//! | module | protocol | best confidence |
//! |---|---|---|
//! | `handshake` | peer-wire handshake `\x13BitTorrent protocol` (BEP 3), reassembled across the first segments | Definitive |
//! | `framing` | peer-wire messages (BEP 3/6/10/52); BEP 10 extension handshake | Strong; extension handshake Definitive |
//! | `dht` | KRPC (BEP 5/32/42/44/51) by a bounded bencode walk | Definitive |
//! | `utp` | uTP (BEP 29): SYN answered by its STATE; ids ±1 with agreeing seq/ack; a one-way run of 4 consistent headers (one id, rising timestamps, seq +0/+1, acks never back); BT handshake inside DATA. Never one DATA-shaped packet | Definitive |
//! | `udp_tracker` | BEP 15 connect/announce/scrape, responses matched by transaction id | Definitive |
//! | `http` | tracker announce/scrape (info_hash + peer_id); client User-Agent | Definitive / Strong |
//! | `lsd` | BEP 14 `BT-SEARCH` | Definitive |
//! | `mse` | MSE/PE: the key-exchange envelope on flights (Strong); with two of the clients' exact flight sizes, plaintext-selected BitTorrent or message-length arithmetic (Definitive) | Definitive |
//! | `fanout` | host behaviour: an initiator's envelope flows to distinct peers on unusual ports (adds to the envelope, like an Advertised endpoint) | (points) |
//! | `known_peers` | endpoints confirmed or advertised as BitTorrent | see below |
//! | `guards` | STUN, DTLS, CAPWAP, DNS, DHCP, WireGuard, QUIC, Teredo, AFS RX, RakNet, TLS, SSH, HTTP, MSDO, Gnutella | (vetoes) |
//! | `socks5` | unwraps SOCKS5 UDP datagrams before the UDP detectors | — |
//!
//! # One shape for every detector
//! A detector is a type implementing `detector::Detector`: engine-wide
//! read-only data in the value (pattern matchers; most have none), its memory
//! of one flow as `Detector::Memory` (a field of `FlowDpiState`: fixed size,
//! no heap; `()` for a detector that judges each payload alone), and one entry
//! point, `inspect(&self, &mut Memory, &Payload, &mut Findings)`. It checks
//! its own switches, maps what it found to a `Confidence` itself, and reports
//! to `Findings`: evidence (`note`), a guard (`guard`), and the endpoints its
//! messages prove (`confirm`) or name (`advertise`). The engine applies what
//! was learned to the known-peer cache, except from a SOCKS5-relayed datagram,
//! whose endpoints are not the packet's. Calls are static: `Detectors::tcp`
//! and `Detectors::udp` are the lists, in the order the detectors see a
//! payload.
//!
//! TCP: every detector sees every segment's new bytes (one segment may carry
//! a handshake and the first messages), placed in its direction's stream by
//! sequence number (`stream`: retransmissions skipped, overlaps trimmed,
//! out-of-order segments shown at their own offset) and counted in the
//! flow's flights (`flights`: A1, B1, A2… for the MSE detector). UDP: a
//! datagram is one protocol's, so the first detector that notes evidence on it
//! ends its inspection; a datagram that added no evidence is tried again
//! unwrapped from SOCKS5.
//!
//! # Adding a detector
//! 1. `src/dpi/<name>.rs`: the protocol, and a type implementing `Detector`
//!    (`#[inline]` on `inspect`).
//! 2. Here: `mod <name>;`, its `DetectorId` (variant, `ALL`, `name`: the
//!    metric label and config name), a field of `Memory` if it keeps per-flow
//!    memory (keep an eye on the `flow_state_size` test), and one line in
//!    `Detectors::tcp` or `Detectors::udp`.
//!
//! # Combining rule
//! Each detector's evidence is kept per flow at its best confidence (counted
//! once, however many packets repeat it). A flow is judged BitTorrent when:
//! 1. any detector reports **Definitive**; or
//! 2. one of its endpoints is a **Confirmed** known peer (it spoke BitTorrent
//!    itself in a Definitive detection within the TTL) and no guard fired on
//!    the flow: `KnownPeer`, Strong; or
//! 3. the flow has at least one **Strong** signal and its points reach 4:
//!    Weak = 1, Strong = 2 per detector, plus 2 when an endpoint is an
//!    **Advertised** known peer (named in a DHT/tracker peer list), plus 2
//!    when the host-behaviour hook (`DpiEngine::on_envelope`) reports the
//!    initiator's fan-out of MSE-envelope flows (`Reason::HostFanOut`).
//!
//! So Weak signals never condemn on their own, a Strong signal needs a second
//! independent one (another detector, or the endpoint cache), and a flow on
//! which a false-positive guard fired ignores the shape heuristics (framing,
//! MSE, uTP ids, tracker shapes) below Definitive (and the uTP header-field
//! consistency checks altogether). The reported `Detection` is the flow's
//! strongest (earliest on ties). The endpoint cache is consulted after the
//! packet's own detectors, so a flow's own evidence names it when it can.
//!
//! A flow is judged Clean once both directions have had `max_payload_packets`
//! payload packets, or one direction has and the other has had none. A flow
//! that showed the MSE envelope gets `mse::MAX_PAYLOAD_PACKETS` (48) instead:
//! its message lengths are measured after the handshake flights.
use std::net::IpAddr;

use crate::wire::Transport;

mod bencode;
mod detector;
mod dht;
mod fanout;
mod flights;
mod framing;
mod guards;
mod handshake;
mod http;
mod known_peers;
mod lsd;
mod mse;
mod reasons;
mod socks5;
mod stream;
mod udp_tracker;
mod utp;

#[cfg(test)]
mod tests;

pub use handshake::HandshakeInfo;
pub use known_peers::PeerTier;
pub use reasons::{Reason, Reasons};

use detector::{Detector, Findings, Payload};
use known_peers::KnownPeers;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    Weak,
    Strong,
    Definitive,
}

impl Confidence {
    /// "weak", "strong" or "definitive": for reports, logs and labels.
    pub fn name(self) -> &'static str {
        match self {
            Confidence::Weak => "weak",
            Confidence::Strong => "strong",
            Confidence::Definitive => "definitive",
        }
    }

    fn points(self) -> u8 {
        match self {
            Confidence::Weak => 1,
            Confidence::Strong => 2,
            Confidence::Definitive => 4,
        }
    }
}

/// Points at which Strong evidence condemns a flow (see the combining rule).
const CONDEMN_POINTS: u8 = 4;
/// Points an Advertised endpoint adds.
const ADVERTISED_POINTS: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorId {
    PeerWireHandshake,
    PeerWireFraming,
    ExtensionHandshake,
    Dht,
    Utp,
    UdpTracker,
    HttpTracker,
    HttpClient,
    Lsd,
    Mse,
    KnownPeer,
}

impl DetectorId {
    pub const COUNT: usize = 11;
    pub const ALL: [DetectorId; DetectorId::COUNT] = [
        DetectorId::PeerWireHandshake,
        DetectorId::PeerWireFraming,
        DetectorId::ExtensionHandshake,
        DetectorId::Dht,
        DetectorId::Utp,
        DetectorId::UdpTracker,
        DetectorId::HttpTracker,
        DetectorId::HttpClient,
        DetectorId::Lsd,
        DetectorId::Mse,
        DetectorId::KnownPeer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DetectorId::PeerWireHandshake => "peer_wire_handshake",
            DetectorId::PeerWireFraming => "peer_wire_framing",
            DetectorId::ExtensionHandshake => "extension_handshake",
            DetectorId::Dht => "dht",
            DetectorId::Utp => "utp",
            DetectorId::UdpTracker => "udp_tracker",
            DetectorId::HttpTracker => "http_tracker",
            DetectorId::HttpClient => "http_client",
            DetectorId::Lsd => "lsd",
            DetectorId::Mse => "mse",
            DetectorId::KnownPeer => "known_peer",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Heuristics on packet shape rather than protocol content: a guard
    /// (STUN, TLS, …) on the flow makes their sub-Definitive evidence void.
    fn is_shape_heuristic(self) -> bool {
        matches!(
            self,
            DetectorId::PeerWireFraming
                | DetectorId::Utp
                | DetectorId::UdpTracker
                | DetectorId::Mse
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detection {
    pub detector: DetectorId,
    pub confidence: Confidence,
}

/// Direction relative to the flow's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the endpoint that sent the flow's first packet.
    Originator,
    Responder,
}

impl Direction {
    /// 0 for the originator, 1 for the responder: indexes per-direction arrays.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The other direction.
    #[inline]
    pub fn reverse(self) -> Direction {
        match self {
            Direction::Originator => Direction::Responder,
            Direction::Responder => Direction::Originator,
        }
    }
}

/// One payload-carrying packet of a flow, as the detectors see it.
#[derive(Clone, Copy, Debug)]
pub struct PayloadCtx<'a> {
    pub transport: Transport,
    pub direction: Direction,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
    /// TCP sequence number of the segment (0 for UDP).
    pub tcp_seq: u32,
    /// TCP acknowledgment number (0 for UDP; meaningful with ACK set).
    pub tcp_ack: u32,
    pub payload: &'a [u8],
}

impl PayloadCtx<'_> {
    /// The flow's originator endpoint, from either direction's packet.
    #[inline]
    pub fn originator(&self) -> (IpAddr, u16) {
        match self.direction {
            Direction::Originator => (self.src, self.src_port),
            Direction::Responder => (self.dst, self.dst_port),
        }
    }

    /// The flow's responder endpoint (its listening port), from either
    /// direction's packet.
    #[inline]
    pub fn responder(&self) -> (IpAddr, u16) {
        match self.direction {
            Direction::Responder => (self.src, self.src_port),
            Direction::Originator => (self.dst, self.dst_port),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inspection {
    /// Not decided yet: keep feeding payload packets.
    Pending,
    /// Judged BitTorrent.
    BitTorrent(Detection),
    /// Judged clean: stop inspecting this flow.
    Clean,
}

/// Which detectors run. All on by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorSwitches(u16);

impl DetectorSwitches {
    pub const fn all() -> Self {
        DetectorSwitches((1 << DetectorId::COUNT) - 1)
    }

    pub fn is_enabled(self, id: DetectorId) -> bool {
        self.0 & (1 << id.index()) != 0
    }

    pub fn set(&mut self, id: DetectorId, on: bool) {
        if on {
            self.0 |= 1 << id.index();
        } else {
            self.0 &= !(1 << id.index());
        }
    }

    pub fn without(mut self, id: DetectorId) -> Self {
        self.set(id, false);
        self
    }

    /// One bit per detector (`DetectorId::index`): for an atomic.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// The inverse of `bits`; bits beyond the known detectors are ignored.
    pub const fn from_bits(bits: u16) -> Self {
        DetectorSwitches(bits & Self::all().0)
    }
}

impl Default for DetectorSwitches {
    fn default() -> Self {
        Self::all()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpiConfig {
    /// Payload packets inspected per direction before a flow is judged clean.
    pub max_payload_packets: u8,
    /// Known-peer cache entries per engine (rounded up to a power of two;
    /// 0 disables the cache and the `KnownPeer` detector).
    pub known_peer_capacity: usize,
    /// How long a known peer stays known.
    pub known_peer_ttl_secs: u64,
    /// Learn Advertised peers from DHT `values` and tracker peer lists.
    pub learn_advertised_peers: bool,
    pub detectors: DetectorSwitches,
}

impl Default for DpiConfig {
    fn default() -> Self {
        DpiConfig {
            max_payload_packets: 8,
            known_peer_capacity: 65536,
            known_peer_ttl_secs: 30 * 60,
            learn_advertised_peers: true,
            detectors: DetectorSwitches::all(),
        }
    }
}

/// Tally flag bits.
const GUARDED: u8 = 0x01;
const DECIDED_BITTORRENT: u8 = 0x02;
const DECIDED_CLEAN: u8 = 0x04;
const ADVERTISED_ENDPOINT: u8 = 0x08;
/// The host-behaviour hook vouched for the flow's initiator.
const HOST_FAN_OUT: u8 = 0x10;
/// Points the host-behaviour hook adds (as an Advertised endpoint).
const FAN_OUT_POINTS: u8 = 2;

/// Per-flow DPI memory: fixed size, no heap (see `flow_state_size` test).
#[derive(Clone, Debug, Default)]
pub struct FlowDpiState {
    /// Payload packets seen per direction (index = `Direction::index`).
    pub payload_packets: [u8; 2],
    tally: Tally,
    memory: Memory,
}

/// What the detectors remember of a flow: the TCP stream positions and
/// flights they share, and each one's own `Detector::Memory`.
#[derive(Clone, Debug, Default)]
struct Memory {
    stream: stream::Streams,
    flights: flights::Flights,
    handshake: handshake::HandshakeState,
    framing: framing::FramingState,
    utp: utp::UtpState,
    tracker: udp_tracker::TrackerState,
    mse: mse::MseState,
}

/// The flow's evidence and decision: what the combining rule reads.
#[derive(Clone, Debug, Default)]
struct Tally {
    flags: u8,
    /// Best confidence per detector: 0 none, else 1 + `Confidence as u8`.
    evidence: [u8; DetectorId::COUNT],
    lead: Option<Detection>,
    /// Facts below the detectors (`Findings::reason`); see `reasons`.
    facts: Reasons,
}

impl FlowDpiState {
    /// Reserved bits and client code of a complete peer-wire handshake.
    pub fn handshake_info(&self) -> Option<HandshakeInfo> {
        self.memory.handshake.info()
    }

    /// TCP payload bytes seen per direction (stream positions, so a
    /// retransmission counts once); 0 for UDP.
    pub fn stream_bytes(&self) -> [u32; 2] {
        [
            self.memory.stream.high(Direction::Originator),
            self.memory.stream.high(Direction::Responder),
        ]
    }

    /// True when a false-positive guard fired on this flow.
    pub fn guarded(&self) -> bool {
        self.tally.guarded()
    }

    /// The reason chain: every detector whose evidence counts, the facts the
    /// detectors established, and the endpoint cache's word. Read it when
    /// the flow is decided (the pool entry is reused after that).
    pub fn reasons(&self) -> Reasons {
        let mut r = self.tally.facts;
        for id in DetectorId::ALL {
            if self.tally.evidence(id).is_some() {
                r.add_detector(id);
            }
        }
        if self.tally.flags & ADVERTISED_ENDPOINT != 0 {
            r.add(Reason::EndpointAdvertised);
        }
        if self.tally.flags & HOST_FAN_OUT != 0 {
            r.add(Reason::HostFanOut);
        }
        if self
            .tally
            .lead
            .is_some_and(|d| d.detector == DetectorId::KnownPeer)
        {
            r.add_detector(DetectorId::KnownPeer);
            r.add(Reason::EndpointConfirmed);
        }
        r
    }

    #[cfg(test)]
    fn evidence(&self, id: DetectorId) -> Option<Confidence> {
        self.tally.evidence(id)
    }

    #[cfg(test)]
    fn note(&mut self, id: DetectorId, c: Confidence) {
        self.tally.note(id, c);
    }

    #[cfg(test)]
    fn apply_guard(&mut self) {
        self.tally.apply_guard();
    }

    #[cfg(test)]
    fn score(&self) -> (bool, bool, u8) {
        self.tally.score()
    }
}

impl Tally {
    fn guarded(&self) -> bool {
        self.flags & GUARDED != 0
    }

    fn evidence(&self, id: DetectorId) -> Option<Confidence> {
        match self.evidence[id.index()] {
            1 => Some(Confidence::Weak),
            2 => Some(Confidence::Strong),
            3 => Some(Confidence::Definitive),
            _ => None,
        }
    }

    fn note(&mut self, id: DetectorId, c: Confidence) {
        if self.guarded() && id.is_shape_heuristic() && c < Confidence::Definitive {
            return;
        }
        let slot = &mut self.evidence[id.index()];
        *slot = (*slot).max(c as u8 + 1);
        if self.lead.is_none_or(|l| c > l.confidence) {
            self.lead = Some(Detection {
                detector: id,
                confidence: c,
            });
        }
    }

    /// Records a fact; on a guarded flow, facts are shape evidence and void.
    fn add_fact(&mut self, r: Reason) {
        if !self.guarded() {
            self.facts.add(r);
        }
    }

    /// Drops shape evidence gathered before a guard fired.
    fn apply_guard(&mut self) {
        self.flags |= GUARDED;
        self.facts = Reasons::NONE;
        for id in DetectorId::ALL {
            if id.is_shape_heuristic() && self.evidence(id) < Some(Confidence::Definitive) {
                self.evidence[id.index()] = 0;
            }
        }
        if self.lead.is_some_and(|l| {
            l.detector.is_shape_heuristic() && l.confidence < Confidence::Definitive
        }) {
            self.lead = DetectorId::ALL
                .iter()
                .filter_map(|&id| {
                    self.evidence(id).map(|c| Detection {
                        detector: id,
                        confidence: c,
                    })
                })
                .max_by_key(|d| d.confidence);
        }
    }

    /// (has Definitive, has Strong, points)
    fn score(&self) -> (bool, bool, u8) {
        let mut points = 0u8;
        let mut strong = false;
        let mut definitive = false;
        for id in DetectorId::ALL {
            match self.evidence(id) {
                Some(Confidence::Definitive) => definitive = true,
                Some(c) => {
                    strong |= c == Confidence::Strong;
                    points = points.saturating_add(c.points());
                }
                None => {}
            }
        }
        (definitive, strong, points)
    }
}

/// The detectors, by transport: the engine-wide data of those that have some
/// (the others are unit types), and the lists that run them.
struct Detectors {
    http: http::HttpMatcher,
    lsd: lsd::LsdMatcher,
    mse: mse::Mse,
}

impl Detectors {
    fn new() -> Self {
        Detectors {
            http: http::HttpMatcher::new(),
            lsd: lsd::LsdMatcher::new(),
            mse: mse::Mse::new(),
        }
    }

    fn tcp(&self, m: &mut Memory, ctx: &PayloadCtx<'_>, out: &mut Findings<'_>) {
        let dir = ctx.direction;
        let Some(placed) = m
            .stream
            .accept(dir, ctx.tcp_seq, ctx.tcp_flags, ctx.payload.len())
        else {
            return; // a retransmission: already seen
        };
        let new = ctx.payload.len() - placed.skip;
        let opens = m.flights.record(&m.stream, dir, placed.at, new);
        let p = Payload::segment(ctx, placed, &m.stream, &m.flights, opens);
        if p.offset == 0 && guards::tcp(p.bytes).is_some() {
            out.guard();
        }
        handshake::Handshake.inspect(&mut m.handshake, &p, out);
        self.http.inspect(&mut (), &p, out);
        framing::Framing.inspect(&mut m.framing, &p, out);
        self.mse.inspect(&mut m.mse, &p, out);
    }

    fn udp(&self, m: &mut Memory, ctx: &PayloadCtx<'_>, out: &mut Findings<'_>) {
        if !out.guarded() && guards::udp(ctx.payload, ctx.src_port, ctx.dst_port).is_some() {
            out.guard();
        }
        let before = out.evidence();
        self.datagram(m, &Payload::datagram(ctx, ctx.payload, false), out);
        if out.evidence() == before {
            // Nothing in the datagram itself: maybe it is SOCKS5-relayed.
            if let Some(inner) = socks5::unwrap(ctx.payload) {
                self.datagram(m, &Payload::datagram(ctx, inner, true), out);
            }
        }
    }

    /// One datagram through the UDP detectors, until one recognises it.
    fn datagram(&self, m: &mut Memory, p: &Payload<'_>, out: &mut Findings<'_>) {
        out.begin(p);
        let _recognised = offer(&self.lsd, &mut (), p, out)
            || offer(&dht::Dht, &mut (), p, out)
            || offer(&utp::Utp, &mut m.utp, p, out)
            || offer(&udp_tracker::UdpTracker, &mut m.tracker, p, out);
    }
}

/// Shows `p` to one more detector of a UDP pass; true when it recognised it
/// (the ones before did not: the pass stops at the first).
#[inline]
fn offer<D: Detector>(
    detector: &D,
    memory: &mut D::Memory,
    p: &Payload<'_>,
    out: &mut Findings<'_>,
) -> bool {
    detector.inspect(memory, p, out);
    out.reported()
}

pub struct DpiEngine {
    config: DpiConfig,
    detectors: Detectors,
    known: KnownPeers,
    /// Hosts' MSE-envelope flows to distinct peers (host behaviour).
    fanout: fanout::FanOut,
    ttl_ns: u64,
}

impl DpiEngine {
    pub fn new(config: &DpiConfig) -> Self {
        let ttl_ns = config.known_peer_ttl_secs.saturating_mul(1_000_000_000);
        // Allocated even when `known_peer` starts switched off, so a reload
        // that switches it on finds its cache (and `known_peer_capacity: 0`
        // remains the way to do without one).
        let capacity = config.known_peer_capacity;
        DpiEngine {
            config: config.clone(),
            detectors: Detectors::new(),
            known: KnownPeers::new(capacity, ttl_ns),
            // Hosts with envelope flows are a small share of the endpoints
            // the known-peer cache holds: a quarter of it, within bounds
            // (offline runs size the cache by the capture, and so this).
            fanout: fanout::FanOut::new(
                (capacity / 4).clamp(fanout::MIN_CAPACITY, fanout::DEFAULT_CAPACITY),
                fanout::DEFAULT_WINDOW_NS,
                fanout::DEFAULT_THRESHOLD,
            ),
            ttl_ns,
        }
    }

    pub fn config(&self) -> &DpiConfig {
        &self.config
    }

    /// True when `ip:port` spoke BitTorrent in a Definitive detection within
    /// the TTL: a flow touching it may be judged without DPI.
    pub fn is_known_peer(&self, ip: IpAddr, port: u16, now_ns: u64) -> bool {
        self.known.lookup(ip, port, now_ns) == Some(PeerTier::Confirmed)
    }

    /// The cache tier of `ip:port`, if any.
    pub fn known_peer(&self, ip: IpAddr, port: u16, now_ns: u64) -> Option<PeerTier> {
        self.known.lookup(ip, port, now_ns)
    }

    /// Records an endpoint (e.g. from an operator list or another worker).
    pub fn add_known_peer(&mut self, ip: IpAddr, port: u16, tier: PeerTier, now_ns: u64) {
        self.known.insert(ip, port, tier, now_ns);
    }

    pub fn ttl_ns(&self) -> u64 {
        self.ttl_ns
    }

    /// Switches detectors on or off from the next packet on (a reload).
    /// Flows already judged keep their verdict.
    #[inline]
    pub fn set_detectors(&mut self, detectors: DetectorSwitches) {
        self.config.detectors = detectors;
    }

    fn enabled(&self, id: DetectorId) -> bool {
        self.config.detectors.is_enabled(id)
    }

    pub fn inspect(
        &mut self,
        state: &mut FlowDpiState,
        ctx: &PayloadCtx<'_>,
        now_ns: u64,
    ) -> Inspection {
        if state.tally.flags & DECIDED_BITTORRENT != 0 {
            if let Some(d) = state.tally.lead {
                return Inspection::BitTorrent(d);
            }
        }
        if state.tally.flags & DECIDED_CLEAN != 0 {
            return Inspection::Clean;
        }
        let dir = ctx.direction.index();
        let first_of_flow = state.payload_packets == [0, 0];
        state.payload_packets[dir] = state.payload_packets[dir].saturating_add(1);

        let had_envelope = state.tally.facts.has(Reason::MseEnvelope);
        let mut out = Findings::new(&mut state.tally, &mut self.known, &self.config, now_ns);
        match ctx.transport {
            Transport::Tcp => self.detectors.tcp(&mut state.memory, ctx, &mut out),
            Transport::Udp => self.detectors.udp(&mut state.memory, ctx, &mut out),
        }
        if !had_envelope
            && state.tally.facts.has(Reason::MseEnvelope)
            && self.on_envelope(ctx, now_ns)
        {
            state.tally.flags |= HOST_FAN_OUT;
        }
        if first_of_flow && !state.tally.score().0 {
            if let Some(found) = self.check_endpoints(state, ctx, now_ns) {
                return found;
            }
        }
        self.judge(state, ctx, now_ns)
    }

    /// Host-behaviour hook: called once per flow, on the packet that first
    /// gave it `Reason::MseEnvelope`. True when the flow's initiator
    /// (`ctx.src` for the originator's packet, else `ctx.dst`) behaves like
    /// a BitTorrent client across flows (several envelope flows to distinct
    /// peers on unusual ports within minutes): the flow then gets
    /// `Reason::HostFanOut` and `FAN_OUT_POINTS`, as an Advertised endpoint
    /// does (`fanout`: why fan-out and not fan-in).
    #[inline]
    fn on_envelope(&mut self, ctx: &PayloadCtx<'_>, now_ns: u64) -> bool {
        let (initiator, _) = ctx.originator();
        let (peer, peer_port) = ctx.responder();
        self.fanout.record(initiator, peer, peer_port, now_ns)
    }

    /// Known-peer lookups for both endpoints.
    fn check_endpoints(
        &self,
        state: &mut FlowDpiState,
        ctx: &PayloadCtx<'_>,
        now_ns: u64,
    ) -> Option<Inspection> {
        // A flow that shows another protocol (TLS, QUIC, STUN…) is that
        // protocol, whatever port it uses: an ephemeral port of the same host
        // may equal a peer's port.
        if !self.enabled(DetectorId::KnownPeer) || state.guarded() {
            return None;
        }
        let a = self.known.lookup(ctx.src, ctx.src_port, now_ns);
        let b = self.known.lookup(ctx.dst, ctx.dst_port, now_ns);
        match a.max(b)? {
            PeerTier::Confirmed => {
                let d = Detection {
                    detector: DetectorId::KnownPeer,
                    confidence: Confidence::Strong,
                };
                state.tally.lead = Some(d);
                state.tally.flags |= DECIDED_BITTORRENT;
                Some(Inspection::BitTorrent(d))
            }
            PeerTier::Advertised => {
                state.tally.flags |= ADVERTISED_ENDPOINT;
                None
            }
        }
    }

    fn judge(&self, state: &mut FlowDpiState, ctx: &PayloadCtx<'_>, now_ns: u64) -> Inspection {
        let (definitive, strong, mut points) = state.tally.score();
        if !definitive
            && strong
            && points < CONDEMN_POINTS
            && state.tally.flags & ADVERTISED_ENDPOINT == 0
        {
            // The cache may have learned an endpoint since the flow began.
            if let Some(found) = self.check_endpoints(state, ctx, now_ns) {
                return found;
            }
        }
        let tally = &mut state.tally;
        if tally.flags & ADVERTISED_ENDPOINT != 0 {
            points = points.saturating_add(ADVERTISED_POINTS);
        }
        if tally.flags & HOST_FAN_OUT != 0 && tally.evidence(DetectorId::Mse).is_some() {
            points = points.saturating_add(FAN_OUT_POINTS);
        }
        if definitive || (strong && points >= CONDEMN_POINTS) {
            if let Some(d) = tally.lead {
                tally.flags |= DECIDED_BITTORRENT;
                return Inspection::BitTorrent(d);
            }
        }
        let mut max = self.config.max_payload_packets;
        if state.tally.facts.has(Reason::MseEnvelope) {
            // Room to measure the message phase (`mse::lengths`).
            max = max.max(mse::MAX_PAYLOAD_PACKETS);
        }
        let [a, b] = state.payload_packets;
        if (a >= max && (b >= max || b == 0)) || (b >= max && a == 0) {
            state.tally.flags |= DECIDED_CLEAN;
            return Inspection::Clean;
        }
        Inspection::Pending
    }

    /// Optional: feed later payload packets of a flow already judged
    /// BitTorrent, so that peer lists in DHT responses reach the known-peer
    /// cache (a flow is decided on its query, before the response carrying
    /// the `values` arrives). Cheap: a one-byte gate, then one bencode walk.
    pub fn learn_from_bittorrent_flow(&mut self, ctx: &PayloadCtx<'_>, now_ns: u64) {
        if ctx.transport != Transport::Udp || ctx.payload.first() != Some(&b'd') {
            return;
        }
        // The flow's evidence is settled: only what the datagram teaches counts.
        let mut settled = Tally::default();
        let mut out = Findings::new(&mut settled, &mut self.known, &self.config, now_ns);
        dht::learn_from(&Payload::datagram(ctx, ctx.payload, false), &mut out);
    }
}
