//! Typed, null-aware views of one record batch's columns, checked once per
//! batch so the per-row loop only indexes.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int16Type, Int32Type, Int64Type, RunEndIndexType, TimestampSecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, PrimitiveArray, RecordBatch, RunArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, TimeUnit};

use crate::error::{EngineError, Result};

fn col_err(name: &str, msg: impl Into<String>) -> EngineError {
    EngineError::batch(format!("columns.{name}"), msg)
}

/// A string column: plain, large, view, dictionary- or run-end-encoded.
pub enum StrCol<'a> {
    Utf8(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    Dict {
        keys: Keys<'a>,
        key_nulls: Option<&'a NullBuffer>,
        values: Box<StrCol<'a>>,
    },
    /// Run `k` holds `values[runs.first + k]` (nulls are null values).
    RunEnd {
        runs: Runs,
        values: Box<StrCol<'a>>,
    },
}

/// A run-end-encoded column's runs as the rows of this record batch see
/// them: run `k` covers rows `ends[k - 1]..ends[k]` (from 0 for the first)
/// and holds physical value `first + k`. Normalised once per batch from
/// int16/int32/int64 run ends, whatever the array's offset, so a row's
/// run is one binary search and a run's end one index.
pub struct Runs {
    ends: Vec<usize>,
    first: usize,
    /// The run the last lookup found: rows are mostly read in order, so
    /// the next row is in it or the one after (no search).
    hint: std::cell::Cell<usize>,
}

impl Runs {
    fn of<R: RunEndIndexType>(a: &RunArray<R>) -> Self {
        use arrow_buffer::ArrowNativeType;
        let r = a.run_ends();
        // An empty array has no runs (its buffer may still hold some).
        let ends = if r.is_empty() { Vec::new() } else { r.sliced_values().map(|e| e.as_usize()).collect() };
        Runs { ends, first: r.get_start_physical_index(), hint: std::cell::Cell::new(0) }
    }

    /// The run holding `row`; past the last row, the run count.
    #[inline]
    fn run(&self, row: usize) -> usize {
        let holds = |k: usize| k < self.ends.len() && row < self.ends[k] && (k == 0 || self.ends[k - 1] <= row);
        let k = self.hint.get();
        let k = match () {
            _ if holds(k) => return k,
            _ if holds(k + 1) => k + 1,
            // A run's first row is often asked again after the next row.
            _ if k > 0 && holds(k - 1) => k - 1,
            _ => self.ends.partition_point(|&e| e <= row),
        };
        self.hint.set(k);
        k
    }

    /// The physical value index of `row` (None past the last row).
    #[inline]
    fn value_index(&self, row: usize) -> Option<usize> {
        let k = self.run(row);
        (k < self.ends.len()).then_some(self.first + k)
    }

    /// The end (exclusive) of the run holding `row`.
    #[inline]
    fn end(&self, row: usize) -> usize {
        self.ends.get(self.run(row)).copied().unwrap_or(row)
    }
}

