//! The DPI engine: per-flow BitTorrent detectors.
//!
//! CONTRACT (used by pipeline.rs, flow table and analyze; keep these names):
//! `DpiEngine::new(&DpiConfig)`, `DpiEngine::inspect(&mut self, &mut FlowDpiState,
//! &PayloadCtx, now_ns) -> Inspection`, `FlowDpiState: Default + Clone` (fixed
//! size, no heap), `Detection { detector: DetectorId, confidence: Confidence }`,
//! `DetectorId::name()` (snake_case metric label).
//! Added: `DpiEngine::is_known_peer` / `known_peer` (short-circuit lookups),
//! `DpiEngine::learn_from_bittorrent_flow` (optional: feed later packets of
//! flows already judged BitTorrent so DHT peer lists reach the cache),
//! `DpiConfig` switches, `FlowDpiState::handshake_info`.
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
//! | `mse` | MSE/PE key-exchange shape | Strong |
//! | `known_peers` | endpoints confirmed or advertised as BitTorrent | see below |
//! | `guards` | STUN, DTLS, CAPWAP, DNS, DHCP, WireGuard, QUIC, Teredo, AFS RX, RakNet, TLS, SSH, HTTP, MSDO, Gnutella | (vetoes) |
//! | `socks5` | unwraps SOCKS5 UDP datagrams before the UDP detectors | — |
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
//!    **Advertised** known peer (named in a DHT/tracker peer list).
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
//! payload packets, or one direction has and the other has had none.
use std::net::IpAddr;

use crate::wire::Transport;

mod bencode;
mod dht;
mod framing;
mod guards;
mod handshake;
mod http;
mod known_peers;
mod lsd;
mod mse;
mod socks5;
mod udp_tracker;
mod utp;

#[cfg(test)]
mod tests;

pub use handshake::HandshakeInfo;
pub use known_peers::PeerTier;

use handshake::PrefixMatch;
use known_peers::KnownPeers;
use mse::MseState;
use udp_tracker::{TrackerEvidence, TrackerState};
use utp::{UtpEvidence, UtpState};

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
/// Peers learned from one peer list at most (bounds the work per packet).
const MAX_LEARNED_PER_PACKET: usize = 64;

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
    pub payload: &'a [u8],
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

/// Flow-state flag bits.
const GUARDED: u8 = 0x01;
const DECIDED_BITTORRENT: u8 = 0x02;
const DECIDED_CLEAN: u8 = 0x04;
const ADVERTISED_ENDPOINT: u8 = 0x08;
/// Bits 4/5: valid framing seen from direction 0/1.
const FRAMING_SEEN: [u8; 2] = [0x10, 0x20];

/// Per-flow DPI memory: fixed size, no heap (see `flow_state_size` test).
#[derive(Clone, Debug, Default)]
pub struct FlowDpiState {
    /// Payload packets seen per direction (index = `Direction as usize`).
    pub payload_packets: [u8; 2],
    flags: u8,
    /// Best confidence per detector: 0 none, else 1 + `Confidence as u8`.
    evidence: [u8; DetectorId::COUNT],
    lead: Option<Detection>,
    /// Stream bytes seen per direction (saturating), TCP.
    stream_len: [u16; 2],
    /// The first 20 bytes of each TCP direction: reassembles a handshake
    /// split over several segments.
    prefix: [[u8; handshake::PSTR.len()]; 2],
    /// Fingerprint of the last TCP payload per direction, to skip
    /// retransmissions.
    last_fingerprint: [u32; 2],
    handshake: HandshakeInfo,
    utp: UtpState,
    tracker: TrackerState,
    mse: MseState,
}

impl FlowDpiState {
    /// Reserved bits and client code of a complete peer-wire handshake.
    pub fn handshake_info(&self) -> Option<HandshakeInfo> {
        (self.handshake.flags & handshake::FLAG_VALID != 0).then_some(self.handshake)
    }

