//! Peer-wire message framing (BEP 3, 6, 10, 52) and the extension handshake.
//!
//! After the handshake, both peers send `<u32 length><u8 id><payload>`
//! messages. Most ids have one exact length (have 5, request 13, port 3…), so a
//! segment that splits into several well-formed messages is good evidence of
//! a peer-wire stream even when the handshake was missed (a flow picked up
//! mid-stream). It is still only a shape: on its own it is Weak (one message)
//! or Strong (two or more), never Definitive.
//!
//! The extension handshake (BEP 10: id 20, extended id 0, a bencoded dict whose
//! `m` dict maps extension names to ids) is different: its content is specific
//! to BitTorrent, so with a known extension name it is Definitive.
use super::bencode::{BencodeError, Reader, Token};
use super::detector::{Detector, Findings, Payload};
use super::handshake::{self, PrefixMatch};
use super::{Confidence, DetectorId, Direction};

const ID_CHOKE: u8 = 0;
const ID_NOT_INTERESTED: u8 = 3;
const ID_HAVE: u8 = 4;
const ID_BITFIELD: u8 = 5;
const ID_REQUEST: u8 = 6;
const ID_PIECE: u8 = 7;
const ID_CANCEL: u8 = 8;
const ID_PORT: u8 = 9;
const ID_SUGGEST: u8 = 13;
const ID_HAVE_ALL: u8 = 14;
const ID_HAVE_NONE: u8 = 15;
const ID_REJECT: u8 = 16;
const ID_ALLOWED_FAST: u8 = 17;
const ID_EXTENDED: u8 = 20;
const ID_HASH_REQUEST: u8 = 21;
const ID_HASHES: u8 = 22;
const ID_HASH_REJECT: u8 = 23;

/// Largest block a client may send or request (libtorrent and others cap
/// requests at 128 KiB; 16 KiB is the norm).
const MAX_BLOCK: u32 = 128 * 1024;
/// A bitfield for 2^21 pieces; far above any real torrent.
const MAX_BITFIELD: u32 = 1 + (1 << 18);
/// Extension messages (metadata pieces are 16 KiB plus a small dict).
const MAX_EXTENDED: u32 = 1 << 20;
/// BEP 52 hash messages: a 48-byte header then up to 2^16 hashes of 32 bytes.
const MAX_HASHES: u32 = 49 + (1 << 21);

/// Extension names of BEP 9, 10, 11, 21, 55 and libtorrent's common ones.
const EXTENSION_NAMES: [&[u8]; 9] = [
    b"ut_metadata",
    b"ut_pex",
    b"lt_donthave",
    b"upload_only",
    b"ut_holepunch",
    b"share_mode",
    b"ut_comment",
    b"lt_tex",
    b"LT_metadata",
];

/// Is `len` (the u32 prefix, id included) a valid length for message `id`?
fn valid_length(id: u8, len: u32) -> bool {
    match id {
        ID_CHOKE..=ID_NOT_INTERESTED | ID_HAVE_ALL | ID_HAVE_NONE => len == 1,
        ID_HAVE | ID_SUGGEST | ID_ALLOWED_FAST => len == 5,
        ID_REQUEST | ID_CANCEL | ID_REJECT => len == 13,
        ID_PORT => len == 3,
        ID_BITFIELD => (2..=MAX_BITFIELD).contains(&len),
        ID_PIECE => (10..=9 + MAX_BLOCK).contains(&len),
        ID_EXTENDED => (2..=MAX_EXTENDED).contains(&len),
        ID_HASH_REQUEST | ID_HASH_REJECT => len == 49,
        ID_HASHES => (49..=MAX_HASHES).contains(&len),
        _ => false,
    }
}

/// What one segment's framing looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Scan {
    /// Complete, valid messages (keep-alives not counted).
    pub messages: u8,
    /// The last message runs past the segment (continues in the next one).
    pub open_tail: bool,
    /// Best evidence from an extension handshake in the segment, if any.
    pub extension: Option<Confidence>,
}

impl Scan {
    /// The framing evidence alone (the extension handshake is separate).
    pub(super) fn confidence(&self) -> Option<Confidence> {
        match self.messages {
            0 => None,
            1 => Some(Confidence::Weak),
            _ => Some(Confidence::Strong),
        }
    }
}

