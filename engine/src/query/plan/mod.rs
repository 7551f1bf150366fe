//! Stage 2 of the query path: from a [`Selection`] to a [`QueryPlan`] the
//! scan executes. The window (buckets), which metrics are queried, their
//! pass-0 groups, the limits, and the tier rule, all decided here, before
//! any sample is read.
//!
//! The tier rule (`tier` not given):
//! - While tier 0 holds a bucket's data, the answer equals the `tier: 0`
//!   answer for every time group. Rollups are only a faster way to the
//!   same number: a time group that merges points by their counts (see
//!   [`Method::merges_rollups`]) takes a rollup point only when its whole
//!   interval lies inside the bucket; tier 0 fills the ragged edges
//!   ([`layout`]). Time groups that need raw values read tier 0 alone, and
//!   so do buckets narrower than [`QueryLimits::rollup_min_bucket_points`]
//!   samples that do not consist of whole minutes, where a plain scan of
//!   tier 0 is the faster way to the same number.
//! - Only where rollups hold history tier 0 does not (it aged out, or it
//!   was imported: before [`Store::rollup_only_until`](crate::storage::Store::rollup_only_until)) does the answer
//!   come from rollup points partly outside their bucket, Netdata-style
//!   ([`aged`]), and the result says so ([`Approximation`](crate::query::result::Approximation)).
//! - `tier: N` reads tier N alone, each bucket taking the points that end
//!   in it.
//!
//! The property test beside this module (`plan/tests.rs`) checks the rule
//! end to end: automatic answers equal `tier: 0` answers over random data
//! and windows.

pub mod aged;
pub mod budget;
pub mod layout;
pub mod retention;

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::model::MetricId;
use crate::query::group::{series_key, GroupIndex};
use crate::query::kernels::{self, KernelParams};
use crate::query::request::{Aggregation, ApiVersion, QueryRequest};
use crate::query::select::Selection;
use crate::query::time_group::{Field, Method};
use crate::query::window::{self, Window, WindowInput};
use crate::query::QueryLimits;
use crate::storage::{StoreView, TIERS};
use layout::{Coverage, Layout};

/// One metric to scan and where its buckets go.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub metric: MetricId,
    pub update_every: i64,
    /// Output group, if any (a hidden metric may belong to none).
    pub group: Option<usize>,
    /// In scope but not selected: feeds only percentage denominators.
    pub hidden: bool,
    /// Index of its layout in [`QueryPlan::layouts`].
    pub layout: usize,
}

/// The layout of one update_every group.
#[derive(Debug, Clone)]
pub struct GroupLayout {
    pub layout: Layout,
    /// Before this, rollup-only history (see [`Store::rollup_only_until`](crate::storage::Store::rollup_only_until)).
    pub exact_after: Option<i64>,
    /// Buckets starting before this read that history ([`Coverage::aged_before`]).
    pub aged_before: Option<i64>,
    /// Where the metrics' statistics come from when the scan leaves them
    /// out of its bucket loop ([`layout::stats_pieces`]; time groups of
    /// sums and counts only).
    pub stats: Option<Vec<layout::Piece>>,
}

/// What one metric's scan reads.
pub struct MetricReads<'p> {
    pub layout: &'p Layout,
    /// Rollup-only history (approximate), oldest first, all before the
    /// layout's pieces; read by the buckets starting before `aged_before`.
    pub aged: Vec<aged::Part>,
    pub aged_before: i64,
    /// Pinned to a rollup tier: answers are approximate where a bucket
    /// cuts a rollup interval or the time group cannot merge points.
    pub pinned_rollup: bool,
    /// See [`GroupLayout::stats`]; `None` where this metric reads
    /// rollup-only history (its buckets then hold approximate points).
    pub stats: Option<&'p [layout::Piece]>,
}

