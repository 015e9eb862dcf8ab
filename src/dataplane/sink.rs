//! Where a worker's pipeline reports what it found. The DPDK workers push
//! each detection onto their own SPSC ring to the control lcore
//! ([`RingSink`]); `analyze` and the tests record them; the bench keeps
//! nothing. Called on the hot path: a sink never blocks and never allocates.
use std::sync::Arc;

use super::counters::WorkerCounters;
use super::flow::{Flow, Retired};
use super::pipeline::FlowDetection;
use crate::ban::{BanKey, EventProducer, HostDetection};
use crate::dpi::FlowDpiState;

/// Where the pipeline reports what it found. The DPDK workers count; `analyze`
/// records. Called on the hot path: implementations must not block.
pub trait EventSink {
    fn detection(&mut self, event: &FlowDetection);
    /// DPI just decided `flow` (clean or BitTorrent; its verdict is set);
    /// `dpi` is its state, about to go back to the pool. Offline reports
    /// read the reason chain here (`FlowDpiState::reasons`); the workers'
    /// sinks ignore it, at no cost.
    fn flow_decided(&mut self, _flow: &Flow, _dpi: &FlowDpiState) {}
    /// A live flow left the flow table (idle timeout or eviction), with its
    /// DPI state if it was still undecided and inspected.
    fn flow_retired(&mut self, _flow: &Flow, _why: Retired, _dpi: Option<&FlowDpiState>) {}
}

/// A sink that keeps nothing (detections are still counted).
pub struct NoEvents;

impl EventSink for NoEvents {
    fn detection(&mut self, _event: &FlowDetection) {}
}

/// The DPDK workers' sink: each detection becomes a fixed-size event on this
/// worker's own SPSC ring to the control lcore. A full ring drops the event and
/// counts it (the ring's producer counts); the worker never waits.
pub struct RingSink {
    producer: EventProducer,
    counters: Arc<WorkerCounters>,
}

impl RingSink {
    pub fn new(producer: EventProducer, counters: Arc<WorkerCounters>) -> Self {
        RingSink { producer, counters }
    }
}

impl EventSink for RingSink {
    #[inline]
    fn detection(&mut self, e: &FlowDetection) {
        // The subscriber ("host") is the deciding packet's source if it came in
        // on an inside port, else its destination.
        let other = if e.deciding_src == e.originator {
            e.responder
        } else {
            e.originator
        };
        let (host, peer) = if e.deciding_src_inside {
            (e.deciding_src, other)
        } else {
            (other, e.deciding_src)
        };
        let event = HostDetection {
            host: BanKey::from(host.ip()),
            peer: BanKey::from(peer.ip()),
            host_port: host.port,
            peer_port: peer.port,
            proto: e.proto,
            port: e.port,
            detector: e.detection.detector,
            confidence: e.detection.confidence,
            reasons: e.reasons,
            at_ms: e.unix_ms,
            payload: e.payload,
        };
        if self.producer.push(event) {
            self.counters.bans.events_sent.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ban::{event_ring, PayloadPrefix};
    use crate::dataplane::flow::Endpoint;
    use crate::dpi::{Confidence, Detection, DetectorId, Reason, Reasons};
    use crate::wire::Transport;
    use std::net::{IpAddr, Ipv4Addr};

    /// The ring event names the subscriber as host and carries the lead
    /// detector and the whole reason chain.
    #[test]
    fn ring_events_carry_the_detector_and_the_reason_chain() {
        let (producer, mut consumer) = event_ring(4);
        let mut sink = RingSink::new(producer, Arc::default());
        let sub = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
        let peer = Endpoint::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 51413);
        let mut reasons = Reasons::NONE;
        reasons.add_detector(DetectorId::Mse);
        reasons.add(Reason::MseEnvelope);
        reasons.add(Reason::HostFanOut);
        // The peer's packet, arriving on an outside port, decided the flow.
        sink.detection(&FlowDetection {
            proto: Transport::Tcp,
            originator: sub,
            responder: peer,
            detection: Detection {
                detector: DetectorId::Mse,
                confidence: Confidence::Strong,
            },
            reasons,
            packet_index: 3,
            ts_ns: 0,
            unix_ms: 1_000,
            deciding_src: peer,
            deciding_src_inside: false,
            port: 1,
            payload: PayloadPrefix::EMPTY,
        });
        let e = consumer.pop().expect("one event");
        assert_eq!(e.host, BanKey::from(sub.ip()));
        assert_eq!((e.host_port, e.peer_port), (40000, 51413));
        assert_eq!(e.detector, DetectorId::Mse);
        assert_eq!(
            e.reasons.names().collect::<Vec<_>>(),
            ["mse", "mse_envelope", "host_fan_out"]
        );
        assert_eq!(sink.counters.bans.events_sent.get(), 1);
    }
}
