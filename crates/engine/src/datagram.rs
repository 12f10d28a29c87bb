//! Datagram transports: UDP over IPv4 and IPv6, and Unix datagram sockets (asyncio's
//! `create_datagram_endpoint`).
//!
//! One reader task per endpoint takes every datagram the kernel holds with one `recvmmsg` (Linux) and
//! queues them under one lock, so a flood costs one hand-over to the host per batch. Each datagram is one
//! [`Kind::DatagramReceived`] record whose payload is the sender's address followed by the data (see
//! [`encode_sender`]). Sends come from the host thread first, as the stream transport's writes do
//! (unless [`crate::EngineOptions::direct_writes`] is off); only what the kernel refuses with `EAGAIN`
//! is queued for a writer task, which reports progress as
//! [`Kind::Drained`] in buffer units: datagram length plus [`HEADER_SIZE`], so that empty
//! datagrams weigh on flow control too (asyncio's `_header_size`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::io::Interest;

use crate::connect::{resolve, ConnectError};
use crate::events::{Batch, Kind, Syscall};
use crate::lifecycle::{Lifecycle, Transport};
use crate::registry::Handle;
use crate::stream::errno_of;
use crate::sys::{self, errno, GuardOps, Io};
use crate::Core;

/// What each queued datagram adds to the write buffer besides its bytes (asyncio's `_header_size`).
pub const HEADER_SIZE: usize = 8;

/// How a sender's address is encoded in `a >> 16` of a [`Kind::DatagramReceived`] record.
pub mod tag {
    /// Payload prefix: the IPv4 address as text. Port in `a & 0xffff`.
    pub const IPV4: u32 = 0;
    /// Payload prefix: flowinfo and scope id (u32 little-endian each), then the IPv6 address as text.
    pub const IPV6: u32 = 1;
    /// Payload prefix: the Unix socket path (abstract names start with NUL).
    pub const UNIX: u32 = 2;
    /// No address: an unbound Unix socket sent it. The prefix is empty.
    pub const UNNAMED: u32 = 3;
}

/// An address as the host names it: `[host, port]` for IP, a path for Unix sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Ip(String, u16),
    Path(String),
}

/// asyncio's keyword arguments of `create_datagram_endpoint`.
#[derive(Clone, Debug, Default)]
pub struct DatagramOptions {
    /// `AF_INET`, `AF_INET6`, `AF_UNIX`, or 0 (whatever the addresses resolve to).
    pub family: i32,
    pub local: Option<Endpoint>,
    pub remote: Option<Endpoint>,
    pub reuse_port: bool,
    pub allow_broadcast: bool,
}

/// Where a datagram goes.
#[derive(Debug)]
pub enum Dest {
    /// The remote address given at creation (the connected peer, or the broadcast target).
    Default,
    Addr(SockAddr),
    /// A host name that the writer task resolves before sending (never on the host thread).
    Name(String, u16),
}

/// What [`Datagram::sendto`] did with one datagram.
#[derive(Debug)]
pub enum Sent {
    /// The kernel took it.
    Now,
    /// Queued; this many units joined the write buffer.
    Queued(usize),
    /// The transport is closing or gone; dropped.
    Dropped,
    /// The send failed (reported to the protocol's `errorReceived`); nothing was queued.
    Failed(io::Error),
}

enum Round {
    Done,
    Blocked,
    More,
}

struct Pending {
    data: Vec<u8>,
    dest: Dest,
}

#[derive(Default)]
struct WriteState {
    queue: VecDeque<Pending>,
    /// Buffer units queued: bytes plus [`HEADER_SIZE`] per datagram.
    queued: usize,
    writer_running: bool,
    closing: bool,
}

pub struct Datagram {
    /// Id, core, closed flag, stop signal, read pause: what every transport has.
    pub life: Lifecycle,
    /// `AF_INET`, `AF_INET6` or `AF_UNIX`.
    pub domain: i32,
    fd: Io,
    /// Where `Dest::Default` goes when the socket is not connected (`allow_broadcast` with a remote).
    remote: Option<SockAddr>,
    connected: bool,
    write: Mutex<WriteState>,
    /// `close` was called: the reader stops while queued datagrams still go out (the lifecycle's
    /// `stop` wakes it).
    reading_stopped: AtomicBool,
}

/// What an endpoint's descriptor is registered for.
pub(crate) const INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE).add(Interest::ERROR);

/// Where a datagram socket is: its family and its connected peer, if any.
pub(crate) struct Place {
    domain: i32,
    peer: Option<SockAddr>,
}

impl Place {
    pub(crate) fn of(sock: &socket2::SockRef<'_>) -> io::Result<Place> {
        // From the address rather than SO_DOMAIN, which only Linux has.
        Ok(Place { domain: sock.local_addr()?.domain().into(), peer: sock.peer_addr().ok() })
    }
}

