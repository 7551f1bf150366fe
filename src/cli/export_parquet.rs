//! `strata export-parquet`: sealed spans as long-format Parquet for other
//! engines (DataFusion, Ballista, DuckDB, Spark, Trino), incrementally,
//! while the server runs.
//!
//! Layout under `--to` (a directory, or `s3://bucket/prefix` in builds with
//! `--features sql`):
//!
//! ```text
//! samples/date=YYYY-MM-DD/hour=HH/ue{update_every}-s{span start}.parquet   tier 0, one file per sealed span
//! _strata_export.json                                                      the manifest
//! ```
//!
//! Columns: `node`, `context`, `instance`, `dimension`, `labels` (the
//! instance's labels as JSON text), `ts` (UTC milliseconds, the sample's
//! time), `value`, `anomalous`; one row per stored sample (gaps omitted),
//! ordered by metric names then time; zstd. `date` and `hour` (the span's
//! start, UTC) are Hive partition columns.
//!
//! Reading a running server's data dir is safe: sealed span files are
//! immutable and written atomically, and the newest `meta/<lsn>/`
//! snapshot names them and holds the catalog that resolves their metric
//! ids. Nothing takes the data dir's lock. A span retention deleted
//! meanwhile is skipped (exported next time if it comes back, which it
//! does not). Each Parquet file is written whole (temp file and rename, or
//! one object PUT) before the manifest lists it, and the manifest is
//! rewritten after every file, so an interrupted export resumes where it
//! stopped and a reader never sees a partial file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use clap::Args;
use serde::{Deserialize, Serialize};
use strata_engine::catalog::Catalog;
use strata_engine::model::MetricId;
use strata_engine::persist::read_newest_snapshot;
use strata_engine::storage::segment::Segment;
use strata_engine::storage::segment_file::{open_segment, parse_name};
use strata_engine::storage::RowData;

use super::object_dest::Dest;

/// The manifest's name under `--to`.
pub const MANIFEST: &str = "_strata_export.json";

#[derive(Debug, Args)]
pub struct ExportParquetArgs {
    /// Data directory of the server (it may be running).
    #[arg(long, env = "STRATA_DATA_DIR", default_value = "./strata-data")]
    pub data_dir: PathBuf,
    /// Where to write: a directory, or s3://bucket/prefix (builds with --features sql;
    /// credentials, region and endpoint from AWS_* variables).
    #[arg(long = "to", env = "STRATA_EXPORT_TO")]
    pub to: String,
}

/// What has been exported: sealed span file -> the Parquet object it became.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub spans: BTreeMap<String, Exported>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Exported {
    pub path: String,
    pub rows: u64,
    pub metrics: u64,
}

pub fn schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("node"),
        text("context"),
        text("instance"),
        text("dimension"),
        text("labels"),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("value", DataType::Float64, false),
        Field::new("anomalous", DataType::Boolean, false),
    ]))
}

/// Year, month, day of a day number since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `samples/date=YYYY-MM-DD/hour=HH/ue{ue}-s{start}.parquet`.
pub fn object_path(ue: i64, start: i64) -> String {
    let (y, m, d) = civil(start.div_euclid(86_400));
    let hour = start.rem_euclid(86_400) / 3600;
    format!("samples/date={y:04}-{m:02}-{d:02}/hour={hour:02}/ue{ue}-s{start}.parquet")
}

