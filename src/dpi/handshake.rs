//! The peer-wire handshake (BEP 3): `\x13BitTorrent protocol`, 8 reserved bytes,
//! the 20-byte info_hash and the 20-byte peer_id, the first bytes each side
//! sends on a plaintext connection (and inside uTP, and after an MSE
//! negotiation that selected plaintext). The 20-byte protocol string alone is
//! unambiguous; the reserved bits and the peer_id are kept as extra evidence.

use super::detector::{Detector, Findings, Payload};
use super::{Confidence, DetectorId, Direction};

/// Length byte 19 followed by the protocol name.
pub(super) const PSTR: &[u8; 20] = b"\x13BitTorrent protocol";

/// pstr + reserved + info_hash + peer_id.
pub(super) const HANDSHAKE_LEN: usize = 68;
const RESERVED_AT: usize = 20;
const PEER_ID_AT: usize = 48;

/// Microsoft Delivery Optimization speaks a BitTorrent-like wire protocol
/// behind its own handshake string; its messages must not count as ours.
const MSDO_PSTR: &[u8; 15] = b"\x0eSwarm protocol";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PrefixMatch {
    /// These bytes cannot start a handshake.
    Mismatch,
    /// Consistent with a handshake so far; more bytes needed.
    Partial,
    /// The full 20-byte protocol string.
    Complete,
}

/// Does `bytes` (the start of a stream or segment) begin with the handshake?
pub(super) fn match_prefix(bytes: &[u8]) -> PrefixMatch {
    let n = bytes.len().min(PSTR.len());
    if n == 0 || bytes[..n] != PSTR[..n] {
        PrefixMatch::Mismatch
    } else if n < PSTR.len() {
        PrefixMatch::Partial
    } else {
        PrefixMatch::Complete
    }
}

/// True when `bytes` starts with the MSDO handshake.
pub(super) fn is_msdo(bytes: &[u8]) -> bool {
    bytes.starts_with(MSDO_PSTR)
}

/// What a complete handshake says about the client. Fits in 3 bytes so that
/// flow state can keep it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandshakeInfo {
    /// Reserved-bit flags, see the `FLAG_*` constants.
    pub flags: u8,
    /// Azureus-style client code from the peer_id (`-qB4650-` → `qB`), or zeros.
    pub client: [u8; 2],
}

/// Reserved byte 5 bit 0x10: the extension protocol (BEP 10).
pub(super) const FLAG_EXTENSION_PROTOCOL: u8 = 0x01;
/// Reserved byte 7 bit 0x04: the fast extension (BEP 6).
pub(super) const FLAG_FAST: u8 = 0x02;
/// Reserved byte 7 bit 0x01: DHT port message (BEP 5).
pub(super) const FLAG_DHT: u8 = 0x04;
/// Set once the info was read from a complete 68-byte handshake.
pub(super) const FLAG_VALID: u8 = 0x80;

/// Reads the reserved bits and the client code from a complete handshake.
pub(super) fn info(handshake: &[u8]) -> Option<HandshakeInfo> {
    let hs = handshake.get(..HANDSHAKE_LEN)?;
    if match_prefix(hs) != PrefixMatch::Complete {
        return None;
    }
    let reserved = &hs[RESERVED_AT..RESERVED_AT + 8];
    let mut flags = FLAG_VALID;
    if reserved[5] & 0x10 != 0 {
        flags |= FLAG_EXTENSION_PROTOCOL;
    }
    if reserved[7] & 0x04 != 0 {
        flags |= FLAG_FAST;
    }
    if reserved[7] & 0x01 != 0 {
        flags |= FLAG_DHT;
    }
    let peer_id = &hs[PEER_ID_AT..HANDSHAKE_LEN];
    let azureus = peer_id[0] == b'-'
        && peer_id[7] == b'-'
        && peer_id[1..3].iter().all(u8::is_ascii_alphanumeric);
    let client = if azureus {
        [peer_id[1], peer_id[2]]
    } else {
        [0, 0]
    };
    Some(HandshakeInfo { flags, client })
}

/// The handshake detector: Definitive on the protocol string, reassembled when
/// a direction's first 20 bytes come in several segments, or at the start of
/// any later segment (after an MSE negotiation that selected plaintext).
pub(super) struct Handshake;

