//! When the send loop may send: the rate (TSC pacing) and the window of
//! packets in flight through the device under test. Pure arithmetic on TSC
//! values, so it is tested without DPDK.

/// Paces sends to a packet rate, in TSC ticks.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    /// `None`: flat out.
    ticks_per_packet: Option<u64>,
    next: u64,
}

impl Pacer {
    /// `rate_pps` of `None` (or 0) sends flat out.
    pub fn new(rate_pps: Option<u64>, tsc_hz: u64, now: u64) -> Pacer {
        let ticks_per_packet = rate_pps.filter(|&r| r > 0).map(|r| (tsc_hz / r).max(1));
        Pacer {
            ticks_per_packet,
            next: now,
        }
    }

    /// How many packets (at most `max`) may go now.
    #[inline]
    pub fn allowance(&self, now: u64, max: usize) -> usize {
        match self.ticks_per_packet {
            None => max,
            Some(_) if now < self.next => 0,
            Some(tpp) => (((now - self.next) / tpp).saturating_add(1)).min(max as u64) as usize,
        }
    }

    /// Records that `n` packets went at `now`. A sender that fell behind (it
    /// was descheduled) catches up by at most one burst of `max`, not by a
    /// flood.
    #[inline]
    pub fn sent(&mut self, n: usize, now: u64, max: usize) {
        if let Some(tpp) = self.ticks_per_packet {
            self.next = self.next.saturating_add(tpp.saturating_mul(n as u64));
            let slack = tpp.saturating_mul(max as u64);
            if now > self.next.saturating_add(slack) {
                self.next = now - slack;
            }
        }
    }
}

/// Caps the packets sent but not yet back. btblocker's TX ring towards the
/// generator holds 256 descriptors; were more in flight while the generator
/// is descheduled, btblocker would find that ring full and drop. Packets
/// btblocker drops on purpose (banned hosts) never come back: when the window
/// is full and nothing moves for `stall_ticks`, the sender probes with
/// barriers (see [`super::barrier`]), which settle what is really in flight.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// 0: no limit.
    limit: u64,
    stall_ticks: u64,
    last_progress: u64,
    last_seen: u64,
}

/// What the window allows now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Room {
    /// Up to this many more packets may go.
    Send(u64),
    /// Full: wait for packets to come back.
    Wait,
    /// Full and nothing moved for a while: send barriers to learn what was dropped.
    Probe,
}

impl Window {
    pub fn new(limit: u64, stall_ticks: u64, now: u64) -> Window {
        Window {
            limit,
            stall_ticks,
            last_progress: now,
            last_seen: 0,
        }
    }

    /// `in_flight`: sent, neither back nor known dropped; `progress`: any
    /// count that grows whenever a packet is sent, comes back or is settled.
    #[inline]
    pub fn room(&mut self, in_flight: u64, progress: u64, now: u64) -> Room {
        if self.limit == 0 {
            return Room::Send(u64::MAX);
        }
        if progress != self.last_seen {
            self.last_seen = progress;
            self.last_progress = now;
        }
        if in_flight < self.limit {
            return Room::Send(self.limit - in_flight);
        }
        if now.saturating_sub(self.last_progress) >= self.stall_ticks {
            self.last_progress = now;
            return Room::Probe;
        }
        Room::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_out_always_allows_a_full_burst() {
        let mut p = Pacer::new(None, 1000, 0);
        assert_eq!(p.allowance(0, 32), 32);
        p.sent(32, 0, 32);
        assert_eq!(p.allowance(0, 32), 32);
        assert_eq!(Pacer::new(Some(0), 1000, 0).allowance(0, 8), 8);
    }

    #[test]
    fn a_rate_spaces_packets_by_the_tsc() {
        // 1000 ticks per second, 100 pps: one packet per 10 ticks.
        let mut p = Pacer::new(Some(100), 1000, 500);
        assert_eq!(p.allowance(499, 32), 0);
        assert_eq!(p.allowance(500, 32), 1);
        p.sent(1, 500, 32);
        assert_eq!(p.allowance(509, 32), 0);
        assert_eq!(p.allowance(510, 32), 1);
        assert_eq!(p.allowance(535, 32), 3);
        p.sent(3, 535, 32);
        assert_eq!(p.allowance(539, 32), 0);
        assert_eq!(p.allowance(540, 32), 1);
    }

    #[test]
    fn a_late_sender_catches_up_by_one_burst_only() {
        let mut p = Pacer::new(Some(100), 1000, 0);
        // 10 000 ticks late: 1000 packets due, but at most 4 per call and the
        // backlog is forgotten beyond one burst.
        assert_eq!(p.allowance(10_000, 4), 4);
        p.sent(4, 10_000, 4);
        assert_eq!(p.allowance(10_000, 4), 4);
        p.sent(4, 10_000, 4);
        // Now on schedule: the packet due at 10 000, then one per 10 ticks.
        assert_eq!(p.allowance(10_000, 4), 1);
        p.sent(1, 10_000, 4);
        assert_eq!(p.allowance(10_009, 4), 0);
        assert_eq!(p.allowance(10_010, 4), 1);
    }

    #[test]
    fn the_window_caps_what_is_in_flight_and_probes_when_stuck() {
        let mut w = Window::new(4, 100, 0);
        assert_eq!(w.room(0, 0, 0), Room::Send(4));
        assert_eq!(w.room(3, 3, 1), Room::Send(1));
        assert_eq!(w.room(4, 4, 2), Room::Wait);
        assert_eq!(w.room(2, 6, 3), Room::Send(2));
        assert_eq!(w.room(4, 8, 4), Room::Wait);
        // Nothing moves for 100 ticks: probe once, then wait again.
        assert_eq!(w.room(4, 8, 103), Room::Wait);
        assert_eq!(w.room(4, 8, 104), Room::Probe);
        assert_eq!(w.room(4, 8, 105), Room::Wait);
        // The barriers settle what was dropped.
        assert_eq!(w.room(0, 9, 106), Room::Send(4));
        assert_eq!(Window::new(0, 1, 0).room(1000, 0, 0), Room::Send(u64::MAX));
    }
}
