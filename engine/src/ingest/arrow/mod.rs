//! The binary ingest body: an Arrow IPC *stream*
//! (`Content-Type: application/vnd.apache.arrow.stream`) in long format,
//! one row per sample, decoded into the same [`IngestBatch`] the JSON body
//! becomes, so it goes through the same whole-batch validation and apply.
//!
//! Columns (by name, any order; unknown names are refused):
//!
//! | column | type | null means | required |
//! |---|---|---|---|
//! | `node` | utf8 / large utf8 / utf8 view, a dictionary of those, or run-end-encoded (int16/32/64 run ends) over any of them | the server's default node | no |
//! | `context` | string (as above) | - (refused) | yes |
//! | `instance` | string | the context | no |
//! | `dimension` | string | - (refused) | yes |
//! | `ts` | int64 epoch seconds, or timestamp(second) | - (refused) | yes |
//! | `value` | float64 | an explicit gap | yes |
//! | `anomalous` | bool | false | no |
//! | `update_every` | int64 seconds, plain or run-end-encoded | 1 | no |
//! | `units`, `title`, `chart_type` | string | not set | no |
//!
//! Rows of one metric (node, instance, dimension) need not be adjacent; they
//! become one series whose points keep row order, so the last row for a
//! slot wins as in JSON. Metadata columns are read from a metric's first
//! row; a later row that disagrees on `update_every` is refused. Labels and
//! node metadata are not carried: send those in a JSON batch.
//!
//! Adjacent rows that name one metric are read as a run: names checked and
//! the series found once, the points checked and appended column by
//! column. The batch, and the first error with its row, are exactly those
//! of reading every row on its own (a property test compares the two).
//!
//! Invariant: decoding never applies anything and never panics on any
//! input (arrow-ipc asserts on some damaged buffers, so decoding runs under
//! `catch_unwind`, unreported by the panic hook: [`crate::quiet_panic`]);
//! a bad stream is an [`EngineError::InvalidBatch`] whose path names
//! the column (`columns.ts`), the row (`rows[12].value`, counted across the
//! stream's record batches) or the stream itself (`stream`).
//!
//! [`IngestBatch`]: super::IngestBatch
//! [`EngineError::InvalidBatch`]: crate::error::EngineError::InvalidBatch

mod columns;
mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::{decode_stream, Decoded, RowMap};
pub use encode::encode_stream;

/// The media type of an Arrow IPC stream.
pub const CONTENT_TYPE: &str = "application/vnd.apache.arrow.stream";

/// Every column name the decoder knows.
pub const COLUMNS: &[&str] = &[
    "node",
    "context",
    "instance",
    "dimension",
    "ts",
    "value",
    "anomalous",
    "update_every",
    "units",
    "title",
    "chart_type",
];
