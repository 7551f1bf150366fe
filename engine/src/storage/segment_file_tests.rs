//! Segment files: round trips per tier and compression, canonical names,
//! zero-copy reads, and files corrupted on purpose (flipped bytes, truncated
//! tail, garbage appended, empty, random bytes, wrong schema, stray temps).

use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, UInt32Array};
use arrow_schema::Field;
use proptest::prelude::*;

use super::*;
use crate::storage::open_span::OpenSpan;

/// A fresh directory under the system temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(tag: &str) -> TestDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("strata-segfile-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create test dir");
        TestDir(dir)
    }

    fn quarantine(&self) -> PathBuf {
        self.0.join("quarantine")
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const RAW_IDS: [u32; 2] = [3, 9];
const AGG_IDS: [u32; 2] = [1, 4];

/// Tier 0, 64 one-second points from 7200: values, explicit gaps, anomalies.
fn raw_segment(start: i64) -> Segment {
    Segment::seal(0, &raw_span(start)).expect("seal raw")
}

/// The same in format 2's plain layout.
fn plain_raw_segment(start: i64) -> Segment {
    Segment::seal_plain(&raw_span(start)).expect("seal plain")
}

fn raw_span(start: i64) -> OpenSpan {
    let mut s = OpenSpan::new(start, 1, 64, true);
    for i in 0..64 {
        let t = start + i;
        match i % 5 {
            0 => s.write_raw(3, t, None, false),
            _ => s.write_raw(3, t, Some(i as f64 * 0.5 - 7.0), i % 3 == 0),
        };
    }
    s.write_raw(9, start + 10, Some(f64::NAN), true);
    s.write_raw(9, start + 63, Some(-0.0), false);
    s
}

/// Tier 1, 16 one-minute points from 0: sums/min/max/counts with empty points.
fn agg_segment(start: i64) -> Segment {
    Segment::seal(1, &agg_span(start)).expect("seal agg")
}

/// The same in format 2's plain layout.
fn plain_agg_segment(start: i64) -> Segment {
    Segment::seal_plain_agg(1, &agg_span(start)).expect("seal plain agg")
}

fn agg_span(start: i64) -> OpenSpan {
    let mut s = OpenSpan::new(start, 60, 16, false);
    for i in 0..16i64 {
        for k in 0..(i % 4) {
            s.merge_agg(1, start + i * 60, (i * 10 + k) as f64, k == 1);
        }
    }
    s.merge_agg(4, start + 15 * 60, 2.5, true);
    s
}

/// Every point of every row identical through `run`, bit for bit.
fn assert_same(a: &Segment, b: &Segment, ids: &[u32]) {
    assert_eq!((a.tier, a.start, a.res, a.points, a.rows()), (b.tier, b.start, b.res, b.points, b.rows()));
    assert_eq!(a.batch, b.batch);
    for &m in ids {
        let (ra, rb) = (a.run(m).expect("row a"), b.run(m).expect("row b"));
        assert_eq!((ra.first_end, ra.res, ra.len), (rb.first_end, rb.res, rb.len));
        for i in 0..ra.len {
            assert_eq!(ra.is_valid(i), rb.is_valid(i), "metric {m} point {i} validity");
            assert_eq!(ra.counts(i), rb.counts(i), "metric {m} point {i} counts");
            let (pa, pb) = (AggPointBits::from(ra.agg(i)), AggPointBits::from(rb.agg(i)));
            assert_eq!(pa, pb, "metric {m} point {i} values");
        }
    }
}

/// An `AggPoint` compared bit for bit (NaN == NaN, -0.0 != 0.0).
#[derive(Debug, PartialEq)]
struct AggPointBits([u64; 3], u32, u32);

impl From<crate::storage::AggPoint> for AggPointBits {
    fn from(p: crate::storage::AggPoint) -> Self {
        AggPointBits([p.sum.to_bits(), p.min.to_bits(), p.max.to_bits()], p.count, p.anomaly_count)
    }
}

/// Writes `bytes` under the canonical name for `name` with the CRC of `bytes`.
fn put_with_crc(dir: &Path, mut name: SegmentName, bytes: &[u8]) -> PathBuf {
    name.crc = crc32c::crc32c(bytes);
    let path = dir.join(name.file_name());
    fs::write(&path, bytes).expect("write file");
    path
}

fn raw_name(start: i64) -> SegmentName {
    SegmentName { tier: 0, update_every: 1, start, res: 1, crc: 0 }
}

fn is_arrow(e: &SegmentFileError) -> bool {
    matches!(e, SegmentFileError::Arrow { .. })
}

#[test]
fn round_trip_every_tier_and_compression() {
    let d = TestDir::new("roundtrip");
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        for (seg, ids, ue) in [
            (raw_segment(7200), &RAW_IDS, 1),
            (plain_raw_segment(3600), &RAW_IDS, 1),
            (agg_segment(86_400), &AGG_IDS, 1),
            (plain_agg_segment(172_800), &AGG_IDS, 1),
        ] {
            let path = write_segment(&d.0, &seg, ue, compression).expect("write");
            let (name, back) = open_segment(&path).expect("open");
            assert_eq!((name.tier, name.update_every, name.start, name.res), (seg.tier, ue, seg.start, seg.res));
            assert_eq!(name.crc, crc32c::crc32c(&fs::read(&path).expect("read")), "{compression}");
            assert_same(&seg, &back, ids);
            assert!(back.run(77).is_none());
        }
    }
    let left: Vec<_> = fs::read_dir(&d.0).expect("ls").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(left.len(), 12, "no temp files left behind: {left:?}");
}

