//! Engine-level forwarding (`forwardTo`): everything one stream transport reads goes to another one
//! without the bytes reaching the host. Either end may be a plain stream (TCP, Unix socket, pipe) or a
//! TLS connection; the reader of the source ([`Stream`]'s or [`TlsConn`]'s) hands what it read to a
//! [`Sink`], the other transport's sending side.
//!
//! Semantics, the same for every pair: back-pressure (the source reads no more while the sink has more
//! than `high` bytes queued, until it drained to `low`), a byte count ([`Kind::ForwardEnded`]), and the
//! end of the source's stream passed on. A plain sink gets `write_eof` (a half-close); a TLS sink cannot
//! half-close, so it is closed: what was forwarded is flushed, then close_notify goes out. A sink that
//! refuses bytes the source read (it closed or shut its write side) ends the forward with
//! [`Kind::ForwardFailed`] (`EPIPE`): those bytes are lost, and the host must hear of it.
//!
//! Between two plain sockets, where the system has `splice(2)` (Linux), the bytes go socket → pipe →
//! socket ([`SplicePipe`]) and never through user space, while the sink takes them at once; see
//! [`ForwardSlot::splice_sink`] for when. The semantics above are the same on either path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::events::{EventQueue, Kind};
use crate::lifecycle::Transport;
use crate::stream::{FdKind, Stream};
use crate::tls::TlsConn;

/// The pipe a plain forward's bytes pass through where the system has `splice(2)`: `crate::sys`'s.
pub(crate) use crate::sys::SplicePipe;

/// Why a forward was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardRefused {
    /// Either transport is closed.
    Closed = 1,
    /// The source already forwards.
    Forwarding = 2,
    /// The source already read EOF (or TLS close_notify): there is nothing left to forward, and the
    /// EOF itself is on its way to the host.
    Ended = 3,
    /// The sink takes no more bytes: it is closing or its write side is shut (`write_eof`).
    TargetShut = 4,
}

/// The sending side of a forward: a plain stream or a TLS connection (plaintext in, records out).
#[derive(Clone)]
pub enum Sink {
    Stream(Arc<Stream>),
    Tls(Arc<TlsConn>),
}

impl From<Arc<Stream>> for Sink {
    fn from(s: Arc<Stream>) -> Sink {
        Sink::Stream(s)
    }
}

impl From<Arc<TlsConn>> for Sink {
    fn from(t: Arc<TlsConn>) -> Sink {
        Sink::Tls(t)
    }
}

impl Sink {
    /// Whether the sink takes bytes now.
    fn accepts(&self) -> Result<(), ForwardRefused> {
        match self {
            Sink::Stream(s) => s.takes_bytes(),
            Sink::Tls(t) => t.takes_bytes(),
        }
    }

    /// Sends (or queues) `bytes` as the engine's own, not the host's: no `Drained` is reported for them.
    /// How many went to the kernel at once (all of them: nothing is queued); `None` when the sink took
    /// none of them.
    fn send(&self, bytes: &[u8]) -> Option<usize> {
        match self {
            Sink::Stream(s) => s.write_from(&[bytes], false),
            Sink::Tls(t) => t.write_from(&[bytes], false),
        }
    }

    fn queued(&self) -> usize {
        match self {
            Sink::Stream(s) => s.write_buffer_size(),
            Sink::Tls(t) => t.write_buffer_size(),
        }
    }

    /// Waits until at most `low` bytes are queued (or the sink is gone).
    pub(crate) async fn wait_for_room(&self, low: usize) {
        match self {
            Sink::Stream(s) => s.wait_for_room(low).await,
            Sink::Tls(t) => t.wait_for_room(low).await,
        }
    }

    /// The source's stream ended cleanly: a plain sink half-closes once its queue is sent; a TLS sink
    /// flushes, sends close_notify and closes (TLS has no half-close).
    fn end(&self) {
        match self {
            Sink::Stream(s) => s.write_eof(),
            Sink::Tls(t) => t.close(),
        }
    }
}

