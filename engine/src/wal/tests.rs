//! Storage tests for the log. Most of them damage the files on purpose: a
//! torn tail at every offset, garbage and zeros after the end, flipped bytes,
//! torn headers, stray and misnamed files. Each uses its own directory.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::*;

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TestDir(PathBuf);

impl TestDir {
    pub(super) fn new(name: &str) -> TestDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("strata-wal-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TestDir(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn opts(segment_bytes: u64) -> WalOptions {
    WalOptions { sync: SyncPolicy::Always, segment_bytes }
}

/// Record `i`'s payload: varied sizes (some empty) and contents.
pub(super) fn payload(i: u64) -> Vec<u8> {
    (0..(i * 7) % 53).map(|j| (i as u8).wrapping_mul(31).wrapping_add(j as u8)).collect()
}

pub(super) fn open(dir: &Path, opts: WalOptions, after: Lsn) -> (Wal, Vec<(Lsn, Vec<u8>)>, RecoveryReport) {
    Wal::open(dir, opts, after).expect("open")
}

/// Segment files in `dir`, oldest first.
pub(super) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    files.sort();
    files
}

/// A log holding records 1..=n with `payload(lsn)`.
fn write_log(dir: &Path, segment_bytes: u64, n: u64) {
    let (wal, recovered, _) = open(dir, opts(segment_bytes), 0);
    assert!(recovered.is_empty());
    for i in 1..=n {
        assert_eq!(wal.append(&payload(i)).expect("append"), i);
    }
}

fn expected(range: std::ops::RangeInclusive<u64>) -> Vec<(Lsn, Vec<u8>)> {
    range.map(|i| (i, payload(i))).collect()
}

/// Byte offset where record `lsn` starts in its segment.
fn record_offset(path: &Path, lsn: Lsn) -> u64 {
    let buf = fs::read(path).expect("read segment");
    let mut offset = SEGMENT_HEADER_LEN as usize;
    while let Ok(Some((rec, used))) = record::decode(&buf[offset..]) {
        if rec.lsn == lsn {
            return offset as u64;
        }
        offset += used;
    }
    panic!("lsn {lsn} not in {}", path.display());
}

fn flip_byte(path: &Path, at: u64) {
    let mut buf = fs::read(path).expect("read");
    buf[at as usize] ^= 0x5a;
    fs::write(path, buf).expect("write");
}

#[test]
fn wal_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Wal>();
}

#[test]
fn empty_log_starts_at_lsn_one() {
    let dir = TestDir::new("empty");
    let (wal, recovered, report) = open(dir.path(), opts(1 << 20), 0);
    assert!(recovered.is_empty());
    assert_eq!(report, RecoveryReport { records: 0, segments: 0, truncated: None });
    assert_eq!(wal.last_lsn(), 0);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    assert_eq!(fs::read(&files[0]).expect("read"), b"STRWAL01");
    assert_eq!(wal.append(b"first").expect("append"), 1);
}

#[test]
fn reopen_returns_every_record_in_order() {
    let dir = TestDir::new("reopen");
    write_log(dir.path(), 1 << 20, 100);
    let (wal, recovered, report) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!(recovered, expected(1..=100));
    assert_eq!(report, RecoveryReport { records: 100, segments: 1, truncated: None });
    assert_eq!(wal.last_lsn(), 100);
    assert_eq!(wal.append(b"next").expect("append"), 101);
}

#[test]
fn reopen_after_k_returns_only_later_records() {
    let dir = TestDir::new("after");
    write_log(dir.path(), 300, 40);
    assert!(segment_files(dir.path()).len() > 3);
    for k in 0..=40 {
        let (wal, recovered, _) = open(dir.path(), opts(300), k);
        assert_eq!(recovered, expected(k + 1..=40), "after = {k}");
        assert_eq!(wal.last_lsn(), 40);
    }
}

