//! strata-engine: everything of strata that is not HTTP. Metadata and
//! bitmap indexes (`model`, `catalog`, `index`), the tiered store
//! (`storage`), the ingest API (`ingest`), the query path (`query`), and the
//! deterministic demo/fixture generator (`demo`).
//!
//! Data flows one way: an [`ingest::IngestBatch`] is validated whole and
//! applied through [`Engine::ingest`]; a [`query::request::QueryRequest`]
//! parsed from GET parameters or a JSON body runs through [`Engine::query`]
//! and yields a format-neutral [`query::result::QueryResult`].

pub mod catalog;
pub mod checkpointer;
pub mod demo;
pub mod engine;
pub mod error;
pub mod id_map;
pub mod index;
pub mod ingest;
pub mod meta;
pub mod model;
pub mod persist;
pub mod query;
pub mod quiet_panic;
pub mod storage;
pub mod views;
pub mod wal;

pub use engine::{AfterIngest, Clock, Engine, EngineConfig, SeriesAllowance};
pub use error::{EngineError, ErrorKind, Result};
