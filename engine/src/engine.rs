//! The engine facade: one lock around catalog + store, the ingest entry
//! point, the query entry point, and the clock.
//!
//! Durability: with a data dir ([`Engine::open`]) every batch is written to
//! the WAL before it is applied, and `ingest` returns only after the record
//! is durable per the fsync policy; checkpoints move sealed spans to Arrow
//! files and truncate the WAL (see `persist`). Without one
//! ([`Engine::new`]) the store lives in memory only.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::ingest::{codec, validate, IngestBatch, IngestReport};
use crate::model::SeriesMeta;
use crate::persist::{Persist, PersistOptions, Recovery};
use crate::query::request::QueryRequest;
use crate::query::result::QueryResult;
use crate::query::QueryLimits;
use crate::storage::{RawPoint, StorageConfig, Store};

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

#[derive(Debug)]
pub struct State {
    pub catalog: Catalog,
    pub store: Store,
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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            storage: StorageConfig::default(),
            limits: QueryLimits::default(),
            default_node: "localhost".into(),
            max_future_secs: Some(DEFAULT_MAX_FUTURE_SECS),
        }
    }
}

#[derive(Debug)]
pub struct Engine {
    state: RwLock<State>,
    clock: Clock,
    config: EngineConfig,
    persist: Option<Persist>,
    /// Orders ingests: WAL order must equal apply order.
    ingest_order: Mutex<()>,
}

impl Engine {
    pub fn new(config: EngineConfig, clock: Clock) -> Self {
        Engine {
            state: RwLock::new(State { catalog: Catalog::default(), store: Store::new(config.storage) }),
            clock,
            config,
            persist: None,
            ingest_order: Mutex::new(()),
        }
    }

