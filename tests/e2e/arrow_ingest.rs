//! `POST /api/v1/ingest` with an Arrow IPC stream body
//! (`application/vnd.apache.arrow.stream`), through the real server and the
//! `strata ingest` CLI: accepted samples read back, bad streams are 400s
//! naming the column or row and change nothing, oversized bodies are 413s.

use std::io::Read;

use serde_json::{json, Value};
use strata_engine::ingest::arrow::{encode_stream, CONTENT_TYPE};
use strata_engine::ingest::{IngestBatch, Point, SeriesSpec};

use crate::dataset::{NOW, T0};
use crate::harness::{agent, describe, run_cli, Resp, Server, TempDir};

fn batch(context: &str, from: i64, to: i64) -> IngestBatch {
    let series = ["user", "system"]
        .iter()
        .enumerate()
        .map(|(i, dim)| SeriesSpec {
            node: Some("n1".into()),
            context: context.into(),
            dimension: dim.to_string(),
            points: (from..=to).map(|k| Point::new(T0 + k, Some(k as f64 + i as f64 * 0.5))).collect(),
            ..Default::default()
        })
        .collect();
    IngestBatch { nodes: Vec::new(), series }
}

fn post_arrow(s: &Server, body: &[u8]) -> (u16, Value) {
    let resp = agent()
        .post(&s.url("/api/v1/ingest"))
        .header("Authorization", &format!("Bearer {}", s.token))
        .header("Content-Type", CONTENT_TYPE)
        .send(body)
        .expect("POST an Arrow stream");
    let r = Resp::from_http(resp).expect("read the answer");
    (r.status, r.json())
}

/// Per-second values of dimension `dim` of `context` over `T0+1 ..= T0+to`.
fn values(s: &Server, context: &str, dim: &str, to: i64) -> Vec<Option<f64>> {
    let resp = s.query_ok(&json!({
        "scope": {"contexts": [context]},
        "window": {"after": T0 + 1, "before": T0 + to, "points": to},
        "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "sum"}],
                         "time": {"time_group": "average"}},
        "options": ["flip"],
    }));
    let labels = resp["result"]["labels"].as_array().cloned().unwrap_or_default();
    let Some(col) = labels.iter().position(|l| l.as_str() == Some(dim)) else { return Vec::new() };
    resp["result"]["data"].as_array().expect("rows").iter().map(|r| r[col][0].as_f64()).collect()
}

#[test]
fn an_arrow_stream_is_ingested_and_reads_back() {
    let s = Server::start(Some(NOW));
    let body = encode_stream(&batch("arrow.ctx", 1, 60)).expect("encode");
    let (status, report) = post_arrow(&s, &body);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report, json!({"accepted": 120, "rejected_late": 0, "new_series": 2}));
    let user = values(&s, "arrow.ctx", "user", 60);
    assert_eq!(user, (1..=60).map(|k| Some(k as f64)).collect::<Vec<_>>());
    assert_eq!(values(&s, "arrow.ctx", "system", 60)[9], Some(10.5));
}

#[test]
fn bad_streams_are_400_naming_where_and_apply_nothing() {
    let s = Server::start(Some(NOW));
    let (status, body) = post_arrow(&s, b"this is not arrow");
    assert_eq!((status, body["path"].as_str()), (400, Some("stream")), "{body}");
    assert_eq!(body["status"], json!(400));
    // A valid stream whose second series is bad: nothing of it may land.
    let mut b = batch("arrow.bad", 1, 10);
    b.series[1].points[3].value = Some(f64::INFINITY);
    let (status, body) = post_arrow(&s, &encode_stream(&b).expect("encode"));
    assert_eq!((status, body["path"].as_str()), (400, Some("rows[13].value")), "{body}");
    let mut b = batch("arrow.bad", 1, 10);
    b.series[1].update_every = Some(0);
    let (status, body) = post_arrow(&s, &encode_stream(&b).expect("encode"));
    assert_eq!((status, body["path"].as_str()), (400, Some("rows[10].update_every")), "{body}");
    assert!(values(&s, "arrow.bad", "user", 10).is_empty(), "nothing of a refused batch is stored");
}

/// `fixtures/arrow/damaged_buffer.arrow`: a stream whose buffer layout
/// makes arrow-ipc assert (panic) instead of returning an error (found by
/// a fault probe). The client gets a 400; the server's log gets no panic
/// report, however many such bodies arrive.
#[test]
fn a_stream_the_arrow_decoder_panics_on_is_a_400_and_no_panic_report() {
    let s = Server::start(Some(NOW));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/arrow/damaged_buffer.arrow");
    let body = std::fs::read(&path).expect("read the fixture");
    for _ in 0..3 {
        let (status, answer) = post_arrow(&s, &body);
        assert_eq!((status, answer["path"].as_str()), (400, Some("stream")), "{answer}");
        assert!(answer["error"].as_str().unwrap_or_default().contains("damaged stream"), "{answer}");
    }
    let (status, _) = s.get("/health");
    assert_eq!(status, 200);
    let log = s.stderr_text();
    assert!(!log.contains("panicked"), "panic report in the log: {log}");
}

#[test]
fn an_oversized_arrow_body_is_413_json() {
    let s = Server::start(Some(NOW));
    let mut conn = s.raw_ingest(CONTENT_TYPE, 64 * 1024 * 1024 + 1);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains("\"status\"") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 413"), "expected 413, got: {text}");
    assert!(text.contains("\"status\":413"), "413 as JSON: {text}");
}

#[test]
fn strata_ingest_sends_arrow_by_extension_or_flag() {
    let s = Server::start(Some(NOW));
    let dir = TempDir::new("arrow-cli");
    let file = dir.path.join("batch.arrow");
    std::fs::write(&file, encode_stream(&batch("arrow.cli", 1, 30)).expect("encode")).expect("write");
    let o = run_cli(&["ingest", "--url", &s.base, "--token", &s.token, file.to_str().expect("utf-8")], None);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("report JSON");
    assert_eq!(report["accepted"], json!(60));
    let next = encode_stream(&batch("arrow.cli", 31, 40)).expect("encode");
    let o = run_cli(&["ingest", "--url", &s.base, "--token", &s.token, "--format", "arrow", "-"], Some(&next));
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(values(&s, "arrow.cli", "user", 40).last(), Some(&Some(40.0)));
    let o = run_cli(&["ingest", "--url", &s.base, "--token", &s.token, "--format", "xml", "-"], Some(b""));
    assert_eq!(o.status.code(), Some(2), "an unknown --format is bad usage: {}", describe(&o));
}
