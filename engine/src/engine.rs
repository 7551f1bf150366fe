//! The engine facade: one lock around catalog + store, the ingest entry
//! point, the query entry point, and the clock.
//!
//! Durability: this store is in memory; an accepted batch is visible to the
//! next query but does not survive a restart (the WAL is its own issue).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::ingest::{validate, IngestBatch, IngestReport};
use crate::model::SeriesMeta;
use crate::query::request::QueryRequest;
use crate::query::result::QueryResult;
use crate::query::QueryLimits;
use crate::storage::{StorageConfig, Store, WriteOutcome};

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

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub storage: StorageConfig,
    pub limits: QueryLimits,
    /// Node id for series that name none (the local host).
    pub default_node: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            storage: StorageConfig::default(),
            limits: QueryLimits::default(),
            default_node: "localhost".into(),
        }
    }
}

#[derive(Debug)]
pub struct Engine {
    state: RwLock<State>,
    clock: Clock,
    config: EngineConfig,
}

impl Engine {
    pub fn new(config: EngineConfig, clock: Clock) -> Self {
        Engine {
            state: RwLock::new(State { catalog: Catalog::default(), store: Store::new(config.storage) }),
            clock,
            config,
        }
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

    /// Validates the whole batch, then applies it. Returns after the batch
    /// is visible to queries. An invalid batch changes nothing.
    pub fn ingest(&self, batch: &IngestBatch) -> Result<IngestReport> {
        let mut st = self.write()?;
        let default_node = self.config.default_node.as_str();
        validate(batch, &st.catalog, default_node)?;
        let State { catalog, store } = &mut *st;
        for n in &batch.nodes {
            catalog.registry.upsert_node(&n.id, n.hostname.as_deref(), Some(&n.labels));
        }
        let mut writes: Vec<(i64, u32, i64, Option<f64>, bool)> =
            Vec::with_capacity(batch.series.iter().map(|s| s.points.len()).sum());
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
            for p in &s.points {
                writes.push((p.t.div_euclid(ue) * ue, m, ue, p.value, p.anomalous));
            }
        }
        // Time order across series, so one batch covering several spans
        // does not make its own earlier points late. Stable: last write wins.
        writes.sort_by_key(|w| w.0);
        let mut report = IngestReport::default();
        for (t, m, ue, v, a) in writes {
            match store.write(m, ue, t, v, a)? {
                WriteOutcome::Written => report.accepted += 1,
                WriteOutcome::Late => report.rejected_late += 1,
            }
        }
        Ok(report)
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
