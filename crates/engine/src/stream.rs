//! Byte-stream transports over one file descriptor: TCP and Unix sockets, pipes.
//!
//! One reader task per stream reads and queues [`Kind::Data`] events. Writes come from the host thread:
//! when nothing is queued they go straight to the kernel there (with I/O threads, without a hop to
//! them), and only the unsent rest is queued for a writer task that waits for writability and reports
//! what it sent as [`Kind::Drained`]. All writes of a stream happen under its write lock, so bytes keep
//! their order whichever thread sends them.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::Interest;
use tokio::sync::Notify;

use crate::events::{Kind, Syscall};
use crate::forward::{ForwardRefused, ForwardSlot, Passed, Sink, SplicePipe};
use crate::lifecycle::{Lifecycle, Transport};
use crate::registry::Handle;
use crate::sys::{self, Guard, GuardOps, Io};
use crate::Core;

/// Reads go into this much memory at a time; the same size asyncio and Node use.
const READ_CHUNK: usize = 64 * 1024;
/// Most bytes of one stream in one event batch: a busy stream's reads reach the host in pieces this
/// large (bulk receive, a proxy's `writev`s). A stream starts with [`READ_CHUNK`] per batch, doubling
/// with each batch it fills that the host takes without pausing it, and a pause starts it over: what
/// the engine reads before a protocol's `pause_reading` reaches it is held until `resume_reading`, and
/// what a protocol got before it paused is usually written on and queued, so a flow-controlled echo to
/// a slow reader holds about one read per connection, as with Node, and not a batch's worth.
const READ_AHEAD_MAX: usize = 256 * 1024;
/// A queued write smaller than this absorbs the next one, so many tiny writes become few iovecs.
const COALESCE_BELOW: usize = 16 * 1024;
/// Most iovecs handed to one `writev`.
const MAX_IOVECS: usize = 64;

/// What a stream's descriptor is registered for: writability always, readability when it reads.
pub(crate) fn interest(readable: bool) -> Interest {
    if readable {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::WRITABLE
    }
}

/// Whether the descriptor is a socket (send/recv, `shutdown`) or a pipe (read/write, close for EOF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    Socket,
    Pipe,
}

/// Queued bytes, and whether the host wrote them (its drains are reported) or the engine did
/// (forwarding; the host never counted them).
struct Chunk {
    data: Vec<u8>,
    host: bool,
    /// A `sendfile` queued at this point of the stream (its `data` is empty).
    file: Option<Box<FileJob>>,
}

/// What `sendfile` has to send, in its place in the write queue.
struct FileJob {
    file: File,
    offset: u64,
    count: Option<u64>,
}

#[derive(Default)]
struct WriteState {
    chunks: VecDeque<Chunk>,
    /// Bytes of `chunks[0]` already sent.
    head_sent: usize,
    queued: usize,
    writer_running: bool,
    /// `write_eof` was asked for; the write side shuts once the queue is empty.
    eof_requested: bool,
    /// `close` was asked for; the stream finishes once the queue is empty.
    closing: bool,
}

/// Memory the host lent for one read (zero-copy receive). `owner` keeps it alive while the engine may
/// write into it; memory whose lifetime the host guarantees by other means has none.
pub struct ReadTarget {
    ptr: *mut u8,
    len: usize,
    _owner: Option<Arc<dyn Send + Sync>>,
}

// SAFETY: the pointer is only written through by the reader, under the stream's read lock, and the
// memory stays valid while the target exists (held by `owner`, or by the host until the stream stops
// using the target, which it learns by the fill event, `set_target_mode(false)` or `Closed`).
unsafe impl Send for ReadTarget {}

impl ReadTarget {
    /// # Safety
    /// `ptr..ptr+len` must stay valid for writes until this target is dropped by the engine, and nothing
    /// else may touch those bytes until the host sees the fill (or the target is dropped unfilled).
    pub unsafe fn new(ptr: *mut u8, len: usize, owner: Option<Arc<dyn Send + Sync>>) -> ReadTarget {
        ReadTarget { ptr, len, _owner: owner }
    }
}

#[derive(Default)]
struct ReadState {
    started: bool,
    target_mode: bool,
    target: Option<ReadTarget>,
    /// A forward reads in bulk: the last read filled its whole buffer, so the next one splices (where
    /// the forward can); a splice that moves less than a buffer's worth goes back to reading.
    splicing: bool,
    /// Bytes of this stream in event batch number `ahead_batch` (see [`crate::events::EventQueue::drains`]).
    ahead: usize,
    ahead_batch: u64,
}

