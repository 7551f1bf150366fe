//! A hint to the CPU to start loading memory the scan will read soon.
//!
//! **Safety.** The crate's second and last module with `unsafe` (the first
//! is the mmap reader in `segment_file`): a prefetch is only a hint; it
//! never faults, whatever the address, and changes no memory, so calling it
//! on any slice is sound. It exists because the exact tier rule reads tier
//! 0 in short slices a bucket apart, a stride the hardware prefetcher does
//! not follow: without it each slice waits for memory.

/// Asks for the cache lines holding `data` (at most `MAX_LINES` of them).
#[inline]
pub fn slice<T>(data: &[T]) {
    const LINE: usize = 64;
    const MAX_LINES: usize = 16;
    let bytes = std::mem::size_of_val(data);
    let start = data.as_ptr() as *const i8;
    let mut off = 0;
    while off < bytes.min(LINE * MAX_LINES) {
        line(start.wrapping_add(off));
        off += LINE;
    }
}

#[inline]
fn line(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint that never dereferences `p` in a way
    // that can fault or write; SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
