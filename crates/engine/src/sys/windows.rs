//! Windows: the transports' I/O handle over tokio's own Windows types, `TcpStream`, `UdpSocket`,
//! `TcpListener` and named pipes (mio drives them through the I/O completion port), with the same
//! methods as the Unix handle (`super::unix_io`), so that one `Stream`, `Datagram`, `Server` and
//! `TlsConn` serve both systems.
//!
//! Every operation goes through tokio (`try_read`, `try_write_vectored`, `try_io`), never straight to
//! the socket: on Windows a socket's readiness is re-armed only by the calls mio makes, so a bare
//! `send` that met `WSAEWOULDBLOCK` would leave its task waiting for a wake-up that never comes.
//!
//! What Windows does not have is refused with [`super::unavailable`]: Unix sockets, descriptors handed
//! over (`sock=`, pipes by descriptor), `reuse_port`. There is no host reactor (libuv cannot watch
//! tokio's completion port): the engine runs on its I/O thread, as `Reactor::host` falls back to.
//!
//! Type-checked on Linux by `npm run cross-check:windows`; run only by the release workflow's Windows
//! jobs.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr};
use std::os::windows::io::{AsRawHandle, AsRawSocket, BorrowedSocket, RawSocket};
use std::sync::Arc;
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::windows::named_pipe::NamedPipeServer;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::connect::ConnectError;
use crate::datagram::{DatagramOptions, Opened, Sender};
use crate::events::Syscall;

use super::{GuardOps, WouldBlock};

/// A socket's handle (pipes' handles are spelled as the same number).
pub type RawFd = RawSocket;

/// Abstract Unix names exist on Linux only.
pub const ABSTRACT_UNIX_NAMES: bool = false;

/// Which set of calls this build uses.
pub const BACKEND: &str = "windows";

/// Address families as the host names them (Winsock's numbers).
pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 23;
pub const AF_UNIX: i32 = 1;

/// The errors the engine reports, as libuv numbers them on Windows (see `super::uv`).
pub use super::uv::errno;

/// libuv's number for a Windows error (see `super::uv::of_windows`).
pub fn errno_of(e: &io::Error) -> u32 {
    super::uv::of_windows(e.raw_os_error(), e.kind())
}

/// Nothing to give back: Windows' heap returns free memory itself.
pub fn trim_heap() {}

/// No host reactor on Windows: the engine runs on an I/O thread (see the module's documentation).
pub fn runtime_poll_fd(_runtime: &tokio::runtime::Runtime) -> io::Result<std::ffi::c_int> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "no host reactor on Windows: libuv cannot watch tokio's I/O completion port"))
}

