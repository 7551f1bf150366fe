//! The SQL surface's errors, each in one category the server maps to a
//! status: bad input (the SQL, its plan, a bad function argument: 400),
//! forbidden (403), a limit (rows, bytes: 400; time: 504, as every query's
//! timeout), cancelled (the caller left or its token was revoked),
//! internal (500).

use datafusion::error::DataFusionError;
use strata_engine::{EngineError, ErrorKind};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SqlError {
    /// The statement cannot be parsed, planned or run as written.
    #[error("{0}")]
    Invalid(String),
    /// Only read-only queries are allowed.
    #[error("only queries are allowed (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE): {0}")]
    NotAQuery(String),
    #[error(
        "the result has more than {limit} rows (the SQL row limit, --sql-max-rows); add a LIMIT or aggregate more"
    )]
    TooManyRows { limit: usize },
    #[error("the result is {size} bytes, over the SQL byte limit of {limit} bytes (--sql-max-bytes)")]
    TooManyBytes { size: usize, limit: usize },
    #[error("the query took longer than {timeout_ms} ms (the query time limit, --query-timeout)")]
    Timeout { timeout_ms: u64 },
    #[error("the query was cancelled (the client went away or its token was revoked)")]
    Cancelled,
    /// An error of strata's engine (kind kept for the status).
    #[error("{message}")]
    Engine { kind: ErrorKind, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl SqlError {
    /// From a DataFusion error: the engine's own errors keep their kind;
    /// planning and evaluation errors are the caller's input.
    pub fn from_datafusion(e: DataFusionError) -> SqlError {
        let root = e.find_root();
        if let DataFusionError::External(inner) = root {
            if let Some(engine) = inner.downcast_ref::<EngineError>() {
                return match engine {
                    EngineError::Cancelled => SqlError::Cancelled,
                    e => SqlError::Engine { kind: e.kind(), message: e.to_string() },
                };
            }
        }
        match root {
            DataFusionError::ResourcesExhausted(m) => SqlError::Invalid(format!(
                "the statement needs more memory than one query may use (--query-memory): {}",
                clean(m)
            )),
            DataFusionError::Internal(m) => SqlError::Internal(m.clone()),
            DataFusionError::IoError(e) => SqlError::Internal(e.to_string()),
            DataFusionError::ExecutionJoin(e) => SqlError::Internal(e.to_string()),
            _ => SqlError::Invalid(clean(&root.to_string())),
        }
    }
}

/// DataFusion's messages carry a category prefix and sometimes a backtrace hint.
fn clean(msg: &str) -> String {
    let m = msg.split("\n\nBacktrace").next().unwrap_or(msg);
    m.trim().to_string()
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        SqlError::from_datafusion(e)
    }
}