#[test]
fn rotation_names_segments_by_first_lsn() {
    let dir = TestDir::new("rotation");
    write_log(dir.path(), 200, 60);
    let files = segment_files(dir.path());
    assert!(files.len() >= 5, "{} segments", files.len());
    let mut next = 1;
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name, format!("{next:020}.wal"));
        let len = fs::metadata(file).expect("stat").len();
        let buf = fs::read(file).expect("read");
        let mut offset = SEGMENT_HEADER_LEN as usize;
        let mut count = 0;
        while let Ok(Some((rec, used))) = record::decode(&buf[offset..]) {
            assert_eq!(rec.lsn, next + count);
            offset += used;
            count += 1;
        }
        assert_eq!(offset as u64, len, "{name} has trailing bytes");
        assert!(len <= 200 || count == 1, "{name} is {len} bytes with {count} records");
        next += count;
    }
    assert_eq!(next, 61);
}

#[test]
fn record_bigger_than_a_segment_gets_its_own() {
    let dir = TestDir::new("oversize");
    let (wal, _, _) = open(dir.path(), opts(100), 0);
    wal.append(b"small").expect("append");
    wal.append(&[7u8; 500]).expect("append");
    wal.append(b"after").expect("append");
    assert_eq!(segment_files(dir.path()).len(), 3);
    drop(wal);
    let (_, recovered, _) = open(dir.path(), opts(100), 0);
    assert_eq!(recovered, vec![(1, b"small".to_vec()), (2, vec![7u8; 500]), (3, b"after".to_vec())]);
}

#[test]
fn record_too_large_is_refused() {
    let dir = TestDir::new("too-large");
    let (wal, _, _) = open(dir.path(), opts(1 << 20), 0);
    let huge = vec![0u8; MAX_RECORD_BYTES + 1];
    match wal.append(&huge) {
        Err(WalError::RecordTooLarge { len, max }) => assert_eq!((len, max), (MAX_RECORD_BYTES + 1, MAX_RECORD_BYTES)),
        other => panic!("{other:?}"),
    }
    assert_eq!(wal.append(b"fine").expect("append"), 1);
}

#[test]
fn checkpoint_deletes_only_covered_segments() {
    let dir = TestDir::new("checkpoint");
    let (wal, _, _) = open(dir.path(), opts(200), 0);
    for i in 1..=60 {
        wal.append(&payload(i)).expect("append");
    }
    let before = segment_files(dir.path());
    wal.checkpoint(30).expect("checkpoint");
    let after = segment_files(dir.path());
    assert!(after.len() < before.len());
    // The oldest kept segment must still hold lsn 31; every deleted one ended at or before 30.
    let first_kept: Lsn = after[0].file_stem().and_then(|s| s.to_str()).expect("stem").parse().expect("lsn");
    assert!(first_kept <= 31, "deleted a segment holding lsn 31 (first kept {first_kept})");
    let next_after_deleted = before.iter().position(|p| *p == after[0]).expect("kept file existed");
    assert!(next_after_deleted > 0);
    drop(wal);

    let (wal, recovered, _) = open(dir.path(), opts(200), 30);
    assert_eq!(recovered, expected(31..=60));
    assert_eq!(wal.append(b"x").expect("append"), 61);
    // Reopening with an older checkpoint than the one applied still works,
    // starting from the oldest record kept.
    drop(wal);
    let (_, recovered, _) = open(dir.path(), opts(200), 0);
    assert_eq!(recovered.first().map(|r| r.0), Some(first_kept));
    assert_eq!(recovered.last().map(|r| r.0), Some(61));
}

#[test]
fn checkpoint_never_deletes_the_active_segment() {
    let dir = TestDir::new("checkpoint-all");
    let (wal, _, _) = open(dir.path(), opts(200), 0);
    for i in 1..=30 {
        wal.append(&payload(i)).expect("append");
    }
    wal.checkpoint(u64::MAX).expect("checkpoint");
    assert_eq!(segment_files(dir.path()).len(), 1);
    drop(wal);
    let (wal, recovered, _) = open(dir.path(), opts(200), 30);
    assert!(recovered.is_empty());
    assert_eq!(wal.append(b"x").expect("append"), 31);
}

