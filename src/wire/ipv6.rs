//! The fixed IPv6 header (RFC 8200). The payload is cut at the payload
//! length, so Ethernet padding never reaches the extension headers or L4;
//! `ipv6_ext` walks what follows.
use std::net::Ipv6Addr;

use super::field::FixedHeader;
use super::ipv6_ext::{self, UpperLayer};
use super::ParseError;

pub const HEADER_LEN: usize = 40;
/// The version nibble of an IPv6 header.
pub const VERSION: u8 = 6;

mod field {
    use crate::wire::field::Field;

    /// Version (4 bits), traffic class (8), flow label (20).
    pub(super) const VER_TC_FLOW: Field<0, 4> = Field;
    /// The first byte of `VER_TC_FLOW`: the version is its high nibble. Read
    /// alone so the version check loads one byte.
    pub(super) const VER_TC: Field<0, 1> = Field;
    /// Extension headers and upper layer, in bytes.
    pub(super) const LENGTH: Field<4, 2> = Field;
    pub(super) const NXT_HDR: Field<6, 1> = Field;
    pub(super) const HOP_LIMIT: Field<7, 1> = Field;
    pub(super) const SRC_ADDR: Field<8, 16> = Field;
    pub(super) const DST_ADDR: Field<24, 16> = Field;
}

/// An IPv6 packet whose payload length has been checked against the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Packet<'a> {
    header: FixedHeader<'a, HEADER_LEN>,
    /// Exactly `payload_len` bytes: extension headers and upper layer.
    payload: &'a [u8],
}

impl<'a> Ipv6Packet<'a> {
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (header, rest) =
            FixedHeader::<HEADER_LEN>::split_from(bytes).ok_or(ParseError::TruncatedIpv6)?;
        if version(header) != VERSION {
            return Err(ParseError::BadIpv6Version);
        }
        // A payload length of 0 with a hop-by-hop jumbo option (RFC 2675)
        // cannot occur on any link we read (all have MTUs far below 64 KiB),
        // so 0 is taken at its word and yields an empty payload.
        let payload = rest
            .get(..usize::from(header.be16(field::LENGTH)))
            .ok_or(ParseError::BadIpv6PayloadLength)?;
        Ok(Ipv6Packet { header, payload })
    }

    pub fn version(&self) -> u8 {
        version(self.header)
    }

    pub fn traffic_class(&self) -> u8 {
        let [hi, lo, ..] = self.header.array(field::VER_TC_FLOW);
        (hi << 4) | (lo >> 4)
    }

    pub fn flow_label(&self) -> u32 {
        self.header.be32(field::VER_TC_FLOW) & 0x000F_FFFF
    }

    pub fn payload_len(&self) -> u16 {
        self.header.be16(field::LENGTH)
    }

    /// The protocol of the first header after the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.header.u8(field::NXT_HDR)
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.header.u8(field::HOP_LIMIT)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.header.array(field::SRC_ADDR))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.header.array(field::DST_ADDR))
    }

    /// Extension headers and upper layer, exactly `payload_len` bytes.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Walks the extension-header chain to the upper-layer protocol.
    #[inline]
    pub fn upper_layer(&self) -> Result<UpperLayer<'a>, ParseError> {
        ipv6_ext::walk(self.next_header(), self.payload)
    }
}

#[inline(always)]
fn version(header: FixedHeader<'_, HEADER_LEN>) -> u8 {
    header.u8(field::VER_TC) >> 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Fragment;

    /// IPv6, traffic class 0xAB, flow label 0xCDEF1, payload length 10 (8 of
    /// UDP header + 2 bytes), next header UDP, hop limit 64,
    /// 2001:db8::1 -> 2001:db8::2.
    const UDP: [u8; 50] = [
        0x6A, 0xBC, 0xDE, 0xF1, 0x00, 0x0A, 17, 64, //
        0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, //
        0x04, 0xD2, 0x16, 0x2E, 0x00, 0x0A, 0x00, 0x00, 0x68, 0x69,
    ];

    #[test]
    fn reads_every_field() {
        let p = Ipv6Packet::new_checked(&UDP).expect("valid");
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xAB);
        assert_eq!(p.flow_label(), 0xCDEF1);
        assert_eq!(p.payload_len(), 10);
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(
            p.src_addr(),
            "2001:db8::1".parse::<Ipv6Addr>().expect("literal")
        );
        assert_eq!(
            p.dst_addr(),
            "2001:db8::2".parse::<Ipv6Addr>().expect("literal")
        );
        assert_eq!(p.payload().len(), 10);
        let upper = p.upper_layer().expect("no extension headers");
        assert_eq!(upper.protocol, 17);
        assert_eq!(upper.fragment, Fragment::None);
        assert_eq!(upper.extension_headers, 0);
        assert_eq!(upper.payload.len(), 10);
    }

    #[test]
    fn padding_past_payload_length_is_trimmed() {
        let mut padded = UDP.to_vec();
        padded.extend_from_slice(&[0xFF; 4]);
        let p = Ipv6Packet::new_checked(&padded).expect("valid");
        assert_eq!(p.payload().len(), 10);
        assert_eq!(p.payload().last(), Some(&0x69));
    }

    #[test]
    fn errors() {
        assert_eq!(
            Ipv6Packet::new_checked(&UDP[..39]),
            Err(ParseError::TruncatedIpv6)
        );
        let mut v4 = UDP;
        v4[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&v4),
            Err(ParseError::BadIpv6Version)
        );
        assert_eq!(
            Ipv6Packet::new_checked(&UDP[..49]),
            Err(ParseError::BadIpv6PayloadLength)
        );
    }
}
