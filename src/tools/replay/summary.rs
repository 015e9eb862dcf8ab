//! What `replay` counted and what came back: per port, per queue and per
//! pass; the received frames for `--received-dir`; the text and JSON reports.
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::plan::Side;
use super::settings::MAX_QUEUES;

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
}

impl Counts {
    #[inline]
    pub fn add(&mut self, packets: u64, bytes: u64) {
        self.packets += packets;
        self.bytes += bytes;
    }
}

/// One generator port: what it sent into btblocker and what btblocker
/// forwarded out of it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PortCounts {
    /// The capture's packets (barriers not included).
    pub sent: Counts,
    pub received: Counts,
    /// Barrier frames (see `replay::barrier`) sent into / received from this
    /// port: btblocker counts them too, so its rx on this port is
    /// `sent.packets + barriers_sent`, its tx `received.packets + barriers_received`.
    pub barriers_sent: u64,
    pub barriers_received: u64,
    /// Frames sent / received per queue, barriers included: what btblocker's
    /// worker for that queue received from / sent to this port.
    pub sent_per_queue: Vec<u64>,
    pub received_per_queue: Vec<u64>,
}

impl PortCounts {
    fn new(queues: u16) -> Self {
        PortCounts {
            sent_per_queue: vec![0; usize::from(queues)],
            received_per_queue: vec![0; usize::from(queues)],
            ..Default::default()
        }
    }