/// The probe's case: a checkpoint covers the records of a big active
/// segment, later records follow, and then a byte of a covered record is
/// damaged. Rolled at the checkpoint, the covered records are deleted with
/// their segment, so nothing later is lost.
#[test]
fn roll_lets_a_checkpoint_delete_every_record_it_covers() {
    let dir = TestDir::new("roll");
    let (wal, _, _) = open(dir.path(), opts(1 << 20), 0);
    for i in 1..=20 {
        wal.append(&payload(i)).expect("append");
    }
    let first = segment_files(dir.path());
    assert_eq!(first.len(), 1, "all in the active segment");
    wal.roll().expect("roll");
    wal.roll().expect("a second roll with no record in between is a no-op");
    assert_eq!(segment_files(dir.path()).len(), 2);
    for i in 21..=30 {
        assert_eq!(wal.append(&payload(i)).expect("append"), i);
    }
    wal.checkpoint(20).expect("checkpoint");
    let left = segment_files(dir.path());
    assert_eq!(left.len(), 1, "the covered segment is gone");
    assert!(!left.contains(&first[0]));
    assert_eq!(record_offset(&left[0], 21), SEGMENT_HEADER_LEN, "the next record opens the new segment");
    drop(wal);
    let (_, recovered, report) = open(dir.path(), opts(1 << 20), 20);
    assert_eq!(recovered, expected(21..=30));
    assert!(report.truncated.is_none());
}

/// A roll fsyncs the segment it closes (sealed segments are whole on
/// disk, as the sync leaders assume), and rolls once per checkpoint: while
/// the segment it closed awaits one (checkpoints that keep failing), more
/// rolls are no-ops instead of a segment each.
#[test]
fn a_roll_syncs_what_it_closes_and_waits_for_its_checkpoint() {
    let dir = TestDir::new("roll-sync");
    let interval = WalOptions { sync: SyncPolicy::Interval(Duration::from_secs(3600)), segment_bytes: 1 << 20 };
    let (wal, _, _) = open(dir.path(), interval, 0);
    for i in 1..=5 {
        wal.write(&payload(i)).expect("write");
    }
    let before = wal.fsyncs();
    wal.roll().expect("roll");
    assert_eq!(wal.fsyncs() - before, 1);
    assert_eq!(wal.shared.lock().synced_lsn, 5, "the closed segment is durable");
    for i in 6..=8 {
        wal.write(&payload(i)).expect("write");
        wal.roll().expect("a roll awaiting its checkpoint");
    }
    assert_eq!(segment_files(dir.path()).len(), 2, "no segment per roll while the first awaits its checkpoint");
    wal.checkpoint(5).expect("checkpoint");
    assert_eq!(segment_files(dir.path()).len(), 1);
    wal.roll().expect("roll");
    assert_eq!(segment_files(dir.path()).len(), 2, "covered, the next roll closes a segment again");
    assert_eq!(wal.shared.lock().synced_lsn, 8);
}

#[test]
fn checkpoint_while_appending_keeps_the_log_consistent() {
    let dir = TestDir::new("checkpoint-race");
    let wal_opts = WalOptions { sync: SyncPolicy::Interval(Duration::from_secs(3600)), segment_bytes: 256 };
    let (wal, _, _) = open(dir.path(), wal_opts, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 1..=400 {
                wal.append(&payload(i)).expect("append");
            }
        });
        s.spawn(|| {
            for _ in 0..50 {
                wal.checkpoint(wal.last_lsn().saturating_sub(20)).expect("checkpoint");
                std::thread::yield_now();
            }
        });
    });
    wal.sync().expect("sync");
    drop(wal);
    let (_, recovered, report) = open(dir.path(), wal_opts, 380);
    assert_eq!(report.truncated, None);
    assert_eq!(recovered, expected(381..=400));
}