impl Datagram {
    /// Registers `fd` (non-blocking) and the endpoint; reading starts with [`Datagram::begin_reading`]
    /// once the caller has announced the id.
    pub(crate) fn start(core: &Arc<Core>, id: u32, fd: Socket, remote: Option<SockAddr>) -> io::Result<Arc<Datagram>> {
        let place = Place::of(&socket2::SockRef::from(&fd))?;
        let fd = {
            let _rt = core.handle.enter();
            Io::register(fd, INTEREST)?
        };
        Ok(Self::registered(core, id, fd, place, remote))
    }

    /// [`Datagram::start`] of a descriptor already registered (with [`INTEREST`]).
    pub(crate) fn registered(core: &Arc<Core>, id: u32, fd: Io, place: Place, remote: Option<SockAddr>) -> Arc<Datagram> {
        let connected = place.peer.is_some();
        let d = Arc::new(Datagram {
            life: Lifecycle::new(core, id, fd.raw()),
            domain: place.domain,
            fd,
            remote: remote.or(place.peer),
            connected,
            write: Mutex::new(WriteState::default()),
            reading_stopped: AtomicBool::new(false),
        });
        core.register(id, Handle::Datagram(d.clone()));
        d
    }

    pub(crate) fn begin_reading(self: &Arc<Self>) {
        self.core.handle.spawn(self.clone().read_loop());
    }

    /// The address datagrams go to when `sendto` names none (connected peer or broadcast target).
    pub fn remote(&self) -> Option<&SockAddr> {
        self.remote.as_ref()
    }

    /// Buffer units (bytes plus [`HEADER_SIZE`] each) accepted but not yet taken by the kernel.
    pub fn write_buffer_size(&self) -> usize {
        self.write.lock().unwrap().queued
    }

