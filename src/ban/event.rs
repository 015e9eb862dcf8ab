//! What a worker tells the control thread when DPI judges a flow BitTorrent.
use std::fmt;

use super::key::BanKey;
pub use crate::dpi::Confidence;
use crate::dpi::{DetectorId, Reasons};
use crate::wire::Transport;

/// Most payload bytes a detection carries to the detection log
/// (`log.payload_bytes` is capped here): a handshake's worth, so the event
/// stays fixed-size and the log cannot carry whole packets.
pub const MAX_PAYLOAD_PREFIX: usize = 64;

/// The first bytes of the deciding packet's L4 payload, inline (no heap).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PayloadPrefix {
    len: u8,
    bytes: [u8; MAX_PAYLOAD_PREFIX],
}

impl PayloadPrefix {
    pub const EMPTY: PayloadPrefix = PayloadPrefix {
        len: 0,
        bytes: [0; MAX_PAYLOAD_PREFIX],
    };

    /// Copies at most `limit` (and at most [`MAX_PAYLOAD_PREFIX`]) bytes of
    /// `payload`. A fixed-size copy: safe on the hot path.
    #[inline]
    pub fn copy_from(payload: &[u8], limit: usize) -> PayloadPrefix {
        let take = limit.min(MAX_PAYLOAD_PREFIX).min(payload.len());
        let mut prefix = PayloadPrefix::EMPTY;
        prefix.bytes[..take].copy_from_slice(&payload[..take]);
        prefix.len = take as u8; // take <= 64
        prefix
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for PayloadPrefix {
    fn default() -> Self {
        PayloadPrefix::EMPTY
    }
}

impl fmt::Debug for PayloadPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PayloadPrefix(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// One detection, as sent over a worker's event ring. `Copy` and fixed-size
/// (128 bytes: two cache lines, no heap) so pushing it costs a copy into a
/// preallocated slot. Its fields take 120 bytes; the alignment rounds it to
/// two whole lines, so no ring slot straddles a third.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub struct HostDetection {
    /// The address the verdict is about: the one the policy may ban.
    pub host: BanKey,
    /// The other end of the flow (for the detection log).
    pub peer: BanKey,
    pub host_port: u16,
    pub peer_port: u16,
    pub proto: Transport,
    /// Index of the port the deciding packet arrived on.
    pub port: u8,
    /// The lead detector. One byte, not its name: a `&'static str` would
    /// take 16 and leave no room for `reasons` in two cache lines.
    pub detector: DetectorId,
    pub confidence: Confidence,
    /// The reason chain: every piece of evidence the verdict rests on
    /// (`FlowDpiState::reasons`), for the detection log.
    pub reasons: Reasons,
    /// When the worker saw it, unix ms.
    pub at_ms: u64,
    /// The deciding packet's payload prefix (`log.payload_bytes`; empty at 0).
    pub payload: PayloadPrefix,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_fixed_size_with_its_payload_inline() {
        // Addresses, ports and metadata, the reason bits, the 64-byte prefix
        // and its length: two cache lines.
        assert_eq!(std::mem::size_of::<HostDetection>(), 128);
        assert_eq!(std::mem::align_of::<HostDetection>(), 64);
    }

    #[test]
    fn prefix_copies_at_most_the_limit_and_the_cap() {
        let payload: Vec<u8> = (0..100).collect();
        assert_eq!(PayloadPrefix::copy_from(&payload, 0).as_bytes(), b"");
        assert_eq!(PayloadPrefix::copy_from(&payload, 3).as_bytes(), [0, 1, 2]);
        assert_eq!(
            PayloadPrefix::copy_from(&payload[..2], 16).as_bytes(),
            [0, 1]
        );
        let capped = PayloadPrefix::copy_from(&payload, 1000);
        assert_eq!(capped.as_bytes(), &payload[..MAX_PAYLOAD_PREFIX]);
        assert_eq!(
            format!("{:?}", PayloadPrefix::copy_from(b"\x13B", 8)),
            "PayloadPrefix(1342)"
        );
    }
}
