//! Which lcore ids an EAL `--lcores` map defines, so that the pipeline's
//! control and worker lcores can be checked against it before EAL starts.
//!
//! Grammar (DPDK EAL parameters): comma separated elements
//! `<lcores>[@<cpus>]`, where each side is `N`, `N-M` or a group `(a,b-c,…)`.

/// EAL's default RTE_MAX_LCORE: lcore ids are below it.
pub(super) const MAX_LCORE: u32 = 128;

/// A set of lcore ids below [`MAX_LCORE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LcoreSet([u64; 2]);

impl LcoreSet {
    pub(super) fn contains(&self, lcore: u32) -> bool {
        let word = usize::try_from(lcore / 64).unwrap_or(usize::MAX);
        self.0
            .get(word)
            .is_some_and(|bits| bits & (1u64 << (lcore % 64)) != 0)
    }

    fn insert(&mut self, lcore: u32) {
        let word = usize::try_from(lcore / 64).unwrap_or(usize::MAX);
        if let Some(bits) = self.0.get_mut(word) {
            *bits |= 1u64 << (lcore % 64);
        }
    }
}

/// The lcore ids `map` defines; the error is the problem, worded for a
/// message about `eal.lcores`.
pub(super) fn parse(map: &str) -> Result<LcoreSet, String> {
    let mut set = LcoreSet::default();
    for element in split_top_level(map)? {
        let (lcores, cpus) = match element.split_once('@') {
            Some((lcores, cpus)) => (lcores, Some(cpus)),
            None => (element, None),
        };
        for (first, last) in ranges(lcores).ok_or_else(|| unparsable(element))? {
            if last >= MAX_LCORE {
                return Err(format!(
                    "lcore {last} is out of range (must be < {MAX_LCORE})"
                ));
            }
            for lcore in first..=last {
                set.insert(lcore);
            }
        }
        if let Some(cpus) = cpus {
            ranges(cpus).ok_or_else(|| unparsable(element))?;
        }
    }
    Ok(set)
}

fn unparsable(element: &str) -> String {
    format!(
        "cannot parse `{}`: expected comma separated N, N-M or (N,M-K), each optionally \
         followed by @cpu, @cpu-cpu or @(cpus)",
        element.escape_debug()
    )
}

/// Splits on the commas outside parentheses; rejects unbalanced or nested
/// parentheses and empty elements.
fn split_top_level(map: &str) -> Result<Vec<&str>, String> {
    let mut elements = Vec::new();
    let mut depth = 0u8;
    let mut start = 0;
    for (i, c) in map.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            ')' if depth == 1 => depth = 0,
            '(' | ')' => {
                return Err(format!(
                    "unbalanced parentheses in `{}`",
                    map.escape_debug()
                ))
            }
            ',' if depth == 0 => {
                elements.push(map.get(start..i).unwrap_or_default());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!(
            "unbalanced parentheses in `{}`",
            map.escape_debug()
        ));
    }
    elements.push(map.get(start..).unwrap_or_default());
    match elements.iter().find(|e| e.is_empty()) {
        Some(_) => Err(format!("empty element in `{}`", map.escape_debug())),
        None => Ok(elements),
    }
}

/// `N`, `N-M` or `(a,b-c,…)` as inclusive ranges; `None` when malformed.
fn ranges(text: &str) -> Option<Vec<(u32, u32)>> {
    let inner = match text.strip_prefix('(') {
        Some(rest) => rest.strip_suffix(')')?,
        None => text,
    };
    inner.split(',').map(range).collect()
}

fn range(text: &str) -> Option<(u32, u32)> {
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (number(first)?, number(last)?),
        None => (number(text)?, number(text)?),
    };
    (first <= last).then_some((first, last))
}

/// Decimal digits only (`str::parse` would also take a leading `+`).
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(map: &str) -> Vec<u32> {
        let set = parse(map).unwrap();
        (0..MAX_LCORE).filter(|&l| set.contains(l)).collect()
    }

    #[test]
    fn simple_forms_define_the_listed_lcores() {
        assert_eq!(ids("0@0,1@1,2@1"), [0, 1, 2]);
        assert_eq!(ids("3"), [3]);
        assert_eq!(ids("1-3,7"), [1, 2, 3, 7]);
        assert_eq!(ids("(4-6)@2,0@(0,1)"), [0, 4, 5, 6]);
        assert_eq!(ids("(1,3-4)@(2-3,5)"), [1, 3, 4]);
        assert_eq!(ids("127"), [127]);
    }

    #[test]
    fn lcores_outside_the_set_are_absent() {
        let set = parse("1-2").unwrap();
        assert!(!set.contains(0));
        assert!(!set.contains(3));
        assert!(!set.contains(u32::MAX));
    }

    #[test]
    fn malformed_maps_are_refused_with_the_reason() {
        assert_eq!(parse("0,,1"), Err("empty element in `0,,1`".to_owned()));
        assert_eq!(parse(""), Err("empty element in ``".to_owned()));
        assert_eq!(
            parse("(0,1@2"),
            Err("unbalanced parentheses in `(0,1@2`".to_owned())
        );
        assert_eq!(
            parse("((0))@1"),
            Err("unbalanced parentheses in `((0))@1`".to_owned())
        );
        assert_eq!(
            parse("128"),
            Err("lcore 128 is out of range (must be < 128)".to_owned())
        );
        for bad in [
            "a",
            "3-1",
            "+1",
            "1@",
            "1@x",
            "1@@2",
            "1-",
            "-1",
            "99999999999",
            "(1,)",
        ] {
            let problem = parse(bad).unwrap_err();
            assert!(problem.starts_with("cannot parse `"), "{bad}: {problem}");
        }
    }
}
