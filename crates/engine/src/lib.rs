//! The protoloop engine: a tokio runtime that owns sockets, pipes and processes and reports what
//! happens to them as a stream of events (see [`events`]). It knows nothing of JavaScript; the
//! bindings drive it through ids and turn its event batches into protocol callbacks.
//!
//! ```
//! use std::sync::Arc;
//! use protoloop_engine::{Engine, events::Kind};
//!
//! let engine = Engine::new(Box::new(|| {}), 1).unwrap();
//! let server = engine.listen(&["127.0.0.1".into()], 0, &Default::default()).unwrap();
//! assert!(!engine.server(server).unwrap().fds().is_empty());
//! ```

pub mod adopt;
pub mod connect;
pub mod convert;
pub mod datagram;
pub mod events;
pub mod forward;
pub mod pipe;
pub mod reactor;
pub mod server;
pub mod stream;
pub mod subprocess;
pub mod sys;
pub mod unix;
pub mod tls;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

pub use adopt::Refused;
pub use connect::ConnectOptions;
pub use datagram::{Datagram, DatagramOptions};
use events::EventQueue;
pub use server::{ListenOptions, Server};
pub use pipe::PipeEnd;
pub use reactor::Reactor;
pub use stream::{FdKind, Stream};
pub use subprocess::{Process, SpawnOptions, Spawned};
pub use tls::{TlsConn, TlsContext, TlsOptions};

/// How the engine runs; the defaults are what measurement chose (see the README's benchmarks).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Run on the host's thread ([`Reactor::host`]): the host turns the engine when [`Engine::reactor_fd`]
    /// is readable. Otherwise on `io_threads` threads of its own ([`Reactor::threads`]).
    pub host_reactor: bool,
    /// Worker threads of the tokio runtime when it has threads of its own.
    pub io_threads: usize,
    /// `write()` tries the socket on the calling (host) thread when nothing is queued; otherwise every
    /// write is handed to the engine's writer task.
    pub direct_writes: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { host_reactor: false, io_threads: 1, direct_writes: true }
    }
}

/// Handles by id. Every `write()` from the host looks its stream up here, so the hash is one multiply
/// (ids are sequential `u32`s, nothing an attacker picks) rather than SipHash, which was the engine's
/// second-largest item in a profile of the callback proxy.
type IdMap<V> = Mutex<HashMap<u32, V, BuildHasherDefault<IdHasher>>>;

#[derive(Default)]
struct IdHasher(u64);

/// 2^64 / φ: multiplying by it spreads sequential ids over the high bits (Fibonacci hashing), which
/// hashbrown's control bytes use.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(FIBONACCI);
        }
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = (id as u64).wrapping_mul(FIBONACCI);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// What every task of the engine shares.
pub struct Core {
    pub queue: Arc<EventQueue>,
    pub handle: Handle,
    pub(crate) direct_writes: bool,
    streams: IdMap<Arc<Stream>>,
    servers: IdMap<Arc<Server>>,
    datagrams: IdMap<Arc<Datagram>>,
    tls: IdMap<Arc<TlsConn>>,
    /// STARTTLS: sockets detached from plain streams, with the bytes read after the detach, waiting
    /// for the host to start the handshake (keyed by the TLS connection's id).
    detached: IdMap<OwnedFd>,
    processes: IdMap<Arc<subprocess::Process>>,
    /// Socket files of Unix servers to remove if the engine is torn down while they listen
    /// ([`Engine::remove_at_teardown`]), by server id.
    socket_files: IdMap<unix::SocketFile>,
    next_id: AtomicU32,
}

