//! POST /api/v1/ingest: accepted counts, late points, atomic validation
//! with error paths, size cap, last-write-wins.

use std::io::{Read, Write};

use serde_json::{json, Value};

use crate::dataset::{self, Window, BATCH_SECS, NOW, SPAN, T0};
use crate::harness::Server;

/// One series with constant-value points at T0 + k for k in `ks`.
fn series(context: &str, dim: &str, points: Vec<Value>) -> Value {
    json!({"node": "n1", "context": context, "instance": context, "dimension": dim, "units": "u",
           "update_every": 1, "points": points})
}

fn points(ks: impl IntoIterator<Item = i64>, v: f64) -> Vec<Value> {
    ks.into_iter().map(|k| json!([T0 + k, v])).collect()
}

/// Per-second values (oldest first) of series `id` of a context grouped by
/// dimension, over `(T0+from-1, T0+to]`; None when the series is absent.
fn per_second(s: &Server, context: &str, id: &str, from: i64, to: i64) -> Option<Vec<Option<f64>>> {
    let w = Window { end: to, v: 1, points: to - from + 1 };
    let resp = s.query_ok(&json!({
        "scope": {"contexts": [context]},
        "window": w.json(),
        "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "sum"}],
                         "time": {"time_group": "average"}},
        "options": ["flip"],
    }));
    let col = resp["result"]["labels"].as_array()?.iter().position(|l| l.as_str() == Some(id))?;
    let rows = resp["result"]["data"].as_array()?;
    assert_eq!(rows.len() as i64, w.points, "rows for {context}: {}", resp["result"]);
    Some(rows.iter().map(|r| r[col][0].as_f64()).collect())
}

fn assert_error(status: u16, body: &Value, want: u16, what: &str) {
    assert_eq!(status, want, "{what}: {body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: no 'error' in {body}");
    assert_eq!(body["status"], json!(want), "{what}: 'status' in {body}");
}

/// `path` names `want` exactly, or an element inside it (`want[1]`, `want.x`).
fn path_names(body: &Value, want: &str) -> bool {
    body["path"].as_str().is_some_and(|p| {
        p == want || p.strip_prefix(want).is_some_and(|rest| rest.starts_with('[') || rest.starts_with('.'))
    })
}

/// The context is unknown to the server: no series, and no row carries a
/// value cell (whether rows are listed at all is checked in queries.rs).
fn assert_nothing_stored(s: &Server, context: &str) {
    let resp = s.query_ok(&json!({
        "scope": {"contexts": [context]},
        "window": {"after": T0 + 1, "before": T0 + SPAN, "points": 24},
    }));
    assert_eq!(resp["result"]["labels"], json!(["time"]), "{context} must not exist: {}", resp["result"]);
    let rows = resp["result"]["data"].as_array().expect("result.data is an array");
    assert!(rows.iter().all(|r| r.as_array().is_some_and(|c| c.len() == 1)), "{context}: cells in {rows:?}");
    let summary_contexts = resp["summary"]["contexts"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(summary_contexts, 0, "{context} must not be listed in summary.contexts: {}", resp["summary"]);
}

#[test]
fn dataset_ingests_in_half_hour_batches_with_every_point_accepted() {
    let s = Server::start(Some(NOW));
    let reports = dataset::load(&s);
    assert_eq!(reports.len() as i64, SPAN / BATCH_SECS, "one batch per half hour");
    for (sent, accepted, late) in &reports {
        assert_eq!(*sent, 12 * BATCH_SECS as u64, "12 series x 1800 points");
        assert_eq!(accepted, sent);
        assert_eq!(*late, 0);
    }
    // The last and the first second are both stored.
    let first = per_second(&s, "system.cpu", "user", 1, 2).expect("user series");
    let last = per_second(&s, "system.cpu", "user", SPAN - 1, SPAN).expect("user series");
    let ms = dataset::metrics();
    let user_sum =
        |k| -> f64 { ms.iter().filter(|m| m.dimension == "user").filter_map(|m| dataset::sample(m, k)).sum() };
    for (got, k) in [(first[0], 1), (first[1], 2), (last[1], SPAN)] {
        let want = user_sum(k);
        assert!(got.is_some_and(|g| crate::harness::approx_eq(g, want)), "user at T0+{k}: {got:?}, expected {want}");
    }
}

#[test]
fn late_points_older_than_the_head_span_are_counted_and_not_visible() {
    let s = Server::start(Some(T0 + 5410));
    // 1801..=5400: the newest sample is T0+5400, so the head span is
    // [T0+3600, T0+7200) and anything before T0+3600 is late.
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("late.test", "x", points(1801..=5400, 10.0))]}));
    assert_eq!((accepted, late), (3600, 0));
    let mut pts = points([1, 2, 1900, 3599], 99.0);
    pts.push(json!([T0 + 5000, 55.0]));
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("late.test", "x", pts)]}));
    assert_eq!(late, 4, "T0+1, T0+2, T0+1900, T0+3599 are older than the head span start T0+3600");
    assert_eq!(accepted, 1, "only T0+5000 is inside the head span");

    // Where there was no data, the late points did not create any.
    let v = per_second(&s, "late.test", "x", 1, 2);
    assert!(v.as_ref().is_none_or(|v| v.iter().all(Option::is_none)), "late points at T0+1,2 visible: {v:?}");
    // Where there was data, the late points did not overwrite it.
    let v = per_second(&s, "late.test", "x", 1899, 1900).expect("series x");
    assert_eq!(v, [Some(10.0), Some(10.0)], "T0+1900 was overwritten by a late point");
    let v = per_second(&s, "late.test", "x", 3599, 3600).expect("series x");
    assert_eq!(v, [Some(10.0), Some(10.0)], "T0+3599 was overwritten by a late point");
    // The in-head update landed (last write wins).
    let v = per_second(&s, "late.test", "x", 4999, 5001).expect("series x");
    assert_eq!(v, [Some(10.0), Some(55.0), Some(10.0)]);
}

