//! Behaviour under concurrent load, against the real server: ingest is
//! never held up by queries, abandoned and overdue queries stop working,
//! oversized queries and batches are refused whole with a 4xx, and a mixed
//! load of many clients gets answers or clear 503s, never other 5xx, and
//! loses no acknowledged sample.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{exclusive, Auth, Server, TempDir};

/// Newest sample of the datasets here; the server's clock sits just after.
const NOW: i64 = 1_763_906_390; // 10 s before an hour boundary

/// The value every dataset here holds for metric `m` at `t`.
fn value(m: usize, t: i64) -> f64 {
    ((t * 7 + m as i64 * 13) % 1000) as f64 / 10.0
}

fn batch(node: &str, metrics: usize, from: i64, to: i64) -> Value {
    let series: Vec<Value> = (0..metrics)
        .map(|m| {
            let pts: Vec<Value> = (from..=to).map(|t| json!([t, value(m, t)])).collect();
            json!({"node": node, "context": "load.ctx", "instance": format!("i{}", m / 10),
                   "dimension": format!("d{}", m % 10), "points": pts})
        })
        .collect();
    json!({ "series": series })
}

/// `metrics` series of one node with `secs` of per-second history ending at NOW.
fn loaded(extra: &[&str], metrics: usize, secs: i64) -> Server {
    loaded_until(extra, metrics, secs, NOW, Some(NOW + 1))
}

/// The same, ending at `end`, with the server's clock at `clock` (`None`: the real one).
fn loaded_until(extra: &[&str], metrics: usize, secs: i64, end: i64, clock: Option<i64>) -> Server {
    let s = Server::start_with(TempDir::new("load"), clock, extra);
    let mut from = end - secs + 1;
    while from <= end {
        let to = (from + 599).min(end);
        s.ingest_ok(&batch("bulk", metrics, from, to));
        from = to + 1;
    }
    s
}

/// A slow query: every series, a raw-value time group, one-second points.
fn slow_query(secs: i64) -> Value {
    slow_query_until(secs, NOW)
}

fn slow_query_until(secs: i64, end: i64) -> Value {
    json!({"scope": {"contexts": ["load.ctx"]},
           "window": {"after": end - secs + 1, "before": end, "points": secs},
           "aggregations": {"metrics": [{"group_by": ["dimension", "instance"], "aggregation": "sum"}],
                            "time": {"time_group": "median"}}})
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn health(s: &Server) -> Value {
    let (status, body) = s.get("/health");
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn ingest_is_never_held_up_by_queries_or_seals() {
    let _one_at_a_time = exclusive();
    // Acknowledged before the fsync: this measures locks, not the disk. One
    // slow query can take many seconds on a loaded machine while ingest
    // goes on a second per 20 ms: the future limit must not end the test.
    let s = loaded(&["--max-queries", "4", "--fsync", "interval:100", "--max-future", "1d"], 200, 3600);
    let stop = AtomicBool::new(false);
    let (queries, ingest_ms) = std::thread::scope(|sc| {
        let queries = sc.spawn(|| {
            let mut n = 0;
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                let (status, body) = s.post_json("/api/v3/data", &slow_query(3600));
                assert_eq!(status, 200, "{body}");
                n += 1;
            }
            stop.store(true, Ordering::Relaxed);
            n
        });
        // Small batches, crossing the hour boundary (a seal) on the way.
        let mut lat = Vec::new();
        let mut t = NOW + 1;
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let (status, body) = s.post_json("/api/v1/ingest", &batch("live", 5, t, t));
            assert_eq!(status, 200, "{body}");
            lat.push(started.elapsed().as_secs_f64() * 1000.0);
            t += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        (queries.join().expect("query thread"), lat)
    });
    let mut ms = ingest_ms;
    let (p50, p99, n) = (percentile(&mut ms, 0.5), percentile(&mut ms, 0.99), ms.len());
    eprintln!("load: {n} ingests during {queries} slow queries: p50 {p50:.1} ms, p99 {p99:.1} ms");
    assert!(n >= 50, "only {n} ingests in 5 s");
    assert!(p99 < 100.0, "ingest p99 {p99:.1} ms while queries ran");
    assert!(health(&s)["tiers"][0]["sealed_spans"].as_u64().unwrap_or(0) >= 1, "the hour sealed during the test");
}

/// Heavy queries take at most `--max-heavy-queries` slots: with every
/// heavy client refused or queued, a light query still finds a slot at
/// once, even with a queue wait too short to outlast a heavy query. The
/// default (half the slots) and a bad flag value are checked too.
#[test]
fn light_queries_do_not_wait_behind_heavy_ones() {
    let _one_at_a_time = exclusive();
    let slots = |s: &Server| {
        let h = health(s);
        (h["queries"]["slots"].as_u64(), h["queries"]["heavy_slots"].as_u64())
    };
    assert_eq!(
        slots(&Server::start_with(TempDir::new("heavy-default"), None, &["--max-queries", "6"])),
        (Some(6), Some(3))
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--max-heavy-queries", "0"])
        .output()
        .expect("runs strata");
    assert_eq!(bad.status.code(), Some(2), "a bad flag value is a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--max-heavy-queries"), "the error names the flag");
    let s = loaded(&["--max-queries", "3", "--max-heavy-queries", "1", "--query-queue-wait", "100ms"], 200, 3600);
    assert_eq!(slots(&s), (Some(3), Some(1)));
    let stop = AtomicBool::new(false);
    let heavy: Mutex<BTreeMap<u16, u64>> = Mutex::default();
    let light = std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = s.post_json("/api/v3/data", &slow_query(3600));
                    if let Ok(mut h) = heavy.lock() {
                        *h.entry(status).or_default() += 1;
                    }
                }
            });
        }
        // Light queries only once a heavy one holds its permit.
        let t = Instant::now();
        while health(&s)["queries"]["heavy_busy"].as_u64() != Some(1) {
            assert!(t.elapsed() < Duration::from_secs(20), "no heavy query started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let small = json!({"scope": {"contexts": ["load.ctx"]}, "selectors": {"dimensions": ["d1"]},
                           "window": {"after": -600, "before": 0, "points": 60}});
        let statuses: Vec<u16> = (0..20).map(|_| s.post_json("/api/v3/data", &small).0).collect();
        stop.store(true, Ordering::Relaxed);
        statuses
    });
    let heavy = heavy.into_inner().expect("heavy statuses");
    eprintln!("load: light statuses {light:?}; heavy statuses {heavy:?}");
    assert!(light.iter().all(|&st| st == 200), "light queries refused: {light:?}");
    assert!(heavy.get(&503).copied().unwrap_or(0) > 0, "the heavy clients saturated their permit: {heavy:?}");
    assert!(heavy.keys().all(|&st| st == 200 || st == 503), "{heavy:?}");
}

