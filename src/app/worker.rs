//! The worker loop: rx_burst → pipeline → tx_burst, on every port this worker
//! serves, until told to stop. Fits on one screen on purpose.
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use crate::ban::SnapshotReader;
use crate::config::Mode;
use crate::dataplane::counters::WorkerCounters;
use crate::dataplane::stage_timing::{Lap, Stage};
use crate::dataplane::{Burst, Pipeline, RingSink, Verdict};
use crate::dpdk::{prefetch, tsc, tsc_hz, MbufArray, MAX_BURST};

/// One RX queue this worker polls and where its packets go.
#[derive(Clone, Copy, Debug)]
pub struct Poll {
    pub port_index: usize,
    pub port_id: u16,
    pub rx_queue: u16,
    /// The peer port (inline mode sends there) and this worker's TX queue on it.
    pub tx_port_index: usize,
    pub tx_port_id: u16,
    pub tx_queue: u16,
    /// The port delivers the NIC's symmetric, full-entropy hash with each
    /// packet (`dpdk::port::FlowHash::Nic`).
    pub nic_hash: bool,
}

/// Whether a worker indexes its flow table with the NIC's hash: only if every
/// port it polls delivers that hash, since in inline mode a flow's two
/// directions arrive on two ports and both must be hashed alike. A packet
/// that comes without one (no `RTE_MBUF_F_RX_RSS_HASH`) takes the software
/// hash (`Pipeline::process_hashed` with `None`).
pub fn indexes_with_nic_hash(polls: &[Poll]) -> bool {
    !polls.is_empty() && polls.iter().all(|p| p.nic_hash)
}

pub struct WorkerPlan {
    pub polls: Vec<Poll>,
    pub burst: u16,
    pub bans: SnapshotReader,
    pub clock: Clock,
}

/// Wall-clock time from the TSC: the unix time at a known TSC value, so a
/// worker reads time without a syscall.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub base_tsc: u64,
    pub base_unix_ms: u64,
    pub hz: u64,
}

impl Clock {
    pub fn now() -> Clock {
        Clock {
            base_tsc: tsc(),
            base_unix_ms: crate::clock::unix_now_ms(),
            hz: tsc_hz().max(1),
        }
    }

    /// (monotonic ns, unix ms) at TSC value `t`.
    #[inline(always)]
    fn at(&self, t: u64) -> (u64, u64) {
        let ticks = u128::from(t.wrapping_sub(self.base_tsc));
        let hz = u128::from(self.hz);
        let ns = (ticks * 1_000_000_000 / hz) as u64;
        (ns, self.base_unix_ms + ns / 1_000_000)
    }
}

/// How many packets ahead of the one in the pipeline its data is prefetched:
/// enough to cover a memory access at ~40-150 ns per packet.
const PREFETCH_AHEAD: usize = 4;

pub fn run(plan: WorkerPlan, mut pipeline: Pipeline<RingSink>, stop: Arc<AtomicBool>) -> i32 {
    let mut rx = MbufArray::new();
    let mut tx = MbufArray::new();
    let mut drop = MbufArray::new();
    let mut tx_len = [0u32; MAX_BURST];
    let nic_hash = indexes_with_nic_hash(&plan.polls);
    let mut lookahead = FlowLookahead::new(nic_hash);
    let burst = plan.burst.min(MAX_BURST as u16);
    let inline = pipeline.mode() == Mode::Inline;

    while !stop.load(Relaxed) {
        for p in &plan.polls {
            let n = rx.rx_burst(p.port_id, p.rx_queue, burst);
            if n == 0 {
                pipeline.counters().empty_polls.inc();
                continue;
            }
            // One clock read, one snapshot load and one settings load per
            // burst: timeouts need no finer grain, and a ban published or a
            // reload made mid-burst applies from the next.
            let (now_ns, unix_ms) = plan.clock.at(tsc());
            pipeline.start_burst();
            let snapshot = plan.bans.load();
            let ctx = Burst {
                now_ns,
                unix_ms,
                bans: Some(&snapshot),
            };
            // Headers of the whole burst, then each packet's data a few packets
            // ahead: the pipeline's first loads (length, Ethernet header) hit;
            // with a flow table larger than the caches, its flows too.
            let ahead = lookahead.decide(&pipeline);
            rx.prefetch_first(n, ahead);
            lookahead.run(&pipeline, &rx, n);
            // Each packet leaves `rx` (its front is packet i) for `tx` or `drop`.
            for _ in 0..n {
                rx.prefetch_ahead(0, ahead);
                let Some(m) = rx.pop_front() else { break };
                let len = m.pkt_len();
                let hash = if nic_hash { m.rss_hash() } else { None };
                match pipeline.process_hashed(p.port_index, m.frame(), len, hash, &ctx) {
                    Verdict::Forward if inline => {
                        tx_len[tx.len()] = len;
                        tx.push(m);
                    }
                    Verdict::Forward => drop.push(m),
                    Verdict::Drop => {
                        pipeline.counters().ports[p.port_index].dropped.inc();
                        drop.push(m);
                    }
                }
            }

            let mut lap = Lap::start();
            if !tx.is_empty() {
                let sent = tx.tx_burst(p.tx_port_id, p.tx_queue);
                let out = &pipeline.counters().ports[p.tx_port_index];
                out.tx_packets.add(sent as u64);
                out.tx_bytes
                    .add(tx_len[..sent].iter().map(|&l| u64::from(l)).sum());
                // What the driver did not take is still in `tx`.
                out.tx_failed.add(tx.len() as u64);
                tx.free_all();
            }
            drop.free_all();
            lap.lap(&pipeline.counters().stages, Stage::TxBurst);
        }
    }
    0
}