#[test]
fn far_future_points_are_refused_and_cannot_make_current_data_late() {
    let now = T0 + 1810;
    let s = Server::start(Some(now));
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("future.test", "x", points(1..=1800, 3.0))]}));
    assert_eq!((accepted, late), (1800, 0));
    // Another node's series, 2 years ahead: one bad point refuses its batch.
    let far = T0 + 2 * 365 * 86_400;
    let bad = json!({"series": [
        {"node": "other", "context": "future.other", "dimension": "y", "points": [[now, 1.0]]},
        {"node": "other", "context": "future.other", "dimension": "z", "points": [[now, 1.0], [far, 1.0]]},
    ]});
    let (status, body) = s.post_json("/api/v1/ingest", &bad);
    assert_error(status, &body, 400, "a point two years ahead");
    assert_eq!(body["path"], json!("series[1].points[1]"), "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("ahead of the server clock")), "{body}");
    assert_nothing_stored(&s, "future.other");
    // Everything older is still there and current points are not late.
    assert_eq!(per_second(&s, "future.test", "x", 1799, 1800), Some(vec![Some(3.0), Some(3.0)]));
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("future.test", "x", points([1801], 4.0))]}));
    assert_eq!((accepted, late), (1, 0));
    // Within the bound (10 minutes by default) a point ahead is fine.
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("future.test", "x", points([1810 + 600], 5.0))]}));
    assert_eq!((accepted, late), (1, 0));
    let (status, body) =
        s.post_json("/api/v1/ingest", &json!({"series": [series("future.test", "x", points([1810 + 601], 5.0))]}));
    assert_error(status, &body, 400, "601 s ahead");
    // --max-future widens it.
    let wide = Server::start_with(crate::harness::TempDir::new("future"), Some(now), &["--max-future", "1h"]);
    let (accepted, _) = wide.ingest_ok(&json!({"series": [series("future.test", "x", points([1810 + 3600], 5.0))]}));
    assert_eq!(accepted, 1);
}

#[test]
fn another_clients_batch_just_behind_the_hour_boundary_still_lands() {
    let s = Server::start(Some(T0 + 4000));
    // Client A is already 30 s into the next hour (T0+3600 starts a span)...
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("grace.a", "x", points(3571..=3630, 1.0))]}));
    assert_eq!((accepted, late), (60, 0));
    // ...client B's batch for the last 30 s of the previous hour still lands.
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("grace.b", "x", points(3570..=3599, 2.0))]}));
    assert_eq!((accepted, late), (30, 0), "within the 5 min grace period");
    assert_eq!(per_second(&s, "grace.b", "x", 3598, 3599), Some(vec![Some(2.0), Some(2.0)]));
    // Once the newest sample is 5 min into the new hour, the old one seals.
    let (accepted, _) = s.ingest_ok(&json!({"series": [series("grace.a", "x", points([3900], 1.0))]}));
    assert_eq!(accepted, 1);
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("grace.b", "x", points([3599], 9.0))]}));
    assert_eq!((accepted, late), (0, 1), "after the grace period");
    assert_eq!(per_second(&s, "grace.b", "x", 3599, 3599), Some(vec![Some(2.0)]), "the late point changed nothing");

    // --late-grace 0 seals at once.
    let strict = Server::start_with(crate::harness::TempDir::new("grace0"), Some(T0 + 4000), &["--late-grace", "0"]);
    strict.ingest_ok(&json!({"series": [series("grace.a", "x", points(3571..=3630, 1.0))]}));
    let (accepted, late) = strict.ingest_ok(&json!({"series": [series("grace.b", "x", points(3570..=3599, 2.0))]}));
    assert_eq!((accepted, late), (0, 30));
}

