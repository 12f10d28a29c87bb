//! Numbers from JavaScript into the engine's types, refusing what does not fit with an `Error` that
//! names the argument (the TypeScript layer checks first; this keeps a bad number from ever panicking).

use std::time::Duration;

use napi::bindgen_prelude::*;

/// `ms` milliseconds, the JavaScript option `name`, as a `Duration`.
pub(crate) fn duration(name: &str, ms: f64) -> Result<Duration> {
    protoloop_engine::convert::duration_from_ms(ms).ok_or_else(|| {
        Error::new(Status::InvalidArg, format!("The value of \"{name}\" is out of range. It must be a finite number of milliseconds >= 0. Received {ms}"))
    })
}

/// `duration` of an optional value.
pub(crate) fn opt_duration(name: &str, ms: Option<f64>) -> Result<Option<Duration>> {
    ms.map(|ms| duration(name, ms)).transpose()
}

/// A refused adoption as JavaScript receives it (Unix: Windows adopts no descriptors): `-(errno + syscall * 2^32)`, decoded by `ts/errors.ts`
/// (`adoptionError`). The descriptor is still the caller's, open.
#[cfg(unix)]
pub(crate) fn refused(r: &protoloop_engine::Refused) -> i64 {
    crate::neg_errno(&r.error) - ((r.syscall as i64) << 32)
}

/// A descriptor that failed the checks before adoption (`fstat`), as [`refused`] reports it.
#[cfg(unix)]
pub(crate) fn not_adoptable(e: std::io::Error) -> i64 {
    refused(&protoloop_engine::Refused { error: e, syscall: protoloop_engine::events::Syscall::Fstat })
}
