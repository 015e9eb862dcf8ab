//! Message Stream Encryption / Protocol Encryption (MSE/PE), the obfuscated
//! BitTorrent handshake that neither nDPI nor the Go btblocker recognises.
//!
//! The exchange (Vuze/libtorrent specification) is:
//! 1. A→B: Ya (96-byte Diffie-Hellman public key) + PadA (0–512 random bytes)
//! 2. B→A: Yb + PadB — B answers as soon as it has Ya
//! 3. A→B: HASH('req1', S) (20) ‖ HASH('req2', SKEY) xor HASH('req3', S) (20) ‖
//!    RC4(VC(8) ‖ crypto_provide(4) ‖ len(PadC)(2) ‖ PadC ‖ len(IA)(2)) ‖ RC4(IA)
//!    — A cannot send this before Yb arrives, it needs S
//! 4. B→A: RC4(VC ‖ crypto_select ‖ len(PadD) ‖ PadD) ‖ payload
//!
//! Everything on the wire is random-looking, so the model is the shape: the
//! originator speaks first with 96–608 random bytes and then waits; the
//! responder answers with 96–608 random bytes; only then does the originator
//! send again, at least 56 bytes. Other key exchanges share parts of it
//! (Ethereum RLPx, Telegram MTProto, Spotify, zlib-compressed Zabbix), and the
//! checks that rule them out are generic: a plaintext start (TLS, SSH, HTTP,
//! any 8 printable bytes), a length field in the first bytes that equals the
//! segment length (EIP-8 RLPx `auth-size`, Spotify, Zabbix), a responder or
//! originator that breaks the alternation, or a flight outside the DH+pad
//! bounds. Even so the shape is Strong at most: it condemns a flow only with
//! corroboration (see the combining rule in `mod.rs`).

use super::detector::{Detector, Findings, Payload};
use super::Direction::{self, Originator, Responder};
use super::{Confidence, DetectorId};

/// A 768-bit DH public key.
pub(super) const KEY_LEN: usize = 96;
/// PadA and PadB are at most 512 bytes.
pub(super) const MAX_PAD: usize = 512;
pub(super) const MAX_FIRST_FLIGHT: usize = KEY_LEN + MAX_PAD;
/// Two 20-byte hashes, VC (8), crypto_provide (4), len(PadC) (2), len(IA) (2).
pub(super) const MIN_THIRD_MESSAGE: usize = 56;
/// Bytes examined by the randomness test.
const SAMPLE: usize = 256;
/// The randomness test needs at least this many bytes to mean anything.
const MIN_SAMPLE: usize = 64;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Start,
    /// The originator's first flight (Ya + PadA) is in progress.
    OriginatorKey,
    /// The responder's first flight (Yb + PadB) is in progress.
    ResponderKey,
    /// The originator answered after the key exchange: the full MSE shape.
    Confirmed,
    /// Something broke the model.
    Dead,
}

/// Per-flow memory of the MSE model (kept in `FlowDpiState`; 6 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct MseState {
    phase: Phase,
    /// Bytes of the first flight per direction.
    flight: [u16; 2],
}

impl MseState {
    /// Feeds the next (non-retransmitted) TCP payload from `dir`. Returns new
    /// evidence, if any.
    #[inline]
    pub(super) fn feed(&mut self, dir: Direction, payload: &[u8]) -> Option<Confidence> {
        let (next, evidence) = self.step(dir, payload);
        self.phase = next;
        evidence
    }

