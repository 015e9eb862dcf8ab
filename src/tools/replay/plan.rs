//! What `replay` sends: every frame of the captures, in order, each with the
//! port it goes into (by its source address) and the queue (by a symmetric
//! hash of its flow). Built once before EAL starts; the send loop only reads it.
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::ban::{BanKey, Cidr};
use crate::tools::capture::{self, CaptureError};
use crate::wire::{parse_ethernet, Parsed, L4};
use rustc_hash::FxHashMap;

/// The largest frame sent: a 1500-byte MTU, the Ethernet header and one VLAN
/// tag. Larger frames (captured after GRO/TSO) would not fit a default virtio
/// port; they are skipped and counted.
pub const MAX_FRAME: usize = 1518;

/// The pcap link type of Ethernet, the only one a virtio port carries.
const DLT_EN10MB: u32 = 1;

/// The two ports of the generator, named after the btblocker port they face.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Inside,
    Outside,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Inside, Side::Outside];

    pub fn index(self) -> usize {
        match self {
            Side::Inside => 0,
            Side::Outside => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Inside => "inside",
            Side::Outside => "outside",
        }
    }

    /// Where a packet sent into this side comes back out of btblocker.
    pub fn peer(self) -> Side {
        match self {
            Side::Inside => Side::Outside,
            Side::Outside => Side::Inside,
        }
    }
}

/// The subscribers' address space: RFC 1918, CGNAT (RFC 6598), ULA (RFC 4193).
pub const DEFAULT_INSIDE: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];

/// Which addresses are inside.
#[derive(Clone, Debug)]
pub struct Sides {
    inside: Vec<Cidr>,
}

impl Sides {
    pub fn new(inside: Vec<Cidr>) -> Sides {
        Sides { inside }
    }

    pub fn default_inside() -> Sides {
        let cidrs = DEFAULT_INSIDE
            .iter()
            .map(|c| c.parse().expect("the default CIDRs are valid"))
            .collect();
        Sides { inside: cidrs }
    }

    pub fn is_inside(&self, ip: IpAddr) -> bool {
        let key = BanKey::from(ip);
        self.inside.iter().any(|c| c.contains(&key))
    }

    /// An IP packet whose source is inside goes into the inside port; anything
    /// else (an outside source, ARP, a frame that does not parse) goes outside.
    pub fn side_of(&self, frame: &[u8]) -> Side {
        match parse_ethernet(frame) {
            Ok(Parsed::Ip(p)) if self.is_inside(p.src_ip()) => Side::Inside,
            _ => Side::Outside,
        }
    }
}

/// A flow, direction-free: the protocol and its two endpoints in sorted order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowId {
    proto: u8,
    lo: (u128, u16),
    hi: (u128, u16),
}

/// The flow of an IP frame; `None` for anything else.
pub fn flow_of(frame: &[u8]) -> Option<FlowId> {
    let Ok(Parsed::Ip(p)) = parse_ethernet(frame) else {
        return None;
    };
    let (sport, dport) = match p.l4 {
        L4::Tcp {
            src_port, dst_port, ..
        }
        | L4::Udp {
            src_port, dst_port, ..
        } => (src_port, dst_port),
        L4::Other { .. } => (0, 0),
    };
    let a = (p.src.to_u128(), sport);
    let b = (p.dst.to_u128(), dport);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Some(FlowId {
        proto: p.l4.protocol(),
        lo,
        hi,
    })
}

/// The TX queue of a frame among `queues`: a hash of its [`FlowId`], so both
/// directions of a flow get the same queue (virtio_user has no RSS: the vhost
/// queue a packet is sent on is the RX queue, hence the worker, it arrives
/// on). Non-IP frames use queue 0.
pub fn queue_of(frame: &[u8], queues: u16) -> u16 {
    match flow_of(frame) {
        Some(flow) if queues > 1 => queue_of_flow(&flow, queues),
        _ => 0,
    }
}

fn queue_of_flow(flow: &FlowId, queues: u16) -> u16 {
    let mut h = Fnv1a::new();
    h.write(&[flow.proto]);
    h.write(&flow.lo.0.to_be_bytes());
    h.write(&flow.lo.1.to_be_bytes());
    h.write(&flow.hi.0.to_be_bytes());
    h.write(&flow.hi.1.to_be_bytes());
    (h.finish() % u64::from(queues)) as u16
}

