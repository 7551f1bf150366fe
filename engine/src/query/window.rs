//! Window planning: after/before/points/time_resampling into aligned
//! buckets, following Netdata's rules (spec `time-groups-and-windows.md`
//! section 1). Pure arithmetic; no storage access.

use crate::error::{EngineError, Result};
use crate::query::params::MAX_POINTS;

/// |v| up to this many seconds is relative to now (3 years).
pub const RELATIVE_MAX: i64 = 3 * 365 * 86_400;
pub const TEN_YEARS: i64 = 10 * 365 * 86_400;
const ONE_YEAR: i64 = 365 * 86_400;

#[derive(Debug, Clone, Copy)]
pub struct WindowInput {
    pub after: i64,
    pub before: i64,
    pub points: u64,
    /// Wall clock in seconds (the planner subtracts the still-collecting second).
    pub now: i64,
    /// Retention of the selected metrics, if any data exists.
    pub db_first: Option<i64>,
    pub db_last: Option<i64>,
    /// Smallest update_every of the selected metrics in the tier used for
    /// natural points.
    pub update_every: i64,
    pub natural_points: bool,
    pub virtual_points: bool,
    pub unaligned: bool,
    pub resampling: i64,
}

/// A planned window: `points` buckets of `view_every` seconds; bucket `i`
/// ends at `after + (i + 1) * view_every - granularity` and holds db points
/// ending in `(end - view_every, end]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub after: i64,
    pub before: i64,
    pub points: usize,
    /// G: the step at which the database is walked.
    pub granularity: i64,
    /// N: steps per bucket.
    pub group: i64,
    /// V = N x G.
    pub view_every: i64,
    /// For `average` with resampling: V / R (`None` when not resampling).
    pub resampling_divisor: Option<f64>,
    /// Whether either endpoint was relative.
    pub relative: bool,
}

impl Window {
    pub fn bucket_end(&self, i: usize) -> i64 {
        self.after + (i as i64 + 1) * self.view_every - self.granularity
    }
}

/// Whether a nonzero `after`/`before` is relative to now (at most 3 years).
pub fn is_relative(v: i64) -> bool {
    v.unsigned_abs() <= RELATIVE_MAX as u64
}

/// Bounds on what a request may ask, checked before any arithmetic on them:
/// `after`/`before` are epoch seconds or relative offsets, so nothing past
/// year 2286 (10^10 s) means anything; `time_resampling` beyond ten years
/// cannot fit a window either.
pub fn check_request_times(after: i64, before: i64, resampling: i64) -> Result<()> {
    const MAX_ABS: u64 = 10_000_000_000;
    for (name, v) in [("after", after), ("before", before)] {
        if v.unsigned_abs() > MAX_ABS {
            return Err(EngineError::param(
                name,
                format!("{v} is out of range: give epoch seconds or a relative offset within ±{MAX_ABS}"),
            ));
        }
    }
    if !(0..=TEN_YEARS).contains(&resampling) {
        return Err(EngineError::param(
            "time_resampling",
            format!("{resampling} is out of range: 0 to {TEN_YEARS} seconds"),
        ));
    }
    Ok(())
}

/// The window a query targets before any data is looked at: relative
/// values and zeros resolve against `now` (0 = now for `before`, -600 for
/// `after`). Metrics whose retention does not overlap it are not queried
/// (Netdata's query-target rule).
pub fn target_window(after: i64, before: i64, now: i64) -> (i64, i64) {
    let b = if before == 0 || is_relative(before) { now - before.abs() } else { before };
    let a = if after == 0 || is_relative(after) { b - if after == 0 { 600 } else { after.abs() } + 1 } else { after };
    (a.min(b), a.max(b))
}

