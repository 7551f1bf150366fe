//! One metric's points inside one span, as the query path reads them. Open
//! (head) spans and sealed Arrow segments both hand out this view, borrowed
//! from their buffers without copying.

use super::bits::BitSlice;
use super::codec::EncodedRow;

/// A tier-k aggregate point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AggPoint {
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub count: u32,
    pub anomaly_count: u32,
}

// Runs are short-lived values on the stack, made once per metric and
// segment: copying the five parsed rows of a rollup is cheaper than a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
pub enum RowData<'a> {
    /// Tier 0: one value per slot; `valid == None` means every slot holds a value.
    Raw { values: &'a [f64], valid: Option<BitSlice<'a>>, anomaly: Option<BitSlice<'a>> },
    /// Tier 0, sealed: codec-encoded values, validity and anomaly bits.
    Encoded(EncodedRow<'a>),
    /// Tiers 1-2, sealed: one codec row per field.
    AggEncoded(AggRows<'a>),
    /// Tiers 1-2: aggregates; a point with `count == 0` is a gap.
    Agg { sum: &'a [f64], min: &'a [f64], max: &'a [f64], count: &'a [u32], anomaly_count: &'a [u32] },
}

/// A sealed rollup row: each field as a codec row (counts as integral
/// `f64`s; sums, minima and maxima valid where the count is not 0).
#[derive(Debug, Clone, Copy)]
pub struct AggRows<'a> {
    pub sum: EncodedRow<'a>,
    pub min: EncodedRow<'a>,
    pub max: EncodedRow<'a>,
    pub count: EncodedRow<'a>,
    pub anomaly_count: EncodedRow<'a>,
}

impl<'a> AggRows<'a> {
    /// Points `from..to`.
    pub fn slice(&self, from: usize, to: usize) -> AggRows<'a> {
        AggRows {
            sum: self.sum.slice(from, to),
            min: self.min.slice(from, to),
            max: self.max.slice(from, to),
            count: self.count.slice(from, to),
            anomaly_count: self.anomaly_count.slice(from, to),
        }
    }

    pub fn len(&self) -> usize {
        self.count.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count.is_empty()
    }

    /// Point `i`.
    pub fn point(&self, i: usize) -> AggPoint {
        AggPoint {
            sum: self.sum.value(i),
            min: self.min.value(i),
            max: self.max.value(i),
            count: self.count.value(i) as u32,
            anomaly_count: self.anomaly_count.value(i) as u32,
        }
    }

    /// Appends every point's fields to `cols` (gaps hold 0); minima and
    /// maxima only with `min_max`.
    pub fn decode_into(&self, cols: &mut AggColumns, min_max: bool) {
        self.sum.decode_into(&mut cols.sum);
        if min_max {
            self.min.decode_into(&mut cols.min);
            self.max.decode_into(&mut cols.max);
        }
        let mut tmp = Vec::with_capacity(self.count.len());
        for (row, out) in [(&self.count, &mut cols.count), (&self.anomaly_count, &mut cols.anomaly_count)] {
            tmp.clear();
            row.decode_into(&mut tmp);
            out.extend(tmp.iter().map(|&v| v as u32));
        }
    }
}

/// Rollup points as columns (decoded from a sealed row, or an open span's
/// block); a point with `count == 0` is a gap.
#[derive(Debug, Default, Clone)]
pub struct AggColumns {
    pub sum: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub count: Vec<u32>,
    pub anomaly_count: Vec<u32>,
}

impl AggColumns {
    /// Empties the columns, keeping their capacity.
    pub fn clear(&mut self) {
        self.sum.clear();
        self.min.clear();
        self.max.clear();
        self.count.clear();
        self.anomaly_count.clear();
    }
}

/// Consecutive points of one metric: point `i` ends at `first_end + i * res`
/// and covers `(end - res, end]`.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub first_end: i64,
    pub res: i64,
    pub len: usize,
    pub data: RowData<'a>,
}

impl<'a> Run<'a> {
    pub fn end_of(&self, i: usize) -> i64 {
        self.first_end + i as i64 * self.res
    }

    pub fn last_end(&self) -> i64 {
        self.end_of(self.len.saturating_sub(1))
    }

    /// Points `from..to` of this run.
    pub fn slice(&self, from: usize, to: usize) -> Run<'a> {
        let data = match self.data {
            RowData::Raw { values, valid, anomaly } => RowData::Raw {
                values: &values[from..to],
                valid: valid.map(|v| v.advance(from)),
                anomaly: anomaly.map(|a| a.advance(from)),
            },
            RowData::Encoded(row) => RowData::Encoded(row.slice(from, to)),
            RowData::AggEncoded(rows) => RowData::AggEncoded(rows.slice(from, to)),
            RowData::Agg { sum, min, max, count, anomaly_count } => RowData::Agg {
                sum: &sum[from..to],
                min: &min[from..to],
                max: &max[from..to],
                count: &count[from..to],
                anomaly_count: &anomaly_count[from..to],
            },
        };
        Run { first_end: self.end_of(from), res: self.res, len: to - from, data }
    }

    /// Restricts the run to points whose end is in `(from_excl, to_incl]`.
    #[inline]
    pub fn clip(&self, from_excl: i64, to_incl: i64) -> Option<Run<'a>> {
        if to_incl < self.first_end {
            return None;
        }
        // Per-second runs are the hot case: no division there.
        let steps = |d: i64| if self.res == 1 { d } else { d / self.res };
        let lo = if from_excl < self.first_end { 0 } else { (steps(from_excl - self.first_end) + 1) as usize };
        let hi = ((steps(to_incl - self.first_end) + 1) as usize).min(self.len);
        (lo < hi).then(|| self.slice(lo, hi))
    }

    /// Is point `i` a real sample (not a gap)?
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        match self.data {
            RowData::Raw { valid, .. } => valid.is_none_or(|v| v.get(i)),
            RowData::Encoded(row) => row.is_valid(i),
            RowData::AggEncoded(rows) => rows.count.value(i) > 0.0,
            RowData::Agg { count, .. } => count[i] > 0,
        }
    }

    /// Number of raw samples behind point `i` and how many were anomalous.
    #[inline]
    pub fn counts(&self, i: usize) -> (u32, u32) {
        match self.data {
            RowData::Raw { anomaly, .. } => (1, u32::from(anomaly.is_some_and(|a| a.get(i)))),
            RowData::Encoded(row) => (1, u32::from(row.is_anomalous(i))),
            RowData::AggEncoded(rows) => (rows.count.value(i) as u32, rows.anomaly_count.value(i) as u32),
            RowData::Agg { count, anomaly_count, .. } => (count[i], anomaly_count[i]),
        }
    }

    /// Aggregate view of point `i` (tier 0 points are aggregates of one sample).
    #[inline]
    pub fn agg(&self, i: usize) -> AggPoint {
        match self.data {
            RowData::Raw { values, anomaly, .. } => {
                let v = values[i];
                AggPoint {
                    sum: v,
                    min: v,
                    max: v,
                    count: 1,
                    anomaly_count: u32::from(anomaly.is_some_and(|a| a.get(i))),
                }
            }
            RowData::Encoded(row) => {
                let v = row.value(i);
                AggPoint { sum: v, min: v, max: v, count: 1, anomaly_count: u32::from(row.is_anomalous(i)) }
            }
            RowData::AggEncoded(rows) => rows.point(i),
            RowData::Agg { sum, min, max, count, anomaly_count } => {
                AggPoint { sum: sum[i], min: min[i], max: max[i], count: count[i], anomaly_count: anomaly_count[i] }
            }
        }
    }
}
