//! macOS's own calls where it has them: its `sendfile(2)`, kqueue for child exits, and finding the
//! kqueue of tokio's runtime for the host reactor. Type-checked on Linux (`cross-check.sh`), not run
//! there: nothing here can run without a Mac, which is why each keeps to documented behaviour and has a
//! tested portable neighbour it falls back to.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::runtime::Runtime;

/// macOS `sendfile(2)`: `sendfile(file, socket, offset, &len, NULL, 0)`. On a non-blocking socket it
/// fails with `EAGAIN` (or `EINTR`) after sending part, saying how much in `len`: that part counts.
/// A `len` of 0 would mean "to the end of the file", so it is never passed. Only sockets take it: a
/// pipe (or a file the kernel refuses) goes through the portable `pread` + `write` loop, as Linux's
/// `sendfile` takes pipes too.
pub fn sendfile(out: RawFd, file: RawFd, offset: u64, len: usize) -> io::Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    let mut sent = len.min(i64::MAX as usize) as libc::off_t;
    // SAFETY: sendfile between two descriptors the caller holds; `sent` is a local the kernel updates;
    // no header/trailer vectors.
    let r = unsafe { libc::sendfile(file, out, offset as libc::off_t, &mut sent, std::ptr::null_mut(), 0) };
    if r == 0 {
        return Ok(sent as usize);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EINTR) if sent > 0 => Ok(sent as usize),
        Some(libc::ENOTSOCK | libc::EOPNOTSUPP | libc::ENOTSUP) => super::portable::sendfile(out, file, offset, len),
        _ => Err(e),
    }
}

/// A kqueue that turns readable once child `pid` exits (`EVFILT_PROC` / `NOTE_EXIT`), pollable by
/// tokio's own kqueue as a pidfd is by epoll. A child that is already a zombie may be refused
/// (`ESRCH`): the caller then waits on a blocking thread, which returns at once.
pub fn exit_kqueue(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: kqueue takes nothing and returns a new descriptor or -1.
    let kq = unsafe { libc::kqueue() };
    if kq < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: kqueue just created it; nothing else owns it.
    let kq = unsafe { OwnedFd::from_raw_fd(kq) };
    super::set_cloexec(kq.as_raw_fd())?;
    // SAFETY: a zeroed kevent is a valid value; the fields are set below.
    let mut ev: libc::kevent = unsafe { std::mem::zeroed() };
    ev.ident = pid as libc::uintptr_t;
    ev.filter = libc::EVFILT_PROC;
    ev.flags = libc::EV_ADD | libc::EV_ONESHOT;
    ev.fflags = libc::NOTE_EXIT;
    // SAFETY: one change read from `ev`, no event list, no timeout.
    if unsafe { libc::kevent(kq.as_raw_fd(), &ev, 1, std::ptr::null_mut(), 0, std::ptr::null()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(kq)
}

/// The kqueue descriptors of this process, from `proc_pidinfo(PROC_PIDLISTFDS)`.
pub fn kqueue_fds() -> io::Result<Vec<RawFd>> {
    let pid = std::process::id() as libc::c_int;
    // SAFETY: with no buffer, proc_pidinfo returns the size the list needs.
    let need = unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, std::ptr::null_mut(), 0) };
    if need <= 0 {
        return Err(io::Error::last_os_error());
    }
    // Room for descriptors opened meanwhile.
    let cap = need as usize / std::mem::size_of::<libc::proc_fdinfo>() + 32;
    let mut list: Vec<libc::proc_fdinfo> = Vec::with_capacity(cap);
    let bytes = (cap * std::mem::size_of::<libc::proc_fdinfo>()) as libc::c_int;
    // SAFETY: the kernel writes at most `bytes` bytes of proc_fdinfo records into `list`'s capacity.
    let got = unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, list.as_mut_ptr() as *mut _, bytes) };
    if got <= 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `got` bytes of whole records were written.
    unsafe { list.set_len(got as usize / std::mem::size_of::<libc::proc_fdinfo>()) };
    Ok(list.iter().filter(|i| i.proc_fdtype == libc::PROX_FDTYPE_KQUEUE as u32).map(|i| i.proc_fd).collect())
}

