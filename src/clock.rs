//! The process's wall clock, read by the control lcore and at start-up.
//! Workers never call it per packet: they turn the TSC into time against a
//! base taken here once (`app::worker::Clock`), because a clock read is a
//! syscall or a vDSO call that the hot path cannot afford.

/// Wall-clock time as unix ms (0 if the clock is before 1970).
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_now_is_after_2020() {
        assert!(unix_now_ms() > 1_577_836_800_000);
    }
}