/// Counters for `getExtraInfo('stats')`.
#[derive(Default, Debug)]
pub struct Stats {
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub bytes_copied_on_receive: AtomicU64,
}

pub struct Stream {
    /// Id, core, closed flag, stop signal, read pause: what every transport has.
    pub life: Lifecycle,
    pub kind: FdKind,
    fd: Io,
    write: Mutex<WriteState>,
    /// Reads happen under this lock, so switching modes or targets never races a read in progress.
    read: Mutex<ReadState>,
    /// Woken whenever the writer makes progress (and on finish): forwarders into this stream and
    /// `sendfile` wait on it for room.
    room: Notify,
    /// Where the reader sends what it reads instead of to the host (`forward_to`).
    forward: ForwardSlot,
    pub stats: Stats,
    /// STARTTLS: set (under the read lock) when the socket is being handed to a TLS session; the
    /// reader reads no more, so what the peer sends next stays in the kernel for the TLS session.
    detaching: AtomicBool,
    /// The reader saw EOF: nothing more will be read (and so nothing forwarded).
    read_eof: AtomicBool,
    /// Most bytes of this stream one event batch may hold (see [`READ_AHEAD_MAX`]); a pause resets it.
    read_ahead: AtomicUsize,
}

impl Stream {
    /// Registers `fd` (already non-blocking) with the reactor. Reading starts only when the host calls
    /// [`Stream::start_reading`], once its protocol exists (asyncio adds the reader after
    /// `connection_made`): so no event can precede the one that announces the stream, and a buffered
    /// protocol's very first bytes can already go into its own memory.
    pub(crate) fn start(core: &Arc<Core>, id: u32, fd: impl Into<sys::Owned>, kind: FdKind, readable: bool) -> io::Result<Arc<Stream>> {
        let fd = {
            let _rt = core.handle.enter();
            Io::register(fd.into(), interest(readable))?
        };
        Ok(Self::registered(core, id, fd, kind))
    }

    /// [`Stream::start`] of a descriptor already registered (with [`interest`]).
    pub(crate) fn registered(core: &Arc<Core>, id: u32, fd: Io, kind: FdKind) -> Arc<Stream> {
        let stream = Arc::new(Stream {
            life: Lifecycle::new(core, id, fd.raw()),
            kind,
            fd,
            write: Mutex::new(WriteState::default()),
            read: Mutex::new(ReadState::default()),
            room: Notify::new(),
            forward: ForwardSlot::default(),
            stats: Stats::default(),
            detaching: AtomicBool::new(false),
            read_eof: AtomicBool::new(false),
            read_ahead: AtomicUsize::new(READ_CHUNK),
        });
        core.register(id, Handle::Stream(stream.clone()));
        stream
    }

    /// Starts the reader; with `target_mode`, it reads only into targets the host hands over with
    /// [`Stream::set_target`]. Later calls do nothing.
    pub fn start_reading(self: &Arc<Self>, target_mode: bool) {
        let mut rs = self.read.lock().unwrap();
        if rs.started || self.is_closed() {
            return;
        }
        rs.started = true;
        rs.target_mode = target_mode;
        self.core.handle.spawn(self.clone().read_loop());
    }

    /// Switches between reading into the engine's own memory (`Data` events, copied to the host) and
    /// into host targets (`BufferFilled` events). Turning it on pushes a [`Kind::TargetMode`] marker
    /// behind every `Data` event already queued, so the host knows when no more of them can come.
    /// Turning it off takes the current target back; returns true if there was one, unfilled (else its
    /// fill, if any, is already queued).
    pub fn set_target_mode(&self, on: bool) -> bool {
        let mut rs = self.read.lock().unwrap();
        if rs.target_mode == on || self.is_closed() {
            return false;
        }
        rs.target_mode = on;
        let dropped = rs.target.take().is_some();
        if on {
            self.core.queue.push(Kind::TargetMode, self.id, 0, 0);
        }
        drop(rs);
        self.read_wake.notify_one();
        dropped
    }

    /// Hands the reader the memory for its next read. Returns false (and keeps nothing) unless the
    /// stream is in target mode. The target is used for one read, then dropped; the reader waits for
    /// the next one.
    pub fn set_target(&self, target: ReadTarget) -> bool {
        let mut rs = self.read.lock().unwrap();
        if !rs.target_mode || self.is_closed() {
            return false;
        }
        rs.target = Some(target);
        drop(rs);
        self.read_wake.notify_one();
        true
    }

