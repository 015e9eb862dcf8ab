//! The UDP tracker protocol (BEP 15, with BEP 41 announce options).
//!
//! Every exchange is a request and a response carrying the same 32-bit
//! transaction id: connect (a 16-byte request starting with the protocol id
//! 0x41727101980, answered by 16 bytes with a connection id), then announce
//! (98 bytes plus options, sent with that connection id) or scrape (16 + 20·n
//! bytes). The 64-bit protocol id alone is Strong; a response that matches a
//! request's action and transaction id with the exact size BEP 15 gives it is
//! Definitive, and so is an announce or scrape reusing a connection id the
//! tracker handed out in the same flow.

use super::detector::{Detector, Findings, Payload, MAX_LEARNED_PER_PACKET};
use super::{Confidence, DetectorId, Direction};

const PROTOCOL_ID: u64 = 0x0417_2710_1980;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

const CONNECT_LEN: usize = 16;
const ANNOUNCE_LEN: usize = 98;
const SCRAPE_HEADER: usize = 16;
const INFO_HASH_LEN: usize = 20;
/// BEP 15: "up to about 74 torrents can be scraped at once".
const MAX_SCRAPE_HASHES: usize = 74;
const ANNOUNCE_RESPONSE_HEADER: usize = 20;
const EVENT_MAX: u32 = 3;
/// Offsets inside an announce request.
const PEER_ID_AT: usize = 36;
const EVENT_AT: usize = 80;

/// BEP 41 option types: EndOfOptions, NOP, URLData.
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_URL_DATA: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TrackerEvidence {
    /// A well-formed announce or scrape with no context (Weak).
    RequestShape,
    /// A connect request: the protocol magic (Strong).
    ConnectRequest,
    /// An announce whose peer_id has the Azureus-style client prefix (Strong).
    AnnounceWithPeerId,
    /// A response matching the flow's request, or a request reusing the
    /// connection id the tracker handed out (Definitive).
    Matched,
}

/// Per-flow memory of the tracker exchange (kept in `FlowDpiState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct TrackerState {
    /// 0: nothing; else 1 + the action of the outstanding request.
    pending: u8,
    /// Direction (0/1) the requests come from.
    request_dir: u8,
    has_connection: bool,
    transaction_id: u32,
    connection_id: u64,
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be64(d: &[u8], at: usize) -> Option<u64> {
    let b = d.get(at..at + 8)?;
    Some(u64::from_be_bytes([
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
    ]))
}

/// BEP 41: options after the 98-byte announce must form a valid chain.
fn valid_options(mut opts: &[u8]) -> bool {
    while let Some((&kind, rest)) = opts.split_first() {
        match kind {
            OPTION_END => return true,
            OPTION_NOP => opts = rest,
            OPTION_URL_DATA => {
                let Some((&len, rest)) = rest.split_first() else {
                    return false;
                };
                let Some(next) = rest.get(usize::from(len)..) else {
                    return false;
                };
                opts = next;
            }
            _ => return false,
        }
    }
    true
}

/// `-XX1234-` at the start of the peer_id.
fn azureus_peer_id(id: &[u8]) -> bool {
    matches!(id, [b'-', a, b, rest @ ..]
        if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric()
            && rest.get(4) == Some(&b'-'))
}

