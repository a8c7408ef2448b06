//! Cache hints for the hot paths: the file reader and the flow table know which memory they will
//! read next, long before they read it; telling the CPU lets those cache misses overlap with
//! work instead of stalling it.

/// Asks the CPU to start loading the cache line at `p` into all cache levels. Only a hint: it
/// never faults, whatever `p` is (unmapped, dangling, out of bounds), and changes nothing the
/// program can observe but timing, so any address may be passed.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is defined not to fault or trap for any address and has no
    // architectural effect; SSE, its target feature, is part of the x86_64 baseline.
    #[allow(unsafe_code)]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
