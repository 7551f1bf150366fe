//! `strata export`: a stopped server's data dir written as Parquet and
//! Arrow IPC files in long format, read back with the arrow/parquet readers
//! and compared row by row with what was ingested.

use std::fs::File;
use std::path::Path;
use std::process::Output;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType, TimestampSecondType, UInt32Type};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, TimeUnit};
use serde_json::{json, Value};

use crate::harness::{describe, run_cli, Server, TempDir};

/// Hour-aligned, so the two hours of data cross one tier-0 span boundary.
const T0: i64 = 1_700_000_000 - 1_700_000_000 % 3600;
/// Samples at T0 .. T0 + HOURS * 3600 (exclusive).
const HOURS: i64 = 2;
const NOW: i64 = T0 + HOURS * 3600 + 60;
/// Seconds per ingest batch.
const STEP: i64 = 600;

/// (node, dimension) of series `s`; they sort in this order.
fn name(s: usize) -> (String, String) {
    (format!("exp-n{s}"), format!("d{s}"))
}

/// The value series `s` has at second `t` (exact in binary).
fn value(s: usize, t: i64) -> f64 {
    s as f64 * 1000.0 + (t - T0) as f64 * 0.25
}

/// Explicit nulls: a short run in series 0, scattered seconds in series 1.
fn is_gap(s: usize, t: i64) -> bool {
    let k = t - T0;
    match s {
        0 => (100..110).contains(&k) || k == 3601,
        _ => k % 997 == 13,
    }
}

fn is_anomalous(s: usize, t: i64) -> bool {
    s == 1 && (t - T0) % 500 == 7
}

fn batch(series: usize, from: i64) -> Value {
    let series: Vec<Value> = (0..series)
        .map(|s| {
            let points: Vec<Value> = (from..from + STEP)
                .map(|t| match (is_gap(s, t), is_anomalous(s, t)) {
                    (true, _) => json!([t, null]),
                    (false, true) => json!([t, value(s, t), true]),
                    (false, false) => json!([t, value(s, t)]),
                })
                .collect();
            let (node, dim) = name(s);
            json!({"node": node, "context": "export.test", "dimension": dim, "update_every": 1, "points": points})
        })
        .collect();
    json!({"series": series})
}

/// A stopped server's data dir holding `series` series of HOURS hours.
fn stopped_data_dir(series: usize) -> TempDir {
    let server = Server::start_with(TempDir::new("export"), Some(NOW), &[]);
    let mut from = T0;
    while from < T0 + HOURS * 3600 {
        let (ok, late) = server.ingest_ok(&batch(series, from));
        assert_eq!((ok, late), ((series as i64 * STEP) as u64, 0));
        from += STEP;
    }
    server.stop()
}

fn run(args: &[&str]) -> Output {
    run_cli(args, None)
}

