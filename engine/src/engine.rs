//! The engine facade: the catalog and the store (each under its own
//! lock), the ingest entry point, the query entry point, and the clock.
//!
//! Durability: with a data dir ([`Engine::open`]) every batch is written to
//! the WAL before it is applied, and `ingest` returns only after the record
//! is durable per the fsync policy; checkpoints move sealed spans to Arrow
//! files and truncate the WAL (see `persist`). Without one
//! ([`Engine::new`]) the store lives in memory only.

use std::borrow::Cow;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::catalog::Catalog;
use crate::checkpointer::Checkpointer;
use crate::error::{EngineError, Result};
use crate::ingest::{
    codec, new_series, validate, validate_against, validate_contexts, validate_known, validate_shape, IngestBatch,
    IngestReport, SeriesSpec,
};
use crate::model::{MetricId, SeriesMeta};
use crate::persist::{Persist, PersistOptions, Recovery};
use crate::query::request::QueryRequest;
use crate::query::result::QueryResult;
use crate::query::QueryLimits;
use crate::storage::segment::Segment;
use crate::storage::{RawPoint, RunOutcome, SeriesRun, StorageConfig, Store};

/// Where "now" comes from. Tests pin it to replay relative windows.
#[derive(Debug)]
pub enum Clock {
    System,
    Fixed(AtomicI64),
}

impl Clock {
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
            Clock::Fixed(t) => t.load(Ordering::Relaxed),
        }
    }
}

/// The engine's state for a reader: the catalog and the store, each under
/// its read lock (taken in that order, as everywhere). Hold it briefly:
/// writers wait for it.
pub struct State<'a> {
    pub catalog: RwLockReadGuard<'a, Catalog>,
    pub store: RwLockReadGuard<'a, Store>,
}

/// The engine's state for a writer (bulk loads, tests), both write locks.
pub struct StateMut<'a> {
    pub catalog: RwLockWriteGuard<'a, Catalog>,
    pub store: RwLockWriteGuard<'a, Store>,
}

/// Default bound on how far ahead of the clock a sample may be.
pub const DEFAULT_MAX_FUTURE_SECS: i64 = 600;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub storage: StorageConfig,
    pub limits: QueryLimits,
    /// Node id for series that name none (the local host).
    pub default_node: String,
    /// Samples more than this many seconds ahead of the clock are refused
    /// (`None`: no bound). The tier-0 head is shared by every series of one
    /// `update_every`, so one far-future sample would move it and make
    /// everybody's current samples late.
    pub max_future_secs: Option<i64>,
    /// Most series the engine holds; a batch that would create more is
    /// refused whole (`--max-series`).
    pub max_series: u64,
}

/// Default [`EngineConfig::max_series`].
pub const DEFAULT_MAX_SERIES: u64 = 2_000_000;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            storage: StorageConfig::default(),
            limits: QueryLimits::default(),
            default_node: "localhost".into(),
            max_future_secs: Some(DEFAULT_MAX_FUTURE_SECS),
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

/// The engine.
///
/// Concurrency (what is locked, for how long, and why that is enough):
/// - `catalog` and `store` are separate `RwLock`s, always taken in that
///   order. Writers (ingest) hold a write lock only while applying one
///   batch (registering its new series, [`REGISTER_TURN`] at a time;
///   writing its samples, [`WRITE_TURN_RUNS`] runs at a time). A batch
///   whose series are all known with unchanged metadata takes no catalog
///   write lock: its metrics are looked up under the read lock before the
///   order lock and used if the registry's generation has not moved. Readers
///   (queries, metadata) hold read locks only to resolve names and to take
///   a [`crate::storage::StoreView`]: `Arc` clones of sealed segments and
///   of the open blocks a query needs. The scan itself holds no lock, so
///   readers never wait for writers' work and writers never wait for
///   scans; blocks a scan holds are copied by the writer on its next write
///   to them (copy-on-write).
/// - `ingest_order` serializes ingests so WAL order is apply order; the
///   fsync wait happens after it is released (group commit).
/// - Closing an hour moves its spans aside under the write lock (O(1));
///   laying them out as Arrow segments happens with no state lock held
///   and outside `ingest_order` (so other batches apply meanwhile), one
///   sealer at a time (`sealing`; an ingest that finds it busy leaves its
///   closed spans to that sealer). [`Engine::ingest_deferred`] (the HTTP
///   route) leaves that work until after the client's answer, unless more
///   than [`MAX_UNSEALED`] closed spans wait. Checkpoint files are written on a
///   background thread ([`Checkpointer`]). A checkpoint is planned under
///   `ingest_order` with the WAL's last LSN: every record written by then
///   has been applied, so the plan holds exactly the records up to it.
#[derive(Debug)]
pub struct Engine {
    catalog: RwLock<Catalog>,
    store: Arc<RwLock<Store>>,
    clock: Clock,
    config: EngineConfig,
    persist: Option<Arc<Persist>>,
    checkpointer: Option<Checkpointer>,
    /// Orders ingests: WAL order must equal apply order.
    ingest_order: Mutex<()>,
    /// One thread lays out closed spans at a time (the others would repeat
    /// its work). Ingests that find it held leave their spans to the
    /// holder, so every holder looks again after letting go and seals
    /// until none is waiting (see [`Engine::seal_closed_after_ingest`]).
    sealing: Mutex<()>,
    /// Queries running now (for `/health` and tests of cancellation).
    running: AtomicUsize,
    /// Acknowledged ingests whose follow-up ([`Engine::finish_ingest`]) has
    /// not ended: it drops only after any checkpoint it plans is counted in
    /// [`Engine::pending_checkpoints`].
    followups: Arc<AtomicUsize>,
    /// Why the last laying out of closed spans failed, until one succeeds
    /// (see [`Engine::seal_failure`]).
    seal_failure: Mutex<Option<String>>,
    /// Tests: every laying out fails while set.
    #[cfg(test)]
    fail_seals: std::sync::atomic::AtomicBool,
}

