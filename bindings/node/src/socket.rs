//! `TransportSocket`: addresses and integer socket options of a descriptor the engine owns.

use std::io;
use std::os::fd::BorrowedFd;

use napi_derive::napi;
use socket2::{SockAddr, SockRef};

/// Fails unless `fd` is open (and a socket, when `socket` is set).
pub(crate) fn check_fd(fd: i32, socket: bool) -> io::Result<()> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: fstat writes into a zeroed struct we own; an invalid fd only makes it fail.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if socket && (st.st_mode & libc::S_IFMT) != libc::S_IFSOCK {
        return Err(io::Error::from_raw_os_error(libc::ENOTSOCK));
    }
    Ok(())
}

fn with_sock<T>(fd: i32, f: impl FnOnce(SockRef<'_>) -> io::Result<T>) -> io::Result<T> {
    check_fd(fd, true)?;
    // SAFETY: the descriptor is open (checked) and stays open for this call: it belongs to a live
    // transport or server on the JavaScript thread, which is the only thread that closes them.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    f(SockRef::from(&borrowed))
}

/// An address as `[family, host, port, flowinfo, scopeId]` (IP) or `[family, path]` (Unix).
#[napi(object)]
pub struct Address {
    pub family: i32,
    pub host: String,
    pub port: u32,
    pub flowinfo: u32,
    pub scope_id: u32,
}

pub(crate) fn to_address(a: SockAddr) -> Option<Address> {
    if let Some(sa) = a.as_socket() {
        let (flowinfo, scope_id) = match sa {
            std::net::SocketAddr::V6(v6) => (v6.flowinfo(), v6.scope_id()),
            _ => (0, 0),
        };
        return Some(Address {
            family: if sa.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 },
            host: sa.ip().to_string(),
            port: sa.port() as u32,
            flowinfo,
            scope_id,
        });
    }
    if a.is_unix() {
        let host = match a.as_abstract_namespace() {
            Some(name) => format!("\0{}", String::from_utf8_lossy(name)),
            None => a.as_pathname().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
        };
        return Some(Address { family: libc::AF_UNIX, host, port: 0, flowinfo: 0, scope_id: 0 });
    }
    None
}

#[napi(catch_unwind)]
pub fn sockname(fd: i32) -> Option<Address> {
    with_sock(fd, |s| s.local_addr()).ok().and_then(to_address)
}

#[napi(catch_unwind)]
pub fn peername(fd: i32) -> Option<Address> {
    with_sock(fd, |s| s.peer_addr()).ok().and_then(to_address)
}

/// `[domain, type, protocol]` of a socket.
#[napi(catch_unwind)]
pub fn socket_kind(fd: i32) -> Option<Vec<i32>> {
    check_fd(fd, true).ok()?;
    protoloop_engine::sys::socket_kind(fd).ok().map(Vec::from)
}

fn getsockopt(fd: i32, level: i32, opt: i32) -> io::Result<i32> {
    with_sock(fd, |_| {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `v`, which we own.
        let r = unsafe { libc::getsockopt(fd, level, opt, &mut v as *mut _ as *mut _, &mut len) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(v)
    })
}

/// An integer option's value; a negative errno when the call fails.
#[napi(js_name = "getsockopt", catch_unwind)]
pub fn get_sock_opt(fd: i32, level: i32, opt: i32) -> i64 {
    match getsockopt(fd, level, opt) {
        Ok(v) => v as i64,
        Err(e) => crate::neg_errno(&e) - (1i64 << 40),
    }
}

/// Sets an integer option; 0 or a negative errno.
#[napi(js_name = "setsockopt", catch_unwind)]
pub fn set_sock_opt(fd: i32, level: i32, opt: i32, value: i32) -> i64 {
    let r = with_sock(fd, |_| {
        // SAFETY: the kernel reads `size_of::<c_int>()` bytes from `value`, which lives on our stack.
        let r = unsafe {
            libc::setsockopt(fd, level, opt, &value as *const _ as *const _, std::mem::size_of::<libc::c_int>() as libc::socklen_t)
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    });
    match r {
        Ok(()) => 0,
        Err(e) => crate::neg_errno(&e),
    }
}

/// The platform's socket numbers for `constants` (`AF_*`, `SOCK_*`, `SOL_*`, `SO_*`, `IPPROTO_*`,
/// `TCP_*`, `IPV6_*`), read from libc so they are right on every target.
#[napi(catch_unwind)]
pub fn socket_constants() -> std::collections::HashMap<String, i32> {
    macro_rules! table {
        ($($name:ident),* $(,)?) => { [$((stringify!($name).to_string(), libc::$name)),*].into_iter() };
    }
    let mut all: std::collections::HashMap<String, i32> = table!(
        AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX, SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOL_SOCKET, SO_REUSEADDR,
        SO_REUSEPORT, SO_KEEPALIVE, SO_BROADCAST, SO_LINGER, SO_SNDBUF, SO_RCVBUF, SO_ERROR, SO_TYPE,
        SO_RCVLOWAT, SO_SNDLOWAT, SO_ACCEPTCONN, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP,
        TCP_NODELAY, TCP_KEEPINTVL, TCP_KEEPCNT,
        IP_TTL, IP_TOS, IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IPV6_V6ONLY, IPV6_UNICAST_HOPS,
    )
    .collect();
    // What only some systems have, as Python's `socket` module lists what the platform defines.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    all.extend(table!(SO_DOMAIN, SO_PROTOCOL, TCP_KEEPIDLE, TCP_CORK, TCP_QUICKACK, TCP_USER_TIMEOUT));
    // macOS's name for the keep-alive idle time (Linux's TCP_KEEPIDLE).
    #[cfg(target_os = "macos")]
    all.extend(table!(TCP_KEEPALIVE));
    all
}
