//! The host reactor in Node's event loop: libuv watches the engine's epoll descriptor, and when it is
//! readable the engine takes a turn on the JavaScript thread and its events go to JavaScript at once,
//! in the same loop iteration, without a wake-up across threads (`protoloop_engine::reactor`).

use std::cell::Cell;
use std::ffi::{c_int, c_void};

use napi::bindgen_prelude::*;
use napi::sys;

// libuv, as the Node executable exports it to addons.
extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_poll_init(lp: *mut sys::uv_loop_s, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(handle: *mut c_void, events: c_int, cb: unsafe extern "C" fn(*mut c_void, c_int, c_int)) -> c_int;
    fn uv_unref(handle: *mut c_void);
}
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;

/// What the poll callback needs, made once in `watch` on the JavaScript thread and used only there.
struct Host {
    env: sys::napi_env,
    on_events: sys::napi_ref,
    context: sys::napi_async_context,
}

thread_local! {
    static HOST: Cell<Option<&'static Host>> = const { Cell::new(None) };
    /// Set while the engine takes a turn: the events queued meanwhile (by tasks, or by JavaScript
    /// running inside the turn) are delivered before the turn ends or right after it, so the queue's
    /// wake-up (a threadsafe-function call) is not needed for them.
    static IN_TURN: Cell<bool> = const { Cell::new(false) };
}

/// Whether a push to the event queue on this thread is part of a turn (see `IN_TURN`).
pub(crate) fn in_turn() -> bool {
    IN_TURN.with(|t| t.get())
}

/// Watches `fd` in the loop of `env`, turning the engine and calling `on_events` with each batch. The
/// watch does not keep the process alive: the threadsafe function's reference does that already.
pub(crate) fn watch(env: &Env, fd: c_int, on_events: sys::napi_value) -> Result<()> {
    let raw = env.raw();
    let mut on_events_ref = std::ptr::null_mut();
    let mut name = std::ptr::null_mut();
    let mut context = std::ptr::null_mut();
    let mut lp = std::ptr::null_mut();
    // SAFETY: plain Node-API calls on the JavaScript thread with its env; every out-pointer is valid.
    unsafe {
        check_status!(sys::napi_create_reference(raw, on_events, 1, &mut on_events_ref))?;
        check_status!(sys::napi_create_string_utf8(raw, c"protoloop".as_ptr(), 9, &mut name))?;
        check_status!(sys::napi_async_init(raw, std::ptr::null_mut(), name, &mut context))?;
        check_status!(sys::napi_get_uv_event_loop(raw, &mut lp))?;
    }
    let host: &'static Host = Box::leak(Box::new(Host { env: raw, on_events: on_events_ref, context }));
    HOST.with(|h| h.set(Some(host)));
    // SAFETY: the handle's memory is libuv's size for a poll handle, leaked: the watch lasts as long
    // as the process. `lp` is this thread's loop, and the calls are made on its thread.
    unsafe {
        let handle = Box::leak(vec![0u64; uv_handle_size(UV_POLL).div_ceil(8)].into_boxed_slice()).as_mut_ptr() as *mut c_void;
        let rc = uv_poll_init(lp, handle, fd);
        if rc != 0 {
            return Err(Error::from_reason(format!("protoloop: uv_poll_init failed ({rc})")));
        }
        uv_unref(handle);
        let rc = uv_poll_start(handle, UV_READABLE, on_readable);
        if rc != 0 {
            return Err(Error::from_reason(format!("protoloop: uv_poll_start failed ({rc})")));
        }
    }
    Ok(())
}

unsafe extern "C" fn on_readable(_handle: *mut c_void, status: c_int, _events: c_int) {
    if status < 0 {
        return;
    }
    let Ok(engine) = crate::engine() else { return };
    let Some(host) = HOST.with(|h| h.get()) else { return };
    // JavaScript runs inside the turn: what its calls wake runs in this turn too (see
    // `Reactor::turn_with`).
    IN_TURN.with(|t| t.set(true));
    engine.turn(|| {
        let queued = !engine.queue().is_empty();
        if queued {
            // SAFETY: libuv calls this on the JavaScript thread, where `host` was made.
            unsafe { deliver(host) };
        }
        queued
    });
    IN_TURN.with(|t| t.set(false));
    // Events left when the turn stopped at its bound go to JavaScript in the next turn, after the
    // rest of Node's loop has had its go (delivered here, what JavaScript woke would each cost a
    // wake-up of the runtime).
    if !engine.queue().is_empty() {
        engine.wake();
    }
}

/// Calls `on_events` with the queued batch as Node calls into JavaScript from its own I/O callbacks:
/// in a handle scope, through `napi_make_callback` so that microtasks and `process.nextTick`
/// callbacks run after it, with an exception going to `uncaughtException`.
unsafe fn deliver(host: &Host) {
    let env = host.env;
    let mut scope = std::ptr::null_mut();
    // SAFETY (whole block): Node-API calls on the JavaScript thread, inside the handle scope opened
    // first and closed last; every out-pointer is valid.
    unsafe {
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return;
        }
        let mut func = std::ptr::null_mut();
        let mut recv = std::ptr::null_mut();
        sys::napi_get_reference_value(env, host.on_events, &mut func);
        // napi_make_callback wants an object as `this`.
        sys::napi_get_global(env, &mut recv);
        if let Ok((head, payload)) = crate::batch_buffers(&Env::from_raw(env)) {
            let argv = [head, payload];
            let mut result = std::ptr::null_mut();
            let status = sys::napi_make_callback(env, host.context, recv, func, 2, argv.as_ptr(), &mut result);
            if status == sys::Status::napi_pending_exception {
                let mut exc = std::ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut exc);
                sys::napi_fatal_exception(env, exc);
            }
        }
        sys::napi_close_handle_scope(env, scope);
    }
}