#[test]
fn uncompressed_open_is_zero_copy_and_compressed_is_not() {
    let d = TestDir::new("zerocopy");
    let cases = [(Compression::None, true), (Compression::Lz4, false), (Compression::Zstd, false)];
    for ((compression, mapped), plain) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
        let seg = if plain { plain_raw_segment(0) } else { raw_segment(0) };
        let path = write_segment(&d.0, &seg, 1, compression).expect("write");
        let (_, seg, range) = open_mapped(&path).expect("open");
        let ptr = if plain {
            let values = seg.batch.column_by_name("value").expect("value").as_fixed_size_list();
            values.values().as_primitive::<Float64Type>().values().as_ptr() as usize
        } else {
            seg.batch.column_by_name("encoded").expect("encoded").as_binary::<i64>().values().as_ptr() as usize
        };
        assert_eq!(range.contains(&ptr), mapped, "{compression}: value buffer at {ptr:#x}, mapping {range:x?}");
        if mapped {
            // Arrow stores a buffer that does not shrink uncompressed, so only
            // uncompressed files promise that every buffer is mapped.
            let ids = seg.batch.column(0).to_data().buffers()[0].as_ptr() as usize;
            assert!(range.contains(&ids), "metric_id buffer at {ids:#x}, mapping {range:x?}");
        }
        // The mapping is owned by the batch: dropping the file does not matter.
        fs::remove_file(&path).expect("unlink");
        assert_eq!(seg.run(3).expect("row").agg(1).sum, -6.5);
    }
}

#[test]
fn names_round_trip() {
    let name = SegmentName { tier: 2, update_every: 10, start: 1_700_000_000, res: 36_000, crc: 0xab };
    assert_eq!(name.file_name(), "t2-ue10-s1700000000-r36000-c000000ab.arrow");
    assert_eq!(parse_name(&name.file_name()), Some(name));
    let zero = SegmentName { tier: 0, update_every: 1, start: 0, res: 1, crc: u32::MAX };
    assert_eq!(parse_name(&zero.file_name()), Some(zero));
}

