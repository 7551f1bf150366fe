//! Time-group kernels: one small module per method behind [`Kernel`].
//! A kernel sees only finite values (gaps are filtered before it), keeps no
//! allocation per point, and is reset per metric; `flush` ends a bucket.

mod average;
mod max;
mod min;
mod sum;

use crate::error::{EngineError, Result};
use crate::query::time_group::{Method, TimeGroup};
use crate::storage::bits::BitSlice;

pub use average::Average;
pub use max::Max;
pub use min::Min;
pub use sum::Sum;

/// Facts about the planned window some kernels need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelParams {
    /// Output points of the query.
    pub points: usize,
    /// db steps per bucket (N).
    pub group: i64,
    /// V / R when resampling, else 1.
    pub resampling_divisor: f64,
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
    /// Ends the bucket: its value, or `None` when it saw nothing (EMPTY).
    fn flush(&mut self) -> Option<f64>;
}

/// Builds the kernel for a time group.
pub fn build(tg: &TimeGroup, p: &KernelParams) -> Result<Box<dyn Kernel>> {
    Ok(match tg.method {
        Method::Average => Box::new(Average::new(p.resampling_divisor)),
        Method::Min => Box::new(Min::default()),
        Method::Max => Box::new(Max::default()),
        Method::Sum => Box::new(Sum::default()),
        _ => {
            return Err(EngineError::param(
                "time_group",
                format!("time_group '{}' is not implemented yet (available: average, min, max, sum)", tg.name),
            ))
        }
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
