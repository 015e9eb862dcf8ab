//! IPv4 packets (RFC 791). Options are kept as bytes and skipped; the payload
//! is cut at the total length, so Ethernet padding never reaches L4.
use std::net::Ipv4Addr;

use super::field::FixedHeader;
use super::{Fragment, ParseError};

pub const MIN_HEADER_LEN: usize = 20;
/// The version nibble of an IPv4 header.
pub const VERSION: u8 = 4;

mod field {
    use crate::wire::field::Field;

    /// Version (high nibble) and header length in 32-bit words (low nibble).
    pub(super) const VER_IHL: Field<0, 1> = Field;
    /// DSCP (high six bits) and ECN (low two).
    pub(super) const DSCP_ECN: Field<1, 1> = Field;
    /// Total length: header, options and payload.
    pub(super) const LENGTH: Field<2, 2> = Field;
    pub(super) const IDENT: Field<4, 2> = Field;
    /// Flags (top three bits) and fragment offset (the rest).
    pub(super) const FLG_OFF: Field<6, 2> = Field;
    pub(super) const TTL: Field<8, 1> = Field;
    pub(super) const PROTOCOL: Field<9, 1> = Field;
    pub(super) const CHECKSUM: Field<10, 2> = Field;
    pub(super) const SRC_ADDR: Field<12, 4> = Field;
    pub(super) const DST_ADDR: Field<16, 4> = Field;
}

// The parts of `field::FLG_OFF`.
const DONT_FRAGMENT: u16 = 0x4000;
const MORE_FRAGMENTS: u16 = 0x2000;
const FRAGMENT_OFFSET: u16 = 0x1FFF;

/// An IPv4 packet whose header, options and total length have been checked
/// against the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<'a> {
    header: FixedHeader<'a, MIN_HEADER_LEN>,
    options: &'a [u8],
    /// Exactly `total_len - header_len` bytes.
    payload: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (header, rest) =
            FixedHeader::<MIN_HEADER_LEN>::split_from(bytes).ok_or(ParseError::TruncatedIpv4)?;
        if version(header) != VERSION {
            return Err(ParseError::BadIpv4Version);
        }
        let header_len = header_len(header);
        let options_len = header_len
            .checked_sub(MIN_HEADER_LEN)
            .ok_or(ParseError::BadIpv4HeaderLength)?;
        let (options, _) = rest
            .split_at_checked(options_len)
            .ok_or(ParseError::TruncatedIpv4)?;
        let total_len = usize::from(header.be16(field::LENGTH));
        // `get` refuses both a total length shorter than the header and one
        // longer than the bytes we have; anything past it is link padding.
        let payload = bytes
            .get(header_len..total_len)
            .ok_or(ParseError::BadIpv4TotalLength)?;
        Ok(Ipv4Packet {
            header,
            options,
            payload,
        })
    }

    pub fn version(&self) -> u8 {
        version(self.header)
    }

    /// Header length in bytes, options included (20..=60).
    pub fn header_len(&self) -> usize {
        header_len(self.header)
    }

    pub fn dscp(&self) -> u8 {
        self.header.u8(field::DSCP_ECN) >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.header.u8(field::DSCP_ECN) & 0x03
    }

    pub fn total_len(&self) -> u16 {
        self.header.be16(field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        self.header.be16(field::IDENT)
    }

    pub fn dont_fragment(&self) -> bool {
        self.header.be16(field::FLG_OFF) & DONT_FRAGMENT != 0
    }

    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.header.be16(field::FLG_OFF) & MORE_FRAGMENTS != 0
    }

    /// Fragment offset in 8-byte units.
    #[inline]
    pub fn fragment_offset(&self) -> u16 {
        self.header.be16(field::FLG_OFF) & FRAGMENT_OFFSET
    }

    #[inline]
    pub fn fragment(&self) -> Fragment {
        match (self.fragment_offset(), self.more_fragments()) {
            (0, false) => Fragment::None,
            (0, true) => Fragment::First,
            _ => Fragment::NonFirst,
        }
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.header.u8(field::TTL)
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.header.u8(field::PROTOCOL)
    }

    pub fn checksum(&self) -> u16 {
        self.header.be16(field::CHECKSUM)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.header.array(field::SRC_ADDR))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.header.array(field::DST_ADDR))
    }

    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    /// The bytes after the header, up to the total length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[inline(always)]