/// A socket, non-blocking and not inherited by children (socket2 makes every socket so on Windows).
/// An IPv6 socket is dual-stack, as Linux makes it by default and libuv makes it on Windows (where
/// `IPV6_V6ONLY` starts on): a datagram endpoint on `::` then reaches IPv4 peers through their
/// v4-mapped addresses (`Datagram::ip_dest`), as on Linux. Listening sockets turn it back on (asyncio's
/// rule, `server::listen_socket`). Best effort, as libuv: a system without IPv4 refuses it.
pub fn socket(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<Socket> {
    let sock = Socket::new(domain, ty, protocol)?;
    sock.set_nonblocking(true)?;
    if domain == Domain::IPV6 {
        let _ = sock.set_only_v6(false);
    }
    Ok(sock)
}

/// Binds a datagram socket that is neither bound nor connected to the wildcard address of its family:
/// Winsock has no name for an unbound socket (`getsockname` fails), where Unix says `0.0.0.0:0`.
pub fn bind_unbound(sock: &Socket, domain: Domain) -> io::Result<()> {
    if sock.local_addr().is_ok() {
        return Ok(());
    }
    let any: SocketAddr = if domain == Domain::IPV6 { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() } else { (std::net::Ipv4Addr::UNSPECIFIED, 0).into() };
    sock.bind(&any.into())
}

/// Nothing on a connecting socket about to bind its local address: Winsock's `SO_REUSEADDR` is no
/// `TIME_WAIT` rule but lets a socket bind a port another socket is bound to, even one listening there
/// (then which of them gets the traffic is undefined): a local address in use must fail with
/// `EADDRINUSE` at `bind`, as Node's and asyncio's connects (neither sets it) fail on Windows.
pub fn reuse_local_address(_sock: &Socket) -> io::Result<()> {
    Ok(())
}

/// `SO_REUSEPORT`: not on Windows (asyncio refuses `reuse_port` there too).
pub fn set_reuse_port(_sock: &Socket) -> io::Result<()> {
    Err(super::unavailable("reusePort sockets (SO_REUSEPORT)"))
}

/// What a transport owns before it is registered.
pub enum Owned {
    Socket(Socket),
    /// The parent's end of a child's stdio pipe (created registered: tokio registers named pipes as
    /// it makes them).
    Pipe(NamedPipeServer),
    /// STARTTLS: a plain stream's socket, still registered, that its TLS session takes over (see
    /// [`Io::try_clone`]).
    Tcp(Arc<TcpStream>),
}

impl From<Socket> for Owned {
    fn from(s: Socket) -> Owned {
        Owned::Socket(s)
    }
}

fn raw_pipe(p: &NamedPipeServer) -> RawFd {
    p.as_raw_handle() as usize as RawFd
}

pub fn raw_of(owned: &Owned) -> RawFd {
    match owned {
        Owned::Socket(s) => s.as_raw_socket(),
        Owned::Pipe(p) => raw_pipe(p),
        Owned::Tcp(s) => s.as_raw_socket(),
    }
}

/// Makes a socket about to be registered non-blocking (pipes are overlapped from the start).
pub fn nonblocking(owned: &Owned) -> io::Result<()> {
    match owned {
        Owned::Socket(s) => s.set_nonblocking(true),
        Owned::Pipe(_) | Owned::Tcp(_) => Ok(()),
    }
}


fn not_a_socket() -> io::Error {
    io::Error::from_raw_os_error(10038) // WSAENOTSOCK
}

/// A registered socket or pipe end. A stream socket is shared (`Arc`) only to be handed over whole to
/// a TLS session (STARTTLS); otherwise it has one owner.
pub enum Io {
    Tcp(Arc<TcpStream>),
    Udp(UdpSocket),
    Pipe(NamedPipeServer),
}

impl Io {
    /// Registers `owned` with the current runtime: a stream socket as a `TcpStream`, a datagram socket
    /// as a `UdpSocket` (tokio registers each for both directions; `interest` is the Unix handle's).
    pub fn register(owned: impl Into<Owned>, _interest: Interest) -> io::Result<Io> {
        match owned.into() {
            Owned::Socket(s) => {
                s.set_nonblocking(true)?;
                if s.r#type()? == Type::DGRAM {
                    Ok(Io::Udp(UdpSocket::from_std(s.into())?))
                } else {
                    Ok(Io::Tcp(Arc::new(TcpStream::from_std(s.into())?)))
                }
            }
            Owned::Pipe(p) => Ok(Io::Pipe(p)),
            Owned::Tcp(s) => Ok(Io::Tcp(s)),
        }
    }

    pub fn raw(&self) -> RawFd {
        match self {
            Io::Tcp(s) => s.as_raw_socket(),
            Io::Udp(u) => u.as_raw_socket(),
            Io::Pipe(p) => raw_pipe(p),
        }
    }

    async fn ready(&self, interest: Interest) -> io::Result<Guard<'_>> {
        match self {
            Io::Tcp(s) => s.ready(interest).await?,
            Io::Udp(u) => u.ready(interest).await?,
            Io::Pipe(p) => p.ready(interest).await?,
        };
        Ok(Guard { io: self, interest })
    }

    pub async fn readable(&self) -> io::Result<Guard<'_>> {
        self.ready(Interest::READABLE).await
    }

    pub async fn writable(&self) -> io::Result<Guard<'_>> {
        self.ready(Interest::WRITABLE).await
    }

    /// Readable (Winsock reports an ICMP error with the next `recvfrom`).
    pub async fn readable_or_error(&self) -> io::Result<Guard<'_>> {
        self.readable().await
    }

    /// Never: a pipe whose reader left says so at the next write (`ERROR_NO_DATA`), not before.
    pub async fn error(&self) -> io::Result<()> {
        std::future::pending().await
    }

    pub fn poll_read_ready<'a>(&'a self, cx: &mut Context<'_>) -> Poll<io::Result<Guard<'a>>> {
        let r = match self {
            Io::Tcp(s) => s.poll_read_ready(cx),
            Io::Udp(u) => u.poll_recv_ready(cx),
            Io::Pipe(p) => p.poll_read_ready(cx),
        };
        r.map_ok(|()| Guard { io: self, interest: Interest::READABLE })
    }

    pub fn poll_write_ready<'a>(&'a self, cx: &mut Context<'_>) -> Poll<io::Result<Guard<'a>>> {
        let r = match self {
            Io::Tcp(s) => s.poll_write_ready(cx),
            Io::Udp(u) => u.poll_send_ready(cx),
            Io::Pipe(p) => p.poll_write_ready(cx),
        };
        r.map_ok(|()| Guard { io: self, interest: Interest::WRITABLE })
    }

    /// A write now, if tokio knows the socket writable (else `WouldBlock`).
    pub fn write_now(&self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Io::Tcp(s) => s.try_write_vectored(iov),
            Io::Pipe(p) => p.try_write_vectored(iov),
            Io::Udp(_) => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    }

    /// One datagram now (`to`: none for a connected socket).
    pub fn send_to(&self, data: &[u8], to: Option<&SockAddr>) -> io::Result<()> {
        let Io::Udp(u) = self else { return Err(not_a_socket()) };
        u.try_io(Interest::WRITABLE, || {
            let s = SockRef::from(u);
            match to {
                Some(a) => s.send_to(data, a),
                None => s.send(data),
            }
            .map(|_| ())
        })
    }

    /// `msg(0)`, `msg(1)`, ... one `sendto` each (Winsock has no `sendmmsg`), as the portable Unix
    /// backend does: how many went, or the error of the first.
    pub fn send_many<'a>(&self, count: usize, msg: impl Fn(usize) -> Option<(&'a [u8], Option<&'a SockAddr>)>) -> io::Result<usize> {
        let mut sent = 0;
        while sent < count {
            let Some((data, to)) = msg(sent) else { break };
            match self.send_to(data, to) {
                Ok(()) => sent += 1,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent)
    }

    /// Shuts the write side of a TCP socket; a peer already gone leaves nothing to shut.
    pub fn shutdown_write(&self) -> io::Result<()> {
        let Io::Tcp(s) = self else { return Ok(()) };
        match SockRef::from(&**s).shutdown(Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        }
    }

    /// The socket for a TLS session to take over (STARTTLS): the same `TcpStream`, registration and
    /// all, not a duplicate. A duplicated handle (`WSADuplicateSocket`) would be registered a second
    /// time while the plain stream's registration still polls the original, and the original's
    /// `closesocket` may end the duplicate's poll (`AFD_POLL_LOCAL_CLOSE`, after which mio never
    /// polls that socket again): a TLS session that hangs. Sharing one registration avoids both; the
    /// plain stream has stopped reading and writing (`Stream::detach`) before the session starts.
    pub fn try_clone(&self) -> io::Result<Owned> {
        match self {
            Io::Tcp(s) => Ok(Owned::Tcp(s.clone())),
            _ => Err(not_a_socket()),
        }
    }

    /// The socket behind the handle, borrowed. Pipes are no sockets: `None`.
    pub fn socket(&self) -> Option<SockRef<'_>> {
        match self {
            Io::Tcp(s) => Some(SockRef::from(&**s)),
            Io::Udp(u) => Some(SockRef::from(u)),
            Io::Pipe(_) => None,
        }
    }

    /// [`Io::socket`] of a handle that is a socket (tests).
    pub fn sock_ref(&self) -> SockRef<'_> {
        self.socket().expect("a socket")
    }

    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self {
            Io::Tcp(s) => s.try_io(interest, f),
            Io::Udp(u) => u.try_io(interest, f),
            Io::Pipe(p) => p.try_io(interest, f),
        }
    }
}

