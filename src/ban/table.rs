//! The master ban table, owned by the control thread (its only writer).
//!
//! Entries live in [`SHARD_COUNT`] maps split by the same keyed hash the
//! snapshot uses, and each shard notes the keys changed since the last
//! publish, so a publish copies exactly the snapshot shards that changed and
//! patches those keys in. Dynamic bans are also queued by expiry (a
//! min-heap with lazy deletion, `expiry.rs`), which makes
//! [`BanTable::expire`] and eviction O(log n) per entry instead of a scan of
//! the table.
use super::allowlist::Allowlist;
use super::expiry::ExpiryQueue;
use super::hash::{KeyHasher, SHARD_COUNT};
use super::key::BanKey;
use super::snapshot::{Shard, Snapshot, SnapshotPublisher, SnapshotReader};
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::Duration;

/// `expires_at` of a ban that never expires (static denylist).
pub const NEVER: u64 = u64::MAX;

/// What the table knows about one banned host. Times are unix ms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanEntry {
    /// The ban is in force while `now < expires_at`; [`NEVER`] for static.
    pub expires_at: u64,
    /// Why the host was first banned (detector name, "manual", "denylist").
    /// A refresh keeps it: it explains the ban, later hits only extend it.
    pub reason: String,
    pub first_seen: u64,
    pub last_seen: u64,
    /// Times this host was banned or re-banned.
    pub hits: u64,
    /// From the static denylist: never expires, never evicted.
    pub is_static: bool,
}

impl BanEntry {
    /// Time left at `now_ms`; `None` for a static ban.
    pub fn remaining_ms(&self, now_ms: u64) -> Option<u64> {
        (!self.is_static).then(|| self.expires_at.saturating_sub(now_ms))
    }

    pub fn is_in_force(&self, now_ms: u64) -> bool {
        self.is_static || now_ms < self.expires_at
    }
}

/// What [`BanTable::add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// Already banned: expiry extended (never shortened), hits and last_seen
    /// updated.
    Refreshed,
    /// The address is on the allowlist; nothing changed.
    RefusedAllowlisted,
    /// The table is full and the policy is `Refuse` (or every entry is static).
    RefusedFull,
    /// Added after evicting this key, the dynamic ban that would have
    /// expired first.
    EvictedOldest(BanKey),
}

/// What to do with a new ban when the table holds `max_entries`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FullPolicy {
    /// Keep the existing bans; the new host goes unbanned (counted).
    Refuse,
    /// Drop the ban with the earliest expiry. With one TTL for all bans that
    /// is the host seen least recently: the ban least likely to still matter.
    /// Static bans are never evicted.
    #[default]
    EvictOldest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BanTableConfig {
    pub max_entries: usize,
    pub when_full: FullPolicy,
}

impl Default for BanTableConfig {
    fn default() -> Self {
        BanTableConfig {
            max_entries: 1_000_000,
            when_full: FullPolicy::EvictOldest,
        }
    }
}

/// Running totals since the table was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounters {
    pub added: u64,
    pub refreshed: u64,
    pub refused_allowlisted: u64,
    pub refused_full: u64,
    pub evicted: u64,
    pub expired: u64,
    /// Removed by `remove`, `flush` or an allowlist change.
    pub removed: u64,
}

/// What a [`BanTable::publish`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishReport {
    /// Generation now visible to readers.
    pub generation: u64,
    /// Snapshot shards replaced (copied and patched, or rebuilt); 0 means
    /// nothing changed and nothing was swapped.
    pub shards_replaced: usize,
    /// Of those, shards rebuilt from the table (resized or flushed) rather
    /// than patched.
    pub shards_rebuilt: usize,
}

/// Changes to one shard since the last publish.
#[derive(Default)]
struct ShardChanges {
    /// Keys added, updated or removed (repeats are harmless).
    keys: Vec<BanKey>,
    /// Rebuild the whole shard instead of patching `keys` in.
    rebuild: bool,
}

impl ShardChanges {
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && !self.rebuild
    }
}

pub struct BanTable {
    config: BanTableConfig,
    allowlist: Allowlist,
    hasher: KeyHasher,
    shards: Vec<FxHashMap<BanKey, BanEntry>>,
    /// `(expires_at, key)` of every dynamic ban, plus left-behind entries
    /// of refreshed or removed ones.
    expiry: ExpiryQueue,
    /// Entries that are not static (the live part of `expiry`).
    dynamic: usize,
    len: usize,
    /// Per shard: what changed since the last publish.
    changes: Vec<ShardChanges>,
    publisher: SnapshotPublisher,
    counters: TableCounters,
}

