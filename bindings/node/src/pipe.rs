//! Pipe transports: a descriptor becomes a pipe stream; everything after that (write, close,
//! pausing) goes through the stream functions, since a pipe end is a stream of the engine.

use std::os::fd::{FromRawFd, OwnedFd};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use protoloop_engine::pipe::pipe_file_type;
use protoloop_engine::PipeEnd;

use crate::{engine, neg_errno};

/// Makes a pipe transport of `fd`, which the engine owns from now on (the read end when `write` is
/// false). Returns the stream id, or a negative errno (`-EINVAL` for a regular file: the descriptor is
/// then left open, as the caller still owns it).
#[napi]
pub fn open_pipe(fd: i32, write: bool) -> Result<i64> {
    if let Err(e) = pipe_file_type(fd) {
        return Ok(neg_errno(&e));
    }
    // SAFETY: `pipe_file_type` proved the descriptor open; the caller hands it over.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let end = if write { PipeEnd::Write } else { PipeEnd::Read };
    Ok(match engine()?.open_pipe(owned, end) {
        Ok(id) => id as i64,
        Err(e) => neg_errno(&e),
    })
}
