//! The MSE envelope's byte tests: a key flight has no structure at its start
//! (no plaintext, no length field) and its bytes look uniform. These are the
//! fully-encrypted-traffic heuristics (Wu et al., USENIX Security 2023) that
//! tell a 96-byte Diffie-Hellman key plus random pad from framed protocols;
//! obfuscated proxies pass them too, which is why the envelope never
//! condemns alone.

/// Bytes of a flight examined by the randomness test.
pub(super) const SAMPLE: usize = 256;
/// The randomness test needs at least this many bytes to mean anything.
const MIN_SAMPLE: usize = 64;

/// No plaintext start and no leading length field.
pub(super) fn opaque(p: &[u8]) -> bool {
    !plaintext_start(p) && !length_prefixed(p)
}

/// Eight printable ASCII bytes at the start: a text protocol (HTTP, SSH,
/// SMTP…), or a magic such as `ZBXD`. Random data does that with p ≈ 0.04 %.
pub(super) fn plaintext_start(p: &[u8]) -> bool {
    let head = &p[..p.len().min(8)];
    head.len() == 8 && head.iter().all(|&b| (0x20..0x7f).contains(&b))
        || matches!(p, [20..=23, 3, 0..=4, ..])
}

/// A big- or little-endian length field near the start that equals the
/// segment length minus a small header: how framed protocols begin (EIP-8
/// RLPx `auth-size`, Spotify, Zabbix, most RPCs). An MSE key has no header.
pub(super) fn length_prefixed(p: &[u8]) -> bool {
    let n = p.len();
    let u16_at = |at: usize, le: bool| {
        p.get(at..at + 2).map(|b| {
            usize::from(if le {
                u16::from_le_bytes([b[0], b[1]])
            } else {
                u16::from_be_bytes([b[0], b[1]])
            })
        })
    };
    let u32_at = |at: usize, le: bool| {
        p.get(at..at + 4).map(|b| {
            let a = [b[0], b[1], b[2], b[3]];
            (if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }) as usize
        })
    };
    // 16-bit fields only at offsets 0 and 2 and with headers of 0/2/4 bytes:
    // a random key matches one of these 12 cases with p ≈ 0.02 %.
    for at in [0, 2] {
        for le in [false, true] {
            if let Some(v) = u16_at(at, le) {
                if [0, 2, 4].iter().any(|&h| v + h == n) {
                    return true;
                }
            }
        }
    }
    // 32-bit fields within the first 12 bytes, headers up to 16 bytes.
    for at in 0..=8 {
        for le in [false, true] {
            if let Some(v) = u32_at(at, le) {
                if v <= n && n - v <= 16 {
                    return true;
                }
            }
        }
    }
    false
}

/// Byte statistics over a flight's first `SAMPLE` bytes, fed segment by
/// segment (a flight may arrive in 50-byte writes): the number of distinct
/// values must be near what uniform bytes give (text and structured binary
/// repeat a few values), the mean bit count near 4, printable bytes well
/// under half, and no run of 20 printable bytes. No allocation: a 256-bit
/// set and counters (40 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ByteStats {
    seen: [u64; 4],
    bits: u16,
    printable: u16,
    n: u16,
    run: u8,
    longest: u8,
}

impl ByteStats {
    /// Adds the bytes of the next segment, up to `SAMPLE` in all.
    #[inline]
    pub(super) fn add(&mut self, p: &[u8]) {
        let room = SAMPLE.saturating_sub(usize::from(self.n));
        for &b in &p[..p.len().min(room)] {
            self.seen[usize::from(b >> 6)] |= 1 << (b & 63);
            self.bits += b.count_ones() as u16;
            if (0x20..0x7f).contains(&b) {
                self.printable += 1;
                self.run = self.run.saturating_add(1);
                self.longest = self.longest.max(self.run);
            } else {
                self.run = 0;
            }
            self.n += 1;
        }
    }

    /// The verdict on the bytes added so far.
    pub(super) fn looks_random(&self) -> bool {
        let n = usize::from(self.n);
        if n < MIN_SAMPLE {
            return false;
        }
        let distinct: u32 = self.seen.iter().map(|w| w.count_ones()).sum();
        let mean_bits = f64::from(self.bits) / n as f64;
        f64::from(distinct) >= min_distinct(n)
            && (3.4..=4.6).contains(&mean_bits)
            && usize::from(self.printable) * 10 <= n * 6
            && self.longest < 20
    }
}