/// FNV-1a: tiny, stable across versions and platforms (the tests recompute
/// the queue of every packet), good enough to spread flows over a few queues.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    /// FNV's low bits mix poorly and the queue is taken modulo a small
    /// number: finish with the splitmix64 avalanche.
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// One frame to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedPacket {
    pub side: Side,
    pub queue: u16,
    /// The flow's previous packet went the other way: it must have been
    /// through btblocker before this one goes (a reply never overtakes what
    /// it replies to, whatever order btblocker polls its ports in).
    pub after_reply: bool,
    start: usize,
    len: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{path}: packet {index} has link type {dlt}; replay sends Ethernet frames only (link type 1)")]
    LinkType { path: String, index: u64, dlt: u32 },
    #[error("no packet to send in {0:?} (every frame was empty or larger than {MAX_FRAME} bytes)")]
    Empty(Vec<PathBuf>),
}

/// Every frame of the captures, in file order then capture order.
#[derive(Debug, Default)]
pub struct Plan {
    bytes: Vec<u8>,
    packets: Vec<PlannedPacket>,
    /// The side each flow's latest packet went into (while loading).
    last_side: FxHashMap<FlowId, Side>,
    /// Frames longer than [`MAX_FRAME`], not sent.
    pub skipped_oversize: u64,
    /// Zero-length frames, not sent.
    pub skipped_empty: u64,
}

impl Plan {
    pub fn load(files: &[PathBuf], sides: &Sides, queues: u16) -> Result<Plan, PlanError> {
        let mut plan = Plan::default();
        for path in files {
            plan.add_file(path, sides, queues)?;
        }
        if plan.packets.is_empty() {
            return Err(PlanError::Empty(files.to_vec()));
        }
        plan.last_side = FxHashMap::default();
        Ok(plan)
    }

    fn add_file(&mut self, path: &Path, sides: &Sides, queues: u16) -> Result<(), PlanError> {
        let mut bad_link = None;
        let mut index = 0u64;
        capture::for_each_frame(path, |frame| {
            index += 1;
            if bad_link.is_some() {
                return;
            }
            if frame.dlt != DLT_EN10MB {
                bad_link = Some((index - 1, frame.dlt));
                return;
            }
            self.push(frame.data, sides, queues);
        })?;
        match bad_link {
            Some((index, dlt)) => Err(PlanError::LinkType {
                path: path.display().to_string(),
                index,
                dlt,
            }),
            None => Ok(()),
        }
    }

    /// Adds one Ethernet frame (skipping and counting what cannot be sent).
    pub fn push(&mut self, frame: &[u8], sides: &Sides, queues: u16) {
        if frame.is_empty() {
            self.skipped_empty += 1;
            return;
        }
        if frame.len() > MAX_FRAME {
            self.skipped_oversize += 1;
            return;
        }
        let side = sides.side_of(frame);
        let flow = flow_of(frame);
        let (queue, after_reply) = match flow {
            Some(flow) => {
                let before = self.last_side.insert(flow, side);
                let queue = if queues > 1 {
                    queue_of_flow(&flow, queues)
                } else {
                    0
                };
                (queue, before.is_some_and(|b| b != side))
            }
            None => (0, false),
        };
        let start = self.bytes.len();
        self.bytes.extend_from_slice(frame);
        self.packets.push(PlannedPacket {
            side,
            queue,
            after_reply,
            start,
            len: frame.len(),
        });
    }

    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    pub fn packet(&self, i: usize) -> PlannedPacket {
        self.packets[i]
    }

    pub fn frame(&self, i: usize) -> &[u8] {
        let p = &self.packets[i];
        &self.bytes[p.start..p.start + p.len]
    }

    pub fn packets(&self) -> impl Iterator<Item = (PlannedPacket, &[u8])> {
        self.packets
            .iter()
            .map(|p| (*p, &self.bytes[p.start..p.start + p.len]))
    }

