//! The per-worker flow table: fixed capacity, one entry for both directions,
//! separate TCP/UDP idle timeouts, no allocation after start-up.
//!
//! Set-associative: a key hashes to one bucket of `WAYS` slots. A lookup that
//! misses takes a free or expired slot of its bucket; when every slot is live,
//! the least recently seen one is evicted (counted). This bounds the work per
//! packet to `WAYS` compares, needs no global LRU list, and approximates
//! "evict the oldest" closely because a bucket is a random sample of the table.
//!
//! Each bucket has one 64-byte line of metadata beside its slots: a 32-bit tag
//! (high bits of the key's hash; 0 = free) and a coarse last-seen time per
//! slot. A lookup reads that line and then only the slot whose tag matches; a
//! miss or an eviction choice never touches the other slots. So a lookup costs
//! one or two cache lines instead of up to eight, and
//! [`FlowTable::bucket_line`] gives a caller that line's address, so it can
//! start loading the lines of a burst's packets before it looks any of them
//! up.
//!
//! A slot is two cache lines (128 B, checked at compile time) holding what a
//! flow needs for its whole life. A packet of a known flow touches only the
//! first: the packed key, last-seen time, ban stamp and verdict; the second
//! holds what offline reports read (counters, start, deciding packet). So a
//! lookup in a table far beyond the caches costs two lines from memory, the
//! bucket's and the slot's first. The detectors' memory of an undecided flow
//! is elsewhere, in the worker's `DpiPool`, which the slot refers to by index
//! (`Flow::dpi`): a table sized for millions of flows does not carry millions
//! of idle detector states.
use std::net::IpAddr;

use super::dpi_pool::DpiRef;
use crate::dpi::{Detection, Direction};
use crate::wire::{HostAddr, Transport};

/// Slots per bucket.
pub const WAYS: usize = 8;

/// One endpoint of a flow, IPv4 stored as IPv4-mapped IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Endpoint {
    /// Two registers, so keys compare and hash as integers (as `[u8; 16]`
    /// the compiler moved them byte by byte), and the derived order is
    /// still the addresses' byte order.
    pub addr: HostAddr,
    pub port: u16,
}

impl Endpoint {
    #[inline]
    pub fn new(ip: IpAddr, port: u16) -> Self {
        Endpoint::at(HostAddr::from(ip), port)
    }

    /// The endpoint at a parsed packet's address.
    #[inline(always)]
    pub const fn at(addr: HostAddr, port: u16) -> Self {
        Endpoint { addr, port }
    }

    /// The address, IPv4 for an IPv4-mapped one.
    pub fn ip(&self) -> IpAddr {
        self.addr.to_ip()
    }
}

/// A flow's identity, the same for both directions: the lower endpoint first.
///
/// Packed, addresses first and ports after them (40 bytes, not the 56 of two
/// padded `Endpoint`s), so that the key and everything a packet of a known
/// flow reads fit the slot's first cache line together (see `Flow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct FlowKey {
    lo_addr: HostAddr,
    hi_addr: HostAddr,
    lo_port: u16,
    hi_port: u16,
    pub proto: Transport,
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and whether `src` is the low end.
    #[inline]
    pub fn of(proto: Transport, src: Endpoint, dst: Endpoint) -> (FlowKey, bool) {
        let src_is_lo = src <= dst;
        let (lo, hi) = if src_is_lo { (src, dst) } else { (dst, src) };
        (
            FlowKey {
                lo_addr: lo.addr,
                hi_addr: hi.addr,
                lo_port: lo.port,
                hi_port: hi.port,
                proto,
            },
            src_is_lo,
        )
    }

    /// The lower endpoint.
    #[inline]
    pub fn lo(&self) -> Endpoint {
        Endpoint::at(self.lo_addr, self.lo_port)
    }

    /// The higher endpoint.
    #[inline]
    pub fn hi(&self) -> Endpoint {
        Endpoint::at(self.hi_addr, self.hi_port)
    }

    /// A fast, non-cryptographic hash: folded 64×64→128-bit multiplies (as in
    /// foldhash), the two addresses in independent lanes so the CPU computes
    /// them side by side; two multiplies deep instead of five in a chain (a
    /// multiply-rotate FxHash over the five words was a quarter of the
    /// worker's time in the pipeline bench). Flow keys come from the network,
    /// so a hostile sender could aim at one bucket; the per-table seed makes
    /// that guesswork, and a full bucket only evicts.
    #[inline(always)]
    fn hash(&self, seed: u64) -> u64 {
        // Odd constants from the fractional digits of pi (as foldhash uses).
        const K: [u64; 3] = [
            0x243f_6a88_85a3_08d3,
            0x1319_8a2e_0370_7344,
            0xa409_3822_299f_31d0,
        ];
        #[inline(always)]
        fn folded_mul(x: u64, y: u64) -> u64 {
            let p = u128::from(x) * u128::from(y);
            (p as u64) ^ (p >> 64) as u64
        }
        let ports = u64::from(self.lo_port)
            | u64::from(self.hi_port) << 16
            | u64::from(self.proto.protocol()) << 32;
        let [lo_high, lo_low] = self.lo_addr.halves();
        let [hi_high, hi_low] = self.hi_addr.halves();
        let lo = folded_mul(lo_high ^ seed, lo_low ^ K[0]);
        let hi = folded_mul(hi_high ^ seed.rotate_left(32), hi_low ^ K[1]);
        folded_mul(lo ^ ports, hi ^ K[2])
    }
}

