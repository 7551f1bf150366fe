use super::*;
use proptest::prelude::*;

/// A row as plain data: (value, valid, anomalous) per point.
fn encode_row(points: &[(f64, bool, bool)]) -> Vec<u8> {
    let values: Vec<f64> = points.iter().map(|p| p.0).collect();
    encode(&values, |i| points[i].1, |i| points[i].2)
}

/// Values worth trying: short decimals of several scales, the IEEE oddities
/// and arbitrary bit patterns.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (-100_000i64..100_000, 0u32..4).prop_map(|(k, e)| alp::decode(k, e)),
        1 => prop::sample::select(vec![
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 3.0,
            -5e-324,
            f64::MAX,
            f64::MIN,
            1.0 / 3.0,
            (1u64 << 53) as f64,
        ]),
        1 => any::<u64>().prop_map(f64::from_bits),
    ]
}

/// Rows whose frames are each mostly one kind, so both frame kinds and
/// frame boundaries are exercised.
fn row() -> impl Strategy<Value = Vec<(f64, bool, bool)>> {
    let point = (value(), prop::bool::weighted(0.85), prop::bool::weighted(0.1));
    let decimal_point = ((0i64..20_000).prop_map(|k| alp::decode(k, 2)), prop::bool::weighted(0.97), Just(false));
    let signed_point = ((-20_000i64..20_000).prop_map(|k| alp::decode(k, 2)), prop::bool::weighted(0.97), Just(false));
    // A negated dimension: `-(k / 100)`, often `-0.0` (at rest), sometimes
    // a `+0.0` that keeps its frame raw.
    let negated_point = (
        prop_oneof![800 => (0i64..20_000).prop_map(|k| -alp::decode(k, 2)), 300 => Just(-0.0), 1 => Just(0.0)],
        prop::bool::weighted(0.97),
        prop::bool::weighted(0.05),
    );
    // Gap-free, mostly short rows: whole frames of every width take the
    // dense paths (and the AVX2 one where the frame is long enough).
    let dense_point = ((0i64..20_000).prop_map(|k| alp::decode(k, 2)), Just(true), Just(false));
    // Narrow values in short frames: too few bytes for AVX2's loads.
    let narrow_point = ((0i64..6).prop_map(|k| alp::decode(k, 1)), Just(true), Just(false));
    // Long stretches of gaps: whole frames without a value.
    let sparse_point = ((0i64..20_000).prop_map(|k| alp::decode(k, 2)), prop::bool::weighted(0.002), Just(false));
    prop_oneof![
        prop::collection::vec(sparse_point, 0..3000),
        prop::collection::vec(point, 0..1400),
        prop::collection::vec(decimal_point, 0..1400),
        prop::collection::vec(signed_point, 0..1400),
        prop::collection::vec(negated_point, 0..2500),
        prop::collection::vec(dense_point, 0..300),
        prop::collection::vec(narrow_point, 0..120),
    ]
}

/// A frame as the encoder wrote it before frames were encoded in one pass
/// (stop 27): the plain definition its output must equal byte for byte.
/// Only frames changed then; a row's header and directory did not.
mod reference {
    use super::super::bitpack::{packed_len, MAX_WIDTH};
    use super::super::{alp, put_varint, DECIMAL, MAX_DECIMAL_WIDTH, NEGATED, RAW};
    use crate::storage::bits::set_bit;

