//! uTP, the Micro Transport Protocol (BEP 29), BitTorrent's transport over UDP.
//!
//! Header (20 bytes, big-endian): `type:4 version:4`, `extension`, `connection_id`
//! u16, `timestamp_us` u32, `timestamp_difference_us` u32, `wnd_size` u32,
//! `seq_nr` u16, `ack_nr` u16, then a chain of extensions `[next][len][len bytes]`.
//!
//! One packet that merely parses proves little: STUN Binding Success, Zoom and
//! RakNet datagrams all pass as a DATA header. What is specific is the
//! connection setup. The initiator picks `conn_id_recv`, sends ST_SYN carrying
//! it as `connection_id`, and then uses `conn_id_recv + 1` for everything it
//! sends; the acceptor answers ST_STATE with `connection_id` = the SYN's and
//! `ack_nr` = the SYN's `seq_nr`. So the detector confirms a flow only when a
//! SYN in one direction is answered that way from the other (Definitive), or
//! when the two directions' first headers carry connection ids that differ by
//! exactly one and acknowledge each other's sequence numbers (a connection
//! picked up after its SYN; Definitive), or ids ±1 alone (Strong).

use super::detector::{Detector, Findings, Payload};
use super::handshake::{self, PrefixMatch};
use super::{Confidence, DetectorId, Direction};

pub(super) const HEADER_LEN: usize = 20;

pub(super) const ST_DATA: u8 = 0;
pub(super) const ST_FIN: u8 = 1;
pub(super) const ST_STATE: u8 = 2;
pub(super) const ST_RESET: u8 = 3;
pub(super) const ST_SYN: u8 = 4;

const VERSION: u8 = 1;
/// Extension types defined or used in the wild: 1 selective ACK (BEP 29),
/// 2 extension bits, 3 libtorrent's close reason.
const MAX_EXTENSION_TYPE: u8 = 3;
/// More extensions than this in one header is not uTP.
const MAX_EXTENSIONS: usize = 4;
/// How far apart a packet's ack_nr and the peer's seq_nr may be for the two
/// directions to be "the same connection" (a congestion window of packets).
const ACK_WINDOW: u16 = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub kind: u8,
    pub connection_id: u16,
    pub timestamp_us: u32,
    pub timestamp_diff_us: u32,
    pub wnd_size: u32,
    pub seq_nr: u16,
    pub ack_nr: u16,
    /// Offset of the payload (after the extension chain).
    pub payload_at: usize,
}

impl Header {
    pub(super) fn payload<'a>(&self, datagram: &'a [u8]) -> &'a [u8] {
        datagram.get(self.payload_at..).unwrap_or(&[])
    }
}

/// Parses a uTP v1 header and walks its extension chain within bounds.
/// Also applies the per-type rules that real stacks (libutp, libtorrent) never
/// break: SYN and STATE carry no payload, DATA carries one, and a SYN has no
/// timestamp echo yet and advertises a receive window.
#[inline]
pub(super) fn parse(d: &[u8]) -> Option<Header> {
    let h = d.get(..HEADER_LEN)?;
    let kind = h[0] >> 4;
    if h[0] & 0x0f != VERSION || kind > ST_SYN {
        return None;
    }
    let mut next = h[1];
    let mut at = HEADER_LEN;
    let mut count = 0;
    while next != 0 {
        if next > MAX_EXTENSION_TYPE || count == MAX_EXTENSIONS {
            return None;
        }
        let ext = d.get(at..at + 2)?;
        let len = usize::from(ext[1]);
        // Selective ACK bitmasks are a non-zero multiple of 4 bytes.
        if next == 1 && (len == 0 || !len.is_multiple_of(4)) {
            return None;
        }
        d.get(at + 2..at + 2 + len)?;
        next = ext[0];
        at += 2 + len;
        count += 1;
    }
    let header = Header {
        kind,
        connection_id: u16::from_be_bytes([h[2], h[3]]),
        timestamp_us: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        timestamp_diff_us: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        wnd_size: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
        seq_nr: u16::from_be_bytes([h[16], h[17]]),
        ack_nr: u16::from_be_bytes([h[18], h[19]]),
        payload_at: at,
    };
    let has_payload = d.len() > at;
    let ok = match kind {
        // The initiator has nothing to echo yet, and says how much it may receive.
        ST_SYN => !has_payload && header.timestamp_diff_us == 0 && header.wnd_size != 0,
        ST_STATE => !has_payload,
        ST_DATA => has_payload,
        ST_FIN | ST_RESET => true,
        _ => false,
    };
    ok.then_some(header)
}

