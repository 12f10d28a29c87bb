//! What every POSIX system offers: the calls macOS (and the `portable` build on Linux) makes where
//! Linux has a faster one. Compiled on Linux too, so the tests below run here.
#![cfg_attr(all(any(target_os = "linux", target_os = "android"), not(feature = "portable")), allow(dead_code))]

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{set_cloexec, set_nonblocking, SEND_FLAGS};

/// Abstract Unix names (a path starting with NUL) exist on Linux only.
pub const ABSTRACT_UNIX_NAMES: bool = false;

/// Takes ownership of a descriptor a call just returned, or its error.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call just created this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Accepts a connection, then makes it close-on-exec and non-blocking. Between the two another
/// thread's fork+exec could inherit it: `std::process::Command` closes nothing, but Node's
/// `child_process` and ours both mark what they hand over, and the window is microseconds.
pub fn accept(listener: RawFd) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: accept on a listening descriptor the caller owns; no address is asked for.
        match owned(unsafe { libc::accept(listener, std::ptr::null_mut(), std::ptr::null_mut()) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(fd) => {
                set_cloexec(fd.as_raw_fd())?;
                // BSD sockets inherit O_NONBLOCK from the listener and Linux's do not; set it either way.
                set_nonblocking(fd.as_raw_fd())?;
                return Ok(fd);
            }
        }
    }
}

/// A pipe, `(read end, write end)`, both made close-on-exec right after.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe writes two descriptors into the array we own.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (r, w) = (owned(fds[0])?, owned(fds[1])?);
    set_cloexec(r.as_raw_fd())?;
    set_cloexec(w.as_raw_fd())?;
    Ok((r, w))
}

/// A socket, close-on-exec (socket2 does that everywhere) and then non-blocking.
pub fn socket(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<Socket> {
    let sock = Socket::new(domain, ty, protocol)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// POSIX has no `splice(2)`: forwards copy through user space instead (see `forward.rs`).
pub fn splice_pipe(_size: usize) -> io::Result<(OwnedFd, OwnedFd)> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "splice(2) is Linux's"))
}

pub fn splice(_from: RawFd, _to: RawFd, _len: usize) -> io::Result<usize> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "splice(2) is Linux's"))
}

thread_local! {
    /// `sendfile`'s bounce buffer, one per I/O thread.
    static BOUNCE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}
const BOUNCE_SIZE: usize = 256 << 10;

/// `sendfile` by `pread` and `write`: what `sendfile(2)` does, through a buffer. Bytes read but not
/// taken by `out` are read again next time (from `offset` + what was written), so none is lost.
pub fn sendfile(out: RawFd, file: RawFd, offset: u64, len: usize) -> io::Result<usize> {
    BOUNCE.with(|b| {
        let mut buf = b.borrow_mut();
        if buf.is_empty() {
            buf.resize(BOUNCE_SIZE, 0);
        }
        let want = len.min(buf.len());
        // SAFETY: the kernel writes at most `want` bytes into our buffer.
        let n = unsafe { libc::pread(file, buf.as_mut_ptr() as *mut _, want, offset as libc::off_t) };
        if n <= 0 {
            return if n == 0 { Ok(0) } else { Err(io::Error::last_os_error()) };
        }
        // SAFETY: the kernel reads the `n` bytes pread just wrote.
        let w = unsafe { libc::write(out, buf.as_ptr() as *const _, n as usize) };
        if w < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(w as usize)
    })
}

/// Sends the datagrams `msg(0)`, `msg(1)`, ... (up to the first `None`, at most `count`) with one
/// `sendto` each: how many went (0 when `msg(0)` is `None`), or the error of the first. An error after
/// the first is left for the next call to meet, as `sendmmsg` does.
pub fn send_many<'a>(fd: RawFd, count: usize, msg: impl Fn(usize) -> Option<(&'a [u8], Option<&'a SockAddr>)>) -> io::Result<usize> {
    let mut sent = 0;
    while sent < count {
        let Some((data, to)) = msg(sent) else { break };
        let (ptr, len) = match to {
            Some(a) => (a.as_ptr() as *const libc::sockaddr, a.len()),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `data` and the address outlive the call; the kernel only reads them.
        let n = unsafe { libc::sendto(fd, data.as_ptr() as *const _, data.len(), SEND_FLAGS, ptr, len) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if sent == 0 {
                return Err(e);
            }
            break;
        }
        sent += 1;
    }
    Ok(sent)
}

