//! What a worker tells the control thread when DPI judges a flow BitTorrent.
use super::key::BanKey;
pub use crate::dpi::Confidence;

/// One detection, as sent over a worker's event ring. `Copy` and fixed-size
/// (64 bytes, no heap) so pushing it costs a copy into a preallocated slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectionEvent {
    /// The address the verdict is about: the one the policy may ban.
    pub host: BanKey,
    /// The other end of the flow (for the detection log).
    pub peer: BanKey,
    pub host_port: u16,
    pub peer_port: u16,
    /// IP protocol of the flow (6 TCP, 17 UDP).
    pub proto: u8,
    /// Index of the port the deciding packet arrived on.
    pub port: u8,
    /// Detector name (`DetectorId::name()`): static, so no allocation.
    pub detector: &'static str,
    pub confidence: Confidence,
    /// When the worker saw it, unix ms.
    pub at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_fits_one_cache_line() {
        assert_eq!(std::mem::size_of::<DetectionEvent>(), 64);
    }
}