    /// Total bytes of the frames to send (one pass).
    pub fn total_bytes(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame from `src:sport` to `dst:dport`.
    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + 4];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(20u16 + 8 + 4).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let u = &mut f[34..42];
        u[0..2].copy_from_slice(&sport.to_be_bytes());
        u[2..4].copy_from_slice(&dport.to_be_bytes());
        u[4..6].copy_from_slice(&(8u16 + 4).to_be_bytes());
        f
    }

    #[test]
    fn source_address_picks_the_port() {
        let s = Sides::default_inside();
        assert_eq!(
            s.side_of(&udp([192, 168, 1, 2], 1, [8, 8, 8, 8], 53)),
            Side::Inside
        );
        assert_eq!(
            s.side_of(&udp([100, 64, 0, 1], 1, [8, 8, 8, 8], 53)),
            Side::Inside
        );
        assert_eq!(
            s.side_of(&udp([8, 8, 8, 8], 53, [192, 168, 1, 2], 1)),
            Side::Outside
        );
        // ARP and garbage have no source address: outside.
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(s.side_of(&arp), Side::Outside);
        assert_eq!(s.side_of(&[1, 2, 3]), Side::Outside);
        let custom = Sides::new(vec!["8.8.0.0/16".parse().unwrap()]);
        assert_eq!(
            custom.side_of(&udp([8, 8, 8, 8], 53, [192, 168, 1, 2], 1)),
            Side::Inside
        );
    }

    #[test]
    fn both_directions_of_a_flow_share_a_queue_and_flows_spread() {
        let mut seen = [0u32; 4];
        for i in 0..64u8 {
            let a = udp([10, 0, 0, i], 1000 + u16::from(i), [1, 2, 3, 4], 6881);
            let b = udp([1, 2, 3, 4], 6881, [10, 0, 0, i], 1000 + u16::from(i));
            let q = queue_of(&a, 4);
            assert_eq!(q, queue_of(&b, 4), "flow {i}");
            assert!(q < 4);
            seen[q as usize] += 1;
        }
        assert!(
            seen.iter().all(|&n| n > 0),
            "every queue gets flows: {seen:?}"
        );
        assert_eq!(queue_of(&udp([10, 0, 0, 1], 1, [1, 1, 1, 1], 2), 1), 0);
        assert_eq!(queue_of(&[0u8; 20], 4), 0, "non-IP: queue 0");
    }

    #[test]
    fn a_packet_after_its_flow_changed_direction_waits_for_the_reply() {
        let s = Sides::default_inside();
        let mut plan = Plan::default();
        let out = udp([10, 0, 0, 1], 1, [1, 1, 1, 1], 2);
        let back = udp([1, 1, 1, 1], 2, [10, 0, 0, 1], 1);
        let other = udp([10, 0, 0, 2], 1, [1, 1, 1, 1], 2);
        for f in [&out, &out, &other, &back, &back, &out, &other] {
            plan.push(f, &s, 1);
        }
        let marks: Vec<bool> = (0..plan.len())
            .map(|i| plan.packet(i).after_reply)
            .collect();
        assert_eq!(marks, [false, false, false, true, false, true, false]);
    }

    #[test]
    fn oversize_and_empty_frames_are_skipped_and_counted() {
        let s = Sides::default_inside();
        let mut plan = Plan::default();
        plan.push(&udp([10, 0, 0, 1], 1, [1, 1, 1, 1], 2), &s, 2);
        plan.push(&[], &s, 2);
        plan.push(&vec![0u8; MAX_FRAME + 1], &s, 2);
        plan.push(&vec![0u8; MAX_FRAME], &s, 2);
        assert_eq!(plan.len(), 2);
        assert_eq!((plan.skipped_empty, plan.skipped_oversize), (1, 1));
        assert_eq!(plan.frame(0), &udp([10, 0, 0, 1], 1, [1, 1, 1, 1], 2)[..]);
        assert_eq!(plan.packet(0).side, Side::Inside);
        assert_eq!(plan.frame(1).len(), MAX_FRAME);
        assert_eq!(plan.total_bytes(), 46 + MAX_FRAME);
    }

    #[test]
    fn loads_the_bundled_capture_and_refuses_what_is_not_a_capture() {
        let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo.pcap");
        let plan = Plan::load(&[demo.clone(), demo], &Sides::default_inside(), 2).unwrap();
        assert_eq!(plan.len() as u64 + plan.skipped_oversize, 2 * 1355);
        assert_eq!(plan.frame(0), plan.frame(plan.len() / 2));
        let toml = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let err = Plan::load(&[toml], &Sides::default_inside(), 1).unwrap_err();
        assert!(matches!(err, PlanError::Capture(_)), "{err}");
    }
}
