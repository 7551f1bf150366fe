//! The tiered store. Metrics are grouped by update_every; each group has,
//! per tier, open spans (the head) and sealed Arrow segments. A raw sample
//! lands in tier 0 and updates the open tier-1 and tier-2 points in O(1).
//!
//! Late data: the head of a group starts at the tier-0 span holding its
//! newest sample; anything older is rejected (and counted by the caller).
//! An open span is sealed once every sample it could hold is older than the
//! head, so only open spans are ever modified.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::open_span::{OpenSpan, SpanSnapshot};
use super::row::{AggPoint, Run};
use super::segment::Segment;
use super::tier::{span_start, window_end, StorageConfig, TIERS};
use crate::error::Result;
use crate::model::MetricId;

#[derive(Debug, Default)]
struct TierState {
    open: BTreeMap<i64, OpenSpan>,
    /// Closed spans not yet laid out as segments (older than `open`, newer
    /// than `sealed`): readers read them as they read open spans.
    sealing: Vec<Arc<OpenSpan>>,
    /// Sorted by start; spans never overlap within a tier of one group.
    /// Shared with readers' views, copied on change.
    sealed: Arc<Vec<Arc<Segment>>>,
}

impl TierState {
    /// Start of the oldest span this tier holds.
    fn oldest_start(&self) -> Option<i64> {
        self.sealed
            .first()
            .map(|s| s.start)
            .or_else(|| self.sealing.first().map(|s| s.start))
            .or_else(|| self.open.keys().next().copied())
    }
}

#[derive(Debug)]
struct Group {
    ue: i64,
    tiers: [TierState; TIERS],
    /// Start of the newest tier-0 span: samples before it are late.
    head_start: Option<i64>,
    /// Newest sample time written (or backfilled) in this group.
    newest: i64,
    /// Rollup points ending at or before this may hold samples tier 0 does
    /// not (tier 0 dropped them, or the rollups were imported): only there
    /// can a rollup differ from the tier-0 samples of its interval.
    rollup_only_until: Option<i64>,
}

/// First and last point end times a metric has written into a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub first: i64,
    pub last: i64,
}

/// Outcome of writing one raw sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    Late,
}

/// One raw sample of a run: slot time, value (`None` = explicit gap),
/// anomaly bit. It is the ingest batch's own point, so the samples of a
/// per-second series (already slotted) are written from the decoded batch
/// without a copy.
pub type RawPoint = crate::ingest::Point;

/// One series of a batch for [`Store::write_batch`]: its metric, its
/// update_every, and its slotted samples.
pub type SeriesRun<'a> = (MetricId, i64, &'a [RawPoint]);

/// One metric's samples of a batch inside one tier-0 span (see
/// [`Store::batch_runs`]).
#[derive(Debug, Clone, Copy)]
pub struct BatchRun<'a> {
    /// The metric's update_every (its group of spans).
    pub ue: i64,
    /// The tier-0 span's start.
    pub s0: i64,
    /// The metric written.
    pub m: MetricId,
    /// Its samples in that span, slotted, in batch order.
    pub points: &'a [RawPoint],
}

/// Samples written and refused as late by [`Store::write_run`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOutcome {
    pub written: u64,
    pub late: u64,
}

/// A sealed segment the persistence layer has not written yet, or one
/// retention dropped (whose file must go).
#[derive(Debug, Clone)]
pub struct SegmentEvent {
    pub tier: usize,
    pub update_every: i64,
    pub segment: Arc<Segment>,
}

/// Where a group's head stands (persisted at checkpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeadState {
    pub update_every: i64,
    pub head_start: Option<i64>,
    pub newest: i64,
    /// See [`Store::rollup_only_until`].
    #[serde(default)]
    pub rollup_only_until: Option<i64>,
    /// False in snapshots written before `rollup_only_until` existed. Kept
    /// in the format; a restore derives the value from what the store
    /// holds in every case ([`Store::set_head`]).
    #[serde(default)]
    pub rollup_only_tracked: bool,
}

#[derive(Debug)]
pub struct Store {
    cfg: StorageConfig,
    groups: BTreeMap<i64, Group>,
    /// Sealed since the last `take_events`.
    sealed_events: Vec<SegmentEvent>,
    /// Dropped by retention since the last `take_events`.
    dropped_events: Vec<SegmentEvent>,
    /// Only a persistence layer drains the events; without one, queuing
    /// them would keep every sealed and dropped segment alive forever.
    track_events: bool,
    /// Per metric: update_every and per-tier extents.
    metrics: Vec<Option<(i64, [Option<Extent>; TIERS])>>,
    /// [`Store::write_run`]'s per-point overwrite flags, kept between runs.
    replaced: Vec<bool>,
    /// Per (metric, rollup tier): the end and sample count of its first
    /// point, once that point is final (before the head), so that placing the
    /// first sample after tier 0 has aged out (`samples.rs`) reads no row
    /// on every query. Keyed by the end: retention moving the first point
    /// makes an entry stale, and a lookup then reads the new one.
    first_counts: std::sync::Mutex<std::collections::HashMap<(MetricId, usize), (i64, u32)>>,
}