/// Receives up to `names.len()` datagrams with a `recvfrom` each, until the socket has none left: the
/// i-th into `buf[i * size..][..size]`, its sender into `names[i]`; `got` says `(bytes, address length)`
/// of each. An error after some datagrams returns with them in `got` (the caller delivers them first):
/// `recvfrom` has consumed the error, so unlike `recvmmsg` it cannot be left for the next call.
pub fn recv_many(fd: RawFd, buf: &mut [u8], size: usize, names: &mut [libc::sockaddr_storage], got: &mut Vec<(usize, libc::socklen_t)>) -> io::Result<()> {
    got.clear();
    let count = names.len().min(buf.len() / size);
    while got.len() < count {
        let i = got.len();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `size` bytes at `buf[i * size..]` (inside `buf`: i < count)
        // and at most `len` bytes into `names[i]`.
        let n = unsafe {
            libc::recvfrom(fd, buf.as_mut_ptr().add(i * size) as *mut _, size, libc::MSG_DONTWAIT, &mut names[i] as *mut _ as *mut _, &mut len)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock if i > 0 => Ok(()),
                io::ErrorKind::Interrupted if i > 0 => Ok(()),
                _ => Err(e),
            };
        }
        got.push((n as usize, len));
    }
    Ok(())
}

/// `[domain, type, protocol]` of a socket. Without `SO_DOMAIN` / `SO_PROTOCOL` (macOS has neither) the
/// domain is the family of its own address and the protocol the one its domain and type imply (TCP for
/// IP streams, UDP for IP datagrams, 0 for Unix sockets), which is what every socket protoloop takes has.
pub fn socket_kind(fd: RawFd) -> io::Result<[i32; 3]> {
    // SAFETY: the descriptor stays open for this call (the caller's); SockRef only borrows it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&borrowed);
    let ty: i32 = sock.r#type()?.into();
    let domain = sock.local_addr()?.family() as i32;
    let protocol = match (domain, ty) {
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM) => libc::IPPROTO_TCP,
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_DGRAM) => libc::IPPROTO_UDP,
        _ => 0,
    };
    Ok([domain, ty, protocol])
}

