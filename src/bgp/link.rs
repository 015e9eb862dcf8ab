//! The control loop's side of the BGP thread: turns ban-table changes into
//! commands on a bounded queue (never waiting: a full queue is counted and
//! the whole set replayed once there is room), and applies the imports the
//! thread sends back.
use std::net::IpAddr;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError, Sender};
use tracing::{info, warn};

use super::announcer::{self, AnnouncerSetup, Command};
use super::import::{ImportEvent, ImportFilter};
use super::route::{self, RouteSettings};
use super::stats::{BgpCounts, BgpStats};
use crate::ban::keeper::{BanKeeper, Imported};
use crate::ban::{Allowlist, BanKey};
use crate::config::{BgpConfig, SessionLoss};

/// Import events the control loop takes per tick (the rest wait).
const IMPORTS_PER_TICK: usize = 4096;
/// Capacity of the thread → control loop import queue.
const IMPORT_QUEUE: usize = 65_536;

pub struct BgpLink {
    tx: Sender<Command>,
    imports: Option<Receiver<ImportEvent>>,
    config: BgpConfig,
    settings: RouteSettings,
    never: Allowlist,
    stats: Arc<BgpStats>,
    /// A command did not fit: replay the whole set when there is room.
    replay: bool,
    /// A reload's new settings did not fit in the queue: send them (with
    /// the whole set) when there is room, so a SIGHUP is never lost.
    settings_pending: bool,
    thread: Option<JoinHandle<()>>,
}

impl BgpLink {
    /// Starts the BGP thread and makes `bans` report its changes; the
    /// first tick hands the thread every ban in force.
    pub fn start(cfg: &BgpConfig, bans: &mut BanKeeper) -> std::io::Result<BgpLink> {
        let stats = Arc::new(BgpStats::default());
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let (import, imports) = if cfg.import {
            let (itx, irx) = sync_channel(IMPORT_QUEUE);
            let filter = ImportFilter {
                community: cfg.import_community,
                box_id: cfg.box_id,
            };
            (Some((filter, itx)), Some(irx))
        } else {
            (None, None)
        };
        let settings = RouteSettings::from_config(cfg);
        let setup = AnnouncerSetup {
            socket: cfg.api_socket.clone(),
            settings: settings.clone(),
            max_announced: cfg.max_announced,
            import,
            keep_on_session_loss: cfg.on_session_loss == SessionLoss::Keep,
            stats: Arc::clone(&stats),
        };
        let thread = std::thread::Builder::new()
            .name("btblocker-bgp".into())
            .spawn(move || announcer::run(setup, rx))?;
        bans.track_changes();
        bans.take_changes();
        info!(
            "bgp: announcing bans through gobgpd at {} (AS {}, box {})",
            cfg.api_socket.display(),
            cfg.local_asn,
            cfg.box_id
        );
        Ok(BgpLink {
            tx,
            imports,
            config: cfg.clone(),
            settings,
            never: Allowlist::new(cfg.never_announce.iter().copied()),
            stats,
            replay: true,
            settings_pending: false,
            thread: Some(thread),
        })
    }

    /// Whether the BGP thread announces `key` (policy, then `max_announced`,
    /// as of its last tick): what `bans list` shows.
    pub fn announced(&self, key: &BanKey) -> bool {
        self.stats.announced_hosts.load().contains(&key.to_ip())
    }

    /// Whether our ban of `key` is one we announce (its family on, not in
    /// never_announce, not imported).
    pub fn announces(&self, bans: &BanKeeper, key: &BanKey) -> bool {
        bans.imported(key).is_none()
            && !self.never.contains(key)
            && self.settings.kinds(key.to_ip()).next().is_some()
    }

    /// One control tick: imports in, changes out. Never waits.
    pub fn tick(&mut self, bans: &mut BanKeeper, now_ms: u64) {
        self.apply_imports(bans, now_ms);
        let changes = bans.take_changes();
        if self.settings_pending {
            // The set sent with the settings supersedes the changes and any replay.
            let cmd = Command::Settings(self.settings.clone(), self.desired(bans));
            if self.tx.capacity() > 0 && self.send(cmd) {
                self.settings_pending = false;
                self.replay = false;
            }
        } else if self.replay {
            // The whole set supersedes the changes.
            if self.tx.capacity() > 0 && self.send(Command::Replace(self.desired(bans))) {
                self.replay = false;
            }
        } else {
            for key in changes {
                let cmd = match bans.entry(&key) {
                    Some(e) if self.announces(bans, &key) => {
                        Command::Announce(key.to_ip(), route::expiry_s(e.expires_at))
                    }
                    _ => Command::Withdraw(key.to_ip()),
                };
                if !self.send(cmd) {
                    self.replay = true;
                    break;
                }
            }
        }
        BgpStats::set(
            &self.stats.queue_depth,
            self.config.queue_capacity - self.tx.capacity(),
        );
    }

