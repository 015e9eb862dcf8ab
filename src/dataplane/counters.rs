//! Per-worker counters, grouped by stage. Each worker is the only writer of
//! its own block ([`Counter`]); the control lcore reads them.
pub use super::counter::Counter;
use crate::dpi::DetectorId;
use crate::wire::ParseError;

/// Ports a worker can serve; a config with more is rejected at load time.
pub const MAX_PORTS: usize = 8;

/// A port's own counters as its driver reports them (`rte_eth_stats`):
/// the control lcore reads them beside the workers' counters.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct HwPortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// What one worker did on one port.
#[derive(Debug, Default)]
pub struct PortCounters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    /// Packets the pipeline decided to drop (bans, policy).
    pub dropped: Counter,
    /// Packets the TX queue did not take (ring full): freed and counted.
    pub tx_failed: Counter,
}

/// What the parse stage saw.
#[derive(Debug, Default)]
pub struct ParseCounters {
    pub non_ip: Counter,
    pub vlan: Counter,
    pub ipv4: Counter,
    pub ipv6: Counter,
    pub tcp: Counter,
    pub udp: Counter,
    pub other_l4: Counter,
    pub fragments: Counter,
    pub errors: [Counter; ParseError::COUNT],
}

impl ParseCounters {
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().map(Counter::get).sum()
    }
}

/// What the flow table and the DPI stage did.
#[derive(Debug, Default)]
pub struct FlowCounters {
    pub created: Counter,
    pub expired: Counter,
    pub evicted: Counter,
    /// Payload packets handed to the DPI engine.
    pub inspected_packets: Counter,
    pub judged_clean: Counter,
    pub judged_bittorrent: Counter,
    /// Flows whose first payload found the worker's DPI pool empty
    /// (`flows.dpi_pool`): never inspected, they stay undecided.
    pub dpi_pool_exhausted: Counter,
    /// Bursts whose flows were looked up ahead, bucket lines then slots,
    /// before their first packet: the live flows outgrew the caches.
    pub lookahead_bursts: Counter,
    /// Flows judged BitTorrent, by the detector that decided them.
    pub by_detector: [Counter; DetectorId::COUNT],
}

impl FlowCounters {
    /// Flows in the table now (created and not yet retired).
    pub fn active(&self) -> u64 {
        self.created
            .get()
            .saturating_sub(self.expired.get() + self.evicted.get())
    }
}

/// What enforcement dropped, and the detections sent to the control lcore.
#[derive(Debug, Default)]
pub struct BanCounters {
    /// Packets from or to a banned host (`ban.action: ban_host`).
    pub dropped_banned_host: Counter,
    /// Packets of flows judged BitTorrent.
    pub dropped_bittorrent_flow: Counter,
    /// Detection events queued for the control lcore.
    pub events_sent: Counter,
}

/// One worker's counters, on their own cache lines so that two workers never
/// write the same line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    pub ports: [PortCounters; MAX_PORTS],
    pub parse: ParseCounters,
    pub flows: FlowCounters,
    pub bans: BanCounters,
    /// Receive polls that returned no packet (idle detection for finite inputs).
    pub empty_polls: Counter,
    /// Cycle histograms per stage (empty unless built with `stage-timing`).
    pub stages: crate::dataplane::stage_timing::StageHistograms,
}

/// Sum of one field over many workers.
pub fn sum<'a>(
    workers: impl IntoIterator<Item = &'a WorkerCounters>,
    f: impl Fn(&WorkerCounters) -> u64,
) -> u64 {
    workers.into_iter().map(f).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_sum() {
        let a = WorkerCounters::default();
        let b = WorkerCounters::default();
        a.ports[0].rx_packets.add(3);
        a.ports[0].rx_packets.inc();
        b.ports[0].rx_packets.add(10);
        assert_eq!(sum([&a, &b], |w| w.ports[0].rx_packets.get()), 14);
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 128);
    }
}
