//! Synthetic frames shared by the tests and the pipeline bench (which includes
//! this file with `#[path]`).

/// A 60-byte TCP ACK (no payload) from client `i` (10.0.0.0/8 + i, port
/// 40000 + the low 12 bits of i) to 198.51.100.1:443: one flow per client.
/// Checksums are left zero: the pipeline does not verify them.
pub fn client_ack(i: u32) -> Vec<u8> {
    assert!(i < 1 << 24, "client {i} is outside 10.0.0.0/8");
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&(0x0a00_0000 | i).to_be_bytes());
    f.extend_from_slice(&[198, 51, 100, 1]);
    f.extend_from_slice(&(40_000 + (i & 0xfff) as u16).to_be_bytes());
    f.extend_from_slice(&443u16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    f.resize(60, 0);
    f
}