fn readable_now(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd we own, no waiting.
    unsafe { libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLIN != 0 }
}

/// tokio keeps its kqueue to itself, and macOS has no `/proc` to read which descriptors a kqueue
/// watches. So the runtime is made to show it: a probe socket registered with it, every kqueue of the
/// process polled after a turn of the runtime has emptied its queue (tokio's is not readable), then
/// again after a byte made the probe readable (tokio's is). Exactly one must change so; otherwise the
/// host reactor is refused and the engine runs on an I/O thread.
pub fn find_kqueue_fd(runtime: &Runtime) -> io::Result<RawFd> {
    let (a, b) = std::os::unix::net::UnixStream::pair()?;
    a.set_nonblocking(true)?;
    let _probe = {
        let _rt = runtime.enter();
        tokio::net::UnixStream::from_std(a)?
    };
    // A turn collects what the registration raised (the probe is writable) and leaves the kqueue empty.
    runtime.block_on(tokio::task::yield_now());
    let quiet: Vec<RawFd> = kqueue_fds()?.into_iter().filter(|&fd| !readable_now(fd)).collect();
    std::io::Write::write_all(&mut &b, b"?")?;
    let woke: Vec<RawFd> = quiet.into_iter().filter(|&fd| readable_now(fd)).collect();
    runtime.block_on(tokio::task::yield_now());
    match woke[..] {
        [fd] => Ok(fd),
        _ => Err(io::Error::new(io::ErrorKind::NotFound, format!("cannot tell the runtime's kqueue ({} candidates)", woke.len()))),
    }
}

// Run by `cargo test` on a Mac (the release workflow's test-macos job); type-checked here by
// `npm run cross-check:macos`, which passes `--all-targets`.
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn readable_within(fd: RawFd, ms: i32) -> bool {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd we own.
        unsafe { libc::poll(&mut pfd, 1, ms) == 1 }
    }

    #[test]
    fn sendfile_sends_a_range_over_a_socket_and_a_pipe() {
        let path = std::env::temp_dir().join(format!("protoloop-macos-sendfile-{}", std::process::id()));
        std::fs::write(&path, b"0123456789abcdef").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(sendfile(a.as_raw_fd(), file.as_raw_fd(), 4, 6).unwrap(), 6);
        let mut got = [0u8; 6];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"456789");
        // A pipe is not a socket: the pread + write loop takes over.
        let (r, w) = super::super::portable::pipe().unwrap();
        assert_eq!(sendfile(w.as_raw_fd(), file.as_raw_fd(), 10, 100).unwrap(), 6);
        let mut got = [0u8; 6];
        std::fs::File::from(r).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcdef");
        assert_eq!(sendfile(a.as_raw_fd(), file.as_raw_fd(), 16, 10).unwrap(), 0, "0 at the end");
    }

    #[test]
    fn exit_kqueue_turns_readable_when_the_child_exits() {
        let mut child = std::process::Command::new("sh").args(["-c", "read x"]).stdin(std::process::Stdio::piped()).spawn().unwrap();
        let kq = exit_kqueue(child.id()).unwrap();
        assert!(!readable_within(kq.as_raw_fd(), 0));
        drop(child.stdin.take()); // EOF: the child exits
        assert!(readable_within(kq.as_raw_fd(), 10_000));
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn the_runtime_kqueue_is_found_and_wakes_for_its_sockets() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
        let kq = find_kqueue_fd(&runtime).unwrap();
        assert!(kqueue_fds().unwrap().contains(&kq));
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let _reg = {
            let _rt = runtime.enter();
            tokio::net::UnixStream::from_std(a).unwrap()
        };
        runtime.block_on(tokio::task::yield_now());
        assert!(!readable_within(kq, 0));
        std::io::Write::write_all(&mut &b, b"x").unwrap();
        assert!(readable_within(kq, 10_000));
    }
}
