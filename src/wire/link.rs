//! Link layers other than Ethernet, as pcap files carry them: raw IP, Linux
//! "cooked" captures (SLL, SLL2) and BSD NULL/loopback. The DPDK ports only
//! ever see Ethernet; these serve the offline `analyze` command.
use super::field::FixedHeader;
use super::{ip, parse_ethernet, parse_ethertype, ParseError, Parsed};

/// How a capture frames its packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    Ethernet,
    /// IP with no link header; the version nibble tells v4 from v6.
    RawIp,
    /// Linux cooked capture v1 (`any` device): 16-byte header.
    LinuxSll,
    /// Linux cooked capture v2: 20-byte header.
    LinuxSll2,
    /// BSD loopback: a 4-byte address family, in either byte order.
    Null,
}

impl LinkType {
    pub const ALL: [LinkType; 5] = [
        LinkType::Ethernet,
        LinkType::RawIp,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Null,
    ];

    /// The link type of a pcap/pcapng `LINKTYPE_`/`DLT_` value, if we read it.
    pub fn from_dlt(dlt: u32) -> Option<LinkType> {
        match dlt {
            1 => Some(LinkType::Ethernet),
            // LINKTYPE_RAW; DLT_RAW as written by most systems (12) and
            // OpenBSD (14); LINKTYPE_IPV4 and LINKTYPE_IPV6.
            101 | 12 | 14 | 228 | 229 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            // LINKTYPE_NULL (host byte order) and LINKTYPE_LOOP (network byte
            // order): the family decoder accepts both orders.
            0 | 108 => Some(LinkType::Null),
            _ => None,
        }
    }
}

/// Parses one captured frame of link type `link`.
#[inline]
pub fn parse_link(link: LinkType, frame: &[u8]) -> Result<Parsed<'_>, ParseError> {
    match link {
        LinkType::Ethernet => parse_ethernet(frame),
        LinkType::RawIp => ip::parse_any(frame).map(Parsed::Ip),
        LinkType::LinuxSll => {
            let sll = SllHeader::new_checked(frame)?;
            parse_ethertype(sll.protocol(), sll.payload())
        }
        LinkType::LinuxSll2 => {
            let sll2 = Sll2Header::new_checked(frame)?;
            parse_ethertype(sll2.protocol(), sll2.payload())
        }
        LinkType::Null => {
            let null = NullHeader::new_checked(frame)?;
            match null.family() {
                Some(NullFamily::Ipv4) => ip::parse_ipv4(null.payload()).map(Parsed::Ip),
                Some(NullFamily::Ipv6) => ip::parse_ipv6(null.payload()).map(Parsed::Ip),
                None => Err(ParseError::UnknownLinkFamily),
            }
        }
    }
}

pub const SLL_HEADER_LEN: usize = 16;
pub const SLL2_HEADER_LEN: usize = 20;
pub const NULL_HEADER_LEN: usize = 4;

mod sll_field {
    use crate::wire::field::Field;

    pub(super) const PACKET_TYPE: Field<0, 2> = Field;
    pub(super) const ARPHRD_TYPE: Field<2, 2> = Field;
    pub(super) const PROTOCOL: Field<14, 2> = Field;
}

mod sll2_field {
    use crate::wire::field::Field;

    pub(super) const PROTOCOL: Field<0, 2> = Field;
    pub(super) const INTERFACE_INDEX: Field<4, 4> = Field;
    pub(super) const ARPHRD_TYPE: Field<8, 2> = Field;
    pub(super) const PACKET_TYPE: Field<10, 1> = Field;
}

mod null_field {
    use crate::wire::field::Field;

    /// The `AF_` value, in the capturing machine's byte order.
    pub(super) const FAMILY: Field<0, 4> = Field;
}

/// Linux cooked capture v1: packet type, ARPHRD type, address length,
/// 8 address bytes, protocol. The protocol is an ethertype for every device
/// that carries IP, and libpcap re-inserts VLAN tags after this header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SllHeader<'a> {
    header: FixedHeader<'a, SLL_HEADER_LEN>,
    payload: &'a [u8],
}

impl<'a> SllHeader<'a> {
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, ParseError> {
        let (header, payload) =
            FixedHeader::split_from(frame).ok_or(ParseError::TruncatedLinkHeader)?;
        Ok(SllHeader { header, payload })
    }

    /// 0 to us, 1 broadcast, 2 multicast, 3 to someone else, 4 sent by us.
    pub fn packet_type(&self) -> u16 {
        self.header.be16(sll_field::PACKET_TYPE)
    }

    pub fn arphrd_type(&self) -> u16 {
        self.header.be16(sll_field::ARPHRD_TYPE)
    }

    #[inline]
    pub fn protocol(&self) -> u16 {
        self.header.be16(sll_field::PROTOCOL)
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Linux cooked capture v2: protocol, reserved, interface index, ARPHRD type,
/// packet type, address length, 8 address bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sll2Header<'a> {
    header: FixedHeader<'a, SLL2_HEADER_LEN>,
    payload: &'a [u8],
}

impl<'a> Sll2Header<'a> {
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, ParseError> {
        let (header, payload) =
            FixedHeader::split_from(frame).ok_or(ParseError::TruncatedLinkHeader)?;
        Ok(Sll2Header { header, payload })
    }

