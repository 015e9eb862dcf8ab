//! The ban control plane, run by the control lcore: it is the only writer of
//! the master ban table. Each tick it drains the workers' detection rings,
//! applies the policy (target side, threshold, allowlist, capacity), publishes
//! a new snapshot when something changed, expires bans and keeps the journal,
//! so a restart loses no ban. Safe Rust, testable without DPDK.
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use tracing::{info, warn};

use crate::ban::detection_log::{DetectionLog, DetectionRecord, RecordContext};
use crate::ban::{
    self, AddOutcome, Allowlist, BanEntry, BanKey, BanPolicy, BanTable, Decision, EventConsumer,
    HostDetection, Journal, JournalConfig, JournalError, SnapshotReader,
};
use crate::config::{BanConfig, BanTarget, NetworksConfig};
use rustc_hash::FxHashMap;

/// Events drained per ring per tick: bounds a tick's work under a storm.
const DRAIN_PER_TICK: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    DetectionLog(#[from] crate::ban::detection_log::DetectionLogError),
    #[error("cannot create the directory of ban.state_file {path}: {source}")]
    StateDir {
        path: String,
        source: std::io::Error,
    },
}

/// The reason recorded for a ban made by `btblocker bans add`.
pub const MANUAL_REASON: &str = "manual";

/// Why `bans add` did not ban.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManualBanError {
    #[error("{0} is never banned (multicast, broadcast, unspecified or loopback)")]
    NotBannable(IpAddr),
    #[error("{0} is in ban.allowlist: not banned")]
    Allowlisted(IpAddr),
    #[error("not banning {0}: the ban table is full (ban.max_entries, when_full: refuse)")]
    Full(IpAddr),
}

/// What a reload changed in the ban table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// Bans lifted because the new `ban.allowlist` covers them.
    pub lifted_allowlisted: Vec<BanKey>,
    /// Static bans lifted because their address left `ban.denylist`.
    pub lifted_denylist: Vec<BanKey>,
    /// Addresses of `ban.denylist` banned now that were not static bans before.
    pub denylisted: Vec<BanKey>,
}

/// Totals the control plane reports.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct BanSummary {
    pub active: usize,
    pub restored: usize,
    pub events: u64,
    pub events_dropped_ring_full: u64,
    pub added: u64,
    pub refreshed: u64,
    pub refused_allowlisted: u64,
    pub refused_full: u64,
    pub evicted: u64,
    pub expired: u64,
    pub pending_below_threshold: u64,
    pub generation: u64,
    /// Banned hosts now, sorted, with the detector that banned them.
    pub hosts: Vec<(String, String)>,
}

pub struct BanKeeper {
    table: BanTable,
    policy: BanPolicy,
    journal: Option<Journal>,
    consumers: Vec<EventConsumer>,
    ttl: Duration,
    target: BanTarget,
    inside: Allowlist,
    restored: usize,
    events: u64,
    pending: u64,
    log: Option<DetectionLog>,
    /// Payload bytes each log record may show (`log.payload_bytes`).
    payload_bytes: usize,
    port_names: Vec<String>,
    /// The `ban` and `networks` settings in force (a reload compares).
    config: BanConfig,
    networks: NetworksConfig,
    /// `Some` when something outside (the BGP announcer) follows the table:
    /// every key added, extended or lifted since the last `take_changes`.
    changes: Option<Vec<BanKey>>,
    /// Bans learned from other boxes over BGP: enforced, never announced,
    /// never journaled (the next start learns them again).
    imported: FxHashMap<BanKey, Imported>,
}

/// Where an imported ban came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The announcing box's id (its `ASN:2:<id>` large community).
    pub box_id: u32,
    /// The BGP peer the route came from.
    pub peer: IpAddr,
}

