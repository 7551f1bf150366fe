//! Durability: the data dir, checkpoints and recovery.
//!
//! Layout: `VERSION`, `LOCK` (exclusive while a server runs), `wal/`
//! (every acknowledged batch, see `wal`), `tier0/`..`tier2/` (sealed spans
//! as Arrow IPC files, read back memory-mapped), `meta/<lsn>/` (the
//! registry of nodes, contexts, instances, dimensions, labels and their
//! MetricIds, the open spans and a manifest, all as of WAL position `lsn`),
//! `quarantine/` (files that failed their checks), plus `tokens/` and
//! `admin.token` owned by the server.
//!
//! A checkpoint runs between two applied batches, so the state it writes is
//! exactly "every record up to lsn": new sealed files first, then the
//! snapshot directory (written aside, renamed into place, manifest last),
//! then files retention dropped, then the WAL is truncated up to lsn.
//! Recovery loads the newest complete snapshot, the sealed files its
//! manifest lists (others are leftovers of an interrupted checkpoint and
//! are removed: the WAL still holds their data), and replays the WAL after
//! the snapshot's lsn. Acknowledged batches are never lost: a batch is
//! acknowledged only after its WAL record is durable (per the fsync policy).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, CatalogSnapshot};
use crate::error::{EngineError, Result};
use crate::storage::open_span::OpenSpan;
use crate::storage::segment::Segment;
use crate::storage::segment_file::{self, Compression};
use crate::storage::store::{HeadState, SegmentEvent};
use crate::storage::{Store, TIERS};
use crate::wal::{LogRecord, Lsn, Wal, WalOptions};

/// On-disk format version this binary reads and writes.
/// 2: binary WAL records (version 1 wrote JSON, which still replays).
/// 3: sealed tier-0 segments hold codec rows (`storage::codec`); plain
///    tier-0 segments of format 2 still read, and go with retention.
/// 4: open spans in snapshots hold only the slots their blocks held
///    ([`OpenSpan::held_slots`]), starting inside their span; a build of
///    format 3 would restore them as short spans at the wrong start, so it
///    must refuse the dir. Snapshots of format 3 read as they are.
/// 5: WAL records of the third binary layout (`ingest::codec`: points as
///    columns, values as decimal deltas), which a build of format 4 cannot
///    replay. Records of the earlier layouts still replay.
/// 6: sealed tier-0 rows may hold negated decimal frames (codec row
///    version 2: a negated dimension's `-0.0`s), which a build of format 5
///    would refuse row by row. Rows of version 1 still read as they are.
/// 7: WAL records of the fourth binary layout (`ingest::codec`: the clock
///    the batch was applied against, which caps how far it moved the head),
///    which a build of format 6 cannot replay. Earlier records still replay.
pub const FORMAT_VERSION: u32 = 7;
/// The oldest version this binary opens; it upgrades the dir to
/// [`FORMAT_VERSION`] on open, so older binaries then refuse it rather than
/// misread records they do not know.
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// Snapshots: the registry (catalog), open spans and manifest per checkpoint.
const META_DIR: &str = "meta";

#[derive(Debug, Clone)]
pub struct PersistOptions {
    pub dir: PathBuf,
    pub wal: WalOptions,
    pub compression: Compression,
    /// Per tier: the most bytes of sealed files to keep (oldest go first).
    pub max_disk: [Option<u64>; TIERS],
}

/// What recovery found and did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// True when the data dir held no data before this start.
    pub fresh: bool,
    pub snapshot_lsn: Lsn,
    pub segments: usize,
    pub segment_bytes: u64,
    pub quarantined: Vec<(PathBuf, String)>,
    /// Open-span files the snapshot lists that were not there (moved out
    /// by an operator accepting the loss of their unsealed hours).
    pub open_missing: Vec<PathBuf>,
    pub replayed_records: u64,
    pub replay_errors: u64,
    pub wal_truncated_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    lsn: Lsn,
    heads: Vec<HeadState>,
    /// Sealed files (relative to the data dir) the snapshot relies on.
    sealed: Vec<String>,
    /// The snapshot's own open-span files (names in its directory), so a
    /// start without one (moved out, accepting the loss) says so. Empty in
    /// snapshots written before it was kept.
    #[serde(default)]
    open: Vec<String>,
}