/// Plans the window.
pub fn plan(inp: &WindowInput) -> Result<Window> {
    let now = inp.now - 1;
    let (mut after, mut before) = (inp.after, inp.before);
    let relative = (after != 0 && is_relative(after)) || is_relative(before);
    let mut before_is_db_end = false;
    // Literal zeros resolve against the data first.
    if after == 0 {
        if let Some(f) = inp.db_first {
            after = f;
        }
    }
    if before == 0 {
        if let Some(l) = inp.db_last {
            before = l.min(now);
            before_is_db_end = true;
        }
    }
    if !before_is_db_end && is_relative(before) {
        before = now - before.abs();
    }
    if after == 0 || is_relative(after) {
        let a = if after == 0 { 600 } else { after.abs() };
        after = before - a + 1;
    }
    if after > before {
        std::mem::swap(&mut after, &mut before);
    }
    if before > now {
        let shift = before - now;
        before -= shift;
        after -= shift;
    }
    after = after.clamp(now - TEN_YEARS, now + ONE_YEAR);
    before = before.clamp(now - TEN_YEARS, now + ONE_YEAR);

    let natural = !inp.virtual_points && (inp.points == 0 || inp.natural_points || relative);
    let g = if natural { inp.update_every.max(1) } else { 1 };
    before -= before.rem_euclid(g);
    after -= after.rem_euclid(g);
    let mut points = if inp.points == 0 { ((before - after + 1) / g).max(1) as u64 } else { inp.points };
    let mut duration = before - after;
    if duration < 0 {
        return Err(EngineError::param("after", "the window ends before it starts"));
    }
    let r = inp.resampling;
    if r > 0 {
        if r > duration {
            after = before - r;
            duration = r;
        }
        let rem = duration % r;
        if r > g && rem != 0 && rem > r / 10 {
            after -= r - rem;
            duration = before - after;
        }
    }
    let available = ((duration + 1) / g).max(1) as u64;
    points = points.min(available).clamp(1, MAX_POINTS);
    let mut n = (available / points).max(1);
    if available % points > points / 2 {
        n += 1;
    }
    let steps = (duration + g - 1) / g;
    if (points * n) < steps as u64 {
        points = available.div_ceil(n).max(1);
    }
    let mut resampling_divisor = None;
    if r > g {
        let rg = ((r + g - 1) / g) as u64;
        n = n.max(rg);
        if !n.is_multiple_of(rg) {
            n += rg - n % rg;
        }
        resampling_divisor = Some((n as f64 * g as f64) / r as f64);
    }
    let v = n as i64 * g;
    if !inp.unaligned && before.rem_euclid(v) != 0 {
        let rem = before.rem_euclid(v);
        before = if before_is_db_end { before - rem } else { before + v - rem };
    }
    let after = before - points as i64 * v + g;
    Ok(Window {
        after,
        before,
        points: points as usize,
        granularity: g,
        group: n as i64,
        view_every: v,
        resampling_divisor,
        relative,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(after: i64, before: i64, points: u64) -> WindowInput {
        WindowInput {
            after,
            before,
            points,
            now: 1_800_000_000,
            db_first: Some(1_699_000_000),
            db_last: Some(1_700_000_005),
            update_every: 1,
            natural_points: false,
            virtual_points: true,
            unaligned: false,
            resampling: 0,
        }
    }

    #[test]
    fn spec_worked_example() {
        let w = plan(&input(-600, 0, 60)).expect("plan");
        assert_eq!((w.view_every, w.points), (10, 60));
        assert_eq!(w.before, 1_700_000_000);
        assert_eq!(w.after, 1_699_999_401);
        assert_eq!(w.bucket_end(0), 1_699_999_410);
        assert_eq!(w.bucket_end(59), 1_700_000_000);
    }

    #[test]
    fn more_rows_than_asked_and_alignment_up() {
        // 600 s absolute window, 17 points: group 35, 18 rows (oracle rule 3).
        let w = plan(&input(1_795_441_920, 1_795_442_520, 17)).expect("plan");
        assert_eq!((w.group, w.points), (35, 18));
        assert_eq!(w.before % 35, 0);
        assert!(w.before >= 1_795_442_520);
        assert_eq!(w.after, w.before - 18 * 35 + 1);
    }

    #[test]
    fn points_zero_is_every_point_inclusive() {
        let w = plan(&input(1_795_441_920, 1_795_442_520, 0)).expect("plan");
        assert_eq!((w.points, w.view_every), (601, 1));
        assert_eq!((w.after, w.before), (1_795_441_920, 1_795_442_520));
    }

    #[test]
    fn unaligned_keeps_before() {
        let mut i = input(1_795_441_920, 1_795_442_520, 7);
        i.unaligned = true;
        let w = plan(&i).expect("plan");
        assert_eq!(w.before, 1_795_442_520);
    }

    #[test]
    fn resampling_makes_group_a_multiple() {
        let mut i = input(1_795_441_920, 1_795_442_520, 100);
        i.resampling = 60;
        let w = plan(&i).expect("plan");
        assert_eq!(w.view_every % 60, 0);
        assert_eq!(w.resampling_divisor, Some(w.view_every as f64 / 60.0));
    }

    #[test]
    fn future_windows_shift_back_to_now() {
        let w = plan(&input(1_800_000_100, 1_800_000_700, 60)).expect("plan");
        assert!(w.before <= 1_800_000_000 + w.view_every);
    }
}