/// The newest complete snapshot: (sealed files, catalog). Retried when a
/// checkpoint replaces it while it is read.
fn snapshot(data_dir: &Path) -> Result<(Vec<String>, Catalog), String> {
    if !data_dir.join("meta").is_dir() {
        return Err(format!("{} is not a strata data dir (no meta/)", data_dir.display()));
    }
    let mut last_err = String::new();
    for _ in 0..5 {
        match read_newest_snapshot(data_dir) {
            Ok(found) => return Ok(found.unwrap_or_default()),
            Err(e) => last_err = e.to_string(),
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!("reading the newest snapshot: {last_err}"))
}

/// One tier-0 span as Parquet bytes: (bytes, rows, metrics).
fn span_parquet(cat: &Catalog, seg: &Segment) -> Result<(Vec<u8>, u64, u64), String> {
    let reg = cat.registry();
    let known = |m: MetricId| (m as usize) < reg.metrics().len();
    let mut ids: Vec<MetricId> = seg.metric_ids().into_iter().filter(|&m| known(m)).collect();
    ids.sort_by(|&x, &y| {
        let key = |m| (&reg.node_of(m).id, &reg.context_of(m).id, &reg.instance_of(m).id, &reg.metric(m).dimension);
        key(x).cmp(&key(y))
    });
    let (mut meta, mut ts, mut value, mut anomalous) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut metrics = 0u64;
    let mut decoded = Vec::new();
    for m in ids {
        let Some(run) = seg.run(m) else { continue };
        let labels = serde_json::to_string(&reg.instance_of(m).labels).unwrap_or_default();
        let names = [
            reg.node_of(m).id.clone(),
            reg.context_of(m).id.clone(),
            reg.instance_of(m).id.clone(),
            reg.metric(m).dimension.clone(),
            labels,
        ];
        let before = ts.len();
        // Codec rows decode whole (a per-point read would find its frame
        // each time); plain rows are read in place.
        decoded.clear();
        if let RowData::Encoded(row) = run.data {
            row.decode_into(&mut decoded);
        }
        for i in (0..run.len).filter(|&i| run.is_valid(i)) {
            ts.push(run.end_of(i) * 1000);
            value.push(decoded.get(i).copied().unwrap_or_else(|| run.agg(i).sum));
            anomalous.push(run.counts(i).1 > 0);
        }
        let n = ts.len() - before;
        if n > 0 {
            metrics += 1;
            meta.push((names, n));
        }
    }
    let text = |k: usize| -> ArrayRef {
        // from_iter_values needs an exact size: flat_map has no upper bound.
        let v: Vec<&str> = meta.iter().flat_map(|(names, n)| std::iter::repeat_n(names[k].as_str(), *n)).collect();
        Arc::new(StringArray::from_iter_values(v))
    };
    let rows = ts.len() as u64;
    let columns: Vec<ArrayRef> = vec![
        text(0),
        text(1),
        text(2),
        text(3),
        text(4),
        Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
        Arc::new(Float64Array::from(value)),
        Arc::new(BooleanArray::from(anomalous)),
    ];
    let batch = RecordBatch::try_new(schema(), columns).map_err(|e| format!("building a batch: {e}"))?;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(1 << 20))
        .set_created_by(format!("strata {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema(), Some(props))
        .map_err(|e| format!("starting a Parquet file: {e}"))?;
    w.write(&batch).map_err(|e| format!("writing Parquet: {e}"))?;
    let bytes = w.into_inner().map_err(|e| format!("finishing a Parquet file: {e}"))?;
    Ok((bytes, rows, metrics))
}

pub fn run(a: ExportParquetArgs) -> Result<(), String> {
    let dest = Dest::parse(&a.to)?;
    let mut manifest: Manifest = match dest.get(MANIFEST)? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| format!("{MANIFEST} at {}: {e}", a.to))?,
        None => Manifest { version: 1, ..Manifest::default() },
    };
    let (sealed, cat) = snapshot(&a.data_dir)?;
    let (mut files, mut rows) = (0u64, 0u64);
    for rel in sealed {
        let Some(name) = Path::new(&rel).file_name().and_then(|n| n.to_str()).and_then(parse_name) else { continue };
        if name.tier != 0 || manifest.spans.contains_key(&rel) {
            continue;
        }
        let seg = match open_segment(&a.data_dir.join(&rel)) {
            Ok((_, seg)) => seg,
            // Dropped by retention since the snapshot was written.
            Err(e) if !e.is_corruption() => continue,
            Err(e) => return Err(format!("{rel}: {e}")),
        };
        let (bytes, n, metrics) = span_parquet(&cat, &seg)?;
        let path = object_path(name.update_every, name.start);
        dest.put(&path, bytes)?;
        manifest.spans.insert(rel, Exported { path, rows: n, metrics });
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| format!("encoding {MANIFEST}: {e}"))?;
        dest.put(MANIFEST, text)?;
        files += 1;
        rows += n;
    }
    eprintln!("exported {files} new span(s), {rows} rows, to {} ({} span(s) in all)", a.to, manifest.spans.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_utc_dates_and_hours() {
        assert_eq!(object_path(1, 0), "samples/date=1970-01-01/hour=00/ue1-s0.parquet");
        assert_eq!(object_path(1, 1_763_906_400), "samples/date=2025-11-23/hour=14/ue1-s1763906400.parquet");
        assert_eq!(civil(19_782), (2024, 2, 29));
    }
}
