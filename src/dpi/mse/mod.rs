//! Message Stream Encryption / Protocol Encryption (MSE/PE), the obfuscated
//! BitTorrent handshake that neither nDPI nor libprotoident recognises.
//!
//! The exchange (Vuze/libtorrent specification; A connects, B answers):
//! - A1: Ya (96-byte Diffie-Hellman key) + PadA (0–512 random bytes)
//! - B1: Yb + PadB — B answers once it has read Ya
//! - A2: HASH('req1', S) (20) ‖ HASH('req2', SKEY) ⊕ HASH('req3', S) (20) ‖
//!   RC4(VC 8 ‖ crypto_provide 4 ‖ len(PadC) 2 ‖ PadC ‖ len(IA) 2) ‖ RC4(IA)
//!   — A needs S, so it cannot send this before Yb arrives
//! - B2: RC4(VC ‖ crypto_select 4 ‖ len(PadD) 2 ‖ PadD) ‖ the payload stream
//!
//! Everything is judged on flights (`flights`: a direction's bytes until the
//! other side sends), never on segments.
//!
//! # The rule
//! **Envelope** (`Reason::MseEnvelope`, Strong, 2 points): A1 and B1 flights
//! of 96–608 bytes whose first bytes are opaque (no plaintext start, no
//! length field) and random-looking (`envelope`), B1 sent after B's stack
//! acknowledged ≥ 96 bytes of A1, then A2 of ≥ 56 bytes with an opaque start.
//! It never condemns alone: obfs4 handshakes (141–8192 bytes, uniform
//! padding) land in both 96–608 windows for ~0.3 % of flows, Shadowsocks
//! AEAD and other fully-encrypted protocols can too. With an Advertised or
//! Confirmed endpoint, or host fan-out (engine hook), the combining rule
//! condemns it (2 + 2 points).
//!
//! **Size signatures** (exact flight sizes the clients' code produces):
//! - `MseA2Exact`: the A2 flight is exactly 124 bytes (56 + the 68-byte
//!   handshake, no PadC: Transmission, rTorrent).
//! - `MseB2Exact`: the B2 flight or its first segment is exactly 14 (VC,
//!   crypto_select, len(PadD), no PadD; then IA was empty: A2 ≤ 568) or 82
//!   (that and the handshake, Transmission; then A2 carried IA: ≥ 124).
//!   First segment too: the B2 flight may go on with a bitfield, and a
//!   write of 14 shows as a 14-byte segment.
//! - `MseThirdFlight68`: right after B2, A's third flight is exactly 68 bytes
//!   (its handshake sent alone after an empty IA: aria2, and libtorrent
//!   2.0 as initiator), A2 ≤ 568 and B2 14–526 bytes as an empty IA
//!   implies.
//!
//! **One size signature does not condemn; two do** (MSE Definitive). A
//! random flight size hits one given value among the ~500 the envelope
//! allows: ~2e-3 per signature, ~5e-3 for any of the three on a flow that
//! already passed the envelope. That is what the lab's adversarial
//! look-alike measured (`tests/data/lab/benign-envelope.pcap`: a random
//! ping-pong drawing its flights from MSE's own size ranges; 1 flow of 120
//! had A2 = 124 and nothing else), and an ISP sees millions of flows: one
//! number is not enough to ban a subscriber. Two independent sizes hit
//! together at ~1e-5 of envelope flows (~3e-8 of obfs4 flows). A single
//! signature still counts as a reason, and the flow is condemned with it
//! when the combining rule adds an endpoint or the host's fan-out (the
//! envelope's 2 points + 2).
//!
//! **Envelope + one certain fact condemns** (MSE Definitive):
//! - `MsePlaintextSelected`: `\x13BitTorrent protocol` in the clear in B's
//!   stream 14–526 bytes into B2 (after VC, crypto_select, len(PadD), PadD),
//!   or at the start of A's or B's third flight, or two or more valid
//!   peer-wire messages opening A's third flight. Certain: 20 fixed bytes
//!   (or two length/id pairs from a short list) do not occur in RC4 output.
//! - `MseMessageLengths`: ciphertext boundaries at BitTorrent message
//!   lengths, one of them a 16397-byte piece (`lengths`, with the TLS
//!   record sizes ruled out by construction).
//!
//! The facts are independent of the envelope's own tests (sizes of later
//! flights, content after the exchange), so the rates multiply: an
//! obfuscated proxy passes envelope + one fact for ~0.3 % × ~2e-3 of flows.
//! Plaintext-selected and message lengths are certain enough to also confirm
//! the responder's ip:port (its listening port) in the known-peer cache, so
//! later flows to it are judged without waiting; the single-number
//! signatures condemn the flow only.
//!
//! An envelope flow stays under inspection for `MAX_PAYLOAD_PACKETS` payload
//! packets per direction (the engine's budget), so that the message phase
//! can be measured. A flow whose flight order was lost (too many gaps for
//! the out-of-order buffer: `flights`) or on which a guard fired is not
//! judged by MSE at all.
use memchr::memmem;

