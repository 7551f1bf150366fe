//! Round trips, one named test per refusal, and property tests: random and
//! damaged streams decode to Ok or a clear error, never a panic.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{Field, Schema};
use proptest::prelude::*;

use super::{decode_stream, encode_stream};
use crate::demo::{batches, GenSpec};
use crate::error::EngineError;
use crate::ingest::{IngestBatch, Point, SeriesSpec};

/// What a batch looks like after a trip through Arrow: no node metadata,
/// labels, units or titles; the instance spelled out.
fn as_carried(b: &IngestBatch) -> IngestBatch {
    IngestBatch {
        nodes: Vec::new(),
        series: b
            .series
            .iter()
            .map(|s| SeriesSpec {
                instance: Some(s.instance.clone().unwrap_or_else(|| s.context.clone())),
                units: None,
                title: None,
                chart_type: None,
                labels: Default::default(),
                ..s.clone()
            })
            .collect(),
    }
}

fn stream(cols: Vec<(&str, ArrayRef)>) -> Vec<u8> {
    let fields: Vec<Field> = cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let rb = RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect()).expect("batch");
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new(&mut out, &schema).expect("writer");
    w.write(&rb).expect("write");
    w.finish().expect("finish");
    drop(w);
    out
}

fn strs(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

/// Two rows of a valid long-format stream, with one column replaced.
fn two_rows(replace: Option<(&str, ArrayRef)>) -> Vec<u8> {
    let mut cols: Vec<(&str, ArrayRef)> = vec![
        ("context", strs(&[Some("system.cpu"), Some("system.cpu")])),
        ("dimension", strs(&[Some("user"), Some("system")])),
        ("ts", Arc::new(Int64Array::from(vec![1_700_000_000, 1_700_000_000]))),
        ("value", Arc::new(Float64Array::from(vec![Some(1.5), None]))),
    ];
    if let Some((name, a)) = replace {
        match cols.iter_mut().find(|(n, _)| *n == name) {
            Some(c) => c.1 = a,
            None => cols.push((name, a)),
        }
    }
    stream(cols)
}

fn err_path(bytes: &[u8]) -> String {
    match decode_stream(bytes) {
        Err(EngineError::InvalidBatch { path, .. }) => path,
        other => panic!("expected a batch error, got {other:?}"),
    }
}

#[test]
fn demo_batches_round_trip() {
    let spec = GenSpec { nodes: 2, metrics_per_node: 7, seed: 5 };
    for b in batches(&spec, 1_700_000_000, 1_700_000_300, 120) {
        let bytes = encode_stream(&b).expect("encode");
        let d = decode_stream(bytes.as_slice()).expect("decode");
        assert_eq!(d.batch, as_carried(&b));
    }
}

#[test]
fn minimal_stream_defaults_node_instance_and_keeps_gaps() {
    let d = decode_stream(two_rows(None).as_slice()).expect("decode");
    assert_eq!(d.batch.series.len(), 2);
    let s = &d.batch.series[1];
    assert_eq!((s.node.as_deref(), s.instance.as_deref()), (None, Some("system.cpu")));
    assert_eq!(s.points, vec![Point::new(1_700_000_000, None)]);
}

#[test]
fn rows_of_one_metric_merge_in_row_order_even_when_apart() {
    let bytes = stream(vec![
        ("context", strs(&[Some("c"), Some("c"), Some("c")])),
        ("dimension", strs(&[Some("a"), Some("b"), Some("a")])),
        ("ts", Arc::new(Int64Array::from(vec![10, 10, 11]))),
        ("value", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))),
        ("anomalous", Arc::new(BooleanArray::from(vec![Some(false), None, Some(true)]))),
    ]);
    let d = decode_stream(bytes.as_slice()).expect("decode");
    assert_eq!(d.batch.series.len(), 2);
    let pts = &d.batch.series[0].points;
    assert_eq!(pts, &vec![Point::new(10, Some(1.0)), Point { t: 11, value: Some(3.0), anomalous: true }]);
}

#[test]
fn a_missing_required_column_is_named() {
    let bytes = stream(vec![("context", strs(&[Some("c")])), ("dimension", strs(&[Some("d")]))]);
    assert_eq!(err_path(&bytes), "columns.ts");
}

#[test]
fn an_unknown_column_is_refused() {
    assert_eq!(err_path(&two_rows(Some(("valeu", strs(&[None, None]))))), "columns.valeu");
}