    #[inline]
    pub fn protocol(&self) -> u16 {
        self.header.be16(sll2_field::PROTOCOL)
    }

    pub fn interface_index(&self) -> u32 {
        self.header.be32(sll2_field::INTERFACE_INDEX)
    }

    pub fn arphrd_type(&self) -> u16 {
        self.header.be16(sll2_field::ARPHRD_TYPE)
    }

    pub fn packet_type(&self) -> u8 {
        self.header.u8(sll2_field::PACKET_TYPE)
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// The IP version a NULL header's address family names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NullFamily {
    Ipv4,
    Ipv6,
}

/// BSD NULL/loopback header: the sender's `AF_` value as a 4-byte integer in
/// the byte order of the machine that captured it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NullHeader<'a> {
    header: FixedHeader<'a, NULL_HEADER_LEN>,
    payload: &'a [u8],
}

impl<'a> NullHeader<'a> {
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, ParseError> {
        let (header, payload) =
            FixedHeader::split_from(frame).ok_or(ParseError::TruncatedLinkHeader)?;
        Ok(NullHeader { header, payload })
    }

    /// AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28
    /// (FreeBSD) or 30 (macOS). Families are small numbers, so a value read
    /// in the wrong byte order is never one of these and trying both orders
    /// is unambiguous.
    #[inline]
    pub fn family(&self) -> Option<NullFamily> {
        let raw = self.header.array(null_field::FAMILY);
        [u32::from_le_bytes(raw), u32::from_be_bytes(raw)]
            .into_iter()
            .find_map(|family| match family {
                2 => Some(NullFamily::Ipv4),
                24 | 28 | 30 => Some(NullFamily::Ipv6),
                _ => None,
            })
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::ethertype;

    #[test]
    fn dlt_values() {
        let cases = [
            (0, Some(LinkType::Null)),
            (1, Some(LinkType::Ethernet)),
            (12, Some(LinkType::RawIp)),
            (14, Some(LinkType::RawIp)),
            (101, Some(LinkType::RawIp)),
            (108, Some(LinkType::Null)),
            (113, Some(LinkType::LinuxSll)),
            (228, Some(LinkType::RawIp)),
            (229, Some(LinkType::RawIp)),
            (276, Some(LinkType::LinuxSll2)),
            (105, None), // 802.11
            (127, None), // radiotap
            (u32::MAX, None),
        ];
        for (dlt, want) in cases {
            assert_eq!(LinkType::from_dlt(dlt), want, "DLT {dlt}");
        }
    }

    #[test]
    fn sll_fields() {
        let mut frame = vec![0x00, 0x04, 0x00, 0x01, 0x00, 0x06, 1, 2, 3, 4, 5, 6, 0, 0];
        frame.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        frame.push(0x45);
        let sll = SllHeader::new_checked(&frame).expect("16+ bytes");
        assert_eq!(sll.packet_type(), 4);
        assert_eq!(sll.arphrd_type(), 1);
        assert_eq!(sll.protocol(), 0x0800);
        assert_eq!(sll.payload(), &[0x45]);
        assert_eq!(
            SllHeader::new_checked(&frame[..15]),
            Err(ParseError::TruncatedLinkHeader)
        );
    }

    #[test]
    fn sll2_fields() {
        let frame = [
            0x86, 0xDD, 0, 0, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 0x03, 0x06, //
            1, 2, 3, 4, 5, 6, 0, 0, 0x60,
        ];
        let sll2 = Sll2Header::new_checked(&frame).expect("20+ bytes");
        assert_eq!(sll2.protocol(), 0x86DD);
        assert_eq!(sll2.interface_index(), 7);
        assert_eq!(sll2.arphrd_type(), 1);
        assert_eq!(sll2.packet_type(), 3);
        assert_eq!(sll2.payload(), &[0x60]);
        assert_eq!(
            Sll2Header::new_checked(&frame[..19]),
            Err(ParseError::TruncatedLinkHeader)
        );
    }

    #[test]
    fn null_family_in_both_byte_orders() {
        let cases: [([u8; 4], Option<NullFamily>); 10] = [
            ([2, 0, 0, 0], Some(NullFamily::Ipv4)),
            ([0, 0, 0, 2], Some(NullFamily::Ipv4)),
            ([24, 0, 0, 0], Some(NullFamily::Ipv6)),
            ([0, 0, 0, 24], Some(NullFamily::Ipv6)),
            ([28, 0, 0, 0], Some(NullFamily::Ipv6)),
            ([0, 0, 0, 28], Some(NullFamily::Ipv6)),
            ([30, 0, 0, 0], Some(NullFamily::Ipv6)),
            ([0, 0, 0, 30], Some(NullFamily::Ipv6)),
            ([10, 0, 0, 0], None),
            ([2, 0, 0, 2], None),
        ];
        for (raw, want) in cases {
            let null = NullHeader::new_checked(&raw).expect("4 bytes");
            assert_eq!(null.family(), want, "{raw:?}");
        }
        assert_eq!(
            NullHeader::new_checked(&[2, 0, 0]),
            Err(ParseError::TruncatedLinkHeader)
        );
    }
}
