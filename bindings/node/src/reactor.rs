//! The host reactor in Node's event loop: libuv watches the engine's epoll (macOS: kqueue) descriptor, and when it is
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
    fn uv_close(handle: *mut c_void, cb: unsafe extern "C" fn(*mut c_void));
    fn uv_handle_set_data(handle: *mut c_void, data: *mut c_void);
    fn uv_handle_get_data(handle: *const c_void) -> *mut c_void;
}
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;

/// What the poll callback needs, made in `watch` on the JavaScript thread and used only there. It is
/// the poll handle's `data` until the handle is closed.
struct Host {
    env: sys::napi_env,
    on_events: sys::napi_ref,
    context: sys::napi_async_context,
    /// Set by `Watch::close`; run by the close callback, once libuv is done with the handle.
    closed: Option<Box<dyn FnOnce()>>,
}

/// The engine's descriptor watched in a thread's libuv loop, until `close`.
pub(crate) struct Watch {
    /// A `uv_poll_t`, allocated by `alloc_handle`, freed by `on_closed`.
    handle: *mut c_void,
}

thread_local! {
    /// Set while the engine takes a turn: the events queued meanwhile (by tasks, or by JavaScript
    /// running inside the turn) are delivered before the turn ends or right after it, so the queue's
    /// wake-up (a threadsafe-function call) is not needed for them.
    static IN_TURN: Cell<bool> = const { Cell::new(false) };
}

/// Whether a push to the event queue on this thread is part of a turn (see `IN_TURN`).
pub(crate) fn in_turn() -> bool {
    IN_TURN.with(|t| t.get())
}

/// Memory for one poll handle, libuv's size for it.
fn alloc_handle() -> *mut c_void {
    // SAFETY: uv_handle_size only reads a table.
    let words = unsafe { uv_handle_size(UV_POLL) }.div_ceil(8);
    Box::into_raw(vec![0u64; words].into_boxed_slice()) as *mut c_void
}

/// # Safety
/// `handle` came from `alloc_handle` and libuv no longer knows it (closed, or never initialized).
unsafe fn free_handle(handle: *mut c_void) {
    // SAFETY: as `alloc_handle` made it, with the same length.
    unsafe {
        let words = uv_handle_size(UV_POLL).div_ceil(8);
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(handle as *mut u64, words)));
    }
}

/// Watches `fd` in the loop of `env` (this thread's), turning the engine and calling `on_events` with
/// each batch. The watch does not keep the loop alive: the threadsafe function's reference does that.
pub(crate) fn watch(env: &Env, fd: c_int, on_events: sys::napi_value) -> Result<Watch> {
    let raw = env.raw();
    let mut lp = std::ptr::null_mut();
    // SAFETY: a Node-API call on the JavaScript thread with its env; the out-pointer is valid.
    unsafe { check_status!(sys::napi_get_uv_event_loop(raw, &mut lp))? };
    let handle = alloc_handle();
    // SAFETY: `lp` is this thread's loop and the call is made on its thread; on failure libuv has not
    // taken the handle, so its memory is ours to free.
    let rc = unsafe { uv_poll_init(lp, handle, fd) };
    if rc != 0 {
        unsafe { free_handle(handle) };
        return Err(Error::from_reason(format!("protoloop: uv_poll_init failed ({rc})")));
    }
    let mut host = Host { env: raw, on_events: std::ptr::null_mut(), context: std::ptr::null_mut(), closed: None };
    let mut name = std::ptr::null_mut();
    // SAFETY: plain Node-API calls on the JavaScript thread with its env; every out-pointer is valid.
    let made = unsafe {
        check_status!(sys::napi_create_reference(raw, on_events, 1, &mut host.on_events))
            .and_then(|_| check_status!(sys::napi_create_string_utf8(raw, c"protoloop".as_ptr(), 9, &mut name)))
            .and_then(|_| check_status!(sys::napi_async_init(raw, std::ptr::null_mut(), name, &mut host.context)))
    };
    // SAFETY: the handle is initialized; it owns `host` from here until `on_closed`.
    unsafe { uv_handle_set_data(handle, Box::into_raw(Box::new(host)) as *mut c_void) };
    let watch = Watch { handle };
    // SAFETY: on the loop's thread, with the handle initialized above.
    let started = made.and_then(|_| match unsafe {
        uv_unref(handle);
        uv_poll_start(handle, UV_READABLE, on_readable)
    } {
        0 => Ok(()),
        rc => Err(Error::from_reason(format!("protoloop: uv_poll_start failed ({rc})"))),
    });
    match started {
        Ok(()) => Ok(watch),
        Err(e) => {
            watch.close(Box::new(|| {}));
            Err(e)
        }
    }
}

impl Watch {
    /// Stops watching and closes the handle; `closed` runs once libuv is done with it (in a later
    /// iteration of the loop), when its memory has been freed. Call it on the watch's thread, while
    /// its environment is alive.
    pub(crate) fn close(self, closed: Box<dyn FnOnce()>) {
        // SAFETY: on the loop's thread; the handle's data is the `Host` that `watch` gave it, whose
        // Node-API objects are released here with the env they were made with (or were never made).
        unsafe {
            let host = &mut *(uv_handle_get_data(self.handle) as *mut Host);
            if !host.on_events.is_null() {
                sys::napi_delete_reference(host.env, host.on_events);
            }
            if !host.context.is_null() {
                sys::napi_async_destroy(host.env, host.context);
            }
            host.closed = Some(closed);
            uv_close(self.handle, on_closed);
        }
    }
}

unsafe extern "C" fn on_closed(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle: its `Host` and memory are ours again, freed once.
    let host = unsafe {
        let host = Box::from_raw(uv_handle_get_data(handle) as *mut Host);
        free_handle(handle);
        host
    };
    if let Some(closed) = host.closed {
        closed();
    }
}

unsafe extern "C" fn on_readable(handle: *mut c_void, status: c_int, _events: c_int) {
    // libuv calls this from C, where a panic would abort the process; as a last resort it is reported
    // and the loop goes on (the engine's tasks catch their own panics: this guards the turn itself).
    // SAFETY: the arguments are libuv's, passed on unchanged.
    let turned = std::panic::catch_unwind(|| unsafe { turn(handle, status) });
    if let Err(panic) = turned {
        eprintln!("protoloop: internal error in the engine's turn: {}", crate::panic_message(&panic));
    }
}

/// One turn of the engine, and its events to JavaScript (see `on_readable`).
unsafe fn turn(handle: *mut c_void, status: c_int) {
    if status < 0 {
        return;
    }
    let Ok(engine) = crate::engine() else { return };
    // SAFETY: the handle's data is its `Host` while the handle is open, and libuv calls this only then.
    let host = unsafe { &*(uv_handle_get_data(handle) as *const Host) };
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
        if let Ok(argv) = crate::batch_buffers(&Env::from_raw(env)) {
            let mut result = std::ptr::null_mut();
            let status = sys::napi_make_callback(env, host.context, recv, func, argv.len(), argv.as_ptr(), &mut result);
            if status == sys::Status::napi_pending_exception {
                let mut exc = std::ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut exc);
                sys::napi_fatal_exception(env, exc);
            }
        }
        sys::napi_close_handle_scope(env, scope);
    }
}
