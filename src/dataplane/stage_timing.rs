//! Per-stage cycle histograms (cargo feature `stage-timing`, which needs `dpdk`
//! for the TSC read). With the feature off every type here is empty and every
//! call compiles to nothing, so the hot path pays zero.
//!
//! Each worker owns its histograms (inside its `WorkerCounters`, single writer,
//! like every other counter): fixed-size log-linear buckets, no allocation.
//! The control lcore reads them at the end and reports p50/p99 per stage.

/// The stages a packet goes through, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Ethernet/VLAN/IP/L4 header parse.
    Parse = 0,
    /// Ban snapshot lookup of both addresses, for packets with no flow
    /// (no TCP/UDP header); a flow's packets are checked inside `Flow`.
    BanCheck = 1,
    /// Flow table lookup/insert, the flow's ban check (once per ban
    /// snapshot) and per-flow counters (every IP packet with L4).
    Flow = 2,
    /// The DPI engine, only for packets of undecided flows with payload.
    Dpi = 3,
    /// tx_burst plus freeing what was not sent: per burst, not per packet.
    TxBurst = 4,
}

impl Stage {
    pub const COUNT: usize = 5;
    pub const ALL: [Stage; Stage::COUNT] = [
        Stage::Parse,
        Stage::BanCheck,
        Stage::Flow,
        Stage::Dpi,
        Stage::TxBurst,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::BanCheck => "ban check",
            Stage::Flow => "flow",
            Stage::Dpi => "DPI",
            Stage::TxBurst => "tx (per burst)",
        }
    }
}

#[cfg(feature = "stage-timing")]
mod enabled {
    use super::Stage;
    use crate::dataplane::counter::Counter;

    /// Sub-buckets per power of two: 4 gives ≤ 19 % bucket width.
    const SUB: usize = 4;
    const SUB_BITS: u32 = 2;
    /// Covers 0 .. 2^40 cycles, far beyond any stage.
    pub(super) const BUCKETS: usize = 40 * SUB;

    /// Log-linear histogram of cycle counts.
    #[derive(Debug)]
    pub struct Histogram {
        buckets: [Counter; BUCKETS],
    }

    impl Default for Histogram {
        fn default() -> Self {
            Histogram {
                buckets: std::array::from_fn(|_| Counter::default()),
            }
        }
    }

    /// The bucket of `v`: values below 2·SUB get one bucket each; above, the
    /// power of two picks a group and the next SUB_BITS bits the sub-bucket.
    #[inline(always)]
    fn bucket_of(v: u64) -> usize {
        if v < (2 * SUB) as u64 {
            return v as usize;
        }
        let log = 63 - v.leading_zeros();
        let sub = (v >> (log - SUB_BITS)) as usize & (SUB - 1);
        ((log - SUB_BITS) as usize + 1) * SUB + sub
    }

    /// The smallest value that falls in bucket `b` (inverse of `bucket_of`).
    fn bucket_floor(b: usize) -> u64 {
        if b < 2 * SUB {
            return b as u64;
        }
        let log = (b / SUB - 1) as u32 + SUB_BITS;
        ((SUB + b % SUB) as u64) << (log - SUB_BITS)
    }

    impl Histogram {
        #[inline(always)]
        pub fn record(&self, cycles: u64) {
            self.buckets[bucket_of(cycles).min(BUCKETS - 1)].inc();
        }

        pub fn count(&self) -> u64 {
            self.buckets.iter().map(Counter::get).sum()
        }