/// `ByteStats` over one buffer's first `SAMPLE` bytes.
#[cfg(test)]
pub(super) fn looks_random(p: &[u8]) -> bool {
    let mut s = ByteStats::default();
    s.add(p);
    s.looks_random()
}

/// Expected distinct values among `n` uniform bytes minus 4.5 standard
/// deviations (occupancy distribution); uniform data falls below it with
/// p < 10⁻⁵.
fn min_distinct(n: usize) -> f64 {
    let m = 256.0f64;
    let k = i32::try_from(n).unwrap_or(i32::MAX);
    let q1 = (1.0 - 1.0 / m).powi(k);
    let q2 = (1.0 - 2.0 / m).powi(k);
    let mean = m * (1.0 - q1);
    let var = (m * (m - 1.0) * q2 + m * q1 - m * m * q1 * q1).max(0.0);
    mean - 4.5 * var.sqrt()
}

#[cfg(test)]
mod tests {
    use super::super::tests::random_bytes;
    use super::*;

    #[test]
    fn random_bytes_look_random_and_text_does_not() {
        for seed in 1..50 {
            assert!(looks_random(&random_bytes(seed, 96)), "seed {seed}");
            assert!(looks_random(&random_bytes(seed, 600)), "seed {seed}");
        }
        let text = b"The quick brown fox jumps over the lazy dog. ".repeat(4);
        assert!(!looks_random(&text));
        assert!(!looks_random(&[0u8; 200]));
        let ramp: Vec<u8> = (0..=255).collect();
        // Every value once: "random" by counts, but a run of 95 printables.
        assert!(!looks_random(&ramp));
        assert!(!looks_random(&random_bytes(3, 63)));
    }

    #[test]
    fn stats_fed_in_small_writes_equal_one_buffer() {
        let key = random_bytes(5, 400);
        let mut s = ByteStats::default();
        for chunk in key.chunks(50) {
            s.add(chunk);
        }
        let mut whole = ByteStats::default();
        whole.add(&key);
        assert_eq!(s, whole);
        assert!(s.looks_random());
        let mut t = ByteStats::default();
        t.add(&random_bytes(6, 40));
        assert!(!t.looks_random(), "too few bytes yet");
    }

    #[test]
    fn tls_client_hello_starts_in_plaintext() {
        let mut hello = vec![
            0x16, 0x03, 0x01, 0x01, 0x3b, 0x01, 0x00, 0x01, 0x37, 0x03, 0x03,
        ];
        hello.extend(random_bytes(9, 309));
        assert!(plaintext_start(&hello));
        assert!(!opaque(&hello));
    }

    #[test]
    fn length_prefixed_key_exchanges_are_not_opaque() {
        // Ethereum RLPx EIP-8 auth: u16 BE size of the rest, then 0x04 || key.
        let mut auth = vec![0x01, 0xab, 0x04];
        auth.extend(random_bytes(5, 426));
        assert!(length_prefixed(&auth));
        // Spotify: u16 version then u32 BE total length.
        let mut sp = vec![0x00, 0x04, 0x00, 0x00, 0x01, 0x49];
        sp.extend(random_bytes(6, 329 - 6));
        assert!(length_prefixed(&sp));
        // Zabbix: "ZBXD", flags, u32 LE length of the body after a 13-byte header.
        let mut zbx = b"ZBXD\x03".to_vec();
        zbx.extend_from_slice(&(300u32 - 13).to_le_bytes());
        zbx.extend_from_slice(&[0x45, 0, 0, 0]);
        zbx.extend(random_bytes(7, 300 - 13));
        assert!(length_prefixed(&zbx));
    }

    #[test]
    fn a_random_key_is_rarely_length_prefixed() {
        let hits = (1..2000)
            .filter(|&s| length_prefixed(&random_bytes(s, 96 + (s as usize % 512))))
            .count();
        assert_eq!(hits, 0);
    }
}
