//! Addresses that are never banned, given as IPv4/IPv6 CIDRs.
//!
//! Only "is this address covered by any prefix" matters, so the prefixes are
//! turned into merged, sorted, disjoint ranges of 128-bit keys (IPv4 in the
//! IPv4-mapped range, like [`BanKey`]) and looked up by binary search.
use super::key::BanKey;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// One IPv4 or IPv6 prefix, e.g. `10.0.0.0/8`, `2001:db8::/32`; a bare
/// address is a host prefix (/32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix_len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{0}` is not an IP address")]
    BadAddress(String),
    #[error("`{0}` is not a prefix length")]
    BadPrefixLength(String),
    #[error("prefix length /{len} is longer than the {max} bits of the address")]
    PrefixTooLong { len: u8, max: u8 },
    #[error("`{cidr}` has bits set after the prefix; the network is `{network}`")]
    HostBitsSet { cidr: String, network: String },
}

impl Cidr {
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, CidrError> {
        let max = max_prefix_len(addr);
        if prefix_len > max {
            return Err(CidrError::PrefixTooLong {
                len: prefix_len,
                max,
            });
        }
        let cidr = Cidr { addr, prefix_len };
        let network = cidr.network();
        if network != addr {
            // Reject rather than mask: `10.1.2.3/8` is more often a typo for
            // `/32` than a way of writing `10.0.0.0/8`, and allowing 16 M
            // addresses by accident is the expensive mistake.
            return Err(CidrError::HostBitsSet {
                cidr: format!("{addr}/{prefix_len}"),
                network: format!("{network}/{prefix_len}"),
            });
        }
        Ok(cidr)
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Prefix length in the 128-bit key space (IPv4 sits under ::ffff:0:0/96).
    fn key_prefix_len(&self) -> u32 {
        let offset = 128 - u32::from(max_prefix_len(self.addr));
        offset + u32::from(self.prefix_len)
    }

    /// First and last key covered.
    fn key_range(&self) -> (u128, u128) {
        let host_bits = u128::MAX.checked_shr(self.key_prefix_len()).unwrap_or(0);
        let start = BanKey::from(self.addr).to_u128() & !host_bits;
        (start, start | host_bits)
    }

    /// The address with the bits after the prefix cleared, in its own family.
    fn network(&self) -> IpAddr {
        let network = BanKey::from_u128(self.key_range().0);
        match self.addr {
            IpAddr::V4(_) => network.to_ip(),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(network.octets())),
        }
    }

    pub fn contains(&self, key: &BanKey) -> bool {
        let (start, end) = self.key_range();
        (start..=end).contains(&key.to_u128())
    }
}

fn max_prefix_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::BadAddress(addr.to_owned()))?;
        let prefix_len = match len {
            Some(len) => len
                .parse::<u8>()
                .map_err(|_| CidrError::BadPrefixLength(len.to_owned()))?,
            None => max_prefix_len(addr),
        };
        Cidr::new(addr, prefix_len)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// A set of CIDRs; "never ban these".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    /// Disjoint, non-adjacent, sorted inclusive ranges of keys.
    ranges: Vec<(u128, u128)>,
}

impl Allowlist {
    pub fn new<I: IntoIterator<Item = Cidr>>(cidrs: I) -> Self {
        let mut ranges: Vec<(u128, u128)> = cidrs.into_iter().map(|c| c.key_range()).collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                // Overlapping or touching: extend the previous range.
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Allowlist { ranges: merged }
    }

    /// Parses every string as a [`Cidr`]; fails on the first bad one.
    pub fn parse<'a, I: IntoIterator<Item = &'a str>>(cidrs: I) -> Result<Self, CidrError> {
        let cidrs = cidrs
            .into_iter()
            .map(str::parse)
            .collect::<Result<Vec<Cidr>, _>>()?;
        Ok(Allowlist::new(cidrs))
    }

    pub fn contains(&self, key: &BanKey) -> bool {
        let k = key.to_u128();
        // The first range starting after `k`; only the one before it can hold `k`.
        let after = self.ranges.partition_point(|&(start, _)| start <= k);
        after
            .checked_sub(1)
            .and_then(|i| self.ranges.get(i))
            .is_some_and(|&(_, end)| k <= end)
    }