impl Core {
    pub fn next_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a live stream, server, datagram endpoint or TLS connection (or a socket between the
    /// halves of STARTTLS) owns descriptor `fd`.
    pub(crate) fn owns_fd(&self, fd: std::os::fd::RawFd) -> bool {
        use std::os::fd::AsRawFd;
        self.streams.lock().unwrap().values().any(|s| s.raw_fd() == fd)
            || self.servers.lock().unwrap().values().any(|s| s.fds().contains(&fd))
            || self.datagrams.lock().unwrap().values().any(|d| d.raw_fd() == fd)
            || self.tls.lock().unwrap().values().any(|t| t.raw_fd() == fd)
            || self.detached.lock().unwrap().values().any(|d| d.as_raw_fd() == fd)
    }

    /// Teardown, first half, while the tasks may still run: no server accepts any more (its socket
    /// file goes), every child is killed and reaped, every transport aborted.
    fn close_everything(&self) {
        for server in values(&self.servers) {
            server.close(self);
        }
        for file in std::mem::take(&mut *self.socket_files.lock().unwrap()).into_values() {
            file.remove();
        }
        for process in values(&self.processes) {
            process.kill_and_reap();
        }
        self.abort_transports();
    }

    /// Aborts every stream, TLS connection and datagram endpoint, which unregisters it and ends what
    /// ties it to others (forwarding): once their tasks are gone, nothing holds them any more.
    fn abort_transports(&self) {
        values(&self.streams).iter().for_each(|s| s.abort());
        values(&self.tls).iter().for_each(|t| t.abort());
        values(&self.datagrams).iter().for_each(|d| d.abort());
    }

    /// Teardown, second half, once no task runs: what a task registered meanwhile (a connect that
    /// completed) goes the same way, and the registry lets go of everything (a handle holds its
    /// `Core`, so the registry would otherwise keep itself and every descriptor alive).
    fn release_everything(&self) {
        self.abort_transports();
        for process in values(&self.processes) {
            process.kill_and_reap();
        }
        self.streams.lock().unwrap().clear();
        self.tls.lock().unwrap().clear();
        self.datagrams.lock().unwrap().clear();
        self.servers.lock().unwrap().clear();
        self.processes.lock().unwrap().clear();
        self.detached.lock().unwrap().clear();
    }
}

/// The registry's handles, taken out of its lock (closing one locks the registry again).
fn values<V: Clone>(map: &IdMap<V>) -> Vec<V> {
    map.lock().unwrap().values().cloned().collect()
}

/// One engine: a reactor, and the handles it serves. Dropping it closes them all (see `Drop`).
pub struct Engine {
    core: Arc<Core>,
    reactor: Reactor,
}

impl Drop for Engine {
    /// Closes everything the engine owns, as a host needs when the thread that used the engine ends
    /// (a Node worker): servers stop listening and their Unix socket files go, children are killed
    /// and reaped, transports are aborted, the reactor's tasks are dropped and its threads joined, so
    /// that no descriptor, child or thread outlives the engine. Events this pushes are not delivered.
    /// With a host reactor, the host must have stopped watching [`Engine::reactor_fd`].
    fn drop(&mut self) {
        self.core.close_everything();
        self.reactor.shut_down();
        self.core.release_everything();
    }
}

impl Engine {
    /// Starts the runtime on `threads` worker threads; `wake` is called whenever events are waiting.
    pub fn new(wake: Box<dyn Fn() + Send + Sync>, threads: usize) -> io::Result<Engine> {
        Self::with_options(wake, EngineOptions { io_threads: threads, ..Default::default() })
    }

    pub fn with_options(wake: Box<dyn Fn() + Send + Sync>, options: EngineOptions) -> io::Result<Engine> {
        let reactor = if options.host_reactor { Reactor::host()? } else { Reactor::threads(options.io_threads)? };
        let core = Arc::new(Core {
            queue: EventQueue::new(wake),
            handle: reactor.handle().clone(),
            direct_writes: options.direct_writes,
            streams: IdMap::default(),
            servers: IdMap::default(),
            datagrams: IdMap::default(),
            tls: IdMap::default(),
            detached: IdMap::default(),
            processes: IdMap::default(),
            socket_files: IdMap::default(),
            next_id: AtomicU32::new(1),
        });
        Ok(Engine { core, reactor })
    }

    /// With a host reactor: the descriptor that turns readable when [`Engine::turn`] has work.
    pub fn reactor_fd(&self) -> Option<std::os::fd::RawFd> {
        self.reactor.fd()
    }

    /// With a host reactor: does what is ready, calling `deliver` whenever the tasks are idle (see
    /// [`Reactor::turn_with`]).
    pub fn turn(&self, deliver: impl FnMut() -> bool) {
        self.reactor.turn_with(deliver)
    }