    /// True when a false-positive guard fired on this flow.
    pub fn guarded(&self) -> bool {
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

    /// Drops shape evidence gathered before a guard fired.
    fn apply_guard(&mut self) {
        self.flags |= GUARDED;
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

/// Cheap fingerprint of a segment (length, head, tail) for retransmissions.
fn fingerprint(p: &[u8]) -> u32 {
    let head = &p[..p.len().min(16)];
    let tail = &p[p.len().saturating_sub(8)..];
    let mut h: u32 = 0x811c_9dc5 ^ (p.len() as u32);
    for &b in head.iter().chain(tail) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h | 1
}

pub struct DpiEngine {
    config: DpiConfig,
    http: http::HttpMatcher,
    lsd: lsd::LsdMatcher,
    known: KnownPeers,
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
            http: http::HttpMatcher::new(),
            lsd: lsd::LsdMatcher::new(),
            known: KnownPeers::new(capacity, ttl_ns),
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
        if state.flags & DECIDED_BITTORRENT != 0 {
            if let Some(d) = state.lead {
                return Inspection::BitTorrent(d);
            }
        }
        if state.flags & DECIDED_CLEAN != 0 {
            return Inspection::Clean;
        }
        let dir = ctx.direction as usize;
        let first_of_flow = state.payload_packets == [0, 0];
        state.payload_packets[dir] = state.payload_packets[dir].saturating_add(1);

        match ctx.transport {
            Transport::Tcp => self.tcp(state, ctx, now_ns),
            Transport::Udp => self.udp(state, ctx, now_ns),
        }
        if first_of_flow && !state.score().0 {
            if let Some(found) = self.check_endpoints(state, ctx, now_ns) {
                return found;
            }
        }
        self.judge(state, ctx, now_ns)
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
                state.lead = Some(d);
                state.flags |= DECIDED_BITTORRENT;
                Some(Inspection::BitTorrent(d))
            }
            PeerTier::Advertised => {
                state.flags |= ADVERTISED_ENDPOINT;
                None
            }
        }
    }

    fn judge(&self, state: &mut FlowDpiState, ctx: &PayloadCtx<'_>, now_ns: u64) -> Inspection {
        let (definitive, strong, mut points) = state.score();
        if !definitive
            && strong
            && points < CONDEMN_POINTS
            && state.flags & ADVERTISED_ENDPOINT == 0
        {
            // The cache may have learned an endpoint since the flow began.
            if let Some(found) = self.check_endpoints(state, ctx, now_ns) {
                return found;
            }
        }
        if state.flags & ADVERTISED_ENDPOINT != 0 {
            points = points.saturating_add(ADVERTISED_POINTS);
        }
        if definitive || (strong && points >= CONDEMN_POINTS) {
            if let Some(d) = state.lead {
                state.flags |= DECIDED_BITTORRENT;
                return Inspection::BitTorrent(d);
            }
        }
        let max = self.config.max_payload_packets;
        let [a, b] = state.payload_packets;
        if (a >= max && (b >= max || b == 0)) || (b >= max && a == 0) {
            state.flags |= DECIDED_CLEAN;
            return Inspection::Clean;
        }
        Inspection::Pending
    }

    fn confirm(&mut self, ip: IpAddr, port: u16, now_ns: u64) {
        self.known.insert(ip, port, PeerTier::Confirmed, now_ns);
    }

    fn advertise(&mut self, ip: IpAddr, port: u16, now_ns: u64) {
        if self.config.learn_advertised_peers {
            self.known.insert(ip, port, PeerTier::Advertised, now_ns);
        }
    }

    // ---- TCP ----

    fn tcp(&mut self, st: &mut FlowDpiState, ctx: &PayloadCtx<'_>, now_ns: u64) {
        let dir = ctx.direction as usize;
        let p = ctx.payload;
        let fp = fingerprint(p);
        if st.last_fingerprint[dir] == fp {
            return; // a retransmission: already seen
        }
        st.last_fingerprint[dir] = fp;
        let stream_start = st.stream_len[dir] == 0;
        if stream_start && guards::tcp(p).is_some() {
            st.apply_guard();
        }
        if self.enabled(DetectorId::PeerWireHandshake) {
            self.tcp_handshake(st, ctx, now_ns);
        }
        let http_on = self.enabled(DetectorId::HttpTracker) || self.enabled(DetectorId::HttpClient);
        // A new request may also start a later segment (keep-alive).
        if http_on && (stream_start || p.starts_with(b"GET ")) {
            if let Some(e) = self.http.inspect(p) {
                if let (Some(c), true) = (e.tracker, self.enabled(DetectorId::HttpTracker)) {
                    st.note(DetectorId::HttpTracker, c);
                }
                if e.client_agent && self.enabled(DetectorId::HttpClient) {
                    st.note(DetectorId::HttpClient, Confidence::Strong);
                }
            }
        }
        if self.enabled(DetectorId::PeerWireFraming) || self.enabled(DetectorId::ExtensionHandshake)
        {
            self.tcp_framing(st, ctx, now_ns);
        }
        if self.enabled(DetectorId::Mse) {
            if let Some(c) = st.mse.feed(dir, p) {
                st.note(DetectorId::Mse, c);
            }
        }
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        st.stream_len[dir] = st.stream_len[dir].saturating_add(len);
    }