#[test]
fn after_beyond_log_end_continues_after_it() {
    // Interval policy plus a power loss can leave the engine's checkpoint
    // ahead of the log; lsns must still never be reused.
    let dir = TestDir::new("after-beyond");
    write_log(dir.path(), 200, 20);
    let (wal, recovered, _) = open(dir.path(), opts(200), 50);
    assert!(recovered.is_empty());
    assert_eq!(wal.last_lsn(), 50);
    assert_eq!(wal.append(b"x").expect("append"), 51);
    assert_eq!(segment_files(dir.path()), vec![segment::segment_path(dir.path(), 51)]);
    drop(wal);
    let (_, recovered, _) = open(dir.path(), opts(200), 50);
    assert_eq!(recovered, vec![(51, b"x".to_vec())]);
}

#[test]
fn torn_tail_at_every_offset_is_truncated() {
    let dir = TestDir::new("torn");
    write_log(dir.path(), 400, 30);
    let files = segment_files(dir.path());
    let last = files.last().expect("a segment").clone();
    let pristine = fs::read(&last).expect("read");
    let start = record_offset(&last, 30);
    assert!(pristine.len() as u64 - start > 16, "the last record should have a payload");
    for cut in start..pristine.len() as u64 {
        fs::write(&last, &pristine[..cut as usize]).expect("write torn");
        let (wal, recovered, report) = open(dir.path(), opts(400), 0);
        assert_eq!(recovered, expected(1..=29), "cut at {cut}");
        if cut == start {
            // The whole record is gone: a clean end, nothing to cut.
            assert_eq!(report.truncated, None);
        } else {
            let t = report.truncated.expect("truncation reported");
            assert_eq!((t.segment.as_path(), t.offset, t.dropped_bytes), (last.as_path(), start, cut - start));
            assert!(t.removed_segments.is_empty());
        }
        assert_eq!(fs::metadata(&last).expect("stat").len(), start, "cut at {cut}");
        assert_eq!(wal.append(&payload(30)).expect("append"), 30);
        drop(wal);
        let (_, recovered, report) = open(dir.path(), opts(400), 0);
        assert_eq!(recovered, expected(1..=30));
        assert_eq!(report.truncated, None);
    }
    assert_eq!(segment_files(dir.path()), files);
    assert!(!dir.path().join(DAMAGED_DIR).exists(), "a crash's torn tail is expected: no copy kept");
}

#[test]
fn garbage_after_last_record_is_truncated() {
    let dir = TestDir::new("garbage");
    write_log(dir.path(), 1 << 20, 10);
    let last = segment_files(dir.path()).pop().expect("segment");
    let good_len = fs::metadata(&last).expect("stat").len();
    let mut buf = fs::read(&last).expect("read");
    buf.extend_from_slice(b"this is not a record, just junk on the end of the file");
    fs::write(&last, &buf).expect("write");
    let (wal, recovered, report) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!(recovered, expected(1..=10));
    let t = report.truncated.expect("truncated");
    assert_eq!((t.offset, t.dropped_bytes), (good_len, buf.len() as u64 - good_len));
    assert_eq!(fs::metadata(&last).expect("stat").len(), good_len);
    assert_eq!(wal.append(b"x").expect("append"), 11);
    // Not what a crash leaves: the segment was copied aside, whole.
    let kept: Vec<PathBuf> = fs::read_dir(dir.path().join(DAMAGED_DIR))
        .expect("damaged/ made")
        .flat_map(|d| fs::read_dir(d.expect("entry").path()).expect("read").map(|e| e.expect("entry").path()))
        .collect();
    assert_eq!(kept.iter().map(|k| fs::read(k).expect("read")).collect::<Vec<_>>(), vec![buf]);
}

