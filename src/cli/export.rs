//! `strata export`: one tier of a stopped server's data dir, written as a
//! Parquet or Arrow IPC file in long format (one row per stored point, gaps
//! omitted) for other engines (DataFusion, DuckDB, pandas). Rows are ordered
//! by metric (node, context, instance, dimension) then time, and written in
//! record batches of 64k rows. `timestamp` is the point's end time in UTC:
//! seconds in Arrow files, milliseconds in Parquet (which has no second unit).
//!
//! The engine takes the data dir's exclusive lock, so the server must be
//! stopped. Opening replays the WAL like a server start would (and may write
//! a checkpoint); retention is not enforced here, so an export never drops
//! data. The output is written to `OUT.tmp` and renamed into place.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, TimestampMillisecondArray, TimestampSecondArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use clap::{Args, ValueEnum};
use strata_engine::model::{MetricId, Registry};
use strata_engine::persist::PersistOptions;
use strata_engine::storage::segment_file::Compression;
use strata_engine::storage::TIERS;
use strata_engine::wal::WalOptions;
use strata_engine::{Clock, Engine, EngineConfig, EngineError};

/// Rows per record batch (one IPC message; Parquet gathers them into row groups).
const BATCH_ROWS: usize = 64 * 1024;
/// A progress line on stderr every this many rows.
const PROGRESS_ROWS: u64 = 1_000_000;
/// Latest accepted epoch second (9999-12-31T23:59:59Z).
const MAX_EPOCH: i64 = 253_402_300_799;
/// Retention used while the export holds the data dir: long enough that the
/// WAL replay never drops a sealed span (the server enforces its own later).
const KEEP_SECS: i64 = 1_000 * 366 * 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Apache Parquet, zstd-compressed.
    Parquet,
    /// Arrow IPC file format (Feather v2), uncompressed.
    Arrow,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Tier to export: 0 per-second raw values, 1 per-minute, 2 per-hour aggregates.
    #[arg(long, env = "STRATA_TIER", value_parser = clap::value_parser!(u8).range(0..=2))]
    pub tier: u8,
    /// First point end time to export (epoch seconds, inclusive).
    #[arg(long, env = "STRATA_FROM", value_parser = clap::value_parser!(i64).range(0..=MAX_EPOCH))]
    pub from: i64,
    /// Last point end time to export (epoch seconds, inclusive).
    #[arg(long, env = "STRATA_TO", value_parser = clap::value_parser!(i64).range(0..=MAX_EPOCH))]
    pub to: i64,
    /// Output file format.
    #[arg(long, env = "STRATA_FORMAT", value_enum)]
    pub format: Format,
    /// Data directory of a stopped server.
    #[arg(long, env = "STRATA_DATA_DIR", default_value = "./strata-data")]
    pub data_dir: PathBuf,
    /// Output file (replaced if it exists).
    pub out: PathBuf,
}

impl Format {
    /// Unit of the `timestamp` column. Arrow has seconds; Parquet has no
    /// second unit (arrow-rs would write a bare INT64 that DuckDB or Spark
    /// read as a number), so Parquet gets UTC milliseconds, which every
    /// reader maps to a timestamp.
    fn time_unit(self) -> TimeUnit {
        match self {
            Format::Parquet => TimeUnit::Millisecond,
            Format::Arrow => TimeUnit::Second,
        }
    }
}

/// The columns of `tier`'s export, with `timestamp` in `unit` (UTC).
pub fn schema(tier: usize, unit: TimeUnit) -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let mut fields = vec![
        text("node"),
        text("context"),
        text("instance"),
        text("dimension"),
        Field::new("timestamp", DataType::Timestamp(unit, Some("UTC".into())), false),
        Field::new("value", DataType::Float64, false),
    ];
    if tier == 0 {
        fields.push(Field::new("anomalous", DataType::Boolean, false));
    } else {
        fields.extend([
            Field::new("min", DataType::Float64, false),
            Field::new("max", DataType::Float64, false),
            Field::new("sum", DataType::Float64, false),
            Field::new("count", DataType::UInt32, false),
            Field::new("anomaly_count", DataType::UInt32, false),
        ]);
    }
    let metadata = [("strata.tier".to_string(), tier.to_string())].into_iter().collect();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// Rows being collected for the next record batch.
struct Rows {
    schema: SchemaRef,
    tier: usize,
    /// (metric, rows of it) in row order, to build the text columns.
    spans: Vec<(MetricId, usize)>,
    ts: Vec<i64>,
    value: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    sum: Vec<f64>,
    count: Vec<u32>,
    anomalies: Vec<u32>,
}

