//! Where the engine's tasks run: on I/O threads of their own, or on the host's thread.
//!
//! With [`Reactor::threads`] a multi-thread tokio runtime reads and writes while the host's thread
//! runs JavaScript; every event crosses between the two threads, and a request/response exchange
//! pays that hop in latency each way. With [`Reactor::host`] a current-thread runtime lives on the
//! host's thread: the host watches [`Reactor::fd`] (the runtime's epoll instance, or its kqueue on
//! macOS, see [`crate::sys::runtime_poll_fd`]; readable whenever a socket it waits on is ready or a
//! task was woken from elsewhere) in its own event loop and calls [`Reactor::turn`] when it is
//! readable, which reads, accepts and writes without blocking and returns. Events are then delivered on the same thread, in the same loop iteration, as Node's own
//! sockets are.
//!
//! ```
//! # #[cfg(unix)] { // Windows has no host reactor: `Reactor::host` fails there.
//! use protoloop_engine::reactor::Reactor;
//!
//! let reactor = Reactor::host().unwrap();
//! let (tx, rx) = std::sync::mpsc::channel();
//! reactor.handle().spawn(async move { tx.send(42).unwrap() });
//! reactor.turn(); // runs the task, waits for nothing
//! assert_eq!(rx.try_recv(), Ok(42));
//! # }
//! ```

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime};

pub struct Reactor {
    /// `None` once [`Reactor::shut_down`]: its tasks are gone and its threads joined.
    runtime: Option<Runtime>,
    handle: Handle,
    /// Host mode only: the runtime's epoll descriptor.
    fd: Option<std::ffi::c_int>,
}