/// What the pipeline decided about a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FlowVerdict {
    /// Still being inspected.
    #[default]
    Pending,
    /// Judged clean: fast path.
    Clean,
    /// Judged BitTorrent: fast path to the verdict.
    BitTorrent,
}

/// Per-direction counters (index = `Direction as usize`). Payload packets
/// are counted by DPI, in its own state, only while the flow is undecided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// What a flow keeps for its whole life: what every packet reads or writes,
/// and the verdict with what decided it (for detection events, retire
/// callbacks and `analyze`'s report). The detectors' memory is not here: an
/// undecided flow holds an entry of the worker's `DpiPool` (`dpi`), given
/// back as soon as DPI decides it.
///
/// `repr(C)`, in this order, so that a packet of a known flow reads and
/// writes one cache line: the first holds the key, the last-seen time, the
/// ban stamp, the pool ref and the verdict (what a lookup compares and
/// refreshes and the pipeline branches on). The second holds what only
/// offline reports read: the per-direction counters (counted only where a
/// pipeline asks for them), the start time and the deciding packet. See the
/// `hot_fields_share_the_first_cache_line` test.
#[derive(Clone, Debug, Default)]
#[repr(C)]
pub struct Flow {
    pub key: FlowKey,
    pub last_seen_ns: u64,
    /// The ban snapshot under which neither of the flow's hosts was banned:
    /// until the workers load another, its packets skip the ban check.
    pub ban_checked: BanStamp,
    /// The flow's DPI state in the worker's pool, while it is undecided.
    pub dpi: DpiRef,
    /// True when `key.lo()` sent the flow's first packet.
    pub lo_is_originator: bool,
    pub verdict: FlowVerdict,
    /// What the DPI engine found, when the verdict is BitTorrent (2 bytes:
    /// kept here rather than in the pool so it outlives the DPI state).
    pub detection: Option<Detection>,
    /// Packets and payload bytes per direction, where the pipeline counts
    /// them (`Pipeline::with_flow_counters`); zero elsewhere.
    pub dirs: [DirCounters; 2],
    pub first_seen_ns: u64,
    /// Index of the packet that decided the verdict (among those the pipeline saw).
    pub decided_at_packet: u64,
}

/// Which ban snapshot a flow was last checked against: its generation plus
/// one, so that the zero of a fresh slot means "never checked". Snapshots
/// count generations in 64 bits, so two never share a stamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanStamp(u64);

impl BanStamp {
    pub const NEVER: BanStamp = BanStamp(0);

    #[inline(always)]
    pub const fn of_generation(generation: u64) -> Self {
        BanStamp(generation.wrapping_add(1))
    }
}

impl Flow {
    /// Direction of a packet whose source is the low end (`src_is_lo`).
    #[inline]
    pub fn direction(&self, src_is_lo: bool) -> Direction {
        if src_is_lo == self.lo_is_originator {
            Direction::Originator
        } else {
            Direction::Responder
        }
    }

