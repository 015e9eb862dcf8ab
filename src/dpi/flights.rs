//! TCP flights: a direction's bytes, in sequence order, until the other side
//! sends payload. Key exchanges are told apart by their flights, not their
//! segments: one write may leave as several segments (BiglyBT writes its
//! first kilobyte in 50–149-byte pieces), several writes may leave as one,
//! and a retransmission is not a new message.
//!
//! The first `FLIGHTS` flights (A1, B1, A2, B2, A3, B3; A = the originator)
//! are kept: each one's length and the length of its first segment (what
//! one write shows when the sender does not coalesce). A flight opens with
//! the first new segment from the direction that did not send the last one,
//! and closes when the other direction opens the next; its length is the
//! direction's highest stream offset then, less the offset where the flight
//! began, so bytes lost and retransmitted later still count in the flight
//! that sent them. Retransmissions (`stream`) open nothing.
//!
//! When a direction's out-of-order buffer overflows (`Streams::overflowed`),
//! flight order is no longer certain and accounting stops: `lost` says so,
//! and the MSE detector then gives up on the flow.
use super::stream::Streams;
use super::Direction;

/// Flights kept: A1, B1, A2, B2, A3, B3.
pub(super) const FLIGHTS: usize = 6;

const CURRENT_RESPONDER: u8 = 0x01;
const LOST: u8 = 0x02;

/// Per-flow flight accounting (24 bytes).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Flights {
    /// Stream offset where each direction's current (or last) flight began.
    start: [u32; 2],
    /// Lengths of the closed flights among the first `FLIGHTS` (saturating).
    len: [u16; FLIGHTS],
    /// Length of each flight's first segment.
    first: [u16; FLIGHTS],
    /// Flights opened so far (saturating).
    count: u8,
    /// `CURRENT_RESPONDER`: direction of the open flight; `LOST`.
    flags: u8,
}

impl Flights {
    pub(super) const EMPTY: Flights = Flights {
        start: [0; 2],
        len: [0; FLIGHTS],
        first: [0; FLIGHTS],
        count: 0,
        flags: 0,
    };

    /// Accounts for a new segment from `dir` that `streams` placed at offset
    /// `at` with `seg_len` new bytes. Returns true when it opened a flight.
    /// A segment that ends within the direction's earlier flights (the
    /// retransmission of a lost one) opens none.
    #[inline]
    pub(super) fn record(
        &mut self,
        streams: &Streams,
        dir: Direction,
        at: u32,
        seg_len: usize,
    ) -> bool {
        if self.flags & LOST != 0 {
            return false;
        }
        if streams.overflowed(dir) {
            self.flags |= LOST;
            return false;
        }
        if self.count > 0 && self.current_dir() == dir {
            return false;
        }
        let end = at.wrapping_add(u32::try_from(seg_len).unwrap_or(u32::MAX));
        if end.wrapping_sub(self.start[dir.index()]) as i32 <= 0 {
            return false;
        }
        if self.count > 0 {
            let c = self.current_dir();
            let high = streams.high(c);
            if let Some(l) = self.len.get_mut(usize::from(self.count - 1)) {
                *l = sat16(high.wrapping_sub(self.start[c.index()]));
            }
            self.start[c.index()] = high;
        }
        if let Some(f) = self.first.get_mut(usize::from(self.count)) {
            *f = sat16(u32::try_from(seg_len).unwrap_or(u32::MAX));
        }
        self.count = self.count.saturating_add(1);
        self.flags = (self.flags & !CURRENT_RESPONDER)
            | if dir == Direction::Responder {
                CURRENT_RESPONDER
            } else {
                0
            };
        true
    }

    fn current_dir(&self) -> Direction {
        if self.flags & CURRENT_RESPONDER != 0 {
            Direction::Responder
        } else {
            Direction::Originator
        }
    }

    /// Index of the open flight (0 = A1 or, when the responder spoke first,
    /// its first flight); `None` before any payload.
    #[inline]
    pub(super) fn current(&self) -> Option<usize> {
        usize::from(self.count).checked_sub(1)
    }

    /// The originator sent the first flight (odd flights are then the
    /// responder's).
    #[inline]
    pub(super) fn originator_first(&self) -> bool {
        // Flights alternate: flight `count - 1` is the current direction's.
        let current_is_a = self.current_dir() == Direction::Originator;
        self.count > 0 && (current_is_a == (self.count % 2 == 1))
    }

