//! Unix domain sockets: connect and listen on paths (or abstract names), and `socketpair()`.
//! Once made, they are ordinary streams and servers.

use std::os::fd::IntoRawFd;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{engine, neg_errno};

/// Starts connecting to `path`; returns the id that a `Connected` or `ConnectFailed` event reports on.
#[napi(catch_unwind)]
pub fn connect_unix(path: String) -> Result<u32> {
    Ok(engine()?.connect_unix(&path))
}

/// Listens on `path`: the server id, or a negative errno.
#[napi(catch_unwind)]
pub fn listen_unix(path: String, backlog: i32) -> Result<i64> {
    Ok(match engine()?.listen_unix(&path, backlog) {
        Ok(id) => id as i64,
        Err(e) => neg_errno(&e),
    })
}

/// Server `id` removes its socket file at `path` if this thread's engine is torn down (a worker that
/// ends) while the server still listens; a file that is gone or replaced by then stays as it is.
#[napi]
pub fn remove_at_teardown(id: u32, path: String) -> Result<()> {
    // A path already gone has nothing to remove.
    let _ = engine()?.remove_at_teardown(id, &path);
    Ok(())
}

/// `[a, b]`: two connected `AF_UNIX` stream descriptors the caller owns; `[-errno]` on failure.
#[napi(catch_unwind)]
pub fn socketpair() -> Result<Vec<i64>> {
    Ok(match protoloop_engine::unix::socketpair() {
        Ok((a, b)) => vec![a.into_raw_fd() as i64, b.into_raw_fd() as i64],
        Err(e) => vec![neg_errno(&e)],
    })
}

/// Whether a path starting with NUL names an abstract socket: on Linux, unless the addon was built
/// with the engine's portable backend (which stands in for macOS, where there are none).
#[napi]
pub fn abstract_unix_names() -> bool {
    protoloop_engine::sys::ABSTRACT_UNIX_NAMES
}
