//! Audit log of detections and the ban action taken for each: one JSON object
//! per line, rotated by size.
//!
//! Each [`HostDetection`] the [`BanKeeper`](crate::ban::keeper::BanKeeper)
//! applies becomes one [`DetectionRecord`], with the action it led to, and
//! [`DetectionLog`] appends it. Only the control thread writes: a worker must
//! never wait on a disk.
//!
//! Rotation follows logrotate's numbering: FILE is always the newest, FILE.1
//! the one before it, up to FILE.`keep`; anything older is deleted so the log
//! never takes more than about `(keep + 1) * max_bytes` of disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

use crate::ban::HostDetection;
use crate::dpi::Reasons;

/// Longest payload prefix the log will hex-dump: enough to show a handshake,
/// small enough that a line stays readable, the worker's detection event stays
/// fixed-size and the log cannot be used to exfiltrate whole packets.
pub const MAX_PAYLOAD_BYTES: usize = crate::ban::MAX_PAYLOAD_PREFIX;

/// Where and how much to log. `path: None` turns the log off.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionLogConfig {
    pub path: Option<PathBuf>,
    /// Rotate before the current file would grow past this many bytes.
    pub max_bytes: u64,
    /// How many rotated files (FILE.1 .. FILE.keep) to keep.
    pub keep: usize,
    /// Payload prefix to hex-dump per record; 0 = none, at most `MAX_PAYLOAD_BYTES`.
    pub payload_bytes: usize,
}

impl Default for DetectionLogConfig {
    fn default() -> Self {
        DetectionLogConfig {
            path: None,
            max_bytes: 64 * 1024 * 1024,
            keep: 5,
            payload_bytes: 0,
        }
    }
}

impl DetectionLogConfig {
    /// Rejects settings that `open` would otherwise have to guess about.
    pub fn validate(&self) -> Result<(), DetectionLogError> {
        if self.payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(DetectionLogError::PayloadBytesTooLarge {
                requested: self.payload_bytes,
                max: MAX_PAYLOAD_BYTES,
            });
        }
        if self.max_bytes == 0 {
            return Err(DetectionLogError::ZeroMaxBytes);
        }
        Ok(())
    }

    /// Opens the configured log, or `None` when logging is off.
    pub fn open(&self) -> Result<Option<DetectionLog>, DetectionLogError> {
        self.validate()?;
        match &self.path {
            None => Ok(None),
            Some(path) => DetectionLog::open(path, self.max_bytes, self.keep).map(Some),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectionLogError {
    #[error("detection log: cannot create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("detection log: cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("detection log: cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("detection log: cannot rotate {from} to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("detection log: cannot delete old log {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("detection log: cannot encode a record for {path}: {source}")]
    Encode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("detection log: payload_bytes {requested} is over the maximum {max}")]
    PayloadBytesTooLarge { requested: usize, max: usize },
    #[error("detection log: max_bytes must be at least 1")]
    ZeroMaxBytes,
}

/// One line of the log. Every field is always present (absent values are
/// `null`), so consumers can rely on a fixed schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DetectionRecord<'a> {
    /// When the worker saw the detection, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The worker (lcore or index) that made the detection.
    pub worker: u32,
    /// Name of the port the packet came in on, when known.
    pub port: Option<&'a str>,
    /// "tcp" or "udp".
    pub proto: &'a str,
    pub src: String,
    pub sport: u16,
    pub dst: String,
    pub dport: u16,
    pub detector: &'a str,
    /// "weak", "strong" or "definitive".
    pub confidence: &'a str,
    /// The reason chain, as a list of names (`Reasons::names`: detectors
    /// with evidence, then facts such as "mse_envelope"); `[]` when the
    /// event carries none.
    #[serde(serialize_with = "reason_names")]
    pub reasons: Reasons,
    /// What the control thread did: "banned", "refreshed", "below_threshold",
    /// "allowlisted", "refused_full", "log_only", ...
    pub action: &'a str,
    /// When the ban ends (RFC 3339), for actions that set or extend one.
    pub ban_expires: Option<String>,
    /// First `payload_bytes` bytes of the payload as lowercase hex.
    pub payload_hex: Option<String>,
}