fn version(header: FixedHeader<'_, MIN_HEADER_LEN>) -> u8 {
    header.u8(field::VER_IHL) >> 4
}

/// The IHL in bytes; below [`MIN_HEADER_LEN`] in a malformed header.
#[inline(always)]
fn header_len(header: FixedHeader<'_, MIN_HEADER_LEN>) -> usize {
    usize::from(header.u8(field::VER_IHL) & 0x0F) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4, IHL 6 (router-alert option), total length 28, ident 0xBEEF, DF,
    /// TTL 1, protocol UDP, 192.0.2.1 -> 198.51.100.7, 4 payload bytes.
    const WITH_OPTIONS: [u8; 28] = [
        0x46, 0xB9, 0x00, 0x1C, 0xBE, 0xEF, 0x40, 0x00, 0x01, 0x11, 0x12, 0x34, //
        192, 0, 2, 1, 198, 51, 100, 7, //
        0x94, 0x04, 0x00, 0x00, // router alert
        0xDE, 0xAD, 0xBE, 0xEF,
    ];

    #[test]
    fn reads_every_field() {
        let p = Ipv4Packet::new_checked(&WITH_OPTIONS).expect("valid");
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.dscp(), 0x2E);
        assert_eq!(p.ecn(), 1);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0xBEEF);
        assert!(p.dont_fragment());
        assert!(!p.more_fragments());
        assert_eq!(p.fragment_offset(), 0);
        assert_eq!(p.fragment(), Fragment::None);
        assert_eq!(p.ttl(), 1);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.checksum(), 0x1234);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[0xDE, 0xAD, 0xBE, 0xEF]);
    }

    #[test]
    fn padding_past_total_length_is_trimmed() {
        let mut padded = WITH_OPTIONS.to_vec();
        padded.extend_from_slice(&[0; 6]);
        let p = Ipv4Packet::new_checked(&padded).expect("valid");
        assert_eq!(p.payload(), &[0xDE, 0xAD, 0xBE, 0xEF]);
    }

    fn with(at: usize, value: u8) -> [u8; 28] {
        let mut b = WITH_OPTIONS;
        if let Some(byte) = b.get_mut(at) {
            *byte = value;
        }
        b
    }

    #[test]
    fn fragment_kinds() {
        // MF set, offset 0.
        let first = with(6, 0x20);
        assert_eq!(
            Ipv4Packet::new_checked(&first).map(|p| p.fragment()),
            Ok(Fragment::First)
        );
        // Offset 0x0B9 (1480 bytes), MF clear: the last fragment.
        let mut last = with(6, 0x00);
        last[7] = 0xB9;
        let p = Ipv4Packet::new_checked(&last).expect("valid");
        assert_eq!(p.fragment_offset(), 0xB9);
        assert_eq!(p.fragment(), Fragment::NonFirst);
        // Offset 1, MF set: a middle fragment.
        let mut middle = with(6, 0x20);
        middle[7] = 0x01;
        assert_eq!(
            Ipv4Packet::new_checked(&middle).map(|p| p.fragment()),
            Ok(Fragment::NonFirst)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            Ipv4Packet::new_checked(&WITH_OPTIONS[..19]),
            Err(ParseError::TruncatedIpv4)
        );
        assert_eq!(
            Ipv4Packet::new_checked(&with(0, 0x66)),
            Err(ParseError::BadIpv4Version)
        );
        assert_eq!(
            Ipv4Packet::new_checked(&with(0, 0x44)),
            Err(ParseError::BadIpv4HeaderLength)
        );
        // IHL 15 (60 bytes) in a 28-byte buffer.
        assert_eq!(
            Ipv4Packet::new_checked(&with(0, 0x4F)),
            Err(ParseError::TruncatedIpv4)
        );
        // Total length 23 < header length 24.
        assert_eq!(
            Ipv4Packet::new_checked(&with(3, 23)),
            Err(ParseError::BadIpv4TotalLength)
        );
        // Total length 29 > 28 bytes present.
        assert_eq!(
            Ipv4Packet::new_checked(&with(3, 29)),
            Err(ParseError::BadIpv4TotalLength)
        );
        // Total length equal to the header: empty payload.
        assert_eq!(
            Ipv4Packet::new_checked(&with(3, 24)).map(|p| p.payload().len()),
            Ok(0)
        );
    }
}