#[test]
fn unparsable_names_are_rejected() {
    for bad in [
        "",
        ".arrow",
        "notes.txt",
        "t0-ue1-s7200-r1.arrow",
        "t0-ue1-s7200-r1-c0000abcd.arrow.tmp",
        "t0-ue1-s7200-r1-c0000abcd",
        "t0-ue1-s7200-r1-c0000ABCD.arrow",
        "t0-ue1-s7200-r1-c0abcd.arrow",
        "t0-ue1-s7200-r1-c00000abcd.arrow",
        "t0-ue1-s7200-r1-c0000abcd-x.arrow",
        "t00-ue1-s7200-r1-c0000abcd.arrow",
        "t0-ue+1-s7200-r1-c0000abcd.arrow",
        "t0-ue1-s-7200-r1-c0000abcd.arrow",
        "t0-ue0-s7200-r1-c0000abcd.arrow",
        "t0-ue1-s7200-r0-c0000abcd.arrow",
        "t3-ue1-s7200-r1-c0000abcd.arrow",
        "t256-ue1-s7200-r1-c0000abcd.arrow",
        "ue1-t0-s7200-r1-c0000abcd.arrow",
        "t0-ue1-s99999999999999999999-r1-c0000abcd.arrow",
    ] {
        assert_eq!(parse_name(bad), None, "{bad:?}");
    }
    let path = Path::new("/nowhere/t0-ue1-s7200-r1.arrow");
    assert!(matches!(open_segment(path), Err(SegmentFileError::BadName { .. })));
}

#[test]
fn unnameable_segment_is_not_written() {
    let d = TestDir::new("unnameable");
    let err = write_segment(&d.0, &raw_segment(0), 0, Compression::None).expect_err("ue 0");
    assert!(matches!(err, SegmentFileError::BadName { .. }), "{err}");
    assert_eq!(fs::read_dir(&d.0).expect("ls").count(), 0);
}

#[test]
fn compression_parses_and_displays() {
    for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
        assert_eq!(c.to_string().parse::<Compression>(), Ok(c));
    }
    assert_eq!("LZ4".parse::<Compression>(), Err(UnknownCompression("LZ4".into())));
}

#[test]
fn flipped_byte_anywhere_fails_the_checksum() {
    let d = TestDir::new("flip");
    let good = write_segment(&d.0, &raw_segment(7200), 1, Compression::None).expect("write");
    let bytes = fs::read(&good).expect("read");
    let name = parse_name(good.file_name().and_then(|n| n.to_str()).expect("utf8")).expect("name");
    let n = bytes.len();
    for at in [0, 5, 8, n / 3, n / 2, n - 16, n - 10, n - 1] {
        let bad_dir = TestDir::new("flip-one");
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x40;
        let path = bad_dir.0.join(name.file_name());
        fs::write(&path, &flipped).expect("write");
        match open_segment(&path) {
            Err(SegmentFileError::ChecksumMismatch { expected, actual, .. }) => {
                assert_eq!(expected, name.crc);
                assert_eq!(actual, crc32c::crc32c(&flipped));
            }
            other => panic!("byte {at}: expected a checksum mismatch, got {other:?}"),
        }
    }
}

#[test]
fn load_dir_quarantines_a_flipped_file_and_keeps_the_good_ones() {
    let d = TestDir::new("flip-load");
    write_segment(&d.0, &raw_segment(0), 1, Compression::None).expect("write");
    write_segment(&d.0, &agg_segment(0), 1, Compression::Zstd).expect("write");
    let victim = write_segment(&d.0, &raw_segment(64), 1, Compression::Lz4).expect("write");
    let mut bytes = fs::read(&victim).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&victim, &bytes).expect("corrupt");

    let report = load_dir(&d.0, Some(&d.quarantine())).expect("load");
    assert_eq!(report.segments.len(), 2);
    assert_eq!(report.quarantined.len(), 1);
    let (dest, reason) = &report.quarantined[0];
    assert!(reason.contains("checksum mismatch"), "{reason}");
    assert_eq!(dest, &d.quarantine().join(victim.file_name().expect("name")));
    assert!(dest.exists() && !victim.exists());
    let kept: u64 =
        report.segments.iter().map(|(n, _)| fs::metadata(d.0.join(n.file_name())).expect("stat").len()).sum();
    assert_eq!(report.bytes, kept);
    assert_same(&report.segments[0].1, &raw_segment(0), &RAW_IDS);
}