struct Forward {
    to: Sink,
    high: usize,
    low: usize,
}

/// What became of bytes a source read.
pub(crate) enum Passed {
    /// The source does not forward: the bytes are the host's.
    NotForwarding,
    /// Forwarded; read on.
    Sent,
    /// Forwarded, and the sink is over its high mark: read no more until it drained to `low`.
    Full { to: Sink, low: usize },
    /// The sink refused them: the forward ended with [`Kind::ForwardFailed`]; the bytes are lost.
    Refused,
}

/// A source's forward, if any: set by the host, used by the source's reader.
///
/// The reader takes the lock once per read (to copy out the sink): whether a forward is set and the
/// count of bytes forwarded live beside it in atomics, written under the lock, so that a read asks
/// without locking and counts without locking again. It took the lock three times per read and the
/// sink's write lock twice; with that and `Lifecycle::reader_stopped`, echo 1 KiB × 32 through a
/// forward went from 1.16 to 0.94 µs of user CPU per request (11.13 to 10.96 in all; nginx `stream`
/// 0.69 and 10.10), benches/results/fwd-cpu-split.md.
#[derive(Default)]
pub(crate) struct ForwardSlot {
    forward: Mutex<Option<Forward>>,
    /// Whether `forward` is set; changed only under its lock.
    active: AtomicBool,
    /// Bytes the current forward passed on; reset under the lock when one starts, read when it ends.
    /// Bytes a reader passed to a forward that ended meanwhile are counted in no forward (as before:
    /// the host heard of the end already), or in the next one when it started meanwhile.
    bytes: AtomicU64,
}

impl ForwardSlot {
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Starts forwarding to `to`. `source_closed` and `source_ended` are checked under the slot's lock:
    /// a source's reader marks its EOF before it calls [`ForwardSlot::end`], so a forward is either
    /// ended there or refused here, never left waiting for an EOF already read.
    pub(crate) fn start(
        &self,
        to: Sink,
        high: usize,
        low: usize,
        source_closed: impl Fn() -> bool,
        source_ended: impl Fn() -> bool,
    ) -> Result<(), ForwardRefused> {
        to.accepts()?;
        let mut f = self.forward.lock().unwrap();
        if source_closed() {
            return Err(ForwardRefused::Closed);
        }
        if f.is_some() {
            return Err(ForwardRefused::Forwarding);
        }
        if source_ended() {
            return Err(ForwardRefused::Ended);
        }
        *f = Some(Forward { to, high, low });
        self.bytes.store(0, Ordering::Relaxed);
        self.active.store(true, Ordering::Release);
        Ok(())
    }

    /// Hands `bytes`, read by source `id`, to the sink.
    pub(crate) fn pass(&self, bytes: &[u8], id: u32, queue: &EventQueue) -> Passed {
        self.pass_with(bytes.len(), id, queue, |to| to.send(bytes)).unwrap_or(Passed::NotForwarding)
    }

    /// Whether the source, a plain socket, should read with `splice(2)` into [`SplicePipe`] now:
    /// - it reads in bulk (`bulk`: its last read filled a whole buffer). For a few KiB two splices cost
    ///   more than a read and a write: echo 1 KiB x 32 through a forward took 14.3 µs of CPU per
    ///   request splicing every read, 11.3 reading, 11.7 with this rule; 512 MiB in bulk 282, 446 and
    ///   316 µs per MiB (benches/results/splice-ab2, the README's table);
    /// - the sink is a plain socket too and has nothing queued, so what is spliced in can be spliced
    ///   out at once (bytes the sink cannot take are copied out of the pipe into its queue, which costs
    ///   more than reading them into memory in the first place);
    /// - the system has `splice` and `PROTOLOOP_SPLICE` is not `0` (`always`: every read, bulk or not).
    pub(crate) fn splice_sink(&self, bulk: bool) -> bool {
        match splice_mode() {
            SpliceMode::Off => return false,
            SpliceMode::Bulk if !bulk => return false,
            _ => {}
        }
        let f = self.forward.lock().unwrap();
        matches!(f.as_ref(), Some(Forward { to: Sink::Stream(s), .. }) if s.kind == FdKind::Socket && s.write_buffer_size() == 0)
    }

