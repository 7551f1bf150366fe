//! One metric's scan: the bucket loop over the planned pieces (spec 1.7).
//!
//! A bucket `(s, e]` takes the points whose end lies in it, piece by piece
//! as the plan laid them out. Tier-0 slices are summarised in one pass
//! ([`summarize`]); a time group that merges aggregates takes that
//! summary, the others take the values. A rollup point goes to the time
//! group as the aggregate of its samples; where the group cannot merge it
//! (e.g. `min` over both signs), an exact piece reads the point's tier-0
//! samples instead, and a rollup-only or pinned read takes Netdata's value
//! of the point (its average, min, max or sum) and marks the bucket
//! approximate. The point that reaches past the bucket end is
//! interpolated at the end when it is wider than a second (Netdata's
//! closing value).

use crate::query::kernels::Kernel;
use crate::query::plan::{Job, MetricReads};
use crate::query::result::{PointStats, TierUse, PA_EMPTY};
use crate::query::time_group::Field;
use crate::query::window::Window;
use crate::storage::{AggPoint, RowData, Run, Store, TIERS};

use super::summarize::{absolute, absolute_point, anomaly_rates, summarize};

/// One metric's time-grouped output (a reused scratch buffer).
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    pub values: Vec<f64>,
    pub flags: Vec<u8>,
    /// Anomaly rate 0..100 per bucket.
    pub arp: Vec<f64>,
}

impl Buckets {
    fn reset(&mut self, n: usize) {
        self.values.clear();
        self.values.resize(n, 0.0);
        self.flags.clear();
        self.flags.resize(n, PA_EMPTY);
        self.arp.clear();
        self.arp.resize(n, 0.0);
    }
}

/// Where a metric's scan reports.
pub struct MetricOut<'o> {
    pub buckets: &'o mut Buckets,
    pub stats: &'o mut PointStats,
    pub tiers: &'o mut TierUse,
    /// Per bucket: some of its data is only approximate.
    pub approximate: &'o mut [bool],
    /// Tiers that served approximate data.
    pub approximate_tiers: &'o mut [bool; TIERS],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The exact layout: a point the time group cannot merge is replaced by its tier-0 samples.
    Exact,
    /// `tier: N`: Netdata's value of such a point; approximate where a bucket cuts intervals.
    Pinned,
    /// Rollup-only history: always approximate.
    Aged,
}

#[derive(Debug, Default)]
struct Bucket {
    start: i64,
    end: i64,
    count: u64,
    anomalous: u64,
    last_tier: Option<usize>,
    approximate: bool,
}

/// Reusable per-thread state.
pub struct MetricScan<'s> {
    store: &'s Store,
    window: Window,
    field: Field,
    absolute: bool,
    anomaly_bit: bool,
    kernel: Box<dyn Kernel>,
    runs: [Vec<Run<'s>>; TIERS],
    cursor: [usize; TIERS],
    scratch: Vec<f64>,
}

/// Netdata's value of point `i` for a time group reading `field`.
#[inline]
fn field_value(run: &Run<'_>, i: usize, field: Field) -> f64 {
    match run.data {
        RowData::Raw { values, anomaly, .. } => match field {
            Field::AnomalyRate => 100.0 * f64::from(u8::from(anomaly.is_some_and(|a| a.get(i)))),
            _ => values[i],
        },
        RowData::Agg { sum, min, max, count, anomaly_count } => match field {
            Field::AnomalyRate => 100.0 * f64::from(anomaly_count[i]) / f64::from(count[i]),
            Field::Average => sum[i] / f64::from(count[i]),
            Field::Min => min[i],
            Field::Max => max[i],
            Field::Sum => sum[i],
        },
    }
}

fn stats_of(p: &AggPoint) -> PointStats {
    PointStats { min: p.min, max: p.max, sum: p.sum, count: u64::from(p.count), anomalous: u64::from(p.anomaly_count) }
}

impl<'s> MetricScan<'s> {
    pub fn new(
        store: &'s Store,
        window: Window,
        field: Field,
        absolute: bool,
        anomaly_bit: bool,
        kernel: Box<dyn Kernel>,
    ) -> Self {
        MetricScan {
            store,
            window,
            field,
            absolute,
            anomaly_bit,
            kernel,
            runs: Default::default(),
            cursor: [0; TIERS],
            scratch: Vec::new(),
        }
    }