impl Store {
    pub fn new(cfg: StorageConfig) -> Self {
        Store {
            cfg,
            groups: BTreeMap::new(),
            sealed_events: Vec::new(),
            dropped_events: Vec::new(),
            track_events: false,
            metrics: Vec::new(),
            replaced: Vec::new(),
            first_counts: Default::default(),
        }
    }

    /// The sample count of metric `m`'s point ending at `end` in `tier`
    /// ([`Store::point_at`]), remembered where that point is its first in
    /// the tier and final.
    pub(crate) fn first_count(&self, m: MetricId, ue: i64, tier: usize, end: i64) -> Option<u32> {
        let key = (m, tier);
        if let Some(&(at, n)) = self.first_counts.lock().ok().and_then(|c| c.get(&key).copied()).as_ref() {
            if at == end {
                return Some(n);
            }
        }
        let n = self.point_at(m, ue, tier, end, |r| r.counts(0).0)?;
        // Final once its interval lies before the head: samples there are
        // late and imported rollups are refused (`write_rollup`), so the
        // point never changes again.
        if self.groups.get(&ue).and_then(|g| g.head_start).is_some_and(|h| end < h) {
            if let Ok(mut c) = self.first_counts.lock() {
                c.insert(key, (end, n));
            }
        }
        Some(n)
    }

    pub fn config(&self) -> &StorageConfig {
        &self.cfg
    }

    fn group(&mut self, ue: i64) -> &mut Group {
        self.groups.entry(ue).or_insert_with(|| Group {
            ue,
            tiers: Default::default(),
            head_start: None,
            newest: i64::MIN,
            rollup_only_until: None,
        })
    }

    /// The time before which samples of update_every `ue` are late.
    pub fn late_before(&self, ue: i64) -> Option<i64> {
        self.groups.get(&ue).and_then(|g| g.head_start)
    }

    fn note_extent(&mut self, m: MetricId, ue: i64, tier: usize, end: i64) {
        let idx = m as usize;
        if self.metrics.len() <= idx {
            self.metrics.resize(idx + 1, None);
        }
        let entry = self.metrics[idx].get_or_insert((ue, [None; TIERS]));
        let e = &mut entry.1[tier];
        *e = Some(match *e {
            None => Extent { first: end, last: end },
            Some(x) => Extent { first: x.first.min(end), last: x.last.max(end) },
        });
    }

    /// Where a gap was just written at times `emptied` of `tier`, over what
    /// held a value: if one is an end of metric `m`'s extent there, finds
    /// that end again (the nearest point still holding a value), so that
    /// the extent is the first and last point held, as it is once read back
    /// from sealed data. Rare (a gap sent over a boundary sample), and then
    /// a search from that end inward, span by span.
    fn recheck_ends(&mut self, m: MetricId, ue: i64, tier: usize, emptied: impl Iterator<Item = i64>) {
        let Some(Some((_, ext))) = self.metrics.get(m as usize) else { return };
        let Some(e) = ext[tier] else { return };
        let (mut first_gone, mut last_gone) = (false, false);
        for t in emptied {
            first_gone |= t == e.first;
            last_gone |= t == e.last;
        }
        if !first_gone && !last_gone {
            return;
        }
        let found = if first_gone {
            // Retention may have dropped spans the recorded first lies in
            // (`Store::extent` corrects it when read): start at the oldest kept.
            let kept = self.groups.get(&ue).and_then(|g| g.tiers[tier].oldest_start()).unwrap_or(e.first);
            self.first_held(m, ue, tier, e.first.max(kept), e.last)
        } else {
            Some(e.first)
        };
        let found = match (found, last_gone) {
            (Some(first), true) => self.last_held(m, ue, tier, first, e.last).map(|last| (first, last)),
            (Some(first), false) => Some((first, e.last)),
            (None, _) => None,
        };
        if let Some(Some(entry)) = self.metrics.get_mut(m as usize) {
            entry.1[tier] = found.map(|(first, last)| Extent { first, last });
        }
    }

