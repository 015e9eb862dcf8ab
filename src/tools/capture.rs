//! Reading capture files (pcap and pcapng, told apart by their magic number,
//! not their name) packet by packet, streaming, for `analyze` and the tests.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng file (magic {magic:02x?})")]
    UnknownFormat { path: String, magic: [u8; 4] },
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

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Calls `f` for every frame of the file, in order. Returns the number of frames.
/// A damaged tail stops the walk with `Corrupt`, after `f` saw every good frame.
pub fn for_each_frame(path: &Path, mut f: impl FnMut(Frame<'_>)) -> Result<u64, CaptureError> {
    let name = path.display().to_string();
    let io = |source| CaptureError::Io {
        path: name.clone(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(io)?;
    drop(file);
    let reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
    let corrupt = |index, e: pcap_file::PcapError| CaptureError::Corrupt {
        path: name.clone(),
        index,
        reason: e.to_string(),
    };
    let mut n = 0u64;
    if magic == PCAPNG_MAGIC {
        let mut r = PcapNgReader::new(reader).map_err(|e| corrupt(0, e))?;
        // Per interface: link type and nanoseconds per timestamp unit.
        let mut ifaces: Vec<(u32, TsUnit)> = Vec::new();
        while let Some(block) = r.next_block() {
            match block.map_err(|e| corrupt(n, e))? {
                Block::InterfaceDescription(idb) => {
                    let mut unit = TsUnit::MICRO;
                    for opt in &idb.options {
                        if let pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption::IfTsResol(r) = opt {
                            unit = TsUnit::from_tsresol(*r);
                        }
                    }
                    ifaces.push((u32::from(idb.linktype), unit));
                }
                Block::EnhancedPacket(p) => {
                    let (dlt, unit) = ifaces
                        .get(p.interface_id as usize)
                        .copied()
                        .unwrap_or((1, TsUnit::MICRO));
                    // pcap-file hands back the raw timestamp units as "nanos".
                    let raw = u64::try_from(p.timestamp.as_nanos()).unwrap_or(u64::MAX);
                    f(Frame {
                        dlt,
                        ts_ns: unit.to_ns(raw),
                        data: &p.data,
                    });
                    n += 1;
                }
                Block::SimplePacket(p) => {
                    let dlt = ifaces.first().map_or(1, |i| i.0);
                    f(Frame {
                        dlt,
                        ts_ns: 0,
                        data: &p.data,
                    });
                    n += 1;
                }
                _ => {}
            }
        }
    } else if matches!(
        magic,
        [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
    ) {
        let mut r = PcapReader::new(reader).map_err(|e| corrupt(0, e))?;
        let dlt = u32::from(r.header().datalink);
        while let Some(p) = r.next_packet() {
            let p = p.map_err(|e| corrupt(n, e))?;
            let ts_ns = u64::try_from(p.timestamp.as_nanos()).unwrap_or(u64::MAX);
            f(Frame {
                dlt,
                ts_ns,
                data: &p.data,
            });
            n += 1;
        }
    } else {
        return Err(CaptureError::UnknownFormat { path: name, magic });
    }
    Ok(n)
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
