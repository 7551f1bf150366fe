//! Per-group, per-point accumulators of the cross-metric aggregation
//! (spec 5.3): each contributor's time-grouped buckets fold into its
//! group; only the final pass divides averages (Netdata).

use crate::query::request::Aggregation;
use crate::query::result::{PA_EMPTY, PA_PARTIAL, PA_RESET};
use crate::query::scan::Buckets;

/// Per-group, per-point accumulators.
#[derive(Debug, Clone)]
pub struct Accumulator {
    pub points: usize,
    pub groups: usize,
    pub agg: Aggregation,
    /// groups x points, row-major.
    pub value: Vec<f64>,
    pub count: Vec<u32>,
    pub arp_sum: Vec<f64>,
    pub flags: Vec<u8>,
}

/// Folds `v` into `acc` (`first`: `acc` holds nothing yet); averages and
/// percentages sum here and divide by the count later.
#[inline]
pub fn combine(agg: Aggregation, acc: &mut f64, first: bool, v: f64) {
    if first {
        *acc = v;
        return;
    }
    match agg {
        Aggregation::Sum | Aggregation::Average | Aggregation::Percentage => *acc += v,
        Aggregation::Min => *acc = acc.min(v),
        Aggregation::Max => *acc = acc.max(v),
        Aggregation::Extremes => {
            if v.abs() > acc.abs() {
                *acc = v
            }
        }
    }
}

impl Accumulator {
    pub fn new(groups: usize, points: usize, agg: Aggregation) -> Self {
        let n = groups * points;
        Accumulator {
            points,
            groups,
            agg,
            value: vec![0.0; n],
            count: vec![0; n],
            arp_sum: vec![0.0; n],
            flags: vec![0; n],
        }
    }

    /// Folds one contributor's buckets into group `g`.
    pub fn add(&mut self, g: usize, b: &Buckets) {
        let base = g * self.points;
        for i in 0..self.points {
            if b.flags[i] & PA_EMPTY != 0 {
                continue;
            }
            let k = base + i;
            combine(self.agg, &mut self.value[k], self.count[k] == 0, b.values[i]);
            self.count[k] += 1;
            self.arp_sum[k] += b.arp[i];
            self.flags[k] |= b.flags[i] & (PA_RESET | PA_PARTIAL);
        }
    }

    /// Merges another thread's accumulator over the same groups.
    pub fn merge(&mut self, o: &Accumulator) {
        for k in 0..self.value.len() {
            if o.count[k] == 0 {
                continue;
            }
            combine(self.agg, &mut self.value[k], self.count[k] == 0, o.value[k]);
            self.count[k] += o.count[k];
            self.arp_sum[k] += o.arp_sum[k];
            self.flags[k] |= o.flags[k];
        }
    }

    /// Group `g` as contributor buckets (undivided values) for the next pass,
    /// stamping PARTIAL where fewer than `members` contributed.
    pub fn group_buckets(&self, g: usize, members: u32, out: &mut Buckets) {
        let base = g * self.points;
        out.values.clear();
        out.flags.clear();
        out.arp.clear();
        for i in 0..self.points {
            let k = base + i;
            let c = self.count[k];
            out.values.push(self.value[k]);
            out.arp.push(if c > 0 { self.arp_sum[k] / f64::from(c) } else { 0.0 });
            out.flags.push(if c == 0 {
                PA_EMPTY
            } else if c != members {
                self.flags[k] | PA_PARTIAL
            } else {
                self.flags[k]
            });
        }
    }

    /// Contributors per point of group `g`.
    pub fn counts(&self, g: usize) -> &[u32] {
        &self.count[g * self.points..(g + 1) * self.points]
    }

    /// The accumulated value of group `g` at point `i`, if anything contributed.
    pub fn value_at(&self, g: usize, i: usize) -> Option<f64> {
        let k = g * self.points + i;
        (self.count[k] > 0).then(|| self.value[k])
    }

    /// Final values of a `percentage` group: 100 x selected / (selected +
    /// hidden). No selected value -> 0; no hidden value -> 100; a zero sum -> 0.
    pub fn finish_percentage(&self, g: usize, members: u32, hidden: &Accumulator, out: &mut Buckets) {
        self.group_buckets(g, members, out);
        for i in 0..self.points {
            let num = self.value_at(g, i);
            let hid = hidden.value_at(g, i);
            out.values[i] = match (num, hid) {
                (None, None) => 0.0,
                (None, Some(_)) => {
                    out.flags[i] &= !PA_EMPTY;
                    0.0
                }
                (Some(_), None) => 100.0,
                (Some(n), Some(h)) if n + h == 0.0 => 0.0,
                (Some(n), Some(h)) => 100.0 * n / (n + h),
            };
        }
    }

    /// Final values of group `g`: divides averages, flags empties.
    pub fn finish(&self, g: usize, members: u32, divide: bool, out: &mut Buckets) {
        self.group_buckets(g, members, out);
        if divide && self.agg == Aggregation::Average {
            for i in 0..self.points {
                let c = self.count[g * self.points + i];
                if c > 0 {
                    out.values[i] /= f64::from(c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(vals: &[Option<f64>]) -> Buckets {
        Buckets {
            values: vals.iter().map(|v| v.unwrap_or(0.0)).collect(),
            flags: vals.iter().map(|v| if v.is_some() { 0 } else { PA_EMPTY }).collect(),
            arp: vec![0.0; vals.len()],
        }
    }

    #[test]
    fn average_divides_by_non_empty_contributors_and_flags_partial() {
        let mut acc = Accumulator::new(1, 3, Aggregation::Average);
        acc.add(0, &buckets(&[Some(1.0), Some(2.0), None]));
        acc.add(0, &buckets(&[Some(3.0), None, None]));
        let mut out = Buckets::default();
        acc.finish(0, 2, true, &mut out);
        assert_eq!(out.values[..2], [2.0, 2.0]);
        assert_eq!(out.flags, vec![0, PA_PARTIAL, PA_EMPTY]);
    }

    #[test]
    fn min_max_are_signed_and_merge_matches_sequential() {
        let a = buckets(&[Some(-3.0), Some(1.0)]);
        let b = buckets(&[Some(2.0), Some(-7.0)]);
        for (agg, want) in [
            (Aggregation::Min, [-3.0, -7.0]),
            (Aggregation::Max, [2.0, 1.0]),
            (Aggregation::Extremes, [-3.0, -7.0]),
            (Aggregation::Sum, [-1.0, -6.0]),
        ] {
            let mut seq = Accumulator::new(1, 2, agg);
            seq.add(0, &a);
            seq.add(0, &b);
            let mut p1 = Accumulator::new(1, 2, agg);
            p1.add(0, &a);
            let mut p2 = Accumulator::new(1, 2, agg);
            p2.add(0, &b);
            p1.merge(&p2);
            assert_eq!(seq.value, p1.value);
            assert_eq!(seq.value, want.to_vec(), "{agg:?}");
        }
    }
}
