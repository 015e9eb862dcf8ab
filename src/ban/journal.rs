//! Saves bans across restarts: an append-only journal of JSON lines, fsynced
//! at most every `flush_ms`, and compacted by an atomic rewrite.
//!
//! One record per line:
//! `{"op":"add","ip":"192.0.2.7","expires_at":…,"reason":"…","first_seen":…,"last_seen":…,"hits":…}`
//! (plus `"static":true` for a static ban), `{"op":"del","ip":"…"}`,
//! `{"op":"flush"}`. Replaying the lines in order rebuilds the table.
//!
//! Durability: records are buffered and reach the OS and the disk in
//! [`Journal::maybe_flush`] (every `flush_ms`) and [`Journal::close`], so a
//! clean stop loses nothing and a crash loses at most the last interval.
//! A crash can leave a torn last line; [`load`] reports it and keeps the rest.
//! Compaction writes the live set to `FILE.tmp`, fsyncs it, renames it over
//! `FILE` and fsyncs the directory: after a crash at any point the state file
//! is either the old journal or the complete new one.
use super::key::BanKey;
use super::table::BanEntry;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// Longest time a record may sit unsynced (ms).
    pub flush_ms: u64,
    /// [`Journal::should_compact`] waits for at least this many lines.
    pub compact_min_records: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            flush_ms: 1_000,
            compact_min_records: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open ban journal {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot read ban journal {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write ban journal {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot fsync {path}: {source}")]
    Sync { path: PathBuf, source: io::Error },
    #[error("cannot replace ban journal {path} with its compacted copy: {source}")]
    Replace { path: PathBuf, source: io::Error },
}

/// A line of the state file that [`load`] skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadWarning {
    /// 1-based line number.
    pub line: usize,
    pub problem: LoadProblem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadProblem {
    /// The last line has no newline and does not parse: the write was cut
    /// short by a crash. Expected after `kill -9` or a power loss.
    TruncatedLastLine,
    NotUtf8,
    /// Not a valid record (the JSON error).
    Malformed(String),
    /// The `ip` field is not an IP address.
    BadAddress(String),
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.problem {
            LoadProblem::TruncatedLastLine => write!(f, "truncated last line (crash?), ignored"),
            LoadProblem::NotUtf8 => write!(f, "not UTF-8, ignored"),
            LoadProblem::Malformed(e) => write!(f, "not a ban record ({e}), ignored"),
            LoadProblem::BadAddress(ip) => write!(f, "`{ip}` is not an IP address, ignored"),
        }
    }
}

/// A ban read back from the state file that is still in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedBan {
    pub key: BanKey,
    pub entry: BanEntry,
    /// Time left at load (ms); `None` for a static ban.
    pub remaining_ms: Option<u64>,
}

/// One line, as written (borrows, so writing allocates nothing per record
/// beyond the line buffer).
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum RecordOut<'a> {
    Add {
        ip: &'a str,
        expires_at: u64,
        reason: &'a str,
        first_seen: u64,
        last_seen: u64,
        hits: u64,
        #[serde(rename = "static", skip_serializing_if = "is_false")]
        is_static: bool,
    },
    Del {
        ip: &'a str,
    },
    Flush,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One line, as read.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum RecordIn {
    Add {
        ip: String,
        expires_at: u64,
        reason: String,
        first_seen: u64,
        last_seen: u64,
        hits: u64,
        #[serde(rename = "static", default)]
        is_static: bool,
    },
    Del {
        ip: String,
    },
    Flush,
}

