//! What every kind of transport (stream, pipe, TLS connection, datagram endpoint) does alike, by id:
//! one id space in the engine, so one set of calls serves them all.

use std::sync::Arc;

use napi::bindgen_prelude::Result;
use napi_derive::napi;
use protoloop_engine::Transport;

use crate::engine;

fn transport(id: u32) -> Option<Arc<dyn Transport>> {
    engine().ok()?.transport(id)
}

/// Does `f` to transport `id` if it is open (a call on a closed one does nothing, as asyncio's).
fn with(id: u32, f: impl FnOnce(&dyn Transport)) {
    if let Some(t) = transport(id) {
        f(&*t)
    }
}

/// asyncio's `close`: stops reading, sends what is queued, then closes.
#[napi(catch_unwind)]
pub fn close(id: u32) {
    with(id, |t| t.close())
}

/// asyncio's `abort`: closes now, dropping what is queued.
#[napi(catch_unwind)]
pub fn abort(id: u32) {
    with(id, |t| t.abort())
}

/// Starts the engine's reader once the transport's protocol exists (`connectionMade` ran), as asyncio
/// adds its reader then: a plain stream (with `target_mode`, only into lent memory, see
/// `setReadTarget`) or a TLS connection (which decrypts into the engine's memory, so `target_mode` is
/// ignored). A datagram endpoint reads from its opening on.
#[napi(catch_unwind)]
pub fn start_reading(id: u32, target_mode: bool) -> Result<()> {
    let engine = engine()?;
    if let Some(s) = engine.stream(id) {
        s.start_reading(target_mode);
    } else if let Some(t) = engine.tls(id) {
        t.start_reading();
    }
    Ok(())
}

/// asyncio's `pause_reading`: the engine reads no more until `resumeReading`.
#[napi(catch_unwind)]
pub fn pause_reading(id: u32) {
    with(id, |t| t.pause_reading())
}

/// asyncio's `resume_reading`.
#[napi(catch_unwind)]
pub fn resume_reading(id: u32) {
    with(id, |t| t.resume_reading())
}

/// The transport's descriptor, or -1 once it is gone.
#[napi(catch_unwind)]
pub fn fd(id: u32) -> i32 {
    // A Windows socket's handle fits an i32 as every handle does (they are small, 4-aligned numbers).
    transport(id).map_or(-1, |t| t.raw_fd() as i32)
}
