//! Worker → control thread detection events: one wait-free SPSC ring per
//! worker (`rtrb`, allocated once at creation).
//!
//! A worker never waits for the control thread: when its ring is full the
//! event is dropped and counted. The drop counter is written only by the
//! producer (plain load + store, no read-modify-write) and read by the
//! control thread for the stats.
use super::event::HostDetection;
use rtrb::RingBuffer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Events a ring holds before it drops: 0.5 MiB per worker (128-byte
/// events), several hundred ms of a detection storm at the control thread's
/// drain rate.
pub const DEFAULT_RING_CAPACITY: usize = 4096;

/// Creates one worker's ring. A capacity of 0 is raised to 1.
pub fn event_ring(capacity: usize) -> (EventProducer, EventConsumer) {
    let (producer, consumer) = RingBuffer::new(capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        EventProducer {
            ring: producer,
            dropped: Arc::clone(&dropped),
        },
        EventConsumer {
            ring: consumer,
            dropped,
        },
    )
}

/// The worker's end.
pub struct EventProducer {
    ring: rtrb::Producer<HostDetection>,
    dropped: Arc<AtomicU64>,
}

impl EventProducer {
    /// Queues `event`; returns false (and counts it) if the ring is full.
    /// Never blocks, never allocates.
    #[inline]
    pub fn push(&mut self, event: HostDetection) -> bool {
        if self.ring.push(event).is_ok() {
            return true;
        }
        // Single writer: a load and a store suffice and avoid a locked RMW.
        let dropped = self.dropped.load(Ordering::Relaxed);
        self.dropped
            .store(dropped.wrapping_add(1), Ordering::Relaxed);
        false
    }

    /// Events dropped so far because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Free slots right now.
    pub fn free_slots(&self) -> usize {
        self.ring.slots()
    }
}

/// The control thread's end.
pub struct EventConsumer {
    ring: rtrb::Consumer<HostDetection>,
    dropped: Arc<AtomicU64>,
}

impl EventConsumer {
    pub fn pop(&mut self) -> Option<HostDetection> {
        self.ring.pop().ok()
    }

    /// Hands at most `max` queued events to `handle`, oldest first; returns
    /// how many. The bound keeps one busy worker from starving the others.
    pub fn drain(&mut self, max: usize, mut handle: impl FnMut(HostDetection)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(event) = self.pop() else { break };
            handle(event);
            n += 1;
        }
        n
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.ring.slots()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Events the worker dropped so far because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// True once the worker's end is gone.
    pub fn is_abandoned(&self) -> bool {
        self.ring.is_abandoned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ban::{BanKey, Confidence, PayloadPrefix};
    use crate::wire::Transport;
    use std::net::Ipv4Addr;

    fn event(i: u32) -> HostDetection {
        HostDetection {
            host: BanKey::from(Ipv4Addr::from(i)),
            peer: BanKey::from(Ipv4Addr::new(198, 51, 100, 1)),
            host_port: 6881,
            peer_port: 51413,
            proto: Transport::Udp,
            port: 0,
            detector: crate::dpi::DetectorId::PeerWireHandshake,
            reasons: crate::dpi::Reasons::NONE,
            confidence: Confidence::Strong,
            at_ms: u64::from(i),
            payload: PayloadPrefix::EMPTY,
        }
    }

    #[test]
    fn events_arrive_in_order() {
        let (mut tx, mut rx) = event_ring(8);
        for i in 0..5 {
            assert!(tx.push(event(i)));
        }
        assert_eq!(rx.len(), 5);
        for i in 0..5 {
            assert_eq!(rx.pop(), Some(event(i)));
        }
        assert_eq!(rx.pop(), None);
        assert!(rx.is_empty());
    }

    #[test]
    fn full_ring_drops_and_counts() {
        let (mut tx, mut rx) = event_ring(4);
        let accepted = (0..10).filter(|&i| tx.push(event(i))).count();
        assert_eq!(accepted, 4);
        assert_eq!(tx.dropped(), 6);
        assert_eq!(rx.dropped(), 6);
        assert_eq!(tx.free_slots(), 0);
        // The first four are kept, the rest were dropped.
        let mut got = Vec::new();
        assert_eq!(rx.drain(usize::MAX, |e| got.push(e.at_ms)), 4);
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert!(tx.push(event(99)), "room again after draining");
        assert_eq!(rx.dropped(), 6);
    }

    #[test]
    fn drain_stops_at_max() {
        let (mut tx, mut rx) = event_ring(16);
        for i in 0..10 {
            tx.push(event(i));
        }
        let mut seen = 0;
        assert_eq!(rx.drain(3, |_| seen += 1), 3);
        assert_eq!(seen, 3);
        assert_eq!(rx.len(), 7);
    }

    #[test]
    fn zero_capacity_is_raised_to_one() {
        let (mut tx, mut rx) = event_ring(0);
        assert!(tx.push(event(1)));
        assert!(!tx.push(event(2)));
        assert_eq!(rx.pop(), Some(event(1)));
    }

    #[test]
    fn consumer_sees_abandoned_producer() {
        let (tx, rx) = event_ring(2);
        assert!(!rx.is_abandoned());
        drop(tx);
        assert!(rx.is_abandoned());
    }

    #[test]
    fn works_across_threads() {
        let (mut tx, mut rx) = event_ring(64);
        let worker = std::thread::spawn(move || {
            let mut sent = 0u32;
            for i in 0..1_000 {
                if tx.push(event(i)) {
                    sent += 1;
                }
            }
            (sent, tx.dropped())
        });
        let (sent, dropped) = worker.join().unwrap();
        // Nothing was drained while the worker ran: the first 64 fit.
        assert_eq!((sent, dropped), (64, 936));
        assert_eq!(rx.dropped(), dropped);
        let mut received = 0u32;
        let mut last = None;
        rx.drain(usize::MAX, |e| {
            assert!(last < Some(e.at_ms), "in order");
            last = Some(e.at_ms);
            received += 1;
        });
        assert_eq!(received, sent);
    }
}
