//! `strata export-parquet` while the server runs: sealed hours become
//! date/hour-partitioned Parquet with a manifest, a second run exports
//! nothing new, and DuckDB (the Python package from PyPI, in a venv under
//! target/) reads the export with no strata code. With `--features sql`
//! the same export goes to an S3-compatible server (moto, from PyPI,
//! started here on 127.0.0.1) and reads back equal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{describe, run_cli, Server, TempDir};

/// A multiple of 3600.
const T0: i64 = 1_763_910_000;
/// Past the next hour and its 5-minute late grace, so the first hour seals.
const END: i64 = T0 + 3600 + 400;

fn value(m: i64, t: i64) -> Option<f64> {
    let x = (t * 13 + m * 101) % 300;
    (x % 71 != 0).then(|| x as f64 / 4.0)
}

/// A venv under target/ with `packages` installed (once).
fn venv(name: &str, check: &str, packages: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target").join(name);
    let python = venv.join("bin/python");
    let ready = || Command::new(&python).args(["-c", check]).status().is_ok_and(|s| s.success());
    if !ready() {
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
        assert!(ok.is_ok_and(|s| s.success()), "python3 -m venv failed");
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(packages)
            .status();
        assert!(pip.is_ok_and(|s| s.success()), "pip install {packages:?} failed (PyPI must be reachable)");
        assert!(ready(), "{check} fails after installing {packages:?}");
    }
    venv
}

/// Runs a Python snippet, returns its stdout.
fn python(venv: &Path, code: &str) -> String {
    let out = Command::new(venv.join("bin/python")).args(["-c", code]).output().expect("running python");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// count, sum of values, distinct nodes, and the first partition of the
/// Parquet files under `dir`, as DuckDB reads them.
fn duckdb_summary(venv: &Path, dir: &Path) -> String {
    let glob = format!("{}/samples/**/*.parquet", dir.display());
    python(
        venv,
        &format!(
            "import duckdb; r = duckdb.sql(\"SELECT count(*), round(sum(value), 3), count(DISTINCT node), min(date)::VARCHAR, min(hour), \
             count(*) FILTER (WHERE labels LIKE '%rack%') FROM read_parquet('{glob}', hive_partitioning = true)\").fetchall()[0]; \
             print(','.join(str(x) for x in r))"
        ),
    )
}

fn export(data_dir: &Path, to: &str, env: &[(&str, String)]) -> String {
    let args = ["export-parquet", "--data-dir", data_dir.to_str().expect("utf-8"), "--to", to];
    let o = if env.is_empty() {
        run_cli(&args, None)
    } else {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.args(args).envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.output().expect("running strata")
    };
    assert!(o.status.success(), "{}", describe(&o));
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn export_parquet_runs_beside_the_server_and_duckdb_reads_it() {
    let s = Server::start(Some(END + 60));
    let mut series = Vec::new();
    for (m, n) in [(0, "n1"), (1, "n2")] {
        let points: Vec<Value> = (T0 + 1..=END).map(|t| json!([t, value(m, t)])).collect();
        series.push(json!({"node": n, "context": "t.c", "instance": format!("t.c.{n}"), "dimension": "d1",
            "labels": {"rack": "r1"}, "points": points}));
    }
    s.ingest_ok(&json!({"series": series}));
    // The first hour seals and a checkpoint lists it (in the background).
    let t = Instant::now();
    let tier0 = s.data_dir().join("tier0");
    while std::fs::read_dir(&tier0).map(|d| d.count()).unwrap_or(0) == 0 || !listed(s.data_dir()) {
        assert!(t.elapsed() < Duration::from_secs(60), "no sealed hour after 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = TempDir::new("parquet");
    let to = out.path.to_str().expect("utf-8").to_string();
    let log = export(s.data_dir(), &to, &[]);
    assert!(log.contains("exported 1 new span(s)"), "{log}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.path.join("_strata_export.json")).expect("manifest")).expect("json");
    let spans = manifest["spans"].as_object().expect("spans");
    assert_eq!(spans.len(), 1, "{manifest}");
    let (_, entry) = spans.iter().next().expect("one span");
    assert_eq!(entry["path"], format!("samples/date=2025-11-23/hour=15/ue1-s{T0}.parquet"));
    assert!(out.path.join(entry["path"].as_str().expect("path")).is_file());
    // Incremental: nothing new the second time.
    assert!(export(s.data_dir(), &to, &[]).contains("exported 0 new span(s)"));

    // The sealed span holds point times T0 .. T0 + 3599.
    let vals: Vec<f64> = (0..2).flat_map(|m| (T0 + 1..T0 + 3600).filter_map(move |t| value(m, t))).collect();
    let want = format!("{},{:.3},2,2025-11-23,15,{}", vals.len(), vals.iter().sum::<f64>(), vals.len());
    let py = venv("py-venv", "import duckdb, moto, boto3", &["duckdb==2.0.1", "moto[server]==5.2.5", "boto3"]);
    let got = duckdb_summary(&py, &out.path);
    let norm = |s: &str| {
        s.split(',').map(|x| x.parse::<f64>().map(|v| format!("{v:.3}")).unwrap_or(x.to_string())).collect::<Vec<_>>()
    };
    assert_eq!(norm(&got), norm(&want), "DuckDB read {got}, want {want}");

    #[cfg(feature = "sql")]
    s3_round_trip(&py, s.data_dir(), &norm(&want));
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

/// moto on 127.0.0.1, killed when dropped.
#[cfg(feature = "sql")]
struct Moto(std::process::Child);

#[cfg(feature = "sql")]
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(feature = "sql")]
fn s3_round_trip(py: &Path, data_dir: &Path, want: &[String]) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let child = Command::new(py.join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting moto_server");
    let _moto = Moto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let client = format!(
        "import boto3; c = boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id='test', \
         aws_secret_access_key='test', region_name='us-east-1')"
    );
    python(py, &format!("{client}; c.create_bucket(Bucket='metrics')"));
    let env = [
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
    ];
    let log = export(data_dir, "s3://metrics/strata", &env);
    assert!(log.contains("exported 1 new span(s)"), "{log}");
    assert!(export(data_dir, "s3://metrics/strata", &env).contains("exported 0 new span(s)"));
    let down = TempDir::new("s3-down");
    let keys = python(
        py,
        &format!(
            "{client}; import os\nkeys = [o['Key'] for o in c.list_objects_v2(Bucket='metrics', Prefix='strata/')['Contents']]\n\
             for k in keys:\n    p = os.path.join('{}', k[len('strata/'):]); os.makedirs(os.path.dirname(p), exist_ok=True); c.download_file('metrics', k, p)\n\
             print(' '.join(sorted(keys)))",
            down.path.display()
        ),
    );
    assert!(
        keys.contains("strata/_strata_export.json") && keys.contains("strata/samples/date=2025-11-23/hour=15/"),
        "{keys}"
    );
    let got = duckdb_summary(py, &down.path);
    let got: Vec<String> =
        got.split(',').map(|x| x.parse::<f64>().map(|v| format!("{v:.3}")).unwrap_or(x.to_string())).collect();
    assert_eq!(got, want);
}