/// Columns are found by name, so a name given twice would leave one of
/// them unread: refused, naming it.
#[test]
fn a_column_given_twice_is_refused() {
    let bytes = stream(vec![
        ("context", strs(&[Some("first")])),
        ("dimension", strs(&[Some("d")])),
        ("ts", Arc::new(Int64Array::from(vec![1_700_000_000]))),
        ("value", Arc::new(Float64Array::from(vec![1.0]))),
        ("context", strs(&[Some("second")])),
    ]);
    assert_eq!(err_path(&bytes), "columns.context");
    match decode_stream(bytes.as_slice()) {
        Err(e) => assert!(e.to_string().contains("appears twice"), "{e}"),
        Ok(d) => panic!("decoded {:?}", d.batch),
    }
}

#[test]
fn a_wrongly_typed_column_is_named() {
    let ts: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
    assert_eq!(err_path(&two_rows(Some(("ts", ts)))), "columns.ts");
    assert_eq!(err_path(&two_rows(Some(("value", strs(&[None, None]))))), "columns.value");
}

#[test]
fn a_null_name_or_time_names_the_row() {
    assert_eq!(err_path(&two_rows(Some(("dimension", strs(&[Some("u"), None]))))), "rows[1].dimension");
    let ts: ArrayRef = Arc::new(Int64Array::from(vec![Some(1_700_000_000), None]));
    assert_eq!(err_path(&two_rows(Some(("ts", ts)))), "rows[1].ts");
}

#[test]
fn a_non_finite_value_or_far_time_names_the_row() {
    let v: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN, 1.0]));
    assert_eq!(err_path(&two_rows(Some(("value", v)))), "rows[0].value");
    let ts: ArrayRef = Arc::new(Int64Array::from(vec![1_700_000_000, -5]));
    assert_eq!(err_path(&two_rows(Some(("ts", ts)))), "rows[1].ts");
}

#[test]
fn a_bad_name_or_update_every_names_the_row() {
    assert_eq!(err_path(&two_rows(Some(("context", strs(&[Some("c"), Some("bad\u{7}")]))))), "rows[1].context");
    let ue: ArrayRef = Arc::new(Int64Array::from(vec![0, 1]));
    assert_eq!(err_path(&two_rows(Some(("update_every", ue)))), "rows[0].update_every");
}

#[test]
fn garbage_empty_truncated_and_trailing_bodies_are_stream_errors() {
    assert_eq!(err_path(b""), "stream");
    assert_eq!(err_path(b"{\"series\": []}"), "stream");
    let good = two_rows(None);
    assert_eq!(err_path(&good[..good.len() / 2]), "stream");
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    assert_eq!(err_path(&trailing), "stream");
}

#[test]
fn later_errors_are_located_at_a_row() {
    let d = decode_stream(two_rows(None).as_slice()).expect("decode");
    let e = d.rows.locate(EngineError::batch("series[1].update_every", "conflicts"));
    assert_eq!(e.path(), Some("rows[1].update_every"));
    // A point the series does not have: its first row.
    let e = d.rows.locate(EngineError::batch("series[0].points[3]", "late"));
    assert_eq!(e.path(), Some("rows[0]"));
    assert_eq!(d.rows.locate(EngineError::batch("nodes[0].id", "x")).path(), Some("nodes[0].id"));
}

#[test]
fn a_point_error_names_that_points_row_when_rows_are_apart() {
    // Rows: a a b a b (two record batches, so row numbers run across them).
    let part = |dims: &[&str], ts: Vec<i64>| {
        stream(vec![
            ("context", strs(&dims.iter().map(|_| Some("c")).collect::<Vec<_>>())),
            ("dimension", strs(&dims.iter().map(|d| Some(*d)).collect::<Vec<_>>())),
            ("ts", Arc::new(Int64Array::from(ts))),
            ("value", Arc::new(Float64Array::from(vec![1.0; dims.len()]))),
        ])
    };
    let first = part(&["a", "a", "b"], vec![10, 11, 10]);
    let d0 = decode_stream(first.as_slice()).expect("decode");
    assert_eq!(d0.rows.locate(EngineError::batch("series[0].points[1]", "x")).path(), Some("rows[1]"));
    assert_eq!(d0.rows.locate(EngineError::batch("series[1].points[0]", "x")).path(), Some("rows[2]"));
    let d = decode_stream(part(&["a", "a", "b", "a", "b"], vec![10, 11, 10, 12, 11]).as_slice()).expect("decode");
    let at = |path: &str| d.rows.locate(EngineError::batch(path, "x")).path().map(str::to_string);
    assert_eq!(at("series[0].points[2]").as_deref(), Some("rows[3]"));
    assert_eq!(at("series[1].points[1]").as_deref(), Some("rows[4]"));
    assert_eq!(at("series[1].points[0]").as_deref(), Some("rows[2]"));
    assert_eq!(at("series[1].update_every").as_deref(), Some("rows[2].update_every"));
    // Another series named in the message is its first row too.
    let e = d.rows.locate(EngineError::batch("series[1].context", "held by series[0] (and series[9], not here)"));
    match e {
        EngineError::InvalidBatch { path, message } => {
            assert_eq!(path, "rows[2].context");
            assert_eq!(message, "held by rows[0] (and series[9], not here)");
        }
        other => panic!("{other:?}"),
    }
}