/// The `update_every` column: int64, plain or run-end-encoded.
pub enum IntCol<'a> {
    Plain(&'a PrimitiveArray<Int64Type>),
    RunEnd { runs: Runs, values: &'a PrimitiveArray<Int64Type> },
}

impl<'a> IntCol<'a> {
    pub(super) fn new(name: &str, a: &'a ArrayRef) -> Result<Self> {
        let wrong =
            || col_err(name, format!("'{name}' must be int64 (or run-end-encoded int64), got {}", a.data_type()));
        if let Some(p) = a.as_primitive_opt::<Int64Type>() {
            return Ok(IntCol::Plain(p));
        }
        let (runs, values) = run_end_parts(a.as_ref()).ok_or_else(wrong)?;
        Ok(IntCol::RunEnd { runs, values: values.as_primitive_opt::<Int64Type>().ok_or_else(wrong)? })
    }

    /// The value at `row`; None for null.
    #[inline]
    pub fn get(&self, row: usize) -> Option<i64> {
        match self {
            IntCol::Plain(a) => (row < a.len() && !a.is_null(row)).then(|| a.value(row)),
            IntCol::RunEnd { runs, values } => {
                runs.value_index(row).filter(|&k| k < values.len() && !values.is_null(k)).map(|k| values.value(k))
            }
        }
    }

    /// The first row of `rows` whose value `ok` refuses (a null is `None`);
    /// a run-end-encoded column asks once per run, not once per row.
    pub fn first_refused(&self, rows: std::ops::Range<usize>, ok: impl Fn(Option<i64>) -> bool) -> Option<usize> {
        match self {
            IntCol::Plain(_) => rows.clone().find(|&i| !ok(self.get(i))),
            IntCol::RunEnd { runs, .. } => {
                let mut i = rows.start;
                while i < rows.end {
                    if !ok(self.get(i)) {
                        return Some(i);
                    }
                    i = runs.end(i).max(i + 1);
                }
                None
            }
        }
    }
}

/// The runs and values of a run-end-encoded array (None for other types).
fn run_end_parts(a: &dyn Array) -> Option<(Runs, &ArrayRef)> {
    if let Some(r) = a.as_run_opt::<Int32Type>() {
        return Some((Runs::of(r), r.values()));
    }
    if let Some(r) = a.as_run_opt::<Int16Type>() {
        return Some((Runs::of(r), r.values()));
    }
    a.as_run_opt::<Int64Type>().map(|r| (Runs::of(r), r.values()))
}

/// A dictionary's keys: borrowed when they are `int32` (what
/// [`super::encode_stream`] and most writers use), else normalised once.
pub enum Keys<'a> {
    I32(&'a [i32]),
    Normalized(Vec<usize>),
}

impl Keys<'_> {
    #[inline]
    fn get(&self, row: usize) -> Option<usize> {
        match self {
            Keys::I32(k) => k.get(row).map(|&k| k as usize),
            Keys::Normalized(k) => k.get(row).copied(),
        }
    }
}

impl<'a> StrCol<'a> {
    fn new(name: &str, a: &'a ArrayRef) -> Result<Self> {
        Self::from_dyn(name, a.as_ref())
    }

