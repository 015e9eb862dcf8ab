//! Where a worker's pipeline reports what it found. The DPDK workers push
//! each detection onto their own SPSC ring to the control lcore
//! ([`RingSink`]); `analyze` and the tests record them; the bench keeps
//! nothing. Called on the hot path: a sink never blocks and never allocates.
use std::sync::Arc;

use super::counters::WorkerCounters;
use super::flow::{Flow, Retired};
use super::pipeline::FlowDetection;
use crate::ban::{BanKey, EventProducer, HostDetection};

/// Where the pipeline reports what it found. The DPDK workers count; `analyze`
/// records. Called on the hot path: implementations must not block.
pub trait EventSink {
    fn detection(&mut self, event: &FlowDetection);
    /// A live flow left the flow table (idle timeout or eviction).
    fn flow_retired(&mut self, _flow: &Flow, _why: Retired) {}
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
            detector: e.detection.detector.name(),
            confidence: e.detection.confidence,
            at_ms: e.unix_ms,
            payload: e.payload,
        };
        if self.producer.push(event) {
            self.counters.bans.events_sent.inc();
        }
    }
}
