//! The write-ahead log: a segmented, append-only log of opaque byte records.
//! The engine writes each ingest batch (and each metadata change) as one
//! record with [`Wal::write`] before applying it (both under its ingest
//! lock, so lsn order is apply order), acknowledges the client once
//! [`Wal::wait_durable`] returns (outside that lock, so concurrent batches
//! share an fsync), and once the applied state is durable elsewhere calls
//! [`Wal::checkpoint`] to drop the records it no longer needs.
//! [`Wal::append`] is both steps in one call.
//!
//! **When a record is safe.** Every record gets the next [`Lsn`] (1, 2, 3,
//! ...; never reused, not even after a crash or a checkpoint). With
//! [`SyncPolicy::Always`], `append` returns only after an fsync covering the
//! record: an acknowledged record survives a power loss. With
//! [`SyncPolicy::Interval`], `append` returns once the record is written to
//! the OS (it survives the process crashing, not the machine) and a
//! background thread fsyncs at most that interval later; [`Wal::sync`]
//! forces it. Concurrent appenders share fsyncs (group commit): one fsync
//! covers every record written before it, so throughput grows with
//! concurrency instead of being one fsync per record.
//!
//! **Recovery.** [`Wal::open`] returns every intact record with lsn greater
//! than `after`, in lsn order, and leaves the log ready to append the next
//! lsn. `after` is the lsn of the last record whose effects the engine has
//! made durable by other means (its checkpoint lsn; 0 if it has none). The
//! log ends at the first record that is torn, fails its crc, or is out of
//! sequence: that segment is cut there, every later segment file is deleted
//! (so one damaged byte loses the rest of the log, because nothing after a
//! gap can be applied in order), and the [`RecoveryReport`] says what was
//! dropped. Unless the damage is a record torn by the end of the last
//! segment (what a crash leaves), the files are first copied to
//! `damaged/<unix seconds>/` inside the log's directory ([`DAMAGED_DIR`]),
//! which recovery never reads. If `after` is beyond the log's end (possible with `Interval` when
//! the machine died before the fsync but the engine's own state was already
//! durable), the old segments are deleted and the log continues at
//! `after + 1`, so lsns stay unique. A segment written by another format
//! version is refused ([`WalError::UnsupportedVersion`]), never repaired.
//!
//! **Checkpoints.** [`Wal::checkpoint`] deletes whole segment files whose
//! records all have lsn <= `upto`; the active segment is never deleted. The
//! engine closes it ([`Wal::roll`]) when it plans a checkpoint, so after the
//! checkpoint the log holds no record it covers (else up to one segment of
//! already-applied records would stay, and damage in them would cut off
//! the records after them at open).
//!
//! **Failures.** After a failed write or fsync the log refuses every further
//! call with [`WalError::Poisoned`], which names the first failure (also
//! [`Wal::failure`]): the kernel may have dropped the unsynced pages, so
//! carrying on could acknowledge records that are already lost. It is not
//! reopened in place, for the same reason: only a fresh open (a restart)
//! re-reads what the file really holds. Reopening recovers whatever is
//! intact; a record torn by the failed write is cut like a crash's.
//!
//! **One writer.** Exactly one `Wal` may have a directory open at a time
//! (across processes too); the caller guarantees that, e.g. with its data
//! directory lock.
//!
//! Files: `NNNNNNNNNNNNNNNNNNNN.wal`, named by the zero-padded lsn of their
//! first record, each an 8-byte header then records (layout in `record.rs`).
//! A new segment starts when the next record would take the current one past
//! [`WalOptions::segment_bytes`].

mod error;
mod options;
#[cfg(test)]
mod props;
mod record;
mod recovery;
mod segment;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

pub use error::{is_out_of_space, WalError, WalFailure};
pub use options::{SyncPolicy, WalOptions};
pub use record::MAX_RECORD_BYTES;

use record::SEGMENT_HEADER_LEN;
use recovery::Sealed;
use segment::SegmentFile;

/// Log sequence number: 1 for the first record ever appended, +1 per record.
pub type Lsn = u64;

/// A record as recovery returns it: its lsn and payload.
pub type LogRecord = (Lsn, Vec<u8>);

