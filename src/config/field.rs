//! Small helpers shared by the section validators: where a value sits in the
//! file, and the errors and range checks every section needs.
use serde_saphyr::Spanned;

use super::ConfigError;

/// The line a value was read from; `None` when the parser could not tell
/// (it reports line 0 then).
pub(super) fn line<T>(value: &Spanned<T>) -> Option<u64> {
    let line = value.referenced.line();
    (line > 0).then_some(line)
}

/// `key: problem (line N)`, at the line of `at`.
pub(super) fn invalid<T>(key: &str, at: &Spanned<T>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        problem: problem.into(),
        line: line(at),
    }
}

/// `key: required (line N)`, where N is the line of the enclosing mapping.
pub(super) fn missing(key: &str, parent_line: Option<u64>) -> ConfigError {
    ConfigError::Missing {
        key: key.to_owned(),
        line: parent_line,
    }
}

/// An integer in `min..=max`, converted to the type the public struct holds.
/// Raw integers are read as `i64` so that a negative or oversized value gets
/// the same "must be >= / <=" message as any other out-of-range value.
pub(super) fn int_in<T: TryFrom<i64>>(
    key: &str,
    value: &Spanned<i64>,
    min: i64,
    max: i64,
) -> Result<T, ConfigError> {
    let v = value.value;
    if v < min {
        return Err(invalid(key, value, format!("must be >= {min}")));
    }
    if v > max {
        return Err(invalid(key, value, format!("must be <= {max}")));
    }
    T::try_from(v).map_err(|_| invalid(key, value, format!("must be <= {max}")))
}

/// [`int_in`] for an optional key, `default` when it is absent.
pub(super) fn int_in_or<T: TryFrom<i64>>(
    key: &str,
    value: Option<&Spanned<i64>>,
    default: T,
    min: i64,
    max: i64,
) -> Result<T, ConfigError> {
    match value {
        Some(v) => int_in(key, v, min, max),
        None => Ok(default),
    }
}

/// The elements of an optional list, empty when the key is absent.
pub(super) fn list<T>(value: Option<Spanned<Vec<Spanned<T>>>>) -> Vec<Spanned<T>> {
    value.map(|v| v.value).unwrap_or_default()
}
