//! Reading capture files (pcap and pcapng, told apart by their magic number,
//! not their name) packet by packet, streaming, for `analyze` and the tests.
//!
//! Reading is as tolerant as libpcap's: a damaged record ends the walk (or,
//! for a bad timestamp, is normalised) but every frame before it is still
//! delivered, and the damage is described ([`Damage`]) rather than turned
//! into an error. Only a file that cannot be opened or has no valid file
//! header is an error ([`CaptureError`]).
mod pcap;
mod pcapng;
mod window;

use std::fs::File;
use std::path::Path;

use serde::Serialize;

use window::Window;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng file (magic {magic:02x?})")]
    UnknownFormat { path: String, magic: [u8; 4] },
    /// The file header (pcap) or first section header (pcapng) is missing or damaged.
    #[error("{path}: {reason}")]
    BadHeader { path: String, reason: String },
    /// Damage met by a strict read ([`for_each_frame`]).
    #[error("{path}: packet {index}: {reason}")]
    Corrupt {
        path: String,
        index: u64,
        reason: String,
    },
}

/// One captured frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The file's (or pcapng interface's) DLT_ link type.
    pub dlt: u32,
    /// Capture time in nanoseconds since the epoch.
    pub ts_ns: u64,
    pub data: &'a [u8],
}

/// What is wrong with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DamageKind {
    /// The file ends inside a record (a capture cut off mid-write). Stops.
    Truncated,
    /// A pcap record's fraction of a second is a whole second or more; the
    /// excess is carried into the seconds and the frame is kept.
    Timestamp,
    /// A pcap record captured more bytes than the file's snaplen. Stops.
    CaplenOverSnaplen,
    /// A length no capture has (a record or block over 16 MiB, or a pcapng
    /// block length that is not a multiple of 4 or under 12 bytes). Stops.
    BadLength,
    /// A pcapng block whose content does not parse. Stops.
    CorruptBlock,
    /// Reading the file failed (the disk, not the data). Stops.
    ReadError,
}

impl DamageKind {
    /// Whether reading ends at this damage.
    pub fn stops_reading(self) -> bool {
        self != DamageKind::Timestamp
    }

    /// Whether the operator must act (a failing disk, not damaged data):
    /// `analyze` exits non-zero for these only.
    pub fn needs_operator(self) -> bool {
        self == DamageKind::ReadError
    }
}

/// A kind of damage met in a file: where first, and how often.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub kind: DamageKind,
    /// Index (from 0) of the first damaged record, counting every record
    /// (pcapng: every block after the section header).
    pub record: u64,
    /// Byte offset of that record in the file.
    pub offset: u64,
    /// Records with this damage (1 for damage that stops reading).
    pub count: u64,
    pub detail: String,
}

/// What a tolerant read delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Frames handed to the callback.
    pub frames: u64,
    /// In file order; at most one entry per kind, and only the last may stop reading.
    pub damage: Vec<Damage>,
}

impl ReadSummary {
    /// Notes damage at a record: a repeated kind only counts.
    fn note(
        &mut self,
        kind: DamageKind,
        record: u64,
        offset: u64,
        detail: impl FnOnce() -> String,
    ) {
        match self.damage.iter_mut().find(|d| d.kind == kind) {
            Some(d) => d.count += 1,
            None => self.damage.push(Damage {
                kind,
                record,
                offset,
                count: 1,
                detail: detail(),
            }),
        }
    }
}

