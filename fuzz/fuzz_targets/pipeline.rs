//! Sequences of packets through the whole worker pipeline (parse → flow → DPI).
//! Most DPI state lives across packets (split handshakes, uTP SYN/STATE pairs,
//! MSE exchanges, tracker transaction ids), so one input is many packets.
//!
//! Input: a list of records. Each record starts with a tag byte:
//! - tag % 4 == 0: a raw Ethernet frame of `len` bytes (exercises the parsers);
//! - otherwise: a TCP (tag % 4 == 1) or UDP payload of `len` bytes sent between
//!   two fixed hosts, direction from the tag's high bit, ports from the next two
//!   bytes, wrapped in valid Ethernet/IPv4 headers so DPI sees it. A TCP record
//!   has one more byte before its payload, the sequence control (`Seq`): in
//!   order, a retransmission or partial overlap of what the direction sent, a
//!   gap (out of order), or a wild sequence number; with or without PSH. So the
//!   flight reassembly sees what real captures hold: duplicates, holes, overlap.
//!
//! `len` is the byte after the tag. The clock advances by the tag's bits 2..6
//! in seconds, so timeouts and the known-peer TTL are reached too.
#![no_main]

use std::sync::Arc;

use btblocker::config::{FlowsConfig, Mode};
use btblocker::dpi::DpiConfig;
use btblocker::dataplane::{Burst, NoEvents, Pipeline};
use btblocker::dataplane::counters::WorkerCounters;
use libfuzzer_sys::fuzz_target;

/// TCP sequence numbers per direction, steered by one control byte a record.
struct Seq {
    /// Next in-order sequence number per direction (originator, responder).
    next: [u32; 2],
}

impl Seq {
    /// (seq, ack, PSH) for a segment of `len` bytes from `dir`, and advances.
    fn place(&mut self, dir: usize, ctl: u8, len: usize) -> (u32, u32, bool) {
        let len = len as u32;
        let back = u32::from(ctl >> 3) * 7;
        let seq = match ctl & 7 {
            0..=3 => self.next[dir],
            4 => self.next[dir].wrapping_sub(back.max(1)),
            5 => self.next[dir].wrapping_add(back + 1),
            6 => self.next[dir].wrapping_sub(len),
            _ => u32::from(ctl).wrapping_mul(0x9e37_79b9),
        };
        let end = seq.wrapping_add(len);
        if end.wrapping_sub(self.next[dir]) as i32 > 0 {
            self.next[dir] = end;
        }
        (seq, self.next[1 - dir], ctl & 0x40 != 0)
    }
}

fn frame(
    tcp: bool,
    reverse: bool,
    ports: [u8; 2],
    seq: (u32, u32, bool),
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let (a, b) = ([10, 0, 0, 1], [198, 51, 100, 7]);
    let (src, dst) = if reverse { (b, a) } else { (a, b) };
    let (sport, dport) = (6881u16 + u16::from(ports[0] & 7), 40000u16 + u16::from(ports[1]));
    let (sport, dport) = if reverse { (dport, sport) } else { (sport, dport) };
    let l4_len = if tcp { 20 } else { 8 };
    let total = (20 + l4_len + payload.len()) as u16;
    out.clear();
    out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
    out.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, if tcp { 6 } else { 17 }, 0, 0]);
    out.extend_from_slice(&src);
    out.extend_from_slice(&dst);
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    if tcp {
        let (seq, ack, psh) = seq;
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ack.to_be_bytes());
        out.extend_from_slice(&[0x50, if psh { 0x18 } else { 0x10 }, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        out.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
    }
    out.extend_from_slice(payload);
}

fuzz_target!(|data: &[u8]| {
    let counters = Arc::new(WorkerCounters::default());
    let flow = FlowsConfig { capacity: 64, ..FlowsConfig::default() };
    // A small known-peer cache keeps each run cheap; its logic is the same.
    let dpi = DpiConfig { known_peer_capacity: 256, ..DpiConfig::default() };
    let mut pipeline = Pipeline::new(Arc::clone(&counters), Mode::Inline, &flow, &dpi, NoEvents);
    let mut buf = Vec::with_capacity(2048);
    let mut now = 1_000_000_000_000u64;
    let mut seq = Seq { next: [1_000, 7_000_000] };
    let mut rest = data;
    while let [tag, len, tail @ ..] = rest {
        now += u64::from((tag >> 2) & 0x1f) * 1_000_000_000;
        if tag % 4 == 0 {
            let n = usize::from(*len).min(tail.len());
            pipeline.process(0, &tail[..n], n as u32, &Burst::offline(now));
            rest = &tail[n..];
        } else {
            let tcp = tag % 4 == 1;
            let reverse = tag & 0x80 != 0;
            let (ports, ctl, body) = match tail {
                [p0, p1, ctl, body @ ..] if tcp => ([*p0, *p1], *ctl, body),
                [p0, p1, body @ ..] if !tcp => ([*p0, *p1], 0, body),
                _ => break,
            };
            let n = usize::from(*len).min(body.len());
            let placed = seq.place(usize::from(reverse), ctl, n);
            frame(tcp, reverse, ports, placed, &body[..n], &mut buf);
            pipeline.process(0, &buf, buf.len() as u32, &Burst::offline(now));
            rest = &body[n..];
        }
    }
    let c = &pipeline.counters().flows;
    assert!(c.judged_bittorrent.get() + c.judged_clean.get() <= c.created.get());
});
