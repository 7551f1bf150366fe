//! The query path: request -> selection -> window plan -> tier plan ->
//! per-metric time grouping (parallel) -> group-by passes -> result.

pub mod body;
pub mod cardinality;
pub mod detailed;
pub mod execute;
pub mod group_by;
pub mod kernels;
pub mod params;
pub mod request;
pub mod result;
pub mod scan;
pub mod select;
pub mod summary;
pub mod tiering;
pub mod time_group;
pub mod window;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::model::MetricId;
use crate::query::execute::{Buckets, PointStats, PA_EMPTY};
use crate::query::group_by::{series_key, Accumulator, GroupIndex};
use crate::query::kernels::KernelParams;
use crate::query::request::{Aggregation, QueryRequest};
use crate::query::result::{QueryResult, Series, TierInfo};
use crate::query::scan::{Deadline, Job, ScanOutput, ScanPlan};
use crate::query::time_group::Method;
use crate::query::window::WindowInput;
use crate::storage::{Store, TIERS};

pub use request::ApiVersion;

/// Engine-side limits on a query.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Most metrics one query may touch.
    pub max_metrics: u64,
    /// Worker threads for the per-metric loop.
    pub threads: usize,
    /// How many storage tiers queries may use (1..=3), like Netdata's
    /// `storage tiers` setting.
    pub tiers: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_metrics: 200_000,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            tiers: TIERS,
        }
    }
}

