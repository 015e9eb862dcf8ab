//! Mainline DHT KRPC messages (BEP 5, with BEP 32 `nodes6`, BEP 42 `ip`, BEP 44
//! `get`/`put`, BEP 51 `sample_infohashes`).
//!
//! A datagram is KRPC when it is exactly one bencoded dictionary with a
//! transaction id `t` and a type `y` of `q`, `r` or `e`; a query names its method
//! in `q` and carries its arguments in the dict `a`, a response carries the dict
//! `r`; both carry the sender's 20-byte node `id`. Compact fields must have their
//! exact sizes: `nodes` 26·k bytes, `nodes6` 38·k, `values` a list of 6- or
//! 18-byte peer addresses, `target`/`info_hash` 20 bytes.
use super::bencode::{BencodeError, Reader, Token};
use super::detector::{Detector, Findings, Payload, MAX_LEARNED_PER_PACKET};
use super::{Confidence, DetectorId};

/// Methods of BEP 5, 44 and 51.
const METHODS: [&[u8]; 7] = [
    b"ping",
    b"find_node",
    b"get_peers",
    b"announce_peer",
    b"get",
    b"put",
    b"sample_infohashes",
];

const NODE_ID_LEN: usize = 20;
const COMPACT_NODE_V4: usize = 26;
const COMPACT_NODE_V6: usize = 38;
const COMPACT_PEER_V4: usize = 6;
const COMPACT_PEER_V6: usize = 18;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KrpcKind {
    Query,
    Response,
    Error,
}

/// A datagram that parsed as KRPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Krpc<'a> {
    pub kind: KrpcKind,
    pub confidence: Confidence,
    /// The raw bencoded `values` list of a `get_peers` response (BEP 5 peers of
    /// the torrent, 6/18-byte compact addresses); see [`values`].
    pub values: Option<&'a [u8]>,
}

/// What the walk of the body found.
#[derive(Default)]
struct Seen<'a> {
    t: bool,
    y: Option<u8>,
    method: Option<&'a [u8]>,
    body_id: bool,
    error_ok: bool,
    values: Option<&'a [u8]>,
}

/// Parses `payload` as one KRPC message; `None` when it is not one.
pub(super) fn parse(payload: &[u8]) -> Option<Krpc<'_>> {
    // Cheap gate before the walk: every KRPC message is a dict that ends in `e`.
    if payload.len() < 12 || payload[0] != b'd' || payload.last() != Some(&b'e') {
        return None;
    }
    let mut r = Reader::new(payload);
    let seen = walk_message(&mut r).ok()?;
    // Exactly one top-level dict: no trailing bytes.
    if !r.at_end() || !seen.t {
        return None;
    }
    let (kind, confidence) = match seen.y? {
        b'q' => {
            let known = seen.method.is_some_and(|m| METHODS.contains(&m));
            if !seen.body_id || seen.method.is_none() {
                return None;
            }
            // An unknown method with a proper node id is some KRPC extension.
            let c = if known {
                Confidence::Definitive
            } else {
                Confidence::Strong
            };
            (KrpcKind::Query, c)
        }
        b'r' if seen.body_id => (KrpcKind::Response, Confidence::Definitive),
        // Errors carry no node id: KRPC-shaped, but thinner evidence.
        b'e' if seen.error_ok => (KrpcKind::Error, Confidence::Strong),
        _ => return None,
    };
    Some(Krpc {
        kind,
        confidence,
        values: seen.values,
    })
}

fn walk_message<'a>(r: &mut Reader<'a>) -> Result<Seen<'a>, BencodeError> {
    let mut seen = Seen::default();
    if r.next_token()? != Token::Dict {
        return Err(BencodeError::Malformed);
    }
    while let Some(key) = r.next_key()? {
        match key {
            b"t" => match r.next_token()? {
                Token::Bytes(t) if !t.is_empty() && t.len() <= 64 => seen.t = true,
                _ => return Err(BencodeError::Malformed),
            },
            b"y" => match r.next_token()? {
                Token::Bytes([y @ (b'q' | b'r' | b'e')]) => seen.y = Some(*y),
                _ => return Err(BencodeError::Malformed),
            },
            b"q" => match r.next_token()? {
                Token::Bytes(m) if !m.is_empty() && m.len() <= 32 => seen.method = Some(m),
                _ => return Err(BencodeError::Malformed),
            },
            b"a" | b"r" => walk_body(r, &mut seen)?,
            b"e" => seen.error_ok = walk_error(r)?,
            _ => r.skip_value()?,
        }
    }
    Ok(seen)
}

