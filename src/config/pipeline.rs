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
/// The highest lcore id a worker or the control thread may name.
const MAX_LCORE_ID: i64 = MAX_LCORE as i64 - 1;
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
    // Checked in this order so that a file with several faults is always
    // refused for the same one.
    let burst_size = int_in_or(
        "pipeline.burst_size",
        raw.burst_size.as_ref(),
        DEFAULT_BURST_SIZE,
        1,
        MAX_BURST_SIZE,
    )?;
    let worker_lcores = worker_lcores(raw.worker_lcores.as_ref())?;
    let control_lcore = control_lcore(raw.control_lcore.as_ref())?;
    check_control_apart(control_lcore, &worker_lcores, &raw)?;
    let (mbuf_pool_size, mbuf_cache_size) = mbufs(&raw)?;
    let (stats_interval_ms, stop_after_idle_ms) = timers(&raw)?;
    Ok(PipelineConfig {
        mode: mode(raw.mode.as_ref()),
        burst_size,
        worker_lcores,
        control_lcore,
        mbuf_pool_size,
        mbuf_cache_size,
        stats_interval_ms,
        stop_after_idle_ms,
    })
}

fn mode(raw: Option<&Spanned<RawMode>>) -> Mode {
    match raw.map(|m| m.value) {
        None | Some(RawMode::Inline) => Mode::Inline,
        Some(RawMode::Monitor) => Mode::Monitor,
    }
}

/// The worker lcores in file order: at least one, each in range, no repeats.
fn worker_lcores(raw: Option<&Spanned<Vec<Spanned<i64>>>>) -> Result<Vec<u32>, ConfigError> {
    let list = match raw {
        None => return Ok(DEFAULT_WORKER_LCORES.to_vec()),
        Some(list) if list.value.is_empty() => {
            return Err(invalid(
                "pipeline.worker_lcores",
                list,
                "must list at least one lcore",
            ))
        }
        Some(list) => list,
    };
    let mut lcores = Vec::with_capacity(list.value.len());
    for (i, lcore) in list.value.iter().enumerate() {
        let key = format!("pipeline.worker_lcores[{i}]");
        let id: u32 = int_in(&key, lcore, 0, MAX_LCORE_ID)?;
        if let Some(first) = lcores.iter().position(|&l| l == id) {
            return Err(invalid(
                &key,
                lcore,
                format!("lcore {id} is already pipeline.worker_lcores[{first}]"),
            ));
        }
        lcores.push(id);
    }
    Ok(lcores)
}

fn control_lcore(raw: Option<&Spanned<i64>>) -> Result<u32, ConfigError> {
    match raw {
        None => Ok(DEFAULT_CONTROL_LCORE),
        Some(lcore) => int_in("pipeline.control_lcore", lcore, 0, MAX_LCORE_ID),
    }
}

/// A worker polls without pause, so it must not share the control lcore.
fn check_control_apart(
    control_lcore: u32,
    worker_lcores: &[u32],
    raw: &RawPipeline,
) -> Result<(), ConfigError> {
    let Some(i) = worker_lcores.iter().position(|&l| l == control_lcore) else {
        return Ok(());
    };
    // Reported at the control lcore when given, else at the worker that
    // took the default control lcore.
    let problem = format!(
        "lcore {control_lcore} is both the control lcore and pipeline.worker_lcores[{i}]; \
         a worker polls without pause and would starve the control thread"
    );
    Err(match (&raw.control_lcore, &raw.worker_lcores) {
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
    })
}

/// The mbuf pool size and its per-lcore cache size.
fn mbufs(raw: &RawPipeline) -> Result<(u32, u32), ConfigError> {
    let pool_size = int_in_or(
        "pipeline.mbuf_pool_size",
        raw.mbuf_pool_size.as_ref(),
        DEFAULT_MBUF_POOL_SIZE,
        MIN_MBUF_POOL_SIZE,
        i64::from(u32::MAX),
    )?;
    let cache_size = int_in_or(
        "pipeline.mbuf_cache_size",
        raw.mbuf_cache_size.as_ref(),
        DEFAULT_MBUF_CACHE_SIZE,
        0,
        MAX_MBUF_CACHE_SIZE,
    )?;
    Ok((pool_size, cache_size))
}

/// The stats interval and the optional idle stop, both in milliseconds.
fn timers(raw: &RawPipeline) -> Result<(u64, Option<u64>), ConfigError> {
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
    Ok((stats_interval_ms, stop_after_idle_ms))
}