fn arb_batch() -> impl Strategy<Value = IngestBatch> {
    let point = (0i64..4_000_000_000, proptest::option::of(-1e6f64..1e6), any::<bool>())
        .prop_map(|(t, value, anomalous)| Point { t, value, anomalous });
    let series = (
        proptest::option::of("[a-z]{1,4}"),
        "[a-z.]{1,6}",
        "[a-z]{1,3}",
        proptest::option::of(1i64..100),
        proptest::collection::vec(point, 0..20),
    )
        .prop_map(|(node, context, dimension, update_every, points)| SeriesSpec {
            node,
            instance: Some(context.clone()),
            context,
            dimension,
            update_every,
            points,
            ..Default::default()
        });
    proptest::collection::vec(series, 0..6).prop_map(|series| IngestBatch { nodes: Vec::new(), series })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_stream(bytes.as_slice());
    }

    #[test]
    fn damaged_streams_never_panic(b in arb_batch(), cuts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut bytes = encode_stream(&b).expect("encode");
        for (at, x) in cuts {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        let _ = decode_stream(bytes.as_slice());
        let n = bytes.len();
        let _ = decode_stream(&bytes[..cut % n]);
    }

    #[test]
    fn valid_streams_decode_to_what_was_sent_or_a_clear_error(b in arb_batch()) {
        let bytes = encode_stream(&b).expect("encode");
        match decode_stream(bytes.as_slice()) {
            Ok(d) => {
                // Rows of one metric merge, so compare the samples per metric.
                let flat = |b: &IngestBatch| {
                    let mut v: Vec<_> = b.series.iter().flat_map(|s| s.points.iter().map(move |p| (s.node.clone(), s.instance.clone(), s.dimension.clone(), p.t, p.value.map(f64::to_bits), p.anomalous))).collect();
                    v.sort();
                    v
                };
                prop_assert_eq!(flat(&d.batch), flat(&b));
            }
            Err(e) => prop_assert!(matches!(e, EngineError::InvalidBatch { .. }), "{e:?}"),
        }
    }
}

/// One generated row: which metric it names (index 4: a null context), and
/// its point columns, each of which may be null or out of range.
#[derive(Debug, Clone)]
struct GenRow {
    metric: usize,
    ts: Option<i64>,
    value: Option<f64>,
    anomalous: Option<bool>,
    update_every: Option<i64>,
}

/// Runs of equal adjacent values as run ends (int32), a run cut in two
/// now and then (so equal strings also sit in adjacent runs), and the
/// runs' values.
fn runs_of<T: PartialEq + Copy>(v: &[T], cut_every: usize) -> (Vec<i32>, Vec<T>) {
    let (mut ends, mut values) = (Vec::<i32>::new(), Vec::new());
    for (i, x) in v.iter().enumerate() {
        match values.last() {
            Some(last) if last == x && (i + 1) % cut_every != 0 => *ends.last_mut().expect("a run") = i as i32 + 1,
            _ => {
                values.push(*x);
                ends.push(i as i32 + 1);
            }
        }
    }
    (ends, values)
}

/// A run-end-encoded array of `v` (int32 run ends).
fn run_end_array<T: PartialEq + Copy>(v: &[T], cut_every: usize, values: impl Fn(Vec<T>) -> ArrayRef) -> ArrayRef {
    let (ends, vals) = runs_of(v, cut_every);
    let ends = Int32Array::from(ends);
    Arc::new(
        arrow_array::RunArray::<arrow_array::types::Int32Type>::try_new(&ends, values(vals).as_ref()).expect("ree"),
    )
}