/// Closed spans (of any tier) that may wait for a busy sealer before an
/// ingest waits for it too. A span's blocks stay in memory until it is laid
/// out: a tier-0 hour of 1,000 per-second series is about 30 MB.
const MAX_UNSEALED: usize = 2;

/// New series registered per turn of the catalog's write lock (about 10-30
/// ms of holding it; see [`Engine::register_in_turns`]).
const REGISTER_TURN: usize = 4096;

/// Runs (one metric's samples in one span) and samples written per turn of
/// the store's write lock, whichever comes first ([`Engine::write_in_turns`]):
/// a turn holds it for about 10-30 ms.
const WRITE_TURN_RUNS: usize = 8192;
const WRITE_TURN_POINTS: usize = 1 << 19;

/// An allowance of new series (a token's hourly limit), asked once per
/// batch that creates some, under the ingest order lock: what one batch
/// takes is gone before the next asks, however many arrive at once. A
/// batch refused later (its WAL write failed) keeps what it took.
pub trait SeriesAllowance {
    /// Takes `new` series, or says how many are left (and takes none).
    fn take(&self, new: u64) -> std::result::Result<(), u64>;
}

/// What an acknowledged ingest left to do: see [`Engine::finish_ingest`].
#[derive(Debug, Default)]
#[must_use = "pass it to Engine::finish_ingest, or closed hours wait for the next ingest"]
pub struct AfterIngest {
    due: bool,
    /// Counted in [`Engine::pending_followups`] until this is finished or
    /// dropped.
    _pending: Option<Followup>,
}

/// One acknowledged ingest's follow-up work, counted while alive.
#[derive(Debug)]
struct Followup(Arc<AtomicUsize>);

impl Followup {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Followup(count.clone())
    }
}

impl Drop for Followup {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AfterIngest {
    /// Whether [`Engine::finish_ingest`] has work to do.
    pub fn is_due(&self) -> bool {
        self.due
    }
}

/// Counts a running query while alive.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn start(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Running(n)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Engine {
    pub fn new(config: EngineConfig, clock: Clock) -> Self {
        Engine {
            catalog: RwLock::new(Catalog::default()),
            store: Arc::new(RwLock::new(Store::new(config.storage))),
            clock,
            config,
            persist: None,
            checkpointer: None,
            ingest_order: Mutex::new(()),
            sealing: Mutex::new(()),
            running: AtomicUsize::new(0),
            followups: Arc::default(),
            seal_failure: Mutex::new(None),
            #[cfg(test)]
            fail_seals: Default::default(),
        }
    }

