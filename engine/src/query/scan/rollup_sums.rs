//! The sums of a layout's rollup pieces, taken run by run in one pass
//! before the bucket loop, for a scan of sums whose statistics were read
//! apart ([`super::metric`]). The bucket loop then merges one aggregate
//! per piece instead of finding, copying and combining points bucket by
//! bucket: in a 1,000-metric query of the last hour in minutes, that
//! per-bucket machinery (and copying the open span's blocks into
//! contiguous columns) was most of the scan.
//!
//! Invariant: a piece's aggregate holds exactly the non-empty points of
//! its tier whose end lies in `(from, to]`: their counts, anomalous counts
//! and number, and their sums added in time order starting from 0.0 (the
//! per-bucket read's order too, except across a hole in a piece, where it
//! adds the parts on either side as two numbers). Nothing is copied
//! out of the store: open-span blocks are read where they lie, and a
//! sealed row's sums and counts are decoded into one reused buffer.

use crate::model::MetricId;
use crate::query::plan::layout::Piece;
use crate::storage::{AggColumns, AggPoint, RowData, StoreView};

use super::metric::index_range;

/// An empty piece: no points, the sum 0.0 its points are added to.
pub const EMPTY: AggPoint = AggPoint { sum: 0.0, min: f64::NAN, max: f64::NAN, count: 0, anomaly_count: 0 };

/// Adds to `sums[k]` (and `points[k]`, the non-empty points) the points of
/// metric `m` (update_every `ue`) in `tier` for every piece `k` of that
/// tier; pieces of other tiers are left as they are. `pieces` are oldest
/// first and disjoint, as a layout holds them.
pub fn take(
    store: &StoreView,
    (m, ue): (MetricId, i64),
    tier: usize,
    pieces: &[Piece],
    (sums, points): (&mut [AggPoint], &mut [u64]),
    decoded: &mut AggColumns,
) {
    let mine = |p: &Piece| usize::from(p.tier) == tier;
    let (Some(first), Some(last)) = (pieces.iter().position(mine), pieces.iter().rposition(mine)) else { return };
    let mut next = first;
    store.for_each_run(m, ue, tier, pieces[first].from, pieces[last].to, |r| {
        let (sum, count, anomalous) = match r.data {
            RowData::Agg { sum, count, anomaly_count, .. } => (sum, count, anomaly_count),
            RowData::AggEncoded(rows) => {
                decoded.clear();
                rows.decode_into(decoded, false);
                (&decoded.sum[..], &decoded.count[..], &decoded.anomaly_count[..])
            }
            RowData::Raw { .. } | RowData::Encoded(_) => return,
        };
        // Pieces are oldest first: skip those ending before this run.
        while next <= last && pieces[next].to < r.first_end {
            next += 1;
        }
        let last_end = r.last_end();
        for k in (next..=last).take_while(|&k| pieces[k].from < last_end) {
            let p = pieces[k];
            if !mine(&p) {
                continue;
            }
            if let Some((a, b)) = index_range(r.first_end, r.res, r.len, p.from, p.to) {
                add_points(&mut sums[k], &mut points[k], (&sum[a..b], &count[a..b], &anomalous[a..b]));
            }
        }
    });
}

/// Adds the non-empty points of the columns to `acc`, in order.
#[inline]
fn add_points(acc: &mut AggPoint, points: &mut u64, (sum, count, anomalous): (&[f64], &[u32], &[u32])) {
    for ((&s, &c), &a) in sum.iter().zip(count).zip(anomalous) {
        let ok = c > 0;
        // Empty points must not count, whatever their slots hold.
        acc.sum += if ok { s } else { 0.0 };
        acc.count += c;
        acc.anomaly_count += a;
        *points += u64::from(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StorageConfig, Store};
    use proptest::prelude::*;

    const DAY: i64 = 86_400;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Each piece gets the sum, counts and number of the points of its
        /// tier that end inside it, read from an open span or from a
        /// sealed day and the open one after it.
        #[test]
        fn pieces_hold_the_points_ending_inside(
            vals in prop::collection::vec(prop::option::weighted(0.8, -1e4f64..1e4), 200..16_000),
            start in 0i64..3_000,
            cuts in prop::collection::vec(0i64..16_000, 1..12),
            other in any::<bool>(),
            (hole_at, hole_len) in (0usize..16_000, 0usize..3_000),
        ) {
            // A hole of whole empty minutes (and blocks) somewhere.
            let hole = hole_at..hole_at + hole_len;
            let vals: Vec<Option<f64>> =
                vals.iter().enumerate().map(|(i, v)| v.filter(|_| !hole.contains(&i))).collect();
            // Often across midnight: a sealed rollup day, then the open one.
            let mut store = Store::new(StorageConfig::default());
            let t0 = DAY * 19_675 + DAY - 3_000 + start;
            for (i, v) in vals.iter().enumerate() {
                store.write(0, 1, t0 + i as i64, *v, i % 7 == 0).expect("write");
            }
            store.seal_pending().expect("seal");
            // Minutes ending at midnight or later belong to the next day's span.
            let before_midnight = vals.iter().take((DAY * 19_676 - 59 - t0).max(0) as usize).any(Option::is_some);
            if before_midnight && t0 + vals.len() as i64 > DAY * 19_676 + 3 * 3_600 {
                prop_assert!(!store.sealed(1, 1).is_empty(), "the first day's minutes are sealed");
            }
            // Minute pieces between sorted cuts; with `other`, every second
            // piece claims tier 2 (so tier 1 must leave it alone).
            let mut ends: Vec<i64> = cuts.iter().map(|c| (t0 / 60 + c / 60) * 60).collect();
            ends.sort_unstable();
            ends.dedup();
            let pieces: Vec<Piece> = ends
                .windows(2)
                .enumerate()
                .map(|(i, w)| Piece { tier: if other && i % 2 == 1 { 2 } else { 1 }, from: w[0], to: w[1] })
                .collect();
            let mut view = StoreView::of(&store, [0]);
            view.attach_open(&store, |_, _| (i64::MIN / 4, i64::MAX / 4));
            let (mut sums, mut points) = (vec![EMPTY; pieces.len()], vec![0u64; pieces.len()]);
            take(&view, (0, 1), 1, &pieces, (&mut sums, &mut points), &mut AggColumns::default());
            for (k, p) in pieces.iter().enumerate() {
                if p.tier != 1 {
                    prop_assert_eq!(points[k], 0);
                    prop_assert_eq!(sums[k].count, 0);
                    continue;
                }
                // The samples of the minutes ending in (from, to].
                let kept: Vec<(usize, f64)> = vals
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i, v)))
                    .filter(|&(i, _)| {
                        let t = t0 + i as i64;
                        let minute_end = (t + 59).div_euclid(60) * 60;
                        p.from < minute_end && minute_end <= p.to
                    })
                    .collect();
                let minutes = {
                    let mut m: Vec<i64> = kept.iter().map(|&(i, _)| (t0 + i as i64 + 59).div_euclid(60)).collect();
                    m.dedup();
                    m.len() as u64
                };
                let want: f64 = kept.iter().map(|&(_, v)| v).sum();
                prop_assert_eq!(sums[k].count as usize, kept.len());
                prop_assert_eq!(sums[k].anomaly_count as usize, kept.iter().filter(|&&(i, _)| i % 7 == 0).count());
                prop_assert_eq!(points[k], minutes);
                prop_assert!((sums[k].sum - want).abs() <= 1e-9 * want.abs().max(1.0), "{} vs {}", sums[k].sum, want);
            }
        }
    }
}
