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
use crate::query::plan::Job;
use crate::query::request::Aggregation;
use crate::storage::Store;

/// A series' values at the last entry: the fold of its selected metrics'
/// and, for `percentage`, the sum of its hidden ones.
#[derive(Default)]
struct Slot {
    acc: f64,
    n: u32,
    hidden: f64,
    hidden_n: u32,
}

/// The value of each series at `last` (the chart's last entry) in tier 0,
/// keyed by the series id `series_of` gives each output group of `jobs`;
/// `None` where no metric of the series has a sample in that slot. A v1
/// chart has one metric per dimension and node: a chart on several nodes
/// folds its nodes' values with the query's aggregation `agg`, as its
/// points do (an average over the nodes that have the slot), and
/// `percentage` is the selected sum's share of the selected and hidden
/// ones, as [`crate::query::group`] finishes a point.
///
/// With `absolute` (v1 `options=absolute`), a percentage is taken over
/// absolute values, as the query's rows are.
pub fn at_last_entry(
    store: &Store,
    jobs: &[Job],
    last: i64,
    (agg, absolute): (Aggregation, bool),
    series_of: impl Fn(usize) -> String,
) -> HashMap<String, Option<f64>> {
    let absolute = absolute && agg == Aggregation::Percentage;
    let mut folded: HashMap<String, Slot> = HashMap::with_capacity(jobs.len());
    for job in jobs {
        let (m, Some(g)): (MetricId, _) = (job.metric, job.group) else { continue };
        let Some(ue) = store.update_every(m) else { continue };
        let slot = last.div_euclid(ue) * ue;
        let value = store.point_at(m, ue, 0, slot, |r| r.agg(0).sum).map(|v| if absolute { v.abs() } else { v });
        let s = folded.entry(series_of(g)).or_default();
        match value {
            Some(v) if job.hidden => (s.hidden, s.hidden_n) = (s.hidden + v, s.hidden_n + 1),
            Some(v) => {
                combine(agg, &mut s.acc, s.n == 0, v);
                s.n += 1;
            }
            None => {}
        }
    }
    let value = |s: Slot| match (s.n, agg) {
        (0, Aggregation::Percentage) if s.hidden_n > 0 => Some(0.0),
        (0, _) => None,
        (_, Aggregation::Percentage) if s.hidden_n == 0 => Some(100.0),
        (_, Aggregation::Percentage) if s.acc + s.hidden == 0.0 => Some(0.0),
        (_, Aggregation::Percentage) => Some(100.0 * s.acc / (s.acc + s.hidden)),
        (n, Aggregation::Average) => Some(s.acc / f64::from(n)),
        _ => Some(s.acc),
    };
    folded.into_iter().map(|(k, v)| (k, value(v))).collect()
}