    /// With a host reactor: asks for another turn (see [`Reactor::wake`]).
    pub fn wake(&self) {
        self.reactor.wake()
    }

    pub fn queue(&self) -> &EventQueue {
        &self.core.queue
    }

    pub fn stream(&self, id: u32) -> Option<Arc<Stream>> {
        self.core.streams.lock().unwrap().get(&id).cloned()
    }

    pub fn server(&self, id: u32) -> Option<Arc<Server>> {
        self.core.servers.lock().unwrap().get(&id).cloned()
    }

    /// Starts connecting; the id is reported with `Connected` or `ConnectFailed`.
    pub fn connect(&self, host: String, port: u16, opts: ConnectOptions) -> u32 {
        let id = self.core.next_id();
        connect::spawn_connect(&self.core, id, host, port, opts);
        id
    }

    pub fn tls(&self, id: u32) -> Option<Arc<TlsConn>> {
        self.core.tls.lock().unwrap().get(&id).cloned()
    }

    /// Connects and runs a TLS client handshake; reported as `Connected`, `ConnectFailed` or `TlsFailed`.
    pub fn connect_tls(&self, host: String, port: u16, opts: ConnectOptions, ctx: Arc<TlsContext>) -> u32 {
        let id = self.core.next_id();
        tls::spawn_connect(&self.core, id, host, port, opts, ctx);
        id
    }

    /// Forwards everything stream transport `from` reads to stream transport `to` (plain or TLS, in any
    /// combination; see [`forward`]), reading no more while `to` has over `high` bytes queued until it
    /// drained to `low`.
    pub fn forward_to(&self, from: u32, to: u32, high: usize, low: usize) -> Result<(), forward::ForwardRefused> {
        use forward::{ForwardRefused, Sink};
        let sink = match (self.stream(to), self.tls(to)) {
            (Some(s), _) => Sink::Stream(s),
            (None, Some(t)) => Sink::Tls(t),
            (None, None) => return Err(ForwardRefused::Closed),
        };
        match (self.stream(from), self.tls(from)) {
            (Some(s), _) => s.forward_to(sink, high, low),
            (None, Some(t)) => t.forward_to(sink, high, low),
            (None, None) => Err(ForwardRefused::Closed),
        }
    }

    /// Serves TLS on server `id`: each accepted socket is reported once its handshake is done.
    pub fn set_server_tls(&self, id: u32, ctx: Arc<TlsContext>) -> bool {
        self.server(id).map(|s| s.set_tls(ctx)).is_some()
    }

    /// STARTTLS, first half: plain stream `id` stops reading, flushes what it has queued and gives its
    /// socket up without a `Closed` event; `Detached(id, new_id)` follows every event it sent. Returns
    /// the id of the TLS connection to come, or `None` when no such stream is open.
    pub fn detach_for_tls(&self, id: u32) -> Option<u32> {
        let stream = self.stream(id)?;
        let new_id = self.core.next_id();
        stream.begin_detach();
        let core = self.core.clone();
        self.core.handle.spawn(async move {
            if let Some(fd) = stream.detach().await {
                core.detached.lock().unwrap().insert(new_id, fd);
                core.queue.push(events::Kind::Detached, id, new_id, 0);
            }
        });
        Some(new_id)
    }

    /// STARTTLS, second half: the handshake on the socket detached for `new_id`, replaying `prefix`
    /// (bytes the host had received but not delivered to its protocol) before the socket's.
    pub fn start_tls(&self, new_id: u32, prefix: &[u8], ctx: Arc<TlsContext>) -> bool {
        let Some(fd) = self.core.detached.lock().unwrap().remove(&new_id) else { return false };
        tls::spawn_upgrade(&self.core, new_id, fd, prefix.to_vec(), ctx);
        true
    }

