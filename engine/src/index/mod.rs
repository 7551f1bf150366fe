//! Selection: Netdata simple patterns, label filters, and roaring-bitmap
//! indexes from names to MetricIds.

pub mod labels;
pub mod pattern;
pub mod postings;

pub use labels::LabelFilter;
pub use pattern::{PatternError, SimplePattern};
pub use postings::Postings;
