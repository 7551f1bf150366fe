//! The per-metric bucket loop (spec 1.7): db points ending inside a bucket
//! are added to the time-group kernel; the point that reaches past the
//! bucket end is interpolated at the end when it is wider than a second.
//! Raw tier-0 slices go to the kernel whole, without copying.

use crate::model::MetricId;
use crate::query::kernels::Kernel;
use crate::query::time_group::Field;
use crate::query::window::Window;
use crate::storage::{RowData, Run, Store, TIERS};

/// Point annotation bits (`pa`).
pub const PA_EMPTY: u8 = 1;
pub const PA_RESET: u8 = 2;
pub const PA_PARTIAL: u8 = 4;

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

/// Statistics over the raw samples behind the db points read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointStats {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
    pub anomalous: u64,
}

impl Default for PointStats {
    fn default() -> Self {
        PointStats { min: f64::INFINITY, max: f64::NEG_INFINITY, sum: 0.0, count: 0, anomalous: 0 }
    }
}

impl PointStats {
    pub fn merge(&mut self, o: &PointStats) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.count += o.count;
        self.anomalous += o.anomalous;
    }

    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    pub fn anomaly_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.anomalous as f64 * 100.0 / self.count as f64
        }
    }
}

/// Which tier served which metrics and how many db points.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TierUse {
    pub queries: [u64; TIERS],
    pub points: [u64; TIERS],
}

impl TierUse {
    pub fn merge(&mut self, o: &TierUse) {
        for t in 0..TIERS {
            self.queries[t] += o.queries[t];
            self.points[t] += o.points[t];
        }
    }
}

/// A part of a metric's plan: read `tier` for point ends in `(from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub tier: usize,
    pub from: i64,
    pub to: i64,
}

/// Reusable per-thread state.
pub struct Executor<'s> {
    pub store: &'s Store,
    pub window: Window,
    pub field: Field,
    pub absolute: bool,
    pub kernel: Box<dyn Kernel>,
    runs: Vec<(usize, Run<'s>)>,
    scratch: Vec<f64>,
}

#[inline]
fn field_value(run: &Run<'_>, i: usize, field: Field) -> f64 {
    match run.data {
        RowData::Raw { values, anomaly, .. } => match field {
            Field::AnomalyRate => 100.0 * f64::from(u8::from(anomaly.is_some_and(|a| a.get(i)))),
            _ => values[i],
        },
        RowData::Agg { sum, min, max, count, anomaly_count, .. } => match field {
            Field::AnomalyRate => 100.0 * f64::from(anomaly_count[i]) / f64::from(count[i]),
            Field::Average => sum[i] / f64::from(count[i]),
            Field::Min => min[i],
            Field::Max => max[i],
            Field::Sum => sum[i],
        },
    }
}

impl<'s> Executor<'s> {
    pub fn new(store: &'s Store, window: Window, field: Field, absolute: bool, kernel: Box<dyn Kernel>) -> Self {
        Executor { store, window, field, absolute, kernel, runs: Vec::new(), scratch: Vec::new() }
    }

    /// Time-groups metric `m` into `out`, adding to `stats` and `tiers`.
    pub fn run_metric(
        &mut self,
        m: MetricId,
        ue: i64,
        parts: &[Part],
        out: &mut Buckets,
        stats: &mut PointStats,
        tiers: &mut TierUse,
    ) {
        let w = self.window;
        out.reset(w.points);
        self.runs.clear();
        let store = self.store;
        for p in parts {
            let before = self.runs.len();
            store.for_each_run(m, ue, p.tier, p.from, p.to, |r| self.runs.push((p.tier, r)));
            if self.runs.len() > before {
                tiers.queries[p.tier] += 1;
            }
        }
        self.kernel.reset();
        let (field, absolute) = (self.field, self.absolute);
        let mut cursor = 0;
        for i in 0..w.points {
            let t = w.bucket_end(i);
            let s = t - w.view_every;
            while cursor < self.runs.len() && self.runs[cursor].1.last_end() <= s {
                cursor += 1;
            }
            let (mut count, mut anomalous) = (0u64, 0u64);
            let mut j = cursor;
            while j < self.runs.len() && self.runs[j].1.first_end <= t {
                let (tier, run) = self.runs[j];
                if let Some(c) = run.clip(s, t) {
                    let (points, n, a) = self.add_run(&c, field, absolute, stats);
                    tiers.points[tier] += points;
                    count += n;
                    anomalous += a;
                }
                j += 1;
            }
            if let Some(v) = self.closing_value(cursor, t, field) {
                self.kernel.add(if absolute { v.abs() } else { v });
            }
            match self.kernel.flush() {
                Some(v) if v.is_finite() => {
                    out.values[i] = v;
                    out.flags[i] = 0;
                }
                _ => {}
            }
            if count > 0 {
                out.arp[i] = anomalous as f64 * 100.0 / count as f64;
            }
        }
    }

