//! `SamplesExec`: the leaf plan node of the samples tables. Each partition
//! walks its share of the metrics, one metric at a time in time order,
//! and emits one batch per (metric, span). Sealed segments hold codec rows
//! (format 3): the slice a query reads is decoded once into Arrow arrays;
//! plain segments of format 2 are zero-copy slices of their Arrow arrays.
//! `ts` is a slice of one array per span shape and the metadata columns
//! are one-entry dictionaries over a shared zero keys buffer; the open
//! head (copy-on-write blocks) is copied.
//! A row is a stored sample: slices with gaps are filtered (one copy),
//! so `value` is never null and `count(*)` counts samples.
//! No lock is held: everything comes from the plan-time [`StoreView`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt32Array,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Int32Type, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_datafusion_err, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use strata_engine::storage::row::AggColumns;
use strata_engine::storage::segment::{Layout, Segment};
use strata_engine::storage::{RowData, Run, StoreView};

use super::filters::{MetricNames, TimeRange};
use super::schema::Tier;

/// Everything a scan reads, decided at plan time.
pub struct ScanData {
    pub view: StoreView,
    /// The metrics to scan and their update_every.
    pub metrics: Vec<(MetricNames, i64)>,
    pub tier: Tier,
    pub range: TimeRange,
    /// Indices into `schema` to produce.
    pub projection: Vec<usize>,
    /// The table's full schema.
    pub schema: SchemaRef,
    pub cancel: Arc<AtomicBool>,
}

#[derive(Debug)]
pub struct SamplesExec {
    data: Arc<ScanData>,
    schema: SchemaRef,
    parts: Vec<Vec<usize>>,
    props: Arc<PlanProperties>,
    limit: Option<usize>,
}

impl fmt::Debug for ScanData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanData({} metrics)", self.metrics.len())
    }
}

impl SamplesExec {
    pub fn new(data: Arc<ScanData>, partitions: usize, limit: Option<usize>) -> Result<Self> {
        let schema = Arc::new(data.schema.project(&data.projection)?);
        let n = partitions.clamp(1, data.metrics.len().max(1));
        let mut parts = vec![Vec::new(); n];
        for i in 0..data.metrics.len() {
            parts[i * n / data.metrics.len().max(1)].push(i);
        }
        let props = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(n),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(SamplesExec { data, schema, parts, props: Arc::new(props), limit })
    }
}

impl DisplayAs for SamplesExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let r = self.data.range;
        write!(f, "SamplesExec: table={}, metrics={}", self.data.tier.table(), self.data.metrics.len())?;
        if r.bounded() {
            write!(f, ", ts=({}, {}]", r.from_excl, r.to_incl)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for SamplesExec {
    fn name(&self) -> &str {
        "SamplesExec"
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

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let metrics = self.parts.get(partition).cloned().unwrap_or_default();
        let iter = PartitionIter {
            data: self.data.clone(),
            schema: self.schema.clone(),
            metrics: metrics.into(),
            pending: VecDeque::new(),
            zeros: Int32Array::from(Vec::<i32>::new()),
            ts: HashMap::new(),
            left: self.limit.unwrap_or(usize::MAX),
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures_util::stream::iter(iter))))
    }
}

/// One partition's batches, produced lazily metric by metric.
struct PartitionIter {
    data: Arc<ScanData>,
    schema: SchemaRef,
    metrics: VecDeque<usize>,
    pending: VecDeque<RecordBatch>,
    /// Shared all-zero dictionary keys, sliced per batch.
    zeros: Int32Array,
    /// `ts` per span shape (first end, resolution, points), sliced per batch.
    ts: HashMap<(i64, i64, usize), ArrayRef>,
    /// Rows still wanted under a pushed-down limit.
    left: usize,
}

impl Iterator for PartitionIter {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pending.is_empty() {
            if self.left == 0 {
                return None;
            }
            let i = self.metrics.pop_front()?;
            if self.data.cancel.load(Ordering::Relaxed) {
                return Some(Err(exec_datafusion_err!("the query was cancelled")));
            }
            if let Err(e) = self.metric(i) {
                return Some(Err(e));
            }
        }
        let b = self.pending.pop_front()?;
        self.left = self.left.saturating_sub(b.num_rows());
        Some(Ok(b))
    }
}

/// The columns of one (metric, span) slice.
enum Cols {
    Raw { values: ArrayRef, anomaly: ArrayRef },
    Agg { sum: ArrayRef, min: ArrayRef, max: ArrayRef, count: ArrayRef, anomaly_count: ArrayRef },
}

