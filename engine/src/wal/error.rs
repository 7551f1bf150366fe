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
    /// The cause was logged when it happened; reopen the log to recover.
    #[error("WAL is unusable after an earlier failure; reopen it to recover")]
    Poisoned,
}

impl WalError {
    /// The crate-wide category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WalError::RecordTooLarge { .. } => ErrorKind::LimitExceeded,
            WalError::BadPolicy(_) => ErrorKind::BadInput,
            WalError::Io { .. } | WalError::UnsupportedVersion { .. } | WalError::Poisoned => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalError::Io { op, path: path.into(), source }
    }
}
