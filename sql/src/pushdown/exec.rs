//! The engine side of [`super`]: a one-off table whose single partition
//! runs the engine's per-metric scan ([`MetricScan`]) for each planned
//! time group, in parallel over the metrics like a JSON query, and emits
//! one row per metric and non-empty bucket.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt32Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_datafusion_err, Result};
use datafusion::datasource::TableType;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use strata_engine::query::kernels;
use strata_engine::query::plan::{budget, Job, QueryPlan};
use strata_engine::query::result::{PointStats, TierUse, PA_EMPTY};
use strata_engine::query::scan::metric::{MetricOut, MetricScan, Values};
use strata_engine::query::scan::{run_chunks, Buckets, Deadline};
use strata_engine::query::time_group::TimeGroup;
use strata_engine::query::QueryLimits;
use strata_engine::storage::{StoreView, TIERS};

use crate::tables::engine_err;
use crate::tables::filters::MetricNames;

/// What one output column holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A metadata column (`node`, `metric_id`, ...).
    Meta(String),
    /// The bucket's end.
    Bucket,
    /// The value of the i-th planned time group.
    Value(usize),
}

/// Everything the computation needs, planned under the read locks.
pub struct Prepared {
    view: StoreView,
    metrics: Vec<MetricNames>,
    groups: Vec<TimeGroup>,
    plans: Vec<QueryPlan>,
    limits: QueryLimits,
    cancel: Arc<AtomicBool>,
}

impl Prepared {
    pub fn new(
        view: StoreView,
        metrics: Vec<MetricNames>,
        groups: Vec<TimeGroup>,
        plans: Vec<QueryPlan>,
        limits: QueryLimits,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        Prepared { view, metrics, groups, plans, limits, cancel }
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        let w = self.plans.first().map(|p| p.window);
        write!(f, "metrics={}, time_groups={names:?}", self.metrics.len())?;
        if let Some(w) = w {
            write!(f, ", window=[{}, {}], points={}, every={}s", w.after, w.before, w.points, w.view_every)?;
        }
        Ok(())
    }
}

/// Per planned time group, per queried metric: its buckets.
type Answers = Vec<Vec<(u32, Buckets)>>;

impl Prepared {
    /// Runs the engine's scan for every time group (no lock held).
    fn compute(&self) -> Result<Answers> {
        let deadline =
            Deadline { start: Instant::now(), timeout_ms: self.limits.timeout_ms, cancel: Some(&self.cancel) };
        let mut out = Vec::with_capacity(self.plans.len());
        for (plan, tg) in self.plans.iter().zip(&self.groups) {
            let threads = budget::threads(plan, self.limits.threads);
            let parts = run_chunks(
                &plan.jobs,
                threads,
                |jobs| self.scan(plan, tg, jobs, &deadline),
                || exec_datafusion_err!("a scan thread panicked"),
            );
            let mut all = Vec::with_capacity(plan.jobs.len());
            for p in parts {
                all.extend(p?);
            }
            out.push(all);
        }
        Ok(out)
    }

    fn scan(
        &self,
        plan: &QueryPlan,
        tg: &TimeGroup,
        jobs: &[Job],
        deadline: &Deadline<'_>,
    ) -> Result<Vec<(u32, Buckets)>> {
        let kernel = kernels::build(tg, &plan.kernel).map_err(engine_err)?;
        let values = Values::of(plan, tg.method);
        let mut ex = MetricScan::new(&self.view, plan.window, values, kernel);
        let mut approx = vec![false; plan.window.points];
        let mut approx_tiers = [false; TIERS];
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs.iter().filter(|j| !j.hidden) {
            deadline.check().map_err(engine_err)?;
            let reads = plan.reads_for(&self.view, job);
            let (mut stats, mut tiers, mut buckets) = (PointStats::default(), TierUse::default(), Buckets::default());
            ex.run(
                job,
                &reads,
                &mut MetricOut {
                    buckets: &mut buckets,
                    stats: &mut stats,
                    tiers: &mut tiers,
                    approximate: &mut approx,
                    approximate_tiers: &mut approx_tiers,
                },
                || deadline.check().is_err(),
            );
            out.push((job.metric, buckets));
        }
        deadline.check().map_err(engine_err)?;
        Ok(out)
    }

