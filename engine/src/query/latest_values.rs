//! v1 `latest_values`: each queried dimension's value in the chart's last
//! stored slot, whatever the window (Netdata 1.37 prints the database's
//! newest slot of every dimension, `null` where that slot is empty).
//!
//! Read under the store's read lock while the query is planned: the slot
//! is usually in the open head span, which a query's view attaches only
//! where its window reaches.

use std::collections::HashMap;

use crate::model::MetricId;
use crate::query::group::combine;
use crate::query::request::Aggregation;
use crate::storage::Store;

/// The value of each series at `last` (the chart's last entry) in tier 0,
/// keyed by the series id `series_of` gives each of `metrics`; `None`
/// where no metric of the series has a sample in that slot. A v1 chart
/// has one metric per dimension and node: a chart on several nodes folds
/// its nodes' values with the query's aggregation `agg`, as its points do
/// (an average over the nodes that have the slot).
pub fn at_last_entry(
    store: &Store,
    metrics: &[MetricId],
    last: i64,
    agg: Aggregation,
    series_of: impl Fn(usize) -> String,
) -> HashMap<String, Option<f64>> {
    let mut folded: HashMap<String, (f64, u32)> = HashMap::with_capacity(metrics.len());
    for (i, &m) in metrics.iter().enumerate() {
        let Some(ue) = store.update_every(m) else { continue };
        let slot = last.div_euclid(ue) * ue;
        let value = store.point_at(m, ue, 0, slot, |r| r.agg(0).sum);
        let (acc, n) = folded.entry(series_of(i)).or_insert((0.0, 0));
        if let Some(v) = value {
            combine(agg, acc, *n == 0, v);
            *n += 1;
        }
    }
    let value = |(acc, n): (f64, u32)| match (n, agg) {
        (0, _) => None,
        (n, Aggregation::Average | Aggregation::Percentage) => Some(acc / f64::from(n)),
        _ => Some(acc),
    };
    folded.into_iter().map(|(k, v)| (k, value(v))).collect()
}
