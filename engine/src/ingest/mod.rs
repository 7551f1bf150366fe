//! The one ingest API every front door uses (JSON and Arrow IPC endpoint, the local
//! collector, the demo loader, fixtures). A batch is validated whole, then
//! applied; a rejected batch changes nothing.

pub mod arrow;
mod batch;
pub mod codec;
pub mod fast_json;
mod validate;

pub use batch::{IngestBatch, NodeSpec, Point, SeriesSpec};
pub use validate::{new_series, validate, validate_against, validate_contexts, validate_known, validate_shape};

use serde::Serialize;

/// What an accepted batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// Points written (gaps included).
    pub accepted: u64,
    /// Points older than the open head, refused.
    pub rejected_late: u64,
    /// Series this batch created.
    #[serde(skip_serializing_if = "is_zero")]
    pub new_series: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
