//! Tier choice and per-metric multi-tier plans (spec 2.4, 2.5).

use crate::model::MetricId;
use crate::query::execute::Part;
use crate::query::window::Window;
use crate::storage::{Store, TIERS};

/// The coarsest tier whose points still give at least half the requested
/// points over the window and that holds data for it (Netdata master's rule);
/// otherwise the finest tier holding data. Time groups that higher tiers can
/// only approximate (`needs_raw`) use tier 0 wherever it holds the window
/// (strata's rule; older history still falls through to coarser tiers).
pub fn choose_tier(store: &Store, metrics: &[MetricId], ue: i64, w: &Window, tiers: usize, needs_raw: bool) -> usize {
    let has_data = |tier: usize| {
        metrics
            .iter()
            .any(|&m| store.extent(m, tier).is_some_and(|e| e.last > w.after - w.view_every && e.first <= w.before))
    };
    if needs_raw && has_data(0) {
        return 0;
    }
    let span = (w.before - w.after + w.granularity).max(1);
    let wanted = (w.points as i64 + 1) / 2;
    for tier in (1..tiers.min(TIERS)).rev() {
        let res = store.config().resolution(tier, ue);
        if span / res >= wanted && has_data(tier) {
            return tier;
        }
    }
    (0..tiers.min(TIERS)).find(|&t| has_data(t)).unwrap_or(0)
}

/// Which tiers serve which part of `(lo, hi]` for metric `m`: the chosen
/// tier where it has data, coarser tiers for older history it no longer
/// holds, finer tiers for the newest points it has not completed yet.
/// With `pinned` only that tier is read.
pub fn metric_parts(
    store: &Store,
    m: MetricId,
    tier: usize,
    pinned: bool,
    tiers: usize,
    lo: i64,
    hi: i64,
) -> Vec<Part> {
    let tiers = tiers.min(TIERS);
    let Some(main) = store.extent(m, tier) else {
        if pinned {
            return Vec::new();
        }
        // The chosen tier has nothing for this metric: use the nearest that does.
        return (0..tiers)
            .filter(|&t| t != tier)
            .min_by_key(|&t| t.abs_diff(tier))
            .filter(|&t| store.extent(m, t).is_some())
            .map(|t| metric_parts(store, m, t, false, tiers, lo, hi))
            .unwrap_or_default();
    };
    if pinned {
        return vec![Part { tier, from: lo, to: hi }];
    }
    let Some(res) = store.resolution(m, tier) else { return Vec::new() };
    let mut parts = Vec::new();
    // Older history from coarser tiers, newest of them last.
    let mut boundary = main.first - res;
    let mut older = Vec::new();
    for t in tier + 1..tiers {
        if boundary <= lo {
            break;
        }
        if let (Some(e), Some(r)) = (store.extent(m, t), store.resolution(m, t)) {
            let to = boundary.min(e.last);
            let from = lo.max(e.first - r);
            if from < to {
                older.push(Part { tier: t, from, to });
                boundary = from;
            }
        }
    }
    parts.extend(older.into_iter().rev());
    parts.push(Part { tier, from: lo.max(main.first - res), to: hi.min(main.last) });
    // Newer points from finer tiers.
    let mut boundary = main.last;
    for t in (0..tier).rev() {
        if boundary >= hi {
            break;
        }
        if let Some(e) = store.extent(m, t) {
            let to = hi.min(e.last);
            if boundary < to {
                parts.push(Part { tier: t, from: boundary, to });
                boundary = to;
            }
        }
    }
    parts.retain(|p| p.from < p.to);
    parts
}