    /// The address `host` names for this socket, when it can be had without resolving a name: an IPv4
    /// address on an IPv6 socket becomes its v4-mapped form, as the kernel expects.
    pub fn ip_dest(&self, host: &str, port: u16, flowinfo: u32, scope_id: u32) -> Dest {
        let Ok(ip) = host.parse::<IpAddr>() else {
            return Dest::Name(host.to_owned(), port);
        };
        let addr = match ip {
            IpAddr::V4(v4) if self.domain == sys::AF_INET6 => {
                SocketAddr::V6(SocketAddrV6::new(v4.to_ipv6_mapped(), port, 0, 0))
            }
            IpAddr::V4(_) => SocketAddr::new(ip, port),
            IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, flowinfo, scope_id)),
        };
        Dest::Addr(addr.into())
    }

    /// Sends one datagram, or queues it when the kernel says `EAGAIN` or earlier ones still wait.
    pub fn sendto(self: &Arc<Self>, data: &[u8], dest: Dest) -> Sent {
        let mut st = self.write.lock().unwrap();
        if self.is_closed() || st.closing {
            return Sent::Dropped;
        }
        if self.core.direct_writes && st.queue.is_empty() && !st.writer_running && !matches!(dest, Dest::Name(..)) {
            loop {
                match self.send_one(data, &dest) {
                    Ok(()) => return Sent::Now,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Sent::Failed(e),
                }
            }
        }
        self.enqueue(&mut st, data, dest)
    }

    fn enqueue(self: &Arc<Self>, st: &mut WriteState, data: &[u8], dest: Dest) -> Sent {
        let units = data.len() + HEADER_SIZE;
        st.queue.push_back(Pending { data: data.to_vec(), dest });
        st.queued += units;
        if !st.writer_running {
            st.writer_running = true;
            self.core.handle.spawn(self.clone().write_loop());
        }
        Sent::Queued(units)
    }

    /// Sends `items` in order with the outcome [`Datagram::sendto`] would give each, but hands every
    /// run the kernel takes at once to one `sendmmsg` (Linux): an echo server answering a received
    /// batch pays one syscall instead of one per datagram.
    pub fn sendto_many(self: &Arc<Self>, items: Vec<(&[u8], Dest)>) -> Vec<Sent> {
        let mut out = Vec::with_capacity(items.len());
        let mut st = self.write.lock().unwrap();
        if self.is_closed() || st.closing {
            out.extend(items.iter().map(|_| Sent::Dropped));
            return out;
        }
        let mut i = 0;
        if self.core.direct_writes {
            while i < items.len() && st.queue.is_empty() && !st.writer_running {
                // A name waits for the writer task to resolve it, and everything after it waits too.
                let end = items[i..].iter().position(|(_, d)| matches!(d, Dest::Name(..))).map_or(items.len(), |p| i + p);
                if end == i {
                    break;
                }
                match self.send_run(&items[i..end]) {
                    Ok(n) => {
                        out.extend((0..n).map(|_| Sent::Now));
                        i += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // The run's first datagram failed; the kernel reports a later one's error on
                        // the next call, so each failure lands on its own datagram as with sendto.
                        out.push(Sent::Failed(e));
                        i += 1;
                    }
                }
            }
        }
        for (data, dest) in items.into_iter().skip(i) {
            out.push(self.enqueue(&mut st, data, dest));
        }
        out
    }

    /// Where `dest` goes: None for the connected peer.
    fn target<'a>(&'a self, dest: &'a Dest) -> io::Result<Option<&'a SockAddr>> {
        match dest {
            Dest::Default if self.connected => Ok(None),
            Dest::Default => Ok(Some(self.remote.as_ref().ok_or_else(|| io::Error::from_raw_os_error(errno::EDESTADDRREQ))?)),
            Dest::Addr(a) => Ok(Some(a)),
            Dest::Name(..) => Err(io::Error::from_raw_os_error(errno::EDESTADDRREQ)),
        }
    }

    /// Sends a prefix of `items` (none of them a name) at once (`sendmmsg` on Linux); returns how many
    /// the kernel took (at least one), or the error of the first.
    fn send_run(&self, items: &[(&[u8], Dest)]) -> io::Result<usize> {
        // A datagram without a destination ends the run; alone, it fails as sendto would.
        let msg = |k: usize| items.get(k).and_then(|(data, dest)| self.target(dest).ok().map(|to| (*data, to)));
        match self.fd.send_many(items.len(), msg)? {
            0 => self.send_one(items[0].0, &items[0].1).map(|()| 1),
            n => Ok(n),
        }
    }

    fn send_one(&self, data: &[u8], dest: &Dest) -> io::Result<()> {
        self.fd.send_to(data, self.target(dest)?)
    }

    async fn write_loop(self: Arc<Self>) {
        let mut blocked = false;
        loop {
            // Resolve a name at the head of the queue first, outside the lock; only this task pops.
            let name = {
                let st = self.write.lock().unwrap();
                match st.queue.front() {
                    Some(Pending { dest: Dest::Name(h, p), .. }) => Some((h.clone(), *p)),
                    _ => None,
                }
            };
            if let Some((host, port)) = name {
                let family = if self.domain == sys::AF_INET { sys::AF_INET } else { 0 };
                let resolved = tokio::select! {
                    _ = self.stopped() => return,
                    r = resolve(&host, port, family) => r,
                };
                if self.resolved_head(resolved) {
                    return;
                }
                continue;
            }
            let round = if blocked {
                // An unconnected Unix socket gets `EAGAIN` from a full receiver without ever being
                // told when it drains, so readiness alone could wait forever: retry after a moment.
                tokio::select! {
                    _ = self.stopped() => return,
                    g = self.fd.writable() => match g {
                        Ok(mut g) => self.flush_round(Some(&mut g)),
                        Err(e) => return self.finish(Some(e), Syscall::Sendto),
                    },
                    _ = crate::reactor::sleep(Duration::from_millis(5)) => self.flush_round(None),
                }
            } else {
                tokio::select! {
                    _ = self.stopped() => return,
                    g = self.fd.writable() => match g {
                        Ok(mut g) => self.flush_round(Some(&mut g)),
                        Err(e) => return self.finish(Some(e), Syscall::Sendto),
                    },
                }
            };
            blocked = match round {
                Round::Done => return,
                Round::Blocked => true,
                Round::More => false,
            };
        }
    }

    /// Puts the resolved address on the queue's head, or drops it and reports the failure. True when
    /// the writer is done.
    fn resolved_head(&self, resolved: Result<Vec<SocketAddr>, ConnectError>) -> bool {
        let mut st = self.write.lock().unwrap();
        if self.is_closed() {
            return true;
        }
        match resolved {
            Ok(addrs) => {
                // `resolve` never returns an empty list.
                if let (Some(a), Some(front)) = (addrs.first(), st.queue.front_mut()) {
                    front.dest = self.ip_dest(&a.ip().to_string(), a.port(), 0, 0);
                }
                false
            }
            Err(e) => {
                let units = st.queue.pop_front().map_or(0, |p| p.data.len() + HEADER_SIZE);
                st.queued -= units;
                self.core.queue.push(Kind::Drained, self.id, units as u32, 0);
                self.core.queue.push(Kind::DatagramError, self.id, e.errno, e.syscall as u32);
                self.after_round(st)
            }
        }
    }

    /// Sends queued datagrams while the kernel takes them.
    fn flush_round(&self, mut guard: Option<&mut sys::Guard<'_>>) -> Round {
        let mut st = self.write.lock().unwrap();
        if self.is_closed() {
            return Round::Done;
        }
        let mut drained = 0usize;
        let mut blocked = false;
        while let Some(p) = st.queue.front() {
            if matches!(p.dest, Dest::Name(..)) {
                break;
            }
            // None: the kernel would block.
            let attempt = match guard.as_deref_mut() {
                Some(g) => g.try_raw(|_| self.send_one(&p.data, &p.dest)).ok(),
                None => match self.send_one(&p.data, &p.dest) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                    r => Some(r),
                },
            };
            match attempt {
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Some(result) => {
                    let units = p.data.len() + HEADER_SIZE;
                    st.queue.pop_front();
                    st.queued -= units;
                    drained += units;
                    if let Err(e) = result {
                        // asyncio drops the datagram and tells the protocol; the rest still goes.
                        self.core.queue.push(Kind::Drained, self.id, drained as u32, 0);
                        drained = 0;
                        self.core.queue.push(Kind::DatagramError, self.id, errno_of(&e), Syscall::Sendto as u32);
                    }
                }
                None => {
                    blocked = true;
                    break;
                }
            }
        }
        if drained > 0 {
            self.core.queue.push(Kind::Drained, self.id, drained as u32, 0);
        }
        if self.after_round(st) {
            Round::Done
        } else if blocked {
            Round::Blocked
        } else {
            Round::More
        }
    }

    /// Ends the writer when the queue is empty (finishing a pending close); true if it ended.
    fn after_round(&self, mut st: std::sync::MutexGuard<'_, WriteState>) -> bool {
        if !st.queue.is_empty() {
            return false;
        }
        st.writer_running = false;
        let closing = st.closing;
        drop(st);
        if closing {
            self.finish(None, Syscall::None);
        }
        true
    }
}