use super::detector::{Detector, Findings, Payload};
use super::handshake::{self, PrefixMatch};
use super::{framing, Confidence, DetectorId, Direction, Reason};

mod envelope;
mod lengths;

/// A 768-bit DH public key.
const KEY_LEN: u16 = 96;
/// PadA and PadB are at most 512 bytes.
const MAX_PAD: u16 = 512;
const MAX_KEY_FLIGHT: u16 = KEY_LEN + MAX_PAD;
/// Two 20-byte hashes, VC (8), crypto_provide (4), len(PadC) (2), len(IA) (2).
const MIN_A2: u32 = 56;
/// VC (8), crypto_select (4), len(PadD) (2).
const B2_HEAD: u32 = 14;
/// A2 with no PadC and the handshake as IA.
const A2_EXACT: u16 = 56 + 68;
/// A2 with an empty IA: 56 + PadC.
const MAX_A2_WITHOUT_IA: u16 = MIN_A2 as u16 + MAX_PAD;
/// B2's head alone, or with the handshake.
const B2_EXACT: [u16; 2] = [14, 14 + 68];
/// Payload packets per direction inspected on an envelope flow.
pub(super) const MAX_PAYLOAD_PACKETS: u8 = 48;

/// Flight indices (A = originator).
const A1: usize = 0;
const B1: usize = 1;
const A2: usize = 2;
const B2: usize = 3;
const A3: usize = 4;
const B3: usize = 5;

const DEAD: u8 = 0x01;
const ENVELOPE: u8 = 0x02;
/// A fact was found: MSE Definitive was noted.
const CONDEMNED: u8 = 0x04;

/// What the detector measures, by phase of the exchange: the randomness of
/// the key flight in progress, then the message boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Key(envelope::ByteStats),
    Messages(lengths::Lengths),
}

impl Default for Stage {
    fn default() -> Self {
        Stage::Key(envelope::ByteStats::default())
    }
}

/// Per-flow memory of the MSE detector (kept in `FlowDpiState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct MseState {
    flags: u8,
    /// Size signatures seen (`SIGNATURES` bits).
    signatures: u8,
    stage: Stage,
}

/// The size signatures, one bit each in `MseState::signatures`.
const SIGNATURES: [Reason; 3] = [
    Reason::MseA2Exact,
    Reason::MseB2Exact,
    Reason::MseThirdFlight68,
];

/// Size signatures that condemn together.
const CONDEMNING_SIGNATURES: u32 = 2;

/// `r`'s bit in `MseState::signatures` (0 for a reason that is not one).
fn signature_bit(r: Reason) -> u8 {
    SIGNATURES
        .iter()
        .position(|&x| x == r)
        .map_or(0, |k| 1 << k)
}

/// The MSE detector: the envelope (Strong), and the facts that condemn with
/// it (Definitive). Engine-wide data: the handshake string's searcher.
pub(super) struct Mse {
    pstr: memmem::Finder<'static>,
}

impl Mse {
    pub(super) fn new() -> Self {
        Mse {
            pstr: memmem::Finder::new(handshake::PSTR),
        }
    }
}

impl Detector for Mse {
    type Memory = MseState;

