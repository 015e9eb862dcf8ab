//! The DPI engine: per-flow BitTorrent detectors.
//!
//! CONTRACT (used by pipeline.rs, flow table and analyze; keep these names):
//! `DpiEngine::new(&DpiConfig)`, `DpiEngine::inspect(&mut self, &mut FlowDpiState,
//! &PayloadCtx, now_ns) -> Inspection`, `FlowDpiState: Default + Clone` (fixed
//! size, no heap), `Detection { detector: DetectorId, confidence: Confidence }`,
//! `DetectorId::name()` (snake_case metric label).
//! STUB: the detectors are filled in by the DPI module's owner.
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    Weak,
    Strong,
    Definitive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorId {
    PeerWireHandshake,
}

impl DetectorId {
    pub fn name(self) -> &'static str {
        "peer_wire_handshake"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detection {
    pub detector: DetectorId,
    pub confidence: Confidence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Direction relative to the flow's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the endpoint that sent the flow's first packet.
    Originator,
    Responder,
}

/// One payload-carrying packet of a flow, as the detectors see it.
#[derive(Clone, Copy, Debug)]
pub struct PayloadCtx<'a> {
    pub transport: Transport,
    pub direction: Direction,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inspection {
    /// Not decided yet: keep feeding payload packets.
    Pending,
    /// Judged BitTorrent.
    BitTorrent(Detection),
    /// Judged clean: stop inspecting this flow.
    Clean,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpiConfig {
    /// Payload packets inspected per direction before a flow is judged clean.
    pub max_payload_packets: u8,
}

impl Default for DpiConfig {
    fn default() -> Self {
        DpiConfig {
            max_payload_packets: 8,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct FlowDpiState {
    pub payload_packets: [u8; 2],
}

pub struct DpiEngine {
    config: DpiConfig,
}

impl DpiEngine {
    pub fn new(config: &DpiConfig) -> Self {
        DpiEngine {
            config: config.clone(),
        }
    }

    pub fn inspect(
        &mut self,
        state: &mut FlowDpiState,
        ctx: &PayloadCtx<'_>,
        _now_ns: u64,
    ) -> Inspection {
        let d = ctx.direction as usize;
        state.payload_packets[d] = state.payload_packets[d].saturating_add(1);
        if state
            .payload_packets
            .iter()
            .all(|&n| n >= self.config.max_payload_packets)
        {
            Inspection::Clean
        } else {
            Inspection::Pending
        }
    }
}