/// What a checkpoint writes, captured under the state lock.
pub struct CheckpointPlan {
    lsn: Lsn,
    sealed: Vec<SegmentEvent>,
    dropped: Vec<SegmentEvent>,
    /// Open (and closed, not yet sealed) spans: copies of their block
    /// tables, the blocks shared copy-on-write, laid out when written.
    open: Vec<(usize, i64, OpenSpan)>,
    catalog: CatalogSnapshot,
    heads: Vec<HeadState>,
}

impl CheckpointPlan {
    /// The WAL position this plan captures.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// The sealed and dropped segments it was to write (after a failure).
    pub fn into_events(self) -> (Vec<SegmentEvent>, Vec<SegmentEvent>) {
        (self.sealed, self.dropped)
    }
}

/// What the store must change once a checkpoint's files are written.
#[derive(Default)]
pub struct CheckpointDone {
    /// Sealed segments and their memory-mapped twins.
    mapped: Vec<(SegmentEvent, Arc<Segment>)>,
    /// Spans dropped for the disk budget: (tier, update_every, start).
    dropped: Vec<(usize, i64, i64)>,
}

impl CheckpointDone {
    /// Swaps in the mapped segments (heap copies go) and drops spans over budget.
    pub fn apply(self, store: &mut Store) {
        for (ev, mapped) in self.mapped {
            store.replace_sealed(ev.tier, ev.update_every, &ev.segment, mapped);
        }
        for (tier, ue, start) in self.dropped {
            store.drop_sealed(tier, ue, start);
        }
    }
}

pub struct Persist {
    dir: PathBuf,
    pub wal: Wal,
    compression: Compression,
    max_disk: [Option<u64>; TIERS],
    /// Sealed files by (tier, update_every, start).
    files: Mutex<HashMap<(usize, i64, i64), PathBuf>>,
    _lock: fs::File,
}

impl std::fmt::Debug for Persist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persist").field("dir", &self.dir).finish()
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> EngineError + 'a {
    move |source| EngineError::Storage { what, path: path.to_path_buf(), source }
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path).map_err(io("create", path))?;
    f.write_all(bytes).map_err(io("write", path))?;
    f.sync_all().map_err(io("fsync", path))
}

fn tier_dir(dir: &Path, tier: usize) -> PathBuf {
    dir.join(format!("tier{tier}"))
}

fn rel(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).unwrap_or(p).to_string_lossy().into_owned()
}

/// Creates the layout, checks VERSION and takes the exclusive lock.
fn prepare(dir: &Path) -> Result<(fs::File, bool)> {
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    let lock_path = dir.join("LOCK");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("open", &lock_path))?;
    if lock.try_lock().is_err() {
        return Err(EngineError::DataDirLocked { path: dir.to_path_buf() });
    }
    let version_path = dir.join("VERSION");
    let fresh = match fs::read_to_string(&version_path) {
        Ok(v) => {
            let found: u32 = v.trim().parse().unwrap_or(u32::MAX);
            if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&found) {
                return Err(EngineError::UnsupportedVersion {
                    path: version_path,
                    found: v.trim().to_string(),
                    supported: FORMAT_VERSION,
                });
            }
            if found < FORMAT_VERSION {
                write_file(&version_path, format!("{FORMAT_VERSION}\n").as_bytes())?;
                tracing::info!(from = found, to = FORMAT_VERSION, "data dir format upgraded");
            }
            false
        }
        Err(_) => {
            write_file(&version_path, format!("{FORMAT_VERSION}\n").as_bytes())?;
            true
        }
    };
    // Data dirs of early builds kept the same snapshots in `snap/`.
    let (old, meta) = (dir.join("snap"), dir.join(META_DIR));
    if old.is_dir() && !meta.exists() {
        fs::rename(&old, &meta).map_err(io("rename into meta/", &old))?;
    }
    for sub in ["wal", "tier0", "tier1", "tier2", META_DIR, "quarantine"] {
        let p = dir.join(sub);
        fs::create_dir_all(&p).map_err(io("create", &p))?;
    }
    fsync_dir(dir);
    Ok((lock, fresh))
}

