//! The `control` section: the operator socket, the Unix socket
//! `btblocker bans …` talks to.
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::field::invalid;
use super::ConfigError;

/// Where the running daemon listens for operator commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorConfig {
    /// `None`: no control socket (`socket: null` or `enabled: false`).
    pub socket: Option<PathBuf>,
}

pub const DEFAULT_SOCKET: &str = "/run/btblocker/control.sock";

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            socket: Some(PathBuf::from(DEFAULT_SOCKET)),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperator {
    enabled: Option<bool>,
    /// Outer `None`: key absent (default path); inner `None`: `socket: null`.
    #[serde(default, deserialize_with = "present")]
    socket: Option<Spanned<Option<String>>>,
}

/// Deserializes a key that is present, even when its value is null, so that
/// `socket: null` (off) differs from no `socket` key (the default path).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

pub(super) fn validate(raw: Option<Spanned<RawOperator>>) -> Result<OperatorConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();
    if raw.enabled == Some(false) {
        return Ok(OperatorConfig { socket: None });
    }
    let Some(socket) = raw.socket else {
        return Ok(OperatorConfig::default());
    };
    let Some(path) = &socket.value else {
        return Ok(OperatorConfig { socket: None });
    };
    if path.is_empty() {
        return Err(invalid(
            "control.socket",
            &socket,
            "must be a path (or null for no control socket)",
        ));
    }
    if path.len() > MAX_SOCKET_PATH {
        return Err(invalid(
            "control.socket",
            &socket,
            format!(
                "{} bytes is longer than a Unix socket path may be ({MAX_SOCKET_PATH})",
                path.len()
            ),
        ));
    }
    Ok(OperatorConfig {
        socket: Some(PathBuf::from(path)),
    })
}
