//! The `dpi` section: how long flows are inspected, the known-peer cache and
//! which detectors run.
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::field::{int_in_or, invalid, list};
use super::ConfigError;
use crate::dpi::{DetectorId, DpiConfig};

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDpi {
    max_payload_packets: Option<Spanned<i64>>,
    known_peer_capacity: Option<Spanned<i64>>,
    known_peer_ttl_s: Option<Spanned<i64>>,
    learn_advertised_peers: Option<Spanned<bool>>,
    disabled_detectors: Option<Spanned<Vec<Spanned<String>>>>,
}

pub(super) fn validate(raw: Option<Spanned<RawDpi>>) -> Result<DpiConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();
    let default = DpiConfig::default();
    let mut detectors = default.detectors;
    for (i, name) in list(raw.disabled_detectors).iter().enumerate() {
        let Some(id) = DetectorId::ALL.iter().find(|d| d.name() == name.value) else {
            let known: Vec<&str> = DetectorId::ALL.iter().map(|d| d.name()).collect();
            return Err(invalid(
                &format!("dpi.disabled_detectors[{i}]"),
                name,
                format!(
                    "unknown detector {:?}, expected one of: {}",
                    name.value,
                    known.join(", ")
                ),
            ));
        };
        detectors.set(*id, false);
    }
    Ok(DpiConfig {
        max_payload_packets: int_in_or(
            "dpi.max_payload_packets",
            raw.max_payload_packets.as_ref(),
            default.max_payload_packets,
            1,
            64,
        )?,
        known_peer_capacity: int_in_or(
            "dpi.known_peer_capacity",
            raw.known_peer_capacity.as_ref(),
            default.known_peer_capacity,
            0,
            1 << 24,
        )?,
        known_peer_ttl_secs: int_in_or(
            "dpi.known_peer_ttl_s",
            raw.known_peer_ttl_s.as_ref(),
            default.known_peer_ttl_secs,
            1,
            7 * 86_400,
        )?,
        learn_advertised_peers: raw
            .learn_advertised_peers
            .map_or(default.learn_advertised_peers, |b| b.value),
        detectors,
    })
}