#[test]
fn zero_filled_tail_is_truncated() {
    // What some file systems leave after a crash: the size grew, the data
    // did not arrive.
    let dir = TestDir::new("zeros");
    write_log(dir.path(), 1 << 20, 10);
    let last = segment_files(dir.path()).pop().expect("segment");
    let good_len = fs::metadata(&last).expect("stat").len();
    fs::OpenOptions::new().write(true).open(&last).expect("open").set_len(good_len + 4096).expect("extend");
    let (_, recovered, report) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!(recovered, expected(1..=10));
    assert_eq!(report.truncated.map(|t| (t.offset, t.dropped_bytes)), Some((good_len, 4096)));
    assert!(!dir.path().join(DAMAGED_DIR).exists(), "a crash's zeros are expected: nothing set aside");
}

#[test]
fn flipped_byte_in_last_record_payload_is_truncated() {
    let dir = TestDir::new("flip-last");
    write_log(dir.path(), 1 << 20, 10);
    let last = segment_files(dir.path()).pop().expect("segment");
    let start = record_offset(&last, 10);
    let len = fs::metadata(&last).expect("stat").len();
    flip_byte(&last, len - 1);
    let (wal, recovered, report) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!(recovered, expected(1..=9));
    assert_eq!(report.truncated.map(|t| (t.offset, t.dropped_bytes)), Some((start, len - start)));
    assert_eq!(wal.append(b"x").expect("append"), 10);
}

#[test]
fn flipped_byte_in_sealed_segment_drops_later_segments() {
    let dir = TestDir::new("flip-middle");
    write_log(dir.path(), 300, 60);
    let files = segment_files(dir.path());
    assert!(files.len() >= 4);
    let victim = &files[1];
    let first: Lsn = victim.file_stem().and_then(|s| s.to_str()).expect("stem").parse().expect("lsn");
    let bad_lsn = first + 2;
    let at = record_offset(victim, bad_lsn);
    flip_byte(victim, at + 17); // inside the payload, so only the crc notices
    let later_bytes: u64 = files[2..].iter().map(|f| fs::metadata(f).expect("stat").len()).sum();
    let victim_len = fs::metadata(victim).expect("stat").len();
    let sizes: Vec<u64> = files[1..].iter().map(|f| fs::metadata(f).expect("stat").len()).collect();

    let (wal, recovered, report) = open(dir.path(), opts(300), 0);
    assert_eq!(recovered, expected(1..=bad_lsn - 1));
    let t = report.truncated.expect("truncated");
    assert_eq!(t.segment, *victim);
    assert_eq!(t.offset, at);
    assert_eq!(t.dropped_bytes, victim_len - at + later_bytes);
    assert_eq!(t.removed_segments, files[2..].to_vec());
    assert_eq!(segment_files(dir.path()), files[..2].to_vec());
    // The damaged segment and every later one were copied aside, whole.
    let kept: Vec<PathBuf> =
        fs::read_dir(dir.path().join(DAMAGED_DIR)).expect("damaged/ made").map(|e| e.expect("entry").path()).collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    for (f, len) in files[1..].iter().zip(&sizes) {
        let copy = kept[0].join(f.file_name().expect("name"));
        assert_eq!(fs::metadata(&copy).map(|m| m.len()).ok(), Some(*len), "{copy:?}");
    }
    assert_eq!(wal.append(b"x").expect("append"), bad_lsn);
    drop(wal);
    let (_, recovered, report) = open(dir.path(), opts(300), 0);
    assert_eq!(report.truncated, None);
    assert_eq!(recovered.len() as u64, bad_lsn);
}