impl BanTable {
    /// An empty table with a random hash seed.
    pub fn new(config: BanTableConfig, allowlist: Allowlist) -> Self {
        Self::with_hasher(config, allowlist, KeyHasher::random())
    }

    /// An empty table with the given hasher (reproducible shard layout).
    pub fn with_hasher(config: BanTableConfig, allowlist: Allowlist, hasher: KeyHasher) -> Self {
        BanTable {
            config,
            allowlist,
            hasher,
            shards: (0..SHARD_COUNT).map(|_| FxHashMap::default()).collect(),
            expiry: ExpiryQueue::default(),
            dynamic: 0,
            len: 0,
            changes: (0..SHARD_COUNT).map(|_| ShardChanges::default()).collect(),
            publisher: SnapshotPublisher::new(hasher),
            counters: TableCounters::default(),
        }
    }

    /// Bans `key` until `now_ms + ttl`, or extends its ban to then.
    pub fn add(&mut self, key: BanKey, ttl: Duration, reason: &str, now_ms: u64) -> AddOutcome {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let expires_at = now_ms.saturating_add(ttl_ms);
        let existing = self.update_existing(key, |entry| {
            entry.hits = entry.hits.saturating_add(1);
            entry.last_seen = entry.last_seen.max(now_ms);
            if !entry.is_static {
                entry.expires_at = entry.expires_at.max(expires_at);
            }
        });
        if let Some(outcome) = existing {
            return outcome;
        }
        let entry = BanEntry {
            expires_at,
            reason: reason.to_owned(),
            first_seen: now_ms,
            last_seen: now_ms,
            hits: 1,
            is_static: false,
        };
        self.insert_with_room(key, entry)
    }

    /// Bans `key` for good (static denylist); turns an existing dynamic ban
    /// static.
    pub fn add_static(&mut self, key: BanKey, reason: &str, now_ms: u64) -> AddOutcome {
        let existing = self.update_existing(key, |entry| {
            entry.is_static = true;
            entry.expires_at = NEVER;
        });
        if let Some(outcome) = existing {
            return outcome;
        }
        let entry = BanEntry {
            expires_at: NEVER,
            reason: reason.to_owned(),
            first_seen: now_ms,
            last_seen: now_ms,
            hits: 0,
            is_static: true,
        };
        self.insert_with_room(key, entry)
    }

    /// Puts back an entry saved by the journal, absolute expiry and counters
    /// as saved; replaces an entry already present. Allowlist and capacity
    /// rules apply as for [`BanTable::add`].
    pub fn restore(&mut self, key: BanKey, entry: BanEntry) -> AddOutcome {
        if self.allowlist.contains(&key) {
            self.counters.refused_allowlisted += 1;
            return AddOutcome::RefusedAllowlisted;
        }
        if self.remove_entry(&key).is_some() {
            self.insert_new(key, entry);
            self.counters.refreshed += 1;
            return AddOutcome::Refreshed;
        }
        self.insert_with_room(key, entry)
    }

    /// The shared first half of `add` and `add_static`: refuses an
    /// allowlisted key, or applies `update` to the key's entry if it has one.
    /// `None`: the key is new.
    fn update_existing(
        &mut self,
        key: BanKey,
        update: impl FnOnce(&mut BanEntry),
    ) -> Option<AddOutcome> {
        if self.allowlist.contains(&key) {
            self.counters.refused_allowlisted += 1;
            return Some(AddOutcome::RefusedAllowlisted);
        }
        let shard = self.hasher.shard_of(&key);
        let entry = self.shards.get_mut(shard)?.get_mut(&key)?;
        let (old_expiry, was_static) = (entry.expires_at, entry.is_static);
        update(entry);
        let (new_expiry, now_static) = (entry.expires_at, entry.is_static);
        // The snapshot holds only the expiry; other changes need no publish.
        if old_expiry != new_expiry || was_static != now_static {
            // The old queue entry is left behind; `pop_due` skips it.
            match (was_static, now_static) {
                (false, true) => self.dynamic -= 1,
                (true, false) => self.dynamic += 1,
                _ => {}
            }
            if !now_static {
                self.queue_expiry(new_expiry, key);
            }
            self.mark_changed(shard, key);
        }
        self.counters.refreshed += 1;
        Some(AddOutcome::Refreshed)
    }