/// The `a` or `r` dict: node id and the compact fields whose sizes are fixed.
fn walk_body<'a>(r: &mut Reader<'a>, seen: &mut Seen<'a>) -> Result<(), BencodeError> {
    if r.next_token()? != Token::Dict {
        return Err(BencodeError::Malformed);
    }
    while let Some(key) = r.next_key()? {
        match key {
            b"id" => match r.next_token()? {
                Token::Bytes(id) if id.len() == NODE_ID_LEN => seen.body_id = true,
                _ => return Err(BencodeError::Malformed),
            },
            b"target" | b"info_hash" => match r.next_token()? {
                Token::Bytes(h) if h.len() == NODE_ID_LEN => {}
                _ => return Err(BencodeError::Malformed),
            },
            b"nodes" => compact(r, COMPACT_NODE_V4)?,
            b"nodes6" => compact(r, COMPACT_NODE_V6)?,
            b"values" => {
                let start = r.pos();
                walk_values(r)?;
                seen.values = r.buf_slice(start, r.pos());
            }
            _ => r.skip_value()?,
        }
    }
    Ok(())
}

fn compact(r: &mut Reader<'_>, unit: usize) -> Result<(), BencodeError> {
    match r.next_token()? {
        Token::Bytes(b) if b.len().is_multiple_of(unit) => Ok(()),
        _ => Err(BencodeError::Malformed),
    }
}

fn walk_values(r: &mut Reader<'_>) -> Result<(), BencodeError> {
    if r.next_token()? != Token::List {
        return Err(BencodeError::Malformed);
    }
    loop {
        match r.next_token()? {
            Token::End => return Ok(()),
            Token::Bytes(p) if p.len() == COMPACT_PEER_V4 || p.len() == COMPACT_PEER_V6 => {}
            _ => return Err(BencodeError::Malformed),
        }
    }
}

/// `e`: a list of an integer code and a message string.
fn walk_error(r: &mut Reader<'_>) -> Result<bool, BencodeError> {
    if r.next_token()? != Token::List {
        return Err(BencodeError::Malformed);
    }
    let code = matches!(r.next_token()?, Token::Int(_));
    let msg = matches!(r.next_token()?, Token::Bytes(_));
    let end = r.next_token()? == Token::End;
    Ok(code && msg && end)
}

/// The compact peer addresses in a `values` list, as (ip bytes, port).
/// `list` is what [`Krpc::values`] holds, already validated by [`parse`].
pub(super) fn values(list: &[u8]) -> impl Iterator<Item = (&[u8], u16)> {
    let mut r = Reader::new(list);
    let opened = r.next_token() == Ok(Token::List);
    std::iter::from_fn(move || {
        if !opened {
            return None;
        }
        match r.next_token() {
            Ok(Token::Bytes(p)) if p.len() >= 6 => {
                let (ip, port) = p.split_at(p.len() - 2);
                Some((ip, u16::from_be_bytes([port[0], port[1]])))
            }
            _ => None,
        }
    })
}

/// The DHT detector (`Dht`), with what a Definitive message teaches about
/// endpoints.
pub(super) struct Dht;

impl Detector for Dht {
    type Memory = ();

    #[inline]
    fn inspect(&self, _: &mut (), p: &Payload<'_>, out: &mut Findings<'_>) {
        if !out.enabled(DetectorId::Dht) {
            return;
        }
        let Some(k) = parse(p.bytes) else {
            return;
        };
        out.note(DetectorId::Dht, k.confidence);
        if k.confidence == Confidence::Definitive {
            learn(&k, p, out);
        }
    }
}

/// What a datagram of a flow already judged BitTorrent teaches: a flow is
/// decided on its query, before the response carrying the `values` arrives.
/// Not gated by the `dht` switch: the flow needs no more evidence.
pub(super) fn learn_from(p: &Payload<'_>, out: &mut Findings<'_>) {
    if let Some(k) = parse(p.bytes) {
        if k.confidence == Confidence::Definitive {
            learn(&k, p, out);
        }
    }
}

