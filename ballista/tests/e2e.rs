//! strata → `export-parquet` → Ballista, end to end: a strata server
//! ingests two series over a bit more than an hour, the first hour seals and
//! is exported as Parquet; a `strata-ballista-scheduler` and two
//! `strata-ballista-executor`s start on 127.0.0.1, a Ballista client
//! registers the export (hive partitions `date`/`hour`) and runs
//! `nd_median` / `nd_percentile` grouped per node and minute (`nd_bucket`).
//! Every row equals DataFusion's answer in this process over the same
//! Parquet, and strata's own `/api/v3/data` answer for the same buckets.
//!
//! The strata binary: `$STRATA_BIN` when set, otherwise the test runs
//! `cargo build --bin strata` in the parent workspace (a no-op when it is
//! up to date) and uses `../target/debug/strata`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballista::prelude::SessionContextExt;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde_json::{json, Value};

/// A multiple of 3600.
const T0: i64 = 1_763_910_000;
/// Past the next hour and its 5-minute late grace, so the first hour seals.
const END: i64 = T0 + 3600 + 400;
/// The sealed (exported) hour holds point times T0 .. T0 + 3599.
const HOUR_END: i64 = T0 + 3600;

const QUERY: &str = "SELECT node, nd_bucket(60, ts) AS b, nd_median(value) AS median, \
     nd_percentile(value, 95) AS p95 FROM samples GROUP BY node, b ORDER BY node, b";

fn value(m: i64, t: i64) -> Option<f64> {
    let x = (t * 13 + m * 101) % 300;
    (x % 71 != 0).then(|| x as f64 / 4.0)
}

/// A unique directory under the system temp dir; removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("strata-ballista-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("creating a temp dir");
        TempDir(path)
    }

    fn str(&self) -> &str {
        self.0.to_str().expect("temp dir path is UTF-8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed on drop, its stderr kept line by line.
struct Proc {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(name: &str, bin: &Path, args: &[&str]) -> Proc {
        let mut cmd = Command::new(bin);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("STRATA_")) {
            cmd.env_remove(k);
        }
        cmd.env("RUST_LOG", "info");
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {name} ({}): {e}", bin.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        Proc { name: name.to_string(), child, lines }
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
    }

    /// Waits (at most `timeout`) until `found` holds for the log so far.
    fn wait_log(&mut self, what: &str, timeout: Duration, found: impl Fn(&[String]) -> bool) {
        let t = Instant::now();
        loop {
            if found(&self.lines.lock().unwrap_or_else(|p| p.into_inner())) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before {what}:\n{}", self.name, self.log());
            }
            assert!(t.elapsed() < timeout, "{}: no {what} within {timeout:?}:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn wait_port(p: &mut Proc, port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("{} exited ({status}):\n{}", p.name, p.log());
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{} not listening on {port} after 60 s:\n{}", p.name, p.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `$STRATA_BIN`, or the parent workspace's debug `strata`, built now.
fn strata_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("STRATA_BIN") {
        return PathBuf::from(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the ballista crate sits in the strata repo");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--bin", "strata"])
        .current_dir(root)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("running cargo build --bin strata");
    assert!(status.success(), "cargo build --bin strata failed in {}", root.display());
    root.join("target/debug/strata")
}

/// Whether the newest snapshot lists a sealed tier-0 file.
fn listed(data_dir: &Path) -> bool {
    let Ok(dirs) = std::fs::read_dir(data_dir.join("meta")) else { return false };
    dirs.flatten().any(|d| {
        std::fs::read(d.path().join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|m| {
                m["sealed"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|p| p.as_str().is_some_and(|p| p.starts_with("tier0"))))
            })
    })
}

/// A running `strata serve` and its admin token.
struct Strata {
    proc: Proc,
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Strata {
    fn start(bin: &Path, data: &TempDir) -> Strata {
        let test_now = (END + 60).to_string();
        let args = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.str(),
            "--no-demo",
            "--no-collector",
            "--test-now",
            &test_now,
        ];
        let mut proc = Proc::spawn("strata serve", bin, &args);
        proc.wait_log("'listening on'", Duration::from_secs(30), |l| l.iter().any(|l| l.contains("listening on http")));
        let log = proc.log();
        let pos = log.find("listening on http").expect("found above") + "listening on ".len();
        let base: String = log[pos..].chars().take_while(|c| !c.is_whitespace()).collect();
        let token = std::fs::read_to_string(data.0.join("admin.token")).expect("admin.token").trim().to_string();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Strata { proc, base, token, agent }
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_else(|e| panic!("POST {path}: reading: {e}"));
        assert_eq!(status, 200, "POST {path} {body}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: not JSON ({e}): {text}"))
    }
}

fn export(bin: &Path, data: &TempDir, to: &TempDir) {
    let mut cmd = Command::new(bin);
    cmd.args(["export-parquet", "--data-dir", data.str(), "--to", to.str()]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("STRATA_")) {
        cmd.env_remove(k);
    }
    let out = cmd.output().expect("running strata export-parquet");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && log.contains("exported 1 new span(s)"), "export-parquet: {:?}\n{log}", out.status);
}

