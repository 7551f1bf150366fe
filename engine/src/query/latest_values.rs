//! v1 `latest_values`: each queried dimension's value in the chart's last
//! stored slot, whatever the window (Netdata 1.37 prints the database's
//! newest slot of every dimension, `null` where that slot is empty).
//!
//! Read under the store's read lock while the query is planned: the slot
//! is usually in the open head span, which a query's view attaches only
//! where its window reaches.

use std::collections::HashMap;

use crate::model::MetricId;
use crate::storage::Store;

/// The value of each of `metrics` at `last` (the chart's last entry) in
/// tier 0, keyed by the series id `series_of` gives it; `None` where that
/// slot holds no sample. The first metric of a series wins (a v1 chart has
/// one metric per dimension).
pub fn at_last_entry(
    store: &Store,
    metrics: &[MetricId],
    last: i64,
    series_of: impl Fn(usize) -> String,
) -> HashMap<String, Option<f64>> {
    let mut out = HashMap::with_capacity(metrics.len());
    for (i, &m) in metrics.iter().enumerate() {
        let Some(ue) = store.update_every(m) else { continue };
        let slot = last.div_euclid(ue) * ue;
        let value = store.point_at(m, ue, 0, slot, |r| r.agg(0).sum);
        out.entry(series_of(i)).or_insert(value);
    }
    out
}
