//! The process's allocator: jemalloc, on Linux.
//!
//! Ingest allocates per request: the body, a decoded batch of a thousand
//! series (their names and points), a WAL record, then frees them all.
//! Under glibc that churn, spread over the request threads' heaps, cost
//! about a fifth of the server's CPU in a bulk load (`malloc` searching
//! its free lists, `malloc_consolidate`, `unlink_chunk`), and each heap
//! kept what it once held unless large blocks were pinned to `mmap`,
//! which then faulted every body in page by page. jemalloc's per-thread
//! caches and size classes serve the same pattern without either.
//!
//! Measured on `strata bench-peer --no-peers --series 1000 --hours 3`
//! (three alternating pairs, same binary, jemalloc by `LD_PRELOAD`):
//! CPU seconds per million samples 0.27 / 0.27 / 0.22 against 0.29 /
//! 0.29 / 0.30 for JSON, 0.26 / 0.22 / 0.24 against 0.26 / 0.34 / 0.33
//! for Arrow; peak anonymous memory 126-139 MB against 111-117 MB. The
//! criterion query bench did not get slower: the 24 h automatic-tier
//! query read 74-92 ms CPU against 92-104, the 1 h one 8-10 against
//! 14-16, the median 716-868 against 732-852 (the host's noise).
//!
//! The query, SQL and ingest benches include this file, so what they
//! measure is what the server runs.

#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
