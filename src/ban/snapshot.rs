//! The immutable ban snapshot the workers read, and its publication.
//!
//! Read-copy-update: the control thread builds a new [`Snapshot`] and swaps
//! it in with one atomic pointer store (`arc-swap`); a worker loads the
//! pointer once per burst ([`SnapshotReader::load`]) and asks the guard about
//! every packet. Readers never wait and never see a half-built table.
//!
//! A snapshot is [`SHARD_COUNT`] shards, each an `Arc`'d slot array. Publishing
//! copies only the shards whose keys changed (a `memcpy` of the slot array,
//! then the changes patched in) and shares the others with the previous
//! snapshot, so a publish after one new ban copies one ~1 k-entry shard
//! rather than a million-entry set.
//!
//! The snapshot carries one membership filter for all its shards (a Bloom
//! filter, 16 bits a key of room, each key's bits in one 64-bit word) that a
//! lookup reads first, straight from the snapshot: most packets' hosts are
//! not banned, and the filter says so from one word of a structure ~1/16 the
//! slot arrays' size, so at a million bans the common lookup stays in the
//! caches. Snapshots share the filter; the publisher sets the bits of the
//! keys each publish brings before it publishes, and builds a fresh one when
//! removed keys' stale bits pile up (see [`super::filter`]), so it never
//! misses a key the slots hold.
//!
//! Memory is freed on the control thread, never on a worker: the publisher
//! keeps each replaced snapshot until it holds the only reference, so a
//! worker's guard drop is a plain decrement, not a `free`.
use super::filter::{FilterHasher, FilterView, FilterWriter};
use super::hash::{KeyHasher, SHARD_COUNT};
use super::key::BanKey;
use arc_swap::{ArcSwap, Guard};
use std::ops::Deref;
use std::sync::Arc;

/// `expires_at` of a free slot. A ban that expires at 0 is never in force
/// (`now_ms < 0` is false), so leaving it out of a shard changes nothing.
const FREE: u64 = 0;

/// Smallest non-empty slot array.
const MIN_CAPACITY: usize = 8;

/// Smallest filter room (keys): 2 KiB of filter, so a small ban list does
/// not rebuild its filter every few publishes.
const MIN_FILTER_ROOM: usize = 1_024;

/// The room a fresh filter gets for `len` keys: half as many again, so the
/// next rebuild comes after ~`len / 2` adds or removals (a rebuild hashes
/// every key: O(bans), amortised over as many changes), while the filter
/// stays ~24 bits a ban (3 MB at a million).
fn filter_room(len: usize) -> usize {
    len.saturating_add(len / 2).max(MIN_FILTER_ROOM)
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: BanKey,
    /// Unix ms at which the ban stops applying; [`FREE`] marks an empty slot.
    expires_at: u64,
}

/// One read-only open-addressing hash set (linear probing, load ≤ 1/2) of
/// banned keys with their expiry, so a worker can ignore a ban that ran out
/// after the last publish.
///
/// The slot array is an `Arc<[Slot]>` held inline in the snapshot, so a
/// lookup goes snapshot → slot with no shard header in between, and an
/// unchanged shard is shared between snapshots by cloning the `Arc`.
#[derive(Clone)]
pub struct Shard {
    /// A power of two long, or empty.
    slots: Arc<[Slot]>,
    len: usize,
    /// Keys the patch that made this shard removed from its predecessor
    /// (0 for a built one): their filter bits are now stale.
    removed: usize,
    /// For the publisher, which takes it: the keys the patch that made
    /// this shard inserted or updated (their bits go into the shared
    /// filter), or `None` for a built shard (all its keys do).
    added: Option<Box<[BanKey]>>,
}

impl Shard {
    pub fn empty() -> Self {
        Shard {
            slots: Arc::new([]),
            len: 0,
            removed: 0,
            added: None,
        }
    }

