//! Where a TCP segment sits in its direction's stream. The TCP detectors share
//! it: the handshake is reassembled from the stream's first 20 bytes, guards
//! and HTTP look at the stream's start, and a retransmitted segment (the same
//! as the direction's last one) is not judged twice.
use super::Direction;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Streams {
    /// Bytes seen per direction (saturating).
    len: [u16; 2],
    /// Fingerprint of the last segment per direction; 0 before the first.
    last_fingerprint: [u32; 2],
}

impl Streams {
    /// Records the next segment from `dir` and returns the number of bytes the
    /// direction sent before it, or `None` for a retransmission.
    #[inline]
    pub(super) fn advance(&mut self, dir: Direction, segment: &[u8]) -> Option<u16> {
        let d = dir.index();
        let fp = fingerprint(segment);
        if self.last_fingerprint[d] == fp {
            return None;
        }
        self.last_fingerprint[d] = fp;
        let at = self.len[d];
        let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
        self.len[d] = at.saturating_add(len);
        Some(at)
    }
}

/// Cheap fingerprint of a segment (length, head, tail) for retransmissions;
/// never 0.
fn fingerprint(p: &[u8]) -> u32 {
    let head = &p[..p.len().min(16)];
    let tail = &p[p.len().saturating_sub(8)..];
    let mut h: u32 = 0x811c_9dc5 ^ (p.len() as u32);
    for &b in head.iter().chain(tail) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h | 1
}
