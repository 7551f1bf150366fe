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
        st.catalog.registry().metrics().len()
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
    assert_eq!(engine.read().expect("read").catalog.registry().metrics().len(), want);
}

/// A damaged open-span file of the snapshot: every start refuses, naming
/// the file and what to do, and leaves it in place (the probe saw the
/// first start move it to quarantine and the second start go on without
/// the open hour). Once the operator moves it away, the start goes on and
/// reports the file as missing (the server logs it as data lost).
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
    let (_, rec) = start().expect("starts without it once the operator moved it");
    assert_eq!(rec.open_missing, [file], "the loss is reported");
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
    let want = engine.read().expect("read").catalog.registry().metrics().len();
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
    assert_eq!(engine.read().expect("read").catalog.registry().metrics().len(), want);
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

/// One flipped bit in the snapshot's manifest or catalog that still parses
/// (a head's `newest` moved centuries ahead, a node renamed `client-0` ->
/// `client-1`: the probe's cases) is refused at start, naming the file, with
/// every sealed file left in place; before the checksums the first start
/// deleted the sealed hours as never listed, or answered with rows moved to
/// other metrics. A snapshot of an earlier build (no checksums file) still
/// opens, and the next checkpoint writes one.
#[test]
fn a_flipped_bit_in_the_manifest_or_catalog_is_refused_and_deletes_nothing() {
    const CHUNK: i64 = 600;
    let dir = TempDir::fresh("snapshot-sums");
    let end = T0 + 3 * 3600 + CHUNK;
    let engine = open_at(&dir, end);
    for k in 0..(end - T0) / CHUNK {
        engine.ingest(&batch_of(0, k, CHUNK)).expect("ingest");
    }
    engine.checkpoint().expect("checkpoint");
    let want = sums_over(&engine, 3 * 3600);
    drop(engine);
    let snap =
        std::fs::read_dir(dir.0.join("meta")).expect("meta").flatten().map(|e| e.path()).max().expect("a snapshot");
    let sealed = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.0.join("tier0"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    let before = sealed();
    assert!(before.len() >= 2, "sealed hours on disk: {before:?}");
    // Flips one bit of the first `from` after `anchor`, keeping valid JSON.
    let flip = |file: &str, anchor: &str, from: u8, to: u8| {
        let path = snap.join(file);
        let original = std::fs::read(&path).expect("read");
        let text = String::from_utf8(original.clone()).expect("utf-8");
        let at = text.find(anchor).expect("anchor") + anchor.len();
        let at = at + text[at..].bytes().position(|b| b == from).expect("a byte to flip");
        assert_eq!((from ^ to).count_ones(), 1, "one bit");
        let mut bytes = original.clone();
        bytes[at] = to;
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("still JSON");
        std::fs::write(&path, &bytes).expect("damage");
        (path, original)
    };
    for (file, anchor, from, to) in
        [("manifest.json", "\"newest\":", b'1', b'9'), ("catalog.json", "\"client-", b'0', b'1')]
    {
        let (path, original) = flip(file, anchor, from, to);
        for attempt in 0..2 {
            let Err(e) = try_open_at(&dir, end) else { panic!("start {attempt} must refuse the damaged {file}") };
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()) && text.contains("CRC32C"), "{text}");
            assert_eq!(sealed(), before, "{file}: no sealed file deleted");
        }
        std::fs::write(&path, original).expect("restore");
    }
    // An earlier build's snapshot: no checksums file.
    std::fs::remove_file(snap.join("checksums")).expect("the checksums file");
    let engine = open_at(&dir, end);
    assert_eq!(sums_over(&engine, 3 * 3600), want, "the same answers from a snapshot without checksums");
    engine.checkpoint().expect("checkpoint");
    drop(engine);
    let newest =
        std::fs::read_dir(dir.0.join("meta")).expect("meta").flatten().map(|e| e.path()).max().expect("a snapshot");
    assert!(newest.join("checksums").exists(), "the next checkpoint writes its checksums");
}
