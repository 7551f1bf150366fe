//! Stage 5 of the query path: from grouped series to the
//! format-independent [`QueryResult`]: live-edge trimming, percentages, `nonzero`,
//! cardinality folding, the summary lists, titles and units, per-tier
//! retention, and whether any bucket is approximate.

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::model::MetricId;
use crate::query::group::{Accumulator, Grouped};
use crate::query::plan::{retention, QueryPlan};
use crate::query::request::{ApiVersion, QueryRequest};
use crate::query::result::{Approximation, QueryResult, Series, TierInfo, PA_EMPTY};
use crate::query::scan::ScanOutput;
use crate::query::select::Selection;
use crate::query::window::Window;
use crate::query::{cardinality, detailed, summary, trim};
use crate::storage::{StoreView, TIERS};

/// Timings measured by the earlier stages.
pub struct Timings {
    pub prep_ms: f64,
    pub query_ms: f64,
}

/// What the earlier stages decided, by reference.
pub struct Inputs<'a> {
    pub cat: &'a Catalog,
    pub store: &'a StoreView,
    pub req: &'a std::sync::Arc<QueryRequest>,
    pub sel: &'a Selection,
    pub plan: &'a QueryPlan,
    /// The query's wall clock, for the live-edge trimming.
    pub now: i64,
}