    /// (originator, responder) endpoints.
    pub fn endpoints(&self) -> (Endpoint, Endpoint) {
        if self.lo_is_originator {
            (self.key.lo(), self.key.hi())
        } else {
            (self.key.hi(), self.key.lo())
        }
    }
}

/// Cache-line aligned, the flow's hot fields first (see `Flow`). Whether it is
/// live is its bucket's business (`BucketMeta`).
#[derive(Clone, Debug, Default)]
#[repr(C, align(64))]
struct Slot {
    flow: Flow,
}

/// Bytes of one flow-table slot: two cache lines. Checked at compile time, so
/// a field added to `Flow` that would make it three fails the build here.
pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();
const _: () = assert!(SLOT_BYTES <= 128, "a flow slot must fit two cache lines");

/// Bytes at the start of a slot that a packet of a known flow touches (when
/// the pipeline keeps no per-flow counters): one cache line. Checked at
/// compile time: the last of those fields must end inside it.
pub const HOT_BYTES: usize = 64;
const _: () = assert!(
    std::mem::offset_of!(Flow, detection) + std::mem::size_of::<Option<Detection>>() <= HOT_BYTES,
    "a known flow's per-packet fields must share the slot's first cache line"
);

/// Bytes of the table's per-bucket metadata line, per slot.
pub const META_BYTES_PER_SLOT: usize = std::mem::size_of::<BucketMeta>() / WAYS;

/// One cache line per bucket: what a lookup reads before any slot.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct BucketMeta {
    /// Per slot: 0 when free, else the key hash's high 32 bits with the low
    /// bit set (`tag_of`), so a live slot never reads as free.
    tags: [u32; WAYS],
    /// Per slot: last seen, in ticks of 2^20 ns (about 1 ms), wrapping after
    /// about 52 days. Only chooses the victim of a full bucket; expiry itself
    /// reads the slot's exact `last_seen_ns`.
    seen: [u32; WAYS],
}

const SEEN_TICK_SHIFT: u32 = 20;

#[inline(always)]
fn seen_tick(now_ns: u64) -> u32 {
    (now_ns >> SEEN_TICK_SHIFT) as u32
}

#[inline(always)]
fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32 | 1
}

/// Counters the table keeps about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
}

/// Why a live flow left the table (reported to `lookup`'s `on_retire`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retired {
    Expired,
    Evicted,
}

pub struct FlowTable {
    meta: Box<[BucketMeta]>,
    slots: Box<[Slot]>,
    bucket_mask: usize,
    seed: u64,
    tcp_timeout_ns: u64,
    udp_timeout_ns: u64,
    active: usize,
    stats: FlowTableStats,
}

impl FlowTable {
    /// A table of at least `capacity` flows (rounded up to a power-of-two
    /// number of buckets), allocated once here.
    pub fn new(capacity: usize, tcp_timeout_ns: u64, udp_timeout_ns: u64, seed: u64) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        FlowTable {
            meta: vec![BucketMeta::default(); buckets].into_boxed_slice(),
            slots: vec![Slot::default(); buckets * WAYS].into_boxed_slice(),
            bucket_mask: buckets - 1,
            // Never 0: IPv4-mapped keys have a zero high half, and a zero
            // seed would make their first multiply zero.
            seed: seed | 1,
            tcp_timeout_ns,
            udp_timeout_ns,
            active: 0,
            stats: FlowTableStats::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Where the table's storage lies, `(start, bytes)` per allocation, for
    /// the DPDK module to back it with huge pages (the table itself stays
    /// plain safe Rust).
    pub fn memory_regions(&self) -> [(*const u8, usize); 2] {
        [
            (
                self.meta.as_ptr().cast(),
                std::mem::size_of_val(&*self.meta),
            ),
            (
                self.slots.as_ptr().cast(),
                std::mem::size_of_val(&*self.slots),
            ),
        ]
    }

    /// Live flows (expired ones still count until their slot is reused).
    pub fn active(&self) -> usize {
        self.active
    }

    pub fn stats(&self) -> FlowTableStats {
        self.stats
    }

    fn timeout(&self, proto: Transport) -> u64 {
        if proto == Transport::Tcp {
            self.tcp_timeout_ns
        } else {
            self.udp_timeout_ns
        }
    }

    /// The hash a lookup of `key` uses; [`FlowTable::bucket_line`] and
    /// [`FlowTable::lookup_hashed`] take it so a burst hashes each packet
    /// once.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        key.hash(self.seed)
    }

