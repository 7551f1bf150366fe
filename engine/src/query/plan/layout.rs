//! The tier rule, bucket by bucket: which tier serves which part of each
//! bucket `(s, e]`.
//!
//! Invariant (exact layouts): a rollup point `(a, b]` (tier 1: a minute,
//! tier 2: an hour, of the metric's update_every) serves part of a bucket
//! only when its whole interval lies inside the bucket, inside the span
//! where every rollup point equals the tier-0 samples of its interval
//! (after [`Coverage::exact_after`]), and inside what the tier retains.
//! Tier 0 fills the ragged edges. The pieces of a bucket are disjoint,
//! oldest first, and together cover exactly the bucket's exact part
//! ([`Coverage::exact_from`]: after `exact_after`, or the whole bucket
//! where tier 0 holds all its samples), so a time group that merges
//! points by their counts answers exactly what it answers over tier 0
//! alone.

use crate::query::window::Window;
use crate::storage::TIERS;

/// Read the points of `tier` whose end lies in `(from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub tier: u8,
    pub from: i64,
    pub to: i64,
}

/// Per bucket, the pieces that serve it, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    pieces: Vec<Piece>,
    /// Bucket `i` is `pieces[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<u32>,
}

/// What the tiers of one update_every group hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Seconds per point, per tier.
    pub res: [i64; TIERS],
    /// Per tier, the earliest interval start it retains points for
    /// (`None`: the tier holds nothing).
    pub horizon: [Option<i64>; TIERS],
    /// Tiers in use (1..=3).
    pub tiers: usize,
    /// Rollup points ending at or before this may hold samples tier 0 does
    /// not; the exact layout covers only what comes after it, but for a
    /// bucket whose samples tier 0 holds whole ([`Coverage::exact_from`]).
    pub exact_after: Option<i64>,
}

impl Coverage {
    /// Where the exact part of a bucket starting at `s` begins.
    /// `exact_after` (`r`) is where tier 0's oldest kept span starts (a
    /// span start, so on every update_every grid): its samples lie at `r`
    /// and later, while the rollup point that ends at `r` also holds
    /// samples tier 0 no longer has. (For rollups imported up to `r`, the
    /// demo's history, the slot at `r` is tier 0's too: it writes from
    /// there.) So a bucket
    /// starting at or after `r - res[0]` has only samples tier 0 holds and
    /// is exact whole (even the one-slot bucket `(r - 1, r]`); an earlier
    /// bucket reads rollup-only history up to `r` and is exact after it.
    pub fn exact_from(&self, s: i64) -> i64 {
        match (self.exact_after, self.aged_before()) {
            (Some(r), Some(before)) if s < before => r,
            _ => s,
        }
    }

    /// Bucket starts before which rollup-only history is read.
    pub fn aged_before(&self) -> Option<i64> {
        self.exact_after.map(|r| r - self.res[0])
    }

    /// The same coverage with rollups held only after `exact_after`, for
    /// layouts: an exact layout takes no rollup point that may hold
    /// samples tier 0 does not.
    fn rollups_after_exact(&self) -> Coverage {
        let mut cov = *self;
        if let Some(r) = cov.exact_after {
            for h in cov.horizon.iter_mut().skip(1) {
                *h = h.map(|h| h.max(r));
            }
        }
        cov
    }
}

impl Layout {
    /// The pieces of bucket `i`.
    pub fn bucket(&self, i: usize) -> &[Piece] {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        &self.pieces[a..b]
    }

    /// Every bucket's pieces, bucket after bucket.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Where bucket `i`'s pieces start in [`Layout::pieces`].
    pub fn first_piece(&self, i: usize) -> usize {
        self.offsets[i] as usize
    }

