//! Classic pcap: a 24-byte file header, then 16-byte record headers each
//! followed by `caplen` bytes. Record headers are checked as libpcap checks
//! them (caplen against the snaplen; orig_len is not checked: a frame longer
//! than the snaplen on the wire is what a snaplen is for).
use pcap_file::pcap::PcapHeader;
use pcap_file::{Endianness, TsResolution};

use super::{read_error, DamageKind, Frame, ReadSummary, Window, MAX_RECORD};

const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;
/// libpcap's largest snaplen, used where a file says 0 (no limit).
const MAX_SNAPLEN: u32 = 262_144;
const NS_PER_S: u64 = 1_000_000_000;

pub(super) fn is_magic(magic: [u8; 4]) -> bool {
    matches!(
        magic,
        [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
    )
}

/// Err: the file header is missing or unreadable.
pub(super) fn read(w: &mut Window, mut f: impl FnMut(Frame<'_>)) -> Result<ReadSummary, String> {
    if !w.want(FILE_HEADER).map_err(|e| e.to_string())? {
        return Err(format!(
            "pcap file header cut short ({} of {FILE_HEADER} bytes)",
            w.data().len()
        ));
    }
    let (_, header) = PcapHeader::from_slice(w.data()).map_err(|e| e.to_string())?;
    w.consume(FILE_HEADER);
    let dlt = u32::from(header.datalink);
    let snaplen = if header.snaplen == 0 {
        MAX_SNAPLEN
    } else {
        header.snaplen
    };
    let frac_ns = match header.ts_resolution {
        TsResolution::MicroSecond => 1_000,
        TsResolution::NanoSecond => 1,
    };
    let word = |b: &[u8], at: usize| {
        let bytes = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        match header.endianness {
            Endianness::Big => u32::from_be_bytes(bytes),
            Endianness::Little => u32::from_le_bytes(bytes),
        }
    };
    let mut s = ReadSummary::default();
    loop {
        let (record, offset) = (s.frames, w.offset());
        match w.want(RECORD_HEADER) {
            Ok(true) => {}
            Ok(false) if w.data().is_empty() => break,
            Ok(false) => {
                let have = w.data().len();
                s.note(DamageKind::Truncated, record, offset, || {
                    format!("file ends inside a record header ({have} of {RECORD_HEADER} bytes)")
                });
                break;
            }
            Err(e) => {
                read_error(&mut s, record, offset, &e);
                break;
            }
        }
        let h = w.data();
        let (secs, frac, caplen) = (word(h, 0), word(h, 4), word(h, 8));
        if caplen as usize > MAX_RECORD {
            s.note(DamageKind::BadLength, record, offset, || {
                format!("caplen {caplen} bytes")
            });
            break;
        }
        if caplen > snaplen {
            s.note(DamageKind::CaplenOverSnaplen, record, offset, || {
                format!("caplen {caplen} exceeds the snaplen {snaplen}")
            });
            break;
        }
        let len = RECORD_HEADER + caplen as usize;
        match w.want(len) {
            Ok(true) => {}
            Ok(false) => {
                let have = w.data().len() - RECORD_HEADER;
                s.note(DamageKind::Truncated, record, offset, || {
                    format!("file ends inside a record ({have} of {caplen} bytes)")
                });
                break;
            }
            Err(e) => {
                read_error(&mut s, record, offset, &e);
                break;
            }
        }
        let frac = u64::from(frac) * frac_ns;
        if frac >= NS_PER_S {
            s.note(DamageKind::Timestamp, record, offset, || {
                format!("fraction of a second {frac} ns is 1 s or more (carried into the seconds)")
            });
        }
        f(Frame {
            dlt,
            ts_ns: u64::from(secs) * NS_PER_S + frac,
            data: &w.data()[RECORD_HEADER..len],
        });
        w.consume(len);
        s.frames += 1;
    }
    Ok(s)
}