    /// The metadata line a lookup of `hash` reads first, for the caller to
    /// prefetch (the address only: the DPDK module issues the prefetch).
    #[inline]
    pub fn bucket_line(&self, hash: u64) -> *const u8 {
        std::ptr::from_ref(&self.meta[hash as usize & self.bucket_mask]).cast()
    }

    /// The slot a lookup of `hash` would read (the first whose tag matches;
    /// its first byte, [`SLOT_BYTES`] long), for a second prefetch once
    /// `bucket_line`'s line has arrived; `None` when no slot matches (a new
    /// flow).
    #[inline]
    pub fn slot_line(&self, hash: u64) -> Option<*const u8> {
        let b = hash as usize & self.bucket_mask;
        let tag = tag_of(hash);
        let way = self.meta[b].tags.iter().position(|&t| t == tag)?;
        Some(std::ptr::from_ref(&self.slots[b * WAYS + way]).cast())
    }

    /// Bytes of the slots of the live flows: when far above the caches, a
    /// lookup misses to memory and is worth prefetching ahead.
    #[inline]
    pub fn live_bytes(&self) -> usize {
        self.active * std::mem::size_of::<Slot>()
    }

    /// Finds the flow of a packet from `src` to `dst`, creating it (with `src` as
    /// originator) if absent or expired. Returns the flow and the packet's
    /// direction, and whether it was just created. `on_retire` sees every live
    /// flow that leaves the table.
    #[inline]
    pub fn lookup(
        &mut self,
        proto: Transport,
        src: Endpoint,
        dst: Endpoint,
        now_ns: u64,
        on_retire: impl FnMut(&Flow, Retired),
    ) -> (&mut Flow, Direction, bool) {
        let (key, src_is_lo) = FlowKey::of(proto, src, dst);
        let hash = self.hash(&key);
        self.lookup_hashed(&key, src_is_lo, hash, now_ns, on_retire)
    }

    /// `lookup` for a key already made by `FlowKey::of` and hashed by `hash`.
    #[inline]
    pub fn lookup_hashed(
        &mut self,
        key: &FlowKey,
        src_is_lo: bool,
        hash: u64,
        now_ns: u64,
        on_retire: impl FnMut(&Flow, Retired),
    ) -> (&mut Flow, Direction, bool) {
        match self.lookup_admitted(key, src_is_lo, hash, now_ns, on_retire, || true) {
            Some(found) => found,
            // `admit` always says yes.
            None => unreachable!("a lookup that admits every flow returned none"),
        }
    }

