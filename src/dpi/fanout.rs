//! Fan-out: one host opening MSE-envelope-shaped flows to several distinct
//! peers on unusual ports within minutes is a BitTorrent client in a swarm.
//!
//! The MSE envelope (two DH-key-sized random flights in strict alternation)
//! never condemns a flow alone: obfuscating proxies can pass it (about 0.3 %
//! of obfs4 flows; Shadowsocks AEAD requests are random bytes too). What the
//! proxy client does *not* do is what a BitTorrent client does all the time:
//! talk to many different peers. An obfs4 or Shadowsocks client talks to its
//! one server (a Tor client with a bridge list, to a few); a BitTorrent
//! client with encryption required opens connections to tens of peers within
//! seconds of starting a torrent, each on the port that peer chose at random,
//! and keeps replacing peers as they choke or leave. So the evidence is:
//! envelope flows from one initiator to `threshold` distinct peer addresses
//! within `window_ns`, each on a port that no proxy, VPN or Tor relay uses by
//! default.
//!
//! Why it holds for the look-alikes: every counted flow must itself have
//! passed the envelope. A proxy client reaching three distinct servers on
//! unusual ports within the window needs three envelope passes, each about
//! 3e-3 for obfs4: about 3e-8 per such host, and most proxy clients never
//! reach three servers at all. Ports below 1024 and the default ports of
//! SOCKS, OpenVPN, PPTP, HTTP proxies, Shadowsocks and Tor
//! ([`SERVICE_PORTS`]) never count, so a client walking a server list on
//! those ports is not a swarm. Errors only ever undercount: two peers whose
//! 16-bit tags collide count once, an evicted host starts over, a host with
//! more live peers than slots keeps the newest `PEERS`.
//!
//! Fan-IN (many clients reaching one server port) is deliberately not used,
//! although a seeding BitTorrent client does accept many peers on its one
//! listening port: an obfs4 bridge or a Shadowsocks server does exactly the
//! same — many clients, one high port, every flow random bytes — and with
//! ~0.3 % of obfs4 flows passing the envelope, a popular bridge accumulates
//! envelope passes from distinct clients steadily. Fan-in would ban the
//! bridge operator; fan-out does not, because the bridge initiates nothing.
//!
//! Initiators are kept by full address: that is what a ban names. Distinct
//! peers: IPv4 by full address; IPv6 by /64 prefix, since one
//! server (or one subscriber) commonly holds a whole /64 and could otherwise
//! look like many peers, while swarm peers sit in different subscribers'
//! prefixes.
//!
//! Memory: one 64-byte line per host, `capacity` lines (a power of two)
//! allocated once in `new`; a host keeps `PEERS` (tag, last seen) pairs.
//! Hosts live in an open-addressed table over a short probe window, hashed
//! by the same seeded multiply-xorshift as the known-peer cache (no SipHash,
//! no allocation after `new`); a full window overwrites its least recently
//! active host. A host whose peers all aged out is free.
use std::hash::BuildHasher;
use std::net::IpAddr;

/// Distinct peer addresses within the window that make a fan-out: a client
/// with encryption required connects to tens of peers in its first minute
/// (Transmission's per-torrent limit is 50, libtorrent's connection rate
/// ~10/s), while a proxy client has one server, a Tor client with bridges a
/// few. Three is the fewest that tells "a server list" from "a swarm" and
/// still fires within the first seconds of a torrent.
pub(super) const DEFAULT_THRESHOLD: u8 = 3;
/// How long a peer counts after its last envelope flow: long enough for a
/// client that keeps few peers (a rate-limited or nearly finished torrent)
/// to still gather three, short enough that a proxy client's occasional
/// server change in a day does not add up.
pub(super) const DEFAULT_WINDOW_NS: u64 = 10 * 60 * 1_000_000_000;
/// Hosts per worker: only hosts with envelope-shaped flows are recorded (a
/// small share of subscribers), at 64 bytes each: 1 MiB.
pub(super) const DEFAULT_CAPACITY: usize = 16_384;
/// Fewest hosts a table holds (a small offline run, a fuzz input).
pub(super) const MIN_CAPACITY: usize = 64;

/// Peers remembered per host: the most `threshold` can be.
pub(super) const PEERS: usize = 4;
/// Hosts examined per record.
const PROBE: usize = 4;
/// Lowest peer port that counts: BitTorrent peers listen on unprivileged
/// ports; servers below 1024 are services, not peers.
const MIN_PORT: u16 = 1024;