/// What [`Wal::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Intact records read, including those at or below `after` that were
    /// read but not returned (whole segments below `after` are not read).
    pub records: u64,
    /// Segment files read.
    pub segments: usize,
    /// Set when the log was damaged and has been cut.
    pub truncated: Option<Truncation>,
}

/// Where the log was cut during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment holding the first bad record; it now ends at `offset`.
    pub segment: PathBuf,
    /// Byte offset of the first bad record in `segment` (0 for a bad header,
    /// which is rewritten, or a misnamed segment, which is deleted).
    pub offset: u64,
    /// Bytes dropped: the tail of `segment` plus every removed segment file.
    pub dropped_bytes: u64,
    /// Later segment files deleted because they followed the damage.
    pub removed_segments: Vec<PathBuf>,
}

/// A payload this size or bigger makes `append` drop its reused encode
/// buffer afterwards, so one huge record does not pin its memory for good.
const KEEP_BUFFER_BYTES: usize = 1 << 20;

/// Where recovery copies damaged segments before cutting them (inside the
/// log's directory; its name is no segment's, so recovery never reads it).
pub const DAMAGED_DIR: &str = "damaged";

/// The write-ahead log. `Send + Sync`; share it by reference or `Arc`.
pub struct Wal {
    shared: Arc<Shared>,
    /// The Interval policy's background fsync thread.
    flusher: Option<JoinHandle<()>>,
}

struct Shared {
    dir: PathBuf,
    opts: WalOptions,
    state: Mutex<State>,
    /// Signalled when a sync finishes (or fails), waking appenders that wait
    /// for their lsn to become durable.
    synced: Condvar,
    fsyncs: AtomicU64,
    /// Set on drop to stop the flusher thread; `stop_cv` wakes it early.
    stop: Mutex<bool>,
    stop_cv: Condvar,
}

/// The segment being appended to.
struct Active {
    segment: SegmentFile,
    /// Shared so a sync leader can fsync it without holding the state lock.
    file: Arc<File>,
    len: u64,
}

struct State {
    active: Active,
    /// Older segments, oldest first, kept for `checkpoint` to delete.
    sealed: VecDeque<Sealed>,
    /// The last lsn of the segment [`Wal::roll`] closed last, until a
    /// checkpoint covers it: another roll waits for that, so checkpoints
    /// that keep failing do not leave a segment per attempt.
    rolled: Option<Lsn>,
    /// Lsn of the last record written to the OS.
    last_lsn: Lsn,
    /// Every record up to this lsn has been fsynced.
    synced_lsn: Lsn,
    /// A sync leader is fsyncing outside the lock right now.
    syncing: bool,
    /// The first write or fsync that failed; see `WalError::Poisoned`.
    failed: Option<WalFailure>,
    /// Reused encode buffer: one `write` per record without an allocation.
    buf: Vec<u8>,
}

/// The lsn the oldest segment in `dir` starts at, read from the file names
/// alone, without opening the log (`None`: no segment, or no `dir`).
pub fn first_lsn(dir: &Path) -> Option<Lsn> {
    segment::list(dir).ok()?.first().map(|s| s.first_lsn)
}

