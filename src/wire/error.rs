//! Why a frame could not be parsed: one variant per distinct reason, so the
//! per-reason counters (`name()` is their Prometheus label) say what is wrong
//! with the traffic.

/// The first thing wrong with a frame. Declaration order is `ALL` order is
/// `index()` order; the unit test below holds the three together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ParseError {
    #[error("frame shorter than the 14-byte Ethernet header")]
    TruncatedEthernet,
    #[error("frame ends inside a 4-byte VLAN tag")]
    TruncatedVlan,
    #[error("more than two VLAN tags")]
    TooManyVlanTags,
    #[error("frame shorter than its link-layer header (SLL, SLL2, NULL)")]
    TruncatedLinkHeader,
    #[error("NULL/loopback address family is neither IPv4 nor IPv6")]
    UnknownLinkFamily,
    #[error("raw IP frame is empty")]
    TruncatedIp,
    #[error("raw IP frame has a version other than 4 or 6")]
    UnknownIpVersion,
    #[error("bytes end inside the IPv4 header")]
    TruncatedIpv4,
    #[error("IPv4 ethertype but the version field is not 4")]
    BadIpv4Version,
    #[error("IPv4 header length (IHL) below 5 words")]
    BadIpv4HeaderLength,
    #[error("IPv4 total length shorter than the header or longer than the frame")]
    BadIpv4TotalLength,
    #[error("bytes end inside the 40-byte IPv6 header")]
    TruncatedIpv6,
    #[error("IPv6 ethertype but the version field is not 6")]
    BadIpv6Version,
    #[error("IPv6 payload length longer than the frame")]
    BadIpv6PayloadLength,
    #[error("IPv6 payload ends inside an extension header")]
    TruncatedIpv6Extension,
    #[error("more than 8 IPv6 extension headers")]
    TooManyIpv6Extensions,
    #[error("IP payload shorter than the 20-byte TCP header")]
    TruncatedTcp,
    #[error("TCP data offset below 5 words or beyond the segment")]
    BadTcpDataOffset,
    #[error("IP payload shorter than the 8-byte UDP header")]
    TruncatedUdp,
    #[error("UDP length below 8 or longer than the IP payload")]
    BadUdpLength,
}

impl ParseError {
    pub const ALL: [ParseError; 20] = [
        ParseError::TruncatedEthernet,
        ParseError::TruncatedVlan,
        ParseError::TooManyVlanTags,
        ParseError::TruncatedLinkHeader,
        ParseError::UnknownLinkFamily,
        ParseError::TruncatedIp,
        ParseError::UnknownIpVersion,
        ParseError::TruncatedIpv4,
        ParseError::BadIpv4Version,
        ParseError::BadIpv4HeaderLength,
        ParseError::BadIpv4TotalLength,
        ParseError::TruncatedIpv6,
        ParseError::BadIpv6Version,
        ParseError::BadIpv6PayloadLength,
        ParseError::TruncatedIpv6Extension,
        ParseError::TooManyIpv6Extensions,
        ParseError::TruncatedTcp,
        ParseError::BadTcpDataOffset,
        ParseError::TruncatedUdp,
        ParseError::BadUdpLength,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// Position in `ALL`: the index of this reason's counter.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// snake_case label for metrics.
    pub fn name(self) -> &'static str {
        match self {
            ParseError::TruncatedEthernet => "truncated_ethernet",
            ParseError::TruncatedVlan => "truncated_vlan",
            ParseError::TooManyVlanTags => "too_many_vlan_tags",
            ParseError::TruncatedLinkHeader => "truncated_link_header",
            ParseError::UnknownLinkFamily => "unknown_link_family",
            ParseError::TruncatedIp => "truncated_ip",
            ParseError::UnknownIpVersion => "unknown_ip_version",
            ParseError::TruncatedIpv4 => "truncated_ipv4",
            ParseError::BadIpv4Version => "bad_ipv4_version",
            ParseError::BadIpv4HeaderLength => "bad_ipv4_header_length",
            ParseError::BadIpv4TotalLength => "bad_ipv4_total_length",
            ParseError::TruncatedIpv6 => "truncated_ipv6",
            ParseError::BadIpv6Version => "bad_ipv6_version",
            ParseError::BadIpv6PayloadLength => "bad_ipv6_payload_length",
            ParseError::TruncatedIpv6Extension => "truncated_ipv6_extension",
            ParseError::TooManyIpv6Extensions => "too_many_ipv6_extensions",
            ParseError::TruncatedTcp => "truncated_tcp",
            ParseError::BadTcpDataOffset => "bad_tcp_data_offset",
            ParseError::TruncatedUdp => "truncated_udp",
            ParseError::BadUdpLength => "bad_udp_length",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_position_in_all() {
        for (i, e) in ParseError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i, "{e:?}");
        }
        assert_eq!(ParseError::COUNT, 20);
    }

    #[test]
    fn names_are_unique_snake_case() {
        for (i, a) in ParseError::ALL.iter().enumerate() {
            let name = a.name();
            assert!(!name.is_empty());
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            for b in ParseError::ALL.iter().skip(i + 1) {
                assert_ne!(name, b.name(), "{a:?} and {b:?} share a name");
            }
        }
    }
}