    /// The bit layout by definition: value `i`'s bit `b` is bit `i * width + b`.
    fn pack(values: &[u64], width: u32, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + packed_len(values.len(), width), 0);
        for (i, v) in values.iter().enumerate() {
            for b in 0..width as usize {
                set_bit(&mut out[start..], i * width as usize + b, (v >> b) & 1 == 1);
            }
        }
    }

    /// Negated when the plain values are no decimal frame, one of them is
    /// `-0.0`, none is `+0.0` and the negations are one.
    pub fn encode_frame(values: &[f64], valid: impl Fn(usize) -> bool, out: &mut Vec<u8>) {
        let present: Vec<f64> = (0..values.len()).filter(|&i| valid(i)).map(|i| values[i]).collect();
        let decimal = |present: &[f64]| {
            alp::exponent(present).and_then(|e| {
                let ks: Vec<i64> = present.iter().filter_map(|&v| alp::encode(v, e)).collect();
                let (min, max) = (ks.iter().min().copied().unwrap_or(0), ks.iter().max().copied().unwrap_or(0));
                let width = 64 - (max.abs_diff(min)).leading_zeros();
                (width <= MAX_DECIMAL_WIDTH.min(MAX_WIDTH)).then_some((e, min, width))
            })
        };
        let zero = |bits: u64| present.iter().any(|v| v.to_bits() == bits);
        let (mut kind, mut sign) = (DECIMAL, 1.0);
        let mut found = decimal(&present);
        if found.is_none() && zero((-0.0f64).to_bits()) && !zero(0) {
            let negations: Vec<f64> = present.iter().map(|v| -v).collect();
            (kind, sign, found) = (NEGATED, -1.0, decimal(&negations));
        }
        match found {
            Some((e, base, width)) => {
                out.extend_from_slice(&[kind, e as u8, width as u8]);
                put_varint(out, base);
                let offsets: Vec<u64> = (0..values.len())
                    .map(
                        |i| if valid(i) { alp::encode(sign * values[i], e).map_or(0, |k| k.abs_diff(base)) } else { 0 },
                    )
                    .collect();
                pack(&offsets, width, out);
            }
            None => {
                out.push(RAW);
                for (i, &v) in values.iter().enumerate() {
                    out.extend_from_slice(&(if valid(i) { v } else { 0.0 }).to_le_bytes());
                }
            }
        }
    }
}

