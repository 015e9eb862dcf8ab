//! Zero-copy header views: Ethernet, 802.1Q/QinQ, IPv4, IPv6, TCP, UDP.
//!
//! CONTRACT (used by pipeline.rs, dpi, flow, analyze; keep these names/types):
//! `parse_ethernet(frame) -> Result<Parsed, ParseError>` and `parse_ip(datagram)`
//! (raw IP link types); `ParseError::COUNT`, `ParseError::index()`,
//! `ParseError::name()` (snake_case, used as a metric label), `ParseError::ALL`.
//! STUB: bodies are filled in by the wire module's owner.
use std::net::IpAddr;

/// Where a packet sits in a fragmented datagram. Only unfragmented packets and
/// first fragments carry an L4 header that DPI may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    None,
    First,
    NonFirst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4<'a> {
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &'a [u8],
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    /// Any other protocol, and non-first fragments of anything.
    Other { protocol: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// 0, 1 (802.1Q) or 2 (QinQ) VLAN tags in front of the IP header.
    pub vlan_tags: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub fragment: Fragment,
    pub l4: L4<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    Ip(Packet<'a>),
    /// ARP, LLDP, …: not ours to inspect, forwarded as is.
    NonIp {
        ethertype: u16,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    TruncatedEthernet,
}

impl ParseError {
    pub const ALL: [ParseError; 1] = [ParseError::TruncatedEthernet];
    pub const COUNT: usize = Self::ALL.len();
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn name(self) -> &'static str {
        "truncated_ethernet"
    }
}

pub fn parse_ethernet(frame: &[u8]) -> Result<Parsed<'_>, ParseError> {
    if frame.len() < 14 {
        return Err(ParseError::TruncatedEthernet);
    }
    Ok(Parsed::NonIp {
        ethertype: u16::from_be_bytes([frame[12], frame[13]]),
    })
}

pub fn parse_ip(_datagram: &[u8]) -> Result<Packet<'_>, ParseError> {
    Err(ParseError::TruncatedEthernet)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    RawIp,
    LinuxSll,
    LinuxSll2,
    Null,
}

impl LinkType {
    pub fn from_dlt(dlt: u32) -> Option<LinkType> {
        (dlt == 1).then_some(LinkType::Ethernet)
    }
}

pub fn parse_link(_link: LinkType, frame: &[u8]) -> Result<Parsed<'_>, ParseError> {
    parse_ethernet(frame)
}