/// A snapshot directory's name: `{lsn:020}`, or `{lsn:020}.{n}` for the
/// n-th later snapshot at the same lsn (a checkpoint with no new record,
/// e.g. at shutdown after hours sealed by the clock). A snapshot never
/// replaces one of its lsn in place: until the new one is renamed into
/// place, the old one is complete, and only then is it removed.
fn snapshot_name(name: &str) -> Option<(Lsn, u32)> {
    let (lsn, n) = name.split_once('.').unwrap_or((name, "0"));
    Some((lsn.parse().ok()?, n.parse().ok()?))
}

/// The newest complete snapshot directory (by lsn, then sequence), removing
/// the temp dirs of interrupted checkpoints. A named snapshot without its
/// manifest is left alone (renamed into place only once complete, it is
/// damage, not an interrupted write) and ignored, with a warning.
fn latest_snapshot(snap_dir: &Path) -> Result<Option<(Lsn, PathBuf)>> {
    let mut best: Option<((Lsn, u32), PathBuf)> = None;
    for e in fs::read_dir(snap_dir).map_err(io("read", snap_dir))?.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        match snapshot_name(&name) {
            Some(key) if path.join("manifest.json").exists() => {
                best = match best {
                    Some((b, bp)) if b >= key => Some((b, bp)),
                    _ => Some((key, path)),
                };
            }
            Some(_) => tracing::warn!(path = %path.display(), "a snapshot without its manifest; ignored"),
            None if name.starts_with("tmp-") => {
                tracing::warn!(path = %path.display(), "removing an incomplete snapshot");
                let _ = fs::remove_dir_all(&path);
            }
            None => {}
        }
    }
    Ok(best.map(|((lsn, _), path)| (lsn, path)))
}

/// Refuses to start when the WAL no longer holds the records right after
/// the newest snapshot (`snapshot_lsn`; 0 without one): a checkpoint
/// deleted them, so a newer snapshot existed and is gone (deleted or
/// damaged). Going on would replay a log with a hole and delete every
/// sealed file the lost snapshot listed as never listed.
fn refuse_lost_snapshot(dir: &Path, snapshot_lsn: Lsn) -> Result<()> {
    match crate::wal::first_lsn(&dir.join("wal")) {
        Some(first) if first > snapshot_lsn.saturating_add(1) => Err(EngineError::Snapshot {
            path: dir.join(META_DIR),
            message: format!(
                "the WAL starts at record {first}, but the newest complete snapshot covers records up to \
                 {snapshot_lsn}: a later snapshot is missing or damaged, and starting would drop the records \
                 in between and the sealed files it listed. Restore {} from a backup",
                dir.join(META_DIR).display()
            ),
        }),
        _ => Ok(()),
    }
}

/// The file beside a snapshot's manifest and catalog that holds their
/// CRC32C: one line `<8 hex digits> <file name>` each.
const SUMS: &str = "checksums";
/// The snapshot files [`SUMS`] covers. They decide which sealed files a
/// start keeps (the rest are deleted as never listed), where each series'
/// head is, and which metric each stored row belongs to: a flipped bit
/// that still parses would silently delete history or misattribute it.
const SUMMED: [&str; 2] = ["manifest.json", "catalog.json"];

/// [`SUMS`]'s text for the files' bytes.
fn sums_text(files: &[(&str, &[u8])]) -> String {
    files.iter().map(|(name, bytes)| format!("{:08x} {name}\n", crc32c::crc32c(bytes))).collect()
}