    /// STARTTLS: reads stop now. Called on the host thread, so every `Data` event sent before it
    /// belongs to the plain stream and the host has it (or will, before `Detached`).
    pub(crate) fn begin_detach(&self) {
        let _rs = self.read.lock().unwrap();
        self.detaching.store(true, Ordering::Release);
    }

    /// STARTTLS: waits until the queued writes are sent, stops the stream without a `Closed` event and
    /// hands over a duplicate of its socket. `None` when the stream finished meanwhile (its `Closed`
    /// event tells the host why).
    pub(crate) async fn detach(&self) -> Option<sys::Owned> {
        crate::wait_until(&self.room, || {
            let st = self.write.lock().unwrap();
            self.is_closed() || (st.chunks.is_empty() && !st.writer_running)
        })
        .await;
        if self.is_closed() {
            return None;
        }
        let fd = match self.fd.try_clone() {
            Ok(fd) => fd,
            Err(e) => {
                self.finish(Some(e), Syscall::None);
                return None;
            }
        };
        if !self.life.end() {
            return None;
        }
        // As `finish`: no read can touch a lent target from here on, so the host may let it go.
        self.read.lock().unwrap().target = None;
        self.life.stopped_now();
        self.room.notify_waiters();
        Some(fd)
    }

    /// For the write end of a pipe: finishes the stream when the reading end goes away, even while
    /// nothing is being written (asyncio's write pipe watches for the same). The kernel reports a pipe
    /// without readers as an error condition (`EPOLLERR`) on the write end. With bytes still queued the
    /// loss is `EPIPE`, as the next write would have said; with none, it is a clean close.
    #[cfg_attr(not(unix), allow(dead_code))] // pipes by descriptor are Unix-only
    pub(crate) fn watch_reader_gone(self: &Arc<Self>) {
        let s = self.clone();
        self.core.handle.spawn(async move {
            tokio::select! {
                _ = s.stopped() => {}
                r = s.fd.error() => match r {
                    Ok(()) if s.write_buffer_size() == 0 => s.finish(None, Syscall::None),
                    Ok(()) => s.finish(Some(io::Error::from_raw_os_error(sys::errno::EPIPE)), Syscall::Write),
                    Err(e) => s.finish(Some(e), Syscall::Write),
                },
            }
        });
    }

    /// Bytes accepted by [`Stream::write`] that the kernel has not taken yet.
    pub fn write_buffer_size(&self) -> usize {
        self.write.lock().unwrap().queued
    }

    /// Sends `bufs` in order. Returns how many bytes went to the kernel at once; the rest is queued and
    /// reported later through [`Kind::Drained`] events. A hard error finishes the stream with it.
    pub fn write(self: &Arc<Self>, bufs: &[&[u8]]) -> usize {
        self.write_from(bufs, true).unwrap_or(0)
    }

    /// `write` for the host (`host`: drains are reported) or for the engine itself (forwarding). `None`
    /// when the bytes were not taken: the stream is closed or closing, its write side shut, or the
    /// write failed (which finishes the stream).
    pub(crate) fn write_from(self: &Arc<Self>, bufs: &[&[u8]], host: bool) -> Option<usize> {
        let mut st = self.write.lock().unwrap();
        if self.is_closed() || st.closing || st.eof_requested {
            return None;
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut sent = 0;
        if st.queued == 0 && !st.writer_running && self.core.direct_writes {
            match self.send_now(bufs) {
                Ok(n) => sent = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    drop(st);
                    self.finish(Some(e), Syscall::Write);
                    return None;
                }
            }
            self.stats.bytes_written.fetch_add(sent as u64, Ordering::Relaxed);
            if sent == total {
                return Some(sent);
            }
        }
        // Queue what the kernel did not take.
        let mut skip = sent;
        for b in bufs {
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            let rest = &b[skip..];
            skip = 0;
            match st.chunks.back_mut() {
                Some(last) if last.host == host && last.file.is_none() && last.data.len() < COALESCE_BELOW => last.data.extend_from_slice(rest),
                _ => st.chunks.push_back(Chunk { data: rest.to_vec(), host, file: None }),
            }
            st.queued += rest.len();
        }
        if !st.writer_running {
            st.writer_running = true;
            self.core.handle.spawn(self.clone().write_loop());
        }
        Some(sent)
    }

