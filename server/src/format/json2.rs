//! The `json2` document (API spec section 4), short keys, key order as
//! Netdata writes it. Written straight into the response bytes by
//! [`Json`]: no `serde_json::Value` tree is built, except the `request`
//! echo that only `debug` asks for. The `summary`, `totals` and `detailed`
//! parts are in [`super::json2_summary`].

use serde_json::json;
use strata_engine::query::request::{ApiVersion, GroupByKey, QueryRequest, Selectors};
use strata_engine::query::result::{PointStats, QueryResult, PA_EMPTY};

use super::json2_rows;
use super::json2_summary::{detailed, summary, totals};
use super::writer::Json;

/// Agent identity echoed in `agents[]`.
pub struct Agent<'a> {
    pub machine_guid: &'a str,
    pub hostname: &'a str,
    pub now: i64,
}

/// Writes the whole json2 document.
pub fn write(r: &QueryResult, agent: &Agent<'_>, total_ms: f64) -> Vec<u8> {
    let opts = &r.request.options;
    let minimal = opts.minimal_stats;
    // Rows dominate the size: up to about 16 bytes a row for the time and
    // 28 a cell for two-decimal gauges (one growth past that is a copy).
    let row = 16 + r.series.len() * 28;
    let mut w = Json::new(opts.long_json_keys, 4096 + r.window.points * row);
    w.obj();
    w.key("api").u64(match r.request.api {
        ApiVersion::V1 => 1,
        ApiVersion::V2 => 2,
        ApiVersion::V3 => 3,
    });
    if opts.debug {
        w.key("id").str(&format!("strata-query-{}", r.generation));
        w.key("request").value(&request_echo(&r.request));
    }
    if !minimal {
        w.key("versions").obj();
        w.key("routing_hard_hash").u64(1);
        for k in ["nodes_hard_hash", "contexts_hard_hash", "contexts_soft_hash"] {
            w.key(k).u64(r.generation);
        }
        w.key("alerts_hard_hash").u64(1).key("alerts_soft_hash").u64(1).end();
    }
    w.key("summary");
    summary(&mut w, r, total_ms);
    if !minimal {
        w.key("totals");
        totals(&mut w, r);
    }
    if let Some(d) = &r.detailed {
        w.key("detailed");
        detailed(&mut w, d);
    }
    if !minimal {
        w.key("functions").arr().end();
    }
    w.key("result");
    result(&mut w, r);
    w.key("db");
    db(&mut w, r);
    w.key("view");
    view(&mut w, r);
    if !minimal {
        w.key("agents").arr().obj();
        w.key("mg").str(agent.machine_guid).key("nm").str(agent.hostname);
        w.key("now").i64(agent.now).key("ai").u64(0);
        w.key("timings").obj();
        w.key("prep_ms").r7(r.prep_ms).key("query_ms").r7(r.query_ms).key("output_ms").u64(0);
        w.key("total_ms").r7(total_ms).key("cloud_ms").r7(total_ms);
        w.end().end().end();
        w.key("timings").obj();
        w.key("routing_ms").u64(0).key("node_max_ms").u64(0).key("total_ms").r7(total_ms);
        w.end();
    }
    w.end();
    w.finish()
}

/// `result`: labels, the point schema and the rows, newest first unless
/// `flip`. Nothing matched: no rows at all, as Netdata answers.
fn result(w: &mut Json, r: &QueryResult) {
    let opts = &r.request.options;
    w.obj();
    w.key("labels").strs(std::iter::once("time").chain(r.series.iter().map(|s| s.key.id.as_str())));
    w.key("point").obj().key("value").u64(0).key("arp").u64(1).key("pa").u64(2);
    if opts.raw {
        w.key("count").u64(3);
    }
    w.end();
    w.key("data").arr();
    json2_rows::write(w, r);
    w.end().end();
}

/// `sts` arrays over a list of per-series stats, `null` where a series
/// has no points.
/// `arp[i]` is series `i`'s anomaly rate.
fn sts_arrays(w: &mut Json, stats: &[PointStats], arp: &[f64], abs_total: f64) {
    let col = |w: &mut Json, key: &'static str, f: &dyn Fn(usize, &PointStats) -> f64| {
        w.key(key).arr();
        for (i, s) in stats.iter().enumerate() {
            if s.count > 0 {
                w.r7(f(i, s));
            } else {
                w.null();
            }
        }
        w.end();
    };
    w.obj();
    col(w, "min", &|_, s| s.min);
    col(w, "max", &|_, s| s.max);
    col(w, "avg", &|_, s| s.sum / s.count as f64);
    col(w, "arp", &|i, _| arp.get(i).copied().unwrap_or(0.0));
    col(w, "con", &|_, s| if abs_total > 0.0 { s.sum.abs() * 100.0 / abs_total } else { 0.0 });
    w.end();
}