/// Readiness tokio reported; a `try_` call that meets `WouldBlock` clears it (tokio does).
pub struct Guard<'a> {
    io: &'a Io,
    interest: Interest,
}

fn split<R>(r: io::Result<R>) -> Result<io::Result<R>, WouldBlock> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(WouldBlock),
        r => Ok(r),
    }
}

thread_local! {
    /// `try_sendfile`'s bounce buffer, one per I/O thread.
    static BOUNCE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Guard<'_> {
    /// Nothing to do: tokio clears the readiness when a call meets `WouldBlock`.
    pub fn clear_ready(&mut self) {}
}

/// Windows' `try_sendfile` reads into a buffer and writes: bytes read but not taken are read again next
/// time (from `offset` + what was written), so none is lost. `try_raw` goes through tokio, which
/// re-arms the socket when the call would block.
impl GuardOps for Guard<'_> {
    unsafe fn try_read(&mut self, ptr: *mut u8, len: usize) -> Result<io::Result<usize>, WouldBlock> {
        split(match self.io {
            Io::Tcp(s) => {
                // SAFETY: the caller's memory, `len` bytes; `recv` only writes into it.
                let buf = unsafe { std::slice::from_raw_parts_mut(ptr as *mut MaybeUninit<u8>, len) };
                s.try_io(Interest::READABLE, || SockRef::from(&**s).recv(buf))
            }
            Io::Pipe(p) => {
                // SAFETY: as above; zeroed first, so the slice is of initialised bytes.
                let buf = unsafe {
                    ptr.write_bytes(0, len);
                    std::slice::from_raw_parts_mut(ptr, len)
                };
                p.try_read(buf)
            }
            Io::Udp(_) => Err(io::Error::from(io::ErrorKind::Unsupported)),
        })
    }

    fn try_writev(&mut self, iov: &[IoSlice<'_>]) -> Result<io::Result<usize>, WouldBlock> {
        split(self.io.write_now(iov))
    }

    fn try_send(&mut self, data: &[u8]) -> Result<io::Result<usize>, WouldBlock> {
        split(self.io.write_now(&[IoSlice::new(data)]))
    }

    fn try_sendfile(&mut self, file: &File, offset: u64, len: usize) -> Result<io::Result<usize>, WouldBlock> {
        use std::os::windows::fs::FileExt;
        BOUNCE.with(|b| {
            let mut buf = b.borrow_mut();
            if buf.is_empty() {
                buf.resize(256 << 10, 0);
            }
            let want = len.min(buf.len());
            let n = match file.seek_read(&mut buf[..want], offset) {
                Ok(0) => return Ok(Ok(0)),
                Ok(n) => n,
                Err(e) => return Ok(Err(e)),
            };
            split(self.io.write_now(&[IoSlice::new(&buf[..n])]))
        })
    }

    fn try_raw<R>(&mut self, f: impl FnOnce(RawFd) -> io::Result<R>) -> Result<io::Result<R>, WouldBlock> {
        if matches!(self.io, Io::Pipe(_)) {
            return Ok(Err(not_a_socket()));
        }
        let raw = self.io.raw();
        split(self.io.try_io(self.interest, || f(raw)))
    }
}

