//! Where a TCP segment sits in its direction's byte stream, by sequence
//! number. The TCP detectors share it: the handshake is reassembled from the
//! stream's first 20 bytes, guards and HTTP look at the stream's start, the
//! MSE detector measures flights and message boundaries in stream offsets,
//! and a retransmission is never judged twice.
//!
//! Per direction, offsets are relative to the first payload byte seen (its
//! sequence number is the base; a SYN's own sequence number is not a payload
//! byte). `next` is the offset up to which the stream is contiguous:
//! - a segment wholly before `next` is a retransmission: dropped;
//! - one that starts before `next` and ends after it overlaps a
//!   retransmission: its old bytes are trimmed, the new ones shown;
//! - one that starts after `next` follows a gap (a loss, or reordering): it
//!   is shown at its own offset and held as metadata (offset, length) in a
//!   small fixed buffer, so that a copy of it is recognised as a
//!   retransmission and `next` jumps over it when the gap fills. A gap
//!   segment that finds the buffer full marks the direction `overflowed`:
//!   it is still shown, and so is any copy of it (retransmissions past the
//!   gap are no longer recognised). Flight accounting stops then (`flights`).
//!
//! Sequence arithmetic is modulo 2³² (RFC 793 comparisons), so a stream whose
//! sequence numbers wrap is handled like any other.
use super::Direction;

/// Out-of-order segments remembered per direction.
pub(super) const HOLD: usize = 3;

const STARTED: u8 = 0x01;
const OVERFLOWED: u8 = 0x02;

/// A segment with new bytes, as `Streams::accept` places it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Placed {
    /// Stream offset of the first new byte.
    pub at: u32,
    /// Bytes at the front of the payload already seen (a partial
    /// retransmission); the new bytes are `payload[skip..]`.
    pub skip: usize,
    /// The segment starts after a gap (out of order).
    pub after_gap: bool,
}

/// Per-flow stream positions of both directions (64 bytes).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Streams {
    /// Sequence number of the first payload byte seen, per direction.
    base: [u32; 2],
    /// Offset up to which the stream is contiguous.
    next: [u32; 2],
    /// Highest offset + 1 of any byte seen (in order or after a gap).
    high: [u32; 2],
    /// Held segments after a gap: offset and length (0 = free slot).
    held_at: [[u32; HOLD]; 2],
    held_len: [[u16; HOLD]; 2],
    /// `STARTED`, `OVERFLOWED` per direction.
    flags: [u8; 2],
}