    fn tcp_handshake(&mut self, st: &mut FlowDpiState, ctx: &PayloadCtx<'_>, now_ns: u64) {
        let dir = ctx.direction as usize;
        let p = ctx.payload;
        let have = usize::from(st.stream_len[dir]);
        let pstr_len = handshake::PSTR.len();
        let complete = if have < pstr_len {
            // Reassemble the first 20 bytes of the direction.
            let take = (pstr_len - have).min(p.len());
            st.prefix[dir][have..have + take].copy_from_slice(&p[..take]);
            handshake::match_prefix(&st.prefix[dir][..have + take]) == PrefixMatch::Complete
        } else {
            false
        };
        // Also at any segment start: after an MSE negotiation that selected
        // plaintext, the handshake follows the key exchange.
        let complete = complete || handshake::match_prefix(p) == PrefixMatch::Complete;
        if !complete {
            return;
        }
        if let Some(info) = handshake::info(p) {
            st.handshake = info;
        }
        st.note(DetectorId::PeerWireHandshake, Confidence::Definitive);
        if ctx.direction == Direction::Responder {
            // The responder spoke BitTorrent on its listening port.
            self.confirm(ctx.src, ctx.src_port, now_ns);
        }
    }

    fn tcp_framing(&mut self, st: &mut FlowDpiState, ctx: &PayloadCtx<'_>, now_ns: u64) {
        let dir = ctx.direction as usize;
        let p = ctx.payload;
        if handshake::is_msdo(p) {
            st.apply_guard();
            return;
        }
        // A handshake segment may carry the first messages after its 68 bytes.
        let body = if handshake::match_prefix(p) == PrefixMatch::Complete {
            p.get(handshake::HANDSHAKE_LEN..).unwrap_or(&[])
        } else {
            p
        };
        if body.is_empty() {
            return;
        }
        let Some(f) = framing::scan(body) else {
            return;
        };
        if let Some(c) = f.extension {
            if self.enabled(DetectorId::ExtensionHandshake) {
                st.note(DetectorId::ExtensionHandshake, c);
                if c == Confidence::Definitive && ctx.direction == Direction::Responder {
                    self.confirm(ctx.src, ctx.src_port, now_ns);
                }
            }
        }
        let Some(mut c) = f.confidence() else {
            return;
        };
        st.flags |= FRAMING_SEEN[dir];
        // Well-formed messages from both sides: a peer-wire conversation.
        if st.flags & FRAMING_SEEN[dir ^ 1] != 0 {
            c = c.max(Confidence::Strong);
        }
        if self.enabled(DetectorId::PeerWireFraming) {
            st.note(DetectorId::PeerWireFraming, c);
        }
    }

    // ---- UDP ----

    fn udp(&mut self, st: &mut FlowDpiState, ctx: &PayloadCtx<'_>, now_ns: u64) {
        let p = ctx.payload;
        if !st.guarded() && guards::udp(p, ctx.src_port, ctx.dst_port).is_some() {
            st.apply_guard();
        }
        let before = st.evidence;
        self.udp_datagram(st, ctx, p, true, now_ns);
        if st.evidence == before {
            // Nothing in the datagram itself: maybe it is SOCKS5-relayed.
            if let Some(inner) = socks5::unwrap(p) {
                self.udp_datagram(st, ctx, inner, false, now_ns);
            }
        }
    }