/// One answer row: node, bucket end (unix seconds), median, p95.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    node: String,
    t: i64,
    median: Option<f64>,
    p95: Option<f64>,
}

fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        let col = |i: usize, t: &DataType| cast(b.column(i), t).unwrap_or_else(|e| panic!("column {i}: {e}"));
        let node = col(0, &DataType::Utf8);
        let t = col(1, &DataType::Int64);
        let (median, p95) = (col(2, &DataType::Float64), col(3, &DataType::Float64));
        let (node, t) = (node.as_string::<i32>(), t.as_primitive::<Int64Type>());
        let (median, p95) = (median.as_primitive::<Float64Type>(), p95.as_primitive::<Float64Type>());
        for i in 0..b.num_rows() {
            let f = |a: &datafusion::arrow::array::Float64Array| (!a.is_null(i)).then(|| a.value(i));
            out.push(Row {
                node: node.value(i).to_string(),
                t: t.value(i).div_euclid(1_000_000_000),
                median: f(median),
                p95: f(p95),
            });
        }
    }
    out
}

fn register_nd(ctx: &SessionContext) {
    for f in strata_sql::functions::aggregates() {
        ctx.register_udaf(f);
    }
    ctx.register_udf(ScalarUDF::from(strata_sql::functions::NdBucket::new()));
}

async fn run(ctx: &SessionContext, export: &Path) -> Vec<Row> {
    let opts = ParquetReadOptions::default()
        .table_partition_cols(vec![("date".to_string(), DataType::Utf8), ("hour".to_string(), DataType::Utf8)]);
    let dir = export.join("samples");
    let dir = format!("{}/", dir.to_str().expect("utf-8"));
    ctx.register_parquet("samples", &dir, opts).await.expect("registering the export");
    let df = ctx.sql(QUERY).await.unwrap_or_else(|e| panic!("planning {QUERY}: {e}"));
    let batches = tokio::time::timeout(Duration::from_secs(120), df.collect())
        .await
        .expect("the query finished within 120 s")
        .unwrap_or_else(|e| panic!("running {QUERY}: {e}"));
    rows(&batches)
}

/// Relative difference at most `rel` (absolute below 1e-12).
fn close(a: Option<f64>, b: Option<f64>, rel: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 || (a - b).abs() <= rel * a.abs().max(b.abs()),
        (a, b) => a == b,
    }
}