    /// Length of closed flight `i` (`None` while open, or beyond the table).
    #[inline]
    pub(super) fn len(&self, i: usize) -> Option<u16> {
        (i + 1 < usize::from(self.count)).then(|| self.len.get(i).copied())?
    }

    /// Length of flight `i`'s first segment.
    #[inline]
    pub(super) fn first_segment(&self, i: usize) -> Option<u16> {
        (i < usize::from(self.count)).then(|| self.first.get(i).copied())?
    }

    /// Bytes of the open flight so far.
    #[inline]
    pub(super) fn open_len(&self, streams: &Streams) -> u32 {
        let c = self.current_dir();
        streams.high(c).wrapping_sub(self.start[c.index()])
    }

    /// Stream offset where `dir`'s current (or last) flight began.
    #[inline]
    pub(super) fn start(&self, dir: Direction) -> u32 {
        self.start[dir.index()]
    }

    /// Flight order is no longer known (a direction's gap buffer overflowed).
    #[inline]
    pub(super) fn lost(&self) -> bool {
        self.flags & LOST != 0
    }
}

fn sat16(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Originator as A, Responder as B};

    /// Streams and flights fed together, as the engine does.
    #[derive(Default)]
    struct Both {
        s: Streams,
        f: Flights,
        seq: [u32; 2],
    }

    impl Both {
        fn send(&mut self, dir: Direction, len: usize) -> Option<bool> {
            let seq = self.seq[dir.index()];
            self.seq[dir.index()] += len as u32;
            self.at(dir, seq, len)
        }

        fn at(&mut self, dir: Direction, seq: u32, len: usize) -> Option<bool> {
            let p = self.s.accept(dir, seq, 0x18, len)?;
            Some(self.f.record(&self.s, dir, p.at, len - p.skip))
        }
    }

    #[test]
    fn flights_coalesce_segments_and_skip_retransmissions() {
        let mut b = Both::default();
        assert_eq!(b.f.current(), None);
        assert_eq!(b.send(A, 50), Some(true));
        assert_eq!(b.send(A, 100), Some(false));
        assert_eq!(b.at(A, 0, 50), None);
        assert_eq!(b.f.open_len(&b.s), 150);
        assert_eq!(b.f.len(0), None);
        assert_eq!(b.send(B, 300), Some(true));
        assert_eq!(b.f.len(0), Some(150));
        assert_eq!(b.f.first_segment(0), Some(50));
        assert_eq!(b.send(A, 124), Some(true));
        assert_eq!(b.send(B, 14), Some(true));
        assert_eq!(b.send(B, 68), Some(false));
        assert_eq!(b.send(A, 68), Some(true));
        assert_eq!(b.f.len(1), Some(300));
        assert_eq!(b.f.len(2), Some(124));
        assert_eq!(b.f.len(3), Some(82));
        assert_eq!(b.f.first_segment(3), Some(14));
        assert_eq!(b.f.start(B), 382);
        assert_eq!(b.f.start(A), 274);
        assert_eq!(b.f.current(), Some(4));
        assert!(b.f.originator_first());
        // Flights past the table are counted, not kept.
        for _ in 0..4 {
            b.send(B, 10);
            b.send(A, 10);
        }
        assert_eq!(b.f.current(), Some(12));
        assert_eq!(b.f.len(5), Some(10));
        assert_eq!(b.f.len(7), None);
    }

    #[test]
    fn a_lost_segment_counts_in_the_flight_that_sent_it() {
        let mut b = Both::default();
        b.send(A, 200);
        // A's 200..400 lost, 400..500 seen, then B answers, then the
        // retransmission of 200..400.
        assert_eq!(b.at(A, 400, 100), Some(false));
        assert_eq!(b.send(B, 96), Some(true));
        // It belongs to A1: it opens no flight.
        assert_eq!(b.at(A, 200, 200), Some(false));
        assert_eq!(b.f.len(0), Some(500));
        assert_eq!(b.f.current(), Some(1));
        b.seq[A.index()] = 500;
        assert_eq!(b.send(A, 124), Some(true));
        assert_eq!(b.f.start(A), 500);
    }

    #[test]
    fn responder_first_and_overflow() {
        let mut b = Both::default();
        b.send(B, 10);
        assert!(!b.f.originator_first());
        b.send(A, 10);
        assert!(!b.f.originator_first());
        for i in 0..=super::super::stream::HOLD as u32 {
            b.at(A, 100 + 100 * i, 10);
        }
        assert!(b.f.lost());
        assert_eq!(b.send(B, 10), Some(false));
    }
}
