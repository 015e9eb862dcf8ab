//! The control socket's wire format: one JSON object per line each way.
//!
//! Requests: `{"cmd":"list"}` (optional `"after":"10.0.0.1"` and `"limit":N`:
//! one page in address order; the daemon never answers more than
//! `MAX_LIST_PAGE` at once), `{"cmd":"add","ip":"10.0.0.1","ttl_s":3600}`
//! (`ttl_s` optional: `ban.ttl_s`), `{"cmd":"del","ip":"10.0.0.1"}`,
//! `{"cmd":"flush"}`. Every reply has `"ok"`; an error reply says why in
//! `"error"`.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The longest request line accepted, newline included. A request is a few
/// dozen bytes; anything longer is refused unread.
pub const MAX_REQUEST_BYTES: usize = 1024;

/// The most bans one `list` reply carries. A page is chosen on the control
/// loop, which also applies detections: with a million bans in force one
/// whole reply held it 416 ms, a page of this size 24 ms (BENCHMARKS.md).
/// `bans list` fetches page after page.
pub const MAX_LIST_PAGE: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Bans in force in address order: those after `after` (all when
    /// absent), at most `limit` of them (capped at `MAX_LIST_PAGE`).
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<IpAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// A manual ban, for `ttl_s` seconds or the configured `ban.ttl_s`.
    Add {
        ip: IpAddr,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_s: Option<u64>,
    },
    /// Lifts one ban.
    Del { ip: IpAddr },
    /// Lifts every ban, denylisted ones included (until the next restart).
    Flush,
}

/// One ban as the daemon reports it. Times are unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanInfo {
    pub ip: IpAddr,
    pub reason: String,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub hits: u64,
    /// `None`: static (denylist), never expires.
    pub expires_ms: Option<u64>,
    /// Time left when the reply was made; `None` for a static ban.
    pub remaining_ms: Option<u64>,
    /// With `bgp:` on: whether this ban is announced (our own, its family
    /// on, not in never_announce, within max_announced, as of the BGP
    /// thread's last tick). Absent without BGP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<bool>,
    /// The box id an imported ban came from (absent for our own bans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<u32>,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    /// One page of `list`; `total`: bans in force in all.
    Bans {
        ok: bool,
        bans: Vec<BanInfo>,
        #[serde(default)]
        total: usize,
    },
    Added {
        ok: bool,
        ban: BanInfo,
        new: bool,
    },
    Deleted {
        ok: bool,
        deleted: BanInfo,
    },
    Flushed {
        ok: bool,
        removed: usize,
    },
    Error {
        ok: bool,
        error: String,
    },
}

impl Reply {
    pub fn error(message: impl Into<String>) -> Reply {
        Reply::Error {
            ok: false,
            error: message.into(),
        }
    }

    /// The reply as one line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a reply is plain data");
        line.push('\n');
        line
    }
}

/// Why a request line was refused (sent back as an error reply).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request longer than {MAX_REQUEST_BYTES} bytes")]
    TooLong,
    #[error("request is not UTF-8")]
    NotUtf8,
    #[error("empty request")]
    Empty,
    #[error("bad request: {0}")]
    Invalid(String),
}

/// Parses one request line (with or without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| RequestError::NotUtf8)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(RequestError::Empty);
    }
    serde_json::from_str(text).map_err(|e| RequestError::Invalid(e.to_string()))
}