    /// [`Stream::write_from`] for the engine (a forward) of the `n` bytes waiting in `pipe`: spliced
    /// onto the socket as far as it takes them at once, the rest copied out of the pipe and queued. The
    /// pipe is empty afterwards, whatever became of the bytes.
    pub(crate) fn write_spliced(self: &Arc<Self>, pipe: &SplicePipe, n: usize) -> Option<usize> {
        let mut st = self.write.lock().unwrap();
        if self.is_closed() || st.closing || st.eof_requested {
            pipe.discard(n);
            return None;
        }
        let mut sent = 0;
        if st.queued == 0 && !st.writer_running && self.core.direct_writes {
            while sent < n {
                match pipe.drain_to(self.raw_fd(), n - sent) {
                    Ok(k) => sent += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        drop(st);
                        pipe.discard(n - sent);
                        self.finish(Some(e), Syscall::Write);
                        return None;
                    }
                }
            }
            self.stats.bytes_written.fetch_add(sent as u64, Ordering::Relaxed);
            if sent == n {
                return Some(sent);
            }
        }
        let rest = match pipe.take(n - sent) {
            Ok(rest) => rest,
            Err(e) => {
                drop(st);
                pipe.discard(n - sent);
                self.finish(Some(e), Syscall::Write);
                return None;
            }
        };
        st.queued += rest.len();
        st.chunks.push_back(Chunk { data: rest, host: false, file: None });
        if !st.writer_running {
            st.writer_running = true;
            self.core.handle.spawn(self.clone().write_loop());
        }
        Some(sent)
    }

    fn send_now(&self, bufs: &[&[u8]]) -> io::Result<usize> {
        // On the stack: a heap vector here was a malloc and a free per write, on the request path.
        let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
        let mut n = 0;
        for b in bufs.iter().filter(|b| !b.is_empty()).take(MAX_IOVECS) {
            iov[n] = IoSlice::new(b);
            n += 1;
        }
        self.fd.write_now(&iov[..n])
    }

    async fn write_loop(self: Arc<Self>) {
        loop {
            let mut guard = tokio::select! {
                _ = self.stopped() => return,
                g = self.fd.writable() => match g {
                    Ok(g) => g,
                    Err(e) => return self.finish(Some(e), Syscall::Write),
                },
            };
            match self.flush_some(&mut guard) {
                Flush::Blocked => {}
                Flush::Done => return,
                Flush::File(job) => {
                    drop(guard);
                    if !self.send_file(*job).await {
                        return;
                    }
                }
                Flush::Empty { eof, closing } => {
                    // A waiting STARTTLS detach needs to see the writer gone, not just the queue empty.
                    self.room.notify_waiters();
                    return self.after_flush(eof, closing);
                }
                Flush::Failed(e) => return self.finish(Some(e), Syscall::Write),
            }
        }
    }

    /// Writes queued bytes until the socket is full, the queue is empty, or a queued file comes up.
    fn flush_some(&self, guard: &mut Guard<'_>) -> Flush {
        let mut st = self.write.lock().unwrap();
        if self.is_closed() {
            return Flush::Done;
        }
        let (mut drained, mut drained_host) = (0usize, 0usize);
        let mut outcome = Flush::Blocked;
        while let Some(head) = st.chunks.front_mut() {
            if let Some(job) = head.file.take() {
                st.chunks.pop_front();
                outcome = Flush::File(job);
                break;
            }
            let iov: Vec<IoSlice<'_>> = st
                .chunks
                .iter()
                .take_while(|c| c.file.is_none())
                .take(MAX_IOVECS)
                .enumerate()
                .map(|(i, c)| {
                    let c = if i == 0 { &c.data[st.head_sent..] } else { &c.data[..] };
                    IoSlice::new(c)
                })
                .collect();
            match guard.try_writev(&iov) {
                Ok(Ok(n)) => {
                    drained += n;
                    drained_host += consume(&mut st, n);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => {
                    outcome = Flush::Failed(e);
                    break;
                }
                Err(_would_block) => break,
            }
        }
        if drained > 0 {
            self.stats.bytes_written.fetch_add(drained as u64, Ordering::Relaxed);
            if drained_host > 0 {
                self.core.queue.push(Kind::Drained, self.id, drained_host as u32, 0);
            }
            self.room.notify_waiters();
        }
        if matches!(outcome, Flush::Blocked) && st.chunks.is_empty() {
            st.writer_running = false;
            outcome = Flush::Empty { eof: st.eof_requested, closing: st.closing };
        }
        outcome
    }

    /// The queue just became empty: carry out a pending `write_eof` or `close`.
    fn after_flush(&self, eof: bool, closing: bool) {
        if closing {
            self.finish(None, Syscall::None);
        } else if eof {
            if let Err(e) = self.shutdown_write() {
                self.finish(Some(e), Syscall::Shutdown);
            }
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self.kind {
            // A peer already gone leaves nothing to half-close (`ENOTCONN` is no error).
            FdKind::Socket => self.fd.shutdown_write(),
            // A pipe has one direction: its EOF is the end of the stream.
            FdKind::Pipe => {
                self.finish(None, Syscall::None);
                Ok(())
            }
        }
    }

    /// Closes the write side once everything queued is sent (asyncio's `write_eof`).
    pub fn write_eof(&self) {
        let mut st = self.write.lock().unwrap();
        if st.eof_requested || self.is_closed() {
            return;
        }
        st.eof_requested = true;
        if !st.writer_running {
            drop(st);
            self.after_flush(true, false);
        }
    }

    async fn read_loop(self: Arc<Self>) {
        // Made once, not a wait per read (see `Lifecycle::reader_stopped`); asked first in each select
        // (`biased`: an atomic load, and no random pick of a branch).
        let mut stop = self.life.reader_stopped();
        loop {
            let waiting = self.life.read_paused() || self.detaching.load(Ordering::Acquire) || {
                let rs = self.read.lock().unwrap();
                rs.target_mode && rs.target.is_none()
            };
            if waiting {
                tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    _ = self.read_wake.notified() => continue,
                }
            }
            let mut guard = tokio::select! {
                biased;
                _ = &mut stop => return,
                g = self.fd.readable() => match g {
                    Ok(g) => g,
                    Err(e) => return self.finish(Some(e), Syscall::Read),
                },
            };
            match self.read_once(&mut guard) {
                ReadOutcome::Again => {}
                ReadOutcome::Done => return,
                // Copies pile up in the queue: wait while the host is far behind.
                ReadOutcome::Copied => tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    _ = self.core.queue.wait_for_room() => {}
                },
                // As much of this stream as one batch may hold is queued: wait until the host has it.
                ReadOutcome::Ahead(batch) => tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    _ = self.core.queue.wait_for_drain(batch) => {}
                },
                // Back-pressure: read no more until the other side drained to its low mark.
                ReadOutcome::Forwarded { to, low } => tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    _ = to.wait_for_room(low) => {}
                },
                ReadOutcome::Failed(e) => return self.finish(Some(e), Syscall::Read),
            }
        }
    }

    /// One read, into the lent target or the I/O thread's buffer, and what becomes of the bytes.
    /// Events are pushed under the read lock so that they stay ordered with `TargetMode`.
    fn read_once(&self, guard: &mut Guard<'_>) -> ReadOutcome {
        let mut rs = self.read.lock().unwrap();
        if self.is_closed() {
            return ReadOutcome::Done;
        }
        // STARTTLS: the bytes from here on are the TLS session's; they stay in the kernel for it.
        if self.detaching.load(Ordering::Acquire) {
            return ReadOutcome::Again;
        }
        let forwarding = self.forward.is_active();
        if !forwarding && rs.target_mode {
            let Some(t) = rs.target.as_ref() else { return ReadOutcome::Again }; // taken back meanwhile
            let (ptr, len) = (t.ptr, t.len);
            // Fill as much of the target as the socket has, so each round trip to the host counts.
            let mut filled = 0;
            while filled < len {
                // SAFETY: `filled < len`, so the pointer stays inside the target, valid for writes as
                // `ReadTarget::new` promised.
                match unsafe { guard.try_read(ptr.add(filled), len - filled) } {
                    Ok(Ok(0)) if filled == 0 => return self.on_eof(&mut rs),
                    Ok(Ok(0)) => break, // EOF comes with the next read
                    Ok(Ok(n)) if self.drained_by(n, len - filled) => {
                        filled += n;
                        guard.clear_ready();
                        break;
                    }
                    Ok(Ok(n)) => filled += n,
                    Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Ok(Err(e)) if filled == 0 => return ReadOutcome::Failed(e),
                    Ok(Err(_)) => break, // the error comes with the next read
                    Err(_would_block) if filled == 0 => return ReadOutcome::Again,
                    Err(_would_block) => break,
                }
            }
            self.stats.bytes_read.fetch_add(filled as u64, Ordering::Relaxed);
            rs.target = None;
            self.core.queue.push(Kind::BufferFilled, self.id, filled as u32, 0);
            return ReadOutcome::Again;
        }
        // How much more of this stream the batch being filled may take.
        let most = if forwarding {
            READ_CHUNK
        } else {
            let batch = self.core.queue.drains();
            let allowed = self.read_ahead.load(Ordering::Relaxed);
            if rs.ahead_batch != batch {
                // The host took the stream's share of the last batch and did not pause it (a pause
                // lasts until a later batch): it may have twice as much of this one. Not while its own
                // writes wait for the peer: a protocol answering each read (an echo) would only queue
                // more.
                if rs.ahead >= allowed && allowed < READ_AHEAD_MAX && batch == rs.ahead_batch + 1 && self.write_buffer_size() == 0 {
                    let _ = self.read_ahead.compare_exchange(allowed, (allowed * 2).min(READ_AHEAD_MAX), Ordering::Relaxed, Ordering::Relaxed);
                }
                rs.ahead_batch = batch;
                rs.ahead = 0;
            }
            match self.read_ahead.load(Ordering::Relaxed) {
                // Bounded by the batch's high-water mark alone.
                READ_AHEAD_MAX => usize::MAX,
                allowed if rs.ahead >= allowed => return ReadOutcome::Ahead(batch),
                allowed => allowed - rs.ahead,
            }
        };
        // Bytes for the host are read straight into the event batch when the host is not draining it
        // at that moment (no buffer per connection, and one copy fewer).
        if !forwarding {
            let read = self.core.queue.read_into(self.id, READ_CHUNK, most, |ptr, room| {
                // SAFETY: the queue lends `room` bytes at `ptr` for this call.
                let r = unsafe { guard.try_read(ptr, room) };
                let filled = match &r {
                    Ok(Ok(n)) => *n,
                    _ => 0,
                };
                (filled, (r, room))
            });
            if let Some((r, room)) = read {
                return self.after_read(guard, &mut rs, r, room, |rs, n| self.copied(rs, n));
            }
        }
        // Socket to socket in bulk: through a pipe with splice(2), the bytes never copied into user
        // space. Only in bulk (see `ForwardSlot::splice_sink`). A short splice does not end the
        // socket's turn as a short read does: the pipe may have run out of slots (one per socket
        // buffer) before the socket ran out of bytes.
        if forwarding && self.kind == FdKind::Socket && self.forward.splice_sink(rs.splicing) {
            let spliced = SplicePipe::with(|pipe| {
                let r = guard.try_raw(|fd| pipe.fill(fd));
                if let Ok(Ok(n)) = r {
                    rs.splicing = n >= READ_CHUNK;
                }
                self.after_read(guard, &mut rs, r, 0, |_, n| self.forward_outcome(self.forward.pass_spliced(pipe, n, self.id, &self.core.queue)))
            });
            if let Some(outcome) = spliced {
                return outcome;
            }
        }
        // Otherwise through one buffer per I/O thread (an idle connection costs no buffer); the queue
        // is then locked only for the copy into the batch, not for the read.
        READ_BUF.with_borrow_mut(|own| {
            let asked = own.len().min(most);
            // SAFETY: the thread's own buffer, at least `asked` bytes.
            let r = unsafe { guard.try_read(own.as_mut_ptr(), asked) };
            if let (true, Ok(Ok(n))) = (forwarding, &r) {
                rs.splicing = *n == asked;
            }
            self.after_read(guard, &mut rs, r, asked, |rs, n| {
                if forwarding {
                    return self.forward_bytes(&own[..n]);
                }
                self.core.queue.push_data(self.id, &own[..n]);
                self.copied(rs, n)
            })
        })
    }

    /// What a read of up to `asked` bytes came to; `got` takes the `n > 0` bytes read on from there.
    fn after_read(
        &self,
        guard: &mut Guard<'_>,
        rs: &mut ReadState,
        r: Result<io::Result<usize>, sys::WouldBlock>,
        asked: usize,
        got: impl FnOnce(&mut ReadState, usize) -> ReadOutcome,
    ) -> ReadOutcome {
        match r {
            Ok(Ok(0)) => self.on_eof(rs),
            Ok(Ok(n)) => {
                if self.drained_by(n, asked) {
                    guard.clear_ready();
                }
                self.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                got(rs, n)
            }
            Ok(Err(e)) => ReadOutcome::from_error(e),
            Err(_would_block) => ReadOutcome::Again,
        }
    }

    /// `n` bytes went to the host in a `Data` event.
    fn copied(&self, rs: &mut ReadState, n: usize) -> ReadOutcome {
        rs.ahead += n;
        self.stats.bytes_copied_on_receive.fetch_add(n as u64, Ordering::Relaxed);
        ReadOutcome::Copied
    }

    /// Whether a read of `n` bytes into `asked` emptied the socket, so the next read would only say
    /// EAGAIN: a stream socket hands over all it has up to the size asked (tokio's `TcpStream` makes the
    /// same inference). Clearing readiness then saves that system call, a third of those a small
    /// request costs a proxy. Not for pipes: a terminal in canonical mode returns a line at a time.
    fn drained_by(&self, n: usize, asked: usize) -> bool {
        n < asked && matches!(self.kind, FdKind::Socket)
    }

    fn on_eof(&self, rs: &mut ReadState) -> ReadOutcome {
        rs.target = None;
        // Before ending a forward: `forward_to` checks it after taking the forward lock, so a forward
        // is either ended here or refused there, never left waiting for an EOF already read.
        self.read_eof.store(true, Ordering::Release);
        self.end_forward(true);
        self.core.queue.push(Kind::Eof, self.id, 0, 0);
        ReadOutcome::Done
    }

    fn forward_bytes(&self, bytes: &[u8]) -> ReadOutcome {
        self.forward_outcome(self.forward.pass(bytes, self.id, &self.core.queue))
    }

    fn forward_outcome(&self, passed: Passed) -> ReadOutcome {
        match passed {
            Passed::Full { to, low } => ReadOutcome::Forwarded { to, low },
            // Bytes read for a forward that ended meanwhile are not the host's either: the forward's
            // end (or failure) told the host what became of the stream.
            Passed::Sent | Passed::Refused | Passed::NotForwarding => ReadOutcome::Again,
        }
    }

    /// Sends everything read from now on to `to` (see [`crate::forward`]), until EOF, an error, or `to`
    /// refusing bytes. Reports [`Kind::ForwardEnded`] with the count, or [`Kind::ForwardFailed`].
    pub fn forward_to(&self, to: impl Into<Sink>, high: usize, low: usize) -> Result<(), ForwardRefused> {
        self.forward.start(to.into(), high, low, || self.is_closed(), || self.read_eof.load(Ordering::Acquire))?;
        self.read_wake.notify_one();
        Ok(())
    }

    /// Whether a forward into this stream may start: it is open and its write side is not shut.
    pub(crate) fn takes_bytes(&self) -> Result<(), ForwardRefused> {
        let st = self.write.lock().unwrap();
        if self.is_closed() {
            return Err(ForwardRefused::Closed);
        }
        if st.closing || st.eof_requested {
            return Err(ForwardRefused::TargetShut);
        }
        Ok(())
    }

    fn end_forward(&self, eof: bool) {
        self.forward.end(eof, self.id, &self.core.queue);
    }

    /// Waits until at most `low` bytes are queued (or the stream is gone).
    pub(crate) async fn wait_for_room(&self, low: usize) {
        crate::wait_until(&self.room, || self.is_closed() || self.write.lock().unwrap().queued <= low).await
    }

    /// Sends `count` bytes (all, if `None`) of `file` from `offset` with `sendfile(2)`, in order with
    /// writes: after everything written before, before everything written after. Leaves the file
    /// position at `offset` + bytes sent (asyncio does). Reports [`Kind::SendfileDone`] with the count,
    /// or [`Kind::SendfileFailed`] with an errno and the count sent before the error.
    pub fn sendfile(self: &Arc<Self>, file: File, offset: u64, count: Option<u64>) {
        let mut st = self.write.lock().unwrap();
        if self.is_closed() || st.closing || st.eof_requested {
            self.core.queue.push_with(Kind::SendfileFailed, self.id, sys::errno::EPIPE as u32, 0, &0u64.to_le_bytes());
            return;
        }
        st.chunks.push_back(Chunk { data: Vec::new(), host: false, file: Some(Box::new(FileJob { file, offset, count })) });
        if !st.writer_running {
            st.writer_running = true;
            self.core.handle.spawn(self.clone().write_loop());
        }
    }

    /// Runs one queued `sendfile`; false when the stream finished meanwhile.
    async fn send_file(&self, job: FileJob) -> bool {
        let FileJob { file, offset, count } = job;
        let mut sent: u64 = 0;
        let failure = loop {
            let want = count.map_or(u64::MAX, |c| c - sent).min(1 << 30) as usize;
            if want == 0 {
                break None;
            }
            let mut guard = tokio::select! {
                _ = self.stopped() => break Some(io::Error::from_raw_os_error(sys::errno::EPIPE)),
                g = self.fd.writable() => match g { Ok(g) => g, Err(e) => break Some(e) },
            };
            match guard.try_sendfile(&file, offset.saturating_add(sent), want) {
                Ok(Ok(0)) => break None, // end of file
                Ok(Ok(n)) => sent += n as u64,
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => break Some(e),
                Err(_would_block) => {}
            }
        };
        // A dup of the caller's descriptor shares its position: left after what was sent. Best effort.
        let _ = std::io::Seek::seek(&mut &file, std::io::SeekFrom::Start(offset.saturating_add(sent)));
        self.stats.bytes_written.fetch_add(sent, Ordering::Relaxed);
        match failure {
            None => self.core.queue.push(Kind::SendfileDone, self.id, sent as u32, (sent >> 32) as u32),
            Some(e) => self.core.queue.push_with(Kind::SendfileFailed, self.id, errno_of(&e), 0, &sent.to_le_bytes()),
        }
        !self.is_closed()
    }
}