    #[inline]
    fn inspect(&self, m: &mut MseState, p: &Payload<'_>, out: &mut Findings<'_>) {
        if m.flags & (DEAD | CONDEMNED) != 0 || !out.enabled(DetectorId::Mse) {
            return;
        }
        if out.guarded() || p.flights.lost() || !p.flights.originator_first() {
            m.flags |= DEAD;
            return;
        }
        let before = m.signatures;
        let step = self.step(m, p);
        if m.flags & DEAD != 0 {
            return;
        }
        let new = m.signatures & !before;
        if new != 0 {
            for r in SIGNATURES {
                if new & signature_bit(r) != 0 {
                    out.reason(r);
                }
            }
            if m.signatures.count_ones() >= CONDEMNING_SIGNATURES {
                out.note(DetectorId::Mse, Confidence::Definitive);
                m.flags |= CONDEMNED;
                // The responder's listening endpoint, as an Advertised peer:
                // another flow to it is condemned only if it shows the
                // envelope itself (2 + 2 points), so a rare false pair of
                // sizes cannot spread to a server's other clients.
                let (ip, port) = p.ctx.responder();
                out.advertise(ip, port);
                return;
            }
        }
        match step {
            None => {}
            Some(Step::Envelope) => {
                out.reason(Reason::MseEnvelope);
                out.note(DetectorId::Mse, Confidence::Strong);
            }
            Some(Step::Fact(r)) => {
                out.reason(r);
                out.note(DetectorId::Mse, Confidence::Definitive);
                m.flags |= CONDEMNED;
                let (ip, port) = p.ctx.responder();
                out.confirm(ip, port);
            }
        }
    }
}

/// What one segment established.
enum Step {
    Envelope,
    Fact(Reason),
}

impl Mse {
    /// Advances the model by one segment; sets `DEAD` when the flow leaves it.
    #[inline]
    fn step(&self, m: &mut MseState, p: &Payload<'_>) -> Option<Step> {
        let f = p.flights;
        let i = f.current()?;
        let bytes = p.bytes;
        if p.opens_flight {
            let ok = match i {
                A1 => envelope::opaque(bytes),
                B1 => {
                    let ack_ok = p.ctx.tcp_flags & ACK == 0
                        || p.streams.acked(Direction::Originator, p.ctx.tcp_ack)
                            >= u32::from(KEY_LEN);
                    self.key_flight_done(m, f.len(A1)) && ack_ok && envelope::opaque(bytes)
                }
                A2 => {
                    let ok = self.key_flight_done(m, f.len(B1)) && envelope::opaque(bytes);
                    m.stage = Stage::Messages(lengths::Lengths::default());
                    ok
                }
                _ => m.flags & ENVELOPE != 0,
            };
            if !ok {
                m.flags |= DEAD;
                return None;
            }
            if let Some(fact) = self.opening(m, p, i) {
                return Some(Step::Fact(fact));
            }
        }
        match (i, &mut m.stage) {
            (A1 | B1, Stage::Key(stats)) => {
                stats.add(bytes);
                None
            }
            (A2, _) if m.flags & ENVELOPE == 0 && f.open_len(p.streams) >= MIN_A2 => {
                m.flags |= ENVELOPE;
                Some(Step::Envelope)
            }
            (B2, _) if self.plaintext_in_b2(p) => Some(Step::Fact(Reason::MsePlaintextSelected)),
            (_, Stage::Messages(l)) if i >= A3 => {
                let d = p.ctx.direction.index();
                let psh = p.ctx.tcp_flags & PSH != 0;
                l.segment(d, p.offset, bytes.len(), psh)
                    .then_some(Step::Fact(Reason::MseMessageLengths))
            }
            _ => None,
        }
    }

    /// At the opening of B1 or A2: the key flight before it was 96–608
    /// bytes of random-looking data. Resets the statistics for the next.
    fn key_flight_done(&self, m: &mut MseState, len: Option<u16>) -> bool {
        let random = matches!(m.stage, Stage::Key(s) if s.looks_random());
        m.stage = Stage::Key(envelope::ByteStats::default());
        random && len.is_some_and(|l| (KEY_LEN..=MAX_KEY_FLIGHT).contains(&l))
    }

