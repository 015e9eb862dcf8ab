//! Carries out one operator request on the control loop, the only place that
//! may change the ban table.
use std::time::Duration;

use super::protocol::{BanInfo, Reply, Request, MAX_LIST_PAGE};
use crate::ban::keeper::BanKeeper;
use crate::ban::{BanEntry, BanKey};

/// Answers `request`; every change is journaled and published before the
/// reply goes out.
pub fn execute(bans: &mut BanKeeper, request: &Request, now_ms: u64) -> Reply {
    execute_with_bgp(bans, None, request, now_ms)
}

/// [`execute`], with `list` telling which bans BGP announces or imported.
pub fn execute_with_bgp(
    bans: &mut BanKeeper,
    bgp: Option<&crate::bgp::BgpLink>,
    request: &Request,
    now_ms: u64,
) -> Reply {
    match *request {
        Request::List { after, limit } => {
            let limit = limit.unwrap_or(MAX_LIST_PAGE).min(MAX_LIST_PAGE);
            let (page, total) = bans.page(after.map(BanKey::from), limit);
            let info = |(k, e): &(BanKey, BanEntry)| {
                let mut info = ban_info(*k, e, now_ms);
                if let Some(link) = bgp {
                    info.announced = Some(link.announced(k));
                    info.imported_from = bans.imported(k).map(|i| i.box_id);
                }
                info
            };
            Reply::Bans {
                ok: true,
                bans: page.iter().map(info).collect(),
                total,
            }
        }
        Request::Add { ip, ttl_s } => {
            let ttl = ttl_s.map(Duration::from_secs);
            if ttl == Some(Duration::ZERO) {
                return Reply::error("a ban's ttl must be at least 1 s");
            }
            match bans.add_manual(ip, ttl, now_ms) {
                Ok((entry, new)) => Reply::Added {
                    ok: true,
                    ban: ban_info(BanKey::from(ip), &entry, now_ms),
                    new,
                },
                Err(e) => Reply::error(e.to_string()),
            }
        }
        Request::Del { ip } => match bans.remove(ip, now_ms) {
            Some(entry) => Reply::Deleted {
                ok: true,
                deleted: ban_info(BanKey::from(ip), &entry, now_ms),
            },
            None => Reply::error(format!("{ip} is not banned")),
        },
        Request::Flush => Reply::Flushed {
            ok: true,
            removed: bans.flush(now_ms),
        },
    }
}

