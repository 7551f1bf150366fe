//! Durability through real processes: SIGKILL at random moments while a
//! client streams batches, corrupted files, restarts, and a second server
//! on the same data dir. Every acknowledged sample must survive; nothing
//! that was never sent may appear.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{shared_turn, Auth, Server, TempDir};

const T0: i64 = 1_700_000_000 - 1_700_000_000 % 3600;
const SERIES: usize = 4;
/// Seconds of data per batch.
const STEP: i64 = 120;
const NOW: i64 = T0 + 400 * 3600;

/// The value series `s` has at second `t`: any stored value can be checked.
fn value(s: usize, t: i64) -> f64 {
    (s as f64) * 1000.0 + (t - T0) as f64 * 0.5
}

fn batch(from: i64) -> Value {
    let series: Vec<Value> = (0..SERIES)
        .map(|s| {
            let points: Vec<Value> = (from..from + STEP).map(|t| json!([t, value(s, t)])).collect();
            json!({"node": "crash", "context": "crash.test", "dimension": format!("d{s}"), "points": points})
        })
        .collect();
    json!({"series": series})
}

/// Every stored (t, value) of series `s` in `[from, to]`, read at tier 0 with one row per second.
fn stored(server: &Server, s: usize, from: i64, to: i64) -> Vec<(i64, Option<f64>)> {
    let body = json!({"scope": {"contexts": ["crash.test"]}, "selectors": {"dimensions": [format!("d{s}")]},
        "window": {"after": from, "before": to, "points": (to - from + 1), "tier": 0},
        "options": ["flip", "unaligned"]});
    let r = server.query_ok(&body);
    r["result"]["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| (row[0].as_i64().expect("t"), row.get(1).and_then(|c| c[0].as_f64())))
        .collect()
}

/// A deterministic xorshift, so failures reproduce.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_sample() {
    let cycles: usize = std::env::var("STRATA_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut dir = TempDir::new("crash");
    let mut sent_upto = T0; // next batch start (client side: every batch ever sent)
    let mut acked: Vec<i64> = Vec::new();
    for cycle in 0..cycles {
        let server = Server::start_with(dir, Some(NOW), &["--fsync", "always"]);
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let next_from = Arc::new(Mutex::new(sent_upto));
        let kill_after = Duration::from_millis(50 + next(&mut seed) % 400);
        let (stop2, acks2, next2) = (stop.clone(), acks.clone(), next_from.clone());
        let (url, token) = (server.url("/api/v1/ingest"), server.token.clone());
        let client = std::thread::spawn(move || {
            let agent = crate::harness::agent();
            while !stop2.load(Ordering::Relaxed) {
                let from = {
                    let mut n = next2.lock().expect("lock");
                    let f = *n;
                    *n += STEP;
                    f
                };
                let bytes = serde_json::to_vec(&batch(from)).expect("encode");
                let res = agent
                    .post(&url)
                    .header("Authorization", &format!("Bearer {token}"))
                    .header("Content-Type", "application/json")
                    .send(&bytes[..]);
                match res {
                    Ok(r) if r.status().as_u16() == 200 => acks2.lock().expect("lock").push(from),
                    _ => break, // killed mid-request: not acknowledged
                }
            }
        });
        std::thread::sleep(kill_after);
        dir = server.stop(); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        client.join().expect("client thread");
        acked.extend(acks.lock().expect("lock").iter().copied());
        sent_upto = *next_from.lock().expect("lock");
        assert!(cycle < 3 || !acked.is_empty(), "no batch was ever acknowledged");
    }
    let server = Server::start_with(dir, Some(NOW), &[]);
    let last = sent_upto - 1;
    let mut checked = 0;
    for s in 0..SERIES {
        // Windows under the 86,400-point cap.
        let mut rows = Vec::new();
        let mut a = T0;
        while a <= last {
            let b = (a + 20_000).min(last);
            rows.extend(stored(&server, s, a, b));
            a = b + 1;
        }
        let have: std::collections::HashMap<i64, f64> = rows.iter().filter_map(|(t, v)| v.map(|v| (*t, v))).collect();
        for (t, v) in &have {
            assert_eq!(*v, value(s, *t), "series {s} at {t}: a value that was never sent");
        }
        for &from in &acked {
            for t in from..from + STEP {
                assert_eq!(have.get(&t), Some(&value(s, t)), "series {s}: acknowledged sample at {t} is missing");
                checked += 1;
            }
        }
    }
    eprintln!("crash test: {cycles} SIGKILL cycles, {} batches acknowledged, {checked} samples verified", acked.len());
    assert!(checked > 0);
}

/// Ingests `hours` of data, then waits until the closed hours are laid out
/// and checkpointed (that happens after the answers): the tests look at the
/// files, or kill the server, next.
fn ingest_hours(server: &Server, hours: i64) {
    let mut from = T0;
    while from < T0 + hours * 3600 {
        let (ok, late) = server.ingest_ok(&batch(from));
        assert_eq!((ok, late), ((SERIES as i64 * STEP) as u64, 0));
        from += STEP;
    }
    server.settle();
}

#[test]
fn restart_preserves_query_answers_exactly() {
    let server = Server::start_with(TempDir::new("restart"), Some(NOW), &[]);
    ingest_hours(&server, 3);
    let bodies = [
        json!({"window": {"after": T0 + 1, "before": T0 + 3 * 3600, "points": 30}, "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "sum"}]}}),
        json!({"window": {"after": T0 + 1, "before": T0 + 3 * 3600, "points": 7, "tier": 1}, "aggregations": {"time": {"time_group": "max"}}}),
        json!({"window": {"after": T0 + 1800, "before": T0 + 9000, "points": 100}, "aggregations": {"time": {"time_group": "median"}, "metrics": [{"group_by": ["selected"]}]}}),
    ];
    let answers = |s: &Server| -> Vec<Value> { bodies.iter().map(|b| s.query_ok(b)["result"].clone()).collect() };
    let before = answers(&server);

    // Killed: the WAL tail after the last checkpoint is replayed.
    let server = Server::start_with(server.stop(), Some(NOW), &[]);
    assert_eq!(before, answers(&server), "after SIGKILL");

    // Stopped cleanly: the final checkpoint leaves nothing to replay.
    let server = Server::start_with(server.stop_gracefully(), Some(NOW), &[]);
    assert_eq!(before, answers(&server), "after SIGTERM");
    let log = server.stderr_text();
    assert!(log.contains("storage recovered") && log.contains("replayed=0"), "{log}");

    // A data dir of an early build (format 1, snapshots in snap/) is upgraded.
    let dir = server.stop_gracefully();
    std::fs::rename(dir.path.join("meta"), dir.path.join("snap")).expect("make an early-layout dir");
    std::fs::write(dir.path.join("VERSION"), "1\n").expect("write VERSION 1");
    let server = Server::start_with(dir, Some(NOW), &[]);
    assert_eq!(before, answers(&server), "after the upgrade");
    assert!(server.data_dir().join("meta").is_dir() && !server.data_dir().join("snap").exists());
    let version = std::fs::read_to_string(server.data_dir().join("VERSION")).expect("VERSION");
    assert_eq!(version.trim(), "7", "upgraded, so older builds refuse the dir");
}

fn tier0_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("tier0")).expect("tier0").flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

#[test]
fn flipped_bytes_in_a_segment_quarantine_it_and_the_rest_still_serves() {
    let server = Server::start_with(TempDir::new("flip"), Some(NOW), &[]);
    ingest_hours(&server, 3);
    let dir = server.stop();
    let files = tier0_files(&dir.path);
    assert!(files.len() >= 2, "sealed hours on disk: {files:?}");
    let victim = &files[0];
    let mut bytes = std::fs::read(victim).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(victim, &bytes).expect("write");
    let server = Server::start_with(dir, Some(NOW), &[]);
    let q: Vec<_> = std::fs::read_dir(server.data_dir().join("quarantine")).expect("q").flatten().collect();
    assert_eq!(q.len(), 1, "the damaged file is quarantined");
    assert!(server.stderr_text().contains("quarantine"), "and the log says so");
    // The second hour (another file) is intact.
    let rows = stored(&server, 1, T0 + 3601, T0 + 7200);
    assert!(rows.iter().all(|(t, v)| *v == Some(value(1, *t))), "hour two intact");
}

#[test]
fn a_second_server_on_the_same_data_dir_exits_1() {
    let server = Server::start_with(TempDir::new("twice"), None, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo", "--no-collector", "--data-dir"])
        .arg(server.data_dir())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another strata process"), "{err}");
}

#[test]
fn an_unknown_future_version_refuses_to_start() {
    let _turn = shared_turn();
    let dir = TempDir::new("version");
    std::fs::write(dir.path.join("VERSION"), "99\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo", "--no-collector", "--data-dir"])
        .arg(&dir.path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("format version 99"));
}

#[test]
fn a_torn_wal_tail_is_truncated_and_earlier_batches_survive() {
    for cut in [1usize, 9, 100] {
        let server = Server::start_with(TempDir::new("torn"), Some(NOW), &[]);
        for k in 0..3 {
            server.ingest_ok(&batch(T0 + k * STEP));
        }
        let dir = server.stop();
        let mut wal: Vec<_> = std::fs::read_dir(dir.path.join("wal"))
            .expect("wal")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        wal.sort();
        let last = wal.last().expect("a WAL segment");
        let len = std::fs::metadata(last).expect("meta").len();
        std::fs::OpenOptions::new().write(true).open(last).expect("open").set_len(len - cut as u64).expect("truncate");
        let started = Instant::now();
        let server = Server::start_with(dir, Some(NOW), &[]);
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(server.stderr_text().contains("wal_truncated_bytes"), "recovery reports the truncation");
        let rows = stored(&server, 0, T0, T0 + 3 * STEP - 1);
        let have = rows.iter().filter(|(_, v)| v.is_some()).count() as i64;
        assert_eq!(have, 2 * STEP, "cut {cut}: the two earlier batches survive, the torn one is gone");
        let (status, _) = server.get_auth("/health", Auth::None);
        assert_eq!(status, 200);
    }
}

#[test]
fn disk_budget_drops_the_oldest_tier0_spans_and_queries_fall_through_to_tier1() {
    let server = Server::start_with(TempDir::new("budget"), Some(NOW), &["--max-disk-tier0", "1B"]);
    ingest_hours(&server, 3);
    assert!(tier0_files(server.data_dir()).is_empty(), "every sealed tier-0 span is over the budget");
    // The first hour now lives only in tier 1: an average still answers.
    let body = json!({"scope": {"contexts": ["crash.test"]}, "selectors": {"dimensions": ["d2"]},
        "window": {"after": T0 + 1, "before": T0 + 3600, "points": 6}});
    let r = server.query_ok(&body);
    let rows = r["result"]["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 6);
    for row in rows {
        let (t, v) = (row[0].as_i64().expect("t"), row[1][0].as_f64().expect("value from tier 1"));
        // Mean of value(2, t) over the bucket (t - 600, t].
        let want = value(2, t) - 299.5 * 0.5;
        assert!((v - want).abs() < 1e-6, "{t}: {v} vs {want}");
    }
    assert!(r["db"]["per_tier"][1]["points"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn compressed_interval_synced_store_with_age_retention_survives_restart() {
    let flags = ["--compression", "zstd", "--fsync", "interval:50", "--retention-tier0", "2h"];
    let server = Server::start_with(TempDir::new("flags"), Some(NOW), &flags);
    ingest_hours(&server, 4);
    // Retention runs when a span seals: at the fourth hour, hour one is over
    // 2 h old and goes; hours two and three stay as sealed zstd files.
    assert_eq!(tier0_files(server.data_dir()).len(), 2, "{:?}", tier0_files(server.data_dir()));
    let body = json!({"scope": {"contexts": ["crash.test"]}, "window": {"after": T0 + 3601, "before": T0 + 4 * 3600 - 1, "points": 20, "tier": 0}});
    let before = server.query_ok(&body)["result"].clone();
    let dir = server.stop();
    let server = Server::start_with(dir, Some(NOW), &flags);
    assert_eq!(server.query_ok(&body)["result"], before);
    let old = stored(&server, 0, T0 + 1, T0 + 3000);
    assert!(old.iter().all(|(_, v)| v.is_none()), "tier 0 no longer holds hour one");
}

#[test]
fn serve_reads_a_toml_config_and_rejects_bad_flag_values() {
    let _turn = shared_turn();
    let dir = TempDir::new("config");
    let cfg = dir.path.join("strata.toml");
    std::fs::write(
        &cfg,
        format!("listen = \"127.0.0.1:0\"\ndata_dir = {:?}\ndemo = false\ncollector = false\n", dir.path.join("data")),
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().expect("stderr")));
    let listening = lines.by_ref().take(50).map_while(Result::ok).any(|l| l.contains("listening on http://127.0.0.1:"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "serve started from the config file");
    assert!(dir.path.join("data").join("admin.token").exists(), "data_dir came from the config");

    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nplanet = \"mars\"\n").expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_strata")).args(["serve", "--config"]).arg(&cfg).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("planet"), "names the bad key");

    for (flag, value) in [
        ("--fsync", "sometimes"),
        ("--compression", "brotli"),
        ("--retention-tier0", "soon"),
        ("--max-disk-tier0", "lots"),
        ("--rate-limit", "fast"),
        ("--storage-tiers", "4"),
        ("--header-timeout", "0s"),
        ("--late-grace", "2h"),
        ("--max-future", "0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_strata")).args(["serve", flag, value]).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains(value), "{flag}: the error names the value");
    }
}