fn child(seg: &Segment, name: &str) -> Result<ArrayRef> {
    seg.batch
        .column_by_name(name)
        .and_then(|c| c.as_fixed_size_list_opt())
        .map(|l| l.values().clone())
        .ok_or_else(|| exec_datafusion_err!("sealed segment without column {name}"))
}

/// Point indices `a..b` of a run starting at `first` with `len` points of
/// `res` seconds whose end lies in `(from_excl, to_incl]`.
fn index_range(first: i64, res: i64, len: usize, r: TimeRange) -> (usize, usize) {
    let last = first + (len as i64 - 1) * res;
    let a = if r.from_excl < first { 0 } else { ((r.from_excl - first).div_euclid(res) + 1).min(len as i64) as usize };
    let b = if r.to_incl >= last {
        len
    } else if r.to_incl < first {
        0
    } else {
        ((r.to_incl - first).div_euclid(res) + 1) as usize
    };
    (a, b.max(a))
}

fn nulls_from(bits: Option<strata_engine::storage::bits::BitSlice<'_>>, n: usize) -> Option<NullBuffer> {
    bits.map(|b| NullBuffer::new(BooleanBuffer::from_iter((0..n).map(|i| b.get(i)))))
}

/// A copy of a run: an open one (the head is small and copy-on-write) or
/// the decoded range of an encoded sealed row.
fn copy_run(run: &Run<'_>) -> Cols {
    let n = run.len;
    match run.data {
        RowData::Encoded(row) => {
            let mut values = Vec::with_capacity(n);
            row.decode_into(&mut values);
            let anomaly = match row.anomaly_bits() {
                Some(b) => BooleanArray::from_iter((0..n).map(|i| Some(b.get(i)))),
                None => BooleanArray::from(vec![false; n]),
            };
            Cols::Raw {
                values: Arc::new(Float64Array::new(values.into(), nulls_from(row.valid_bits(), n))),
                anomaly: Arc::new(anomaly),
            }
        }
        RowData::AggEncoded(rows) => {
            let mut c = AggColumns::default();
            rows.decode_into(&mut c, true);
            let nulls = Some(NullBuffer::new(BooleanBuffer::from_iter(c.count.iter().map(|&k| k > 0))));
            let f = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::new(v.into(), nulls.clone())) };
            Cols::Agg {
                sum: f(c.sum),
                min: f(c.min),
                max: f(c.max),
                count: Arc::new(UInt32Array::from(c.count)),
                anomaly_count: Arc::new(UInt32Array::from(c.anomaly_count)),
            }
        }
        RowData::Raw { values, valid, anomaly } => {
            let anomaly = match anomaly {
                Some(b) => BooleanArray::from_iter((0..n).map(|i| Some(b.get(i)))),
                None => BooleanArray::from(vec![false; n]),
            };
            Cols::Raw {
                values: Arc::new(Float64Array::new(values[..n].to_vec().into(), nulls_from(valid, n))),
                anomaly: Arc::new(anomaly),
            }
        }
        RowData::Agg { sum, min, max, count, anomaly_count } => {
            let nulls = Some(NullBuffer::new(BooleanBuffer::from_iter(count[..n].iter().map(|&c| c > 0))));
            let f = |v: &[f64]| -> ArrayRef { Arc::new(Float64Array::new(v[..n].to_vec().into(), nulls.clone())) };
            Cols::Agg {
                sum: f(sum),
                min: f(min),
                max: f(max),
                count: Arc::new(UInt32Array::from(count[..n].to_vec())),
                anomaly_count: Arc::new(UInt32Array::from(anomaly_count[..n].to_vec())),
            }
        }
    }
}

