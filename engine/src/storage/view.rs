//! A query's consistent, lock-free view of the store.
//!
//! Built under the store's read lock in two short steps: [`StoreView::of`]
//! copies what planning needs for the query's metrics (update_every,
//! per-tier extents and sample times, each group's horizons and rollup-only boundary) and
//! takes the sealed segment lists (`Arc` clones); [`StoreView::attach_open`]
//! then snapshots the open spans the scan will read (one `Arc` clone per
//! span, whatever it holds, see `open_span::SpanSnapshot`). Nothing is
//! copied point by point and nothing is taken per metric in that step, so
//! the lock is held for a time proportional to the number of metrics (for
//! the planning facts), not to the data; afterwards the scan reads without
//! any lock while writers go on (a writer copies a span's row list, then a
//! row's block list and the block it writes, only while a view holds
//! them).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::open_span::{Prefetch, SpanSnapshot};
use super::row::Run;
use super::segment::Segment;
use super::store::{sealed_in, sealed_runs, Extent, Store};
use super::tier::{StorageConfig, TIERS};
use crate::id_map::{self, IdMap};
use crate::model::MetricId;

#[derive(Debug, Clone)]
struct GroupView {
    sealed: [Arc<Vec<Arc<Segment>>>; TIERS],
    horizon: [Option<i64>; TIERS],
    rollup_only_until: Option<i64>,
    /// Per tier, the closed-unsealed and open spans the scan reads, oldest first.
    open: [Vec<SpanSnapshot>; TIERS],
}

#[derive(Debug, Clone)]
struct MetricView {
    ue: i64,
    extents: [Option<Extent>; TIERS],
    /// Per tier, the first and last sample times ([`Store::sample_range`]),
    /// taken here because a rollup's may read points of open spans the
    /// view does not attach.
    samples: [Option<(i64, i64)>; TIERS],
}

/// One step of [`StoreView::prefetch_sealed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedStep {
    /// Two metrics ahead: the rows' offsets and index cells.
    Slot,
    /// One metric ahead: the rows' headers.
    Row,
    /// One metric ahead, for a scan of sums: the headers and sums indexes.
    RowAndIndex,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct StoreView {
    cfg: StorageConfig,
    groups: BTreeMap<i64, GroupView>,
    metrics: IdMap<MetricView>,
}

impl StoreView {
    /// The planning facts of `metrics` (those ever written) and the sealed
    /// segments of their groups.
    pub fn of(store: &Store, metrics: impl IntoIterator<Item = MetricId>) -> StoreView {
        let metrics = metrics.into_iter();
        // Sized once, not regrown metric by metric (a 1,000-metric query).
        let sized = id_map::with_capacity(metrics.size_hint().0);
        let mut view = StoreView { cfg: *store.config(), groups: BTreeMap::new(), metrics: sized };
        for m in metrics {
            let Some(ue) = store.update_every(m) else { continue };
            view.groups.entry(ue).or_insert_with(|| GroupView {
                sealed: std::array::from_fn(|t| store.sealed(ue, t)),
                horizon: std::array::from_fn(|t| store.horizon(ue, t)),
                rollup_only_until: store.rollup_only_until(ue),
                open: Default::default(),
            });
            let extents = std::array::from_fn(|t| store.extent(m, t));
            let samples = store.sample_ranges(m, ue, &extents);
            view.metrics.insert(m, MetricView { ue, extents, samples });
        }
        view
    }

    /// Snapshots the open spans of every update_every group in the view
    /// that hold point ends in `range(tier, update_every)`; an empty range
    /// takes none.
    pub fn attach_open(&mut self, store: &Store, range: impl Fn(usize, i64) -> (i64, i64)) {
        for (&ue, g) in self.groups.iter_mut() {
            for (t, open) in g.open.iter_mut().enumerate() {
                let (from, to) = range(t, ue);
                *open = if from < to { store.open_snapshots(ue, t, from, to) } else { Vec::new() };
            }
        }
    }

    pub fn config(&self) -> &StorageConfig {
        &self.cfg
    }

    /// The sealed segments of update_every `ue` in `tier` the view holds, oldest first.
    pub fn sealed(&self, ue: i64, tier: usize) -> Option<&[Arc<Segment>]> {
        self.groups.get(&ue).map(|g| g.sealed[tier].as_slice())
    }

    /// update_every of `m`, if it is in the view and was ever written.
    pub fn update_every(&self, m: MetricId) -> Option<i64> {
        self.metrics.get(&m).map(|v| v.ue)
    }

    /// Resolution of `tier` for metric `m`.
    pub fn resolution(&self, m: MetricId, tier: usize) -> Option<i64> {
        self.update_every(m).map(|ue| self.cfg.resolution(tier, ue))
    }

    /// See [`Store::extent`].
    pub fn extent(&self, m: MetricId, tier: usize) -> Option<Extent> {
        self.metrics.get(&m).and_then(|v| v.extents[tier])
    }

    /// See [`Store::sample_ranges_of`] (taken when the view was made).
    pub fn sample_ranges_of(&self, m: MetricId) -> [Option<(i64, i64)>; TIERS] {
        self.metrics.get(&m).map_or([None; TIERS], |v| v.samples)
    }

    /// See [`Store::horizon`].
    pub fn horizon(&self, ue: i64, tier: usize) -> Option<i64> {
        self.groups.get(&ue).and_then(|g| g.horizon[tier])
    }

    /// See [`Store::rollup_only_until`].
    pub fn rollup_only_until(&self, ue: i64) -> Option<i64> {
        self.groups.get(&ue).and_then(|g| g.rollup_only_until)
    }

    /// A hint: one [`Prefetch`] step for metric `m`'s open-span blocks in
    /// every tier, in the range `range(tier, resolution)` a scan will read.
    pub fn prefetch_open(&self, m: MetricId, ue: i64, range: impl Fn(usize, i64) -> (i64, i64), step: Prefetch) {
        let Some(g) = self.groups.get(&ue) else { return };
        for (t, spans) in g.open.iter().enumerate() {
            let (from_excl, to_incl) = range(t, self.cfg.resolution(t, ue));
            spans.iter().for_each(|span| span.prefetch(m, from_excl, to_incl, step));
        }
    }

    /// A hint: asks for the first memory a scan of metric `m`'s sealed
    /// tier-0 rows in `(from_excl, to_incl]` reads, in two steps that each
    /// read only what the step before asked for: [`Segment::prefetch_slot`]
    /// two metrics ahead, then [`Segment::prefetch_row`] one metric ahead.
    /// A 24 h scan of sums otherwise waits on each hour row's header and
    /// index in turn.
    pub fn prefetch_sealed(&self, m: MetricId, ue: i64, (from_excl, to_incl): (i64, i64), step: SealedStep) {
        let Some(g) = self.groups.get(&ue) else { return };
        for seg in sealed_in(&g.sealed[0], from_excl, to_incl) {
            match step {
                SealedStep::Slot => seg.prefetch_slot(m),
                SealedStep::Row => seg.prefetch_row(m, false),
                SealedStep::RowAndIndex => seg.prefetch_row(m, true),
            }
        }
    }

    /// Metric `m`'s runs in `tier`, clipped to point ends in
    /// `(from_excl, to_incl]`, oldest first; open blocks only as far as
    /// [`StoreView::attach_open`] took them.
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
        sealed_runs(&g.sealed[tier], m, from_excl, to_incl, &mut f);
        for span in &g.open[tier] {
            span.for_each_run(m, from_excl, to_incl, |r| {
                if let Some(run) = r.clip(from_excl, to_incl) {
                    f(run);
                }
            });
        }
    }
}
