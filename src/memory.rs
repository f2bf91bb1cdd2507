//! The allocator's one setting: a buffer of 512 KiB or more gets its own mapping, returned to the
//! kernel when it is freed.
//!
//! A page body is a few MB, and its size changes from page to page. glibc's default raises its
//! mapping threshold after the first such buffer is freed, so later bodies come from the heap and
//! leave holes between the small allocations of the activities: the resident set then creeps up
//! over a long drain. A fixed threshold (with page bodies and gzip bodies kept in pools,
//! src/buffer_pool.rs) keeps the peak that of one page, however long the backlog. `make bench`:
//! peak RSS from 100,000 to 1,000,000 activities +3.3 MiB with glibc's default, +0.4 MiB with a
//! fixed threshold.
//!
//! Why 512 KiB and not glibc's initial 128 KiB: a page's activity list (5,000 × 72 bytes) and
//! hyper's read buffers are 128 to 512 KiB, made anew for every page; above the threshold each was
//! a fresh mapping, faulted in page by page. `make bench BENCH_ONLY=drain`, four runs each of the
//! 1,000,000 drain: minor faults 90,000 → 13,000-19,000, system time 1.0 s → 0.35 s, CPU 10.1 s →
//! 9.3 s (with the gzip bodies pooled too), peak RSS 20.7 → 22.7 MiB. Page bodies (MBs) and
//! gzip output buffers (about 1 MiB) stay above it. A threshold of 1 MiB measured worse on memory
//! (RSS creeping during the run).

/// Fixes the threshold; `false` where there is no glibc to tell (the default allocator stays).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_large_buffers() -> bool {
    /// The threshold: above a page's activity list and hyper's read buffers, below page bodies.
    const MMAP_THRESHOLD: i32 = 512 * 1024;
    // SAFETY: `mallopt` only changes a glibc malloc parameter; it is called once, from `main`,
    // before the runtime starts any thread or makes any large allocation.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_large_buffers() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_threshold() {
        assert!(super::release_large_buffers());
    }
}
