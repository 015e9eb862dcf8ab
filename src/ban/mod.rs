//! Banning hosts: the master table, its published snapshot, the detection
//! events that feed it, the policy that turns detections into bans, the
//! allowlist that overrides them and the journal that keeps them across
//! restarts.
//!
//! # Two sides of one table
//!
//! Workers only read and report. Once per burst a worker takes the current
//! [`Snapshot`] from its [`SnapshotReader`] and asks
//! [`Snapshot::contains`] for each address; what DPI finds it pushes, as a
//! [`HostDetection`], into its own [`EventProducer`] (a full ring drops the
//! event and counts it: a worker never waits).
//!
//! The control thread owns everything else, through the
//! [`keeper::BanKeeper`]: each tick it drains the rings, asks the
//! [`BanPolicy`] for a [`Decision`], changes the [`BanTable`] and appends to
//! the [`Journal`], then expires bans and publishes a new snapshot when
//! something changed (or reclaims the snapshots workers have let go of when
//! nothing did). Readers never wait for the writer: a publish is one pointer
//! swap.
//!
//! At start-up [`journal::load`] reads the state file back, each ban still in
//! force is restored into the table, and the journal is compacted, dropping a
//! torn tail and the bans that expired while the process was down.
//!
//! Times are unix milliseconds passed in by the caller
//! ([`crate::clock::unix_now_ms`]); nothing here reads a clock itself, so
//! tests are exact.
pub mod allowlist;
pub mod detection_log;
pub mod event;
mod expiry;
pub mod filter;
pub mod hash;
pub mod journal;
pub mod keeper;
pub mod key;
pub mod policy;
pub mod ring;
pub mod snapshot;
pub mod table;

pub use allowlist::{Allowlist, Cidr, CidrError};
pub use event::{Confidence, HostDetection, PayloadPrefix, MAX_PAYLOAD_PREFIX};
pub use hash::{KeyHasher, SHARD_COUNT};
pub use journal::{Journal, JournalConfig, JournalError, LoadProblem, LoadWarning, LoadedBan};
pub use key::BanKey;
pub use policy::{BanPolicy, Decision, PolicyConfig, PolicyCounters};
pub use ring::{event_ring, EventConsumer, EventProducer, DEFAULT_RING_CAPACITY};
pub use snapshot::{Shard, Snapshot, SnapshotGuard, SnapshotPublisher, SnapshotReader};
pub use table::{
    AddOutcome, BanEntry, BanTable, BanTableConfig, FullPolicy, PublishReport, TableCounters, NEVER,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Transport;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn key(i: u32) -> BanKey {
        BanKey::from(Ipv4Addr::from(0xc000_0200 + i)) // 192.0.2.0 + i
    }

    #[test]
    fn detections_flow_from_ring_through_policy_to_snapshot_and_journal() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("bans.jsonl");
        let now = 1_000_000;
        let mut table = BanTable::with_hasher(
            BanTableConfig::default(),
            Allowlist::parse(["192.0.2.128/25"]).unwrap(),
            KeyHasher::with_seed(9),
        );
        let mut policy = BanPolicy::new(PolicyConfig {
            threshold: 2,
            window_ms: 1_000,
            ..PolicyConfig::default()
        });
        let mut journal = Journal::open(&state, JournalConfig::default(), now).unwrap();
        let (mut worker, mut control) = event_ring(16);
        let reader = table.reader();

        let event = |host: u32, confidence, at_ms| HostDetection {
            host: key(host),
            peer: key(250),
            host_port: 51413,
            peer_port: 6881,
            proto: Transport::Udp,
            port: 0,
            detector: crate::dpi::DetectorId::PeerWireHandshake,
            reasons: crate::dpi::Reasons::NONE,
            confidence,
            at_ms,
            payload: PayloadPrefix::EMPTY,
        };
        assert!(worker.push(event(1, Confidence::Strong, now)));
        assert!(worker.push(event(1, Confidence::Strong, now + 10)));
        assert!(worker.push(event(2, Confidence::Weak, now + 20)));
        assert!(worker.push(event(3, Confidence::Definitive, now + 30)));
        assert!(worker.push(event(200, Confidence::Definitive, now + 40))); // allowlisted

        let mut outcomes = Vec::new();
        control.drain(64, |ev| {
            if policy.on_detection(&ev) == Decision::Ban {
                let outcome = table.add(
                    ev.host,
                    Duration::from_secs(3_600),
                    ev.detector.name(),
                    ev.at_ms,
                );
                if matches!(outcome, AddOutcome::Added | AddOutcome::Refreshed) {
                    journal
                        .append_add(&ev.host, table.get(&ev.host).unwrap())
                        .unwrap();
                }
                outcomes.push((ev.host, outcome));
            }
        });
        assert_eq!(
            outcomes,
            vec![
                (key(1), AddOutcome::Added),
                (key(3), AddOutcome::Added),
                (key(200), AddOutcome::RefusedAllowlisted),
            ]
        );
        assert_eq!(table.publish().generation, 1);
        let snap = reader.load();
        let banned: Vec<u32> = (0..256).filter(|&i| snap.contains(&key(i), now)).collect();
        assert_eq!(banned, vec![1, 3]);
        journal.close(now).unwrap();

        let (restored, warnings) = journal::load(&state, now + 60_000).unwrap();
        assert!(warnings.is_empty());
        let restored: Vec<(BanKey, Option<u64>)> =
            restored.iter().map(|b| (b.key, b.remaining_ms)).collect();
        assert_eq!(
            restored,
            vec![(key(1), Some(3_540_010)), (key(3), Some(3_540_030))]
        );
    }

    #[test]
    fn concurrent_reader_sees_whole_generations_in_order() {
        const PUBLISHES: u32 = 200;
        let mut table = BanTable::with_hasher(
            BanTableConfig::default(),
            Allowlist::default(),
            KeyHasher::with_seed(4),
        );
        let reader = table.reader();
        let worker = std::thread::spawn(move || {
            let mut last = 0;
            while last < u64::from(PUBLISHES) {
                let snap = reader.load();
                let generation = snap.generation();
                assert!(generation >= last, "generations never go back");
                // Generation g was published after adding keys 1..=g and
                // nothing else: all of them, and only them, are visible.
                let g = u32::try_from(generation).unwrap();
                assert_eq!(snap.len(), g as usize);
                assert!(g == 0 || snap.contains(&key(g), 0));
                assert!(!snap.contains(&key(g + 1), 0));
                last = generation;
            }
        });
        for g in 1..=PUBLISHES {
            table.add(key(g), Duration::from_secs(60), "x", 0);
            assert_eq!(table.publish().generation, u64::from(g));
        }
        worker.join().unwrap();
    }
}