    pub(super) fn from_dyn(name: &str, a: &'a dyn Array) -> Result<Self> {
        match a.data_type() {
            DataType::Utf8 => Ok(StrCol::Utf8(a.as_string::<i32>())),
            DataType::LargeUtf8 => Ok(StrCol::Large(a.as_string::<i64>())),
            DataType::Utf8View => Ok(StrCol::View(a.as_string_view())),
            DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
                let d = a.as_any_dictionary_opt().ok_or_else(|| col_err(name, "dictionary column is unreadable"))?;
                let values = Box::new(Self::from_dyn(name, d.values().as_ref())?);
                let keys = match a.as_dictionary_opt::<Int32Type>() {
                    // A key past the dictionary reads as no string (`get` is checked).
                    Some(d) => Keys::I32(d.keys().values()),
                    // normalized_keys panics on an empty dictionary; then every key must be null.
                    None if d.values().is_empty() => Keys::Normalized(vec![0; d.len()]),
                    None => Keys::Normalized(d.normalized_keys()),
                };
                Ok(StrCol::Dict { keys, key_nulls: d.keys().nulls(), values })
            }
            DataType::RunEndEncoded(_, v)
                if matches!(
                    v.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
                ) =>
            {
                let (runs, values) = run_end_parts(a).ok_or_else(|| col_err(name, "run-end column is unreadable"))?;
                Ok(StrCol::RunEnd { runs, values: Box::new(Self::from_dyn(name, values.as_ref())?) })
            }
            other => Err(col_err(
                name,
                format!("'{name}' must be a string column (plain, dictionary or run-end-encoded), got {other}"),
            )),
        }
    }

    /// The dictionary key at `row` (`usize::MAX` for null): for a
    /// run-end-encoded column, its values' key, or else the run's number.
    /// None when the column is neither. Equal keys mean equal strings.
    #[inline]
    pub fn key(&self, row: usize) -> Option<usize> {
        match self {
            StrCol::Dict { key_nulls, .. } if key_nulls.is_some_and(|n| n.is_null(row)) => Some(usize::MAX),
            StrCol::Dict { keys, .. } => keys.get(row),
            StrCol::RunEnd { runs, values } => {
                let k = runs.value_index(row)?;
                match **values {
                    StrCol::Dict { .. } => values.key(k),
                    _ if values.get(k).is_none() => Some(usize::MAX),
                    _ => Some(k),
                }
            }
            _ => None,
        }
    }

    /// Whether rows `a` and `b` surely hold the same string (or both null).
    /// Dictionary and run-end columns compare keys, so a dictionary that
    /// repeats a string, or two runs of one string over plain values, may
    /// answer false for equal strings; never true for unequal ones.
    #[inline]
    pub fn same(&self, a: usize, b: usize) -> bool {
        match self {
            StrCol::Dict { .. } | StrCol::RunEnd { .. } => self.key(a).is_some_and(|k| Some(k) == self.key(b)),
            _ => self.get(a) == self.get(b),
        }
    }

    /// The first row of `from..to` that does not surely hold row `start`'s
    /// string; `to` if none. Keys read in place and without nulls are
    /// compared as a plain slice.
    pub fn run_end(&self, start: usize, from: usize, to: usize) -> usize {
        match self {
            StrCol::Dict { keys: Keys::I32(k), key_nulls: None, .. } if from <= to && to <= k.len() => {
                let (k0, rest) = (k[start], &k[from..to]);
                // Whole chunks first, compared without early exit so they vectorise.
                let same = rest.chunks_exact(32).take_while(|c| c.iter().fold(true, |all, &x| all & (x == k0))).count();
                let skip = same * 32;
                rest[skip..].iter().position(|&x| x != k0).map_or(to, |p| from + skip + p)
            }
            // Rows after `start` in its run hold its string; a later run may
            // too, but not surely.
            StrCol::RunEnd { runs, .. } => runs.end(start).clamp(from, to.max(from)),
            _ => (from..to).find(|&j| !self.same(start, j)).unwrap_or(to),
        }
    }

    /// The value at `row`; None for null.
    pub fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            StrCol::Utf8(a) => (row < a.len() && !a.is_null(row)).then(|| a.value(row)),
            StrCol::Large(a) => (row < a.len() && !a.is_null(row)).then(|| a.value(row)),
            StrCol::View(a) => (row < a.len() && !a.is_null(row)).then(|| a.value(row)),
            StrCol::Dict { keys, key_nulls, values } => {
                if key_nulls.is_some_and(|n| n.is_null(row)) {
                    None
                } else {
                    keys.get(row).and_then(|k| values.get(k))
                }
            }
            StrCol::RunEnd { runs, values } => runs.value_index(row).and_then(|k| values.get(k)),
        }
    }
}

/// The timestamp column: int64 seconds or timestamp(second).
pub enum TsCol<'a> {
    Int(&'a PrimitiveArray<Int64Type>),
    Timestamp(&'a PrimitiveArray<TimestampSecondType>),
}

impl<'a> TsCol<'a> {
    pub fn get(&self, row: usize) -> Option<i64> {
        match self {
            TsCol::Int(a) => (!a.is_null(row)).then(|| a.value(row)),
            TsCol::Timestamp(a) => (!a.is_null(row)).then(|| a.value(row)),
        }
    }

    /// Every row's seconds (null rows hold anything) and the null mask.
    pub fn raw(&self) -> (&'a [i64], Option<&'a NullBuffer>) {
        match *self {
            TsCol::Int(a) => (a.values(), a.nulls()),
            TsCol::Timestamp(a) => (a.values(), a.nulls()),
        }
    }
}

/// The columns of one record batch, looked up by name.
pub struct Columns<'a> {
    pub node: Option<StrCol<'a>>,
    pub context: StrCol<'a>,
    pub instance: Option<StrCol<'a>>,
    pub dimension: StrCol<'a>,
    pub ts: TsCol<'a>,
    pub value: &'a Float64Array,
    pub anomalous: Option<&'a BooleanArray>,
    pub update_every: Option<IntCol<'a>>,
    pub units: Option<StrCol<'a>>,
    pub title: Option<StrCol<'a>>,
    pub chart_type: Option<StrCol<'a>>,
}