    fn merge(&mut self, other: &PortCounts) {
        self.sent.add(other.sent.packets, other.sent.bytes);
        self.received
            .add(other.received.packets, other.received.bytes);
        self.barriers_sent += other.barriers_sent;
        self.barriers_received += other.barriers_received;
        for (a, b) in self.sent_per_queue.iter_mut().zip(&other.sent_per_queue) {
            *a += b;
        }
        for (a, b) in self
            .received_per_queue
            .iter_mut()
            .zip(&other.received_per_queue)
        {
            *a += b;
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PassSummary {
    /// From 1.
    pub pass: u32,
    pub inside: PortCounts,
    pub outside: PortCounts,
    /// Seconds from the first to the last packet sent in this pass.
    pub send_s: f64,
}

impl PassSummary {
    pub fn new(pass: u32, queues: u16) -> Self {
        PassSummary {
            pass,
            inside: PortCounts::new(queues),
            outside: PortCounts::new(queues),
            send_s: 0.0,
        }
    }

    #[inline]
    pub fn port(&mut self, side: Side) -> &mut PortCounts {
        match side {
            Side::Inside => &mut self.inside,
            Side::Outside => &mut self.outside,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReplaySummary {
    /// Frames per pass (after skipping).
    pub capture_packets: u64,
    pub skipped_oversize: u64,
    pub skipped_empty: u64,
    pub queues: u16,
    /// Totals over every pass.
    pub inside: PortCounts,
    pub outside: PortCounts,
    pub passes: Vec<PassSummary>,
    /// Packets sent per second of sending, over every pass.
    pub send_rate_pps: f64,
    /// Packets that did not come back: a barrier came back without them, so
    /// btblocker dropped them (banned hosts, BitTorrent flows).
    pub dropped: u64,
    /// Received packets not kept for `--received-dir` (more came back than
    /// was sent).
    pub not_recorded: u64,
}

impl ReplaySummary {
    pub fn new(capture_packets: u64, skipped: (u64, u64), queues: u16) -> Self {
        ReplaySummary {
            capture_packets,
            skipped_oversize: skipped.0,
            skipped_empty: skipped.1,
            queues,
            inside: PortCounts::new(queues),
            outside: PortCounts::new(queues),
            passes: Vec::new(),
            send_rate_pps: 0.0,
            dropped: 0,
            not_recorded: 0,
        }
    }

    /// Adds a finished pass to the totals.
    pub fn push_pass(&mut self, pass: PassSummary) {
        self.inside.merge(&pass.inside);
        self.outside.merge(&pass.outside);
        self.passes.push(pass);
        let sent: u64 = self
            .passes
            .iter()
            .map(|p| p.inside.sent.packets + p.outside.sent.packets)
            .sum();
        let secs: f64 = self.passes.iter().map(|p| p.send_s).sum();
        self.send_rate_pps = if secs > 0.0 { sent as f64 / secs } else { 0.0 };
    }

    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "btblocker replay: {} packets per pass ({} skipped as larger than a frame, {} empty), {} pass(es), {} queue(s)",
            self.capture_packets,
            self.skipped_oversize,
            self.skipped_empty,
            self.passes.len(),
            self.queues
        );
        let _ = writeln!(
            s,
            "{:<6} {:<8} {:>10} {:>12} {:>10} {:>12}",
            "pass", "port", "sent_pkts", "sent_bytes", "rx_pkts", "rx_bytes"
        );
        let mut row = |pass: &str, side: Side, c: &PortCounts| {
            let _ = writeln!(
                s,
                "{:<6} {:<8} {:>10} {:>12} {:>10} {:>12}",
                pass,
                side.name(),
                c.sent.packets,
                c.sent.bytes,
                c.received.packets,
                c.received.bytes
            );
        };
        for p in &self.passes {
            row(&p.pass.to_string(), Side::Inside, &p.inside);
            row(&p.pass.to_string(), Side::Outside, &p.outside);
        }
        row("total", Side::Inside, &self.inside);
        row("total", Side::Outside, &self.outside);
        let _ = writeln!(
            s,
            "send rate {:.0} packets/s; {} packets did not come back (dropped by btblocker); {} barrier frames sent",
            self.send_rate_pps,
            self.missing(),
            self.inside.barriers_sent + self.outside.barriers_sent
        );
        s
    }

    /// Sent minus received over both ports.
    pub fn missing(&self) -> u64 {
        (self.inside.sent.packets + self.outside.sent.packets)
            .saturating_sub(self.inside.received.packets + self.outside.received.packets)
    }
}

/// Received frames, kept in storage reserved up front so the receive loop
/// never allocates.
pub struct Recorder {
    bytes: Vec<u8>,
    /// (side, start, len, nanoseconds since the start)
    frames: Vec<(Side, usize, usize, u64)>,
    pub not_recorded: u64,
}

impl Recorder {
    /// Room for `packets` frames of `bytes` bytes in all.
    pub fn with_capacity(packets: usize, bytes: usize) -> Self {
        Recorder {
            bytes: Vec::with_capacity(bytes),
            frames: Vec::with_capacity(packets),
            not_recorded: 0,
        }
    }

    /// Keeps one received frame given as its segments (`len` bytes in all);
    /// without room left it is only counted.
    #[inline]
    pub fn record<'a>(
        &mut self,
        side: Side,
        at_ns: u64,
        len: usize,
        segments: impl Iterator<Item = &'a [u8]>,
    ) {
        if self.frames.len() == self.frames.capacity()
            || self.bytes.len() + len > self.bytes.capacity()
        {
            self.not_recorded += 1;
            return;
        }
        let start = self.bytes.len();
        for seg in segments {
            let room = start + len - self.bytes.len();
            self.bytes.extend_from_slice(&seg[..seg.len().min(room)]);
        }
        self.frames
            .push((side, start, self.bytes.len() - start, at_ns));
    }

    /// The frames received on `side`, in arrival order.
    pub fn frames(&self, side: Side) -> impl Iterator<Item = &[u8]> {
        self.frames
            .iter()
            .filter(move |f| f.0 == side)
            .map(|&(_, start, len, _)| &self.bytes[start..start + len])
    }

    /// Writes DIR/inside-rx.pcap and DIR/outside-rx.pcap.
    pub fn write_pcaps(&self, dir: &Path) -> Result<(), RecordError> {
        for side in Side::BOTH {
            let path = dir.join(rx_pcap_name(side));
            let err = |reason: String| RecordError {
                path: path.display().to_string(),
                reason,
            };
            let file = std::fs::File::create(&path).map_err(|e| err(e.to_string()))?;
            let header = pcap_file::pcap::PcapHeader {
                snaplen: 65535,
                ..Default::default()
            };
            let mut w =
                pcap_file::pcap::PcapWriter::with_header(std::io::BufWriter::new(file), header)
                    .map_err(|e| err(e.to_string()))?;
            for &(_, start, len, at) in self.frames.iter().filter(|f| f.0 == side) {
                let data = &self.bytes[start..start + len];
                let pkt =
                    pcap_file::pcap::PcapPacket::new(Duration::from_nanos(at), len as u32, data);
                w.write_packet(&pkt).map_err(|e| err(e.to_string()))?;
            }
            let mut inner = w.into_writer();
            std::io::Write::flush(&mut inner).map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }
}

/// The file name of what came back on a port.
pub fn rx_pcap_name(side: Side) -> &'static str {
    match side {
        Side::Inside => "inside-rx.pcap",
        Side::Outside => "outside-rx.pcap",
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {reason}")]
pub struct RecordError {
    pub path: String,
    pub reason: String,
}

/// A queue index that fits every per-queue array.
#[inline]
pub fn queue_slot(queue: u16) -> usize {
    usize::from(queue.min(MAX_QUEUES - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_add_up_to_the_totals() {
        let mut sum = ReplaySummary::new(10, (1, 2), 2);
        let mut p1 = PassSummary::new(1, 2);
        p1.port(Side::Inside).sent.add(6, 600);
        p1.inside.sent_per_queue[1] = 6;
        p1.inside.barriers_sent = 2;
        p1.port(Side::Outside).sent.add(4, 400);
        p1.port(Side::Outside).received.add(6, 600);
        p1.port(Side::Inside).received.add(3, 300);
        p1.send_s = 0.5;
        let mut p2 = p1.clone();
        p2.pass = 2;
        p2.send_s = 1.5;
        sum.push_pass(p1);
        sum.push_pass(p2);
        assert_eq!(
            sum.inside.sent,
            Counts {
                packets: 12,
                bytes: 1200
            }
        );
        assert_eq!(sum.inside.sent_per_queue, vec![0, 12]);
        assert_eq!(sum.inside.barriers_sent, 4);
        assert_eq!(sum.outside.received.packets, 12);
        assert_eq!(sum.missing(), 2);
        assert_eq!(sum.send_rate_pps, 10.0);
        let text = sum.render_text();
        assert!(text.contains("10 packets per pass (1 skipped"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["total", "inside", "12", "1200", "6", "600"]),
            "{text}"
        );
        let json = serde_json::to_value(&sum).unwrap();
        assert_eq!(json["passes"][1]["pass"], 2);
        assert_eq!(json["outside"]["received"]["bytes"], 1200);
    }

    #[test]
    fn the_recorder_keeps_frames_per_side_within_its_room() {
        let mut r = Recorder::with_capacity(3, 10);
        r.record(Side::Inside, 1, 4, [&[1u8, 2][..], &[3, 4]].into_iter());
        r.record(Side::Outside, 2, 3, [&[5u8, 6, 7][..]].into_iter());
        // No room for 4 more bytes.
        r.record(Side::Inside, 3, 4, [&[8u8, 8, 8, 8][..]].into_iter());
        r.record(Side::Inside, 4, 3, [&[9u8, 9, 9][..]].into_iter());
        // No room for a fourth frame.
        r.record(Side::Inside, 5, 0, std::iter::empty());
        assert_eq!(r.not_recorded, 2);
        let inside: Vec<&[u8]> = r.frames(Side::Inside).collect();
        assert_eq!(inside, vec![&[1u8, 2, 3, 4][..], &[9, 9, 9]]);
        assert_eq!(
            r.frames(Side::Outside).collect::<Vec<_>>(),
            vec![&[5u8, 6, 7][..]]
        );

        let dir = tempfile::tempdir().unwrap();
        r.write_pcaps(dir.path()).unwrap();
        let data = std::fs::read(dir.path().join("inside-rx.pcap")).unwrap();
        let mut reader = pcap_file::pcap::PcapReader::new(&data[..]).unwrap();
        let first = reader.next_packet().unwrap().unwrap();
        assert_eq!(&first.data[..], &[1, 2, 3, 4]);
        assert_eq!(reader.next_packet().unwrap().unwrap().data.len(), 3);
        assert!(reader.next_packet().is_none());
    }
}
