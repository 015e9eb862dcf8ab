//! UDP datagrams (RFC 768). The payload is cut at the UDP length field.
use super::field::FixedHeader;
use super::ParseError;

pub const HEADER_LEN: usize = 8;

mod field {
    use crate::wire::field::Field;

    pub(super) const SRC_PORT: Field<0, 2> = Field;
    pub(super) const DST_PORT: Field<2, 2> = Field;
    /// Header plus payload, in bytes.
    pub(super) const LENGTH: Field<4, 2> = Field;
    pub(super) const CHECKSUM: Field<6, 2> = Field;
}

/// A UDP datagram whose length field has been checked against its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    header: FixedHeader<'a, HEADER_LEN>,
    payload: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    /// `bytes` is a whole IP payload: the length field must fit inside it.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (header, _) = FixedHeader::split_from(bytes).ok_or(ParseError::TruncatedUdp)?;
        // Refuses a length below the header and one beyond the IP payload.
        let payload = bytes
            .get(HEADER_LEN..usize::from(header.be16(field::LENGTH)))
            .ok_or(ParseError::BadUdpLength)?;
        Ok(UdpDatagram { header, payload })
    }

    /// `bytes` is the first fragment of a fragmented datagram: the length
    /// field counts the whole datagram, which may run past these bytes, so
    /// the payload is what is here, up to the length.
    #[inline]
    pub fn new_checked_first_fragment(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (header, rest) = FixedHeader::split_from(bytes).ok_or(ParseError::TruncatedUdp)?;
        let payload_len = usize::from(header.be16(field::LENGTH))
            .checked_sub(HEADER_LEN)
            .ok_or(ParseError::BadUdpLength)?;
        let payload = rest.get(..payload_len).unwrap_or(rest);
        Ok(UdpDatagram { header, payload })
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        self.header.be16(field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        self.header.be16(field::DST_PORT)
    }

    /// Header plus payload, as the sender wrote it.
    pub fn length(&self) -> u16 {
        self.header.be16(field::LENGTH)
    }

    pub fn checksum(&self) -> u16 {
        self.header.be16(field::CHECKSUM)
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1234 -> 5678, length 11, checksum 0xF00D, payload "abc", then 2 bytes
    /// beyond the UDP length.
    const DATAGRAM: [u8; 13] = [
        0x04, 0xD2, 0x16, 0x2E, 0x00, 0x0B, 0xF0, 0x0D, b'a', b'b', b'c', 0xEE, 0xEE,
    ];

    #[test]
    fn reads_every_field_and_trims_to_length() {
        let u = UdpDatagram::new_checked(&DATAGRAM).expect("valid");
        assert_eq!(u.src_port(), 1234);
        assert_eq!(u.dst_port(), 5678);
        assert_eq!(u.length(), 11);
        assert_eq!(u.checksum(), 0xF00D);
        assert_eq!(u.payload(), b"abc");
    }

    #[test]
    fn errors() {
        assert_eq!(
            UdpDatagram::new_checked(&DATAGRAM[..7]),
            Err(ParseError::TruncatedUdp)
        );
        assert_eq!(
            UdpDatagram::new_checked(&DATAGRAM[..10]),
            Err(ParseError::BadUdpLength)
        );
        let mut short = DATAGRAM;
        short[5] = 7;
        assert_eq!(
            UdpDatagram::new_checked(&short),
            Err(ParseError::BadUdpLength)
        );
        short[5] = 8;
        assert_eq!(
            UdpDatagram::new_checked(&short).map(|u| u.payload().len()),
            Ok(0)
        );
    }

    #[test]
    fn first_fragment_takes_what_is_there() {
        let u = UdpDatagram::new_checked_first_fragment(&DATAGRAM[..10]).expect("valid");
        assert_eq!(u.length(), 11);
        assert_eq!(u.payload(), b"ab");
        let whole = UdpDatagram::new_checked_first_fragment(&DATAGRAM).expect("valid");
        assert_eq!(whole.payload(), b"abc");
        let mut short = DATAGRAM;
        short[5] = 7;
        assert_eq!(
            UdpDatagram::new_checked_first_fragment(&short),
            Err(ParseError::BadUdpLength)
        );
        assert_eq!(
            UdpDatagram::new_checked_first_fragment(&DATAGRAM[..7]),
            Err(ParseError::TruncatedUdp)
        );
    }
}
