//! The BGP thread: an OS thread of its own running a current-thread tokio
//! runtime, so nothing the network does can stall the control loop.
//!
//! It keeps two maps: `desired` (the bans the control loop asked to
//! announce) and `held` (the routes gobgpd holds from us, as far as we
//! know). Commands change `desired`; each batch of them is sent as one
//! AddPathStream call. Whenever `held` may be wrong — at start, after a
//! failed call (dead daemon), after reconnecting (a restarted gobgpd comes
//! back empty), when a peer comes up (session reset), after a settings
//! change or a full replay from the control loop — it reconciles: lists
//! our routes in the RIB and sends the difference. So a command is never
//! lost, only applied later.
//!
//! `max_announced` caps `desired`. A ban beyond it waits (`waiting`, by
//! address) and is announced as soon as a withdrawal makes room, so the cap
//! delays a ban's announcement but never drops it.
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::sync::mpsc::Receiver;
use tonic::Streaming;
use tracing::{info, warn};

use super::api;
use super::client::{self, Api};
use super::import::{ImportEvent, ImportFilter};
use super::reconcile::{self, Routes};
use super::route::{self, RouteKind, RouteSettings};
use super::stats::BgpStats;

/// What the control loop asks of the BGP thread.
#[derive(Debug)]
pub enum Command {
    /// Announce (or re-announce with a new expiry) the ban of an address.
    Announce(IpAddr, u32),
    Withdraw(IpAddr),
    /// The whole set of bans to announce (after a full queue, a reload).
    Replace(Vec<(IpAddr, u32)>),
    /// New route settings (SIGHUP) and the whole set under them (a new
    /// never_announce may change it): every route is re-announced, since
    /// the RIB's copy carries the old communities / next hop.
    Settings(RouteSettings, Vec<(IpAddr, u32)>),
    /// Stop; withdraw our routes first when asked.
    Shutdown {
        withdraw: bool,
    },
}

/// What the thread needs besides its queue.
pub struct AnnouncerSetup {
    pub socket: std::path::PathBuf,
    pub settings: RouteSettings,
    pub max_announced: usize,
    /// `Some` when `import` is on.
    pub import: Option<(ImportFilter, SyncSender<ImportEvent>)>,
    /// Keep imported bans when their session drops (withdrawals that come
    /// with a session loss are held back, then dropped).
    pub keep_on_session_loss: bool,
    pub stats: Arc<BgpStats>,
}

/// Commands taken from the queue before sending what they changed.
const BATCH: usize = 8192;
/// Between two attempts to reach a dead gobgpd.
const RECONNECT: Duration = Duration::from_secs(1);
/// A withdrawal learned from a peer waits this long: a session loss
/// withdraws every path of the peer just before announcing the peer down.
const WITHDRAW_GRACE: Duration = Duration::from_millis(300);

struct Announcer {
    setup: AnnouncerSetup,
    desired: FxHashMap<IpAddr, u32>,
    /// Bans left out of `desired` by `max_announced`, with their expiry:
    /// the lowest address takes the next free place.
    waiting: BTreeMap<IpAddr, u32>,
    held: Routes,
    api: Option<Api>,
    watch: Option<Streaming<api::WatchEventResponse>>,
    next_connect: Instant,
    /// `held` may be wrong: list the RIB before the next send.
    reconcile: bool,
    /// The settings changed: the next reconciliation re-announces every
    /// route, not only those missing or with another expiry.
    reannounce: bool,
    /// `desired` changed since `announced_hosts` was last published.
    announced_dirty: bool,
    /// Addresses whose routes changed since the last send.
    touched: Vec<IpAddr>,
    peers_up: usize,
    /// Peer withdrawals waiting out [`WITHDRAW_GRACE`].
    pending_unbans: Vec<(Instant, IpAddr, IpAddr)>,
}

/// Runs the thread until `Shutdown` or until the sender is dropped.
pub fn run(setup: AnnouncerSetup, rx: Receiver<Command>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            warn!("bgp: cannot start the BGP thread's runtime: {e}: nothing is announced");
            return;
        }
    };
    runtime.block_on(Announcer::new(setup).run(rx));
}

