//! Windows: a transport's socket is a Winsock handle (handed to JavaScript as its number, which fits an
//! `i32` as every handle does), asked for its options with Winsock's own calls; big slabs come from the
//! heap (which maps them itself). There is no host reactor (`reactor` below stands in for the Unix
//! one), and what Windows cannot have is here too, as the same JavaScript functions throwing an `Error`
//! that names Windows: Unix sockets, descriptors handed over (`sock=`, pipes by descriptor).

use std::collections::HashMap;
use std::io;
use std::os::windows::io::{BorrowedSocket, RawSocket};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use socket2::SockRef;
use windows_sys::Win32::Networking::WinSock as ws;

use super::Feature;

/// The `Error` JavaScript receives for a feature Windows does not have (`protoloop_engine::sys::unavailable`).
fn lacks(feature: Feature) -> Error {
    Error::from_reason(protoloop_engine::sys::unavailable(missing(feature).unwrap_or("this feature")).to_string())
}

/// `f` on the socket whose handle is `fd` (a live transport's or server's).
pub(crate) fn with_sock<T>(fd: i32, f: impl FnOnce(SockRef<'_>) -> io::Result<T>) -> io::Result<T> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(ws::WSAENOTSOCK));
    }
    // SAFETY: a live transport's or server's socket (the number `fd(id)` gave), open for this call:
    // only the JavaScript thread closes them. A stale number makes Winsock fail with WSAENOTSOCK.
    let borrowed = unsafe { BorrowedSocket::borrow_raw(fd as u32 as RawSocket) };
    f(SockRef::from(&borrowed))
}

/// `[domain, type, protocol]` of a socket: its address's family, its type, and the protocol those
/// imply (TCP for streams, UDP for datagrams), as the portable Unix backend infers them.
pub(crate) fn socket_kind(fd: i32) -> io::Result<[i32; 3]> {
    with_sock(fd, |s| {
        let ty: i32 = s.r#type()?.into();
        let domain = s.local_addr()?.family() as i32;
        let protocol = match ty {
            ws::SOCK_STREAM => ws::IPPROTO_TCP,
            ws::SOCK_DGRAM => ws::IPPROTO_UDP,
            _ => 0,
        };
        Ok([domain, ty, protocol])
    })
}

fn last_error() -> io::Error {
    // SAFETY: reads the calling thread's last Winsock error.
    io::Error::from_raw_os_error(unsafe { ws::WSAGetLastError() })
}

pub(crate) fn getsockopt(fd: i32, level: i32, opt: i32) -> io::Result<i32> {
    with_sock(fd, |_| {
        let mut v: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as i32;
        // SAFETY: Winsock writes at most `len` bytes into `v`, which we own.
        let r = unsafe { ws::getsockopt(fd as u32 as ws::SOCKET, level, opt, &mut v as *mut i32 as *mut u8, &mut len) };
        if r != 0 {
            return Err(last_error());
        }
        Ok(v)
    })
}

pub(crate) fn setsockopt(fd: i32, level: i32, opt: i32, value: i32) -> io::Result<()> {
    with_sock(fd, |_| {
        // SAFETY: Winsock reads `size_of::<i32>()` bytes from `value`, which lives on our stack.
        let r = unsafe {
            ws::setsockopt(
                fd as u32 as ws::SOCKET,
                level,
                opt,
                &value as *const i32 as *const u8,
                std::mem::size_of::<i32>() as i32,
            )
        };
        if r != 0 {
            return Err(last_error());
        }
        Ok(())
    })
}

/// Winsock's numbers for the names Python's `socket` module has on Windows.
pub(crate) fn socket_constants() -> HashMap<String, i32> {
    macro_rules! table {
        ($($name:ident),* $(,)?) => { [$((stringify!($name).to_string(), ws::$name as i32)),*].into_iter().collect() };
    }
    table!(
        AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX, SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOL_SOCKET, SO_REUSEADDR,
        SO_EXCLUSIVEADDRUSE, SO_KEEPALIVE, SO_BROADCAST, SO_LINGER, SO_SNDBUF, SO_RCVBUF, SO_ERROR, SO_TYPE,
        SO_RCVLOWAT, SO_SNDLOWAT, SO_ACCEPTCONN, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP,
        TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT,
        IP_TTL, IP_TOS, IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IPV6_V6ONLY, IPV6_UNICAST_HOPS,
    )
}

/// No pages of its own for a big slab: Windows' heap maps big blocks itself and returns them on free.
pub(crate) fn map_pages(_len: usize) -> io::Result<Option<*mut u8>> {
    Ok(None)
}

