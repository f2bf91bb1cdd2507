//! The allocator's one setting: a buffer of 128 KiB or more gets its own mapping, returned to the
//! kernel when it is freed.
//!
//! A page body is a few MB, and its size changes from page to page. glibc's default raises its
//! mapping threshold after the first such buffer is freed, so later bodies come from the heap and
//! leave holes between the small allocations of the activities: the resident set then creeps up
//! over a long drain. A fixed threshold (with the HTTP client keeping its body buffers) keeps the
//! peak that of one page, however long the backlog. `make bench`: peak RSS from 100,000 to
//! 1,000,000 activities +3.3 MiB before, +0.4 MiB after; the price is about 0.4 s more kernel
//! time per million activities (page faults of the buffers now mapped afresh). A threshold of
//! 1 MiB measured worse on memory (+1.9 MiB, RSS creeping during the run), no better on CPU.
//!
//! Also measured and not kept (`make bench`, and `BENCH_ONLY=drain` four runs each): most of a
//! 1,000,000 drain's 90,000 minor faults are the gzip output buffers (about 1 MiB each), each
//! page's activity list (about 400 KB) and hyper's read buffers. A threshold of 512 KiB with the
//! gzip buffers pooled cut the faults to about 14,000 and the CPU by about 0.8 s (10.1 → 9.3 s on a
//! slow day), but buffers under 512 KiB then stayed in the heap once freed, and the peaks rose: six
//! backfill windows at once 48 MiB (over their target; the code as it is measured 33 and 41 MiB in
//! two runs, the windows' pages in flight varying with timing), the 100,000 drain 24 MiB, not 19.
//! The gzip pool alone at this threshold saved about 0.2 s, within the noise, for +1 MiB on a
//! drain, growth from 100,000 to 1,000,000 over its target (+2.2 MiB) and 44 MiB on the backfill.

/// Fixes the threshold; `false` where there is no glibc to tell (the default allocator stays).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_large_buffers() -> bool {
    /// The threshold, glibc's own default before it adapts.
    const MMAP_THRESHOLD: i32 = 128 * 1024;
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