    /// Builds a shard from distinct `(key, expires_at)` pairs that all hash
    /// to this shard. Pairs with `expires_at == 0` are left out (never in
    /// force).
    pub fn build<I>(entries: I, hasher: &KeyHasher) -> Self
    where
        I: ExactSizeIterator<Item = (BanKey, u64)>,
    {
        let expected = entries.len();
        if expected == 0 {
            return Shard::empty();
        }
        // At most half full: a miss (the common case: most packets are not
        // banned) then ends after ~2.5 probes on average.
        let capacity = expected
            .saturating_mul(2)
            .next_power_of_two()
            .max(MIN_CAPACITY);
        let mut slots: Arc<[Slot]> = std::iter::repeat_n(Slot::default(), capacity).collect();
        let mut len = 0;
        if let Some(table) = Arc::get_mut(&mut slots) {
            for (key, expires_at) in entries.filter(|&(_, e)| e != FREE) {
                // Cannot fail: `entries` reported its length, so at most
                // half the slots get taken.
                if upsert(table, key, expires_at, hasher) == Some(Upserted::Inserted) {
                    len += 1;
                }
            }
        }
        Shard {
            slots,
            len,
            removed: 0,
            added: None,
        }
    }

    /// A copy of this shard with `changes` applied: `(key, expires_at)`
    /// inserts or updates `key`, `(key, 0)` removes it. Costs one copy of the
    /// slot array plus the changes. `None` if `new_len` (the shard's size
    /// after the changes) would make it more than half full or under 1/8
    /// full: rebuild it with [`Shard::build`] instead.
    pub fn patched<I>(&self, new_len: usize, changes: I, hasher: &KeyHasher) -> Option<Self>
    where
        I: IntoIterator<Item = (BanKey, u64)> + Clone,
    {
        let capacity = self.slots.len();
        let too_full = new_len.saturating_mul(2) > capacity;
        let too_sparse = capacity > MIN_CAPACITY && new_len.saturating_mul(8) < capacity;
        if too_full || too_sparse {
            return None;
        }
        // One allocation and one copy (a slice iterator has an exact length).
        let mut slots: Arc<[Slot]> = self.slots.iter().copied().collect();
        let table = Arc::get_mut(&mut slots)?;
        let mut len = self.len;
        // Removals first, so the table never holds more than the final
        // `new_len` ≤ capacity / 2 entries and probing always ends.
        for (key, _) in changes.clone().into_iter().filter(|&(_, e)| e == FREE) {
            if remove(table, &key, hasher) {
                len -= 1;
            }
        }
        let removed = self.len - len;
        let mut added = Vec::new();
        for (key, expires_at) in changes.into_iter().filter(|&(_, e)| e != FREE) {
            if upsert(table, key, expires_at, hasher)? == Upserted::Inserted {
                len += 1;
            }
            added.push(key);
        }
        Some(Shard {
            slots,
            len,
            removed,
            added: Some(added.into_boxed_slice()),
        })
    }

    /// When the ban on `key` expires (unix ms), if this shard holds it.
    /// `hash` is `hasher.hash(key)` with the snapshot's hasher.
    #[inline]
    fn expiry_in_slots(&self, key: &BanKey, hash: u64) -> Option<u64> {
        let index = probe(&self.slots, key, hash)?.ok()?;
        self.slots.get(index).map(|slot| slot.expires_at)
    }

    /// Slots allocated (a power of two, or 0).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The filter hashes of the keys this shard holds.
    fn key_hashes<'a>(&'a self, hasher: &'a FilterHasher) -> impl Iterator<Item = u64> + 'a {
        self.slots
            .iter()
            .filter(|slot| slot.expires_at != FREE)
            .map(|slot| hasher.hash(&slot.key))
    }

    /// True if both are the same slot array (shared, not copied).
    pub fn shares_slots_with(&self, other: &Shard) -> bool {
        Arc::ptr_eq(&self.slots, &other.slots)
    }
}

