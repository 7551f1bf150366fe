//! A query's memory, estimated before any sample is read, so a request
//! that cannot fit is refused with a 4xx instead of taking the process
//! down. The estimate is an upper bound of the big allocations, which all
//! scale with groups x points:
//! - the pass-0 accumulators, one per scan thread plus the merged one
//!   (value, contributor count, anomaly sum and flags: 21 bytes a cell);
//! - with hidden metrics (percentages), the same again for their sums;
//! - a second group-by pass and the output series (another two copies),
//!   and the response the server writes from them (about 24 bytes a cell
//!   as JSON);
//! - per thread, one metric's buckets (17 bytes a point) and, for time
//!   groups that keep a bucket's raw values (median, percentiles, trimmed
//!   means), a buffer of one bucket's samples.
//!
//! The store's blocks are shared by the view, not copied, and are not part
//! of a query's budget.

use super::QueryPlan;
use crate::query::time_group::Method;

/// Bytes of one accumulator cell: value f64, count u32, arp sum f64, flags u8.
const CELL: u64 = 8 + 4 + 8 + 1;
/// Bytes of one bucket of a metric's scan output: value, arp, flags.
const BUCKET: u64 = 8 + 8 + 1;

/// What the plan will allocate at most, in bytes.
pub fn estimate(plan: &QueryPlan, method: Method, threads: usize, passes: usize) -> u64 {
    let points = plan.window.points as u64;
    let groups = plan.groups.len().max(1) as u64;
    let threads = threads.max(1) as u64;
    let hidden = plan.jobs.iter().any(|j| j.hidden);
    let grid = groups.saturating_mul(points).saturating_mul(CELL);
    // Per-thread + merged, output series, pass headroom, and the response
    // (its ~24 bytes a cell are a little over one more copy).
    let mut copies = threads + 1 + 2 + 2;
    if hidden {
        copies += threads + 1;
    }
    if passes > 1 {
        copies += 1;
    }
    let per_thread_buckets = points * BUCKET * threads;
    let raw_values = if matches!(method, Method::Median | Method::Percentile | Method::TrimmedMean) {
        // One bucket's samples per thread: at most the bucket's width in seconds.
        (plan.window.view_every.max(1) as u64 / plan.update_every.max(1) as u64 + 1) * 8 * threads
    } else {
        0
    };
    grid.saturating_mul(copies).saturating_add(per_thread_buckets).saturating_add(raw_values)
}

/// Scan threads a plan gets: a thread per 64 metrics, at most `limit`.
pub fn threads(plan: &QueryPlan, limit: usize) -> usize {
    limit.clamp(1, 64).min(plan.jobs.len().div_ceil(64).max(1))
}
