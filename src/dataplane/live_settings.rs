//! The settings a SIGHUP reload changes under running workers: which
//! detectors run, what enforcement drops, and how many payload bytes a
//! detection carries to the log. The control lcore stores them; each worker
//! loads them once per burst (three relaxed atomic loads: no lock, no
//! allocation), so a reload applies from every worker's next burst on.
//!
//! The three values are independent: a burst that sees the new detectors and
//! the old action (the stores are not one transaction) is still a burst run
//! under settings that were each valid.
use std::sync::atomic::{AtomicU16, AtomicU8, Ordering::Relaxed};

use crate::ban::detection_log::MAX_PAYLOAD_BYTES;
use crate::config::{BanAction, Config};
use crate::dpi::DetectorSwitches;

/// What a worker reads once per burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    pub detectors: DetectorSwitches,
    pub action: BanAction,
    /// Payload prefix each detection event carries (`log.payload_bytes`).
    pub payload_bytes: u8,
}

impl WorkerSettings {
    /// The settings `cfg` asks for.
    pub fn from_config(cfg: &Config) -> WorkerSettings {
        WorkerSettings {
            detectors: cfg.dpi.detectors,
            action: cfg.ban.action,
            // Validation caps it at MAX_PAYLOAD_BYTES (64); min() keeps a
            // hand-built config from wrapping.
            payload_bytes: cfg.log.payload_bytes.min(MAX_PAYLOAD_BYTES) as u8,
        }
    }
}

/// The shared copy: one per run, an `Arc` in each worker's pipeline.
#[derive(Debug)]
pub struct LiveSettings {
    detectors: AtomicU16,
    action: AtomicU8,
    payload_bytes: AtomicU8,
}

impl LiveSettings {
    pub fn new(initial: WorkerSettings) -> LiveSettings {
        LiveSettings {
            detectors: AtomicU16::new(initial.detectors.bits()),
            action: AtomicU8::new(action_code(initial.action)),
            payload_bytes: AtomicU8::new(initial.payload_bytes),
        }
    }

    /// The workers' read, once per burst.
    #[inline]
    pub fn load(&self) -> WorkerSettings {
        WorkerSettings {
            detectors: DetectorSwitches::from_bits(self.detectors.load(Relaxed)),
            action: action_from_code(self.action.load(Relaxed)),
            payload_bytes: self.payload_bytes.load(Relaxed),
        }
    }

    /// The control lcore's write (a reload).
    pub fn store(&self, s: WorkerSettings) {
        self.detectors.store(s.detectors.bits(), Relaxed);
        self.action.store(action_code(s.action), Relaxed);
        self.payload_bytes.store(s.payload_bytes, Relaxed);
    }
}

fn action_code(action: BanAction) -> u8 {
    match action {
        BanAction::BanHost => 0,
        BanAction::DropFlow => 1,
        BanAction::LogOnly => 2,
    }
}

#[inline]
fn action_from_code(code: u8) -> BanAction {
    match code {
        1 => BanAction::DropFlow,
        2 => BanAction::LogOnly,
        _ => BanAction::BanHost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpi::DetectorId;

    #[test]
    fn a_store_is_what_the_next_load_sees() {
        let first = WorkerSettings {
            detectors: DetectorSwitches::all(),
            action: BanAction::BanHost,
            payload_bytes: 0,
        };
        let live = LiveSettings::new(first);
        assert_eq!(live.load(), first);
        for action in [BanAction::DropFlow, BanAction::LogOnly, BanAction::BanHost] {
            let next = WorkerSettings {
                detectors: DetectorSwitches::all()
                    .without(DetectorId::Mse)
                    .without(DetectorId::Utp),
                action,
                payload_bytes: 64,
            };
            live.store(next);
            assert_eq!(live.load(), next);
        }
    }

    #[test]
    fn from_config_takes_the_three_keys() {
        let mut cfg = crate::config::from_str(
            "ports:\n  - name: a\n    device: net_null0\n    role: inside\n",
        )
        .unwrap();
        cfg.dpi.detectors = DetectorSwitches::all().without(DetectorId::Dht);
        cfg.ban.action = BanAction::DropFlow;
        cfg.log.payload_bytes = 16;
        let s = WorkerSettings::from_config(&cfg);
        assert!(!s.detectors.is_enabled(DetectorId::Dht));
        assert!(s.detectors.is_enabled(DetectorId::Utp));
        assert_eq!(s.action, BanAction::DropFlow);
        assert_eq!(s.payload_bytes, 16);
    }
}