#[test]
fn overdue_and_abandoned_queries_stop_working() {
    let _one_at_a_time = exclusive();
    let s = loaded(&[], 200, 3600);
    // Past its own deadline: a 504, and the work stops. The query takes
    // 70 ms and more on a fast idle machine: a deadline of 300 ms let it
    // finish there (a 200), so the deadline is far below that.
    let mut q = slow_query(3600);
    q["timeout"] = json!(10);
    let t = Instant::now();
    let (status, body) = s.post_json("/api/v3/data", &q);
    assert_eq!(status, 504, "{body}");
    assert!(t.elapsed() < Duration::from_secs(3), "504 after {:?}", t.elapsed());
    let idle = |s: &Server| {
        let t = Instant::now();
        while health(s)["queries"]["running"] != json!(0) {
            assert!(t.elapsed() < Duration::from_secs(1), "a query kept running: {}", health(s));
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed()
    };
    idle(&s);
    // A client that goes away: its query stops within a second of it.
    let body = serde_json::to_vec(&slow_query(3600)).expect("json");
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /api/v3/data HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        s.token,
        body.len()
    );
    sock.write_all(head.as_bytes()).and_then(|_| sock.write_all(&body)).expect("send");
    let t = Instant::now();
    while health(&s)["queries"]["running"] == json!(0) {
        assert!(t.elapsed() < Duration::from_secs(5), "the query never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(sock);
    let took = idle(&s);
    eprintln!("load: an abandoned query stopped {took:?} after its client left");
}

/// Clients that give up while their queries wait for a slot leave the
/// queue: its count once stayed at the queue's size for good (the wait's
/// future was dropped before it counted itself out), and later bursts got
/// 503s from an idle server.
#[test]
fn queued_queries_whose_clients_leave_free_the_queue() {
    let _one_at_a_time = exclusive();
    // The wait outlasts the test: only the disconnect can empty the queue.
    let s = loaded(&["--max-queries", "2", "--query-queue", "4", "--query-queue-wait", "60s"], 200, 3600);
    let body = serde_json::to_vec(&slow_query(3600)).expect("json");
    let addr = s.base.trim_start_matches("http://").to_string();
    let socks: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut sock = TcpStream::connect(&addr).expect("connect");
            let head = format!(
                "POST /api/v3/data HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                s.token,
                body.len()
            );
            sock.write_all(head.as_bytes()).and_then(|_| sock.write_all(&body)).expect("send");
            sock
        })
        .collect();
    let t = Instant::now();
    while health(&s)["queries"]["queued"] != json!(4) {
        assert!(t.elapsed() < Duration::from_secs(10), "the queue never filled: {}", health(&s));
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    drop(socks);
    let t = Instant::now();
    loop {
        let q = &health(&s)["queries"];
        if q["queued"] == json!(0) && q["slots_busy"] == json!(0) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "the queue kept its leavers: {q}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The whole queue is there again: as many waiters as before fit.
    let small = json!({"scope": {"contexts": ["load.ctx"]}, "selectors": {"dimensions": ["d1"]},
                       "window": {"after": NOW - 600, "before": NOW, "points": 60}});
    let refused = health(&s)["queries"]["refused"].clone();
    let statuses: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..6).map(|_| sc.spawn(|| s.post_json("/api/v3/data", &small).0)).collect();
        hs.into_iter().map(|h| h.join().expect("client")).collect()
    });
    assert!(statuses.iter().all(|&st| st == 200), "{statuses:?}");
    assert_eq!(health(&s)["queries"]["refused"], refused);
}