    /// `lookup_hashed`, where a flow that is not live may enter the table
    /// only if `admit()` says so: it is asked before anything in the table
    /// changes (no slot taken, nothing evicted or retired), and `None` is
    /// returned when it refuses. A banned host must not push live flows out.
    #[inline]
    pub fn lookup_admitted(
        &mut self,
        key: &FlowKey,
        src_is_lo: bool,
        hash: u64,
        now_ns: u64,
        mut on_retire: impl FnMut(&Flow, Retired),
        admit: impl FnOnce() -> bool,
    ) -> Option<(&mut Flow, Direction, bool)> {
        let timeout = self.timeout(key.proto);
        let (tcp_timeout, udp_timeout) = (self.tcp_timeout_ns, self.udp_timeout_ns);
        let b = hash as usize & self.bucket_mask;
        let tag = tag_of(hash);
        let now_tick = seen_tick(now_ns);
        let meta = &mut self.meta[b];
        let bucket = &mut self.slots[b * WAYS..(b + 1) * WAYS];

        // Only a slot whose tag matches is read (a false match: 1 in 2^31).
        let found = (0..WAYS).find(|&i| meta.tags[i] == tag && bucket[i].flow.key == *key);

        let live = found.filter(|&i| now_ns.saturating_sub(bucket[i].flow.last_seen_ns) <= timeout);
        if live.is_none() && !admit() {
            return None;
        }
        let (idx, fresh) = match found {
            Some(i) if live.is_some() => (i, false),
            Some(i) => {
                // Same 5-tuple after the idle timeout: a new flow.
                on_retire(&bucket[i].flow, Retired::Expired);
                self.stats.expired += 1;
                self.active -= 1;
                (i, true)
            }
            None => match meta.tags.iter().position(|&t| t == 0) {
                Some(i) => (i, true),
                None => {
                    // Every slot live: the one seen longest ago leaves.
                    let oldest = (0..WAYS)
                        .max_by_key(|&i| now_tick.wrapping_sub(meta.seen[i]))
                        .unwrap_or(0);
                    let victim = &bucket[oldest].flow;
                    let victim_timeout = if victim.key.proto == Transport::Tcp {
                        tcp_timeout
                    } else {
                        udp_timeout
                    };
                    let expired = now_ns.saturating_sub(victim.last_seen_ns) > victim_timeout;
                    on_retire(
                        victim,
                        if expired {
                            Retired::Expired
                        } else {
                            Retired::Evicted
                        },
                    );
                    if expired {
                        self.stats.expired += 1;
                    } else {
                        self.stats.evicted += 1;
                    }
                    self.active -= 1;
                    (oldest, true)
                }
            },
        };

        meta.seen[idx] = now_tick;
        let flow = &mut bucket[idx].flow;
        if fresh {
            // A fresh flow in this slot; reset in place (no allocation).
            meta.tags[idx] = tag;
            flow.key = *key;
            flow.lo_is_originator = src_is_lo;
            flow.first_seen_ns = now_ns;
            flow.dirs = Default::default();
            flow.verdict = FlowVerdict::Pending;
            // The retired flow's pool entry, if any, went back in `on_retire`.
            flow.dpi = DpiRef::NONE;
            flow.decided_at_packet = 0;
            flow.detection = None;
            flow.ban_checked = BanStamp::NEVER;
            self.active += 1;
            self.stats.created += 1;
        }
        flow.last_seen_ns = now_ns;
        let dir = flow.direction(src_is_lo);
        Some((flow, dir, fresh))
    }