/// Default ports of services whose traffic is (or can be made) random bytes
/// and whose clients may walk a list of servers: SOCKS (1080), OpenVPN over
/// TCP (1194), PPTP (1723), HTTP proxies (3128, 8000, 8080, 8118 Privoxy,
/// 8888), Shadowsocks' documented default (8388), HTTPS alternatives used by
/// proxies and VPNs (8443, 9443), Tor's ORPort and DirPort (9001, 9030) and its
/// SOCKS ports (9050, 9150). Sorted, for `binary_search`.
pub(super) const SERVICE_PORTS: [u16; 15] = [
    1080, 1194, 1723, 3128, 8000, 8080, 8118, 8388, 8443, 8888, 9001, 9030, 9050, 9150, 9443,
];

const _: () = {
    let mut i = 1;
    while i < SERVICE_PORTS.len() {
        assert!(SERVICE_PORTS[i - 1] < SERVICE_PORTS[i]);
        i += 1;
    }
};

/// One initiator and the peers of its recent envelope flows.
#[derive(Clone, Copy, Debug, Default)]
struct Host {
    /// IPv4 addresses are stored IPv4-mapped.
    ip: u128,
    /// When each peer's latest envelope flow was recorded; 0 = free.
    seen_ns: [u64; PEERS],
    /// 16-bit tags of the peers' addresses (IPv6: of the /64).
    peer: [u16; PEERS],
}

const _: () = assert!(std::mem::size_of::<Host>() <= 64);

impl Host {
    /// Its most recent record still inside the window; 0 when every peer
    /// aged out (the host is free).
    fn last_live(&self, now_ns: u64, window_ns: u64) -> u64 {
        self.seen_ns
            .iter()
            .copied()
            .filter(|&t| live(t, now_ns, window_ns))
            .max()
            .unwrap_or(0)
    }

    /// Notes an envelope flow to the peer tagged `tag`; returns the distinct
    /// peers live in the window, this one included.
    fn note(&mut self, tag: u16, now_ns: u64, window_ns: u64) -> usize {
        for t in &mut self.seen_ns {
            if !live(*t, now_ns, window_ns) {
                *t = 0;
            }
        }
        let same = (0..PEERS).find(|&j| self.seen_ns[j] != 0 && self.peer[j] == tag);
        // Else a free slot, else the peer seen longest ago.
        let j = same.unwrap_or_else(|| {
            (0..PEERS)
                .min_by_key(|&j| self.seen_ns[j])
                .unwrap_or_default()
        });
        self.seen_ns[j] = now_ns;
        self.peer[j] = tag;
        self.seen_ns.iter().filter(|&&t| t != 0).count()
    }
}

/// Whether a record made at `t` is still inside the window at `now_ns`.
/// A clock that went backwards (offline captures) counts as age 0.
fn live(t: u64, now_ns: u64, window_ns: u64) -> bool {
    t != 0 && now_ns.saturating_sub(t) < window_ns
}

/// Whether a flow to `peer:port` can be part of a swarm's fan-out.
fn counts(peer: IpAddr, port: u16) -> bool {
    let special = match peer {
        IpAddr::V4(v4) => {
            v4.is_unspecified() || v4.is_loopback() || v4.is_multicast() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_loopback() || v6.is_multicast(),
    };
    port >= MIN_PORT && !special && SERVICE_PORTS.binary_search(&port).is_err()
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The part of a peer's address that makes it distinct: IPv4 whole, IPv6
/// its /64 (see the module comment).
fn peer_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(_) => key(ip),
        IpAddr::V6(v6) => u128::from(v6) & !u128::from(u64::MAX),
    }
}

/// The per-worker fan-out table (see the module comment).
pub(super) struct FanOut {
    hosts: Box<[Host]>,
    mask: usize,
    window_ns: u64,
    threshold: usize,
    seed: u64,
}

impl FanOut {
    /// `capacity` hosts, rounded up to a power of two (at least the probe
    /// window); 0 disables the table. `threshold` is clamped to `1..=PEERS`,
    /// `window_ns` to at least 1.
    pub(super) fn new(capacity: usize, window_ns: u64, threshold: u8) -> Self {
        let len = if capacity == 0 {
            0
        } else {
            capacity.max(PROBE).next_power_of_two()
        };
        // A per-process random seed: nobody can precompute initiators that
        // share a window, or peers whose tags collide, in every deployment.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x666f_u64) | 1;
        FanOut {
            hosts: vec![Host::default(); len].into_boxed_slice(),
            mask: len.saturating_sub(1),
            window_ns: window_ns.max(1),
            threshold: usize::from(threshold).clamp(1, PEERS),
            seed,
        }
    }

    #[cfg(test)]
    /// Hosts the table can hold.
    pub(super) fn capacity(&self) -> usize {
        self.hosts.len()
    }