/// How a name column is written: plain, int32 dictionary (read in place),
/// int8 dictionary (keys normalised), with a repeated dictionary entry;
/// or run-end-encoded over plain strings or over a dictionary.
fn name_column(kind: u8, v: &[Option<&str>]) -> ArrayRef {
    use arrow_array::types::{Int32Type, Int8Type};
    use arrow_array::DictionaryArray;
    match kind % 5 {
        3 => return run_end_array(v, 3 + usize::from(kind / 5) % 7, |vals| strs(&vals)),
        4 => return run_end_array(v, 4 + usize::from(kind / 5) % 5, |vals| name_column(1, &vals)),
        _ => {}
    }
    match kind % 3 {
        0 => strs(v),
        1 => {
            // "x" twice in the dictionary: equal strings under different keys.
            let dict: Vec<&str> = ["x", "a", "b", "x", "c", "d"].to_vec();
            let keys: Vec<Option<i32>> = v
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.map(|s| {
                        dict.iter().position(|d| *d == s).map_or(0, |p| if p == 0 && i % 2 == 1 { 3 } else { p }) as i32
                    })
                })
                .collect();
            Arc::new(
                DictionaryArray::<Int32Type>::try_new(keys.into(), Arc::new(StringArray::from(dict))).expect("dict"),
            )
        }
        _ => Arc::new(v.iter().copied().collect::<DictionaryArray<Int8Type>>()),
    }
}

