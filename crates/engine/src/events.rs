//! The engine → host event queue.
//!
//! Every I/O task appends fixed-size records (and, for data, payload bytes) to one queue. The host is
//! woken once per batch, not once per event: the first push after a drain calls the wake function, and
//! every push until the next drain rides along. The host then takes the whole batch in one call.
//!
//! Records are five `u32`s: `[kind, id, a, b, len]`, where `len` counts the record's payload bytes
//! (0 for most kinds). Payloads are concatenated in record order, so a reader walks the records and
//! slices the payload with a running offset. A flat
//! layout is what makes the batch cheap to hand across the boundary: two buffers instead of an object
//! per event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Defines [`Kind`] and [`Kind::ALL`] from one list, so that the list a test compares with
/// TypeScript's `EventKind` cannot miss a kind.
macro_rules! kinds {
    ($(#[$enum_meta:meta])* pub enum Kind { $($(#[$meta:meta])* $name:ident = $value:literal,)* }) => {
        $(#[$enum_meta])*
        pub enum Kind {
            $($(#[$meta])* $name = $value,)*
        }

        impl Kind {
            /// Every kind with its name, as TypeScript's `EventKind` (`ts/native.ts`) must have it.
            pub const ALL: &'static [(Kind, &'static str)] = &[$((Kind::$name, stringify!($name)),)*];
        }
    };
}

kinds! {
    /// Kinds of records. The numbers are part of the contract with the bindings and the TypeScript
    /// layer (`ts/native.ts`, whose copy a test checks against [`Kind::ALL`]). Ranges by transport
    /// kind: streams 1-9, datagram 10-19, pipe and subprocess 20-29, tls 30-39, stream extras
    /// (forwarding, sendfile) 40-49.
    #[repr(u32)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        /// `a` bytes of payload were read. `b` is unused.
        Data = 1,
        /// The peer closed its write side.
        Eof = 2,
        /// The engine's writer sent `a` queued bytes (a datagram endpoint: `a` buffer units, the
        /// datagrams' lengths plus [`crate::datagram::HEADER_SIZE`] each).
        Drained = 3,
        /// The transport (stream, TLS connection or datagram endpoint) is gone. `a` is an errno (0: closed
        /// cleanly), `b` a [`Syscall`].
        Closed = 4,
        /// A connect request finished; the id is now a live stream.
        Connected = 5,
        /// A connect request failed: `a` errno (or [`ENOTFOUND`]), `b` a [`Syscall`].
        ConnectFailed = 6,
        /// Server `id` accepted stream `a`.
        Accepted = 7,
        /// `a` bytes were read into the stream's current target (zero-copy receive); the target is spent.
        BufferFilled = 8,
        /// A TLS handshake failed on `id` (a connect, an upgrade, or a server's accepted socket): `a` errno
        /// (0 for TLS-level failures), `b` a [`Syscall`], payload `code\tmessage` (Node's code). On a live
        /// TLS connection it precedes the `Closed` of a TLS-level failure (a bad record, an alert).
        TlsFailed = 30,
        /// STARTTLS: plain stream `id` gave its socket up; `a` is the id the TLS connection will take.
        /// Every event of the plain stream precedes this one.
        Detached = 31,
        /// The stream entered target mode: no `Data` event of it follows this one.
        TargetMode = 9,
        /// A datagram arrived. `a` is `tag << 16 | port` and `b` the length of the sender's address at
        /// the start of the payload; the data follows it (`datagram::tag`, `datagram::encode_sender`).
        DatagramReceived = 10,
        /// A send or receive of a datagram endpoint failed; the endpoint goes on (asyncio's
        /// `error_received`). `a` errno, `b` a [`Syscall`].
        DatagramError = 11,
        /// An endpoint request finished; the id is now a live endpoint.
        DatagramOpened = 14,
        /// An endpoint request failed: `a` errno (or [`ENOTFOUND`]), `b` a [`Syscall`].
        DatagramOpenFailed = 15,
        /// Forwarding from this stream ended; `a` + `b << 32` bytes were forwarded.
        ForwardEnded = 40,
        /// `sendfile` finished: `a` + `b << 32` bytes sent.
        SendfileDone = 41,
        /// `sendfile` failed with errno `a`; the payload holds the bytes sent before, as a u64 LE.
        SendfileFailed = 42,
        /// Forwarding from this stream failed: the other stream refused bytes this one had read (it closed,
        /// or its write side was shut), errno `a` (`EPIPE`); the payload holds the bytes forwarded before,
        /// as a u64 LE.
        ForwardFailed = 43,
        /// Child process `id` was reaped. `a` is its return code as an `i32` (the exit status, or
        /// `-signal` when a signal ended it, Python's convention); `b` is unused.
        ProcessExited = 20,

    }
}

/// Which system call an error came from; the host turns it into Node's `syscall` property
/// (`ts/errors.ts`). Ranges as for [`Kind`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    None = 0,
    Read = 1,
    Write = 2,
    Connect = 3,
    Getaddrinfo = 4,
    Accept = 5,
    Shutdown = 6,
    Sendto = 10,
    Recvmsg = 11,
    Bind = 12,
    Socket = 13,
    Setsockopt = 14,
    /// `connect` of a datagram socket (numbered apart from streams' [`Syscall::Connect`]).
    DgramConnect = 15,
    /// Checks of a descriptor handed over for adoption, and its registration with the reactor
    /// (`epoll_ctl` on Linux).
    Fstat = 16,
    Fcntl = 17,
    Register = 18,
    Getsockname = 19,
    Getsockopt = 20,
    /// The socket failed during a TLS handshake.
    Handshake = 30,
}