#[test]
fn torn_header_from_interrupted_rotation_is_rewritten() {
    let dir = TestDir::new("torn-header");
    write_log(dir.path(), 1 << 20, 5);
    let stray = segment::segment_path(dir.path(), 6);
    fs::write(&stray, b"STR").expect("write");
    let (wal, recovered, report) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!(recovered, expected(1..=5));
    let t = report.truncated.expect("truncated");
    assert_eq!((t.segment.as_path(), t.offset, t.dropped_bytes), (stray.as_path(), 0, 3));
    assert_eq!(fs::read(&stray).expect("read"), b"STRWAL01");
    assert_eq!(wal.append(b"x").expect("append"), 6);
    drop(wal);
    let (_, recovered, _) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!(recovered.last(), Some(&(6, b"x".to_vec())));
}

/// A flipped magic byte or record length in the newest segment leaves
/// whole, acknowledged records behind it: damage, not a crash's tail. The
/// segment is copied aside before it is cut (it was cut with a warning and
/// no copy, the records lost without a trace).
#[test]
fn whole_records_behind_a_damaged_header_or_length_are_set_aside() {
    for (name, at, bit) in [("magic", 2usize, 0x01u8), ("length", 8 + 1, 0x01)] {
        let dir = TestDir::new(&format!("flip-{name}"));
        write_log(dir.path(), 1 << 20, 5);
        let files = segment_files(dir.path());
        let newest = files.last().expect("a segment").clone();
        let whole = fs::read(&newest).expect("read");
        let mut bytes = whole.clone();
        bytes[at] ^= bit;
        fs::write(&newest, &bytes).expect("write");
        let (_, _, report) = open(dir.path(), opts(1 << 20), 0);
        let t = report.truncated.expect("truncated");
        assert_eq!(t.segment, newest, "{name}");
        let kept: Vec<PathBuf> = fs::read_dir(dir.path().join(DAMAGED_DIR))
            .unwrap_or_else(|e| panic!("{name}: damaged/ made: {e}"))
            .map(|e| e.expect("entry").path())
            .collect();
        let copy = kept[0].join(newest.file_name().expect("name"));
        assert_eq!(fs::read(&copy).expect("the copy"), bytes, "{name}: copied as found");
    }
}

#[test]
fn misnamed_segment_after_a_gap_is_removed() {
    let dir = TestDir::new("gap");
    write_log(dir.path(), 200, 40);
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    fs::remove_file(&files[1]).expect("remove");
    let next: Lsn = files[1].file_stem().and_then(|s| s.to_str()).expect("stem").parse().expect("lsn");
    let (wal, recovered, report) = open(dir.path(), opts(200), 0);
    assert_eq!(recovered, expected(1..=next - 1));
    let t = report.truncated.expect("truncated");
    assert_eq!((t.segment.as_path(), t.offset), (files[2].as_path(), 0));
    assert_eq!(segment_files(dir.path()), vec![files[0].clone()]);
    assert_eq!(wal.append(b"x").expect("append"), next);
}

#[test]
fn stray_files_are_left_alone() {
    let dir = TestDir::new("stray");
    write_log(dir.path(), 1 << 20, 3);
    let strays = ["README", "notes.wal", "42.wal", "00000000000000000001.wal.bak"];
    for name in strays {
        fs::write(dir.path().join(name), b"not mine").expect("write stray");
    }
    let (wal, recovered, report) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!((recovered, report.truncated), (expected(1..=3), None));
    wal.checkpoint(u64::MAX).expect("checkpoint");
    for name in strays {
        assert_eq!(fs::read(dir.path().join(name)).expect("stray kept"), b"not mine");
    }
}