impl TrackerState {
    /// Feeds one datagram from `dir`. Returns the evidence and, for a matched
    /// announce response, its compact peer list (else empty).
    pub(super) fn feed<'a>(
        &mut self,
        dir: Direction,
        d: &'a [u8],
    ) -> (Option<TrackerEvidence>, &'a [u8]) {
        let dir = dir.index() as u8;
        if let Some(ev) = self.response(dir, d) {
            return ev;
        }
        (self.request(dir, d), &[])
    }

    fn response<'a>(
        &mut self,
        dir: u8,
        d: &'a [u8],
    ) -> Option<(Option<TrackerEvidence>, &'a [u8])> {
        if self.pending == 0 || dir == self.request_dir {
            return None;
        }
        let action = be32(d, 0)?;
        if be32(d, 4)? != self.transaction_id {
            return None;
        }
        let asked = u32::from(self.pending - 1);
        let mut peers: &[u8] = &[];
        let sized = match action {
            ACTION_CONNECT => d.len() == CONNECT_LEN,
            ACTION_ANNOUNCE => {
                peers = d.get(ANNOUNCE_RESPONSE_HEADER..)?;
                peers.len().is_multiple_of(6) || peers.len().is_multiple_of(18)
            }
            ACTION_SCRAPE => d.len() >= 8 && (d.len() - 8).is_multiple_of(12),
            // An error may answer any request; its message is free text.
            ACTION_ERROR => true,
            _ => false,
        };
        if !sized || (action != asked && action != ACTION_ERROR) {
            return None;
        }
        if action == ACTION_CONNECT {
            self.connection_id = be64(d, 8)?;
            self.has_connection = true;
        }
        self.pending = 0;
        Some((Some(TrackerEvidence::Matched), peers))
    }

    fn request(&mut self, dir: u8, d: &[u8]) -> Option<TrackerEvidence> {
        let connection = be64(d, 0)?;
        let action = be32(d, 8)?;
        let tid = be32(d, 12)?;
        let evidence = match action {
            ACTION_CONNECT if connection == PROTOCOL_ID && d.len() == CONNECT_LEN => {
                TrackerEvidence::ConnectRequest
            }
            ACTION_ANNOUNCE
                if d.len() >= ANNOUNCE_LEN
                    && be32(d, EVENT_AT)? <= EVENT_MAX
                    && valid_options(&d[ANNOUNCE_LEN..]) =>
            {
                if azureus_peer_id(&d[PEER_ID_AT..PEER_ID_AT + 20]) {
                    TrackerEvidence::AnnounceWithPeerId
                } else {
                    TrackerEvidence::RequestShape
                }
            }
            ACTION_SCRAPE
                if d.len() > SCRAPE_HEADER
                    && (d.len() - SCRAPE_HEADER).is_multiple_of(INFO_HASH_LEN)
                    && (d.len() - SCRAPE_HEADER) / INFO_HASH_LEN <= MAX_SCRAPE_HASHES =>
            {
                TrackerEvidence::RequestShape
            }
            _ => return None,
        };
        let reuses_connection = action != ACTION_CONNECT
            && self.has_connection
            && dir == self.request_dir
            && connection == self.connection_id;
        self.pending = action as u8 + 1;
        self.request_dir = dir;
        self.transaction_id = tid;
        Some(if reuses_connection {
            TrackerEvidence::Matched
        } else {
            evidence
        })
    }
}

/// The UDP tracker detector (`UdpTracker`); a matched announce response's
/// peers are advertised.
pub(super) struct UdpTracker;

impl Detector for UdpTracker {
    type Memory = TrackerState;

