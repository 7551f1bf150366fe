//! Views shaped for clients that are not Netdata queries: the live per-node
//! snapshot behind the WebSocket/SSE streams ([`snapshot`]) and the
//! Nezha metric table that turns a Nezha history request into an ordinary
//! data query ([`nezha`]).
//!
//! Invariants: nothing here writes, and nothing reads storage except through
//! the store's public read API (`extent`, `for_each_run` via
//! `meta::latest`) or the query path (`QueryRequest`), under the engine's
//! read lock held by the caller for the duration of one call only. A node
//! outside the caller's allowlist never appears in any output.

pub mod nezha;
pub mod snapshot;
