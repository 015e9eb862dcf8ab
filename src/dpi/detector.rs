//! The one shape every detector has: a type implementing [`Detector`], which
//! looks at a [`Payload`] with its memory of the flow and reports what it found
//! to [`Findings`].
//!
//! A detector owns everything about its protocol: which of its switches must
//! be on, what its findings are worth (the `Confidence` it notes), and which
//! endpoints its messages prove or name (what it reports for the known-peer
//! cache). The engine owns the rest: which payloads reach which detectors, the
//! flow's evidence and the combining rule, and the cache itself.
use std::net::IpAddr;

use super::flights::Flights;
use super::known_peers::{KnownPeers, PeerTier};
use super::stream::{Placed, Streams};
use super::{Confidence, DetectorId, DetectorSwitches, DpiConfig, PayloadCtx, Tally};

/// Peers learned from one peer list at most (bounds the work per packet).
pub(super) const MAX_LEARNED_PER_PACKET: usize = 64;

/// A BitTorrent detector. Static calls only: the engine names each detector in
/// its TCP or UDP list (`Detectors` in `mod.rs`). Implementations mark
/// `inspect` `#[inline]` (and the parser or state step it calls once per
/// packet): a list then compiles into one function, and the cost per packet
/// stays what one hand-written engine function costs (the dpi bench).
pub(super) trait Detector {
    /// The detector's memory of one flow, kept inline in `FlowDpiState`: fixed
    /// size, no heap. `()` for a detector that judges each payload alone.
    type Memory;

    /// Looks at one payload. Returns nothing: evidence, guards and learned
    /// endpoints go to `out`. Checks its own switches (`out.enabled`) first.
    fn inspect(&self, memory: &mut Self::Memory, p: &Payload<'_>, out: &mut Findings<'_>);
}

/// One payload as a detector sees it.
pub(super) struct Payload<'a> {
    /// The packet: transport, direction, endpoints. Its `payload` is the whole
    /// L4 payload; judge `bytes`.
    pub ctx: &'a PayloadCtx<'a>,
    /// The bytes to judge: the TCP segment, the UDP datagram, or the datagram
    /// unwrapped from SOCKS5.
    pub bytes: &'a [u8],
    /// TCP: stream offset of `bytes[0]` in its direction (saturating); 0 for
    /// UDP.
    pub stream_at: u16,
    /// TCP: the same offset, exact (modulo 2³²); 0 for UDP.
    pub offset: u32,
    /// TCP: the flow's stream positions and flights, this segment counted;
    /// empty for UDP.
    pub streams: &'a Streams,
    pub flights: &'a Flights,
    /// TCP: this segment opened a flight.
    pub opens_flight: bool,
    /// A datagram relayed through SOCKS5: its peer is not the flow's other
    /// endpoint, so it must not move the flow's memory of the exchange.
    pub relayed: bool,
}

static NO_STREAMS: Streams = Streams::EMPTY;
static NO_FLIGHTS: Flights = Flights::EMPTY;

impl<'a> Payload<'a> {
    /// The new bytes of a TCP segment, as `streams` placed it and `flights`
    /// counted it.
    pub(super) fn segment(
        ctx: &'a PayloadCtx<'a>,
        placed: Placed,
        streams: &'a Streams,
        flights: &'a Flights,
        opens_flight: bool,
    ) -> Self {
        Payload {
            ctx,
            bytes: ctx.payload.get(placed.skip..).unwrap_or(&[]),
            stream_at: u16::try_from(placed.at).unwrap_or(u16::MAX),
            offset: placed.at,
            streams,
            flights,
            opens_flight,
            relayed: false,
        }
    }

    /// A UDP datagram: the packet's own, or one relayed inside it.
    pub(super) fn datagram(ctx: &'a PayloadCtx<'a>, bytes: &'a [u8], relayed: bool) -> Self {
        Payload {
            ctx,
            bytes,
            stream_at: 0,
            offset: 0,
            streams: &NO_STREAMS,
            flights: &NO_FLIGHTS,
            opens_flight: false,
            relayed,
        }
    }
}