impl Rows {
    fn new(schema: SchemaRef, tier: usize) -> Rows {
        let agg = tier > 0;
        let cap = |on: bool| if on { BATCH_ROWS } else { 0 };
        Rows {
            schema,
            tier,
            spans: Vec::new(),
            ts: Vec::with_capacity(BATCH_ROWS),
            value: Vec::with_capacity(BATCH_ROWS),
            min: Vec::with_capacity(cap(agg)),
            max: Vec::with_capacity(cap(agg)),
            sum: Vec::with_capacity(cap(agg)),
            count: Vec::with_capacity(cap(agg)),
            anomalies: Vec::with_capacity(BATCH_ROWS),
        }
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn push(&mut self, m: MetricId, end: i64, p: strata_engine::storage::AggPoint) {
        match self.spans.last_mut() {
            Some((last, n)) if *last == m => *n += 1,
            _ => self.spans.push((m, 1)),
        }
        self.ts.push(end);
        if self.tier == 0 {
            self.value.push(p.sum);
        } else {
            self.value.push(p.sum / f64::from(p.count));
            self.min.push(p.min);
            self.max.push(p.max);
            self.sum.push(p.sum);
            self.count.push(p.count);
        }
        self.anomalies.push(p.anomaly_count);
    }

    /// Builds the record batch of the collected rows and starts over.
    fn take(&mut self, reg: &Registry) -> Result<RecordBatch, String> {
        let r = std::mem::replace(self, Rows::new(self.schema.clone(), self.tier));
        let mut cols: Vec<ArrayRef> = vec![
            text_column(&r.spans, |m| reg.node_of(m).id.as_str()),
            text_column(&r.spans, |m| reg.context_of(m).id.as_str()),
            text_column(&r.spans, |m| reg.instance_of(m).id.as_str()),
            text_column(&r.spans, |m| reg.metric(m).dimension.as_str()),
            timestamps(r.ts, r.schema.field(4).data_type()),
            Arc::new(Float64Array::from(r.value)),
        ];
        if r.tier == 0 {
            cols.push(Arc::new(BooleanArray::from(r.anomalies.iter().map(|&a| a > 0).collect::<Vec<bool>>())));
        } else {
            cols.push(Arc::new(Float64Array::from(r.min)));
            cols.push(Arc::new(Float64Array::from(r.max)));
            cols.push(Arc::new(Float64Array::from(r.sum)));
            cols.push(Arc::new(UInt32Array::from(r.count)));
            cols.push(Arc::new(UInt32Array::from(r.anomalies)));
        }
        RecordBatch::try_new(r.schema, cols).map_err(|e| format!("building a batch: {e}"))
    }
}

/// The `timestamp` column from epoch seconds.
fn timestamps(secs: Vec<i64>, ty: &DataType) -> ArrayRef {
    match ty {
        DataType::Timestamp(TimeUnit::Millisecond, _) => Arc::new(
            TimestampMillisecondArray::from_iter_values(secs.into_iter().map(|t| t * 1000)).with_timezone("UTC"),
        ),
        _ => Arc::new(TimestampSecondArray::from(secs).with_timezone("UTC")),
    }
}

/// A text column repeating each metric's `name` for its rows.
fn text_column<'r>(spans: &[(MetricId, usize)], name: impl Fn(MetricId) -> &'r str) -> ArrayRef {
    let rows: usize = spans.iter().map(|&(_, k)| k).sum();
    let bytes: usize = spans.iter().map(|&(m, k)| name(m).len() * k).sum();
    let mut b = StringBuilder::with_capacity(rows, bytes);
    for &(m, k) in spans {
        let s = name(m);
        for _ in 0..k {
            b.append_value(s);
        }
    }
    Arc::new(b.finish())
}

/// The output file being written.
enum Sink {
    Parquet(Box<parquet::arrow::ArrowWriter<BufWriter<File>>>),
    Arrow(Box<arrow_ipc::writer::FileWriter<BufWriter<File>>>),
}