#[test]
fn point_at_the_head_span_start_is_not_late() {
    let s = Server::start(Some(T0 + 5410));
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("edge.test", "x", points(3000..=5400, 1.0))]}));
    assert_eq!((accepted, late), (2401, 0));
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("edge.test", "x", points([3599, 3600], 7.0))]}));
    assert_eq!(
        (accepted, late),
        (1, 1),
        "head span starts at T0+3600: T0+3599 is late, T0+3600 (not older than the start) is accepted"
    );
    let v = per_second(&s, "edge.test", "x", 3599, 3601).expect("series x");
    assert_eq!(v, [Some(1.0), Some(7.0), Some(1.0)]);
}

#[test]
fn bad_point_in_second_series_rejects_the_whole_batch_naming_the_point() {
    let s = Server::start(Some(NOW));
    let mut bad = points(1..=3, 1.0);
    bad.push(json!([123, "x"]));
    let batch = json!({"nodes": [{"id": "n1", "hostname": "host-1", "labels": {}}],
                       "series": [series("atomic.ok", "a", points(1..=100, 5.0)), series("atomic.bad", "b", bad)]});
    let (status, body) = s.post_json("/api/v1/ingest", &batch);
    assert_error(status, &body, 400, "point [123, \"x\"]");
    assert!(path_names(&body, "series[1].points[3]"), "path should name series[1].points[3]: {body}");
    assert_nothing_stored(&s, "atomic.ok");
    assert_nothing_stored(&s, "atomic.bad");
}

#[test]
fn missing_context_is_400_naming_the_series_and_applies_nothing() {
    let s = Server::start(Some(NOW));
    let mut no_ctx = series("x", "b", points(1..=3, 1.0));
    no_ctx.as_object_mut().expect("object").remove("context");
    let batch = json!({"series": [series("atomic.ok2", "a", points(1..=10, 5.0)), no_ctx]});
    let (status, body) = s.post_json("/api/v1/ingest", &batch);
    assert_error(status, &body, 400, "missing context");
    assert!(path_names(&body, "series[1]"), "path should name series[1] (or its context): {body}");
    assert!(
        body["path"].as_str() == Some("series[1]") || body["path"].as_str() == Some("series[1].context"),
        "path: {body}"
    );
    assert_nothing_stored(&s, "atomic.ok2");
}

#[test]
fn update_every_zero_is_400_naming_update_every_and_applies_nothing() {
    let s = Server::start(Some(NOW));
    let mut ue0 = series("atomic.ue0", "b", points(1..=3, 1.0));
    ue0["update_every"] = json!(0);
    let batch = json!({"series": [series("atomic.ok3", "a", points(1..=10, 5.0)), ue0]});
    let (status, body) = s.post_json("/api/v1/ingest", &batch);
    assert_error(status, &body, 400, "update_every 0");
    assert_eq!(body["path"], json!("series[1].update_every"), "{body}");
    assert_nothing_stored(&s, "atomic.ok3");
    assert_nothing_stored(&s, "atomic.ue0");
}

