//! Reads the YAML text into the raw structs and turns serde-saphyr's errors
//! into [`ConfigError`]s that name the key path and the line.
use serde_path_to_error::{Path, Segment};
use serde_saphyr::{Error, ExternalMessageSource, MessageFormatter, Spanned, UserMessageFormatter};

use super::raw::RawConfig;
use super::ConfigError;

/// `Spanned<T>` reads its value through a field of this name, which
/// serde_path_to_error records as a path segment; it is no key of the file.
const SPANNED_VALUE_SEGMENT: &str = "value";

pub(super) fn parse(text: &str) -> Result<Spanned<RawConfig>, ConfigError> {
    let mut failed_at: Option<Path> = None;
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, Option<Spanned<RawConfig>>>(de).map_err(|e| {
            failed_at = Some(e.path().clone());
            e.into_inner()
        })
    });
    match parsed {
        Ok(Some(raw)) => Ok(raw),
        Ok(None) => Err(ConfigError::Empty),
        Err(err) => Err(translate(&err, failed_at.as_ref())),
    }
}

fn translate(err: &Error, path: Option<&Path>) -> ConfigError {
    let line = err.location().map(|l| l.line()).filter(|&l| l > 0);
    let err = innermost(err);
    let segments: Vec<&Segment> = path.map(|p| p.iter().collect()).unwrap_or_default();
    let mut keys = key_segments(&segments);
    match err {
        Error::SerdeUnknownField {
            field, expected, ..
        } => {
            // The path ends at the unknown key itself, which may be spelt
            // like the segment `Spanned` adds: name it from the error instead.
            let parent = match segments.split_last() {
                Some((Segment::Map { .. }, parent)) => parent,
                _ => &segments[..],
            };
            keys = key_segments(parent);
            keys.push(KeySegment::Key(sanitize(field)));
            ConfigError::UnknownKey {
                key: join(&keys),
                expected: expected.join(", "),
                line,
            }
        }
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => ConfigError::Invalid {
            key: join(&keys),
            problem: format!(
                "`{}` is not one of: {}",
                sanitize(variant),
                expected.join(", ")
            ),
            line,
        },
        Error::DuplicateMappingKey { key, .. } => {
            keys.push(KeySegment::Key(key.as_deref().map_or("?".into(), sanitize)));
            ConfigError::Invalid {
                key: join(&keys),
                problem: "duplicate key".into(),
                line,
            }
        }
        Error::ExternalMessage { source, .. }
            if matches!(source.as_ref(), ExternalMessageSource::Parser(_)) =>
        {
            ConfigError::Syntax {
                message: message(err),
                line,
            }
        }
        Error::Unexpected { expected, .. } if keys.is_empty() && expected.contains("mapping") => {
            ConfigError::NotAMapping { line }
        }
        _ if keys.is_empty() => ConfigError::Syntax {
            message: message(err),
            line,
        },
        _ => ConfigError::Invalid {
            key: join(&keys),
            problem: message(err),
            line,
        },
    }
}

/// The error itself, without the snippet or alias wrappers around it.
fn innermost(mut err: &Error) -> &Error {
    loop {
        err = match err {
            Error::WithSnippet { error, .. } | Error::AliasError { error, .. } => error,
            other => return other,
        }
    }
}

/// serde-saphyr's own wording, with types named the way the schema does.
fn message(err: &Error) -> String {
    let text = match err {
        // The raw structs read every number as i64 and every flag as bool.
        Error::InvalidScalar { ty: "i64", .. } => "expected an integer".into(),
        Error::InvalidScalar { ty: "boolean", .. } => "expected true or false".into(),
        Error::Unexpected { expected, .. } => match *expected {
            e if e.contains("mapping") => "expected a mapping".into(),
            e if e.contains("sequence") => "expected a list".into(),
            e if e.contains("string") => "expected a string".into(),
            e => format!("expected {e}"),
        },
        other => UserMessageFormatter.format_message(other).into_owned(),
    };
    sanitize(&text)
}

/// Keys come from the file: keep terminal control characters out of the
/// message.
fn sanitize(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            clean.extend(c.escape_debug());
        } else {
            clean.push(c);
        }
    }
    clean
}

enum KeySegment {
    Key(String),
    Index(usize),
}

/// The path without the segments `Spanned` and enums add.
fn key_segments(path: &[&Segment]) -> Vec<KeySegment> {
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } if key == SPANNED_VALUE_SEGMENT => None,
            Segment::Map { key } => Some(KeySegment::Key(sanitize(key))),
            Segment::Seq { index } => Some(KeySegment::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// `ports[1].rx_queues`
fn join(keys: &[KeySegment]) -> String {
    let mut text = String::new();
    for segment in keys {
        match segment {
            KeySegment::Key(key) if text.is_empty() => text.push_str(key),
            KeySegment::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            KeySegment::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}
