//! The fixed IPv6 header (RFC 8200). The payload is cut at the payload
//! length, so Ethernet padding never reaches the extension headers or L4;
//! `ipv6_ext` walks what follows.
use std::net::Ipv6Addr;

use super::field::FixedHeader;
use super::ipv6_ext::{self, UpperLayer};
use super::ParseError;

pub const HEADER_LEN: usize = 40;

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
        if header.u8::<0>() >> 4 != 6 {
            return Err(ParseError::BadIpv6Version);
        }
        // A payload length of 0 with a hop-by-hop jumbo option (RFC 2675)
        // cannot occur on any link we read (all have MTUs far below 64 KiB),
        // so 0 is taken at its word and yields an empty payload.
        let payload = rest
            .get(..usize::from(header.be16::<4>()))
            .ok_or(ParseError::BadIpv6PayloadLength)?;
        Ok(Ipv6Packet { header, payload })
    }

    pub fn version(&self) -> u8 {
        self.header.u8::<0>() >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        let [hi, lo] = self.header.array::<0, 2>();
        (hi << 4) | (lo >> 4)
    }

    pub fn flow_label(&self) -> u32 {
        self.header.be32::<0>() & 0x000F_FFFF
    }

    pub fn payload_len(&self) -> u16 {
        self.header.be16::<4>()
    }

    /// The protocol of the first header after the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.header.u8::<6>()
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.header.u8::<7>()
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.header.array::<8, 16>())
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.header.array::<24, 16>())
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
