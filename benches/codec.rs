//! The sealed tier-0 codec (`storage::codec`): encode speed, bytes per
//! sample, and the two read paths of a query: summarizing ranges (sum,
//! min, max, count straight from the packed integers; what average, sum,
//! min, max and count time groups read) and decoding ranges to `f64`s (what
//! the other time groups read). Reads go in buckets of 300 points, a
//! typical 24 h / 300 points grouping of per-second data, over rows of one
//! hour, like a sealed segment. The data is a CPU-like gauge in hundredths
//! (a level, a slow wave and uniform noise), the shape of the peer
//! benchmark's dataset; the bytes per sample are printed once.

use std::hint::black_box;
use std::sync::OnceLock;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_engine::demo::mix;
use strata_engine::storage::codec::{encode, EncodedRow, SumIndex};

/// Points per row (one hour at one second).
const POINTS: usize = 3600;
/// Rows per bench iteration: about 1 M samples.
const ROWS: usize = 280;
/// Points per bucket.
const BUCKET: usize = 300;

fn row_values(r: usize) -> Vec<f64> {
    let unit = |x: u64| (mix(x) >> 11) as f64 / (1u64 << 53) as f64;
    let base = 10.0 + 60.0 * unit(r as u64);
    let period = [300.0, 900.0, 3600.0][r % 3];
    (0..POINTS)
        .map(|t| {
            let wave = 5.0 * (std::f64::consts::TAU * t as f64 / period).sin();
            let noise = (unit((r * POINTS + t) as u64 ^ 0x5EED) - 0.5) * 8.0;
            ((base + wave + noise).clamp(0.0, 100.0) * 100.0).round() / 100.0
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rows: Vec<Vec<f64>> = (0..ROWS).map(row_values).collect();
    let blobs: Vec<Vec<u8>> = rows.iter().map(|v| encode(v, |_| true, |_| false)).collect();
    let bytes: usize = blobs.iter().map(Vec::len).sum();
    eprintln!("codec: {:.3} bytes per sample on the gauge", bytes as f64 / (ROWS * POINTS) as f64);
    let samples = (ROWS * POINTS) as u64;
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(samples));
    g.bench_function("encode", |b| {
        b.iter(|| rows.iter().map(|v| encode(black_box(v), |_| true, |_| false).len()).sum::<usize>())
    });
    let parsed: Vec<EncodedRow<'_>> = blobs.iter().map(|b| EncodedRow::parse(b).expect("row")).collect();
    g.bench_function("summarize_buckets", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for r in &parsed {
                for lo in (0..POINTS).step_by(BUCKET) {
                    let p = black_box(r).slice(lo, lo + BUCKET).summarize();
                    acc += p.sum + p.min + p.max;
                }
            }
            acc
        })
    });
    // Time groups of sums with the statistics read apart: no min or max.
    g.bench_function("summarize_sums_buckets", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for r in &parsed {
                for lo in (0..POINTS).step_by(BUCKET) {
                    let p = black_box(r).slice(lo, lo + BUCKET).summarize_sums();
                    acc += p.sum + f64::from(p.count);
                }
            }
            acc
        })
    });
    // A scan's pass over one row: every bucket's sums at once, in 288-point
    // buckets (a 24 h / 300 point query) that start anywhere in a frame;
    // then the same through the rows' running sums (built before timing,
    // as a query finds them after its first run).
    let ranges: Vec<(usize, usize)> = (0..POINTS / 288).map(|k| (k * 288 + 7, (k + 1) * 288 + 7)).collect();
    let mut sums = Vec::with_capacity(ranges.len());
    // Every row's pass over `ranges`: the sums and anomalous counts.
    let mut sums_of = |rows: &[EncodedRow<'_>]| {
        let mut acc = 0.0;
        for r in rows {
            sums.clear();
            black_box(r).summarize_sums_of(&ranges, &mut sums);
            acc += sums.iter().map(|p| p.sum + f64::from(p.anomaly_count)).sum::<f64>();
        }
        acc
    };
    g.bench_function("summarize_sums_of_288", |b| b.iter(|| sums_of(&parsed)));
    let cells: Vec<OnceLock<SumIndex>> = parsed.iter().map(|_| OnceLock::new()).collect();
    let indexed: Vec<EncodedRow<'_>> = parsed.iter().zip(&cells).map(|(r, c)| r.with_sums_index(c)).collect();
    indexed.iter().for_each(|r| r.summarize_sums_of(&ranges, &mut Vec::new()));
    g.bench_function("summarize_sums_of_288_indexed", |b| b.iter(|| sums_of(&indexed)));
    // The same rows with a gap every 997 points and an anomaly every 499:
    // counts through the bitmaps as well as sums.
    let marked: Vec<Vec<u8>> = rows.iter().map(|v| encode(v, |i| i % 997 != 5, |i| i % 499 == 3)).collect();
    let marked_cells: Vec<OnceLock<SumIndex>> = marked.iter().map(|_| OnceLock::new()).collect();
    let marked_rows: Vec<EncodedRow<'_>> =
        marked.iter().zip(&marked_cells).map(|(b, c)| EncodedRow::parse(b).expect("row").with_sums_index(c)).collect();
    marked_rows.iter().for_each(|r| r.summarize_sums_of(&ranges, &mut Vec::new()));
    g.bench_function("summarize_sums_of_288_indexed_gaps_anomalies", |b| b.iter(|| sums_of(&marked_rows)));
    let mut out = Vec::with_capacity(BUCKET);
    g.bench_function("decode_buckets", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for r in &parsed {
                for lo in (0..POINTS).step_by(BUCKET) {
                    out.clear();
                    black_box(r).slice(lo, lo + BUCKET).decode_into(&mut out);
                    acc += out[0];
                }
            }
            acc
        })
    });
    g.bench_function("plain_f64_sum_min_max", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for r in &rows {
                for c in black_box(r).chunks(BUCKET) {
                    acc += c.iter().sum::<f64>() + c.iter().copied().fold(f64::INFINITY, f64::min);
                }
            }
            acc
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
