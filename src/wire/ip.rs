//! From an IP datagram to a [`Packet`]: the IP header, then TCP or UDP where
//! this packet carries its header.
use super::ethernet::MAX_VLAN_TAGS;
use super::ipv4::{self, Ipv4Packet};
use super::ipv6::{self, Ipv6Packet};
use super::tcp::TcpSegment;
use super::udp::UdpDatagram;
use super::{Fragment, HostAddr, Packet, ParseError, L4};

/// The transports a flow can have: what the flow table keys on, what the
/// detectors are told, and what a detection reports. Its value is the IP
/// protocol number, so it is the one spelling of "TCP" from the header on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum Transport {
    #[default]
    Tcp = 6,
    Udp = 17,
}

impl Transport {
    /// The IP protocol number.
    #[inline(always)]
    pub const fn protocol(self) -> u8 {
        self as u8
    }

    /// Lower-case name, as the detection log and `analyze --json` write it.
    pub const fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// IP protocol numbers the parser reads further.
pub mod protocol {
    use super::Transport;

    pub const ICMP: u8 = 1;
    pub const TCP: u8 = Transport::Tcp.protocol();
    pub const UDP: u8 = Transport::Udp.protocol();
    pub const ICMPV6: u8 = 58;
}

/// An IPv4 datagram (header first, link padding allowed after it).
/// Always inlined: returned through memory, the `Packet` cost the workers a
/// store-forwarding stall per packet (perf annotate of the pipeline bench).
#[inline(always)]
pub fn parse_ipv4(bytes: &[u8]) -> Result<Packet<'_>, ParseError> {
    let ip = Ipv4Packet::new_checked(bytes)?;
    let fragment = ip.fragment();
    Ok(packet(
        false,
        HostAddr::from(ip.src_addr()),
        HostAddr::from(ip.dst_addr()),
        ip.ttl(),
        fragment,
        ip.payload(),
        parse_l4(ip.protocol(), fragment, ip.payload())?,
    ))
}

/// An IPv6 datagram (header first, link padding allowed after it).
#[inline]
pub fn parse_ipv6(bytes: &[u8]) -> Result<Packet<'_>, ParseError> {
    let ip = Ipv6Packet::new_checked(bytes)?;
    let upper = ip.upper_layer()?;
    Ok(packet(
        true,
        HostAddr::from(ip.src_addr()),
        HostAddr::from(ip.dst_addr()),
        ip.hop_limit(),
        upper.fragment,
        upper.payload,
        parse_l4(upper.protocol, upper.fragment, upper.payload)?,
    ))
}

/// An IP datagram of either version, told apart by its version nibble (raw
/// IP link types carry no ethertype).
#[inline]
pub fn parse_any(bytes: &[u8]) -> Result<Packet<'_>, ParseError> {
    match bytes.first().map(|b| b >> 4) {
        None => Err(ParseError::TruncatedIp),
        Some(ipv4::VERSION) => parse_ipv4(bytes),
        Some(ipv6::VERSION) => parse_ipv6(bytes),
        Some(_) => Err(ParseError::UnknownIpVersion),
    }
}

#[inline]
fn packet<'a>(
    ipv6: bool,
    src: HostAddr,
    dst: HostAddr,
    ttl: u8,
    fragment: Fragment,
    ip_payload: &[u8],
    l4: L4<'a>,
) -> Packet<'a> {
    Packet {
        vlan_tags: 0,
        vlan_ids: [0; MAX_VLAN_TAGS],
        ipv6,
        src,
        dst,
        fragment,
        l4,
        ttl,
        // Both IP versions cap their payload below 64 KiB, so this never
        // saturates.
        ip_payload_len: u16::try_from(ip_payload.len()).unwrap_or(u16::MAX),
    }
}

/// Reads the L4 header of `payload` where this packet carries one. A
/// non-first fragment carries only the middle of a datagram: DPI must not
/// read it as a header.
#[inline]
fn parse_l4(protocol: u8, fragment: Fragment, payload: &[u8]) -> Result<L4<'_>, ParseError> {
    Ok(match (protocol, fragment) {
        (_, Fragment::NonFirst) => L4::Other { protocol },
        (protocol::TCP, _) => {
            let tcp = TcpSegment::new_checked(payload)?;
            L4::Tcp {
                src_port: tcp.src_port(),
                dst_port: tcp.dst_port(),
                seq: tcp.seq(),
                ack: tcp.ack(),
                flags: tcp.flags(),
                payload: tcp.payload(),
                window: tcp.window(),
            }
        }
        (protocol::UDP, _) => {
            let udp = if fragment == Fragment::First {
                UdpDatagram::new_checked_first_fragment(payload)?
            } else {
                UdpDatagram::new_checked(payload)?
            };
            L4::Udp {
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
                payload: udp.payload(),
            }
        }
        _ => L4::Other { protocol },
    })
}