    /// Hands the `n` bytes waiting in `pipe`, spliced in from source `id`, to the sink; the pipe is
    /// empty afterwards whatever became of them.
    pub(crate) fn pass_spliced(&self, pipe: &SplicePipe, n: usize, id: u32, queue: &EventQueue) -> Passed {
        let passed = self.pass_with(n, id, queue, |to| match to {
            Sink::Stream(s) => s.write_spliced(pipe, n),
            // The forward was replaced meanwhile by one into a TLS connection: its plaintext is copied.
            tls => pipe.take(n).ok().and_then(|bytes| tls.send(&bytes)),
        });
        passed.unwrap_or_else(|| {
            pipe.discard(n);
            Passed::NotForwarding
        })
    }

    /// Sends `n` bytes to the sink with `send` (which says how many of them went to the kernel at once,
    /// or `None` when the sink refused them) and counts them; `None` when the source does not forward.
    fn pass_with(&self, n: usize, id: u32, queue: &EventQueue, send: impl FnOnce(&Sink) -> Option<usize>) -> Option<Passed> {
        // The sink is written outside the lock: its write may finish it, which ends forwards into it.
        let (to, high, low) = self.forward.lock().unwrap().as_ref().map(|f| (f.to.clone(), f.high, f.low))?;
        let Some(sent) = send(&to) else {
            self.fail(crate::sys::errno::EPIPE as u32, id, queue);
            return Some(Passed::Refused);
        };
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        // All of them sent at once: the sink's queue was empty and still is, so it cannot be over its
        // high mark, and its write lock need not be taken again to ask.
        Some(if sent < n && to.queued() > high { Passed::Full { to, low } } else { Passed::Sent })
    }

    /// Takes the forward out of the slot, with the count it passed on.
    fn take(&self) -> Option<(Forward, u64)> {
        let mut f = self.forward.lock().unwrap();
        let taken = f.take()?;
        self.active.store(false, Ordering::Release);
        Some((taken, self.bytes.swap(0, Ordering::Relaxed)))
    }

    /// The source's stream ended (`eof`: cleanly, so the sink is ended too) or the source finished:
    /// [`Kind::ForwardEnded`] with the count.
    pub(crate) fn end(&self, eof: bool, id: u32, queue: &EventQueue) {
        let Some((f, bytes)) = self.take() else { return };
        if eof {
            f.to.end();
        }
        queue.push(Kind::ForwardEnded, id, bytes as u32, (bytes >> 32) as u32);
    }

    /// The sink refused bytes: [`Kind::ForwardFailed`] with `errno` and the count forwarded before.
    fn fail(&self, errno: u32, id: u32, queue: &EventQueue) {
        let Some((_, bytes)) = self.take() else { return };
        queue.push_with(Kind::ForwardFailed, id, errno, 0, &bytes.to_le_bytes());
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SpliceMode {
    /// Never (`PROTOLOOP_SPLICE=0`): for measuring one path against the other, or a kernel whose
    /// `splice` misbehaves.
    Off,
    /// In bulk (the default).
    Bulk,
    /// Every read (`PROTOLOOP_SPLICE=always`): how the tests put every forward through the pipe.
    Always,
}

/// `PROTOLOOP_SPLICE`, read once per process.
fn splice_mode() -> SpliceMode {
    static MODE: OnceLock<SpliceMode> = OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("PROTOLOOP_SPLICE").as_deref() {
        Ok("0") => SpliceMode::Off,
        Ok("always") => SpliceMode::Always,
        _ => SpliceMode::Bulk,
    })
}