    /// The first point end in `[from, to]` of metric `m`'s `tier` that holds
    /// a value, searched span by span from `from`.
    fn first_held(&self, m: MetricId, ue: i64, tier: usize, from: i64, to: i64) -> Option<i64> {
        let span = self.cfg.span_secs(tier, ue);
        let (mut found, mut at) = (None, from - 1);
        while found.is_none() && at < to {
            let next = at.saturating_add(span).min(to);
            self.for_each_run(m, ue, tier, at, next, |run| {
                if found.is_none() {
                    found = (0..run.len).find(|&i| run.is_valid(i)).map(|i| run.end_of(i));
                }
            });
            at = next;
        }
        found
    }

    /// The last point end in `[from, to]` of metric `m`'s `tier` that holds
    /// a value, searched span by span back from `to`.
    fn last_held(&self, m: MetricId, ue: i64, tier: usize, from: i64, to: i64) -> Option<i64> {
        let span = self.cfg.span_secs(tier, ue);
        let (mut found, mut at) = (None, to);
        while found.is_none() && at >= from {
            let prev = at.saturating_sub(span).max(from - 1);
            self.for_each_run(m, ue, tier, prev, at, |run| {
                if let Some(i) = (0..run.len).rev().find(|&i| run.is_valid(i)) {
                    found = Some(found.map_or(run.end_of(i), |l: i64| l.max(run.end_of(i))));
                }
            });
            at = prev;
        }
        found
    }

    /// Writes one raw sample (a run of one). `t` must already be slotted to `ue`.
    /// Returns `Late` (and writes nothing) when `t` is before the head.
    pub fn write(&mut self, m: MetricId, ue: i64, t: i64, value: Option<f64>, anomalous: bool) -> Result<WriteOutcome> {
        let s0 = span_start(t, self.cfg.span_secs(0, ue));
        let o = self.write_run(m, ue, s0, &[RawPoint { t, value, anomalous }], None)?;
        Ok(if o.late > 0 { WriteOutcome::Late } else { WriteOutcome::Written })
    }

