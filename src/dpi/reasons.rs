//! The reason chain: which pieces of evidence a flow's verdict rests on.
//!
//! A verdict names one lead detector (`Detection`), but an operator asking
//! "why was this host banned?" needs every piece that counted: each detector
//! that reported evidence, the endpoint cache's word, and the finer facts a
//! detector established on the way (for MSE: the envelope, an exact client
//! signature, plaintext-selected MSE, message-length arithmetic…). They are
//! kept as one bit set per flow — fixed size, no heap — and rendered as names
//! in `analyze` reports and the detection log.

use super::DetectorId;

/// One piece of evidence a verdict can rest on. The first
/// `DetectorId::COUNT` bits mirror the detectors (set when the detector
/// reported evidence that counted); the rest are facts below a detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// MSE: A1 and B1 are DH-key-sized random flights in strict alternation,
    /// and A answered B1 with at least 56 bytes. Never condemns alone.
    MseEnvelope = 16,
    /// MSE: the initiator's second flight is exactly 124 bytes (56 + the
    /// 68-byte handshake, no PadC: Transmission, rTorrent).
    MseA2Exact,
    /// MSE: the responder's second flight is exactly 14 (VC, crypto_select,
    /// len(PadD) with no PadD) or 82 bytes (that and a 68-byte handshake).
    MseB2Exact,
    /// MSE: the initiator's third flight is exactly the 68-byte handshake
    /// (aria2 sends IA empty, then the handshake alone).
    MseThirdFlight68,
    /// MSE with plaintext selected: BitTorrent in the clear right after the
    /// MSE exchange. Certain.
    MsePlaintextSelected,
    /// MSE: ciphertext message boundaries fit BitTorrent message lengths
    /// (16397-byte pieces, 17-byte requests, 9-byte haves).
    MseMessageLengths,
    /// An endpoint spoke BitTorrent itself in another flow (known peer,
    /// Confirmed tier: DHT, uTP, UDP tracker, a plaintext handshake).
    EndpointConfirmed,
    /// An endpoint was named in a plaintext peer list (DHT `values`, a
    /// tracker's compact peers).
    EndpointAdvertised,
    /// The initiator opened MSE-envelope flows to several distinct peers on
    /// unusual ports within a short window.
    HostFanOut,
}

impl Reason {
    /// Every fact below a detector, in bit order.
    pub const FACTS: [Reason; 9] = [
        Reason::MseEnvelope,
        Reason::MseA2Exact,
        Reason::MseB2Exact,
        Reason::MseThirdFlight68,
        Reason::MsePlaintextSelected,
        Reason::MseMessageLengths,
        Reason::EndpointConfirmed,
        Reason::EndpointAdvertised,
        Reason::HostFanOut,
    ];

    /// Snake-case name, for reports, logs and labels.
    pub fn name(self) -> &'static str {
        match self {
            Reason::MseEnvelope => "mse_envelope",
            Reason::MseA2Exact => "mse_a2_124",
            Reason::MseB2Exact => "mse_b2_14_or_82",
            Reason::MseThirdFlight68 => "mse_third_flight_68",
            Reason::MsePlaintextSelected => "mse_plaintext_selected",
            Reason::MseMessageLengths => "mse_message_lengths",
            Reason::EndpointConfirmed => "endpoint_confirmed",
            Reason::EndpointAdvertised => "endpoint_advertised",
            Reason::HostFanOut => "host_fan_out",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

const _: () = assert!(DetectorId::COUNT <= Reason::MseEnvelope as usize);

/// A set of reasons: detector bits (by `DetectorId::index`) and facts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reasons(u32);

impl Reasons {
    pub const NONE: Reasons = Reasons(0);

    /// Adds a fact.
    #[inline]
    pub fn add(&mut self, r: Reason) {
        self.0 |= r.bit();
    }

    /// Adds a detector's evidence.
    #[inline]
    pub fn add_detector(&mut self, id: DetectorId) {
        self.0 |= 1 << id.index();
    }

    pub fn has(self, r: Reason) -> bool {
        self.0 & r.bit() != 0
    }

    pub fn has_detector(self, id: DetectorId) -> bool {
        self.0 & (1 << id.index()) != 0
    }

    /// Raw bits (detectors low, facts from bit 16): for a fixed-size event.
    pub const fn bits(self) -> u32 {
        self.0
    }

    pub const fn from_bits(bits: u32) -> Self {
        Reasons(bits)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names, detectors first (in `DetectorId::ALL` order), then facts.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        let detectors = DetectorId::ALL
            .into_iter()
            .filter(move |&id| self.has_detector(id))
            .map(DetectorId::name);
        let facts = Reason::FACTS
            .into_iter()
            .filter(move |&r| self.has(r))
            .map(Reason::name);
        detectors.chain(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_list_detectors_then_facts() {
        let mut r = Reasons::NONE;
        assert_eq!(r.names().count(), 0);
        r.add(Reason::MseA2Exact);
        r.add_detector(DetectorId::Mse);
        r.add(Reason::MseEnvelope);
        r.add_detector(DetectorId::Dht);
        let names: Vec<_> = r.names().collect();
        assert_eq!(names, ["dht", "mse", "mse_envelope", "mse_a2_124"]);
        assert_eq!(Reasons::from_bits(r.bits()), r);
    }

    #[test]
    fn fact_bits_are_distinct_and_above_the_detectors() {
        let mut all = 0u32;
        for r in Reason::FACTS {
            assert!(r as usize >= DetectorId::COUNT);
            assert_eq!(all & r.bit(), 0, "{}", r.name());
            all |= r.bit();
        }
    }
}