/// Builds the result.
pub fn run(inp: Inputs<'_>, scan: ScanOutput, grouped: Grouped<'_>, timings: Timings) -> QueryResult {
    let Inputs { cat, store, req, sel, plan, now } = inp;
    let Grouped { mut series, final_pass, grouped_as } = grouped;
    let mut window = plan.window;
    // Before anything reads the rows: the trailing rows still being
    // collected go (spec 4.3), for every later step and format alike.
    let partial_trimming = (req.api != ApiVersion::V1).then(|| {
        // Over every queried metric, percentage denominators included, as Netdata takes it.
        let max_ue = plan.jobs.iter().map(|j| j.update_every).max().unwrap_or(plan.update_every);
        let (rows, report) = trim::trailing_rows(&window, now, max_ue, &series, !req.options.raw);
        trim::cut(&mut window, &mut series, rows);
        report
    });
    let w = &window;
    if req.options.absolute && req.api == ApiVersion::V1 {
        for s in &mut series {
            s.values.iter_mut().for_each(|v| *v = v.abs());
        }
    }
    if req.options.percentage && !req.options.raw {
        to_percentages(&mut series, w.points, &scan.hidden);
    }
    // v1 (Netdata 1.37) hides a dimension whose stored values it read are
    // all 0 (or empty), whatever its time group made of them; v2/v3 one
    // whose returned values are.
    let zero = |s: &Series| if req.api == ApiVersion::V1 { all_zero_read(s) } else { all_zero(s) };
    if req.options.nonzero && series.iter().any(|s| !zero(s)) {
        series.retain(|s| !zero(s));
    }
    let approximation = approximation(store, plan, w, &scan);
    let folded = cardinality::fold(&mut series, req.cardinality_limit as usize, final_pass.aggregation);

    let excluded = sel.excluded();
    let summary = summary::build(cat, &sel.selected, &excluded, &scan.stats);
    let detailed = req.options.details.then(|| {
        let queried: HashMap<MetricId, String> = plan.queried.iter().copied().zip(grouped_as).collect();
        let each = sel.selected.iter().map(|m| detailed::MetricDetail {
            metric: m,
            retention: retention::metric_range(store, m, plan.tiers),
            grouped_as: queried.get(&m).cloned(),
        });
        detailed::build(cat, &summary, each)
    });
    let reg = cat.registry();
    let mut db_units: Vec<String> = Vec::new();
    let mut titles: Vec<&str> = Vec::new();
    let mut chart_type = "line".to_string();
    for c in &summary.contexts {
        if let Some(ci) = reg.context_idx(&c.id) {
            let ctx = &reg.contexts()[ci as usize];
            if !db_units.contains(&ctx.units) {
                db_units.push(ctx.units.clone());
            }
            if titles.is_empty() {
                chart_type = ctx.chart_type.clone();
            }
            titles.push(&ctx.title);
        }
    }
    let title = match titles.len() {
        0 => String::new(),
        1 => titles[0].to_string(),
        _ => format!(
            "Chart for contexts: {}",
            summary.contexts.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    let units = if plan.pct_units { "%".to_string() } else { db_units.first().cloned().unwrap_or_default() };
    let mut held = [None::<(i64, i64)>; TIERS];
    for &m in &plan.queried {
        for (h, r) in held.iter_mut().zip(retention::tier_ranges(store, m, plan.tiers)) {
            if let Some((a, b)) = r {
                *h = Some(h.map_or((a, b), |(f, l)| (f.min(a), l.max(b))));
            }
        }
    }
    let tiers: Vec<TierInfo> = (0..plan.tiers)
        .map(|t| TierInfo {
            tier: t,
            update_every: store.config().resolution(t, plan.update_every),
            first_entry: held[t].map(|r| r.0),
            last_entry: held[t].map(|r| r.1),
        })
        .collect();
    let chosen_tier =
        plan.pinned.unwrap_or_else(|| (0..TIERS).rev().find(|&t| scan.tier_use.points[t] > 0).unwrap_or(0));
    QueryResult {
        request: std::sync::Arc::clone(req),
        window,
        series,
        grouped_by: final_pass.keys.clone(),
        group_by_labels: final_pass.labels.clone(),
        summary,
        tier_use: scan.tier_use,
        tiers,
        update_every: plan.update_every,
        first_entry: plan.db_first,
        last_entry: plan.db_last,
        db_units,
        title,
        units,
        chart_type,
        generation: reg.generation(),
        prep_ms: timings.prep_ms,
        query_ms: timings.query_ms,
        chosen_tier,
        folded,
        approximation,
        detailed,
        partial_trimming,
        db_latest: None,
    }
}

/// Which buckets are approximate, and why.
/// Only the rows `w` kept count.
fn approximation(store: &StoreView, plan: &QueryPlan, w: &Window, scan: &ScanOutput) -> Option<Approximation> {
    let flagged: Vec<usize> = (0..w.points).filter(|&i| scan.approx.buckets[i]).collect();
    let (&first, &last) = (flagged.first()?, flagged.last()?);
    let tiers: Vec<usize> = (0..TIERS).filter(|&t| scan.approx.tiers[t]).collect();
    let reason = match plan.pinned {
        Some(t) => format!(
            "tier {t} was pinned: where a bucket cuts its {} s points, or the time group needs raw samples, whole points stand in for the samples",
            store.config().resolution(t, plan.update_every)
        ),
        None => "tier 0 no longer holds this history: rollup points stand in for its samples".to_string(),
    };
    Some(Approximation { tiers, buckets: flagged.len(), first: w.bucket_end(first), last: w.bucket_end(last), reason })
}

/// `options=percentage`: each value as a percentage of its row's total over
/// the non-empty series (a zero total counts as 1, as Netdata does).
fn to_percentages(series: &mut [Series], points: usize, hidden: &Accumulator) {
    let total_group = hidden.groups - 1;
    for i in 0..points {
        let hidden_total = hidden.value_at(total_group, i).unwrap_or(0.0);
        let total: f64 =
            series.iter().filter(|s| s.flags[i] & PA_EMPTY == 0).map(|s| s.values[i]).sum::<f64>() + hidden_total;
        let total = if total == 0.0 { 1.0 } else { total };
        for s in series.iter_mut() {
            s.values[i] = s.values[i] * 100.0 / total;
        }
    }
}

fn all_zero_read(s: &Series) -> bool {
    let d = &s.db_stats;
    d.count == 0 || (d.min == 0.0 && d.max == 0.0)
}

fn all_zero(s: &Series) -> bool {
    s.values.iter().zip(&s.flags).all(|(v, f)| f & PA_EMPTY != 0 || *v == 0.0)
}