#[test]
fn malformed_json_and_wrong_types_are_400_json_errors_with_paths() {
    let s = Server::start(Some(NOW));
    for raw in [&b"{\"series\": ["[..], b"not json at all", b""] {
        let (status, body) = s.post_raw("/api/v1/ingest", raw);
        assert_error(status, &body, 400, &format!("body {:?}", String::from_utf8_lossy(raw)));
    }
    let ok = || series("types.ok", "a", points(1..=3, 1.0));
    let mut cases: Vec<(Value, &str)> = vec![(json!({"series": {"a": 1}}), "series")];
    let mut s0 = ok();
    s0["points"] = json!("abc");
    cases.push((json!({"series": [ok(), s0]}), "series[1].points"));
    let mut s0 = ok();
    s0["points"] = json!([[T0 + 1, 1.0], [T0 + 2, true]]);
    cases.push((json!({"series": [s0]}), "series[0].points[1]"));
    let mut s0 = ok();
    s0["points"] = json!([[T0 + 1, 1.0], ["later", 1.0]]);
    cases.push((json!({"series": [s0]}), "series[0].points[1]"));
    let mut s0 = ok();
    s0["points"] = json!([[T0 + 1]]);
    cases.push((json!({"series": [s0]}), "series[0].points[0]"));
    let mut s0 = ok();
    s0["dimension"] = json!(42);
    cases.push((json!({"series": [ok(), ok(), s0]}), "series[2].dimension"));
    let mut s0 = ok();
    s0["update_every"] = json!(-5);
    cases.push((json!({"series": [s0]}), "series[0].update_every"));
    for (batch, path) in cases {
        let (status, body) = s.post_json("/api/v1/ingest", &batch);
        assert_error(status, &body, 400, path);
        assert!(path_names(&body, path), "expected path {path}: got {body}");
    }
    assert_nothing_stored(&s, "types.ok");
}

#[test]
fn a_body_of_more_than_one_json_document_is_refused_whole() {
    let s = Server::start(Some(NOW));
    let one = |ctx: &str| json!({"series": [series(ctx, "a", points(1..=3, 1.0))]}).to_string();
    for (raw, what) in [
        (format!("{}{}", one("twice.first"), one("twice.second")), "two batches back to back"),
        (format!("{} this is not json {{{{", one("twice.first")), "a batch and garbage"),
    ] {
        let (status, body) = s.post_raw("/api/v1/ingest", raw.as_bytes());
        assert_error(status, &body, 400, what);
        assert!(body["error"].as_str().unwrap_or_default().contains("one JSON document"), "{what}: {body}");
    }
    assert_nothing_stored(&s, "twice.first");
    assert_nothing_stored(&s, "twice.second");
    // The same for a query body.
    let q = json!({"scope": {"contexts": ["twice.first"]}}).to_string();
    let (status, body) = s.post_raw("/api/v3/data", format!("{q}{q}").as_bytes());
    assert_error(status, &body, 400, "two query bodies");
}

#[test]
fn an_instance_in_a_second_context_is_400_naming_it() {
    let s = Server::start(Some(NOW));
    let in_ctx = |ctx: &str, dim: &str, v: f64| {
        let mut x = series(ctx, dim, points(1..=3, v));
        x["instance"] = json!("shared");
        x
    };
    s.ingest_ok(&json!({"series": [in_ctx("ctx.alpha", "d", 1.0)]}));
    // Against the server's catalog, for a known dimension and a new one,
    // and within one batch: refused whole, the series of ctx.alpha untouched.
    for (batch, path) in [
        (json!({"series": [in_ctx("ctx.beta", "d", 2.0)]}), "series[0].context"),
        (json!({"series": [in_ctx("ctx.alpha", "d", 5.0), in_ctx("ctx.gamma", "new", 3.0)]}), "series[1].context"),
        (json!({"series": [in_ctx("ctx.delta", "x", 1.0), in_ctx("ctx.epsilon", "x", 1.0)]}), "series[0].context"),
    ] {
        let (status, body) = s.post_json("/api/v1/ingest", &batch);
        assert_error(status, &body, 400, path);
        assert_eq!(body["path"], json!(path), "{body}");
        assert!(body["error"].as_str().unwrap_or_default().contains("'shared'"), "{body}");
    }
    for ctx in ["ctx.beta", "ctx.gamma", "ctx.delta", "ctx.epsilon"] {
        assert_nothing_stored(&s, ctx);
    }
    assert_eq!(per_second(&s, "ctx.alpha", "d", 1, 3), Some(vec![Some(1.0); 3]));
    assert_eq!(per_second(&s, "ctx.alpha", "new", 1, 3), None);
}