    /// Time-groups `job`'s metric as `reads` lays out.
    pub fn run(&mut self, job: &Job, reads: &MetricReads<'_>, out: &mut MetricOut<'_>) {
        let w = self.window;
        out.buckets.reset(w.points);
        let mut need = reads.layout.tiers_read();
        for p in &reads.aged {
            need[p.tier] = true;
        }
        // An exact rollup piece falls back to tier 0 for points the time
        // group cannot merge, even where no tier-0 piece was planned.
        need[0] |= !reads.pinned_rollup && need[1..].iter().any(|&n| n);
        let cfg = *self.store.config();
        for (t, runs) in self.runs.iter_mut().enumerate() {
            runs.clear();
            self.cursor[t] = 0;
            if need[t] {
                // One point of margin each side: the previous point of an
                // interpolation, the point closing the last bucket.
                let res = cfg.resolution(t, job.update_every);
                let (lo, hi) = (w.after - w.granularity - 2 * res, w.before + res);
                self.store.for_each_run(job.metric, job.update_every, t, lo, hi, |r| runs.push(r));
            }
        }
        let points_before = out.tiers.points;
        let mode = if reads.pinned_rollup { Mode::Pinned } else { Mode::Exact };
        self.kernel.reset();
        let mut aged_at = 0;
        for i in 0..w.points {
            let e = w.bucket_end(i);
            let s = e - w.view_every;
            let mut b = Bucket { start: s, end: e, ..Default::default() };
            while aged_at < reads.aged.len() && reads.aged[aged_at].to <= s {
                aged_at += 1;
            }
            for p in reads.aged[aged_at..].iter().take_while(|p| p.from < e) {
                self.read(p.tier, p.from.max(s), p.to.min(e), Mode::Aged, &mut b, out);
            }
            for p in reads.layout.bucket(i) {
                self.read(usize::from(p.tier), p.from, p.to, mode, &mut b, out);
            }
            if let Some(t) = b.last_tier {
                if let Some(v) = self.closing_value(t, e) {
                    self.kernel.add(if self.absolute { v.abs() } else { v });
                    if t > 0 {
                        b.approximate = true;
                        out.approximate_tiers[t] = true;
                    }
                }
            }
            if let Some(v) = self.kernel.flush().filter(|v| v.is_finite()) {
                out.buckets.values[i] = v;
                out.buckets.flags[i] = 0;
            }
            if b.count > 0 {
                out.buckets.arp[i] = b.anomalous as f64 * 100.0 / b.count as f64;
            }
            out.approximate[i] |= b.approximate;
        }
        for ((q, &now), before) in out.tiers.queries.iter_mut().zip(&out.tiers.points).zip(points_before) {
            *q += u64::from(now > before);
        }
    }

    /// Feeds the points of `tier` ending in `(from, to]` to the time group.
    fn read(&mut self, tier: usize, from: i64, to: i64, mode: Mode, b: &mut Bucket, out: &mut MetricOut<'_>) {
        b.last_tier = Some(tier);
        if from >= to {
            return;
        }
        let mut j = self.cursor[tier];
        while j < self.runs[tier].len() && self.runs[tier][j].last_end() <= from {
            j += 1;
        }
        self.cursor[tier] = j;
        while let Some(&run) = self.runs[tier].get(j) {
            if run.first_end > to {
                break;
            }
            if let Some(c) = run.clip(from, to) {
                match c.data {
                    RowData::Raw { .. } => self.take_raw(&c, Some((&mut *b, &mut *out))),
                    RowData::Agg { .. } => self.take_points(tier, &c, mode, b, out),
                }
            }
            j += 1;
        }
    }

