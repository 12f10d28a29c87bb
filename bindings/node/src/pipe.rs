//! Pipe transports: a descriptor becomes a pipe stream; everything after that (write, close,
//! pausing) goes through the stream functions, since a pipe end is a stream of the engine.

use std::os::fd::{FromRawFd, OwnedFd};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use protoloop_engine::pipe::pipe_file_type;
use protoloop_engine::PipeEnd;

use crate::engine;

/// Makes a pipe transport of `fd`, which the engine owns from now on (the read end when `write` is
/// false). Returns the stream id, or a refusal (`convert::refused`: `EINVAL` for a regular file,
/// `EPERM` from the reactor for `/dev/null`); refused, the descriptor is left open, the caller's.
#[napi(catch_unwind)]
pub fn open_pipe(fd: i32, write: bool) -> Result<i64> {
    let engine = engine()?;
    if let Err(e) = pipe_file_type(fd) {
        return Ok(crate::convert::not_adoptable(e));
    }
    // SAFETY: `pipe_file_type` proved the descriptor open; the caller hands it over and gets it back
    // unclosed if the engine refuses it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let end = if write { PipeEnd::Write } else { PipeEnd::Read };
    Ok(match engine.open_pipe(owned, end) {
        Ok(id) => id as i64,
        Err(r) => crate::convert::refused(&r),
    })
}