#[test]
fn body_over_64_mib_is_413_json() {
    let s = Server::start(Some(NOW));
    let mut conn = s.raw_ingest("application/json", 64 * 1024 * 1024 + 1);
    conn.write_all(b"{\"series\": [").expect("the body's start");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the JSON body is complete (or the server closes).
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading the 413 answer: {e}; got so far: {}", String::from_utf8_lossy(&buf)),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((_, body)) = text.split_once("\r\n\r\n") {
            if serde_json::from_str::<Value>(body.trim()).is_ok() {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    assert!(text.starts_with("HTTP/1.1 413"), "expected 413, got: {text}");
    let body: Value = serde_json::from_str(text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("").trim())
        .unwrap_or_else(|e| panic!("413 body is not JSON ({e}): {text}"));
    assert_error(413, &body, 413, "64 MiB + 1");
    assert!(body["hint"].as_str().is_some_and(|h| h.contains("split an ingest batch")), "{body}");
}

/// A query body over its limit (8 MiB) is no ingest batch: its hint says
/// to narrow the request, not to split a batch.
#[test]
fn a_query_body_over_its_limit_is_413_with_a_query_hint() {
    let s = Server::start(Some(NOW));
    let mut big = b"{\"scope\": {\"contexts\": [".to_vec();
    big.resize(8 * 1024 * 1024 + 1, b' ');
    let (status, body) = s.post_raw("/api/v3/data", &big);
    assert_error(status, &body, 413, "8 MiB + 1 of query");
    let hint = body["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("narrow") && !hint.contains("ingest"), "{body}");
}

/// Most HTTP clients send the whole body before they read the answer: the
/// server keeps reading an oversized body after its 413 (then closes, as
/// after any refused body), so such a client gets the 413, not a broken pipe.
#[test]
fn a_client_that_sends_the_whole_oversized_body_still_gets_the_413() {
    let s = Server::start(Some(NOW));
    let len = 64 * 1024 * 1024 + 1;
    let mut conn = s.raw_ingest("application/json", len);
    conn.write_all(&vec![b' '; len]).expect("the whole body is sent: the server reads it after its 413");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("the answer, then the server closes");
    assert!(text.starts_with("HTTP/1.1 413"), "expected 413, got: {text}");
    let body: Value = serde_json::from_str(text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("").trim())
        .unwrap_or_else(|e| panic!("413 body is not JSON ({e}): {text}"));
    assert_error(413, &body, 413, "64 MiB + 1");
}

#[test]
fn last_write_to_a_slot_wins_within_and_across_batches() {
    let s = Server::start(Some(T0 + 100));
    let pts = vec![json!([T0 + 10, 1.0]), json!([T0 + 10, 2.0]), json!([T0 + 11, 3.0]), json!([T0 + 12, 4.0])];
    let (accepted, late) = s.ingest_ok(&json!({"series": [series("lww.test", "x", pts)]}));
    assert_eq!((accepted, late), (4, 0));
    let (accepted, late) = s
        .ingest_ok(&json!({"series": [series("lww.test", "x", vec![json!([T0 + 11, 30.0]), json!([T0 + 12, null])])]}));
    assert_eq!((accepted, late), (2, 0));
    let v = per_second(&s, "lww.test", "x", 10, 12).expect("series x");
    assert_eq!(v, [Some(2.0), Some(30.0), None], "last write wins; an explicit null is a gap");
}

#[test]
fn instance_defaults_to_context_and_unknown_node_is_created() {
    let s = Server::start(Some(T0 + 100));
    let batch = json!({"series": [{"node": "fresh-node", "context": "dflt.ctx", "dimension": "d",
                                   "points": [[T0 + 1, 1.5], [T0 + 2, 2.5]]}]});
    let (accepted, late) = s.ingest_ok(&batch);
    assert_eq!((accepted, late), (2, 0));
    let resp = s.query_ok(&json!({
        "scope": {"contexts": ["dflt.ctx"]},
        "window": {"after": T0 + 1, "before": T0 + 2, "points": 1},
        "aggregations": {"metrics": [{"group_by": ["instance"], "aggregation": "sum"}],
                         "time": {"time_group": "average"}},
    }));
    let labels = resp["result"]["labels"].as_array().expect("labels").clone();
    assert_eq!(labels.len(), 2, "one instance: {labels:?}");
    assert!(labels[1].as_str().is_some_and(|l| l.starts_with("dflt.ctx@")), "instance id = context@guid: {labels:?}");
    let nodes = resp["summary"]["nodes"].as_array().expect("summary.nodes");
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let v = resp["result"]["data"][0][1][0].as_f64();
    assert_eq!(v, Some(2.0), "average of 1.5 and 2.5: {}", resp["result"]);
}