    /// The rows: one per metric and bucket with a value.
    fn batch(&self, schema: &SchemaRef, outputs: &[Output], answers: &Answers) -> Result<RecordBatch> {
        let Some(first) = answers.first() else { return Ok(RecordBatch::new_empty(schema.clone())) };
        let Some(w) = self.plans.first().map(|p| p.window) else { return Ok(RecordBatch::new_empty(schema.clone())) };
        let names: std::collections::HashMap<u32, &MetricNames> = self.metrics.iter().map(|m| (m.id, m)).collect();
        // (answer index, bucket) of every row.
        let rows: Vec<(usize, usize)> = first
            .iter()
            .enumerate()
            .flat_map(|(j, (_, b))| (0..w.points).filter(move |&i| b.flags[i] & PA_EMPTY == 0).map(move |i| (j, i)))
            .collect();
        let meta = |j: usize| -> Result<&MetricNames> {
            names.get(&first[j].0).copied().ok_or_else(|| exec_datafusion_err!("metric {} not planned", first[j].0))
        };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(outputs.len());
        for (o, field) in outputs.iter().zip(schema.fields()) {
            let col: ArrayRef = match o {
                Output::Meta(name) if name == "metric_id" => {
                    Arc::new(UInt32Array::from_iter_values(rows.iter().map(|&(j, _)| first[j].0)))
                }
                Output::Meta(name) => {
                    let mut v = Vec::with_capacity(rows.len());
                    for &(j, _) in &rows {
                        let m = meta(j)?;
                        v.push(match name.as_str() {
                            "node" => m.node.clone(),
                            "context" => m.context.clone(),
                            "instance" => m.instance.clone(),
                            "dimension" => m.dimension.clone(),
                            _ => m.labels.clone(),
                        });
                    }
                    let s: ArrayRef = Arc::new(StringArray::from_iter_values(v.iter().map(|s| s.as_ref())));
                    cast(&s, field.data_type())?
                }
                Output::Bucket => {
                    let tz = match field.data_type() {
                        DataType::Timestamp(_, tz) => tz.clone(),
                        _ => None,
                    };
                    let ts = TimestampNanosecondArray::from_iter_values(
                        rows.iter().map(|&(_, i)| w.bucket_end(i) * 1_000_000_000),
                    );
                    Arc::new(ts.with_timezone_opt(tz))
                }
                Output::Value(g) => {
                    let a = answers.get(*g).ok_or_else(|| exec_datafusion_err!("time group {g} not computed"))?;
                    Arc::new(Float64Array::from_iter(rows.iter().map(|&(j, i)| {
                        let b = &a[j].1;
                        (b.flags[i] & PA_EMPTY == 0).then(|| b.values[i])
                    })))
                }
            };
            columns.push(col);
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// The one-off table the rule scans instead of the aggregate.
#[derive(Debug)]
pub struct BucketsTable {
    schema: SchemaRef,
    prepared: Arc<Prepared>,
    outputs: Arc<Vec<Output>>,
}

impl BucketsTable {
    pub fn new(schema: SchemaRef, prepared: Prepared, outputs: Vec<Output>) -> Self {
        BucketsTable { schema, prepared: Arc::new(prepared), outputs: Arc::new(outputs) }
    }
}

#[async_trait]
impl TableProvider for BucketsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        Ok(Arc::new(BucketsExec::new(self.schema.clone(), self.prepared.clone(), self.outputs.clone(), projection)?))
    }
}

#[derive(Debug)]
pub struct BucketsExec {
    full: SchemaRef,
    schema: SchemaRef,
    prepared: Arc<Prepared>,
    outputs: Arc<Vec<Output>>,
    projection: Vec<usize>,
    props: Arc<PlanProperties>,
}

impl BucketsExec {
    fn new(
        full: SchemaRef,
        prepared: Arc<Prepared>,
        outputs: Arc<Vec<Output>>,
        projection: Vec<usize>,
    ) -> Result<Self> {
        let schema = Arc::new(full.project(&projection)?);
        let props = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(BucketsExec { full, schema, prepared, outputs, projection, props: Arc::new(props) })
    }
}

impl DisplayAs for BucketsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StrataBucketsExec: {:?}", self.prepared)
    }
}

impl ExecutionPlan for BucketsExec {
    fn name(&self) -> &str {
        "StrataBucketsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, _partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let (full, prepared, outputs, projection) =
            (self.full.clone(), self.prepared.clone(), self.outputs.clone(), self.projection.clone());
        let fut = async move {
            // The engine's scan is blocking, parallel work: off the async workers.
            let join = tokio::task::spawn_blocking(move || -> Result<RecordBatch> {
                let answers = prepared.compute()?;
                prepared.batch(&full, &outputs, &answers)?.project(&projection).map_err(Into::into)
            });
            join.await.map_err(|e| exec_datafusion_err!("bucket scan failed: {e}"))?
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures_util::stream::once(fut))))
    }
}
