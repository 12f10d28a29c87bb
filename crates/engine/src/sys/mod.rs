//! What differs between operating systems, behind one set of types and functions the transports use.
//!
//! - [`unix`] picks among the descriptor backends: [`linux`]'s fast paths (`accept4`, `pipe2`,
//!   `SOCK_NONBLOCK`, `sendfile(2)`, `recvmmsg` / `sendmmsg`, `splice(2)` for forwards, pidfds,
//!   abstract Unix names), [`portable`]'s calls every POSIX system has (no `splice`: forwards copy;
//!   macOS runs these; on Linux they are compiled too, so their unit tests run here, and the cargo
//!   feature `portable` makes a Linux build use them), and
//!   [`macos`]'s own calls (its 6-argument `sendfile(2)`, kqueue's `EVFILT_PROC`, finding tokio's
//!   kqueue for the host reactor). `unix_io` is the I/O handle over a descriptor (`AsyncFd` + `libc`)
//!   and `unix_process` the child processes of `fork`/`exec`/`waitpid`.
//! - [`windows`]: the same handle over tokio's own Windows types (`TcpStream`, `TcpListener`,
//!   `UdpSocket`, named pipes), `windows_process` children over `tokio::process`. What Windows
//!   cannot have (Unix sockets, descriptors handed over, fd pipes) is an error from [`unavailable`].
//!
//! The transports name neither system: one `Stream`, one `Datagram`, one `Server`, one `TlsConn`,
//! over the [`Io`] handle and its [`Guard`] (a readiness the handle has reported).

#[cfg(unix)]
pub mod portable;

#[cfg(any(target_os = "linux", target_os = "android"))]
pub mod linux;

#[cfg(target_os = "macos")]
pub mod macos;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(unix)]
mod unix_io;
#[cfg(unix)]
pub use unix_io::*;

#[cfg(unix)]
pub(crate) mod unix_process;
#[cfg(unix)]
pub(crate) use unix_process as process;

/// libuv's error numbers on Windows (compiled everywhere: its tests run here).
pub mod uv;

#[cfg(windows)]
pub mod windows;
#[cfg(windows)]
pub use windows::*;

#[cfg(windows)]
pub(crate) mod windows_process;
#[cfg(windows)]
pub(crate) use windows_process as process;

/// Not ready after all: the readiness was cleared (tokio's, or ours on its behalf), wait for the next.
#[derive(Debug)]
pub struct WouldBlock;

/// The calls a transport makes once its handle ([`Io`]) reported readiness ([`Guard`]); each backend
/// implements them for its guard.
pub trait GuardOps {
    /// Reads up to `len` bytes into `ptr`.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be valid for writes for the duration of the call.
    unsafe fn try_read(&mut self, ptr: *mut u8, len: usize) -> Result<std::io::Result<usize>, WouldBlock>;
    fn try_writev(&mut self, iov: &[std::io::IoSlice<'_>]) -> Result<std::io::Result<usize>, WouldBlock>;
    /// `send` of `data` (`MSG_NOSIGNAL` where there is one): a TLS session's socket.
    fn try_send(&mut self, data: &[u8]) -> Result<std::io::Result<usize>, WouldBlock>;
    /// Up to `len` bytes of `file` from `offset` onto the handle (where the file position ends up is
    /// the caller's to set: Windows' positioned read moves it).
    fn try_sendfile(&mut self, file: &std::fs::File, offset: u64, len: usize) -> Result<std::io::Result<usize>, WouldBlock>;
    /// `f` on the socket's number (a datagram socket's batch receive).
    fn try_raw<R>(&mut self, f: impl FnOnce(RawFd) -> std::io::Result<R>) -> Result<std::io::Result<R>, WouldBlock>;
}

/// The error for a feature this operating system does not have, naming both: `feature` is plural and
/// says what (`"Unix sockets"`), `os` is `std::env::consts::OS` where the call happens (a parameter so
/// that the message can be tested anywhere).
pub fn unavailable_on(feature: &str, os: &str) -> std::io::Error {
    let os = match os {
        "windows" => "Windows",
        "macos" => "macOS",
        "linux" => "Linux",
        other => other,
    };
    std::io::Error::new(std::io::ErrorKind::Unsupported, format!("{feature} are not available on {os}"))
}

/// [`unavailable_on`] this operating system.
pub fn unavailable(feature: &str) -> std::io::Error {
    unavailable_on(feature, std::env::consts::OS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unavailable_names_the_feature_and_the_platform() {
        let e = super::unavailable_on("Unix sockets", "windows");
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        assert_eq!(e.to_string(), "Unix sockets are not available on Windows");
        assert_eq!(super::unavailable_on("pidfds", "freebsd").to_string(), "pidfds are not available on freebsd");
        assert!(super::unavailable("x").to_string().starts_with("x are not available on "));
    }
}
