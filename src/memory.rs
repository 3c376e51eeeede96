//! Asking the kernel for 2 MiB pages under plumb's heap.
//!
//! A resume pass over 10,000 done tasks touched about 4,300 fresh 4 KiB pages, and the page
//! faults were a fifth of its time (perf). Debian leaves transparent huge pages to programs that
//! ask (`madvise` mode), so plumb asks for its heap, as glibc's `glibc.malloc.hugetlb=1` tunable
//! would (a tunable only takes effect from the environment at exec, which plumb would then pass
//! on to every task). The heap is grown once to `RESERVE` of address space, which costs no
//! memory until touched, and that range is advised; glibc is told to take big blocks from the
//! heap too and never to give its top back, because memory the kernel adds to the heap later
//! lands in a new mapping without the advice. A kernel or system without huge pages ignores or
//! refuses the advice, and nothing else changes.

/// Address space advised for huge pages: more than a 10,000-task run or resume pass uses.
const RESERVE: usize = 64 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// Call first thing in `main`, before the heap is in real use.
pub fn heap_in_huge_pages() {
    // SAFETY: mallopt only sets allocator parameters; sbrk(0) only reads the break; the block
    // is freed right after it forced the heap to grow; MADV_HUGEPAGE only changes how later
    // page faults in the range are served, never the contents of memory.
    unsafe {
        // Blocks of any size come from the heap (an mmap of their own would miss the advice),
        // and the heap keeps its top: shrunk and grown again, it would grow without it.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, RESERVE as i32);
        let block = libc::malloc(HUGE_PAGE);
        if block.is_null() {
            return;
        }
        let end = libc::sbrk(0) as usize;
        libc::free(block);
        let start = (block as usize).next_multiple_of(HUGE_PAGE);
        // Only the main thread's blocks come from the break-grown heap; anywhere else the
        // block is far from the break, and nothing is advised.
        if end == usize::MAX || end <= start || end - start > 2 * RESERVE {
            return;
        }
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}
