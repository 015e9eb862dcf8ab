//! The address a ban applies to.
//!
//! IPv4 and IPv6 share one 16-byte representation (IPv4 as `::ffff:a.b.c.d`)
//! so every table, the snapshot and the event ring handle a single key type
//! of fixed size with no enum tag to branch on per packet.
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::wire::HostAddr;

/// An IPv4 or IPv6 host address, stored as 16 bytes (IPv4-mapped for IPv4).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct BanKey([u8; 16]);

impl BanKey {
    /// The key whose raw bytes are `octets` (an IPv6 address; IPv4-mapped
    /// addresses are IPv4 hosts).
    pub const fn from_octets(octets: [u8; 16]) -> Self {
        BanKey(octets)
    }

    pub const fn octets(&self) -> [u8; 16] {
        self.0
    }

    /// The key as one integer, network byte order: the allowlist compares
    /// ranges of these.
    pub const fn to_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    pub const fn from_u128(value: u128) -> Self {
        BanKey(value.to_be_bytes())
    }

    /// The two 64-bit halves, for hashing.
    pub(crate) const fn halves(self) -> (u64, u64) {
        let v = self.to_u128();
        ((v >> 64) as u64, v as u64)
    }

    /// True for an IPv4 host (an IPv4-mapped key).
    pub fn is_ipv4(&self) -> bool {
        Ipv6Addr::from(self.0).to_ipv4_mapped().is_some()
    }

    /// The address, IPv4 for IPv4-mapped keys.
    pub fn to_ip(self) -> IpAddr {
        Ipv6Addr::from(self.0).to_canonical()
    }
}

// Hash as one integer rather than the derived length-prefixed byte slice:
// the control thread's maps hash every key once per operation.
impl Hash for BanKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(self.to_u128());
    }
}

impl From<Ipv4Addr> for BanKey {
    fn from(ip: Ipv4Addr) -> Self {
        BanKey(ip.to_ipv6_mapped().octets())
    }
}

impl From<Ipv6Addr> for BanKey {
    fn from(ip: Ipv6Addr) -> Self {
        BanKey(ip.octets())
    }
}

impl From<IpAddr> for BanKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => v4.into(),
            IpAddr::V6(v6) => v6.into(),
        }
    }
}

impl From<HostAddr> for BanKey {
    #[inline(always)]
    fn from(addr: HostAddr) -> Self {
        BanKey(addr.octets())
    }
}

impl From<BanKey> for IpAddr {
    fn from(key: BanKey) -> Self {
        key.to_ip()
    }
}

impl FromStr for BanKey {
    type Err = std::net::AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<IpAddr>().map(BanKey::from)
    }
}

impl fmt::Display for BanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_ip(), f)
    }
}

impl fmt::Debug for BanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BanKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_stored_mapped_and_displayed_as_ipv4() {
        let key = BanKey::from(Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(
            key.octets(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7]
        );
        assert!(key.is_ipv4());
        assert_eq!(key.to_string(), "192.0.2.7");
        assert_eq!(key.to_ip(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    #[test]
    fn ipv6_round_trips() {
        let ip: Ipv6Addr = "2001:db8::42".parse().unwrap();
        let key = BanKey::from(IpAddr::V6(ip));
        assert!(!key.is_ipv4());
        assert_eq!(key.octets(), ip.octets());
        assert_eq!(key.to_string(), "2001:db8::42");
        assert_eq!("2001:db8::42".parse::<BanKey>().unwrap(), key);
    }

    #[test]
    fn mapped_ipv6_and_ipv4_are_the_same_key() {
        let v4: BanKey = "10.1.2.3".parse().unwrap();
        let mapped: BanKey = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(v4, mapped);
        assert_eq!(mapped.to_string(), "10.1.2.3");
    }

    #[test]
    fn u128_round_trip_and_halves() {
        let key: BanKey = "2001:db8::1".parse().unwrap();
        assert_eq!(BanKey::from_u128(key.to_u128()), key);
        assert_eq!(key.halves(), (0x2001_0db8_0000_0000, 1));
    }

    #[test]
    fn garbage_does_not_parse() {
        assert!("10.0.0.256".parse::<BanKey>().is_err());
        assert!("".parse::<BanKey>().is_err());
    }
}