    /// What a flight's opening settles (the flight before it is closed):
    /// size signatures go to `m.signatures`; a certain fact is returned.
    fn opening(&self, m: &mut MseState, p: &Payload<'_>, i: usize) -> Option<Reason> {
        let f = p.flights;
        let mut found = |r: Reason| m.signatures |= signature_bit(r);
        match i {
            B2 => {
                if f.len(A2) == Some(A2_EXACT) {
                    found(Reason::MseA2Exact);
                }
                if f.first_segment(B2).is_some_and(|n| b2_exact(n, f.len(A2))) {
                    found(Reason::MseB2Exact);
                }
                None
            }
            A3 | B3 => {
                if i == A3 && f.len(B2).is_some_and(|n| b2_exact(n, f.len(A2))) {
                    found(Reason::MseB2Exact);
                }
                let a3 = if i == A3 {
                    u16::try_from(p.bytes.len()).ok()
                } else {
                    f.len(A3)
                };
                if third_flight_68(f, a3) {
                    found(Reason::MseThirdFlight68);
                }
                // The message phase of this direction begins after its two
                // handshake flights.
                if let Stage::Messages(l) = &mut m.stage {
                    l.begin(p.ctx.direction.index(), f.start(p.ctx.direction));
                }
                let plaintext = if i == A3 {
                    plaintext_peer_wire(p.bytes)
                } else {
                    handshake::match_prefix(p.bytes) == PrefixMatch::Complete
                };
                plaintext.then_some(Reason::MsePlaintextSelected)
            }
            _ => None,
        }
    }

    /// `\x13BitTorrent protocol` 14–526 bytes into B2 (after PadD), within
    /// this segment.
    fn plaintext_in_b2(&self, p: &Payload<'_>) -> bool {
        if p.ctx.direction != Direction::Responder {
            return false;
        }
        let start = p.flights.start(Direction::Responder);
        let lo = start.wrapping_add(B2_HEAD);
        let hi = lo + u32::from(MAX_PAD) + handshake::PSTR.len() as u32;
        let seg_lo = p.offset;
        let seg_hi = seg_lo.wrapping_add(p.bytes.len() as u32);
        let from = lo.max(seg_lo).wrapping_sub(seg_lo) as usize;
        let to = hi.min(seg_hi).wrapping_sub(seg_lo) as usize;
        p.bytes
            .get(from..to)
            .is_some_and(|w| self.pstr.find(w).is_some())
    }
}

/// B2 of 14 (no PadD, B's handshake not yet sent: A sent IA empty, so A2
/// was 56 + PadC ≤ 568) or 82 (14 and B's handshake, the answer to A's
/// handshake in IA: A2 ≥ 124). The A2 bound comes from the same spec and
/// halves the chance that a random size passes.
fn b2_exact(b2: u16, a2: Option<u16>) -> bool {
    let a2 = a2.unwrap_or(0);
    (b2 == B2_EXACT[0] && a2 <= MAX_A2_WITHOUT_IA) || (b2 == B2_EXACT[1] && a2 >= A2_EXACT)
}

/// A's third flight is its 68-byte handshake alone: IA was empty, so A2 was
/// 56 + PadC ≤ 568 and B2 (VC, crypto_select, len(PadD), PadD; B cannot
/// send its handshake before it knows the torrent) 14–526 bytes. `a3` is
/// the whole flight (once B answered) or, at its opening, its first segment:
/// the handshake is one write, and B may never answer (a peer that drops a
/// duplicate connection closes right after reading it).
fn third_flight_68(f: &super::flights::Flights, a3: Option<u16>) -> bool {
    a3 == Some(handshake::HANDSHAKE_LEN as u16)
        && f.len(A2).is_some_and(|n| n <= MAX_A2_WITHOUT_IA)
        && f.len(B2)
            .is_some_and(|n| (B2_HEAD as u16..=B2_HEAD as u16 + MAX_PAD).contains(&n))
}

const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// A flight that opens with the handshake or with two or more well-formed
/// peer-wire messages: BitTorrent in the clear.
fn plaintext_peer_wire(bytes: &[u8]) -> bool {
    handshake::match_prefix(bytes) == PrefixMatch::Complete
        || framing::scan(bytes).is_some_and(|s| s.messages >= 2)
}

#[cfg(test)]
pub(crate) mod tests {
    /// Deterministic uniform bytes (xorshift), standing in for DH keys and RC4.
    pub(crate) fn random_bytes(seed: u32, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 7) as u8
            })
            .collect()
    }

    /// Sizes of the real MSE flow in positive/bittorrent_tcp_miss.pcapng.
    pub(crate) const TCP_MISS_SIZES: [(usize, usize); 4] = [(0, 198), (1, 424), (0, 471), (1, 240)];
}
