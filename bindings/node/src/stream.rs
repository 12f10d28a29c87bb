//! Stream transports: connect, adopt a descriptor, write, half-close, forward, sendfile, stats (close, abort and read pausing are every transport's: transport.rs).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use protoloop_engine::{ConnectOptions, Stream};

use crate::engine;

fn stream(id: u32) -> Option<std::sync::Arc<Stream>> {
    engine().ok()?.stream(id)
}

/// Starts a TCP connect; returns the id that a `Connected` or `ConnectFailed` event reports on.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn connect(
    host: String,
    port: u32,
    family: i32,
    local_host: Option<String>,
    local_port: u32,
    happy_eyeballs_delay_ms: Option<f64>,
    interleave: Option<u32>,
) -> Result<u32> {
    let opts = ConnectOptions {
        family,
        local_addr: local_host.map(|h| (h, local_port as u16)),
        happy_eyeballs_delay: crate::convert::opt_duration("options.happyEyeballsDelayMs", happy_eyeballs_delay_ms)?,
        interleave: interleave.map(|n| n as usize),
    };
    Ok(engine()?.connect(host, port as u16, opts))
}

/// Makes a stream transport of descriptor `fd`, which the engine owns from now on. `pipe` selects
/// pipe semantics (EOF by closing); `readable` starts a reader. Returns the id or a refusal
/// (`convert::refused`), which leaves the descriptor open. (Windows: `sys::windows`.)
#[cfg(unix)]
#[napi(catch_unwind)]
pub fn adopt(fd: i32, pipe: bool, readable: bool) -> Result<i64> {
    let engine = engine()?;
    if let Err(e) = crate::sys::check_fd(fd, !pipe) {
        return Ok(crate::convert::not_adoptable(e));
    }
    // SAFETY: `check_fd` proved the descriptor open; the caller hands it over, as asyncio's `sock=`,
    // and gets it back unclosed if the engine refuses it.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let kind = if pipe { protoloop_engine::FdKind::Pipe } else { protoloop_engine::FdKind::Socket };
    Ok(match engine.adopt(owned, kind, readable) {
        Ok(id) => id as i64,
        Err(r) => crate::convert::refused(&r),
    })
}

/// Returns `write(id, data)`, which sends `data` and returns how many bytes the kernel took at once
/// (the rest is queued). It is a bare Node-API function because it is the hot path: a `#[napi]`
/// function with a `&[u8]` argument opens and closes napi-rs's borrow bookkeeping (a global lock and
/// map) on every call, and a write needs none of it: the bytes are only read before it returns, and no
/// JavaScript runs meanwhile.
#[napi(ts_return_type = "(id: number, data: Uint8Array) => number", catch_unwind)]
pub fn write_function(env: Env) -> Result<crate::RawValue> {
    let mut f = std::ptr::null_mut();
    // SAFETY: a plain function with a static name and callback; no data pointer.
    check_status!(unsafe { sys::napi_create_function(env.raw(), c"write".as_ptr(), 5, Some(write_raw), std::ptr::null_mut(), &mut f) })?;
    Ok(crate::RawValue(f))
}

unsafe extern "C" fn write_raw(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    const OK: sys::napi_status = sys::Status::napi_ok;
    let mut argc = 2;
    let mut argv = [std::ptr::null_mut(); 2];
    let (mut id, mut ty, mut len, mut data) = (0u32, 0, 0usize, std::ptr::null_mut());
    // SAFETY: Node-API calls on the JavaScript thread with this callback's env and info, writing only
    // into the locals given; the typed array's memory is valid and unchanged until we return.
    unsafe {
        if sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), std::ptr::null_mut(), std::ptr::null_mut()) != OK
            || argc < 2
            || sys::napi_get_value_uint32(env, argv[0], &mut id) != OK
        {
            sys::napi_throw_type_error(env, std::ptr::null(), c"write: the \"id\" argument must be a number".as_ptr());
            return std::ptr::null_mut();
        }
        if sys::napi_get_typedarray_info(env, argv[1], &mut ty, &mut len, &mut data, std::ptr::null_mut(), std::ptr::null_mut()) != OK
            || ty != sys::TypedarrayType::uint8_array
        {
            sys::napi_throw_type_error(env, std::ptr::null(), c"write: the \"data\" argument must be a Uint8Array".as_ptr());
            return std::ptr::null_mut();
        }
        let bytes = if len == 0 { &[][..] } else { std::slice::from_raw_parts(data as *const u8, len) };
        let sent = std::panic::catch_unwind(|| stream(id).map_or(0, |s| s.write(&[bytes]) as u32));
        let mut out = std::ptr::null_mut();
        match sent {
            Ok(n) => sys::napi_create_uint32(env, n, &mut out),
            Err(_) => sys::napi_throw_error(env, std::ptr::null(), c"protoloop: internal error in write".as_ptr()),
        };
        out
    }
}