/// Not an errno: name resolution found no address (Node's `ENOTFOUND`).
pub const ENOTFOUND: u32 = 0x7fff_0001;

/// What one drain hands to the host.
#[derive(Default, Debug)]
pub struct Batch {
    pub records: Vec<u32>,
    pub payload: Vec<u8>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records that the last `n` bytes of the payload are stream `id`'s: a [`Kind::Data`] record, or
    /// more bytes for the last record when that is already `id`'s (its bytes end where these begin).
    /// JavaScript then gets a run of reads as one piece, and a proxy writes it on with one call.
    fn note_data(&mut self, id: u32, n: usize) {
        match self.records.last_chunk_mut::<5>() {
            Some([k, i, a, _, len]) if *k == Kind::Data as u32 && *i == id => {
                *a += n as u32;
                *len += n as u32;
            }
            _ => self.records.extend_from_slice(&[Kind::Data as u32, id, n as u32, 0, n as u32]),
        }
    }

    /// Appends one record whose payload is `parts`, concatenated.
    pub fn push(&mut self, kind: Kind, id: u32, a: u32, b: u32, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.records.extend_from_slice(&[kind as u32, id, a, b, len as u32]);
        for p in parts {
            self.payload.extend_from_slice(p);
        }
    }
}

/// Above this many undelivered payload bytes, readers wait for the host to drain before reading more,
/// so a slow JavaScript thread applies back-pressure to sockets instead of growing memory. It also
/// bounds a turn of the host reactor: bytes handed to JavaScript soon after the kernel copied them are
/// still in cache when they are written on. Measured with the host reactor (`batch-ab`, `batch-ab2`):
/// 256 KiB over 1 MiB, echo 100 KiB x 32 +15%, bulk receive +13%; 64 KiB splits large messages over
/// turns (echo 100 KiB x 256 -44%).
const PAYLOAD_HIGH_WATER: usize = 256 << 10;

/// Payload capacity of a full batch (the high-water mark plus one read), which every drained batch is
/// given for the reads to come, whatever the host left in its place: a vector that starts smaller grows
/// by reallocating, which copies the bytes read so far (in a profile of 1 KiB echo, the largest item
/// of user time).
const BATCH_CAPACITY: usize = PAYLOAD_HIGH_WATER + (64 << 10);

/// The queue shared by all tasks of one engine.
pub struct EventQueue {
    batch: Mutex<Batch>,
    /// The previous batch, emptied but with its capacity, swapped in by the next drain: once warm, a
    /// busy queue allocates (and page-faults) nothing.
    spare: Mutex<Batch>,
    wake: Box<dyn Fn() + Send + Sync>,
    drained: Notify,
    /// How many batches the host has taken: a reader tells the batch its bytes went into from the next.
    drains: AtomicU64,
}

impl EventQueue {
    /// `wake` is called (from any thread) when the queue goes from empty to non-empty.
    pub fn new(wake: Box<dyn Fn() + Send + Sync>) -> Arc<Self> {
        Arc::new(EventQueue {
            batch: Mutex::new(Batch::default()),
            spare: Mutex::new(Batch::default()),
            wake,
            drained: Notify::new(),
            drains: AtomicU64::new(0),
        })
    }

    pub fn push(&self, kind: Kind, id: u32, a: u32, b: u32) {
        self.push_with(kind, id, a, b, &[]);
    }