impl Transport for Stream {
    /// Stops reading, sends what is queued, then finishes the stream (asyncio's `close`).
    fn close(&self) {
        self.life.pause_reading();
        let mut st = self.write.lock().unwrap();
        if st.closing || self.is_closed() {
            return;
        }
        st.closing = true;
        if !st.writer_running {
            drop(st);
            self.finish(None, Syscall::None);
        }
    }

    /// Read-ahead starts small again (see [`READ_AHEAD_MAX`]).
    fn pause_reading(&self) {
        self.read_ahead.store(READ_CHUNK, Ordering::Relaxed);
        self.life.pause_reading();
    }

    /// A closing stream reads no more.
    fn resume_reading(&self) {
        if self.write.lock().unwrap().closing {
            return;
        }
        self.life.resume_reading();
    }

    /// Ends the stream exactly once: unregisters it, stops its tasks and reports [`Kind::Closed`]. The
    /// descriptor closes when the last task lets go of it.
    fn finish(&self, err: Option<io::Error>, syscall: Syscall) {
        if !self.life.end() {
            return;
        }
        // After this no read can touch a target, so the host may release its memory on `Closed`.
        self.read.lock().unwrap().target = None;
        {
            let mut st = self.write.lock().unwrap();
            st.chunks.clear();
            st.queued = 0;
        }
        self.life.stopped_now();
        self.room.notify_waiters();
        self.end_forward(false);
        self.life.report_closed(err, syscall);
    }
}