#[test]
fn other_format_version_is_refused_untouched() {
    let dir = TestDir::new("version");
    write_log(dir.path(), 1 << 20, 3);
    let seg = segment_files(dir.path()).pop().expect("segment");
    let mut buf = fs::read(&seg).expect("read");
    buf[..8].copy_from_slice(b"STRWAL02");
    buf.extend_from_slice(b"newer format data this build cannot read");
    fs::write(&seg, &buf).expect("write");
    match Wal::open(dir.path(), opts(1 << 20), 0) {
        Err(WalError::UnsupportedVersion { segment, version, .. }) => {
            assert_eq!((segment, version.as_str()), (seg.clone(), "02"))
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("opened a log of another version"),
    }
    assert_eq!(fs::read(&seg).expect("read"), buf);
}

#[test]
fn concurrent_appends_are_group_committed() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 100;
    let dir = TestDir::new("group");
    let (wal, _, _) = open(dir.path(), opts(16 << 10), 0);
    let lsns: Vec<Vec<(Lsn, Vec<u8>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let wal = &wal;
                s.spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            let rec = format!("thread {t} record {i}").into_bytes();
                            (wal.append(&rec).expect("append"), rec)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("appender")).collect()
    });
    let total = THREADS * PER_THREAD;
    let mut written: Vec<(Lsn, Vec<u8>)> = lsns.into_iter().flatten().collect();
    let unique: HashSet<Lsn> = written.iter().map(|r| r.0).collect();
    assert_eq!(unique.len() as u64, total, "lsns were reused");
    written.sort();
    assert_eq!(written.first().map(|r| r.0), Some(1));
    assert_eq!(written.last().map(|r| r.0), Some(total));
    let fsyncs = wal.fsyncs();
    assert!(fsyncs < total, "{fsyncs} fsyncs for {total} records: no group commit");
    drop(wal);
    let (_, recovered, _) = open(dir.path(), opts(16 << 10), 0);
    assert_eq!(recovered, written);
}

#[test]
fn interval_records_are_durable_after_sync() {
    let dir = TestDir::new("interval");
    let wal_opts = WalOptions { sync: SyncPolicy::Interval(Duration::from_secs(3600)), segment_bytes: 1 << 20 };
    let (wal, _, _) = open(dir.path(), wal_opts, 0);
    for i in 1..=20 {
        wal.append(&payload(i)).expect("append");
    }
    assert_eq!(wal.fsyncs(), 0, "Interval must not fsync in append");
    wal.sync().expect("sync");
    assert_eq!(wal.fsyncs(), 1);
    wal.sync().expect("sync");
    assert_eq!(wal.fsyncs(), 1, "nothing new to sync");
    drop(wal);
    let (_, recovered, _) = open(dir.path(), wal_opts, 0);
    assert_eq!(recovered, expected(1..=20));
}