/// Runs a query against a consistent view of catalog and store.
pub fn run(
    cat: &Catalog,
    store: &Store,
    req: &QueryRequest,
    now: i64,
    limits: &QueryLimits,
    cancel: Option<&AtomicBool>,
) -> Result<QueryResult> {
    let t0 = Instant::now();
    let deadline = Deadline { start: t0, timeout_ms: req.timeout_ms, cancel };
    deadline.check()?;
    window::check_request_times(req.after, req.before, req.time_resampling)?;
    let matching = select::Matching::from_options(req.options.match_ids, req.options.match_names);
    let mut sel = select::select(cat, &req.scope, &req.selectors, matching);
    if let Some(allowed) = &req.allowed_nodes {
        for s in [&req.scope, &req.selectors] {
            if let Some(n) = select::named_outside(cat, s, allowed) {
                return Err(EngineError::Forbidden(format!("node '{n}' is outside this token's allowlist")));
            }
        }
        let visible = select::nodes_by_id(cat, allowed);
        sel.scope &= &visible;
        sel.selected &= &visible;
    }
    select::narrow_to_room(cat, &mut sel, req.room.as_ref());
    let limit = limits.max_metrics;
    if sel.selected.len() > limit {
        return Err(EngineError::TooManyMetrics { matched: sel.selected.len(), limit });
    }
    let ntiers = limits.tiers.clamp(1, TIERS);
    let retention = |m: MetricId| -> Option<(i64, i64)> {
        let mut r: Option<(i64, i64)> = None;
        for t in 0..ntiers {
            if let Some(e) = store.extent(m, t) {
                let res = if t == 0 { 1 } else { store.resolution(m, t).unwrap_or(1) };
                let first = e.first - res + 1;
                r = Some(r.map_or((first, e.last), |(f, l)| (f.min(first), l.max(e.last))));
            }
        }
        r
    };
    let (qa, qb) = window::target_window(req.after, req.before, now);
    let metrics: Vec<MetricId> = sel
        .selected
        .iter()
        .filter(|&m| store.update_every(m).is_some() && retention(m).is_some_and(|(f, l)| f <= qb && l >= qa))
        .collect();
    let ue = metrics.iter().filter_map(|&m| store.update_every(m)).min().unwrap_or(1);

    // Retention of the selection, over the tiers in use.
    let (mut first, mut last) = (None::<i64>, None::<i64>);
    for (f, l) in metrics.iter().filter_map(|&m| retention(m)) {
        first = Some(first.map_or(f, |x: i64| x.min(f)));
        last = Some(last.map_or(l, |x: i64| x.max(l)));
    }
    let natural_ue = match req.tier {
        Some(t) => store.config().resolution(t, ue),
        None => ue,
    };
    let window = window::plan(&WindowInput {
        after: req.after,
        before: req.before,
        points: req.points,
        now,
        db_first: first,
        db_last: last,
        update_every: natural_ue,
        natural_points: req.options.natural_points,
        virtual_points: req.options.virtual_points,
        unaligned: req.options.unaligned,
        resampling: req.time_resampling,
    })?;
    if req.passes.len() > 1 && req.passes.iter().any(|p| p.aggregation == Aggregation::Percentage) {
        return Err(EngineError::param("aggregation", "percentage aggregation works in a single group-by pass"));
    }
    if let Some(t) = req.tier.filter(|&t| t >= ntiers) {
        return Err(EngineError::param(
            "tier",
            format!("tier {t} is not available: this server keeps {ntiers} tier(s)"),
        ));
    }
    let needs_raw = req.time_group.method.needs_raw();
    let tier = req.tier.unwrap_or_else(|| tiering::choose_tier(store, &metrics, ue, &window, ntiers, needs_raw));

    // Group assignment, in metric order (= first appearance).
    let pass0 = &req.passes[0];
    // These answers are percentages whatever the metric's units.
    let pct_units = req.options.percentage
        || req.options.anomaly_bit
        || matches!(req.time_group.method, Method::Cv | Method::CountIf)
        || pass0.aggregation == Aggregation::Percentage;
    let mut groups0 = GroupIndex::default();
    let metric_group: Vec<usize> =
        metrics.iter().map(|&m| groups0.assign(series_key(cat, m, pass0, pct_units))).collect();
    let prep_ms = t0.elapsed().as_secs_f64() * 1000.0;
    deadline.check()?;

    let t1 = Instant::now();
    let kp = KernelParams { points: window.points, group: window.group, resampling_divisor: window.resampling_divisor };
    kernels::build(&req.time_group, &kp)?; // validate before spawning workers
    let mut jobs: Vec<Job> =
        metrics.iter().zip(&metric_group).map(|(&m, &g)| Job { metric: m, group: Some(g), hidden: false }).collect();
    if req.needs_hidden() {
        // In scope but not selected: only denominators of percentages.
        for m in sel.excluded().iter().filter(|&m| retention(m).is_some_and(|(f, l)| f <= qb && l >= qa)) {
            let group = groups0.find(&series_key(cat, m, pass0, pct_units).id);
            jobs.push(Job { metric: m, group, hidden: true });
        }
    }
    let plan = ScanPlan {
        store,
        window,
        time_group: &req.time_group,
        tier,
        pinned: req.tier.is_some(),
        tiers: ntiers,
        // v2/v3 make samples absolute before grouping (spec 5.1); v1 (Netdata
        // 1.37, the oracle) makes the grouped values absolute instead.
        absolute: req.options.absolute && req.api != ApiVersion::V1,
        groups: groups0.len(),
        aggregation: pass0.aggregation,
        threads: limits.threads,
        deadline: &deadline,
        anomaly_bit: req.options.anomaly_bit,
    };
    let ScanOutput { selected: acc, hidden, tier_use, stats } = plan.run(&jobs)?;

    // Per-group raw statistics, and later passes.
    let mut group_stats = vec![PointStats::default(); groups0.len()];
    for (&m, &g) in metrics.iter().zip(&metric_group) {
        if let Some(st) = stats.get(&m) {
            group_stats[g].merge(st);
        }
    }
    let mut series = Vec::new();
    // `raw`: averages stay undivided, with contributor counts beside them,
    // so a merger can combine answers exactly (spec 4.8).
    let raw = req.options.raw;
    let mut scratch = Buckets::default();
    let final_pass;
    // Per queried metric, the id of the series it went into (`details`).
    let mut grouped_as: Vec<String> = Vec::new();
    if req.passes.len() > 1 {
        let pass1 = &req.passes[1];
        final_pass = pass1;
        // Map each pass-0 group to its pass-1 group via a representative metric.
        let mut rep = vec![None; groups0.len()];
        for (&m, &g) in metrics.iter().zip(&metric_group) {
            rep[g].get_or_insert(m);
        }
        let mut groups1 = GroupIndex::default();
        let map: Vec<usize> =
            rep.iter().map(|m| groups1.assign(series_key(cat, m.unwrap_or(0), pass1, pct_units))).collect();
        if req.options.details {
            grouped_as = metric_group.iter().map(|&g| groups1.keys[map[g]].id.clone()).collect();
        }
        let mut acc1 = Accumulator::new(groups1.len(), window.points, pass1.aggregation);
        let mut stats1 = vec![PointStats::default(); groups1.len()];
        let mut aggregated1 = vec![0u32; groups1.len()];
        for (g0, &g1) in map.iter().enumerate() {
            acc.group_buckets(g0, groups0.members[g0], &mut scratch);
            acc1.add(g1, &scratch);
            stats1[g1].merge(&group_stats[g0]);
            aggregated1[g1] += groups0.members[g0];
        }
        for (g, key) in groups1.keys.iter().enumerate() {
            acc1.finish(g, groups1.members[g], !raw, &mut scratch);
            series.push(Series {
                key: key.clone(),
                aggregated: aggregated1[g],
                values: scratch.values.clone(),
                flags: scratch.flags.clone(),
                arp: scratch.arp.clone(),
                counts: acc1.counts(g).to_vec(),
                db_stats: stats1[g],
            });
        }
    } else {
        final_pass = pass0;
        if req.options.details {
            grouped_as = metric_group.iter().map(|&g| groups0.keys[g].id.clone()).collect();
        }
        for (g, key) in groups0.keys.iter().enumerate() {
            if pass0.aggregation == Aggregation::Percentage {
                acc.finish_percentage(g, groups0.members[g], &hidden, &mut scratch);
            } else {
                acc.finish(g, groups0.members[g], !raw, &mut scratch);
            }
            series.push(Series {
                key: key.clone(),
                aggregated: groups0.members[g],
                values: scratch.values.clone(),
                flags: scratch.flags.clone(),
                arp: scratch.arp.clone(),
                counts: acc.counts(g).to_vec(),
                db_stats: group_stats[g],
            });
        }
    }
    if req.options.absolute && req.api == ApiVersion::V1 {
        for s in &mut series {
            s.values.iter_mut().for_each(|v| *v = v.abs());
        }
    }
    if req.options.percentage && !raw {
        to_percentages(&mut series, window.points, &hidden);
    }
    if req.options.nonzero && series.iter().any(|s| !all_zero(s)) {
        series.retain(|s| !all_zero(s));
    }
    // Never silent: say when a raw-needing time group ran over tier points.
    let approximation = needs_raw
        .then(|| (1..TIERS).filter(|&t| tier_use.points[t] > 0).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .map(|t| {
            format!(
                "'{}' over tier {:?} points uses each point's average, an approximation of the raw samples",
                req.time_group.name, t
            )
        });
    let folded = cardinality::fold(&mut series, req.cardinality_limit as usize, final_pass.aggregation);
    let query_ms = t1.elapsed().as_secs_f64() * 1000.0;

    let excluded = sel.excluded();
    let summary = summary::build(cat, &sel.selected, &excluded, &stats);
    let detailed = req.options.details.then(|| {
        let queried: HashMap<MetricId, String> = metrics.iter().copied().zip(grouped_as).collect();
        let each = sel.selected.iter().map(|m| detailed::MetricDetail {
            metric: m,
            retention: retention(m),
            grouped_as: queried.get(&m).cloned(),
        });
        detailed::build(cat, &summary, each)
    });
    let reg = &cat.registry;
    let mut db_units: Vec<String> = Vec::new();
    let mut titles: Vec<&str> = Vec::new();
    let mut chart_type = "line".to_string();
    for c in &summary.contexts {
        if let Some(ci) = reg.context_idx(&c.id) {
            let ctx = &reg.contexts[ci as usize];
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
    let units = if pct_units { "%".to_string() } else { db_units.first().cloned().unwrap_or_default() };
    let tiers: Vec<TierInfo> = (0..ntiers)
        .map(|t| {
            let (mut f, mut l) = (None::<i64>, None::<i64>);
            for &m in &metrics {
                if let Some(e) = store.extent(m, t) {
                    f = Some(f.map_or(e.first, |x| x.min(e.first)));
                    l = Some(l.map_or(e.last, |x| x.max(e.last)));
                }
            }
            TierInfo { tier: t, update_every: store.config().resolution(t, ue), first_entry: f, last_entry: l }
        })
        .collect();
    Ok(QueryResult {
        request: req.clone(),
        window,
        series,
        grouped_by: final_pass.keys.clone(),
        group_by_labels: final_pass.labels.clone(),
        summary,
        tier_use,
        tiers,
        update_every: ue,
        first_entry: first,
        last_entry: last,
        db_units,
        title,
        units,
        chart_type,
        generation: reg.generation,
        prep_ms,
        query_ms,
        chosen_tier: tier,
        folded,
        approximation,
        detailed,
    })
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

fn all_zero(s: &Series) -> bool {
    s.values.iter().zip(&s.flags).all(|(v, f)| f & PA_EMPTY != 0 || *v == 0.0)
}

#[cfg(test)]
mod parser_props;
#[cfg(test)]
mod tests;
