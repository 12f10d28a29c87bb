//! What differs between operating systems, behind one set of functions the transports call.
//!
//! - [`linux`]: Linux's fast paths (`accept4`, `pipe2`, `SOCK_NONBLOCK`, `sendfile(2)`, `recvmmsg` /
//!   `sendmmsg`, `splice(2)` for forwards, pidfds, abstract Unix names).
//! - [`portable`]: what every POSIX system has (`accept` / `pipe` / `socket` then `fcntl`, a `recvfrom`
//!   loop, one `sendto` per datagram, `pread` + `write` for sendfile, a blocking `waitid` for exits, no
//!   `splice`: forwards copy).
//!   macOS runs these; on Linux they are compiled too, so their unit tests run here, and the cargo
//!   feature `portable` makes a Linux build use them instead of the fast paths (the TypeScript suite
//!   over such a build is how this Linux machine proves the macOS code paths behave, not only compile).
//! - [`macos`]: macOS's own calls where it has them: its 6-argument `sendfile(2)`, kqueue's
//!   `EVFILT_PROC` for exits, and finding tokio's kqueue for the host reactor.
//!
//! The functions below pick one of them; nothing else in the engine names an operating system.

pub mod portable;

#[cfg(any(target_os = "linux", target_os = "android"))]
pub mod linux;

#[cfg(target_os = "macos")]
pub mod macos;

// Linux's fast paths, unless the `portable` feature asks for the POSIX ones.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")))]
use linux as fast;
#[cfg(not(all(any(target_os = "linux", target_os = "android"), not(feature = "portable"))))]
use portable as fast;

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
    return linux::sendfile(out, file, offset, len);
    #[cfg(target_os = "macos")]
    return macos::sendfile(out, file, offset, len);
    #[cfg(not(any(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")), target_os = "macos")))]
    return portable::sendfile(out, file, offset, len);
}

/// A descriptor that turns readable once child `pid` has exited (it does not reap it): a pidfd on
/// Linux, a kqueue watching `EVFILT_PROC` on macOS. `Unsupported` elsewhere (and in the portable
/// build on Linux): the caller then waits with [`portable::wait_exited_blocking`] on a blocking thread.
pub fn exit_fd(pid: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    #[cfg(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")))]
    return linux::pidfd_open(pid);
    #[cfg(target_os = "macos")]
    return macos::exit_kqueue(pid);
    #[cfg(not(any(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")), target_os = "macos")))]
    {
        let _ = pid;
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

pub use portable::wait_exited_blocking;

/// The readiness descriptor (epoll or kqueue) of `runtime`, a current-thread runtime, for the host
/// reactor. Not a fast path but a way of looking, so chosen by the system alone: Linux reads `/proc`
/// (in the portable build too), macOS asks `proc_pidinfo`; elsewhere `Unsupported`, and the engine
/// runs on an I/O thread instead.
pub fn runtime_poll_fd(runtime: &tokio::runtime::Runtime) -> std::io::Result<std::os::fd::RawFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return linux::find_epoll_fd(runtime.handle());
    #[cfg(target_os = "macos")]
    return macos::find_kqueue_fd(runtime);
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