/// A stream of `rows` split into record batches at `split`, with the name
/// columns written as `kinds` says and the optional columns present as
/// `optional` says.
fn gen_stream(rows: &[GenRow], split: usize, kinds: [u8; 4], optional: [bool; 3]) -> Vec<u8> {
    const METRICS: [(Option<&str>, Option<&str>, &str, &str); 6] = [
        (Some("a"), Some("x"), "b", "c"),
        (Some("a"), Some("x"), "b", "d"),
        (None, Some("x"), "b", "c"),
        (Some("b"), Some("c"), "x", "x"),
        (Some("a"), None, "b", "c"),
        // The first metric in another context: refused wherever it comes.
        (Some("a"), Some("c"), "b", "c"),
    ];
    let fields = ["node", "context", "instance", "dimension", "ts", "value", "anomalous", "update_every"];
    let mut schema_fields = Vec::new();
    let mut batches = Vec::new();
    let cut = split.min(rows.len());
    for part in [&rows[..cut], &rows[cut..]] {
        let m = |i: usize| METRICS[i.min(METRICS.len() - 1)];
        let node: Vec<_> = part.iter().map(|r| m(r.metric).0).collect();
        let context: Vec<_> = part.iter().map(|r| m(r.metric).1).collect();
        let instance: Vec<_> = part.iter().map(|r| Some(m(r.metric).2)).collect();
        let dimension: Vec<_> = part.iter().map(|r| Some(m(r.metric).3)).collect();
        let cols: Vec<ArrayRef> = vec![
            name_column(kinds[0], &node),
            name_column(kinds[1], &context),
            name_column(kinds[2], &instance),
            name_column(kinds[3], &dimension),
            Arc::new(Int64Array::from(part.iter().map(|r| r.ts).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(part.iter().map(|r| r.value).collect::<Vec<_>>())),
            Arc::new(BooleanArray::from(part.iter().map(|r| r.anomalous).collect::<Vec<_>>())),
            {
                let ue: Vec<Option<i64>> = part.iter().map(|r| r.update_every).collect();
                // update_every plain, or run-end-encoded.
                match kinds[0] & 0x80 {
                    0 => Arc::new(Int64Array::from(ue)),
                    _ => run_end_array(&ue, 5, |v| Arc::new(Int64Array::from(v))),
                }
            },
        ];
        let keep = |i: usize| i < 6 || optional[i - 5];
        let cols: Vec<(usize, ArrayRef)> = cols.into_iter().enumerate().filter(|(i, _)| keep(*i)).collect();
        schema_fields = cols.iter().map(|(i, a)| Field::new(fields[*i], a.data_type().clone(), true)).collect();
        batches.push(cols.into_iter().map(|(_, a)| a).collect::<Vec<_>>());
    }
    let schema = Arc::new(Schema::new(schema_fields));
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new(&mut out, &schema).expect("writer");
    for cols in batches {
        w.write(&RecordBatch::try_new(schema.clone(), cols).expect("batch")).expect("write");
    }
    w.finish().expect("finish");
    drop(w);
    out
}

fn gen_rows() -> impl Strategy<Value = Vec<GenRow>> {
    // Mostly valid rows in runs of one metric, sometimes a bad one.
    let ts = prop_oneof![20 => (1_700_000_000i64..1_700_000_100).prop_map(Some), 1 => Just(None), 1 => Just(Some(-5)), 1 => Just(Some(i64::MAX))];
    let value = prop_oneof![20 => (-1e3f64..1e3).prop_map(Some), 3 => Just(None), 1 => Just(Some(f64::NAN)), 1 => Just(Some(f64::INFINITY))];
    let ue = prop_oneof![10 => Just(None), 10 => Just(Some(1i64)), 1 => Just(Some(2)), 1 => Just(Some(0))];
    let run = (
        prop_oneof![20 => 0usize..5, 1 => Just(5usize)],
        1usize..12,
        ts,
        value,
        proptest::option::of(any::<bool>()),
        ue,
    );
    proptest::collection::vec(run, 0..8)
        .prop_flat_map(|runs| {
            let n: usize = runs.iter().map(|r| r.1).sum();
            // Rows within a run differ only where a per-row flip says so.
            (Just(runs), proptest::collection::vec(0u8..40, n))
        })
        .prop_map(|(runs, flips)| {
            let mut rows = Vec::new();
            for (metric, len, ts, value, anomalous, update_every) in runs {
                for j in 0..len {
                    let flip = flips[rows.len()];
                    rows.push(GenRow {
                        metric: if flip == 0 { (metric + 1) % 5 } else { metric },
                        ts: ts.map(|t| t.saturating_add(j as i64)),
                        value: if flip == 1 { None } else { value.map(|v| v + j as f64) },
                        anomalous: if flip == 2 { None } else { anomalous },
                        update_every: if flip == 3 { Some(1) } else { update_every },
                    });
                }
            }
            rows
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The run path decodes exactly as reading each row on its own does:
    /// the same series, points in the same order, the same first rows, or
    /// the same error at the same row; whatever the name columns' encodings,
    /// nulls, bad points, disagreeing update_every and record batch splits.
    #[test]
    fn runs_decode_exactly_as_rows_one_by_one(
        rows in gen_rows(),
        split in 0usize..40,
        kinds in any::<[u8; 4]>(),
        optional in any::<[bool; 3]>(),
    ) {
        let bytes = gen_stream(&rows, split, kinds, optional);
        let fast = decode_stream(bytes.as_slice());
        let slow = super::decode::decode_row_by_row(&bytes);
        match (fast, slow) {
            (Ok(f), Ok(s)) => {
                prop_assert_eq!(&f.batch, &s.batch);
                prop_assert_eq!(format!("{:?}", f.rows), format!("{:?}", s.rows));
            }
            (f, s) => prop_assert_eq!(format!("{:?}", f.map(|d| d.batch)), format!("{:?}", s.map(|d| d.batch))),
        }
    }
}

/// A run-end-encoded column read through a slice (an offset into its runs,
/// as an in-process writer may hand over) gives each row its own run's
/// string, run ends where the runs end, and update_every the same way.
#[test]
fn sliced_run_end_columns_read_each_row_from_its_run() {
    use super::columns::{IntCol, StrCol};
    let rows = ["a", "a", "b", "b", "b", "c", "a", "a"].map(Some);
    let full = run_end_array(&rows, usize::MAX, |v| strs(&v));
    for (off, len) in [(0, 8), (1, 6), (3, 5), (5, 1), (2, 0)] {
        let sliced = full.slice(off, len);
        let col = StrCol::from_dyn("node", sliced.as_ref()).expect("a string column");
        for r in 0..len {
            assert_eq!(col.get(r), rows[off + r], "row {r} of the slice at {off}");
            let end = (r..len).find(|&j| rows[off + j] != rows[off + r]).unwrap_or(len);
            assert_eq!(col.run_end(r, r + 1, len), end.max(r + 1), "run end of row {r} at {off}");
        }
        assert_eq!(col.get(len), None, "past the slice");
    }
    let ue = [Some(1i64), Some(1), None, Some(5), Some(5)];
    let full = run_end_array(&ue, usize::MAX, |v| Arc::new(Int64Array::from(v)));
    let sliced: ArrayRef = full.slice(1, 4);
    let col = IntCol::new("update_every", &sliced).expect("an int column");
    assert_eq!((0..4).map(|r| col.get(r)).collect::<Vec<_>>(), ue[1..].to_vec());
    assert_eq!(col.first_refused(0..4, |v| v != Some(5)), Some(2));
    assert_eq!(col.first_refused(0..2, |v| v.is_none()), Some(0));
    assert_eq!(col.first_refused(1..2, |v| v.is_none()), None);
}