impl Reactor {
    /// A multi-thread runtime on `threads` I/O threads of its own.
    pub fn threads(threads: usize) -> io::Result<Reactor> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("protoloop-io")
            .enable_io()
            .build()?;
        Ok(Reactor { handle: runtime.handle().clone(), runtime: Some(runtime), fd: None })
    }

    /// A current-thread runtime that the host turns (see the module's documentation).
    ///
    /// Needs the build flag `--cfg tokio_unstable` (set in `.cargo/config.toml`): a turn ends when the
    /// runtime's local run queue is empty, and only tokio's unstable metrics tell its depth.
    pub fn host() -> io::Result<Reactor> {
        if !cfg!(tokio_unstable) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "built without --cfg tokio_unstable"));
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        let fd = crate::sys::runtime_poll_fd(&runtime)?;
        Ok(Reactor { handle: runtime.handle().clone(), runtime: Some(runtime), fd: Some(fd) })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Drops every task (and with it every descriptor a task holds), joins the I/O threads and, in
    /// host mode, closes [`Reactor::fd`]: the host must have stopped watching it. Tasks spawned later
    /// are dropped at once. Blocks while a blocking task (a name lookup, a wait for a child) runs.
    /// Call it from outside the runtime.
    pub fn shut_down(&mut self) {
        self.fd = None;
        drop(self.runtime.take());
    }

    /// Host mode: the descriptor to watch for readability. `None` for I/O threads.
    pub fn fd(&self) -> Option<std::ffi::c_int> {
        self.fd
    }

    /// Host mode: runs every task that is ready, collects the readiness of the runtime's descriptors
    /// without waiting, runs the tasks that woke, and so on until a collection wakes nothing. Call it
    /// when [`Reactor::fd`] is readable, on the thread that made the reactor, never from inside a task.
    /// Does nothing for I/O threads.
    pub fn turn(&self) {
        self.turn_with(|| false)
    }

    /// [`Reactor::turn`], and each time the tasks are idle, `deliver` (the host hands what the tasks
    /// produced to its own code); while it returns true the turn goes on, for at most
    /// [`MAX_DELIVERIES`] deliveries or [`TURN_BUDGET`]. What the host's code wakes (a reader it let go
    /// on, a writer it fed) is woken from inside the runtime, so it runs in this turn, and the wake-up
    /// costs no write to the runtime's descriptor and no second trip through the host's event loop.
    ///
    /// The runtime's descriptor is polled (with a zero timeout) once when the turn starts and once
    /// after each round of deliveries, not between the tasks going idle and the delivery: a request
    /// that is read, handed over and answered costs one `epoll_wait` on that descriptor, one read and
    /// one write (issue 19).
    pub fn turn_with(&self, mut deliver: impl FnMut() -> bool) {
        let (Some(runtime), Some(_)) = (&self.runtime, self.fd) else { return };
        let deliver: &mut dyn FnMut() -> bool = &mut deliver;
        // SAFETY: only the lifetime is erased. The pointer is in `TURN` while `block_on` below runs
        // (the guard takes it out when it returns or unwinds), and only `WhenIdle::poll` calls it:
        // a task of this current-thread runtime, which runs only inside this `block_on`, on this
        // thread, while `deliver` is alive and not otherwise borrowed.
        let deliver = unsafe {
            std::mem::transmute::<*mut (dyn FnMut() -> bool + '_), *mut (dyn FnMut() -> bool + 'static)>(deliver)
        };
        let _turn = TurnGuard::begin(deliver);
        runtime.block_on(async {
            loop {
                // The runtime polls its tasks in order; `WhenIdle` goes last and delivers once the
                // others have run, so no poll of the driver comes between them and the delivery
                // (the scheduler polls the driver whenever its queue runs dry, and this future is
                // only polled after such a poll).
                if let Err(e) = tokio::spawn(WhenIdle).await {
                    if e.is_panic() {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
                // The scheduler has polled the driver without waiting since `WhenIdle` finished:
                // what that woke waits in the queues, and would wait there until the descriptor
                // turns readable again (maybe never) if the turn ended now.
                if queued_tasks() == 0 {
                    return;
                }
            }
        });
    }

    /// Host mode: makes [`Reactor::fd`] readable, so that the host takes another turn soon (after the
    /// rest of its loop). For a host that stopped a turn with work left over.
    pub fn wake(&self) {
        if self.fd.is_some() {
            // Spawned from outside the runtime: queued globally, with one wake-up of the driver.
            drop(self.handle.spawn(async {}));
        }
    }
}

/// How many times one [`Reactor::turn_with`] hands its host what the tasks produced, at most.
pub const MAX_DELIVERIES: usize = 64;

/// After a delivery that ends this long after the turn began, the turn delivers no more: a steady
/// stream of bytes cannot keep the host from the rest of its loop (its timers, its own sockets), and a
/// request/response exchange still gets many requests per wake-up of the host.
pub const TURN_BUDGET: Duration = Duration::from_millis(1);

/// The turn in progress on this thread (see [`Reactor::turn_with`]).
struct Turn {
    deliver: Cell<Option<*mut (dyn FnMut() -> bool + 'static)>>,
    deliveries: Cell<usize>,
    started: Cell<Option<Instant>>,
}

thread_local! {
    static TURN: Turn = const { Turn { deliver: Cell::new(None), deliveries: Cell::new(0), started: Cell::new(None) } };
}

/// Puts a turn's `deliver` in [`TURN`] and takes it out again, also when the turn unwinds.
struct TurnGuard;

impl TurnGuard {
    fn begin(deliver: *mut (dyn FnMut() -> bool + 'static)) -> TurnGuard {
        TURN.with(|t| {
            t.deliver.set(Some(deliver));
            t.deliveries.set(0);
            t.started.set(Some(Instant::now()));
        });
        TurnGuard
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        TURN.with(|t| t.deliver.set(None));
    }
}

/// Hands the host what the tasks produced, unless the turn is over its bounds; true when it did and
/// the host wants the turn to go on.
fn deliver_once() -> bool {
    TURN.with(|t| {
        let Some(deliver) = t.deliver.get() else { return false };
        if t.deliveries.get() >= MAX_DELIVERIES || t.started.get().is_some_and(|s| s.elapsed() >= TURN_BUDGET) {
            return false;
        }
        // Taken out while it runs: a task it somehow ran would find no `deliver` to call again.
        t.deliver.set(None);
        // SAFETY: see `Reactor::turn_with`; the turn is still running (we are one of its tasks).
        let more = unsafe { (*deliver)() };
        t.deliver.set(Some(deliver));
        if more {
            t.deliveries.set(t.deliveries.get() + 1);
        }
        more
    })
}

/// A task that waits at the back of the runtime's queue until every other task has run, then
/// delivers, lets what the delivery woke run, and delivers again, until a delivery finds nothing.
struct WhenIdle;

impl Future for WhenIdle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A task woken from inside the runtime goes to the back of its queue, with no system call.
        if queued_tasks() != 0 || deliver_once() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(())
    }
}

#[cfg(tokio_unstable)]
fn queued_tasks() -> usize {
    let metrics = Handle::current().metrics();
    metrics.worker_local_queue_depth(0) + metrics.global_queue_depth()
}

#[cfg(not(tokio_unstable))]
fn queued_tasks() -> usize {
    unreachable!("the host reactor needs --cfg tokio_unstable")
}

/// Every engine's timers run on one small runtime of their own: a host reactor's descriptor does not
/// turn readable when a deadline passes (tokio does not say when its next one is), while a timer on
/// another thread wakes its task as any other thread would, through the runtime's descriptor.
fn timers() -> &'static Handle {
    static TIMERS: OnceLock<Runtime> = OnceLock::new();
    TIMERS
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("protoloop-timer")
                .enable_time()
                .build()
                .expect("protoloop: cannot start the timer thread")
        })
        .handle()
}

pub(crate) fn sleep(d: Duration) -> tokio::time::Sleep {
    let _timers = timers().enter();
    tokio::time::sleep(d)
}

pub(crate) fn timeout<F: Future>(d: Duration, f: F) -> tokio::time::Timeout<F> {
    let _timers = timers().enter();
    tokio::time::timeout(d, f)
}


