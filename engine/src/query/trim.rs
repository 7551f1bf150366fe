//! Partial-data trimming at the live edge (spec 4.3): the newest buckets
//! of a query that ends now are still being collected, and a series that
//! has not reported yet would show as a dip (a sum) or a gap. v2/v3
//! answers drop those trailing rows instead.
//!
//! Rule: for a non-`raw` v2/v3 query whose window ends within twice the
//! largest update_every of its queried metrics (percentage denominators
//! included) of now, the rows ending at
//! or after `before - 2 x that update_every` are candidates; the first
//! candidate whose contributions (non-empty series-metric pairs, summed
//! over the returned series) are fewer than the row before it has, or
//! zero, is dropped with every row after it. Rows before the candidates
//! are never dropped, and without such a row (a window no longer than
//! the candidates' reach) nothing is. The answer reports what it did
//! ([`PartialTrimming`], `view.partial_data_trimming` under `debug`).

use crate::query::result::Series;
use crate::query::window::Window;

/// What trimming looked at and where it cut (times are epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialTrimming {
    /// The largest update_every of the queried metrics.
    pub max_update_every: i64,
    /// Rows ending at or after this may be dropped (`before` when the
    /// query does not end near now, or is `raw`: none may).
    pub expected_after: i64,
    /// The end of the first dropped row (`before` when none was).
    pub trimmed_after: i64,
}

/// Where `series` (rows `0..w.points`, oldest first) are cut: the rows to
/// keep, and the report. `applies` is false for `raw` answers.
pub fn trailing_rows(
    w: &Window,
    now: i64,
    max_update_every: i64,
    series: &[Series],
    applies: bool,
) -> (usize, PartialTrimming) {
    let reach = 2 * max_update_every.max(1);
    let near_now = applies && w.before >= now - reach;
    let expected_after = if near_now { w.before - reach } else { w.before };
    let mut report = PartialTrimming { max_update_every, expected_after, trimmed_after: w.before };
    if !near_now || series.is_empty() {
        return (w.points, report);
    }
    let total = |i: usize| series.iter().map(|s| u64::from(s.counts.get(i).copied().unwrap_or(0))).sum::<u64>();
    let first = (0..w.points).find(|&i| w.bucket_end(i) >= expected_after).unwrap_or(w.points);
    // The row before the candidates is the baseline; without one (a window
    // no longer than the candidates' reach) nothing is dropped, as Netdata
    // does.
    let Some(mut before) = first.checked_sub(1).map(total) else { return (w.points, report) };
    for i in first..w.points {
        let now_total = total(i);
        if now_total == 0 || now_total < before {
            report.trimmed_after = w.bucket_end(i);
            return (i, report);
        }
        before = now_total;
    }
    (w.points, report)
}

