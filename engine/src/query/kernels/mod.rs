//! Time-group kernels: one small module per method behind [`Kernel`].
//! A kernel sees only finite values (gaps are filtered before it), keeps no
//! allocation per point, and is reset per metric; `flush` ends a bucket.

mod average;
mod countif;
mod extremes;
mod incremental_sum;
mod max;
mod median;
mod min;
mod narrow_select;
mod ordered;
mod percentile;
mod smoothing;
mod stddev;
mod sum;
mod trimmed_mean;

use crate::error::Result;
use crate::query::time_group::{Method, TimeGroup};
use crate::storage::bits::BitSlice;
use crate::storage::AggPoint;
use ordered::percent_option;

pub use average::Average;
pub use max::Max;
pub use median::Median;
pub use min::Min;
pub use sum::Sum;

/// Facts about the planned window some kernels need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelParams {
    /// Output points of the query.
    pub points: usize,
    /// db steps per bucket (N).
    pub group: i64,
    /// V / R when resampling (`time_resampling` / `gtime`), else `None`.
    pub resampling_divisor: Option<f64>,
}

pub trait Kernel: Send {
    /// Forget everything: a new metric starts.
    fn reset(&mut self);
    /// One finite value in this bucket.
    fn add(&mut self, v: f64);
    /// Many values; `valid == None` means all are real samples.
    fn add_slice(&mut self, values: &[f64], valid: Option<BitSlice<'_>>) {
        match valid {
            None => values.iter().for_each(|&v| self.add(v)),
            Some(bits) => {
                for (i, &v) in values.iter().enumerate() {
                    if bits.get(i) {
                        self.add(v);
                    }
                }
            }
        }
    }
    /// Takes `p` as the aggregate of `p.count` values, with the same
    /// effect as adding those values one by one; returns false, changing
    /// nothing, when the method cannot tell from an aggregate (the caller
    /// then adds the values). Only methods that
    /// [`Method::merges_rollups`] ever return true.
    fn add_agg(&mut self, _p: &AggPoint) -> bool {
        false
    }
    /// Ends the bucket: its value, or `None` when it saw nothing (EMPTY).
    fn flush(&mut self) -> Option<f64>;
    /// Whether [`Kernel::decimal_sink`] can take integers at all (asked
    /// before a slice's exponent is looked up, which costs a frame walk).
    fn takes_decimals(&self) -> bool {
        false
    }
    /// Where a kernel that can order values by their decimal integers
    /// takes values `k / 10^exp` as their `k`s (only valid values, with the
    /// same effect as adding the decoded values); `None` when it cannot
    /// (the caller then adds the decoded values).
    fn decimal_sink(&mut self, _exp: u32) -> Option<&mut Vec<i64>> {
        None
    }
}

/// Appends the valid `values` to a kernel's buffer in one pass (the
/// kernels that keep a bucket's values: one copy, not a call per value).
pub(crate) fn extend_valid(buf: &mut Vec<f64>, values: &[f64], valid: Option<BitSlice<'_>>) {
    match valid {
        None => buf.extend_from_slice(values),
        Some(bits) => buf.extend(values.iter().enumerate().filter(|&(i, _)| bits.get(i)).map(|(_, &v)| v)),
    }
}

/// Builds the kernel for a time group.
pub fn build(tg: &TimeGroup, p: &KernelParams) -> Result<Box<dyn Kernel>> {
    let opt = tg.options.as_deref();
    Ok(match tg.method {
        Method::Average => Box::new(Average::new(p.resampling_divisor)),
        Method::Min => Box::new(Min::default()),
        Method::Max => Box::new(Max::default()),
        Method::Sum => Box::new(Sum::default()),
        Method::IncrementalSum => Box::new(incremental_sum::IncrementalSum::default()),
        Method::Median => Box::new(median::Median::new(percent_option(opt, tg.default_param, 0.0, 50.0))),
        Method::Percentile => Box::new(percentile::Percentile::new(percent_option(opt, tg.default_param, 0.0, 100.0))),
        Method::TrimmedMean => {
            Box::new(trimmed_mean::TrimmedMean::new(percent_option(opt, tg.default_param, 0.0, 50.0)))
        }
        Method::Stddev => Box::new(stddev::Stddev::new(false)),
        Method::Cv => Box::new(stddev::Stddev::new(true)),
        Method::Ses => Box::new(smoothing::Ses::new(smoothing::alpha(p.points, p.group))),
        Method::Des => Box::new(smoothing::Des::new(smoothing::alpha(p.points, p.group))),
        Method::CountIf => {
            let (cmp, target) = countif::parse_condition(opt)?;
            Box::new(countif::CountIf::new(cmp, target))
        }
        Method::Extremes => Box::new(extremes::Extremes::default()),
        Method::Latest => Box::new(extremes::Latest::default()),
    })
}

/// Sum and count of the valid values, the shared inner loop of several kernels.
#[inline]
pub(crate) fn sum_count(values: &[f64], valid: Option<BitSlice<'_>>) -> (f64, u64) {
    match valid {
        None => (values.iter().sum(), values.len() as u64),
        Some(bits) => {
            let (mut s, mut c) = (0.0, 0u64);
            for (i, &v) in values.iter().enumerate() {
                let ok = bits.get(i);
                s += if ok { v } else { 0.0 };
                c += u64::from(ok);
            }
            (s, c)
        }
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
pub(crate) mod test_util {
    use super::Kernel;

    /// Runs `buckets` through a kernel, one flush per bucket.
    pub fn run(k: &mut dyn Kernel, buckets: &[&[f64]]) -> Vec<Option<f64>> {
        k.reset();
        buckets
            .iter()
            .map(|b| {
                for &v in *b {
                    k.add(v);
                }
                k.flush()
            })
            .collect()
    }
}