/// Everything the scan needs, decided before it starts.
#[derive(Debug)]
pub struct QueryPlan {
    pub window: Window,
    /// Smallest update_every of the queried metrics (tier 0).
    pub update_every: i64,
    /// Selected metrics whose data overlaps the window, in id order.
    pub queried: Vec<MetricId>,
    /// Pass-0 group of each queried metric.
    pub metric_group: Vec<usize>,
    pub groups: GroupIndex,
    pub jobs: Vec<Job>,
    /// `tier: N`, when pinned.
    pub pinned: Option<usize>,
    /// One per update_every among the jobs.
    pub layouts: Vec<GroupLayout>,
    /// The rollup tier for rollup-only history (automatic tiers only).
    pub aged_tier: Option<usize>,
    pub kernel: KernelParams,
    /// Netdata's value of a rollup point for time groups that cannot merge points.
    pub field: Field,
    /// Values are made absolute before time grouping (v2/v3 rule).
    pub absolute: bool,
    /// Hidden metrics' grouped values are made absolute before they join a
    /// row's percentage total: v1 makes grouped values absolute, the
    /// selected ones in `finish`, the hidden ones here (Netdata 1.37 sums
    /// the absolute values of every chart dimension).
    pub absolute_hidden: bool,
    /// Time-group anomaly rates instead of values.
    pub anomaly_bit: bool,
    /// Tiers in use (the server's `storage tiers`).
    pub tiers: usize,
    /// Sample-time retention of the queried metrics.
    pub db_first: Option<i64>,
    pub db_last: Option<i64>,
    /// The answer is a percentage whatever the metrics' units.
    pub pct_units: bool,
}

impl QueryPlan {
    /// What metric `job` reads.
    pub fn reads_for(&self, store: &StoreView, job: &Job) -> MetricReads<'_> {
        let g = &self.layouts[job.layout];
        let aged = match (self.aged_tier, g.exact_after, g.aged_before) {
            (Some(t), Some(r), Some(before)) if self.window.after - self.window.granularity < before => {
                let (lo, hi) = self.scan_range(store.config().resolution(TIERS - 1, job.update_every));
                aged::parts(store, job.metric, t, self.tiers, lo, hi.min(r))
            }
            _ => Vec::new(),
        };
        // Statistics apart only where the buckets read exact samples alone.
        let stats = g.stats.as_deref().filter(|_| aged.is_empty());
        let aged_before = g.aged_before.unwrap_or(i64::MIN);
        MetricReads { layout: &g.layout, aged, aged_before, pinned_rollup: self.pinned_rollup(), stats }
    }

    /// `tier: N` pinned to a rollup tier.
    fn pinned_rollup(&self) -> bool {
        self.pinned.is_some_and(|t| t > 0)
    }

    /// Tiers some metric's scan may read: its layout's and its statistics',
    /// every rollup tier where history is rollup-only (aged parts take
    /// whichever tier holds it), and tier 0 under any exact rollup read
    /// (points a time group cannot merge are read from their samples). A
    /// superset of what [`crate::query::scan::metric::MetricScan::run`]
    /// loads per metric.
    pub fn tiers_read(&self) -> [bool; TIERS] {
        let mut need = [false; TIERS];
        for g in &self.layouts {
            need.iter_mut().zip(g.layout.tiers_read()).for_each(|(n, r)| *n |= r);
            for p in g.stats.iter().flatten() {
                need[usize::from(p.tier)] = true;
            }
        }
        if self.aged_tier.is_some() {
            need[1..].iter_mut().for_each(|n| *n = true);
        }
        with_sample_fallback(need, self.pinned_rollup())
    }

    /// Point ends the scan may touch: the window plus one point of `margin`
    /// on each side (the previous point of an interpolation, the point
    /// that closes the last bucket).
    pub fn scan_range(&self, margin: i64) -> (i64, i64) {
        let w = &self.window;
        (w.after - w.granularity - margin, w.before + margin)
    }
}

/// `need` (tiers read) plus tier 0 wherever an exact read takes rollup
/// points: a point the time group cannot merge (e.g. `min` over both
/// signs) is replaced by its samples, even where no tier-0 piece was
/// planned. A read pinned to a rollup tier never falls back.
pub fn with_sample_fallback(mut need: [bool; TIERS], pinned_rollup: bool) -> [bool; TIERS] {
    need[0] |= !pinned_rollup && need[1..].iter().any(|&n| n);
    need
}

/// The query target of a v1 query, which reads its chart (the scope) as
/// a unit, as Netdata 1.37 does: every selected dimension is queried while
/// the chart holds data within two update_every of the window (so a
/// dimension with no sample in the window is a column of nulls, and a
/// window just past the data is rows of nulls rather than a 404), and
/// relative windows end at the chart's last entry whatever `dimensions`
/// selects.
fn target_v1<'a>(store: &'a StoreView, sel: &Selection, ntiers: usize, (qa, qb): (i64, i64)) -> Target<'a> {
    let (mut first, mut last, mut ue) = (None::<i64>, None::<i64>, None::<i64>);
    for m in sel.scope.iter() {
        if let (Some((f, l)), Some(u)) = (retention::metric_range(store, m, ntiers), store.update_every(m)) {
            first = Some(first.map_or(f, |x| x.min(f)));
            last = Some(last.map_or(l, |x| x.max(l)));
            ue = Some(ue.map_or(u, |x| x.min(u)));
        }
    }
    let near = match (first, last, ue) {
        (Some(f), Some(l), Some(u)) => f - 2 * u <= qb && l + 2 * u >= qa,
        _ => false,
    };
    let in_target = move |m: MetricId| near && store.update_every(m).is_some();
    let queried = sel.selected.iter().filter(|&m| in_target(m)).collect();
    Target { queried, db: (first, last), in_target: Box::new(in_target) }
}