#[test]
fn oversized_queries_and_batches_are_refused_whole() {
    let s = loaded(&["--max-series", "150", "--max-query-metrics", "120", "--query-memory", "64MiB"], 100, 600);
    // groups x points far beyond the memory budget: a 400, at once.
    let huge = json!({"scope": {"contexts": ["load.ctx"]},
                      "window": {"after": NOW - 86_399, "before": NOW, "points": 86_400},
                      "aggregations": {"metrics": [{"group_by": ["instance", "dimension"], "aggregation": "sum"}]}});
    let t = Instant::now();
    let (status, body) = s.post_json("/api/v3/data", &huge);
    assert_eq!(status, 400, "{body}");
    assert!(t.elapsed() < Duration::from_secs(2), "refused after {:?}", t.elapsed());
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains("--query-memory") && msg.contains("fewer points"), "{msg}");
    // Hidden metrics (percentage denominators) count against the metrics limit.
    let _ = s.ingest_ok(&batch("other", 30, NOW - 10, NOW));
    let pct = json!({"scope": {"contexts": ["load.ctx"]}, "selectors": {"nodes": ["other"]},
                     "window": {"after": NOW - 60, "before": NOW, "points": 6}, "options": ["percentage"]});
    let (status, body) = s.post_json("/api/v3/data", &pct);
    assert_eq!(status, 400, "130 metrics in scope: {body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("130 metrics"), "{body}");
    // A batch that would pass --max-series is refused whole.
    let (status, body) = s.post_json("/api/v1/ingest", &batch("third", 30, NOW - 1, NOW));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("--max-series"), "{body}");
    assert_eq!(health(&s)["metrics"], json!(130), "nothing of the refused batch was applied");
    // A token's hourly new-series allowance: 429, then within it, fine.
    let (status, tok) = s.post_json(
        "/api/v1/tokens",
        &json!({"name": "writer", "scopes": ["strata:ingest:write"], "new_series_per_hour": 5}),
    );
    assert_eq!(status, 201, "{tok}");
    let h = format!("Bearer {}", tok["token"].as_str().expect("token"));
    let send = |b: &Value| s.post_json_auth("/api/v1/ingest", b, Auth::Header(&h));
    let (status, body) = send(&batch("w", 6, NOW, NOW));
    assert_eq!(status, 429, "{body}");
    let (status, body) = send(&batch("w", 5, NOW, NOW));
    assert_eq!((status, body["new_series"].clone()), (200, json!(5)), "{body}");
    let (status, _) = send(&batch("w2", 1, NOW, NOW));
    assert_eq!(status, 429, "the hour's allowance is spent");
    assert_eq!(health(&s)["status"], "ok");
}

