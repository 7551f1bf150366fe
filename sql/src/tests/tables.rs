//! The tables themselves: rows are the stored samples (gaps are not
//! rows), rollup tables hold the rollups, filters are taken exactly.

use super::*;

fn one(sql: &SqlEngine, q: &str) -> Vec<Vec<String>> {
    rows(&sql.run_blocking(q, None).unwrap_or_else(|e| panic!("{q}: {e}")).batches)
}

#[test]
fn samples_are_the_stored_samples() {
    let e = engine();
    let sql = sql_engine(&e);
    // Two sealed hours (read zero-copy) and the open head (copied).
    assert_eq!(e.read().expect("read").store.sealed(1, 0).len(), 2);
    let stored: usize = (0..4).map(|m| (T0 + 1..=END).filter(|&t| value(m, t).is_some()).count()).sum();
    assert_eq!(one(&sql, "SELECT count(*) FROM samples"), vec![vec![stored.to_string()]]);
    assert_eq!(one(&sql, "SELECT count(*) FROM samples WHERE value IS NULL"), vec![vec!["0".to_string()]]);
    let q = format!(
        "SELECT node, dimension, ts, value FROM samples WHERE node = 'n2' AND dimension = 'd1' AND ts > {} AND ts <= {} ORDER BY ts",
        ts(T0 + 3598),
        ts(T0 + 3602)
    );
    let got = one(&sql, &q);
    let want: Vec<f64> = (T0 + 3599..=T0 + 3602).filter_map(|t| value(2, t)).collect();
    let vals: Vec<f64> = got.iter().map(|r| r[3].parse().expect("number")).collect();
    assert_eq!(vals, want, "{got:?}");
    // Filters on metadata are exact: LIKE, IN, OR, labels text.
    let n = |q: &str| one(&sql, q)[0][0].clone();
    let per_metric = (stored / 4).to_string();
    assert!(n("SELECT count(DISTINCT metric_id) FROM samples WHERE node LIKE 'n%' AND dimension IN ('d1')") == "2");
    assert_eq!(n("SELECT count(DISTINCT node) FROM samples WHERE labels LIKE '%sd1%'"), "1");
    assert!(per_metric.parse::<usize>().is_ok());
    let plan = one(&sql, &format!("EXPLAIN SELECT value FROM samples WHERE node = 'n1' AND ts > {}", ts(T0)));
    let text = plan.into_iter().flatten().collect::<Vec<_>>().join("\n");
    assert!(text.contains("SamplesExec") && !text.contains("FilterExec"), "{text}");
}

#[test]
fn rollup_tables_hold_minutes_and_hours() {
    let e = engine();
    let sql = sql_engine(&e);
    let q = format!(
        "SELECT sum(\"count\"), sum(\"sum\") FROM samples_1m WHERE node = 'n1' AND dimension = 'd2' AND ts > {} AND ts <= {}",
        ts(T0),
        ts(T0 + 3600)
    );
    let got = one(&sql, &q);
    let vals: Vec<f64> = (T0 + 1..=T0 + 3600).filter_map(|t| value(1, t)).collect();
    assert_eq!(got[0][0], vals.len().to_string());
    let s: f64 = got[0][1].parse().expect("sum");
    assert!((s - vals.iter().sum::<f64>()).abs() < 1e-6, "{s}");
    let h = one(&sql, "SELECT count(*) FROM samples_1h WHERE node = 'n1' AND dimension = 'd2'");
    assert!(h[0][0].parse::<u32>().expect("count") >= 2, "{h:?}");
}

#[test]
fn metrics_lists_every_metric_with_its_metadata() {
    let e = engine();
    let sql = sql_engine(&e);
    let got = one(
        &sql,
        "SELECT node, context, instance, dimension, units, update_every FROM metrics ORDER BY node, dimension",
    );
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], ["n1", "t.c", "t.c.n1", "d1", "u", "1"]);
    let shown = one(&sql, "SHOW TABLES");
    let names: Vec<&str> = shown.iter().map(|r| r[2].as_str()).collect();
    for t in ["samples", "samples_1m", "samples_1h", "metrics"] {
        assert!(names.contains(&t), "{names:?}");
    }
}