#[test]
fn truncated_tail_fails_checksum_or_decode_and_is_quarantined() {
    let d = TestDir::new("truncate");
    let good = write_segment(&d.0, &raw_segment(0), 1, Compression::None).expect("write");
    let bytes = fs::read(&good).expect("read");
    fs::remove_file(&good).expect("rm");
    let short = &bytes[..bytes.len() - 7];
    // Under its old name the CRC catches it ...
    let old_name = d.0.join(good.file_name().expect("name"));
    fs::write(&old_name, short).expect("write");
    assert!(matches!(open_segment(&old_name), Err(SegmentFileError::ChecksumMismatch { .. })));
    // ... renamed with a matching CRC the decoder does.
    for cut in [bytes.len() - 1, bytes.len() / 2, 9, 1] {
        let path = put_with_crc(&d.0, raw_name(cut as i64), &bytes[..cut]);
        let err = open_segment(&path).expect_err("truncated");
        assert!(is_arrow(&err), "cut at {cut}: {err}");
    }
    let report = load_dir(&d.0, Some(&d.quarantine())).expect("load");
    assert!(report.segments.is_empty());
    assert_eq!(report.quarantined.len(), 5);
}

#[test]
fn garbage_appended_is_a_decode_error() {
    let d = TestDir::new("append");
    let good = write_segment(&d.0, &agg_segment(0), 1, Compression::None).expect("write");
    let mut bytes = fs::read(&good).expect("read");
    fs::remove_file(&good).expect("rm");
    bytes.extend_from_slice(b"\0garbage after the footer");
    let path = put_with_crc(&d.0, SegmentName { tier: 1, update_every: 1, start: 0, res: 60, crc: 0 }, &bytes);
    assert!(is_arrow(&open_segment(&path).expect_err("appended")));
}

#[test]
fn empty_file_is_a_decode_error_and_quarantined() {
    let d = TestDir::new("empty");
    let path = put_with_crc(&d.0, raw_name(0), &[]);
    assert!(path.ends_with("t0-ue1-s0-r1-c00000000.arrow"));
    assert!(is_arrow(&open_segment(&path).expect_err("empty")));
    let report = load_dir(&d.0, Some(&d.quarantine())).expect("load");
    assert_eq!(report.quarantined.len(), 1);
    assert!(report.quarantined[0].1.contains("bad magic"), "{}", report.quarantined[0].1);
}

#[test]
fn random_bytes_with_a_matching_crc_are_a_decode_error() {
    let d = TestDir::new("random");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let path = put_with_crc(&d.0, raw_name(0), &bytes);
    assert!(is_arrow(&open_segment(&path).expect_err("random")));
    // Right magic at both ends, garbage between.
    let mut framed = bytes.clone();
    framed[..6].copy_from_slice(b"ARROW1");
    let n = framed.len();
    framed[n - 6..].copy_from_slice(b"ARROW1");
    let path = put_with_crc(&d.0, raw_name(3600), &framed);
    assert!(is_arrow(&open_segment(&path).expect_err("framed random")));
    let report = load_dir(&d.0, Some(&d.quarantine())).expect("load");
    assert_eq!(report.quarantined.len(), 2);
}

#[test]
fn extra_column_is_a_schema_mismatch() {
    let d = TestDir::new("schema");
    let seg = raw_segment(0);
    let mut fields: Vec<Field> = seg.batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("extra", DataType::UInt32, false));
    let mut columns: Vec<ArrayRef> = seg.batch.columns().to_vec();
    columns.push(Arc::new(UInt32Array::from(vec![0, 1])));
    let schema = Schema::new_with_metadata(fields, seg.batch.schema().metadata().clone());
    let batch = RecordBatch::try_new(Arc::new(schema), columns).expect("batch");
    let odd = Segment::from_batch(0, 0, 1, batch).expect("from_batch ignores extra columns");
    let path = write_segment(&d.0, &odd, 1, Compression::None).expect("write");
    match open_segment(&path) {
        Err(SegmentFileError::SchemaMismatch { detail, .. }) => assert!(detail.contains("extra"), "{detail}"),
        other => panic!("expected a schema mismatch, got {other:?}"),
    }
}

