//! History only rollups hold (tier 0 dropped it, or it was imported):
//! answered from the coarsest rollup tier whose points lie whole in the
//! buckets (exact for sums, counts, minima and maxima), else as Netdata
//! does, from the coarsest that still gives at least half the requested
//! points over the window (Netdata master's rule), falling back to the
//! finest tier holding data; per metric, coarser tiers fill older history
//! the chosen one no longer holds and finer ones its newest points.
//!
//! Invariant: a tier fills only history that the tiers before it in the
//! preference order no longer hold (retention), never time outside the
//! metric's life: a tier whose first point holds the metric's first
//! sample holds everything before it (nothing), and one whose last point
//! holds its last sample everything after. Otherwise an hour point around
//! the first minute would stand in for the empty time before it.
//! "Holds the first sample" reads the metric's first sample time as the
//! tiers count it ([`metric_range`]: never before the true one); it needs
//! a finer tier's retention to cut on a coarser tier's point boundary (a
//! span of tier 1 is a whole number of hours), so that a finer tier cut
//! by retention never starts inside the hour that holds the metric's
//! first sample. Rollups written at other times (`write_rollup`, used by
//! the demo's import and tests) keep to the same grid.

use crate::model::MetricId;
use crate::query::plan::retention::metric_range;
use crate::query::window::Window;
use crate::storage::{StoreView, TIERS};

/// Read `tier` for point ends in `(from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub tier: usize,
    pub from: i64,
    pub to: i64,
}

/// Most points of a tier a bucket takes for the sake of whole points:
/// one coarser point's worth. Wider buckets (a month in 300 points) keep
/// Netdata's rule, which reads the coarser tier, cut, and says so.
const WHOLE_POINTS_MAX: i64 = 60;

/// The rollup tier (1..tiers) for the window, among those holding data in
/// `(lo, hi]` (point ends), the rollup-only history: the coarsest whose
/// points lie whole in the buckets for every queried update_every, at
/// most [`WHOLE_POINTS_MAX`] a bucket (its sums, counts, minima and maxima
/// then give those of the buckets' samples exactly), else the coarsest
/// that gives at least half the requested points (Netdata master's rule:
/// there, hour points cut by buckets of 30 minutes stood in for samples
/// that whole minutes still held).
pub fn choose_tier(
    store: &StoreView,
    metrics: &[MetricId],
    w: &Window,
    tiers: usize,
    lo: i64,
    hi: i64,
) -> Option<usize> {
    let tiers = tiers.min(TIERS);
    let has_data =
        |tier: usize| metrics.iter().any(|&m| store.extent(m, tier).is_some_and(|e| e.last > lo && e.first <= hi));
    let span = (w.before - w.after + w.granularity).max(1);
    let wanted = (w.points as i64 + 1) / 2;
    let mut every: Vec<i64> = metrics.iter().filter_map(|&m| store.update_every(m)).collect();
    every.sort_unstable();
    every.dedup();
    let ue = every.first().copied().unwrap_or(1);
    let res = |t: usize, ue: i64| store.config().resolution(t, ue);
    let whole = |t: usize| {
        every.iter().all(|&ue| {
            let r = res(t, ue);
            w.view_every % r == 0 && w.view_every / r <= WHOLE_POINTS_MAX && w.bucket_end(0).rem_euclid(r) == 0
        })
    };
    (1..tiers)
        .rev()
        .find(|&t| whole(t) && has_data(t))
        .or_else(|| (1..tiers).rev().find(|&t| span / res(t, ue) >= wanted && has_data(t)))
        .or_else(|| (1..tiers).find(|&t| has_data(t)))
}

/// Which rollup tier serves which part of `(lo, hi]` (point ends) for
/// metric `m`: the chosen tier where it holds data, then the nearest other
/// tiers (coarser first) for what it does not, oldest part first.
pub fn parts(store: &StoreView, m: MetricId, tier: usize, tiers: usize, lo: i64, hi: i64) -> Vec<Part> {
    let tiers = tiers.min(TIERS);
    if tier == 0 || tier >= tiers {
        return Vec::new();
    }
    let mut prefs: Vec<usize> = (1..tiers).collect();
    prefs.sort_by_key(|&t| (t.abs_diff(tier), std::cmp::Reverse(t)));
    let life = metric_range(store, m, tiers);
    let mut out = Vec::new();
    fill(&Held { store, m, life }, &prefs, lo, hi, &mut out);
    out
}

/// What [`fill`] reads of metric `m`: its points per tier, and its first
/// and last sample times.
struct Held<'a> {
    store: &'a StoreView,
    m: MetricId,
    life: Option<(i64, i64)>,
}

impl Held<'_> {
    /// The point ends `tier` answers for, `(from, to]`: from its first
    /// point's start to its last point's end, or without end on a side
    /// where that point holds the metric's first (last) sample.
    fn span(&self, tier: usize) -> Option<(i64, i64)> {
        let (e, res) = self.store.extent(self.m, tier).zip(self.store.resolution(self.m, tier))?;
        let (start, end) = (e.first - res, e.last);
        // Sample times are never before the true first nor after the true
        // last (retention::metric_range): a point holding them holds these.
        let first_held = self.life.is_some_and(|(first, _)| start < first);
        let last_held = self.life.is_some_and(|(_, last)| end >= last);
        Some((if first_held { i64::MIN } else { start }, if last_held { i64::MAX } else { end }))
    }
}

fn fill(held: &Held<'_>, prefs: &[usize], lo: i64, hi: i64, out: &mut Vec<Part>) {
    let Some((&tier, rest)) = prefs.split_first() else { return };
    if lo >= hi {
        return;
    }
    let Some((from, to)) = held.span(tier).map(|(f, t)| (lo.max(f), hi.min(t))).filter(|(f, t)| f < t) else {
        return fill(held, rest, lo, hi, out);
    };
    fill(held, rest, lo, from, out);
    out.push(Part { tier, from, to });
    fill(held, rest, to, hi, out);
}