    /// A tier-0 slice; `count` adds it to the bucket and the statistics
    /// (not when it stands in for a rollup point already counted).
    fn take_raw(&mut self, c: &Run<'_>, count: Option<(&mut Bucket, &mut MetricOut<'_>)>) {
        let RowData::Raw { values, valid, anomaly } = c.data else { return };
        let p = summarize(values, valid, anomaly);
        if p.count == 0 {
            return;
        }
        if let Some((b, out)) = count {
            out.stats.merge(&stats_of(&p));
            out.tiers.points[0] += u64::from(p.count);
            b.count += u64::from(p.count);
            b.anomalous += u64::from(p.anomaly_count);
        }
        let q = if self.anomaly_bit {
            anomaly_rates(&p)
        } else if self.absolute {
            absolute(&p, values, valid)
        } else {
            p
        };
        if self.kernel.add_agg(&q) {
            return;
        }
        if self.anomaly_bit {
            self.scratch.clear();
            self.scratch.extend((0..values.len()).map(|k| field_value(c, k, Field::AnomalyRate)));
            self.kernel.add_slice(&self.scratch, valid);
        } else if self.absolute {
            self.scratch.clear();
            self.scratch.extend(values.iter().map(|v| v.abs()));
            self.kernel.add_slice(&self.scratch, valid);
        } else {
            self.kernel.add_slice(values, valid);
        }
    }

    /// Rollup points, each merged as the aggregate of its samples where the
    /// time group can.
    fn take_points(&mut self, tier: usize, c: &Run<'_>, mode: Mode, b: &mut Bucket, out: &mut MetricOut<'_>) {
        let (mut read, mut approximate) = (false, false);
        for k in 0..c.len {
            if !c.is_valid(k) {
                continue;
            }
            read = true;
            let p = c.agg(k);
            out.stats.merge(&stats_of(&p));
            out.tiers.points[tier] += 1;
            b.count += u64::from(p.count);
            b.anomalous += u64::from(p.anomaly_count);
            let q = if self.anomaly_bit {
                Some(anomaly_rates(&p))
            } else if self.absolute {
                absolute_point(&p)
            } else {
                Some(p)
            };
            if q.is_some_and(|q| self.kernel.add_agg(&q)) {
                continue;
            }
            if mode == Mode::Exact {
                let end = c.end_of(k);
                self.feed_tier0(end - c.res, end);
            } else {
                let v = field_value(c, k, self.field);
                self.kernel.add(if self.absolute { v.abs() } else { v });
                approximate = true;
            }
        }
        let cuts = b.start.rem_euclid(c.res) != 0 || b.end.rem_euclid(c.res) != 0;
        if read && (approximate || mode == Mode::Aged || (mode == Mode::Pinned && cuts)) {
            b.approximate = true;
            out.approximate_tiers[tier] = true;
        }
    }

    /// The tier-0 samples ending in `(from, to]`, to the time group only.
    fn feed_tier0(&mut self, from: i64, to: i64) {
        let at = self.runs[0].partition_point(|r| r.last_end() <= from);
        for j in at..self.runs[0].len() {
            let run = self.runs[0][j];
            if run.first_end > to {
                break;
            }
            if let Some(c) = run.clip(from, to) {
                self.take_raw(&c, None);
            }
        }
    }

    /// The value at bucket end `t` of a `tier` point that starts before `t`
    /// and ends after it (only wider-than-1s points can), linearly
    /// interpolated from the adjacent previous point when both are numbers.
    fn closing_value(&self, tier: usize, t: i64) -> Option<f64> {
        let runs = &self.runs[tier];
        let j = runs.partition_point(|r| r.last_end() <= t);
        let run = runs.get(j)?;
        let k = if run.first_end > t { 0 } else { ((t - run.first_end) / run.res + 1) as usize };
        let end = run.end_of(k);
        if run.res <= 1 || end - run.res >= t || !run.is_valid(k) {
            return None;
        }
        let this = field_value(run, k, self.field);
        let prev = if k > 0 {
            run.is_valid(k - 1).then(|| field_value(run, k - 1, self.field))
        } else {
            j.checked_sub(1).and_then(|pj| {
                let pr = &runs[pj];
                let pk = pr.len - 1;
                (pr.end_of(pk) == end - run.res && pr.is_valid(pk)).then(|| field_value(pr, pk, self.field))
            })
        };
        Some(match prev {
            Some(p) => p + (this - p) * (1.0 - (end - t) as f64 / run.res as f64),
            None => this,
        })
    }
}