    /// Opens a durable engine on a data dir: loads sealed spans and the last
    /// snapshot, replays the WAL after it, and takes the dir's lock.
    pub fn open(config: EngineConfig, clock: Clock, opts: &PersistOptions) -> Result<(Engine, Recovery)> {
        let mut store = Store::new(config.storage);
        let (persist, mut catalog, records, mut rec) = Persist::open(opts, &mut store)?;
        let mut last = rec.snapshot_lsn;
        for (lsn, bytes) in records {
            last = lsn;
            let applied = codec::decode(&bytes)
                .map_err(|e| EngineError::batch("wal", format!("undecodable WAL record {lsn}: {e}")))
                .and_then(|codec::Record { default_node, clock, batch }| {
                    validate(&batch, &catalog, &default_node)?;
                    let metrics = register(&mut catalog, &batch, &default_node);
                    store.write_batch(&runs_of(&slotted(&batch, &metrics)), clock)
                });
            match applied {
                Ok(_) => rec.replayed_records += 1,
                Err(e) => {
                    // It was refused the same way when it was first applied.
                    rec.replay_errors += 1;
                    tracing::warn!(lsn, error = %e, "WAL record not applied on replay");
                }
            }
        }
        store.seal_pending()?;
        if store.has_sealed_events() {
            persist.roll_wal();
            persist.checkpoint(&catalog, &mut store, last)?;
        }
        let persist = Arc::new(persist);
        let store = Arc::new(RwLock::new(store));
        let checkpointer = Checkpointer::start(persist.clone(), store.clone());
        let engine = Engine {
            catalog: RwLock::new(catalog),
            store,
            clock,
            config,
            persist: Some(persist),
            checkpointer: Some(checkpointer),
            ingest_order: Mutex::new(()),
            sealing: Mutex::new(()),
            running: AtomicUsize::new(0),
            followups: Arc::default(),
            seal_failure: Mutex::new(None),
            #[cfg(test)]
            fail_seals: Default::default(),
        };
        Ok((engine, rec))
    }

    /// Writes everything applied so far as a checkpoint (after bulk loads,
    /// at shutdown), after the queued background ones. A no-op without a
    /// data dir.
    pub fn checkpoint(&self) -> Result<()> {
        let Some(p) = &self.persist else { return Ok(()) };
        let _order = self.ingest_order.lock().map_err(|_| EngineError::Poisoned("ingest order"))?;
        if let Some(c) = &self.checkpointer {
            c.flush();
        }
        self.seal_closed()?;
        p.roll_wal();
        let cat = self.catalog.read().map_err(|_| EngineError::Poisoned("catalog lock"))?;
        let mut store = self.store.write().map_err(|_| EngineError::Poisoned("store lock"))?;
        p.checkpoint(&cat, &mut store, p.wal.last_lsn())?;
        p.wal.sync()?;
        Ok(())
    }

    /// Acknowledged ingests whose follow-up (laying out the spans they
    /// closed, planning a checkpoint) is queued or running. Read it before
    /// [`Engine::pending_checkpoints`]: a follow-up ends only after the
    /// checkpoint it plans is counted there, so both at zero, read in that
    /// order, mean the background work of every acknowledged ingest is on
    /// disk.
    pub fn pending_followups(&self) -> usize {
        self.followups.load(Ordering::SeqCst)
    }

    /// Checkpoints queued or being written in the background.
    pub fn pending_checkpoints(&self) -> u64 {
        self.checkpointer.as_ref().map_or(0, Checkpointer::pending)
    }

    /// Bytes on disk per tier (sealed files), when durable.
    pub fn disk_bytes(&self) -> Option<[u64; crate::storage::TIERS]> {
        self.persist.as_deref().map(Persist::disk_bytes)
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Both read locks (catalog, then store). Keep it short.
    pub fn read(&self) -> Result<State<'_>> {
        let catalog = self.catalog.read().map_err(|_| EngineError::Poisoned("catalog lock"))?;
        let store = self.store.read().map_err(|_| EngineError::Poisoned("store lock"))?;
        Ok(State { catalog, store })
    }