#[test]
fn ballista_nd_median_equals_strata() {
    let strata = strata_bin();
    let data = TempDir::new("data");
    let server = Strata::start(&strata, &data);
    let mut series = Vec::new();
    for (m, n) in [(0, "n1"), (1, "n2")] {
        let points: Vec<Value> = (T0 + 1..=END).map(|t| json!([t, value(m, t)])).collect();
        series.push(json!({"node": n, "context": "t.c", "instance": format!("t.c.{n}"), "dimension": "d1",
            "labels": {"rack": "r1"}, "points": points}));
    }
    let ingested = server.post("/api/v1/ingest", &json!({"series": series}));
    assert!(ingested["accepted"].as_u64().is_some_and(|n| n > 0), "{ingested}");
    // The first hour seals and a checkpoint lists it (in the background).
    let t = Instant::now();
    let tier0 = data.0.join("tier0");
    while std::fs::read_dir(&tier0).map(|d| d.count()).unwrap_or(0) == 0 || !listed(&data.0) {
        assert!(t.elapsed() < Duration::from_secs(60), "no sealed hour after 60 s:\n{}", server.proc.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = TempDir::new("parquet");
    export(&strata, &data, &out);

    // One scheduler, two executors.
    let sched_port = free_port();
    let sp = sched_port.to_string();
    let mut scheduler =
        Proc::spawn("scheduler", Path::new(env!("CARGO_BIN_EXE_strata-ballista-scheduler")), &["--port", &sp]);
    wait_port(&mut scheduler, sched_port);
    let work = TempDir::new("work");
    let mut executors = Vec::new();
    for i in 0..2 {
        let (port, grpc) = (free_port().to_string(), free_port().to_string());
        let dir = work.0.join(format!("e{i}"));
        std::fs::create_dir_all(&dir).expect("executor work dir");
        let args = [
            "--port",
            &port,
            "--grpc-port",
            &grpc,
            "--scheduler-port",
            &sp,
            "--work-dir",
            dir.to_str().expect("utf-8"),
            "--concurrent-tasks",
            "2",
        ];
        let exe = Path::new(env!("CARGO_BIN_EXE_strata-ballista-executor"));
        executors.push(Proc::spawn(&format!("executor {i}"), exe, &args));
    }
    scheduler.wait_log("two registered executors", Duration::from_secs(60), |l| {
        l.iter().filter(|l| l.contains("Received register executor request")).count() >= 2
    });

    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let distributed = rt.block_on(async {
        let ctx = SessionContext::remote(&format!("df://127.0.0.1:{sched_port}")).await.expect("connecting");
        register_nd(&ctx);
        run(&ctx, &out.0).await
    });
    let local = rt.block_on(async {
        let ctx = SessionContext::new();
        register_nd(&ctx);
        run(&ctx, &out.0).await
    });

    // Both nodes, buckets ending T0 + 60 .. T0 + 3600.
    assert_eq!(distributed.len(), 2 * 60, "{distributed:?}\nscheduler:\n{}", scheduler.log());
    assert_eq!(distributed.len(), local.len());
    assert!(distributed.iter().all(|r| r.median.is_some() && r.p95.is_some()), "{distributed:?}");
    // The plan ran on both executors (push scheduling, two task slots each).
    let tasks: Vec<usize> = executors.iter().map(|e| e.log().matches("Execute task").count()).collect();
    eprintln!("tasks run per executor: {tasks:?}");
    assert!(tasks.iter().all(|&n| n > 0), "tasks per executor {tasks:?}\nscheduler:\n{}", scheduler.log());
    for (d, l) in distributed.iter().zip(&local) {
        assert_eq!((&d.node, d.t), (&l.node, l.t));
        assert!(close(d.median, l.median, 1e-9) && close(d.p95, l.p95, 1e-9), "ballista {d:?} vs local {l:?}");
    }

    // strata's answer for the same buckets. The export holds the sealed hour
    // only (up to T0 + 3599), so the last bucket, which strata's store fills
    // up to T0 + 3600, is left out.
    let mut compared = 0;
    for n in ["n1", "n2"] {
        let answer = |tg: &str, opt: Option<&str>| {
            let mut time = json!({"time_group": tg});
            if let Some(o) = opt {
                time["time_group_options"] = json!(o);
            }
            server.post(
                "/api/v3/data",
                &json!({
                    "scope": {"contexts": ["t.c"], "nodes": [n]},
                    "window": {"after": T0 + 1, "before": HOUR_END, "points": 60},
                    "aggregations": {"metrics": [{"group_by": ["dimension"]}], "time": time},
                }),
            )
        };
        let (median, p95) = (answer("median", None), answer("percentile", Some("95")));
        let (median, p95) = (median["result"]["data"].as_array(), p95["result"]["data"].as_array());
        let (median, p95) = (median.expect("median data"), p95.expect("p95 data"));
        assert_eq!(median.len(), 60);
        for (m, p) in median.iter().zip(p95) {
            let t = m[0].as_i64().expect("time");
            assert_eq!(p[0].as_i64(), Some(t));
            if t == HOUR_END {
                continue;
            }
            let got = distributed.iter().find(|r| r.node == n && r.t == t);
            let got = got.unwrap_or_else(|| panic!("no Ballista row for {n} at {t}"));
            // Medians of quarters are exact; strata prints 7 decimals, so the
            // 95th percentile (interpolated) compares at that precision.
            assert!(close(got.median, m[1][0].as_f64(), 1e-9), "median {n} {t}: ballista {got:?}, strata {m}");
            let p = p[1][0].as_f64();
            let near = close(got.p95, p, 1e-6) || got.p95.zip(p).is_some_and(|(a, b)| (a - b).abs() <= 1e-7);
            assert!(near, "p95 {n} {t}: ballista {got:?}, strata {p:?}");
            compared += 1;
        }
    }
    assert_eq!(compared, 2 * 59);
    drop(executors);
}
