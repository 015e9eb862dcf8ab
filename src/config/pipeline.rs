//! The `pipeline` section: lcores, bursts, mbufs and timers of the dataplane.
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::field::{int_in, int_in_or, invalid};
use super::lcores::MAX_LCORE;
use super::{ConfigError, Mode, PipelineConfig};

const DEFAULT_BURST_SIZE: u16 = 32;
const MAX_BURST_SIZE: i64 = 512;
const DEFAULT_WORKER_LCORES: [u32; 1] = [1];
const DEFAULT_CONTROL_LCORE: u32 = 0;
/// 2^13 - 1: a mempool is most memory-efficient at a power of two minus one.
const DEFAULT_MBUF_POOL_SIZE: u32 = 8191;
const MIN_MBUF_POOL_SIZE: i64 = 1024;
const DEFAULT_MBUF_CACHE_SIZE: u32 = 256;
/// RTE_MEMPOOL_CACHE_MAX_SIZE.
const MAX_MBUF_CACHE_SIZE: i64 = 512;
// rte_mempool_create also refuses cache_size * 1.5 > pool size. The pool
// floor makes that impossible for any cache size accepted here, so there is
// no run-time check to get wrong; this fails the build if a bound changes.
const _: () = assert!(MAX_MBUF_CACHE_SIZE * 3 <= MIN_MBUF_POOL_SIZE * 2);
const DEFAULT_STATS_INTERVAL_MS: u64 = 1000;
const MIN_STATS_INTERVAL_MS: i64 = 100;

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawMode {
    Inline,
    Monitor,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipeline {
    mode: Option<Spanned<RawMode>>,
    burst_size: Option<Spanned<i64>>,
    worker_lcores: Option<Spanned<Vec<Spanned<i64>>>>,
    control_lcore: Option<Spanned<i64>>,
    mbuf_pool_size: Option<Spanned<i64>>,
    mbuf_cache_size: Option<Spanned<i64>>,
    stats_interval_ms: Option<Spanned<i64>>,
    stop_after_idle_ms: Option<Spanned<i64>>,
}

pub(super) fn validate(raw: Option<Spanned<RawPipeline>>) -> Result<PipelineConfig, ConfigError> {
    let raw = raw.map(|r| r.value).unwrap_or_default();
    let lcore_max = i64::from(MAX_LCORE) - 1;

    let mode = match raw.mode.map(|m| m.value) {
        None | Some(RawMode::Inline) => Mode::Inline,
        Some(RawMode::Monitor) => Mode::Monitor,
    };
    let burst_size = int_in_or(
        "pipeline.burst_size",
        raw.burst_size.as_ref(),
        DEFAULT_BURST_SIZE,
        1,
        MAX_BURST_SIZE,
    )?;

    let worker_lcores = match &raw.worker_lcores {
        None => DEFAULT_WORKER_LCORES.to_vec(),
        Some(list) if list.value.is_empty() => {
            return Err(invalid(
                "pipeline.worker_lcores",
                list,
                "must list at least one lcore",
            ))
        }
        Some(list) => {
            let mut lcores = Vec::with_capacity(list.value.len());
            for (i, lcore) in list.value.iter().enumerate() {
                let key = format!("pipeline.worker_lcores[{i}]");
                let id: u32 = int_in(&key, lcore, 0, lcore_max)?;
                if let Some(first) = lcores.iter().position(|&l| l == id) {
                    return Err(invalid(
                        &key,
                        lcore,
                        format!("lcore {id} is already pipeline.worker_lcores[{first}]"),
                    ));
                }
                lcores.push(id);
            }
            lcores
        }
    };

    let control_lcore = match &raw.control_lcore {
        None => DEFAULT_CONTROL_LCORE,
        Some(lcore) => int_in("pipeline.control_lcore", lcore, 0, lcore_max)?,
    };
    if let Some(i) = worker_lcores.iter().position(|&l| l == control_lcore) {
        // Reported at the control lcore when given, else at the worker that
        // took the default control lcore.
        let problem = format!(
            "lcore {control_lcore} is both the control lcore and pipeline.worker_lcores[{i}]; \
             a worker polls without pause and would starve the control thread"
        );
        return Err(match (&raw.control_lcore, &raw.worker_lcores) {
            (Some(control), _) => invalid("pipeline.control_lcore", control, problem),
            (None, Some(list)) => match list.value.get(i) {
                Some(worker) => invalid(&format!("pipeline.worker_lcores[{i}]"), worker, problem),
                None => invalid("pipeline.worker_lcores", list, problem),
            },
            // Unreachable with the defaults (0 vs [1]), kept total anyway.
            (None, None) => ConfigError::Invalid {
                key: "pipeline.control_lcore".into(),
                problem,
                line: None,
            },
        });
    }

    let mbuf_pool_size: u32 = int_in_or(
        "pipeline.mbuf_pool_size",
        raw.mbuf_pool_size.as_ref(),
        DEFAULT_MBUF_POOL_SIZE,
        MIN_MBUF_POOL_SIZE,
        i64::from(u32::MAX),
    )?;
    let mbuf_cache_size = int_in_or(
        "pipeline.mbuf_cache_size",
        raw.mbuf_cache_size.as_ref(),
        DEFAULT_MBUF_CACHE_SIZE,
        0,
        MAX_MBUF_CACHE_SIZE,
    )?;

    let stats_interval_ms = int_in_or(
        "pipeline.stats_interval_ms",
        raw.stats_interval_ms.as_ref(),
        DEFAULT_STATS_INTERVAL_MS,
        MIN_STATS_INTERVAL_MS,
        i64::MAX,
    )?;
    let stop_after_idle_ms = match &raw.stop_after_idle_ms {
        None => None,
        Some(ms) => Some(int_in("pipeline.stop_after_idle_ms", ms, 1, i64::MAX)?),
    };

    Ok(PipelineConfig {
        mode,
        burst_size,
        worker_lcores,
        control_lcore,
        mbuf_pool_size,
        mbuf_cache_size,
        stats_interval_ms,
        stop_after_idle_ms,
    })
}
