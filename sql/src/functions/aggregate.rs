//! Netdata's time groups as DataFusion aggregate functions (`nd_median`,
//! `nd_percentile(v, 95)`, `nd_countif(v, '>0')`, ...). The math is the
//! engine's: every function builds the engine's kernel for its time group
//! ([`kernels::build`]) and feeds it the bucket's values, so SQL and the
//! JSON API share one implementation.
//!
//! Partial state (DataFusion always plans a partial and a final phase):
//! - `nd_average`: (sum, count); the final kernel takes them as one
//!   aggregate point ([`Kernel::add_agg`]).
//! - `nd_sum`, `nd_min`, `nd_max`, `nd_extremes`: the kernel's answer over
//!   the partition; the final kernel adds the partial answers (the sum of
//!   sums, the value nearest zero of the nearest, ... are the same number).
//! - the others (median, percentile, trimmed mean/median, stddev, cv,
//!   countif) keep the values (a list), as the built-in `median` does.
//!
//! Nulls and non-finite values are skipped (a kernel sees finite values
//! only, as in the query path). The order of values within a bucket does
//! not matter to these functions except for float rounding in sums; the
//! order-dependent time groups (`incremental-sum`, `ses`, `des`, `latest`)
//! carry state across buckets and are served by the `nd_query` table
//! function instead.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, RecordBatch, UInt64Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Schema, UInt64Type};
use datafusion::common::{exec_datafusion_err, plan_datafusion_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, ColumnarValue, Signature, Volatility};
use strata_engine::query::kernels::{self, Kernel, KernelParams};
use strata_engine::query::time_group::TimeGroup;
use strata_engine::storage::bits::BitSlice;
use strata_engine::storage::AggPoint;

/// The `nd_*` aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdFunction {
    Average,
    Sum,
    Min,
    Max,
    Extremes,
    Median,
    TrimmedMedian,
    Percentile,
    TrimmedMean,
    Stddev,
    Cv,
    CountIf,
}

/// What the optional second argument is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Param {
    None,
    /// A percentage; the time group's default when absent.
    Percent,
    /// A countif condition such as `'>0'` (a bare number means `==`).
    Condition,
}

impl NdFunction {
    pub const ALL: [NdFunction; 12] = [
        NdFunction::Average,
        NdFunction::Sum,
        NdFunction::Min,
        NdFunction::Max,
        NdFunction::Extremes,
        NdFunction::Median,
        NdFunction::TrimmedMedian,
        NdFunction::Percentile,
        NdFunction::TrimmedMean,
        NdFunction::Stddev,
        NdFunction::Cv,
        NdFunction::CountIf,
    ];

    /// The SQL name.
    pub fn name(self) -> &'static str {
        match self {
            NdFunction::Average => "nd_average",
            NdFunction::Sum => "nd_sum",
            NdFunction::Min => "nd_min",
            NdFunction::Max => "nd_max",
            NdFunction::Extremes => "nd_extremes",
            NdFunction::Median => "nd_median",
            NdFunction::TrimmedMedian => "nd_trimmed_median",
            NdFunction::Percentile => "nd_percentile",
            NdFunction::TrimmedMean => "nd_trimmed_mean",
            NdFunction::Stddev => "nd_stddev",
            NdFunction::Cv => "nd_cv",
            NdFunction::CountIf => "nd_countif",
        }
    }

    /// The Netdata time-group name it computes.
    pub fn time_group_name(self) -> &'static str {
        match self {
            NdFunction::Average => "average",
            NdFunction::Sum => "sum",
            NdFunction::Min => "min",
            NdFunction::Max => "max",
            NdFunction::Extremes => "extremes",
            NdFunction::Median => "median",
            NdFunction::TrimmedMedian => "trimmed-median",
            NdFunction::Percentile => "percentile",
            NdFunction::TrimmedMean => "trimmed-mean",
            NdFunction::Stddev => "stddev",
            NdFunction::Cv => "cv",
            NdFunction::CountIf => "countif",
        }
    }

    /// The function called `name` (a registered name, any case).
    pub fn from_name(name: &str) -> Option<NdFunction> {
        let name = name.to_ascii_lowercase();
        let name = if name == "nd_avg" || name == "nd_mean" { "nd_average" } else { name.as_str() };
        NdFunction::ALL.into_iter().find(|f| f.name() == name)
    }

    fn param(self) -> Param {
        match self {
            NdFunction::Median | NdFunction::TrimmedMedian | NdFunction::Percentile | NdFunction::TrimmedMean => {
                Param::Percent
            }
            NdFunction::CountIf => Param::Condition,
            _ => Param::None,
        }
    }

    /// Whether the partial state is the kernel's own answer (see the module docs).
    fn folds(self) -> bool {
        matches!(self, NdFunction::Sum | NdFunction::Min | NdFunction::Max | NdFunction::Extremes)
    }

    /// The engine's time group for this function with its parameter
    /// (`time_group_options`), validated by building its kernel.
    pub fn time_group(self, param: Option<String>) -> std::result::Result<TimeGroup, String> {
        let mut tg = TimeGroup::parse(self.time_group_name(), "time_group").map_err(|e| e.to_string())?;
        tg.options = param;
        kernels::build(&tg, &KERNEL_PARAMS).map_err(|e| format!("{}: {e}", self.name()))?;
        Ok(tg)
    }
}