#[test]
fn tier_in_name_must_match_schema() {
    let d = TestDir::new("tier");
    let path = write_segment(&d.0, &raw_segment(0), 1, Compression::None).expect("write");
    let name = parse_name(path.file_name().and_then(|n| n.to_str()).expect("utf8")).expect("name");
    let renamed = d.0.join(SegmentName { tier: 1, res: 60, ..name }.file_name());
    fs::rename(&path, &renamed).expect("rename");
    assert!(matches!(open_segment(&renamed), Err(SegmentFileError::SchemaMismatch { .. })));
    let report = load_dir(&d.0, Some(&d.quarantine())).expect("load");
    assert_eq!(report.quarantined.len(), 1);
    assert!(report.quarantined[0].1.contains("unexpected schema"));
}

#[test]
fn load_dir_removes_stray_temp_files_and_ignores_others() {
    let d = TestDir::new("tmp");
    write_segment(&d.0, &raw_segment(0), 1, Compression::None).expect("write");
    for stray in ["t0-ue1-s64-r1-4242-0.tmp", "junk.tmp"] {
        fs::write(d.0.join(stray), b"half a segment").expect("write stray");
    }
    fs::write(d.0.join("README"), b"keep me").expect("write other");
    fs::create_dir(d.0.join("sub.arrow")).expect("mkdir");
    let report = load_dir(&d.0, Some(&d.quarantine())).expect("load");
    assert_eq!(report.segments.len(), 1);
    assert_eq!(report.removed_tmp.len(), 2);
    assert!(report.quarantined.is_empty());
    assert!(!d.0.join("junk.tmp").exists() && d.0.join("README").exists());
}

#[test]
fn load_dir_sorts_by_update_every_then_start_and_tolerates_a_missing_dir() {
    let d = TestDir::new("sort");
    for (ue, start) in [(5, 640), (1, 128), (5, 0), (1, 0)] {
        let mut s = OpenSpan::new(start, ue, 8, true);
        s.write_raw(1, start + ue, Some(start as f64), false);
        write_segment(&d.0, &Segment::seal(0, &s).expect("seal"), ue, Compression::None).expect("write");
    }
    let report = load_dir(&d.0, Some(&d.quarantine())).expect("load");
    let order: Vec<_> = report.segments.iter().map(|(n, _)| (n.update_every, n.start)).collect();
    assert_eq!(order, [(1, 0), (1, 128), (5, 0), (5, 640)]);
    let missing = load_dir(&d.0.join("nope"), Some(&d.quarantine())).expect("missing dir");
    assert!(missing.segments.is_empty() && missing.quarantined.is_empty());
}