/// Per-flow memory of the uTP exchange (kept in `FlowDpiState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct UtpState {
    /// Bit 0/1: a SYN was seen from direction 0/1. Bit 2/3: `first` valid.
    flags: u8,
    syn_conn: u16,
    syn_seq: u16,
    /// The first non-SYN header seen per direction: (connection_id, seq, ack).
    first: [(u16, u16, u16); 2],
    /// The last non-SYN header per direction, for the one-way stream check.
    last: [Last; 2],
    /// Consecutive consistent headers per direction, and whether any of
    /// them advanced seq_nr or ack_nr.
    run: [u8; 2],
    progressed: [bool; 2],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Last {
    connection_id: u16,
    timestamp_us: u32,
    seq_nr: u16,
    ack_nr: u16,
}

const FIRST_SEEN: [u8; 2] = [0x04, 0x08];
/// Consistent headers in a row that make a one-way uTP stream.
pub(super) const STREAM_RUN: u8 = 4;
/// Largest gap between two consecutive packets' timestamps (µs).
const MAX_TIMESTAMP_STEP: u32 = 5_000_000;

/// What a uTP header adds to the flow's evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UtpEvidence {
    /// A SYN (alone it proves little: unanswered SYNs look like anything).
    Syn,
    /// SYN answered by the matching STATE: a uTP connection.
    Handshake,
    /// Both directions' ids differ by one and their seq/ack numbers agree.
    CrossDirection,
    /// Both directions' ids differ by one.
    CrossDirectionIds,
    /// One direction sent `STREAM_RUN` headers in a row with one connection
    /// id, increasing microsecond timestamps, seq_nr advancing by 0 or 1 and
    /// ack_nr never moving back: a live uTP sender seen without its peer.
    Stream,
    /// A header, nothing more yet.
    Shape,
}

impl UtpState {
    /// Feeds one header from `dir`.
    #[inline]
    pub(super) fn feed(&mut self, dir: Direction, h: &Header) -> UtpEvidence {
        let dir = dir.index();
        let other = dir ^ 1;
        if h.kind == ST_SYN {
            self.flags |= 1 << dir;
            self.syn_conn = h.connection_id;
            self.syn_seq = h.seq_nr;
            return UtpEvidence::Syn;
        }
        if self.flags & (1 << other) != 0
            && h.kind == ST_STATE
            && h.connection_id == self.syn_conn
            && h.ack_nr == self.syn_seq
        {
            return UtpEvidence::Handshake;
        }
        if self.flags & FIRST_SEEN[dir] == 0 {
            self.flags |= FIRST_SEEN[dir];
            self.first[dir] = (h.connection_id, h.seq_nr, h.ack_nr);
            self.remember(dir, h, 1);
            if self.flags & FIRST_SEEN[other] != 0 {
                return self.cross_check(dir);
            }
            return UtpEvidence::Shape;
        }
        self.one_way(dir, h)
    }

    fn remember(&mut self, dir: usize, h: &Header, run: u8) {
        self.last[dir] = Last {
            connection_id: h.connection_id,
            timestamp_us: h.timestamp_us,
            seq_nr: h.seq_nr,
            ack_nr: h.ack_nr,
        };
        self.run[dir] = run;
        if run <= 1 {
            self.progressed[dir] = false;
        }
    }

    fn one_way(&mut self, dir: usize, h: &Header) -> UtpEvidence {
        let prev = self.last[dir];
        let step_ts = h.timestamp_us.wrapping_sub(prev.timestamp_us);
        let step_seq = h.seq_nr.wrapping_sub(prev.seq_nr);
        let step_ack = h.ack_nr.wrapping_sub(prev.ack_nr);
        let consistent = h.connection_id == prev.connection_id
            && (1..=MAX_TIMESTAMP_STEP).contains(&step_ts)
            && step_seq <= 1
            && step_ack <= ACK_WINDOW;
        if !consistent {
            self.remember(dir, h, 1);
            return UtpEvidence::Shape;
        }
        let progressed = self.progressed[dir] || step_seq != 0 || step_ack != 0;
        let run = self.run[dir].saturating_add(1);
        self.remember(dir, h, run);
        self.progressed[dir] = progressed;
        if run >= STREAM_RUN && progressed {
            UtpEvidence::Stream
        } else {
            UtpEvidence::Shape
        }
    }

