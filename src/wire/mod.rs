//! Zero-copy header views: Ethernet, 802.1Q/QinQ, IPv4, IPv6, TCP, UDP.
//!
//! [`parse_ethernet`] turns a frame into a [`Parsed`] packet (addresses, VLAN
//! ids, fragment position and the TCP/UDP header and payload) or a
//! [`ParseError`] that says which header was wrong (workers count each kind,
//! by [`ParseError::index`]; reports and metrics label it by
//! [`ParseError::name`]). [`parse_ip`] and [`parse_link`] do the same for the
//! other link types a capture file may hold.
//!
//! Each header has a view in the style of smoltcp's `wire`: `new_checked`
//! checks every length once, up front, and keeps the header's fixed part as
//! a fixed-size array; each module names its fields by offset in a private
//! `mod field`, and its accessors cannot read out of bounds (see `field.rs`).
//! Nothing here allocates or panics, whatever the input; the parsers are
//! fuzzed (`fuzz/`). Lengths inside the packet (IPv4 total length, IPv6
//! payload length, UDP length) cut the payload, so link padding never reaches
//! DPI.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod addr;
mod error;
pub mod ethernet;
mod field;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6_ext;
pub mod link;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod tests;

pub use addr::HostAddr;
pub use error::ParseError;
pub use ip::Transport;
pub use link::{parse_link, LinkType};

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
        /// See [`tcp::flags`].
        flags: u8,
        payload: &'a [u8],
        /// Receive window, unscaled.
        window: u16,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        /// Cut at the UDP length; in a first fragment, what this fragment holds.
        payload: &'a [u8],
    },
    /// Any other protocol, and non-first fragments of anything.
    Other { protocol: u8 },
}

impl<'a> L4<'a> {
    /// The IP protocol number (6 TCP, 17 UDP, …).
    #[inline]
    pub fn protocol(&self) -> u8 {
        match self {
            L4::Tcp { .. } => ip::protocol::TCP,
            L4::Udp { .. } => ip::protocol::UDP,
            L4::Other { protocol } => *protocol,
        }
    }

    /// TCP or UDP with (source, destination) ports: what a flow is keyed
    /// on; `None` for any other protocol.
    #[inline(always)]
    pub fn transport_ports(&self) -> Option<(Transport, u16, u16)> {
        match *self {
            L4::Tcp {
                src_port, dst_port, ..
            } => Some((Transport::Tcp, src_port, dst_port)),
            L4::Udp {
                src_port, dst_port, ..
            } => Some((Transport::Udp, src_port, dst_port)),
            L4::Other { .. } => None,
        }
    }

    /// (source, destination) ports of TCP and UDP.
    #[inline]
    pub fn ports(&self) -> Option<(u16, u16)> {
        match *self {
            L4::Tcp {
                src_port, dst_port, ..
            }
            | L4::Udp {
                src_port, dst_port, ..
            } => Some((src_port, dst_port)),
            L4::Other { .. } => None,
        }
    }

    /// The TCP or UDP payload; empty for anything else.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        match *self {
            L4::Tcp { payload, .. } | L4::Udp { payload, .. } => payload,
            L4::Other { .. } => &[],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// 0, 1 (802.1Q) or 2 (QinQ) VLAN tags in front of the IP header.
    pub vlan_tags: u8,
    /// True for IPv6 (the addresses alone cannot say: an IPv6 packet may
    /// carry an IPv4-mapped address).
    pub ipv6: bool,
    pub src: HostAddr,
    pub dst: HostAddr,
    pub fragment: Fragment,
    pub l4: L4<'a>,
    /// VLAN ids, outermost first; 0 where there is no tag. Private address
    /// space may repeat across customer VLANs.
    pub vlan_ids: [u16; ethernet::MAX_VLAN_TAGS],
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Bytes after the IP header and IPv6 extension headers (the L4 header
    /// and payload, or a non-first fragment's data); padding excluded.
    pub ip_payload_len: u16,
}

impl Packet<'_> {
    /// The source address, of the packet's IP version.
    pub fn src_ip(&self) -> IpAddr {
        self.ip(self.src)
    }

    /// The destination address, of the packet's IP version.
    pub fn dst_ip(&self) -> IpAddr {
        self.ip(self.dst)
    }

    fn ip(&self, addr: HostAddr) -> IpAddr {
        if self.ipv6 {
            IpAddr::V6(Ipv6Addr::from(addr.to_u128()))
        } else {
            IpAddr::V4(Ipv4Addr::from(addr.to_u128() as u32))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    Ip(Packet<'a>),
    /// ARP, LLDP, …: not ours to inspect, forwarded as is.
    NonIp {
        ethertype: u16,
    },
}

/// Parses an Ethernet II frame, VLAN tags and all.
#[inline(always)]
pub fn parse_ethernet(frame: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let eth = ethernet::EthernetFrame::new_checked(frame)?;
    parse_ethertype(eth.ethertype(), eth.payload())
}

/// Parses an IP datagram with no link header; the version nibble says v4 or v6.
#[inline]
pub fn parse_ip(datagram: &[u8]) -> Result<Packet<'_>, ParseError> {
    ip::parse_any(datagram)
}

/// Parses what follows a link header whose ethertype is `ethertype` (Ethernet,
/// SLL, SLL2): VLAN tags, then IPv4, IPv6 or anything else.
#[inline(always)]
pub fn parse_ethertype(ethertype: u16, payload: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let untagged = ethernet::strip_vlan_tags(ethertype, payload)?;
    let packet = match untagged.ethertype {
        ethernet::ethertype::IPV4 => ip::parse_ipv4(untagged.payload)?,
        ethernet::ethertype::IPV6 => ip::parse_ipv6(untagged.payload)?,
        ethertype => return Ok(Parsed::NonIp { ethertype }),
    };
    Ok(Parsed::Ip(Packet {
        vlan_tags: untagged.vlan_tags,
        vlan_ids: untagged.vlan_ids,
        ..packet
    }))
}