impl BanKeeper {
    /// Loads the state file (bans still in force, with their remaining TTL),
    /// rewrites the journal compactly, brings the static bans in line with
    /// the denylist and publishes the first snapshot, all before any worker
    /// starts.
    pub fn start(
        cfg: &BanConfig,
        networks: &NetworksConfig,
        now_ms: u64,
    ) -> Result<BanKeeper, KeeperError> {
        let mut table = BanTable::new(cfg.table, Allowlist::new(cfg.allowlist.iter().copied()));
        let mut restored = 0;
        let journal = match &cfg.state_file {
            None => {
                warn!("ban.persist is false: bans will not survive a restart");
                None
            }
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| KeeperError::StateDir {
                        path: path.display().to_string(),
                        source,
                    })?;
                }
                restored = restore(&mut table, path, now_ms)?;
                let mut journal = Journal::open(
                    path,
                    JournalConfig {
                        flush_ms: cfg.flush_ms,
                        ..JournalConfig::default()
                    },
                    now_ms,
                )?;
                journal.compact(table.iter(), now_ms)?;
                Some(journal)
            }
        };
        let mut control = BanKeeper {
            table,
            policy: BanPolicy::new(cfg.policy),
            journal,
            consumers: Vec::new(),
            ttl: Duration::from_secs(cfg.ttl_s),
            target: cfg.target,
            inside: Allowlist::new(networks.inside.iter().copied()),
            restored,
            events: 0,
            pending: 0,
            log: None,
            payload_bytes: 0,
            port_names: Vec::new(),
            config: cfg.clone(),
            networks: networks.clone(),
            changes: None,
            imported: FxHashMap::default(),
        };
        // A static ban saved by a compaction whose address has since left
        // the denylist is lifted here, as a reload would have.
        control.sync_denylist(&cfg.denylist, now_ms);
        control.table.publish();
        Ok(control)
    }

    /// Writes one JSON line per detection and decision to `log`.
    pub fn with_detection_log(
        mut self,
        log: Option<DetectionLog>,
        port_names: Vec<String>,
    ) -> Self {
        self.log = log;
        self.port_names = port_names;
        self
    }

    /// Shows up to `n` payload bytes per log record (`log.payload_bytes`).
    pub fn set_payload_bytes(&mut self, n: usize) {
        self.payload_bytes = n;
    }

    /// Pushes buffered detection-log lines to the file (before a reopen).
    pub fn flush_detection_log(&mut self) {
        if let Some(log) = &mut self.log {
            if let Err(e) = log.flush() {
                warn!("{e}");
            }
        }
    }

    /// Swaps in a reopened detection log (a reload changed `log:`). The old
    /// one is flushed first, so no record is lost in between.
    pub fn replace_detection_log(&mut self, log: Option<DetectionLog>) {
        self.flush_detection_log();
        self.log = log;
    }

    /// Applies a reloaded `ban` section's live keys (allowlist, denylist,
    /// threshold / window / definitive_bans_at_once, ttl_s, target) and
    /// `networks.inside`, without losing a ban. The table's capacity and the
    /// state file are fixed for the run: those keys of `cfg` are ignored.
    /// Lifted bans are journaled and logged; the next tick publishes.
    pub fn reconfigure(
        &mut self,
        cfg: &BanConfig,
        networks: &NetworksConfig,
        now_ms: u64,
    ) -> Reconfigured {
        let mut report = Reconfigured::default();
        if cfg.allowlist != self.config.allowlist {
            let allowlist = Allowlist::new(cfg.allowlist.iter().copied());
            report.lifted_allowlisted = self.table.set_allowlist(allowlist);
            for key in &report.lifted_allowlisted {
                info!("ban lifted: {key} is now in ban.allowlist");
                self.journal_del(key);
            }
            for key in report.lifted_allowlisted.clone() {
                self.note(key);
            }
        }
        let (lifted, added) = self.sync_denylist(&cfg.denylist, now_ms);
        report.lifted_denylist = lifted;
        report.denylisted = added;
        self.policy.set_config(cfg.policy);
        self.ttl = Duration::from_secs(cfg.ttl_s);
        self.target = cfg.target;
        self.inside = Allowlist::new(networks.inside.iter().copied());
        self.config = BanConfig {
            table: self.config.table,
            state_file: self.config.state_file.clone(),
            flush_ms: self.config.flush_ms,
            ..cfg.clone()
        };
        self.networks = networks.clone();
        report
    }

    /// Makes the static bans exactly `denylist` (less what the allowlist
    /// covers): lifts static bans whose address is not on it, bans the ones
    /// not yet static. Returns (lifted, newly banned).
    fn sync_denylist(&mut self, denylist: &[IpAddr], now_ms: u64) -> (Vec<BanKey>, Vec<BanKey>) {
        let wanted: rustc_hash::FxHashSet<BanKey> =
            denylist.iter().map(|ip| BanKey::from(*ip)).collect();
        let lifted: Vec<BanKey> = self
            .table
            .iter()
            .filter(|(key, entry)| entry.is_static && !wanted.contains(key))
            .map(|(key, _)| *key)
            .collect();
        for key in &lifted {
            self.table.remove(key);
            info!("ban lifted: {key} is no longer in ban.denylist");
            self.journal_del(key);
        }
        for key in &lifted {
            self.note(*key);
        }
        let mut added = Vec::new();
        for ip in denylist {
            let key = BanKey::from(*ip);
            if self.table.get(&key).is_some_and(|e| e.is_static) {
                continue;
            }
            match self.table.add_static(key, "denylist", now_ms) {
                AddOutcome::RefusedAllowlisted => {
                    warn!("ban.denylist: {ip} is also in ban.allowlist: not banned")
                }
                AddOutcome::RefusedFull => {
                    warn!("ban.denylist: {ip}: ban table full (ban.max_entries): not banned")
                }
                _ => {
                    self.imported.remove(&key);
                    self.note(key);
                    added.push(key)
                }
            }
        }
        (lifted, added)
    }

    fn journal_del(&mut self, key: &BanKey) {
        if let Some(j) = &mut self.journal {
            if let Err(e) = j.append_del(key) {
                warn!("{e}");
            }
        }
    }

    /// A reader for one worker (load once per burst).
    pub fn reader(&self) -> SnapshotReader {
        self.table.reader()
    }

    pub fn add_consumer(&mut self, consumer: EventConsumer) {
        self.consumers.push(consumer);
    }

    /// One control tick: apply every queued detection, expire, publish, persist.
    pub fn tick(&mut self, now_ms: u64) {
        let mut events = Vec::new();
        for (worker, c) in self.consumers.iter_mut().enumerate() {
            c.drain(DRAIN_PER_TICK, |e| events.push((worker as u32, e)));
        }
        for (worker, e) in events {
            self.on_event(worker, e);
        }
        for key in self.table.expire(now_ms) {
            info!("ban expired: {key}");
            self.note(key);
        }
        self.policy.prune(now_ms);
        if self.table.has_unpublished_changes() {
            self.table.publish();
        } else {
            self.table.reclaim();
        }
        if let Some(log) = &mut self.log {
            if let Err(e) = log.flush() {
                warn!("{e}");
            }
        }
        if let Some(j) = &mut self.journal {
            if let Err(e) = j.maybe_flush(now_ms) {
                warn!("{e}");
            }
            if j.should_compact(self.table.len()) {
                let imported = &self.imported;
                let own = self.table.iter().filter(|(k, _)| !imported.contains_key(k));
                if let Err(e) = j.compact(own, now_ms) {
                    warn!("{e}");
                }
            }
        }
    }

    fn on_event(&mut self, worker: u32, e: HostDetection) {
        self.events += 1;
        // `networks.inside`, when set, decides which end is the subscriber.
        let (mut host, mut peer) = ((e.host, e.host_port), (e.peer, e.peer_port));
        if self.inside.contains(&peer.0) && !self.inside.contains(&host.0) {
            std::mem::swap(&mut host, &mut peer);
        }
        let targets: &[(BanKey, u16, BanKey, u16)] = &match self.target {
            BanTarget::Inside => vec![(host.0, host.1, peer.0, peer.1)],
            BanTarget::Outside => vec![(peer.0, peer.1, host.0, host.1)],
            BanTarget::Both => vec![
                (host.0, host.1, peer.0, peer.1),
                (peer.0, peer.1, host.0, host.1),
            ],
        };
        for &(key, key_port, other, other_port) in targets {
            if !bannable(key.to_ip()) {
                continue;
            }
            let event = HostDetection {
                host: key,
                host_port: key_port,
                peer: other,
                peer_port: other_port,
                ..e
            };
            let action = match self.policy.on_detection(&event) {
                Decision::Pending { .. } => {
                    self.pending += 1;
                    "below_threshold"
                }
                Decision::Ban => match self.ban(key, e.detector.name(), e.at_ms) {
                    AddOutcome::Added => "banned",
                    AddOutcome::Refreshed => "refreshed",
                    AddOutcome::EvictedOldest(_) => "banned_evicting_oldest",
                    AddOutcome::RefusedAllowlisted => "allowlisted",
                    AddOutcome::RefusedFull => "refused_full",
                },
            };
            self.log_detection(worker, &event, action);
        }
    }

    fn log_detection(&mut self, worker: u32, event: &HostDetection, action: &str) {
        let Some(log) = &mut self.log else { return };
        let ctx = RecordContext {
            worker,
            port: self
                .port_names
                .get(usize::from(event.port))
                .map(String::as_str),
            proto: event.proto.name(),
            action,
            ban_expires_ms: self.table.get(&event.host).map(|b| b.expires_at),
        };
        let record =
            DetectionRecord::from_event(event, ctx, event.payload.as_bytes(), self.payload_bytes);
        if let Err(e) = log.write(&record) {
            warn!("{e}");
        }
    }

    fn ban(&mut self, key: BanKey, reason: &str, now_ms: u64) -> AddOutcome {
        self.ban_for(key, self.ttl, reason, now_ms)
    }

    fn ban_for(&mut self, key: BanKey, ttl: Duration, reason: &str, now_ms: u64) -> AddOutcome {
        let outcome = self.table.add(key, ttl, reason, now_ms);
        match outcome {
            AddOutcome::Added | AddOutcome::Refreshed | AddOutcome::EvictedOldest(_) => {
                // Our own ban now, whoever announced it before.
                self.imported.remove(&key);
                self.note(key);
                if let AddOutcome::EvictedOldest(old) = outcome {
                    self.note(old);
                }
                if outcome == AddOutcome::Added {
                    info!("banned {key} ({reason}) for {} s", ttl.as_secs());
                }
                if let (Some(j), Some(entry)) = (&mut self.journal, self.table.get(&key)) {
                    if let Err(e) = j.append_add(&key, entry) {
                        warn!("{e}");
                    }
                }
                if let (AddOutcome::EvictedOldest(old), Some(j)) = (outcome, &mut self.journal) {
                    if let Err(e) = j.append_del(&old) {
                        warn!("{e}");
                    }
                }
            }
            AddOutcome::RefusedAllowlisted => info!("not banning {key} ({reason}): allowlisted"),
            AddOutcome::RefusedFull => {
                warn!("not banning {key} ({reason}): ban table full (ban.max_entries)")
            }
        }
        outcome
    }

    /// Every ban in force, sorted by address, in one vector (tests, benches;
    /// the control socket answers `list` a page at a time, `page`).
    pub fn list(&self) -> Vec<(BanKey, BanEntry)> {
        self.table.list()
    }

    /// The first `limit` bans in address order after `after` (from the
    /// lowest when `None`), and how many bans there are in all. One pass over
    /// the table keeping the `limit` lowest keys in a heap; only those are
    /// copied, so a page costs milliseconds even among a million bans.
    pub fn page(&self, after: Option<BanKey>, limit: usize) -> (Vec<(BanKey, BanEntry)>, usize) {
        let mut lowest = std::collections::BinaryHeap::with_capacity(limit.min(self.table.len()));
        for (key, _) in self.table.iter() {
            if after.is_some_and(|a| *key <= a) {
                continue;
            }
            if lowest.len() < limit {
                lowest.push(*key);
            } else if lowest.peek().is_some_and(|top| key < top) {
                lowest.pop();
                lowest.push(*key);
            }
        }
        let page = lowest
            .into_sorted_vec()
            .into_iter()
            .filter_map(|k| self.table.get(&k).map(|e| (k, e.clone())))
            .collect();
        (page, self.table.len())
    }

    /// An operator's ban (`bans add`): reason "manual", for `ttl` or
    /// `ban.ttl_s`. Journaled and published at once: the workers enforce it
    /// from their next burst. Returns the entry and whether it is new (an
    /// existing ban is extended, never shortened, and keeps its reason).
    pub fn add_manual(
        &mut self,
        ip: IpAddr,
        ttl: Option<Duration>,
        now_ms: u64,
    ) -> Result<(BanEntry, bool), ManualBanError> {
        if !bannable(ip) {
            return Err(ManualBanError::NotBannable(ip));
        }
        let key = BanKey::from(ip);
        let outcome = self.ban_for(key, ttl.unwrap_or(self.ttl), MANUAL_REASON, now_ms);
        let new = match outcome {
            AddOutcome::Added | AddOutcome::EvictedOldest(_) => true,
            AddOutcome::Refreshed => false,
            AddOutcome::RefusedAllowlisted => return Err(ManualBanError::Allowlisted(ip)),
            AddOutcome::RefusedFull => return Err(ManualBanError::Full(ip)),
        };
        self.commit_operator_change(now_ms);
        let entry = self.table.get(&key).cloned();
        entry.map(|e| (e, new)).ok_or(ManualBanError::Full(ip))
    }

    /// Lifts the ban on `ip` (`bans del`), journaled and published at once.
    /// A denylisted host is banned again at the next start.
    pub fn remove(&mut self, ip: IpAddr, now_ms: u64) -> Option<BanEntry> {
        let key = BanKey::from(ip);
        let removed = self.table.remove(&key)?;
        self.note(key);
        info!("ban on {key} lifted by an operator");
        if let Some(j) = &mut self.journal {
            if let Err(e) = j.append_del(&key) {
                warn!("{e}");
            }
        }
        self.commit_operator_change(now_ms);
        Some(removed)
    }

    /// Lifts every ban (`bans flush`), journaled and published at once.
    /// Returns how many.
    pub fn flush(&mut self, now_ms: u64) -> usize {
        if let Some(changes) = &mut self.changes {
            changes.extend(self.table.iter().map(|(k, _)| *k));
        }
        let n = self.table.flush();
        info!("{n} ban(s) lifted by an operator (flush)");
        if let Some(j) = &mut self.journal {
            if let Err(e) = j.append_flush() {
                warn!("{e}");
            }
        }
        self.commit_operator_change(now_ms);
        n
    }

    /// Operator commands are rare and expected to stick: publish now and
    /// fsync the journal now rather than at the next flush interval.
    fn commit_operator_change(&mut self, now_ms: u64) {
        if self.table.has_unpublished_changes() {
            self.table.publish();
        }
        if let Some(j) = &mut self.journal {
            if let Err(e) = j.sync(now_ms) {
                warn!("{e}");
            }
        }
    }

    /// From now on, remembers every key whose ban changed (for
    /// [`BanKeeper::take_changes`]); every ban in force counts as changed.
    pub fn track_changes(&mut self) {
        self.changes = Some(self.table.iter().map(|(k, _)| *k).collect());
    }

    fn note(&mut self, key: BanKey) {
        if let Some(changes) = &mut self.changes {
            changes.push(key);
        }
    }

    /// The keys added, extended or lifted since the last call (repeats
    /// possible); look each up with [`BanKeeper::entry`]. Imported bans
    /// that left the table are forgotten here.
    pub fn take_changes(&mut self) -> Vec<BanKey> {
        let changes = self
            .changes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        if !self.imported.is_empty() {
            for key in &changes {
                if self.table.get(key).is_none() {
                    self.imported.remove(key);
                }
            }
        }
        changes
    }

    /// The ban on `key`, if one is in force.
    pub fn entry(&self, key: &BanKey) -> Option<&BanEntry> {
        self.table.get(key)
    }

    /// Where `key`'s ban was imported from; `None` for our own bans.
    pub fn imported(&self, key: &BanKey) -> Option<Imported> {
        self.imported.get(key).copied()
    }

    /// Our own bans (imported ones left out) with their expiry, unix ms.
    pub fn own_bans(&self) -> impl Iterator<Item = (BanKey, u64)> + '_ {
        self.table
            .iter()
            .filter(|(k, _)| !self.imported.contains_key(k))
            .map(|(k, e)| (*k, e.expires_at))
    }

    /// Another box's ban, learned over BGP: reason `bgp:<box_id>`, until
    /// `expires_at_ms`. Not journaled, never announced. A host we ban
    /// ourselves stays ours. Returns whether the table changed.
    pub fn import(&mut self, ip: IpAddr, from: Imported, expires_at_ms: u64, now_ms: u64) -> bool {
        let key = BanKey::from(ip);
        if !bannable(ip) || expires_at_ms <= now_ms {
            return false;
        }
        if self.table.get(&key).is_some() && !self.imported.contains_key(&key) {
            return false;
        }
        let ttl = Duration::from_millis(expires_at_ms - now_ms);
        let reason = format!("bgp:{}", from.box_id);
        match self.table.add(key, ttl, &reason, now_ms) {
            AddOutcome::Added | AddOutcome::Refreshed => {
                self.imported.insert(key, from);
                self.note(key);
                true
            }
            AddOutcome::EvictedOldest(old) => {
                self.imported.insert(key, from);
                self.note(key);
                self.note(old);
                true
            }
            AddOutcome::RefusedAllowlisted | AddOutcome::RefusedFull => false,
        }
    }

    /// The imported ban on `ip` was withdrawn by `peer`: lifted (our own
    /// bans, and bans imported through another peer, stay).
    pub fn unimport(&mut self, ip: IpAddr, peer: IpAddr) -> bool {
        let key = BanKey::from(ip);
        if self.imported.get(&key).is_none_or(|i| i.peer != peer) {
            return false;
        }
        self.imported.remove(&key);
        self.table.remove(&key);
        self.note(key);
        true
    }

    /// Lifts every ban imported through `peer` (on_session_loss: drop).
    pub fn drop_imports_from(&mut self, peer: IpAddr) -> usize {
        let keys: Vec<BanKey> = self
            .imported
            .iter()
            .filter(|(_, i)| i.peer == peer)
            .map(|(k, _)| *k)
            .collect();
        for key in &keys {
            self.imported.remove(key);
            self.table.remove(key);
            self.note(*key);
        }
        keys.len()
    }

    /// Publishes now if the table changed (imports between ticks).
    pub fn publish_if_changed(&mut self) {
        if self.table.has_unpublished_changes() {
            self.table.publish();
        }
    }

    /// Flushes and fsyncs the journal: a clean stop loses nothing.
    pub fn close(mut self, now_ms: u64) {
        self.tick(now_ms);
        if let Some(j) = self.journal.take() {
            if let Err(e) = j.close(now_ms) {
                warn!("{e}");
            }
        }
    }

    /// The totals without the host list (cheap: for every stats interval).
    pub fn counts(&self) -> BanSummary {
        self.summarize(false)
    }

    /// The totals and every banned host (for the final report).
    pub fn summary(&self) -> BanSummary {
        self.summarize(true)
    }

    fn summarize(&self, with_hosts: bool) -> BanSummary {
        let t = self.table.counters();
        BanSummary {
            active: self.table.len(),
            restored: self.restored,
            events: self.events,
            events_dropped_ring_full: self.consumers.iter().map(EventConsumer::dropped).sum(),
            added: t.added,
            refreshed: t.refreshed,
            refused_allowlisted: t.refused_allowlisted,
            refused_full: t.refused_full,
            evicted: t.evicted,
            expired: t.expired,
            pending_below_threshold: self.pending,
            generation: self.table.snapshot().generation(),
            hosts: if !with_hosts {
                Vec::new()
            } else {
                self.table
                    .list()
                    .into_iter()
                    .map(|(k, e)| (k.to_string(), e.reason.clone()))
                    .collect()
            },
        }
    }
}

/// Multicast, broadcast, unspecified and loopback addresses are never banned.
pub fn bannable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified() || v4.is_loopback())
        }
        IpAddr::V6(v6) => !(v6.is_multicast() || v6.is_unspecified() || v6.is_loopback()),
    }
}

/// Puts the state file's bans back; returns how many.
fn restore(table: &mut BanTable, path: &Path, now_ms: u64) -> Result<usize, KeeperError> {
    if !path.exists() {
        info!(
            "ban state file {} does not exist yet: starting with no bans",
            path.display()
        );
        return Ok(0);
    }
    let (bans, warnings) = ban::journal::load(path, now_ms)?;
    for w in &warnings {
        warn!("{}: {w} (the valid part is kept)", path.display());
    }
    let n = bans.len();
    for b in bans {
        table.restore(b.key, b.entry);
    }
    info!("restored {n} ban(s) from {}", path.display());
    Ok(n)
}