    /// Both write locks (catalog, then store), for bulk loads and tests.
    pub fn write(&self) -> Result<StateMut<'_>> {
        let catalog = self.catalog.write().map_err(|_| EngineError::Poisoned("catalog lock"))?;
        let store = self.store.write().map_err(|_| EngineError::Poisoned("store lock"))?;
        Ok(StateMut { catalog, store })
    }

    /// Lays out every closed span as a segment, waiting for a sealer at
    /// work to finish first (checkpoints, shutdown).
    fn seal_closed(&self) -> Result<()> {
        let _one = self.sealing.lock().map_err(|_| EngineError::Poisoned("sealing"))?;
        self.seal_pending()
    }

    /// Lays out closed spans after an ingest. Another thread already
    /// sealing takes these spans too, so this one returns at once instead
    /// of waiting on it (an hour of 1,000 per-second series takes about
    /// 0.2 s to lay out, and a waiting ingest holds its client that long).
    /// Two rules keep that safe:
    /// - No span is left behind: a sealer lets go of `sealing` and looks
    ///   again, until it finds none closed. A span closed by an ingest
    ///   whose `try_lock` failed is in the store before that failure, so
    ///   the holder it failed against sees it on its next look.
    /// - Memory stays bounded: with more than [`MAX_UNSEALED`] closed
    ///   spans waiting, an ingest waits for the sealer instead. The count
    ///   is read after the batch is applied, so at most [`MAX_UNSEALED`]
    ///   plus what each concurrent ingest closes can wait at once.
    ///
    /// If the sealer fails, the spans left to it wait for the next ingest
    /// or checkpoint (they are readable and in the WAL meanwhile), and the
    /// error goes to the ingest that was sealing.
    ///
    /// Returns whether this ingest sealed anything.
    fn seal_closed_after_ingest(&self) -> Result<bool> {
        let mut sealed = false;
        loop {
            let waiting = self.store.read().map_err(|_| EngineError::Poisoned("store lock"))?.pending_seal_count();
            if waiting == 0 {
                return Ok(sealed);
            }
            let _one = match self.sealing.try_lock() {
                Ok(one) => one,
                Err(std::sync::TryLockError::WouldBlock) if waiting <= MAX_UNSEALED => return Ok(sealed),
                Err(std::sync::TryLockError::WouldBlock) => {
                    self.sealing.lock().map_err(|_| EngineError::Poisoned("sealing"))?
                }
                Err(std::sync::TryLockError::Poisoned(_)) => return Err(EngineError::Poisoned("sealing")),
            };
            self.seal_pending()?;
            sealed = true;
        }
    }

    /// Seals closed spans until none waits, with no state lock held while
    /// laying one out (the store's write lock only to swap it in). Ingests
    /// may close more meanwhile and leave them to this sealer, hence the
    /// loop. The caller holds `sealing`. The outcome is kept for
    /// [`Engine::seal_failure`].
    fn seal_pending(&self) -> Result<()> {
        let done = self.seal_each_pending();
        *self.seal_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            done.as_ref().err().map(ToString::to_string);
        done
    }

    /// [`Engine::seal_pending`]'s work: lays out what waits until nothing
    /// does, stopping at the first failure.
    fn seal_each_pending(&self) -> Result<()> {
        loop {
            let pending = self.store.read().map_err(|_| EngineError::Poisoned("store lock"))?.pending_seals();
            if pending.is_empty() {
                return Ok(());
            }
            for (tier, ue, span) in pending {
                #[cfg(test)]
                if self.fail_seals.load(Ordering::SeqCst) {
                    let fault = arrow_schema::ArrowError::ComputeError("a test's fault".into());
                    return Err(EngineError::Arrow { tier: tier as u8, source: fault });
                }
                let seg = Arc::new(Segment::seal(tier as u8, &span)?);
                self.store
                    .write()
                    .map_err(|_| EngineError::Poisoned("store lock"))?
                    .complete_seal(tier, ue, &span, seg);
            }
        }
    }

    /// Why the last laying out of closed spans failed, until one succeeds
    /// (`None` while they succeed). Meanwhile the spans stay in memory,
    /// readable and in the WAL, and an ingest that finds more than
    /// [`MAX_UNSEALED`] of them waiting lays them out before it writes
    /// anything, and is refused if that fails again.
    pub fn seal_failure(&self) -> Option<String> {
        self.seal_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Validates the whole batch, then applies it. With a data dir the batch
    /// is in the WAL (durable per the fsync policy) before it is applied and
    /// before this returns. An invalid batch changes nothing.
    pub fn ingest(&self, batch: &IngestBatch) -> Result<IngestReport> {
        self.ingest_with(batch, None)
    }

    /// Like [`Engine::ingest`]; a batch that would create more new series
    /// than `allowance` gives (the caller's, e.g. a token's hourly limit) is
    /// refused whole, as is one that would pass `max_series`.
    pub fn ingest_with(&self, batch: &IngestBatch, allowance: Option<&dyn SeriesAllowance>) -> Result<IngestReport> {
        let (report, after) = self.ingest_deferred(batch, allowance)?;
        // Applied and in the WAL: a failure to lay out what it closed is
        // kept for `/health` (see `seal_failure`), not this batch's error.
        if let Err(e) = self.finish_ingest(after) {
            tracing::error!(error = %e, "laying out closed spans after an ingest failed");
        }
        Ok(report)
    }

    /// [`Engine::ingest_with`], acknowledged (durable) before the hours the
    /// batch closed are laid out: that work ([`Engine::finish_ingest`], up
    /// to a few tens of milliseconds at an hour's end) is left to the
    /// caller, who runs it after answering its client, on any thread. It
    /// is done here after all when more than [`MAX_UNSEALED`] closed spans
    /// already wait, so memory stays bounded whoever forgets it; a span
    /// left waiting is readable meanwhile and in the WAL, and the next
    /// ingest or checkpoint lays it out. A failure of that work does not
    /// fail this ingest, which is applied and in the WAL by then: it is
    /// kept ([`Engine::seal_failure`]), and the next batch that finds the
    /// bound passed is refused whole unless laying out succeeds first.
    pub fn ingest_deferred(
        &self,
        batch: &IngestBatch,
        allowance: Option<&dyn SeriesAllowance>,
    ) -> Result<(IngestReport, AfterIngest)> {
        let default_node = self.config.default_node.as_str();
        // Read once: the future check and the head's cap (logged with the
        // batch, so replay moves the head as this apply does) agree. The
        // clock caps the head only where the engine trusts it, as it does
        // once it refuses samples too far ahead of it.
        let now = self.now();
        let clock = self.config.max_future_secs.map(|_| now);
        // Encoded before taking the order lock: it needs nothing but the batch.
        let bytes = self.persist.as_ref().map(|_| {
            let mut out = Vec::new();
            codec::encode(default_node, clock, batch, &mut out);
            out
        });
        let poisoned = |what| EngineError::Poisoned(what);
        // What needs no catalog is checked before the order lock, so
        // concurrent batches do it in parallel.
        validate_shape(batch, default_node)?;
        if let Some(max) = self.config.max_future_secs {
            reject_future(batch, now, max)?;
        }
        // What the catalog decides is checked here too, under its read lock
        // alone, so concurrent batches do it in parallel; under the order
        // lock it is redone only if the catalog changed in between. Every
        // change it reads (a new node, instance or metric, a node's
        // machine_guid) moves the registry's generation, and a metric's
        // update_every never changes. The metrics of a batch of known
        // series with unchanged metadata are found here too, so such a
        // batch (the steady state of every collector) takes no catalog
        // write lock at all.
        let checked = {
            let cat = self.catalog.read().map_err(|_| poisoned("catalog lock"))?;
            // A batch of known series (the steady state) is checked by
            // metric id; only others look their names up again.
            let known = known_metrics(&cat, batch, default_node);
            let new = match &known {
                Some(metrics) => {
                    validate_known(batch, &cat, metrics, default_node)?;
                    0
                }
                None => {
                    validate_against(batch, &cat, default_node)?;
                    validate_contexts(batch, &cat, default_node)?;
                    new_series(batch, &cat, default_node)
                }
            };
            (cat.registry().generation(), new, known)
        };
        self.refuse_while_seals_fail()?;
        let (report, lsn) = {
            // WAL order must be apply order, so both happen under this lock;
            // the fsync does not (below), which lets concurrent batches share
            // one fsync (group commit) instead of queueing for one each.
            let _order = self.ingest_order.lock().map_err(|_| poisoned("ingest order"))?;
            let (new, known) = {
                let cat = self.catalog.read().map_err(|_| poisoned("catalog lock"))?;
                let (new, known) = match checked {
                    (generation, new, known) if generation == cat.registry().generation() => (new, known),
                    _ => {
                        validate_against(batch, &cat, default_node)?;
                        validate_contexts(batch, &cat, default_node)?;
                        (new_series(batch, &cat, default_node), None)
                    }
                };
                let held = cat.registry().metrics().len() as u64;
                let room = self.config.max_series.saturating_sub(held);
                if new > room {
                    return Err(EngineError::TooManySeries {
                        new,
                        allowed: room,
                        limit_name: "--max-series",
                        per_token: false,
                    });
                }
                // Taken here, under the order lock, so that concurrent
                // batches of one allowance cannot each see the same room.
                if let Some(a) = allowance.filter(|_| new > 0) {
                    a.take(new).map_err(|allowed| EngineError::TooManySeries {
                        new,
                        allowed,
                        limit_name: "the token's hourly new-series limit",
                        per_token: true,
                    })?;
                }
                (new, known)
            };
            let lsn = match (&self.persist, &bytes) {
                (Some(p), Some(bytes)) => Some(p.wal.write(bytes)?),
                _ => None,
            };
            let series = match known {
                Some(metrics) => slotted(batch, &metrics),
                None => slotted(batch, &self.register_in_turns(batch, default_node)?),
            };
            let o = self.write_in_turns(&runs_of(&series), clock)?;
            (IngestReport { accepted: o.written, rejected_late: o.late, new_series: new }, lsn)
        };
        let (unsealed, sealed_events) = {
            let s = self.store.read().map_err(|_| poisoned("store lock"))?;
            (s.pending_seal_count(), s.has_sealed_events())
        };
        let due = unsealed > 0 || sealed_events;
        let mut after = AfterIngest { due, _pending: due.then(|| Followup::new(&self.followups)) };
        if unsealed > MAX_UNSEALED {
            // The batch is applied and in the WAL: it is acknowledged even
            // if this fails (the failure is kept for `/health`, and the next
            // batch past the bound tries again before it writes).
            if let Err(e) = self.finish_ingest(std::mem::take(&mut after)) {
                tracing::error!(error = %e, "laying out closed spans during an ingest failed");
            }
        }
        // Acknowledged only once durable. Until then queries may already see
        // the batch; if the fsync fails the caller gets the error and the
        // log refuses further writes (it is poisoned), so nothing later is
        // acknowledged on top of a possibly lost record.
        if let (Some(p), Some(lsn)) = (&self.persist, lsn) {
            p.wal.wait_durable(lsn)?;
        }
        Ok((report, after))
    }

    /// Registers the batch's nodes and series, taking the catalog's write
    /// lock for [`REGISTER_TURN`] series at a time: a batch of a few
    /// hundred thousand new series takes a second or more to register,
    /// and readers (queries, `/health`) would wait that long for one lock.
    /// Between turns they may see some of the batch's series, without
    /// samples yet, as they may see a registered series whose samples a
    /// late batch has not brought. The caller holds `ingest_order`, so no
    /// other ingest registers in between.
    fn register_in_turns(&self, batch: &IngestBatch, default_node: &str) -> Result<Vec<MetricId>> {
        let lock = || self.catalog.write().map_err(|_| EngineError::Poisoned("catalog lock"));
        let mut cat = lock()?;
        register_nodes(&mut cat, batch);
        let mut metrics = Vec::with_capacity(batch.series.len());
        for (k, turn) in batch.series.chunks(REGISTER_TURN).enumerate() {
            if k > 0 {
                drop(cat);
                let_readers_in();
                cat = lock()?;
            }
            metrics.extend(turn.iter().map(|s| cat.register(&meta_of(s, default_node))));
        }
        Ok(metrics)
    }

    /// Writes the batch's samples as [`Store::write_batch`] does, taking the
    /// store's write lock for [`WRITE_TURN_RUNS`] runs at a time (fewer when
    /// they are long), so that
    /// readers do not wait for all of a large batch (a quarter of a million
    /// series takes about half a second). The runs are cut from the one
    /// list the whole batch would write, in its order, so the head moves
    /// and samples land exactly as in one turn; between turns readers may
    /// see part of the batch. The caller holds `ingest_order`.
    fn write_in_turns(&self, series: &[SeriesRun<'_>], clock: Option<i64>) -> Result<RunOutcome> {
        let runs = Store::batch_runs(&self.config.storage, series);
        let lock = || self.store.write().map_err(|_| EngineError::Poisoned("store lock"));
        let mut total = RunOutcome::default();
        let mut rest = &runs[..];
        let mut first = true;
        while !rest.is_empty() {
            // Runs up to a turn's worth of points (at least one run).
            let (mut n, mut points) = (0, 0);
            while n < rest.len() && n < WRITE_TURN_RUNS && (n == 0 || points < WRITE_TURN_POINTS) {
                points += rest[n].points.len();
                n += 1;
            }
            let (turn, after) = rest.split_at(n);
            if !std::mem::take(&mut first) {
                let_readers_in();
            }
            let o = lock()?.write_runs(turn, clock)?;
            total.written += o.written;
            total.late += o.late;
            rest = after;
        }
        Ok(total)
    }

    /// Memory stays bounded while laying out fails: past [`MAX_UNSEALED`]
    /// waiting spans, a valid batch first tries laying them out once more
    /// itself, and is refused (nothing written) if that fails again, or if
    /// another thread's try is under way.
    fn refuse_while_seals_fail(&self) -> Result<()> {
        if self.seal_failure().is_none() {
            return Ok(());
        }
        let waiting = || -> Result<usize> {
            Ok(self.store.read().map_err(|_| EngineError::Poisoned("store lock"))?.pending_seal_count())
        };
        if waiting()? <= MAX_UNSEALED {
            return Ok(());
        }
        match self.sealing.try_lock() {
            // Its outcome is kept in `seal_failure`, read below.
            Ok(_one) => drop(self.seal_pending()),
            Err(std::sync::TryLockError::WouldBlock) => {}
            Err(std::sync::TryLockError::Poisoned(_)) => return Err(EngineError::Poisoned("sealing")),
        }
        match (self.seal_failure(), waiting()?) {
            (Some(cause), n) if n > MAX_UNSEALED => Err(EngineError::SealsWaiting { waiting: n, cause }),
            _ => Ok(()),
        }
    }

    /// The work an ingest leaves after it is acknowledged
    /// ([`Engine::ingest_deferred`]): laying out the spans it closed (or
    /// leaving them to a sealer at work), then planning a checkpoint of
    /// what was sealed. Nothing to do returns at once.
    pub fn finish_ingest(&self, after: AfterIngest) -> Result<()> {
        if !after.due {
            return Ok(());
        }
        let poisoned = |what| EngineError::Poisoned(what);
        let sealed_here = self.seal_closed_after_ingest()?;
        // An ingest that left its spans to a busy sealer plans no checkpoint
        // while spans wait (the plan would lay them out again as snapshot
        // files); the sealer plans one when done, as any ingest that sealed.
        let sealed = || {
            let s = self.store.read().map_err(|_| poisoned("store lock"))?;
            Ok::<_, EngineError>(s.has_sealed_events() && (sealed_here || s.pending_seal_count() == 0))
        };
        if let (Some(p), Some(c), true) = (&self.persist, &self.checkpointer, sealed()?) {
            let _order = self.ingest_order.lock().map_err(|_| poisoned("ingest order"))?;
            p.roll_wal();
            let cat = self.catalog.read().map_err(|_| poisoned("catalog lock"))?;
            let mut store = self.store.write().map_err(|_| poisoned("store lock"))?;
            if store.has_sealed_events() {
                c.submit(p.plan(&cat, &mut store, p.wal.last_lsn()));
            }
        }
        // Only now, with the checkpoint it planned counted: `/health` reads
        // the follow-ups first (see `pending_followups`).
        drop(after);
        Ok(())
    }

    /// Why the write-ahead log takes no more writes, once a write or fsync
    /// has failed (`None` while it is healthy, and in memory). Ingest fails
    /// from then on until a restart; see [`crate::wal::WalError::Poisoned`].
    pub fn wal_failure(&self) -> Option<crate::wal::WalFailure> {
        self.persist.as_ref().and_then(|p| p.wal.failure())
    }

    /// Why the last background checkpoint failed, until one succeeds
    /// (`None` while they succeed, and in memory). Until then the WAL keeps
    /// every record (it grows) and closed spans wait in memory.
    pub fn checkpoint_failure(&self) -> Option<String> {
        self.checkpointer.as_ref().and_then(Checkpointer::failure)
    }

    /// Fsyncs of the write-ahead log since open (`None` in memory); fewer
    /// than acknowledged batches when concurrent ingests share them.
    pub fn wal_fsyncs(&self) -> Option<u64> {
        self.persist.as_ref().map(|p| p.wal.fsyncs())
    }

    fn source(&self) -> crate::query::Source<'_> {
        crate::query::Source { catalog: &self.catalog, store: &self.store }
    }

    /// What `req` would cost (see [`crate::query::cost`]), with the
    /// selection it resolved for [`Engine::query_estimated`]; takes the
    /// catalog's read lock for the selection only.
    pub fn estimate(&self, req: QueryRequest) -> Result<crate::query::cost::Estimate> {
        let cat = self.catalog.read().map_err(|_| EngineError::Poisoned("catalog lock"))?;
        crate::query::cost::estimate(&cat, req, self.now())
    }

    /// [`Engine::estimate`] if the catalog's read lock is free right now,
    /// else `Err` with the request back (while a writer holds or awaits
    /// the lock): never blocks, so an async caller can try it before
    /// moving to a blocking thread.
    pub fn try_estimate(
        &self,
        req: QueryRequest,
    ) -> std::result::Result<Result<crate::query::cost::Estimate>, Box<QueryRequest>> {
        match self.catalog.try_read() {
            Ok(cat) => Ok(crate::query::cost::estimate(&cat, req, self.now())),
            Err(std::sync::TryLockError::Poisoned(_)) => Ok(Err(EngineError::Poisoned("catalog lock"))),
            Err(std::sync::TryLockError::WouldBlock) => Err(Box::new(req)),
        }
    }

    /// Runs a data query.
    pub fn query(&self, req: &QueryRequest) -> Result<QueryResult> {
        let _running = Running::start(&self.running);
        let req = Arc::new(req.clone());
        crate::query::run(self.source(), &req, self.now(), &self.config.limits, None, None)
    }

    /// Like [`Engine::query`]; stops with `Cancelled` once `cancel` turns
    /// true (checked between metrics and every few thousand buckets).
    pub fn query_cancellable(&self, req: &QueryRequest, cancel: &std::sync::atomic::AtomicBool) -> Result<QueryResult> {
        let _running = Running::start(&self.running);
        let req = Arc::new(req.clone());
        crate::query::run(self.source(), &req, self.now(), &self.config.limits, Some(cancel), None)
    }

    /// [`Engine::query_cancellable`] of the request `estimate` holds: its
    /// selection is reused while this engine's catalog has not changed
    /// since (else resolved again), so the metrics are resolved once.
    pub fn query_estimated(
        &self,
        estimate: &crate::query::cost::Estimate,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<QueryResult> {
        let _running = Running::start(&self.running);
        let (req, resolved) = (estimate.shared_request(), Some(&estimate.resolved));
        crate::query::run(self.source(), req, self.now(), &self.config.limits, Some(cancel), resolved)
    }

    /// Queries running now.
    pub fn queries_running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Queued checkpoints are written before the data dir's lock goes.
        if let Some(c) = &self.checkpointer {
            c.stop();
        }
    }
}