    /// Inserts a key known to be absent, making room first if the table is
    /// full.
    fn insert_with_room(&mut self, key: BanKey, entry: BanEntry) -> AddOutcome {
        let mut outcome = AddOutcome::Added;
        if self.len >= self.config.max_entries {
            let oldest = match self.config.when_full {
                FullPolicy::Refuse => None,
                FullPolicy::EvictOldest => self.pop_due(u64::MAX),
            };
            let Some(oldest) = oldest else {
                self.counters.refused_full += 1;
                return AddOutcome::RefusedFull;
            };
            self.remove_entry(&oldest);
            self.counters.evicted += 1;
            outcome = AddOutcome::EvictedOldest(oldest);
        }
        self.insert_new(key, entry);
        self.counters.added += 1;
        outcome
    }

    fn insert_new(&mut self, key: BanKey, entry: BanEntry) {
        let shard = self.hasher.shard_of(&key);
        let Some(map) = self.shards.get_mut(shard) else {
            return;
        };
        let queued = (!entry.is_static).then_some(entry.expires_at);
        map.insert(key, entry);
        self.len += 1;
        self.mark_changed(shard, key);
        // After the insert: a queue rebuild reads the entries from the maps.
        if let Some(expires_at) = queued {
            self.dynamic += 1;
            self.queue_expiry(expires_at, key);
        }
    }

    fn remove_entry(&mut self, key: &BanKey) -> Option<BanEntry> {
        let shard = self.hasher.shard_of(key);
        let entry = self.shards.get_mut(shard)?.remove(key)?;
        if !entry.is_static {
            // Its queue entry is left behind; `pop_due` skips it.
            self.dynamic -= 1;
        }
        self.len -= 1;
        self.mark_changed(shard, *key);
        Some(entry)
    }

    fn queue_expiry(&mut self, expires_at: u64, key: BanKey) {
        self.expiry.push(expires_at, key);
        if self.expiry.needs_rebuild(self.dynamic) {
            let live = self
                .shards
                .iter()
                .flat_map(|map| map.iter())
                .filter(|(_, e)| !e.is_static)
                .map(|(k, e)| (e.expires_at, *k));
            self.expiry.rebuild(live);
        }
    }

    /// The dynamic ban expiring first, if it expires at or before `now_ms`
    /// (which stays in the table: the caller removes it).
    fn pop_due(&mut self, now_ms: u64) -> Option<BanKey> {
        let shards = &self.shards;
        let hasher = &self.hasher;
        self.expiry.pop_due(now_ms, |expires_at, key| {
            // Current only if the table still has this ban with this expiry.
            shards
                .get(hasher.shard_of(key))
                .and_then(|map| map.get(key))
                .is_some_and(|e| !e.is_static && e.expires_at == expires_at)
        })
    }

    fn mark_changed(&mut self, shard: usize, key: BanKey) {
        let (Some(changes), Some(map)) = (self.changes.get_mut(shard), self.shards.get(shard))
        else {
            return;
        };
        if changes.rebuild {
            return;
        }
        // Once the list is longer than the shard, a rebuild is cheaper than
        // the patch, and the list stops growing.
        if changes.keys.len() > map.len() + 64 {
            changes.rebuild = true;
            changes.keys = Vec::new();
        } else {
            changes.keys.push(key);
        }
    }

    /// Unbans `key` (static or not).
    pub fn remove(&mut self, key: &BanKey) -> Option<BanEntry> {
        let removed = self.remove_entry(key);
        if removed.is_some() {
            self.counters.removed += 1;
        }
        removed
    }

    /// Unbans everything, static bans included. Returns how many.
    pub fn flush(&mut self) -> usize {
        let n = self.len;
        for (map, changes) in self.shards.iter_mut().zip(self.changes.iter_mut()) {
            if !map.is_empty() {
                map.clear();
                changes.rebuild = true;
                changes.keys = Vec::new();
            }
        }
        self.expiry.clear();
        self.dynamic = 0;
        self.len = 0;
        self.counters.removed += n as u64;
        n
    }

    /// Removes the dynamic bans with `expires_at <= now_ms` and returns their
    /// keys, earliest expiry first.
    pub fn expire(&mut self, now_ms: u64) -> Vec<BanKey> {
        let mut expired = Vec::new();
        while let Some(key) = self.pop_due(now_ms) {
            self.remove_entry(&key);
            expired.push(key);
        }
        self.counters.expired += expired.len() as u64;
        expired
    }

