//! The form a parsed packet carries its addresses in: one fixed 16-byte
//! value for IPv4 and IPv6 alike (IPv4 as `::ffff:a.b.c.d`), held as two
//! big-endian 64-bit halves.
//!
//! Why not `IpAddr`: an enum of 17 bytes with alignment 1, whose IPv4 arm
//! the parser writes as 4 bytes after the tag and the flow key reads back
//! as part of an 8-byte load. That load cannot be forwarded from the
//! narrower store and waits for it to retire (a store-forwarding stall
//! per packet in the workers' profile). Here both halves are written and
//! read as whole `u64`s, so the flow key, the ban check and the flow hash
//! all take the address as two registers with no branch on the version.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 address as 128 bits, IPv4-mapped for IPv4: the high
/// half first, so the derived order is the addresses' byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HostAddr([u64; 2]);

impl HostAddr {
    /// `a.b.c.d` as `::ffff:a.b.c.d`; `v4` in host order (`u32::from` of
    /// the address).
    #[inline(always)]
    pub const fn from_ipv4_bits(v4: u32) -> Self {
        HostAddr([0, 0xffff_0000_0000 | v4 as u64])
    }

    /// The address whose 16 bytes, in network order, are `octets`.
    #[inline(always)]
    pub fn from_octets(octets: [u8; 16]) -> Self {
        let (hi, lo) = octets.split_at(8);
        let half = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        HostAddr([half(hi), half(lo)])
    }

    /// The (high, low) halves: what the flow key compares and hashes.
    #[inline(always)]
    pub const fn halves(self) -> [u64; 2] {
        self.0
    }

    /// The address as one big-endian integer.
    #[inline(always)]
    pub const fn to_u128(self) -> u128 {
        (self.0[0] as u128) << 64 | self.0[1] as u128
    }

    /// The 16 bytes in network order.
    #[inline]
    pub const fn octets(self) -> [u8; 16] {
        self.to_u128().to_be_bytes()
    }

    /// The address as `IpAddr`, IPv4 for an IPv4-mapped address.
    pub fn to_ip(self) -> IpAddr {
        Ipv6Addr::from(self.to_u128()).to_canonical()
    }
}

impl From<Ipv4Addr> for HostAddr {
    #[inline]
    fn from(ip: Ipv4Addr) -> Self {
        HostAddr::from_ipv4_bits(u32::from(ip))
    }
}

impl From<Ipv6Addr> for HostAddr {
    #[inline]
    fn from(ip: Ipv6Addr) -> Self {
        HostAddr::from_octets(ip.octets())
    }
}

impl From<IpAddr> for HostAddr {
    #[inline]
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => v4.into(),
            IpAddr::V6(v6) => v6.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_mapped_and_round_trips() {
        let a = HostAddr::from(Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(a.halves(), [0, 0x0000_ffff_c000_0207]);
        assert_eq!(
            a.octets(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7]
        );
        assert_eq!(a.to_ip(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    #[test]
    fn ipv6_round_trips_and_orders_by_bytes() {
        let ip: Ipv6Addr = "2001:db8::1:2".parse().unwrap();
        let a = HostAddr::from(IpAddr::V6(ip));
        assert_eq!(a.halves(), [0x2001_0db8_0000_0000, 0x0000_0000_0001_0002]);
        assert_eq!(a.octets(), ip.octets());
        assert_eq!(a.to_ip(), IpAddr::V6(ip));
        let b = HostAddr::from("2001:db8::1:3".parse::<Ipv6Addr>().unwrap());
        let v4 = HostAddr::from(Ipv4Addr::new(255, 255, 255, 255));
        assert!(v4 < a && a < b);
    }
}
