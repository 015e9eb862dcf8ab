//! pcapng: a sequence of blocks, each framed by its total length (at the
//! start and again at the end). The framing is checked here before a block
//! is read in full, so a damaged length never makes us read (or allocate) a
//! whole file's worth; the block's content is parsed by `pcap-file`.
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};

use super::{read_error, DamageKind, Frame, ReadSummary, TsUnit, Window, MAX_RECORD};

/// Type, length and (section header only) byte-order magic: enough to frame a block.
const BLOCK_HEAD: usize = 12;
const SECTION_HEADER: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const DLT_EN10MB: u32 = 1;

/// A block's total length, from its head; `big`: the section's byte order
/// (a section header gives its own).
fn block_len(head: &[u8], big: bool) -> u32 {
    let big = if head[..4] == SECTION_HEADER {
        head[8..12] == [0x1a, 0x2b, 0x3c, 0x4d]
    } else {
        big
    };
    let bytes = [head[4], head[5], head[6], head[7]];
    if big {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    }
}

/// Err: the section header is missing or unreadable.
pub(super) fn read(w: &mut Window, mut f: impl FnMut(Frame<'_>)) -> Result<ReadSummary, String> {
    let mut s = ReadSummary::default();
    let mut parser: Option<PcapNgParser> = None;
    // Per interface of the current section: link type and timestamp unit.
    let mut ifaces: Vec<(u32, TsUnit)> = Vec::new();
    let mut record = 0u64;
    loop {
        let offset = w.offset();
        let big = parser
            .as_ref()
            .is_some_and(|p| p.section().endianness == pcap_file::Endianness::Big);
        let have_head = match w.want(BLOCK_HEAD) {
            Ok(have) => have,
            Err(e) if parser.is_none() => return Err(e.to_string()),
            Err(e) => {
                read_error(&mut s, record, offset, &e);
                break;
            }
        };
        if !have_head {
            let have = w.data().len();
            if parser.is_none() {
                return Err(format!("pcapng section header cut short ({have} bytes)"));
            }
            if have > 0 {
                s.note(DamageKind::Truncated, record, offset, || {
                    format!("file ends inside a block header ({have} of {BLOCK_HEAD} bytes)")
                });
            }
            break;
        }
        let len = block_len(w.data(), big);
        if !len.is_multiple_of(4) || (len as usize) < BLOCK_HEAD || len as usize > MAX_RECORD {
            if parser.is_none() {
                return Err(format!("pcapng section header length {len}"));
            }
            s.note(DamageKind::BadLength, record, offset, || {
                format!("block length {len}")
            });
            break;
        }
        let len = len as usize;
        match w.want(len) {
            Ok(true) => {}
            Ok(false) if parser.is_none() => {
                return Err("pcapng section header cut short".to_string())
            }
            Ok(false) => {
                let have = w.data().len();
                s.note(DamageKind::Truncated, record, offset, || {
                    format!("file ends inside a block ({have} of {len} bytes)")
                });
                break;
            }
            Err(e) => {
                read_error(&mut s, record, offset, &e);
                break;
            }
        }
        let block = &w.data()[..len];
        let Some(p) = parser.as_mut() else {
            let (_, p) = PcapNgParser::new(block).map_err(|e| e.to_string())?;
            parser = Some(p);
            w.consume(len);
            continue;
        };
        match p.next_block(block) {
            Ok((_, Block::SectionHeader(_))) => ifaces.clear(),
            Ok((_, Block::InterfaceDescription(idb))) => {
                let unit = idb
                    .options
                    .iter()
                    .find_map(|o| match o {
                        InterfaceDescriptionOption::IfTsResol(r) => Some(TsUnit::from_tsresol(*r)),
                        _ => None,
                    })
                    .unwrap_or(TsUnit::MICRO);
                ifaces.push((u32::from(idb.linktype), unit));
            }
            Ok((_, Block::EnhancedPacket(p))) => {
                let (dlt, unit) = ifaces
                    .get(p.interface_id as usize)
                    .copied()
                    .unwrap_or((DLT_EN10MB, TsUnit::MICRO));
                // pcap-file hands back the raw timestamp units as "nanos".
                let raw = u64::try_from(p.timestamp.as_nanos()).unwrap_or(u64::MAX);
                f(Frame {
                    dlt,
                    ts_ns: unit.to_ns(raw),
                    data: &p.data,
                });
                s.frames += 1;
            }
            Ok((_, Block::SimplePacket(p))) => {
                f(Frame {
                    dlt: ifaces.first().map_or(DLT_EN10MB, |i| i.0),
                    ts_ns: 0,
                    data: &p.data,
                });
                s.frames += 1;
            }
            Ok(_) => {}
            Err(e) => {
                s.note(DamageKind::CorruptBlock, record, offset, || e.to_string());
                break;
            }
        }
        w.consume(len);
        record += 1;
    }
    Ok(s)
}