crate::lifecycle::lifecycle_of!(Stream);

/// What one round of the writer achieved.
enum Flush {
    /// The socket is full; wait until it is writable.
    Blocked,
    /// The stream finished.
    Done,
    /// A queued `sendfile` is next.
    File(Box<FileJob>),
    /// Everything is sent; the writer stops.
    Empty { eof: bool, closing: bool },
    Failed(io::Error),
}

enum ReadOutcome {
    /// Read again as soon as the socket is readable.
    Again,
    /// The reader is done (EOF, or the stream finished).
    Done,
    /// Bytes went into a `Data` event.
    Copied,
    /// Event batch number `.0` holds as many of this stream's bytes as one batch may.
    Ahead(u64),
    /// Bytes went to a forwarding target that is now over its high mark.
    Forwarded { to: Sink, low: usize },
    Failed(io::Error),
}

impl ReadOutcome {
    fn from_error(e: io::Error) -> ReadOutcome {
        if e.kind() == io::ErrorKind::Interrupted {
            ReadOutcome::Again
        } else {
            ReadOutcome::Failed(e)
        }
    }
}

thread_local! {
    /// The I/O thread's read buffer for bytes that are copied onwards (to the host or a forward).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}

/// Drops `n` sent bytes from the queue; returns how many of them the host wrote.
fn consume(st: &mut WriteState, mut n: usize) -> usize {
    st.queued -= n;
    let mut host = 0;
    while n > 0 {
        let head = &st.chunks[0];
        let head_left = head.data.len() - st.head_sent;
        let taken = n.min(head_left);
        if head.host {
            host += taken;
        }
        n -= taken;
        if taken == head_left {
            st.chunks.pop_front();
            st.head_sent = 0;
        } else {
            st.head_sent += taken;
        }
    }
    host
}

/// The errno of an I/O error, or `EIO` for errors that carry none (on Windows, libuv's number for it).
pub fn errno_of(e: &io::Error) -> u32 {
    sys::errno_of(e)
}