/// Sends several buffers with one vectored write where possible.
#[napi(catch_unwind)]
pub fn writev(id: u32, data: Vec<Uint8Array>) -> u32 {
    let bufs: Vec<&[u8]> = data.iter().map(|b| &b[..]).collect();
    stream(id).map_or(0, |s| s.write(&bufs) as u32)
}

#[napi(catch_unwind)]
pub fn write_eof(id: u32) {
    if let Some(s) = stream(id) {
        s.write_eof();
    }
}

/// `[bytesRead, bytesWritten, bytesCopiedOnReceive]`, or null once the stream is gone.
#[napi(catch_unwind)]
pub fn stream_stats(id: u32) -> Option<Vec<f64>> {
    use std::sync::atomic::Ordering::Relaxed;
    stream(id).map(|s| {
        vec![
            s.stats.bytes_read.load(Relaxed) as f64,
            s.stats.bytes_written.load(Relaxed) as f64,
            s.stats.bytes_copied_on_receive.load(Relaxed) as f64,
        ]
    })
}

/// Forwards everything stream transport `id` reads to stream transport `to` inside the engine, plain or
/// TLS on either side (see `protoloop_engine::forward`). 0, or why it was refused (`ForwardRefused`: 1 a
/// transport is gone, 2 `id` already forwards, 3 `id` already read EOF, 4 `to` takes no more bytes).
#[napi(catch_unwind)]
pub fn forward_to(id: u32, to: u32, high: f64, low: f64) -> Result<u32> {
    Ok(engine()?.forward_to(id, to, high as usize, low as usize).map_or_else(|r| r as u32, |()| 0))
}

/// Starts `sendfile(2)` of `count` bytes (null: to the end) of file `fd` from `offset` on stream `id`.
/// The engine works on its own duplicate of `fd`. Returns 0, or a negative errno. (Windows:
/// `sys::windows`.)
#[cfg(unix)]
#[napi(catch_unwind)]
pub fn sendfile(id: u32, fd: i32, offset: f64, count: Option<f64>) -> i64 {
    let Some(s) = stream(id) else { return -(libc::EPIPE as i64) };
    if let Err(e) = crate::sys::check_fd(fd, false) {
        return crate::neg_errno(&e);
    }
    // SAFETY: `fd` is open (checked); the duplicate is ours to own and close.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return crate::neg_errno(&std::io::Error::last_os_error());
    }
    // SAFETY: `dup` was just created and nothing else owns it.
    let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(dup) };
    s.sendfile(file, offset as u64, count.map(|c| c as u64));
    0
}

/// Sets the file position of `fd` (`lseek(fd, pos, SEEK_SET)`): the `sendfile` fallback leaves it
/// where asyncio does. Returns the position or a negative errno. (Windows: `sys::windows`.)
#[cfg(unix)]
#[napi(catch_unwind)]
pub fn seek(fd: i32, pos: f64) -> i64 {
    // SAFETY: lseek(2) takes no memory; a bad descriptor only makes it fail.
    let r = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_SET) };
    if r < 0 {
        crate::neg_errno(&std::io::Error::last_os_error())
    } else {
        r as i64
    }
}