    fn desired(&self, bans: &BanKeeper) -> Vec<(IpAddr, u32)> {
        bans.own_bans()
            .filter(|(k, _)| self.announces(bans, k))
            .map(|(k, exp)| (k.to_ip(), route::expiry_s(exp)))
            .collect()
    }

    fn send(&self, cmd: Command) -> bool {
        match self.tx.try_send(cmd) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                if self
                    .stats
                    .queue_full
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    .is_multiple_of(1000)
                {
                    warn!("bgp: queue to the BGP thread full: replaying every ban when it drains");
                }
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    fn apply_imports(&mut self, bans: &mut BanKeeper, now_ms: u64) {
        let Some(rx) = &self.imports else { return };
        let max_ms = self.config.import_max_ttl_s.saturating_mul(1000);
        let mut changed = false;
        for ev in rx.try_iter().take(IMPORTS_PER_TICK) {
            match ev {
                ImportEvent::Ban {
                    ip,
                    box_id,
                    expires_s,
                    peer,
                } => {
                    let expires_at =
                        (u64::from(expires_s) * 1000).min(now_ms.saturating_add(max_ms));
                    if bans.import(ip, Imported { box_id, peer }, expires_at, now_ms) {
                        BgpStats::add(&self.stats.imported, 1);
                        changed = true;
                    }
                }
                ImportEvent::Unban { ip, peer } => {
                    if bans.unimport(ip, peer) {
                        BgpStats::add(&self.stats.import_withdrawn, 1);
                        changed = true;
                    }
                }
                ImportEvent::PeerDown { peer } => {
                    let n = bans.drop_imports_from(peer);
                    if n > 0 {
                        info!("bgp: session with {peer} lost: {n} imported ban(s) dropped");
                        BgpStats::add(&self.stats.import_withdrawn, n);
                        changed = true;
                    }
                }
            }
        }
        if changed {
            bans.publish_if_changed();
        }
    }

    /// A reload: new communities / next hops re-announce every route, a
    /// new never_announce withdraws or announces what it changed. Keys
    /// fixed for the run (socket, AS, box id, import, queue) are kept. A
    /// change that finds the queue full is sent on a later tick, never lost.
    pub fn reconfigure(&mut self, cfg: &BgpConfig, bans: &BanKeeper) -> bool {
        let settings = RouteSettings {
            local_asn: self.settings.local_asn,
            box_id: self.settings.box_id,
            ..RouteSettings::from_config(cfg)
        };
        let never_changed = cfg.never_announce != self.config.never_announce;
        let settings_changed = settings != self.settings;
        if !never_changed && !settings_changed {
            return false;
        }
        self.never = Allowlist::new(cfg.never_announce.iter().copied());
        if settings_changed {
            // One command with the set under the new never_announce: the
            // thread re-announces once, not once per setting and once per set.
            self.settings = settings.clone();
            if !self.send(Command::Settings(settings, self.desired(bans))) {
                self.settings_pending = true;
            }
        } else {
            self.replay = true;
        }
        self.config.never_announce = cfg.never_announce.clone();
        self.config.communities = cfg.communities.clone();
        true
    }

    pub fn counts(&self) -> BgpCounts {
        self.stats.counts()
    }

    /// Stops the thread, withdrawing our routes if `withdraw_on_shutdown`;
    /// waits at most a few seconds for it.
    pub fn stop(mut self) {
        let withdraw = self.config.withdraw_on_shutdown;
        let mut cmd = Command::Shutdown { withdraw };
        for _ in 0..200 {
            match self.tx.try_send(cmd) {
                Ok(()) => break,
                Err(TrySendError::Full(c)) => {
                    cmd = c;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TrySendError::Closed(_)) => break,
            }
        }
        if let Some(t) = self.thread.take() {
            for _ in 0..1500 {
                if t.is_finished() {
                    let _ = t.join();
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            warn!("bgp: the BGP thread did not stop within 15 s: leaving it");
        }
    }
}