/// Walks `seg` as a sequence of peer-wire messages starting at offset 0.
/// `None` when any message is malformed (then the segment is not peer wire,
/// or starts mid-message).
#[inline]
pub(super) fn scan(seg: &[u8]) -> Option<Scan> {
    let mut out = Scan::default();
    let mut rest = seg;
    while !rest.is_empty() {
        let Some(header) = rest.get(..4) else {
            // A length prefix cut by the segment boundary: cannot judge it.
            out.open_tail = true;
            break;
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if len == 0 {
            rest = &rest[4..];
            continue;
        }
        let &id = rest.get(4)?;
        if !valid_length(id, len) {
            return None;
        }
        let body = &rest[5..];
        let body_len = (len - 1) as usize;
        if id == ID_EXTENDED && body.first() == Some(&0) {
            let dict = &body[1..body.len().min(body_len)];
            let c = extension_handshake(dict);
            out.extension = out.extension.max(c);
        }
        match body.get(body_len..) {
            Some(next) => {
                out.messages = out.messages.saturating_add(1);
                rest = next;
            }
            None => {
                out.open_tail = true;
                break;
            }
        }
    }
    Some(out)
}

/// Judges the payload of an extension handshake (after the extended id 0).
/// The dict may be cut at the segment end; what was read before counts.
pub(super) fn extension_handshake(dict: &[u8]) -> Option<Confidence> {
    let mut r = Reader::new(dict);
    let mut best = None;
    let res = walk_handshake(&mut r, &mut best);
    match res {
        Ok(()) | Err(BencodeError::Truncated) => best,
        Err(_) => None,
    }
}

fn walk_handshake(r: &mut Reader<'_>, best: &mut Option<Confidence>) -> Result<(), BencodeError> {
    if r.next_token()? != Token::Dict {
        return Err(BencodeError::Malformed);
    }
    while let Some(key) = r.next_key()? {
        if key != b"m" {
            r.skip_value()?;
            continue;
        }
        if r.next_token()? != Token::Dict {
            return Err(BencodeError::Malformed);
        }
        // A dict named `m` is the BEP 10 shape; its keys say which extensions.
        *best = (*best).max(Some(Confidence::Strong));
        while let Some(name) = r.next_key()? {
            if !matches!(r.next_token()?, Token::Int(_)) {
                return Err(BencodeError::Malformed);
            }
            if EXTENSION_NAMES.contains(&name) {
                *best = Some(Confidence::Definitive);
            }
        }
    }
    Ok(())
}

/// The framing detector: `PeerWireFraming` for well-formed messages (at least
/// Strong once both directions sent some: a peer-wire conversation), and
/// `ExtensionHandshake` for a BEP 10 handshake. A segment that starts with the
/// MSDO handshake is Microsoft Delivery Optimization: a guard.
pub(super) struct Framing;

/// Per flow: whether each direction sent well-formed messages.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct FramingState {
    seen: [bool; 2],
}

impl Detector for Framing {
    type Memory = FramingState;