    fn cross_check(&self, dir: usize) -> UtpEvidence {
        let (c_mine, seq_mine, ack_mine) = self.first[dir];
        let (c_other, seq_other, ack_other) = self.first[dir ^ 1];
        let ids = c_mine.wrapping_sub(c_other);
        if ids != 1 && ids != u16::MAX {
            return UtpEvidence::Shape;
        }
        // Each side acknowledges (roughly) what the other has sent.
        let near = |ack: u16, seq: u16| {
            let d = seq.wrapping_sub(ack);
            d <= ACK_WINDOW || d >= u16::MAX - ACK_WINDOW
        };
        if near(ack_mine, seq_other) && near(ack_other, seq_mine) {
            UtpEvidence::CrossDirection
        } else {
            UtpEvidence::CrossDirectionIds
        }
    }
}

/// The uTP detector (`Utp`). A BitTorrent handshake inside DATA is Definitive
/// on its own. Otherwise the flow's own headers are fed to its `UtpState` (not
/// a relayed datagram's: its peer is another connection), and a connection
/// proven by the exchange or a one-way stream is Definitive; the stream and
/// cross-direction checks are header-field consistency, void on a flow that a
/// guard (STUN, DTLS, …) claimed.
pub(super) struct Utp;

impl Detector for Utp {
    type Memory = UtpState;

