//! Stream transports: connect, adopt a descriptor, write, half-close, close, read pausing, stats.

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use protoloop_engine::{ConnectOptions, FdKind, Stream};

use crate::{engine, neg_errno};

fn stream(id: u32) -> Option<std::sync::Arc<Stream>> {
    engine().ok()?.stream(id)
}

/// Starts a TCP connect; returns the id that a `Connected` or `ConnectFailed` event reports on.
#[napi]
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
        happy_eyeballs_delay: happy_eyeballs_delay_ms.map(|ms| Duration::from_secs_f64(ms / 1000.0)),
        interleave: interleave.map(|n| n as usize),
    };
    Ok(engine()?.connect(host, port as u16, opts))
}

/// Makes a stream transport of descriptor `fd`, which the engine owns from now on. `pipe` selects
/// pipe semantics (EOF by closing); `readable` starts a reader. Returns the id or a negative errno.
#[napi]
pub fn adopt(fd: i32, pipe: bool, readable: bool) -> Result<i64> {
    if let Err(e) = crate::socket::check_fd(fd, !pipe) {
        return Ok(neg_errno(&e));
    }
    // SAFETY: `check_fd` proved the descriptor open; the caller hands it over, as asyncio's `sock=`.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let kind = if pipe { FdKind::Pipe } else { FdKind::Socket };
    Ok(match engine()?.adopt(owned, kind, readable) {
        Ok(id) => id as i64,
        Err(e) => neg_errno(&e),
    })
}

/// Sends `data`; returns how many bytes the kernel took at once (the rest is queued).
#[napi]
pub fn write(id: u32, data: &[u8]) -> u32 {
    stream(id).map_or(0, |s| s.write(&[data]) as u32)
}

/// Sends several buffers with one vectored write where possible.
#[napi]
pub fn writev(id: u32, data: Vec<Uint8Array>) -> u32 {
    let bufs: Vec<&[u8]> = data.iter().map(|b| &b[..]).collect();
    stream(id).map_or(0, |s| s.write(&bufs) as u32)
}

#[napi]
pub fn write_eof(id: u32) {
    if let Some(s) = stream(id) {
        s.write_eof();
    }
}

#[napi]
pub fn close(id: u32) {
    if let Some(s) = stream(id) {
        s.close();
    }
}

#[napi]
pub fn abort(id: u32) {
    if let Some(s) = stream(id) {
        s.abort();
    }
}

#[napi]
pub fn pause_reading(id: u32) {
    if let Some(s) = stream(id) {
        s.pause_reading();
    }
}

#[napi]
pub fn resume_reading(id: u32) {
    if let Some(s) = stream(id) {
        s.resume_reading();
    }
}

/// The stream's descriptor, or -1 once it is gone.
#[napi]
pub fn stream_fd(id: u32) -> i32 {
    stream(id).map_or(-1, |s| s.raw_fd())
}

/// `[bytesRead, bytesWritten, bytesCopiedOnReceive]`, or null once the stream is gone.
#[napi]
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