    #[inline]
    fn step(&mut self, dir: Direction, p: &[u8]) -> (Phase, Option<Confidence>) {
        let len = p.len().min(usize::from(u16::MAX));
        match (self.phase, dir) {
            (Phase::Start, Originator) if key_segment(p) => {
                self.flight[dir.index()] = len as u16;
                (Phase::OriginatorKey, None)
            }
            (Phase::OriginatorKey, Originator) => self.grow(dir, len, Phase::OriginatorKey, None),
            (Phase::OriginatorKey, Responder) if key_segment(p) && self.flight_ok(Originator) => {
                self.flight[dir.index()] = len as u16;
                (Phase::ResponderKey, Some(Confidence::Weak))
            }
            (Phase::ResponderKey, Responder) => self.grow(dir, len, Phase::ResponderKey, None),
            (Phase::ResponderKey, Originator)
                if self.flight_ok(Responder) && len >= MIN_THIRD_MESSAGE && opaque(p) =>
            {
                (Phase::Confirmed, Some(Confidence::Strong))
            }
            (Phase::Confirmed, _) => (Phase::Confirmed, None),
            _ => (Phase::Dead, None),
        }
    }

    fn grow(
        &mut self,
        dir: Direction,
        len: usize,
        stay: Phase,
        ev: Option<Confidence>,
    ) -> (Phase, Option<Confidence>) {
        let total = usize::from(self.flight[dir.index()]) + len;
        if total > MAX_FIRST_FLIGHT {
            return (Phase::Dead, None);
        }
        self.flight[dir.index()] = total as u16;
        (stay, ev)
    }

    fn flight_ok(&self, dir: Direction) -> bool {
        (KEY_LEN..=MAX_FIRST_FLIGHT).contains(&usize::from(self.flight[dir.index()]))
    }

    /// True once the full shape (through the originator's third message) was seen.
    #[cfg(test)]
    pub(super) fn confirmed(&self) -> bool {
        self.phase == Phase::Confirmed
    }
}

/// The MSE detector: the key-exchange shape, Weak once the responder
/// answered, Strong once the originator followed (`Mse`).
pub(super) struct Mse;

impl Detector for Mse {
    type Memory = MseState;

    #[inline]
    fn inspect(&self, m: &mut MseState, p: &Payload<'_>, out: &mut Findings<'_>) {
        if !out.enabled(DetectorId::Mse) {
            return;
        }
        if let Some(c) = m.feed(p.ctx.direction, p.bytes) {
            out.note(DetectorId::Mse, c);
        }
    }
}

/// The first segment of a key flight: it holds the whole 96-byte key (one
/// write), fits the key+pad bound, and is random-looking with no structure.
fn key_segment(p: &[u8]) -> bool {
    (KEY_LEN..=MAX_FIRST_FLIGHT).contains(&p.len()) && opaque(p) && looks_random(p)
}

/// No plaintext start and no leading length field.
fn opaque(p: &[u8]) -> bool {
    !plaintext_start(p) && !length_prefixed(p)
}

/// Eight printable ASCII bytes at the start: a text protocol (HTTP, SSH,
/// SMTP…), or a magic such as `ZBXD`. Random data does that with p ≈ 0.04 %.
fn plaintext_start(p: &[u8]) -> bool {
    let head = &p[..p.len().min(8)];
    head.len() == 8 && head.iter().all(|&b| (0x20..0x7f).contains(&b))
        || matches!(p, [20..=23, 3, 0..=4, ..])
}

/// A big- or little-endian length field near the start that equals the
/// segment length minus a small header: how framed protocols begin (EIP-8
/// RLPx `auth-size`, Spotify, Zabbix, most RPCs). An MSE key has no header.
fn length_prefixed(p: &[u8]) -> bool {
    let n = p.len();
    let u16_at = |at: usize, le: bool| {
        p.get(at..at + 2).map(|b| {
            usize::from(if le {
                u16::from_le_bytes([b[0], b[1]])
            } else {
                u16::from_be_bytes([b[0], b[1]])
            })
        })
    };
    let u32_at = |at: usize, le: bool| {
        p.get(at..at + 4).map(|b| {
            let a = [b[0], b[1], b[2], b[3]];
            (if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }) as usize
        })
    };
    // 16-bit fields only at offsets 0 and 2 and with headers of 0/2/4 bytes:
    // a random key matches one of these 12 cases with p ≈ 0.02 %.
    for at in [0, 2] {
        for le in [false, true] {
            if let Some(v) = u16_at(at, le) {
                if [0, 2, 4].iter().any(|&h| v + h == n) {
                    return true;
                }
            }
        }
    }
    // 32-bit fields within the first 12 bytes, headers up to 16 bytes.
    for at in 0..=8 {
        for le in [false, true] {
            if let Some(v) = u32_at(at, le) {
                if v <= n && n - v <= 16 {
                    return true;
                }
            }
        }
    }
    false
}

