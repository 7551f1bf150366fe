//! Per-bucket aggregation pushed into strata's own query path.
//!
//! DataFusion has no aggregate pushdown into a table, so a logical
//! optimizer rule ([`BucketPushdown`]) recognises
//!
//! ```sql
//! SELECT <metric keys>, nd_bucket(V, ts), nd_median(value), avg(value), ...
//! FROM samples WHERE <metadata filters> AND <ts bounds> GROUP BY <metric keys>, nd_bucket(V, ts)
//! ```
//!
//! and replaces the `Aggregate` over the `samples` scan with a scan of a
//! one-off table whose rows the engine computes with the JSON API's own
//! planner (window, tiers: rollups where they are exact) and kernels
//! ([`exec`]). The answer is the JSON API's per-metric answer for the
//! same buckets, so SQL and the JSON API agree by construction.
//!
//! It applies only when the result is certainly the same as DataFusion's
//! own evaluation: every filter was taken exactly by the scan, the groups
//! identify a metric (`metric_id`, or node, context, instance and
//! dimension), one group is `nd_bucket(V, ts)` with constant `V`, the ts
//! range (if any) starts and ends on bucket edges, every metric's
//! update_every divides `V`, tier 0 holds the whole window, and every
//! aggregate is an `nd_*` function (or `avg`/`sum`) of `value` or of
//! `abs(value)` (what the JSON API's v2/v3 grouping feeds its time groups) without
//! DISTINCT, FILTER or ORDER BY. Anything else runs as plain DataFusion
//! over the samples table with the same kernels, only slower.
//!
//! Locking: the rule takes the engine's read locks once, to resolve the
//! metrics and plan the window (as a JSON query does); the computation
//! runs later from a [`StoreView`] with no lock held.
//!
//! [`StoreView`]: strata_engine::storage::StoreView

pub mod exec;
mod rule;

pub use rule::BucketPushdown;