/// `db`: retention, tiers and per-series stats over the points read.
fn db(w: &mut Json, r: &QueryResult) {
    let db_stats: Vec<PointStats> = r.series.iter().map(|s| s.db_stats).collect();
    let db_abs: f64 = db_stats.iter().map(|s| s.sum.abs()).sum();
    w.obj();
    w.key("tiers").u64(r.tiers.len() as u64).key("update_every").i64(r.update_every);
    w.key("first_entry").opt_i64(r.first_entry).key("last_entry").opt_i64(r.last_entry);
    w.key("units");
    if r.db_units.len() == 1 {
        w.str(&r.db_units[0]);
    } else {
        w.strs(r.db_units.iter().map(String::as_str));
    }
    w.key("dimensions").obj();
    w.key("ids").strs(r.series.iter().map(|s| s.key.id.as_str()));
    w.key("units").strs(r.series.iter().map(|s| s.key.units.as_str()));
    w.key("sts");
    let db_arp: Vec<f64> = db_stats.iter().map(PointStats::anomaly_rate).collect();
    sts_arrays(w, &db_stats, &db_arp, db_abs);
    w.end();
    w.key("per_tier").arr();
    for t in &r.tiers {
        w.obj().key("tier").u64(t.tier as u64);
        w.key("queries").u64(r.tier_use.queries[t.tier]).key("points").u64(r.tier_use.points[t.tier]);
        w.key("update_every").i64(t.update_every);
        w.key("first_entry").opt_i64(t.first_entry).key("last_entry").opt_i64(t.last_entry);
        w.end();
    }
    w.end().end();
}

/// Stats over the returned view values of each series, and each one's
/// anomaly rate over the view: the mean of its non-empty rows' rates, as
/// Netdata takes it (kept as a rate: rounded to a whole count of
/// anomalous rows, a 2 % mean over ten rows read 0).
fn view_stats(r: &QueryResult) -> (Vec<PointStats>, Vec<f64>) {
    r.series
        .iter()
        .map(|s| {
            let mut st = PointStats::default();
            for i in 0..s.values.len() {
                if s.flags[i] & PA_EMPTY == 0 {
                    let v = s.values[i];
                    st.min = st.min.min(v);
                    st.max = st.max.max(v);
                    st.sum += v;
                    st.count += 1;
                }
            }
            let rates: f64 = s.arp.iter().zip(&s.flags).filter(|(_, f)| *f & PA_EMPTY == 0).map(|(r, _)| r).sum();
            (st, rates / st.count.max(1) as f64)
        })
        .unzip()
}

