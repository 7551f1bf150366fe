//! The log's error type. It lives beside the log rather than in the crate's
//! `error.rs` so the WAL can be built and tested on its own; [`WalError::kind`]
//! places every variant in the crate's [`ErrorKind`] categories so the engine
//! can wrap it without a second mapping table.

use std::path::PathBuf;

use thiserror::Error;

use crate::error::ErrorKind;

#[derive(Debug, Error)]
pub enum WalError {
    /// A file-system call failed. `op` names the call ("open", "write",
    /// "fsync", ...) and `path` the file or directory it was made on.
    #[error("WAL {op} failed on {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record bigger than [`super::MAX_RECORD_BYTES`]; nothing was written.
    #[error("WAL record of {len} bytes is over the limit of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    /// A segment written by another version of the format. Refused rather
    /// than truncated: a newer strata's log must never be destroyed by an
    /// older binary that cannot read it.
    #[error("WAL segment {} has format version {version:?}; this build reads only {supported:?}", segment.display())]
    UnsupportedVersion { segment: PathBuf, version: String, supported: &'static str },
    /// A sync policy string that is neither `always` nor `interval:<ms>`.
    #[error("invalid WAL sync policy '{0}': expected 'always' or 'interval:<ms>' with ms > 0")]
    BadPolicy(String),
    /// The log refuses further work: an earlier write or fsync failed (the
    /// file's durable state is then unknown, so carrying on could acknowledge
    /// records that are lost), or a thread panicked while holding its lock.
    /// Only reopening the log (restarting the server) recovers: recovery
    /// keeps every intact record and cuts a torn one.
    #[error("the WAL takes no more writes since {cause}: restart strata once {} (the restart recovers every record the log holds)", cause.remedy())]
    Poisoned { cause: WalFailure },
    /// The newest segment the log created is gone (its marker says it
    /// existed): starting would silently drop the acknowledged records in it.
    #[error(
        "WAL segment {} is missing: the log created it, and the records in it may have been acknowledged. \
         Restore it from a backup; or, to start without those records, remove {}",
        segment.display(), marker.display()
    )]
    MissingSegment { segment: PathBuf, marker: PathBuf },
}

/// The failure that poisoned the log (see [`WalError::Poisoned`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{op} on {} failed: {message}", path.display())]
pub struct WalFailure {
    /// The call that failed ("write", "fsync", ...); "lock" for a panic.
    pub op: &'static str,
    pub path: PathBuf,
    /// The OS's description of the error.
    pub message: String,
    /// The disk (or the user's quota) was full.
    pub out_of_space: bool,
}

impl WalFailure {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, e: &std::io::Error) -> Self {
        WalFailure { op, path: path.into(), message: e.to_string(), out_of_space: is_out_of_space(e) }
    }

    /// What the operator has to fix before the restart.
    pub fn remedy(&self) -> &'static str {
        if self.out_of_space {
            "there is free disk space again"
        } else {
            "its cause is fixed"
        }
    }
}

/// ENOSPC or EDQUOT: the write failed for want of space, not of health.
pub fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}

impl WalError {
    /// The crate-wide category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            _ if self.is_out_of_space() => ErrorKind::StorageFull,
            WalError::RecordTooLarge { .. } => ErrorKind::LimitExceeded,
            WalError::BadPolicy(_) => ErrorKind::BadInput,
            WalError::Io { .. }
            | WalError::UnsupportedVersion { .. }
            | WalError::Poisoned { .. }
            | WalError::MissingSegment { .. } => ErrorKind::Internal,
        }
    }

    /// The disk was full, now or when the log was poisoned.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            WalError::Io { source, .. } => is_out_of_space(source),
            WalError::Poisoned { cause } => cause.out_of_space,
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalError::Io { op, path: path.into(), source }
    }
}
