//! Unix domain stream sockets: asyncio's `create_unix_connection`, `create_unix_server` and
//! `socket.socketpair()`. A connected Unix socket is an ordinary socket [`Stream`] and a listening one an
//! ordinary [`Server`]; only making them differs from TCP. Paths starting with a NUL byte are Linux
//! abstract names (no file); elsewhere they are refused ([`abstract_names_unsupported`]).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::io::Interest;

use crate::connect::ConnectError;
use crate::datagram::{failed, new_socket, DatagramOptions, Endpoint, Opened};
use crate::events::{Kind, Syscall};
use crate::stream::{errno_of, FdKind, Stream};
use crate::{Core, Engine, Server};

/// The socket address of `path` (abstract when it starts with NUL). An empty path is `EINVAL`; see
/// [`path_addr`] for the rest.
pub fn unix_addr(path: &str) -> io::Result<SockAddr> {
    if path.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    path_addr(path)
}

/// The socket address of `path`, empty allowed (a datagram socket's unnamed address). A NUL byte after
/// the first is `EINVAL`: the kernel would end a path there (silently another path), and a leading one
/// already makes the name abstract. Too long a path is `ENAMETOOLONG`.
pub fn path_addr(path: &str) -> io::Result<SockAddr> {
    if path.bytes().skip(1).any(|b| b == 0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    if path.starts_with('\0') && !crate::sys::ABSTRACT_UNIX_NAMES {
        return Err(abstract_names_unsupported());
    }
    SockAddr::unix(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => io::Error::from_raw_os_error(libc::ENAMETOOLONG),
        _ => e,
    })
}

/// Abstract names exist on Linux only; elsewhere a NUL-led path would reach the kernel as an odd file
/// name. Hosts check first (they can name the platform in their own words); this is the engine's guard.
pub fn abstract_names_unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("abstract Unix socket names (a path starting with NUL) are Linux-only; not on {} ({} backend)", std::env::consts::OS, crate::sys::BACKEND),
    )
}

fn stream_socket() -> io::Result<Socket> {
    crate::sys::socket(Domain::UNIX, Type::STREAM, None)
}

/// Connects without blocking. A Unix connect completes at once or fails; a full backlog (`EAGAIN`) is
/// tried again after a pause, as a blocking connect would wait.
async fn connect(addr: &SockAddr) -> io::Result<Socket> {
    let mut pause = Duration::from_millis(1);
    loop {
        let sock = stream_socket()?;
        match sock.connect(addr) {
            Ok(()) => return Ok(sock),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                crate::reactor::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                let fd = crate::register(sock, Interest::WRITABLE)?;
                let _ = fd.writable().await?;
                let sock = fd.into_inner();
                return match sock.take_error()? {
                    None => Ok(sock),
                    Some(e) => Err(e),
                };
            }
            Err(e) => return Err(e),
        }
    }
}

/// Two connected `AF_UNIX` stream sockets, close-on-exec (socket2 sees to that on every system;
/// Python's `socket.socketpair()`).
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
    Ok((a.into(), b.into()))
}

/// Binds and listens on `path`. A socket file already there is replaced, as asyncio does (a server that
/// died leaves its file behind); any other file makes the bind fail with `EADDRINUSE`.
fn listen_socket(path: &str, backlog: i32) -> io::Result<Socket> {
    let addr = unix_addr(path)?;
    if !path.starts_with('\0') {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() {
                std::fs::remove_file(path)?;
            }
        }
    }
    let sock = stream_socket()?;
    sock.bind(&addr)?;
    sock.listen(backlog)?;
    Ok(sock)
}