pub fn ban_info(key: BanKey, e: &BanEntry, now_ms: u64) -> BanInfo {
    BanInfo {
        ip: key.to_ip(),
        reason: e.reason.clone(),
        first_seen_ms: e.first_seen,
        last_seen_ms: e.last_seen,
        hits: e.hits,
        expires_ms: (!e.is_static).then_some(e.expires_at),
        remaining_ms: e.remaining_ms(now_ms),
        announced: None,
        imported_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BanConfig, NetworksConfig};
    use std::net::IpAddr;

    const NOW: u64 = 1_000_000;

    fn control(dir: &std::path::Path, denylist: &[&str]) -> BanKeeper {
        let cfg = BanConfig {
            allowlist: vec!["10.9.0.0/16".parse().unwrap()],
            denylist: denylist.iter().map(|d| d.parse().unwrap()).collect(),
            state_file: Some(dir.join("bans.jsonl")),
            ..BanConfig::default()
        };
        BanKeeper::start(&cfg, &NetworksConfig::default(), NOW).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn add(ip_s: &str, ttl_s: Option<u64>) -> Request {
        Request::Add {
            ip: ip(ip_s),
            ttl_s,
        }
    }

    fn listed(bans: &mut BanKeeper) -> Vec<(IpAddr, String, Option<u64>)> {
        match execute(
            bans,
            &Request::List {
                after: None,
                limit: None,
            },
            NOW + 10,
        ) {
            Reply::Bans { ok: true, bans, .. } => bans
                .into_iter()
                .map(|b| (b.ip, b.reason, b.remaining_ms))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    /// Pages of `list`: address order, `after` exclusive, `limit` and the
    /// daemon's cap honoured, every ban exactly once over the pages.
    #[test]
    fn list_pages_cover_every_ban_once_in_address_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut bans = control(dir.path(), &[]);
        // 25 bans added in a scrambled order, v4 and v6.
        let mut want: Vec<IpAddr> = (0..20u32)
            .map(|i| IpAddr::from([198, 51, 100, (i * 7 % 20) as u8 + 1]))
            .chain((1..=5u16).map(|i| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i])))
            .collect();
        for ip in &want {
            assert!(matches!(
                execute(
                    &mut bans,
                    &Request::Add {
                        ip: *ip,
                        ttl_s: None
                    },
                    NOW
                ),
                Reply::Added { .. }
            ));
        }
        want.sort_by_key(|ip| BanKey::from(*ip));
        let page = |bans: &mut BanKeeper, after: Option<IpAddr>, limit| match execute(
            bans,
            &Request::List { after, limit },
            NOW,
        ) {
            Reply::Bans { bans, total, .. } => {
                (bans.into_iter().map(|b| b.ip).collect::<Vec<_>>(), total)
            }
            other => panic!("{other:?}"),
        };
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let (ips, total) = page(&mut bans, after, Some(7));
            assert_eq!(total, 25);
            assert!(ips.len() <= 7);
            after = ips.last().copied();
            let done = ips.len() < 7;
            got.extend(ips);
            if done {
                break;
            }
        }
        assert_eq!(got, want, "4 pages of 7, 7, 7, 4");
        assert_eq!(
            page(&mut bans, None, None).0,
            want,
            "no limit: up to the cap, all 25 here"
        );
        assert_eq!(
            page(&mut bans, Some(want[24]), Some(5)).0,
            Vec::<IpAddr>::new()
        );
        assert_eq!(
            page(&mut bans, Some(want[3]), Some(2)).0,
            want[4..6].to_vec()
        );
        // The daemon never answers more than MAX_LIST_PAGE, whatever is asked.
        assert_eq!(page(&mut bans, None, Some(usize::MAX)).0.len(), 25);
    }

    #[test]
    fn add_list_del_flush() {
        let dir = tempfile::tempdir().unwrap();
        let mut bans = control(dir.path(), &["192.0.2.7"]);
        let reader = bans.reader();
        let Reply::Added {
            ok: true,
            ban,
            new: true,
        } = execute(&mut bans, &add("10.0.0.1", Some(90)), NOW)
        else {
            panic!()
        };
        assert_eq!(
            (
                ban.reason.as_str(),
                ban.hits,
                ban.expires_ms,
                ban.remaining_ms
            ),
            ("manual", 1, Some(NOW + 90_000), Some(90_000))
        );
        // Published at once: the workers' next snapshot has it.
        assert!(reader.load().contains(&BanKey::from(ip("10.0.0.1")), NOW));
        // No ttl: ban.ttl_s (5 h).
        execute(&mut bans, &add("2001:db8::5", None), NOW);
        assert_eq!(
            listed(&mut bans),
            [
                (ip("10.0.0.1"), "manual".into(), Some(89_990)),
                (ip("192.0.2.7"), "denylist".into(), None),
                (
                    ip("2001:db8::5"),
                    "manual".into(),
                    Some(5 * 3600 * 1000 - 10)
                ),
            ]
        );
        let again = execute(&mut bans, &add("10.0.0.1", Some(30)), NOW);
        assert!(
            matches!(again, Reply::Added { new: false, ref ban, .. } if ban.hits == 2 && ban.expires_ms == Some(NOW + 90_000)),
            "{again:?}"
        );

        let del = execute(&mut bans, &Request::Del { ip: ip("10.0.0.1") }, NOW);
        assert!(
            matches!(del, Reply::Deleted { ok: true, ref deleted } if deleted.ip == ip("10.0.0.1"))
        );
        assert!(!reader.load().contains(&BanKey::from(ip("10.0.0.1")), NOW));
        assert_eq!(
            execute(&mut bans, &Request::Del { ip: ip("10.0.0.1") }, NOW),
            Reply::error("10.0.0.1 is not banned")
        );
        assert_eq!(
            execute(&mut bans, &Request::Flush, NOW),
            Reply::Flushed {
                ok: true,
                removed: 2
            }
        );
        assert_eq!(listed(&mut bans), []);
        assert!(reader.load().is_empty());
    }

    #[test]
    fn refusals_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let mut bans = control(dir.path(), &[]);
        assert_eq!(
            execute(&mut bans, &add("10.9.3.4", None), NOW),
            Reply::error("10.9.3.4 is in ban.allowlist: not banned")
        );
        assert_eq!(
            execute(&mut bans, &add("224.0.0.251", None), NOW),
            Reply::error(
                "224.0.0.251 is never banned (multicast, broadcast, unspecified or loopback)"
            )
        );
        assert_eq!(
            execute(&mut bans, &add("10.0.0.1", Some(0)), NOW),
            Reply::error("a ban's ttl must be at least 1 s")
        );
        assert_eq!(listed(&mut bans), []);
    }

    #[test]
    fn operator_changes_are_journaled_so_a_restart_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut bans = control(dir.path(), &[]);
        for h in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            execute(&mut bans, &add(h, Some(600)), NOW);
        }
        execute(&mut bans, &Request::Del { ip: ip("10.0.0.2") }, NOW);
        // kill -9 now: the journal was fsynced by each command.
        drop(bans);
        let mut bans = control(dir.path(), &[]);
        let hosts: Vec<IpAddr> = listed(&mut bans).into_iter().map(|b| b.0).collect();
        assert_eq!(hosts, [ip("10.0.0.1"), ip("10.0.0.3")]);
        execute(&mut bans, &Request::Flush, NOW);
        drop(bans);
        let mut bans = control(dir.path(), &[]);
        assert_eq!(listed(&mut bans), [], "a flushed ban does not come back");
    }
}
