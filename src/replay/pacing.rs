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
/// btblocker drops on purpose (banned hosts) never come back: when nothing
/// moves for `stall_ticks`, what is in flight is written off.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// 0: no limit.
    limit: u64,
    stall_ticks: u64,
    written_off: u64,
    last_progress: u64,
    last_seen: (u64, u64),
}

impl Window {
    pub fn new(limit: u64, stall_ticks: u64, now: u64) -> Window {
        Window {
            limit,
            stall_ticks,
            written_off: 0,
            last_progress: now,
            last_seen: (0, 0),
        }
    }

    /// How many more packets may go, given the totals sent and received so far.
    #[inline]
    pub fn room(&mut self, sent: u64, received: u64, now: u64) -> u64 {
        if self.limit == 0 {
            return u64::MAX;
        }
        if (sent, received) != self.last_seen {
            self.last_seen = (sent, received);
            self.last_progress = now;
        }
        let in_flight = sent.saturating_sub(received + self.written_off);
        if in_flight < self.limit {
            return self.limit - in_flight;
        }
        if now.saturating_sub(self.last_progress) >= self.stall_ticks {
            self.written_off += in_flight;
            self.last_progress = now;
            return self.limit;
        }
        0
    }

    /// Packets written off as not coming back (dropped by the device).
    pub fn written_off(&self) -> u64 {
        self.written_off
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
    fn the_window_caps_what_is_in_flight() {
        let mut w = Window::new(4, 100, 0);
        assert_eq!(w.room(0, 0, 0), 4);
        assert_eq!(w.room(3, 0, 1), 1);
        assert_eq!(w.room(4, 0, 2), 0);
        assert_eq!(w.room(4, 2, 3), 2);
        assert_eq!(w.room(8, 4, 4), 0);
        // Nothing moves for 100 ticks: the 4 in flight are written off.
        assert_eq!(w.room(8, 4, 103), 0);
        assert_eq!(w.room(8, 4, 104), 4);
        assert_eq!(w.written_off(), 4);
        assert_eq!(w.room(9, 4, 105), 3);
        assert_eq!(Window::new(0, 1, 0).room(1000, 0, 0), u64::MAX);
    }
}