    fn mix(&self, k: u128) -> u64 {
        let folded = (k as u64) ^ ((k >> 64) as u64).rotate_left(29);
        let mut h = (folded ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 32;
        h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
        h ^= h >> 29;
        h
    }

    /// Records that `initiator` opened an MSE-envelope-shaped flow to
    /// `peer:peer_port` at `now_ns`. True when `initiator` has had such
    /// flows to at least `threshold` distinct peers (ports ≥ 1024, not a
    /// [`SERVICE_PORTS`] port) within the window, this one included. A flow
    /// that does not count (service port, privileged port, loopback or
    /// multicast peer) is not recorded and returns false: it is not part of
    /// a swarm, whatever else its host does.
    pub(super) fn record(
        &mut self,
        initiator: IpAddr,
        peer: IpAddr,
        peer_port: u16,
        now_ns: u64,
    ) -> bool {
        if self.hosts.is_empty() || !counts(peer, peer_port) {
            return false;
        }
        let now_ns = now_ns.max(1);
        let ip = key(initiator);
        let tag = (self.mix(peer_key(peer)) >> 48) as u16;
        let home = self.mix(ip) as usize;
        let mut found = None;
        let mut victim = home & self.mask;
        let mut victim_last = u64::MAX;
        for i in 0..PROBE {
            let idx = (home + i) & self.mask;
            let last = self.hosts[idx].last_live(now_ns, self.window_ns);
            if last != 0 && self.hosts[idx].ip == ip {
                found = Some(idx);
                break;
            }
            // Free hosts (last 0) first, else the least recently active.
            if last < victim_last {
                victim_last = last;
                victim = idx;
            }
        }
        let idx = found.unwrap_or_else(|| {
            self.hosts[victim] = Host {
                ip,
                ..Host::default()
            };
            victim
        });
        self.hosts[idx].note(tag, now_ns, self.window_ns) >= self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SEC: u64 = 1_000_000_000;
    const MIN: u64 = 60 * SEC;

    fn v4(a: u8, b: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, a, b))
    }

