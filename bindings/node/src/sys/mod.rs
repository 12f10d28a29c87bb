//! What differs between operating systems on this side: how a socket number is borrowed and asked for
//! its options, the socket constants JavaScript sees, where big `allocBuffer` slabs come from, and (on
//! Windows) the functions whose features cannot exist there, which throw an `Error` naming Windows.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// What `requireFeature` asks about: the features some systems do not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feature {
    /// Unix domain sockets (streams, servers, datagram endpoints).
    Unix,
    /// A socket handed over by its descriptor (`sock=`, `connectAcceptedSocket`).
    Sock,
    /// A pipe handed over by its descriptor (`connectReadPipe`, `connectWritePipe`).
    Pipes,
    /// `socketpair()`.
    Socketpair,
    /// `SO_REUSEPORT` (`reusePort`).
    ReusePort,
}

/// Throws the `Error` naming this platform when it lacks `feature` (`'unix'`, `'sock'`, `'pipes'`,
/// `'socketpair'`, `'reusePort'`), so that TypeScript can ask before its own checks of a descriptor (which would fail
/// for reasons that are not the point) and pass the engine's words on unchanged.
#[napi(catch_unwind)]
pub fn require_feature(feature: String) -> Result<()> {
    let f = match feature.as_str() {
        "unix" => Feature::Unix,
        "sock" => Feature::Sock,
        "pipes" => Feature::Pipes,
        "socketpair" => Feature::Socketpair,
        "reusePort" => Feature::ReusePort,
        other => return Err(Error::new(Status::InvalidArg, format!("requireFeature: no feature named {other:?}"))),
    };
    match missing(f) {
        Some(what) => Err(Error::from_reason(protoloop_engine::sys::unavailable(what).to_string())),
        None => Ok(()),
    }
}
