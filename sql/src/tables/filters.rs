//! Which filters a samples table takes over, and what they mean.
//!
//! - Metadata predicates (every column they read is one of
//!   [`META_COLUMNS`]) are `Exact`: resolved once per metric at plan time
//!   by evaluating the predicate on a one-row-per-metric batch, never per
//!   sample row. Any deterministic expression works (`=`, `IN`, `LIKE`,
//!   `OR`, functions).
//! - `ts` compared with a timestamp constant (`<`, `<=`, `>`, `>=`, `=`,
//!   `BETWEEN`) is `Exact`: point times are whole seconds, so a bound
//!   becomes a half-open range of seconds `(from_excl, to_incl]`.
//! - Everything else is left to DataFusion.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Int32Array, RecordBatch, StringArray, UInt32Array,
};
use datafusion::arrow::datatypes::{Int32Type, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result, ScalarValue};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use datafusion::physical_expr::create_physical_expr;
use roaring::RoaringBitmap;
use strata_engine::catalog::Catalog;
use strata_engine::model::MetricId;

use super::schema::{meta_fields, META_COLUMNS};

/// Point ends in `(from_excl, to_incl]`, epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from_excl: i64,
    pub to_incl: i64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange { from_excl: i64::MIN / 4, to_incl: i64::MAX / 4 };

    pub fn intersect(self, o: TimeRange) -> TimeRange {
        TimeRange { from_excl: self.from_excl.max(o.from_excl), to_incl: self.to_incl.min(o.to_incl) }
    }

    pub fn is_empty(&self) -> bool {
        self.to_incl <= self.from_excl
    }

    pub fn bounded(&self) -> bool {
        self.from_excl > TimeRange::ALL.from_excl && self.to_incl < TimeRange::ALL.to_incl
    }
}

/// How a filter is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Meta,
    Time,
    Other,
}

pub fn classify(e: &Expr) -> Kind {
    if time_bound(e).is_some() {
        return Kind::Time;
    }
    let cols = e.column_refs();
    if !cols.is_empty() && cols.iter().all(|c| META_COLUMNS.contains(&c.name.as_str())) && !e.is_volatile() {
        return Kind::Meta;
    }
    Kind::Other
}

fn is_ts(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == "ts")
}

/// A timestamp constant in nanoseconds.
fn ts_ns(e: &Expr) -> Option<i128> {
    let Expr::Literal(v, _) = e else { return None };
    let (v, mul): (i64, i128) = match v {
        ScalarValue::TimestampNanosecond(Some(v), _) => (*v, 1),
        ScalarValue::TimestampMicrosecond(Some(v), _) => (*v, 1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => (*v, 1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => (*v, 1_000_000_000),
        _ => return None,
    };
    Some(i128::from(v) * mul)
}

const NS: i128 = 1_000_000_000;

fn secs_floor(ns: i128) -> i64 {
    ns.div_euclid(NS).clamp(i128::from(TimeRange::ALL.from_excl), i128::from(TimeRange::ALL.to_incl)) as i64
}

fn secs_ceil(ns: i128) -> i64 {
    let f = secs_floor(ns);
    if ns.rem_euclid(NS) == 0 {
        f
    } else {
        f + 1
    }
}

fn cmp_range(op: Operator, ns: i128) -> Option<TimeRange> {
    let all = TimeRange::ALL;
    Some(match op {
        Operator::Gt => TimeRange { from_excl: secs_floor(ns), ..all },
        Operator::GtEq => TimeRange { from_excl: secs_ceil(ns) - 1, ..all },
        Operator::Lt => TimeRange { to_incl: secs_ceil(ns) - 1, ..all },
        Operator::LtEq => TimeRange { to_incl: secs_floor(ns), ..all },
        Operator::Eq if ns.rem_euclid(NS) == 0 => TimeRange { from_excl: secs_floor(ns) - 1, to_incl: secs_floor(ns) },
        Operator::Eq => TimeRange { from_excl: 0, to_incl: 0 },
        _ => return None,
    })
}

/// The range of `ts` a filter keeps, when it is a bound on `ts`.
pub fn time_bound(e: &Expr) -> Option<TimeRange> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            if is_ts(left) {
                cmp_range(*op, ts_ns(right)?)
            } else if is_ts(right) {
                cmp_range(op.swap()?, ts_ns(left)?)
            } else {
                None
            }
        }
        Expr::Between(Between { expr, negated: false, low, high }) if is_ts(expr) => {
            Some(cmp_range(Operator::GtEq, ts_ns(low)?)?.intersect(cmp_range(Operator::LtEq, ts_ns(high)?)?))
        }
        _ => None,
    }
}