/// Per-bucket functions do not depend on the window (only ses/des do).
const KERNEL_PARAMS: KernelParams = KernelParams { points: 1, group: 1, resampling_divisor: None };

/// One `nd_*` function as a DataFusion aggregate UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NdAggregate {
    func: NdFunction,
    signature: Signature,
    aliases: Vec<String>,
}

impl NdAggregate {
    pub fn new(func: NdFunction) -> Self {
        let aliases = if func == NdFunction::Average { vec!["nd_avg".into(), "nd_mean".into()] } else { vec![] };
        NdAggregate { func, signature: Signature::user_defined(Volatility::Immutable), aliases }
    }
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Null)
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl AggregateUDFImpl for NdAggregate {
    fn name(&self) -> &str {
        self.func.name()
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.func.name();
        let usage = match self.func.param() {
            Param::None => format!("{name}(value)"),
            Param::Percent => format!("{name}(value [, percent])"),
            Param::Condition => format!("{name}(value [, 'condition' such as '>0'])"),
        };
        let Some(first) = arg_types.first() else { return plan_err!("{name} takes {usage}") };
        if !is_numeric(first) {
            return plan_err!("{name} takes a numeric value, not {first}: {usage}");
        }
        match (self.func.param(), &arg_types[1..]) {
            (_, []) => Ok(vec![DataType::Float64]),
            (Param::Percent, [p]) if is_numeric(p) => Ok(vec![DataType::Float64, DataType::Float64]),
            (Param::Condition, [p]) if is_text(p) || is_numeric(p) => Ok(vec![DataType::Float64, DataType::Utf8]),
            _ => plan_err!("{name} takes {usage}"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let f = |suffix: &str, t: DataType| Arc::new(Field::new(format!("{}[{suffix}]", args.name), t, true));
        Ok(if self.func == NdFunction::Average {
            vec![f("sum", DataType::Float64), f("count", DataType::UInt64)]
        } else if self.func.folds() {
            vec![f("partial", DataType::Float64)]
        } else {
            vec![f("values", DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true))))]
        })
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        // DataFusion rewrites a statement whose aggregates are all DISTINCT
        // over one column into a grouping; beside other aggregates, DISTINCT
        // reaches the accumulator, which would silently add every value.
        if acc_args.is_distinct {
            return plan_err!(
                "{}(DISTINCT ...) beside other aggregates is not supported: take the distinct values in a subquery",
                self.func.name()
            );
        }
        let param = match acc_args.exprs.get(1) {
            None => None,
            Some(e) => {
                let empty = RecordBatch::new_empty(Arc::new(Schema::clone(acc_args.schema)));
                match e.evaluate(&empty)? {
                    ColumnarValue::Scalar(s) if !s.is_null() => Some(scalar_text(&s)),
                    ColumnarValue::Scalar(_) => None,
                    ColumnarValue::Array(_) => {
                        return plan_err!("{}: the second argument must be a constant", self.func.name())
                    }
                }
            }
        };
        NdAccumulator::new(self.func, param).map(|a| Box::new(a) as Box<dyn Accumulator>)
    }
}

/// A literal parameter as the time group's option string.
pub fn scalar_text(s: &ScalarValue) -> String {
    match s {
        ScalarValue::Utf8(Some(v)) | ScalarValue::LargeUtf8(Some(v)) | ScalarValue::Utf8View(Some(v)) => v.clone(),
        other => other.to_string(),
    }
}

/// The accumulator of every `nd_*` function (see the module docs for its state).
#[derive(Debug)]
pub struct NdAccumulator {
    func: NdFunction,
    tg: TimeGroup,
    /// The kernel of the folding functions (`Mutex` only for `Sync`; reached through `get_mut`).
    kernel: Mutex<KernelBox>,
    sum: f64,
    count: u64,
    values: Vec<f64>,
}

/// A kernel with `Debug`, for the accumulator.
struct KernelBox(Box<dyn Kernel>);

impl std::fmt::Debug for KernelBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kernel")
    }
}

impl NdAccumulator {
    pub fn new(func: NdFunction, param: Option<String>) -> Result<Self> {
        let tg = func.time_group(param).map_err(|e| plan_datafusion_err!("{e}"))?;
        let kernel = build(&tg)?;
        Ok(NdAccumulator { func, tg, kernel: Mutex::new(KernelBox(kernel)), sum: 0.0, count: 0, values: Vec::new() })
    }

