//! The barrier frame: sent into a port (and queue) to learn when btblocker
//! has been through everything sent there before it. btblocker forwards
//! non-IP frames untouched and a worker handles its queue in order, so when
//! the barrier comes back out of the other port, every earlier packet on that
//! queue was either forwarded already or dropped: drops become visible
//! without waiting on a timer. Barriers are counted apart from the capture's
//! packets and never written to the received pcaps.

/// IEEE 802 "local experimental" EtherType 1: never a real protocol.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const MAGIC: &[u8; 24] = b"btblocker-replay-barrier";

/// A minimum-size Ethernet frame: locally administered MACs, the
/// experimental EtherType, the magic, zero padding.
pub const FRAME: [u8; 60] = {
    let mut f = [0u8; 60];
    let dst = [0x02, 0, 0, 0, 0, 0x02];
    let src = [0x02, 0, 0, 0, 0, 0x01];
    let mut i = 0;
    while i < 6 {
        f[i] = dst[i];
        f[6 + i] = src[i];
        i += 1;
    }
    f[12] = ETHERTYPE[0];
    f[13] = ETHERTYPE[1];
    let mut j = 0;
    while j < MAGIC.len() {
        f[14 + j] = MAGIC[j];
        j += 1;
    }
    f
};

/// Whether a received frame is a barrier (looks at the first segment only).
#[inline]
pub fn is_barrier(first_segment: &[u8]) -> bool {
    first_segment.len() >= 14 + MAGIC.len()
        && first_segment[12..14] == ETHERTYPE
        && &first_segment[14..14 + MAGIC.len()] == MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse_ethernet, Parsed};

    #[test]
    fn the_barrier_is_a_non_ip_frame_that_recognises_itself_only() {
        assert!(is_barrier(&FRAME));
        assert!(matches!(
            parse_ethernet(&FRAME),
            Ok(Parsed::NonIp { ethertype: 0x88b5 })
        ));
        let mut other = FRAME;
        other[20] ^= 1;
        assert!(!is_barrier(&other));
        assert!(!is_barrier(&FRAME[..30]));
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo.pcap");
        crate::tools::capture::for_each_frame(&demo, |f| assert!(!is_barrier(f.data))).unwrap();
    }
}