/// The slot holding `key`, or else the free slot that ends its probe run.
/// `None` only for an empty or completely full table.
#[inline]
fn probe(slots: &[Slot], key: &BanKey, hash: u64) -> Option<Result<usize, usize>> {
    let mask = slots.len().wrapping_sub(1);
    let mut i = hash as usize;
    for _ in 0..slots.len() {
        let index = i & mask;
        let slot = slots.get(index)?;
        if slot.expires_at == FREE {
            return Some(Err(index));
        }
        if slot.key == *key {
            return Some(Ok(index));
        }
        i = i.wrapping_add(1);
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Upserted {
    Inserted,
    Updated,
}

/// Inserts or updates `key`; `None` only if the table is full (cannot happen
/// below the load limit that `build` and `patched` keep).
fn upsert(
    slots: &mut [Slot],
    key: BanKey,
    expires_at: u64,
    hasher: &KeyHasher,
) -> Option<Upserted> {
    let (index, outcome) = match probe(slots, &key, hasher.hash(&key))? {
        Ok(index) => (index, Upserted::Updated),
        Err(index) => (index, Upserted::Inserted),
    };
    *slots.get_mut(index)? = Slot { key, expires_at };
    Some(outcome)
}

/// Removes `key` by backward-shift deletion: later entries of the same probe
/// run move up into the hole, so no tombstones are left to slow down misses.
/// Returns false if `key` was absent.
fn remove(slots: &mut [Slot], key: &BanKey, hasher: &KeyHasher) -> bool {
    let Some(Ok(mut hole)) = probe(slots, key, hasher.hash(key)) else {
        return false;
    };
    let mask = slots.len().wrapping_sub(1);
    let mut j = hole;
    for _ in 0..slots.len() {
        j = (j + 1) & mask;
        let Some(&next) = slots.get(j) else {
            break;
        };
        if next.expires_at == FREE {
            break;
        }
        let home = hasher.hash(&next.key) as usize & mask;
        // `next` may fill the hole unless its home lies cyclically in
        // (hole, j]: then moving it before its home would hide it.
        if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
            if let Some(slot) = slots.get_mut(hole) {
                *slot = next;
            }
            hole = j;
        }
    }
    if let Some(slot) = slots.get_mut(hole) {
        *slot = Slot::default();
    }
    true
}

/// One published, immutable view of the ban table.
/// `repr(C)`: the fields every lookup reads (`len`, the filter and its
/// hasher) first, together, rather than wherever the compiler puts them
/// (after the 24 KiB shard array).
#[repr(C)]
pub struct Snapshot {
    len: usize,
    /// Every key the shards hold (plus stale bits): read by every lookup
    /// first, with `filter_hasher`'s hash.
    filter: FilterView,
    filter_hasher: FilterHasher,
    hasher: KeyHasher,
    generation: u64,
    shards: [Shard; SHARD_COUNT],
}

impl Snapshot {
    fn empty(hasher: KeyHasher, filter: FilterView) -> Self {
        let empty = Shard::empty();
        Snapshot {
            len: 0,
            filter,
            filter_hasher: FilterHasher::new(&hasher),
            hasher,
            generation: 0,
            shards: std::array::from_fn(|_| empty.clone()),
        }
    }

    /// True if `key` is banned at `now_ms`. No allocation, no lock, one
    /// hash and one word of the filter; the slot array only for the <1 % of
    /// keys not banned that pass it, and for the banned ones.
    #[inline]
    pub fn contains(&self, key: &BanKey, now_ms: u64) -> bool {
        if self.len == 0 {
            return false;
        }
        self.filter.may_contain(self.filter_hasher.hash(key))
            && self.in_force(key, self.hasher.hash(key), now_ms)
    }

    /// True if `a` or `b` is banned at `now_ms`: the per-packet check of a
    /// packet's two hosts. Both filter words are loaded before either is
    /// tested, so their cache misses overlap instead of following each
    /// other; the slots only for a host that passes.
    #[inline]
    pub fn contains_either(&self, a: &BanKey, b: &BanKey, now_ms: u64) -> bool {
        if self.len == 0 {
            return false;
        }
        let (pass_a, pass_b) = (
            self.filter.may_contain(self.filter_hasher.hash(a)),
            self.filter.may_contain(self.filter_hasher.hash(b)),
        );
        if !(pass_a | pass_b) {
            return false;
        }
        (pass_a && self.in_force(a, self.hasher.hash(a), now_ms))
            || (pass_b && self.in_force(b, self.hasher.hash(b), now_ms))
    }

    /// The slot lookup behind the filter: is `key` (hash `hash`) in its
    /// shard with a ban in force at `now_ms`?
    #[inline]
    fn in_force(&self, key: &BanKey, hash: u64, now_ms: u64) -> bool {
        self.shards
            .get(KeyHasher::shard_of_hash(hash))
            .and_then(|shard| shard.expiry_in_slots(key, hash))
            .is_some_and(|expires_at| now_ms < expires_at)
    }

    /// As [`Snapshot::contains`] but straight to the slot array, without the
    /// filter: the lookup as it was before the filter, kept so the benches
    /// can run both side by side. Same answers, slower at scale.
    #[inline]
    pub fn contains_unfiltered(&self, key: &BanKey, now_ms: u64) -> bool {
        let hash = self.hasher.hash(key);
        self.shards
            .get(KeyHasher::shard_of_hash(hash))
            .and_then(|shard| shard.expiry_in_slots(key, hash))
            .is_some_and(|expires_at| now_ms < expires_at)
    }

    /// Bytes of the filter (the part of the snapshot a lookup of a host
    /// that is not banned reads).
    pub fn filter_bytes(&self) -> usize {
        self.filter.bytes()
    }

    /// True if both snapshots read the same filter (one publish added to
    /// it rather than building a fresh one).
    pub fn shares_filter_with(&self, other: &Snapshot) -> bool {
        self.filter.shares_words_with(&other.filter)
    }

    /// When the ban on `key` expires (unix ms; `u64::MAX` for a static ban),
    /// whether or not it is still in force.
    #[inline]
    pub fn expiry_of(&self, key: &BanKey) -> Option<u64> {
        if !self.filter.may_contain(self.filter_hasher.hash(key)) {
            return None;
        }
        let hash = self.hasher.hash(key);
        self.shards
            .get(KeyHasher::shard_of_hash(hash))
            .and_then(|shard| shard.expiry_in_slots(key, hash))
    }

    /// Publish counter: 0 for the initial empty snapshot, +1 per publish.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Entries in the snapshot, including ones that expired since it was
    /// published.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The shard `key` lives in.
    pub fn shard_of(&self, key: &BanKey) -> usize {
        self.hasher.shard_of(key)
    }

    /// Shard `index` (< [`SHARD_COUNT`]): lets tests and diagnostics see
    /// which shards two snapshots share.
    pub fn shard(&self, index: usize) -> Option<&Shard> {
        self.shards.get(index)
    }
}

/// The control thread's end: owns the current snapshot and swaps in new ones.
pub struct SnapshotPublisher {
    shared: Arc<ArcSwap<Snapshot>>,
    current: Arc<Snapshot>,
    /// Replaced snapshots that a worker may still hold; freed here, by
    /// [`SnapshotPublisher::reclaim`], once nobody else does.
    retired: Vec<Arc<Snapshot>>,
    /// The only writer of the current snapshot's filter.
    filter: FilterWriter,
    /// Keys removed since `filter` was built whose bits are still set (a
    /// lower bound: a rebuilt shard counts only its net shrinkage).
    stale: usize,
}

impl SnapshotPublisher {
    /// Starts with an empty snapshot of generation 0.
    pub fn new(hasher: KeyHasher) -> Self {
        let filter = FilterWriter::with_room(0);
        let current = Arc::new(Snapshot::empty(hasher, filter.view()));
        SnapshotPublisher {
            shared: Arc::new(ArcSwap::new(Arc::clone(&current))),
            current,
            retired: Vec::new(),
            filter,
            stale: 0,
        }
    }

    /// A handle for a worker.
    pub fn reader(&self) -> SnapshotReader {
        SnapshotReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The snapshot readers see now.
    pub fn current(&self) -> &Arc<Snapshot> {
        &self.current
    }

    pub fn hasher(&self) -> &KeyHasher {
        &self.current.hasher
    }

    /// Publishes a snapshot equal to the current one except for the given
    /// `(shard index, new shard)` pairs; untouched shards are shared, not
    /// copied. Returns the new generation. Indexes ≥ [`SHARD_COUNT`] are
    /// ignored.
    ///
    /// The filter: the replaced shards' keys are added to the shared one
    /// (O(changed shards), no copy) before the snapshot is published, or,
    /// once keys and stale bits outgrow its room (or it is 8 times too
    /// big), a fresh one is built from every shard into the new snapshot.
    pub fn publish<I>(&mut self, replaced: I) -> u64
    where
        I: IntoIterator<Item = (usize, Shard)>,
    {
        let hasher = self.current.hasher;
        let filter_hasher = self.current.filter_hasher;
        let mut shards = self.current.shards.clone();
        for (index, mut shard) in replaced {
            if let Some(slot) = shards.get_mut(index) {
                // Exact for a patched shard; a rebuilt one reports 0 removed
                // and counts its net shrinkage.
                let removed = shard.removed.max(slot.len.saturating_sub(shard.len));
                self.stale = self.stale.saturating_add(removed);
                // Into the shared filter (wasted, harmlessly, if it is
                // rebuilt below): the keys the patch set, or every key of a
                // built shard. Taken out, so snapshots keep no key lists.
                match shard.added.take() {
                    Some(added) => added
                        .iter()
                        .for_each(|key| self.filter.insert(filter_hasher.hash(key))),
                    None => shard
                        .key_hashes(&filter_hasher)
                        .for_each(|hash| self.filter.insert(hash)),
                }
                *slot = shard;
            }
        }
        let len: usize = shards.iter().map(Shard::len).sum();
        let room = self.filter.room();
        if len.saturating_add(self.stale) > room
            || room > MIN_FILTER_ROOM.max(len.saturating_mul(8))
        {
            self.filter = FilterWriter::with_room(filter_room(len));
            self.stale = 0;
            for shard in &shards {
                shard
                    .key_hashes(&filter_hasher)
                    .for_each(|hash| self.filter.insert(hash));
            }
        }
        let next = Arc::new(Snapshot {
            len,
            filter: self.filter.view(),
            filter_hasher,
            hasher,
            generation: self.current.generation.wrapping_add(1),
            shards,
        });
        // The filter's bits for `next` are all stored above: the pointer
        // store below (release) makes them visible to a worker before it
        // can load `next` (acquire).
        // `store` returns once every reader that loaded the old pointer holds
        // a counted reference to it, so the counts `reclaim` reads are final.
        self.shared.store(Arc::clone(&next));
        let old = std::mem::replace(&mut self.current, next);
        self.retired.push(old);
        self.reclaim();
        self.current.generation
    }

    /// Frees the replaced snapshots that no worker holds any more; returns
    /// how many. `publish` calls it; call it on the control thread's tick too,
    /// so a snapshot a worker held during the last publish goes soon after.
    pub fn reclaim(&mut self) -> usize {
        let before = self.retired.len();
        self.retired
            .retain(|snapshot| Arc::strong_count(snapshot) > 1);
        before - self.retired.len()
    }

    /// Replaced snapshots still held by some worker.
    pub fn retired(&self) -> usize {
        self.retired.len()
    }
}

/// A worker's handle on the published snapshot.
#[derive(Clone)]
pub struct SnapshotReader {
    shared: Arc<ArcSwap<Snapshot>>,
}

impl SnapshotReader {
    /// The current snapshot. Call once per burst and query the guard for
    /// each packet: `load` borrows a per-thread slot instead of touching the
    /// shared reference count (never use `load_full` per burst: it bounces
    /// one cache line between all workers).
    #[inline]
    pub fn load(&self) -> SnapshotGuard {
        SnapshotGuard(self.shared.load())
    }
}

/// A loaded snapshot; keeps it alive while held. Hold it for one burst, not
/// longer: a held guard keeps an old snapshot's memory alive.
pub struct SnapshotGuard(Guard<Arc<Snapshot>>);

impl Deref for SnapshotGuard {
    type Target = Snapshot;

    #[inline]
    fn deref(&self) -> &Snapshot {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(i: u32) -> BanKey {
        BanKey::from(Ipv4Addr::from(0x0a00_0000 + i))
    }

    /// Keys 0..n of [`key`] grouped by shard.
    fn by_shard(hasher: &KeyHasher, n: u32) -> Vec<Vec<(BanKey, u64)>> {
        let mut shards = vec![Vec::new(); SHARD_COUNT];
        for i in 0..n {
            let k = key(i);
            shards[hasher.shard_of(&k)].push((k, 1_000 + u64::from(i)));
        }
        shards
    }

    #[test]
    fn shard_finds_every_key_it_was_built_with_and_no_other() {
        let hasher = KeyHasher::with_seed(3);
        let entries: Vec<_> = (0..500).map(|i| (key(i), 5_000)).collect();
        let shard = Shard::build(entries.iter().copied(), &hasher);
        assert_eq!(shard.len(), 500);
        for (k, _) in &entries {
            assert_eq!(shard.expiry_in_slots(k, hasher.hash(k)), Some(5_000));
        }
        for i in 500..1_500 {
            let k = key(i);
            assert_eq!(shard.expiry_in_slots(&k, hasher.hash(&k)), None);
        }
    }

    #[test]
    fn shard_leaves_out_entries_expiring_at_zero() {
        let hasher = KeyHasher::with_seed(3);
        let shard = Shard::build([(key(1), 0), (key(2), 9)].into_iter(), &hasher);
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.expiry_in_slots(&key(1), hasher.hash(&key(1))), None);
    }

    #[test]
    fn empty_shard_answers_no() {
        let hasher = KeyHasher::with_seed(3);
        let shard = Shard::empty();
        assert!(shard.is_empty());
        assert_eq!(shard.expiry_in_slots(&key(1), hasher.hash(&key(1))), None);
    }

    /// xorshift64: reproducible pseudo-random test data.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn patched_shard_matches_a_model_through_random_changes() {
        // A small universe keeps the shard near half full (long probe runs
        // that wrap around the end of the array, removals inside them); a
        // larger one grows and shrinks it.
        for universe in [12u64, 64] {
            let (patches, rebuilds) = patch_against_model(universe);
            assert!(
                patches > 200 && rebuilds >= 2,
                "universe {universe}: {patches} patches, {rebuilds} rebuilds"
            );
        }
    }

    /// Applies 300 rounds of random changes over `universe` keys to a shard
    /// and to a `BTreeMap`, checking every key after each round. Returns how
    /// many rounds patched and how many rebuilt.
    fn patch_against_model(universe: u64) -> (u32, u32) {
        let hasher = KeyHasher::with_seed(universe);
        let mut model: std::collections::BTreeMap<BanKey, u64> = Default::default();
        let mut shard = Shard::empty();
        let mut rng = 0x1234_5678_9abc_def0;
        let (mut patches, mut rebuilds) = (0, 0);
        for round in 0..300u64 {
            let mut changed = Vec::new();
            for _ in 0..(next(&mut rng) % 6) {
                let k = key((next(&mut rng) % universe) as u32);
                if next(&mut rng).is_multiple_of(3) {
                    model.remove(&k);
                } else {
                    model.insert(k, round + 1);
                }
                changed.push(k);
            }
            // Repeats must be harmless: each entry carries the key's final
            // value, as the table sends it.
            let patch: Vec<(BanKey, u64)> = changed
                .iter()
                .map(|k| (*k, model.get(k).copied().unwrap_or(0)))
                .collect();
            shard = match shard.patched(model.len(), patch.iter().copied(), &hasher) {
                Some(patched) => {
                    patches += 1;
                    patched
                }
                None => {
                    rebuilds += 1;
                    Shard::build(model.iter().map(|(k, e)| (*k, *e)), &hasher)
                }
            };
            assert_eq!(shard.len(), model.len(), "round {round}");
            for i in 0..universe as u32 {
                let k = key(i);
                let got = shard.expiry_in_slots(&k, hasher.hash(&k));
                assert_eq!(got, model.get(&k).copied(), "round {round}, key {i}");
            }
        }
        (patches, rebuilds)
    }

    /// Random adds, refreshes, removals and expiries through the real
    /// table's publish (patched shards and rebuilt ones, the shared filter
    /// added to and rebuilt): after every publish, every key the snapshot
    /// holds passes its filter, and the filtered lookups answer as the
    /// unfiltered one and the model, at times before and after each ban's
    /// expiry. The previous publish's snapshot, still held, must keep
    /// answering as its own model while the next one adds to the filter it
    /// shares.
    #[test]
    fn filter_never_loses_a_key_across_random_publishes() {
        use crate::ban::{Allowlist, BanTable, BanTableConfig};
        use std::time::Duration;
        let hasher = KeyHasher::with_seed(77);
        let mut table =
            BanTable::with_hasher(BanTableConfig::default(), Allowlist::default(), hasher);
        let mut model: std::collections::BTreeMap<BanKey, u64> = Default::default();
        let mut rng = 0x0bad_cafe_dead_beef_u64;
        let universe = 6_000u64;
        let mut now = 1_000u64;
        let (mut checked, mut passed_filter) = (0u64, 0u64);
        let (mut shared, mut fresh) = (0u32, 0u32);
        let mut previous = (table.reader().load(), model.clone(), now);
        for round in 0..120 {
            // Some rounds grow the list, some churn it, some shrink it.
            let remove_every = [4, 2, 8][round % 3];
            for _ in 0..(next(&mut rng) % 400) {
                let k = key((next(&mut rng) % universe) as u32);
                if next(&mut rng).is_multiple_of(remove_every) {
                    table.remove(&k);
                    model.remove(&k);
                } else {
                    let ttl = 1 + next(&mut rng) % 5_000;
                    table.add(k, Duration::from_millis(ttl), "t", now);
                    let expiry = model.entry(k).or_insert(0);
                    *expiry = (*expiry).max(now + ttl);
                }
            }
            now += next(&mut rng) % 1_000;
            for k in table.expire(now) {
                model.remove(&k);
            }
            table.publish();
            let snap = table.reader().load();
            assert_eq!(snap.len(), model.len(), "round {round}");
            if snap.generation() != previous.0.generation() {
                if snap.shares_filter_with(&previous.0) {
                    shared += 1;
                } else {
                    fresh += 1;
                }
            }
            for i in 0..universe as u32 {
                let k = key(i);
                let hash = FilterHasher::new(&hasher).hash(&k);
                if let Some(&expiry) = model.get(&k) {
                    assert!(snap.filter.may_contain(hash), "round {round}, key {i}");
                    assert_eq!(snap.expiry_of(&k), Some(expiry), "round {round}, key {i}");
                } else {
                    passed_filter += u64::from(snap.filter.may_contain(hash));
                }
                for at in [now, now + 2_500, now + 6_000] {
                    let want = model.get(&k).is_some_and(|&e| at < e);
                    assert_eq!(snap.contains(&k, at), want, "round {round}, key {i}");
                    assert_eq!(snap.contains_unfiltered(&k, at), want);
                    let other = key((i + 1) % universe as u32);
                    let want_either = want || model.get(&other).is_some_and(|&e| at < e);
                    assert_eq!(snap.contains_either(&k, &other, at), want_either);
                }
                let (old, old_model, old_now) = &previous;
                let want = old_model.get(&k).is_some_and(|&e| *old_now < e);
                assert_eq!(
                    old.contains(&k, *old_now),
                    want,
                    "round {round}, old, key {i}"
                );
                checked += 1;
            }
            previous = (snap, model.clone(), now);
        }
        assert_eq!(checked, 120 * universe);
        // Both ways of publishing the filter were taken, several times.
        assert!(shared >= 20 && fresh >= 3, "{shared} shared, {fresh} fresh");
        // Not the point of the test, but a filter that passes everything
        // would pass it too.
        assert!(passed_filter * 20 < checked, "{passed_filter} passed");
    }

    #[test]
    fn patch_refuses_to_overfill_or_leave_too_sparse() {
        let hasher = KeyHasher::with_seed(8);
        let shard = Shard::build((0..8).map(|i| (key(i), 5)), &hasher);
        assert_eq!(shard.capacity(), 16);
        let add = |i| [(key(i), 5)];
        assert!(shard.patched(8, [], &hasher).is_some());
        assert!(
            shard.patched(9, add(8), &hasher).is_none(),
            "over half full"
        );
        let removals: Vec<_> = (0..7).map(|i| (key(i), 0)).collect();
        assert!(
            shard
                .patched(1, removals.iter().copied(), &hasher)
                .is_none(),
            "under 1/8"
        );
        let removals: Vec<_> = (0..6).map(|i| (key(i), 0)).collect();
        let patched = shard.patched(2, removals.iter().copied(), &hasher).unwrap();
        assert_eq!(patched.len(), 2);
        assert_eq!(shard.len(), 8, "the original is untouched");
    }

    #[test]
    fn contains_honours_expiry_at_query_time() {
        let hasher = KeyHasher::with_seed(5);
        let mut publisher = SnapshotPublisher::new(hasher);
        let k = key(42);
        let shard = Shard::build([(k, 2_000)].into_iter(), &hasher);
        publisher.publish([(hasher.shard_of(&k), shard)]);
        let snap = publisher.reader().load();
        assert!(snap.contains(&k, 0));
        assert!(snap.contains(&k, 1_999));
        assert!(!snap.contains(&k, 2_000));
        assert!(!snap.contains(&key(43), 0));
        assert_eq!(snap.expiry_of(&k), Some(2_000));
    }

    #[test]
    fn generations_count_publishes() {
        let hasher = KeyHasher::with_seed(5);
        let mut publisher = SnapshotPublisher::new(hasher);
        let reader = publisher.reader();
        assert_eq!(reader.load().generation(), 0);
        assert_eq!(publisher.publish([]), 1);
        assert_eq!(publisher.publish([]), 2);
        assert_eq!(reader.load().generation(), 2);
        assert_eq!(publisher.current().generation(), 2);
    }

    #[test]
    fn publish_shares_untouched_shards_and_counts_entries() {
        let hasher = KeyHasher::with_seed(11);
        let mut publisher = SnapshotPublisher::new(hasher);
        let groups = by_shard(&hasher, 4_096);
        publisher.publish(
            groups
                .iter()
                .enumerate()
                .map(|(i, g)| (i, Shard::build(g.iter().copied(), &hasher))),
        );
        let before = Arc::clone(publisher.current());
        assert_eq!(before.len(), 4_096);

        let replaced = 17;
        publisher.publish([(replaced, Shard::empty())]);
        let after = Arc::clone(publisher.current());
        assert_eq!(after.len(), 4_096 - groups[replaced].len());
        for i in 0..SHARD_COUNT {
            let shared = before
                .shard(i)
                .unwrap()
                .shares_slots_with(after.shard(i).unwrap());
            assert_eq!(shared, i != replaced, "shard {i}");
        }
        assert!(before.shard(SHARD_COUNT).is_none());
    }

    #[test]
    fn old_guard_keeps_seeing_old_snapshot() {
        let hasher = KeyHasher::with_seed(5);
        let mut publisher = SnapshotPublisher::new(hasher);
        let reader = publisher.reader();
        let k = key(7);
        let shard = hasher.shard_of(&k);
        publisher.publish([(shard, Shard::build([(k, u64::MAX)].into_iter(), &hasher))]);

        let old = reader.load();
        publisher.publish([(shard, Shard::empty())]);
        let new = reader.load();
        assert_eq!(old.generation(), 1);
        assert!(old.contains(&k, 0));
        assert_eq!(new.generation(), 2);
        assert!(!new.contains(&k, 0));
    }

    #[test]
    fn old_snapshot_is_freed_by_the_publisher_after_last_guard_drops() {
        let hasher = KeyHasher::with_seed(5);
        let mut publisher = SnapshotPublisher::new(hasher);
        let reader = publisher.reader();
        let k = key(9);
        let index = hasher.shard_of(&k);
        publisher.publish([(index, Shard::build([(k, 10)].into_iter(), &hasher))]);
        let old_shard = Arc::downgrade(&publisher.current().shard(index).unwrap().slots);

        let guard = reader.load();
        publisher.publish([(index, Shard::empty())]);
        assert!(old_shard.upgrade().is_some(), "guard still holds it");
        assert_eq!(publisher.retired(), 1);
        assert_eq!(publisher.reclaim(), 0, "not while a guard holds it");
        drop(guard);
        assert!(old_shard.upgrade().is_some(), "a worker's drop never frees");
        assert_eq!(publisher.reclaim(), 1);
        assert!(old_shard.upgrade().is_none(), "freed by the publisher");
        // Without a guard in the way, publish frees the old one at once.
        publisher.publish([]);
        assert_eq!(publisher.retired(), 0);
    }
}