    /// Buckets described.
    pub fn buckets(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Which tiers any piece reads.
    pub fn tiers_read(&self) -> [bool; TIERS] {
        let mut out = [false; TIERS];
        for p in &self.pieces {
            out[usize::from(p.tier)] = true;
        }
        out
    }

    fn build(w: &Window, mut each: impl FnMut(i64, i64, &mut Vec<Piece>)) -> Layout {
        let mut pieces = Vec::with_capacity(w.points * 3);
        let mut offsets = Vec::with_capacity(w.points + 1);
        offsets.push(0);
        for i in 0..w.points {
            let e = w.bucket_end(i);
            each(e - w.view_every, e, &mut pieces);
            offsets.push(pieces.len() as u32);
        }
        Layout { pieces, offsets }
    }

    /// `tier: N` pinned: each bucket reads that tier's points ending in it.
    pub fn pinned(w: &Window, tier: usize) -> Layout {
        Layout::build(w, |s, e, out| out.push(Piece { tier: tier as u8, from: s, to: e }))
    }

    /// The exact layout: full rollup intervals where `rollups` allows them,
    /// tier 0 for the rest, each bucket from [`Coverage::exact_from`].
    pub fn exact(w: &Window, cov: &Coverage, rollups: bool) -> Layout {
        let top = if rollups { cov.tiers.clamp(1, TIERS) - 1 } else { 0 };
        let cov = cov.rollups_after_exact();
        Layout::build(w, |s, e, out| cover(cov.exact_from(s), e, top, &cov, out))
    }
}

/// Buckets of fewer tier-0 points than this read tier 0 whole in the
/// automatic layout, unless they are whole minutes (no ragged edges). Each
/// bucket that takes whole minutes between ragged ends also reads two
/// edges of tier 0 at two random places, and those reads wait for memory;
/// a scan of a few hundred packed samples does not. Measured with
/// `strata bench-peer` (1,000 series × 24 h, 300 points: 288 s buckets):
/// 47 ms over tier 0 alone, 58 ms through minutes and edges; in the
/// criterion query bench, once tier 0 was read in one pass per row, 71-81
/// ms of CPU against 120.
pub const ROLLUP_MIN_BUCKET_POINTS: i64 = 600;

/// Points a metric's buckets read below which its statistics come from
/// the buckets themselves.
pub const STATS_APART_MIN_POINTS: i64 = 4096;

/// The pieces a metric's statistics (min, max, sum, count over the
/// window) are read from, when a scan of sums and counts leaves them out
/// of its bucket loop: the samples the buckets read, as the coarsest whole
/// rollup intervals (hours, then minutes) with tier 0 only at the ragged
/// ends. A window's minimum and maximum then cost a few dozen rollup
/// points instead of a pass over every sample.
///
/// The pieces cover exactly what the buckets of `w` read: after
/// `exact_after` for an exact layout, everything for `tier: 0` pinned
/// (`pinned_raw`), which reads tier 0 before `exact_after` too. `None` when
/// there are no rollups, when they would save little (tier 0 would still
/// serve over a quarter of the window), or when the buckets (`buckets`)
/// read too few points for the separate pass to pay for itself: under
/// [`STATS_APART_MIN_POINTS`] (measured: a one-hour query of 1,000 metrics
/// read from per-minute points took 12 % more CPU with it), unless they
/// read rollups alone. Those buckets then take each piece's sums in one
/// pass per run (`scan::rollup_sums`): the same one-hour query took 6.7-9.7
/// ms of CPU that way against 12.3-12.9 with its statistics in the buckets.
pub fn stats_pieces(w: &Window, cov: &Coverage, pinned_raw: bool, buckets: &Layout) -> Option<Vec<Piece>> {
    let read: i64 = buckets.pieces.iter().map(|p| (p.to - p.from) / cov.res[usize::from(p.tier)].max(1)).sum();
    let rollups_alone = !buckets.pieces.is_empty() && buckets.pieces.iter().all(|p| p.tier > 0);
    if w.points == 0 || cov.tiers < 2 || (read < STATS_APART_MIN_POINTS && !rollups_alone) {
        return None;
    }
    let (start, end) = (w.bucket_end(0) - w.view_every, w.bucket_end(w.points - 1));
    let exact = cov.exact_from(start);
    let mut out = Vec::new();
    if pinned_raw && exact > start {
        out.push(Piece { tier: 0, from: start, to: exact.min(end) });
    }
    cover(exact, end, cov.tiers.min(TIERS) - 1, &cov.rollups_after_exact(), &mut out);
    let raw: i64 = out.iter().filter(|p| p.tier == 0).map(|p| p.to - p.from).sum();
    (out.iter().any(|p| p.tier > 0) && raw * 4 <= end - start).then_some(out)
}

/// Covers `(lo, hi]` with the coarsest whole intervals of tiers `..=tier`,
/// finer ones at the edges.
fn cover(lo: i64, hi: i64, tier: usize, cov: &Coverage, out: &mut Vec<Piece>) {
    if lo >= hi {
        return;
    }
    if tier == 0 {
        out.push(Piece { tier: 0, from: lo, to: hi });
        return;
    }
    let res = cov.res[tier];
    let Some(horizon) = cov.horizon[tier] else { return cover(lo, hi, tier - 1, cov, out) };
    let a = ceil_to(lo.max(horizon), res);
    let b = hi.div_euclid(res) * res;
    if a >= b {
        return cover(lo, hi, tier - 1, cov, out);
    }
    cover(lo, a, tier - 1, cov, out);
    out.push(Piece { tier: tier as u8, from: a, to: b });
    cover(b, hi, tier - 1, cov, out);
}

fn ceil_to(x: i64, res: i64) -> i64 {
    x.div_euclid(res) * res + if x.rem_euclid(res) == 0 { 0 } else { res }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn window(before: i64, points: usize, v: i64) -> Window {
        Window {
            after: before - points as i64 * v + 1,
            before,
            points,
            granularity: 1,
            group: v,
            view_every: v,
            resampling_divisor: None,
            relative: false,
        }
    }

    fn cov(ue: i64) -> Coverage {
        Coverage { res: [ue, 60 * ue, 3600 * ue], horizon: [Some(0); TIERS], tiers: 3, exact_after: None }
    }

    #[test]
    fn ragged_edges_come_from_tier_0() {
        // A 288 s bucket (3456, 3744]: tier 0 to 3480, whole minutes to 3720, tier 0 to 3744.
        let l = Layout::exact(&window(3744, 1, 288), &cov(1), true);
        let want = [
            Piece { tier: 0, from: 3456, to: 3480 },
            Piece { tier: 1, from: 3480, to: 3720 },
            Piece { tier: 0, from: 3720, to: 3744 },
        ];
        assert_eq!(l.bucket(0), &want[..]);
    }

    #[test]
    fn hours_inside_a_bucket_come_from_tier_2() {
        // (3500, 14490]: minutes 3540..3600, hours 3600..14400, a minute, tier 0.
        let w = window(4 * 3600 + 90, 1, 10_990);
        let l = Layout::exact(&w, &cov(1), true);
        let tiers: Vec<u8> = l.bucket(0).iter().map(|p| p.tier).collect();
        assert_eq!(tiers, vec![0, 1, 2, 1, 0]);
        assert_eq!(l.bucket(0)[2], Piece { tier: 2, from: 3600, to: 4 * 3600 });
    }

    #[test]
    fn raw_groups_and_exact_after_clip() {
        let w = window(3744, 2, 288);
        let mut c = cov(1);
        c.exact_after = Some(3500);
        let l = Layout::exact(&w, &c, false);
        assert!(l.bucket(0).is_empty(), "bucket (3168, 3456] lies before exact_after");
        assert_eq!(l.bucket(1), &[Piece { tier: 0, from: 3500, to: 3744 }]);
        assert!(Layout::pinned(&w, 1).bucket(1) == [Piece { tier: 1, from: 3456, to: 3744 }]);
    }

    #[test]
    fn statistics_read_hours_and_minutes_with_tier_0_at_the_ends() {
        // 300 buckets of 288 s ending at 86,400 + 30: the window (30, 86,430].
        let w = window(86_430, 300, 288);
        let raw = Layout::pinned(&w, 0);
        let p = stats_pieces(&w, &cov(1), false, &raw).expect("rollups serve");
        let want = [
            Piece { tier: 0, from: 30, to: 60 },
            Piece { tier: 1, from: 60, to: 3600 },
            Piece { tier: 2, from: 3600, to: 86_400 },
            Piece { tier: 0, from: 86_400, to: 86_430 },
        ];
        assert_eq!(p, want);
        // Pinned to tier 0, what lies before exact_after is read from tier 0.
        let mut c = cov(1);
        c.exact_after = Some(7_200);
        let p = stats_pieces(&w, &c, true, &raw).expect("rollups serve");
        assert_eq!(p[0], Piece { tier: 0, from: 30, to: 7_200 });
        assert_eq!(p[1], Piece { tier: 2, from: 7_200, to: 86_400 });
        // Mostly tier 0, no rollups, or too few points read: not worth it.
        let short = window(3_630, 1, 100);
        let long = Layout::pinned(&window(3_630, 1, 10_000), 0);
        assert_eq!(stats_pieces(&short, &cov(1), false, &long), None);
        assert_eq!(stats_pieces(&w, &Coverage { tiers: 1, ..cov(1) }, false, &raw), None);
        // Two half-hour buckets on the minute grid: 3,600 points of tier 0,
        // or 60 minutes of rollups alone, which take their statistics apart
        // however few they are (from the hour they make).
        let few = window(86_400, 2, 1_800);
        assert_eq!(stats_pieces(&few, &cov(1), false, &Layout::pinned(&few, 0)), None);
        let minutes = Layout::exact(&few, &cov(1), true);
        assert!(minutes.pieces().iter().all(|p| p.tier == 1), "{:?}", minutes.pieces());
        assert_eq!(
            stats_pieces(&few, &cov(1), false, &minutes),
            Some(vec![Piece { tier: 2, from: 82_800, to: 86_400 }])
        );
    }

    /// Checks that `pieces` run contiguously from `from` and that each
    /// rollup piece is whole, aligned intervals inside its tier's horizon
    /// and after `exact_after`; returns where they end.
    fn check_pieces(pieces: &[Piece], from: i64, c: &Coverage) -> Result<i64, TestCaseError> {
        let mut at = from;
        for p in pieces {
            prop_assert_eq!(p.from, at, "contiguous");
            prop_assert!(p.from < p.to);
            let t = usize::from(p.tier);
            if t > 0 {
                prop_assert_eq!(p.from.rem_euclid(c.res[t]), 0);
                prop_assert_eq!(p.to.rem_euclid(c.res[t]), 0);
                prop_assert!(c.horizon[t].is_some_and(|h| p.from >= h));
                prop_assert!(c.exact_after.is_none_or(|r| p.from >= r), "rollups only where exact");
            }
            at = p.to;
        }
        Ok(at)
    }

    proptest! {
        /// The statistics' pieces cover exactly what the buckets read:
        /// contiguous, whole aligned rollup intervals inside each tier's
        /// horizon, from the first bucket's start (or `exact_after`) to
        /// the last bucket's end.
        #[test]
        fn statistics_pieces_cover_what_the_buckets_read(
            ue in prop::sample::select(vec![1i64, 2, 5, 10]),
            before in 0i64..400_000,
            points in 1usize..40,
            v in 1i64..20_000,
            h1 in prop::option::of(-10_000i64..300_000),
            h2 in prop::option::of(-10_000i64..300_000),
            exact_after in prop::option::of(-10_000i64..300_000),
            pinned in any::<bool>(),
        ) {
            let w = window(before, points, v);
            let c = Coverage {
                res: [ue, 60 * ue, 3600 * ue],
                horizon: [Some(i64::MIN / 4), h1, h2],
                tiers: 3,
                exact_after,
            };
            let all = Layout::pinned(&window(before, 1, 10_000), 0);
            let Some(pieces) = stats_pieces(&w, &c, pinned, &all) else { return Ok(()) };
            let start = w.bucket_end(0) - v;
            let end = w.bucket_end(points - 1);
            let from = if pinned { start } else { c.exact_from(start) };
            prop_assert_eq!(check_pieces(&pieces, from, &c)?, end, "ends at the last bucket's end");
        }

        /// Every bucket is covered exactly (no gap, no overlap, in order)
        /// after `exact_after`; rollup pieces are whole, aligned intervals
        /// within the tier's horizon.
        #[test]
        fn pieces_partition_each_bucket(
            ue in prop::sample::select(vec![1i64, 2, 5, 10, 15]),
            before in 0i64..400_000,
            points in 1usize..40,
            v in 1i64..20_000,
            h1 in prop::option::of(-10_000i64..300_000),
            h2 in prop::option::of(-10_000i64..300_000),
            exact_after in prop::option::of(-10_000i64..300_000),
            tiers in 1usize..=3,
            rollups in any::<bool>(),
        ) {
            let w = window(before, points, v);
            let c = Coverage {
                res: [ue, 60 * ue, 3600 * ue],
                horizon: [Some(i64::MIN / 4), h1, h2],
                tiers,
                exact_after,
            };
            let l = Layout::exact(&w, &c, rollups);
            prop_assert_eq!(l.buckets(), points);
            for i in 0..points {
                let e = w.bucket_end(i);
                let lo = c.exact_from(e - v);
                let at = check_pieces(l.bucket(i), lo, &c)?;
                prop_assert!(l.bucket(i).iter().all(|p| usize::from(p.tier) < tiers && (rollups || p.tier == 0)));
                prop_assert_eq!(at, lo.max(e), "ends at the bucket end");
            }
        }
    }
}
