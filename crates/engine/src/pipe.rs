//! Pipes: asyncio's `connect_read_pipe` / `connect_write_pipe`, and the stdio pipes of child processes.
//!
//! A pipe end is a [`Stream`] of kind [`FdKind::Pipe`]: reading, writing, flow control and closing are
//! the stream's. What is particular to pipes lives here: which descriptors qualify (FIFOs, sockets and
//! character devices such as ttys; asyncio refuses regular files, whose readiness means nothing), and
//! that a write end notices its reader going away while idle.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use crate::adopt::{Handover, Refused};
use crate::events::Syscall;
use crate::stream::{FdKind, Stream};
use crate::{Core, Engine};

/// Which end of a pipe the transport holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeEnd {
    Read,
    Write,
}

/// What kind of file a descriptor is, as far as pipes care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeFileType {
    Fifo,
    Socket,
    CharDevice,
}

/// The descriptor's file type, or `EINVAL` for anything a pipe transport cannot serve (regular files,
/// directories, block devices), `EBADF` for a closed descriptor.
pub fn pipe_file_type(fd: i32) -> io::Result<PipeFileType> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: fstat writes into a zeroed struct we own; an invalid fd only makes it fail.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => Ok(PipeFileType::Fifo),
        libc::S_IFSOCK => Ok(PipeFileType::Socket),
        libc::S_IFCHR => Ok(PipeFileType::CharDevice),
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// Makes a pipe stream of `fd` (which it owns from now on). A read end reads once the host calls
/// [`Stream::start_reading`] (after `connection_made`, as for every stream); a write end of a FIFO or
/// socket watches for its reader leaving from the start.
pub(crate) fn open(core: &Arc<Core>, fd: OwnedFd, end: PipeEnd) -> io::Result<Arc<Stream>> {
    let ty = pipe_file_type(fd.as_raw_fd())?;
    crate::sys::nonblocking(&fd)?;
    let id = core.next_id();
    let stream = Stream::start(core, id, fd, FdKind::Pipe, end == PipeEnd::Read)?;
    watch(&stream, end, ty);
    Ok(stream)
}

fn watch(stream: &Arc<Stream>, end: PipeEnd, ty: PipeFileType) {
    // A tty has no reader to lose; its hang-up shows as a failed write.
    if end == PipeEnd::Write && ty != PipeFileType::CharDevice {
        stream.watch_reader_gone();
    }
}

/// A new anonymous pipe, `(read end, write end)`, both close-on-exec so that no other child inherits
/// them (a stray copy of a write end would keep its reader from ever seeing EOF).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    crate::sys::pipe()
}

impl Engine {
    /// asyncio's `connect_read_pipe` / `connect_write_pipe`: a stream transport of one pipe end the
    /// caller hands over. Regular files are refused with `EINVAL`, and so is anything the reactor cannot
    /// watch (`EPERM` for `/dev/null`); refused, the descriptor is left open (see [`crate::adopt`]).
    pub fn open_pipe(&self, fd: OwnedFd, end: PipeEnd) -> Result<u32, Refused> {
        let fd = Handover::new(&self.core, fd)?;
        let ty = pipe_file_type(fd.as_fd().as_raw_fd()).map_err(|e| Refused::new(e, Syscall::Fstat))?;
        fd.set_nonblocking()?;
        let fd = fd.register(&self.core, crate::stream::interest(end == PipeEnd::Read))?;
        let stream = Stream::registered(&self.core, self.core.next_id(), crate::sys::Io::registered(fd), FdKind::Pipe);
        watch(&stream, end, ty);
        Ok(stream.id)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::Transport;
    use super::*;
    use crate::events::Kind;
    use std::time::{Duration, Instant};

    /// Drains events until `done` says so, collecting `[kind, id, a, b]` records and payload.
    pub(crate) fn collect(engine: &Engine, mut done: impl FnMut(&[[u32; 4]], &[u8]) -> bool) -> (Vec<[u32; 4]>, Vec<u8>) {
        let (mut recs, mut payload) = (Vec::new(), Vec::new());
        let end = Instant::now() + Duration::from_secs(10);
        while !done(&recs, &payload) {
            assert!(Instant::now() < end, "timed out; events so far: {recs:?}");
            let b = engine.queue().drain();
            for r in b.records.chunks(5) {
                recs.push([r[0], r[1], r[2], r[3]]);
            }
            payload.extend_from_slice(&b.payload);
            std::thread::sleep(Duration::from_millis(2));
        }
        (recs, payload)
    }

    fn write_all(fd: &OwnedFd, data: &[u8]) {
        // SAFETY: the kernel reads `data.len()` bytes from a slice we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr() as *const _, data.len()) };
        assert_eq!(n, data.len() as isize);
    }

    #[test]
    fn read_pipe_reads_then_reports_eof() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let (r, w) = pipe().unwrap();
        let id = engine.open_pipe(r, PipeEnd::Read).unwrap();
        engine.stream(id).unwrap().start_reading(false);
        write_all(&w, b"hello");
        drop(w);
        let (recs, payload) = collect(&engine, |recs, _| recs.iter().any(|r| r[0] == Kind::Eof as u32));
        assert_eq!(payload, b"hello");
        assert!(recs.iter().all(|r| r[1] == id));
        engine.stream(id).unwrap().close();
        collect(&engine, |recs, _| recs.iter().any(|r| r[0] == Kind::Closed as u32));
        assert_eq!(engine.open_handles(), 0);
    }

    #[test]
    fn idle_write_pipe_notices_its_reader_leaving() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let (r, w) = pipe().unwrap();
        let id = engine.open_pipe(w, PipeEnd::Write).unwrap();
        assert_eq!(engine.stream(id).unwrap().write(&[b"abc"]), 3);
        drop(r);
        let (recs, _) = collect(&engine, |recs, _| !recs.is_empty());
        assert_eq!(recs, vec![[Kind::Closed as u32, id, 0, 0]]);
        assert!(engine.stream(id).is_none());
    }

    #[test]
    fn write_pipe_with_queued_bytes_fails_with_epipe() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let (r, w) = pipe().unwrap();
        let id = engine.open_pipe(w, PipeEnd::Write).unwrap();
        let big = vec![7u8; 1 << 20];
        let sent = engine.stream(id).unwrap().write(&[&big]);
        assert!(sent < big.len(), "a pipe takes less than 1 MiB at once");
        drop(r);
        let (recs, _) = collect(&engine, |recs, _| recs.iter().any(|r| r[0] == Kind::Closed as u32));
        let closed = recs.iter().find(|r| r[0] == Kind::Closed as u32).unwrap();
        assert_eq!(closed[2], libc::EPIPE as u32);
    }

    #[test]
    fn regular_files_are_refused() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let f = std::fs::File::open(std::env::current_exe().unwrap()).unwrap(); // a regular file on every system
        let fd = f.as_raw_fd();
        let err = engine.open_pipe(f.into(), PipeEnd::Read).unwrap_err();
        assert_eq!(err.error.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(engine.open_handles(), 0);
        // Refused, the descriptor is still open: it is the caller's to close.
        // SAFETY: fcntl(F_GETFD) only reads the descriptor's flags.
        assert!(unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
        // SAFETY: the refused descriptor is ours again; closed once.
        unsafe { libc::close(fd) };
    }
}
