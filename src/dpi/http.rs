//! BitTorrent over HTTP: tracker announces and scrapes (BEP 3, 23, 48),
//! info_hash-addressed seeds (BEP 17), and BitTorrent clients' User-Agents
//! (which is also how BEP 19 web seeding shows itself: a plain ranged GET).
//!
//! A tracker request is a GET whose query carries `info_hash` (20 bytes once
//! URL-decoded) and `peer_id` (20 bytes): nothing but BitTorrent builds that
//! URL, on whatever port or path (`/announce`, `/announce.php?passkey=…`,
//! `/a/<key>/announce`). A scrape carries `info_hash` and its path's last
//! segment starts with `scrape` (BEP 48). Both are Definitive. A lone 20-byte
//! `info_hash` parameter is Strong; a client User-Agent is Strong.
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use memchr::memchr;

use super::detector::{Detector, Findings, Payload};
use super::{Confidence, DetectorId};

/// A request line longer than this is not a tracker request.
const MAX_REQUEST_LINE: usize = 4096;
/// The header block searched for the User-Agent (first segment only).
const MAX_HEADERS: usize = 2048;
const HASH_LEN: usize = 20;

/// User-Agent tokens of BitTorrent clients and libraries. Generic download
/// managers that also speak BitTorrent (aria2, FlashGet, Free Download
/// Manager) are left out: their User-Agent is on plain HTTP downloads too.
const CLIENT_AGENTS: [&str; 20] = [
    "BitTorrent/",
    "uTorrent/",
    "\u{b5}Torrent/",
    "qBittorrent/",
    "qBittorrent v",
    "Transmission/",
    "Deluge/",
    "Deluge ",
    "libtorrent/",
    "rtorrent/",
    "Azureus ",
    "Azureus/",
    "Vuze/",
    "BiglyBT/",
    "BitComet/",
    "BTWebClient/",
    "KTorrent/",
    "Tixati/",
    "WebTorrent/",
    "Tribler/",
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct HttpEvidence {
    /// Tracker or info_hash-addressed request.
    pub tracker: Option<Confidence>,
    /// A BitTorrent client's User-Agent.
    pub client_agent: bool,
}

/// Matchers built once (in `DpiEngine::new`); searching never allocates.
pub(super) struct HttpMatcher {
    user_agent_header: AhoCorasick,
    client_agents: AhoCorasick,
}

impl HttpMatcher {
    pub(super) fn new() -> Self {
        let user_agent_header = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(["\nuser-agent:"])
            .expect("static pattern");
        let client_agents = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(CLIENT_AGENTS)
            .expect("static patterns");
        HttpMatcher {
            user_agent_header,
            client_agents,
        }
    }

    /// The evidence in the first segment of an HTTP request.
    pub(super) fn evidence(&self, payload: &[u8]) -> Option<HttpEvidence> {
        let target = request_target(payload)?;
        let mut out = HttpEvidence {
            tracker: tracker_request(target),
            client_agent: false,
        };
        let headers = &payload[..payload.len().min(MAX_HEADERS)];
        if let Some(m) = self.user_agent_header.find(headers) {
            let value = &headers[m.end()..];
            let value = &value[..memchr(b'\r', value).unwrap_or(value.len())];
            out.client_agent = self.client_agents.is_match(value);
        }
        (out.tracker.is_some() || out.client_agent).then_some(out)
    }
}

impl Default for HttpMatcher {
    fn default() -> Self {
        Self::new()
    }
}

/// The HTTP detector: `HttpTracker` and `HttpClient`, on a direction's first
/// segment and on any segment that starts a new GET (keep-alive).
impl Detector for HttpMatcher {
    type Memory = ();

    #[inline]
    fn inspect(&self, _: &mut (), p: &Payload<'_>, out: &mut Findings<'_>) {
        let tracker_on = out.enabled(DetectorId::HttpTracker);
        let client_on = out.enabled(DetectorId::HttpClient);
        if !tracker_on && !client_on {
            return;
        }
        if p.stream_at != 0 && !p.bytes.starts_with(b"GET ") {
            return;
        }
        let Some(e) = self.evidence(p.bytes) else {
            return;
        };
        if let (Some(c), true) = (e.tracker, tracker_on) {
            out.note(DetectorId::HttpTracker, c);
        }
        if e.client_agent && client_on {
            out.note(DetectorId::HttpClient, Confidence::Strong);
        }
    }
}

/// The request-target of `GET <target> HTTP/1.x\r\n`.
fn request_target(payload: &[u8]) -> Option<&[u8]> {
    let rest = payload.strip_prefix(b"GET ")?;
    let line = &rest[..rest.len().min(MAX_REQUEST_LINE)];
    let end = memchr(b' ', line)?;
    let target = &line[..end];
    line[end + 1..].starts_with(b"HTTP/1.").then_some(target)
}

fn tracker_request(target: &[u8]) -> Option<Confidence> {
    let q = memchr(b'?', target)?;
    let (path, query) = (&target[..q], &target[q + 1..]);
    let mut info_hash = false;
    let mut peer_id = false;
    for param in query.split(|&b| b == b'&') {
        let Some(eq) = memchr(b'=', param) else {
            continue;
        };
        let (name, value) = (&param[..eq], &param[eq + 1..]);
        match name {
            b"info_hash" if decoded_len(value) == Some(HASH_LEN) => info_hash = true,
            b"peer_id" if decoded_len(value) == Some(HASH_LEN) => peer_id = true,
            _ => {}
        }
    }
    if !info_hash {
        return None;
    }
    let last_segment = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    if peer_id || last_segment.starts_with(b"scrape") {
        Some(Confidence::Definitive)
    } else {
        Some(Confidence::Strong)
    }
}

/// Length after URL-decoding, `None` on a broken `%` escape.
fn decoded_len(value: &[u8]) -> Option<usize> {
    let mut n = 0usize;
    let mut i = 0usize;
    while i < value.len() {
        if value[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            i += 3;
        } else {
            i += 1;
        }
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9a";

    fn get(target: &str, ua: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: tracker.example:6969\r\nUser-Agent: {ua}\r\nAccept-Encoding: gzip\r\n\r\n")
            .into_bytes()
    }

    #[test]
    fn announce_is_definitive() {
        let m = HttpMatcher::new();
        let req = get(
            &format!("/announce?info_hash={HASH}&peer_id=-TR3000-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=0&compact=1"),
            "Mozilla/5.0",
        );
        let e = m.evidence(&req).unwrap();
        assert_eq!(e.tracker, Some(Confidence::Definitive));
        assert!(!e.client_agent);
    }

    #[test]
    fn private_tracker_paths_and_param_order_do_not_matter() {
        let m = HttpMatcher::new();
        let req = get(
            &format!("/a/0123456789abcdef/announce.php?passkey=x&peer_id=-qB4650-%01%02%03%04%05%06%07%08%09%0a%0b%0c&info_hash={HASH}"),
            "x",
        );
        assert_eq!(
            m.evidence(&req).unwrap().tracker,
            Some(Confidence::Definitive)
        );
    }

    #[test]
    fn scrape_is_definitive_and_lone_info_hash_is_strong() {
        let m = HttpMatcher::new();
        let scrape = get(&format!("/scrape?info_hash={HASH}"), "x");
        assert_eq!(
            m.evidence(&scrape).unwrap().tracker,
            Some(Confidence::Definitive)
        );
        let seed = get(&format!("/seed?info_hash={HASH}&piece=3"), "x");
        assert_eq!(m.evidence(&seed).unwrap().tracker, Some(Confidence::Strong));
    }

    #[test]
    fn info_hash_must_decode_to_20_bytes() {
        let m = HttpMatcher::new();
        let short = get("/announce?info_hash=abc&peer_id=-TR3000-abcdefghijkl", "x");
        assert_eq!(m.evidence(&short), None);
        let broken = get("/announce?info_hash=%zz%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx&peer_id=-TR3000-abcdefghijkl", "x");
        assert_eq!(m.evidence(&broken), None);
        // A look-alike parameter name.
        let other = get(
            &format!("/api?my_info_hash={HASH}&peer_id=-TR3000-abcdefghijkl"),
            "x",
        );
        assert_eq!(m.evidence(&other), None);
    }

    #[test]
    fn client_user_agents_are_strong_signals() {
        let m = HttpMatcher::new();
        for ua in [
            "qBittorrent/4.6.5",
            "uTorrent/3550(46090)",
            "Transmission/4.0.5",
            "Azureus 5.7.6.0;Windows 11;Java 17",
            "Deluge/2.1.1 libtorrent/2.0.9.0",
        ] {
            let e = m.evidence(&get("/file.iso", ua)).unwrap();
            assert!(e.client_agent, "{ua}");
            assert_eq!(e.tracker, None);
        }
        // Case-insensitive header name.
        let lower = b"GET /x HTTP/1.1\r\nuser-agent: BitTorrent/7.10\r\n\r\n";
        assert!(m.evidence(lower).unwrap().client_agent);
    }

    #[test]
    fn ordinary_http_is_nothing() {
        let m = HttpMatcher::new();
        let browser = get(
            "/index.html?q=bittorrent+protocol",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        );
        assert_eq!(m.evidence(&browser), None);
        let windows_update = b"GET /filestreamingservice/files/abc.psf HTTP/1.1\r\nRange: bytes=0-65535\r\nUser-Agent: Microsoft-Delivery-Optimization/10.0\r\n\r\n";
        assert_eq!(m.evidence(windows_update), None);
        assert_eq!(m.evidence(b"POST /announce?info_hash=x HTTP/1.1\r\n"), None);
        assert_eq!(m.evidence(b"GET /announce?info_hash="), None);
        assert_eq!(m.evidence(b"HTTP/1.1 200 OK\r\n\r\n"), None);
    }
}
