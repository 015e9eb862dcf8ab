//! Learning other boxes' bans: best paths from peers that carry the import
//! community and another box's tag become [`ImportEvent`]s for the control
//! loop. Decided here, applied by the ban keeper.
use std::net::IpAddr;

use super::api;
use super::route::{self, RouteKind, SeenPath};

/// What the BGP thread tells the control loop about other boxes' bans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportEvent {
    /// Box `box_id` bans `ip` until `expires_s` (unix s), learned from `peer`.
    Ban {
        ip: IpAddr,
        box_id: u32,
        expires_s: u32,
        peer: IpAddr,
    },
    /// The ban learned from `peer` was withdrawn.
    Unban { ip: IpAddr, peer: IpAddr },
    /// The session with `peer` went down (on_session_loss: drop).
    PeerDown { peer: IpAddr },
}

/// What to import from best paths: the community that marks a ban and our
/// own box id (never imported).
#[derive(Clone, Copy, Debug)]
pub struct ImportFilter {
    pub community: u32,
    pub box_id: u32,
}

impl ImportFilter {
    /// The event a best-path change means, if it is another box's host ban.
    pub fn event(&self, path: &api::Path) -> Option<ImportEvent> {
        self.event_of(&route::parse(path)?)
    }

    fn event_of(&self, seen: &SeenPath) -> Option<ImportEvent> {
        let peer = seen.neighbor?;
        let (RouteKind::Host, ip) = seen.route else {
            return None;
        };
        if seen.withdrawn {
            return Some(ImportEvent::Unban { ip, peer });
        }
        let box_id = seen.box_tag()?;
        if box_id == self.box_id || !seen.communities.contains(&self.community) {
            return None;
        }
        Some(ImportEvent::Ban {
            ip,
            box_id,
            expires_s: seen.expiry().unwrap_or(route::NEVER_S),
            peer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::route::{announce, tests as route_tests, RouteSettings};
    use crate::config::FlowSpecMode;

    fn settings(box_id: u32) -> RouteSettings {
        RouteSettings {
            box_id,
            ..route_tests::settings(FlowSpecMode::Off)
        }
    }

    #[test]
    fn imports_other_boxes_host_bans_from_peers_only() {
        let filter = ImportFilter {
            community: (65535 << 16) | 666,
            box_id: 1,
        };
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let mut from_box2 = announce(&settings(2), RouteKind::Host, ip, 1_800_000_000).unwrap();
        // Our own origination (no neighbour): never imported.
        assert_eq!(filter.event(&from_box2), None);
        from_box2.neighbor_ip = peer.to_string();
        assert_eq!(
            filter.event(&from_box2),
            Some(ImportEvent::Ban {
                ip,
                box_id: 2,
                expires_s: 1_800_000_000,
                peer
            })
        );
        // Our own box id coming back through a reflector: ignored.
        let mut ours = announce(&settings(1), RouteKind::Host, ip, 1).unwrap();
        ours.neighbor_ip = peer.to_string();
        assert_eq!(filter.event(&ours), None);
        // Without the import community: ignored.
        let mut s = settings(2);
        s.communities = vec![0xFFFF_FF01];
        let mut other = announce(&s, RouteKind::Host, ip, 1).unwrap();
        other.neighbor_ip = peer.to_string();
        assert_eq!(filter.event(&other), None);
        // A withdrawal from a peer.
        from_box2.is_withdraw = true;
        assert_eq!(
            filter.event(&from_box2),
            Some(ImportEvent::Unban { ip, peer })
        );
    }
}