    /// Number of disjoint ranges after merging.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> BanKey {
        s.parse().unwrap()
    }

    #[test]
    fn parses_prefixes_and_bare_addresses() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert_eq!(c.prefix_len(), 8);
        assert_eq!(c.to_string(), "10.0.0.0/8");
        let host: Cidr = "192.0.2.1".parse().unwrap();
        assert_eq!(host.prefix_len(), 32);
        let v6: Cidr = " 2001:db8::/32 ".parse().unwrap();
        assert_eq!(v6.prefix_len(), 32);
        assert_eq!("::1".parse::<Cidr>().unwrap().prefix_len(), 128);
    }

    #[test]
    fn rejects_bad_cidrs_with_the_reason() {
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::PrefixTooLong { len: 33, max: 32 })
        );
        assert_eq!(
            "2001:db8::/129".parse::<Cidr>(),
            Err(CidrError::PrefixTooLong { len: 129, max: 128 })
        );
        assert_eq!(
            "10.0.0/8".parse::<Cidr>(),
            Err(CidrError::BadAddress("10.0.0".into()))
        );
        assert_eq!(
            "10.0.0.0/x".parse::<Cidr>(),
            Err(CidrError::BadPrefixLength("x".into()))
        );
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>(),
            Err(CidrError::HostBitsSet {
                cidr: "10.1.2.3/8".into(),
                network: "10.0.0.0/8".into()
            })
        );
        assert_eq!(
            "2001:db8::1/64".parse::<Cidr>(),
            Err(CidrError::HostBitsSet {
                cidr: "2001:db8::1/64".into(),
                network: "2001:db8::/64".into()
            })
        );
    }

    #[test]
    fn zero_length_prefixes_cover_their_whole_family_only() {
        let v4 = Allowlist::parse(["0.0.0.0/0"]).unwrap();
        assert!(v4.contains(&k("0.0.0.0")));
        assert!(v4.contains(&k("255.255.255.255")));
        assert!(!v4.contains(&k("2001:db8::1")));
        assert!(!v4.contains(&k("::fffe:ffff:ffff")));
        let v6 = Allowlist::parse(["::/0"]).unwrap();
        assert!(v6.contains(&k("2001:db8::1")));
        assert!(
            v6.contains(&k("10.0.0.1")),
            "IPv4 is inside ::/0 as ::ffff:0:0/96"
        );
    }

    #[test]
    fn boundaries_are_exact() {
        let list = Allowlist::parse(["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"]).unwrap();
        assert!(!list.contains(&k("9.255.255.255")));
        assert!(list.contains(&k("10.0.0.0")));
        assert!(list.contains(&k("10.255.255.255")));
        assert!(!list.contains(&k("11.0.0.0")));
        assert!(!list.contains(&k("192.168.0.255")));
        assert!(list.contains(&k("192.168.1.77")));
        assert!(!list.contains(&k("192.168.2.0")));
        assert!(list.contains(&k("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!list.contains(&k("2001:db9::")));
        assert!(!list.contains(&k("::")));
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let list = Allowlist::parse(["10.0.0.0/24", "10.0.0.128/25", "10.0.1.0/24", "10.0.3.0/24"])
            .unwrap();
        assert_eq!(list.range_count(), 2);
        assert!(list.contains(&k("10.0.1.255")));
        assert!(!list.contains(&k("10.0.2.0")));
        assert!(list.contains(&k("10.0.3.0")));
    }

    #[test]
    fn ipv4_mapped_prefix_covers_ipv4_hosts() {
        let list = Allowlist::parse(["::ffff:10.0.0.0/104"]).unwrap();
        assert_eq!(list, Allowlist::parse(["10.0.0.0/8"]).unwrap());
        assert!(list.contains(&k("10.9.9.9")));
        assert!(!list.contains(&k("11.0.0.0")));
    }

    #[test]
    fn empty_list_allows_nothing() {
        let list = Allowlist::default();
        assert!(list.is_empty());
        assert!(!list.contains(&k("10.0.0.1")));
    }

    #[test]
    fn parse_fails_on_first_bad_entry() {
        assert_eq!(
            Allowlist::parse(["10.0.0.0/8", "nope"]),
            Err(CidrError::BadAddress("nope".into()))
        );
    }
}