fn learn(k: &Krpc<'_>, p: &Payload<'_>, out: &mut Findings<'_>) {
    // The sender runs a DHT node on this port.
    out.confirm(p.ctx.src, p.ctx.src_port);
    if k.kind == KrpcKind::Query {
        // Whom it queried was named by someone else's node list.
        out.advertise(p.ctx.dst, p.ctx.dst_port);
    }
    if let Some(list) = k.values {
        for (ip, port) in values(list).take(MAX_LEARNED_PER_PACKET) {
            out.advertise_compact(ip, port);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const ID: &[u8; 20] = b"abcdefghij0123456789";

    pub(crate) fn query(method: &str, args: &str) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(b"d1:ad2:id20:");
        m.extend_from_slice(ID);
        m.extend_from_slice(args.as_bytes());
        m.extend_from_slice(format!("e1:q{}:{}1:t2:aa1:y1:qe", method.len(), method).as_bytes());
        m
    }

    #[test]
    fn bep5_ping_query_is_definitive() {
        // Verbatim from BEP 5.
        let k = parse(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe").unwrap();
        assert_eq!(k.kind, KrpcKind::Query);
        assert_eq!(k.confidence, Confidence::Definitive);
    }

    #[test]
    fn bep5_responses_are_definitive() {
        let ping = b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
        assert_eq!(parse(ping).unwrap().kind, KrpcKind::Response);
        let peers = b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re";
        let k = parse(peers).unwrap();
        assert_eq!(k.confidence, Confidence::Definitive);
        let v: Vec<_> = values(k.values.unwrap()).collect();
        assert_eq!(v, vec![(&b"axje"[..], 0x2e75), (&b"idht"[..], 0x6e6d)]);
    }

    #[test]
    fn every_bep_method_is_recognised() {
        for m in [
            "ping",
            "find_node",
            "get_peers",
            "announce_peer",
            "get",
            "put",
            "sample_infohashes",
        ] {
            let q = query(m, "");
            assert_eq!(parse(&q).unwrap().confidence, Confidence::Definitive, "{m}");
        }
    }

    #[test]
    fn bep42_ip_key_first_is_accepted() {
        let mut m = b"d2:ip6:\x01\x02\x03\x04\x1a\xe11:rd2:id20:".to_vec();
        m.extend_from_slice(ID);
        m.extend_from_slice(b"e1:t2:aa1:y1:re");
        assert_eq!(parse(&m).unwrap().confidence, Confidence::Definitive);
    }

    #[test]
    fn unknown_method_is_only_strong() {
        let q = query("vote", "");
        assert_eq!(parse(&q).unwrap().confidence, Confidence::Strong);
    }

    #[test]
    fn error_message_is_strong() {
        let e = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
        let k = parse(e).unwrap();
        assert_eq!(
            (k.kind, k.confidence),
            (KrpcKind::Error, Confidence::Strong)
        );
    }

    #[test]
    fn compact_sizes_are_enforced() {
        let good = format!("5:nodes{}:{}", 52, "x".repeat(52));
        assert!(parse(&query("find_node", &good)).is_some());
        let bad = format!("5:nodes{}:{}", 50, "x".repeat(50));
        assert_eq!(parse(&query("find_node", &bad)), None);
        let bad6 = format!("6:nodes6{}:{}", 40, "x".repeat(40));
        assert_eq!(parse(&query("find_node", &bad6)), None);
        assert_eq!(parse(&query("get_peers", "9:info_hash3:abc")), None);
        assert_eq!(parse(&query("get_peers", "6:valuesl5:abcdee")), None);
    }

    #[test]
    fn near_misses_are_rejected() {
        // id of 19 bytes.
        assert_eq!(
            parse(b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe"),
            None
        );
        // no transaction id.
        assert_eq!(
            parse(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe"),
            None
        );
        // y of another value.
        assert_eq!(
            parse(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:xe"),
            None
        );
        // trailing garbage after the dict.
        assert_eq!(
            parse(b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:reXe"),
            None
        );
        // a query without a method.
        assert_eq!(
            parse(b"d1:ad2:id20:abcdefghij0123456789e1:t2:aa1:y1:qe"),
            None
        );
        // truncated.
        assert_eq!(
            parse(b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:r"),
            None
        );
        // other bencode (a .torrent fragment).
        assert_eq!(
            parse(b"d8:announce20:http://example/ann4:infod4:name1:xee"),
            None
        );
    }

    #[test]
    fn dns_and_random_data_are_not_krpc() {
        let dns = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x', b'a', b'm', b'p', b'l',
            b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1,
        ];
        assert_eq!(parse(&dns), None);
        let mut x = 0x9e37_79b9_u32;
        let mut noise = vec![b'd'];
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.push(x as u8);
        }
        noise.push(b'e');
        assert_eq!(parse(&noise), None);
    }
}
