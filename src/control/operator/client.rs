//! The `btblocker bans …` side: sends one request to the daemon's control
//! socket and renders the reply for a terminal.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::protocol::{parse_reply, BanInfo, Reply, Request, MAX_LIST_PAGE};

/// The daemon answers within a control tick; this only guards a hung one.
const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("btblocker is not running (nothing answers on the control socket {path})")]
    NotRunning { path: String },
    #[error("cannot use the control socket {path}: permission denied (it is mode 0600: run as the daemon's user)")]
    PermissionDenied { path: String },
    #[error("control socket {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("control socket {path}: the daemon's reply is not understood ({problem})")]
    BadReply { path: String, problem: String },
}

/// Sends `request` and returns the daemon's reply (an error reply included).
pub fn send(path: &Path, request: &Request) -> Result<Reply, ClientError> {
    let shown = || path.display().to_string();
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ClientError::NotRunning { path: shown() }
        }
        std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied { path: shown() },
        _ => ClientError::Io {
            path: shown(),
            source,
        },
    };
    let mut stream = UnixStream::connect(path).map_err(io)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_string(request).expect("a request is plain data");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(io)?;
    if reply.is_empty() {
        return Err(ClientError::BadReply {
            path: shown(),
            problem: "the daemon closed the connection without a reply".into(),
        });
    }
    parse_reply(&reply).map_err(|e| ClientError::BadReply {
        path: shown(),
        problem: e.to_string(),
    })
}

/// `--ttl`: a duration such as 90s, 30m, 5h, 2d or 1h30m, at least 1 s.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 90s, 30m, 5h, 2d)"))?;
    if d < Duration::from_secs(1) {
        return Err("a ban lasts at least 1s".into());
    }
    Ok(d)
}

/// A time left, to the second: `4h 59m 58s`, `never` for a static ban.
pub fn remaining(ms: Option<u64>) -> String {
    match ms {
        None => "never".into(),
        Some(ms) => humantime::format_duration(Duration::from_secs(ms / 1000)).to_string(),
    }
}

/// Unix ms as `2026-11-23T06:40:01Z`.
pub fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Bans in address order after `after`, the first `limit` (at least 1) or
/// all, fetched a page (at most `MAX_LIST_PAGE`) per request so the daemon's
/// control loop is never held long; and how many bans there were in all (as
/// of the last page). A ban added or lifted between pages shows up or not
/// depending on its address.
pub fn list(
    path: &Path,
    mut after: Option<std::net::IpAddr>,
    limit: Option<usize>,
) -> Result<(Vec<BanInfo>, usize), ClientError> {
    let mut all = Vec::new();
    loop {
        let want = limit.map_or(MAX_LIST_PAGE, |l| {
            l.saturating_sub(all.len()).clamp(1, MAX_LIST_PAGE)
        });
        let reply = send(
            path,
            &Request::List {
                after,
                limit: Some(want),
            },
        )?;
        let Reply::Bans { bans, total, .. } = reply else {
            return Err(ClientError::BadReply {
                path: path.display().to_string(),
                problem: match reply {
                    Reply::Error { error, .. } => error,
                    other => format!("expected a page of bans, got {other:?}"),
                },
            });
        };
        let last_page = bans.len() < want;
        after = bans.last().map(|b| b.ip).or(after);
        all.extend(bans);
        if last_page || limit.is_some_and(|l| all.len() >= l) {
            return Ok((all, total));
        }
    }
}

/// `bans list`: one aligned row per ban under a header.
pub fn render_table(bans: &[BanInfo]) -> String {
    if bans.is_empty() {
        return "no bans\n".into();
    }
    let header = ["IP", "REASON", "HITS", "FIRST SEEN", "EXPIRES IN"];
    let rows: Vec<[String; 5]> = bans
        .iter()
        .map(|b| {
            [
                b.ip.to_string(),
                match b.announced {
                    Some(true) => format!("{}, announced", b.reason),
                    _ => b.reason.clone(),
                },
                b.hits.to_string(),
                timestamp(b.first_seen_ms),
                remaining(b.remaining_ms),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            // Numbers right-aligned, text left-aligned; no trailing blanks.
            let cell = match i {
                2 => format!("{cell:>w$}"),
                4 => cell.to_string(),
                _ => format!("{cell:<w$}"),
            };
            text.push_str(&cell);
            text.push_str(if i < 4 { "  " } else { "\n" });
        }
        out.push_str(&text);
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    out
}

/// What `bans add|del|flush` print for a successful reply.
pub fn render_change(reply: &Reply) -> String {
    match reply {
        Reply::Added { ban, new: true, .. } => format!(
            "banned {} ({}) for {}\n",
            ban.ip,
            ban.reason,
            remaining(ban.remaining_ms)
        ),
        Reply::Added {
            ban, new: false, ..
        } => format!(
            "{} was already banned ({}): expires in {}\n",
            ban.ip,
            ban.reason,
            remaining(ban.remaining_ms)
        ),
        Reply::Deleted { deleted, .. } => {
            format!("lifted the ban on {} ({})\n", deleted.ip, deleted.reason)
        }
        Reply::Flushed { removed, .. } => format!("lifted {removed} ban(s)\n"),
        Reply::Bans { bans, .. } => render_table(bans),
        Reply::Error { error, .. } => format!("error: {error}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(ip: &str, reason: &str, hits: u64, remaining_ms: Option<u64>) -> BanInfo {
        BanInfo {
            ip: ip.parse().unwrap(),
            reason: reason.into(),
            first_seen_ms: 1_795_372_801_000,
            last_seen_ms: 1_795_372_801_000,
            hits,
            expires_ms: remaining_ms.map(|r| 1_795_372_801_000 + r),
            remaining_ms,
            announced: None,
            imported_from: None,
        }
    }

    #[test]
    fn the_table_is_aligned() {
        let table = render_table(&[
            ban("192.168.1.3", "peer_wire_handshake", 12, Some(17_998_500)),
            ban("2001:db8::1", "manual", 1, Some(90_000)),
            ban("10.0.0.9", "denylist", 0, None),
        ]);
        assert_eq!(
            table,
            "IP           REASON               HITS  FIRST SEEN            EXPIRES IN\n\
             192.168.1.3  peer_wire_handshake    12  2026-11-22T18:40:01Z  4h 59m 58s\n\
             2001:db8::1  manual                  1  2026-11-22T18:40:01Z  1m 30s\n\
             10.0.0.9     denylist                0  2026-11-22T18:40:01Z  never\n"
        );
        assert_eq!(render_table(&[]), "no bans\n");
    }

    #[test]
    fn ttls_read_like_durations() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("5h"), Ok(Duration::from_secs(18000)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_ttl("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("500ms"), Err("a ban lasts at least 1s".into()));
        assert!(parse_ttl("soon")
            .unwrap_err()
            .ends_with("(e.g. 90s, 30m, 5h, 2d)"));
    }

    #[test]
    fn no_daemon_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let err = send(
            &path,
            &Request::List {
                after: None,
                limit: None,
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "btblocker is not running (nothing answers on the control socket {})",
                path.display()
            )
        );
        // A socket file left behind by a killed daemon: refused, same message.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(matches!(
            send(
                &path,
                &Request::List {
                    after: None,
                    limit: None
                }
            ),
            Err(ClientError::NotRunning { .. })
        ));
    }
}
