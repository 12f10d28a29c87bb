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

use std::sync::{Arc, Mutex};

use crate::events::{EventQueue, Kind};
use crate::lifecycle::Transport;
use crate::stream::Stream;
use crate::tls::TlsConn;

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
    /// False when the sink took none of them.
    fn send(&self, bytes: &[u8]) -> bool {
        match self {
            Sink::Stream(s) => s.write_from(&[bytes], false).is_some(),
            Sink::Tls(t) => t.write_from(&[bytes], false).is_some(),
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
    bytes: u64,
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
#[derive(Default)]
pub(crate) struct ForwardSlot(Mutex<Option<Forward>>);

impl ForwardSlot {
    pub(crate) fn is_active(&self) -> bool {
        self.0.lock().unwrap().is_some()
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
        let mut f = self.0.lock().unwrap();
        if source_closed() {
            return Err(ForwardRefused::Closed);
        }
        if f.is_some() {
            return Err(ForwardRefused::Forwarding);
        }
        if source_ended() {
            return Err(ForwardRefused::Ended);
        }
        *f = Some(Forward { to, high, low, bytes: 0 });
        Ok(())
    }

    /// Hands `bytes`, read by source `id`, to the sink.
    pub(crate) fn pass(&self, bytes: &[u8], id: u32, queue: &EventQueue) -> Passed {
        // The sink is written outside the lock: its write may finish it, which ends forwards into it.
        let Some((to, high, low)) = self.0.lock().unwrap().as_ref().map(|f| (f.to.clone(), f.high, f.low)) else {
            return Passed::NotForwarding;
        };
        if !to.send(bytes) {
            self.fail(libc::EPIPE as u32, id, queue);
            return Passed::Refused;
        }
        if let Some(f) = self.0.lock().unwrap().as_mut() {
            f.bytes += bytes.len() as u64;
        }
        if to.queued() > high {
            Passed::Full { to, low }
        } else {
            Passed::Sent
        }
    }

    /// The source's stream ended (`eof`: cleanly, so the sink is ended too) or the source finished:
    /// [`Kind::ForwardEnded`] with the count.
    pub(crate) fn end(&self, eof: bool, id: u32, queue: &EventQueue) {
        let Some(f) = self.0.lock().unwrap().take() else { return };
        if eof {
            f.to.end();
        }
        queue.push(Kind::ForwardEnded, id, f.bytes as u32, (f.bytes >> 32) as u32);
    }

    /// The sink refused bytes: [`Kind::ForwardFailed`] with `errno` and the count forwarded before.
    fn fail(&self, errno: u32, id: u32, queue: &EventQueue) {
        let Some(f) = self.0.lock().unwrap().take() else { return };
        queue.push_with(Kind::ForwardFailed, id, errno, 0, &f.bytes.to_le_bytes());
    }
}