/// `strata export` over `[from, to]`; panics unless it succeeds.
fn export(dir: &Path, tier: u8, from: i64, to: i64, format: &str, out: &Path) -> String {
    let o = run(&[
        "export",
        "--data-dir",
        dir.to_str().expect("UTF-8 path"),
        "--tier",
        &tier.to_string(),
        "--from",
        &from.to_string(),
        "--to",
        &to.to_string(),
        "--format",
        format,
        out.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(o.status.code(), Some(0), "export failed: {}", describe(&o));
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    assert!(!Path::new(&tmp).exists(), "OUT.tmp is left behind");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_arrow(path: &Path) -> Vec<RecordBatch> {
    let reader = arrow_ipc::reader::FileReader::try_new(File::open(path).expect("open the arrow file"), None)
        .expect("an Arrow IPC file");
    reader.map(|b| b.expect("a record batch")).collect()
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).expect("open the parquet file");
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a Parquet reader")
        .map(|b| b.expect("a record batch"))
        .collect()
}

/// The `timestamp` column as epoch seconds: UTC seconds in Arrow files,
/// UTC milliseconds in Parquet (which has no second unit).
fn epoch_seconds(b: &RecordBatch) -> Vec<i64> {
    let col = b.column_by_name("timestamp").expect("a timestamp column");
    match col.data_type() {
        DataType::Timestamp(TimeUnit::Second, Some(tz)) if tz.as_ref() == "UTC" => {
            col.as_primitive::<TimestampSecondType>().values().to_vec()
        }
        DataType::Timestamp(TimeUnit::Millisecond, Some(tz)) if tz.as_ref() == "UTC" => {
            let ms = col.as_primitive::<TimestampMillisecondType>().values();
            assert!(ms.iter().all(|v| v % 1000 == 0), "whole seconds");
            ms.iter().map(|v| v / 1000).collect()
        }
        other => panic!("timestamp column has type {other}"),
    }
}

/// One exported tier-0 row.
#[derive(Debug, Clone, PartialEq)]
struct Raw {
    node: String,
    context: String,
    instance: String,
    dimension: String,
    t: i64,
    value: f64,
    anomalous: bool,
}

fn raw_rows(batches: &[RecordBatch]) -> Vec<Raw> {
    let mut out = Vec::new();
    for b in batches {
        let names: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["node", "context", "instance", "dimension", "timestamp", "value", "anomalous"]);
        let ts = epoch_seconds(b);
        let text = |i: usize| b.column(i).as_string::<i32>().clone();
        let (node, context, instance, dimension) = (text(0), text(1), text(2), text(3));
        let v = b.column(5).as_primitive::<Float64Type>();
        let a = b.column(6).as_boolean();
        for (i, &t) in ts.iter().enumerate() {
            out.push(Raw {
                node: node.value(i).to_string(),
                context: context.value(i).to_string(),
                instance: instance.value(i).to_string(),
                dimension: dimension.value(i).to_string(),
                t,
                value: v.value(i),
                anomalous: a.value(i),
            });
        }
    }
    out
}

/// What a tier-0 export of `[from, to]` must hold: every non-null sample,
/// by metric then time.
fn expected_raw(series: usize, from: i64, to: i64) -> Vec<Raw> {
    let mut out = Vec::new();
    for s in 0..series {
        let (node, dim) = name(s);
        for t in from.max(T0)..=to.min(T0 + HOURS * 3600 - 1) {
            if !is_gap(s, t) {
                out.push(Raw {
                    node: node.clone(),
                    context: "export.test".into(),
                    instance: "export.test".into(),
                    dimension: dim.clone(),
                    t,
                    value: value(s, t),
                    anomalous: is_anomalous(s, t),
                });
            }
        }
    }
    out
}

#[test]
fn tier0_arrow_and_parquet_hold_every_stored_point_in_range() {
    let dir = stopped_data_dir(2);
    let outdir = TempDir::new("export-out");
    // Across the hour boundary (a sealed span and the open one), clipped at both ends.
    let (from, to) = (T0 + 50, T0 + 4000);
    let want = expected_raw(2, from, to);
    assert_eq!(want.len(), 2 * 3951 - 10 - 1 - 3, "the dataset's gaps in range");
    for format in ["arrow", "parquet"] {
        let out = outdir.path.join(format!("t0.{format}"));
        let stderr = export(&dir.path, 0, from, to, format, &out);
        assert!(
            stderr.contains(&format!("exported {} points of 2 metrics to {}", want.len(), out.display())),
            "{format}: final line: {stderr}"
        );
        let (batches, unit) = match format {
            "arrow" => (read_arrow(&out), TimeUnit::Second),
            _ => (read_parquet(&out), TimeUnit::Millisecond),
        };
        assert_eq!(
            batches[0].schema().field(4).data_type(),
            &DataType::Timestamp(unit, Some("UTC".into())),
            "{format}: timestamp type"
        );
        let got = raw_rows(&batches);
        assert_eq!(got.len(), want.len(), "{format}: row count = non-null stored points in range");
        // Spot checks first, for a readable failure.
        let find = |node: &str, t: i64| got.iter().find(|r| r.node == node && r.t == t);
        let r = find("exp-n0", from).expect("first row of series 0");
        assert_eq!((r.dimension.as_str(), r.value, r.anomalous), ("d0", 12.5, false), "{format}");
        assert!(find("exp-n0", T0 + 105).is_none(), "{format}: a null is not exported");
        let r = find("exp-n1", T0 + 3507).expect("an anomalous point");
        assert_eq!((r.dimension.as_str(), r.value, r.anomalous), ("d1", 1000.0 + 3507.0 * 0.25, true), "{format}");
        let r = find("exp-n1", to).expect("last row");
        assert_eq!((r.dimension.as_str(), r.value), ("d1", 2000.0), "{format}");
        assert!(find("exp-n0", from - 1).is_none() && find("exp-n1", to + 1).is_none(), "{format}: range is inclusive");
        assert_eq!(got, want, "{format}: every row, by metric then time");
    }
    // Readers that ignore the embedded Arrow schema (DuckDB, Spark) see a UTC timestamp too.
    let file = File::open(outdir.path.join("t0.parquet")).expect("open the parquet file");
    let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let plain = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .expect("a Parquet file");
    assert_eq!(
        plain.schema().field_with_name("timestamp").expect("timestamp column").data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        "Parquet has no second unit: stored as UTC milliseconds"
    );
}

#[test]
fn tier1_export_has_consistent_aggregates() {
    let dir = stopped_data_dir(2);
    let outdir = TempDir::new("export-out");
    let out = outdir.path.join("t1.parquet");
    let (from, to) = (T0 + 60, T0 + 3600);
    let stderr = export(&dir.path, 1, from, to, "parquet", &out);
    assert!(stderr.contains("exported 120 points of 2 metrics"), "{stderr}");
    let batches = read_parquet(&out);
    let mut rows = 0;
    for b in &batches {
        let names: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(
            names,
            [
                "node",
                "context",
                "instance",
                "dimension",
                "timestamp",
                "value",
                "min",
                "max",
                "sum",
                "count",
                "anomaly_count"
            ]
        );
        let node = b.column(0).as_string::<i32>();
        let ts = epoch_seconds(b);
        let f = |i: usize| b.column(i).as_primitive::<Float64Type>();
        let (avg, min, max, sum) = (f(5), f(6), f(7), f(8));
        let count = b.column(9).as_primitive::<UInt32Type>();
        let anomalies = b.column(10).as_primitive::<UInt32Type>();
        for (i, &end) in ts.iter().enumerate() {
            let s: usize = node.value(i).trim_start_matches("exp-n").parse().expect("series number");
            assert_eq!(end % 60, 0, "minute-aligned point end");
            // A minute point ending at `end` covers (end - 60, end].
            let samples: Vec<i64> = (end - 59..=end).filter(|&t| !is_gap(s, t)).collect();
            let n = samples.len() as u32;
            let expect_sum: f64 = samples.iter().map(|&t| value(s, t)).sum();
            let what = format!("series {s} minute ending {end}");
            assert_eq!(count.value(i), n, "{what}: count");
            assert_eq!(min.value(i), value(s, samples[0]), "{what}: min");
            assert_eq!(max.value(i), value(s, samples[samples.len() - 1]), "{what}: max");
            assert_eq!(sum.value(i), expect_sum, "{what}: sum");
            assert_eq!(avg.value(i), expect_sum / f64::from(n), "{what}: value is the average");
            let a = samples.iter().filter(|&&t| is_anomalous(s, t)).count() as u32;
            assert_eq!(anomalies.value(i), a, "{what}: anomaly_count");
            if (s, end) == (0, T0 + 600) {
                assert_eq!(n, 60, "a full minute has 60 samples");
            }
            if (s, end) == (0, T0 + 120) {
                assert_eq!(n, 50, "the minute with 10 nulls");
            }
            rows += 1;
        }
    }
    assert_eq!(rows, 120, "60 minutes of 2 metrics");
}

#[test]
fn large_exports_are_written_in_batches() {
    // 10 series * 7200 s = 72,000 points, more than one 64k batch.
    let series = 10;
    let dir = stopped_data_dir(series);
    let outdir = TempDir::new("export-out");
    let out = outdir.path.join("all.arrow");
    let stderr = export(&dir.path, 0, T0, NOW, "arrow", &out);
    let want = expected_raw(series, T0, NOW);
    assert!(stderr.contains(&format!("exported {} points of {series} metrics", want.len())), "{stderr}");
    let batches = read_arrow(&out);
    assert!(batches.len() >= 2, "{} batches", batches.len());
    assert!(batches.iter().all(|b| b.num_rows() <= 65_536), "batches of at most 64k rows");
    assert_eq!(raw_rows(&batches), want);
    // Exporting again replaces the file.
    export(&dir.path, 0, T0, T0 + 9, "arrow", &out);
    assert_eq!(raw_rows(&read_arrow(&out)).len(), series * 10);
}

#[test]
fn export_while_the_server_runs_exits_1() {
    let server = Server::start_with(TempDir::new("export-live"), Some(NOW), &[]);
    server.ingest_ok(&batch(1, T0));
    let outdir = TempDir::new("export-out");
    let out = outdir.path.join("live.parquet");
    let o = run(&[
        "export",
        "--data-dir",
        server.data_dir().to_str().expect("UTF-8 path"),
        "--tier=0",
        "--from",
        &T0.to_string(),
        "--to",
        &NOW.to_string(),
        "--format=parquet",
        out.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!out.exists(), "nothing written");
    // The server is unaffected.
    server.ingest_ok(&batch(1, T0 + STEP));
}

#[test]
fn bad_usage_is_refused_with_a_clear_message() {
    let outdir = TempDir::new("export-out");
    let out = outdir.path.join("x.arrow");
    let out = out.to_str().expect("UTF-8 path");
    let missing = outdir.path.join("no-such-dir");
    let missing = missing.to_str().expect("UTF-8 path");
    let base = ["export", "--data-dir", missing];
    let cases: [(&[&str], i32, &str); 5] = [
        (&["--tier", "7", "--from", "0", "--to", "5", "--format", "arrow", out], 2, "--tier"),
        (&["--tier", "0", "--from", "10", "--to", "5", "--format", "arrow", out], 2, "--from"),
        (&["--tier", "0", "--from", "0", "--to", "5", "--format", "csv", out], 2, "--format"),
        (&["--tier", "0", "--from", "0", "--to", "5", "--format", "arrow"], 2, "OUT"),
        (&["--tier", "0", "--from", "0", "--to", "5", "--format", "arrow", out], 1, "not a strata data dir"),
    ];
    for (args, code, says) in cases {
        let all: Vec<&str> = base.iter().chain(args).copied().collect();
        let o = run(&all);
        assert_eq!(o.status.code(), Some(code), "strata {all:?}: {}", describe(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(says), "strata {all:?}: stderr should mention {says:?}: {stderr}");
    }
    assert!(!Path::new(missing).exists(), "export never creates a data dir");
    assert!(!Path::new(out).exists());
}