    /// Every live flow, for reports at the end of an offline run.
    pub fn iter(&self) -> impl Iterator<Item = &Flow> {
        self.meta
            .iter()
            .zip(self.slots.chunks_exact(WAYS))
            .flat_map(|(meta, bucket)| {
                meta.tags
                    .iter()
                    .zip(bucket)
                    .filter(|(&tag, _)| tag != 0)
                    .map(|(_, slot)| &slot.flow)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint::new(IpAddr::from([10, 0, 0, last]), port)
    }

    fn table(cap: usize) -> FlowTable {
        FlowTable::new(cap, 300 * SEC, 60 * SEC, 42)
    }

    #[test]
    fn both_directions_share_one_entry() {
        let mut t = table(64);
        let (f, d, _) = t.lookup(Transport::Tcp, ep(2, 5000), ep(1, 80), 0, |_, _| {});
        assert_eq!(d, Direction::Originator);
        f.dirs[0].packets += 1;
        let (f, d, _) = t.lookup(Transport::Tcp, ep(1, 80), ep(2, 5000), SEC, |_, _| {});
        assert_eq!(d, Direction::Responder);
        assert_eq!(f.dirs[0].packets, 1);
        assert_eq!(f.endpoints(), (ep(2, 5000), ep(1, 80)));
        assert_eq!(t.active(), 1);
        assert_eq!(t.stats().created, 1);
    }

    /// The lookahead's two addresses are the ones the lookup then reads: the
    /// bucket's metadata line, and the slot of the flow it returns.
    #[test]
    fn lookahead_lines_are_the_lookups_lines() {
        let mut t = table(1024);
        for port in 0..300u16 {
            let (key, lo) = FlowKey::of(Transport::Tcp, ep(1, 1000 + port), ep(2, 80));
            let hash = t.hash(&key);
            assert_eq!(t.slot_line(hash), None, "a new flow has no slot yet");
            let flow = std::ptr::from_ref(t.lookup_hashed(&key, lo, hash, 0, |_, _| {}).0);
            assert_eq!(t.slot_line(hash), Some(flow.cast::<u8>()));
            let meta = std::ptr::from_ref(&t.meta[hash as usize & t.bucket_mask]);
            assert_eq!(t.bucket_line(hash), meta.cast::<u8>());
        }
        assert_eq!(t.live_bytes(), 300 * std::mem::size_of::<Slot>());
    }

    /// Two cache lines a flow: in the first, all a packet of a known flow
    /// reads or writes (key, last seen, ban stamp, pool ref, verdict); in
    /// the second, what only offline reports read.
    #[test]
    fn hot_fields_share_the_first_cache_line() {
        assert_eq!(SLOT_BYTES, 128);
        assert_eq!(std::mem::size_of::<FlowKey>(), 40);
        assert_eq!(std::mem::size_of::<Flow>(), 112);
        assert_eq!(std::mem::offset_of!(Flow, last_seen_ns), 40);
        assert_eq!(std::mem::offset_of!(Flow, ban_checked), 48);
        assert_eq!(std::mem::offset_of!(Flow, dpi), 56);
        assert_eq!(std::mem::offset_of!(Flow, verdict), 61);
        assert_eq!(std::mem::offset_of!(Flow, detection), 62);
        // What only offline reports read starts the second line.
        assert_eq!(std::mem::offset_of!(Flow, dirs), HOT_BYTES);
        assert_eq!(META_BYTES_PER_SLOT, 8);
    }

    /// A refused flow changes nothing: no slot taken, no live flow evicted
    /// from a full bucket, no expired one retired; an admitted one is as
    /// `lookup` would make it.
    #[test]
    fn a_refused_flow_leaves_the_table_as_it_was() {
        let mut t = table(8); // one bucket
        let mut retired = 0;
        for port in 0..8 {
            t.lookup(Transport::Tcp, ep(1, port), ep(2, 80), 0, |_, _| {
                retired += 1
            });
        }
        let refuse = |t: &mut FlowTable, src: Endpoint, now_ns, retired: &mut u32| {
            let (key, src_is_lo) = FlowKey::of(Transport::Tcp, src, ep(2, 80));
            let hash = t.hash(&key);
            t.lookup_admitted(
                &key,
                src_is_lo,
                hash,
                now_ns,
                |_, _| *retired += 1,
                || false,
            )
            .is_none()
        };
        assert!(refuse(&mut t, ep(3, 9), SEC, &mut retired));
        // Port 0's flow, idle past the TCP timeout, is not retired either.
        assert!(refuse(&mut t, ep(1, 0), 400 * SEC, &mut retired));
        assert_eq!(
            (t.active(), t.stats(), retired),
            (
                8,
                FlowTableStats {
                    created: 8,
                    expired: 0,
                    evicted: 0
                },
                0
            )
        );
        // A live flow is found whatever `admit` would say, and not asked.
        let (key, src_is_lo) = FlowKey::of(Transport::Tcp, ep(1, 5), ep(2, 80));
        let hash = t.hash(&key);
        let found = t.lookup_admitted(&key, src_is_lo, hash, SEC, |_, _| {}, || unreachable!());
        assert!(found.is_some_and(|(_, _, created)| !created));
        assert_eq!(BanStamp::of_generation(0), BanStamp::of_generation(0));
        assert_ne!(BanStamp::of_generation(0), BanStamp::NEVER);
        assert_ne!(BanStamp::of_generation(1), BanStamp::of_generation(0));
    }

    #[test]
    fn protocols_are_distinct_flows() {
        let mut t = table(64);
        t.lookup(Transport::Tcp, ep(1, 1), ep(2, 2), 0, |_, _| {});
        t.lookup(Transport::Udp, ep(1, 1), ep(2, 2), 0, |_, _| {});
        assert_eq!(t.active(), 2);
    }

    #[test]
    fn idle_timeout_depends_on_protocol() {
        let mut t = table(64);
        let mut retired = Vec::new();
        t.lookup(Transport::Udp, ep(1, 1), ep(2, 2), 0, |_, _| {})
            .0
            .dirs[0]
            .packets = 7;
        // 61 s later a UDP packet of the same 5-tuple starts a new flow.
        let (f, _, _) = t.lookup(Transport::Udp, ep(2, 2), ep(1, 1), 61 * SEC, |f, why| {
            retired.push((f.dirs[0].packets, why))
        });
        assert_eq!(f.dirs[0].packets, 0);
        assert_eq!(retired, vec![(7, Retired::Expired)]);
        // ...and the new flow's originator is the sender of that packet.
        assert_eq!(
            t.lookup(Transport::Udp, ep(2, 2), ep(1, 1), 62 * SEC, |_, _| {})
                .1,
            Direction::Originator
        );
        // TCP survives 61 s of silence.
        t.lookup(Transport::Tcp, ep(1, 1), ep(2, 2), 0, |_, _| {})
            .0
            .dirs[0]
            .packets = 3;
        assert_eq!(
            t.lookup(Transport::Tcp, ep(1, 1), ep(2, 2), 61 * SEC, |_, _| {})
                .0
                .dirs[0]
                .packets,
            3
        );
        assert_eq!(t.stats().expired, 1);
    }

    #[test]
    fn a_full_bucket_evicts_its_least_recently_seen_flow() {
        // One bucket: capacity WAYS.
        let mut t = table(WAYS);
        assert_eq!(t.capacity(), WAYS);
        for i in 0..WAYS as u16 {
            t.lookup(
                Transport::Tcp,
                ep(1, 1000 + i),
                ep(2, 80),
                u64::from(i) * SEC,
                |_, _| {},
            );
        }
        // Touch the first flow so the second one is now the oldest.
        t.lookup(Transport::Tcp, ep(1, 1000), ep(2, 80), 100 * SEC, |_, _| {});
        let mut evicted = Vec::new();
        t.lookup(
            Transport::Tcp,
            ep(1, 2000),
            ep(2, 80),
            101 * SEC,
            |f, why| evicted.push((f.endpoints().0.port, why)),
        );
        assert_eq!(evicted, vec![(1001, Retired::Evicted)]);
        assert_eq!(t.stats().evicted, 1);
        assert_eq!(t.active(), WAYS);
        assert_eq!(t.iter().count(), WAYS);
    }

    /// 65,536 clients of one server, v4 and v6, over 8,192 buckets: a hash
    /// that ignored some address bits would leave buckets empty and pile
    /// flows into others (at a mean of 8, a uniform spread leaves ~3 empty
    /// and none above 25).
    #[test]
    fn sequential_clients_spread_over_the_buckets() {
        for v6 in [false, true] {
            let t = FlowTable::new(8192 * WAYS, 1, 1, 0);
            let mut load = vec![0u32; 8192];
            for i in 0..65_536u32 {
                let client = if v6 {
                    IpAddr::from(std::net::Ipv6Addr::from(
                        0x2001_0db8_u128 << 96 | u128::from(i),
                    ))
                } else {
                    IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 | i))
                };
                let (key, _) = FlowKey::of(
                    Transport::Tcp,
                    Endpoint::new(client, 51_413),
                    Endpoint::new(IpAddr::from([198, 51, 100, 1]), 443),
                );
                load[t.hash(&key) as usize & t.bucket_mask] += 1;
            }
            let empty = load.iter().filter(|&&n| n == 0).count();
            let max = load.iter().max().copied().unwrap_or(0);
            assert!(
                empty <= 20 && max <= 25,
                "v6={v6}: {empty} empty buckets, fullest {max}"
            );
        }
    }

