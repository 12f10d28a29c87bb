//! The descriptor backends' picks (see the parent module): which of [`super::linux`], [`super::portable`]
//! and [`super::macos`] this build calls for each job; nothing outside `sys` names an operating system.

// Linux's fast paths, unless the `portable` feature asks for the POSIX ones.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")))]
use super::linux as fast;
#[cfg(not(all(any(target_os = "linux", target_os = "android"), not(feature = "portable"))))]
use super::portable as fast;

pub use fast::{accept, pipe, recv_many, send_many, socket, socket_kind, splice, splice_pipe, ABSTRACT_UNIX_NAMES};

/// No SIGPIPE from a send where the platform has the flag (macOS has it since 10.12; Node ignores the
/// signal anyway).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
pub const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub const SEND_FLAGS: libc::c_int = 0;

/// Returns the allocator's free memory to the system where it keeps it (glibc: `malloc_trim`, which also
/// releases free pages inside its heaps); elsewhere nothing.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only takes glibc's own arena locks; it frees nothing that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Which set of calls this build uses: `"linux"` or `"portable"`.
pub const BACKEND: &str = if cfg!(all(any(target_os = "linux", target_os = "android"), not(feature = "portable"))) {
    "linux"
} else {
    "portable"
};

/// `sendfile(2)` of up to `len` bytes of `file` from `offset` onto the non-blocking socket (or pipe)
/// `out`, leaving the file position alone: the bytes sent (0 at the end of the file), or `WouldBlock`
/// when `out` is full before any byte went.
pub fn sendfile(out: std::os::fd::RawFd, file: std::os::fd::RawFd, offset: u64, len: usize) -> std::io::Result<usize> {
    #[cfg(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")))]
    return super::linux::sendfile(out, file, offset, len);
    #[cfg(target_os = "macos")]
    return super::macos::sendfile(out, file, offset, len);
    #[cfg(not(any(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")), target_os = "macos")))]
    return super::portable::sendfile(out, file, offset, len);
}

/// A descriptor that turns readable once child `pid` has exited (it does not reap it): a pidfd on
/// Linux, a kqueue watching `EVFILT_PROC` on macOS. `Unsupported` elsewhere (and in the portable
/// build on Linux): the caller then waits with [`portable::wait_exited_blocking`] on a blocking thread.
pub fn exit_fd(pid: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    #[cfg(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")))]
    return super::linux::pidfd_open(pid);
    #[cfg(target_os = "macos")]
    return super::macos::exit_kqueue(pid);
    #[cfg(not(any(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")), target_os = "macos")))]
    {
        let _ = pid;
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

pub use super::portable::wait_exited_blocking;

/// The readiness descriptor (epoll or kqueue) of `runtime`, a current-thread runtime, for the host
/// reactor. Not a fast path but a way of looking, so chosen by the system alone: Linux reads `/proc`
/// (in the portable build too), macOS asks `proc_pidinfo`; elsewhere `Unsupported`, and the engine
/// runs on an I/O thread instead.
pub fn runtime_poll_fd(runtime: &tokio::runtime::Runtime) -> std::io::Result<std::os::fd::RawFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return super::linux::find_epoll_fd(runtime.handle());
    #[cfg(target_os = "macos")]
    return super::macos::find_kqueue_fd(runtime);
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
    {
        let _ = runtime;
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no host reactor on this platform"))
    }
}

/// Sets close-on-exec on `fd`.
pub fn set_cloexec(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns; F_GETFD/F_SETFD take and return plain ints.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `fd` non-blocking.
pub fn set_nonblocking(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: as above, with F_GETFL/F_SETFL.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The errno values the engine reports itself (the host turns them into Node's codes, whose numbers on
/// Unix are the system's).
pub mod errno {
    pub use libc::{
        EADDRINUSE, EAFNOSUPPORT, EAGAIN, EBADF, ECONNREFUSED, ECONNRESET, EDESTADDRREQ, EEXIST, EFAULT, EINVAL, EIO, EMFILE,
        ENAMETOOLONG, ENFILE, ENOBUFS, ENOENT, ENOMEM, ENOTCONN, ENOTSOCK, ENOTSUP, EPERM, EPIPE, EPROTO, EPROTOTYPE, ESRCH,
        ETIMEDOUT,
    };
}

/// Address families as the host names them (its `socket_constants`).
pub use libc::{AF_INET, AF_INET6, AF_UNIX};

/// The errno of an I/O error, or `EIO` for errors that carry none.
#[inline]
pub fn errno_of(e: &std::io::Error) -> u32 {
    e.raw_os_error().unwrap_or(libc::EIO) as u32
}

/// `SO_REUSEADDR` on a connecting socket about to bind its local address: a port a closed
/// connection left in `TIME_WAIT` can be bound again.
pub fn reuse_local_address(sock: &socket2::Socket) -> std::io::Result<()> {
    sock.set_reuse_address(true)
}

/// `SO_REUSEPORT` on a socket about to bind.
pub fn set_reuse_port(sock: &socket2::Socket) -> std::io::Result<()> {
    sock.set_reuse_port(true)
}

/// A datagram socket that is neither bound nor connected stays so: Unix binds it at its first send, and
/// names it (the wildcard address, port 0) until then.
#[inline]
pub fn bind_unbound(_sock: &socket2::Socket, _domain: socket2::Domain) -> std::io::Result<()> {
    Ok(())
}