    /// Opens a durable engine on a data dir: loads sealed spans and the last
    /// snapshot, replays the WAL after it, and takes the dir's lock.
    pub fn open(config: EngineConfig, clock: Clock, opts: &PersistOptions) -> Result<(Engine, Recovery)> {
        let mut store = Store::new(config.storage);
        let (persist, catalog, records, mut rec) = Persist::open(opts, &mut store)?;
        let mut state = State { catalog, store };
        let mut last = rec.snapshot_lsn;
        for (lsn, bytes) in records {
            last = lsn;
            let applied = codec::decode(&bytes)
                .map_err(|e| EngineError::batch("wal", format!("undecodable WAL record {lsn}: {e}")))
                .and_then(|(default_node, batch)| {
                    validate(&batch, &state.catalog, &default_node)?;
                    apply(&mut state, &batch, &default_node)
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
        if state.store.has_sealed_events() {
            persist.checkpoint(&state.catalog, &mut state.store, last)?;
        }
        let engine =
            Engine { state: RwLock::new(state), clock, config, persist: Some(persist), ingest_order: Mutex::new(()) };
        Ok((engine, rec))
    }

    /// Writes everything applied so far as a checkpoint (after bulk loads,
    /// at shutdown). A no-op without a data dir.
    pub fn checkpoint(&self) -> Result<()> {
        let Some(p) = &self.persist else { return Ok(()) };
        let _order = self.ingest_order.lock().map_err(|_| EngineError::Poisoned("ingest order"))?;
        let plan = {
            let mut st = self.write()?;
            let State { catalog, store } = &mut *st;
            p.plan(catalog, store, p.wal.last_lsn())?
        };
        let done = p.write(plan)?;
        done.apply(&mut self.write()?.store);
        p.wal.sync()?;
        Ok(())
    }

    /// Bytes on disk per tier (sealed files), when durable.
    pub fn disk_bytes(&self) -> Option<[u64; crate::storage::TIERS]> {
        self.persist.as_ref().map(Persist::disk_bytes)
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.state.read().map_err(|_| EngineError::Poisoned("state lock"))
    }

    pub fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(|_| EngineError::Poisoned("state lock"))
    }

    /// Validates the whole batch, then applies it. With a data dir the batch
    /// is in the WAL (durable per the fsync policy) before it is applied and
    /// before this returns. An invalid batch changes nothing.
    pub fn ingest(&self, batch: &IngestBatch) -> Result<IngestReport> {
        let default_node = self.config.default_node.as_str();
        // Encoded before taking the order lock: it needs nothing but the batch.
        let bytes = self.persist.as_ref().map(|_| {
            let mut out = Vec::new();
            codec::encode(default_node, batch, &mut out);
            out
        });
        let (report, lsn) = {
            // WAL order must be apply order, so both happen under this lock;
            // the fsync does not (below), which lets concurrent batches share
            // one fsync (group commit) instead of queueing for one each.
            let _order = self.ingest_order.lock().map_err(|_| EngineError::Poisoned("ingest order"))?;
            validate(batch, &self.read()?.catalog, default_node)?;
            if let Some(max) = self.config.max_future_secs {
                reject_future(batch, self.now(), max)?;
            }
            let lsn = match (&self.persist, &bytes) {
                (Some(p), Some(bytes)) => Some(p.wal.write(bytes)?),
                _ => None,
            };
            let (report, plan) = {
                let mut st = self.write()?;
                let report = apply(&mut st, batch, default_node)?;
                let plan = match (&self.persist, lsn) {
                    (Some(p), Some(lsn)) if st.store.has_sealed_events() => {
                        let State { catalog, store } = &mut *st;
                        Some(p.plan(catalog, store, lsn)?)
                    }
                    _ => None,
                };
                (report, plan)
            };
            if let (Some(p), Some(plan)) = (&self.persist, plan) {
                // Files are written without the state lock: queries keep
                // running (ingest waits on `ingest_order`, still held here).
                let done = p.write(plan)?;
                done.apply(&mut self.write()?.store);
            }
            (report, lsn)
        };
        // Acknowledged only once durable. Until then queries may already see
        // the batch; if the fsync fails the caller gets the error and the
        // log refuses further writes (it is poisoned), so nothing later is
        // acknowledged on top of a possibly lost record.
        if let (Some(p), Some(lsn)) = (&self.persist, lsn) {
            p.wal.wait_durable(lsn)?;
        }
        Ok(report)
    }

    /// Fsyncs of the write-ahead log since open (`None` in memory); fewer
    /// than acknowledged batches when concurrent ingests share them.
    pub fn wal_fsyncs(&self) -> Option<u64> {
        self.persist.as_ref().map(|p| p.wal.fsyncs())
    }

    /// Runs a data query.
    pub fn query(&self, req: &QueryRequest) -> Result<QueryResult> {
        let st = self.read()?;
        crate::query::run(&st.catalog, &st.store, req, self.now(), &self.config.limits, None)
    }

    /// Like [`Engine::query`]; stops with `Cancelled` once `cancel` turns true.
    pub fn query_cancellable(&self, req: &QueryRequest, cancel: &std::sync::atomic::AtomicBool) -> Result<QueryResult> {
        let st = self.read()?;
        crate::query::run(&st.catalog, &st.store, req, self.now(), &self.config.limits, Some(cancel))
    }
}

/// Applies a validated batch to the state.
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

fn apply(st: &mut State, batch: &IngestBatch, default_node: &str) -> Result<IngestReport> {
    let State { catalog, store } = st;
    for n in &batch.nodes {
        catalog.registry.upsert_node(&n.id, n.hostname.as_deref(), Some(&n.labels));
    }
    let mut points: Vec<RawPoint> = Vec::with_capacity(batch.series.iter().map(|s| s.points.len()).sum());
    let mut series = Vec::with_capacity(batch.series.len());
    for s in &batch.series {
        let ue = s.update_every.unwrap_or(1);
        let m = catalog.register(&SeriesMeta {
            node: s.node.as_deref().unwrap_or(default_node),
            context: &s.context,
            instance: s.instance.as_deref().unwrap_or(&s.context),
            dimension: &s.dimension,
            units: s.units.as_deref(),
            title: s.title.as_deref(),
            chart_type: s.chart_type.as_deref(),
            update_every: ue,
            labels: Some(&s.labels),
        });
        let from = points.len();
        points.extend(s.points.iter().map(|p| RawPoint {
            t: p.t.div_euclid(ue) * ue,
            value: p.value,
            anomalous: p.anomalous,
        }));
        series.push((m, ue, from..points.len()));
    }
    let o = store.write_batch(&points, &series)?;
    let report = IngestReport { accepted: o.written, rejected_late: o.late };
    Ok(report)
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