#[test]
fn only_queries_run() {
    let e = engine();
    let sql = sql_engine(&e);
    for q in [
        "CREATE TABLE x (a INT)",
        "INSERT INTO metrics SELECT * FROM metrics",
        "SET datafusion.execution.batch_size = 1",
        "DROP TABLE samples",
    ] {
        let r = sql.run_blocking(q, None);
        assert!(matches!(r, Err(crate::SqlError::NotAQuery(_))), "{q}: {r:?}");
    }
}

#[test]
fn limits_are_named() {
    let e = engine();
    let mut sql = sql_engine(&e);
    sql.limits.max_rows = 10;
    match sql.run_blocking("SELECT * FROM samples", None) {
        Err(crate::SqlError::TooManyRows { limit: 10 }) => {}
        other => panic!("{other:?}"),
    }
    let a = sql.run_blocking("SELECT * FROM metrics", None).expect("4 rows");
    let err = crate::encode(&a, crate::Format::Json, 10).expect_err("over the byte limit");
    assert!(err.to_string().contains("byte limit"), "{err}");
    for f in [crate::Format::Json, crate::Format::Csv, crate::Format::Arrow] {
        assert!(!crate::encode(&a, f, 1 << 20).expect("encodes").is_empty());
    }
}

/// Statements that nest deep run on the SQL threads' large stacks, up to
/// the nesting limit, and past it are refused before planning: a hundred
/// chained ORs used to overflow the stack and abort the server.
#[test]
fn deep_statements_run_up_to_the_nesting_limit_and_are_refused_past_it() {
    let e = engine();
    let sql = sql_engine(&e);
    let limit = crate::complexity::MAX_NESTING_TOKENS;
    // Each term is 'a' = 'b' OR: two nesting tokens; SELECT is one more.
    let ors = |n: usize| format!("SELECT 1 AS one WHERE {}", vec!["'a' = 'b'"; n].join(" OR "));
    let ok = sql.run_blocking(&ors(limit / 2 - 1), None).expect("under the limit runs");
    assert_eq!(ok.rows, 0);
    let sums = format!("SELECT {} AS s", vec!["1"; 500].join(" + "));
    let a = sql.run_blocking(&sums, None).expect("a long sum runs");
    assert_eq!(rows(&a.batches), vec![vec!["500".to_string()]]);
    let unions = vec!["SELECT 1 AS x"; 100].join(" UNION ALL ");
    assert_eq!(sql.run_blocking(&unions, None).expect("unions run").rows, 100);
    match sql.run_blocking(&ors(limit), None) {
        Err(crate::SqlError::Invalid(m)) => assert!(m.contains("over the limit"), "{m}"),
        other => panic!("expected a refusal, got {:?}", other.map(|a| a.rows)),
    }
}

/// A statement's buffering operators draw on the query memory limit:
/// past it, an error naming the limit, not a server that grows.
#[test]
fn a_statement_over_the_query_memory_limit_is_refused() {
    let e = engine();
    let mut sql = sql_engine(&e);
    let q =
        "SELECT count(*) FROM (SELECT DISTINCT a.value + b.value AS v FROM samples a JOIN samples b ON a.ts = b.ts)";
    let ok = sql.run_blocking(q, None).expect("under the default limit");
    assert_eq!(ok.rows, 1);
    sql = SqlEngine::new(
        Arc::new({
            let mut cfg = EngineConfig::default();
            cfg.limits.max_memory_bytes = 64 << 10;
            let small = Engine::new(cfg, Clock::Fixed(AtomicI64::new(END + 60)));
            let batch: IngestBatch = serde_json::from_value(json!({"series": (0..4).map(|m| json!({
                "node": "n1", "context": "t.c", "dimension": format!("d{m}"),
                "points": (T0 + 1..=T0 + 3_000).map(|t| json!([t, value(m, t)])).collect::<Vec<_>>()})).collect::<Vec<_>>()}))
            .expect("batch");
            small.ingest(&batch).expect("ingest");
            small
        }),
        SqlLimits::default(),
    )
    .expect("sql engine");
    match sql.run_blocking(q, None) {
        Err(crate::SqlError::Invalid(m)) => assert!(m.contains("--query-memory"), "{m}"),
        other => panic!("expected the memory limit, got {:?}", other.map(|a| a.rows)),
    }
}