/// A 400 naming the first sample more than `max` seconds after `now`. Only
/// for new batches: replaying the WAL never re-checks against a later clock.
fn reject_future(batch: &IngestBatch, now: i64, max: i64) -> Result<()> {
    for (i, s) in batch.series.iter().enumerate() {
        if let Some(j) = s.points.iter().position(|p| p.t > now.saturating_add(max)) {
            let ahead = s.points[j].t - now;
            return Err(EngineError::batch(
                format!("series[{i}].points[{j}]"),
                format!(
                    "timestamp {} is {ahead} s ahead of the server clock; at most {max} s is accepted (--max-future)",
                    s.points[j].t
                ),
            ));
        }
    }
    Ok(())
}

/// A batch's series with their metrics and slotted samples: borrowed from
/// the batch for per-second series (their times are their slots), copied
/// and slotted for the others.
type Registered<'a> = Vec<(MetricId, i64, Cow<'a, [RawPoint]>)>;

/// A batch series' metadata as the catalog takes it.
fn meta_of<'a>(s: &'a SeriesSpec, default_node: &'a str) -> SeriesMeta<'a> {
    SeriesMeta {
        node: s.node.as_deref().unwrap_or(default_node),
        context: &s.context,
        instance: s.instance.as_deref().unwrap_or(&s.context),
        dimension: &s.dimension,
        units: s.units.as_deref(),
        title: s.title.as_deref(),
        chart_type: s.chart_type.as_deref(),
        update_every: s.update_every.unwrap_or(1),
        labels: Some(&s.labels),
    }
}