/// Records (or pcapng blocks) longer than this are taken for damage.
const MAX_RECORD: usize = 16 << 20;

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Calls `f` for every frame of the file, in order, up to the first damage
/// that stops reading; the damage is in the summary. Errors only when the
/// file cannot be opened or read from its start, or has no valid file header.
pub fn read_frames(path: &Path, f: impl FnMut(Frame<'_>)) -> Result<ReadSummary, CaptureError> {
    let name = || path.display().to_string();
    let io = |source| CaptureError::Io {
        path: name(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut window = Window::new(file, size);
    window.want(4).map_err(io)?;
    let mut magic = [0u8; 4];
    let head = window.data();
    magic[..head.len().min(4)].copy_from_slice(&head[..head.len().min(4)]);
    let header_error = |reason: String| CaptureError::BadHeader {
        path: name(),
        reason,
    };
    if magic == PCAPNG_MAGIC {
        pcapng::read(&mut window, f).map_err(header_error)
    } else if pcap::is_magic(magic) {
        pcap::read(&mut window, f).map_err(header_error)
    } else {
        Err(CaptureError::UnknownFormat {
            path: name(),
            magic,
        })
    }
}

/// As [`read_frames`], but strict: any damage is an error (after `f` saw
/// every frame before it). Returns the number of frames.
pub fn for_each_frame(path: &Path, f: impl FnMut(Frame<'_>)) -> Result<u64, CaptureError> {
    let summary = read_frames(path, f)?;
    match summary.damage.into_iter().next() {
        None => Ok(summary.frames),
        Some(d) => Err(CaptureError::Corrupt {
            path: path.display().to_string(),
            index: d.record,
            reason: d.detail,
        }),
    }
}

/// Turns a failed read into damage at the current record.
fn read_error(summary: &mut ReadSummary, record: u64, offset: u64, e: &std::io::Error) {
    summary.note(DamageKind::ReadError, record, offset, || {
        format!("read failed: {e}")
    });
}

/// A pcapng interface's timestamp unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsUnit {
    /// Multiply the raw value by this many ns…
    Mul(u64),
    /// …or divide it (units finer than 1 ns, or binary fractions).
    Div { num: u64, den: u64 },
}

impl TsUnit {
    const MICRO: TsUnit = TsUnit::Mul(1_000);

    /// if_tsresol: high bit clear = 10^-n s, set = 2^-n s.
    fn from_tsresol(r: u8) -> TsUnit {
        let n = u32::from(r & 0x7f);
        if r & 0x80 == 0 {
            if n <= 9 {
                TsUnit::Mul(10u64.pow(9 - n))
            } else {
                TsUnit::Div {
                    num: 1,
                    den: 10u64.saturating_pow(n - 9),
                }
            }
        } else {
            TsUnit::Div {
                num: 1_000_000_000,
                den: 1u64.checked_shl(n).unwrap_or(u64::MAX),
            }
        }
    }

    fn to_ns(self, raw: u64) -> u64 {
        match self {
            TsUnit::Mul(m) => raw.saturating_mul(m),
            TsUnit::Div { num, den } => (u128::from(raw) * u128::from(num)
                / u128::from(den.max(1)))
            .try_into()
            .unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_units() {
        assert_eq!(TsUnit::from_tsresol(6).to_ns(5), 5_000);
        assert_eq!(TsUnit::from_tsresol(9).to_ns(5), 5);
        assert_eq!(TsUnit::from_tsresol(3).to_ns(5), 5_000_000);
        assert_eq!(TsUnit::from_tsresol(12).to_ns(5_000), 5);
        assert_eq!(TsUnit::from_tsresol(0x80 | 10).to_ns(1024), 1_000_000_000);
    }

    #[test]
    fn reads_the_bundled_capture_and_rejects_other_files() {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo.pcap");
        let mut count = 0;
        let mut first_ts = 0;
        let n = for_each_frame(&demo, |f| {
            assert_eq!(f.dlt, 1);
            if count == 0 {
                first_ts = f.ts_ns;
            }
            count += 1;
        })
        .unwrap();
        assert_eq!((n, count), (1355, 1355));
        assert!(
            first_ts > 1_000_000_000 * 1_000_000_000,
            "timestamps are ns since the epoch"
        );
        let err = for_each_frame(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
            |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, CaptureError::UnknownFormat { .. }), "{err}");
    }
}