async fn next_watch(
    watch: &mut Option<Streaming<api::WatchEventResponse>>,
) -> Result<Option<api::WatchEventResponse>, tonic::Status> {
    match watch {
        Some(w) => w.message().await,
        None => std::future::pending().await,
    }
}

impl Announcer {
    /// Not connected yet, nothing desired: the first connection reconciles.
    fn new(setup: AnnouncerSetup) -> Self {
        Announcer {
            setup,
            desired: FxHashMap::default(),
            waiting: BTreeMap::new(),
            held: Routes::default(),
            api: None,
            watch: None,
            next_connect: Instant::now(),
            reconcile: true,
            reannounce: false,
            announced_dirty: true,
            touched: Vec::new(),
            peers_up: 0,
            pending_unbans: Vec::new(),
        }
    }

    async fn run(mut self, mut rx: Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    let mut stop = self.apply(cmd);
                    let mut taken = 1;
                    while stop.is_none() && taken < BATCH {
                        match rx.try_recv() {
                            Ok(c) => { stop = self.apply(c); taken += 1; }
                            Err(_) => break,
                        }
                    }
                    BgpStats::set(&self.setup.stats.queue_depth, rx.len());
                    if let Some(withdraw) = stop {
                        self.shut_down(withdraw).await;
                        return;
                    }
                    self.sync().await;
                }
                _ = tick.tick() => {
                    ticks += 1;
                    self.publish_announced();
                    self.flush_unbans(false);
                    if self.api.is_none() {
                        if Instant::now() >= self.next_connect {
                            self.connect().await;
                        }
                    } else if ticks.is_multiple_of(4) {
                        self.check_peers().await;
                        self.sync().await;
                        let wanted = self.desired_routes();
                        BgpStats::set(&self.setup.stats.rib_difference, reconcile::diff(&wanted, &self.held).len());
                    }
                }
                ev = next_watch(&mut self.watch) => self.on_watch(ev),
            }
        }
    }

    /// Applies one command to `desired`; `Some(withdraw)` for Shutdown.
    fn apply(&mut self, cmd: Command) -> Option<bool> {
        match cmd {
            Command::Announce(ip, expires_s) => {
                if self.desired.contains_key(&ip) || self.desired.len() < self.setup.max_announced {
                    self.announced_dirty |= self.desired.insert(ip, expires_s).is_none();
                    self.touch(ip);
                } else if self.waiting.insert(ip, expires_s).is_none() {
                    BgpStats::add(&self.setup.stats.refused, 1);
                }
            }
            Command::Withdraw(ip) => {
                if self.desired.remove(&ip).is_some() {
                    self.announced_dirty = true;
                    self.admit_waiting();
                } else {
                    self.waiting.remove(&ip);
                }
                self.touch(ip);
            }
            Command::Replace(all) => self.replace(all),
            Command::Settings(s, all) => {
                self.setup.settings = s;
                self.replace(all);
                self.reannounce = true;
            }
            Command::Shutdown { withdraw } => return Some(withdraw),
        }
        None
    }

    /// Republishes the announced hosts for `bans list`, when they changed,
    /// and the waiting count. (At most once a tick: a copy of the set, not
    /// per command.)
    fn publish_announced(&mut self) {
        BgpStats::set(&self.setup.stats.waiting, self.waiting.len());
        if self.announced_dirty {
            let hosts: HashSet<IpAddr> = self.desired.keys().copied().collect();
            self.setup.stats.announced_hosts.store(Arc::new(hosts));
            self.announced_dirty = false;
        }
    }

    /// The whole set to announce, up to `max_announced`, the rest waiting;
    /// reconciled next. Bans announced now keep their place, so a replay
    /// does not trade announced routes for waiting ones.
    fn replace(&mut self, mut all: Vec<(IpAddr, u32)>) {
        let max = self.setup.max_announced;
        if all.len() > max {
            all.sort_by_key(|(ip, _)| !self.desired.contains_key(ip));
        }
        let rest = all.split_off(all.len().min(max));
        let new = rest
            .iter()
            .filter(|(ip, _)| !self.waiting.contains_key(ip))
            .count();
        BgpStats::add(&self.setup.stats.refused, new);
        self.waiting = rest.into_iter().collect();
        self.desired = all.into_iter().collect();
        self.announced_dirty = true;
        self.reconcile = true;
    }

    /// Moves waiting bans into `desired` while `max_announced` leaves room.
    fn admit_waiting(&mut self) {
        while self.desired.len() < self.setup.max_announced {
            let Some((ip, expires_s)) = self.waiting.pop_first() else {
                break;
            };
            self.desired.insert(ip, expires_s);
            self.announced_dirty = true;
            self.touch(ip);
        }
    }

    /// Notes an address to send; not needed (nor kept, so a long outage
    /// cannot grow it) while a reconciliation is due anyway.
    fn touch(&mut self, ip: IpAddr) {
        if !self.reconcile {
            self.touched.push(ip);
        }
    }

    fn desired_routes(&self) -> Routes {
        let s = &self.setup.settings;
        let mut routes = Routes::default();
        for (&ip, &exp) in &self.desired {
            for kind in s.kinds(ip) {
                routes.insert((kind, ip), exp);
            }
        }
        routes
    }

    async fn connect(&mut self) {
        match client::connect(&self.setup.socket).await {
            Ok(mut api) => {
                info!(
                    "bgp: connected to gobgpd at {}",
                    self.setup.socket.display()
                );
                self.setup.stats.api_up.store(1, Relaxed);
                let watch = client::watch(&mut api, self.setup.import.is_some()).await;
                self.api = Some(api);
                match watch {
                    Ok(w) => self.watch = Some(w),
                    Err(e) => return self.lost("watching gobgpd", &e),
                }
                self.reconcile = true;
                self.check_peers().await;
                self.sync().await;
            }
            Err(e) => {
                self.next_connect = Instant::now() + RECONNECT;
                if self
                    .setup
                    .stats
                    .errors
                    .fetch_add(1, Relaxed)
                    .is_multiple_of(60)
                {
                    warn!(
                        "bgp: cannot reach gobgpd at {}: {e} (retrying every {} s)",
                        self.setup.socket.display(),
                        RECONNECT.as_secs()
                    );
                }
            }
        }
    }

    /// The daemon stopped answering: forget the connection, reconcile
    /// once it is back.
    fn lost(&mut self, what: &str, e: &tonic::Status) {
        warn!(
            "bgp: {what} failed: {} ({}): will reconcile on reconnect",
            e.message(),
            e.code()
        );
        BgpStats::add(&self.setup.stats.errors, 1);
        self.api = None;
        self.watch = None;
        self.reconcile = true;
        self.peers_up = 0;
        self.next_connect = Instant::now() + RECONNECT;
        self.setup.stats.api_up.store(0, Relaxed);
        self.setup.stats.session_up.store(0, Relaxed);
    }

    async fn check_peers(&mut self) {
        let Some(api) = &mut self.api else { return };
        match client::established_peers(api).await {
            Ok(n) => {
                if n > self.peers_up {
                    // A session (re)established: make sure the RIB is whole.
                    self.reconcile = true;
                }
                self.peers_up = n;
                self.setup.stats.session_up.store(u64::from(n > 0), Relaxed);
            }
            Err(e) => self.lost("listing peers", &e),
        }
    }

    /// Sends what changed since the last send (or everything that differs,
    /// when a reconciliation is due).
    async fn sync(&mut self) {
        let Some(api) = &mut self.api else { return };
        let s = &self.setup.settings;
        let diff = if self.reconcile {
            self.touched.clear();
            match client::list_ours(api, s).await {
                Ok(held) => {
                    self.held = held;
                    BgpStats::add(&self.setup.stats.reconciles, 1);
                    let desired = self.desired_routes();
                    let mut diff = reconcile::diff(&desired, &self.held);
                    if self.reannounce {
                        // Held routes carry the old attributes: replace them all.
                        diff.announce = reconcile::diff(&desired, &Routes::default()).announce;
                    }
                    diff
                }
                Err(e) => return self.lost("listing our routes", &e),
            }
        } else {
            let mut diff = reconcile::Diff::default();
            self.touched.sort_unstable();
            self.touched.dedup();
            for ip in self.touched.drain(..) {
                for kind in [RouteKind::Host, RouteKind::FlowSpec] {
                    let want = self
                        .desired
                        .get(&ip)
                        .copied()
                        .filter(|_| s.kinds(ip).any(|k| k == kind));
                    let held = self.held.get(&(kind, ip)).copied();
                    match (want, held) {
                        (Some(w), h) if h != Some(w) => diff.announce.push(((kind, ip), w)),
                        (None, Some(_)) => diff.withdraw.push((kind, ip)),
                        _ => {}
                    }
                }
            }
            diff
        };
        let was_reconcile = std::mem::replace(&mut self.reconcile, false);
        if diff.is_empty() {
            return;
        }
        let mut paths = Vec::with_capacity(diff.len());
        paths.extend(diff.withdraw.iter().map(|&(k, ip)| route::withdraw(k, ip)));
        paths.extend(
            diff.announce
                .iter()
                .filter_map(|&((k, ip), e)| route::announce(s, k, ip, e)),
        );
        let Some(api) = &mut self.api else { return };
        match client::send(api, paths).await {
            Ok(()) => {
                if was_reconcile {
                    self.reannounce = false;
                }
                for k in &diff.withdraw {
                    self.held.remove(k);
                }
                for &(k, e) in &diff.announce {
                    self.held.insert(k, e);
                }
                let stats = &self.setup.stats;
                BgpStats::add(&stats.announced, diff.announce.len());
                BgpStats::add(&stats.withdrawn, diff.withdraw.len());
                BgpStats::set(&stats.announced_routes, self.held.len());
                if was_reconcile {
                    info!(
                        "bgp: reconciled: {} announced, {} withdrawn, {} routes held",
                        diff.announce.len(),
                        diff.withdraw.len(),
                        self.held.len()
                    );
                }
            }
            Err(e) => self.lost("announcing", &e),
        }
    }

    async fn shut_down(&mut self, withdraw: bool) {
        if !withdraw {
            info!("bgp: stopping; routes left in gobgpd (withdraw_on_shutdown: false)");
            return;
        }
        self.desired.clear();
        self.reconcile = true;
        if self.api.is_none() {
            self.connect().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.sync()).await;
        info!(
            "bgp: stopped; {} route(s) of ours left in gobgpd",
            self.held.len()
        );
    }

    fn on_watch(&mut self, ev: Result<Option<api::WatchEventResponse>, tonic::Status>) {
        let ev = match ev {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                let e = tonic::Status::unavailable("watch stream ended");
                return self.lost("watching gobgpd", &e);
            }
            Err(e) => return self.lost("watching gobgpd", &e),
        };
        use api::watch_event_response::Event;
        let filter = self.setup.import.as_ref().map(|i| i.0);
        match ev.event {
            Some(Event::Table(t)) => {
                let Some(filter) = filter else { return };
                for path in &t.paths {
                    match filter.event(path) {
                        Some(ImportEvent::Unban { ip, peer })
                            if self.setup.keep_on_session_loss =>
                        {
                            self.pending_unbans.push((Instant::now(), ip, peer))
                        }
                        Some(e) => self.send_import(e),
                        None => {}
                    }
                }
            }
            Some(Event::Peer(p)) => {
                let Some(peer) = p.peer.and_then(|p| p.state) else {
                    return;
                };
                let down = peer.session_state != api::peer_state::SessionState::Established as i32;
                if !down {
                    // A session (re)established: make sure the RIB is whole.
                    self.reconcile = true;
                }
                let Ok(addr) = peer.neighbor_address.parse::<IpAddr>() else {
                    return;
                };
                if down && filter.is_some() {
                    if self.setup.keep_on_session_loss {
                        let before = self.pending_unbans.len();
                        self.pending_unbans.retain(|u| u.2 != addr);
                        if before != self.pending_unbans.len() {
                            info!(
                                "bgp: session with {addr} lost: keeping the bans learned from it"
                            );
                        }
                    } else {
                        self.send_import(ImportEvent::PeerDown { peer: addr });
                    }
                }
            }
            None => {}
        }
    }

    /// Passes on the withdrawals that waited out the grace (all, when `all`).
    fn flush_unbans(&mut self, all: bool) {
        if self.pending_unbans.is_empty() {
            return;
        }
        let now = Instant::now();
        let (due, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_unbans)
            .into_iter()
            .partition(|u| all || now.duration_since(u.0) >= WITHDRAW_GRACE);
        self.pending_unbans = wait;
        for (_, ip, peer) in due {
            self.send_import(ImportEvent::Unban { ip, peer });
        }
    }

    fn send_import(&mut self, e: ImportEvent) {
        let Some((_, tx)) = &self.setup.import else {
            return;
        };
        match tx.try_send(e) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // Not lost: a new watch with init replays the whole table.
                BgpStats::add(&self.setup.stats.queue_full, 1);
                self.watch = None;
                self.api = None;
                self.setup.stats.api_up.store(0, Relaxed);
                self.next_connect = Instant::now() + RECONNECT;
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::route::tests as route_tests;
    use crate::config::FlowSpecMode;

    /// An announcer with no gobgpd (commands only change its maps),
    /// announcing at most `max` bans.
    fn announcer(max: usize) -> Announcer {
        let mut a = Announcer::new(AnnouncerSetup {
            socket: "/nonexistent".into(),
            settings: route_tests::settings(FlowSpecMode::Off),
            max_announced: max,
            import: None,
            keep_on_session_loss: false,
            stats: Arc::default(),
        });
        // Connected and reconciled: changes are sent as `touched`.
        a.reconcile = false;
        a
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([203, 0, 113, last])
    }

    fn desired(a: &Announcer) -> Vec<(IpAddr, u32)> {
        let mut d: Vec<_> = a.desired.iter().map(|(&ip, &e)| (ip, e)).collect();
        d.sort_unstable();
        d
    }

    fn waiting(a: &Announcer) -> Vec<(IpAddr, u32)> {
        a.waiting.iter().map(|(&ip, &e)| (ip, e)).collect()
    }

    /// Past the cap a ban waits, counted once however often it is
    /// re-announced; a withdrawal lets the lowest waiting address in, with
    /// its latest expiry, and a waiting ban's withdrawal just ends its wait.
    #[test]
    fn a_ban_past_the_cap_waits_and_takes_the_first_free_place() {
        let mut a = announcer(2);
        for (last, expiry) in [(1, 100), (2, 100), (9, 100), (5, 100), (5, 200), (9, 300)] {
            a.apply(Command::Announce(ip(last), expiry));
        }
        assert_eq!(desired(&a), [(ip(1), 100), (ip(2), 100)]);
        assert_eq!(waiting(&a), [(ip(5), 200), (ip(9), 300)]);
        assert_eq!(a.setup.stats.refused.load(Relaxed), 2);

        a.apply(Command::Withdraw(ip(1)));
        assert_eq!(desired(&a), [(ip(2), 100), (ip(5), 200)]);
        assert_eq!(waiting(&a), [(ip(9), 300)]);
        assert!(a.touched.contains(&ip(5)), "the admitted ban is sent");

        a.apply(Command::Withdraw(ip(9)));
        assert!(a.waiting.is_empty());
        a.apply(Command::Withdraw(ip(2)));
        assert_eq!(desired(&a), [(ip(5), 200)]);
        assert_eq!(a.setup.stats.refused.load(Relaxed), 2);
        a.publish_announced();
        assert_eq!(a.setup.stats.waiting.load(Relaxed), 0);
    }

    /// A full replay keeps the announced bans announced and counts only
    /// the bans that were not already waiting.
    #[test]
    fn a_replay_keeps_the_announced_bans_and_counts_only_new_waits() {
        let mut a = announcer(2);
        for last in [7, 8, 1] {
            a.apply(Command::Announce(ip(last), 100));
        }
        assert_eq!(a.setup.stats.refused.load(Relaxed), 1);
        // The replay lists them in another order, with one more ban.
        a.apply(Command::Replace(vec![
            (ip(1), 100),
            (ip(2), 100),
            (ip(8), 150),
            (ip(7), 150),
        ]));
        assert_eq!(desired(&a), [(ip(7), 150), (ip(8), 150)]);
        assert_eq!(waiting(&a), [(ip(1), 100), (ip(2), 100)]);
        assert_eq!(a.setup.stats.refused.load(Relaxed), 2);
        a.publish_announced();
        assert_eq!(a.setup.stats.waiting.load(Relaxed), 2);
        // Under the cap, a replay announces everything and nothing waits.
        a.apply(Command::Replace(vec![(ip(1), 100)]));
        assert_eq!(desired(&a), [(ip(1), 100)]);
        assert!(a.waiting.is_empty());
    }
}