impl PartitionIter {
    /// Every batch of metric `i`, sealed spans first, then the head.
    fn metric(&mut self, i: usize) -> Result<()> {
        let data = self.data.clone();
        let (names, ue) = &data.metrics[i];
        let (m, tier, range) = (names.id, data.tier.index(), data.range);
        let mut sealed_until = i64::MIN;
        for seg in data.view.sealed(*ue, tier).unwrap_or(&[]) {
            let first = seg.start;
            sealed_until = sealed_until.max(first + (seg.points as i64 - 1) * seg.res);
            let Some(row) = seg.row_index(m) else { continue };
            let (a, b) = index_range(first, seg.res, seg.points, range);
            if a >= b {
                continue;
            }
            let (off, n) = (row * seg.points + a, b - a);
            let cols = match (seg.layout(), data.tier) {
                (Layout::Encoded | Layout::AggEncoded, _) => match seg.run(m) {
                    Some(run) => copy_run(&run.slice(a, b)),
                    None => continue,
                },
                (_, Tier::Raw) => Cols::Raw {
                    values: child(seg, "value")?.slice(off, n),
                    anomaly: child(seg, "anomaly")?.slice(off, n),
                },
                (_, _) => Cols::Agg {
                    sum: child(seg, "sum")?.slice(off, n),
                    min: child(seg, "min")?.slice(off, n),
                    max: child(seg, "max")?.slice(off, n),
                    count: child(seg, "count")?.slice(off, n),
                    anomaly_count: child(seg, "anomaly_count")?.slice(off, n),
                },
            };
            let ts = self.ts_of(first, seg.res, seg.points).slice(a, n);
            self.push(names, ts, cols, n)?;
        }
        let from = range.from_excl.max(sealed_until);
        let mut open = Vec::new();
        data.view.for_each_run(m, *ue, tier, from, range.to_incl, |run| {
            if run.len > 0 {
                let ts: ArrayRef = Arc::new(
                    TimestampNanosecondArray::from_iter_values((0..run.len).map(|k| run.end_of(k) * 1_000_000_000))
                        .with_timezone("UTC"),
                );
                open.push((ts, copy_run(&run), run.len));
            }
        });
        for (ts, cols, n) in open {
            self.push(names, ts, cols, n)?;
        }
        Ok(())
    }

    fn ts_of(&mut self, first: i64, res: i64, points: usize) -> ArrayRef {
        self.ts
            .entry((first, res, points))
            .or_insert_with(|| {
                Arc::new(
                    TimestampNanosecondArray::from_iter_values(
                        (0..points as i64).map(|k| (first + k * res) * 1_000_000_000),
                    )
                    .with_timezone("UTC"),
                )
            })
            .clone()
    }

    fn dict(&mut self, value: &str, n: usize) -> Result<ArrayRef> {
        if self.zeros.len() < n {
            self.zeros = Int32Array::from(vec![0; n.max(4096)]);
        }
        let keys = self.zeros.slice(0, n);
        Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(vec![value])))?))
    }

    /// Emits the rows of one slice that hold a sample (gaps are not rows:
    /// a slice without gaps stays zero-copy, one with gaps is filtered).
    fn push(&mut self, names: &MetricNames, ts: ArrayRef, cols: Cols, n: usize) -> Result<()> {
        let validity = match &cols {
            Cols::Raw { values, .. } => values.logical_nulls(),
            Cols::Agg { sum, .. } => sum.logical_nulls(),
        };
        let keep = match validity {
            Some(v) if v.null_count() == n => return Ok(()),
            Some(v) if v.null_count() > 0 => Some(BooleanArray::new(v.inner().clone(), None)),
            _ => None,
        };
        let data = self.data.clone();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(data.projection.len());
        for &c in &data.projection {
            let name = data.schema.field(c).name().as_str();
            columns.push(match (name, &cols) {
                ("metric_id", _) => Arc::new(UInt32Array::from_value(names.id, n)),
                ("node", _) => self.dict(&names.node, n)?,
                ("context", _) => self.dict(&names.context, n)?,
                ("instance", _) => self.dict(&names.instance, n)?,
                ("dimension", _) => self.dict(&names.dimension, n)?,
                ("labels", _) => self.dict(&names.labels, n)?,
                ("ts", _) => ts.clone(),
                ("value", Cols::Raw { values, .. }) => values.clone(),
                ("anomalous", Cols::Raw { anomaly, .. }) => anomaly.clone(),
                ("sum", Cols::Agg { sum, .. }) => sum.clone(),
                ("min", Cols::Agg { min, .. }) => min.clone(),
                ("max", Cols::Agg { max, .. }) => max.clone(),
                ("count", Cols::Agg { count, .. }) => count.clone(),
                ("anomaly_count", Cols::Agg { anomaly_count, .. }) => anomaly_count.clone(),
                (other, _) => return Err(exec_datafusion_err!("column {other} does not exist in this table")),
            });
        }
        let opts = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n));
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), columns, &opts)?;
        self.pending.push_back(match keep {
            Some(k) => filter_record_batch(&batch, &k)?,
            None => batch,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ranges_keep_point_ends_in_the_range() {
        let r = |a, b| TimeRange { from_excl: a, to_incl: b };
        assert_eq!(index_range(100, 1, 10, r(0, 1000)), (0, 10));
        assert_eq!(index_range(100, 1, 10, r(100, 104)), (1, 5));
        assert_eq!(index_range(100, 60, 10, r(130, 220)), (1, 3));
        assert_eq!(index_range(100, 1, 10, r(200, 300)), (10, 10));
        assert_eq!(index_range(100, 1, 10, r(0, 50)), (0, 0));
    }
}
