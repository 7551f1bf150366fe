//! Stage 4 of the query path: the group-by passes (spec 5). The scan
//! already folded each metric into its pass-0 group; a second pass folds
//! those groups into the groups of its keys. Averages are divided once, by
//! the final pass's contributor count (Netdata); `raw` leaves them whole.

pub mod accumulator;
pub mod key;

pub use accumulator::{combine, Accumulator};
pub use key::{series_key, GroupIndex, SeriesKey};

use crate::catalog::Catalog;
use crate::query::plan::QueryPlan;
use crate::query::request::{Aggregation, GroupByPass, QueryRequest};
use crate::query::result::{PointStats, Series};
use crate::query::scan::{Buckets, ScanOutput};

/// The output series and the pass that shaped them.
pub struct Grouped<'r> {
    pub series: Vec<Series>,
    pub final_pass: &'r GroupByPass,
    /// Per queried metric, the id of the series it went into (`details`).
    pub grouped_as: Vec<String>,
}

/// Runs the passes over the scan's pass-0 accumulators.
pub fn run<'r>(cat: &Catalog, req: &'r QueryRequest, plan: &QueryPlan, scan: &ScanOutput) -> Grouped<'r> {
    let (groups0, metric_group) = (&plan.groups, &plan.metric_group);
    let acc = &scan.selected;
    let mut group_stats = vec![PointStats::default(); groups0.len()];
    for (m, &g) in plan.queried.iter().zip(metric_group) {
        if let Some(st) = scan.stats.get(m) {
            group_stats[g].merge(st);
        }
    }
    let raw = req.options.raw;
    let mut scratch = Buckets::default();
    let mut series = Vec::new();
    let pass0 = &req.passes[0];
    let Some(pass1) = req.passes.get(1) else {
        for (g, key) in groups0.keys.iter().enumerate() {
            if pass0.aggregation == Aggregation::Percentage {
                acc.finish_percentage(g, groups0.members[g], &scan.hidden, &mut scratch);
            } else {
                acc.finish(g, groups0.members[g], !raw, &mut scratch);
            }
            series.push(Series::from_buckets(key.clone(), groups0.members[g], &scratch, acc.counts(g), group_stats[g]));
        }
        let grouped_as = if req.options.details {
            metric_group.iter().map(|&g| groups0.keys[g].id.clone()).collect()
        } else {
            Vec::new()
        };
        return Grouped { series, final_pass: pass0, grouped_as };
    };
    // Map each pass-0 group to its pass-1 group via a representative metric.
    let mut rep = vec![None; groups0.len()];
    for (&m, &g) in plan.queried.iter().zip(metric_group) {
        rep[g].get_or_insert(m);
    }
    let mut groups1 = GroupIndex::default();
    let map: Vec<usize> =
        rep.iter().map(|m| groups1.assign(series_key(cat, m.unwrap_or(0), pass1, plan.pct_units))).collect();
    let grouped_as = if req.options.details {
        metric_group.iter().map(|&g| groups1.keys[map[g]].id.clone()).collect()
    } else {
        Vec::new()
    };
    let mut acc1 = Accumulator::new(groups1.len(), plan.window.points, pass1.aggregation);
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
        series.push(Series::from_buckets(key.clone(), aggregated1[g], &scratch, acc1.counts(g), stats1[g]));
    }
    Grouped { series, final_pass: pass1, grouped_as }
}
