//! Time-group kernel throughput: how many raw samples per second one kernel
//! folds into buckets, the innermost loop of every query. Each bench feeds
//! 1 M deterministic pseudo-random f64 samples through `add_slice` in
//! buckets of 300 (a typical 24 h / 300 points grouping of per-second data),
//! flushing each bucket, with no gaps (`valid: None`). One extra variant runs
//! `average` with a validity bitmap that has ~5% gaps, to price the masked
//! path. Every time-group name `kernels::build` accepts is benchmarked, so
//! kernels added later show up here without editing this file. The median
//! also takes a sealed row's decimal integers (`decimal_sink`): three more
//! variants feed it integers that span about 1,000 steps per bucket (a
//! two-decimal gauge), about 2 x 10^7 (ranked on shifted offsets), and
//! 1,000 steps with one far spike per bucket.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_engine::demo::mix;
use strata_engine::query::kernels::{self, Kernel, KernelParams};
use strata_engine::query::time_group::TimeGroup;
use strata_engine::storage::bits::{set_bit, BitSlice};

/// Samples per bench iteration.
const SAMPLES: usize = 1_000_000;
/// Samples per bucket (one `flush` each).
const BUCKET: usize = 300;

/// Time-group names to try; the ones `kernels::build` rejects are skipped.
const CANDIDATES: &[&str] = &[
    "average",
    "min",
    "max",
    "sum",
    "median",
    "percentile95",
    "trimmed-mean",
    "trimmed-median",
    "stddev",
    "cv",
    "ses",
    "des",
    "incremental-sum",
    "countif",
    "extremes",
    "latest",
];

/// Deterministic values in roughly [-1000, 1000), like a noisy gauge.
fn values() -> Vec<f64> {
    (0..SAMPLES as u64).map(|i| ((mix(i) >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2000.0).collect()
}

/// A validity bitmap (LSB first) with about one gap in 20 samples.
fn gaps_bitmap() -> Vec<u8> {
    let mut bytes = vec![0u8; SAMPLES.div_ceil(8)];
    for i in 0..SAMPLES {
        set_bit(&mut bytes, i, !mix(i as u64 ^ 0xDEAD_BEEF).is_multiple_of(20));
    }
    bytes
}

fn params() -> KernelParams {
    KernelParams { points: SAMPLES.div_ceil(BUCKET), group: BUCKET as i64, resampling_divisor: None }
}

/// One pass: all samples, bucket by bucket; returns a checksum of the output.
fn run(k: &mut dyn Kernel, values: &[f64], valid: Option<BitSlice<'_>>) -> f64 {
    k.reset();
    let mut acc = 0.0;
    for (b, chunk) in values.chunks(BUCKET).enumerate() {
        k.add_slice(black_box(chunk), valid.map(|v| v.advance(b * BUCKET)));
        if let Some(v) = k.flush() {
            acc += v;
        }
    }
    acc
}

/// [`run`] for decimal integers (two decimals) given through `decimal_sink`.
fn run_decimal(k: &mut dyn Kernel, ints: &[i64]) -> f64 {
    k.reset();
    let mut acc = 0.0;
    for chunk in ints.chunks(BUCKET) {
        k.decimal_sink(2).expect("the median takes decimal integers").extend_from_slice(black_box(chunk));
        if let Some(v) = k.flush() {
            acc += v;
        }
    }
    acc
}

fn bench_kernels(c: &mut Criterion) {
    let values = values();
    let bitmap = gaps_bitmap();
    let p = params();
    let mut g = c.benchmark_group("kernels");
    g.throughput(Throughput::Elements(SAMPLES as u64));
    for &name in CANDIDATES {
        let Ok(tg) = TimeGroup::parse(name, "time_group") else { continue };
        let Ok(mut k) = kernels::build(&tg, &p) else { continue };
        g.bench_function(format!("{name}_1M"), |b| b.iter(|| black_box(run(k.as_mut(), &values, None))));
    }
    for (label, span) in [("narrow", 1_000u64), ("wide", 20_000_000), ("spiky", 1_000)] {
        let mut ints: Vec<i64> = (0..SAMPLES as u64).map(|i| 5_000 + (mix(i ^ span) % span) as i64).collect();
        if label == "spiky" {
            // One far value per bucket: the rest lies in one coarse step.
            ints.iter_mut().step_by(BUCKET).for_each(|x| *x = 1 << 40);
        }
        let tg = TimeGroup::parse("median", "time_group").expect("median parses");
        let mut k = kernels::build(&tg, &p).expect("median is implemented");
        g.bench_function(format!("median_decimal_1M_{label}"), |b| {
            b.iter(|| black_box(run_decimal(k.as_mut(), &ints)))
        });
    }
    let tg = TimeGroup::parse("average", "time_group").expect("average parses");
    let mut k = kernels::build(&tg, &p).expect("average is implemented");
    let valid = BitSlice::new(&bitmap, 0);
    g.bench_function("average_1M_5pct_gaps", |b| b.iter(|| black_box(run(k.as_mut(), &values, Some(valid)))));
    g.finish();
}

criterion_group!(benches, bench_kernels);
criterion_main!(benches);