impl Transport for Datagram {
    /// Stops receiving, sends what is queued, then finishes (asyncio's `close`).
    fn close(&self) {
        let mut st = self.write.lock().unwrap();
        if st.closing || self.is_closed() {
            return;
        }
        st.closing = true;
        let flushing = st.writer_running;
        drop(st);
        // Receiving stops now, not after the flush: asyncio removes the reader at once.
        self.reading_stopped.store(true, Ordering::Release);
        self.life.stopped_now();
        if !flushing {
            self.finish(None, Syscall::None);
        }
    }

    /// Ends the endpoint exactly once: unregisters it, stops its tasks and reports
    /// [`Kind::Closed`]. The descriptor closes when the last task lets go of it.
    fn finish(&self, err: Option<io::Error>, syscall: Syscall) {
        if !self.life.end() {
            return;
        }
        {
            let mut st = self.write.lock().unwrap();
            st.queue.clear();
            st.queued = 0;
        }
        self.life.stopped_now();
        self.life.report_closed(err, syscall);
    }
}

crate::lifecycle::lifecycle_of!(Datagram);

// ---- receiving ----

/// Memory one I/O thread receives into. Datagrams are copied into the event queue before the thread
/// does anything else, so one slab per thread serves every endpoint, however many there are.
const SLAB_SIZE: usize = 1 << 20;
const MAX_SLOTS: usize = 16;

struct Slab {
    buf: Vec<u8>,
    names: Vec<sys::Name>,
    /// `(bytes, address length)` of each datagram the last call received.
    got: Vec<(usize, sys::NameLen)>,
    /// Where a sender's address is spelled out for the record.
    prefix: Vec<u8>,
}

impl Slab {
    fn new() -> Slab {
        Slab {
            buf: vec![0; SLAB_SIZE],
            names: (0..MAX_SLOTS).map(|_| sys::empty_name()).collect(),
            got: Vec::with_capacity(MAX_SLOTS),
            prefix: Vec::with_capacity(64),
        }
    }
}

thread_local! {
    static SLAB: RefCell<Option<Slab>> = const { RefCell::new(None) };
}

/// `(slot size, slots)`: every UDP datagram fits 64 KiB; Unix datagrams may be larger (asyncio
/// reads up to 256 KiB).
fn slots(domain: i32) -> (usize, usize) {
    if domain == sys::AF_UNIX {
        (256 << 10, 4)
    } else {
        (64 << 10, MAX_SLOTS)
    }
}

/// A datagram's sender as the system gave it (see `sys::sender_of`).
pub enum Sender<'a> {
    V4(SocketAddrV4),
    V6(SocketAddrV6),
    /// A Unix socket's path, up to its NUL (an abstract name: the NUL it starts with and all after).
    Path(&'a [u8]),
    /// No address: an unbound Unix socket sent it.
    Unnamed,
}