    #[inline]
    fn inspect(&self, state: &mut TrackerState, p: &Payload<'_>, out: &mut Findings<'_>) {
        if !out.enabled(DetectorId::UdpTracker) {
            return;
        }
        // A relayed datagram belongs to another exchange: judged alone.
        let mut alone = TrackerState::default();
        let state = if p.relayed { &mut alone } else { state };
        let (ev, peers) = state.feed(p.ctx.direction, p.bytes);
        let c = match ev {
            Some(TrackerEvidence::Matched) => Confidence::Definitive,
            Some(TrackerEvidence::ConnectRequest | TrackerEvidence::AnnounceWithPeerId) => {
                Confidence::Strong
            }
            Some(TrackerEvidence::RequestShape) => Confidence::Weak,
            None => return,
        };
        out.note(DetectorId::UdpTracker, c);
        // Compact peers (BEP 23 style): 6 bytes each over IPv4, 18 over IPv6.
        let unit = if p.ctx.src.is_ipv6() { 18 } else { 6 };
        for peer in peers.chunks_exact(unit).take(MAX_LEARNED_PER_PACKET) {
            let (ip, port) = peer.split_at(unit - 2);
            out.advertise_compact(ip, u16::from_be_bytes([port[0], port[1]]));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dpi::Direction::{Originator, Responder};

    pub(crate) fn connect_request(tid: u32) -> Vec<u8> {
        let mut m = PROTOCOL_ID.to_be_bytes().to_vec();
        m.extend_from_slice(&0u32.to_be_bytes());
        m.extend_from_slice(&tid.to_be_bytes());
        m
    }

    pub(crate) fn connect_response(tid: u32, conn: u64) -> Vec<u8> {
        let mut m = 0u32.to_be_bytes().to_vec();
        m.extend_from_slice(&tid.to_be_bytes());
        m.extend_from_slice(&conn.to_be_bytes());
        m
    }

    pub(crate) fn announce(conn: u64, tid: u32, peer_id: &[u8; 20]) -> Vec<u8> {
        let mut m = conn.to_be_bytes().to_vec();
        m.extend_from_slice(&1u32.to_be_bytes());
        m.extend_from_slice(&tid.to_be_bytes());
        m.extend_from_slice(&[0x5a; 20]);
        m.extend_from_slice(peer_id);
        m.extend_from_slice(&[0; 24]); // downloaded, left, uploaded
        m.extend_from_slice(&2u32.to_be_bytes()); // event started
        m.extend_from_slice(&[0; 8]); // ip, key
        m.extend_from_slice(&(-1i32).to_be_bytes());
        m.extend_from_slice(&6881u16.to_be_bytes());
        assert_eq!(m.len(), ANNOUNCE_LEN);
        m
    }

    fn announce_response(tid: u32, peers: &[[u8; 6]]) -> Vec<u8> {
        let mut m = 1u32.to_be_bytes().to_vec();
        m.extend_from_slice(&tid.to_be_bytes());
        m.extend_from_slice(&[0, 0, 7, 8, 0, 0, 0, 1, 0, 0, 0, 2]);
        for p in peers {
            m.extend_from_slice(p);
        }
        m
    }

    #[test]
    fn connect_request_alone_is_the_magic() {
        let mut t = TrackerState::default();
        assert_eq!(
            t.feed(Originator, &connect_request(7)).0,
            Some(TrackerEvidence::ConnectRequest)
        );
    }

    #[test]
    fn full_exchange_matches_and_yields_peers() {
        let mut t = TrackerState::default();
        t.feed(Originator, &connect_request(7));
        assert_eq!(
            t.feed(Responder, &connect_response(7, 0xdead_beef_0102_0304))
                .0,
            Some(TrackerEvidence::Matched)
        );
        let a = announce(0xdead_beef_0102_0304, 8, &[b'x'; 20]);
        assert_eq!(t.feed(Originator, &a).0, Some(TrackerEvidence::Matched));
        let peer = [10, 0, 0, 1, 0x1a, 0xe1];
        let resp = announce_response(8, &[peer]);
        let (ev, peers) = t.feed(Responder, &resp);
        assert_eq!(ev, Some(TrackerEvidence::Matched));
        assert_eq!(peers, &peer[..]);
    }

    #[test]
    fn responses_must_match_transaction_direction_and_size() {
        let mut t = TrackerState::default();
        t.feed(Originator, &connect_request(7));
        assert_eq!(t.feed(Responder, &connect_response(8, 1)).0, None);
        // From the requester's own side.
        assert_eq!(t.feed(Originator, &connect_response(7, 1)).0, None);
        let mut long = connect_response(7, 1);
        long.push(0);
        assert_eq!(t.feed(Responder, &long).0, None);
        assert_eq!(
            t.feed(Responder, &connect_response(7, 1)).0,
            Some(TrackerEvidence::Matched)
        );
    }

    #[test]
    fn announce_without_context_is_a_shape_or_peer_id() {
        let mut t = TrackerState::default();
        let plain = announce(0x1122_3344_5566_7788, 1, &[0x33; 20]);
        assert_eq!(
            t.feed(Originator, &plain).0,
            Some(TrackerEvidence::RequestShape)
        );
        let mut t = TrackerState::default();
        let qb = announce(0x1122_3344_5566_7788, 1, b"-qB4650-abcdefghijkl");
        assert_eq!(
            t.feed(Originator, &qb).0,
            Some(TrackerEvidence::AnnounceWithPeerId)
        );
        // Its matched response is Definitive.
        assert_eq!(
            t.feed(Responder, &announce_response(1, &[])).0,
            Some(TrackerEvidence::Matched)
        );
    }

    #[test]
    fn bep41_options_are_checked() {
        let mut t = TrackerState::default();
        let mut a = announce(5, 1, &[0x33; 20]);
        a.extend_from_slice(&[2, 3, b'/', b'a', b'b', 1, 0]);
        assert_eq!(
            t.feed(Originator, &a).0,
            Some(TrackerEvidence::RequestShape)
        );
        let mut bad = announce(5, 1, &[0x33; 20]);
        bad.extend_from_slice(&[2, 30, b'/']);
        assert_eq!(TrackerState::default().feed(Originator, &bad).0, None);
        let mut bad_event = announce(5, 1, &[0x33; 20]);
        bad_event[EVENT_AT + 3] = 9;
        assert_eq!(TrackerState::default().feed(Originator, &bad_event).0, None);
    }

    #[test]
    fn near_misses() {
        let mut t = TrackerState::default();
        // Magic with a wrong action, wrong length, or a wrong magic.
        let mut m = connect_request(1);
        m[11] = 1;
        assert_eq!(t.feed(Originator, &m).0, None);
        let mut m = connect_request(1);
        m.push(0);
        assert_eq!(t.feed(Originator, &m).0, None);
        let mut m = connect_request(1);
        m[7] = 0x81;
        assert_eq!(t.feed(Originator, &m).0, None);
        // A DNS query is none of it.
        let dns = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'f', b'o', b'o', 0, 0, 1, 0, 1,
        ];
        assert_eq!(TrackerState::default().feed(Originator, &dns).0, None);
        // Scrape with a partial hash.
        let mut s = 5u64.to_be_bytes().to_vec();
        s.extend_from_slice(&2u32.to_be_bytes());
        s.extend_from_slice(&1u32.to_be_bytes());
        s.extend_from_slice(&[1; 25]);
        assert_eq!(TrackerState::default().feed(Originator, &s).0, None);
    }
}