impl<'a> Columns<'a> {
    /// The end of the run of rows from `start` (before `end`) that surely
    /// name the same metric and context as row `start`: every name column
    /// holds the same string (or key) in each. A metric's rows may still
    /// come in several runs; runs only spare per-row name lookups.
    pub fn same_names_until(&self, start: usize, end: usize) -> usize {
        // A column may hold one string for the whole batch (one dimension
        // name everywhere), so no column is scanned far ahead of the others:
        // windows that double keep the overscan within the run's length.
        // Rows in time order (a collector's batch) are runs of one: the
        // next row tells, before any window is scanned.
        if start + 1 < end && !self.same_row(start, start + 1) {
            return start + 1;
        }
        let (mut from, mut window) = (start + 1, 64);
        loop {
            let to = (from + window).min(end);
            let mut cut = self.dimension.run_end(start, from, to);
            cut = self.context.run_end(start, from, cut);
            cut = self.instance.as_ref().map_or(cut, |c| c.run_end(start, from, cut));
            cut = self.node.as_ref().map_or(cut, |c| c.run_end(start, from, cut));
            if cut < to || to == end {
                return cut;
            }
            (from, window) = (to, (window * 2).min(1 << 14));
        }
    }

    /// Whether rows `a` and `b` surely name the same metric and context.
    fn same_row(&self, a: usize, b: usize) -> bool {
        self.dimension.same(a, b)
            && self.context.same(a, b)
            && self.instance.as_ref().is_none_or(|c| c.same(a, b))
            && self.node.as_ref().is_none_or(|c| c.same(a, b))
    }

    /// Row `row`'s names as dictionary keys, `[node, context, instance,
    /// dimension]` (an absent column is a key of its own), when every name
    /// column present is dictionary-encoded: rows with equal keys name the
    /// same metric in the same context. `None` otherwise.
    pub fn name_keys(&self, row: usize) -> Option<[usize; 4]> {
        const ABSENT: usize = usize::MAX - 1;
        let key = |c: Option<&StrCol<'_>>| c.map_or(Some(ABSENT), |c| c.key(row));
        Some([key(self.node.as_ref())?, self.context.key(row)?, key(self.instance.as_ref())?, self.dimension.key(row)?])
    }

    pub fn of(rb: &'a RecordBatch) -> Result<Self> {
        let schema = rb.schema_ref();
        for (i, f) in schema.fields().iter().enumerate() {
            if !super::COLUMNS.contains(&f.name().as_str()) {
                return Err(col_err(
                    f.name(),
                    format!("unknown column '{}' (known: {})", f.name(), super::COLUMNS.join(", ")),
                ));
            }
            // Columns are found by name: a second one of a name would be
            // silently ignored.
            if schema.fields()[..i].iter().any(|g| g.name() == f.name()) {
                return Err(col_err(f.name(), format!("column '{}' appears twice", f.name())));
            }
        }
        let find = |name: &str| schema.index_of(name).ok().map(|i| rb.column(i));
        let need = |name: &str| find(name).ok_or_else(|| col_err(name, format!("column '{name}' is required")));
        let str_opt = |name: &str| find(name).map(|a| StrCol::new(name, a)).transpose();
        let ts = need("ts")?;
        let ts = match ts.data_type() {
            DataType::Int64 => TsCol::Int(ts.as_primitive()),
            DataType::Timestamp(TimeUnit::Second, _) => TsCol::Timestamp(ts.as_primitive()),
            other => return Err(col_err("ts", format!("'ts' must be int64 epoch seconds, got {other}"))),
        };
        let value = need("value")?;
        let value = value
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| col_err("value", format!("'value' must be float64, got {}", value.data_type())))?;
        let anomalous = find("anomalous")
            .map(|a| {
                a.as_boolean_opt()
                    .ok_or_else(|| col_err("anomalous", format!("'anomalous' must be bool, got {}", a.data_type())))
            })
            .transpose()?;
        let update_every = find("update_every").map(|a| IntCol::new("update_every", a)).transpose()?;
        Ok(Columns {
            node: str_opt("node")?,
            context: StrCol::new("context", need("context")?)?,
            instance: str_opt("instance")?,
            dimension: StrCol::new("dimension", need("dimension")?)?,
            ts,
            value,
            anomalous,
            update_every,
            units: str_opt("units")?,
            title: str_opt("title")?,
            chart_type: str_opt("chart_type")?,
        })
    }
}