    /// Writes a batch: per series `(metric, update_every, points)` its
    /// slotted samples, in series order. The same outcome as writing
    /// every sample with [`Store::write`] in time order (stable, so the last
    /// write to a slot wins), which keeps a batch covering several spans from
    /// making its own earlier samples late; done as per-span runs of one
    /// metric, sorted by span, so lookups happen per run, not per sample.
    ///
    /// `clock` (the ingest's "now", when the engine trusts its clock) caps
    /// how far the batch moves the head: spans close as the earlier of the
    /// newest sample and the clock passes them (plus the late grace). So a
    /// sample from a client whose clock runs ahead (up to `--max-future`)
    /// cannot close the hour that everyone else is still writing and make
    /// their on-time samples late. Replay passes each record's own clock,
    /// so it moves the head exactly as the first apply did.
    pub fn write_batch(&mut self, series: &[SeriesRun<'_>], clock: Option<i64>) -> Result<RunOutcome> {
        let runs = Store::batch_runs(&self.cfg, series);
        self.write_runs(&runs, clock)
    }

    /// The runs [`Store::write_batch`] writes, in the order it writes them:
    /// per series, its points cut at span ends; then sorted by
    /// (update_every, span), stably, so runs of one span keep their batch
    /// order. Any cut of this list written piece after piece with
    /// [`Store::write_runs`] writes what the whole batch writes. It needs
    /// only the store's configuration (`cfg`), so it runs outside its lock.
    pub fn batch_runs<'a>(cfg: &StorageConfig, series: &[SeriesRun<'a>]) -> Vec<BatchRun<'a>> {
        let mut runs: Vec<BatchRun<'a>> = Vec::with_capacity(series.len());
        for &(m, ue, points) in series {
            let span0 = cfg.span_secs(0, ue);
            let mut rest = points;
            while let Some(first) = rest.first() {
                // A run ends at the first point outside its span: found by
                // comparisons, not a division per point.
                let s0 = span_start(first.t, span0);
                let inside = |p: &RawPoint| (s0..s0.saturating_add(span0)).contains(&p.t);
                let (run, after) = rest.split_at(rest.iter().position(|p| !inside(p)).unwrap_or(rest.len()));
                runs.push(BatchRun { ue, s0, m, points: run });
                rest = after;
            }
        }
        runs.sort_by_key(|r| (r.ue, r.s0));
        runs
    }

    /// Writes `runs` (a piece of [`Store::batch_runs`]' list) in order.
    pub fn write_runs(&mut self, runs: &[BatchRun<'_>], clock: Option<i64>) -> Result<RunOutcome> {
        let mut total = RunOutcome::default();
        for r in runs {
            let o = self.write_run(r.m, r.ue, r.s0, r.points, clock)?;
            total.written += o.written;
            total.late += o.late;
        }
        Ok(total)
    }

    /// Writes the samples of one metric that fall in the tier-0 span starting
    /// at `s0` (each `t` slotted to `ue`), in their order: the same result as
    /// [`Store::write`] per sample, with each span and row looked up once per
    /// run instead of once per sample and tier. A run before the head is
    /// late as a whole (the head is a span start). `clock` caps the head as
    /// in [`Store::write_batch`].
    pub fn write_run(
        &mut self,
        m: MetricId,
        ue: i64,
        s0: i64,
        pts: &[RawPoint],
        clock: Option<i64>,
    ) -> Result<RunOutcome> {
        let Some(newest) = pts.iter().map(|p| p.t).max() else { return Ok(RunOutcome::default()) };
        let cfg = self.cfg;
        debug_assert!(pts.iter().all(|p| span_start(p.t, cfg.span_secs(0, ue)) == s0));
        let (head, reach) = {
            let g = self.group(ue);
            if g.head_start.is_some_and(|h| s0 < h) {
                return Ok(RunOutcome { written: 0, late: pts.len() as u64 });
            }
            g.newest = g.newest.max(newest);
            (g.head_start, clock.map_or(g.newest, |c| g.newest.min(c)))
        };
        let keep_from = cfg.head_for(reach, ue);
        if head.is_none_or(|h| keep_from > h) {
            self.advance(ue, keep_from, reach)?;
        }

        // Tier 0, remembering which slots held a value before.
        let mut replaced = std::mem::take(&mut self.replaced);
        replaced.clear();
        replaced.resize(pts.len(), false);
        let (mut extent, mut any_emptied): (Option<(i64, i64)>, bool) = (None, false);
        {
            let g = self.group(ue);
            let span =
                g.tiers[0].open.entry(s0).or_insert_with(|| OpenSpan::new(s0, ue, cfg.tiers[0].span_points, true));
            let r = span.row_or_insert(m);
            span.write_raw_points(r, pts, &mut replaced);
            for (p, rep) in pts.iter().zip(&replaced) {
                if p.value.is_some() || *rep {
                    extent = Some(extent.map_or((p.t, p.t), |(a, b)| (a.min(p.t), b.max(p.t))));
                }
                any_emptied |= *rep && p.value.is_none();
            }
        }
        if let Some((first, last)) = extent {
            self.note_extent(m, ue, 0, first);
            self.note_extent(m, ue, 0, last);
        }
        if any_emptied {
            // A gap written over a sample at an end of the extent moves that end.
            let emptied = pts.iter().zip(&replaced).filter(|(p, &rep)| rep && p.value.is_none()).map(|(p, _)| p.t);
            self.recheck_ends(m, ue, 0, emptied);
        }

        // Tiers 1 and 2: new values merge in O(1); a rollup point whose raw
        // slot was overwritten is rebuilt from tier 0 afterwards (it replaces
        // the point, so merges into it earlier in the run are not counted twice).
        for tier in 1..TIERS {
            let res = cfg.resolution(tier, ue);
            let span_secs = cfg.span_secs(tier, ue);
            let points = cfg.tiers[tier].span_points;
            let mut extent: Option<(i64, i64)> = None;
            let mut rebuild: Vec<i64> = Vec::new();
            let open = &mut self.group(ue).tiers[tier].open;
            let mut cur: Option<(i64, usize)> = None;
            let mut at = 0;
            while at < pts.len() {
                // The consecutive samples of one rollup point fold at once
                // (found by comparisons, not a division per sample).
                let end = window_end(pts[at].t, res);
                let len = pts[at..].iter().position(|p| p.t <= end - res || p.t > end).unwrap_or(pts.len() - at);
                let (group, rep) = (&pts[at..at + len], &replaced[at..at + len]);
                at += len;
                if rep.contains(&true) {
                    rebuild.push(end);
                }
                let mut values = group
                    .iter()
                    .zip(rep)
                    .filter(|(_, &replaced)| !replaced)
                    .filter_map(|(p, _)| p.value.map(|v| (v, p.anomalous)))
                    .peekable();
                if values.peek().is_none() {
                    continue;
                }
                let start = span_start(end, span_secs);
                let span = open.entry(start).or_insert_with(|| OpenSpan::new(start, res, points, false));
                let row = match cur {
                    Some((s, r)) if s == start => r,
                    _ => span.row_or_insert(m),
                };
                cur = Some((start, row));
                span.merge_agg_values(row, end, values);
                extent = Some(extent.map_or((end, end), |(a, b)| (a.min(end), b.max(end))));
            }
            if let Some((first, last)) = extent {
                self.note_extent(m, ue, tier, first);
                self.note_extent(m, ue, tier, last);
            }
            rebuild.sort_unstable();
            rebuild.dedup();
            let mut emptied = Vec::new();
            for end in rebuild {
                let agg = self.aggregate_raw(m, ue, end - res, end);
                if agg.is_none() {
                    emptied.push(end);
                }
                let start = span_start(end, span_secs);
                self.group(ue).tiers[tier]
                    .open
                    .entry(start)
                    .or_insert_with(|| OpenSpan::new(start, res, points, false))
                    .set_agg(m, end, agg);
            }
            if !emptied.is_empty() {
                self.recheck_ends(m, ue, tier, emptied.into_iter());
            }
        }
        self.replaced = replaced;
        Ok(RunOutcome { written: pts.len() as u64, late: 0 })
    }

    /// Writes a whole aggregate point into tier 1 or 2 (history import).
    /// Points before the head are refused like late samples.
    pub fn write_rollup(&mut self, m: MetricId, ue: i64, tier: usize, end: i64, p: AggPoint) -> WriteOutcome {
        let cfg = self.cfg;
        let res = cfg.resolution(tier, ue);
        let g = self.group(ue);
        if g.head_start.is_some_and(|h| end - res < h) {
            return WriteOutcome::Late;
        }
        g.newest = g.newest.max(end);
        g.rollup_only_until = Some(g.rollup_only_until.map_or(end, |r| r.max(end)));
        let start = span_start(end, cfg.span_secs(tier, ue));
        g.tiers[tier]
            .open
            .entry(start)
            .or_insert_with(|| OpenSpan::new(start, res, cfg.tiers[tier].span_points, false))
            .set_agg(m, end, Some(p));
        self.note_extent(m, ue, tier, end);
        WriteOutcome::Written
    }

    /// Moves the head of group `ue` to `head` (never backwards), sealing
    /// every open span whose samples are all older, and enforcing retention
    /// back from `reach`: the newest sample as capped by the clock (see
    /// [`Store::write_batch`]), so a client whose clock runs ahead cannot
    /// make the store drop data before its time either.
    pub fn advance(&mut self, ue: i64, head: i64, reach: i64) -> Result<()> {
        let cfg = self.cfg;
        self.group(ue);
        let Some(g) = self.groups.get_mut(&ue) else { return Ok(()) };
        if g.head_start.is_some_and(|h| h >= head) {
            return Ok(());
        }
        g.head_start = Some(head);
        let newest = reach.max(head);
        for tier in 0..TIERS {
            let res = cfg.resolution(tier, ue);
            let span = cfg.span_secs(tier, ue);
            let st = &mut g.tiers[tier];
            // The last sample a span can hold ends at start + span - res.
            // Closed spans wait in `sealing` until laid out as segments
            // (`seal_pending`), off the writer's lock.
            let ready: Vec<i64> = st.open.keys().copied().filter(|&s| s + span - res < head).collect();
            for s in ready {
                if let Some(open) = st.open.remove(&s) {
                    if open.rows() > 0 {
                        st.sealing.push(Arc::new(open));
                    }
                }
            }
            let keep_after = newest - cfg.tiers[tier].retention_secs;
            if st.sealed.iter().any(|seg| seg.end() <= keep_after) {
                let (keep, drop): (Vec<_>, Vec<_>) = st.sealed.iter().cloned().partition(|seg| seg.end() > keep_after);
                st.sealed = Arc::new(keep);
                if tier == 0 {
                    if let Some(end) = drop.iter().map(|seg| seg.end()).max() {
                        g.rollup_only_until = Some(g.rollup_only_until.map_or(end, |r| r.max(end)));
                    }
                }
                if self.track_events {
                    self.dropped_events.extend(drop.into_iter().map(|segment| SegmentEvent {
                        tier,
                        update_every: ue,
                        segment,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Closed spans waiting to be laid out as segments.
    pub fn pending_seals(&self) -> Vec<(usize, i64, Arc<OpenSpan>)> {
        let mut out = Vec::new();
        for g in self.groups.values() {
            for (t, st) in g.tiers.iter().enumerate() {
                out.extend(st.sealing.iter().map(|s| (t, g.ue, s.clone())));
            }
        }
        out
    }

    /// How many closed spans wait to be laid out (as [`Store::pending_seals`], without the copies).
    pub fn pending_seal_count(&self) -> usize {
        self.groups.values().flat_map(|g| g.tiers.iter()).map(|st| st.sealing.len()).sum()
    }

    /// Replaces the closed span `span` with its segment `seg`.
    pub fn complete_seal(&mut self, tier: usize, ue: i64, span: &Arc<OpenSpan>, seg: Arc<Segment>) {
        let Some(g) = self.groups.get_mut(&ue) else { return };
        let st = &mut g.tiers[tier];
        let Some(at) = st.sealing.iter().position(|s| Arc::ptr_eq(s, span)) else { return };
        st.sealing.remove(at);
        let sealed = Arc::make_mut(&mut st.sealed);
        let pos = sealed.partition_point(|s| s.start < seg.start);
        sealed.insert(pos, seg.clone());
        if self.track_events {
            self.sealed_events.push(SegmentEvent { tier, update_every: ue, segment: seg });
        }
    }

    /// Lays out every closed span as a segment, here and now (recovery,
    /// bulk loads, tests; the engine does it off the lock).
    pub fn seal_pending(&mut self) -> Result<()> {
        for (tier, ue, span) in self.pending_seals() {
            let seg = Arc::new(Segment::seal(tier as u8, &span)?);
            self.complete_seal(tier, ue, &span, seg);
        }
        Ok(())
    }

    /// Recomputes the aggregate of raw samples with end in `(from_excl, to_incl]`.
    fn aggregate_raw(&self, m: MetricId, ue: i64, from_excl: i64, to_incl: i64) -> Option<AggPoint> {
        let mut acc: Option<AggPoint> = None;
        self.for_each_run(m, ue, 0, from_excl, to_incl, |run| {
            for i in 0..run.len {
                if !run.is_valid(i) {
                    continue;
                }
                let p = run.agg(i);
                acc = Some(match acc {
                    None => p,
                    Some(a) => AggPoint {
                        sum: a.sum + p.sum,
                        min: a.min.min(p.min),
                        max: a.max.max(p.max),
                        count: a.count + 1,
                        anomaly_count: a.anomaly_count + p.anomaly_count,
                    },
                });
            }
        });
        acc
    }

    /// Calls `f` with metric `m`'s runs in `tier`, clipped to point ends in
    /// `(from_excl, to_incl]`, oldest first. Borrowed, never copied.
    pub fn for_each_run<'a>(
        &'a self,
        m: MetricId,
        ue: i64,
        tier: usize,
        from_excl: i64,
        to_incl: i64,
        mut f: impl FnMut(Run<'a>),
    ) {
        let Some(g) = self.groups.get(&ue) else { return };
        let st = &g.tiers[tier];
        sealed_runs(&st.sealed, m, from_excl, to_incl, &mut f);
        let spans = st.sealing.iter().map(|s| &**s).chain(st.open.range(..=to_incl).map(|(_, s)| s));
        for span in spans {
            if span.start > to_incl || span.start + span.span_secs() - span.res <= from_excl {
                continue;
            }
            span.for_each_run(m, |r| {
                if let Some(run) = r.clip(from_excl, to_incl) {
                    f(run);
                }
            });
        }
    }

    /// The sealed segments of `tier` of update_every `ue`, shared.
    pub fn sealed(&self, ue: i64, tier: usize) -> Arc<Vec<Arc<Segment>>> {
        self.groups.get(&ue).map(|g| g.tiers[tier].sealed.clone()).unwrap_or_default()
    }

    /// Snapshots of the closed-unsealed and open spans of `tier` that hold
    /// point ends in `(from_excl, to_incl]`, oldest first.
    pub fn open_snapshots(&self, ue: i64, tier: usize, from_excl: i64, to_incl: i64) -> Vec<SpanSnapshot> {
        let Some(g) = self.groups.get(&ue) else { return Vec::new() };
        let st = &g.tiers[tier];
        let spans = st.sealing.iter().map(|s| &**s).chain(st.open.range(..=to_incl).map(|(_, s)| s));
        // The last point of a span ends at start + span - res.
        spans
            .filter(|s| s.start <= to_incl && s.start + s.span_secs() - s.res > from_excl)
            .map(OpenSpan::snapshot)
            .collect()
    }

    /// update_every of a metric, if it has ever been written.
    pub fn update_every(&self, m: MetricId) -> Option<i64> {
        self.metrics.get(m as usize).and_then(|e| e.map(|(ue, _)| ue))
    }

    /// End times of the first and last points metric `m` holds in `tier`,
    /// the open (still filling) point included. After retention dropped
    /// older spans, `first` is the first point still held, found by reading
    /// the oldest span (a span start is not a sample time).
    pub fn extent(&self, m: MetricId, tier: usize) -> Option<Extent> {
        let (ue, ext) = self.metrics.get(m as usize).copied().flatten()?;
        let e = ext[tier]?;
        let g = self.groups.get(&ue)?;
        let oldest_kept = g.tiers[tier].oldest_start()?;
        let first = if e.first >= oldest_kept {
            e.first
        } else {
            // Span by span from the oldest kept: the first that holds the
            // metric ends the search (a query asks this for every metric).
            self.first_held(m, ue, tier, oldest_kept, e.last)?
        };
        (first <= e.last).then_some(Extent { first, last: e.last })
    }

    /// Resolution of `tier` for metric `m`.
    pub fn resolution(&self, m: MetricId, tier: usize) -> Option<i64> {
        self.update_every(m).map(|ue| self.cfg.resolution(tier, ue))
    }

    /// Sealed and open span counts per tier, for `/health`.
    pub fn stats(&self) -> [(usize, usize); TIERS] {
        let mut out = [(0usize, 0usize); TIERS];
        for g in self.groups.values() {
            for (t, st) in g.tiers.iter().enumerate() {
                out[t].0 += st.sealed.len();
                out[t].1 += st.open.len() + st.sealing.len();
            }
        }
        out
    }

    /// Starts queuing sealed and dropped segments for `take_events`.
    pub fn track_events(&mut self) {
        self.track_events = true;
    }

    /// Segments sealed and dropped since the last call.
    pub fn take_events(&mut self) -> (Vec<SegmentEvent>, Vec<SegmentEvent>) {
        (std::mem::take(&mut self.sealed_events), std::mem::take(&mut self.dropped_events))
    }

    /// Puts back events a failed checkpoint took, so the next one writes them.
    pub fn requeue_events(&mut self, sealed: Vec<SegmentEvent>, dropped: Vec<SegmentEvent>) {
        self.sealed_events.splice(0..0, sealed);
        self.dropped_events.splice(0..0, dropped);
    }

    pub fn has_sealed_events(&self) -> bool {
        !self.sealed_events.is_empty() || !self.dropped_events.is_empty()
    }

    /// Swaps a sealed segment for an equal one (e.g. its memory-mapped twin).
    pub fn replace_sealed(&mut self, tier: usize, ue: i64, old: &Arc<Segment>, new: Arc<Segment>) {
        if let Some(g) = self.groups.get_mut(&ue) {
            let st = &mut g.tiers[tier];
            if let Some(at) = st.sealed.iter().position(|s| Arc::ptr_eq(s, old)) {
                Arc::make_mut(&mut st.sealed)[at] = new;
            }
        }
    }

    fn note_run_extent(
        &mut self,
        tier: usize,
        ue: i64,
        seg_start: i64,
        res: i64,
        ids: &[MetricId],
        run_of: impl Fn(MetricId) -> Option<(usize, usize)>,
    ) {
        for &m in ids {
            if let Some((first, last)) = run_of(m) {
                self.note_extent(m, ue, tier, seg_start + first as i64 * res);
                self.note_extent(m, ue, tier, seg_start + last as i64 * res);
            }
        }
    }

    /// Adds a sealed segment read back from disk (recovery).
    pub fn insert_sealed(&mut self, tier: usize, ue: i64, seg: Arc<Segment>) {
        let ids = seg.metric_ids();
        self.note_run_extent(tier, ue, seg.start, seg.res, &ids, |m| seg.run(m).and_then(|r| valid_range(&r)));
        let g = self.group(ue);
        g.newest = g.newest.max(seg.end() - seg.res);
        let sealed = Arc::make_mut(&mut g.tiers[tier].sealed);
        let pos = sealed.partition_point(|s| s.start < seg.start);
        sealed.insert(pos, seg);
    }

    /// Drops a sealed segment (size-based retention); queries over its span
    /// fall through to coarser tiers.
    pub fn drop_sealed(&mut self, tier: usize, ue: i64, start: i64) -> bool {
        let Some(g) = self.groups.get_mut(&ue) else { return false };
        let Some(at) = g.tiers[tier].sealed.iter().position(|s| s.start == start) else { return false };
        let end = Arc::make_mut(&mut g.tiers[tier].sealed).remove(at).end();
        if tier == 0 {
            g.rollup_only_until = Some(g.rollup_only_until.map_or(end, |r| r.max(end)));
        }
        true
    }

    /// Restores an open span from its snapshot (recovery). Snapshots hold
    /// the slots a span's blocks held ([`OpenSpan::held_slots`]), so the
    /// span is the one of this tier that holds the segment's start.
    pub fn restore_snapshot(&mut self, tier: usize, ue: i64, seg: &Segment) {
        let start = span_start(seg.start, self.cfg.span_secs(tier, ue));
        self.restore_open(tier, ue, seg.to_open_in(start, self.cfg.tiers[tier].span_points));
    }

    fn restore_open(&mut self, tier: usize, ue: i64, span: OpenSpan) {
        for &m in span.ids() {
            let mut ends: Option<(i64, i64)> = None;
            span.for_each_run(m, |r| {
                if let Some((a, b)) = valid_range(&r) {
                    let (a, b) = (r.end_of(a), r.end_of(b));
                    ends = Some(ends.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
                }
            });
            if let Some((first, last)) = ends {
                self.note_extent(m, ue, tier, first);
                self.note_extent(m, ue, tier, last);
            }
        }
        self.group(ue).tiers[tier].open.insert(span.start, span);
    }

    /// Every open (or closed, not yet sealed) span, for snapshots.
    pub fn open_spans(&self) -> Vec<(usize, i64, &OpenSpan)> {
        let mut out = Vec::new();
        for g in self.groups.values() {
            for (t, st) in g.tiers.iter().enumerate() {
                let spans = st.sealing.iter().map(|s| &**s).chain(st.open.values());
                out.extend(spans.filter(|s| s.rows() > 0).map(|s| (t, g.ue, s)));
            }
        }
        out
    }

    /// Head positions of every group (persisted with snapshots).
    pub fn heads(&self) -> Vec<HeadState> {
        self.groups
            .values()
            .map(|g| HeadState {
                update_every: g.ue,
                head_start: g.head_start,
                newest: g.newest,
                rollup_only_until: g.rollup_only_until,
                rollup_only_tracked: true,
            })
            .collect()
    }

    /// Restores a group's head (recovery), after its spans are loaded.
    pub fn set_head(&mut self, h: HeadState) {
        let g = self.group(h.update_every);
        g.head_start = h.head_start;
        g.newest = g.newest.max(h.newest);
        g.rollup_only_until = h.rollup_only_until;
        // Derived always, not only for snapshots that did not track it: a
        // size-bound drop of tier-0 files (`--max-disk-tier0`) is in the
        // manifest at once but in the heads only from the next snapshot,
        // so after a crash in between the recorded value is behind what
        // the store holds.
        self.derive_rollup_only(h.update_every);
    }

    /// From what the store holds: rollup spans that start before tier 0's
    /// oldest span may hold samples tier 0 does not, so everything up to
    /// that oldest span is treated as rollup-only (conservative: where the
    /// rollups hold nothing there, the answer is the same).
    pub fn derive_rollup_only(&mut self, ue: i64) {
        let Some(g) = self.groups.get_mut(&ue) else { return };
        let Some(h0) = g.tiers[0].oldest_start() else { return };
        if g.tiers[1..].iter().filter_map(TierState::oldest_start).any(|s| s < h0) {
            g.rollup_only_until = Some(g.rollup_only_until.map_or(h0, |r| r.max(h0)));
        }
    }

    /// Rollup points of update_every `ue` ending at or before this may
    /// hold samples tier 0 does not have (it dropped them, or they were
    /// imported); after it, every rollup point is exactly the aggregate of
    /// the tier-0 samples in its interval. `None`: nowhere.
    pub fn rollup_only_until(&self, ue: i64) -> Option<i64> {
        self.groups.get(&ue).and_then(|g| g.rollup_only_until)
    }

    /// The earliest interval start `tier` of update_every `ue` still holds
    /// points for: its points `(end - res, end]` with `end - res >= horizon`
    /// are all retained. `None` when the tier holds nothing.
    pub fn horizon(&self, ue: i64, tier: usize) -> Option<i64> {
        let oldest = self.groups.get(&ue)?.tiers[tier].oldest_start()?;
        Some(oldest - self.cfg.resolution(tier, ue))
    }
}

/// Metric `m`'s runs in the sealed segments `sealed` (sorted by start),
/// clipped to point ends in `(from_excl, to_incl]`.
pub(crate) fn sealed_runs<'a>(
    sealed: &'a [Arc<Segment>],
    m: MetricId,
    from_excl: i64,
    to_incl: i64,
    f: &mut impl FnMut(Run<'a>),
) {
    for seg in sealed_in(sealed, from_excl, to_incl) {
        if let Some(run) = seg.run(m).and_then(|r| r.clip(from_excl, to_incl)) {
            f(run);
        }
    }
}

/// The segments of `sealed` (oldest first) holding points that end in
/// `(from_excl, to_incl]`.
pub(crate) fn sealed_in(sealed: &[Arc<Segment>], from_excl: i64, to_incl: i64) -> impl Iterator<Item = &Arc<Segment>> {
    // Skip the segments ending before the range.
    let first = sealed.partition_point(|s| s.end() - s.res <= from_excl);
    sealed[first..].iter().take_while(move |s| s.start <= to_incl)
}

/// Indexes of the first and last real points of a run.
fn valid_range(run: &Run<'_>) -> Option<(usize, usize)> {
    let first = (0..run.len).find(|&i| run.is_valid(i))?;
    let last = (0..run.len).rev().find(|&i| run.is_valid(i))?;
    Some((first, last))
}

#[cfg(test)]
mod tests;
