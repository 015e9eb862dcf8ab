//! When detections become a ban: N detections of one host within a window T,
//! or at once for a `Definitive` detection (if enabled).
//!
//! Runs on the control thread. The state is bounded: at most
//! `max_pending_hosts` hosts are tracked, each with at most `threshold`
//! timestamps; when full, the host detected least recently is forgotten.
use super::event::{Confidence, HostDetection};
use super::key::BanKey;
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

/// Upper bound on [`PolicyConfig::threshold`]; larger values are clamped.
pub const MAX_THRESHOLD: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Detections of one host needed within `window_ms` (0 is treated as 1).
    pub threshold: u32,
    /// Longest span, first to last, of `threshold` detections that still
    /// bans (inclusive).
    pub window_ms: u64,
    /// A `Definitive` detection bans without waiting for the threshold.
    pub definitive_bans_at_once: bool,
    /// Hosts with detections below the threshold that are remembered.
    pub max_pending_hosts: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            threshold: 2,
            window_ms: 300_000,
            definitive_bans_at_once: true,
            max_pending_hosts: 65_536,
        }
    }
}

/// What to do about the host of one detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ban `event.host` now (reason: `event.detector`).
    Ban,
    /// Not yet: `detections` of this host fall within the window so far.
    Pending { detections: u32 },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyCounters {
    pub bans: u64,
    /// Pending hosts forgotten to make room for a new one.
    pub evicted: u64,
    /// Pending hosts dropped by `prune` because their window had passed.
    pub pruned: u64,
}

struct Pending {
    /// Detection times, ascending, at most `threshold` (the most recent).
    times: Vec<u64>,
}

impl Pending {
    fn newest(&self) -> u64 {
        self.times.last().copied().unwrap_or(0)
    }
}

pub struct BanPolicy {
    config: PolicyConfig,
    threshold: usize,
    pending: FxHashMap<BanKey, Pending>,
    /// `(newest detection, host)` of every pending host: eviction and pruning
    /// pick the front without scanning.
    by_recency: BTreeSet<(u64, BanKey)>,
    counters: PolicyCounters,
}

impl BanPolicy {
    pub fn new(config: PolicyConfig) -> Self {
        BanPolicy {
            threshold: config.threshold.clamp(1, MAX_THRESHOLD) as usize,
            config,
            pending: FxHashMap::default(),
            by_recency: BTreeSet::new(),
            counters: PolicyCounters::default(),
        }
    }

    /// Records `event` and says whether its host should be banned. A host
    /// that is banned is forgotten here: the ban table holds it from then on.
    pub fn on_detection(&mut self, event: &HostDetection) -> Decision {
        let host = event.host;
        if (self.config.definitive_bans_at_once && event.confidence == Confidence::Definitive)
            || self.threshold == 1
        {
            self.forget(&host);
            return self.ban();
        }
        if !self.pending.contains_key(&host) {
            self.make_room();
        }
        let entry = self.pending.entry(host).or_insert_with(|| Pending {
            times: Vec::with_capacity(self.threshold),
        });
        let old_newest = entry.newest();
        // Events from different workers can arrive slightly out of order:
        // keep the times sorted, and only the `threshold` most recent.
        let at = entry.times.partition_point(|&t| t <= event.at_ms);
        entry.times.insert(at, event.at_ms);
        // `while`: a reload may have lowered the threshold below what a
        // pending host already holds.
        while entry.times.len() > self.threshold {
            entry.times.remove(0);
        }
        let newest = entry.newest();
        let oldest = entry.times.first().copied().unwrap_or(newest);
        let in_window = entry
            .times
            .iter()
            .filter(|&&t| newest.saturating_sub(t) <= self.config.window_ms)
            .count();
        let reached = entry.times.len() == self.threshold
            && newest.saturating_sub(oldest) <= self.config.window_ms;
        // The index still holds the time from before this event.
        self.by_recency.remove(&(old_newest, host));
        if reached {
            self.pending.remove(&host);
            return self.ban();
        }
        self.by_recency.insert((newest, host));
        Decision::Pending {
            detections: u32::try_from(in_window).unwrap_or(u32::MAX),
        }
    }

    fn ban(&mut self) -> Decision {
        self.counters.bans += 1;
        Decision::Ban
    }

    /// Forgets the host detected least recently if the table is full.
    fn make_room(&mut self) {
        if self.pending.len() < self.config.max_pending_hosts {
            return;
        }
        if let Some((_, host)) = self.by_recency.pop_first() {
            if self.pending.remove(&host).is_some() {
                self.counters.evicted += 1;
            }
        }
    }