/// Per flow: each direction's first 20 bytes, and what a complete handshake
/// said about the client.
#[derive(Clone, Debug, Default)]
pub(super) struct HandshakeState {
    prefix: [[u8; PSTR.len()]; 2],
    info: HandshakeInfo,
}

impl HandshakeState {
    /// Reserved bits and client code of a complete handshake.
    pub(super) fn info(&self) -> Option<HandshakeInfo> {
        (self.info.flags & FLAG_VALID != 0).then_some(self.info)
    }
}

impl Detector for Handshake {
    type Memory = HandshakeState;

    #[inline]
    fn inspect(&self, m: &mut HandshakeState, p: &Payload<'_>, out: &mut Findings<'_>) {
        if !out.enabled(DetectorId::PeerWireHandshake) {
            return;
        }
        let bytes = p.bytes;
        let prefix = &mut m.prefix[p.ctx.direction.index()];
        let have = usize::from(p.stream_at);
        let complete = if have < PSTR.len() {
            // Reassemble the first 20 bytes of the direction.
            let take = (PSTR.len() - have).min(bytes.len());
            prefix[have..have + take].copy_from_slice(&bytes[..take]);
            match_prefix(&prefix[..have + take]) == PrefixMatch::Complete
        } else {
            false
        };
        // Also at any segment start: after an MSE negotiation that selected
        // plaintext, the handshake follows the key exchange.
        let complete = complete || match_prefix(bytes) == PrefixMatch::Complete;
        if !complete {
            return;
        }
        if let Some(info) = info(bytes) {
            m.info = info;
        }
        out.note(DetectorId::PeerWireHandshake, Confidence::Definitive);
        if p.ctx.direction == Direction::Responder {
            // The responder spoke BitTorrent on its listening port.
            out.confirm(p.ctx.src, p.ctx.src_port);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A handshake as qBittorrent 4.6.5 sends it: extension protocol, fast, DHT.
    pub(crate) fn handshake() -> Vec<u8> {
        let mut h = PSTR.to_vec();
        h.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        h.extend_from_slice(&[0xab; 20]);
        h.extend_from_slice(b"-qB4650-abcdefghijkl");
        h
    }

    #[test]
    fn full_string_is_complete() {
        assert_eq!(match_prefix(&handshake()), PrefixMatch::Complete);
        assert_eq!(match_prefix(PSTR), PrefixMatch::Complete);
    }

    #[test]
    fn every_proper_prefix_is_partial() {
        for n in 1..PSTR.len() {
            assert_eq!(match_prefix(&PSTR[..n]), PrefixMatch::Partial, "{n}");
        }
    }

    #[test]
    fn near_misses_mismatch() {
        assert_eq!(match_prefix(b""), PrefixMatch::Mismatch);
        // 19-byte length prefix with another string.
        assert_eq!(
            match_prefix(b"\x13BitTorrent Protocol"),
            PrefixMatch::Mismatch
        );
        assert_eq!(
            match_prefix(b"\x13Hello world protocol"),
            PrefixMatch::Mismatch
        );
        // The name without the length byte.
        assert_eq!(
            match_prefix(b"BitTorrent protocol\0"),
            PrefixMatch::Mismatch
        );
        assert_eq!(match_prefix(b"\x0eSwarm protocol"), PrefixMatch::Mismatch);
    }

    #[test]
    fn info_reads_reserved_bits_and_client() {
        let i = info(&handshake()).unwrap();
        assert_eq!(
            i.flags,
            FLAG_VALID | FLAG_EXTENSION_PROTOCOL | FLAG_FAST | FLAG_DHT
        );
        assert_eq!(&i.client, b"qB");
    }

    #[test]
    fn info_needs_the_whole_handshake() {
        assert_eq!(info(&handshake()[..67]), None);
        let mut h = handshake();
        h[48..68].copy_from_slice(b"M7-2-2--abcdefghijkl");
        h[25] = 0;
        h[27] = 0;
        let i = info(&h).unwrap();
        assert_eq!((i.flags, i.client), (FLAG_VALID, [0, 0]));
    }

    #[test]
    fn msdo_is_recognised() {
        assert!(is_msdo(b"\x0eSwarm protocol\0\0\0\0\0\0\0\0"));
        assert!(!is_msdo(PSTR));
    }
}
