//! Message-length arithmetic on the encrypted stream.
//!
//! RC4 is a stream cipher: after the MSE handshake, ciphertext lengths are
//! BitTorrent message lengths. A sender's write ends at a message boundary,
//! and the write's last segment is the one TCP marks PSH or sends short (below
//! the segment size the direction already used). So the distances between
//! boundaries are sums of messages:
//! - piece: 4 + 1 + 8 + 16384 = **16397** (the block size every client
//!   requests), so an uploader's boundaries sit k·16397 apart;
//! - small messages: keep-alive 4; choke, unchoke, interested,
//!   not-interested, have-all, have-none 5; have, suggest, allowed-fast 9; a
//!   piece header written alone 13 (libtorrent writes the 13-byte header and
//!   the 16384-byte block as two buffers); request, cancel, reject 17.
//!
//! Which distances fit (`classify`) — exact values only, never a window:
//! - `Piece`: k·16397 + s with k ≥ 1 and s ∈ {0, 4, 5} (pieces, perhaps
//!   after a keep-alive or a state message). Not s = 9, 13 or 17: a TLS
//!   record is 16405–16421 bytes (16384 + 5 header + 16 tag, + 8 explicit
//!   nonce or 1 content type + padding), i.e. 16397 + 8…24 per record, and
//!   16397 + 9 is exactly a TLS 1.3 record. k records of TLS are k·16397 +
//!   8k…24k, never k·16397 + {0, 4, 5}.
//! - `Small`: below 16397, one of {4, 5, 9, 13}, a sum of two of
//!   {4, 5, 9, 13, 17}, or a multiple of 17 (a batch of requests).
//!
//! Writes are cut by rate limits, receive windows and TCP's forced pushes
//! (Linux sets PSH mid-write after half a window), so a boundary is scored
//! against each of the last `RING` boundaries of its direction, not only the
//! previous one (a spurious boundary inside a piece does not hide the piece),
//! and only a fraction must fit. A full-sized segment is never a boundary:
//! a PSH on it is a forced push, not the end of a write.
//!
//! The fact (`fits`) needs at least one `Piece` distance — the one value no
//! other protocol has a reason to produce — and `MIN_FITS` fitting boundaries
//! that are at least half of all. Random boundary distances hit `Small`
//! about 6 % of the time on 1–1460-byte gaps (more on tiny gaps, up to ~18 %
//! under 100 bytes) and `Piece` about 3 in 16397 per pair; a flow must also
//! have passed the MSE envelope before this is consulted.

/// A BitTorrent piece message carrying a 16 KiB block.
pub(super) const PIECE: u32 = 4 + 1 + 8 + 16384;
/// Boundaries remembered per direction.
const RING: usize = 3;
/// Fitting boundaries needed (with one piece among them).
const MIN_FITS: u8 = 4;
/// A segment at least this long that equals the largest so far is full-sized.
const MIN_FULL_SEGMENT: u16 = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fit {
    None,
    Small,
    Piece,
}

/// How a distance between two boundaries fits BitTorrent messages.
pub(super) fn classify(gap: u32) -> Fit {
    let (k, s) = (gap / PIECE, gap % PIECE);
    if k >= 1 {
        return if matches!(s, 0 | 4 | 5) {
            Fit::Piece
        } else {
            Fit::None
        };
    }
    const ONE: [u32; 5] = [4, 5, 9, 13, 17];
    let single = matches!(s, 4 | 5 | 9 | 13);
    let pair = ONE.iter().any(|&a| ONE.iter().any(|&b| a + b == s));
    if s != 0 && (single || pair || s % 17 == 0) {
        Fit::Small
    } else {
        Fit::None
    }
}

/// One direction's recent boundaries (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Side {
    ring: [u32; RING],
    /// Boundaries in `ring` (0: the message phase has not begun).
    n: u8,
    head: u8,
    largest: u16,
}

/// Both directions and the flow's score (36 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Lengths {
    dirs: [Side; 2],
    boundaries: u8,
    fits: u8,
    pieces: u8,
}

impl Lengths {
    /// The message phase of direction `d` begins at stream offset `at` (the
    /// end of its handshake flights: a write boundary).
    pub(super) fn begin(&mut self, d: usize, at: u32) {
        if let Some(dir) = self.dirs.get_mut(d) {
            *dir = Side {
                ring: [at; RING],
                n: 1,
                head: 1,
                largest: dir.largest,
            };
        }
    }