/// Where detectors report, for one packet: evidence goes to the flow's tally
/// at once (a guard fired by one detector already voids the shape evidence of
/// the next), learned endpoints to the known-peer cache.
pub(super) struct Findings<'f> {
    tally: &'f mut Tally,
    known: &'f mut KnownPeers,
    now_ns: u64,
    switches: DetectorSwitches,
    learn_advertised: bool,
    /// False while the payload is a relayed datagram: its endpoints are not
    /// the ones the packet names.
    learning: bool,
    /// Whether `note` was called since `begin`.
    reported: bool,
}

impl<'f> Findings<'f> {
    pub(super) fn new(
        tally: &'f mut Tally,
        known: &'f mut KnownPeers,
        config: &DpiConfig,
        now_ns: u64,
    ) -> Self {
        Findings {
            tally,
            known,
            now_ns,
            switches: config.detectors,
            learn_advertised: config.learn_advertised_peers,
            learning: true,
            reported: false,
        }
    }

    /// Before the detectors look at `p` (each UDP datagram pass).
    #[inline]
    pub(super) fn begin(&mut self, p: &Payload<'_>) {
        self.reported = false;
        self.learning = !p.relayed;
    }

    /// Whether a detector noted evidence since `begin` (even evidence that a
    /// guard then voided): it recognised the payload as its protocol.
    #[inline]
    pub(super) fn reported(&self) -> bool {
        self.reported
    }

    /// Whether the detector `id` is switched on. A detector checks this before
    /// noting evidence for `id`, and may skip its work when all its ids are off.
    #[inline]
    pub(super) fn enabled(&self, id: DetectorId) -> bool {
        self.switches.is_enabled(id)
    }

    /// Evidence for `id` at `c` (kept at its best per flow; see the combining
    /// rule).
    #[inline]
    pub(super) fn note(&mut self, id: DetectorId, c: Confidence) {
        debug_assert!(self.enabled(id), "{} is switched off", id.name());
        self.reported = true;
        self.tally.note(id, c);
    }

    /// A fact below a detector, for the reason chain (`reasons`). Facts of
    /// a shape heuristic on a guarded flow are dropped with its evidence.
    #[inline]
    pub(super) fn reason(&mut self, r: super::Reason) {
        self.tally.add_fact(r);
    }

    /// The payload is another protocol (MSDO, …): voids shape evidence.
    #[inline]
    pub(super) fn guard(&mut self) {
        self.tally.apply_guard();
    }

    /// True when a guard fired on this flow.
    #[inline]
    pub(super) fn guarded(&self) -> bool {
        self.tally.guarded()
    }

    /// The flow's evidence so far, to see whether a pass added any.
    #[inline]
    pub(super) fn evidence(&self) -> [u8; DetectorId::COUNT] {
        self.tally.evidence
    }

    /// `ip:port` spoke BitTorrent itself (a Definitive detection).
    pub(super) fn confirm(&mut self, ip: IpAddr, port: u16) {
        if self.learning {
            self.known
                .insert(ip, port, PeerTier::Confirmed, self.now_ns);
        }
    }

    /// `ip:port` was named as a BitTorrent peer (a DHT or tracker peer list).
    pub(super) fn advertise(&mut self, ip: IpAddr, port: u16) {
        if self.learning && self.learn_advertised {
            self.known
                .insert(ip, port, PeerTier::Advertised, self.now_ns);
        }
    }

    /// As `advertise`, for a compact address: 4 (IPv4) or 16 (IPv6) bytes;
    /// other lengths are ignored.
    pub(super) fn advertise_compact(&mut self, ip: &[u8], port: u16) {
        if let Some(ip) = ip_from(ip) {
            self.advertise(ip, port);
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
