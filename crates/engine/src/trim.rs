//! Giving memory back once a crowd of connections has left. glibc's malloc raises its mmap and trim
//! thresholds to the size of each large block freed (up to 32 MiB and 64 MiB), so the batches and write
//! queues of many busy connections end up in heaps it never shrinks: under the soak bench (1,000 slow
//! readers) the server kept ~400 MiB after every connection closed. Fixing the thresholds instead
//! (`mallopt`) maps and unmaps each large block on its own and halved bulk receive
//! (benches/results/s19-soak-mallopt-ab); so the engine asks for a `malloc_trim`, on a blocking thread,
//! when its open handles (streams, servers, endpoints) fall to a quarter of their peak or of the last
//! trim: a few trims per crowd that leaves, none while it stays.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

/// Below this many open handles at the peak, closing ones trigger no trim.
const SMALLEST_CROWD: usize = 16;

#[derive(Default)]
pub(crate) struct HeapTrim {
    /// Open handles at the peak since the last trim (or at that trim).
    mark: AtomicUsize,
}

impl HeapTrim {
    /// A handle was registered; `open` handles are open now.
    pub(crate) fn opened(&self, open: usize) {
        self.mark.fetch_max(open, Ordering::Relaxed);
    }

    /// A handle was unregistered; `open` handles are left.
    pub(crate) fn closed(&self, open: usize, handle: &Handle) {
        let mark = self.mark.load(Ordering::Relaxed);
        if mark < SMALLEST_CROWD || open > mark / 4 {
            return;
        }
        if self
            .mark
            .compare_exchange(mark, open, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            drop(handle.spawn_blocking(crate::sys::trim_heap));
        }
    }
}
