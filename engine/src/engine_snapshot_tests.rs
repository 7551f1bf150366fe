//! The data dir across starts: what a checkpoint leaves in the WAL and
//! the snapshot, and the starts that must refuse rather than lose data.

use super::*;

/// A start of `dir` at the clock [`open`] uses, which may refuse.
fn try_start(dir: &TempDir) -> crate::error::Result<(Engine, crate::persist::Recovery)> {
    try_open_at(dir, T0 + BATCHES * SECS + 1)
}

/// After a checkpoint the WAL holds no record it covers (the probe's case:
/// damage in such records, left in the active segment, cut off the
/// acknowledged batches after them at the next start), and a restart
/// replays exactly the batches after it.
#[test]
fn a_checkpoint_leaves_no_covered_record_in_the_wal() {
    let dir = TempDir::fresh("wal-rolled");
    let engine = open(&dir);
    for k in 0..5 {
        engine.ingest(&batch(0, k)).expect("ingest");
    }
    engine.checkpoint().expect("checkpoint");
    for k in 5..8 {
        engine.ingest(&batch(0, k)).expect("ingest");
    }
    let want = {
        let st = engine.read().expect("read");
        st.catalog.registry.metrics.len()
    };
    drop(engine);
    let snapshot: u64 = std::fs::read_dir(dir.0.join("meta"))
        .expect("meta")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .max()
        .expect("a snapshot");
    let first = crate::wal::first_lsn(&dir.0.join("wal")).expect("a WAL segment");
    assert!(first > snapshot, "the oldest segment starts at {first}, after snapshot {snapshot}");
    let (engine, rec) = try_start(&dir).expect("reopen");
    assert_eq!(rec.replayed_records, 3, "the three batches after the checkpoint");
    assert_eq!(engine.read().expect("read").catalog.registry.metrics.len(), want);
}

/// A damaged open-span file of the snapshot: every start refuses, naming
/// the file and what to do, and leaves it in place (the probe saw the
/// first start move it to quarantine and the second start go on without
/// the open hour). Once the operator moves it away, the start goes on.
#[test]
fn a_damaged_snapshot_is_refused_at_every_start_until_moved() {
    let dir = TempDir::fresh("snapshot-damaged");
    let engine = open(&dir);
    for k in 0..3 {
        engine.ingest(&batch(0, k)).expect("ingest");
    }
    engine.checkpoint().expect("checkpoint");
    drop(engine);
    let snap =
        std::fs::read_dir(dir.0.join("meta")).expect("meta").flatten().map(|e| e.path()).max().expect("a snapshot");
    let file = std::fs::read_dir(&snap)
        .expect("snapshot")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("t0-") && n.ends_with(".arrow")))
        .expect("the open hour's file");
    let mut bytes = std::fs::read(&file).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(&file, bytes).expect("damage");
    let start = || try_start(&dir);
    for attempt in 0..2 {
        let Err(e) = start() else { panic!("start {attempt} must refuse the damaged snapshot") };
        let text = e.to_string();
        assert!(text.contains(&file.display().to_string()) && text.contains("backup"), "{text}");
        assert!(file.exists(), "the file stays where it is");
    }
    std::fs::rename(&file, dir.0.join("set-aside.arrow")).expect("move it away");
    assert!(start().is_ok(), "starts without it once the operator moved it");
}

/// A checkpoint at the lsn of the last one (no record in between) never
/// replaces that snapshot in place: it takes the next name, and only then
/// is the old one removed, so a crash between the two always leaves a
/// complete snapshot (before, the old one was removed first, and a start
/// without any snapshot deletes every sealed file as never listed).
#[test]
fn a_snapshot_at_the_same_lsn_takes_the_next_name() {
    let dir = TempDir::fresh("snapshot-same-lsn");
    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.0.join("meta"))
            .expect("meta")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let engine = open(&dir);
    for k in 0..3 {
        engine.ingest(&batch(0, k)).expect("ingest");
    }
    engine.checkpoint().expect("checkpoint");
    let first = names();
    assert_eq!(first.len(), 1);
    engine.checkpoint().expect("the same lsn again");
    assert_eq!(names(), vec![format!("{}.1", first[0])]);
    engine.checkpoint().expect("and again");
    assert_eq!(names(), vec![format!("{}.2", first[0])]);
    let want = engine.read().expect("read").catalog.registry.metrics.len();
    drop(engine);
    // The crash window: the old snapshot still beside the new one, and a
    // named snapshot that lost its manifest (left alone, ignored).
    let meta = dir.0.join("meta");
    let newest = meta.join(names().pop().expect("a snapshot"));
    let older = meta.join(&first[0]);
    std::fs::create_dir(&older).expect("older");
    for f in std::fs::read_dir(&newest).expect("newest").flatten() {
        std::fs::copy(f.path(), older.join(f.file_name())).expect("copy");
    }
    let broken = meta.join(format!("{}.9", first[0]));
    std::fs::create_dir(&broken).expect("broken");
    let engine = open(&dir);
    assert_eq!(engine.read().expect("read").catalog.registry.metrics.len(), want);
    assert!(broken.exists(), "a named snapshot without manifest is not deleted at start");
}

/// With the snapshot gone after a checkpoint deleted the WAL it covered,
/// a start refuses (naming the gap) instead of replaying a log with a hole
/// and deleting every sealed file as never listed.
#[test]
fn a_lost_snapshot_is_refused_not_replaced_by_a_hole() {
    let dir = TempDir::fresh("snapshot-lost");
    let engine = open(&dir);
    for k in 0..3 {
        engine.ingest(&batch(0, k)).expect("ingest");
    }
    engine.checkpoint().expect("checkpoint");
    engine.ingest(&batch(0, 3)).expect("ingest");
    drop(engine);
    std::fs::rename(dir.0.join("meta"), dir.0.join("meta-aside")).expect("lose the snapshot");
    std::fs::create_dir(dir.0.join("meta")).expect("empty meta");
    let start = || try_start(&dir);
    let Err(e) = start() else { panic!("a start without the snapshot must refuse") };
    assert!(e.to_string().contains("WAL starts at record"), "{e}");
    std::fs::remove_dir(dir.0.join("meta")).expect("empty meta");
    std::fs::rename(dir.0.join("meta-aside"), dir.0.join("meta")).expect("restore it");
    assert!(start().is_ok(), "starts again once the snapshot is back");
}
