//! Tiered storage: tier 0 raw per update_every slot, tiers 1-2 aggregates
//! (sum/min/max/count/anomaly_count). Open spans are the head; closed spans
//! are sealed into immutable Arrow record batches.

pub mod bits;
pub mod block;
pub mod codec;
pub mod open_span;
pub mod prefetch;
pub mod row;
pub mod samples;
pub mod segment;
pub mod segment_file;
pub mod store;
pub mod tier;
pub mod view;

pub use row::{AggColumns, AggPoint, AggRows, RowData, Run};
pub use store::{BatchRun, Extent, RawPoint, RunOutcome, SeriesRun, Store, WriteOutcome};
pub use tier::{StorageConfig, TierSpec, TIERS};
pub use view::StoreView;