impl Wal {
    /// Opens (creating) the log in `dir` and returns every intact record with
    /// lsn > `after` (the last checkpointed lsn), in order. A torn or corrupt
    /// tail is truncated at the last good record; a warning is logged and the
    /// report says so. Everything returned is fsynced before this returns.
    pub fn open(dir: &Path, opts: WalOptions, after: Lsn) -> Result<(Wal, Vec<LogRecord>, RecoveryReport), WalError> {
        fs::create_dir_all(dir).map_err(|e| WalError::io("create dir", dir, e))?;
        let recovered = recovery::recover(dir, after)?;
        let mut sealed: VecDeque<Sealed> = recovered.sealed.into();
        let (active, last_lsn) = match recovered.active {
            Some((segment, len)) if recovered.next_lsn > after => {
                let file = segment::open_append(&segment.path)?;
                // The records just read may still be only in the page cache
                // (the last process died before syncing them); the engine is
                // about to apply them, so they must not vanish in a power loss.
                file.sync_all().map_err(|e| WalError::io("fsync", &segment.path, e))?;
                (Active { segment, file: Arc::new(file), len }, recovered.next_lsn - 1)
            }
            stale => {
                // An empty directory, or a log that ends before `after`: the
                // old files hold only checkpointed records, and the next lsn
                // must follow the checkpoint so lsns are never reused.
                if let Some((segment, _)) = stale {
                    segment::forget_newest(dir);
                    tracing::warn!(
                        dir = %dir.display(),
                        after,
                        log_end = recovered.next_lsn - 1,
                        "WAL ends before the checkpoint lsn; starting a new log after it",
                    );
                    for old in sealed.drain(..).map(|s| s.file).chain([segment]) {
                        segment::remove(&old.path)?;
                    }
                }
                let (segment, file) = segment::create(dir, after.saturating_add(1))?;
                (Active { segment, file: Arc::new(file), len: SEGMENT_HEADER_LEN }, after)
            }
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            opts,
            state: Mutex::new(State {
                active,
                sealed,
                rolled: None,
                last_lsn,
                synced_lsn: last_lsn,
                syncing: false,
                failed: None,
                buf: Vec::new(),
            }),
            synced: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
        });
        let flusher = match opts.sync {
            SyncPolicy::Always => None,
            SyncPolicy::Interval(every) => {
                let shared = Arc::clone(&shared);
                let handle = std::thread::Builder::new()
                    .name("strata-wal-sync".into())
                    .spawn(move || flush_loop(&shared, every))
                    .map_err(|e| WalError::io("spawn sync thread", dir, e))?;
                Some(handle)
            }
        };
        Ok((Wal { shared, flusher }, recovered.records, recovered.report))
    }

    /// Appends one record and returns its lsn once it is durable per the
    /// policy (Always: fsynced; Interval: written, fsynced by the background
    /// thread at most that long later). Concurrent callers are group-committed.
    pub fn append(&self, record: &[u8]) -> Result<Lsn, WalError> {
        let lsn = self.write(record)?;
        self.wait_durable(lsn)?;
        Ok(lsn)
    }

    /// The first half of [`Wal::append`]: writes the record to the OS and
    /// returns its lsn without waiting for an fsync. A caller that must keep
    /// its own order (lsn order = apply order) writes under its lock, then
    /// calls [`Wal::wait_durable`] after releasing it, so that concurrent
    /// callers share one fsync instead of queueing behind each other's.
    pub fn write(&self, record: &[u8]) -> Result<Lsn, WalError> {
        if record.len() > MAX_RECORD_BYTES {
            return Err(WalError::RecordTooLarge { len: record.len(), max: MAX_RECORD_BYTES });
        }
        let shared = &*self.shared;
        let mut st = shared.lock();
        if let Some(cause) = &st.failed {
            return Err(WalError::Poisoned { cause: cause.clone() });
        }
        let size = record::encoded_len(record.len());
        if st.active.len > SEGMENT_HEADER_LEN && st.active.len + size > shared.opts.segment_bytes {
            shared.rotate(&mut st)?;
        }
        let lsn = st.last_lsn + 1;
        let State { active, buf, failed, .. } = &mut *st;
        buf.clear();
        record::encode(lsn, record, buf);
        // Written while holding the lock, so records land in lsn order.
        if let Err(e) = (&*active.file).write_all(buf) {
            *failed = Some(WalFailure::io("write", &active.segment.path, &e));
            let err = WalError::io("write", &active.segment.path, e);
            tracing::error!(error = %err, "WAL write failed; the log is now poisoned");
            return Err(err);
        }
        active.len += size;
        if buf.capacity() > KEEP_BUFFER_BYTES {
            *buf = Vec::new();
        }
        st.last_lsn = lsn;
        Ok(lsn)
    }

    /// Returns once record `lsn` is durable per the policy: fsynced under
    /// `Always` (group-committed with concurrent waiters); at once under
    /// `Interval`, whose thread fsyncs it at most that long later.
    pub fn wait_durable(&self, lsn: Lsn) -> Result<(), WalError> {
        let shared = &*self.shared;
        match shared.opts.sync {
            SyncPolicy::Interval(_) => Ok(()),
            SyncPolicy::Always => shared.wait_durable(shared.lock(), lsn),
        }
    }

    /// Deletes whole segment files whose records all have lsn <= `upto`
    /// (never the active segment). Call it only once the effects of every
    /// record up to `upto` are durable elsewhere.
    pub fn checkpoint(&self, upto: Lsn) -> Result<(), WalError> {
        let doomed: Vec<Sealed> = {
            let mut st = self.shared.lock();
            if st.rolled.is_some_and(|r| r <= upto) {
                st.rolled = None;
            }
            let n = st.sealed.iter().take_while(|s| s.last_lsn <= upto).count();
            st.sealed.drain(..n).collect()
        };
        // Deleted outside the lock so appenders are not held up by unlinks.
        for (i, seg) in doomed.iter().enumerate() {
            if let Err(e) = segment::remove(&seg.file.path) {
                // Hand back the ones not deleted (older than anything still
                // listed, so they go to the front) for a later checkpoint.
                let mut st = self.shared.lock();
                for s in doomed[i..].iter().rev() {
                    st.sealed.push_front(s.clone());
                }
                return Err(e);
            }
        }
        if let Some(last) = doomed.last() {
            segment::sync_dir(&self.shared.dir)?;
            tracing::debug!(
                upto,
                segments = doomed.len(),
                through_lsn = last.last_lsn,
                "WAL checkpoint removed segments"
            );
        }
        Ok(())
    }

    /// Closes the active segment if it holds any record, so the next record
    /// starts a new one: every record written so far then lies in sealed
    /// segments, which [`Wal::checkpoint`] deletes once it covers them.
    /// (Without it the active segment, up to [`WalOptions::segment_bytes`],
    /// keeps checkpointed records until it fills.) A no-op while the
    /// segment closed by the last roll awaits its checkpoint.
    ///
    /// The closed segment is fsynced first, as a rotation by size does
    /// (sync leaders fsync only the active file); the caller holds its
    /// write order, not its readers' locks. A new segment that cannot be
    /// created leaves the log as it was (not poisoned): rolling is an
    /// optimisation, and the caller may go on without it.
    pub fn roll(&self) -> Result<(), WalError> {
        let shared = &*self.shared;
        let mut st = shared.lock();
        if let Some(cause) = &st.failed {
            return Err(WalError::Poisoned { cause: cause.clone() });
        }
        if st.active.len <= SEGMENT_HEADER_LEN || st.rolled.is_some() {
            return Ok(());
        }
        shared.seal_active(&mut st, false)?;
        st.rolled = Some(st.last_lsn);
        Ok(())
    }

    /// The lsn of the last record appended (written, not necessarily synced
    /// under `Interval`); after open, the last lsn recovered or `after`.
    pub fn last_lsn(&self) -> Lsn {
        self.shared.lock().last_lsn
    }

    /// Fsyncs every record appended so far; returns once they are durable.
    /// For shutdown and for `Interval` callers that need a durability point.
    pub fn sync(&self) -> Result<(), WalError> {
        self.shared.sync()
    }

    /// The failure that stopped the log taking writes, if one did.
    pub fn failure(&self) -> Option<WalFailure> {
        self.shared.lock().failed.clone()
    }

    /// Fsyncs of segment data made since open: one per group commit, one per
    /// rotation. Lower than the number of appends when group commit works.
    pub fn fsyncs(&self) -> u64 {
        self.shared.fsyncs.load(Ordering::Relaxed)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.stop_cv.notify_all();
        if let Some(handle) = self.flusher.take() {
            if handle.join().is_err() {
                tracing::error!(dir = %self.shared.dir.display(), "WAL sync thread panicked");
            }
        }
        // An Interval log dropped without `sync` still gets its tail synced.
        let failed = self.shared.lock().failed.is_some();
        if !failed {
            if let Err(e) = self.shared.sync() {
                tracing::error!(error = %e, "WAL final sync failed");
            }
        }
    }
}