/// The per-record facts a `HostDetection` does not carry.
#[derive(Clone, Copy, Debug)]
pub struct RecordContext<'a> {
    pub worker: u32,
    pub port: Option<&'a str>,
    pub proto: &'a str,
    pub action: &'a str,
    /// Unix ms at which the ban expires, for actions that set or extend one.
    pub ban_expires_ms: Option<u64>,
}

impl<'a> DetectionRecord<'a> {
    /// Builds the record for `event`. `src`/`sport` is the event's host (the
    /// address the verdict is about), `dst`/`dport` its peer. `payload` is
    /// dumped up to `payload_bytes` (capped at `MAX_PAYLOAD_BYTES`).
    pub fn from_event(
        event: &'a HostDetection,
        ctx: RecordContext<'a>,
        payload: &[u8],
        payload_bytes: usize,
    ) -> Self {
        DetectionRecord {
            time: rfc3339_utc_ms(event.at_ms),
            worker: ctx.worker,
            port: ctx.port,
            proto: ctx.proto,
            src: event.host.to_string(),
            sport: event.host_port,
            dst: event.peer.to_string(),
            dport: event.peer_port,
            detector: event.detector.name(),
            confidence: event.confidence.name(),
            reasons: event.reasons,
            action: ctx.action,
            ban_expires: ctx.ban_expires_ms.map(rfc3339_utc_ms),
            payload_hex: payload_hex(payload, payload_bytes),
        }
    }
}

/// Writes the names straight into the line: no list is built.
fn reason_names<S: Serializer>(reasons: &Reasons, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(reasons.names())
}

/// The first `min(limit, MAX_PAYLOAD_BYTES)` bytes of `payload` as lowercase
/// hex; `None` when that is nothing (limit 0 or empty payload).
pub fn payload_hex(payload: &[u8], limit: usize) -> Option<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let take = limit.min(MAX_PAYLOAD_BYTES).min(payload.len());
    let prefix = payload.get(..take)?;
    if prefix.is_empty() {
        return None;
    }
    let mut hex = String::with_capacity(take.saturating_mul(2));
    for &byte in prefix {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    Some(hex)
}

/// Unix milliseconds as RFC 3339 UTC, e.g. `2026-11-23T04:57:24.992Z`.
/// Done by hand (Howard Hinnant's civil-from-days) to avoid a date crate for
/// one conversion; exact for the proleptic Gregorian calendar.
pub fn rfc3339_utc_ms(unix_ms: u64) -> String {
    let ms = unix_ms % 1000;
    let secs = unix_ms / 1000;
    let sec_of_day = secs % 86_400;
    // secs / 86_400 < 2^48, so the i64 casts and the arithmetic below cannot overflow.
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sec_of_day / 3600,
        sec_of_day % 3600 / 60,
        sec_of_day % 60
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appending JSON-lines writer that rotates FILE → FILE.1 → … → FILE.keep.
#[derive(Debug)]
pub struct DetectionLog {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    out: BufWriter<File>,
    /// Bytes in FILE, including what is still in the buffer.
    size: u64,
    /// Reused encode buffer, so a record costs no allocation for the line.
    line: Vec<u8>,
}

impl DetectionLog {
    /// Opens `path` for appending (creating it and its parent directory).
    /// An existing file's size counts toward `max_bytes`.
    pub fn open(
        path: impl AsRef<Path>,
        max_bytes: u64,
        keep: usize,
    ) -> Result<Self, DetectionLogError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|source| DetectionLogError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let (file, size) = open_append(&path)?;
        Ok(DetectionLog {
            path,
            max_bytes,
            keep,
            out: BufWriter::new(file),
            size,
            line: Vec::with_capacity(512),
        })
    }

    /// The current (newest) file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line. Rotates first when the line would take
    /// FILE past `max_bytes`; a line longer than `max_bytes` on its own still
    /// goes into a fresh file rather than rotating forever.
    pub fn write(&mut self, rec: &DetectionRecord<'_>) -> Result<(), DetectionLogError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, rec).map_err(|source| DetectionLogError::Encode {
            path: self.path.clone(),
            source,
        })?;
        self.line.push(b'\n');
        let len = self.line.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        self.out
            .write_all(&self.line)
            .map_err(|source| self.write_error(source))?;
        self.size = self.size.saturating_add(len);
        Ok(())
    }

    /// Pushes buffered lines to the file (the control thread calls this once
    /// per tick, so a crash loses at most one tick of records).
    pub fn flush(&mut self) -> Result<(), DetectionLogError> {
        self.out.flush().map_err(|source| self.write_error(source))
    }

    fn write_error(&self, source: io::Error) -> DetectionLogError {
        DetectionLogError::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> Result<(), DetectionLogError> {
        self.flush()?;
        // Delete FILE.keep and anything older (left by a run with a larger
        // `keep`), so the shift below never overwrites and never leaks files.
        let mut n = self.keep.max(1);
        loop {
            let old = self.rotated(n);
            match fs::remove_file(&old) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(source) => return Err(DetectionLogError::Remove { path: old, source }),
            }
        }
        for n in (1..self.keep).rev() {
            rename_if_exists(&self.rotated(n), &self.rotated(n + 1))?;
        }
        if self.keep == 0 {
            // No history wanted: start FILE over.
            fs::remove_file(&self.path).map_err(|source| DetectionLogError::Remove {
                path: self.path.clone(),
                source,
            })?;
        } else {
            rename_if_exists(&self.path, &self.rotated(1))?;
        }
        let (file, size) = open_append(&self.path)?;
        self.out = BufWriter::new(file);
        self.size = size;
        Ok(())
    }
}