    /// Appends one record and its payload; wakes the host if this starts a batch.
    pub fn push_with(&self, kind: Kind, id: u32, a: u32, b: u32, payload: &[u8]) {
        self.push_all(|batch| batch.push(kind, id, a, b, &[payload]));
    }

    /// Appends bytes read from stream `id` (see [`Batch::note_data`]); wakes the host if this starts a
    /// batch.
    pub fn push_data(&self, id: u32, bytes: &[u8]) {
        self.push_all(|batch| {
            batch.payload.extend_from_slice(bytes);
            batch.note_data(id, bytes.len());
        });
    }

    /// Reads stream `id`'s bytes straight into the batch, saving the copy out of a read buffer: `read`
    /// gets at least `room` bytes of free space at the payload's end (at most `most`) and returns how
    /// many of them it filled (recorded as by [`EventQueue::push_data`]) along with whatever the caller
    /// needs back. `None`, without calling `read`, when the host is draining just now: the caller then
    /// reads into its own buffer rather than make the host wait on a system call.
    pub fn read_into<R>(&self, id: u32, room: usize, most: usize, read: impl FnOnce(*mut u8, usize) -> (usize, R)) -> Option<R> {
        let (first, r) = {
            let mut batch = match self.batch.try_lock() {
                Ok(b) => b,
                Err(std::sync::TryLockError::WouldBlock) => return None,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            };
            let start = batch.payload.len();
            // More room when the batch has it below its high-water mark: fewer, larger reads for a
            // busy stream, the rest of the capacity kept for one more reader.
            let room = room.max(PAYLOAD_HIGH_WATER.saturating_sub(start)).min(most);
            batch.payload.reserve(room);
            // SAFETY: `reserve` made `room` bytes of capacity past `start`; `read` writes at most that.
            let (n, r) = read(unsafe { batch.payload.as_mut_ptr().add(start) }, room);
            if n == 0 {
                return Some(r);
            }
            assert!(n <= room, "read_into: filled more than the room given");
            // SAFETY: `read` initialized the first `n` bytes past `start`, within the capacity.
            unsafe { batch.payload.set_len(start + n) };
            let first = batch.records.is_empty();
            batch.note_data(id, n);
            (first, r)
        };
        if first {
            (self.wake)();
        }
        Some(r)
    }

    /// Appends any number of records under one lock (a whole receive batch); wakes the host if this
    /// starts a batch.
    pub fn push_all(&self, f: impl FnOnce(&mut Batch)) {
        let first = {
            let mut batch = self.batch.lock().unwrap();
            let first = batch.records.is_empty();
            f(&mut batch);
            first && !batch.records.is_empty()
        };
        if first {
            (self.wake)();
        }
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.batch.lock().unwrap().records.is_empty()
    }

    /// Takes everything queued so far. The next push wakes the host again.
    pub fn drain(&self) -> Batch {
        let batch = {
            let mut current = self.batch.lock().unwrap();
            self.drains.fetch_add(1, Ordering::Release);
            std::mem::take(&mut *current)
        };
        self.drained.notify_waiters();
        batch
    }

    /// Hands everything queued so far to `f`, which copies what it needs or takes vectors away
    /// (leaving others in their place), and keeps the memory left for the batches to come, with at
    /// least a full batch's payload capacity. The next push wakes the host again.
    pub fn drain_with<R>(&self, f: impl FnOnce(&mut Batch) -> R) -> R {
        // Only the host drains, so this lock never waits; it just makes the swap safe.
        let mut spare = self.spare.lock().unwrap();
        {
            let mut current = self.batch.lock().unwrap();
            self.drains.fetch_add(1, Ordering::Release);
            std::mem::swap(&mut *current, &mut *spare);
        }
        // Readers wait for room below the high-water mark, or for their batch to be taken.
        self.drained.notify_waiters();
        let result = f(&mut spare);
        spare.records.clear();
        spare.payload.clear();
        // A burst may have grown the payload a lot; do not keep that much forever. And `f` may have
        // taken the payload away, leaving a smaller vector: give it a full batch's room at once.
        spare.payload.shrink_to(BATCH_CAPACITY);
        spare.payload.reserve(BATCH_CAPACITY);
        result
    }

    /// Waits while the host is behind by more than the high-water mark of payload bytes.
    pub async fn wait_for_room(&self) {
        crate::wait_until(&self.drained, || self.batch.lock().unwrap().payload.len() < PAYLOAD_HIGH_WATER).await
    }

    /// How many batches the host has taken so far (the number of the batch being filled).
    pub fn drains(&self) -> u64 {
        self.drains.load(Ordering::Acquire)
    }

