//! The engine's one error type. Every variant carries the data a caller
//! needs to explain the problem, and belongs to one [`ErrorKind`], which the
//! server maps to an HTTP status in exactly one place.

use thiserror::Error;

/// What kind of failure this is, independent of its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something invalid (400).
    BadInput,
    /// A named thing does not exist (404).
    NotFound,
    /// A configured limit was exceeded (400 for query limits, 413 for sizes).
    LimitExceeded,
    /// The query ran out of time (504).
    Timeout,
    /// The caller went away or lost its rights mid-query.
    Cancelled,
    /// The caller may not see what it named (403).
    Forbidden,
    /// A bug or an environment failure (500).
    Internal,
    /// The disk (or quota) under the data dir is full (507).
    StorageFull,
    /// The engine cannot take this now, for a reason on its side that may
    /// pass (503).
    Unavailable,
}

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("{message}")]
    InvalidParameter {
        /// The request parameter (GET name or JSON path) that is wrong.
        param: String,
        message: String,
    },
    #[error("{message}")]
    InvalidBatch {
        /// Where in the ingest body, e.g. `series[3].points[7]`.
        path: String,
        message: String,
    },
    #[error("invalid pattern in '{param}': {source}")]
    InvalidPattern {
        param: String,
        #[source]
        source: crate::index::pattern::PatternError,
    },
    #[error("query matches {matched} metrics, over the limit of {limit} (cardinality_limit / --max-query-metrics)")]
    TooManyMetrics { matched: u64, limit: u64 },
    #[error(
        "query would need about {estimated_mib} MiB for its {groups} groups x {points} points (limit {limit_mib} MiB, --query-memory): ask for fewer points, group by fewer keys, or select fewer metrics"
    )]
    OverMemoryBudget { estimated_mib: u64, limit_mib: u64, groups: u64, points: u64 },
    #[error("this batch would create {new} series, but {limit_name} allows only {allowed} more")]
    TooManySeries {
        new: u64,
        allowed: u64,
        /// `--max-series`, or the calling token's hourly allowance.
        limit_name: &'static str,
        per_token: bool,
    },
    #[error("query timed out after {elapsed_ms} ms (timeout {timeout_ms} ms)")]
    Timeout { timeout_ms: u64, elapsed_ms: u64 },
    #[error("the query was cancelled")]
    Cancelled,
    #[error("{0}")]
    Forbidden(String),
    #[error("chart '{0}' not found")]
    ChartNotFound(String),
    #[error("no metrics were matched by the query")]
    NothingMatched,
    #[error("failed to build an Arrow segment for tier {tier}: {source}")]
    Arrow {
        tier: u8,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error("engine state is unavailable: {0}")]
    Poisoned(&'static str),
    #[error(
        "ingest is paused: {waiting} closed spans wait in memory because laying them out fails ({cause}); \
         nothing of this batch was written, send it again once /health no longer reports the failure"
    )]
    SealsWaiting { waiting: usize, cause: String },
    #[error("cannot {what} {path}: {source}")]
    Storage {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data dir {path} is in use by another strata process")]
    DataDirLocked { path: std::path::PathBuf },
    #[error("{path} says format version {found}; this strata reads version {supported} (upgrade strata)")]
    UnsupportedVersion { path: std::path::PathBuf, found: String, supported: u32 },
    #[error("snapshot {path} is unusable: {message}")]
    Snapshot { path: std::path::PathBuf, message: String },
    #[error(transparent)]
    Wal(#[from] crate::wal::WalError),
    #[error(transparent)]
    SegmentFile(#[from] crate::storage::segment_file::SegmentFileError),
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Wal(e) => e.kind(),
            EngineError::Storage { source, .. } if crate::wal::is_out_of_space(source) => ErrorKind::StorageFull,
            EngineError::SegmentFile(crate::storage::segment_file::SegmentFileError::Io { source, .. })
                if crate::wal::is_out_of_space(source) =>
            {
                ErrorKind::StorageFull
            }
            EngineError::InvalidParameter { .. }
            | EngineError::InvalidBatch { .. }
            | EngineError::InvalidPattern { .. } => ErrorKind::BadInput,
            EngineError::TooManyMetrics { .. }
            | EngineError::OverMemoryBudget { .. }
            | EngineError::TooManySeries { .. } => ErrorKind::LimitExceeded,
            EngineError::Timeout { .. } => ErrorKind::Timeout,
            EngineError::Cancelled => ErrorKind::Cancelled,
            EngineError::Forbidden(_) => ErrorKind::Forbidden,
            EngineError::ChartNotFound(_) | EngineError::NothingMatched => ErrorKind::NotFound,
            EngineError::SealsWaiting { .. } => ErrorKind::Unavailable,
            EngineError::Arrow { .. }
            | EngineError::Poisoned(_)
            | EngineError::Storage { .. }
            | EngineError::DataDirLocked { .. }
            | EngineError::UnsupportedVersion { .. }
            | EngineError::Snapshot { .. }
            | EngineError::SegmentFile(_) => ErrorKind::Internal,
        }
    }

    /// Where in the request the problem is, when known.
    pub fn path(&self) -> Option<&str> {
        match self {
            EngineError::InvalidParameter { param, .. } | EngineError::InvalidPattern { param, .. } => Some(param),
            EngineError::InvalidBatch { path, .. } => Some(path),
            _ => None,
        }
    }

    pub fn param(param: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::InvalidParameter { param: param.into(), message: message.into() }
    }

    pub fn batch(path: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::InvalidBatch { path: path.into(), message: message.into() }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::segment_file::SegmentFileError;

    /// A full disk is `StorageFull` wherever the write failed (the WAL, a
    /// segment file laid out at start or at a checkpoint), so every path
    /// that reports one gives the same remedy; other I/O errors are not.
    #[test]
    fn a_full_disk_is_storage_full_from_a_segment_file_too() {
        let io = |kind| std::io::Error::new(kind, "x");
        let seg = |kind| {
            EngineError::SegmentFile(SegmentFileError::Io { op: "write", path: "t0.tmp".into(), source: io(kind) })
        };
        assert_eq!(seg(std::io::ErrorKind::StorageFull).kind(), ErrorKind::StorageFull);
        assert_eq!(seg(std::io::ErrorKind::QuotaExceeded).kind(), ErrorKind::StorageFull);
        assert_ne!(seg(std::io::ErrorKind::PermissionDenied).kind(), ErrorKind::StorageFull);
    }
}