// Unix: the tests watch the runtime's descriptor with poll(2); Windows has no host reactor.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn readable_within(reactor: &Reactor, ms: i32) -> bool {
        let mut pfd = libc::pollfd { fd: reactor.fd().unwrap(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, waited on for at most `ms`.
        unsafe { libc::poll(&mut pfd, 1, ms) == 1 }
    }

    #[test]
    fn what_a_delivery_wakes_runs_in_the_same_turn_woken_from_inside() {
        let reactor = Reactor::host().unwrap();
        let notify = std::sync::Arc::new(tokio::sync::Notify::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let waiting = notify.clone();
        reactor.handle().spawn(async move {
            waiting.notified().await;
            tx.send(()).unwrap();
        });
        reactor.turn(); // the task waits
        let remote = || reactor.handle().metrics().remote_schedule_count();
        let before = remote();
        let mut delivered = false;
        reactor.turn_with(|| {
            if delivered {
                return false;
            }
            delivered = true;
            notify.notify_one(); // as JavaScript does when it lets a reader go on
            true
        });
        assert_eq!(rx.try_recv(), Ok(()));
        assert_eq!(remote(), before, "the wake-up went through the runtime's descriptor");
    }

    #[test]
    fn a_delivery_follows_the_tasks_before_the_descriptor_is_polled_again() {
        // Issue 19: the turn polled the runtime's descriptor between the tasks going idle and the
        // delivery, one `epoll_wait` more per request. A task makes a socket readable; the task
        // waiting on that socket runs only after the next poll, so it must run after the delivery.
        let reactor = Reactor::host().unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let _rt = reactor.handle().enter();
        let a = tokio::net::UnixStream::from_std(a).unwrap();
        let waiter = log.clone();
        reactor.handle().spawn(async move {
            a.readable().await.unwrap();
            waiter.lock().unwrap().push("readable");
        });
        reactor.turn(); // the waiter registers and waits
        let writer = log.clone();
        reactor.handle().spawn(async move {
            std::io::Write::write_all(&mut &b, b"x").unwrap();
            writer.lock().unwrap().push("wrote");
            std::mem::forget(b); // keeps the socket open
        });
        let mut delivered = false;
        reactor.turn_with(|| {
            if !delivered {
                delivered = true;
                log.lock().unwrap().push("delivered");
            }
            false
        });
        assert_eq!(*log.lock().unwrap(), ["wrote", "delivered", "readable"]);
    }

    #[test]
    fn a_turn_delivers_a_bounded_number_of_times() {
        let reactor = Reactor::host().unwrap();
        let mut calls = 0;
        reactor.turn_with(|| {
            calls += 1;
            true // there is always more
        });
        assert!((1..=MAX_DELIVERIES).contains(&calls), "{calls} deliveries");
    }

    #[test]
    fn wake_asks_the_host_for_another_turn() {
        let reactor = Reactor::host().unwrap();
        reactor.turn();
        assert!(!readable_within(&reactor, 0));
        reactor.wake();
        assert!(readable_within(&reactor, 1000));
        reactor.turn();
        assert!(!readable_within(&reactor, 0));
    }

    #[test]
    fn a_turn_runs_what_io_woke_and_returns_when_idle() {
        let reactor = Reactor::host().unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let _rt = reactor.handle().enter();
        let a = tokio::net::UnixStream::from_std(a).unwrap();
        reactor.handle().spawn(async move {
            a.readable().await.unwrap();
            tx.send(()).unwrap();
        });
        reactor.turn(); // the task runs and waits for readiness
        assert!(rx.try_recv().is_err());
        std::io::Write::write_all(&mut &b, b"x").unwrap();
        // The epoll descriptor is readable now, and one turn is enough to run the woken task.
        assert!(readable_within(&reactor, 1000));
        reactor.turn();
        assert_eq!(rx.try_recv(), Ok(()));
    }

    #[test]
    fn one_turn_runs_more_tasks_than_the_schedulers_quota() {
        let reactor = Reactor::host().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..500 {
            let tx = tx.clone();
            reactor.handle().spawn(async move { tx.send(i).unwrap() });
        }
        reactor.turn();
        assert_eq!(rx.try_iter().count(), 500);
    }

    #[test]
    fn timers_wake_a_host_reactor_through_its_descriptor() {
        let reactor = Reactor::host().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        reactor.handle().spawn(async move {
            sleep(Duration::from_millis(20)).await;
            tx.send(()).unwrap();
        });
        reactor.turn();
        assert!(readable_within(&reactor, 1000));
        reactor.turn();
        assert_eq!(rx.try_recv(), Ok(()));
    }

    #[test]
    fn a_task_spawned_after_shut_down_is_dropped_unrun() {
        for mut reactor in [Reactor::host().unwrap(), Reactor::threads(1).unwrap()] {
            reactor.shut_down();
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            drop(reactor.handle().spawn(async move { tx.send(()).unwrap() }));
            reactor.wake();
            reactor.turn();
            // The task (and the sender it owned) is gone without having run.
            assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
        }
    }
}