/// The writer side of the state file. Owned by the control thread.
pub struct Journal {
    path: PathBuf,
    file: BufWriter<File>,
    config: JournalConfig,
    /// Records buffered or written since the last fsync.
    unsynced: bool,
    last_sync_ms: u64,
    /// Lines in the file, compacted ones included.
    records: u64,
    line: Vec<u8>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` for appending. If a crash
    /// left a torn last line, ends it so the next record starts on a line
    /// of its own.
    pub fn open(path: &Path, config: JournalConfig, now_ms: u64) -> Result<Self, JournalError> {
        let existing = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(JournalError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let mut journal = Journal::append_to(path, config, now_ms)?;
        journal.records = existing.iter().filter(|&&b| b == b'\n').count() as u64;
        if existing.last().is_some_and(|&b| b != b'\n') {
            journal.write_raw(b"\n")?;
            journal.records += 1;
        }
        Ok(journal)
    }

    fn append_to(path: &Path, config: JournalConfig, now_ms: u64) -> Result<Self, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| JournalError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(Journal {
            path: path.to_owned(),
            file: BufWriter::new(file),
            config,
            unsynced: false,
            last_sync_ms: now_ms,
            records: 0,
            line: Vec::with_capacity(256),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines in the file (after the last compaction, the live set plus the
    /// records appended since).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records that `key` is banned as `entry` (a new ban or a refresh).
    pub fn append_add(&mut self, key: &BanKey, entry: &BanEntry) -> Result<(), JournalError> {
        let ip = key.to_string();
        self.append(&add_record(&ip, entry))
    }

    /// Records that `key` is no longer banned (removed, evicted, allowlisted).
    pub fn append_del(&mut self, key: &BanKey) -> Result<(), JournalError> {
        let ip = key.to_string();
        self.append(&RecordOut::Del { ip: &ip })
    }

    /// Records that every ban was lifted.
    pub fn append_flush(&mut self) -> Result<(), JournalError> {
        self.append(&RecordOut::Flush)
    }

    fn append(&mut self, record: &RecordOut<'_>) -> Result<(), JournalError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record)
            .map_err(|e| self.write_error(io::Error::other(e)))?;
        self.line.push(b'\n');
        self.file
            .write_all(&self.line)
            .map_err(|source| JournalError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.unsynced = true;
        self.records += 1;
        Ok(())
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), JournalError> {
        self.file
            .write_all(bytes)
            .map_err(|source| self.write_error(source))?;
        self.unsynced = true;
        Ok(())
    }

    fn write_error(&self, source: io::Error) -> JournalError {
        JournalError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes out and fsyncs the buffered records if the last sync is at
    /// least `flush_ms` old. Returns true if it synced. Call it from the
    /// control loop as often as you like.
    pub fn maybe_flush(&mut self, now_ms: u64) -> Result<bool, JournalError> {
        if !self.unsynced || now_ms.saturating_sub(self.last_sync_ms) < self.config.flush_ms {
            return Ok(false);
        }
        self.sync(now_ms)?;
        Ok(true)
    }

    /// Writes out and fsyncs the buffered records now.
    pub fn sync(&mut self, now_ms: u64) -> Result<(), JournalError> {
        self.file
            .flush()
            .map_err(|source| self.write_error(source))?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(|source| JournalError::Sync {
                path: self.path.clone(),
                source,
            })?;
        self.unsynced = false;
        self.last_sync_ms = now_ms;
        Ok(())
    }

    /// True when the file holds more than twice the live set (and at least
    /// `compact_min_records` lines): time to [`Journal::compact`].
    pub fn should_compact(&self, live: usize) -> bool {
        self.records >= self.config.compact_min_records
            && self.records > (live as u64).saturating_mul(2)
    }

    /// Replaces the file with one `add` line per live ban, atomically.
    /// Returns the number of lines written.
    pub fn compact<'a, I>(&mut self, live: I, now_ms: u64) -> Result<u64, JournalError>
    where
        I: IntoIterator<Item = (&'a BanKey, &'a BanEntry)>,
    {
        // Everything appended so far reaches the disk first: if compaction
        // fails half-way, the old journal is complete.
        self.sync(now_ms)?;
        let written = write_compacted(&self.path, live)?;
        let mut fresh = Journal::append_to(&self.path, self.config, now_ms)?;
        fresh.records = written;
        fresh.line = std::mem::take(&mut self.line);
        *self = fresh;
        Ok(written)
    }

    /// Writes out and fsyncs what is buffered; the journal is complete on
    /// disk when this returns Ok.
    pub fn close(mut self, now_ms: u64) -> Result<(), JournalError> {
        self.sync(now_ms)
    }
}

fn add_record<'a>(ip: &'a str, entry: &'a BanEntry) -> RecordOut<'a> {
    RecordOut::Add {
        ip,
        expires_at: entry.expires_at,
        reason: &entry.reason,
        first_seen: entry.first_seen,
        last_seen: entry.last_seen,
        hits: entry.hits,
        is_static: entry.is_static,
    }
}

/// `FILE.tmp` beside `FILE`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `live` to `FILE.tmp`, fsyncs it, renames it over `path` and
/// fsyncs the directory so the rename itself survives a crash.
fn write_compacted<'a, I>(path: &Path, live: I) -> Result<u64, JournalError>
where
    I: IntoIterator<Item = (&'a BanKey, &'a BanEntry)>,
{
    let tmp = tmp_path(path);
    let write_err = |source| JournalError::Write {
        path: tmp.clone(),
        source,
    };
    let file = File::create(&tmp).map_err(|source| JournalError::Open {
        path: tmp.clone(),
        source,
    })?;
    let mut out = BufWriter::new(file);
    let mut written = 0u64;
    let mut ip = String::new();
    for (key, entry) in live {
        ip.clear();
        use std::fmt::Write as _;
        let _ = write!(ip, "{key}");
        serde_json::to_writer(&mut out, &add_record(&ip, entry))
            .map_err(io::Error::other)
            .map_err(write_err)?;
        out.write_all(b"\n").map_err(write_err)?;
        written += 1;
    }
    let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(|source| JournalError::Sync {
        path: tmp.clone(),
        source,
    })?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|source| JournalError::Replace {
        path: path.to_owned(),
        source,
    })?;
    sync_dir(path)?;
    Ok(written)
}

fn sync_dir(path: &Path) -> Result<(), JournalError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| JournalError::Sync {
            path: dir.to_owned(),
            source,
        })
}

/// Reads the state file at `path` and returns the bans still in force at
/// `now_ms`, sorted by key, plus a warning for every line it skipped. A
/// missing file is an empty table (first start).
pub fn load(path: &Path, now_ms: u64) -> Result<(Vec<LoadedBan>, Vec<LoadWarning>), JournalError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(source) => {
            return Err(JournalError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let ends_with_newline = bytes.last().is_none_or(|&b| b == b'\n');
    let line_count = bytes.split(|&b| b == b'\n').count();
    let mut bans: FxHashMap<BanKey, BanEntry> = FxHashMap::default();
    let mut warnings = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = index + 1;
        let is_torn = !ends_with_newline && line == line_count;
        match parse_line(raw) {
            Ok(record) => apply(&mut bans, record),
            Err(_) if is_torn => warnings.push(LoadWarning {
                line,
                problem: LoadProblem::TruncatedLastLine,
            }),
            Err(problem) => warnings.push(LoadWarning { line, problem }),
        }
    }
    let mut live: Vec<LoadedBan> = bans
        .into_iter()
        .filter(|(_, entry)| entry.is_in_force(now_ms))
        .map(|(key, entry)| LoadedBan {
            key,
            remaining_ms: entry.remaining_ms(now_ms),
            entry,
        })
        .collect();
    live.sort_unstable_by_key(|ban| ban.key);
    Ok((live, warnings))
}

enum Record {
    Add(BanKey, BanEntry),
    Del(BanKey),
    Flush,
}

fn parse_line(raw: &[u8]) -> Result<Record, LoadProblem> {
    let text = std::str::from_utf8(raw).map_err(|_| LoadProblem::NotUtf8)?;
    let record: RecordIn =
        serde_json::from_str(text).map_err(|e| LoadProblem::Malformed(e.to_string()))?;
    let key = |ip: String| {
        ip.parse::<BanKey>()
            .map_err(|_| LoadProblem::BadAddress(ip))
    };
    Ok(match record {
        RecordIn::Add {
            ip,
            expires_at,
            reason,
            first_seen,
            last_seen,
            hits,
            is_static,
        } => Record::Add(
            key(ip)?,
            BanEntry {
                expires_at,
                reason,
                first_seen,
                last_seen,
                hits,
                is_static,
            },
        ),
        RecordIn::Del { ip } => Record::Del(key(ip)?),
        RecordIn::Flush => Record::Flush,
    })
}

fn apply(bans: &mut FxHashMap<BanKey, BanEntry>, record: Record) {
    match record {
        Record::Add(key, entry) => {
            bans.insert(key, entry);
        }
        Record::Del(key) => {
            bans.remove(&key);
        }
        Record::Flush => bans.clear(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const NOW: u64 = 1_700_000_000_000;

    fn entry(expires_at: u64, reason: &str) -> BanEntry {
        BanEntry {
            expires_at,
            reason: reason.into(),
            first_seen: NOW - 5_000,
            last_seen: NOW - 1_000,
            hits: 3,
            is_static: false,
        }
    }

    fn k(s: &str) -> BanKey {
        s.parse().unwrap()
    }

    fn keys(bans: &[LoadedBan]) -> Vec<String> {
        bans.iter().map(|b| b.key.to_string()).collect()
    }

    fn state_file(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("bans.jsonl")
    }

    #[test]
    fn missing_file_loads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (bans, warnings) = load(&state_file(&dir), NOW).unwrap();
        assert!(bans.is_empty() && warnings.is_empty());
    }

    #[test]
    fn write_close_reload_gives_equal_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_file(&dir);
        let a = entry(NOW + 60_000, "peer_wire_handshake");
        let b = entry(NOW + 120_000, "reason with \"quotes\"\tand tab");
        let mut s = entry(NOW + 1, "denylist");
        s.expires_at = crate::ban::NEVER;
        s.is_static = true;
        let mut j = Journal::open(&path, JournalConfig::default(), NOW).unwrap();
        j.append_add(&k("192.0.2.1"), &a).unwrap();
        j.append_add(&k("2001:db8::7"), &b).unwrap();
        j.append_add(&k("198.51.100.9"), &s).unwrap();
        assert_eq!(j.records(), 3);
        j.close(NOW).unwrap();

        let (bans, warnings) = load(&path, NOW).unwrap();
        assert_eq!(warnings, vec![]);
        assert_eq!(
            bans,
            vec![
                LoadedBan {
                    key: k("192.0.2.1"),
                    entry: a,
                    remaining_ms: Some(60_000)
                },
                LoadedBan {
                    key: k("198.51.100.9"),
                    entry: s,
                    remaining_ms: None
                },
                LoadedBan {
                    key: k("2001:db8::7"),
                    entry: b,
                    remaining_ms: Some(120_000)
                },
            ]
        );
    }

    #[test]
    fn replay_applies_del_flush_and_last_add_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_file(&dir);
        let mut j = Journal::open(&path, JournalConfig::default(), NOW).unwrap();
        j.append_add(&k("192.0.2.1"), &entry(NOW + 10, "a"))
            .unwrap();
        j.append_flush().unwrap();
        j.append_add(&k("192.0.2.2"), &entry(NOW + 10, "b"))
            .unwrap();
        j.append_add(&k("192.0.2.3"), &entry(NOW + 10, "c"))
            .unwrap();
        j.append_add(&k("192.0.2.3"), &entry(NOW + 99, "c2"))
            .unwrap();
        j.append_del(&k("192.0.2.2")).unwrap();
        j.close(NOW).unwrap();
        let (bans, warnings) = load(&path, NOW).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(keys(&bans), vec!["192.0.2.3"]);
        assert_eq!(bans[0].entry.reason, "c2");
        assert_eq!(bans[0].remaining_ms, Some(99));
    }

    #[test]
    fn expired_entries_are_dropped_and_remaining_ttl_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_file(&dir);
        let mut j = Journal::open(&path, JournalConfig::default(), NOW).unwrap();
        j.append_add(&k("192.0.2.1"), &entry(NOW - 1, "gone"))
            .unwrap();
        j.append_add(&k("192.0.2.2"), &entry(NOW, "just gone"))
            .unwrap();
        j.append_add(&k("192.0.2.3"), &entry(NOW + 1, "1 ms left"))
            .unwrap();
        j.append_add(&k("192.0.2.4"), &entry(NOW + 3_600_000, "1 h left"))
            .unwrap();
        j.close(NOW).unwrap();
        let (bans, _) = load(&path, NOW).unwrap();
        assert_eq!(keys(&bans), vec!["192.0.2.3", "192.0.2.4"]);
        assert_eq!(bans[0].remaining_ms, Some(1));
        // Restart 10 minutes later.
        let (bans, _) = load(&path, NOW + 600_000).unwrap();
        assert_eq!(keys(&bans), vec!["192.0.2.4"]);
        assert_eq!(bans[0].remaining_ms, Some(3_000_000));
    }

    #[test]
    fn torn_last_line_is_reported_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_file(&dir);
        let mut j = Journal::open(&path, JournalConfig::default(), NOW).unwrap();
        j.append_add(&k("192.0.2.1"), &entry(NOW + 10, "a"))
            .unwrap();
        j.append_add(&k("192.0.2.2"), &entry(NOW + 10, "b"))
            .unwrap();
        j.close(NOW).unwrap();
        // A crash in the middle of writing the third record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"op":"add","ip":"192.0.2.3","expi"#)
            .unwrap();
        drop(f);

        let (bans, warnings) = load(&path, NOW).unwrap();
        assert_eq!(keys(&bans), vec!["192.0.2.1", "192.0.2.2"]);
        assert_eq!(
            warnings,
            vec![LoadWarning {
                line: 3,
                problem: LoadProblem::TruncatedLastLine
            }]
        );
        assert_eq!(
            warnings[0].to_string(),
            "line 3: truncated last line (crash?), ignored"
        );

        // Reopening ends the torn line, so the next record parses.
        let mut j = Journal::open(&path, JournalConfig::default(), NOW).unwrap();
        assert_eq!(j.records(), 3);
        j.append_add(&k("192.0.2.4"), &entry(NOW + 10, "d"))
            .unwrap();
        j.close(NOW).unwrap();
        let (bans, warnings) = load(&path, NOW).unwrap();
        assert_eq!(keys(&bans), vec!["192.0.2.1", "192.0.2.2", "192.0.2.4"]);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, 3);
        assert!(matches!(warnings[0].problem, LoadProblem::Malformed(_)));
    }

    #[test]
    fn complete_last_line_without_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_file(&dir);
        let line = format!(
            r#"{{"op":"add","ip":"192.0.2.9","expires_at":{},"reason":"r","first_seen":1,"last_seen":2,"hits":1}}"#,
            NOW + 5
        );
        std::fs::write(&path, line).unwrap();
        let (bans, warnings) = load(&path, NOW).unwrap();
        assert_eq!(keys(&bans), vec!["192.0.2.9"]);
        assert!(warnings.is_empty());
    }

    #[test]
    fn garbage_lines_in_the_middle_are_reported_by_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_file(&dir);
        let good = |ip: &str| {
            format!(
                r#"{{"op":"add","ip":"{ip}","expires_at":{},"reason":"r","first_seen":1,"last_seen":2,"hits":1}}"#,
                NOW + 5
            )
        };
        let mut content = Vec::new();
        content.extend_from_slice(good("192.0.2.1").as_bytes());
        content.extend_from_slice(b"\nthis is not json\n\n");
        content.extend_from_slice(b"\xff\xfe\n");
        content.extend_from_slice(br#"{"op":"del","ip":"not-an-ip"}"#);
        content.extend_from_slice(b"\n");
        content.extend_from_slice(br#"{"op":"explode"}"#);
        content.extend_from_slice(b"\n");
        content.extend_from_slice(good("192.0.2.2").as_bytes());
        content.extend_from_slice(b"\n");
        std::fs::write(&path, content).unwrap();

        let (bans, warnings) = load(&path, NOW).unwrap();
        assert_eq!(keys(&bans), vec!["192.0.2.1", "192.0.2.2"]);
        let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![2, 4, 5, 6]);
        assert!(matches!(warnings[0].problem, LoadProblem::Malformed(_)));
        assert_eq!(warnings[1].problem, LoadProblem::NotUtf8);
        assert_eq!(
            warnings[2].problem,
            LoadProblem::BadAddress("not-an-ip".into())
        );
        assert!(matches!(warnings[3].problem, LoadProblem::Malformed(_)));
    }

    #[test]
    fn compaction_keeps_exactly_the_live_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_file(&dir);
        let config = JournalConfig {
            flush_ms: 1_000,
            compact_min_records: 4,
        };
        let mut j = Journal::open(&path, config, NOW).unwrap();
        for i in 1..=5 {
            let key = k(&format!("192.0.2.{i}"));
            j.append_add(&key, &entry(NOW + 10, "x")).unwrap();
        }
        j.append_del(&k("192.0.2.1")).unwrap();
        j.append_del(&k("192.0.2.2")).unwrap();
        assert_eq!(j.records(), 7);
        assert!(j.should_compact(3));
        assert!(!j.should_compact(4), "7 lines for 4 live is not 2x");

        let live: Vec<(BanKey, BanEntry)> = (3..=5)
            .map(|i| (k(&format!("192.0.2.{i}")), entry(NOW + 10, "x")))
            .collect();
        let written = j.compact(live.iter().map(|(k, e)| (k, e)), NOW).unwrap();
        assert_eq!(written, 3);
        assert_eq!(j.records(), 3);
        assert!(!j.should_compact(3));
        assert!(!tmp_path(&path).exists(), "temp file renamed away");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().all(|l| l.starts_with(r#"{"op":"add""#)));

        // Appending after compaction goes to the new file.
        j.append_add(&k("192.0.2.6"), &entry(NOW + 10, "x"))
            .unwrap();
        j.close(NOW).unwrap();
        let (bans, warnings) = load(&path, NOW).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            keys(&bans),
            vec!["192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6"]
        );
    }

    #[test]
    fn maybe_flush_syncs_at_most_every_flush_ms() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_file(&dir);
        let mut j = Journal::open(&path, JournalConfig::default(), NOW).unwrap();
        assert!(!j.maybe_flush(NOW + 5_000).unwrap(), "nothing to sync");
        j.append_add(&k("192.0.2.1"), &entry(NOW + 10_000, "x"))
            .unwrap();
        // Buffered, not yet in the file.
        assert_eq!(std::fs::read(&path).unwrap().len(), 0);
        // Due: the last sync (at open) is more than `flush_ms` old.
        assert!(j.maybe_flush(NOW + 5_999).unwrap());
        let synced = std::fs::read(&path).unwrap().len();
        assert!(synced > 0);
        j.append_add(&k("192.0.2.2"), &entry(NOW + 10_000, "x"))
            .unwrap();
        assert!(
            !j.maybe_flush(NOW + 5_999 + 999).unwrap(),
            "999 ms after the last"
        );
        assert_eq!(std::fs::read(&path).unwrap().len(), synced);
        assert!(j.maybe_flush(NOW + 5_999 + 1_000).unwrap());
        assert!(std::fs::read(&path).unwrap().len() > synced);
    }

    #[test]
    fn dropped_journal_without_close_keeps_only_flushed_records() {
        // What a crash leaves: records synced by `maybe_flush` survive.
        let dir = tempfile::tempdir().unwrap();
        let path = state_file(&dir);
        let mut j = Journal::open(&path, JournalConfig::default(), NOW).unwrap();
        j.append_add(&k("192.0.2.1"), &entry(NOW + 10_000, "x"))
            .unwrap();
        assert!(j.maybe_flush(NOW + 1_000).unwrap());
        j.append_add(&k("192.0.2.2"), &entry(NOW + 10_000, "x"))
            .unwrap();
        std::mem::forget(j); // no destructor, like kill -9
        let (bans, _) = load(&path, NOW).unwrap();
        assert_eq!(keys(&bans), vec!["192.0.2.1"]);
    }
}
