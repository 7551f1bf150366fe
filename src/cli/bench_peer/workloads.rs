//! The workloads of issue 11, each as a strata `POST /api/v3/data` body
//! and the equivalent PromQL/MetricsQL `query_range`, with windows chosen
//! so both sides have the same buckets: strata's bucket ending at `T`
//! covers `(T - V, T]` (Netdata's rule), VictoriaMetrics' `f_over_time(m[V])`
//! at `T` covers the same, and Prometheus 2.x covers `[T - R, T]` closed,
//! so it gets `R = V - 1s` (identical on per-second data).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::dataset::{Dataset, CONTEXT, METRIC};

/// How a PromQL result series maps to a strata series name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// One series: strata `selected`, PromQL `{}` (or the one series).
    One,
    /// strata group_by node: the node name.
    Node,
    /// strata group_by instance: `bench.cpuK@node-NN`.
    Instance,
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub id: &'static str,
    pub what: String,
    pub strata: Value,
    /// PromQL with `{R}` where the range goes.
    pub promql: String,
    /// First and last bucket end, bucket width (all seconds).
    pub first_end: i64,
    pub last_end: i64,
    pub step: i64,
    /// Raw samples the query covers (for samples/s).
    pub samples: u64,
    pub keys: Keys,
}

impl Workload {
    /// The PromQL for an engine whose range is closed (`closed`) or left-open.
    pub fn promql_for(&self, closed: bool) -> String {
        let r = if closed { self.step - 1 } else { self.step };
        self.promql.replace("{R}", &format!("{r}s"))
    }

    /// `query_range` URL parameters.
    pub fn range_params(&self, closed: bool) -> String {
        format!(
            "query={}&start={}&end={}&step={}",
            super::http::urlencode(&self.promql_for(closed)),
            self.first_end,
            self.last_end,
            self.step
        )
    }
}

/// One workload over the last `secs` of the data in `points` buckets.
#[allow(clippy::too_many_arguments)]
fn make(
    d: &Dataset,
    id: &'static str,
    what: &str,
    secs: i64,
    points: i64,
    scope: Value,
    series: u64,
    group_by: &str,
    agg: &str,
    time_group: &str,
    tier: Option<u8>,
    promql: String,
    keys: Keys,
) -> Workload {
    let step = secs / points;
    let mut window = json!({"after": d.end - secs + 1, "before": d.end, "points": points});
    if let Some(t) = tier {
        window["tier"] = json!(t);
    }
    let strata = json!({
        "scope": scope,
        "window": window,
        "aggregations": {
            "metrics": [{"group_by": [group_by], "aggregation": agg}],
            "time": {"time_group": time_group}
        },
        "format": "json2",
        "options": ["minimal-stats"],
    });
    Workload {
        id,
        what: what.to_string(),
        strata,
        promql,
        first_end: d.end - secs + step,
        last_end: d.end,
        step,
        samples: series * secs as u64,
        keys,
    }
}

/// The workload list for a dataset (the whole window is `hours`).
pub fn all(d: &Dataset) -> Vec<Workload> {
    let w = d.hours * 3600;
    let n = d.series as u64;
    let every = json!({"contexts": [CONTEXT]});
    let one = d.names(0);
    let one_scope = json!({"contexts": [CONTEXT], "nodes": [one.node], "instances": [format!("{CONTEXT}0")]});
    let one_sel = format!("{METRIC}{{node=\"{}\",cpu=\"{}\"}}", one.node, one.cpu);
    let avg_all = format!("avg(avg_over_time({METRIC}[{{R}}]))");
    let hours = d.hours;
    vec![
        make(
            d,
            "a",
            &format!("average of all series, {hours} h, 300 points, tier 0"),
            w,
            300,
            every.clone(),
            n,
            "selected",
            "average",
            "average",
            Some(0),
            avg_all.clone(),
            Keys::One,
        ),
        make(
            d,
            "a-auto",
            &format!("(a) with automatic tier, {hours} h, 300 points"),
            w,
            300,
            every.clone(),
            n,
            "selected",
            "average",
            "average",
            None,
            avg_all.clone(),
            Keys::One,
        ),
        make(
            d,
            "b",
            "average of all series, last 1 h, 60 points",
            3600.min(w),
            60,
            every.clone(),
            n,
            "selected",
            "average",
            "average",
            None,
            avg_all,
            Keys::One,
        ),
        make(
            d,
            "c",
            &format!("one series, {hours} h, 300 points"),
            w,
            300,
            one_scope.clone(),
            1,
            "selected",
            "average",
            "average",
            None,
            format!("avg_over_time({one_sel}[{{R}}])"),
            Keys::One,
        ),
        make(
            d,
            "d",
            &format!("median per bucket (per series), averaged over all series, {hours} h, 300 points"),
            w,
            300,
            every.clone(),
            n,
            "selected",
            "average",
            "median",
            None,
            format!("avg(quantile_over_time(0.5, {METRIC}[{{R}}]))"),
            Keys::One,
        ),
        make(
            d,
            "e",
            &format!("max by node, {hours} h, 300 points"),
            w,
            300,
            every.clone(),
            n,
            "node",
            "max",
            "max",
            None,
            format!("max by (node) (max_over_time({METRIC}[{{R}}]))"),
            Keys::Node,
        ),
        make(
            d,
            "g",
            &format!("every series returned ({n} x 300 points), {hours} h"),
            w,
            300,
            every,
            n,
            "instance",
            "average",
            "average",
            None,
            format!("avg_over_time({METRIC}[{{R}}])"),
            Keys::Instance,
        ),
    ]
}