/// A Unix server's socket file as it was bound: removed at the engine's teardown only if the path
/// still names that file (another server may have replaced it since).
pub(crate) struct SocketFile {
    path: std::path::PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    pub(crate) fn remove(self) {
        use std::os::unix::fs::MetadataExt;
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

// ---- datagram sockets (the endpoint itself is an ordinary `Datagram`) ----

fn datagram_addr(path: &str) -> Result<SockAddr, ConnectError> {
    path_addr(path).map_err(failed(Syscall::Bind))
}

/// asyncio's `create_datagram_endpoint(family=AF_UNIX)`: binds and connects the paths given.
pub(crate) fn open_datagram(opts: &DatagramOptions) -> Result<Opened, ConnectError> {
    let sock = new_socket(Domain::UNIX, opts)?;
    if let Some(Endpoint::Path(p)) = &opts.local {
        // As asyncio: a stale socket file at the path is removed first; any other file is kept
        // (bind then fails with EADDRINUSE).
        if !p.starts_with('\0') {
            use std::os::unix::fs::FileTypeExt;
            if std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(p);
            }
        }
        sock.bind(&datagram_addr(p)?).map_err(failed(Syscall::Bind))?;
    }
    let mut remote = None;
    if let Some(Endpoint::Path(p)) = &opts.remote {
        let a = datagram_addr(p)?;
        if !opts.allow_broadcast {
            sock.connect(&a).map_err(failed(Syscall::DgramConnect))?;
        }
        remote = Some(a);
    }
    Ok((sock, remote))
}

impl Engine {
    /// Removes server `id`'s socket file at `path` if the engine is torn down while the server still
    /// listens (its host's thread ends), as closing it would have (asyncio's `cleanup_socket`); a
    /// server closed before then leaves the file to its host. `path` must name the file now.
    pub fn remove_at_teardown(&self, id: u32, path: &str) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path)?;
        let file = SocketFile { path: path.into(), dev: meta.dev(), ino: meta.ino() };
        if self.server(id).is_some() {
            self.core.socket_files.lock().unwrap().insert(id, file);
        }
        Ok(())
    }

    /// Starts connecting to the Unix socket at `path`; reports [`Kind::Connected`] or
    /// [`Kind::ConnectFailed`] on the returned id, as TCP connects do.
    pub fn connect_unix(&self, path: &str) -> u32 {
        let id = self.core.next_id();
        let core = self.core.clone();
        let addr = unix_addr(path);
        self.core.handle.spawn(async move {
            let result = match addr {
                Ok(addr) => connect(&addr).await,
                Err(e) => Err(e),
            };
            match result.and_then(|s| Stream::start(&core, id, s, FdKind::Socket, true)) {
                Ok(_) => core.queue.push(Kind::Connected, id, 0, 0),
                Err(e) => core.queue.push(Kind::ConnectFailed, id, errno_of(&e), Syscall::Connect as u32),
            }
        });
        id
    }

    /// Listens on the Unix socket `path`; serving starts with `start_serving`, as for TCP.
    pub fn listen_unix(&self, path: &str, backlog: i32) -> io::Result<u32> {
        let id = self.core.next_id();
        listen(&self.core, id, path, backlog)?;
        Ok(id)
    }
}

fn listen(core: &Arc<Core>, id: u32, path: &str, backlog: i32) -> io::Result<Arc<Server>> {
    let sock = listen_socket(path, backlog)?;
    let listener = {
        let _rt = core.handle.enter();
        Arc::new(crate::sys::Listener::register(sock)?)
    };
    Ok(Server::from_listeners(core, id, vec![listener], false))
}

#[cfg(test)]
mod tests {
    use crate::Transport;
    use super::*;
    use crate::pipe::tests::collect;

    fn temp_path(name: &str) -> String {
        format!("{}/protoloop-unix-{}-{name}", std::env::temp_dir().display(), std::process::id())
    }