/// Receives up to `names.len()` datagrams with a `recvfrom` each, until the socket has none left (see
/// the portable Unix backend's `recv_many`, which this follows). Called inside `Guard::try_raw`.
pub fn recv_many(fd: RawFd, buf: &mut [u8], size: usize, names: &mut [Name], got: &mut Vec<(usize, NameLen)>) -> io::Result<()> {
    // SAFETY: the socket stays open for this call: the endpoint's `Io` owns it and lent its handle.
    let borrowed = unsafe { BorrowedSocket::borrow_raw(fd) };
    let sock = SockRef::from(&borrowed);
    got.clear();
    let count = names.len().min(buf.len() / size);
    while got.len() < count {
        let i = got.len();
        let slot = &mut buf[i * size..(i + 1) * size];
        // SAFETY: u8 and MaybeUninit<u8> have the same layout; `recv_from` only writes bytes.
        let slot = unsafe { std::slice::from_raw_parts_mut(slot.as_mut_ptr() as *mut MaybeUninit<u8>, slot.len()) };
        match sock.recv_from(slot) {
            Ok((n, from)) => {
                names[i] = from.as_socket();
                got.push((n, 0));
            }
            Err(e) if i > 0 && matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A received datagram's sender: Winsock gives IP addresses only here.
pub type Name = Option<SocketAddr>;
pub type NameLen = u32;

pub fn empty_name() -> Name {
    None
}

pub fn sender_of(name: &Name, _len: NameLen) -> Sender<'_> {
    match name {
        Some(SocketAddr::V4(a)) => Sender::V4(*a),
        Some(SocketAddr::V6(a)) => Sender::V6(*a),
        None => Sender::Unnamed,
    }
}

/// Unix datagram sockets: not on Windows.
pub(crate) fn open_unix_datagram(_opts: &DatagramOptions) -> Result<Opened, ConnectError> {
    Err(ConnectError { errno: errno::EAFNOSUPPORT as u32, syscall: Syscall::Socket })
}

/// A Unix server's socket file to remove at teardown: there are none on Windows.
pub(crate) enum SocketFile {}

impl SocketFile {
    pub(crate) fn remove(self) {
        match self {}
    }
}

/// A listening TCP socket.
pub struct Listener(TcpListener);

impl Listener {
    pub fn register(sock: Socket) -> io::Result<Listener> {
        sock.set_nonblocking(true)?;
        Ok(Listener(TcpListener::from_std(sock.into())?))
    }

    pub fn raw(&self) -> RawFd {
        self.0.as_raw_socket()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// Waits for a connection (tokio's listener has no readiness of its own: the accept happens here,
    /// and [`Accept::try_accept`] hands it over). A failed accept is handed over the same way.
    pub async fn ready(&self) -> io::Result<Accept> {
        Ok(Accept(Some(self.0.accept().await.map(|(s, _)| s))))
    }

    /// Nothing to do before the socket closes with its task (Winsock has no `shutdown` of a listener).
    pub fn stop(&self) {}
}

/// A connection [`Listener::ready`] accepted (or its error).
pub struct Accept(Option<io::Result<TcpStream>>);

impl Accept {
    pub fn try_accept(&mut self) -> Result<io::Result<Socket>, WouldBlock> {
        match self.0.take() {
            Some(Ok(s)) => Ok(s.into_std().map(Socket::from)),
            Some(Err(e)) => Ok(Err(e)),
            None => Err(WouldBlock),
        }
    }
}

/// Connects a non-blocking TCP socket: at once, or once tokio reports it writable.
pub async fn connect(sock: Socket, addr: &SockAddr) -> io::Result<Socket> {
    match sock.connect(addr) {
        Ok(()) => return Ok(sock),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    let tcp = TcpStream::from_std(sock.into())?;
    tcp.writable().await?;
    if let Some(e) = tcp.take_error()? {
        return Err(e);
    }
    // As tokio's own connect: writable without an error yet not connected is a failure all the same.
    tcp.peer_addr()?;
    Ok(Socket::from(tcp.into_std()?))
}

/// Forwards through `splice(2)`: Windows has none, so there is never a pipe and forwards copy.
pub(crate) enum SplicePipe {}

impl SplicePipe {
    pub(crate) fn with<R>(_f: impl FnOnce(&SplicePipe) -> R) -> Option<R> {
        None
    }

    pub(crate) fn fill(&self, _from: RawFd) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn drain_to(&self, _to: RawFd, _len: usize) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn take(&self, _len: usize) -> io::Result<Vec<u8>> {
        match *self {}
    }

    pub(crate) fn discard(&self, _len: usize) {
        match *self {}
    }
}
