//! Local Service Discovery (BEP 14): an HTTP-like `BT-SEARCH * HTTP/1.1`
//! announce multicast to 239.192.152.143:6771 or `[ff15::efc0:988f]:6771`, with
//! `Host`, `Port` and one or more `Infohash` headers. The request line with an
//! `Infohash:` header is unique to BitTorrent (Definitive); the request line
//! alone is Strong, and Definitive when sent to the LSD group and port.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder};

use super::detector::{Detector, Findings, Payload};
use super::{Confidence, DetectorId};

const REQUEST_LINE: &[u8] = b"BT-SEARCH * HTTP/1.1\r\n";
pub(super) const LSD_PORT: u16 = 6771;
pub(super) const LSD_V4: Ipv4Addr = Ipv4Addr::new(239, 192, 152, 143);
pub(super) const LSD_V6: Ipv6Addr = Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f);
/// The header block searched for `Infohash:`.
const MAX_HEADERS: usize = 1024;

/// Built once; finds the header name in any letter case.
pub(super) struct LsdMatcher {
    infohash_header: AhoCorasick,
}

impl LsdMatcher {
    pub(super) fn new() -> Self {
        LsdMatcher {
            infohash_header: AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .build(["\ninfohash:"])
                .expect("static pattern"),
        }
    }

    /// The evidence in a datagram sent to `dst:dst_port`.
    pub(super) fn evidence(
        &self,
        payload: &[u8],
        dst: IpAddr,
        dst_port: u16,
    ) -> Option<Confidence> {
        if !payload.starts_with(REQUEST_LINE) {
            return None;
        }
        let headers = &payload[..payload.len().min(MAX_HEADERS)];
        let to_group =
            dst_port == LSD_PORT && (dst == IpAddr::V4(LSD_V4) || dst == IpAddr::V6(LSD_V6));
        if to_group || self.infohash_header.is_match(headers) {
            Some(Confidence::Definitive)
        } else {
            Some(Confidence::Strong)
        }
    }
}

impl Default for LsdMatcher {
    fn default() -> Self {
        Self::new()
    }
}

/// The LSD detector.
impl Detector for LsdMatcher {
    type Memory = ();

    #[inline]
    fn inspect(&self, _: &mut (), p: &Payload<'_>, out: &mut Findings<'_>) {
        if !out.enabled(DetectorId::Lsd) {
            return;
        }
        if let Some(c) = self.evidence(p.bytes, p.ctx.dst, p.ctx.dst_port) {
            out.note(DetectorId::Lsd, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANNOUNCE: &[u8] = b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\ncookie: x1\r\n\r\n\r\n";

    #[test]
    fn announce_with_infohash_is_definitive_anywhere() {
        let m = LsdMatcher::new();
        let unicast = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9));
        assert_eq!(
            m.evidence(ANNOUNCE, unicast, 40000),
            Some(Confidence::Definitive)
        );
    }

    #[test]
    fn request_line_alone_needs_the_group() {
        let m = LsdMatcher::new();
        let bare = b"BT-SEARCH * HTTP/1.1\r\nHost: x\r\n\r\n";
        let unicast = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9));
        assert_eq!(m.evidence(bare, unicast, 6771), Some(Confidence::Strong));
        assert_eq!(
            m.evidence(bare, IpAddr::V4(LSD_V4), 6771),
            Some(Confidence::Definitive)
        );
        assert_eq!(
            m.evidence(bare, IpAddr::V6(LSD_V6), 6771),
            Some(Confidence::Definitive)
        );
        assert_eq!(
            m.evidence(bare, IpAddr::V4(LSD_V4), 6772),
            Some(Confidence::Strong)
        );
    }

    #[test]
    fn ssdp_and_other_text_are_not_lsd() {
        let m = LsdMatcher::new();
        let ssdp =
            b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n";
        assert_eq!(m.evidence(ssdp, IpAddr::V4(LSD_V4), 6771), None);
        assert_eq!(m.evidence(b"BT-SEARCH", IpAddr::V4(LSD_V4), 6771), None);
    }
}