/// Parses a reply line (the client's side).
pub fn parse_reply(line: &str) -> Result<Reply, serde_json::Error> {
    serde_json::from_str(line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse_request(b"{\"cmd\":\"list\"}\n"),
            Ok(Request::List {
                after: None,
                limit: None
            })
        );
        assert_eq!(
            parse_request(b"{\"cmd\":\"list\",\"after\":\"2001:db8::1\",\"limit\":5}\n"),
            Ok(Request::List {
                after: Some("2001:db8::1".parse().unwrap()),
                limit: Some(5)
            })
        );
        assert_eq!(parse_request(b" {\"cmd\":\"flush\"} "), Ok(Request::Flush));
        assert_eq!(
            parse_request(br#"{"cmd":"add","ip":"10.0.0.1","ttl_s":90}"#),
            Ok(Request::Add {
                ip: "10.0.0.1".parse().unwrap(),
                ttl_s: Some(90)
            })
        );
        assert_eq!(
            parse_request(br#"{"cmd":"add","ip":"2001:db8::1"}"#),
            Ok(Request::Add {
                ip: "2001:db8::1".parse().unwrap(),
                ttl_s: None
            })
        );
        assert_eq!(
            parse_request(br#"{"cmd":"del","ip":"10.0.0.1"}"#),
            Ok(Request::Del {
                ip: "10.0.0.1".parse().unwrap()
            })
        );
    }

    #[test]
    fn a_request_round_trips() {
        let r = Request::Add {
            ip: "10.1.2.3".parse().unwrap(),
            ttl_s: Some(5),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"cmd":"add","ip":"10.1.2.3","ttl_s":5}"#);
        assert_eq!(parse_request(line.as_bytes()), Ok(r));
    }

    fn invalid(line: &[u8]) -> String {
        match parse_request(line) {
            Err(RequestError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn bad_requests_say_why() {
        let cases: [(&[u8], &str); 9] = [
            (b"{\"cmd\":\"list\"", "EOF while parsing an object at line 1 column 13"),
            (b"list", "expected value at line 1 column 1"),
            (
                b"\"list\"",
                "invalid type: string \"list\", expected internally tagged enum Request at line 1 column 6",
            ),
            (
                br#"{"cmd":"reboot"}"#,
                "unknown variant `reboot`, expected one of `list`, `add`, `del`, `flush` at line 1 column 15",
            ),
            (br#"{"ip":"10.0.0.1"}"#, "missing field `cmd` at line 1 column 17"),
            (br#"{"cmd":"del"}"#, "missing field `ip`"),
            (br#"{"cmd":"del","ip":"10.0.0.300"}"#, "invalid IP address syntax"),
            (
                br#"{"cmd":"add","ip":"10.0.0.1","ttl_s":-1}"#,
                "invalid value: integer `-1`, expected u64",
            ),
            (
                br#"{"cmd":"del","ip":"1.2.3.4","x":1}"#,
                "unknown field `x`, expected `ip`",
            ),
        ];
        for (line, message) in cases {
            assert_eq!(invalid(line), message);
        }
        assert_eq!(parse_request(b"  \n"), Err(RequestError::Empty));
        assert_eq!(parse_request(b"\xff\xfe"), Err(RequestError::NotUtf8));
    }

    #[test]
    fn oversized_requests_are_refused_unparsed() {
        let mut long = br#"{"cmd":"list","pad":""#.to_vec();
        long.resize(MAX_REQUEST_BYTES + 1, b' ');
        assert_eq!(parse_request(&long), Err(RequestError::TooLong));
        assert_eq!(
            RequestError::TooLong.to_string(),
            "request longer than 1024 bytes"
        );
    }

    #[test]
    fn replies_round_trip_and_errors_say_ok_false() {
        let info = BanInfo {
            ip: "10.0.0.1".parse().unwrap(),
            reason: "manual".into(),
            first_seen_ms: 1,
            last_seen_ms: 2,
            hits: 1,
            expires_ms: Some(10),
            remaining_ms: Some(8),
            announced: None,
            imported_from: None,
        };
        for reply in [
            Reply::Bans {
                ok: true,
                bans: vec![info.clone()],
                total: 1,
            },
            Reply::Added {
                ok: true,
                ban: info.clone(),
                new: true,
            },
            Reply::Deleted {
                ok: true,
                deleted: info,
            },
            Reply::Flushed {
                ok: true,
                removed: 3,
            },
            Reply::error("nope"),
        ] {
            let line = reply.to_line();
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            assert_eq!(parse_reply(&line).unwrap(), reply);
        }
        assert_eq!(
            Reply::error("10.0.0.1 is not banned").to_line(),
            "{\"ok\":false,\"error\":\"10.0.0.1 is not banned\"}\n"
        );
    }
}