    fn kernel(&mut self) -> Result<&mut Box<dyn Kernel>> {
        self.kernel.get_mut().map(|k| &mut k.0).map_err(|_| exec_datafusion_err!("nd kernel lock poisoned"))
    }

    /// Takes finite, non-null values from `values`.
    fn take(&mut self, values: &Float64Array) -> Result<()> {
        let raw: &[f64] = values.values();
        let valid = values
            .nulls()
            .filter(|n| n.null_count() > 0)
            .map(|n| BitSlice::new(n.inner().values(), n.inner().offset()));
        let all_finite = raw.iter().all(|v| v.is_finite());
        match self.func {
            NdFunction::Average => {
                for (i, &v) in raw.iter().enumerate() {
                    if valid.is_none_or(|b| b.get(i)) && v.is_finite() {
                        self.sum += v;
                        self.count += 1;
                    }
                }
            }
            f if f.folds() => {
                let k = self.kernel()?;
                if all_finite {
                    k.add_slice(raw, valid);
                } else {
                    for (i, &v) in raw.iter().enumerate() {
                        if valid.is_none_or(|b| b.get(i)) && v.is_finite() {
                            k.add(v);
                        }
                    }
                }
            }
            _ => {
                for (i, &v) in raw.iter().enumerate() {
                    if valid.is_none_or(|b| b.get(i)) && v.is_finite() {
                        self.values.push(v);
                    }
                }
            }
        }
        Ok(())
    }

    fn answer(&mut self) -> Result<Option<f64>> {
        match self.func {
            NdFunction::Average => {
                let mut k = build(&self.tg)?;
                let p = AggPoint { sum: self.sum, min: f64::NAN, max: f64::NAN, count: 0, anomaly_count: 0 };
                // Counts beyond u32 go in several points.
                let mut left = self.count;
                let mut first = true;
                while left > 0 || first {
                    let c = left.min(u64::from(u32::MAX)) as u32;
                    let part = AggPoint { sum: if first { p.sum } else { 0.0 }, count: c, ..p };
                    if c > 0 {
                        k.add_agg(&part);
                    }
                    left -= u64::from(c);
                    first = false;
                }
                Ok(k.flush())
            }
            f if f.folds() => Ok(self.kernel()?.flush()),
            _ => {
                let mut k = build(&self.tg)?;
                k.add_slice(&self.values, None);
                Ok(k.flush())
            }
        }
    }
}

fn build(tg: &TimeGroup) -> Result<Box<dyn Kernel>> {
    kernels::build(tg, &KERNEL_PARAMS).map_err(|e| plan_datafusion_err!("{e}"))
}

fn f64s(a: &ArrayRef) -> Result<&Float64Array> {
    a.as_primitive_opt::<Float64Type>()
        .ok_or_else(|| exec_datafusion_err!("nd aggregate: expected Float64, got {}", a.data_type()))
}

impl Accumulator for NdAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(v) => self.take(f64s(v)?),
            None => Ok(()),
        }
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.answer()?))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 8
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(match self.func {
            NdFunction::Average => vec![ScalarValue::Float64(Some(self.sum)), ScalarValue::UInt64(Some(self.count))],
            f if f.folds() => vec![ScalarValue::Float64(self.kernel()?.flush())],
            _ => {
                let values = Float64Array::from(std::mem::take(&mut self.values));
                let field = Arc::new(Field::new_list_field(DataType::Float64, true));
                let list =
                    ListArray::try_new(field, OffsetBuffer::from_lengths([values.len()]), Arc::new(values), None)?;
                vec![ScalarValue::List(Arc::new(list))]
            }
        })
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(first) = states.first() else { return Ok(()) };
        match self.func {
            NdFunction::Average => {
                let sums = f64s(first)?;
                let counts: &UInt64Array = states
                    .get(1)
                    .and_then(|c| c.as_primitive_opt::<UInt64Type>())
                    .ok_or_else(|| exec_datafusion_err!("nd_average: bad partial state"))?;
                for i in 0..sums.len() {
                    if sums.is_valid(i) && counts.is_valid(i) {
                        self.sum += sums.value(i);
                        self.count += counts.value(i);
                    }
                }
            }
            f if f.folds() => {
                let partial = f64s(first)?.clone();
                let k = self.kernel()?;
                partial.iter().flatten().for_each(|v| k.add(v));
            }
            _ => {
                let lists = first
                    .as_list_opt::<i32>()
                    .ok_or_else(|| exec_datafusion_err!("{}: bad partial state", self.func.name()))?;
                for i in 0..lists.len() {
                    if lists.is_valid(i) {
                        let v = lists.value(i);
                        self.values.extend(f64s(&v)?.iter().flatten());
                    }
                }
            }
        }
        Ok(())
    }
}
