//! The json2 `summary`, `totals` and `detailed` parts: what a query
//! touched, per node, context, instance, dimension and label, with
//! Netdata's short keys. Zero counters are omitted, as Netdata omits them.

use strata_engine::query::detailed::Detailed;
use strata_engine::query::result::{Counts, Item, PointStats, QueryResult};

use super::writer::Json;

/// `ds`/`is` counters: only the non-zero ones; nothing when all are zero.
fn counts(w: &mut Json, key: &'static str, c: &Counts) {
    if c.is_zero() {
        return;
    }
    w.key(key).obj();
    for (k, v) in [("sl", c.selected), ("ex", c.excluded), ("qr", c.queried), ("fl", c.failed)] {
        if v > 0 {
            w.key(k).u64(v);
        }
    }
    w.end();
}

/// `sts` over raw db points; `abs_total` is Σ|sum| of the whole query.
/// Nothing when there were no points.
fn sts(w: &mut Json, s: &PointStats, abs_total: f64) {
    let Some(avg) = s.avg() else { return };
    let con = if abs_total > 0.0 { s.sum.abs() * 100.0 / abs_total } else { 0.0 };
    w.key("sts").obj();
    w.key("min").r7(s.min).key("max").r7(s.max).key("avg").r7(avg);
    w.key("arp").r7(s.anomaly_rate()).key("con").r7(con);
    w.end();
}

/// The `ds` and `sts` every summary item ends with.
fn item_tail(w: &mut Json, it: &Item, abs_total: f64) {
    counts(w, "ds", &it.dimensions);
    sts(w, &it.stats, abs_total);
}

pub fn summary(w: &mut Json, r: &QueryResult, total_ms: f64) {
    let s = &r.summary;
    let abs = s.abs_sum;
    w.obj();
    w.key("nodes").arr();
    for (ni, n) in s.nodes.iter().enumerate() {
        w.obj();
        w.key("mg").opt_str(n.machine_guid.as_deref());
        if let Some(nd) = &n.node_id {
            w.key("nd").str(nd);
        }
        w.key("nm").opt_str(n.name.as_deref()).key("ni").u64(ni as u64);
        w.key("st").obj().key("ai").u64(0).key("code").u64(200).key("msg").str("");
        w.key("ms").r7(total_ms).end();
        counts(w, "is", &n.instances);
        item_tail(w, n, abs);
        w.end();
    }
    w.end().key("contexts").arr();
    for c in &s.contexts {
        w.obj().key("id").str(&c.id);
        counts(w, "is", &c.instances);
        item_tail(w, c, abs);
        w.end();
    }
    w.end().key("instances").arr();
    for i in &s.instances {
        w.obj().key("id").str(&i.id);
        if let Some(nm) = &i.name {
            w.key("nm").str(nm);
        }
        w.key("ni").u64(i.node_index.unwrap_or(0) as u64);
        if abs > 0.0 && i.stats.count > 0 {
            w.key("con").r7(i.stats.sum.abs() * 100.0 / abs);
        }
        item_tail(w, i, abs);
        w.end();
    }
    w.end().key("dimensions").arr();
    for d in &s.dimensions {
        w.obj().key("id").str(&d.id);
        item_tail(w, d, abs);
        w.key("pri").u64(u64::from(d.priority)).end();
    }
    w.end().key("labels").arr();
    for l in &s.labels {
        w.obj().key("id").str(&l.id);
        item_tail(w, l, abs);
        w.key("vl").arr();
        for v in &l.values {
            w.obj().key("id").str(&v.id);
            item_tail(w, v, abs);
            w.end();
        }
        w.end().end();
    }
    w.end().key("alerts").arr().end();
    w.end();
}

pub fn totals(w: &mut Json, r: &QueryResult) {
    let s = &r.summary;
    let count = |w: &mut Json, key: &'static str, items: &mut dyn Iterator<Item = &Item>| {
        let mut c = Counts::default();
        for it in items {
            c.selected += u64::from(it.dimensions.selected > 0);
            c.excluded += u64::from(it.dimensions.selected == 0 && it.dimensions.excluded > 0);
            c.queried += u64::from(it.dimensions.queried > 0);
        }
        if c.is_zero() {
            w.key(key).obj().end();
        } else {
            counts(w, key, &c);
        }
    };
    w.obj();
    count(w, "nodes", &mut s.nodes.iter());
    count(w, "contexts", &mut s.contexts.iter());
    count(w, "instances", &mut s.instances.iter());
    count(w, "dimensions", &mut s.dimensions.iter());
    count(w, "label_keys", &mut s.labels.iter());
    count(w, "label_key_values", &mut s.labels.iter().flat_map(|l| l.values.iter()));
    w.end();
}

/// The `detailed` tree (API spec 4.6), objects keyed by ids.
pub fn detailed(w: &mut Json, d: &Detailed) {
    w.obj().key("nodes").obj();
    for n in &d.nodes {
        w.raw_key(&n.machine_guid).obj();
        w.key("nd").str(&n.node_id).key("ni").u64(n.node_index as u64).key("nm").str(&n.hostname);
        w.key("contexts").obj();
        for c in &n.contexts {
            w.raw_key(&c.id).obj().key("instances").obj();
            for i in &c.instances {
                w.raw_key(&i.id).obj();
                w.key("nm").str(&i.name).key("ue").i64(i.update_every);
                w.key("labels").obj();
                for (k, v) in &i.labels {
                    w.raw_key(k).str(v);
                }
                w.end().key("dimensions").obj();
                for x in &i.dimensions {
                    w.raw_key(&x.id).obj();
                    w.key("nm").str(&x.name).key("qr").u64(u64::from(x.queried));
                    w.key("fe").opt_i64(x.first_entry).key("le").opt_i64(x.last_entry);
                    if let Some(a) = &x.grouped_as {
                        w.key("as").str(a);
                    }
                    w.end();
                }
                w.end().end();
            }
            w.end().key("alerts").obj().end().end();
        }
        w.end().end();
    }
    w.end().end();
}