    /// The UDP detectors over one datagram. `direct` is false for a datagram
    /// unwrapped from SOCKS5: its peer is not the flow's other endpoint, so
    /// nothing per-flow (uTP, tracker exchanges) or per-endpoint is learned.
    fn udp_datagram(
        &mut self,
        st: &mut FlowDpiState,
        ctx: &PayloadCtx<'_>,
        d: &[u8],
        direct: bool,
        now_ns: u64,
    ) {
        let dir = ctx.direction as usize;
        if self.enabled(DetectorId::Lsd) {
            if let Some(c) = self.lsd.inspect(d, ctx.dst, ctx.dst_port) {
                st.note(DetectorId::Lsd, c);
                return;
            }
        }
        if self.enabled(DetectorId::Dht) {
            if let Some(k) = dht::parse(d) {
                st.note(DetectorId::Dht, k.confidence);
                if direct && k.confidence == Confidence::Definitive {
                    self.learn_from_krpc(ctx, &k, now_ns);
                }
                return;
            }
        }
        if self.enabled(DetectorId::Utp) {
            if let Some(h) = utp::parse(d) {
                if h.kind == utp::ST_DATA
                    && handshake::match_prefix(h.payload(d)) == PrefixMatch::Complete
                {
                    st.note(DetectorId::Utp, Confidence::Definitive);
                    if direct {
                        self.confirm(ctx.src, ctx.src_port, now_ns);
                        self.confirm(ctx.dst, ctx.dst_port, now_ns);
                    }
                    return;
                }
                if direct {
                    let c = match st.utp.feed(dir, &h) {
                        UtpEvidence::Handshake => Some(Confidence::Definitive),
                        // Header-field consistency, not a handshake: void on
                        // a flow that a guard (STUN, DTLS, …) claimed.
                        UtpEvidence::CrossDirection | UtpEvidence::Stream if !st.guarded() => {
                            Some(Confidence::Definitive)
                        }
                        UtpEvidence::CrossDirectionIds => Some(Confidence::Strong),
                        UtpEvidence::Syn => Some(Confidence::Weak),
                        _ => None,
                    };
                    if let Some(c) = c {
                        st.note(DetectorId::Utp, c);
                        if c == Confidence::Definitive {
                            self.confirm(ctx.src, ctx.src_port, now_ns);
                            self.confirm(ctx.dst, ctx.dst_port, now_ns);
                        }
                        return;
                    }
                }
            }
        }
        if self.enabled(DetectorId::UdpTracker) {
            let mut scratch = TrackerState::default();
            let tracker = if direct {
                &mut st.tracker
            } else {
                &mut scratch
            };
            let (ev, peers) = tracker.feed(dir, d);
            let c = match ev {
                Some(TrackerEvidence::Matched) => Confidence::Definitive,
                Some(TrackerEvidence::ConnectRequest | TrackerEvidence::AnnounceWithPeerId) => {
                    Confidence::Strong
                }
                Some(TrackerEvidence::RequestShape) => Confidence::Weak,
                None => return,
            };
            st.note(DetectorId::UdpTracker, c);
            if direct {
                self.learn_compact_peers(peers, ctx.src.is_ipv6(), now_ns);
            }
        }
    }

    fn learn_from_krpc(&mut self, ctx: &PayloadCtx<'_>, k: &dht::Krpc<'_>, now_ns: u64) {
        // The sender runs a DHT node on this port.
        self.confirm(ctx.src, ctx.src_port, now_ns);
        if k.kind == dht::KrpcKind::Query {
            // Whom it queried was named by someone else's node list.
            self.advertise(ctx.dst, ctx.dst_port, now_ns);
        }
        if let Some(list) = k.values {
            for (ip, port) in dht::values(list).take(MAX_LEARNED_PER_PACKET) {
                if let Some(ip) = ip_from(ip) {
                    self.advertise(ip, port, now_ns);
                }
            }
        }
    }

    /// Compact peers (BEP 23 style: 6 bytes IPv4 or 18 bytes IPv6 each).
    fn learn_compact_peers(&mut self, peers: &[u8], ipv6: bool, now_ns: u64) {
        let unit = if ipv6 { 18 } else { 6 };
        for peer in peers.chunks_exact(unit).take(MAX_LEARNED_PER_PACKET) {
            let (ip, port) = peer.split_at(unit - 2);
            if let Some(ip) = ip_from(ip) {
                self.advertise(ip, u16::from_be_bytes([port[0], port[1]]), now_ns);
            }
        }
    }

    /// Optional: feed later payload packets of a flow already judged
    /// BitTorrent, so that peer lists in DHT responses reach the known-peer
    /// cache (a flow is decided on its query, before the response carrying
    /// the `values` arrives). Cheap: a one-byte gate, then one bencode walk.
    pub fn learn_from_bittorrent_flow(&mut self, ctx: &PayloadCtx<'_>, now_ns: u64) {
        if ctx.transport != Transport::Udp || ctx.payload.first() != Some(&b'd') {
            return;
        }
        if let Some(k) = dht::parse(ctx.payload) {
            if k.confidence == Confidence::Definitive {
                self.learn_from_krpc(ctx, &k, now_ns);
            }
        }
    }
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from([b[0], b[1], b[2], b[3]])),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(IpAddr::from(a))
        }
        _ => None,
    }
}
