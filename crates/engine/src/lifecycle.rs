//! What every transport's life shares, whatever its kind: an id in its engine's registry, the
//! "closed" flag that ends it exactly once, the signal that stops its tasks, and the switch that
//! pauses its reader. Each kind embeds one [`Lifecycle`] and implements [`Transport`], so the host
//! closes, aborts, pauses and resumes any transport through one set of calls.

use std::io;
use std::ops::Deref;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use tokio::sync::Notify;

use crate::events::Syscall;
use crate::Core;

/// The life of one transport: open from [`Lifecycle::new`] until [`Lifecycle::end`].
pub struct Lifecycle {
    /// The transport's id in its engine's registry (one id space for every kind).
    pub id: u32,
    pub(crate) core: Arc<Core>,
    /// The descriptor it reads and writes (owned by the transport; the number stays while it lives).
    raw_fd: crate::sys::RawFd,
    closed: AtomicBool,
    /// Wakes the transport's tasks when it ends (and, for a datagram endpoint, when reading stops).
    pub(crate) stop: Notify,
    /// `pause_reading`: the reader waits for `read_wake` before its next read.
    read_paused: AtomicBool,
    pub(crate) read_wake: Notify,
    /// The reader task's waker while it waits in [`Lifecycle::reader_stopped`]; woken when it ends.
    reader: Mutex<Option<Waker>>,
}

impl Lifecycle {
    /// An open transport `id` of `core` on descriptor `raw_fd` (registered by its kind, which knows
    /// its entry).
    pub(crate) fn new(core: &Arc<Core>, id: u32, raw_fd: crate::sys::RawFd) -> Lifecycle {
        Lifecycle {
            id,
            core: core.clone(),
            raw_fd,
            closed: AtomicBool::new(false),
            stop: Notify::new(),
            read_paused: AtomicBool::new(false),
            read_wake: Notify::new(),
            reader: Mutex::new(None),
        }
    }

    /// Whether the transport has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends the transport: true the first time only, when it also leaves the registry. The caller then
    /// lets go of its queues and calls [`Lifecycle::stopped_now`].
    pub(crate) fn end(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.core.unregister(self.id);
        true
    }

    /// Wakes every task waiting in [`Lifecycle::stopped`] (or on `stop`).
    pub(crate) fn stopped_now(&self) {
        self.stop.notify_waiters();
        // After `end` set the flag: a reader that stored its waker since sees the flag when woken, one
        // that stores it later sees the flag right after (the lock orders the two). Taken, not cloned:
        // the waker holds the reader's task, which holds the transport. A datagram endpoint stops its
        // tasks before it ends; its reader waits on `stop` itself, and the waker stays.
        let reader = if self.is_closed() { self.reader.lock().unwrap().take() } else { None };
        if let Some(w) = reader {
            w.wake();
        }
    }

    /// Reports the end to the host: `Closed` with `err`'s errno (0: closed cleanly) and `syscall`.
    pub(crate) fn report_closed(&self, err: Option<io::Error>, syscall: Syscall) {
        let errno = err.map(|e| crate::stream::errno_of(&e)).unwrap_or(0);
        self.core.queue.push(crate::events::Kind::Closed, self.id, errno, syscall as u32);
    }

    /// Resolves once the transport has ended.
    pub(crate) async fn stopped(&self) {
        wait_until(&self.stop, || self.is_closed()).await
    }

    /// [`Lifecycle::stopped`] for the transport's one reader task, made once and polled in every wait
    /// of its loop (`&mut` in each `select!`). `stopped` arms a `Notify` waiter per wait, and enabling,
    /// polling and dropping it take the Notify's lock each time: 1.1% of the samples of echo 1 KiB × 32
    /// through `forwardTo`, a seventh of protoloop's own (benches/results/fwd-cpu-split.md). This one
    /// stores the task's waker once and then costs an atomic load per poll.
    pub(crate) fn reader_stopped(&self) -> impl Future<Output = ()> + Unpin + '_ {
        let mut stored: Option<Waker> = None;
        std::future::poll_fn(move |cx| {
            if !stored.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *self.reader.lock().unwrap() = Some(cx.waker().clone());
                stored = Some(cx.waker().clone());
            }
            if self.is_closed() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Whether the reader is to wait for [`Lifecycle::resume_reading`].
    pub(crate) fn read_paused(&self) -> bool {
        self.read_paused.load(Ordering::Acquire)
    }

    /// Stops the reader before its next read.
    pub fn pause_reading(&self) {
        self.read_paused.store(true, Ordering::Release);
    }

    /// Lets the reader go on.
    pub fn resume_reading(&self) {
        self.read_paused.store(false, Ordering::Release);
        self.read_wake.notify_one();
    }
}

/// What the host does alike to every kind of transport, by id (see [`crate::Engine::transport`]). A
/// transport dereferences to its [`Lifecycle`], so its id, core and stop signal read as its own.
pub trait Transport: Deref<Target = Lifecycle> + Send + Sync {
    /// asyncio's `close`: stops reading, sends what is queued, then ends.
    fn close(&self);
    /// Ends the transport exactly once (see [`Lifecycle::end`]): lets go of what is queued, stops its
    /// tasks and reports `Closed` with `err`'s errno and the `syscall` that met it.
    fn finish(&self, err: Option<io::Error>, syscall: Syscall);
    /// asyncio's `abort`: drops whatever is queued and ends now.
    fn abort(&self) {
        self.finish(None, Syscall::None)
    }
    /// asyncio's `pause_reading`.
    fn pause_reading(&self) {
        Lifecycle::pause_reading(self)
    }
    /// asyncio's `resume_reading`.
    fn resume_reading(&self) {
        Lifecycle::resume_reading(self)
    }
    /// Whether the transport has ended.
    fn is_closed(&self) -> bool {
        Lifecycle::is_closed(self)
    }
    /// The descriptor it reads and writes.
    fn raw_fd(&self) -> crate::sys::RawFd {
        Deref::deref(self).raw_fd
    }
}

/// Gives a transport type its [`Lifecycle`] (its field `life`) as what it dereferences to.
macro_rules! lifecycle_of {
    ($t:ty) => {
        impl std::ops::Deref for $t {
            type Target = $crate::lifecycle::Lifecycle;
            fn deref(&self) -> &$crate::lifecycle::Lifecycle {
                &self.life
            }
        }
    };
}
pub(crate) use lifecycle_of;

/// Waits on `notify` until `done()` holds. The notification is armed before each check, so one sent
/// between the check and the wait is not missed (the pattern every "stopped"/"room" wait needs).
pub(crate) async fn wait_until(notify: &tokio::sync::Notify, mut done: impl FnMut() -> bool) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if done() {
            return;
        }
        notified.await;
    }
}