    fn v6(prefix: u16, iid: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, prefix, 0, 0, 0, iid))
    }

    fn table() -> FanOut {
        FanOut::new(1024, DEFAULT_WINDOW_NS, DEFAULT_THRESHOLD)
    }

    #[test]
    fn threshold_is_reached_exactly_at_the_third_distinct_peer() {
        let mut f = table();
        let host = v4(0, 1);
        assert!(!f.record(host, v4(1, 1), 51413, SEC));
        assert!(!f.record(host, v4(1, 2), 6881, 2 * SEC));
        assert!(f.record(host, v4(1, 3), 40000, 3 * SEC));
        // And stays reached while the peers are in the window.
        assert!(f.record(host, v4(1, 4), 40001, 4 * SEC));
        assert!(f.record(host, v4(1, 1), 51413, 5 * SEC));
        // Another host has its own count.
        assert!(!f.record(v4(0, 2), v4(1, 1), 51413, 5 * SEC));
    }

    #[test]
    fn repeated_flows_to_one_peer_count_once_whatever_the_port() {
        let mut f = table();
        let host = v4(0, 1);
        for i in 0..10u16 {
            assert!(!f.record(host, v4(1, 1), 20_000 + i, u64::from(i) * SEC));
        }
        assert!(!f.record(host, v4(1, 2), 6881, 11 * SEC));
        assert!(f.record(host, v4(1, 3), 6881, 12 * SEC));
    }

    #[test]
    fn peers_age_out_of_the_window() {
        let mut f = table();
        let host = v4(0, 1);
        assert!(!f.record(host, v4(1, 1), 6881, SEC));
        assert!(!f.record(host, v4(1, 2), 6881, MIN));
        // 10 min after the first: it aged out (age == window), two are live.
        assert!(!f.record(host, v4(1, 3), 6881, 10 * MIN + SEC));
        assert!(f.record(host, v4(1, 4), 6881, 10 * MIN + 2 * SEC));
        // Much later, everything aged out: the count starts over.
        assert!(!f.record(host, v4(1, 5), 6881, 60 * MIN));
        assert!(!f.record(host, v4(1, 6), 6881, 60 * MIN + SEC));
        assert!(f.record(host, v4(1, 7), 6881, 60 * MIN + 2 * SEC));
    }

    #[test]
    fn a_refreshed_peer_stays_in_the_window() {
        let mut f = table();
        let host = v4(0, 1);
        assert!(!f.record(host, v4(1, 1), 6881, SEC));
        assert!(!f.record(host, v4(1, 1), 6881, 9 * MIN));
        assert!(!f.record(host, v4(1, 2), 6881, 12 * MIN));
        assert!(f.record(host, v4(1, 3), 6881, 12 * MIN));
    }

    #[test]
    fn service_and_privileged_ports_and_special_peers_are_ignored() {
        let mut f = table();
        let host = v4(0, 1);
        let ports = SERVICE_PORTS.into_iter().chain([22, 80, 443, 1023]);
        for (ip, port) in (1u8..).zip(ports) {
            assert!(!f.record(host, v4(2, ip), port, SEC), "{port}");
        }
        for peer in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V4(Ipv4Addr::new(239, 1, 2, 3)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ] {
            assert!(!f.record(host, peer, 6881, SEC));
        }
        // None of them was recorded: it still takes three countable peers.
        assert!(!f.record(host, v4(1, 1), 1024, 2 * SEC));
        assert!(!f.record(host, v4(1, 2), 65535, 2 * SEC));
        assert!(f.record(host, v4(1, 3), 9002, 2 * SEC));
    }

    #[test]
    fn ipv6_initiators_count_peers_by_their_64() {
        let mut f = table();
        let host = v6(1, 1);
        // Three addresses of one /64: one peer.
        assert!(!f.record(host, v6(0xa, 1), 6881, SEC));
        assert!(!f.record(host, v6(0xa, 2), 6882, SEC));
        assert!(!f.record(host, v6(0xa, 3), 6883, SEC));
        assert!(!f.record(host, v6(0xb, 1), 6881, SEC));
        assert!(f.record(host, v6(0xc, 1), 6881, SEC));
        // Another address of the initiator's own /64 is another host.
        assert!(!f.record(v6(1, 2), v6(0xa, 1), 6881, SEC));
        // And an IPv4 host with the same peers is distinct from both.
        assert!(!f.record(v4(0, 1), v6(0xb, 1), 6881, SEC));
    }

    #[test]
    fn a_full_table_overwrites_its_least_recently_active_host() {
        // Capacity 4 = one probe window: the 5th host evicts the oldest.
        let mut f = FanOut::new(4, DEFAULT_WINDOW_NS, DEFAULT_THRESHOLD);
        assert_eq!(f.capacity(), 4);
        for h in 0..4u8 {
            let at = u64::from(h) * SEC;
            f.record(v4(0, h), v4(1, 1), 6881, at);
            f.record(v4(0, h), v4(1, 2), 6881, at);
        }
        // Host 0 (least recently active) is overwritten by host 9.
        assert!(!f.record(v4(0, 9), v4(1, 1), 6881, 10 * SEC));
        // Hosts 1..3 kept their two peers: a third makes their fan-out.
        for h in 1..4u8 {
            assert!(f.record(v4(0, h), v4(1, 3), 6881, 11 * SEC), "{h}");
        }
        // Host 0 starts over (and evicts host 9, now the oldest).
        assert!(!f.record(v4(0, 0), v4(1, 3), 6881, 12 * SEC));
        assert!(!f.record(v4(0, 0), v4(1, 4), 6881, 12 * SEC));
        assert!(f.record(v4(0, 0), v4(1, 5), 6881, 12 * SEC));
    }

    #[test]
    fn a_host_keeps_its_newest_peers_and_the_count_saturates() {
        let mut f = FanOut::new(64, DEFAULT_WINDOW_NS, 4);
        let host = v4(0, 1);
        for p in 1..=3u8 {
            assert!(!f.record(host, v4(1, p), 6881, u64::from(p) * SEC));
        }
        assert!(f.record(host, v4(1, 4), 6881, 4 * SEC));
        // A fifth peer replaces the oldest (1): still four live.
        assert!(f.record(host, v4(1, 5), 6881, 5 * SEC));
        // At 4 s + window, peers 2..4 aged out; 5 is live, so a new peer
        // makes two, and peer 1 (dropped earlier) counts as new: three, then
        // a fourth.
        let t = 4 * SEC + DEFAULT_WINDOW_NS;
        assert!(!f.record(host, v4(1, 6), 6881, t));
        assert!(!f.record(host, v4(1, 1), 6881, t));
        assert!(f.record(host, v4(1, 7), 6881, t));
    }

    #[test]
    fn threshold_is_clamped_and_zero_capacity_disables() {
        let mut one = FanOut::new(64, DEFAULT_WINDOW_NS, 0);
        assert!(one.record(v4(0, 1), v4(1, 1), 6881, SEC));
        let mut many = FanOut::new(64, DEFAULT_WINDOW_NS, 200);
        for p in 1..=3u8 {
            assert!(!many.record(v4(0, 1), v4(1, p), 6881, SEC));
        }
        assert!(many.record(v4(0, 1), v4(1, 4), 6881, SEC));
        let mut off = FanOut::new(0, DEFAULT_WINDOW_NS, 1);
        assert_eq!(off.capacity(), 0);
        assert!(!off.record(v4(0, 1), v4(1, 1), 6881, SEC));
    }
}
