//! The worker loop: rx_burst → pipeline → tx_burst, on every port this worker
//! serves, until told to stop. Fits on one screen on purpose.
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use super::mbuf::{MbufArray, MAX_BURST};
use super::{tsc, tsc_hz};
use crate::config::Mode;
use crate::pipeline::{Pipeline, Verdict};

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
}

pub struct WorkerPlan {
    pub polls: Vec<Poll>,
    pub burst: u16,
}

pub fn run(plan: WorkerPlan, mut pipeline: Pipeline, stop: Arc<AtomicBool>) -> i32 {
    let mut rx = MbufArray::new();
    let mut tx = MbufArray::new();
    let mut drop = MbufArray::new();
    let mut tx_len = [0u32; MAX_BURST];
    let burst = plan.burst.min(MAX_BURST as u16);
    let inline = pipeline.mode() == Mode::Inline;
    let hz = u128::from(tsc_hz().max(1));

    while !stop.load(Relaxed) {
        for p in &plan.polls {
            let n = rx.rx_burst(p.port_id, p.rx_queue, burst);
            if n == 0 {
                pipeline.counters().empty_polls.inc();
                continue;
            }
            // One clock read per burst: flow timeouts need no finer grain.
            let now_ns = (u128::from(tsc()) * 1_000_000_000 / hz) as u64;
            for i in 0..n {
                let len = rx.pkt_len(i);
                match pipeline.process(p.port_index, rx.frame(i), len, now_ns) {
                    Verdict::Forward if inline => {
                        tx_len[tx.len()] = len;
                        tx.push_from(&rx, i);
                    }
                    Verdict::Forward => drop.push_from(&rx, i),
                    Verdict::Drop => {
                        pipeline.counters().ports[p.port_index].dropped.inc();
                        drop.push_from(&rx, i);
                    }
                }
            }
            rx.clear(); // every mbuf moved to `tx` or `drop`

            if !tx.is_empty() {
                let sent = tx.tx_burst(p.tx_port_id, p.tx_queue);
                let out = &pipeline.counters().ports[p.tx_port_index];
                out.tx_packets.add(sent as u64);
                out.tx_bytes
                    .add(tx_len[..sent].iter().map(|&l| u64::from(l)).sum());
                out.tx_failed.add((tx.len() - sent) as u64);
                tx.free_from(sent);
            }
            drop.free_from(0);
        }
    }
    0
}