/// # Safety
/// Never called: `map_pages` maps nothing.
pub(crate) unsafe fn unmap_pages(_ptr: *mut u8, _len: usize) {}

/// What each feature of `requireFeature` is called in the `Error` that says Windows lacks it.
pub(crate) fn missing(feature: Feature) -> Option<&'static str> {
    Some(match feature {
        Feature::Unix => "Unix sockets",
        Feature::Sock => "Sockets handed over by descriptor (sock=)",
        Feature::Pipes => "Pipes by file descriptor (connectReadPipe, connectWritePipe)",
        Feature::Socketpair => "Unix socket pairs (socketpair)",
        Feature::ReusePort => "reusePort sockets (SO_REUSEPORT)",
    })
}

/// No Unix socket addresses on Windows.
pub(crate) fn unix_addr(_path: &str) -> io::Result<socket2::SockAddr> {
    Err(protoloop_engine::sys::unavailable(missing(Feature::Unix).unwrap_or("Unix sockets")))
}

/// Unix sockets (streams, servers, datagram endpoints): not on Windows.
pub(crate) fn unix_sockets() -> Result<()> {
    Err(lacks(Feature::Unix))
}

/// The host reactor's stand-in: the engine's lookup of its poll descriptor fails on Windows, so the
/// engine runs on its I/O thread and nothing is ever watched in libuv's loop.
pub(crate) mod reactor {
    use napi::bindgen_prelude::*;

    pub(crate) struct Watch;

    impl Watch {
        pub(crate) fn close(self, closed: Box<dyn FnOnce()>) {
            closed()
        }
    }

    pub(crate) fn in_turn() -> bool {
        false
    }

    pub(crate) fn watch(_env: &Env, _fd: std::ffi::c_int, _on_events: napi::sys::napi_value) -> Result<Watch> {
        Err(Error::from_reason("protoloop: no host reactor on Windows"))
    }
}

// ---- what Windows cannot have: the same functions as on Unix, throwing ----

/// `sock=` for streams and `connect_accepted_socket` (Unix: `crate::stream::adopt`).
#[napi(catch_unwind)]
pub fn adopt(_fd: i32, pipe: bool, _readable: bool) -> Result<i64> {
    Err(lacks(if pipe { Feature::Pipes } else { Feature::Sock }))
}

/// `sock=` for servers (Unix: `crate::server::listen_on`).
#[napi(catch_unwind)]
pub fn listen_on(_fd: i32, _keep_alive: bool) -> Result<i64> {
    Err(lacks(Feature::Sock))
}

/// `sock=` for datagram endpoints (Unix: `crate::datagram::datagram_adopt`).
#[napi(catch_unwind)]
pub fn datagram_adopt(_fd: i32) -> Result<i64> {
    Err(lacks(Feature::Sock))
}

/// `connectReadPipe` / `connectWritePipe` (Unix: `crate::pipe::open_pipe`).
#[napi(catch_unwind)]
pub fn open_pipe(_fd: i32, _write: bool) -> Result<i64> {
    Err(lacks(Feature::Pipes))
}

/// `sendfile` by descriptor: `ENOTSUP`, so the TypeScript layer reads and writes the file itself
/// (asyncio's fallback), through Node's own file descriptors (Unix: `crate::stream::sendfile`).
#[napi(catch_unwind)]
pub fn sendfile(_id: u32, _fd: i32, _offset: f64, _count: Option<f64>) -> i64 {
    -(protoloop_engine::sys::errno::ENOTSUP as i64)
}

/// Node's file descriptors are not the system's handles on Windows: the position stays where Node's
/// reads left it (Unix: `crate::stream::seek`).
#[napi(catch_unwind)]
pub fn seek(_fd: i32, _pos: f64) -> i64 {
    -(protoloop_engine::sys::errno::ENOTSUP as i64)
}

#[napi(catch_unwind)]
pub fn connect_unix(_path: String) -> Result<u32> {
    Err(lacks(Feature::Unix))
}

#[napi(catch_unwind)]
pub fn listen_unix(_path: String, _backlog: i32) -> Result<i64> {
    Err(lacks(Feature::Unix))
}

#[napi]
pub fn remove_at_teardown(_id: u32, _path: String) -> Result<()> {
    Ok(())
}

#[napi(catch_unwind)]
pub fn socketpair() -> Result<Vec<i64>> {
    Err(lacks(Feature::Socketpair))
}

#[napi]
pub fn abstract_unix_names() -> bool {
    false
}
