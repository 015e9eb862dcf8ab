//! TCP segments (RFC 9293). The segment is the IP payload, whose length the IP
//! layer has already fixed, so the payload is everything after the data offset.
use super::field::FixedHeader;
use super::ParseError;

pub const MIN_HEADER_LEN: usize = 20;

mod field {
    use crate::wire::field::Field;

    pub(super) const SRC_PORT: Field<0, 2> = Field;
    pub(super) const DST_PORT: Field<2, 2> = Field;
    pub(super) const SEQ_NUM: Field<4, 4> = Field;
    pub(super) const ACK_NUM: Field<8, 4> = Field;
    /// High nibble: the header length in 32-bit words; low nibble reserved.
    pub(super) const DATA_OFFSET: Field<12, 1> = Field;
    /// See [`super::flags`].
    pub(super) const FLAGS: Field<13, 1> = Field;
    pub(super) const WIN_SIZE: Field<14, 2> = Field;
    pub(super) const CHECKSUM: Field<16, 2> = Field;
    pub(super) const URGENT: Field<18, 2> = Field;
}

/// Bits of the flags byte (`L4::Tcp::flags`, `TcpSegment::flags`).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// A TCP segment whose data offset has been checked against its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    header: FixedHeader<'a, MIN_HEADER_LEN>,
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> TcpSegment<'a> {
    #[inline]
    pub fn new_checked(segment: &'a [u8]) -> Result<Self, ParseError> {
        let (header, rest) =
            FixedHeader::<MIN_HEADER_LEN>::split_from(segment).ok_or(ParseError::TruncatedTcp)?;
        let options_len = header_len(header)
            .checked_sub(MIN_HEADER_LEN)
            .ok_or(ParseError::BadTcpDataOffset)?;
        let (options, payload) = rest
            .split_at_checked(options_len)
            .ok_or(ParseError::BadTcpDataOffset)?;
        Ok(TcpSegment {
            header,
            options,
            payload,
        })
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        self.header.be16(field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        self.header.be16(field::DST_PORT)
    }

    #[inline]
    pub fn seq(&self) -> u32 {
        self.header.be32(field::SEQ_NUM)
    }

    #[inline]
    pub fn ack(&self) -> u32 {
        self.header.be32(field::ACK_NUM)
    }

    /// Header length in bytes, options included (20..=60).
    pub fn header_len(&self) -> usize {
        header_len(self.header)
    }

    /// CWR ECE URG ACK PSH RST SYN FIN; see [`flags`].
    #[inline]
    pub fn flags(&self) -> u8 {
        self.header.u8(field::FLAGS)
    }

    #[inline]
    pub fn window(&self) -> u16 {
        self.header.be16(field::WIN_SIZE)
    }

    pub fn checksum(&self) -> u16 {
        self.header.be16(field::CHECKSUM)
    }

    pub fn urgent_pointer(&self) -> u16 {
        self.header.be16(field::URGENT)
    }

    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// The data offset in bytes; below [`MIN_HEADER_LEN`] in a malformed segment.
#[inline(always)]
fn header_len(header: FixedHeader<'_, MIN_HEADER_LEN>) -> usize {
    usize::from(header.u8(field::DATA_OFFSET) >> 4) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 51413 -> 6881, seq 0x01020304, ack 0x05060708, data offset 8 (12 bytes
    /// of options: MSS 1460, NOP, window scale 7, SACK permitted, NOP, NOP),
    /// SYN|ACK, window 0x7210, checksum 0xABCD, urgent 0, 2 payload bytes.
    const WITH_OPTIONS: [u8; 34] = [
        0xC8, 0xD5, 0x1A, 0xE1, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, //
        0x80, 0x12, 0x72, 0x10, 0xAB, 0xCD, 0x00, 0x00, //
        0x02, 0x04, 0x05, 0xB4, 0x01, 0x03, 0x03, 0x07, 0x04, 0x02, 0x01, 0x01, //
        0x13, 0x42,
    ];

    #[test]
    fn reads_every_field() {
        let t = TcpSegment::new_checked(&WITH_OPTIONS).expect("valid");
        assert_eq!(t.src_port(), 51413);
        assert_eq!(t.dst_port(), 6881);
        assert_eq!(t.seq(), 0x0102_0304);
        assert_eq!(t.ack(), 0x0506_0708);
        assert_eq!(t.header_len(), 32);
        assert_eq!(t.flags(), flags::SYN | flags::ACK);
        assert_eq!(t.window(), 0x7210);
        assert_eq!(t.checksum(), 0xABCD);
        assert_eq!(t.urgent_pointer(), 0);
        assert_eq!(
            t.options(),
            &[0x02, 0x04, 0x05, 0xB4, 0x01, 0x03, 0x03, 0x07, 0x04, 0x02, 0x01, 0x01]
        );
        assert_eq!(t.payload(), &[0x13, 0x42]);
    }

    #[test]
    fn header_only_segment_has_empty_payload() {
        let t = TcpSegment::new_checked(&WITH_OPTIONS[..32]).expect("valid");
        assert!(t.payload().is_empty());
        assert_eq!(t.options().len(), 12);
    }

    #[test]
    fn errors() {
        assert_eq!(
            TcpSegment::new_checked(&WITH_OPTIONS[..19]),
            Err(ParseError::TruncatedTcp)
        );
        let mut small = WITH_OPTIONS;
        small[12] = 0x40;
        assert_eq!(
            TcpSegment::new_checked(&small),
            Err(ParseError::BadTcpDataOffset)
        );
        // Data offset 8 (32 bytes) in a 31-byte segment.
        assert_eq!(
            TcpSegment::new_checked(&WITH_OPTIONS[..31]),
            Err(ParseError::BadTcpDataOffset)
        );
    }
}