impl Shared {
    /// The state lock. A panic while it was held leaves the log in an
    /// unknown state, which is treated like a failed write.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| self.panicked(poisoned.into_inner()))
    }

    /// Marks the log failed after a panic under its lock.
    fn panicked<'a>(&self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.failed.get_or_insert_with(|| WalFailure {
            op: "lock",
            path: self.dir.clone(),
            message: "a thread panicked while writing to the log".into(),
            out_of_space: false,
        });
        st
    }

    fn wait<'a>(&self, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.synced.wait(st).unwrap_or_else(|poisoned| self.panicked(poisoned.into_inner()))
    }

    fn sync(&self) -> Result<(), WalError> {
        let st = self.lock();
        let upto = st.last_lsn;
        self.wait_durable(st, upto)
    }

    /// Returns once `lsn` is fsynced. The first caller to find no sync in
    /// flight becomes the leader: it fsyncs everything written so far with
    /// the lock released, so others keep writing and are covered by the next
    /// leader's fsync. That is the group commit.
    fn wait_durable<'a>(&'a self, mut st: MutexGuard<'a, State>, lsn: Lsn) -> Result<(), WalError> {
        loop {
            if st.synced_lsn >= lsn {
                return Ok(());
            }
            if let Some(cause) = &st.failed {
                return Err(WalError::Poisoned { cause: cause.clone() });
            }
            if st.syncing {
                st = self.wait(st);
                continue;
            }
            st.syncing = true;
            let upto = st.last_lsn;
            let file = Arc::clone(&st.active.file);
            let path = st.active.segment.path.clone();
            drop(st);
            // Every record up to `upto` is in this file: older segments were
            // fsynced when they were sealed.
            let result = file.sync_data();
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            st = self.lock();
            st.syncing = false;
            // Waiters re-check after the lock is released: covered ones
            // return, the rest elect the next leader (or see the failure).
            self.synced.notify_all();
            if let Err(e) = result {
                st.failed = Some(WalFailure::io("fsync", &path, &e));
                let err = WalError::io("fsync", path, e);
                tracing::error!(error = %err, "WAL fsync failed; the log is now poisoned");
                return Err(err);
            }
            st.synced_lsn = st.synced_lsn.max(upto);
        }
    }

    /// Seals the active segment and starts the next. The old one is fsynced
    /// first so that sealed segments are always whole on disk, which lets
    /// sync leaders fsync only the active file.
    fn rotate(&self, st: &mut State) -> Result<(), WalError> {
        self.seal_active(st, true)
    }

    /// [`Shared::rotate`]'s work. A failed fsync poisons the log (the
    /// kernel may have dropped the pages). A next segment that cannot be
    /// created poisons it when `poison_on_create` (a rotation by size must
    /// not write on past its segment's size), else its half-made file is
    /// removed and the active segment stays (see [`Wal::roll`]).
    fn seal_active(&self, st: &mut State, poison_on_create: bool) -> Result<(), WalError> {
        let result = st.active.file.sync_data();
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = result {
            st.failed = Some(WalFailure::io("fsync", &st.active.segment.path, &e));
            return Err(WalError::io("fsync", &st.active.segment.path, e));
        }
        st.synced_lsn = st.last_lsn;
        self.synced.notify_all();
        let first = st.last_lsn + 1;
        let (segment, file) = match segment::create(&self.dir, first) {
            Ok(created) => created,
            // A half-created segment would make the next attempt collide
            // with it: poisoning leaves the repair to recovery.
            Err(e) if poison_on_create => {
                st.failed = Some(match &e {
                    WalError::Io { op, path, source } => WalFailure::io(op, path, source),
                    other => WalFailure {
                        op: "create",
                        path: self.dir.clone(),
                        message: other.to_string(),
                        out_of_space: false,
                    },
                });
                return Err(e);
            }
            Err(e) => {
                let _ = fs::remove_file(segment::segment_path(&self.dir, first));
                return Err(e);
            }
        };
        let old = std::mem::replace(&mut st.active, Active { segment, file: Arc::new(file), len: SEGMENT_HEADER_LEN });
        st.sealed.push_back(Sealed { file: old.segment, last_lsn: st.last_lsn });
        Ok(())
    }
}

/// The Interval policy's thread: fsyncs whatever is unsynced every `every`,
/// until the log is dropped or poisoned.
fn flush_loop(shared: &Shared, every: Duration) {
    loop {
        let stop = shared.stop.lock().unwrap_or_else(PoisonError::into_inner);
        let (stop, _) =
            shared.stop_cv.wait_timeout_while(stop, every, |stop| !*stop).unwrap_or_else(PoisonError::into_inner);
        if *stop {
            return;
        }
        drop(stop);
        if let Err(e) = shared.sync() {
            // Appends now fail with Poisoned, so the engine finds out.
            tracing::error!(error = %e, "WAL background sync failed; stopping it");
            return;
        }
    }
}
