//! History only rollups hold (tier 0 dropped it, or it was imported):
//! there no answer can be exact, so strata answers as Netdata does, from
//! the coarsest rollup tier that still gives at least half the requested
//! points over the window (Netdata master's rule), falling back to the
//! finest tier holding data; per metric, coarser tiers fill older history
//! the chosen one no longer holds and finer ones its newest points.

use crate::model::MetricId;
use crate::query::window::Window;
use crate::storage::{StoreView, TIERS};

/// Read `tier` for point ends in `(from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub tier: usize,
    pub from: i64,
    pub to: i64,
}

/// The rollup tier (1..tiers) for the window, among those holding data in
/// `(lo, hi]` (point ends), the rollup-only history.
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
    let ue = metrics.iter().filter_map(|&m| store.update_every(m)).min().unwrap_or(1);
    (1..tiers)
        .rev()
        .find(|&t| span / store.config().resolution(t, ue) >= wanted && has_data(t))
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
    let mut out = Vec::new();
    fill(store, m, &prefs, lo, hi, &mut out);
    out
}

fn fill(store: &StoreView, m: MetricId, prefs: &[usize], lo: i64, hi: i64, out: &mut Vec<Part>) {
    let Some((&tier, rest)) = prefs.split_first() else { return };
    if lo >= hi {
        return;
    }
    let held = store.extent(m, tier).zip(store.resolution(m, tier));
    let Some((from, to)) = held.map(|(e, res)| (lo.max(e.first - res), hi.min(e.last))).filter(|(f, t)| f < t) else {
        return fill(store, m, rest, lo, hi, out);
    };
    fill(store, m, rest, lo, from, out);
    out.push(Part { tier, from, to });
    fill(store, m, rest, to, hi, out);
}
