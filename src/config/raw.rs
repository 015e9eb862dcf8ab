//! The top level of the file as serde reads it, before validation.
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::ban::{RawBan, RawNetworks};
use super::dpi::RawDpi;
use super::eal::RawEal;
use super::flows::RawFlows;
use super::pipeline::RawPipeline;
use super::ports::RawPort;

/// The sections the top level may hold, for the "not a mapping" message.
/// Keep in step with the fields of [`RawConfig`] (a unit test checks it).
pub(super) const SECTIONS: &[&str] = &[
    "eal", "ports", "pipeline", "flows", "dpi", "ban", "networks", "log", "metrics", "control",
    "bgp",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub eal: Option<Spanned<RawEal>>,
    pub ports: Option<Spanned<Vec<Spanned<RawPort>>>>,
    pub pipeline: Option<Spanned<RawPipeline>>,
    pub flows: Option<Spanned<RawFlows>>,
    pub dpi: Option<Spanned<RawDpi>>,
    pub ban: Option<Spanned<RawBan>>,
    pub networks: Option<Spanned<RawNetworks>>,
    pub log: Option<Spanned<super::log::RawLog>>,
    pub metrics: Option<Spanned<super::RawMetrics>>,
    pub control: Option<Spanned<super::operator::RawOperator>>,
    pub bgp: Option<Spanned<super::bgp::RawBgp>>,
}