    fn forget(&mut self, host: &BanKey) {
        if let Some(p) = self.pending.remove(host) {
            self.by_recency.remove(&(p.newest(), *host));
        }
    }

    /// Drops hosts whose latest detection is more than the window before
    /// `now_ms`: their past detections can no longer count towards a ban.
    /// Returns how many. Call it now and then (e.g. with `expire`).
    pub fn prune(&mut self, now_ms: u64) -> usize {
        let mut pruned = 0;
        while let Some(&(newest, host)) = self.by_recency.first() {
            if now_ms.saturating_sub(newest) <= self.config.window_ms {
                break;
            }
            self.by_recency.pop_first();
            self.pending.remove(&host);
            pruned += 1;
        }
        self.counters.pruned += pruned as u64;
        pruned
    }

    /// Hosts with detections below the threshold.
    pub fn pending_hosts(&self) -> usize {
        self.pending.len()
    }

    pub fn is_pending(&self, host: &BanKey) -> bool {
        self.pending.contains_key(host)
    }

    pub fn counters(&self) -> PolicyCounters {
        self.counters
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Takes a reloaded policy. Hosts already pending keep their detections;
    /// the new threshold and window count from their next detection on.
    pub fn set_config(&mut self, config: PolicyConfig) {
        self.threshold = config.threshold.clamp(1, MAX_THRESHOLD) as usize;
        self.config = config;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Transport;
    use std::net::Ipv4Addr;

    fn host(i: u32) -> BanKey {
        BanKey::from(Ipv4Addr::from(0xcb00_7100 + i)) // 203.0.113.0 + i
    }

    fn detection(host_n: u32, confidence: Confidence, at_ms: u64) -> HostDetection {
        HostDetection {
            host: host(host_n),
            peer: host(250),
            host_port: 6881,
            peer_port: 6881,
            proto: Transport::Udp,
            port: 0,
            detector: crate::dpi::DetectorId::PeerWireHandshake,
            reasons: crate::dpi::Reasons::NONE,
            confidence,
            at_ms,
            payload: crate::ban::PayloadPrefix::EMPTY,
        }
    }

    fn policy(threshold: u32, window_ms: u64, max_pending_hosts: usize) -> BanPolicy {
        BanPolicy::new(PolicyConfig {
            threshold,
            window_ms,
            definitive_bans_at_once: true,
            max_pending_hosts,
        })
    }

    const WEAK: Confidence = Confidence::Weak;
    const STRONG: Confidence = Confidence::Strong;

    #[test]
    fn a_reloaded_threshold_applies_to_hosts_already_pending() {
        let mut p = policy(4, 1_000, 16);
        for t in [0, 100, 200] {
            assert!(matches!(
                p.on_detection(&detection(1, WEAK, t)),
                Decision::Pending { .. }
            ));
        }
        assert!(matches!(
            p.on_detection(&detection(2, WEAK, 200)),
            Decision::Pending { detections: 1 }
        ));
        // Lowered below what host 1 holds: its next detection bans.
        p.set_config(PolicyConfig {
            threshold: 2,
            ..*p.config()
        });
        assert_eq!(p.on_detection(&detection(1, WEAK, 300)), Decision::Ban);
        // Raised: host 2 needs two more.
        p.set_config(PolicyConfig {
            threshold: 3,
            ..*p.config()
        });
        assert_eq!(
            p.on_detection(&detection(2, WEAK, 300)),
            Decision::Pending { detections: 2 }
        );
        assert_eq!(p.on_detection(&detection(2, WEAK, 400)), Decision::Ban);
    }

    #[test]
    fn bans_on_nth_detection_within_window() {
        let mut p = policy(3, 1_000, 16);
        assert_eq!(
            p.on_detection(&detection(1, WEAK, 0)),
            Decision::Pending { detections: 1 }
        );
        assert_eq!(
            p.on_detection(&detection(1, STRONG, 400)),
            Decision::Pending { detections: 2 }
        );
        // Third detection exactly `window` after the first: still inside.
        assert_eq!(p.on_detection(&detection(1, WEAK, 1_000)), Decision::Ban);
        assert!(!p.is_pending(&host(1)), "forgotten once banned");
        assert_eq!(p.counters().bans, 1);
    }

    #[test]
    fn detections_spread_wider_than_window_do_not_ban() {
        let mut p = policy(3, 1_000, 16);
        p.on_detection(&detection(1, WEAK, 0));
        p.on_detection(&detection(1, WEAK, 400));
        // 1 ms too late for the first one: the window slides past it.
        assert_eq!(
            p.on_detection(&detection(1, WEAK, 1_001)),
            Decision::Pending { detections: 2 }
        );
        // …but 400, 1_001, 1_400 fit in 1_000 ms.
        assert_eq!(p.on_detection(&detection(1, WEAK, 1_400)), Decision::Ban);
    }

    #[test]
    fn hosts_are_counted_separately() {
        let mut p = policy(2, 1_000, 16);
        p.on_detection(&detection(1, WEAK, 0));
        assert_eq!(
            p.on_detection(&detection(2, WEAK, 10)),
            Decision::Pending { detections: 1 }
        );
        assert_eq!(p.on_detection(&detection(1, WEAK, 20)), Decision::Ban);
        assert_eq!(p.pending_hosts(), 1);
        assert_eq!(p.by_recency.len(), 1, "banned host left the index");
    }

    #[test]
    fn definitive_bans_at_once_unless_disabled() {
        let mut p = policy(5, 1_000, 16);
        p.on_detection(&detection(1, WEAK, 0));
        assert_eq!(
            p.on_detection(&detection(1, Confidence::Definitive, 1)),
            Decision::Ban
        );
        assert_eq!(p.pending_hosts(), 0);

        let mut strict = BanPolicy::new(PolicyConfig {
            threshold: 2,
            window_ms: 1_000,
            definitive_bans_at_once: false,
            max_pending_hosts: 16,
        });
        assert_eq!(
            strict.on_detection(&detection(1, Confidence::Definitive, 0)),
            Decision::Pending { detections: 1 }
        );
        assert_eq!(
            strict.on_detection(&detection(1, Confidence::Definitive, 1)),
            Decision::Ban
        );
    }

    #[test]
    fn threshold_one_or_zero_bans_every_detection() {
        for threshold in [0, 1] {
            let mut p = policy(threshold, 1_000, 16);
            assert_eq!(p.on_detection(&detection(1, WEAK, 0)), Decision::Ban);
            assert_eq!(p.pending_hosts(), 0);
        }
    }

    #[test]
    fn out_of_order_events_are_sorted_in() {
        let mut p = policy(3, 1_000, 16);
        p.on_detection(&detection(1, WEAK, 5_000));
        p.on_detection(&detection(1, WEAK, 3_000));
        // 3_000, 4_500, 5_000: span 2_000 > window… no: threshold needs all
        // three within 1_000; 4_500 and 5_000 are, 3_000 is not.
        assert_eq!(
            p.on_detection(&detection(1, WEAK, 4_500)),
            Decision::Pending { detections: 2 }
        );
        assert_eq!(p.on_detection(&detection(1, WEAK, 4_900)), Decision::Ban);
    }

    #[test]
    fn pending_hosts_are_bounded_and_least_recent_is_evicted() {
        let mut p = policy(2, 10_000, 3);
        p.on_detection(&detection(1, WEAK, 100));
        p.on_detection(&detection(2, WEAK, 50)); // least recent
        p.on_detection(&detection(3, WEAK, 200));
        p.on_detection(&detection(4, WEAK, 300));
        assert_eq!(p.pending_hosts(), 3);
        assert!(!p.is_pending(&host(2)));
        assert!(p.is_pending(&host(1)) && p.is_pending(&host(3)) && p.is_pending(&host(4)));
        assert_eq!(p.counters().evicted, 1);
        // A repeat detection of a tracked host evicts nobody.
        assert_eq!(p.on_detection(&detection(1, WEAK, 400)), Decision::Ban);
        assert_eq!(p.counters().evicted, 1);
        // Host 1 is gone (banned); host 3 is now the least recent.
        p.on_detection(&detection(5, WEAK, 500));
        p.on_detection(&detection(6, WEAK, 600));
        assert!(!p.is_pending(&host(3)));
        assert_eq!(p.pending_hosts(), 3);
        assert_eq!(p.counters().evicted, 2);
        assert_eq!(p.by_recency.len(), p.pending.len(), "index in step");
    }

    #[test]
    fn prune_drops_hosts_whose_window_has_passed() {
        let mut p = policy(3, 1_000, 16);
        p.on_detection(&detection(1, WEAK, 0));
        p.on_detection(&detection(2, WEAK, 500));
        p.on_detection(&detection(2, WEAK, 800));
        assert_eq!(p.prune(1_000), 0);
        assert_eq!(p.prune(1_001), 1);
        assert!(!p.is_pending(&host(1)));
        assert!(p.is_pending(&host(2)));
        assert_eq!(p.prune(1_801), 1);
        assert_eq!(p.pending_hosts(), 0);
        assert_eq!(p.counters().pruned, 2);
    }
}
