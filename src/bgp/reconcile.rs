//! The difference between the routes the ban table wants and the routes
//! gobgpd holds from us: what to add and what to withdraw so that the RIB
//! equals the table. Pure, so the diff is tested without a daemon.
use rustc_hash::FxHashMap;

use super::route::RouteKey;

/// Route → the expiry (unix s) its `ASN:1:` community carries.
pub type Routes = FxHashMap<RouteKey, u32>;

/// What to send to make `held` equal `desired`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Missing, or held with another expiry (re-announce replaces it).
    pub announce: Vec<(RouteKey, u32)>,
    /// Held but not wanted.
    pub withdraw: Vec<RouteKey>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.withdraw.is_empty()
    }

    pub fn len(&self) -> usize {
        self.announce.len() + self.withdraw.len()
    }
}

/// Sorted output so that batches (and tests) are deterministic.
pub fn diff(desired: &Routes, held: &Routes) -> Diff {
    let mut announce: Vec<(RouteKey, u32)> = desired
        .iter()
        .filter(|(k, e)| held.get(k) != Some(e))
        .map(|(k, e)| (*k, *e))
        .collect();
    let mut withdraw: Vec<RouteKey> = held
        .keys()
        .filter(|k| !desired.contains_key(k))
        .copied()
        .collect();
    announce.sort_unstable();
    withdraw.sort_unstable();
    Diff { announce, withdraw }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::route::RouteKind::{FlowSpec, Host};

    fn routes(list: &[(crate::bgp::route::RouteKind, &str, u32)]) -> Routes {
        list.iter()
            .map(|(k, ip, e)| ((*k, ip.parse().unwrap()), *e))
            .collect()
    }

    #[test]
    fn adds_missing_reannounces_changed_expiry_withdraws_extra() {
        let desired = routes(&[
            (Host, "192.0.2.1", 100),
            (Host, "192.0.2.2", 200),
            (FlowSpec, "192.0.2.2", 200),
            (Host, "2001:db8::1", 300),
        ]);
        let held = routes(&[
            (Host, "192.0.2.2", 150),
            (FlowSpec, "192.0.2.2", 200),
            (Host, "2001:db8::1", 300),
            (Host, "198.51.100.9", 50),
            (FlowSpec, "192.0.2.1", 100),
        ]);
        let d = diff(&desired, &held);
        let ip = |s: &str| s.parse().unwrap();
        assert_eq!(
            d.announce,
            vec![
                ((Host, ip("192.0.2.1")), 100),
                ((Host, ip("192.0.2.2")), 200)
            ]
        );
        assert_eq!(
            d.withdraw,
            vec![(Host, ip("198.51.100.9")), (FlowSpec, ip("192.0.2.1"))]
        );
        assert_eq!(d.len(), 4);
    }

    #[test]
    fn equal_sets_need_nothing_and_empty_desired_withdraws_all() {
        let held = routes(&[(Host, "192.0.2.1", 1), (Host, "2001:db8::1", 2)]);
        assert!(diff(&held, &held).is_empty());
        let d = diff(&Routes::default(), &held);
        assert!(d.announce.is_empty());
        assert_eq!(d.withdraw.len(), 2);
    }
}