/// Every frame of a row encodes to the reference's bytes.
fn frames_match_reference(values: &[f64], valid: impl Fn(usize) -> bool) -> Result<(), TestCaseError> {
    let mut ks = Vec::new();
    for lo in (0..values.len()).step_by(FRAME) {
        let hi = (lo + FRAME).min(values.len());
        let (mut got, mut want) = (Vec::new(), Vec::new());
        encode_frame(&values[lo..hi], |i| valid(lo + i), &mut ks, &mut got);
        reference::encode_frame(&values[lo..hi], |i| valid(lo + i), &mut want);
        prop_assert_eq!(got, want, "frame at {}", lo);
    }
    Ok(())
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

/// An extreme as a fold finds it: `-0.0` and `+0.0` tie, and which of
/// the two a minimum or maximum keeps depends on the order it meets them.
fn same_extreme(a: f64, b: f64) -> bool {
    same(a, b) || a == b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every valid point reads back bit for bit, alone, decoded in any range
    /// and summarized; gaps and anomaly bits survive.
    #[test]
    fn round_trips_bit_for_bit(points in row(), from in 0usize..1500, len in 0usize..1500) {
        let blob = encode_row(&points);
        let values: Vec<f64> = points.iter().map(|p| p.0).collect();
        frames_match_reference(&values, |i| points[i].1)?;
        let r = EncodedRow::parse(&blob).expect("parses");
        prop_assert_eq!(r.len(), points.len());
        for (i, &(v, ok, an)) in points.iter().enumerate() {
            prop_assert_eq!(r.is_valid(i), ok);
            prop_assert_eq!(r.is_anomalous(i), ok && an);
            if ok {
                prop_assert!(same(r.value(i), v), "point {}: {:?} became {:?}", i, v, r.value(i));
            }
        }
        // The whole row's extremes (short rows rarely get a random range).
        let all: Vec<f64> = points.iter().filter(|p| p.1).map(|p| p.0).collect();
        if !all.is_empty() && all.iter().all(|v| v.is_finite()) {
            let whole = r.summarize();
            prop_assert!(same_extreme(whole.min, all.iter().copied().fold(f64::INFINITY, f64::min)), "min {}", whole.min);
            prop_assert!(same_extreme(whole.max, all.iter().copied().fold(f64::NEG_INFINITY, f64::max)), "max {}", whole.max);
        }
        let from = from.min(points.len());
        let to = (from + len).min(points.len());
        let s = r.slice(from, to);
        let mut decoded = Vec::new();
        s.decode_into(&mut decoded);
        prop_assert_eq!(decoded.len(), to - from);
        let kept: Vec<f64> = (from..to).filter(|&i| points[i].1).map(|i| points[i].0).collect();
        for (k, i) in (from..to).enumerate() {
            prop_assert_eq!(s.is_valid(k), points[i].1);
            if points[i].1 {
                prop_assert!(same(decoded[k], points[i].0));
            }
        }
        // Decimal integers where the range is gap-free with one exponent:
        // each decodes to its value, and they order as the values do.
        if let Some(e) = s.decimal_exp() {
            let mut ks = Vec::new();
            s.decode_decimal_into(&mut ks);
            prop_assert_eq!(ks.len(), to - from);
            prop_assert!(ks.iter().zip(&decoded).all(|(&k, &v)| same(alp::decode(k, e), v)));
            prop_assert!(ks.windows(2).all(|w| w[0].cmp(&w[1]) == alp::decode(w[0], e).total_cmp(&alp::decode(w[1], e))));
        } else {
            // A one-frame row of hundredths without gaps is decimal.
            let hundredths = points.iter().all(|p| p.1 && alp::encode(p.0, 2).is_some());
            prop_assert!(to == from || !hundredths || points.len() > FRAME, "refused a decimal range");
        }
        let p = s.summarize();
        let sums = s.summarize_sums();
        prop_assert_eq!((sums.count, sums.anomaly_count), (p.count, p.anomaly_count));
        // A sum meeting both infinities is a NaN whose sign bit depends on the order of the adds.
        prop_assert!(same(sums.sum, p.sum) || (sums.sum.is_nan() && p.sum.is_nan()), "sums only: {} vs {}", sums.sum, p.sum);
        prop_assert!(sums.min.is_nan() && sums.max.is_nan());
        prop_assert_eq!(p.count as usize, kept.len());
        prop_assert_eq!(p.anomaly_count as usize, (from..to).filter(|&i| points[i].1 && points[i].2).count());
        if kept.iter().all(|v| v.is_finite()) && !kept.is_empty() {
            let plain: f64 = kept.iter().sum();
            let scale = kept.iter().map(|v| v.abs()).sum::<f64>().max(1.0);
            if scale.is_finite() {
                prop_assert!((p.sum - plain).abs() <= 1e-12 * scale * kept.len() as f64, "{} vs {}", p.sum, plain);
            }
            prop_assert!(same_extreme(p.min, kept.iter().copied().fold(f64::INFINITY, f64::min)));
            prop_assert!(same_extreme(p.max, kept.iter().copied().fold(f64::NEG_INFINITY, f64::max)));
            // The same of |x|, taken without decoding.
            let a = s.summarize_abs();
            let abs: Vec<f64> = kept.iter().map(|v| v.abs()).collect();
            prop_assert_eq!((a.count, a.anomaly_count), (p.count, p.anomaly_count));
            if scale.is_finite() {
                let plain: f64 = abs.iter().sum();
                prop_assert!((a.sum - plain).abs() <= 1e-12 * scale * kept.len() as f64, "{} vs {}", a.sum, plain);
            }
            prop_assert!(same(a.min, abs.iter().copied().fold(f64::INFINITY, f64::min)));
            prop_assert!(same(a.max, abs.iter().copied().fold(f64::NEG_INFINITY, f64::max)));
        }
        // A range hints at the frames it reads, from the first one's header.
        let frames = s.frames.as_ptr_range();
        let mut hints = Vec::new();
        s.read_hint(|b| hints.push(b.as_ptr_range()));
        prop_assert!(hints.iter().all(|h| frames.start <= h.start && h.end <= frames.end), "hints lie in the frames");
        if to > from {
            let fi = from / FRAME;
            let header = u32::from_le_bytes(s.offsets[4 * fi..4 * fi + 4].try_into().expect("four bytes")) as usize;
            prop_assert_eq!(hints.first().map(|h| h.start), Some(frames.start.wrapping_add(header)));
        }
    }

    /// Many ranges in one pass sum exactly (bit for bit) as each range
    /// alone, whatever frames they share or cross, inside a slice of the
    /// row too.
    #[test]
    fn ranges_in_one_pass_sum_as_each_alone(
        points in row(),
        from in 0usize..1500,
        cuts in prop::collection::vec(0usize..1500, 0..40),
        skip in prop::collection::vec(any::<bool>(), 40),
    ) {
        let blob = encode_row(&points);
        let r = EncodedRow::parse(&blob).expect("parses");
        let s = r.slice(from.min(points.len()), points.len());
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(s.len())).collect();
        cuts.sort_unstable();
        // Consecutive cuts are ranges (some skipped, some empty).
        let ranges: Vec<(usize, usize)> =
            cuts.windows(2).zip(&skip).filter(|(_, &k)| !k).map(|(w, _)| (w[0], w[1])).collect();
        let mut got = Vec::new();
        s.summarize_sums_of(&ranges, &mut got);
        prop_assert_eq!(got.len(), ranges.len());
        for (&(lo, hi), g) in ranges.iter().zip(&got) {
            let want = s.slice(lo, hi).summarize_sums();
            prop_assert_eq!((g.count, g.anomaly_count), (want.count, want.anomaly_count), "range {}..{}", lo, hi);
            prop_assert!(same(g.sum, want.sum), "range {}..{}: {} vs {}", lo, hi, g.sum, want.sum);
            prop_assert!(g.min.is_nan() && g.max.is_nan());
        }
    }

    /// Truncated or scribbled rows never panic: they parse as nothing or
    /// read as something, without reading out of bounds.
    #[test]
    fn malformed_rows_are_harmless(points in row(), cut in 0usize..20_000, flip in any::<(usize, u8)>()) {
        let mut blob = encode_row(&points);
        if !blob.is_empty() {
            let at = flip.0 % blob.len();
            blob[at] ^= flip.1;
        }
        blob.truncate(cut.min(blob.len()));
        if let Some(r) = EncodedRow::parse(&blob) {
            let mut out = Vec::new();
            r.decode_into(&mut out);
            let _ = r.summarize();
            r.read_hint(|_| {});
            (0..r.len()).for_each(|i| {
                let _ = (r.value(i), r.is_valid(i), r.is_anomalous(i));
            });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The one-pass encoder writes exactly the bytes of the reference: the
    /// same smallest exponent (also when a value that needs a larger one
    /// comes late in a frame), base, width and packing, for every width.
    #[test]
    fn encodes_byte_for_byte_as_the_reference(
        points in row(),
        late in prop::collection::vec((0usize..1400, value()), 0..3),
        scale in 0u32..8,
        width_bits in 0u32..54,
    ) {
        let mut values: Vec<f64> = points.iter().map(|p| p.0).collect();
        for (at, v) in late {
            if let Some(x) = values.get_mut(at) {
                *x = v;
            }
        }
        let valid = |i: usize| points[i].1;
        frames_match_reference(&values, valid)?;
        // Integers spread over `width_bits` bits at exponent `scale`.
        let spread: Vec<f64> = (0..values.len() as i64)
            .map(|i| alp::decode((i * 7919) % (1i64 << width_bits).max(1) - (1i64 << width_bits.saturating_sub(1)), scale))
            .collect();
        frames_match_reference(&spread, valid)?;
    }
}

/// A CPU-like gauge in hundredths (the benchmark's shape: a level, a
/// slow wave and uniform noise of ±4) packs in about 11 bits a point.
#[test]
fn a_noisy_gauge_in_hundredths_takes_about_eleven_bits() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let values: Vec<f64> = (0..3600)
        .map(|t| {
            let v = 40.0 + 5.0 * (std::f64::consts::TAU * t as f64 / 900.0).sin() + 8.0 * noise();
            (v * 100.0).round() / 100.0
        })
        .collect();
    let blob = encode(&values, |_| true, |_| false);
    let bits = blob.len() as f64 * 8.0 / values.len() as f64;
    assert!(bits < 11.5, "{bits:.2} bits a point");
    eprintln!("noisy gauge: {bits:.2} bits a point");
    let r = EncodedRow::parse(&blob).expect("parses");
    assert!(values.iter().enumerate().all(|(i, &v)| same(r.value(i), v)));
}

proptest! {
    #[test]
    fn varints_round_trip(v in any::<i64>()) {
        let mut out = vec![1];
        put_varint(&mut out, v);
        prop_assert_eq!(get_varint(&out[1..]), Some((v, out.len() - 1)));
    }
}

#[test]
fn frames_fall_back_to_raw_one_at_a_time() {
    let mut values: Vec<f64> = (0..3 * FRAME).map(|i| i as f64 / 4.0).collect();
    values[FRAME + 7] = f64::NAN;
    let blob = encode(&values, |_| true, |_| false);
    let r = EncodedRow::parse(&blob).expect("parses");
    assert!(matches!(r.frame(0), Some(Frame::Decimal { .. })));
    assert!(matches!(r.frame(1), Some(Frame::Raw(_))));
    assert!(matches!(r.frame(2), Some(Frame::Decimal { .. })));
    assert!(r.value(FRAME + 7).is_nan());
    assert_eq!(r.value(2 * FRAME + 1), (2 * FRAME + 1) as f64 / 4.0);
}

/// A negated dimension at rest (`0 * -1` is `-0.0`) packs as decimals,
/// negated; one `+0.0` among them keeps that frame raw, and only a row
/// with a negated frame carries the version older readers refuse.
#[test]
fn negative_zeros_pack_as_negated_decimals() {
    let mut values: Vec<f64> =
        (0..3 * FRAME).map(|i| if i % 5 == 0 { -0.0 } else { -((i % 700) as f64) / 100.0 }).collect();
    values[2 * FRAME + 3] = 0.0;
    let blob = encode(&values, |_| true, |_| false);
    assert_eq!(blob[0], VERSION_NEGATED);
    let r = EncodedRow::parse(&blob).expect("parses");
    for f in 0..2 {
        assert!(matches!(r.frame(f), Some(Frame::Decimal { exp: 2, neg: true, .. })), "frame {f}");
    }
    assert!(matches!(r.frame(2), Some(Frame::Raw(_))));
    assert_eq!(r.value(5).to_bits(), (-0.0f64).to_bits());
    assert_eq!(r.value(7), -0.07);
    let p = r.slice(0, 2 * FRAME).summarize();
    let want: f64 = values[..2 * FRAME].iter().sum();
    assert_eq!((p.min, p.max, p.count), (-6.99, -0.0, 2 * FRAME as u32));
    assert!(p.max.is_sign_negative());
    assert!((p.sum - want).abs() < 1e-9, "{} vs {want}", p.sum);
    let zeros = EncodedRow::parse(&encode(&[-0.0; 100], |_| true, |_| false)).expect("parses").summarize();
    assert_eq!((zeros.sum, zeros.count), (0.0, 100));
    assert!(zeros.min.is_sign_negative() && zeros.max.is_sign_negative());
    let plain = encode(&values[..FRAME].iter().map(|v| v.abs()).collect::<Vec<_>>(), |_| true, |_| false);
    assert_eq!(plain[0], VERSION);
}

#[test]
fn a_constant_row_takes_no_bits_per_point() {
    let blob = encode(&[60.0; 3600], |_| true, |_| false);
    // Header, offsets and one frame header per 512 points: nothing per point.
    assert_eq!(blob.len(), 8 + 3600usize.div_ceil(FRAME) * (4 + 3 + 1));
    let p = EncodedRow::parse(&blob).expect("parses").slice(10, 70).summarize();
    assert_eq!((p.sum, p.min, p.max, p.count), (3600.0, 60.0, 60.0, 60));
}

/// Frames of gaps only are written without a look at their values, as
/// the general path writes them, byte for byte; rows mixing them with
/// valued and anomalous frames read back whole.
#[test]
fn frames_of_gaps_only_are_written_as_the_general_path_writes_them() {
    for len in [1, 7, 8, 9, 500, FRAME] {
        let (mut fast, mut general) = (Vec::new(), Vec::new());
        constant_frame(0, 0, len, &mut fast);
        encode_frame(&vec![3.25; len], |_| false, &mut Vec::new(), &mut general);
        assert_eq!(fast, general, "{len} gaps");
    }
    let n = 3 * FRAME + 100;
    let values: Vec<f64> = (0..n).map(|i| (i % 97) as f64 / 4.0).collect();
    // Frame 0 has a few points, frame 1 none, frame 2 all, the last one none.
    let valid = |i: usize| (i < FRAME && i % 300 == 7) || (2 * FRAME..3 * FRAME).contains(&i);
    let anomalous = |i: usize| i.is_multiple_of(5);
    let blob = encode(&values, valid, anomalous);
    let row = EncodedRow::parse(&blob).expect("parses");
    for (i, &v) in values.iter().enumerate() {
        assert_eq!(row.is_valid(i), valid(i), "valid {i}");
        if valid(i) {
            assert_eq!((row.value(i), row.is_anomalous(i)), (v, anomalous(i)), "point {i}");
        }
    }
}

proptest! {
    /// A frame of one value (gaps aside) is written as the general path
    /// writes it, byte for byte, whatever the value.
    #[test]
    fn frames_of_one_value_are_written_as_the_general_path_writes_them(
        v in value(),
        len in 1usize..=FRAME,
        gaps in prop::collection::vec(any::<bool>(), FRAME),
        all_valid in any::<bool>(),
    ) {
        let values = vec![v; len];
        let valid = |i: usize| all_valid || gaps[i];
        let (mut fast, mut general) = (Vec::new(), Vec::new());
        let kind = encode_frame(&values, valid, &mut Vec::new(), &mut fast);
        let want = encode_frame_general(&values, valid, &mut Vec::new(), &mut general);
        prop_assert_eq!((kind, fast), (want, general));
    }
}

#[test]
fn gaps_and_anomalies_only_cost_bitmaps_when_present() {
    let dense = encode(&[1.5; 100], |_| true, |_| false);
    let gappy = encode(&[1.5; 100], |i| i != 3, |i| i == 5);
    assert_eq!(gappy.len(), dense.len() + 2 * 100usize.div_ceil(8));
    let r = EncodedRow::parse(&gappy).expect("parses");
    assert!(!r.is_valid(3) && r.is_anomalous(5) && !r.is_anomalous(4));
    let p = r.summarize();
    assert_eq!((p.count, p.anomaly_count, p.sum), (99, 1, 148.5));
}

#[test]
fn frame_totals_fall_back_to_wide_integers() {
    // Fits an i64: rounded once, as the i128 path would.
    assert_eq!(scaled_total(-1_234, 1024, 5_000_000, 2), (-1_234.0 * 1024.0 + 5_000_000.0) / 100.0);
    // Overflows an i64: still the exact total, rounded once.
    let (base, n, sum) = (i64::MAX / 2, 4u32, u64::MAX / 2);
    let want = (i128::from(base) * 4 + i128::from(sum)) as f64 / 1e3;
    assert_eq!(scaled_total(base, n, sum, 3), want);
}