impl Sink {
    fn create(format: Format, path: &Path, schema: &SchemaRef) -> Result<Sink, String> {
        let file = File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let w = BufWriter::with_capacity(1 << 20, file);
        match format {
            Format::Parquet => {
                use parquet::basic::{Compression as PqCompression, ZstdLevel};
                use parquet::file::properties::WriterProperties;
                let props = WriterProperties::builder()
                    .set_compression(PqCompression::ZSTD(ZstdLevel::default()))
                    .set_created_by(format!("strata {}", env!("CARGO_PKG_VERSION")))
                    .build();
                let writer = parquet::arrow::ArrowWriter::try_new(w, schema.clone(), Some(props))
                    .map_err(|e| format!("starting the Parquet file: {e}"))?;
                Ok(Sink::Parquet(Box::new(writer)))
            }
            Format::Arrow => {
                let writer = arrow_ipc::writer::FileWriter::try_new(w, schema)
                    .map_err(|e| format!("starting the Arrow file: {e}"))?;
                Ok(Sink::Arrow(Box::new(writer)))
            }
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self {
            Sink::Parquet(w) => w.write(batch).map_err(|e| format!("writing Parquet: {e}")),
            Sink::Arrow(w) => w.write(batch).map_err(|e| format!("writing Arrow IPC: {e}")),
        }
    }

    /// Writes the footer and makes the file durable.
    fn finish(self) -> Result<(), String> {
        let buf = match self {
            Sink::Parquet(w) => w.into_inner().map_err(|e| format!("finishing the Parquet file: {e}"))?,
            Sink::Arrow(w) => w.into_inner().map_err(|e| format!("finishing the Arrow file: {e}"))?,
        };
        let file = buf.into_inner().map_err(|e| format!("flushing the output: {}", e.error()))?;
        file.sync_all().map_err(|e| format!("syncing the output: {e}"))
    }
}

/// `OUT.tmp` next to `OUT`.
fn tmp_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn open_engine(dir: &Path) -> Result<Engine, String> {
    // Never create a data dir: a typo would otherwise export nothing, silently.
    if !dir.join("VERSION").is_file() {
        return Err(format!("{} is not a strata data dir (no VERSION file); pass --data-dir", dir.display()));
    }
    let mut config = EngineConfig::default();
    for t in 0..TIERS {
        config.storage.tiers[t].retention_secs = KEEP_SECS;
    }
    let opts = PersistOptions {
        dir: dir.to_path_buf(),
        wal: WalOptions::default(),
        compression: Compression::None,
        max_disk: [None; TIERS],
    };
    let (engine, rec) = Engine::open(config, Clock::System, &opts).map_err(|e| match e {
        EngineError::DataDirLocked { .. } => format!("{e} (stop the server before exporting)"),
        e => format!("opening {}: {e}", dir.display()),
    })?;
    for (path, reason) in &rec.quarantined {
        eprintln!("strata: warning: {} was quarantined ({reason}); its data is not exported", path.display());
    }
    Ok(engine)
}

pub fn run(a: ExportArgs) -> Result<(), String> {
    if a.from > a.to {
        clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!("--from ({}) is after --to ({}); both are inclusive epoch seconds\n", a.from, a.to),
        )
        .exit();
    }
    let tier = usize::from(a.tier);
    let engine = open_engine(&a.data_dir)?;
    let started = Instant::now();
    let state = engine.read().map_err(|e| e.to_string())?;
    let reg = state.catalog.registry();
    let store = &state.store;

    // Metrics by name, so exports of the same data compare equal.
    let mut metrics: Vec<(MetricId, i64)> = (0..reg.metrics().len())
        .filter_map(|i| MetricId::try_from(i).ok())
        .filter_map(|m| store.update_every(m).map(|ue| (m, ue)))
        .collect();
    metrics.sort_by(|&(x, _), &(y, _)| {
        let key = |m| (&reg.node_of(m).id, &reg.context_of(m).id, &reg.instance_of(m).id, &reg.metric(m).dimension);
        key(x).cmp(&key(y))
    });

    let schema = schema(tier, a.format.time_unit());
    let tmp = tmp_path(&a.out);
    let mut sink = Sink::create(a.format, &tmp, &schema)?;
    let result = (|| -> Result<(u64, usize), String> {
        let mut rows = Rows::new(schema.clone(), tier);
        let (mut total, mut exported_metrics) = (0u64, 0usize);
        let flush = |rows: &mut Rows, sink: &mut Sink, total: &mut u64| -> Result<(), String> {
            let before = *total;
            *total += rows.len() as u64;
            sink.write(&rows.take(reg)?)?;
            if *total / PROGRESS_ROWS > before / PROGRESS_ROWS {
                let secs = started.elapsed().as_secs_f64();
                eprintln!("strata: exported {} points so far ({:.0} points/s)", *total, *total as f64 / secs.max(1e-9));
            }
            Ok(())
        };
        for &(m, ue) in &metrics {
            let mut any = false;
            let mut err = Ok(());
            store.for_each_run(m, ue, tier, a.from.saturating_sub(1), a.to, |run| {
                for i in 0..run.len {
                    if err.is_err() || !run.is_valid(i) {
                        continue;
                    }
                    any = true;
                    rows.push(m, run.end_of(i), run.agg(i));
                    if rows.len() >= BATCH_ROWS {
                        err = flush(&mut rows, &mut sink, &mut total);
                    }
                }
            });
            err?;
            exported_metrics += usize::from(any);
        }
        if rows.len() > 0 {
            flush(&mut rows, &mut sink, &mut total)?;
        }
        Ok((total, exported_metrics))
    })();
    drop(state);
    let finished = result.and_then(|r| sink.finish().map(|()| r));
    let (total, exported_metrics) = match finished {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&tmp, &a.out) {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("renaming {} to {}: {e}", tmp.display(), a.out.display()));
    }
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    eprintln!("exported {total} points of {exported_metrics} metrics to {}", a.out.display());
    Ok(())
}