    #[inline]
    fn inspect(&self, state: &mut UtpState, p: &Payload<'_>, out: &mut Findings<'_>) {
        if !out.enabled(DetectorId::Utp) {
            return;
        }
        let Some(h) = parse(p.bytes) else {
            return;
        };
        let carries_handshake = h.kind == ST_DATA
            && handshake::match_prefix(h.payload(p.bytes)) == PrefixMatch::Complete;
        let c = if carries_handshake {
            Confidence::Definitive
        } else if p.relayed {
            return;
        } else {
            match state.feed(p.ctx.direction, &h) {
                UtpEvidence::Handshake => Confidence::Definitive,
                UtpEvidence::CrossDirection | UtpEvidence::Stream if !out.guarded() => {
                    Confidence::Definitive
                }
                UtpEvidence::CrossDirectionIds => Confidence::Strong,
                UtpEvidence::Syn => Confidence::Weak,
                _ => return,
            }
        };
        out.note(DetectorId::Utp, c);
        if c == Confidence::Definitive {
            // Both ends run a uTP BitTorrent stack on these ports.
            out.confirm(p.ctx.src, p.ctx.src_port);
            out.confirm(p.ctx.dst, p.ctx.dst_port);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dpi::Direction::{Originator, Responder};

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn header(
        kind: u8,
        ext: u8,
        conn: u16,
        ts: u32,
        diff: u32,
        wnd: u32,
        seq: u16,
        ack: u16,
    ) -> Vec<u8> {
        let mut h = vec![(kind << 4) | 1, ext];
        h.extend_from_slice(&conn.to_be_bytes());
        h.extend_from_slice(&ts.to_be_bytes());
        h.extend_from_slice(&diff.to_be_bytes());
        h.extend_from_slice(&wnd.to_be_bytes());
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&ack.to_be_bytes());
        h
    }

    pub(crate) fn syn(conn: u16, seq: u16) -> Vec<u8> {
        header(ST_SYN, 0, conn, 0x1234_5678, 0, 0x10_0000, seq, 0)
    }

    pub(crate) fn state(conn: u16, seq: u16, ack: u16) -> Vec<u8> {
        header(
            ST_STATE,
            0,
            conn,
            0x2234_5678,
            0x0001_0000,
            0x10_0000,
            seq,
            ack,
        )
    }

    #[test]
    fn parses_a_syn() {
        let h = parse(&syn(0x1234, 77)).unwrap();
        assert_eq!(
            (h.kind, h.connection_id, h.seq_nr, h.payload_at),
            (ST_SYN, 0x1234, 77, 20)
        );
    }

    #[test]
    fn walks_the_extension_chain() {
        // STATE with a 4-byte selective ACK, then a DATA with extension bits.
        let mut s = header(ST_STATE, 1, 5, 1, 1, 1, 1, 1);
        s.extend_from_slice(&[0, 4, 0xff, 0, 0, 0]);
        assert_eq!(parse(&s).unwrap().payload_at, 26);
        let mut d = header(ST_DATA, 2, 5, 1, 1, 1, 1, 1);
        d.extend_from_slice(&[0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        d.extend_from_slice(b"payload");
        let h = parse(&d).unwrap();
        assert_eq!(h.payload(&d), b"payload");
    }

    #[test]
    fn rejects_bad_headers() {
        // Version 0, type 5, truncated, bad extension chains.
        let mut v0 = syn(1, 1);
        v0[0] = 0x40;
        assert_eq!(parse(&v0), None);
        let mut t5 = syn(1, 1);
        t5[0] = 0x51;
        assert_eq!(parse(&t5), None);
        assert_eq!(parse(&syn(1, 1)[..19]), None);
        let mut ext_past_end = header(ST_STATE, 1, 5, 1, 1, 1, 1, 1);
        ext_past_end.extend_from_slice(&[0, 8, 0, 0]);
        assert_eq!(parse(&ext_past_end), None);
        let mut bad_sack = header(ST_STATE, 1, 5, 1, 1, 1, 1, 1);
        bad_sack.extend_from_slice(&[0, 3, 0, 0, 0]);
        assert_eq!(parse(&bad_sack), None);
        let mut unknown_ext = header(ST_STATE, 9, 5, 1, 1, 1, 1, 1);
        unknown_ext.extend_from_slice(&[0, 0]);
        assert_eq!(parse(&unknown_ext), None);
    }

    #[test]
    fn per_type_rules() {
        // A SYN with payload, with a timestamp echo, with a zero window.
        let mut p = syn(1, 1);
        p.push(0);
        assert_eq!(parse(&p), None);
        assert_eq!(parse(&header(ST_SYN, 0, 1, 1, 5, 1, 1, 0)), None);
        assert_eq!(parse(&header(ST_SYN, 0, 1, 1, 0, 0, 1, 0)), None);
        // DATA without payload, STATE with payload.
        assert_eq!(parse(&header(ST_DATA, 0, 1, 1, 1, 1, 1, 1)), None);
        let mut s = state(1, 1, 1);
        s.push(1);
        assert_eq!(parse(&s), None);
    }

    #[test]
    fn syn_answered_by_matching_state_is_a_handshake() {
        let mut st = UtpState::default();
        assert_eq!(
            st.feed(Originator, &parse(&syn(0x4000, 100)).unwrap()),
            UtpEvidence::Syn
        );
        // Wrong id, then wrong ack: not the answer.
        assert_eq!(
            st.feed(Responder, &parse(&state(0x4001, 9, 100)).unwrap()),
            UtpEvidence::Shape
        );
        assert_eq!(
            st.feed(Responder, &parse(&state(0x4000, 9, 101)).unwrap()),
            UtpEvidence::Shape
        );
        assert_eq!(
            st.feed(Responder, &parse(&state(0x4000, 9, 100)).unwrap()),
            UtpEvidence::Handshake
        );
    }

    #[test]
    fn a_state_from_the_syn_side_is_not_the_answer() {
        let mut st = UtpState::default();
        st.feed(Originator, &parse(&syn(0x4000, 100)).unwrap());
        assert_eq!(
            st.feed(Originator, &parse(&state(0x4000, 9, 100)).unwrap()),
            UtpEvidence::Shape
        );
    }

    #[test]
    fn cross_direction_ids_and_acks() {
        let mut st = UtpState::default();
        let a = header(ST_DATA, 0, 0x4001, 1, 1, 1, 101, 9);
        let mut a = a;
        a.extend_from_slice(b"x");
        assert_eq!(st.feed(Originator, &parse(&a).unwrap()), UtpEvidence::Shape);
        assert_eq!(
            st.feed(Responder, &parse(&state(0x4000, 10, 101)).unwrap()),
            UtpEvidence::CrossDirection
        );

        let mut far = UtpState::default();
        far.feed(Originator, &parse(&a).unwrap());
        assert_eq!(
            far.feed(Responder, &parse(&state(0x4000, 30000, 5000)).unwrap()),
            UtpEvidence::CrossDirectionIds
        );

        let mut unrelated = UtpState::default();
        unrelated.feed(Originator, &parse(&a).unwrap());
        assert_eq!(
            unrelated.feed(Responder, &parse(&state(0x7000, 10, 101)).unwrap()),
            UtpEvidence::Shape
        );
    }

    #[test]
    fn stun_binding_success_parses_but_never_pairs() {
        // 0x0101 Binding Success: reads as DATA v1 with a SACK extension whose
        // length byte must be a multiple of 4; the cookie sits in timestamp_us.
        let mut stun = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[7; 12]);
        stun.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0x12, 0x34, 1, 2, 3, 4]);
        let mut st = UtpState::default();
        if let Some(h) = parse(&stun) {
            assert_eq!(st.feed(Originator, &h), UtpEvidence::Shape);
            assert_eq!(st.feed(Originator, &h), UtpEvidence::Shape);
        }
    }
}