/// The small query: one series, the last 10 min, 60 points.
pub fn small(d: &Dataset) -> Workload {
    let one = d.names(0);
    let scope = json!({"contexts": [CONTEXT], "nodes": [one.node], "instances": [format!("{CONTEXT}0")]});
    let sel = format!("{METRIC}{{node=\"{}\",cpu=\"{}\"}}", one.node, one.cpu);
    make(
        d,
        "small",
        "one series, 10 min, 60 points",
        600,
        60,
        scope,
        1,
        "selected",
        "average",
        "average",
        None,
        format!("avg_over_time({sel}[{{R}}])"),
        Keys::One,
    )
}

/// An answer: series name -> (bucket end, value) in time order.
pub type Answer = BTreeMap<String, Vec<(i64, Option<f64>)>>;

/// Reads strata's json2: `result.labels` = ["time", ids...],
/// `view.dimensions.names` = names, `result.data` = rows of
/// `[t, [value, anomaly_rate, flags], ...]`.
pub fn parse_strata(body: &[u8]) -> Result<Answer, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("strata answer is not JSON: {e}"))?;
    let names: Vec<String> = v["view"]["dimensions"]["names"]
        .as_array()
        .ok_or("strata answer has no view.dimensions.names")?
        .iter()
        .map(|n| n.as_str().unwrap_or_default().to_string())
        .collect();
    let rows = v["result"]["data"].as_array().ok_or("strata answer has no result.data")?;
    let mut out: Answer = names.iter().map(|n| (n.clone(), Vec::new())).collect();
    for row in rows {
        let row = row.as_array().ok_or("a result.data row is not an array")?;
        let t = row.first().and_then(Value::as_i64).ok_or("a result.data row has no time")?;
        for (name, cell) in names.iter().zip(&row[1..]) {
            let x = match cell {
                Value::Array(a) => a.first().and_then(Value::as_f64),
                other => other.as_f64(),
            };
            if let Some(s) = out.get_mut(name) {
                s.push((t, x));
            }
        }
    }
    for s in out.values_mut() {
        s.sort_by_key(|p| p.0);
    }
    Ok(out)
}

/// Reads a Prometheus/VictoriaMetrics `query_range` matrix, naming series
/// the way strata names the same group.
pub fn parse_prom(body: &[u8], keys: Keys) -> Result<Answer, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    if v["status"] != "success" {
        return Err(format!("query failed: {}", v["error"].as_str().unwrap_or("no error message")));
    }
    let result = v["data"]["result"].as_array().ok_or("answer has no data.result")?;
    let mut out = Answer::new();
    for s in result {
        let m = &s["metric"];
        let label = |k: &str| m[k].as_str().unwrap_or("").to_string();
        let name = match keys {
            Keys::One => "selected".to_string(),
            Keys::Node => label("node"),
            Keys::Instance => format!("{CONTEXT}{}@{}", label("cpu").trim_start_matches("cpu"), label("node")),
        };
        let pts = s["values"].as_array().ok_or("a series has no values")?;
        let mut series = Vec::with_capacity(pts.len());
        for p in pts {
            let t = p[0].as_f64().ok_or("a point has no time")?.round() as i64;
            let x = p[1].as_str().and_then(|x| x.parse::<f64>().ok());
            series.push((t, x));
        }
        out.insert(name, series);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_line_up_for_every_workload() {
        let d = Dataset::new(100, 6, 1_800_000_000);
        for w in all(&d).iter().chain([small(&d)].iter()) {
            assert_eq!(w.last_end, d.end, "{}", w.id);
            assert_eq!((w.last_end - w.first_end) % w.step, 0, "{}", w.id);
            assert_eq!(d.end % w.step, 0, "{}: bucket ends are multiples of the width", w.id);
            assert!(w.promql_for(true).contains(&format!("[{}s]", w.step - 1)));
        }
    }

    #[test]
    fn parses_both_answer_shapes() {
        let s = br#"{"view":{"dimensions":{"names":["node-00"]}},"result":{"labels":["time","g"],"data":[[20,[2.5,0,0]],[10,[null,0,1]]]}}"#;
        let a = parse_strata(s).expect("strata");
        assert_eq!(a["node-00"], vec![(10, None), (20, Some(2.5))]);
        let p = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"node":"node-00","cpu":"cpu3"},"values":[[10,"1.5"]]}]}}"#;
        assert_eq!(parse_prom(p, Keys::Instance).expect("prom")["bench.cpu3@node-00"], vec![(10, Some(1.5))]);
    }
}
