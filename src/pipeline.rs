//! The per-packet pipeline a worker runs on each burst:
//! parse → ban check → DPI → verdict. It is generic over "a frame as bytes", so
//! the DPDK workers, the offline `analyze` command and the tests run the same code.
use std::sync::Arc;

use crate::config::Mode;
use crate::stats::WorkerCounters;
use crate::wire::{self, Fragment, Parsed, L4};

/// What happens to a packet after the pipeline has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    Drop,
}

/// One worker's pipeline state. Owned by exactly one worker; never shared.
pub struct Pipeline {
    counters: Arc<WorkerCounters>,
    mode: Mode,
}

impl Pipeline {
    pub fn new(counters: Arc<WorkerCounters>, mode: Mode) -> Self {
        Pipeline { counters, mode }
    }

    pub fn counters(&self) -> &WorkerCounters {
        &self.counters
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Runs one received frame through the stages and says what to do with it.
    /// `port` is the index of the port it arrived on.
    #[inline]
    pub fn process(&mut self, port: usize, frame: &[u8]) -> Verdict {
        let pc = &self.counters.ports[port];
        pc.rx_packets.inc();
        pc.rx_bytes.add(frame.len() as u64);

        let parsed = match wire::parse_ethernet(frame) {
            Ok(p) => p,
            Err(e) => {
                // Malformed frames are counted and forwarded: we are a bump in
                // the wire, not a firewall for broken packets.
                self.counters.parse.errors[e.index()].inc();
                return Verdict::Forward;
            }
        };
        self.count_parsed(&parsed);
        // Ban check and DPI plug in here (issues 3 and 4).
        Verdict::Forward
    }

    fn count_parsed(&self, parsed: &Parsed<'_>) {
        let c = &self.counters.parse;
        let packet = match parsed {
            Parsed::NonIp { .. } => {
                c.non_ip.inc();
                return;
            }
            Parsed::Ip(p) => p,
        };
        if packet.vlan_tags > 0 {
            c.vlan.inc();
        }
        if packet.src.is_ipv4() {
            c.ipv4.inc();
        } else {
            c.ipv6.inc();
        }
        if packet.fragment != Fragment::None {
            c.fragments.inc();
        }
        match packet.l4 {
            L4::Tcp { .. } => c.tcp.inc(),
            L4::Udp { .. } => c.udp.inc(),
            L4::Other { .. } => c.other_l4.inc(),
        }
    }
}