/// `a < b` in sequence space.
#[inline]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Streams {
    pub(super) const EMPTY: Streams = Streams {
        base: [0; 2],
        next: [0; 2],
        high: [0; 2],
        held_at: [[0; HOLD]; 2],
        held_len: [[0; HOLD]; 2],
        flags: [0; 2],
    };

    /// Places the next segment from `dir`: `seq` and `tcp_flags` from its
    /// header, `len` payload bytes (more than 0). `None` when it brings no
    /// new byte (a retransmission).
    #[inline]
    pub(super) fn accept(
        &mut self,
        dir: Direction,
        seq: u32,
        tcp_flags: u8,
        len: usize,
    ) -> Option<Placed> {
        const SYN: u8 = 0x02;
        let d = dir.index();
        // A SYN's sequence number is its own; its data (TCP Fast Open)
        // starts one later.
        let seq = seq.wrapping_add(u32::from(tcp_flags & SYN != 0));
        // An IP packet carries less than 64 KiB; bound it anyway so the
        // offsets below cannot wrap inside one segment.
        let len = u32::try_from(len)
            .unwrap_or(u32::MAX)
            .min(u32::from(u16::MAX));
        if len == 0 {
            return None;
        }
        if self.flags[d] & STARTED == 0 {
            self.flags[d] |= STARTED;
            self.base[d] = seq;
        }
        let at = seq.wrapping_sub(self.base[d]);
        let end = at.wrapping_add(len);
        let next = self.next[d];
        if !before(next, end) {
            return None; // wholly before `next`: seen
        }
        if before(self.high[d], end) {
            self.high[d] = end;
        }
        if !before(next, at) {
            // In order, or overlapping seen bytes: trim them.
            self.next[d] = end;
            self.drain(d);
            return Some(Placed {
                at: next,
                skip: next.wrapping_sub(at) as usize,
                after_gap: false,
            });
        }
        // After a gap.
        let (held_at, held_len) = (&mut self.held_at[d], &mut self.held_len[d]);
        let mut free = None;
        for i in 0..HOLD {
            let h_len = u32::from(held_len[i]);
            if h_len == 0 {
                free = free.or(Some(i));
            } else if !before(at, held_at[i]) && !before(held_at[i].wrapping_add(h_len), end) {
                return None; // a copy of (part of) a held segment
            }
        }
        match free {
            Some(i) => {
                held_at[i] = at;
                held_len[i] = len as u16;
            }
            None => self.flags[d] |= OVERFLOWED,
        }
        Some(Placed {
            at,
            skip: 0,
            after_gap: true,
        })
    }

    /// Moves `next` over held segments the stream has reached.
    #[inline]
    fn drain(&mut self, d: usize) {
        // Each pass frees at least one slot or stops: HOLD passes at most.
        for _ in 0..HOLD {
            let mut moved = false;
            for i in 0..HOLD {
                let len = u32::from(self.held_len[d][i]);
                if len == 0 || before(self.next[d], self.held_at[d][i]) {
                    continue;
                }
                let end = self.held_at[d][i].wrapping_add(len);
                if before(self.next[d], end) {
                    self.next[d] = end;
                }
                self.held_len[d][i] = 0;
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    /// Highest stream offset + 1 seen from `dir`.
    #[inline]
    pub(super) fn high(&self, dir: Direction) -> u32 {
        self.high[dir.index()]
    }

    /// True when `dir` had more gaps than the buffer holds.
    #[inline]
    pub(super) fn overflowed(&self, dir: Direction) -> bool {
        self.flags[dir.index()] & OVERFLOWED != 0
    }

    /// How many of `dir`'s bytes an acknowledgment number `ack` (sent by the
    /// other side) covers; 0 before `dir` sent payload or for an `ack` before
    /// its base.
    #[inline]
    pub(super) fn acked(&self, dir: Direction, ack: u32) -> u32 {
        let d = dir.index();
        if self.flags[d] & STARTED == 0 {
            return 0;
        }
        let n = ack.wrapping_sub(self.base[d]);
        if (n as i32) < 0 {
            0
        } else {
            n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Originator as A, Responder as B};

    fn placed(at: u32, skip: usize, after_gap: bool) -> Option<Placed> {
        Some(Placed {
            at,
            skip,
            after_gap,
        })
    }

    #[test]
    fn in_order_segments_and_retransmissions() {
        let mut s = Streams::default();
        assert_eq!(s.accept(A, 1000, 0x18, 100), placed(0, 0, false));
        assert_eq!(s.accept(A, 1100, 0x18, 50), placed(100, 0, false));
        // The first again, and a keep-alive probe (one old byte).
        assert_eq!(s.accept(A, 1000, 0x18, 100), None);
        assert_eq!(s.accept(A, 1149, 0x10, 1), None);
        // Repacketised retransmission with 30 new bytes: trimmed.
        assert_eq!(s.accept(A, 1100, 0x18, 80), placed(150, 50, false));
        assert_eq!(s.high(A), 180);
        // The other direction has its own base.
        assert_eq!(s.accept(B, 7, 0x18, 10), placed(0, 0, false));
        assert_eq!(s.acked(A, 1096), 96);
        assert_eq!(s.acked(A, 900), 0);
        assert_eq!(s.acked(B, 7), 0);
    }

    #[test]
    fn a_syn_with_data_starts_one_later() {
        let mut s = Streams::default();
        assert_eq!(s.accept(A, 499, 0x02, 10), placed(0, 0, false));
        assert_eq!(s.accept(A, 510, 0x18, 10), placed(10, 0, false));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Streams::default();
        let base = u32::MAX - 49;
        assert_eq!(s.accept(A, base, 0x18, 100), placed(0, 0, false));
        assert_eq!(
            s.accept(A, base.wrapping_add(100), 0x18, 20),
            placed(100, 0, false)
        );
        assert_eq!(s.accept(A, base, 0x18, 100), None);
    }

    #[test]
    fn a_gap_is_held_and_filled() {
        let mut s = Streams::default();
        assert_eq!(s.accept(A, 0, 0x18, 100), placed(0, 0, false));
        // 100..200 lost; 200..300 and 300..350 arrive.
        assert_eq!(s.accept(A, 200, 0x10, 100), placed(200, 0, true));
        assert_eq!(s.accept(A, 300, 0x18, 50), placed(300, 0, true));
        // A copy of a held one is a retransmission.
        assert_eq!(s.accept(A, 200, 0x10, 100), None);
        assert_eq!(s.high(A), 350);
        // The hole fills: `next` jumps past both held segments.
        assert_eq!(s.accept(A, 100, 0x10, 100), placed(100, 0, false));
        assert_eq!(s.accept(A, 300, 0x18, 50), None);
        assert_eq!(s.accept(A, 350, 0x18, 10), placed(350, 0, false));
        assert!(!s.overflowed(A));
    }

    #[test]
    fn a_gap_past_the_buffer_overflows() {
        let mut s = Streams::default();
        s.accept(A, 0, 0x18, 10);
        for i in 0..HOLD as u32 {
            assert_eq!(
                s.accept(A, 100 + 100 * i, 0x10, 10),
                placed(100 + 100 * i, 0, true)
            );
        }
        assert!(!s.overflowed(A));
        assert_eq!(s.accept(A, 900, 0x10, 10), placed(900, 0, true));
        assert!(s.overflowed(A));
        assert!(!s.overflowed(B));
    }
}