    /// Waits until the host has taken batch `batch` (a number from [`EventQueue::drains`]), which
    /// holds payload bytes of the caller's.
    pub async fn wait_for_drain(&self, batch: u64) {
        crate::wait_until(&self.drained, || self.drains() != batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn wakes_once_per_batch_and_keeps_order() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let q = EventQueue::new(Box::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        q.push_with(Kind::Data, 1, 3, 0, b"abc");
        q.push(Kind::Eof, 1, 0, 0);
        q.push_with(Kind::Data, 2, 2, 0, b"xy");
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        let b = q.drain();
        assert_eq!(b.records, vec![1, 1, 3, 0, 3, 2, 1, 0, 0, 0, 1, 2, 2, 0, 2]);
        assert_eq!(b.payload, b"abcxy");
        assert!(q.drain().is_empty());
        q.push(Kind::Eof, 2, 0, 0);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn read_into_appends_what_was_filled_and_stands_aside_while_the_host_drains() {
        let q = EventQueue::new(Box::new(|| {}));
        q.push_with(Kind::Data, 1, 2, 0, b"ab");
        let fill = |bytes: &'static [u8]| {
            move |ptr: *mut u8, room: usize| {
                assert!(room >= bytes.len());
                // SAFETY: `room` bytes are writable at `ptr`, and `bytes` fits.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
                (bytes.len(), bytes.len())
            }
        };
        assert_eq!(q.read_into(2, 16, usize::MAX, fill(b"cde")), Some(3));
        assert_eq!(q.read_into(3, 16, usize::MAX, fill(b"")), Some(0)); // nothing read, no record
        {
            let _draining = q.batch.lock().unwrap();
            assert_eq!(q.read_into(4, 16, usize::MAX, |_, _| -> (usize, ()) { unreachable!() }), None);
        }
        let b = q.drain();
        assert_eq!(b.records, vec![1, 1, 2, 0, 2, 1, 2, 3, 0, 3]);
        assert_eq!(b.payload, b"abcde");
    }

    #[test]
    fn stream_bytes_get_room_up_to_the_mark_and_lengthen_the_last_record_when_it_holds_the_same_ids() {
        let q = EventQueue::new(Box::new(|| {}));
        let fill = |bytes: &'static [u8]| {
            move |ptr: *mut u8, _room: usize| {
                // SAFETY: every call here gives room for these few bytes.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
                (bytes.len(), ())
            }
        };
        // An empty batch offers a busy stream room up to its high-water mark, not just what it asked for.
        q.read_into(1, 16, usize::MAX, |_, room| {
            assert_eq!(room, PAYLOAD_HIGH_WATER);
            (0, ())
        });
        q.read_into(1, 16, usize::MAX, fill(b"ab"));
        q.push_data(1, b"cd"); // one piece with the last, copied or read in place
        q.read_into(2, 16, usize::MAX, fill(b"e"));
        q.read_into(1, 16, usize::MAX, fill(b"f")); // another id came between
        q.push(Kind::Eof, 1, 0, 0);
        q.read_into(1, 16, usize::MAX, fill(b"g")); // an event came between
        let b = q.drain();
        assert_eq!(b.records, vec![1, 1, 4, 0, 4, 1, 2, 1, 0, 1, 1, 1, 1, 0, 1, 2, 1, 0, 0, 0, 1, 1, 1, 0, 1]);
        assert_eq!(b.payload, b"abcdefg");
    }
}

/// TypeScript's copy of [`Kind`] (`EventKind` in `ts/native.ts`, a `const enum` the compiler inlines)
/// must name the same kinds with the same numbers: a kind added, renumbered or removed on one side
/// only would hand events to the wrong handler.
#[cfg(test)]
mod typescript_kinds {
    use super::Kind;

    #[test]
    fn ts_event_kind_matches_the_rust_enum() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ts/native.ts");
        let ts = std::fs::read_to_string(path).expect("ts/native.ts");
        let start = ts.find("export const enum EventKind {").expect("EventKind in ts/native.ts");
        let body = &ts[start..ts[start..].find("\n}").map(|e| start + e).expect("end of EventKind")];
        let mut in_ts: Vec<(String, u32)> = body
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').split_once(" = "))
            .map(|(name, n)| (name.to_string(), n.parse().expect("a number")))
            .collect();
        let mut in_rust: Vec<(String, u32)> = Kind::ALL.iter().map(|&(k, name)| (name.to_string(), k as u32)).collect();
        in_ts.sort();
        in_rust.sort();
        assert_eq!(in_ts, in_rust, "ts/native.ts EventKind differs from protoloop_engine::events::Kind");
    }
}
