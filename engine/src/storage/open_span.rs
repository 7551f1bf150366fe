//! The open head: one span of one tier still being written, as plain
//! columnar buffers laid out row-major (row = metric) so sealing hands the
//! buffers to Arrow without copying.

use std::collections::HashMap;

use super::bits::{get_bit, set_bit, BitSlice};
use super::row::{AggPoint, RowData, Run};
use crate::model::MetricId;

#[derive(Debug, Clone)]
pub(crate) enum SpanBuffers {
    Raw { values: Vec<f64>, valid: Vec<u8>, anomaly: Vec<u8> },
    Agg { sum: Vec<f64>, min: Vec<f64>, max: Vec<f64>, count: Vec<u32>, anomaly_count: Vec<u32> },
}

#[derive(Debug, Clone)]
pub struct OpenSpan {
    pub start: i64,
    pub res: i64,
    pub points: usize,
    pub(crate) ids: Vec<MetricId>,
    rows: HashMap<MetricId, u32>,
    pub(crate) buf: SpanBuffers,
}

/// What a raw write replaced, so rollups can be corrected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Replaced {
    Nothing,
    Value(f64),
}

impl OpenSpan {
    pub fn new(start: i64, res: i64, points: usize, raw: bool) -> Self {
        let buf = if raw {
            SpanBuffers::Raw { values: Vec::new(), valid: Vec::new(), anomaly: Vec::new() }
        } else {
            SpanBuffers::Agg {
                sum: Vec::new(),
                min: Vec::new(),
                max: Vec::new(),
                count: Vec::new(),
                anomaly_count: Vec::new(),
            }
        };
        OpenSpan { start, res, points, ids: Vec::new(), rows: HashMap::new(), buf }
    }

    pub fn span_secs(&self) -> i64 {
        self.res * self.points as i64
    }

    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// The row of `m`, added (empty) if new. Stable while the span is open.
    pub(crate) fn row_or_insert(&mut self, m: MetricId) -> usize {
        if let Some(&r) = self.rows.get(&m) {
            return r as usize;
        }
        let r = self.ids.len();
        let n = self.points;
        self.ids.push(m);
        self.rows.insert(m, r as u32);
        match &mut self.buf {
            SpanBuffers::Raw { values, valid, anomaly } => {
                values.resize(values.len() + n, 0.0);
                valid.resize(valid.len() + n / 8, 0);
                anomaly.resize(anomaly.len() + n / 8, 0);
            }
            SpanBuffers::Agg { sum, min, max, count, anomaly_count } => {
                sum.resize(sum.len() + n, 0.0);
                min.resize(min.len() + n, 0.0);
                max.resize(max.len() + n, 0.0);
                count.resize(count.len() + n, 0);
                anomaly_count.resize(anomaly_count.len() + n, 0);
            }
        }
        r
    }

    fn index_of(&self, end: i64) -> usize {
        ((end - self.start) / self.res) as usize
    }

    /// Writes a raw sample (tier 0) ending at `end`; `None` is an explicit gap.
    pub fn write_raw(&mut self, m: MetricId, end: i64, value: Option<f64>, anomalous: bool) -> Replaced {
        let r = self.row_or_insert(m);
        self.write_raw_at(r, end, value, anomalous)
    }

    /// [`OpenSpan::write_raw`] into a row from [`OpenSpan::row_or_insert`].
    pub(crate) fn write_raw_at(&mut self, r: usize, end: i64, value: Option<f64>, anomalous: bool) -> Replaced {
        let i = r * self.points + self.index_of(end);
        let SpanBuffers::Raw { values, valid, anomaly } = &mut self.buf else {
            return Replaced::Nothing;
        };
        let replaced = if get_bit(valid, i) { Replaced::Value(values[i]) } else { Replaced::Nothing };
        match value {
            Some(v) => {
                values[i] = v;
                set_bit(valid, i, true);
                set_bit(anomaly, i, anomalous);
            }
            None => {
                values[i] = 0.0;
                set_bit(valid, i, false);
                set_bit(anomaly, i, false);
            }
        }
        replaced
    }

