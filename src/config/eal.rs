//! The `eal` section: how DPDK's Environment Abstraction Layer is started.
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::field::{int_in_or, invalid, list};
use super::names::{check_vdev, is_file_prefix, PciAddress, PCI_FORM};
use super::{lcores, ConfigError, EalConfig, PipelineConfig};

const DEFAULT_MEMORY_MB: u32 = 512;
/// Below this EAL cannot even set up its own heaps and the mbuf pool.
const MIN_MEMORY_MB: i64 = 64;
const DEFAULT_FILE_PREFIX: &str = "btblocker";

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEal {
    lcores: Option<Spanned<String>>,
    memory_mb: Option<Spanned<i64>>,
    hugepages: Option<Spanned<bool>>,
    file_prefix: Option<Spanned<String>>,
    vdevs: Option<Spanned<Vec<Spanned<String>>>>,
    pci_allow: Option<Spanned<Vec<Spanned<String>>>>,
    extra_args: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `pipeline` is already valid: its lcores must all be in `eal.lcores`.
pub(super) fn validate(
    raw: Option<Spanned<RawEal>>,
    pipeline: &PipelineConfig,
) -> Result<EalConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();

    if let Some(map) = &raw.lcores {
        check_lcores_map(map, pipeline)?;
    }
    let memory_mb = int_in_or(
        "eal.memory_mb",
        raw.memory_mb.as_ref(),
        DEFAULT_MEMORY_MB,
        MIN_MEMORY_MB,
        i64::from(u32::MAX),
    )?;
    let file_prefix = match raw.file_prefix {
        Some(prefix) if !is_file_prefix(&prefix.value) => {
            return Err(invalid(
                "eal.file_prefix",
                &prefix,
                "must match [A-Za-z0-9_-]+",
            ))
        }
        Some(prefix) => prefix.value,
        None => DEFAULT_FILE_PREFIX.to_owned(),
    };

    let vdevs = list(raw.vdevs);
    for (i, vdev) in vdevs.iter().enumerate() {
        check_vdev(&vdev.value).map_err(|p| invalid(&format!("eal.vdevs[{i}]"), vdev, p))?;
    }
    let pci_allow = list(raw.pci_allow);
    for (i, addr) in pci_allow.iter().enumerate() {
        if PciAddress::parse(&addr.value).is_none() {
            let problem = format!(
                "`{}` is not a PCI address ({PCI_FORM})",
                addr.value.escape_debug()
            );
            return Err(invalid(&format!("eal.pci_allow[{i}]"), addr, problem));
        }
    }

    Ok(EalConfig {
        lcores: raw.lcores.map(|m| m.value),
        memory_mb,
        hugepages: raw.hugepages.is_none_or(|h| h.value),
        file_prefix: Some(file_prefix),
        vdevs: vdevs.into_iter().map(|v| v.value).collect(),
        pci_allow: pci_allow.into_iter().map(|a| a.value).collect(),
        extra_args: list(raw.extra_args).into_iter().map(|a| a.value).collect(),
    })
}

/// EAL would start, then the runtime would fail to launch a worker on an
/// lcore the map does not define: refuse that here, naming the lcore.
fn check_lcores_map(map: &Spanned<String>, pipeline: &PipelineConfig) -> Result<(), ConfigError> {
    let set = lcores::parse(&map.value).map_err(|p| invalid("eal.lcores", map, p))?;
    if !set.contains(pipeline.control_lcore) {
        return Err(invalid(
            "eal.lcores",
            map,
            format!(
                "does not define lcore {} (pipeline.control_lcore)",
                pipeline.control_lcore
            ),
        ));
    }
    for (i, &worker) in pipeline.worker_lcores.iter().enumerate() {
        if !set.contains(worker) {
            return Err(invalid(
                "eal.lcores",
                map,
                format!("does not define lcore {worker} (pipeline.worker_lcores[{i}])"),
            ));
        }
    }
    Ok(())
}