    /// Makes a stream of a descriptor the caller hands over (asyncio's `sock=` and pipes). Refused, the
    /// descriptor is left open: it is still the caller's (see [`adopt`]).
    pub fn adopt(&self, fd: OwnedFd, kind: FdKind, readable: bool) -> Result<u32, Refused> {
        let fd = adopt::Handover::new(&self.core, fd)?;
        fd.set_nonblocking()?;
        let fd = fd.register(&self.core, stream::interest(readable))?;
        let id = self.core.next_id();
        Stream::registered(&self.core, id, fd, kind);
        Ok(id)
    }

    /// Binds and listens on `hosts` (none: every interface). Serving starts with `start_serving`.
    pub fn listen(&self, hosts: &[String], port: u16, opts: &ListenOptions) -> io::Result<u32> {
        let addrs = server::bind_addresses(hosts, port, opts.family)?;
        let id = self.core.next_id();
        Server::bind(&self.core, id, &addrs, opts)?;
        Ok(id)
    }

    /// Serves on a listening socket the caller hands over. Refused, the descriptor is left open.
    pub fn listen_on(&self, fd: OwnedFd, keep_alive: bool) -> Result<u32, Refused> {
        let fd = adopt::Handover::new(&self.core, fd)?;
        fd.set_nonblocking()?;
        let listener = fd.register(&self.core, tokio::io::Interest::READABLE)?;
        let id = self.core.next_id();
        Server::from_listeners(&self.core, id, vec![Arc::new(listener)], keep_alive);
        Ok(id)
    }

    pub fn close_server(&self, id: u32) {
        if let Some(s) = self.server(id) {
            s.close(&self.core);
        }
        // Closed by its host, which removes the file itself if it wants to (`remove_at_teardown`).
        self.core.socket_files.lock().unwrap().remove(&id);
    }

    pub fn datagram(&self, id: u32) -> Option<Arc<Datagram>> {
        self.core.datagrams.lock().unwrap().get(&id).cloned()
    }

    /// Starts opening a datagram endpoint; the id is reported with `DatagramOpened` or
    /// `DatagramOpenFailed`.
    pub fn open_datagram(&self, opts: DatagramOptions) -> u32 {
        let id = self.core.next_id();
        datagram::spawn_open(&self.core, id, opts);
        id
    }

    /// Makes a datagram endpoint of a socket the caller hands over (asyncio's `sock=`). Refused, the
    /// descriptor is left open.
    pub fn adopt_datagram(&self, fd: OwnedFd) -> Result<u32, Refused> {
        use events::Syscall;
        let fd = adopt::Handover::new(&self.core, fd)?;
        let sock = socket2::SockRef::from(&fd);
        match sock.r#type() {
            Ok(t) if t == socket2::Type::DGRAM => {}
            Ok(_) => return Err(Refused::new(io::Error::from_raw_os_error(libc::EPROTOTYPE), Syscall::Getsockopt)),
            Err(e) => return Err(Refused::new(e, Syscall::Getsockopt)),
        }
        let place = datagram::Place::of(&sock).map_err(|e| Refused::new(e, Syscall::Getsockname))?;
        fd.set_nonblocking()?;
        let fd = fd.register(&self.core, datagram::INTEREST)?;
        let id = self.core.next_id();
        Datagram::registered(&self.core, id, fd, place, None).begin_reading();
        Ok(id)
    }

    /// Open streams, servers, datagram endpoints and unreaped children; the host keeps its process alive while this is
    /// not zero.
    pub fn open_handles(&self) -> usize {
        self.core.streams.lock().unwrap().len()
            + self.core.servers.lock().unwrap().len()
            + self.core.datagrams.lock().unwrap().len()
            + self.core.tls.lock().unwrap().len()
            + self.core.detached.lock().unwrap().len()
            + self.core.processes.lock().unwrap().len()
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    socket2::SockRef::from(fd).set_nonblocking(true)
}

/// Registers a descriptor-owning value with the current reactor.
pub(crate) fn register<T: std::os::fd::AsRawFd>(inner: T, interest: tokio::io::Interest) -> io::Result<tokio::io::unix::AsyncFd<T>> {
    // SAFETY: `T` is `OwnedFd` or `socket2::Socket`: each owns its descriptor, always reports the same
    // one, and closes it only when dropped, which the `AsyncFd` holding it decides.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(inner, interest) }.map_err(|e| e.into())
}

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
