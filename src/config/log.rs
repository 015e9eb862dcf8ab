//! The `log` section: the detection log's file, rotation and payload prefix.
use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::field::{int_in_or, invalid};
use super::ConfigError;
use crate::ban::detection_log::{DetectionLogConfig, MAX_PAYLOAD_BYTES};

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    path: Option<Spanned<String>>,
    max_bytes: Option<Spanned<i64>>,
    keep: Option<Spanned<i64>>,
    payload_bytes: Option<Spanned<i64>>,
}

pub(super) fn validate(raw: Option<Spanned<RawLog>>) -> Result<DetectionLogConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();
    let d = DetectionLogConfig::default();
    let path = match raw.path {
        None => None,
        Some(p) if p.value.trim().is_empty() => {
            return Err(invalid(
                "log.path",
                &p,
                "must not be empty (leave log.path out to keep no detection log)",
            ))
        }
        Some(p) => Some(PathBuf::from(p.value)),
    };
    Ok(DetectionLogConfig {
        path,
        max_bytes: int_in_or(
            "log.max_bytes",
            raw.max_bytes.as_ref(),
            d.max_bytes,
            1,
            i64::MAX,
        )?,
        keep: int_in_or("log.keep", raw.keep.as_ref(), d.keep, 0, 1000)?,
        // The cap is the room a worker's fixed-size detection event has.
        payload_bytes: int_in_or(
            "log.payload_bytes",
            raw.payload_bytes.as_ref(),
            d.payload_bytes,
            0,
            MAX_PAYLOAD_BYTES as i64,
        )?,
    })
}
