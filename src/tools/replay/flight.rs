//! What is in flight through btblocker, per port and queue. A packet sent
//! into port P on queue q comes back out of P's peer on queue q (the worker
//! of queue q sends on its own TX queue), or not at all when btblocker drops
//! it; a barrier coming back settles which.
use super::plan::Side;
use super::settings::MAX_QUEUES;

#[derive(Clone, Copy, Debug, Default)]
struct Lane {
    sent: u64,
    back: u64,
    /// Known dropped: settled by a barrier.
    dropped: u64,
    /// `sent` when the outstanding barrier went (a lane is FIFO: what was
    /// sent after the barrier comes back after it).
    barrier_out: Option<u64>,
    /// Barriers back from this lane, ours or not (the warm-up counts them).
    barriers_back: u64,
}

impl Lane {
    fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.back + self.dropped)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Flight {
    /// `[side][queue]`, by the side the packets were sent into.
    lanes: [[Lane; MAX_QUEUES as usize]; 2],
    progress: u64,
}

impl Flight {
    fn lane(&mut self, side: Side, queue: u16) -> &mut Lane {
        &mut self.lanes[side.index()][usize::from(queue.min(MAX_QUEUES - 1))]
    }

    /// `n` capture packets went into `side` on `queue`.
    #[inline]
    pub fn sent(&mut self, side: Side, queue: u16, n: u64) {
        self.lane(side, queue).sent += n;
        self.progress += n;
    }

    /// `n` capture packets came back out of `side` on `queue` (so they were
    /// sent into its peer).
    #[inline]
    pub fn received(&mut self, side: Side, queue: u16, n: u64) {
        self.lane(side.peer(), queue).back += n;
        self.progress += n;
    }

    /// A barrier went into `side` on `queue`.
    pub fn barrier_sent(&mut self, side: Side, queue: u16) {
        let lane = self.lane(side, queue);
        lane.barrier_out = Some(lane.sent);
        self.progress += 1;
    }

    /// The barrier sent into `side` on `queue` came back (out of the peer):
    /// what was sent before it and is not back was dropped. Returns how many.
    pub fn barrier_back(&mut self, side: Side, queue: u16) -> u64 {
        let lane = self.lane(side, queue);
        lane.barriers_back += 1;
        let Some(sent_before) = lane.barrier_out.take() else {
            return 0; // not ours to settle (a stray barrier)
        };
        let dropped = sent_before.saturating_sub(lane.back + lane.dropped);
        lane.dropped += dropped;
        self.progress += 1;
        dropped
    }

    pub fn barrier_out(&self, side: Side, queue: u16) -> bool {
        self.lanes[side.index()][usize::from(queue.min(MAX_QUEUES - 1))]
            .barrier_out
            .is_some()
    }

    /// Barriers that came back from `side`'s lane `queue`, settling or not.
    pub fn barriers_back(&self, side: Side, queue: u16) -> u64 {
        self.lanes[side.index()][usize::from(queue.min(MAX_QUEUES - 1))].barriers_back
    }

    pub fn in_flight(&self, side: Side, queue: u16) -> u64 {
        self.lanes[side.index()][usize::from(queue.min(MAX_QUEUES - 1))].in_flight()
    }

    pub fn total_in_flight(&self) -> u64 {
        self.lanes.iter().flatten().map(Lane::in_flight).sum()
    }

    /// Grows with every packet or barrier sent or back.
    pub fn progress(&self) -> u64 {
        self.progress
    }

    /// Packets known dropped, over every lane.
    pub fn dropped(&self) -> u64 {
        self.lanes.iter().flatten().map(|l| l.dropped).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_count_per_direction_and_queue_and_barriers_settle_drops() {
        let mut f = Flight::default();
        f.sent(Side::Inside, 1, 5);
        f.sent(Side::Outside, 1, 2);
        f.sent(Side::Inside, 0, 1);
        // Inside traffic comes back out of the outside port, same queue.
        f.received(Side::Outside, 1, 3);
        assert_eq!(f.in_flight(Side::Inside, 1), 2);
        assert_eq!(f.in_flight(Side::Outside, 1), 2);
        assert_eq!(f.total_in_flight(), 5);
        f.barrier_sent(Side::Inside, 1);
        assert!(f.barrier_out(Side::Inside, 1));
        assert!(!f.barrier_out(Side::Outside, 1));
        // One more came back before the barrier: the last one was dropped.
        f.received(Side::Outside, 1, 1);
        assert_eq!(f.barrier_back(Side::Inside, 1), 1);
        assert!(!f.barrier_out(Side::Inside, 1));
        assert_eq!(f.in_flight(Side::Inside, 1), 0);
        assert_eq!(f.dropped(), 1);
        assert_eq!(f.total_in_flight(), 3);
        assert_eq!(f.progress(), 5 + 2 + 1 + 3 + 1 + 1 + 1);
        // Packets sent after a barrier are not settled by it.
        f.barrier_sent(Side::Outside, 1);
        f.sent(Side::Outside, 1, 4);
        assert_eq!(f.barrier_back(Side::Outside, 1), 2);
        assert_eq!(f.in_flight(Side::Outside, 1), 4);
        assert_eq!(f.barrier_back(Side::Outside, 1), 0, "no barrier out");
        assert_eq!(f.barriers_back(Side::Outside, 1), 2);
        assert_eq!(f.barriers_back(Side::Inside, 1), 1);
    }
}
