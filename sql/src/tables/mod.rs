//! strata's tables: `samples` (tier 0), `samples_1m`, `samples_1h` (the
//! rollup tiers) and `metrics` (metadata), read from the live store.
//!
//! Locking: a scan takes [`Engine::read`] (the catalog's and the store's
//! read locks) once, at plan time, for as long as it takes to resolve the
//! metadata filters over the visible metrics and take a [`StoreView`]
//! (sealed segment lists and shared open blocks, by `Arc`); batches are
//! then produced from that view with no lock held, so ingest never waits
//! for a SQL scan.
//!
//! Allowlist: every table sees only the metrics of the nodes the caller's
//! token allows ([`Source::visible`]); other nodes' rows never leave the
//! provider, whatever the SQL says (joins, subqueries and the `metrics`
//! table included).
//!
//! [`StoreView`]: strata_engine::storage::StoreView

pub mod filters;
pub mod metrics;
pub mod samples;
pub mod scan;
pub mod schema;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use roaring::RoaringBitmap;
use strata_engine::catalog::Catalog;
use strata_engine::index::SimplePattern;
use strata_engine::query::select::nodes_by_id;
use strata_engine::Engine;

/// What the tables read, on whose behalf.
#[derive(Clone)]
pub struct Source {
    pub engine: Arc<Engine>,
    /// The caller's node allowlist (node ids); `None` sees every node.
    pub allow: Option<SimplePattern>,
    /// Turns true when the caller went away or its token was revoked.
    pub cancel: Arc<AtomicBool>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("allow", &self.allow.is_some()).finish()
    }
}

impl Source {
    /// The metrics the caller may see.
    pub fn visible(&self, cat: &Catalog) -> RoaringBitmap {
        match &self.allow {
            Some(p) => nodes_by_id(cat, p),
            None => cat.postings().all.clone(),
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// An engine error as a DataFusion error.
pub fn engine_err(e: strata_engine::EngineError) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(e))
}
