//! Large worker tables on 2 MiB pages without hugetlbfs: transparent huge
//! pages asked for by `madvise`.
//!
//! A flow table of a million flows spans hundreds of megabytes; on 4 KiB pages
//! a lookup that misses the caches also misses the TLB (a page walk on top of
//! the DRAM access). On 2 MiB pages the same table needs 512 times fewer TLB
//! entries. EAL here runs `--no-huge`, so the table stays ordinary heap memory
//! and this module asks the kernel to back it with transparent huge pages:
//! `MADV_HUGEPAGE` marks the range (so khugepaged and later faults use 2 MiB
//! pages even in THP's `madvise` mode), then `MADV_COLLAPSE` (Linux 6.1+)
//! rebuilds the already-faulted range on huge pages at once, synchronously,
//! before the first packet. Only the 2 MiB-aligned interior of a range can be
//! huge: at most 2 MiB at each end stays on small pages.
//!
//! Both advices are hints that never change the memory's contents, so
//! advising any range, even one this process does not own, cannot make safe
//! code unsound: the worst outcome is an error from the kernel, reported.
use std::fmt;

/// The size of a transparent huge page on x86-64 and arm64 (4 KiB granule).
const HUGE_PAGE: usize = 2 << 20;

/// What [`back_with_huge_pages`] achieved for a set of ranges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HugePageReport {
    /// Bytes in the ranges asked for.
    pub bytes: usize,
    /// Bytes of their 2 MiB-aligned interiors (what can be huge).
    pub eligible: usize,
    /// Bytes of the ranges the kernel reports on huge pages
    /// (`AnonHugePages` of /proc/self/smaps), after advising.
    pub huge: usize,
    /// The first error the kernel returned (`madvise` errno), if any; e.g.
    /// EINVAL on kernels without `MADV_COLLAPSE` (before 6.1).
    pub errno: Option<i32>,
}

impl fmt::Display for HugePageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: usize| b as f64 / f64::from(1u32 << 20);
        write!(
            f,
            "{:.1} MiB of {:.1} MiB on 2 MiB pages ({:.1} MiB aligned)",
            mib(self.huge),
            mib(self.bytes),
            mib(self.eligible)
        )?;
        if let Some(e) = self.errno {
            write!(f, "; madvise: {}", std::io::Error::from_raw_os_error(e))?;
        }
        Ok(())
    }
}

/// The 2 MiB-aligned interior `[start, end)` of `(ptr, len)`, if any.
fn aligned_interior(ptr: *const u8, len: usize) -> Option<(usize, usize)> {
    let addr = ptr as usize;
    let start = addr.checked_next_multiple_of(HUGE_PAGE)?;
    let end = addr.checked_add(len)? / HUGE_PAGE * HUGE_PAGE;
    (start < end).then_some((start, end))
}

/// Asks the kernel to back the 2 MiB-aligned interior of each `(start,
/// length)` range with huge pages: `MADV_HUGEPAGE`, then `MADV_COLLAPSE` for
/// what is already faulted in. Slow (the kernel copies every page): call it
/// at start-up, never per packet. Then reads back how much really is huge.
pub fn back_with_huge_pages(ranges: &[(*const u8, usize)]) -> HugePageReport {
    let mut report = HugePageReport::default();
    let mut interiors = Vec::with_capacity(ranges.len());
    for &(ptr, len) in ranges {
        report.bytes += len;
        let Some((start, end)) = aligned_interior(ptr, len) else {
            continue;
        };
        report.eligible += end - start;
        interiors.push((start, end));
        for advice in [libc::MADV_HUGEPAGE, libc::MADV_COLLAPSE] {
            // SAFETY: both advices only change how the range is backed, never
            // its contents (collapse copies the small pages into a huge one
            // under the page-table lock); an unmapped or foreign range makes
            // the call fail, which is reported, not undefined behaviour.
            let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, advice) };
            if rc != 0 && report.errno.is_none() {
                report.errno = std::io::Error::last_os_error().raw_os_error();
            }
        }
    }
    report.huge = huge_bytes_in(&interiors);
    report
}

/// Bytes on huge pages in the ranges `[start, end)`, from /proc/self/smaps:
/// per mapping that overlaps a range, its `AnonHugePages`, capped at the
/// overlap (smaps counts per mapping, not per byte; `MADV_HUGEPAGE` splits
/// the mapping at the advised range, so the cap rarely matters). 0 when
/// smaps cannot be read.
pub fn huge_bytes_in(ranges: &[(usize, usize)]) -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut total = 0;
    let mut overlap = 0usize;
    for line in smaps.lines() {
        if let Some((lo, hi)) = mapping_bounds(line) {
            overlap = ranges
                .iter()
                .map(|&(s, e)| e.min(hi).saturating_sub(s.max(lo)))
                .sum();
        } else if let Some(kib) = line.strip_prefix("AnonHugePages:") {
            let kib: usize = kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            total += (kib * 1024).min(overlap);
        }
    }
    total
}

/// `(start, end)` of a smaps mapping header line (`7f..-7f.. rw-p ...`).
fn mapping_bounds(line: &str) -> Option<(usize, usize)> {
    let range = line.split_whitespace().next()?;
    let (lo, hi) = range.split_once('-')?;
    Some((
        usize::from_str_radix(lo, 16).ok()?,
        usize::from_str_radix(hi, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_aligned_interior_is_eligible() {
        let p = |a: usize| a as *const u8;
        assert_eq!(
            aligned_interior(p(1), 4 * HUGE_PAGE),
            Some((HUGE_PAGE, 4 * HUGE_PAGE))
        );
        assert_eq!(
            aligned_interior(p(HUGE_PAGE), HUGE_PAGE),
            Some((HUGE_PAGE, 2 * HUGE_PAGE))
        );
        assert_eq!(aligned_interior(p(1), 2 * HUGE_PAGE - 2), None);
        assert_eq!(aligned_interior(p(usize::MAX - 3), 8), None);
    }

    /// A pre-faulted 64 MiB buffer (as the flow table is) really lands on
    /// huge pages where the kernel has `MADV_COLLAPSE` and THP is not
    /// `never`; elsewhere the report says why not (and the test says so
    /// instead of failing: the machine decides, not the code).
    #[test]
    fn a_prefaulted_buffer_is_collapsed_onto_huge_pages() {
        let buf = vec![7u8; 64 << 20];
        let report = back_with_huge_pages(&[(buf.as_ptr(), buf.len())]);
        assert_eq!(report.bytes, 64 << 20);
        assert!(report.eligible >= 62 << 20, "{report}");
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if report.errno.is_none() && !thp.contains("[never]") {
            assert_eq!(report.huge, report.eligible, "{report}");
        } else {
            eprintln!(
                "huge pages unavailable here: {report} (THP: {})",
                thp.trim()
            );
        }
        // Contents are untouched by the collapse.
        assert!(buf.iter().all(|&b| b == 7));
    }
}
