//! Unix: descriptors, `fstat`, `getsockopt` / `setsockopt` on the number, `mmap` for big slabs.

use std::collections::HashMap;
use std::io;
use std::os::fd::BorrowedFd;

use socket2::SockRef;

use super::Feature;

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

/// `f` on socket `fd`, which a live transport or server owns.
pub(crate) fn with_sock<T>(fd: i32, f: impl FnOnce(SockRef<'_>) -> io::Result<T>) -> io::Result<T> {
    check_fd(fd, true)?;
    // SAFETY: the descriptor is open (checked) and stays open for this call: it belongs to a live
    // transport or server on the JavaScript thread, which is the only thread that closes them.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    f(SockRef::from(&borrowed))
}

/// `[domain, type, protocol]` of a socket.
pub(crate) fn socket_kind(fd: i32) -> io::Result<[i32; 3]> {
    check_fd(fd, true)?;
    protoloop_engine::sys::socket_kind(fd)
}

pub(crate) fn getsockopt(fd: i32, level: i32, opt: i32) -> io::Result<i32> {
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

pub(crate) fn setsockopt(fd: i32, level: i32, opt: i32, value: i32) -> io::Result<()> {
    with_sock(fd, |_| {
        // SAFETY: the kernel reads `size_of::<c_int>()` bytes from `value`, which lives on our stack.
        let r = unsafe {
            libc::setsockopt(fd, level, opt, &value as *const _ as *const _, std::mem::size_of::<libc::c_int>() as libc::socklen_t)
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })
}

/// The platform's socket numbers, read from libc so they are right on every target.
pub(crate) fn socket_constants() -> HashMap<String, i32> {
    macro_rules! table {
        ($($name:ident),* $(,)?) => { [$((stringify!($name).to_string(), libc::$name)),*].into_iter() };
    }
    let mut all: HashMap<String, i32> = table!(
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

/// Pages of their own for a big slab, so that freeing it gives the memory back to the system at once
/// (from the heap, glibc keeps freed blocks of this size around and RSS stays high). Zeroed.
pub(crate) fn map_pages(len: usize) -> io::Result<Option<*mut u8>> {
    // SAFETY: an anonymous private mapping; no file, no fixed address. Its pages come zeroed.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(Some(ptr as *mut u8))
}

/// # Safety
/// `ptr`/`len` are exactly a mapping `map_pages` made, unmapped once.
pub(crate) unsafe fn unmap_pages(ptr: *mut u8, len: usize) {
    // SAFETY: the caller's promise.
    unsafe { libc::munmap(ptr as *mut _, len) };
}

/// A Unix socket's address for a datagram's destination.
pub(crate) fn unix_addr(path: &str) -> io::Result<socket2::SockAddr> {
    protoloop_engine::unix::path_addr(path)
}

/// Unix sockets exist here.
pub(crate) fn unix_sockets() -> napi::Result<()> {
    Ok(())
}

/// What a feature of `requireFeature` is missing here: nothing on Unix.
pub(crate) fn missing(_feature: Feature) -> Option<&'static str> {
    None
}
