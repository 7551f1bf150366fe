//! `nd_query(...)`: strata's own query engine as a table function, for
//! answers that must equal the JSON API byte for byte, including the time
//! groups that carry state across buckets (`ses`, `des`,
//! `incremental-sum`, `latest`), group-by passes and every option.
//!
//! ```sql
//! SELECT * FROM nd_query('{"scope": {"contexts": ["system.cpu"]}, "window": {"after": -600, "points": 60},
//!                          "aggregations": {"time": {"time_group": "ses"}}}')
//! SELECT * FROM nd_query('system.cpu', 'ses', 1763900000, 1763903600, 60)
//! ```
//!
//! The one-argument form takes a `/api/v3/data` POST body; the positional
//! form is (contexts, time_group, after, before, points [, group_by]).
//! It returns one row per series and point: `ts` (bucket end), `series`
//! (id), `name`, `value` (null = empty), `anomaly_rate`, `annotations`
//! (Netdata's `pa` bits). The caller's node allowlist applies as on
//! `/api/v3/data`. The query runs when the statement is planned.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt8Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Expr;
use serde_json::{json, Value};
use strata_engine::query::body::parse_body;
use strata_engine::query::request::ApiVersion;
use strata_engine::query::result::PA_EMPTY;

use crate::tables::schema::ts_type;
use crate::tables::{engine_err, Source};

pub const NAME: &str = "nd_query";

#[derive(Debug)]
pub struct NdQuery {
    src: Source,
}

impl NdQuery {
    pub fn new(src: Source) -> Self {
        NdQuery { src }
    }
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

fn text(e: &Expr) -> Option<String> {
    match literal(e)? {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            Some(s.clone())
        }
        _ => None,
    }
}

fn number(e: &Expr) -> Option<i64> {
    match literal(e)? {
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        _ => None,
    }
}

const USAGE: &str =
    "nd_query takes a /api/v3/data JSON body, or (contexts, time_group, after, before, points [, group_by])";

/// The v3 body the arguments describe.
fn body(args: &[Expr]) -> Result<Value> {
    match args {
        [b] => match text(b) {
            Some(s) => serde_json::from_str(&s).or_else(|e| plan_err!("nd_query: the body is not JSON: {e}")),
            None => plan_err!("{USAGE}"),
        },
        [ctx, tg, after, before, points, rest @ ..] if rest.len() <= 1 => {
            let (Some(ctx), Some(tg), Some(after), Some(before), Some(points)) =
                (text(ctx), text(tg), number(after), number(before), number(points))
            else {
                return plan_err!("{USAGE}");
            };
            let group_by = match rest.first() {
                Some(g) => match text(g) {
                    Some(g) => g.split(',').map(|s| Value::String(s.trim().to_string())).collect(),
                    None => return plan_err!("{USAGE}"),
                },
                None => vec![json!("dimension")],
            };
            Ok(json!({
                "scope": {"contexts": ctx.split(',').map(str::trim).collect::<Vec<_>>()},
                "window": {"after": after, "before": before, "points": points},
                "aggregations": {"metrics": [{"group_by": group_by}], "time": {"time_group": tg}},
            }))
        }
        _ => plan_err!("{USAGE}"),
    }
}

impl TableFunctionImpl for NdQuery {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let mut req = parse_body(ApiVersion::V3, &body(args.exprs())?).map_err(engine_err)?;
        req.allowed_nodes = self.src.allow.clone();
        let result = self.src.engine.query_cancellable(&req, &self.src.cancel).map_err(engine_err)?;
        let w = result.window;
        let (mut ts, mut ids, mut names, mut values, mut arp, mut pa) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for s in &result.series {
            for i in 0..s.values.len() {
                ts.push(w.bucket_end(i) * 1_000_000_000);
                ids.push(s.key.id.as_str());
                names.push(s.key.name.as_str());
                // An empty bucket is NULL, or 0 with `null2zero` (as the
                // JSON API prints it).
                let empty = s.flags[i] & PA_EMPTY != 0;
                values.push(if empty { req.options.null2zero.then_some(0.0) } else { Some(s.values[i]) });
                arp.push(s.arp[i]);
                pa.push(s.flags[i]);
            }
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", ts_type(), false),
            Field::new("series", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
            Field::new("anomaly_rate", DataType::Float64, false),
            Field::new("annotations", DataType::UInt8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC")),
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(names)),
            Arc::new(Float64Array::from(values)),
            Arc::new(Float64Array::from(arp)),
            Arc::new(UInt8Array::from(pa)),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