/// Spells out a sender's address for a [`Kind::DatagramReceived`] record: returns the record's `a`
/// (`tag << 16 | port`) and leaves the payload prefix in `out`.
fn encode_sender(name: &sys::Name, len: sys::NameLen, out: &mut Vec<u8>) -> u32 {
    out.clear();
    match sys::sender_of(name, len) {
        Sender::V4(a) => {
            let _ = write!(out, "{}", a.ip());
            tag::IPV4 << 16 | a.port() as u32
        }
        Sender::V6(a) => {
            out.extend_from_slice(&a.flowinfo().to_le_bytes());
            out.extend_from_slice(&a.scope_id().to_le_bytes());
            let _ = write!(out, "{}", a.ip());
            tag::IPV6 << 16 | a.port() as u32
        }
        Sender::Path(path) => {
            out.extend_from_slice(path);
            tag::UNIX << 16
        }
        Sender::Unnamed => tag::UNNAMED << 16,
    }
}

/// Receive errors that end the endpoint; anything else (ICMP errors such as `ECONNREFUSED`) goes to
/// the protocol's `errorReceived` and receiving goes on, as asyncio does.
fn is_fatal(e: &io::Error) -> bool {
    e.raw_os_error().is_some() && matches!(sys::errno_of(e) as i32, errno::EBADF | errno::ENOTSOCK | errno::EFAULT | errno::EINVAL)
}

impl Datagram {
    async fn reading_halted(&self) {
        crate::wait_until(&self.stop, || self.is_closed() || self.reading_stopped.load(Ordering::Acquire)).await
    }

    async fn read_loop(self: Arc<Self>) {
        loop {
            if self.life.read_paused() {
                tokio::select! {
                    _ = self.reading_halted() => return,
                    _ = self.read_wake.notified() => continue,
                }
            }
            // ERROR as well: an ICMP error raises EPOLLERR without EPOLLIN.
            let mut guard = tokio::select! {
                _ = self.reading_halted() => return,
                g = self.fd.readable_or_error() => match g {
                    Ok(g) => g,
                    Err(e) => return self.finish(Some(e), Syscall::Recvmsg),
                },
            };
            match guard.try_raw(|fd| self.receive_batch(fd)) {
                Ok(Ok(())) => {
                    tokio::select! {
                        _ = self.reading_halted() => return,
                        _ = self.core.queue.wait_for_room() => {}
                    }
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) if is_fatal(&e) => return self.finish(Some(e), Syscall::Recvmsg),
                Ok(Err(e)) => {
                    if !self.reading_stopped.load(Ordering::Acquire) {
                        self.core.queue.push(Kind::DatagramError, self.id, errno_of(&e), Syscall::Recvmsg as u32);
                    }
                }
                Err(_would_block) => {}
            }
        }
    }

    /// Takes every datagram the kernel has (up to a slab) and queues them under one lock.
    fn receive_batch(&self, fd: sys::RawFd) -> io::Result<()> {
        let (size, count) = slots(self.domain);
        SLAB.with(|cell| {
            let mut slab = cell.borrow_mut();
            let slab = slab.get_or_insert_with(Slab::new);
            let Slab { buf, names, got, prefix } = slab;
            // What arrived before an error is delivered before it.
            let result = crate::sys::recv_many(fd, buf, size, &mut names[..count], got);
            if !got.is_empty() {
                self.core.queue.push_all(|batch: &mut Batch| {
                    for (i, &(len, namelen)) in got.iter().enumerate() {
                        let a = encode_sender(&names[i], namelen, prefix);
                        let data = &buf[i * size..i * size + len.min(size)];
                        batch.push(Kind::DatagramReceived, self.id, a, prefix.len() as u32, &[prefix, data]);
                    }
                });
            }
            result
        })
    }
}

// ---- opening ----

pub(crate) fn failed(syscall: Syscall) -> impl Fn(io::Error) -> ConnectError {
    move |e| ConnectError { errno: errno_of(&e), syscall }
}

fn dgram_socket(domain: Domain) -> io::Result<Socket> {
    crate::sys::socket(domain, Type::DGRAM, None)
}

pub(crate) fn new_socket(domain: Domain, opts: &DatagramOptions) -> Result<Socket, ConnectError> {
    let sock = dgram_socket(domain).map_err(failed(Syscall::Socket))?;
    if opts.reuse_port {
        sys::set_reuse_port(&sock).map_err(failed(Syscall::Setsockopt))?;
    }
    if opts.allow_broadcast {
        sock.set_broadcast(true).map_err(failed(Syscall::Setsockopt))?;
    }
    Ok(sock)
}

/// The socket and the remote address of a new endpoint. With `allow_broadcast` the socket is not
/// connected (asyncio's rule), so the remote address is kept for `sendto` without an address.
pub(crate) type Opened = (Socket, Option<SockAddr>);

async fn resolve_endpoint(ep: &Option<Endpoint>, family: i32) -> Result<Option<Vec<SocketAddr>>, ConnectError> {
    match ep {
        None => Ok(None),
        Some(Endpoint::Ip(host, port)) => resolve(host, *port, family).await.map(Some),
        Some(Endpoint::Path(_)) => Err(ConnectError { errno: errno::EAFNOSUPPORT as u32, syscall: Syscall::Getaddrinfo }),
    }
}