/// A snapshot's manifest and catalog, checked against its [`SUMS`] file.
/// Snapshots of builds before the checksums have none and are read as they
/// are (the next checkpoint writes one). An error names the damaged file.
fn read_snapshot(sdir: &Path) -> Result<(Manifest, CatalogSnapshot)> {
    let damaged = |file: &str, message: String| EngineError::Snapshot { path: sdir.join(file), message };
    let read = |file: &str| fs::read(sdir.join(file)).map_err(io("read", &sdir.join(file)));
    let [manifest, catalog] = SUMMED.map(read);
    let (manifest, catalog) = (manifest?, catalog?);
    match fs::read_to_string(sdir.join(SUMS)) {
        Ok(sums) => {
            for (file, bytes) in SUMMED.iter().zip([&manifest, &catalog]) {
                let listed = sums.lines().find_map(|l| {
                    let (crc, name) = l.split_once(' ')?;
                    (name == *file).then(|| u32::from_str_radix(crc, 16).ok()).flatten()
                });
                let actual = crc32c::crc32c(bytes);
                match listed {
                    Some(crc) if crc == actual => {}
                    Some(crc) => {
                        return Err(damaged(
                            file,
                            format!(
                                "damaged (or its line in {SUMS} is): its CRC32C is {actual:08x}, {SUMS} says \
                                 {crc:08x}. Restore this snapshot directory from a backup; the sealed files beside \
                                 it are intact"
                            ),
                        ))
                    }
                    None => return Err(damaged(SUMS, format!("damaged: no readable checksum of {file}"))),
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("read", &sdir.join(SUMS))(e)),
    }
    let m: Manifest =
        serde_json::from_slice(&manifest).map_err(|e| damaged("manifest.json", format!("damaged: {e}")))?;
    let c: CatalogSnapshot =
        serde_json::from_slice(&catalog).map_err(|e| damaged("catalog.json", format!("damaged: {e}")))?;
    Ok((m, c))
}

/// The sealed files (relative to `dir`) and the catalog of the newest
/// complete snapshot, read without changing the data dir: for readers
/// beside a running server (`export-parquet`). `None` before the first
/// checkpoint. A checkpoint may replace the snapshot while it is read;
/// the caller retries on an error.
pub fn read_newest_snapshot(dir: &Path) -> Result<Option<(Vec<String>, Catalog)>> {
    let snap_dir = dir.join(META_DIR);
    let newest = fs::read_dir(&snap_dir)
        .map_err(io("read", &snap_dir))?
        .flatten()
        .filter_map(|e| {
            let key = snapshot_name(e.file_name().to_str()?)?;
            e.path().join("manifest.json").exists().then(|| (key, e.path()))
        })
        .max_by_key(|(key, _)| *key);
    let Some((_, sdir)) = newest else { return Ok(None) };
    let (m, c) = read_snapshot(&sdir)?;
    Ok(Some((m.sealed, Catalog::restore(&c))))
}

impl Persist {
    /// Opens the data dir and rebuilds catalog and store. Returns the WAL
    /// records to replay (after the snapshot) with the recovery report.
    pub fn open(opts: &PersistOptions, store: &mut Store) -> Result<(Persist, Catalog, Vec<LogRecord>, Recovery)> {
        let dir = &opts.dir;
        let (lock, fresh) = prepare(dir)?;
        store.track_events();
        let mut rec = Recovery { fresh, ..Default::default() };
        let quarantine = dir.join("quarantine");
        let mut catalog = Catalog::default();
        let mut listed: BTreeSet<String> = BTreeSet::new();
        let mut heads = Vec::new();
        if let Some((lsn, sdir)) = latest_snapshot(&dir.join(META_DIR))? {
            let (m, c) = read_snapshot(&sdir)?;
            catalog = Catalog::restore(&c);
            rec.snapshot_lsn = lsn;
            listed = m.sealed.into_iter().collect();
            heads = m.heads;
            // Checked in place, never quarantined: a damaged snapshot cannot
            // be trusted piecemeal, and moving the file away would let the
            // next start go on without its spans (and the next checkpoint
            // make the loss final). Every start refuses until an operator
            // acts.
            let open = segment_file::load_dir(&sdir, None)?;
            if !open.quarantined.is_empty() {
                let files: Vec<String> =
                    open.quarantined.iter().map(|(p, why)| format!("{} ({why})", p.display())).collect();
                return Err(EngineError::Snapshot {
                    path: sdir,
                    message: format!(
                        "{} open-span file(s) failed their checks: {}. Restore them from a backup; or, accepting the \
                         loss of those spans' data (the hours not yet sealed), move them out of the data directory \
                         and start again",
                        files.len(),
                        files.join("; ")
                    ),
                });
            }
            let found: BTreeSet<String> = open.segments.iter().map(|(name, _)| name.file_name()).collect();
            rec.open_missing = m.open.iter().filter(|f| !found.contains(*f)).map(|f| sdir.join(f)).collect();
            for (name, seg) in open.segments {
                store.restore_snapshot(usize::from(name.tier), name.update_every, &seg);
            }
        }
        refuse_lost_snapshot(dir, rec.snapshot_lsn)?;
        let mut files = HashMap::new();
        for tier in 0..TIERS {
            let tdir = tier_dir(dir, tier);
            let report = segment_file::load_dir(&tdir, Some(&quarantine))?;
            rec.quarantined.extend(report.quarantined);
            for (name, seg) in report.segments {
                let path = tdir.join(name.file_name());
                if !listed.contains(&rel(dir, &path)) {
                    // Written by a checkpoint that never completed: the WAL replay
                    // below rebuilds its data.
                    let _ = fs::remove_file(&path);
                    continue;
                }
                rec.segments += 1;
                rec.segment_bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                files.insert((tier, name.update_every, name.start), path);
                store.insert_sealed(tier, name.update_every, Arc::new(seg));
            }
        }
        // A file the snapshot lists but that is gone (deleted by hand, or
        // quarantined just now) is data lost: said loudly, once per start.
        let loaded: BTreeSet<String> = files.values().map(|p| rel(dir, p)).collect();
        for missing in listed.difference(&loaded) {
            tracing::error!(file = %missing, "a sealed segment the snapshot lists is missing or damaged; its data is lost");
        }
        for h in heads {
            store.set_head(h);
        }
        let (wal, records, report) = Wal::open(&dir.join("wal"), opts.wal, rec.snapshot_lsn)?;
        if let Some(t) = &report.truncated {
            rec.wal_truncated_bytes = t.dropped_bytes;
        }
        let persist = Persist {
            dir: dir.clone(),
            wal,
            compression: opts.compression,
            max_disk: opts.max_disk,
            files: Mutex::new(files),
            _lock: lock,
        };
        Ok((persist, catalog, records, rec))
    }

    /// First half of a checkpoint, with ingest paused between two batches
    /// (so the state is exactly "every record up to lsn") and the locks
    /// held: takes what sealed and copies the catalog and the open spans'
    /// block tables (their blocks are shared, not copied). Cheap.
    ///
    /// Callers first close the WAL's segment ([`Persist::roll_wal`]) with
    /// ingest paused but before taking the readers' locks.
    pub fn plan(&self, catalog: &Catalog, store: &mut Store, lsn: Lsn) -> CheckpointPlan {
        let (sealed, dropped) = store.take_events();
        let open = store.open_spans().into_iter().map(|(tier, ue, span)| (tier, ue, span.clone())).collect();
        CheckpointPlan { lsn, sealed, dropped, open, catalog: catalog.snapshot(), heads: store.heads() }
    }

    /// Closes the WAL's segment ([`Wal::roll`]) before a checkpoint is
    /// planned, so the records it covers lie in segments of their own that
    /// it deletes once written: the log then holds only what a restart
    /// replays, and damage to covered records cannot cut off later ones.
    /// Best effort: a log that cannot roll is checkpointed as it stands
    /// (a failed fsync has poisoned it, and ingest reports that).
    pub fn roll_wal(&self) {
        if let Err(e) = self.wal.roll() {
            tracing::warn!(error = %e, "WAL segment not closed before the checkpoint");
        }
    }

    /// Second half, with no lock and ingest running (it may run on a
    /// background thread; checkpoints must be written in plan order): lays
    /// out and writes the files, then truncates the WAL. Returns what the
    /// store must swap or drop. On failure nothing was truncated: the
    /// caller hands the plan's events back to the store
    /// ([`CheckpointPlan::into_events`]) so a later checkpoint writes them.
    pub fn write(&self, plan: &CheckpointPlan) -> Result<CheckpointDone> {
        let mut done = CheckpointDone::default();
        let mut files = self.files.lock().map_err(|_| EngineError::Poisoned("persist files"))?;
        for ev in plan.sealed.iter().cloned() {
            let tdir = tier_dir(&self.dir, ev.tier);
            let path = segment_file::write_segment(&tdir, &ev.segment, ev.update_every, self.compression)?;
            let (_, mapped) = segment_file::open_segment(&path)?;
            if let Some(old) = files.insert((ev.tier, ev.update_every, ev.segment.start), path.clone()) {
                if old != path {
                    let _ = fs::remove_file(old);
                }
            }
            done.mapped.push((ev, Arc::new(mapped)));
        }
        let mut dropped_paths: Vec<PathBuf> =
            plan.dropped.iter().filter_map(|ev| files.remove(&(ev.tier, ev.update_every, ev.segment.start))).collect();
        // Size-based retention: the oldest spans of a tier over its budget go.
        for tier in 0..TIERS {
            let Some(max) = self.max_disk[tier] else { continue };
            let sized: Vec<(SegmentKey, u64)> = files
                .iter()
                .filter(|((t, _, _), _)| *t == tier)
                .map(|(k, p)| (*k, fs::metadata(p).map(|m| m.len()).unwrap_or(0)))
                .collect();
            for key in over_budget(sized, max) {
                if let Some(p) = files.remove(&key) {
                    done.dropped.push(key);
                    dropped_paths.push(p);
                }
            }
        }
        let lsn = plan.lsn;
        let snap_root = self.dir.join(META_DIR);
        let tmp = snap_root.join(format!("tmp-{lsn}"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
        let mut open_files = Vec::with_capacity(plan.open.len());
        for (tier, ue, span) in &plan.open {
            // Only the slots its blocks hold: a day span early in its day, or
            // a 30-day span anywhere, would otherwise lay out and encode its
            // gaps at every checkpoint. LZ4 shrinks the rest (read back into
            // heap buffers anyway).
            let seg = Segment::seal_range(*tier as u8, span, span.held_slots().unwrap_or(0..1))?;
            let path = segment_file::write_segment(&tmp, &seg, *ue, Compression::Lz4)?;
            open_files.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        }
        let snap_err = |e: serde_json::Error| EngineError::Snapshot { path: tmp.clone(), message: e.to_string() };
        let catalog = serde_json::to_vec(&plan.catalog).map_err(snap_err)?;
        write_file(&tmp.join("catalog.json"), &catalog)?;
        let manifest = Manifest {
            lsn,
            heads: plan.heads.clone(),
            sealed: files.values().map(|p| rel(&self.dir, p)).collect(),
            open: open_files,
        };
        let manifest = serde_json::to_vec(&manifest).map_err(snap_err)?;
        write_file(&tmp.join("manifest.json"), &manifest)?;
        write_file(&tmp.join(SUMS), sums_text(&[("manifest.json", &manifest), ("catalog.json", &catalog)]).as_bytes())?;
        fsync_dir(&tmp);
        // Never onto a snapshot of the same lsn (see `snapshot_name`).
        let taken = fs::read_dir(&snap_root)
            .map_err(io("read", &snap_root))?
            .flatten()
            .filter_map(|e| snapshot_name(e.file_name().to_str()?))
            .filter(|&(l, _)| l == lsn)
            .map(|(_, n)| n)
            .max();
        let done_dir = snap_root.join(match taken {
            None => format!("{lsn:020}"),
            Some(n) => format!("{lsn:020}.{}", n + 1),
        });
        fs::rename(&tmp, &done_dir).map_err(io("rename", &done_dir))?;
        fsync_dir(&snap_root);
        for e in fs::read_dir(&snap_root).map_err(io("read", &snap_root))?.flatten() {
            if e.path() != done_dir {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        for p in dropped_paths {
            let _ = fs::remove_file(p);
        }
        self.wal.checkpoint(lsn)?;
        Ok(done)
    }

    /// A whole checkpoint in one go (recovery, shutdown, tests).
    pub fn checkpoint(&self, catalog: &Catalog, store: &mut Store, lsn: Lsn) -> Result<()> {
        let plan = self.plan(catalog, store, lsn);
        match self.write(&plan) {
            Ok(done) => {
                done.apply(store);
                Ok(())
            }
            Err(e) => {
                let (sealed, dropped) = plan.into_events();
                store.requeue_events(sealed, dropped);
                Err(e)
            }
        }
    }

    /// Bytes of sealed files per tier.
    pub fn disk_bytes(&self) -> [u64; TIERS] {
        let mut out = [0u64; TIERS];
        if let Ok(files) = self.files.lock() {
            for ((tier, _, _), p) in files.iter() {
                out[*tier] += fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            }
        }
        out
    }
}

/// A sealed segment file's key: tier, update_every, span start.
type SegmentKey = (usize, i64, i64);

/// The segments of one tier that go so the rest fit in `max` bytes: oldest
/// first and, of spans starting together, the smaller update_every (the
/// shorter span) first. The sizes come from a hash map: the order is the
/// rule's, never the map's, so identical stores drop identical files.
fn over_budget(mut sized: Vec<(SegmentKey, u64)>, max: u64) -> Vec<SegmentKey> {
    sized.sort_by_key(|&((_, ue, start), _)| (start, ue));
    let mut total: u64 = sized.iter().map(|(_, n)| n).sum();
    let mut out = Vec::new();
    for (key, n) in sized {
        if total <= max {
            break;
        }
        out.push(key);
        total -= n;
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn size_retention_drops_the_oldest_and_of_equal_starts_the_finer() {
        let sized = vec![((0, 2, 7200), 10), ((0, 1, 3600), 10), ((0, 5, 0), 10), ((0, 1, 0), 10), ((0, 1, 7200), 10)];
        assert_eq!(over_budget(sized.clone(), 50), []);
        assert_eq!(over_budget(sized.clone(), 49), [(0, 1, 0)]);
        assert_eq!(over_budget(sized.clone(), 30), [(0, 1, 0), (0, 5, 0)]);
        assert_eq!(over_budget(sized, 0).len(), 5);
    }

    proptest! {
        /// The choice depends on the files, not the order a map lists
        /// them in; what stays fits, and keeping the last file dropped
        /// would not.
        #[test]
        fn size_retention_is_the_rule_not_the_listing(
            files in prop::collection::btree_map((1i64..4, 0i64..6), 1u64..100, 1..12),
            max in 0u64..600,
            seed in any::<u64>(),
        ) {
            let sized: Vec<(SegmentKey, u64)> = files.iter().map(|(&(ue, k), &n)| ((0, ue, k * 3600), n)).collect();
            let mut shuffled = sized.clone();
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let dropped = over_budget(sized.clone(), max);
            prop_assert_eq!(&dropped, &over_budget(shuffled, max));
            let size = |k: &SegmentKey| sized.iter().find(|(s, _)| s == k).map_or(0, |(_, n)| *n);
            let total: u64 = sized.iter().map(|(_, n)| n).sum();
            let kept = total - dropped.iter().map(size).sum::<u64>();
            prop_assert!(kept <= max);
            if let Some(last) = dropped.last() {
                prop_assert!(kept + size(last) > max, "one drop too many");
            }
            // The oldest go, and of spans starting together the finer.
            let mut order: Vec<SegmentKey> = sized.iter().map(|(k, _)| *k).collect();
            order.sort_by_key(|&(_, ue, start)| (start, ue));
            prop_assert_eq!(&order[..dropped.len()], &dropped[..]);
        }
    }
}