    #[inline]
    fn inspect(&self, m: &mut FramingState, p: &Payload<'_>, out: &mut Findings<'_>) {
        let framing_on = out.enabled(DetectorId::PeerWireFraming);
        let extension_on = out.enabled(DetectorId::ExtensionHandshake);
        if !framing_on && !extension_on {
            return;
        }
        let bytes = p.bytes;
        if handshake::is_msdo(bytes) {
            out.guard();
            return;
        }
        // A handshake segment may carry the first messages after its 68 bytes.
        let body = if handshake::match_prefix(bytes) == PrefixMatch::Complete {
            bytes.get(handshake::HANDSHAKE_LEN..).unwrap_or(&[])
        } else {
            bytes
        };
        if body.is_empty() {
            return;
        }
        let Some(f) = scan(body) else {
            return;
        };
        let dir = p.ctx.direction;
        if let Some(c) = f.extension {
            if extension_on {
                out.note(DetectorId::ExtensionHandshake, c);
                if c == Confidence::Definitive && dir == Direction::Responder {
                    out.confirm(p.ctx.src, p.ctx.src_port);
                }
            }
        }
        let Some(mut c) = f.confidence() else {
            return;
        };
        m.seen[dir.index()] = true;
        // Well-formed messages from both sides: a peer-wire conversation.
        if m.seen[dir.reverse().index()] {
            c = c.max(Confidence::Strong);
        }
        if framing_on {
            out.note(DetectorId::PeerWireFraming, c);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn msg(id: u8, body: &[u8]) -> Vec<u8> {
        let mut m = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        m.push(id);
        m.extend_from_slice(body);
        m
    }

    pub(crate) fn ext_handshake() -> Vec<u8> {
        let mut body = vec![0u8];
        body.extend_from_slice(
            b"d1:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e1:v13:qBittorrent/4e",
        );
        msg(ID_EXTENDED, &body)
    }

    #[test]
    fn fixed_length_messages_in_sequence_are_strong() {
        let mut seg = msg(ID_BITFIELD, &[0xff, 0xff, 0xf0]);
        seg.extend(msg(ID_HAVE, &7u32.to_be_bytes()));
        seg.extend(msg(2, &[])); // interested
        let f = scan(&seg).unwrap();
        assert_eq!(f.messages, 3);
        assert!(!f.open_tail);
        assert_eq!(f.confidence(), Some(Confidence::Strong));
    }

    #[test]
    fn one_message_is_weak_and_keepalives_do_not_count() {
        let mut seg = vec![0, 0, 0, 0];
        seg.extend(msg(1, &[])); // unchoke
        let f = scan(&seg).unwrap();
        assert_eq!((f.messages, f.confidence()), (1, Some(Confidence::Weak)));
        assert_eq!(scan(&[0, 0, 0, 0]).unwrap().confidence(), None);
    }

    #[test]
    fn a_piece_running_past_the_segment_is_an_open_tail() {
        let mut seg = msg(ID_REQUEST, &[0; 12]);
        seg.extend_from_slice(&(16384u32 + 9).to_be_bytes());
        seg.push(ID_PIECE);
        seg.extend_from_slice(&[0; 100]);
        let f = scan(&seg).unwrap();
        assert_eq!((f.messages, f.open_tail), (1, true));
    }

    #[test]
    fn wrong_lengths_and_ids_are_rejected() {
        assert_eq!(scan(&msg(ID_HAVE, &[0; 5])), None); // have of length 6
        assert_eq!(scan(&msg(ID_REQUEST, &[0; 8])), None);
        assert_eq!(scan(&msg(ID_PORT, &[0; 4])), None);
        assert_eq!(scan(&msg(12, &[])), None); // unassigned id
        assert_eq!(scan(&msg(200, &[0; 3])), None);
        // A piece claiming a 1 MiB block.
        let mut big = (1u32 << 20).to_be_bytes().to_vec();
        big.extend_from_slice(&[ID_PIECE, 0, 0]);
        assert_eq!(scan(&big), None);
        // TLS and HTTP starts.
        assert_eq!(scan(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), None);
        assert_eq!(scan(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn extension_handshake_with_known_names_is_definitive() {
        let f = scan(&ext_handshake()).unwrap();
        assert_eq!(f.extension, Some(Confidence::Definitive));
        assert_eq!(f.messages, 1);
    }

    #[test]
    fn extension_handshake_cut_after_m_still_counts() {
        let hs = ext_handshake();
        let f = scan(&hs[..40]).unwrap();
        assert!(f.open_tail);
        assert_eq!(f.extension, Some(Confidence::Definitive));
    }

    #[test]
    fn unknown_extension_names_are_only_strong() {
        let mut body = vec![0u8];
        body.extend_from_slice(b"d1:md6:x_fooi3eee");
        assert_eq!(
            scan(&msg(ID_EXTENDED, &body)).unwrap().extension,
            Some(Confidence::Strong)
        );
        // No `m` dict: nothing.
        let mut body = vec![0u8];
        body.extend_from_slice(b"d1:pi6881ee");
        assert_eq!(scan(&msg(ID_EXTENDED, &body)).unwrap().extension, None);
        // Not bencode (the YouTube false positive of the Go tool: byte 4 = 0x14).
        let mut body = vec![0u8];
        body.extend_from_slice(b"<html>");
        assert_eq!(scan(&msg(ID_EXTENDED, &body)).unwrap().extension, None);
    }
}