    #[test]
    fn endpoints_order_as_their_address_bytes_then_port() {
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap();
        let mut eps: Vec<Endpoint> = [
            ("2001:db8::1", 80),
            ("::ffff:10.0.0.2", 1),
            ("2001:db8::1", 79),
            ("fe80::1", 0),
            ("::ffff:9.255.255.255", 65535),
            ("::1", 5),
        ]
        .iter()
        .map(|&(a, port)| Endpoint::new(IpAddr::V6(v6(a)), port))
        .collect();
        let mut by_bytes = eps.clone();
        by_bytes.sort_by_key(|e| match e.ip() {
            IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), e.port),
            IpAddr::V6(v6) => (v6.octets(), e.port),
        });
        eps.sort();
        assert_eq!(eps, by_bytes);
        assert_eq!(eps[0].ip(), "::1".parse::<IpAddr>().unwrap());
        assert_eq!(eps[1].ip(), "9.255.255.255".parse::<IpAddr>().unwrap());
        assert_eq!(eps[2].ip(), "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((eps[3].port, eps[4].port), (79, 80));
    }

    #[test]
    fn endpoint_round_trips_v4_and_v6() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(Endpoint::new(v4, 1).ip(), v4);
        assert_eq!(Endpoint::new(v6, 1).ip(), v6);
    }
}
