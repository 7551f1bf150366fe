//! A caller allowed node n1 never sees a row of n2, whatever the SQL:
//! filters, joins, subqueries, the rollup tables, `metrics`, the
//! pushdown, `nd_query`, `information_schema`.

use super::*;

fn all_text(sql: &SqlEngine, q: &str) -> Result<String, crate::SqlError> {
    sql.run_blocking(q, allow("n1")).map(|a| rows(&a.batches).into_iter().flatten().collect::<Vec<_>>().join(","))
}

#[test]
fn another_nodes_rows_never_leave_the_provider() {
    let e = engine();
    let sql = sql_engine(&e);
    let window = format!("ts > {} AND ts <= {}", ts(T0), ts(T0 + 3600));
    let queries = [
        "SELECT DISTINCT node FROM samples".to_string(),
        "SELECT node FROM samples WHERE node = 'n2'".into(),
        "SELECT node FROM samples WHERE node <> 'n1'".into(),
        "SELECT DISTINCT instance FROM samples WHERE instance = 't.c.n2' OR node IN ('n2')".into(),
        "SELECT DISTINCT node FROM samples_1m".into(),
        "SELECT DISTINCT node FROM samples_1h WHERE node = 'n2'".into(),
        "SELECT node, hostname, instance, labels FROM metrics".into(),
        "SELECT m.node FROM metrics m JOIN samples s ON s.metric_id = m.metric_id WHERE s.node = 'n2'".into(),
        "SELECT DISTINCT s.node FROM samples s WHERE s.metric_id IN (SELECT metric_id FROM metrics)".into(),
        "SELECT DISTINCT s.node FROM samples s WHERE s.metric_id IN (2, 3, 4, 5)".into(),
        format!("SELECT node, nd_bucket(60, ts) b, nd_median(value) FROM samples WHERE node = 'n2' AND context = 't.c' AND {window} GROUP BY node, context, instance, dimension, b"),
        format!("SELECT node, metric_id, nd_bucket(60, ts) b, avg(value) FROM samples WHERE {window} GROUP BY node, metric_id, b"),
        "SELECT * FROM nd_query('t.c', 'average', -86400, 0, 10, 'node')".into(),
        "SELECT table_name, column_name FROM information_schema.columns".into(),
    ];
    for q in &queries {
        let text = all_text(&sql, q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert!(!text.contains("n2"), "{q} leaked n2: {text}");
    }
    // The first one does see n1.
    assert_eq!(all_text(&sql, &queries[0]).expect("n1"), "n1");
    // Naming another node in nd_query's scope is a 403, as on /api/v3/data.
    let q = r#"SELECT * FROM nd_query('{"scope": {"nodes": ["n2"]}, "window": {"after": -600}}')"#;
    match sql.run_blocking(q, allow("n1")) {
        Err(crate::SqlError::Engine { kind: strata_engine::ErrorKind::Forbidden, .. }) => {}
        other => panic!("{q}: {other:?}"),
    }
}
