//! The server's allocator settings (glibc).
//!
//! glibc serves a large allocation with `mmap` only while it is above a
//! threshold that rises to the size of every large block freed, up to
//! 32 MiB. After the first ingest bodies are freed, later bodies, decoded
//! batches and WAL records (one to a few MiB each) come from the heaps of
//! the threads that handle requests, and each heap keeps what it once held.
//! Measured on a load of 21.6 M samples (1,000 series x 6 h, 2 clients):
//! peak anonymous memory 334 MB, of which about 35 MB is live head data.
//! Pinning the threshold gives each larger buffer back to the system when
//! it is freed. At 1 MiB: peak 148 MB, and a 1,000-series x 300-point
//! answer about 8 % slower (its buffers are fresh pages). But every ingest
//! body (2.4 MB for 60,000 samples as Arrow IPC) was then mapped, faulted
//! in page by page and unmapped per request: a tenth of the server's CPU
//! in that load. At 4 MiB such bodies come from the heaps, which keep a
//! few of them: the same load, three alternating pairs, 0.29 against 0.32
//! CPU seconds per million samples for Arrow and 0.37 against 0.40 for
//! JSON, with the same peak (153-160 MB against 150-165). Sealing's
//! buffers (tens of MB) are still mapped. The trim threshold is raised
//! with it (pinning one pins both, at 128 KiB), so small-request churn
//! does not shrink and regrow the main heap on every request.

/// Large blocks from here up are mapped and unmapped on their own.
const MMAP_THRESHOLD: i32 = 4 << 20;
/// Free memory at the top of the main heap kept for reuse.
const TRIM_THRESHOLD: i32 = 16 << 20;

/// Applies the settings; call once, before the server starts its threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    // SAFETY: mallopt only changes the allocator's parameters; it takes the
    // allocator's lock and is called before any other thread exists.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    };
    if !ok {
        tracing::warn!("could not set the allocator's mmap and trim thresholds; memory use may be higher");
    }
}

/// Other allocators return large blocks by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}