/// Byte statistics over the first up-to-256 bytes: the number of distinct
/// values must be near what uniform bytes give (text and structured binary
/// repeat a few values), the mean bit count near 4, printable bytes well
/// under half, and no run of 20 printable bytes. No allocation: a 256-bit set.
pub(super) fn looks_random(p: &[u8]) -> bool {
    let s = &p[..p.len().min(SAMPLE)];
    let n = s.len();
    if n < MIN_SAMPLE {
        return false;
    }
    let mut seen = [0u64; 4];
    let mut bits = 0u32;
    let mut printable = 0usize;
    let mut run = 0usize;
    let mut longest = 0usize;
    for &b in s {
        seen[usize::from(b >> 6)] |= 1 << (b & 63);
        bits += b.count_ones();
        if (0x20..0x7f).contains(&b) {
            printable += 1;
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let distinct: u32 = seen.iter().map(|w| w.count_ones()).sum();
    let nf = n as f64;
    let mean_bits = f64::from(bits) / nf;
    f64::from(distinct) >= min_distinct(n)
        && (3.4..=4.6).contains(&mean_bits)
        && printable * 10 <= n * 6
        && longest < 20
}

/// Expected distinct values among `n` uniform bytes minus 4.5 standard
/// deviations (occupancy distribution); uniform data falls below it with
/// p < 10⁻⁵.
fn min_distinct(n: usize) -> f64 {
    let m = 256.0f64;
    let k = i32::try_from(n).unwrap_or(i32::MAX);
    let q1 = (1.0 - 1.0 / m).powi(k);
    let q2 = (1.0 - 2.0 / m).powi(k);
    let mean = m * (1.0 - q1);
    let var = (m * (m - 1.0) * q2 + m * q1 - m * m * q1 * q1).max(0.0);
    mean - 4.5 * var.sqrt()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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

    /// The direction of `TCP_MISS_SIZES`' 0/1.
    fn side(dir: usize) -> Direction {
        if dir == 0 {
            Originator
        } else {
            Responder
        }
    }

    /// Sizes of the real MSE flow in positive/bittorrent_tcp_miss.pcapng.
    pub(crate) const TCP_MISS_SIZES: [(usize, usize); 4] = [(0, 198), (1, 424), (0, 471), (1, 240)];

    #[test]
    fn random_bytes_look_random_and_text_does_not() {
        for seed in 1..50 {
            assert!(looks_random(&random_bytes(seed, 96)), "seed {seed}");
            assert!(looks_random(&random_bytes(seed, 600)), "seed {seed}");
        }
        let text = b"The quick brown fox jumps over the lazy dog. ".repeat(4);
        assert!(!looks_random(&text));
        assert!(!looks_random(&[0u8; 200]));
        let ramp: Vec<u8> = (0..=255).collect();
        // Every value once: "random" by counts, but a run of 95 printables.
        assert!(!looks_random(&ramp));
        assert!(!looks_random(&random_bytes(3, 63)));
    }

    #[test]
    fn the_real_flow_shape_is_strong() {
        let mut m = MseState::default();
        let mut got = Vec::new();
        for (i, (dir, len)) in TCP_MISS_SIZES.iter().enumerate() {
            got.push(m.feed(side(*dir), &random_bytes(i as u32 + 11, *len)));
        }
        assert_eq!(
            got,
            vec![None, Some(Confidence::Weak), Some(Confidence::Strong), None]
        );
        assert!(m.confirmed());
    }

    #[test]
    fn first_flight_may_span_segments_within_the_bound() {
        let mut m = MseState::default();
        assert_eq!(m.feed(Originator, &random_bytes(1, 400)), None);
        assert_eq!(m.feed(Originator, &random_bytes(2, 200)), None);
        assert_eq!(
            m.feed(Responder, &random_bytes(3, 96)),
            Some(Confidence::Weak)
        );
        assert_eq!(
            m.feed(Originator, &random_bytes(4, 80)),
            Some(Confidence::Strong)
        );
    }

    #[test]
    fn originator_sending_past_608_bytes_before_the_answer_is_not_mse() {
        let mut m = MseState::default();
        m.feed(Originator, &random_bytes(1, 578));
        m.feed(Originator, &random_bytes(2, 169));
        assert_eq!(m.feed(Responder, &random_bytes(3, 105)), None);
        assert_eq!(m.feed(Originator, &random_bytes(4, 300)), None);
        assert!(!m.confirmed());
    }

    #[test]
    fn responder_speaking_first_is_not_mse() {
        let mut m = MseState::default();
        assert_eq!(m.feed(Responder, &random_bytes(1, 200)), None);
        assert_eq!(m.feed(Originator, &random_bytes(2, 200)), None);
        assert_eq!(m.feed(Responder, &random_bytes(3, 200)), None);
        assert_eq!(m.feed(Originator, &random_bytes(4, 200)), None);
    }

    #[test]
    fn sizes_outside_the_dh_bounds_are_not_mse() {
        for first in [95, 609, 1448] {
            let mut m = MseState::default();
            m.feed(Originator, &random_bytes(1, first));
            assert_eq!(m.feed(Responder, &random_bytes(2, 200)), None, "{first}");
        }
        let mut m = MseState::default();
        m.feed(Originator, &random_bytes(1, 200));
        m.feed(Responder, &random_bytes(2, 200));
        assert_eq!(m.feed(Originator, &random_bytes(3, 55)), None);
    }

    #[test]
    fn tls_client_hello_is_not_mse() {
        let mut hello = vec![
            0x16, 0x03, 0x01, 0x01, 0x3b, 0x01, 0x00, 0x01, 0x37, 0x03, 0x03,
        ];
        hello.extend(random_bytes(9, 309));
        let mut m = MseState::default();
        m.feed(Originator, &hello);
        assert_eq!(m.feed(Responder, &random_bytes(2, 200)), None);
        assert!(plaintext_start(&hello));
    }

    #[test]
    fn length_prefixed_key_exchanges_are_not_mse() {
        // Ethereum RLPx EIP-8 auth: u16 BE size of the rest, then 0x04 || key.
        let mut auth = vec![0x01, 0xab, 0x04];
        auth.extend(random_bytes(5, 426));
        assert!(length_prefixed(&auth));
        // Spotify: u16 version then u32 BE total length.
        let mut sp = vec![0x00, 0x04, 0x00, 0x00, 0x01, 0x49];
        sp.extend(random_bytes(6, 329 - 6));
        assert!(length_prefixed(&sp));
        // Zabbix: "ZBXD", flags, u32 LE length of the body after a 13-byte header.
        let mut zbx = b"ZBXD\x03".to_vec();
        zbx.extend_from_slice(&(300u32 - 13).to_le_bytes());
        zbx.extend_from_slice(&[0x45, 0, 0, 0]);
        zbx.extend(random_bytes(7, 300 - 13));
        assert!(length_prefixed(&zbx));
        let mut m = MseState::default();
        m.feed(Originator, &auth);
        assert_eq!(m.feed(Responder, &random_bytes(2, 400)), None);
    }

    #[test]
    fn a_random_key_is_rarely_length_prefixed() {
        let hits = (1..2000)
            .filter(|&s| length_prefixed(&random_bytes(s, 96 + (s as usize % 512))))
            .count();
        assert_eq!(hits, 0);
    }
}