/// asyncio's `create_datagram_endpoint` for IP: resolve both addresses, pair them by family (in the
/// order the resolver gave), and take the first pair whose socket binds and connects.
async fn open_ip(opts: &DatagramOptions) -> Result<Opened, ConnectError> {
    let local = resolve_endpoint(&opts.local, opts.family).await?;
    let remote = resolve_endpoint(&opts.remote, opts.family).await?;
    let mut pairs: Vec<(Domain, Option<SocketAddr>, Option<SocketAddr>)> = Vec::new();
    if local.is_none() && remote.is_none() {
        let domain = if opts.family == sys::AF_INET6 { Domain::IPV6 } else { Domain::IPV4 };
        pairs.push((domain, None, None));
    }
    for (side, addrs) in [(0, &local), (1, &remote)] {
        for a in addrs.iter().flatten() {
            let domain = Domain::for_address(*a);
            let i = match pairs.iter().position(|p| p.0 == domain) {
                Some(i) => i,
                None => {
                    pairs.push((domain, None, None));
                    pairs.len() - 1
                }
            };
            let slot = if side == 0 { &mut pairs[i].1 } else { &mut pairs[i].2 };
            slot.get_or_insert(*a);
        }
    }
    pairs.retain(|p| (local.is_none() || p.1.is_some()) && (remote.is_none() || p.2.is_some()));
    if pairs.is_empty() {
        // asyncio's "can not get address information": no family has both addresses.
        return Err(ConnectError { errno: errno::EAFNOSUPPORT as u32, syscall: Syscall::Getaddrinfo });
    }
    let mut first_error = None;
    for (domain, l, r) in pairs {
        let attempt = || -> Result<Opened, ConnectError> {
            let sock = new_socket(domain, opts)?;
            if let Some(l) = l {
                sock.bind(&l.into()).map_err(failed(Syscall::Bind))?;
            }
            if let Some(r) = r {
                if !opts.allow_broadcast {
                    sock.connect(&r.into()).map_err(failed(Syscall::DgramConnect))?;
                }
            }
            sys::bind_unbound(&sock, domain).map_err(failed(Syscall::Bind))?;
            Ok((sock, r.map(SockAddr::from)))
        };
        match attempt() {
            Ok(o) => return Ok(o),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // At least one pair was tried (`pairs` is not empty), so there is a first error.
    Err(first_error.unwrap_or(ConnectError { errno: errno::EAFNOSUPPORT as u32, syscall: Syscall::Getaddrinfo }))
}

/// Opens endpoint `id`; reports [`Kind::DatagramOpened`] or [`Kind::DatagramOpenFailed`].
pub(crate) fn spawn_open(core: &Arc<Core>, id: u32, opts: DatagramOptions) {
    let core2 = core.clone();
    core.handle.spawn(async move {
        let opened = if opts.family == sys::AF_UNIX { sys::open_unix_datagram(&opts) } else { open_ip(&opts).await };
        match opened.and_then(|(fd, remote)| Datagram::start(&core2, id, fd, remote).map_err(failed(Syscall::Socket))) {
            Ok(d) => {
                core2.queue.push(Kind::DatagramOpened, id, 0, 0);
                d.begin_reading();
            }
            Err(e) => core2.queue.push(Kind::DatagramOpenFailed, id, e.errno, e.syscall as u32),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;
    use std::net::UdpSocket;
    #[cfg(unix)]
    use std::os::unix::net::UnixDatagram;
    use std::time::Instant;

    /// Everything an engine reported so far: records and payload, accumulated over drains.
    #[derive(Default)]
    struct Seen {
        records: Vec<[u32; 5]>,
        payload: Vec<u8>,
    }

    impl Seen {
        /// `(a, b, payload)` of every record of `kind` for `id`.
        fn of(&self, kind: Kind, id: u32) -> Vec<(u32, u32, &[u8])> {
            let mut offset = 0;
            let mut out = Vec::new();
            for r in &self.records {
                let p = &self.payload[offset..offset + r[4] as usize];
                offset += r[4] as usize;
                if r[0] == kind as u32 && r[1] == id {
                    out.push((r[2], r[3], p));
                }
            }
            out
        }
    }

    fn engine() -> Engine {
        Engine::new(Box::new(|| {}), 1).unwrap()
    }

    fn wait(engine: &Engine, seen: &mut Seen, what: &str, mut done: impl FnMut(&Seen) -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let b = engine.queue().drain();
            seen.records.extend(b.records.chunks(5).map(|c| [c[0], c[1], c[2], c[3], c[4]]));
            seen.payload.extend_from_slice(&b.payload);
            if done(seen) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn open(engine: &Engine, seen: &mut Seen, opts: DatagramOptions) -> Arc<Datagram> {
        let id = engine.open_datagram(opts);
        wait(engine, seen, "the endpoint", |s| !s.of(Kind::DatagramOpened, id).is_empty() || !s.of(Kind::DatagramOpenFailed, id).is_empty());
        assert!(seen.of(Kind::DatagramOpenFailed, id).is_empty(), "open failed");
        engine.datagram(id).unwrap()
    }

    fn local_v4() -> DatagramOptions {
        DatagramOptions { local: Some(Endpoint::Ip("127.0.0.1".into(), 0)), ..Default::default() }
    }

    fn port_of(d: &Datagram) -> u16 {
        d.fd.sock_ref().local_addr().unwrap().as_socket().unwrap().port()
    }

    #[test]
    fn receives_each_datagram_as_one_record_with_its_sender() {
        let engine = engine();
        let mut seen = Seen::default();
        let d = open(&engine, &mut seen, local_v4());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer_port = peer.local_addr().unwrap().port();
        for msg in [&b"first"[..], b"", b"third"] {
            peer.send_to(msg, ("127.0.0.1", port_of(&d))).unwrap();
        }
        wait(&engine, &mut seen, "three datagrams", |s| s.of(Kind::DatagramReceived, d.id).len() == 3);
        let got = seen.of(Kind::DatagramReceived, d.id);
        for ((a, b, p), want) in got.iter().zip([&b"first"[..], b"", b"third"]) {
            assert_eq!(*a, tag::IPV4 << 16 | peer_port as u32);
            assert_eq!(&p[..*b as usize], b"127.0.0.1");
            assert_eq!(&p[*b as usize..], want);
        }
        d.close();
        wait(&engine, &mut seen, "the close", |s| s.of(Kind::Closed, d.id) == vec![(0, 0, &[][..])]);
        assert_eq!(engine.open_handles(), 0);
    }

    #[test]
    fn takes_what_the_kernel_holds_in_one_batch_after_a_pause() {
        let engine = engine();
        let mut seen = Seen::default();
        let d = open(&engine, &mut seen, local_v4());
        let to = ("127.0.0.1", port_of(&d));
        d.pause_reading();
        // The reader may be waiting for readiness already; the first datagram wakes it, and once that
        // one is queued the reader checks the pause before it receives again.
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"fence", to).unwrap();
        wait(&engine, &mut seen, "the fence", |s| s.of(Kind::DatagramReceived, d.id).len() == 1);
        for i in 0..10u8 {
            peer.send_to(&[i; 10], to).unwrap();
        }
        d.resume_reading();
        // One recvmmsg takes all ten and queues them under one lock: the next drain has them all.
        let mut batch = Seen::default();
        wait(&engine, &mut batch, "the batch", |s| !s.records.is_empty());
        let got = batch.of(Kind::DatagramReceived, d.id);
        assert_eq!(got.len(), 10);
        for (i, (_, b, p)) in got.iter().enumerate() {
            assert_eq!(&p[*b as usize..], &[i as u8; 10][..]);
        }
        d.abort();
    }

    // Unix: Winsock reports the ICMP error as WSAECONNRESET, asyncio's ConnectionResetError there.
    #[cfg(unix)]
    #[test]
    fn sends_at_once_and_reports_econnrefused_from_icmp() {
        let engine = engine();
        let mut seen = Seen::default();
        let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let d = open(&engine, &mut seen, DatagramOptions { remote: Some(Endpoint::Ip("127.0.0.1".into(), port)), ..Default::default() });
        assert!(matches!(d.sendto(b"ping", Dest::Default), Sent::Now));
        // The ICMP error raises EPOLLERR without EPOLLIN: the reader must wait for errors too.
        wait(&engine, &mut seen, "errorReceived", |s| !s.of(Kind::DatagramError, d.id).is_empty());
        assert_eq!(seen.of(Kind::DatagramError, d.id)[0].0, libc::ECONNREFUSED as u32);
        assert!(!d.is_closed());
        d.abort();
    }

    #[test]
    fn sendto_many_keeps_order_across_peers_and_queues_everything_from_a_name_on() {
        let engine = engine();
        let mut seen = Seen::default();
        let d = open(&engine, &mut seen, local_v4());
        let p1 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p2 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (port1, port2) = (p1.local_addr().unwrap().port(), p2.local_addr().unwrap().port());
        let items = vec![
            (&b"one"[..], d.ip_dest("127.0.0.1", port1, 0, 0)),
            (&b"two"[..], d.ip_dest("127.0.0.1", port2, 0, 0)),
            (&b"three"[..], d.ip_dest("127.0.0.1", port1, 0, 0)),
            (&b"four"[..], Dest::Name("localhost".into(), port2)),
            (&b"five"[..], d.ip_dest("127.0.0.1", port2, 0, 0)),
        ];
        let sent = d.sendto_many(items);
        // What follows a name waits behind it, as single sends would.
        assert!(matches!(sent[..], [Sent::Now, Sent::Now, Sent::Now, Sent::Queued(12), Sent::Queued(12)]), "{sent:?}");
        let mut buf = [0u8; 16];
        let mut got = |p: &UdpSocket| {
            p.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let n = p.recv(&mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        assert_eq!([got(&p1), got(&p1)], ["one", "three"]);
        assert_eq!([got(&p2), got(&p2), got(&p2)], ["two", "four", "five"]);
        wait(&engine, &mut seen, "the queue drained", |s| s.of(Kind::Drained, d.id).iter().map(|r| r.0).sum::<u32>() == 24);
        d.abort();
    }

    #[test]
    fn sendto_reaches_ipv4_and_ipv6_peers() {
        let engine = engine();
        let mut seen = Seen::default();
        let v6 = open(&engine, &mut seen, DatagramOptions { local: Some(Endpoint::Ip("::1".into(), 0)), ..Default::default() });
        let peer = UdpSocket::bind("[::1]:0").unwrap();
        let port = peer.local_addr().unwrap().port();
        assert!(matches!(v6.sendto(b"six", v6.ip_dest("::1", port, 0, 0)), Sent::Now));
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"six");
        assert_eq!(from.port(), port_of(&v6));
        peer.send_to(b"back", from).unwrap();
        wait(&engine, &mut seen, "the reply", |s| s.of(Kind::DatagramReceived, v6.id).len() == 1);
        let (a, b, p) = seen.of(Kind::DatagramReceived, v6.id)[0];
        assert_eq!(a >> 16, tag::IPV6);
        assert_eq!(&p[8..b as usize], b"::1");
        assert_eq!(&p[b as usize..], b"back");
        // An IPv4 destination on an IPv6 socket goes out v4-mapped.
        let v4peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let v4port = v4peer.local_addr().unwrap().port();
        let v6any = open(&engine, &mut seen, DatagramOptions { family: sys::AF_INET6, ..Default::default() });
        assert!(matches!(v6any.sendto(b"mapped", v6any.ip_dest("127.0.0.1", v4port, 0, 0)), Sent::Now));
        let n = v4peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"mapped");
        v6.abort();
        v6any.abort();
    }

    #[cfg(unix)]
    #[test]
    fn queues_what_a_full_unix_receiver_refuses_and_drains_it_in_order() {
        let dir = std::env::temp_dir().join(format!("protoloop-dgram-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rx.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        let engine = engine();
        let mut seen = Seen::default();
        let opts = DatagramOptions {
            family: libc::AF_UNIX,
            remote: Some(Endpoint::Path(path.to_str().unwrap().into())),
            ..Default::default()
        };
        let d = open(&engine, &mut seen, opts);
        let mut queued = 0;
        for i in 0..100u8 {
            match d.sendto(&[i; 100], Dest::Default) {
                Sent::Now => {}
                Sent::Queued(units) => queued += units,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(queued > 0, "the receiver's queue never filled");
        assert_eq!(d.write_buffer_size(), queued);
        let mut buf = [0u8; 200];
        for i in 0..100u8 {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 100][..]);
        }
        let drained = |s: &Seen| s.of(Kind::Drained, d.id).iter().map(|r| r.0 as usize).sum::<usize>();
        wait(&engine, &mut seen, "the drain", |s| drained(s) == queued);
        assert_eq!(d.write_buffer_size(), 0);
        d.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_family_with_both_addresses_fails_like_asyncio() {
        let engine = engine();
        let mut seen = Seen::default();
        let id = engine.open_datagram(DatagramOptions {
            local: Some(Endpoint::Ip("127.0.0.1".into(), 0)),
            remote: Some(Endpoint::Ip("::1".into(), 9)),
            ..Default::default()
        });
        wait(&engine, &mut seen, "the failure", |s| !s.of(Kind::DatagramOpenFailed, id).is_empty());
        assert_eq!(seen.of(Kind::DatagramOpenFailed, id)[0].0, errno::EAFNOSUPPORT as u32);
        assert_eq!(engine.open_handles(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn encodes_unix_senders_and_unnamed_ones() {
        // SAFETY: all-zero sockaddr_storage is valid; a sockaddr_un is filled in by hand.
        let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let sun = unsafe { &mut *(&mut name as *mut _ as *mut libc::sockaddr_un) };
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (i, c) in b"/tmp/x.sock".iter().enumerate() {
            sun.sun_path[i] = *c as libc::c_char;
        }
        let mut out = Vec::new();
        assert_eq!(encode_sender(&name, 2 + 12, &mut out), tag::UNIX << 16);
        assert_eq!(out, b"/tmp/x.sock");
        assert_eq!(encode_sender(&name, 2, &mut out), tag::UNNAMED << 16);
        assert!(out.is_empty());
    }
}