    /// Folds one raw sample into the aggregate point ending at `end`.
    pub fn merge_agg(&mut self, m: MetricId, end: i64, v: f64, anomalous: bool) {
        let r = self.row_or_insert(m);
        self.merge_agg_at(r, end, v, anomalous);
    }

    /// [`OpenSpan::merge_agg`] into a row from [`OpenSpan::row_or_insert`].
    pub(crate) fn merge_agg_at(&mut self, r: usize, end: i64, v: f64, anomalous: bool) {
        let i = r * self.points + self.index_of(end);
        let SpanBuffers::Agg { sum, min, max, count, anomaly_count } = &mut self.buf else {
            return;
        };
        if count[i] == 0 {
            sum[i] = v;
            min[i] = v;
            max[i] = v;
        } else {
            sum[i] += v;
            min[i] = min[i].min(v);
            max[i] = max[i].max(v);
        }
        count[i] += 1;
        anomaly_count[i] += u32::from(anomalous);
    }

    /// Replaces the aggregate point ending at `end` (backfill, or a rollup
    /// recomputed after a raw slot was overwritten).
    pub fn set_agg(&mut self, m: MetricId, end: i64, p: Option<AggPoint>) {
        let r = self.row_or_insert(m);
        let i = r * self.points + self.index_of(end);
        let SpanBuffers::Agg { sum, min, max, count, anomaly_count } = &mut self.buf else {
            return;
        };
        let p = p.unwrap_or(AggPoint { sum: 0.0, min: 0.0, max: 0.0, count: 0, anomaly_count: 0 });
        sum[i] = p.sum;
        min[i] = p.min;
        max[i] = p.max;
        count[i] = p.count;
        anomaly_count[i] = p.anomaly_count;
    }

    /// The whole span row of metric `m`, if it has one.
    pub fn run(&self, m: MetricId) -> Option<Run<'_>> {
        let r = *self.rows.get(&m)? as usize;
        let (a, b) = (r * self.points, (r + 1) * self.points);
        let data = match &self.buf {
            SpanBuffers::Raw { values, valid, anomaly } => RowData::Raw {
                values: &values[a..b],
                valid: Some(BitSlice::new(valid, a)),
                anomaly: Some(BitSlice::new(anomaly, a)),
            },
            SpanBuffers::Agg { sum, min, max, count, anomaly_count } => RowData::Agg {
                sum: &sum[a..b],
                min: &min[a..b],
                max: &max[a..b],
                count: &count[a..b],
                anomaly_count: &anomaly_count[a..b],
            },
        };
        Some(Run { first_end: self.start, res: self.res, len: self.points, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_writes_report_replacements() {
        let mut s = OpenSpan::new(3600, 1, 3600, true);
        assert_eq!(s.write_raw(7, 3600, Some(1.5), false), Replaced::Nothing);
        assert_eq!(s.write_raw(7, 3600, Some(2.5), true), Replaced::Value(1.5));
        s.write_raw(7, 3602, None, false);
        let run = s.run(7).expect("row");
        assert!(run.is_valid(0) && !run.is_valid(1) && !run.is_valid(2));
        assert_eq!(run.counts(0), (1, 1));
        assert_eq!(run.agg(0).sum, 2.5);
        assert!(s.run(8).is_none());
    }

    #[test]
    fn agg_merges_in_constant_time() {
        let mut s = OpenSpan::new(0, 60, 1440, false);
        for (v, a) in [(3.0, false), (-1.0, true), (4.0, false)] {
            s.merge_agg(1, 60, v, a);
        }
        let p = s.run(1).expect("row").agg(1);
        assert_eq!(p, AggPoint { sum: 6.0, min: -1.0, max: 4.0, count: 3, anomaly_count: 1 });
        assert!(!s.run(1).expect("row").is_valid(0));
    }
}