        /// The value below which a fraction `q` of the samples lie (bucket
        /// midpoint, so within half a bucket width).
        pub fn quantile(&self, q: f64) -> Option<u64> {
            let total = self.count();
            if total == 0 {
                return None;
            }
            let rank = ((total as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            for (b, c) in self.buckets.iter().enumerate() {
                seen += c.get();
                if seen >= rank {
                    let lo = bucket_floor(b);
                    let hi = bucket_floor(b + 1);
                    return Some(lo + (hi - lo) / 2);
                }
            }
            None
        }
    }

    /// One worker's histograms, one per stage.
    #[derive(Debug, Default)]
    pub struct StageHistograms {
        pub stages: [Histogram; Stage::COUNT],
    }

    impl StageHistograms {
        pub fn get(&self, stage: Stage) -> &Histogram {
            &self.stages[stage as usize]
        }
    }

    /// A running stopwatch: `lap` records the cycles since the last lap.
    pub struct Lap {
        last: u64,
    }

    impl Lap {
        #[inline(always)]
        pub fn start() -> Lap {
            Lap {
                last: crate::dpdk::tsc(),
            }
        }

        #[inline(always)]
        pub fn lap(&mut self, hist: &StageHistograms, stage: Stage) {
            let now = crate::dpdk::tsc();
            hist.stages[stage as usize].record(now.wrapping_sub(self.last));
            self.last = now;
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn buckets_are_monotonic_and_invertible() {
            let mut prev = 0;
            for v in 0..100_000u64 {
                let b = bucket_of(v);
                assert!(b >= prev, "bucket of {v} went down");
                assert!(
                    bucket_floor(b) <= v && v < bucket_floor(b + 1),
                    "{v} in {b}"
                );
                prev = b;
            }
        }

        #[test]
        fn quantiles_land_in_the_right_bucket() {
            let h = Histogram::default();
            for _ in 0..90 {
                h.record(100);
            }
            for _ in 0..10 {
                h.record(10_000);
            }
            let p50 = h.quantile(0.5).unwrap();
            let p99 = h.quantile(0.99).unwrap();
            assert!((96..=112).contains(&p50), "p50 {p50}");
            assert!((8192..=10240).contains(&p99), "p99 {p99}");
        }
    }
}

#[cfg(feature = "stage-timing")]
pub use enabled::{Histogram, Lap, StageHistograms};

#[cfg(not(feature = "stage-timing"))]
mod disabled {
    use super::Stage;

    /// Empty without the `stage-timing` feature.
    #[derive(Debug, Default)]
    pub struct StageHistograms;

    /// Empty without the `stage-timing` feature: every call is a no-op.
    pub struct Lap;

    impl Lap {
        #[inline(always)]
        pub fn start() -> Lap {
            Lap
        }

        #[inline(always)]
        pub fn lap(&mut self, _hist: &StageHistograms, _stage: Stage) {}
    }
}

#[cfg(not(feature = "stage-timing"))]
pub use disabled::{Lap, StageHistograms};

/// The p50/p99 table of every stage over `workers`' histograms, in cycles and
/// ns at `tsc_hz`; `None` when built without the feature.
#[cfg(feature = "stage-timing")]
pub fn report<'a>(workers: impl IntoIterator<Item = &'a StageHistograms>, tsc_hz: u64) -> String {
    use std::fmt::Write as _;
    let ns = |c: u64| c as f64 * 1e9 / tsc_hz.max(1) as f64;
    // What a lap costs with nothing in it: two TSC reads and a histogram
    // update. Every figure below includes it once.
    let empty = StageHistograms::default();
    let mut lap = Lap::start();
    for _ in 0..10_000 {
        lap.lap(&empty, Stage::Parse);
    }
    let overhead = empty.get(Stage::Parse).quantile(0.5).unwrap_or(0);
    let mut s = format!(
        "timer overhead (empty lap, p50): {overhead} cycles ({:.1} ns), included in every figure\n",
        ns(overhead)
    );
    s.push_str(
        "| worker | stage | samples | p50 cycles | p50 ns | p99 cycles | p99 ns |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for (w, h) in workers.into_iter().enumerate() {
        for stage in Stage::ALL {
            let hist = h.get(stage);
            let (Some(p50), Some(p99)) = (hist.quantile(0.5), hist.quantile(0.99)) else {
                let _ = writeln!(s, "| {w} | {} | 0 | | | | |", stage.name());
                continue;
            };
            let _ = writeln!(
                s,
                "| {w} | {} | {} | {p50} | {:.1} | {p99} | {:.1} |",
                stage.name(),
                hist.count(),
                ns(p50),
                ns(p99)
            );
        }
    }
    s
}
