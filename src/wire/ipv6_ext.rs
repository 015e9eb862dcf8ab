//! The IPv6 extension-header chain: skipped header by header until the
//! upper-layer protocol, noting a fragment header on the way.
//!
//! Order rules (hop-by-hop first, each at most once) are not enforced: a bump
//! in the wire only needs to find the upper layer, and the hosts judge the
//! rest. The chain length is capped so a crafted packet cannot make a worker
//! walk hundreds of tiny headers.
use super::field::FixedHeader;
use super::{Fragment, ParseError};

/// IPv6 next-header values that are extension headers, plus the two that end
/// a chain without an upper layer we read.
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    /// Encrypted from here on: ends the chain.
    pub const ESP: u8 = 50;
    pub const AUTH: u8 = 51;
    /// Nothing follows: ends the chain.
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DESTINATION_OPTIONS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// The most extension headers one packet may carry before it is refused.
pub const MAX_EXTENSION_HEADERS: u8 = 8;
pub const FRAGMENT_HEADER_LEN: usize = 8;
/// The part every extension-header format shares: next header and length.
const EXTENSION_FIXED_LEN: usize = 2;

/// [`ExtensionHeader`]'s common first two bytes.
mod ext_field {
    use crate::wire::field::Field;

    pub(super) const NXT_HDR: Field<0, 1> = Field;
    /// The header's length in 8-byte units (4-byte units for AH), not
    /// counting the first unit (first two for AH).
    pub(super) const LENGTH: Field<1, 1> = Field;
}

/// [`FragmentHeader`]'s fields.
mod frag_field {
    use crate::wire::field::Field;

    pub(super) const NXT_HDR: Field<0, 1> = Field;
    /// Fragment offset in 8-byte units (13 bits), reserved (2), M (1).
    pub(super) const FR_OF_M: Field<2, 2> = Field;
    pub(super) const IDENT: Field<4, 4> = Field;
}

/// Whether `protocol` is an extension header that `walk` steps over.
#[inline]
pub fn is_extension_header(protocol: u8) -> bool {
    use next_header::*;
    matches!(
        protocol,
        HOP_BY_HOP | ROUTING | FRAGMENT | AUTH | DESTINATION_OPTIONS | MOBILITY | HIP | SHIM6
    )
}

/// Where the chain ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer<'a> {
    /// The upper-layer protocol (TCP 6, UDP 17, ICMPv6 58, ESP 50, 59, …).
    pub protocol: u8,
    pub fragment: Fragment,
    /// Extension headers stepped over.
    pub extension_headers: u8,
    /// The upper-layer bytes; for a non-first fragment, the fragment's data.
    pub payload: &'a [u8],
}

/// A variable-length extension header in the common "next header, length"
/// format (hop-by-hop, routing, destination options, mobility, HIP, shim6),
/// or an authentication header, whose length counts 4-byte units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtensionHeader<'a> {
    fixed: FixedHeader<'a, EXTENSION_FIXED_LEN>,
    /// Bytes after the fixed part, up to the header's end.
    body: &'a [u8],
    payload: &'a [u8],
}

impl<'a> ExtensionHeader<'a> {
    /// `kind` is the next-header value that announced this header.
    #[inline]
    pub fn new_checked(kind: u8, bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (fixed, rest) =
            FixedHeader::split_from(bytes).ok_or(ParseError::TruncatedIpv6Extension)?;
        let units = usize::from(fixed.u8(ext_field::LENGTH));
        // Whole length: (units + 2) * 4 for AH, (units + 1) * 8 otherwise;
        // the body is that less the fixed part already split off.
        let body_len = if kind == next_header::AUTH {
            units * 4 + 8 - EXTENSION_FIXED_LEN
        } else {
            units * 8 + 8 - EXTENSION_FIXED_LEN
        };
        let (body, payload) = rest
            .split_at_checked(body_len)
            .ok_or(ParseError::TruncatedIpv6Extension)?;
        Ok(ExtensionHeader {
            fixed,
            body,
            payload,
        })
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.fixed.u8(ext_field::NXT_HDR)
    }

    /// The header's whole length in bytes.
    pub fn len(&self) -> usize {
        self.body.len() + EXTENSION_FIXED_LEN
    }