    /// Adds a clipped run to the kernel; returns (db points, raw samples behind
    /// them, anomalous samples).
    fn add_run(&mut self, c: &Run<'_>, field: Field, absolute: bool, stats: &mut PointStats) -> (u64, u64, u64) {
        match c.data {
            RowData::Raw { values, valid, anomaly } => {
                if field == Field::AnomalyRate {
                    self.scratch.clear();
                    self.scratch.extend((0..values.len()).map(|k| field_value(c, k, field)));
                    self.kernel.add_slice(&self.scratch, valid);
                } else if absolute {
                    self.scratch.clear();
                    self.scratch.extend(values.iter().map(|v| v.abs()));
                    self.kernel.add_slice(&self.scratch, valid);
                } else {
                    self.kernel.add_slice(values, valid);
                }
                let mut st = PointStats::default();
                let mut n = 0u64;
                let mut an = 0u64;
                for (k, &v) in values.iter().enumerate() {
                    if valid.is_none_or(|b| b.get(k)) {
                        st.min = st.min.min(v);
                        st.max = st.max.max(v);
                        st.sum += v;
                        n += 1;
                        an += u64::from(anomaly.is_some_and(|a| a.get(k)));
                    }
                }
                st.count = n;
                st.anomalous = an;
                stats.merge(&st);
                (n, n, an)
            }
            RowData::Agg { .. } => {
                let (mut points, mut n, mut an) = (0u64, 0u64, 0u64);
                for k in 0..c.len {
                    if !c.is_valid(k) {
                        continue;
                    }
                    let v = field_value(c, k, field);
                    self.kernel.add(if absolute { v.abs() } else { v });
                    let p = c.agg(k);
                    stats.merge(&PointStats {
                        min: p.min,
                        max: p.max,
                        sum: p.sum,
                        count: u64::from(p.count),
                        anomalous: u64::from(p.anomaly_count),
                    });
                    points += 1;
                    n += u64::from(p.count);
                    an += u64::from(p.anomaly_count);
                }
                (points, n, an)
            }
        }
    }

    /// The value at bucket end `t` of a db point that starts before `t` and
    /// ends after it (only wider-than-1s points can), linearly interpolated
    /// from the adjacent previous point when both are numbers.
    fn closing_value(&self, cursor: usize, t: i64, field: Field) -> Option<f64> {
        let runs = &self.runs;
        let j = (cursor..runs.len()).find(|&j| runs[j].1.last_end() > t)?;
        let run = &runs[j].1;
        let k = if run.first_end > t { 0 } else { ((t - run.first_end) / run.res + 1) as usize };
        let end = run.end_of(k);
        if run.res <= 1 || end - run.res >= t || !run.is_valid(k) {
            return None;
        }
        let this = field_value(run, k, field);
        let prev = if k > 0 {
            run.is_valid(k - 1).then(|| field_value(run, k - 1, field))
        } else {
            j.checked_sub(1).and_then(|pj| {
                let pr = &runs[pj].1;
                let pk = pr.len - 1;
                (pr.end_of(pk) == end - run.res && pr.is_valid(pk)).then(|| field_value(pr, pk, field))
            })
        };
        Some(match prev {
            Some(p) => p + (this - p) * (1.0 - (end - t) as f64 / run.res as f64),
            None => this,
        })
    }
}

#[cfg(test)]
mod tests;