/// `view`: the window as returned, the series' names and view stats.
fn view(w: &mut Json, r: &QueryResult) {
    let opts = &r.request.options;
    let (after, before) = if r.window.points > 0 {
        (r.window.bucket_end(0), r.window.bucket_end(r.window.points - 1))
    } else {
        (r.window.after, r.window.before)
    };
    w.obj();
    w.key("title").str(&r.title).key("update_every").i64(r.window.view_every);
    w.key("after").i64(after).key("before").i64(before);
    if opts.debug {
        w.key("time_group").str(&r.request.time_group.name).key("tier").u64(r.chosen_tier as u64);
    }
    if let Some(t) = r.partial_trimming.filter(|_| opts.debug || opts.raw) {
        w.key("partial_data_trimming").obj().key("max_update_every").i64(t.max_update_every);
        w.key("expected_after").i64(t.expected_after).key("trimmed_after").i64(t.trimmed_after).end();
    }
    if let Some(f) = &r.folded {
        w.key("cardinality").obj().key("folded").u64(f.folded as u64).key("cut").r7(f.cut).end();
    }
    if let Some(a) = &r.approximation {
        w.key("approximate").obj().key("tiers").arr();
        for t in &a.tiers {
            w.u64(*t as u64);
        }
        w.end().key("buckets").u64(a.buckets as u64).key("first").i64(a.first).key("last").i64(a.last);
        w.key("reason").str(&a.reason).end();
    }
    w.key("units").str(&r.units).key("chart_type").str(&r.chart_type);
    w.key("dimensions").obj();
    w.key("grouped_by").arr();
    for k in &r.grouped_by {
        match k {
            GroupByKey::Label => {
                for l in &r.group_by_labels {
                    w.str(&format!("label:{l}"));
                }
            }
            k => {
                w.str(k.name());
            }
        }
    }
    w.end();
    w.key("ids").strs(r.series.iter().map(|s| s.key.id.as_str()));
    w.key("names").strs(r.series.iter().map(|s| s.key.name.as_str()));
    w.key("units").strs(r.series.iter().map(|s| s.key.units.as_str()));
    w.key("priorities").arr();
    for s in &r.series {
        w.u64(u64::from(s.key.priority));
    }
    w.end().key("aggregated").arr();
    for s in &r.series {
        w.u64(u64::from(s.aggregated));
    }
    w.end();
    let (vstats, varp) = view_stats(r);
    let view_abs: f64 = vstats.iter().map(|s| s.sum.abs()).sum();
    w.key("sts");
    sts_arrays(w, &vstats, &varp, view_abs);
    if opts.group_by_labels {
        w.key("labels").obj();
        for l in &r.group_by_labels {
            w.raw_key(l).arr();
            for s in &r.series {
                match s.key.labels.iter().find(|(k, _)| k == l) {
                    Some((_, v)) => w.strs([v.as_str()]),
                    None => w.null(),
                };
            }
            w.end();
        }
        w.end();
    }
    w.end();
    let (vmin, vmax) = r.view_min_max();
    w.key("min").r7(vmin).key("max").r7(vmax);
    w.end();
}

/// The parsed request in the POST-body shape (`debug`), so callers see
/// exactly what strata understood.
fn request_echo(q: &QueryRequest) -> serde_json::Value {
    fn pat<T: std::fmt::Display>(p: &Option<T>) -> serde_json::Value {
        p.as_ref().map(|p| json!(p.to_string())).unwrap_or(serde_json::Value::Null)
    }
    let sel = |s: &Selectors| {
        json!({"nodes": pat(&s.nodes), "contexts": pat(&s.contexts), "instances": pat(&s.instances),
               "dimensions": pat(&s.dimensions), "labels": pat(&s.labels), "alerts": pat(&s.alerts)})
    };
    let passes: Vec<serde_json::Value> = q
        .passes
        .iter()
        .map(|p| {
            json!({"group_by": p.keys.iter().map(|k| k.name()).collect::<Vec<_>>(),
                   "group_by_label": p.labels, "aggregation": p.aggregation.name()})
        })
        .collect();
    json!({
        "format": format!("{:?}", q.format).to_lowercase(),
        "options": q.options.names(),
        "scope": sel(&q.scope),
        "selectors": sel(&q.selectors),
        "window": {"after": q.after, "before": q.before, "points": q.points, "tier": q.tier},
        "aggregations": {
            "time": {"time_group": q.time_group.name, "time_group_options": q.time_group.options, "time_resampling": q.time_resampling},
            "metrics": passes,
        },
        "timeout": q.timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::format::test_data::{engine, query, NOW};

    #[test]
    fn view_anomaly_rates_are_the_mean_of_the_rows() {
        let e = engine();
        let mut r = query(&e, json!({"window": {"after": NOW - 599, "before": NOW, "points": 10}}));
        assert_eq!(r.series[0].arp.len(), 10);
        // One row at 2 %: a mean of 0.2 %, which a whole count of anomalous
        // rows (0.02 of ten) rounded to 0.
        r.series[0].arp = vec![0.0; 10];
        r.series[0].arp[3] = 2.0;
        let (stats, arp) = view_stats(&r);
        assert!((arp[0] - 0.2).abs() < 1e-12, "{arp:?}");
        assert_eq!(stats[0].count, 10);
        // Empty rows are not rows of the view's rate: 2 % over eight.
        r.series[0].flags[0] = PA_EMPTY;
        r.series[0].flags[9] = PA_EMPTY;
        let (_, arp) = view_stats(&r);
        assert!((arp[0] - 0.25).abs() < 1e-12, "{arp:?}");
    }
}
