//! The transports' I/O handle on Unix: a descriptor registered with tokio's reactor (`AsyncFd`), read
//! and written with `read`, `writev`, `send` and `sendto` on its number. Every method is a thin inline
//! wrapper, so the streams' hot path compiles to what it was before there was a Windows backend.

use std::cell::OnceCell;
use std::fs::File;
use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{Context, Poll};

use socket2::{SockAddr, Socket};
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;

use super::{GuardOps, WouldBlock};

/// A descriptor's number.
pub use std::os::fd::RawFd;

/// What a transport owns before it is registered: a descriptor.
pub type Owned = OwnedFd;

/// The number of a descriptor a transport owns (for `getExtraInfo('socket')` and the adoption checks).
pub fn raw_of(owned: &Owned) -> RawFd {
    owned.as_raw_fd()
}

/// Registers a descriptor-owning value with the current reactor.
pub(crate) fn register<T: AsRawFd>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T` is `OwnedFd` or `socket2::Socket`: each owns its descriptor, always reports the same
    // one, and closes it only when dropped, which the `AsyncFd` holding it decides.
    unsafe { AsyncFd::register_with_interest(inner, interest) }.map_err(|e| e.into())
}

/// A descriptor registered with the reactor: a stream socket, a pipe end, or a datagram socket. Its
/// number is kept beside it, as a field to read (`AsyncFd` hands its value out through an `Option`).
pub struct Io {
    fd: AsyncFd<OwnedFd>,
    raw: RawFd,
}

impl Io {
    /// Registers `fd` (non-blocking already) for `interest` with the current runtime.
    pub fn register(fd: impl Into<OwnedFd>, interest: Interest) -> io::Result<Io> {
        register(fd.into(), interest).map(Io::registered)
    }

    /// A descriptor already registered (an adopted one: `crate::adopt`).
    pub(crate) fn registered(fd: AsyncFd<OwnedFd>) -> Io {
        let raw = fd.get_ref().as_raw_fd();
        Io { fd, raw }
    }

    #[inline]
    pub fn raw(&self) -> RawFd {
        self.raw
    }

    /// tokio's own future: the guard is tokio's (see [`Guard`]), nothing wraps the wait.
    #[inline]
    pub fn readable(&self) -> impl Future<Output = io::Result<Guard<'_>>> + '_ {
        self.fd.readable()
    }

    #[inline]
    pub fn writable(&self) -> impl Future<Output = io::Result<Guard<'_>>> + '_ {
        self.fd.writable()
    }

    /// Readable, or an error condition without data (an ICMP error on a datagram socket).
    #[inline]
    pub fn readable_or_error(&self) -> impl Future<Output = io::Result<Guard<'_>>> + '_ {
        self.fd.ready(Interest::READABLE | Interest::ERROR)
    }

    /// Resolves when the descriptor reports an error condition (a pipe's reader has gone).
    pub async fn error(&self) -> io::Result<()> {
        self.fd.ready(Interest::ERROR).await.map(|_| ())
    }

    #[inline]
    pub fn poll_read_ready<'a>(&'a self, cx: &mut Context<'_>) -> Poll<io::Result<Guard<'a>>> {
        self.fd.poll_read_ready(cx)
    }

    #[inline]
    pub fn poll_write_ready<'a>(&'a self, cx: &mut Context<'_>) -> Poll<io::Result<Guard<'a>>> {
        self.fd.poll_write_ready(cx)
    }

    /// `writev` now, without waiting for readiness (the host thread's direct write).
    #[inline]
    pub fn write_now(&self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        writev(self.raw, iov)
    }

    /// One `sendto` now (`to`: none for a connected socket).
    pub fn send_to(&self, data: &[u8], to: Option<&SockAddr>) -> io::Result<()> {
        let (ptr, len) = match to {
            Some(a) => (a.as_ptr() as *const libc::sockaddr, a.len()),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `data` and the address outlive the call; the kernel only reads them.
        let n = unsafe { libc::sendto(self.raw, data.as_ptr() as *const _, data.len(), super::SEND_FLAGS, ptr, len) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Several datagrams now (see [`super::send_many`]).
    pub fn send_many<'a>(&self, count: usize, msg: impl Fn(usize) -> Option<(&'a [u8], Option<&'a SockAddr>)>) -> io::Result<usize> {
        super::send_many(self.raw, count, msg)
    }

    /// Shuts the write side of a socket; a peer already gone (`ENOTCONN`) leaves nothing to shut.
    pub fn shutdown_write(&self) -> io::Result<()> {
        // SAFETY: shutdown(2) on a descriptor this handle owns; no memory is passed.
        match unsafe { libc::shutdown(self.raw, libc::SHUT_WR) } {
            0 => Ok(()),
            _ => match io::Error::last_os_error() {
                e if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
                e => Err(e),
            },
        }
    }

    /// A duplicate of the descriptor (STARTTLS hands it to a TLS session).
    pub fn try_clone(&self) -> io::Result<Owned> {
        self.fd.get_ref().try_clone()
    }

    /// The socket behind the handle, borrowed (its addresses, its options).
    pub fn sock_ref(&self) -> socket2::SockRef<'_> {
        socket2::SockRef::from(self.fd.get_ref())
    }
}

/// Readiness the reactor reported: tokio's own guard on Unix, used through [`GuardOps`], whose calls
/// each do what tokio's `AsyncFdReadyGuard::try_io` does (the call; on `EAGAIN` the readiness cleared),
/// spelled out so that each call site inlines its own copy, as it inlined `try_io` with a closure of
/// its own before.
pub type Guard<'a> = AsyncFdReadyGuard<'a, OwnedFd>;

#[inline(always)]
fn cleared_if_would_block<R>(guard: &mut Guard<'_>, r: io::Result<R>) -> Result<io::Result<R>, WouldBlock> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            guard.clear_ready();
            Err(WouldBlock)
        }
        r => Ok(r),
    }
}

impl GuardOps for Guard<'_> {
    #[inline]
    unsafe fn try_read(&mut self, ptr: *mut u8, len: usize) -> Result<io::Result<usize>, WouldBlock> {
        let r = read_raw(self.get_inner().as_raw_fd(), ptr, len);
        cleared_if_would_block(self, r)
    }

    #[inline]
    fn try_writev(&mut self, iov: &[IoSlice<'_>]) -> Result<io::Result<usize>, WouldBlock> {
        let r = writev(self.get_inner().as_raw_fd(), iov);
        cleared_if_would_block(self, r)
    }

    #[inline]
    fn try_send(&mut self, data: &[u8]) -> Result<io::Result<usize>, WouldBlock> {
        // SAFETY: the kernel reads at most `data.len()` bytes from a slice that outlives the call.
        let n = unsafe { libc::send(self.get_inner().as_raw_fd(), data.as_ptr() as *const _, data.len(), super::SEND_FLAGS) };
        let r = if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) };
        cleared_if_would_block(self, r)
    }

    fn try_sendfile(&mut self, file: &File, offset: u64, len: usize) -> Result<io::Result<usize>, WouldBlock> {
        let r = super::sendfile(self.get_inner().as_raw_fd(), file.as_raw_fd(), offset, len);
        cleared_if_would_block(self, r)
    }

    #[inline]
    fn try_raw<R>(&mut self, f: impl FnOnce(RawFd) -> io::Result<R>) -> Result<io::Result<R>, WouldBlock> {
        let r = f(self.get_inner().as_raw_fd());
        cleared_if_would_block(self, r)
    }
}

/// A listening socket registered with the reactor.
pub struct Listener(AsyncFd<Socket>);

impl Listener {
    /// Registers a listening socket (non-blocking already).
    pub fn register(sock: Socket) -> io::Result<Listener> {
        register(sock, Interest::READABLE).map(Listener)
    }

    /// A listening descriptor handed over and already registered.
    pub(crate) fn registered(fd: AsyncFd<Socket>) -> Listener {
        Listener(fd)
    }

    pub fn raw(&self) -> RawFd {
        self.0.get_ref().as_raw_fd()
    }

    /// The IP address it listens on (an error for a Unix socket's).
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.get_ref().local_addr()?.as_socket().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))
    }

    /// Resolves when a connection waits (or the socket failed).
    pub async fn ready(&self) -> io::Result<Accept<'_>> {
        self.0.readable().await.map(Accept)
    }

    /// Stops listening now: on Linux, `shutdown(SHUT_RD)` of a listening socket refuses new connections
    /// and resets the ones waiting in the backlog. Best effort; the descriptor closes with its task.
    pub fn stop(&self) {
        // SAFETY: shutdown(2) on a descriptor this listener owns; no memory is passed.
        unsafe { libc::shutdown(self.raw(), libc::SHUT_RD) };
    }
}

/// A listening socket reported readable.
pub struct Accept<'a>(AsyncFdReadyGuard<'a, Socket>);

impl Accept<'_> {
    /// The next connection, non-blocking and close-on-exec.
    pub fn try_accept(&mut self) -> Result<io::Result<Socket>, WouldBlock> {
        match super::accept(self.0.get_inner().as_raw_fd()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.0.clear_ready();
                Err(WouldBlock)
            }
            r => Ok(r.map(Socket::from)),
        }
    }
}

/// Connects a non-blocking TCP socket: at once, or once it turns writable (`EINPROGRESS`).
pub async fn connect(sock: Socket, addr: &SockAddr) -> io::Result<Socket> {
    match sock.connect(addr) {
        Ok(()) => Ok(sock),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            let afd = register(sock, Interest::WRITABLE)?;
            afd.writable().await?.retain_ready();
            let sock = afd.into_inner();
            match sock.take_error()? {
                Some(e) => Err(e),
                None => Ok(sock),
            }
        }
        Err(e) => Err(e),
    }
}

fn writev(fd: RawFd, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    if iov.is_empty() {
        return Ok(0);
    }
    // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix (std guarantees it); every one points
    // into a slice that outlives this call, and the kernel only reads them.
    let n = unsafe { libc::writev(fd, iov.as_ptr() as *const libc::iovec, iov.len() as libc::c_int) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn read_raw(fd: RawFd, ptr: *mut u8, len: usize) -> io::Result<usize> {
    // SAFETY: callers pass memory valid for `len` bytes of writes (`Guard::try_read`'s contract); the
    // kernel writes at most `len` bytes.
    let n = unsafe { libc::read(fd, ptr as *mut _, len) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
pub(crate) use crate::unix::SocketFile;

/// Makes a descriptor about to be registered non-blocking, as the reactor needs it.
pub fn nonblocking(fd: &Owned) -> io::Result<()> {
    socket2::SockRef::from(fd).set_nonblocking(true)
}
pub(crate) use crate::unix::open_datagram as open_unix_datagram;

/// Where a received datagram's sender is written: the system's own address storage.
pub type Name = libc::sockaddr_storage;
pub type NameLen = libc::socklen_t;

pub fn empty_name() -> Name {
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
    unsafe { std::mem::zeroed() }
}

/// The sender `recv_many` wrote into `name` (`len` bytes of it).
pub fn sender_of(name: &Name, len: NameLen) -> crate::datagram::Sender<'_> {
    use crate::datagram::Sender;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match name.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(name as *const _ as *const libc::sockaddr_in) };
            Sender::V4(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(name as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Sender::V6(SocketAddrV6::new(ip, u16::from_be(sin6.sin6_port), u32::from_be(sin6.sin6_flowinfo), sin6.sin6_scope_id))
        }
        libc::AF_UNIX => {
            // SAFETY: the family says the storage holds a sockaddr_un.
            let sun = unsafe { &*(name as *const _ as *const libc::sockaddr_un) };
            let offset = std::mem::size_of::<libc::sa_family_t>();
            let n = (len as usize).saturating_sub(offset).min(sun.sun_path.len());
            // SAFETY: c_char and u8 have the same size and layout.
            let path: &[u8] = unsafe { std::slice::from_raw_parts(sun.sun_path.as_ptr() as *const u8, n) };
            if path.is_empty() {
                return Sender::Unnamed;
            }
            // A path name ends at its NUL; an abstract name starts with one and has none at the end.
            Sender::Path(if path[0] == 0 { path } else { path.split(|&c| c == 0).next().unwrap_or(path) })
        }
        _ => Sender::Unnamed,
    }
}

// ---- forwards through splice(2) (Linux; elsewhere `with` gives `None` and forwards copy) ----

/// Bytes one `splice(2)` moves from a socket into the pipe, at most (the pipe's capacity).
const SPLICE_CHUNK: usize = 256 * 1024;

/// The pipe a plain forward's bytes pass through (socket → pipe → socket), one per I/O thread: it is
/// empty whenever a read turn ends (what the sink does not take is copied into its queue), so forwards
/// on one thread can share it, and a forward costs no descriptors of its own. It lives as long as the
/// thread (an I/O thread, or the JavaScript thread with the host reactor).
pub(crate) struct SplicePipe {
    r: OwnedFd,
    w: OwnedFd,
}

thread_local! {
    /// `None` once making it failed (no `splice` here): forwards copy.
    static SPLICE_PIPE: OnceCell<Option<SplicePipe>> = const { OnceCell::new() };
}

impl SplicePipe {
    /// Runs `f` with this thread's pipe; `None` when the system has no `splice`.
    pub(crate) fn with<R>(f: impl FnOnce(&SplicePipe) -> R) -> Option<R> {
        SPLICE_PIPE.with(|p| {
            let pipe = p.get_or_init(|| super::splice_pipe(SPLICE_CHUNK).ok().map(|(r, w)| SplicePipe { r, w }));
            pipe.as_ref().map(f)
        })
    }

    /// Moves what socket `from` has (up to the pipe's capacity) into the pipe: as `read(2)` says.
    pub(crate) fn fill(&self, from: RawFd) -> io::Result<usize> {
        super::splice(from, self.w.as_raw_fd(), SPLICE_CHUNK)
    }

    /// Moves up to `len` bytes of the pipe onto socket `to`: as `write(2)` says.
    pub(crate) fn drain_to(&self, to: RawFd, len: usize) -> io::Result<usize> {
        super::splice(self.r.as_raw_fd(), to, len)
    }

    /// Copies the `len` bytes left in the pipe out of it.
    pub(crate) fn take(&self, len: usize) -> io::Result<Vec<u8>> {
        let mut v: Vec<u8> = Vec::with_capacity(len);
        while v.len() < len {
            // SAFETY: the kernel writes at most `len - v.len()` bytes into the vector's spare capacity.
            let n = unsafe { libc::read(self.r.as_raw_fd(), v.as_mut_ptr().add(v.len()) as *mut _, len - v.len()) };
            match n {
                // SAFETY: the kernel initialised the `n` bytes after the old length.
                n if n > 0 => unsafe { v.set_len(v.len() + n as usize) },
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                _ => match io::Error::last_os_error() {
                    e if e.kind() == io::ErrorKind::Interrupted => {}
                    e => return Err(e),
                },
            }
        }
        Ok(v)
    }

    /// Drops the `len` bytes left in the pipe (their forward ended), so that it is empty for the next.
    pub(crate) fn discard(&self, len: usize) {
        let mut left = len;
        let mut scratch = [0u8; 4096];
        while left > 0 {
            // SAFETY: the kernel writes at most `scratch.len()` bytes into our buffer.
            match unsafe { libc::read(self.r.as_raw_fd(), scratch.as_mut_ptr() as *mut _, scratch.len().min(left)) } {
                n if n > 0 => left -= n as usize,
                n if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => return, // empty (or broken): nothing left to drop
            }
        }
    }
}