/// Between two turns of a write lock: readers woken by its release need a
/// few microseconds to run, and a writer that locks again at once would
/// win every time (measured: `/health` still waited 0.6 s for a batch of
/// 220,000 new series written in turns). A short pause lets them in.
fn let_readers_in() {
    std::thread::sleep(std::time::Duration::from_micros(50));
}

/// Registers a validated batch's series and nodes; returns each series'
/// metric. Replay's way: under one lock, where no reader waits.
fn register(catalog: &mut Catalog, batch: &IngestBatch, default_node: &str) -> Vec<MetricId> {
    register_nodes(catalog, batch);
    batch.series.iter().map(|s| catalog.register(&meta_of(s, default_node))).collect()
}

/// Upserts the batch's node metadata (before its series name them).
fn register_nodes(catalog: &mut Catalog, batch: &IngestBatch) {
    for n in &batch.nodes {
        catalog.upsert_node(&n.id, n.hostname.as_deref(), n.machine_guid.as_deref(), Some(&n.labels));
    }
}

/// Each series' metric when registering the whole batch would change
/// nothing in the catalog (see [`crate::model::Registry::find_unchanged`]).
fn known_metrics(catalog: &Catalog, batch: &IngestBatch, default_node: &str) -> Option<Vec<MetricId>> {
    let r = catalog.registry();
    let nodes_unchanged = batch
        .nodes
        .iter()
        .all(|n| r.node_unchanged(&n.id, n.hostname.as_deref(), n.machine_guid.as_deref(), Some(&n.labels)));
    if !nodes_unchanged {
        return None;
    }
    batch.series.iter().map(|s| r.find_unchanged(&meta_of(s, default_node))).collect()
}

/// Each series with its metric and samples slotted to its update_every.
fn slotted<'a>(batch: &'a IngestBatch, metrics: &[MetricId]) -> Registered<'a> {
    batch
        .series
        .iter()
        .zip(metrics)
        .map(|(s, &m)| {
            let ue = s.update_every.unwrap_or(1);
            let points = if ue == 1 {
                Cow::Borrowed(s.points.as_slice())
            } else {
                Cow::Owned(s.points.iter().map(|p| RawPoint { t: p.t.div_euclid(ue) * ue, ..*p }).collect())
            };
            (m, ue, points)
        })
        .collect()
}

/// The registered series as the store takes them.
fn runs_of<'a>(series: &'a Registered<'_>) -> Vec<SeriesRun<'a>> {
    series.iter().map(|(m, ue, points)| (*m, *ue, &points[..])).collect()
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