/// The query target: the metrics queried, the first and last entry
/// relative windows resolve against, and whether a (hidden) metric is in.
struct Target<'a> {
    queried: Vec<MetricId>,
    db: (Option<i64>, Option<i64>),
    in_target: Box<dyn Fn(MetricId) -> bool + 'a>,
}

/// Builds the plan.
pub fn build(
    cat: &Catalog,
    store: &StoreView,
    req: &QueryRequest,
    sel: &Selection,
    now: i64,
    limits: &QueryLimits,
) -> Result<QueryPlan> {
    let ntiers = limits.tiers.clamp(1, TIERS);
    if let Some(t) = req.tier.filter(|&t| t >= ntiers) {
        return Err(EngineError::param(
            "tier",
            format!("tier {t} is not available: this server keeps {ntiers} tier(s)"),
        ));
    }
    if req.passes.len() > 1 && req.passes.iter().any(|p| p.aggregation == Aggregation::Percentage) {
        return Err(EngineError::param("aggregation", "percentage aggregation works in a single group-by pass"));
    }
    let needs_hidden = req.needs_hidden();

    // The query target: metrics whose data overlaps the window.
    let (qa, qb) = window::target_window(req.after, req.before, now);
    let target = if req.api == ApiVersion::V1 {
        // Netdata 1.37 compares a relative `after` as `before - |after|`,
        // one second before the window's first (the target's `qa`).
        let nd_after = if req.after != 0 && window::is_relative(req.after) { qa - 1 } else { qa };
        target_v1(store, sel, ntiers, (nd_after, qb))
    } else {
        let range_in_window = move |m: MetricId| {
            let r = retention::metric_range(store, m, ntiers)?;
            (store.update_every(m).is_some() && r.0 <= qb && r.1 >= qa).then_some(r)
        };
        let ranges: Vec<(MetricId, (i64, i64))> =
            sel.selected.iter().filter_map(|m| range_in_window(m).map(|r| (m, r))).collect();
        let db = (ranges.iter().map(|&(_, (f, _))| f).min(), ranges.iter().map(|&(_, (_, l))| l).max());
        let queried = ranges.iter().map(|&(m, _)| m).collect();
        Target { queried, db, in_target: Box::new(move |m| range_in_window(m).is_some()) }
    };
    let Target { queried, db: (db_first, db_last), in_target } = target;
    let ue = queried.iter().filter_map(|&m| store.update_every(m)).min().unwrap_or(1);
    let natural_ue = match req.tier {
        Some(t) => store.config().resolution(t, ue),
        None => ue,
    };
    let window = window::plan(&WindowInput {
        after: req.after,
        before: req.before,
        points: req.points,
        now,
        db_first,
        db_last,
        update_every: natural_ue,
        natural_points: req.options.natural_points,
        virtual_points: req.options.virtual_points,
        unaligned: req.options.unaligned,
        resampling: req.time_resampling,
    })?;

    // Group assignment, in metric order (= first appearance).
    let pass0 = &req.passes[0];
    let method = req.time_group.method;
    let pct_units = req.options.percentage
        || req.options.anomaly_bit
        || matches!(method, Method::Cv | Method::CountIf)
        || pass0.aggregation == Aggregation::Percentage;
    let mut groups = GroupIndex::default();
    let metric_group: Vec<usize> =
        queried.iter().map(|&m| groups.assign(series_key(cat, m, pass0, pct_units))).collect();
    let kernel =
        KernelParams { points: window.points, group: window.group, resampling_divisor: window.resampling_divisor };
    kernels::build(&req.time_group, &kernel)?; // bad options fail here, before any scan

    // One layout per update_every (one in all when pinned).
    let mut layouts: Vec<GroupLayout> = Vec::new();
    let mut layout_of: BTreeMap<i64, usize> = BTreeMap::new();
    let rollups = method.merges_rollups() && ntiers > 1;
    // Statistics apart from the buckets: only where the buckets read exact
    // samples and the time group needs their sums alone.
    let separate_stats = method.sums_only() && !req.options.anomaly_bit && req.tier.is_none_or(|t| t == 0);
    let mut layout_for = |ue: i64| -> usize {
        *layout_of.entry(ue).or_insert_with(|| {
            let cov = coverage(store, ue, ntiers);
            // Narrow buckets with ragged edges read tier 0 whole: faster
            // than whole minutes plus two edges each, and the same answer.
            // Buckets of whole minutes have no edges and keep the minutes.
            let wide = window.view_every >= limits.rollup_min_bucket_points * cov.res[0];
            let whole_minutes = window.points > 0
                && window.view_every % cov.res[1] == 0
                && window.bucket_end(0).rem_euclid(cov.res[1]) == 0;
            let (layout, exact_after, aged_before) = match req.tier {
                Some(tier) => (Layout::pinned(&window, tier), None, None),
                None => (
                    Layout::exact(&window, &cov, rollups && (wide || whole_minutes)),
                    cov.exact_after,
                    cov.aged_before(),
                ),
            };
            let stats = match separate_stats {
                true => layout::stats_pieces(&window, &cov, req.tier == Some(0), &layout),
                false => None,
            };
            layouts.push(GroupLayout { layout, exact_after, aged_before, stats });
            layouts.len() - 1
        })
    };
    let mut job = |m: MetricId, group: Option<usize>, hidden: bool| {
        let update_every = store.update_every(m).unwrap_or(1);
        Job { metric: m, update_every, group, hidden, layout: layout_for(update_every) }
    };
    let mut jobs: Vec<Job> = queried.iter().zip(&metric_group).map(|(&m, &g)| job(m, Some(g), false)).collect();
    if needs_hidden {
        let hidden: RoaringBitmap = sel.excluded();
        for m in hidden.iter().filter(|&m| in_target(m)) {
            jobs.push(job(m, groups.find(&series_key(cat, m, pass0, pct_units).id), true));
        }
    }
    // Rollup-only history the window's buckets read: those starting
    // before a group's `aged_before`, up to its `exact_after`.
    let reaches = |g: &GroupLayout| g.aged_before.is_some_and(|b| window.after - window.granularity < b);
    let aged_until = layouts.iter().filter(|g| reaches(g)).filter_map(|g| g.exact_after).max();
    let aged_tier = aged_until.and_then(|r| {
        let lo = window.after - window.granularity - store.config().resolution(TIERS - 1, ue);
        aged::choose_tier(store, &queried, &window, ntiers, lo, r)
    });
    let plan = QueryPlan {
        window,
        update_every: ue,
        queried,
        metric_group,
        groups,
        jobs,
        pinned: req.tier,
        layouts,
        aged_tier,
        kernel,
        field: if req.options.anomaly_bit { Field::AnomalyRate } else { method.field() },
        // v2/v3 make samples absolute before grouping (spec 5.1); v1 (Netdata
        // 1.37, the oracle) makes the grouped values absolute instead.
        absolute: req.options.absolute && req.api != ApiVersion::V1,
        absolute_hidden: req.options.absolute && req.api == ApiVersion::V1,
        anomaly_bit: req.options.anomaly_bit,
        tiers: ntiers,
        db_first,
        db_last,
        pct_units,
    };
    let estimated = budget::estimate(&plan, method, budget::threads(&plan, limits.threads), req.passes.len());
    if estimated > limits.max_memory_bytes {
        return Err(EngineError::OverMemoryBudget {
            estimated_mib: estimated.div_ceil(1 << 20),
            limit_mib: limits.max_memory_bytes >> 20,
            groups: plan.groups.len() as u64,
            points: plan.window.points as u64,
        });
    }
    Ok(plan)
}

/// What the tiers of update_every `ue` hold.
fn coverage(store: &StoreView, ue: i64, tiers: usize) -> Coverage {
    let cfg = store.config();
    Coverage {
        res: std::array::from_fn(|t| cfg.resolution(t, ue)),
        horizon: std::array::from_fn(|t| if t < tiers { store.horizon(ue, t) } else { None }),
        tiers,
        // With tier 0 alone everything it holds is exact.
        exact_after: if tiers > 1 { store.rollup_only_until(ue) } else { None },
    }
}

#[cfg(test)]
mod tests;