#[test]
fn interval_thread_syncs_in_the_background() {
    let dir = TestDir::new("interval-thread");
    let wal_opts = WalOptions { sync: SyncPolicy::Interval(Duration::from_millis(10)), segment_bytes: 1 << 20 };
    let (wal, _, _) = open(dir.path(), wal_opts, 0);
    wal.append(b"x").expect("append");
    let deadline = Instant::now() + Duration::from_secs(10);
    while wal.fsyncs() == 0 {
        assert!(Instant::now() < deadline, "background sync never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Idle: nothing unsynced, so no more fsyncs.
    let settled = wal.fsyncs();
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(wal.fsyncs(), settled);
}

/// A write that finds the disk full (`/dev/full` stands in for the segment:
/// every write there fails with ENOSPC) poisons the log; every later call
/// names that first failure, says it was for want of space and that a
/// restart recovers, and the reopened log still holds every record
/// acknowledged before it.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_poisons_the_log_and_says_so() {
    let dir = TestDir::new("enospc");
    let (wal, _, _) = open(dir.path(), opts(1 << 20), 0);
    for i in 1..=3 {
        assert_eq!(wal.append(&payload(i)).expect("append"), i);
    }
    assert_eq!(wal.failure(), None);
    let healthy = {
        let mut st = wal.shared.lock();
        let full = fs::OpenOptions::new().append(true).open("/dev/full").expect("open /dev/full");
        std::mem::replace(&mut st.active.file, Arc::new(full))
    };
    let err = wal.append(&payload(4)).expect_err("the disk is full");
    assert!(matches!(err, WalError::Io { op: "write", .. }), "{err}");
    assert!(err.is_out_of_space(), "{err}");
    assert_eq!(err.kind(), crate::error::ErrorKind::StorageFull);
    let failure = wal.failure().expect("the log records its failure");
    assert!(failure.out_of_space && failure.op == "write", "{failure:?}");
    // Space comes back, but the log stays shut: unsynced pages may be gone.
    wal.shared.lock().active.file = healthy;
    let again = wal.append(&payload(5)).expect_err("poisoned");
    assert!(matches!(&again, WalError::Poisoned { cause } if *cause == failure), "{again}");
    assert_eq!(again.kind(), crate::error::ErrorKind::StorageFull);
    let msg = again.to_string();
    assert!(
        msg.contains("No space left") && msg.contains("restart strata") && msg.contains("free disk space"),
        "{msg}"
    );
    drop(wal);
    let (wal, records, _) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!(records, (1..=3).map(|i| (i, payload(i))).collect::<Vec<_>>());
    assert_eq!(wal.append(&payload(4)).expect("a fresh open takes writes"), 4);
}

/// A panic while the log's lock is held poisons it, with a cause to show.
#[test]
fn a_panic_under_the_lock_poisons_the_log() {
    let dir = TestDir::new("panic");
    let (wal, _, _) = open(dir.path(), opts(1 << 20), 0);
    let wal = std::sync::Arc::new(wal);
    let w = wal.clone();
    let _ = std::thread::spawn(move || {
        let _st = w.shared.state.lock();
        panic!("under the WAL lock");
    })
    .join();
    let err = wal.append(b"x").expect_err("poisoned");
    assert!(matches!(&err, WalError::Poisoned { cause } if cause.op == "lock" && !cause.out_of_space), "{err}");
    assert_eq!(err.kind(), crate::error::ErrorKind::Internal);
    assert!(err.to_string().contains("its cause is fixed"), "{err}");
}

/// The newest segment deleted by hand (or every segment): the segments
/// left cannot tell, so the marker the log wrote when it created that
/// segment does, and the start refuses, naming the segment and the way
/// out. Removing the marker starts without those records; a log of an
/// earlier build (no marker) opens as before.
#[test]
fn a_missing_newest_segment_is_refused_not_silently_dropped() {
    let dir = TestDir::new("missing-newest");
    let (wal, _, _) = open(dir.path(), opts(1 << 20), 0);
    for i in 0..5 {
        wal.append(&payload(i)).expect("append");
    }
    wal.roll().expect("roll");
    for i in 5..8 {
        wal.append(&payload(i)).expect("append");
    }
    drop(wal);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let newest = files.last().expect("a segment").clone();
    let moved = dir.path().join("newest.bak");
    fs::rename(&newest, &moved).expect("delete the newest by hand");
    for attempt in 0..2 {
        let Err(e) = Wal::open(dir.path(), opts(1 << 20), 0) else { panic!("start {attempt} must refuse") };
        let text = e.to_string();
        assert!(matches!(e, WalError::MissingSegment { .. }), "{text}");
        assert!(text.contains(&newest.display().to_string()) && text.contains("NEWEST"), "{text}");
    }
    // Every segment gone: refused too.
    fs::rename(&files[0], dir.path().join("oldest.bak")).expect("delete the rest");
    assert!(matches!(Wal::open(dir.path(), opts(1 << 20), 0), Err(WalError::MissingSegment { .. })));
    // Put back, it opens with every record.
    fs::rename(dir.path().join("oldest.bak"), &files[0]).expect("restore");
    fs::rename(&moved, &newest).expect("restore");
    let (wal, records, _) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!(records.len(), 8);
    drop(wal);
    // The operator's way out: without the marker, the start goes on without the records.
    fs::rename(&newest, &moved).expect("delete again");
    fs::remove_file(dir.path().join("NEWEST")).expect("remove the marker");
    let (wal, records, _) = open(dir.path(), opts(1 << 20), 0);
    assert_eq!(records.len(), 5, "the first segment's records");
    drop(wal);
}