/// Waits for child `pid` to exit without reaping it, blocking the calling thread: how exits are
/// watched where no descriptor can ([`super::exit_fd`] is `Unsupported`). The caller reaps.
pub fn wait_exited_blocking(pid: u32) {
    loop {
        // SAFETY: waitid writes into a zeroed siginfo we own; WNOWAIT leaves the child unreaped.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsFd;

    fn flags(fd: RawFd) -> (bool, bool) {
        // SAFETY: fcntl reads flags of a descriptor the test owns.
        let (fd_flags, fl) = unsafe { (libc::fcntl(fd, libc::F_GETFD), libc::fcntl(fd, libc::F_GETFL)) };
        (fd_flags & libc::FD_CLOEXEC != 0, fl & libc::O_NONBLOCK != 0)
    }

    #[test]
    fn accept_gives_a_nonblocking_close_on_exec_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = accept(listener.as_raw_fd()).unwrap();
        assert_eq!(flags(fd.as_raw_fd()), (true, true));
        client.write_all(b"hi").unwrap();
        let mut server = std::net::TcpStream::from(fd);
        server.set_nonblocking(false).unwrap();
        let mut got = [0; 2];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        // Nothing waiting on a non-blocking listener: WouldBlock, as accept4 says.
        listener.set_nonblocking(true).unwrap();
        assert_eq!(accept(listener.as_raw_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn pipe_ends_are_close_on_exec_and_connected() {
        let (r, w) = pipe().unwrap();
        assert!(flags(r.as_raw_fd()).0 && flags(w.as_raw_fd()).0);
        std::fs::File::from(w).write_all(b"through").unwrap();
        let mut s = String::new();
        std::fs::File::from(r).read_to_string(&mut s).unwrap();
        assert_eq!(s, "through");
    }

    #[test]
    fn socket_is_nonblocking_and_close_on_exec() {
        let s = socket(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        assert_eq!(flags(s.as_raw_fd()), (true, true));
    }

    #[test]
    fn sendfile_sends_the_range_and_leaves_the_file_position() {
        let path = std::env::temp_dir().join(format!("protoloop-sys-sendfile-{}", std::process::id()));
        let content: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            (&b).read_to_end(&mut got).unwrap();
            got
        });
        let (offset, count) = (1000u64, 500_000usize);
        let mut sent = 0;
        while sent < count {
            match sendfile(a.as_raw_fd(), file.as_raw_fd(), offset + sent as u64, count - sent) {
                Ok(0) => panic!("end of file before the range's end"),
                Ok(n) => sent += n,
                // The reader is behind: wait until the socket takes more.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut pfd = libc::pollfd { fd: a.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
                    // SAFETY: one pollfd we own.
                    unsafe { libc::poll(&mut pfd, 1, -1) };
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(sendfile(a.as_raw_fd(), file.as_raw_fd(), content.len() as u64, 10).unwrap(), 0, "0 at the end");
        drop(a);
        assert_eq!(reader.join().unwrap(), &content[1000..501_000]);
        // SAFETY: lseek on a descriptor the test owns.
        assert_eq!(unsafe { libc::lseek(file.as_fd().as_raw_fd(), 0, libc::SEEK_CUR) }, 0);
    }

    #[test]
    fn recv_many_takes_every_waiting_datagram_then_would_block() {
        // Unix datagrams land in the peer's queue within the send, so what waits is known exactly.
        let (rx, tx) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let size = 64;
        let mut buf = vec![0u8; size * 4];
        // SAFETY: all-zero sockaddr_storage is valid.
        let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; 4];
        let mut got = vec![(9, 9)];
        assert_eq!(recv_many(rx.as_raw_fd(), &mut buf, size, &mut names, &mut got).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert!(got.is_empty());
        for m in [&b"one"[..], b"two", b"", b"four", b"five"] {
            tx.send(m).unwrap();
        }
        recv_many(rx.as_raw_fd(), &mut buf, size, &mut names, &mut got).unwrap();
        let lens: Vec<usize> = got.iter().map(|g| g.0).collect();
        assert_eq!(lens, [3, 3, 0, 4], "four slots: the fifth waits");
        assert_eq!(&buf[size..size + 3], b"two");
        assert_eq!(&buf[3 * size..3 * size + 4], b"four");
        recv_many(rx.as_raw_fd(), &mut buf, size, &mut names, &mut got).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(&buf[..4], b"five");
    }

    #[test]
    fn recv_many_reports_the_sender() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        rx.set_nonblocking(false).unwrap();
        let mut peek = [0u8; 1];
        rx.peek(&mut peek).unwrap(); // waits until it has landed
        let mut buf = vec![0u8; 64];
        // SAFETY: all-zero sockaddr_storage is valid.
        let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; 1];
        let mut got = Vec::new();
        recv_many(rx.as_raw_fd(), &mut buf, 64, &mut names, &mut got).unwrap();
        assert_eq!(got[0].0, 1);
        assert_eq!(names[0].ss_family as i32, libc::AF_INET);
        // SAFETY: an AF_INET name is a sockaddr_in.
        let sin = unsafe { &*(&names[0] as *const _ as *const libc::sockaddr_in) };
        assert_eq!(u16::from_be(sin.sin_port), tx.local_addr().unwrap().port());
    }

    #[test]
    fn send_many_sends_each_datagram_until_the_first_none() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = SockAddr::from(rx.local_addr().unwrap());
        let msgs: [&[u8]; 3] = [b"a", b"bb", b"ccc"];
        let n = send_many(tx.as_raw_fd(), 3, |k| if k < 2 { Some((msgs[k], Some(&to))) } else { None }).unwrap();
        assert_eq!(n, 2);
        let mut b = [0u8; 8];
        assert_eq!(rx.recv(&mut b).unwrap(), 1);
        assert_eq!(rx.recv(&mut b).unwrap(), 2);
        assert_eq!(send_many(tx.as_raw_fd(), 3, |_| None).unwrap(), 0);
        // No destination on an unconnected socket: the first send's error.
        assert!(send_many(tx.as_raw_fd(), 1, |_| Some((msgs[0], None))).is_err());
    }

    #[test]
    fn socket_kind_agrees_with_the_kernel() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("[::1]:0").or_else(|_| UdpSocket::bind("127.0.0.1:0")).unwrap();
        let (unix, _) = std::os::unix::net::UnixStream::pair().unwrap();
        let unix_dgram = std::os::unix::net::UnixDatagram::unbound().unwrap();
        for fd in [tcp.as_raw_fd(), udp.as_raw_fd(), unix.as_raw_fd(), unix_dgram.as_raw_fd()] {
            let kind = socket_kind(fd).unwrap();
            #[cfg(any(target_os = "linux", target_os = "android"))]
            assert_eq!(kind, crate::sys::linux::socket_kind(fd).unwrap());
            assert!(kind[0] > 0 && kind[1] > 0, "{kind:?}");
        }
        assert_eq!(socket_kind(tcp.as_raw_fd()).unwrap(), [libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_TCP]);
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(socket_kind(file.as_raw_fd()).unwrap_err().raw_os_error(), Some(libc::ENOTSOCK));
    }

    #[test]
    fn wait_exited_blocking_returns_once_the_child_exits_and_leaves_it_unreaped() {
        let mut child = std::process::Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        wait_exited_blocking(child.id());
        assert_eq!(child.try_wait().unwrap().and_then(|s| s.code()), Some(7));
    }
}
