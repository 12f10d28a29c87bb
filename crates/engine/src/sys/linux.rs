//! Linux's fast paths: one call where POSIX needs two or many. Also the host reactor's way of finding
//! tokio's epoll descriptor, which the portable build uses too (it has no other).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::runtime::Handle;

/// Paths starting with NUL name abstract sockets (no file).
pub const ABSTRACT_UNIX_NAMES: bool = true;

/// Accepts a connection, non-blocking and close-on-exec in the same call.
pub fn accept(listener: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: accept4 on a listening descriptor the caller owns; no address is asked for.
    let s = unsafe { libc::accept4(listener, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(s) })
}

/// A pipe, `(read end, write end)`, both close-on-exec from the start.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just created both descriptors; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A socket, non-blocking and close-on-exec in the same call.
pub fn socket(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<Socket> {
    Socket::new(domain, ty.nonblocking().cloexec(), protocol)
}

pub fn sendfile(out: RawFd, file: RawFd, offset: u64, len: usize) -> io::Result<usize> {
    let mut off = offset as libc::off_t;
    // SAFETY: sendfile(2) between two descriptors the caller holds; `off` is a local the kernel updates.
    match unsafe { libc::sendfile(out, file, &mut off, len) } {
        n if n >= 0 => Ok(n as usize),
        _ => Err(io::Error::last_os_error()),
    }
}

/// A pipe for [`splice`]: non-blocking and close-on-exec, its capacity raised to `size` bytes where the
/// kernel lets it (`F_SETPIPE_SZ`; up to `/proc/sys/fs/pipe-max-size`, 1 MiB by default). Capacity is
/// counted in page slots, and each socket buffer spliced in takes one: a bigger pipe takes more of a
/// stream of small segments per call.
pub fn splice_pipe(size: usize) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just created both descriptors; nothing else owns them.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int. A refusal (EPERM over the
    // limit) leaves the default capacity, which works, only in smaller steps.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    Ok((r, w))
}

/// `splice(2)` of up to `len` bytes from `from` to `to`, one of them a pipe: pages move by reference,
/// never through user space. Never blocks: the bytes moved (0 when `from` is at its end), or
/// `WouldBlock` when there is nothing to move or no room.
pub fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: splice(2) between two descriptors the caller holds; no offsets (both are streams).
    match unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, flags) } {
        n if n >= 0 => Ok(n as usize),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sends the datagrams `msg(0)`, `msg(1)`, ... (up to the first `None`, at most `count`) with one
/// `sendmmsg`: how many the kernel took (0 when `msg(0)` is `None`), or the error of the first.
/// `msg` is asked twice per datagram (it is cheap), which spares a vector.
pub fn send_many<'a>(fd: RawFd, count: usize, msg: impl Fn(usize) -> Option<(&'a [u8], Option<&'a SockAddr>)>) -> io::Result<usize> {
    // The kernel takes at most UIO_MAXIOV messages per call.
    let count = count.min(1024);
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(count);
    while iov.len() < count {
        let Some((data, _)) = msg(iov.len()) else { break };
        iov.push(libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() });
    }
    if iov.is_empty() {
        return Ok(0);
    }
    // SAFETY: a zeroed mmsghdr is a valid value; the pointers set below point into `iov` and into
    // the addresses `msg` lends, which outlive the call, and the kernel only reads through them.
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; iov.len()];
    for (k, h) in hdrs.iter_mut().enumerate() {
        if let Some((_, Some(a))) = msg(k) {
            h.msg_hdr.msg_name = a.as_ptr() as *mut _;
            h.msg_hdr.msg_namelen = a.len();
        }
        h.msg_hdr.msg_iov = &mut iov[k];
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `hdrs` is initialised as above.
    let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as _, super::SEND_FLAGS) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        0 => Err(io::ErrorKind::WouldBlock.into()),
        n => Ok(n as usize),
    }
}

/// Receives up to `names.len()` datagrams with one `recvmmsg`: the i-th into `buf[i * size..][..size]`,
/// its sender into `names[i]`; `got` says `(bytes, address length)` of each. Holds nothing on error.
pub fn recv_many(fd: RawFd, buf: &mut [u8], size: usize, names: &mut [libc::sockaddr_storage], got: &mut Vec<(usize, libc::socklen_t)>) -> io::Result<()> {
    const MAX: usize = 16;
    let count = names.len().min(MAX).min(buf.len() / size);
    got.clear();
    // SAFETY: zeroed iovec/mmsghdr are valid values; every pointer set below points into `buf` or
    // `names`, which outlive the call, and each iovec covers `size` bytes inside `buf`.
    let mut iov: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
    let base = buf.as_mut_ptr();
    for i in 0..count {
        iov[i] = libc::iovec { iov_base: unsafe { base.add(i * size) } as *mut _, iov_len: size };
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = &mut names[i] as *mut _ as *mut _;
        h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_iov = &mut iov[i];
        h.msg_iovlen = 1;
    }
    // SAFETY: `hdrs[..count]` is initialised as above; no timeout.
    let n = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), count as _, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    for h in &hdrs[..n as usize] {
        got.push((h.msg_len as usize, h.msg_hdr.msg_namelen));
    }
    Ok(())
}

fn int_option(fd: RawFd, opt: libc::c_int) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `v`, which we own.
    if unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, opt, &mut v as *mut _ as *mut _, &mut len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// `[domain, type, protocol]` of a socket, as the kernel keeps them.
pub fn socket_kind(fd: RawFd) -> io::Result<[i32; 3]> {
    Ok([int_option(fd, libc::SO_DOMAIN)?, int_option(fd, libc::SO_TYPE)?, int_option(fd, libc::SO_PROTOCOL)?])
}

/// A pidfd of child `pid`: readable once it has exited.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no memory; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// tokio keeps its epoll descriptor to itself. A probe socket registered with the runtime finds it:
/// the one epoll instance of the process whose `/proc/self/fdinfo` lists the probe.
pub fn find_epoll_fd(handle: &Handle) -> io::Result<RawFd> {
    let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    a.set_nonblocking(true)?;
    let probe_fd = a.as_raw_fd().to_string();
    let _rt = handle.enter();
    let _probe = tokio::net::UnixStream::from_std(a)?;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()) else { continue };
        if std::fs::read_link(entry.path()).ok().and_then(|t| t.to_str().map(|s| s == "anon_inode:[eventpoll]")) != Some(true) {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else { continue };
        let lists_probe = info.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some("tfd:") && words.next() == Some(probe_fd.as_str())
        });
        if lists_probe {
            return Ok(fd);
        }
    }
    Err(io::Error::new(io::ErrorKind::NotFound, "the runtime's epoll descriptor is not in /proc/self/fd"))
}
