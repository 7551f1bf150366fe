//! The memory-bandwidth yardstick: one thread summing a 512 MiB f64 array
//! (far beyond any cache), best of a few passes. A scan of raw f64 samples
//! cannot beat this on one core, so strata's scan rate is reported as a
//! fraction of it.

use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Bandwidth {
    pub bytes_per_sec: f64,
}

impl Bandwidth {
    pub fn samples_per_sec(&self) -> f64 {
        self.bytes_per_sec / 8.0
    }
}

/// Eight independent accumulators, so the loop is load-bound, not bound by
/// the latency of one dependent add chain.
fn sum(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f64>() + rest
}

pub fn measure(mib: usize, passes: usize) -> Bandwidth {
    let n = mib * 1024 * 1024 / 8;
    // Touch every page first so the timing sees no page faults.
    let v: Vec<f64> = (0..n).map(|i| (i % 1000) as f64 * 0.01).collect();
    let mut best = f64::MAX;
    let mut check = 0.0;
    for _ in 0..passes.max(1) {
        let t = Instant::now();
        check += std::hint::black_box(sum(std::hint::black_box(&v)));
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(check);
    Bandwidth { bytes_per_sec: (n * 8) as f64 / best.max(1e-9) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_and_measures() {
        let v: Vec<f64> = (0..1003).map(f64::from).collect();
        assert_eq!(super::sum(&v), 1002.0 * 1003.0 / 2.0);
        assert!(super::measure(8, 2).bytes_per_sec > 1e6, "even a debug build streams 1 MB/s");
    }
}
