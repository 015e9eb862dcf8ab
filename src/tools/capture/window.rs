//! A file seen through a window that slides forward: every record is
//! contiguous in memory however large the file, and a small file is read in
//! one piece (the buffer is sized to the file, never to a fixed default).
use std::fs::File;
use std::io::{ErrorKind, Read};

/// Largest window kept for a big file (records longer than this grow it).
const MAX_WINDOW: usize = 1 << 20;

pub(super) struct Window {
    file: File,
    buf: Vec<u8>,
    /// First unconsumed byte of `buf`.
    start: usize,
    /// End of the bytes read into `buf`.
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl Window {
    /// `size_hint`: the file's length, when known.
    pub(super) fn new(file: File, size_hint: u64) -> Window {
        let len = usize::try_from(size_hint)
            .unwrap_or(MAX_WINDOW)
            .clamp(64, MAX_WINDOW);
        Window {
            file,
            buf: vec![0; len],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// The bytes read and not yet consumed.
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// File offset of `data()[0]`.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads until at least `n` bytes are available; false when the file ends
    /// first (what there was stays available).
    pub(super) fn want(&mut self, n: usize) -> std::io::Result<bool> {
        while self.end - self.start < n && !self.eof {
            if self.start + n > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if n > self.buf.len() {
                    self.buf.resize(n.next_power_of_two(), 0);
                }
            }
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(read) => self.end += read,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start >= n)
    }

    /// Drops the first `n` available bytes (at most what is available).
    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn records_stay_contiguous_across_refills_and_the_end_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bytes");
        let bytes: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        File::create(&path).unwrap().write_all(&bytes).unwrap();
        // A 64-byte window over 200 bytes, taken 50 at a time.
        let mut w = Window::new(File::open(&path).unwrap(), 10);
        for chunk in bytes.chunks(50) {
            assert!(w.want(50).unwrap());
            assert_eq!(&w.data()[..50], chunk);
            w.consume(50);
        }
        assert_eq!(w.offset(), 200);
        assert!(!w.want(1).unwrap());
        // A record longer than the window grows it.
        let mut w = Window::new(File::open(&path).unwrap(), 10);
        w.consume(0);
        assert!(w.want(150).unwrap());
        assert_eq!(&w.data()[..150], &bytes[..150]);
        w.consume(150);
        assert!(!w.want(51).unwrap());
        assert_eq!(w.data(), &bytes[150..]);
    }
}
