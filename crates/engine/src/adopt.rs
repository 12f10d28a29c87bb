//! Descriptors the host hands over (asyncio's `sock=`, `connect_accepted_socket`, pipes): the engine
//! owns one only once it is registered with the reactor. Until then it is the caller's, and a refused
//! adoption leaves it open: closing it would close it under its owner (a live transport, say), whose
//! number may by then belong to another file of the application. asyncio refuses a descriptor that
//! already has a transport and closes nothing.

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::events::Syscall;
use crate::stream::{self, FdKind, Stream};
use crate::{datagram, Core, Datagram, Engine, Server};

/// Why an adoption was refused, and which step said so (for the host's `syscall`). The descriptor was
/// left open.
#[derive(Debug)]
pub struct Refused {
    pub error: io::Error,
    pub syscall: Syscall,
}

impl Refused {
    pub(crate) fn new(error: io::Error, syscall: Syscall) -> Refused {
        Refused { error, syscall }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.syscall, self.error)
    }
}

impl std::error::Error for Refused {}

/// A handed-over descriptor not yet adopted: whatever fails before [`Handover::register`] succeeds
/// (an early return included) leaves it open.
pub(crate) struct Handover(ManuallyDrop<OwnedFd>);

impl Handover {
    /// Takes `fd` for adoption, refusing one that a live stream, server, endpoint or TLS connection of
    /// this engine already owns (`EEXIST`, as epoll says; kqueue would not notice).
    pub(crate) fn new(core: &Core, fd: OwnedFd) -> Result<Handover, Refused> {
        let fd = Handover(ManuallyDrop::new(fd));
        if core.owns_fd(fd.0.as_raw_fd()) {
            return Err(Refused::new(io::Error::from_raw_os_error(libc::EEXIST), Syscall::Register));
        }
        Ok(fd)
    }

    /// Makes the descriptor non-blocking, as every descriptor of the engine is.
    pub(crate) fn set_nonblocking(&self) -> Result<(), Refused> {
        socket2::SockRef::from(&self.as_fd()).set_nonblocking(true).map_err(|e| Refused::new(e, Syscall::Fcntl))
    }

    /// Registers the descriptor (as a `T`: an `OwnedFd` or a `Socket`) with the engine's reactor: from
    /// here on the engine owns it. If the reactor refuses it (a second registration, a file epoll cannot
    /// watch such as `/dev/null`), it is given back unclosed.
    pub(crate) fn register<T>(self, core: &Core, interest: Interest) -> Result<AsyncFd<T>, Refused>
    where
        T: From<OwnedFd> + AsRawFd + IntoRawFd,
    {
        let _rt = core.handle.enter();
        let inner = T::from(ManuallyDrop::into_inner(self.0));
        // SAFETY: `T` owns its descriptor, always reports the same one and closes it only when dropped,
        // which the `AsyncFd` holding it decides (as `crate::register`).
        match unsafe { AsyncFd::register_with_interest(inner, interest) } {
            Ok(fd) => Ok(fd),
            Err(e) => {
                let (inner, error) = e.into_parts();
                // Not ours after all: released, not closed.
                let _ = inner.into_raw_fd();
                Err(Refused::new(error, Syscall::Register))
            }
        }
    }
}

impl AsFd for Handover {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// What the host can hand over: a connected socket or pipe end (a stream), a listening socket (a
/// server), a datagram socket (an endpoint). Unix only: Windows has no descriptors to hand over.
impl Engine {
    /// Makes a stream of a descriptor the caller hands over (asyncio's `sock=` and pipes). Refused, the
    /// descriptor is left open: it is still the caller's (see this module).
    pub fn adopt(&self, fd: OwnedFd, kind: FdKind, readable: bool) -> Result<u32, Refused> {
        let fd = Handover::new(&self.core, fd)?;
        fd.set_nonblocking()?;
        let fd = fd.register(&self.core, stream::interest(readable))?;
        let id = self.core.next_id();
        Stream::registered(&self.core, id, crate::sys::Io::registered(fd), kind);
        Ok(id)
    }

    /// Serves on a listening socket the caller hands over. Refused, the descriptor is left open.
    pub fn listen_on(&self, fd: OwnedFd, keep_alive: bool) -> Result<u32, Refused> {
        let fd = Handover::new(&self.core, fd)?;
        fd.set_nonblocking()?;
        let listener = fd.register::<socket2::Socket>(&self.core, tokio::io::Interest::READABLE)?;
        let id = self.core.next_id();
        Server::from_listeners(&self.core, id, vec![Arc::new(crate::sys::Listener::registered(listener))], keep_alive);
        Ok(id)
    }

    /// Makes a datagram endpoint of a socket the caller hands over (asyncio's `sock=`). Refused, the
    /// descriptor is left open.
    pub fn adopt_datagram(&self, fd: OwnedFd) -> Result<u32, Refused> {
        let fd = Handover::new(&self.core, fd)?;
        let sock = socket2::SockRef::from(&fd);
        match sock.r#type() {
            Ok(t) if t == socket2::Type::DGRAM => {}
            Ok(_) => return Err(Refused::new(io::Error::from_raw_os_error(libc::EPROTOTYPE), Syscall::Getsockopt)),
            Err(e) => return Err(Refused::new(e, Syscall::Getsockopt)),
        }
        let place = datagram::Place::of(&sock).map_err(|e| Refused::new(e, Syscall::Getsockname))?;
        fd.set_nonblocking()?;
        let fd = fd.register(&self.core, datagram::INTEREST)?;
        let id = self.core.next_id();
        Datagram::registered(&self.core, id, crate::sys::Io::registered(fd), place, None).begin_reading();
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use crate::Transport;
    use crate::{Engine, FdKind, PipeEnd};
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: fcntl(F_GETFD) only reads the descriptor's flags.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    /// The same descriptor number handed over again, as a host holding only the number would.
    fn again(fd: RawFd) -> OwnedFd {
        // SAFETY: for the test, a second owner of a descriptor the engine owns; it is released below
        // (refused adoptions give it back) and never closed through this handle.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    #[test]
    fn a_descriptor_the_engine_owns_is_refused_and_left_open() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let (a, _b) = crate::unix::socketpair().unwrap();
        let fd = a.as_raw_fd();
        let id = engine.adopt(a, FdKind::Socket, true).unwrap();
        let refusals = [
            engine.adopt(again(fd), FdKind::Socket, true).map(|_| ()),
            engine.open_pipe(again(fd), PipeEnd::Read).map(|_| ()),
            engine.listen_on(again(fd), false).map(|_| ()),
            engine.adopt_datagram(again(fd)).map(|_| ()),
        ];
        for r in refusals {
            let r = r.unwrap_err();
            assert!(matches!(r.error.raw_os_error(), Some(libc::EEXIST) | Some(libc::EPROTOTYPE)), "{r}");
            assert!(is_open(fd), "refused, yet closed: {r}");
        }
        assert_eq!(engine.stream(id).unwrap().raw_fd(), fd);
        engine.stream(id).unwrap().abort();
    }

    #[test]
    fn a_file_the_reactor_cannot_watch_is_refused_and_left_open() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let fd = null.into_raw_fd();
        let r = engine.open_pipe(again(fd), PipeEnd::Read).unwrap_err();
        assert_eq!((r.error.raw_os_error(), r.syscall), (Some(libc::EPERM), crate::events::Syscall::Register));
        assert!(is_open(fd));
        assert_eq!(engine.open_handles(), 0);
        drop(again(fd));
    }
}