/// Two-step flow lookahead over a burst, used only while the flow table
/// outgrows the caches ([`Pipeline::wants_flow_lookahead`]). Before the
/// burst's first packet, in two phases: every packet is parsed and hashed
/// and its bucket line prefetched; then, those lines arriving, every
/// packet's slot is. The lookups then find both. Prefetches only: what the
/// pipeline decides is unchanged.
///
/// Whole phases rather than a few packets ahead: the DRAM lines of a whole
/// burst (two steps, each 32 independent misses) are in flight together,
/// where a lookahead of four packets kept a few in flight and left the
/// burst's first packets waiting (BENCHMARKS.md, "a burst at a time").
struct FlowLookahead {
    on: bool,
    /// Step 1 takes the NIC's hash from the mbuf instead of parsing.
    nic_hash: bool,
    hashes: [Option<u64>; MAX_BURST],
}

impl FlowLookahead {
    fn new(nic_hash: bool) -> Self {
        FlowLookahead {
            on: false,
            nic_hash,
            hashes: [None; MAX_BURST],
        }
    }

    /// Step 1 for packet `i` of `rx` (relative to its front).
    #[inline(always)]
    fn bucket(&self, pipeline: &Pipeline<RingSink>, rx: &MbufArray, i: usize) -> Option<u64> {
        let hash = if self.nic_hash { rx.rss_hash(i) } else { None };
        pipeline.flow_lookahead_bucket(rx.frame(i), hash, prefetch)
    }

    /// Decides for this burst. Returns how far ahead packet data must be
    /// prefetched: the whole burst when step 1 parses it.
    #[inline(always)]
    fn decide(&mut self, pipeline: &Pipeline<RingSink>) -> usize {
        self.on = pipeline.wants_flow_lookahead();
        if self.on {
            MAX_BURST
        } else {
            PREFETCH_AHEAD
        }
    }

    /// Both steps for the `n` packets of `rx`, one phase after the other
    /// (their headers and data already prefetched).
    #[inline(always)]
    fn run(&mut self, pipeline: &Pipeline<RingSink>, rx: &MbufArray, n: usize) {
        if !self.on {
            return;
        }
        pipeline.counters().flows.lookahead_bursts.inc();
        for i in 0..n {
            self.hashes[i] = self.bucket(pipeline, rx, i);
        }
        for hash in self.hashes[..n].iter().flatten() {
            pipeline.flow_lookahead_slot(*hash, prefetch);
        }
    }
}

/// The I/O floor for the pipeline bench: the same polling and TX as `run`, with
/// the pipeline switched off (every packet forwarded as received, rx counted).
/// With `read_headers`, each packet's length and Ethernet header are read
/// first, with `run`'s prefetching: the floor of any forwarder that looks at
/// its packets (as DPDK's l2fwd does), which a ring PMD alone never pays.
pub fn run_bare(
    plan: WorkerPlan,
    counters: &WorkerCounters,
    stop: Arc<AtomicBool>,
    read_headers: bool,
) -> i32 {
    let mut rx = MbufArray::new();
    let burst = plan.burst.min(MAX_BURST as u16);
    while !stop.load(Relaxed) {
        for p in &plan.polls {
            let n = rx.rx_burst(p.port_id, p.rx_queue, burst);
            if n == 0 {
                counters.empty_polls.inc();
                continue;
            }
            counters.ports[p.port_index].rx_packets.add(n as u64);
            if read_headers {
                read_ethernet_headers(&rx, n, counters, p.port_index);
            }
            let sent = rx.tx_burst(p.tx_port_id, p.tx_queue);
            let out = &counters.ports[p.tx_port_index];
            out.tx_packets.add(sent as u64);
            out.tx_failed.add((n - sent) as u64);
            rx.free_all(); // what the driver did not take
        }
    }
    0
}

/// Reads each packet's length and its Ethernet destination, source and type
/// (the 14 bytes every forwarder reads), prefetched as `run` does.
#[inline(always)]
fn read_ethernet_headers(rx: &MbufArray, n: usize, counters: &WorkerCounters, port: usize) {
    rx.prefetch_first(n, PREFETCH_AHEAD);
    let mut bytes = 0u64;
    let mut fold = 0u64;
    for i in 0..n {
        rx.prefetch_ahead(i, PREFETCH_AHEAD);
        bytes += u64::from(rx.pkt_len(i));
        if let Some(eth) = rx.frame(i).get(..14) {
            fold ^= eth
                .iter()
                .fold(0u64, |h, &b| h.rotate_left(8) ^ u64::from(b));
        }
    }
    counters.ports[port].rx_bytes.add(bytes);
    std::hint::black_box(fold);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(port_index: usize, nic_hash: bool) -> Poll {
        Poll {
            port_index,
            port_id: port_index as u16,
            rx_queue: 0,
            tx_port_index: 1 - port_index,
            tx_port_id: 1 - port_index as u16,
            tx_queue: 0,
            nic_hash,
        }
    }

    #[test]
    fn the_nic_hash_indexes_flows_only_if_every_polled_port_delivers_it() {
        assert!(indexes_with_nic_hash(&[poll(0, true), poll(1, true)]));
        assert!(!indexes_with_nic_hash(&[poll(0, true), poll(1, false)]));
        assert!(!indexes_with_nic_hash(&[poll(0, false), poll(1, true)]));
        assert!(indexes_with_nic_hash(&[poll(0, true)]));
        assert!(!indexes_with_nic_hash(&[]));
    }
}
