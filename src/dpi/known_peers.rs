//! The known-peer cache: endpoints (IP, port) recently seen taking part in
//! BitTorrent, so that later flows to or from them are recognised even when
//! their own bytes are opaque (MSE-encrypted TCP to a peer learned over DHT or
//! uTP; clients use one port number for TCP, uTP and DHT).
//!
//! Two tiers, because the sources differ in trust:
//! * `Confirmed`: the endpoint itself spoke BitTorrent in a Definitive detection
//!   (the responder that sent a peer-wire handshake, both ends of a uTP
//!   connection, the sender of a KRPC message). A later flow touching it is
//!   BitTorrent on that ground alone.
//! * `Advertised`: the endpoint was only named by someone else (a DHT `values`
//!   list, a tracker's peer list, the target of a DHT query). Such lists can be
//!   forged to point at any server, so this tier only corroborates a Strong
//!   signal of the flow itself (e.g. the MSE shape); it never condemns alone.
//!
//! Fixed capacity (a power of two), open addressing over a short probe window,
//! a seeded multiply-xorshift hash (no SipHash, no allocation after `new`),
//! entries expire after a TTL, and when a window is full its entry closest to
//! expiry is overwritten. Ports below 1024 are never stored: BitTorrent peers
//! listen on unprivileged ports, while web, DNS and mail servers do not, so a
//! forged or mistaken entry cannot condemn traffic to those services.
use std::hash::BuildHasher;
use std::net::IpAddr;

/// Slots examined per lookup or insert.
const PROBE: usize = 8;
/// Lowest port stored (see the module comment).
pub(super) const MIN_PORT: u16 = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerTier {
    Advertised,
    Confirmed,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// IPv4 addresses are stored IPv4-mapped.
    ip: u128,
    /// 0 = empty.
    expires_ns: u64,
    port: u16,
    confirmed: bool,
}