    /// Replaces the allowlist and unbans every host it now covers; returns
    /// their keys.
    pub fn set_allowlist(&mut self, allowlist: Allowlist) -> Vec<BanKey> {
        self.allowlist = allowlist;
        let covered: Vec<BanKey> = self
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| self.allowlist.contains(k))
            .collect();
        for key in &covered {
            self.remove_entry(key);
        }
        self.counters.removed += covered.len() as u64;
        covered
    }

    pub fn get(&self, key: &BanKey) -> Option<&BanEntry> {
        self.shards.get(self.hasher.shard_of(key))?.get(key)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&BanKey, &BanEntry)> {
        self.shards.iter().flat_map(|m| m.iter())
    }

    /// Every entry, sorted by key (for display and `bans list`).
    pub fn list(&self) -> Vec<(BanKey, BanEntry)> {
        let mut all: Vec<_> = self.iter().map(|(k, e)| (*k, e.clone())).collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn config(&self) -> &BanTableConfig {
        &self.config
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    pub fn counters(&self) -> TableCounters {
        self.counters
    }

    /// A handle for a worker; `load()` it once per burst.
    pub fn reader(&self) -> SnapshotReader {
        self.publisher.reader()
    }

    /// The snapshot readers see now.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        self.publisher.current()
    }

    /// True if something changed since the last publish.
    pub fn has_unpublished_changes(&self) -> bool {
        self.changes.iter().any(|c| !c.is_empty())
    }

    /// Makes every change so far visible to readers: copies the changed
    /// shards and patches the changes in (or rebuilds a shard that must
    /// grow, shrink or was flushed), shares the rest, swaps the snapshot
    /// pointer. Does nothing when nothing changed.
    pub fn publish(&mut self) -> PublishReport {
        let current = Arc::clone(self.publisher.current());
        let hasher = self.hasher;
        let mut replaced = Vec::new();
        let mut rebuilt = 0;
        for (index, (changes, map)) in self.changes.iter_mut().zip(&self.shards).enumerate() {
            if changes.is_empty() {
                continue;
            }
            // Each changed key as it is now: its expiry, or 0 if gone.
            let patch = changes
                .keys
                .iter()
                .map(|key| (*key, map.get(key).map_or(0, |e| e.expires_at)));
            let patched = match (changes.rebuild, current.shard(index)) {
                (false, Some(old)) => old.patched(map.len(), patch, &hasher),
                _ => None,
            };
            let shard = patched.unwrap_or_else(|| {
                rebuilt += 1;
                Shard::build(map.iter().map(|(k, e)| (*k, e.expires_at)), &hasher)
            });
            replaced.push((index, shard));
            changes.rebuild = false;
            // Keep the list's memory unless a storm made it large.
            if changes.keys.capacity() > 1_024 {
                changes.keys = Vec::new();
            } else {
                changes.keys.clear();
            }
        }
        drop(current);
        let shards_replaced = replaced.len();
        let generation = if shards_replaced == 0 {
            self.publisher.current().generation()
        } else {
            self.publisher.publish(replaced)
        };
        PublishReport {
            generation,
            shards_replaced,
            shards_rebuilt: rebuilt,
        }
    }

    /// Frees old snapshots that workers have let go of (see
    /// [`SnapshotPublisher::reclaim`]); call on the control tick.
    pub fn reclaim(&mut self) -> usize {
        self.publisher.reclaim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const TTL: Duration = Duration::from_secs(60);

    fn key(i: u32) -> BanKey {
        BanKey::from(Ipv4Addr::from(0xc633_6400 + i)) // 198.51.100.0 + i
    }

    fn table(max_entries: usize, when_full: FullPolicy) -> BanTable {
        let config = BanTableConfig {
            max_entries,
            when_full,
        };
        let allow = Allowlist::parse(["10.0.0.0/8", "2001:db8::/32"]).unwrap();
        BanTable::with_hasher(config, allow, KeyHasher::with_seed(42))
    }

    #[test]
    fn add_then_publish_makes_ban_visible() {
        let mut t = table(10, FullPolicy::Refuse);
        let reader = t.reader();
        assert_eq!(
            t.add(key(1), TTL, "peer_wire_handshake", 1_000),
            AddOutcome::Added
        );
        assert!(
            !reader.load().contains(&key(1), 1_000),
            "not before publish"
        );
        let report = t.publish();
        assert_eq!(
            report,
            PublishReport {
                generation: 1,
                shards_replaced: 1,
                shards_rebuilt: 1, // from empty: nothing to patch
            }
        );
        let snap = reader.load();
        assert!(snap.contains(&key(1), 1_000));
        assert!(snap.contains(&key(1), 60_999));
        assert!(!snap.contains(&key(1), 61_000));
        assert!(!snap.contains(&key(2), 1_000));
        assert_eq!(snap.len(), 1);
        let entry = t.get(&key(1)).unwrap();
        assert_eq!(
            *entry,
            BanEntry {
                expires_at: 61_000,
                reason: "peer_wire_handshake".into(),
                first_seen: 1_000,
                last_seen: 1_000,
                hits: 1,
                is_static: false,
            }
        );
    }

    #[test]
    fn publish_without_changes_keeps_generation() {
        let mut t = table(10, FullPolicy::Refuse);
        t.add(key(1), TTL, "x", 0);
        assert!(t.has_unpublished_changes());
        assert_eq!(t.publish().generation, 1);
        assert!(!t.has_unpublished_changes());
        assert_eq!(
            t.publish(),
            PublishReport {
                generation: 1,
                shards_replaced: 0,
                shards_rebuilt: 0
            }
        );
        assert_eq!(t.reader().load().generation(), 1);
    }

    #[test]
    fn refresh_extends_never_shortens_and_keeps_reason() {
        let mut t = table(10, FullPolicy::Refuse);
        t.add(key(1), TTL, "first", 1_000);
        assert_eq!(t.add(key(1), TTL, "second", 5_000), AddOutcome::Refreshed);
        let e = t.get(&key(1)).unwrap();
        assert_eq!((e.expires_at, e.hits, e.last_seen), (65_000, 2, 5_000));
        assert_eq!((e.reason.as_str(), e.first_seen), ("first", 1_000));
        // A shorter TTL later does not shorten the ban.
        assert_eq!(
            t.add(key(1), Duration::from_secs(1), "x", 6_000),
            AddOutcome::Refreshed
        );
        assert_eq!(t.get(&key(1)).unwrap().expires_at, 65_000);
        assert_eq!(t.len(), 1);
        assert_eq!(t.counters().added, 1);
        assert_eq!(t.counters().refreshed, 2);
        // Expiry follows the refreshed time.
        assert_eq!(t.expire(64_999), Vec::<BanKey>::new());
        assert_eq!(t.expire(65_000), vec![key(1)]);
    }

    #[test]
    fn refresh_that_does_not_move_expiry_needs_no_publish() {
        let mut t = table(10, FullPolicy::Refuse);
        t.add(key(1), TTL, "x", 1_000);
        t.publish();
        t.add(key(1), Duration::from_secs(1), "x", 2_000);
        assert!(!t.has_unpublished_changes());
        t.add(key(1), TTL, "x", 2_000);
        assert!(t.has_unpublished_changes());
    }

    #[test]
    fn allowlisted_hosts_are_refused_and_counted() {
        let mut t = table(10, FullPolicy::Refuse);
        let inside: BanKey = "10.20.30.40".parse().unwrap();
        let inside6: BanKey = "2001:db8::9".parse().unwrap();
        assert_eq!(t.add(inside, TTL, "x", 0), AddOutcome::RefusedAllowlisted);
        assert_eq!(t.add(inside6, TTL, "x", 0), AddOutcome::RefusedAllowlisted);
        assert_eq!(
            t.add_static(inside, "denylist", 0),
            AddOutcome::RefusedAllowlisted
        );
        assert_eq!(t.add(key(1), TTL, "x", 0), AddOutcome::Added);
        assert_eq!(t.len(), 1);
        assert_eq!(t.counters().refused_allowlisted, 3);
        assert_eq!(t.counters().added, 1);
    }

    #[test]
    fn new_allowlist_unbans_covered_hosts() {
        let mut t = table(10, FullPolicy::Refuse);
        t.add(key(1), TTL, "x", 0);
        t.add(key(200), TTL, "x", 0);
        let removed = t.set_allowlist(Allowlist::parse(["198.51.100.0/28"]).unwrap());
        assert_eq!(removed, vec![key(1)]);
        assert_eq!(t.len(), 1);
        assert!(t.get(&key(200)).is_some());
        assert_eq!(t.add(key(2), TTL, "x", 0), AddOutcome::RefusedAllowlisted);
        assert_eq!(t.counters().removed, 1);
    }

    #[test]
    fn full_table_refuses_under_refuse_policy() {
        let mut t = table(2, FullPolicy::Refuse);
        t.add(key(1), TTL, "x", 0);
        t.add(key(2), TTL, "x", 0);
        assert_eq!(t.add(key(3), TTL, "x", 0), AddOutcome::RefusedFull);
        assert_eq!(
            t.add(key(1), TTL, "x", 10),
            AddOutcome::Refreshed,
            "refresh still works"
        );
        assert_eq!(t.len(), 2);
        assert!(t.get(&key(3)).is_none());
        assert_eq!(t.counters().refused_full, 1);
    }

    #[test]
    fn evict_oldest_drops_earliest_expiry() {
        let mut t = table(3, FullPolicy::EvictOldest);
        t.add(key(1), TTL, "x", 3_000); // expires 63_000
        t.add(key(2), TTL, "x", 1_000); // expires 61_000: the oldest
        t.add(key(3), TTL, "x", 2_000); // expires 62_000
        t.publish();
        assert_eq!(
            t.add(key(4), TTL, "x", 4_000),
            AddOutcome::EvictedOldest(key(2))
        );
        assert_eq!(t.len(), 3);
        assert!(t.get(&key(2)).is_none());
        // A refresh moves a key to the back of the line.
        t.add(key(3), TTL, "x", 5_000); // expires 65_000
        assert_eq!(
            t.add(key(5), TTL, "x", 5_000),
            AddOutcome::EvictedOldest(key(1))
        );
        t.publish();
        let snap = t.reader().load();
        assert!(!snap.contains(&key(1), 5_000));
        assert!(!snap.contains(&key(2), 5_000));
        assert!(snap.contains(&key(5), 5_000));
        assert_eq!(t.counters().evicted, 2);
    }

    #[test]
    fn static_bans_never_expire_and_are_never_evicted() {
        let mut t = table(2, FullPolicy::EvictOldest);
        assert_eq!(t.add_static(key(1), "denylist", 0), AddOutcome::Added);
        assert_eq!(t.add_static(key(2), "denylist", 0), AddOutcome::Added);
        assert_eq!(t.add(key(3), TTL, "x", 0), AddOutcome::RefusedFull);
        assert_eq!(t.expire(u64::MAX), Vec::<BanKey>::new());
        t.publish();
        assert!(t.reader().load().contains(&key(1), u64::MAX - 1));
        let e = t.get(&key(1)).unwrap();
        assert!(e.is_static);
        assert_eq!(e.remaining_ms(5), None);
        // A detection on a static host counts but keeps it static.
        assert_eq!(t.add(key(1), TTL, "x", 9), AddOutcome::Refreshed);
        let e = t.get(&key(1)).unwrap();
        assert_eq!((e.expires_at, e.hits, e.is_static), (NEVER, 1, true));
    }

    #[test]
    fn add_static_turns_dynamic_ban_static() {
        let mut t = table(10, FullPolicy::EvictOldest);
        t.add(key(1), TTL, "x", 0);
        assert_eq!(t.add_static(key(1), "denylist", 5), AddOutcome::Refreshed);
        assert_eq!(t.expire(u64::MAX), Vec::<BanKey>::new());
        assert_eq!(t.get(&key(1)).unwrap().expires_at, NEVER);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn expire_removes_exactly_the_due_entries_in_expiry_order() {
        let mut t = table(100, FullPolicy::Refuse);
        for i in 0..10u32 {
            t.add(
                key(i),
                Duration::from_millis(u64::from(10 - i) * 100),
                "x",
                0,
            );
        }
        t.publish();
        // key(9) expires at 100, key(8) at 200, … key(0) at 1_000.
        assert_eq!(t.expire(99), Vec::<BanKey>::new());
        assert_eq!(t.expire(300), vec![key(9), key(8), key(7)]);
        assert_eq!(t.len(), 7);
        assert_eq!(t.counters().expired, 3);
        let report = t.publish();
        assert_eq!(report.generation, 2);
        assert_eq!(t.reader().load().len(), 7);
    }

    #[test]
    fn refresh_storm_keeps_the_expiry_queue_bounded() {
        let mut t = table(100, FullPolicy::EvictOldest);
        t.add(key(1), TTL, "x", 0);
        t.add(key(2), TTL, "x", 0);
        for now in 1..=5_000 {
            t.add(key(1), TTL, "x", now);
        }
        // Two live bans: rebuilt whenever the queue passes 2 × 2 + 1024.
        assert!(t.expiry.len() <= 2 * 2 + 1_024, "{}", t.expiry.len());
        // Still exact: key(2) expires at 60_000, key(1) at 65_000.
        assert_eq!(t.expire(64_999), vec![key(2)]);
        assert_eq!(t.expire(65_000), vec![key(1)]);
        assert_eq!(t.counters().expired, 2);
    }

    #[test]
    fn removed_then_readded_key_expires_once_at_its_new_time() {
        let mut t = table(100, FullPolicy::Refuse);
        t.add(key(1), TTL, "x", 0); // queued at 60_000
        t.remove(&key(1));
        t.add(key(1), TTL, "x", 10_000); // queued at 70_000
        assert_eq!(t.expire(69_999), Vec::<BanKey>::new());
        assert_eq!(t.len(), 1);
        assert_eq!(t.expire(70_000), vec![key(1)]);
        assert!(t.is_empty());
    }

    #[test]
    fn remove_and_flush() {
        let mut t = table(100, FullPolicy::Refuse);
        for i in 0..5 {
            t.add(key(i), TTL, "x", 0);
        }
        t.add_static(key(9), "denylist", 0);
        assert_eq!(t.remove(&key(0)).map(|e| e.hits), Some(1));
        assert_eq!(t.remove(&key(0)), None);
        assert_eq!(t.len(), 5);
        t.publish();
        assert_eq!(t.flush(), 5);
        assert!(t.is_empty());
        assert_eq!(t.expire(u64::MAX), Vec::<BanKey>::new());
        assert_eq!(t.counters().removed, 6);
        t.publish();
        let snap = t.reader().load();
        assert!(snap.is_empty());
        assert!(!snap.contains(&key(9), 0));
    }

    #[test]
    fn publish_rebuilds_only_touched_shards() {
        let mut t = table(10_000, FullPolicy::Refuse);
        for i in 0..2_000 {
            t.add(key(i), TTL, "x", 0);
        }
        t.publish();
        let before = Arc::clone(t.snapshot());
        let new_key = key(5_000);
        let removed = key(7);
        t.add(new_key, TTL, "x", 0);
        t.remove(&removed);
        let touched = [before.shard_of(&new_key), before.shard_of(&removed)];
        let report = t.publish();
        let distinct = if touched[0] == touched[1] { 1 } else { 2 };
        assert_eq!(report.shards_replaced, distinct);
        let after = Arc::clone(t.snapshot());
        for i in 0..SHARD_COUNT {
            let shared = before
                .shard(i)
                .unwrap()
                .shares_slots_with(after.shard(i).unwrap());
            assert_eq!(shared, !touched.contains(&i), "shard {i}");
        }
        assert_eq!(after.len(), 2_000);
        assert!(after.contains(&new_key, 0));
        assert!(!after.contains(&removed, 0));
        assert!(before.contains(&removed, 0), "old snapshot unchanged");
    }

    /// `n` keys that land in the same shard as `key(0)`.
    fn same_shard_keys(t: &BanTable, n: usize) -> Vec<BanKey> {
        let target = t.snapshot().shard_of(&key(0));
        (0..)
            .map(key)
            .filter(|k| t.snapshot().shard_of(k) == target)
            .take(n)
            .collect()
    }

    #[test]
    fn small_changes_are_patched_into_a_copy_not_rebuilt() {
        let mut t = table(10_000, FullPolicy::Refuse);
        let keys = same_shard_keys(&t, 12);
        for k in &keys[..8] {
            t.add(*k, TTL, "x", 0);
        }
        // Built from empty: 8 keys → 16 slots.
        assert_eq!(t.publish().shards_rebuilt, 1);
        let index = t.snapshot().shard_of(&keys[0]);
        assert_eq!(t.snapshot().shard(index).unwrap().capacity(), 16);

        t.remove(&keys[0]);
        t.add(keys[8], TTL, "x", 0);
        t.add(keys[1], TTL, "x", 30_000); // refresh: new expiry
        let report = t.publish();
        assert_eq!((report.shards_replaced, report.shards_rebuilt), (1, 0));
        let snap = t.snapshot();
        assert_eq!(snap.shard(index).unwrap().capacity(), 16);
        assert_eq!(snap.len(), 8);
        assert!(!snap.contains(&keys[0], 0));
        assert!(snap.contains(&keys[8], 0));
        assert_eq!(snap.expiry_of(&keys[1]), Some(90_000));
        for k in &keys[2..8] {
            assert_eq!(snap.expiry_of(k), Some(60_000));
        }

        // Past half full the shard is rebuilt twice as large.
        for k in &keys[9..12] {
            t.add(*k, TTL, "x", 0);
        }
        let report = t.publish();
        assert_eq!((report.shards_replaced, report.shards_rebuilt), (1, 1));
        assert_eq!(t.snapshot().shard(index).unwrap().capacity(), 32);
        assert_eq!(t.snapshot().len(), 11);
    }

    #[test]
    fn long_change_lists_turn_into_a_rebuild() {
        let mut t = table(10_000, FullPolicy::Refuse);
        let k = key(1);
        t.add(k, TTL, "x", 0);
        t.publish();
        // The same key refreshed many times: the list would outgrow the shard.
        for now in 1..=200 {
            t.add(k, TTL, "x", now);
        }
        let report = t.publish();
        assert_eq!((report.shards_replaced, report.shards_rebuilt), (1, 1));
        assert_eq!(t.snapshot().expiry_of(&k), Some(60_200));
    }

    #[test]
    fn flush_rebuilds_touched_shards_empty() {
        let mut t = table(10_000, FullPolicy::Refuse);
        let keys = same_shard_keys(&t, 3);
        for k in &keys {
            t.add(*k, TTL, "x", 0);
        }
        t.publish();
        t.flush();
        let report = t.publish();
        assert_eq!((report.shards_replaced, report.shards_rebuilt), (1, 1));
        let index = t.snapshot().shard_of(&keys[0]);
        assert_eq!(t.snapshot().shard(index).unwrap().capacity(), 0);
    }

    #[test]
    fn replaced_snapshots_are_freed_on_the_control_thread() {
        let mut t = table(10, FullPolicy::Refuse);
        let reader = t.reader();
        t.add(key(1), TTL, "x", 0);
        t.publish();
        let gen1 = std::sync::Arc::downgrade(t.snapshot());
        let held = reader.load();
        t.add(key(2), TTL, "x", 0);
        t.publish();
        // A worker still holds generation 1: kept, not freed by its guard.
        assert_eq!(t.publisher.retired(), 1);
        drop(held);
        assert!(gen1.upgrade().is_some(), "the guard's drop did not free it");
        assert_eq!(t.reclaim(), 1);
        assert!(gen1.upgrade().is_none(), "freed by reclaim");
        assert_eq!(t.publisher.retired(), 0);
    }

    #[test]
    fn reader_with_old_guard_sees_old_set() {
        let mut t = table(10, FullPolicy::Refuse);
        let reader = t.reader();
        t.add(key(1), TTL, "x", 0);
        t.publish();
        let old = reader.load();
        t.remove(&key(1));
        t.add(key(2), TTL, "x", 0);
        t.publish();
        let new = reader.load();
        assert_eq!((old.generation(), new.generation()), (1, 2));
        assert!(old.contains(&key(1), 0) && !old.contains(&key(2), 0));
        assert!(!new.contains(&key(1), 0) && new.contains(&key(2), 0));
    }

    #[test]
    fn restore_keeps_absolute_expiry_and_counters() {
        let mut t = table(10, FullPolicy::Refuse);
        let saved = BanEntry {
            expires_at: 90_000,
            reason: "utp".into(),
            first_seen: 10,
            last_seen: 20,
            hits: 7,
            is_static: false,
        };
        assert_eq!(t.restore(key(1), saved.clone()), AddOutcome::Added);
        assert_eq!(t.get(&key(1)), Some(&saved));
        assert_eq!(t.restore(key(1), saved.clone()), AddOutcome::Refreshed);
        assert_eq!(t.len(), 1);
        let inside: BanKey = "10.0.0.1".parse().unwrap();
        assert_eq!(t.restore(inside, saved), AddOutcome::RefusedAllowlisted);
        assert_eq!(t.expire(89_999), Vec::<BanKey>::new());
        assert_eq!(t.expire(90_000), vec![key(1)]);
    }

    #[test]
    fn list_is_sorted_and_complete() {
        let mut t = table(10, FullPolicy::Refuse);
        for i in [5, 1, 3] {
            t.add(key(i), TTL, "x", 0);
        }
        let keys: Vec<BanKey> = t.list().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![key(1), key(3), key(5)]);
    }

    #[test]
    fn huge_ttl_saturates() {
        let mut t = table(10, FullPolicy::Refuse);
        t.add(key(1), Duration::MAX, "x", 5);
        assert_eq!(t.get(&key(1)).unwrap().expires_at, u64::MAX);
        assert_eq!(t.expire(u64::MAX - 1), Vec::<BanKey>::new());
    }
}