/// The conjunction of the time filters among `filters`.
pub fn time_range(filters: &[Expr]) -> TimeRange {
    filters.iter().filter_map(time_bound).fold(TimeRange::ALL, TimeRange::intersect)
}

/// One metric's names, as the tables show them.
#[derive(Debug, Clone)]
pub struct MetricNames {
    pub id: MetricId,
    pub node: Arc<str>,
    pub context: Arc<str>,
    pub instance: Arc<str>,
    pub dimension: Arc<str>,
    pub labels: Arc<str>,
}

impl MetricNames {
    pub fn of(cat: &Catalog, m: MetricId) -> MetricNames {
        let reg = cat.registry();
        let inst = reg.instance_of(m);
        MetricNames {
            id: m,
            node: reg.node_of(m).id.as_str().into(),
            context: reg.context_of(m).id.as_str().into(),
            instance: inst.id.as_str().into(),
            dimension: reg.metric(m).dimension.as_str().into(),
            labels: serde_json::to_string(&inst.labels).unwrap_or_default().into(),
        }
    }
}

fn dict_of(values: Vec<&str>) -> Result<ArrayRef> {
    let keys = Int32Array::from_iter_values(0..values.len() as i32);
    Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(values)))?))
}

/// The metadata columns of `metrics`, one row each.
pub fn meta_batch(metrics: &[MetricNames]) -> Result<RecordBatch> {
    let col = |f: fn(&MetricNames) -> &str| dict_of(metrics.iter().map(f).collect());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(metrics.iter().map(|m| m.id))),
        col(|m| &m.node)?,
        col(|m| &m.context)?,
        col(|m| &m.instance)?,
        col(|m| &m.dimension)?,
        col(|m| &m.labels)?,
    ];
    Ok(RecordBatch::try_new(Arc::new(Schema::new(meta_fields())), columns)?)
}

fn unqualified(e: &Expr) -> Result<Expr> {
    Ok(e.clone()
        .transform(|e| {
            Ok(match e {
                Expr::Column(c) => Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
                e => Transformed::no(e),
            })
        })?
        .data)
}

/// The metrics among `candidates` (the visible ones, in id order) that
/// every metadata filter in `filters` keeps.
pub fn resolve_meta(cat: &Catalog, candidates: &RoaringBitmap, filters: &[Expr]) -> Result<Vec<MetricNames>> {
    let metrics: Vec<MetricNames> = candidates.iter().map(|m| MetricNames::of(cat, m)).collect();
    let meta: Vec<&Expr> = filters.iter().filter(|f| classify(f) == Kind::Meta).collect();
    if meta.is_empty() || metrics.is_empty() {
        return Ok(metrics);
    }
    let batch = meta_batch(&metrics)?;
    let schema = DFSchema::try_from(Schema::new(meta_fields()))?;
    let props = ExecutionProps::new();
    let mut keep = vec![true; metrics.len()];
    for f in meta {
        let phys = create_physical_expr(&unqualified(f)?, &schema, &props, &PhysicalPlanningContext::default())?;
        let out = phys.evaluate(&batch)?.into_array(batch.num_rows())?;
        let Some(b) = out.as_boolean_opt() else {
            return datafusion::common::plan_err!("filter {f} is not a boolean condition");
        };
        for (i, k) in keep.iter_mut().enumerate() {
            *k &= b.is_valid(i) && b.value(i);
        }
    }
    Ok(metrics.into_iter().zip(keep).filter(|(_, k)| *k).map(|(m, _)| m).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    fn ts(secs: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(Some(secs * 1_000_000_000), Some("UTC".into())))
    }

    #[test]
    fn ts_bounds_become_second_ranges() {
        assert_eq!(time_bound(&col("ts").gt(ts(100))).map(|r| r.from_excl), Some(100));
        assert_eq!(time_bound(&col("ts").gt_eq(ts(100))).map(|r| r.from_excl), Some(99));
        assert_eq!(time_bound(&col("ts").lt(ts(100))).map(|r| r.to_incl), Some(99));
        assert_eq!(time_bound(&ts(100).gt(col("ts"))).map(|r| r.to_incl), Some(99));
        let half = lit(ScalarValue::TimestampNanosecond(Some(100_500_000_000), None));
        assert_eq!(time_bound(&col("ts").gt_eq(half.clone())).map(|r| r.from_excl), Some(100));
        assert_eq!(time_bound(&col("ts").lt_eq(half)).map(|r| r.to_incl), Some(100));
        assert_eq!(classify(&col("node").eq(lit("a"))), Kind::Meta);
        assert_eq!(classify(&col("value").gt(lit(1.0))), Kind::Other);
        assert_eq!(classify(&col("node").eq(col("value"))), Kind::Other);
    }
}
