//! strata-sql: SQL over strata's live store with DataFusion, built only
//! with the cargo feature `sql`.
//!
//! - [`tables`]: `samples` (tier 0), `samples_1m`, `samples_1h` and
//!   `metrics` as table providers over a lock-free view of the store,
//!   with metadata and time filters taken exactly and the caller's node
//!   allowlist enforced inside the provider.
//! - [`functions`]: Netdata's time groups as `nd_*` aggregate functions
//!   wrapping the engine's kernels, and `nd_bucket` (Netdata's bucket
//!   labels). Usable on any DataFusion session (Ballista, Parquet).
//! - [`pushdown`]: per-bucket aggregates over `samples` answered by the
//!   engine's own planner and kernels (the JSON API's numbers, faster).
//! - [`nd_query`]: the engine's query as a table function (ses, des,
//!   incremental-sum and every option of the JSON API).
//! - [`session`]: one statement, its limits and cancellation; [`output`]:
//!   JSON, CSV and Arrow answers.
//!
//! Dependencies flow one way: strata-sql -> strata-engine (the engine
//! knows nothing about SQL).

pub mod complexity;
pub mod error;
pub mod functions;
pub mod nd_query;
pub mod output;
pub mod pushdown;
pub mod session;
pub mod tables;

/// The DataFusion this crate is built on (one version in the tree).
pub use datafusion;
pub use error::SqlError;
/// DataFusion's object store, with its S3 client (`export-parquet --to s3://`).
pub use object_store;
pub use output::{encode, Format};
pub use session::{SqlAnswer, SqlEngine, SqlLimits};

#[cfg(test)]
mod tests;
