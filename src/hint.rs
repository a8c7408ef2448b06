//! Hints for the hot paths. The file reader and the flow table know which memory they will
//! read next, long before they read it; telling the CPU lets those cache misses overlap with
//! work instead of stalling it. And the flow table's memory is read at random: asking the
//! kernel for huge pages spares most lookups a page-table walk.

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

/// Bytes of an x86-64 (and arm64 4 KiB-granule) transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the whole huge pages inside `mem` with transparent huge pages
/// (`MADV_HUGEPAGE`; Debian's default THP mode, `madvise`, uses them only where asked). A flow
/// table of a million flows spans far more than the TLB reaches in 4 KiB pages, so without
/// them nearly every lookup also walks the page tables. Call it before the memory is first
/// written: a page faulted in already stays small until khugepaged gets to it. Only a hint: the
/// kernel may decline (THP off, no free huge page), and nothing the program can observe but
/// timing and resident size changes.
pub fn huge_pages<T>(mem: &[T]) {
    let start = mem.as_ptr() as usize;
    let end = start.saturating_add(std::mem::size_of_val(mem));
    let from = start.next_multiple_of(HUGE_PAGE);
    let to = end / HUGE_PAGE * HUGE_PAGE;
    if from >= to {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: `[from, to)` is page-aligned and lies inside `mem`, memory this process owns.
    // MADV_HUGEPAGE only marks how the kernel may back those pages: it changes no mapping,
    // protection or content. Its error (EINVAL when the kernel has no THP) is ignored, as a
    // hint may be.
    #[allow(unsafe_code)]
    unsafe {
        libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
    }
}

#[cfg(test)]
mod tests {
    /// The `VmFlags` and `AnonHugePages` (kB) of the mapping that holds `addr`, from
    /// `/proc/self/smaps`.
    #[cfg(target_os = "linux")]
    fn mapping_of(addr: usize) -> Option<(String, u64)> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        let mut huge_kb = None;
        for line in smaps.lines() {
            let first = line.split(' ').next().unwrap_or_default();
            if let Some((a, b)) = first.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = (a..b).contains(&addr);
                    continue;
                }
            }
            if !inside {
                continue;
            }
            if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                huge_kb = kb.trim().trim_end_matches(" kB").trim().parse().ok();
            } else if let Some(flags) = line.strip_prefix("VmFlags:") {
                return Some((flags.trim().to_string(), huge_kb?));
            }
        }
        None
    }

    /// The advice reaches the kernel: the advised part of the buffer is a mapping of its own
    /// flagged `hg` (VM_HUGEPAGE), which is what makes THP mode `madvise` (Debian's default)
    /// back it with huge pages. Whether the kernel then finds free 2 MiB pages depends on how
    /// fragmented the machine's memory is (the CI machine once had none), so the pages
    /// themselves are only reported, not asserted.
    #[test]
    #[cfg(target_os = "linux")]
    fn advised_memory_is_flagged_for_huge_pages() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if mode.is_empty() {
            assert!(
                std::env::var_os("CI").is_none(),
                "this kernel has no transparent huge pages: the hint cannot be shown to work"
            );
            eprintln!("skipped: this kernel has no transparent huge pages");
            return;
        }
        // Past glibc's largest mmap threshold (32 MiB), so a fresh mapping no earlier advice
        // (another test's flow table, freed) can have flagged.
        let words = (34 << 20) / 8;
        let mut v: Vec<u64> = Vec::with_capacity(words);
        let before = (v.as_ptr() as usize).next_multiple_of(super::HUGE_PAGE);
        let (flags, _) = mapping_of(before).expect("the buffer's mapping in smaps");
        assert!(
            !flags.split(' ').any(|f| f == "hg"),
            "flagged before the advice: {flags}"
        );
        super::huge_pages(v.spare_capacity_mut());
        v.resize(words, 1);
        // The advice splits the mapping: the advised part starts at the first huge page.
        let advised = (v.as_ptr() as usize).next_multiple_of(super::HUGE_PAGE);
        let (flags, kb) = mapping_of(advised).expect("the buffer's mapping in smaps");
        assert!(
            flags.split(' ').any(|f| f == "hg"),
            "the advised mapping lacks the hg flag: {flags}"
        );
        eprintln!(
            "THP {}; AnonHugePages {kb} kB of the advised 34 MiB",
            mode.trim()
        );
    }

    /// Only whole huge pages inside the slice are advised: a slice across a huge-page
    /// boundary that holds no whole one leaves its mapping as it was, and an empty one is
    /// no error.
    #[test]
    #[cfg(target_os = "linux")]
    fn slices_holding_no_whole_huge_page_are_left_alone() {
        super::huge_pages::<u8>(&[]);
        // Fresh, as in the test above: a mapping no earlier advice can have flagged.
        let v: Vec<u8> = vec![0; 34 << 20];
        let boundary = (v.as_ptr() as usize + (1 << 20)).next_multiple_of(super::HUGE_PAGE);
        let at = boundary - v.as_ptr() as usize;
        let across = &v[at - (1 << 20)..at + (1 << 20)];
        super::huge_pages(across);
        let (flags, _) = mapping_of(boundary).expect("the buffer's mapping in smaps");
        assert!(
            !flags.split(' ').any(|f| f == "hg"),
            "a slice with no whole huge page was advised: {flags}"
        );
    }
}