#[test]
fn quarantine_keeps_the_name_and_suffixes_collisions() {
    let d = TestDir::new("quarantine");
    let mut dests = Vec::new();
    for i in 0..3 {
        let path = d.0.join("t0-ue1-s0-r1-c00000000.arrow");
        fs::write(&path, [i]).expect("write");
        dests.push(quarantine(&path, &d.quarantine(), "test").expect("quarantine"));
        assert!(!path.exists());
    }
    let names: Vec<_> = dests.iter().map(|p| p.file_name().and_then(|n| n.to_str()).expect("utf8")).collect();
    assert_eq!(
        names,
        ["t0-ue1-s0-r1-c00000000.arrow", "t0-ue1-s0-r1-c00000000.arrow.1", "t0-ue1-s0-r1-c00000000.arrow.2"]
    );
    assert_eq!(fs::read(&dests[2]).expect("read"), [2]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(std::env::var("SEGMENT_PROP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)))]

    #[test]
    fn random_bytes_never_panic_open(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        crc_ok in any::<bool>(),
    ) {
        let d = TestDir::new("prop-random");
        let path = if crc_ok {
            put_with_crc(&d.0, raw_name(0), &bytes)
        } else {
            let path = d.0.join(raw_name(0).file_name());
            fs::write(&path, &bytes).expect("write");
            path
        };
        if let Err(e) = open_segment(&path) {
            prop_assert!(e.is_corruption(), "{e}");
        }
    }

    #[test]
    fn mutated_segment_with_fixed_crc_never_panics_open(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..6),
        compression in prop_oneof![Just(Compression::None), Just(Compression::Lz4), Just(Compression::Zstd)],
        kind in 0..3u8,
    ) {
        let d = TestDir::new("prop-mutate");
        let agg_name = SegmentName { tier: 1, update_every: 1, start: 0, res: 60, crc: 0 };
        let (seg, name, points) = match kind {
            0 => (raw_segment(0), raw_name(0), 64),
            1 => (agg_segment(0), agg_name, 16),
            _ => (plain_agg_segment(0), agg_name, 16),
        };
        let good = write_segment(&d.0, &seg, 1, compression).expect("write");
        let mut bytes = fs::read(&good).expect("read");
        fs::remove_file(&good).expect("rm");
        for (at, mask) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        let path = put_with_crc(&d.0, name, &bytes);
        match open_segment(&path) {
            Ok((_, seg)) => {
                // Whatever decoded must also be safe to read.
                prop_assert_eq!(seg.points, points);
                let ids = seg.batch.column(0).as_primitive::<arrow_array::types::UInt32Type>().clone();
                for m in ids.values().iter() {
                    let run = seg.run(*m).expect("listed row");
                    for i in 0..run.len {
                        let _ = (run.is_valid(i), run.counts(i), run.agg(i));
                    }
                }
            }
            Err(e) => prop_assert!(e.is_corruption(), "{}", e),
        }
    }
}

/// A record batch message whose row count and compressed-length prefixes were
/// forged together (the CRC recomputed): the declared sizes agree with each
/// other, so only the codec's expansion bound stands between the header and a
/// 100 GiB allocation that would abort the process.
#[test]
fn forged_row_count_and_length_prefix_are_refused_not_allocated() {
    const FORGED_ROWS: i64 = 1 << 40;
    const FORGED_LEN: i64 = 100 << 30;
    let d = TestDir::new("forged");
    for compression in [Compression::Lz4, Compression::Zstd] {
        let good = write_segment(&d.0, &plain_agg_segment(0), 1, compression).expect("write");
        let mut bytes = fs::read(&good).expect("read");
        fs::remove_file(&good).expect("rm");

        let len = bytes.len();
        let footer_len = read_footer_length(bytes[len - 10..].try_into().expect("trailer")).expect("footer length");
        let footer = arrow_ipc::root_as_footer(&bytes[len - 10 - footer_len..len - 10]).expect("footer");
        let block = footer.recordBatches().expect("blocks").get(0);
        let (off, meta_len) = (block.offset() as usize, block.metaDataLength() as usize);
        let message_at = off + 8; // continuation marker and length
        let rows_of = |bytes: &[u8]| {
            let message = arrow_ipc::root_as_message(&bytes[message_at..off + meta_len]).expect("message");
            message.header_as_record_batch().expect("record batch").length()
        };
        assert_eq!(rows_of(&bytes), 2);
        let at = (message_at..off + meta_len - 8)
            .find(|&i| {
                let mut probe = bytes.clone();
                probe[i..i + 8].copy_from_slice(&FORGED_ROWS.to_le_bytes());
                bytes[i..i + 8] == 2i64.to_le_bytes() && rows_of(&probe) == FORGED_ROWS
            })
            .expect("row count field");
        bytes[at..at + 8].copy_from_slice(&FORGED_ROWS.to_le_bytes());

        let message = arrow_ipc::root_as_message(&bytes[message_at..off + meta_len]).expect("message");
        let buffers: Vec<(usize, usize)> = message
            .header_as_record_batch()
            .and_then(|rb| rb.buffers())
            .expect("buffers")
            .iter()
            .map(|b| (off + meta_len + b.offset() as usize, b.length() as usize))
            .collect();
        let mut forged = 0;
        for (at, len) in buffers {
            if len >= 8 && bytes[at..at + 8] != (-1i64).to_le_bytes() {
                bytes[at..at + 8].copy_from_slice(&FORGED_LEN.to_le_bytes());
                forged += 1;
            }
        }
        assert!(forged > 0, "{compression}: no compressed buffer to forge");

        let path = put_with_crc(&d.0, SegmentName { tier: 1, update_every: 1, start: 0, res: 60, crc: 0 }, &bytes);
        let err = open_segment(&path).expect_err("forged sizes must not decode");
        assert!(err.is_corruption(), "{compression}: {err}");
        assert!(err.to_string().contains("uncompressed bytes"), "{compression}: {err}");
        fs::remove_file(&path).expect("rm forged");
    }
}