    #[test]
    fn connect_accept_and_echo_over_a_path_and_an_abstract_name() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        for path in [temp_path("echo"), format!("\0protoloop-test-{}", std::process::id())] {
            if path.starts_with('\0') && !crate::sys::ABSTRACT_UNIX_NAMES {
                let err = engine.listen_unix(&path, 16).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::Unsupported);
                assert!(err.to_string().contains("Linux-only"), "{err}");
                continue;
            }
            let server = engine.listen_unix(&path, 16).unwrap();
            engine.server(server).unwrap().start_serving();
            let client = engine.connect_unix(&path);
            let (recs, _) = collect(&engine, |recs, _| {
                recs.iter().any(|r| r[0] == Kind::Connected as u32) && recs.iter().any(|r| r[0] == Kind::Accepted as u32)
            });
            let accepted = recs.iter().find(|r| r[0] == Kind::Accepted as u32).unwrap()[2];
            engine.stream(accepted).unwrap().start_reading(false);
            engine.stream(client).unwrap().write(&[b"ping"]);
            let (_, payload) = collect(&engine, |_, p| p.len() == 4);
            assert_eq!(payload, b"ping");
            engine.close_server(server);
            engine.stream(client).unwrap().abort();
            engine.stream(accepted).unwrap().abort();
            if !path.starts_with('\0') {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }

    #[test]
    fn connect_failures_are_reported_as_events() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let id = engine.connect_unix(&temp_path("nobody-here"));
        let (recs, _) = collect(&engine, |recs, _| !recs.is_empty());
        assert_eq!(recs[0], [Kind::ConnectFailed as u32, id, libc::ENOENT as u32, Syscall::Connect as u32]);
        let long = "x".repeat(200);
        let id = engine.connect_unix(&long);
        let (recs, _) = collect(&engine, |recs, _| !recs.is_empty());
        assert_eq!(recs[0][..3], [Kind::ConnectFailed as u32, id, libc::ENAMETOOLONG as u32]);
    }

    #[test]
    fn paths_with_an_interior_nul_are_refused() {
        for path in ["/tmp/a\0b", "\0abstract\0tail", "x\0"] {
            assert_eq!(path_addr(path).unwrap_err().raw_os_error(), Some(libc::EINVAL), "{path:?}");
        }
        if crate::sys::ABSTRACT_UNIX_NAMES {
            assert!(unix_addr("\0abstract").unwrap().as_abstract_namespace().is_some());
        } else {
            assert_eq!(unix_addr("\0abstract").unwrap_err().kind(), io::ErrorKind::Unsupported);
        }
        assert_eq!(unix_addr("").unwrap_err().raw_os_error(), Some(libc::EINVAL));
    }

    proptest::proptest! {
        /// Any string: an address whose path is that string, or EINVAL / ENAMETOOLONG; never a panic.
        #[test]
        fn any_path_becomes_its_address_or_a_clear_error(path in "\\PC{0,120}|\0[a-z\0]{0,20}|/tmp/[a-z]{0,8}\0[a-z]{0,8}") {
            match path_addr(&path) {
                Ok(a) => {
                    proptest::prop_assert!(!path.bytes().skip(1).any(|b| b == 0));
                    match a.as_abstract_namespace() {
                        Some(name) => proptest::prop_assert_eq!(name, &path.as_bytes()[1..]),
                        None if path.is_empty() => {}
                        None => proptest::prop_assert_eq!(a.as_pathname().unwrap().as_os_str().as_encoded_bytes(), path.as_bytes()),
                    }
                }
                // Abstract names where there are none (macOS, the portable build): refused as such.
                Err(e) if e.kind() == io::ErrorKind::Unsupported => proptest::prop_assert!(!crate::sys::ABSTRACT_UNIX_NAMES && path.starts_with('\0')),
                Err(e) => proptest::prop_assert!(matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENAMETOOLONG)), "{:?}", e),
            }
        }
    }

    #[test]
    fn a_stale_socket_file_is_replaced_but_a_regular_file_is_not() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let path = temp_path("stale");
        let _ = std::fs::remove_file(&path);
        // A socket file whose server is gone.
        drop(listen_socket(&path, 1).unwrap());
        assert!(std::fs::symlink_metadata(&path).is_ok());
        let id = engine.listen_unix(&path, 1).unwrap();
        engine.close_server(id);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not a socket").unwrap();
        let err = engine.listen_unix(&path, 1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
        std::fs::remove_file(&path).unwrap();
    }
}