pub(super) struct KnownPeers {
    slots: Box<[Slot]>,
    mask: usize,
    ttl_ns: u64,
    seed: u64,
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl KnownPeers {
    /// `capacity` is rounded up to a power of two (at least `PROBE`); 0 disables
    /// the cache.
    pub(super) fn new(capacity: usize, ttl_ns: u64) -> Self {
        let len = if capacity == 0 {
            0
        } else {
            capacity.max(PROBE).next_power_of_two()
        };
        // A per-process random seed, so that nobody can precompute addresses
        // that collide in every deployment.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x6274_u64) | 1;
        KnownPeers {
            slots: vec![Slot::default(); len].into_boxed_slice(),
            mask: len.saturating_sub(1),
            ttl_ns,
            seed,
        }
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn home(&self, ip: u128, port: u16) -> usize {
        let folded = (ip as u64) ^ ((ip >> 64) as u64).rotate_left(29) ^ u64::from(port);
        let mut h = (folded ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 32;
        h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
        h ^= h >> 29;
        h as usize
    }

    /// Records `ip:port` as BitTorrent until now + TTL. An Advertised insert
    /// never downgrades a Confirmed entry.
    pub(super) fn insert(&mut self, ip: IpAddr, port: u16, tier: PeerTier, now_ns: u64) {
        if self.slots.is_empty() || port < MIN_PORT {
            return;
        }
        let k = key(ip);
        let expires_ns = now_ns.saturating_add(self.ttl_ns).max(1);
        let home = self.home(k, port);
        let mut victim = home & self.mask;
        let mut victim_expiry = u64::MAX;
        for i in 0..PROBE {
            let idx = (home + i) & self.mask;
            let s = &mut self.slots[idx];
            if s.expires_ns != 0 && s.ip == k && s.port == port {
                s.expires_ns = expires_ns;
                s.confirmed |= tier == PeerTier::Confirmed;
                return;
            }
            // Empty or expired slots count as the oldest.
            let age = if s.expires_ns <= now_ns {
                0
            } else {
                s.expires_ns
            };
            if age < victim_expiry {
                victim_expiry = age;
                victim = idx;
            }
        }
        self.slots[victim] = Slot {
            ip: k,
            expires_ns,
            port,
            confirmed: tier == PeerTier::Confirmed,
        };
    }

    /// The tier of `ip:port` if it is cached and not expired.
    pub(super) fn lookup(&self, ip: IpAddr, port: u16, now_ns: u64) -> Option<PeerTier> {
        if self.slots.is_empty() || port < MIN_PORT {
            return None;
        }
        let k = key(ip);
        let home = self.home(k, port);
        (0..PROBE)
            .map(|i| &self.slots[(home + i) & self.mask])
            .find(|s| s.expires_ns > now_ns && s.ip == k && s.port == port)
            .map(|s| {
                if s.confirmed {
                    PeerTier::Confirmed
                } else {
                    PeerTier::Advertised
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SEC: u64 = 1_000_000_000;

    fn v4(a: u8, b: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, a, b))
    }

    #[test]
    fn insert_lookup_and_expiry() {
        let mut c = KnownPeers::new(1024, 60 * SEC);
        c.insert(v4(0, 1), 6881, PeerTier::Confirmed, 10 * SEC);
        assert_eq!(
            c.lookup(v4(0, 1), 6881, 11 * SEC),
            Some(PeerTier::Confirmed)
        );
        assert_eq!(c.lookup(v4(0, 1), 6882, 11 * SEC), None);
        assert_eq!(c.lookup(v4(0, 2), 6881, 11 * SEC), None);
        assert_eq!(c.lookup(v4(0, 1), 6881, 70 * SEC), None);
    }

    #[test]
    fn ipv4_and_ipv6_keys_are_distinct_and_both_work() {
        let mut c = KnownPeers::new(64, 60 * SEC);
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        c.insert(v6, 51413, PeerTier::Advertised, 0);
        assert_eq!(c.lookup(v6, 51413, 1), Some(PeerTier::Advertised));
        assert_eq!(c.lookup(v4(0, 1), 51413, 1), None);
    }

    #[test]
    fn advertised_never_downgrades_confirmed_but_confirmed_upgrades() {
        let mut c = KnownPeers::new(64, 60 * SEC);
        c.insert(v4(0, 1), 7000, PeerTier::Confirmed, 0);
        c.insert(v4(0, 1), 7000, PeerTier::Advertised, 1);
        assert_eq!(c.lookup(v4(0, 1), 7000, 2), Some(PeerTier::Confirmed));
        c.insert(v4(0, 2), 7000, PeerTier::Advertised, 0);
        c.insert(v4(0, 2), 7000, PeerTier::Confirmed, 1);
        assert_eq!(c.lookup(v4(0, 2), 7000, 2), Some(PeerTier::Confirmed));
    }

    #[test]
    fn privileged_ports_are_never_stored() {
        let mut c = KnownPeers::new(64, 60 * SEC);
        c.insert(v4(0, 1), 443, PeerTier::Confirmed, 0);
        assert_eq!(c.lookup(v4(0, 1), 443, 1), None);
    }

    #[test]
    fn when_full_the_oldest_is_overwritten() {
        // Capacity 8 = one probe window: the 9th insert evicts the first.
        let mut c = KnownPeers::new(8, 1000 * SEC);
        for i in 0..8u8 {
            c.insert(v4(1, i), 6881, PeerTier::Confirmed, u64::from(i) * SEC);
        }
        for i in 0..8u8 {
            assert!(c.lookup(v4(1, i), 6881, 9 * SEC).is_some(), "{i}");
        }
        c.insert(v4(2, 0), 6881, PeerTier::Confirmed, 9 * SEC);
        assert_eq!(c.lookup(v4(1, 0), 6881, 10 * SEC), None);
        assert!(c.lookup(v4(2, 0), 6881, 10 * SEC).is_some());
        assert_eq!(
            (1..8u8)
                .filter(|&i| c.lookup(v4(1, i), 6881, 10 * SEC).is_some())
                .count(),
            7
        );
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = KnownPeers::new(0, 60 * SEC);
        c.insert(v4(0, 1), 6881, PeerTier::Confirmed, 0);
        assert_eq!(c.lookup(v4(0, 1), 6881, 1), None);
        assert_eq!(c.capacity(), 0);
    }
}
