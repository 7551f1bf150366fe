//! What a metric holds in sample times, per tier: `db.first_entry`,
//! `db.last_entry`, `db.per_tier` and the query target read these, never
//! span or rollup boundaries.
//!
//! Tier 0 knows its sample times. A rollup point knows only its interval
//! `(end - res, end]` and how many samples it holds. Where every rollup
//! point equals the tier-0 samples of its interval (after
//! [`Store::rollup_only_until`]) and tier 0 still holds them, its first
//! and last samples are tier 0's, so all tiers report the same true times.
//! Where tier 0 no longer holds a rollup's first (or last) interval, or
//! for rollup-only history, the point's count places the sample: a first
//! interval is taken to run without a gap from the first sample to the
//! interval's end (or to the metric's last sample, if that lies inside
//! it), a last interval from the interval's first slot to the last sample,
//! all on the update_every grid. That is the true time for a metric that
//! starts (or stops) inside an interval with no gap there; a gap in that
//! one interval moves it by the gap's length, never out of the interval.

use super::row::Run;
use super::store::{Extent, Store};
use super::tier::{StorageConfig, TIERS};
use crate::model::MetricId;

/// The facts [`range`] reads of one metric.
pub struct Facts<'a> {
    pub ue: i64,
    pub extents: &'a [Option<Extent>; TIERS],
    pub rollup_only_until: Option<i64>,
    pub cfg: &'a StorageConfig,
}

/// Bounds on the first and last sample the metric holds in `tier`:
/// `count_at(end)` is the samples behind its point ending at `end` in
/// `tier` (read only where tier 0 no longer tells). Where a rollup's count
/// places them, `first` is never before the true first sample (its samples
/// lie in distinct slots no later than the anchor it counts back from) and
/// `last` never after the true last, so the earliest first and latest last
/// over the tiers are the closest ([`crate::query::plan::retention`]); for
/// a tier whose only point holds part of one interval they can cross.
pub fn range(f: &Facts<'_>, tier: usize, count_at: impl Fn(i64) -> Option<u32>) -> Option<(i64, i64)> {
    let e = f.extents[tier]?;
    if tier == 0 {
        return Some((e.first, e.last));
    }
    let (ue, res) = (f.ue, f.cfg.resolution(tier, f.ue));
    let exact = |end: i64| f.rollup_only_until.is_none_or(|r| end > r);
    let raw = f.extents[0];
    let inside = |t: i64, end: i64| end - res < t && t <= end;
    // Tier 0's first sample is this tier's where it lies in this tier's
    // first interval and tier 0 holds that interval whole (its spans are
    // whole intervals, and retention drops whole spans).
    let whole = f.cfg.span_secs(0, ue) % res == 0;
    let first = match raw {
        Some(r) if exact(e.first) && whole && inside(r.first, e.first) => r.first,
        // The metric's true last sample, where it lies in this interval,
        // ends the run counted back; else the interval's end does.
        Some(r) if inside(r.last, e.first) => counted_first(r.last, e.first, res, ue, count_at(e.first)),
        _ => counted_first(e.first, e.first, res, ue, count_at(e.first)),
    };
    let last = match raw {
        Some(r) if exact(e.last) => r.last.clamp(e.last - res + ue, e.last),
        Some(r) if inside(r.first, e.last) => counted_last(r.first, e.last, res, ue, count_at(e.last)),
        _ => counted_last(e.last - res + ue, e.last, res, ue, count_at(e.last)),
    };
    Some((first, last))
}

/// The first sample of a rollup point ending at `end` (resolution `res`,
/// update_every `ue`) that holds `count` samples, the last of them at
/// `last`, taken to run without a gap: `count` slots back from `last`,
/// never before the interval's first slot `end - res + ue` (tier-0 slots
/// lie on multiples of `ue`, and so do rollup ends). Unknown count: that
/// first slot.
pub fn counted_first(last: i64, end: i64, res: i64, ue: i64, count: Option<u32>) -> i64 {
    let earliest = end - res + ue;
    count.map_or(earliest, |c| (last - (i64::from(c) - 1) * ue).clamp(earliest, end))
}

/// The last sample of a rollup point ending at `end` that holds `count`
/// samples, the first of them at `first` (the interval's first slot,
/// unless the metric's first sample lies inside it), taken to run without
/// a gap: `count` slots on from `first`, never past `end`. Unknown count:
/// the interval's end.
pub fn counted_last(first: i64, end: i64, res: i64, ue: i64, count: Option<u32>) -> i64 {
    let earliest = end - res + ue;
    count.map_or(end, |c| (first + (i64::from(c) - 1) * ue).clamp(earliest, end))
}

impl Store {
    /// Bounds on the first and last sample time metric `m` holds in each
    /// tier (see [`range`]), given its `extents`.
    pub fn sample_ranges(
        &self,
        m: MetricId,
        ue: i64,
        extents: &[Option<Extent>; TIERS],
    ) -> [Option<(i64, i64)>; TIERS] {
        let facts = Facts { ue, extents, rollup_only_until: self.rollup_only_until(ue), cfg: self.config() };
        let count_at = |t: usize, end: i64| match extents[t] {
            Some(e) if e.first == end => self.first_count(m, ue, t, end),
            _ => self.point_at(m, ue, t, end, |r| r.counts(0).0),
        };
        std::array::from_fn(|t| range(&facts, t, |end| count_at(t, end)))
    }

    /// [`Store::sample_ranges`] of metric `m`, reading its extents.
    pub fn sample_ranges_of(&self, m: MetricId) -> [Option<(i64, i64)>; TIERS] {
        let Some(ue) = self.update_every(m) else { return [None; TIERS] };
        let extents = std::array::from_fn(|t| self.extent(m, t));
        self.sample_ranges(m, ue, &extents)
    }

    /// `read` of metric `m`'s point ending at `end` in `tier` (the run of
    /// that one point), if it holds one that is not a gap.
    pub fn point_at<T>(&self, m: MetricId, ue: i64, tier: usize, end: i64, read: impl Fn(&Run<'_>) -> T) -> Option<T> {
        let mut out = None;
        self.for_each_run(m, ue, tier, end - 1, end, |r| {
            if r.len > 0 && r.is_valid(0) {
                out = Some(read(&r));
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_place_samples_inside_their_interval_on_the_grid() {
        // A minute of update_every 5 ending at 300 holds slots 5..=300.
        assert_eq!(counted_first(300, 300, 300, 5, Some(4)), 285);
        assert_eq!(counted_last(5, 300, 300, 5, Some(4)), 20);
        // The metric's last sample inside the first interval.
        assert_eq!(counted_first(200, 300, 300, 5, Some(4)), 185);
        // Unknown counts: the interval's first slot, its end.
        assert_eq!(counted_first(300, 300, 300, 5, None), 5);
        assert_eq!(counted_last(5, 300, 300, 5, None), 300);
        // A count larger than the interval holds stays inside it.
        assert_eq!(counted_first(300, 300, 300, 5, Some(1_000)), 5);
        assert_eq!(counted_last(5, 300, 300, 5, Some(1_000)), 300);
    }
}