    /// A segment of direction `d` at stream offset `at`, `len` bytes, PSH
    /// set or not. Returns true once the flow's boundaries fit (`fits`).
    #[inline]
    pub(super) fn segment(&mut self, d: usize, at: u32, len: usize, psh: bool) -> bool {
        let Some(dir) = self.dirs.get_mut(d) else {
            return false;
        };
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        dir.largest = dir.largest.max(len16);
        if dir.n == 0 {
            return false;
        }
        let full = len16 == dir.largest && len16 >= MIN_FULL_SEGMENT;
        if full || !(psh || len16 < dir.largest) {
            return false;
        }
        let end = at.wrapping_add(u32::from(len16));
        let mut best = Fit::None;
        for &b in &dir.ring[..usize::from(dir.n)] {
            let gap = end.wrapping_sub(b);
            if gap == 0 || (gap as i32) < 0 {
                continue;
            }
            best = match (best, classify(gap)) {
                (Fit::Piece, _) | (_, Fit::Piece) => Fit::Piece,
                (Fit::Small, _) | (_, Fit::Small) => Fit::Small,
                _ => Fit::None,
            };
        }
        dir.ring[usize::from(dir.head)] = end;
        dir.head = (dir.head + 1) % RING as u8;
        dir.n = (dir.n + 1).min(RING as u8);
        self.boundaries = self.boundaries.saturating_add(1);
        if best != Fit::None {
            self.fits = self.fits.saturating_add(1);
        }
        if best == Fit::Piece {
            self.pieces = self.pieces.saturating_add(1);
        }
        self.fit()
    }

    /// One piece distance, and `MIN_FITS` fitting boundaries that are at
    /// least half of all.
    pub(super) fn fit(&self) -> bool {
        self.pieces >= 1
            && self.fits >= MIN_FITS
            && u16::from(self.fits) * 2 >= u16::from(self.boundaries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_and_small_distances() {
        assert_eq!(classify(PIECE), Fit::Piece);
        assert_eq!(classify(3 * PIECE), Fit::Piece);
        assert_eq!(classify(PIECE + 5), Fit::Piece);
        assert_eq!(classify(2 * PIECE + 4), Fit::Piece);
        for s in [
            4, 5, 9, 13, 17, 8, 10, 14, 18, 21, 22, 26, 30, 34, 51, 136, 170,
        ] {
            assert_eq!(classify(s), Fit::Small, "{s}");
        }
        for s in [0, 1, 3, 6, 7, 11, 12, 15, 16, 19, 20, 36, 52, 1448, 16384] {
            assert_eq!(classify(s), Fit::None, "{s}");
        }
    }

    #[test]
    fn tls_records_never_fit_as_pieces() {
        // Full TLS records (1.2 GCM/ChaCha20, 1.3 with up to 4 padding
        // bytes), one to four in a row.
        for record in 16405..=16421u32 {
            for k in 1..=4 {
                assert_ne!(classify(k * record), Fit::Piece, "{k}×{record}");
            }
        }
    }

    #[test]
    fn an_uploader_with_forced_pushes_and_split_headers() {
        let mut l = Lengths::default();
        l.begin(1, 1170);
        let mut at = 1170;
        let mut feed = |l: &mut Lengths, len: usize, psh: bool| {
            let r = l.segment(1, at, len, psh);
            at += len as u32;
            r
        };
        // A 50-byte write (unchoke, have-all, …), then a piece in 1448-byte
        // segments with a forced PSH in the middle, then the 469-byte tail.
        assert!(!feed(&mut l, 50, true));
        for i in 0..11 {
            assert!(!feed(&mut l, 1448, i == 5));
        }
        assert!(!feed(&mut l, 469, true));
        assert_eq!((l.boundaries, l.fits, l.pieces), (2, 1, 1));
        // Then a 13-byte header and its 16384-byte block, twice.
        for _ in 0..2 {
            feed(&mut l, 13, true);
            for _ in 0..11 {
                feed(&mut l, 1448, false);
            }
            feed(&mut l, 16384 - 11 * 1448, true);
        }
        // Pieces: the first tail, each block's end, and the second header's end
        // (a piece after the first header's end).
        assert_eq!((l.boundaries, l.fits, l.pieces), (6, 5, 4));
        assert!(l.fit());
    }

    #[test]
    fn nothing_before_the_message_phase() {
        let mut l = Lengths::default();
        assert!(!l.segment(0, 0, 17, true));
        assert_eq!(l.boundaries, 0);
    }
}