impl Drop for DetectionLog {
    fn drop(&mut self) {
        // Best effort: BufWriter's own drop also flushes but hides errors the
        // same way; the control thread calls `flush` itself at shutdown.
        let _ = self.out.flush();
    }
}

fn open_append(path: &Path) -> Result<(File, u64), DetectionLogError> {
    let open_err = |source| DetectionLogError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(open_err)?;
    let size = file.metadata().map_err(open_err)?.len();
    Ok((file, size))
}

fn rename_if_exists(from: &Path, to: &Path) -> Result<(), DetectionLogError> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DetectionLogError::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ban::BanKey;
    use crate::dpi::{DetectorId, Reason};
    use crate::wire::Transport;
    use serde_json::Value;

    fn record(action: &str) -> DetectionRecord<'_> {
        DetectionRecord {
            time: rfc3339_utc_ms(1_795_409_844_992),
            worker: 3,
            port: Some("wan0"),
            proto: "tcp",
            src: "10.0.0.1".to_string(),
            sport: 51413,
            dst: "192.0.2.7".to_string(),
            dport: 6881,
            detector: "peer_wire_handshake",
            confidence: "definitive",
            reasons: Reasons::NONE,
            action,
            ban_expires: Some(rfc3339_utc_ms(1_795_413_444_992)),
            payload_hex: payload_hex(b"\x13BitTorrent", 4),
        }
    }

    fn read_lines(path: &Path) -> Vec<Value> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn line_len(rec: &DetectionRecord<'_>) -> u64 {
        serde_json::to_vec(rec).unwrap().len() as u64 + 1
    }

    #[test]
    fn time_matches_known_instants() {
        assert_eq!(rfc3339_utc_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_utc_ms(1_795_409_844_992),
            "2026-11-23T04:57:24.992Z"
        );
        assert_eq!(rfc3339_utc_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc_ms(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(
            rfc3339_utc_ms(4_102_444_799_001),
            "2099-12-31T23:59:59.001Z"
        );
        assert_eq!(
            rfc3339_utc_ms(253_402_300_799_000),
            "9999-12-31T23:59:59.000Z"
        );
        // Must not panic on the largest input.
        assert!(rfc3339_utc_ms(u64::MAX).ends_with(".615Z"));
    }

    #[test]
    fn payload_hex_is_lowercase_capped_and_none_when_empty() {
        assert_eq!(payload_hex(&[0xAB, 0x01, 0xff], 2).as_deref(), Some("ab01"));
        assert_eq!(payload_hex(&[0xAB, 0x01], 10).as_deref(), Some("ab01"));
        assert_eq!(payload_hex(&[0xAB], 0), None);
        assert_eq!(payload_hex(&[], 16), None);
        let big = [0x5a_u8; 1000];
        let hex = payload_hex(&big, 10_000).unwrap();
        assert_eq!(hex.len(), 2 * MAX_PAYLOAD_BYTES);
        assert!(hex.bytes().all(|b| b == b'5' || b == b'a'));
    }

    #[test]
    fn line_is_json_with_exact_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/detections.jsonl");
        let mut log = DetectionLog::open(&path, 1 << 20, 2).unwrap();
        log.write(&record("banned")).unwrap();
        let mut below = record("below_threshold");
        below.detector = "mse";
        below.confidence = "strong";
        below.reasons.add_detector(DetectorId::Mse);
        below.reasons.add(Reason::MseEnvelope);
        below.reasons.add(Reason::MseA2Exact);
        below.reasons.add(Reason::EndpointAdvertised);
        below.port = None;
        below.ban_expires = None;
        below.payload_hex = None;
        log.write(&below).unwrap();
        log.flush().unwrap();

        let lines = read_lines(&path);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            serde_json::json!({
                "time": "2026-11-23T04:57:24.992Z",
                "worker": 3,
                "port": "wan0",
                "proto": "tcp",
                "src": "10.0.0.1",
                "sport": 51413,
                "dst": "192.0.2.7",
                "dport": 6881,
                "detector": "peer_wire_handshake",
                "confidence": "definitive",
                "reasons": [],
                "action": "banned",
                "ban_expires": "2026-11-23T05:57:24.992Z",
                "payload_hex": "13426974",
            })
        );
        let second = lines[1].as_object().unwrap();
        assert_eq!(second.len(), 14);
        assert_eq!(
            second["reasons"],
            serde_json::json!(["mse", "mse_envelope", "mse_a2_124", "endpoint_advertised"])
        );
        assert_eq!(second["port"], Value::Null);
        assert_eq!(second["ban_expires"], Value::Null);
        assert_eq!(second["payload_hex"], Value::Null);
        assert_eq!(second["action"], "below_threshold");
    }

    #[test]
    fn record_from_event_uses_host_as_source() {
        let mut reasons = Reasons::NONE;
        reasons.add(Reason::EndpointConfirmed);
        reasons.add(Reason::MseEnvelope);
        reasons.add_detector(DetectorId::KnownPeer);
        reasons.add_detector(DetectorId::Mse);
        let event = HostDetection {
            host: "10.1.2.3".parse::<BanKey>().unwrap(),
            peer: "2001:db8::1".parse::<BanKey>().unwrap(),
            host_port: 40000,
            peer_port: 6881,
            proto: Transport::Udp,
            port: 0,
            detector: DetectorId::Mse,
            confidence: crate::dpi::Confidence::Strong,
            reasons,
            at_ms: 1_000,
            payload: crate::ban::PayloadPrefix::EMPTY,
        };
        let ctx = RecordContext {
            worker: 1,
            port: None,
            proto: "udp",
            action: "refreshed",
            ban_expires_ms: Some(61_000),
        };
        let rec = DetectionRecord::from_event(&event, ctx, &[1, 2, 3], 2);
        assert_eq!(rec.time, "1970-01-01T00:00:01.000Z");
        assert_eq!(rec.src, "10.1.2.3");
        assert_eq!(rec.sport, 40000);
        assert_eq!(rec.dst, "2001:db8::1");
        assert_eq!(rec.dport, 6881);
        assert_eq!(rec.detector, "mse");
        assert_eq!(rec.confidence, "strong");
        let names: Vec<&str> = rec.reasons.names().collect();
        assert_eq!(
            names,
            ["mse", "known_peer", "mse_envelope", "endpoint_confirmed"]
        );
        let line = serde_json::to_value(&rec).unwrap();
        assert_eq!(
            line["reasons"],
            serde_json::json!(["mse", "known_peer", "mse_envelope", "endpoint_confirmed"])
        );
        assert_eq!(rec.ban_expires.as_deref(), Some("1970-01-01T00:01:01.000Z"));
        assert_eq!(rec.payload_hex.as_deref(), Some("0102"));
    }

    #[test]
    fn rotates_at_size_and_keeps_exactly_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let rec = DetectionRecord {
            worker: 10,
            ..record("banned")
        };
        let len = line_len(&rec);
        // Workers are numbered 10.. so every line has the same length.
        // Room for exactly three lines per file.
        let mut log = DetectionLog::open(&path, 3 * len, 2).unwrap();
        for i in 0..3 {
            log.write(&DetectionRecord {
                worker: 10 + i,
                ..rec.clone()
            })
            .unwrap();
        }
        log.flush().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 3 * len);
        assert!(!dir.path().join("d.jsonl.1").exists());

        // The fourth line would exceed max_bytes: FILE moves to FILE.1.
        log.write(&DetectionRecord {
            worker: 13,
            ..rec.clone()
        })
        .unwrap();
        log.flush().unwrap();
        assert_eq!(read_lines(&path).len(), 1);
        assert_eq!(read_lines(&dir.path().join("d.jsonl.1")).len(), 3);

        // Workers 14..=21: eight more lines, three more rotations.
        for i in 4..12 {
            log.write(&DetectionRecord {
                worker: 10 + i,
                ..rec.clone()
            })
            .unwrap();
        }
        log.flush().unwrap();
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["d.jsonl", "d.jsonl.1", "d.jsonl.2"]);
        let workers = |p: &Path| -> Vec<u64> {
            read_lines(p)
                .iter()
                .map(|v| v["worker"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(workers(&path), [19, 20, 21]);
        assert_eq!(workers(&dir.path().join("d.jsonl.1")), [16, 17, 18]);
        assert_eq!(workers(&dir.path().join("d.jsonl.2")), [13, 14, 15]);
    }

    #[test]
    fn rotation_deletes_files_beyond_a_smaller_keep() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        for n in 1..=4 {
            fs::write(dir.path().join(format!("d.jsonl.{n}")), "old\n").unwrap();
        }
        let rec = record("log_only");
        let mut log = DetectionLog::open(&path, line_len(&rec), 1).unwrap();
        log.write(&rec).unwrap();
        log.write(&rec).unwrap();
        log.flush().unwrap();
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["d.jsonl", "d.jsonl.1"]);
        assert_eq!(read_lines(&dir.path().join("d.jsonl.1")).len(), 1);
    }

    #[test]
    fn keep_zero_truncates_instead_of_keeping_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let rec = record("banned");
        let mut log = DetectionLog::open(&path, line_len(&rec), 0).unwrap();
        log.write(&rec).unwrap();
        log.write(&record("refreshed")).unwrap();
        log.flush().unwrap();
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["action"], "refreshed");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn oversized_line_goes_alone_into_a_fresh_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let rec = record("banned");
        let mut log = DetectionLog::open(&path, 10, 3).unwrap();
        log.write(&rec).unwrap();
        log.write(&rec).unwrap();
        log.flush().unwrap();
        assert_eq!(read_lines(&path).len(), 1);
        assert_eq!(read_lines(&dir.path().join("d.jsonl.1")).len(), 1);
        assert!(!dir.path().join("d.jsonl.2").exists());
    }

    #[test]
    fn reopening_appends_and_counts_existing_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let rec = record("banned");
        // Room for exactly the first two lines.
        let max = line_len(&rec) + line_len(&record("refreshed"));
        {
            let mut log = DetectionLog::open(&path, max, 1).unwrap();
            log.write(&rec).unwrap();
            log.flush().unwrap();
        }
        let mut log = DetectionLog::open(&path, max, 1).unwrap();
        log.write(&record("refreshed")).unwrap();
        log.flush().unwrap();
        let actions: Vec<Value> = read_lines(&path)
            .iter()
            .map(|v| v["action"].clone())
            .collect();
        assert_eq!(actions, ["banned", "refreshed"]);
        // The pre-existing line counted: a third line rotates.
        log.write(&record("allowlisted")).unwrap();
        log.flush().unwrap();
        assert_eq!(read_lines(&path).len(), 1);
        assert_eq!(read_lines(&dir.path().join("d.jsonl.1")).len(), 2);
    }

    #[test]
    fn config_defaults_and_validation() {
        let cfg = DetectionLogConfig::default();
        assert_eq!(cfg.path, None);
        assert_eq!(cfg.max_bytes, 64 * 1024 * 1024);
        assert_eq!(cfg.keep, 5);
        assert_eq!(cfg.payload_bytes, 0);
        assert!(cfg.open().unwrap().is_none());

        let too_much = DetectionLogConfig {
            payload_bytes: MAX_PAYLOAD_BYTES + 1,
            ..DetectionLogConfig::default()
        };
        assert!(matches!(
            too_much.validate(),
            Err(DetectionLogError::PayloadBytesTooLarge {
                requested: 65,
                max: 64
            })
        ));
        let at_max = DetectionLogConfig {
            payload_bytes: MAX_PAYLOAD_BYTES,
            ..DetectionLogConfig::default()
        };
        assert!(at_max.validate().is_ok());
    }

    #[test]
    fn open_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: open fails.
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        let err = DetectionLog::open(&path, 100, 1).unwrap_err();
        assert!(matches!(err, DetectionLogError::Open { .. }));
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}
