//! Panics and the Node-API boundary. Every exported function is `#[napi(catch_unwind)]`: a panic that
//! escapes one (a bug, since bad input is refused with an error before it can panic) becomes a
//! JavaScript `Error` thrown from that call, never an abort of the whole process, which is what a panic
//! unwinding into Node's C frames is. The bare Node-API functions (`write`) catch the same way.

use napi_derive::napi;

/// Panics with `message`: for the tests that prove the boundary holds (not part of the API).
#[napi(js_name = "_panicForTest", catch_unwind)]
pub fn panic_for_test(message: String) {
    panic!("{message}");
}