/// Keeps the first `rows` rows of `series` and of the window (whose
/// `before` becomes the last kept row's end).
pub fn cut(w: &mut Window, series: &mut [Series], rows: usize) {
    if rows >= w.points {
        return;
    }
    if rows > 0 {
        w.before = w.bucket_end(rows - 1);
    }
    w.points = rows;
    for s in series {
        s.values.truncate(rows);
        s.flags.truncate(rows);
        s.arp.truncate(rows);
        s.counts.truncate(rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::group::key::SeriesKey;
    use crate::query::result::PointStats;
    use proptest::prelude::*;

    /// Ten 1 s buckets ending at 101..=110.
    fn window() -> Window {
        Window {
            after: 101,
            before: 110,
            points: 10,
            granularity: 1,
            group: 1,
            view_every: 1,
            resampling_divisor: None,
            relative: true,
        }
    }

    fn series(counts: &[u32]) -> Series {
        Series {
            key: SeriesKey { id: "s".into(), name: "s".into(), units: String::new(), priority: 0, labels: vec![] },
            aggregated: 2,
            values: vec![1.0; counts.len()],
            flags: vec![0; counts.len()],
            arp: vec![0.0; counts.len()],
            counts: counts.to_vec(),
            db_stats: PointStats::default(),
        }
    }

    #[test]
    fn a_trailing_dip_in_contributions_is_dropped() {
        let w = window();
        assert_eq!(w.bucket_end(9), 110);
        let s = [series(&[2, 2, 2, 2, 2, 2, 2, 2, 1, 1])];
        // Now 111, update_every 1: rows ending at 108.. are candidates.
        let (keep, r) = trailing_rows(&w, 111, 1, &s, true);
        assert_eq!((keep, r), (8, PartialTrimming { max_update_every: 1, expected_after: 108, trimmed_after: 109 }));
        // Summed over series: one series losing a contributor is enough.
        let two = [series(&[1; 10]), series(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 0])];
        assert_eq!(trailing_rows(&w, 111, 1, &two, true).0, 9);
    }

    #[test]
    fn rows_before_the_candidates_and_far_from_now_are_kept() {
        let w = window();
        // A dip at row 2 is history, not the live edge.
        let s = [series(&[2, 2, 1, 2, 2, 2, 2, 2, 2, 2])];
        assert_eq!(trailing_rows(&w, 111, 1, &s, true).0, 10);
        // The window ends long before now: nothing is a candidate.
        let dip = [series(&[2, 2, 2, 2, 2, 2, 2, 2, 2, 1])];
        let (keep, r) = trailing_rows(&w, 200, 1, &dip, true);
        assert_eq!((keep, r.expected_after, r.trimmed_after), (10, 110, 110));
        // raw answers are never trimmed.
        assert_eq!(trailing_rows(&w, 111, 1, &dip, false).0, 10);
        // A rise is fine; an empty candidate row is dropped.
        let rise = [series(&[1, 1, 1, 1, 1, 1, 1, 1, 2, 0])];
        assert_eq!(trailing_rows(&w, 111, 1, &rise, true).0, 9);
        // Every row a candidate: no baseline row, nothing dropped.
        let empty_tail = [series(&[1, 1, 1, 1, 1, 1, 1, 0, 0, 0])];
        assert_eq!(trailing_rows(&w, 111, 10, &empty_tail, true).0, 10);
    }

    #[test]
    fn slower_metrics_widen_the_candidates() {
        let w = window();
        // update_every 3: rows ending at 104.. are candidates (row 2 the
        // baseline), and the drop from 3 to 2 at row 4 cuts there.
        let s = [series(&[3, 3, 3, 3, 2, 2, 2, 2, 2, 2])];
        let (keep, r) = trailing_rows(&w, 111, 3, &s, true);
        assert_eq!((keep, r.expected_after, r.trimmed_after), (4, 104, 105));
        // update_every 5: every row is a candidate, none a baseline.
        assert_eq!(trailing_rows(&w, 111, 5, &s, true).0, 10);
    }

    proptest! {
        /// Whatever the counts: kept rows are a prefix that includes every
        /// row before the candidates, a cut row is empty or below its
        /// predecessor, and no kept candidate is.
        #[test]
        fn the_cut_follows_the_rule(
            counts in prop::collection::vec(prop::collection::vec(0u32..4, 10), 1..4),
            now in 105i64..130,
            ue in 1i64..6,
        ) {
            let w = window();
            let s: Vec<Series> = counts.iter().map(|c| series(c)).collect();
            let total = |i: usize| s.iter().map(|x| u64::from(x.counts[i])).sum::<u64>();
            let (keep, r) = trailing_rows(&w, now, ue, &s, true);
            // Near now, expected_after is before `before`; otherwise no row
            // is a candidate.
            let near_now = r.expected_after < w.before;
            prop_assert_eq!(near_now, now - 2 * ue <= w.before);
            let first = (0..10).find(|&i| near_now && w.bucket_end(i) >= r.expected_after).unwrap_or(10);
            prop_assert!(keep >= first, "kept {} of {} rows before the candidates", keep, first);
            prop_assert!(first > 0 || keep == 10, "no baseline row, yet rows were dropped");
            let first = if first == 0 { 10 } else { first };
            let bad = |i: usize| i > 0 && (total(i) == 0 || total(i) < total(i - 1));
            for i in first..keep {
                prop_assert!(!bad(i), "kept row {} breaks the rule", i);
            }
            if keep < 10 {
                prop_assert!(bad(keep));
                prop_assert_eq!(r.trimmed_after, w.bucket_end(keep));
            } else {
                prop_assert_eq!(r.trimmed_after, w.before);
            }
            let mut cut_w = w;
            let mut cut_s = s.clone();
            cut(&mut cut_w, &mut cut_s, keep);
            prop_assert_eq!(cut_w.points, keep);
            if keep > 0 {
                prop_assert_eq!(cut_w.before, w.bucket_end(keep - 1));
            }
            prop_assert!(cut_s.iter().all(|x| x.values.len() == keep && x.counts.len() == keep));
        }
    }
}