    /// Never true: the shortest extension header is 8 bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Options or routing data: the header after its first two bytes.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// The 8-byte fragment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader<'a> {
    header: FixedHeader<'a, FRAGMENT_HEADER_LEN>,
    payload: &'a [u8],
}

impl<'a> FragmentHeader<'a> {
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (header, payload) =
            FixedHeader::split_from(bytes).ok_or(ParseError::TruncatedIpv6Extension)?;
        Ok(FragmentHeader { header, payload })
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.header.u8(frag_field::NXT_HDR)
    }

    /// Fragment offset in 8-byte units.
    #[inline]
    pub fn offset(&self) -> u16 {
        self.header.be16(frag_field::FR_OF_M) >> 3
    }

    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.header.be16(frag_field::FR_OF_M) & 1 != 0
    }

    pub fn ident(&self) -> u32 {
        self.header.be32(frag_field::IDENT)
    }

    /// Offset 0 without "more fragments" is an atomic fragment (RFC 6946):
    /// the whole datagram is here, so it counts as unfragmented.
    #[inline]
    pub fn fragment(&self) -> Fragment {
        match (self.offset(), self.more_fragments()) {
            (0, false) => Fragment::None,
            (0, true) => Fragment::First,
            _ => Fragment::NonFirst,
        }
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Walks the chain that starts with `first` (the fixed header's next header)
/// over `payload` (the fixed header's payload).
#[inline]
pub fn walk(first: u8, payload: &[u8]) -> Result<UpperLayer<'_>, ParseError> {
    let mut at = UpperLayer {
        protocol: first,
        fragment: Fragment::None,
        extension_headers: 0,
        payload,
    };
    while is_extension_header(at.protocol) {
        if at.extension_headers == MAX_EXTENSION_HEADERS {
            return Err(ParseError::TooManyIpv6Extensions);
        }
        at.extension_headers += 1;
        if at.protocol == next_header::FRAGMENT {
            let frag = FragmentHeader::new_checked(at.payload)?;
            at.protocol = frag.next_header();
            at.payload = frag.payload();
            match frag.fragment() {
                // What follows is the middle of some datagram, not headers.
                Fragment::NonFirst => {
                    at.fragment = Fragment::NonFirst;
                    return Ok(at);
                }
                Fragment::First => at.fragment = Fragment::First,
                Fragment::None => {}
            }
        } else {
            let ext = ExtensionHeader::new_checked(at.protocol, at.payload)?;
            at.protocol = ext.next_header();
            at.payload = ext.payload();
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::next_header::*;
    use super::*;

    /// Hop-by-hop (next: fragment, len 0, PadN) then fragment (next: UDP,
    /// offset 0, M=1, ident 0xDEADBEEF) then 4 bytes of UDP.
    const HBH_FRAG: [u8; 20] = [
        FRAGMENT, 0, 0x01, 0x04, 0, 0, 0, 0, //
        17, 0, 0x00, 0x01, 0xDE, 0xAD, 0xBE, 0xEF, //
        0x04, 0xD2, 0x16, 0x2E,
    ];

    #[test]
    fn hop_by_hop_then_first_fragment() {
        let up = walk(HOP_BY_HOP, &HBH_FRAG).expect("valid chain");
        assert_eq!(up.protocol, 17);
        assert_eq!(up.fragment, Fragment::First);
        assert_eq!(up.extension_headers, 2);
        assert_eq!(up.payload, &[0x04, 0xD2, 0x16, 0x2E]);
    }

    #[test]
    fn fragment_header_fields() {
        let f = FragmentHeader::new_checked(&HBH_FRAG[8..]).expect("8+ bytes");
        assert_eq!(f.next_header(), 17);
        assert_eq!(f.offset(), 0);
        assert!(f.more_fragments());
        assert_eq!(f.ident(), 0xDEAD_BEEF);
        assert_eq!(f.payload().len(), 4);
    }

    #[test]
    fn non_first_fragment_stops_the_walk() {
        // Offset 185 (1480 bytes), M=0; the "payload" looks like a routing
        // header but is fragment data and must not be walked.
        let bytes = [TCP_PROTO, 0, 0x05, 0xC8, 0, 0, 0, 1, ROUTING, 200];
        let up = walk(FRAGMENT, &bytes).expect("valid");
        assert_eq!(up.protocol, TCP_PROTO);
        assert_eq!(up.fragment, Fragment::NonFirst);
        assert_eq!(up.extension_headers, 1);
        assert_eq!(up.payload, &[ROUTING, 200]);
    }
    const TCP_PROTO: u8 = 6;

    #[test]
    fn atomic_fragment_is_unfragmented() {
        let bytes = [TCP_PROTO, 0, 0, 0, 0, 0, 0, 1];
        let up = walk(FRAGMENT, &bytes).expect("valid");
        assert_eq!(up.fragment, Fragment::None);
        assert_eq!(up.protocol, TCP_PROTO);
        assert!(up.payload.is_empty());
    }

    #[test]
    fn lengths_per_format() {
        // Routing header, len 1: 16 bytes.
        let mut routing = vec![DESTINATION_OPTIONS, 1];
        routing.extend_from_slice(&[0; 14]);
        // Destination options, len 0: 8 bytes.
        routing.extend_from_slice(&[AUTH, 0, 1, 4, 0, 0, 0, 0]);
        // AH, len 4: (4 + 2) * 4 = 24 bytes.
        routing.extend_from_slice(&[NO_NEXT_HEADER, 4]);
        routing.extend_from_slice(&[0; 22]);
        routing.extend_from_slice(&[0xAA, 0xBB]);
        let up = walk(ROUTING, &routing).expect("valid chain");
        assert_eq!(up.protocol, NO_NEXT_HEADER);
        assert_eq!(up.extension_headers, 3);
        assert_eq!(up.payload, &[0xAA, 0xBB]);

        let ah = ExtensionHeader::new_checked(AUTH, &routing[24..]).expect("valid");
        assert_eq!(ah.len(), 24);
        assert_eq!(ah.body().len(), 22);
    }

    #[test]
    fn every_listed_extension_is_stepped_over() {
        for kind in [
            HOP_BY_HOP,
            ROUTING,
            DESTINATION_OPTIONS,
            MOBILITY,
            HIP,
            SHIM6,
        ] {
            let bytes = [17, 0, 0, 0, 0, 0, 0, 0, 0x42];
            let up = walk(kind, &bytes).expect("valid");
            assert_eq!(
                (up.protocol, up.extension_headers, up.payload),
                (17, 1, &[0x42][..])
            );
        }
    }

    #[test]
    fn esp_and_no_next_header_end_the_chain() {
        for kind in [ESP, NO_NEXT_HEADER] {
            assert!(!is_extension_header(kind));
            let up = walk(kind, &[1, 2, 3]).expect("valid");
            assert_eq!((up.protocol, up.extension_headers), (kind, 0));
            assert_eq!(up.payload, &[1, 2, 3]);
        }
    }

    fn chain(headers: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for i in 0..headers {
            let next = if i + 1 == headers {
                17
            } else {
                DESTINATION_OPTIONS
            };
            bytes.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        bytes
    }

    #[test]
    fn chain_is_capped_at_eight() {
        let eight = chain(8);
        let up = walk(DESTINATION_OPTIONS, &eight).expect("8 headers allowed");
        assert_eq!((up.protocol, up.extension_headers), (17, 8));
        assert_eq!(
            walk(DESTINATION_OPTIONS, &chain(9)),
            Err(ParseError::TooManyIpv6Extensions)
        );
    }

    #[test]
    fn truncated_headers() {
        assert_eq!(
            walk(HOP_BY_HOP, &[]),
            Err(ParseError::TruncatedIpv6Extension)
        );
        assert_eq!(
            walk(HOP_BY_HOP, &[17]),
            Err(ParseError::TruncatedIpv6Extension)
        );
        assert_eq!(
            walk(HOP_BY_HOP, &[17, 0, 1, 4, 0, 0, 0]),
            Err(ParseError::TruncatedIpv6Extension)
        );
        assert_eq!(
            walk(FRAGMENT, &[17, 0, 0, 0, 0, 0, 0]),
            Err(ParseError::TruncatedIpv6Extension)
        );
        // AH claiming (255 + 2) * 4 bytes.
        assert_eq!(
            walk(AUTH, &[17, 255, 0, 0, 0, 0, 0, 0]),
            Err(ParseError::TruncatedIpv6Extension)
        );
    }
}
