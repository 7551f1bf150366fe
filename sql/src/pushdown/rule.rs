//! The optimizer rule of [`super`]: matching and planning.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, Projection, TableScan, TableScanBuilder};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use roaring::RoaringBitmap;
use strata_engine::query::plan;
use strata_engine::query::request::{Aggregation, ApiVersion, GroupByKey, GroupByPass, QueryRequest};
use strata_engine::query::scan::metric::read_range;
use strata_engine::query::select::Selection;
use strata_engine::query::time_group::TimeGroup;
use strata_engine::storage::StoreView;

use super::exec::{BucketsTable, Output, Prepared};
use crate::functions::aggregate::{scalar_text, NdFunction};
use crate::functions::bucket;
use crate::tables::filters::{classify, resolve_meta, time_range, Kind};
use crate::tables::samples::SamplesTable;
use crate::tables::schema::Tier;
use crate::tables::{engine_err, Source};

/// See [`super`].
#[derive(Debug)]
pub struct BucketPushdown {
    src: Source,
}

impl BucketPushdown {
    pub fn new(src: Source) -> Self {
        BucketPushdown { src }
    }
}

/// The table name of the rewritten scan.
const TABLE: &str = "__nd_buckets";

impl OptimizerRule for BucketPushdown {
    fn name(&self) -> &str {
        "strata_bucket_pushdown"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = &plan else { return Ok(Transformed::no(plan)) };
        match self.try_rewrite(agg)? {
            Some(p) => Ok(Transformed::yes(p)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// A literal integer.
fn int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => Some(*v),
        Expr::Literal(ScalarValue::Int32(Some(v)), _) => Some(i64::from(*v)),
        _ => None,
    }
}

/// Whether `e` is `value` (`Some(false)`) or `abs(value)` (`Some(true)`):
/// the JSON API's signed and absolute (v2/v3 grouping) inputs.
fn value_input(e: &Expr) -> Option<bool> {
    match e {
        Expr::Column(c) if c.name == "value" => Some(false),
        Expr::ScalarFunction(f) if f.func.name() == "abs" => match f.args.as_slice() {
            [Expr::Column(c)] if c.name == "value" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// The aggregates the engine can compute: the time group, and whether it
/// takes absolute values.
fn time_group_of(e: &Expr) -> Option<(TimeGroup, bool)> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    };
    let Expr::AggregateFunction(af) = e else { return None };
    let p = &af.params;
    if p.distinct || p.filter.is_some() || !p.order_by.is_empty() || p.null_treatment.is_some() {
        return None;
    }
    let absolute = value_input(p.args.first()?)?;
    let func = match af.func.name() {
        "avg" if p.args.len() == 1 => NdFunction::Average,
        "sum" if p.args.len() == 1 => NdFunction::Sum,
        name => NdFunction::from_name(name)?,
    };
    let param = match p.args.get(1) {
        None => None,
        Some(Expr::Literal(v, _)) if !v.is_null() => Some(scalar_text(v)),
        Some(_) => return None,
    };
    if p.args.len() > 2 {
        return None;
    }
    func.time_group(param).ok().map(|tg| (tg, absolute))
}

impl BucketPushdown {
    fn try_rewrite(&self, agg: &Aggregate) -> Result<Option<LogicalPlan>> {
        let LogicalPlan::TableScan(scan) = agg.input.as_ref() else { return Ok(None) };
        if scan.fetch.is_some() || scan.filters.iter().any(|f| classify(f) == Kind::Other) {
            return Ok(None);
        }
        let provider = source_as_provider(&scan.source)?;
        let Some(table) = provider.downcast_ref::<SamplesTable>() else { return Ok(None) };
        if table.tier != Tier::Raw {
            return Ok(None);
        }
        // Groups: metric keys and exactly one bucket.
        let mut outputs = Vec::new();
        let mut step = None;
        for g in &agg.group_expr {
            match g {
                Expr::Column(c) if crate::tables::schema::META_COLUMNS.contains(&c.name.as_str()) => {
                    outputs.push(Output::Meta(c.name.clone()))
                }
                Expr::ScalarFunction(f) if f.func.name() == bucket::NAME && step.is_none() => match f.args.as_slice() {
                    [s, Expr::Column(c)] if c.name == "ts" && int(s).is_some_and(|s| s > 0) => {
                        step = int(s);
                        outputs.push(Output::Bucket);
                    }
                    _ => return Ok(None),
                },
                _ => return Ok(None),
            }
        }
        let Some(step) = step else { return Ok(None) };
        let has = |n: &str| outputs.iter().any(|o| matches!(o, Output::Meta(m) if m == n));
        if !has("metric_id") && !["node", "context", "instance", "dimension"].iter().all(|n| has(n)) {
            return Ok(None);
        }
        let mut groups = Vec::new();
        for a in &agg.aggr_expr {
            let Some(tg) = time_group_of(a) else { return Ok(None) };
            let idx = groups.iter().position(|g| g == &tg).unwrap_or_else(|| {
                groups.push(tg);
                groups.len() - 1
            });
            outputs.push(Output::Value(idx));
        }
        let Some(prepared) = self.prepare(&scan.filters, step, groups)? else { return Ok(None) };
        Ok(Some(rewritten(agg, scan, prepared, outputs)?))
    }

    /// Resolves the metrics and plans the window per time group, under
    /// the engine's read locks; `None` when the pushdown does not apply.
    fn prepare(&self, filters: &[Expr], step: i64, groups: Vec<(TimeGroup, bool)>) -> Result<Option<Prepared>> {
        let engine = &self.src.engine;
        let limits = engine.config().limits;
        let mut range = time_range(filters);
        let st = engine.read().map_err(engine_err)?;
        let visible = self.src.visible(&st.catalog);
        let metrics = resolve_meta(&st.catalog, &visible, filters)?;
        let ids: RoaringBitmap = metrics.iter().map(|m| m.id).collect();
        let mut view = StoreView::of(&st.store, ids.iter());
        // Unbounded sides end on the bucket edges around the data.
        let exts: Vec<_> = ids.iter().filter_map(|m| view.extent(m, 0)).collect();
        if !range.bounded() {
            let (Some(first), Some(last)) = (exts.iter().map(|e| e.first).min(), exts.iter().map(|e| e.last).max())
            else {
                return Ok(None);
            };
            if range.from_excl <= crate::tables::filters::TimeRange::ALL.from_excl {
                range.from_excl = (first - 1).div_euclid(step) * step;
            }
            if range.to_incl >= crate::tables::filters::TimeRange::ALL.to_incl {
                // Past the last timestamp: not pushed down (DataFusion's
                // own evaluation reports it).
                let Some(end) = bucket::bucket_end(last, step) else { return Ok(None) };
                range.to_incl = end;
            }
        }
        let points = (range.to_incl - range.from_excl) / step;
        let aligned = range.from_excl.rem_euclid(step) == 0 && range.to_incl.rem_euclid(step) == 0;
        if !aligned || points < 1 || points as u64 > strata_engine::query::params::MAX_POINTS {
            return Ok(None);
        }
        if ids.iter().any(|m| view.update_every(m).is_some_and(|ue| step % ue != 0)) {
            return Ok(None);
        }
        let sel = Selection { scope: ids.clone(), selected: ids };
        let now = engine.now().max(range.to_incl + 2);
        let mut plans = Vec::new();
        for (tg, absolute) in &groups {
            let mut req = QueryRequest::new(ApiVersion::V3);
            req.options.absolute = *absolute;
            req.after = range.from_excl + 1;
            req.before = range.to_incl;
            req.points = points as u64;
            req.time_group = tg.clone();
            req.passes = vec![GroupByPass {
                keys: vec![GroupByKey::Dimension, GroupByKey::Instance, GroupByKey::Node],
                labels: Vec::new(),
                aggregation: Aggregation::Average,
            }];
            req.finish();
            let p = plan::build(&st.catalog, &view, &req, &sel, now, &limits).map_err(engine_err)?;
            let w = p.window;
            if p.aged_tier.is_some()
                || w.after != range.from_excl + 1
                || w.before != range.to_incl
                || w.view_every != step
            {
                return Ok(None);
            }
            plans.push(p);
        }
        let Some(w) = plans.first().map(|p| p.window) else { return Ok(None) };
        let cfg = *st.store.config();
        view.attach_open(&st.store, |t, ue| read_range(&w, cfg.resolution(t, ue)));
        drop(st);
        let groups = groups.into_iter().map(|(tg, _)| tg).collect();
        Ok(Some(Prepared::new(view, metrics, groups, plans, limits, self.src.cancel.clone())))
    }
}

/// The aggregate replaced by a scan of the engine's answer, under a
/// projection that restores the aggregate's column names.
fn rewritten(agg: &Aggregate, scan: &TableScan, prepared: Prepared, outputs: Vec<Output>) -> Result<LogicalPlan> {
    let _ = scan;
    let fields: Vec<Field> = agg
        .schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| Field::new(format!("c{i}"), f.data_type().clone(), f.is_nullable()))
        .collect();
    let table = BucketsTable::new(Arc::new(Schema::new(fields)), prepared, outputs);
    let source = provider_as_source(Arc::new(table));
    let scan = LogicalPlan::TableScan(TableScanBuilder::new(TABLE, source).build()?);
    let exprs: Vec<Expr> = agg
        .schema
        .iter()
        .enumerate()
        .map(|(i, (q, f))| {
            Expr::Column(Column::new(Some(TABLE), format!("c{i}"))).alias_qualified(q.cloned(), f.name())
        })
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(scan))?))
}