/// What one kind of request saw.
#[derive(Default, Debug)]
struct Kind {
    ms: Vec<f64>,
    by_status: BTreeMap<u16, u64>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `STRATA_LOAD_CLIENTS` clients (64) for `STRATA_LOAD_SECS` (10) against a
/// server holding an hour of 200 series: ingest, small and heavy queries,
/// token checks. No 5xx but 503; every acknowledged sample is there after.
#[test]
fn a_mixed_load_gets_answers_or_clear_503s() {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (clients, secs) = (env("STRATA_LOAD_CLIENTS", 64) as usize, env("STRATA_LOAD_SECS", 10));
    let _one_at_a_time = exclusive();
    let start = now_secs();
    let s = loaded_until(&[], 200, 3600, start - 1, None);
    let kinds: [Mutex<Kind>; 4] = Default::default();
    // Per client, the seconds whose samples were acknowledged.
    let acked: Mutex<BTreeMap<usize, std::collections::BTreeSet<i64>>> = Mutex::default();
    let peak_rss = AtomicU64::new(s.rss_kib().0);
    let deadline = Instant::now() + Duration::from_secs(secs);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            while Instant::now() < deadline {
                peak_rss.fetch_max(s.rss_kib().0, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        for c in 0..clients {
            let (s, kinds, acked) = (&s, &kinds, &acked);
            sc.spawn(move || {
                let mut i = 0usize;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let (k, status) = match (c + i) % 8 {
                        0..=2 => {
                            // Ingest: this client's own two series, a point each.
                            let t = now_secs();
                            let (st, _) = s.post_json("/api/v1/ingest", &batch(&format!("c{c}"), 2, t, t));
                            if st == 200 {
                                if let Ok(mut a) = acked.lock() {
                                    a.entry(c).or_default().insert(t);
                                }
                            }
                            (0, st)
                        }
                        3..=5 => {
                            let q = json!({"scope": {"contexts": ["load.ctx"]}, "selectors": {"dimensions": ["d1"]},
                                           "window": {"after": -600, "before": 0, "points": 60}});
                            (1, s.post_json("/api/v3/data", &q).0)
                        }
                        6 => (2, s.post_json("/api/v3/data", &slow_query_until(1800, start - 1)).0),
                        _ => (3, s.request("/api/v1/whoami", Auth::Admin, None).status),
                    };
                    if let Ok(mut k) = kinds[k].lock() {
                        k.ms.push(started.elapsed().as_secs_f64() * 1000.0);
                        *k.by_status.entry(status).or_default() += 1;
                    }
                    i += 1;
                }
            });
        }
    });
    let names = ["ingest", "small query", "heavy query", "token check"];
    let (mut refused, mut total) = (0, 0);
    for (name, k) in names.iter().zip(&kinds) {
        let mut k = k.lock().expect("stats");
        let n = k.ms.len();
        let (p50, p99) = (percentile(&mut k.ms, 0.5), percentile(&mut k.ms, 0.99));
        eprintln!("load: {name}: {n} requests, p50 {p50:.1} ms, p99 {p99:.1} ms, statuses {:?}", k.by_status);
        for (&st, &c) in &k.by_status {
            assert!(st == 200 || st == 503, "{name}: {c} answers with status {st}");
        }
        refused += k.by_status.get(&503).copied().unwrap_or(0);
        total += n as u64;
    }
    let peak = peak_rss.load(Ordering::Relaxed);
    eprintln!(
        "load: {clients} clients, {secs} s: {total} requests, {refused} 503s ({:.1} %), peak RSS {} MiB",
        refused as f64 * 100.0 / total.max(1) as f64,
        peak / 1024
    );
    assert!(peak < 1024 * 1024, "peak RSS {} MiB", peak / 1024);
    // Every acknowledged sample is there: their sum, added up by the server.
    let acked = acked.into_inner().expect("acked");
    let expected: f64 = acked.values().flat_map(|ts| ts.iter()).map(|&t| value(0, t) + value(1, t)).sum();
    let q = json!({"scope": {"nodes": ["c*"], "contexts": ["load.ctx"]},
                   "window": {"after": start, "before": now_secs(), "points": 1},
                   "aggregations": {"metrics": [{"group_by": ["selected"], "aggregation": "sum"}],
                                    "time": {"time_group": "sum"}}, "options": ["unaligned"]});
    let body = s.query_ok(&q);
    let got: f64 =
        body["result"]["data"].as_array().map_or(0.0, |rows| rows.iter().filter_map(|r| r[1][0].as_f64()).sum());
    let n: usize = acked.values().map(|ts| ts.len()).sum();
    assert!(n > 0, "no ingest was acknowledged");
    assert!(
        (got - expected).abs() < 1e-6 * expected.max(1.0),
        "{n} acknowledged seconds sum to {expected}, stored {got}"
    );
}
