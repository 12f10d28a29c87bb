//! Listening sockets and the serving switch of asyncio's `Server`.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use protoloop_engine::ListenOptions;

use crate::{engine, neg_errno};

/// Binds and listens on every address of `hosts` (empty: all interfaces). Returns the server id or a
/// negative errno. Serving starts with `startServing`.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn listen(
    hosts: Vec<String>,
    port: u32,
    family: i32,
    backlog: i32,
    reuse_address: bool,
    reuse_port: bool,
    keep_alive: bool,
) -> Result<i64> {
    let opts = ListenOptions { family, backlog, reuse_address, reuse_port, keep_alive };
    Ok(match engine()?.listen(&hosts, port as u16, &opts) {
        Ok(id) => id as i64,
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => return Err(Error::from_reason(e.to_string())),
        Err(e) => neg_errno(&e),
    })
}

/// Serves on listening socket `fd`, which the engine owns from now on. Returns the server id or a
/// refusal (`convert::refused`), which leaves the descriptor open. (Windows: `sys::windows`.)
#[cfg(unix)]
#[napi(catch_unwind)]
pub fn listen_on(fd: i32, keep_alive: bool) -> Result<i64> {
    let engine = engine()?;
    if let Err(e) = crate::sys::check_fd(fd, true) {
        return Ok(crate::convert::not_adoptable(e));
    }
    // SAFETY: `check_fd` proved the descriptor an open socket; the caller hands it over and gets it
    // back unclosed if the engine refuses it.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    Ok(match engine.listen_on(owned, keep_alive) {
        Ok(id) => id as i64,
        Err(r) => crate::convert::refused(&r),
    })
}

#[napi(catch_unwind)]
pub fn server_fds(id: u32) -> Result<Vec<i32>> {
    // A Windows socket's handle fits an i32 as every handle does (they are small, 4-aligned numbers).
    Ok(engine()?.server(id).map(|s| s.fds().into_iter().map(|fd| fd as i32).collect()).unwrap_or_default())
}

#[napi(catch_unwind)]
pub fn start_serving(id: u32) -> Result<()> {
    if let Some(s) = engine()?.server(id) {
        s.start_serving();
    }
    Ok(())
}

#[napi(catch_unwind)]
pub fn is_serving(id: u32) -> Result<bool> {
    Ok(engine()?.server(id).is_some_and(|s| s.is_serving()))
}

#[napi(catch_unwind)]
pub fn close_server(id: u32) -> Result<()> {
    engine()?.close_server(id);
    Ok(())
}
