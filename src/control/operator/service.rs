//! The control loop's side of operator access: answers the control socket's
//! queued commands and publishes the telemetry view. Lives on the control
//! loop, next to the [`BanKeeper`] it alone may change.
use super::server::OperatorServer;
use super::telemetry_view::{self, TelemetryView, MAX_TELEMETRY_BANS};
use crate::ban::keeper::BanKeeper;
use crate::control::report::RunSummary;

pub struct Operator {
    server: Option<OperatorServer>,
    /// The stats of the last interval, republished with fresh bans after a
    /// command.
    stats: Vec<(&'static str, u64)>,
}

impl Operator {
    /// `server`: `None` when `control.socket` is off (telemetry still works).
    pub fn new(server: Option<OperatorServer>) -> Operator {
        Operator {
            server,
            stats: Vec::new(),
        }
    }

    /// Answers every queued command; never blocks. Called each control tick.
    pub fn tick(&mut self, bans: &mut BanKeeper, bgp: Option<&crate::bgp::BgpLink>, now_ms: u64) {
        let Some(server) = &self.server else { return };
        let mut answered = false;
        while let Some(pending) = server.next_request() {
            let reply = super::execute::execute_with_bgp(bans, bgp, &pending.request, now_ms);
            pending.answer(reply);
            answered = true;
        }
        if answered {
            self.publish_view(bans);
        }
    }

    /// Each stats interval: new counters for telemetry.
    pub fn publish(&mut self, run: &RunSummary, bans: &BanKeeper) {
        self.stats = telemetry_view::stats(run, &bans.counts());
        self.publish_view(bans);
    }

    fn publish_view(&self, bans: &BanKeeper) {
        let (first, _) = bans.page(None, MAX_TELEMETRY_BANS);
        telemetry_view::publish(TelemetryView {
            stats: self.stats.clone(),
            bans: telemetry_view::ban_lines(&first),
        });
    }
}
