//! napi-rs glue: engine handles become numbers, engine event batches become one JavaScript call.
//!
//! Nothing here knows about protocols. Each JavaScript thread that loads protoloop (the main thread,
//! any worker) gets an engine of its own (`Instance`), torn down with the thread's environment. The
//! TypeScript layer registers one callback with [`init`], which receives each batch of the thread's
//! events as two flat buffers (see `protoloop_engine::events`): right after each turn of the engine on
//! the JavaScript thread (`reactor`), and otherwise through a weak threadsafe function, once per batch.
//! Errors of system calls come back as negative errnos so that TypeScript can build Node-style errors
//! with `code`, `errno` and `syscall`.

mod alloc;
mod buffer;
mod convert;
mod datagram;
mod panic;
#[cfg(unix)]
mod pipe;
#[cfg(unix)]
mod reactor;
mod server;
mod socket;
mod stream;
mod subprocess;
mod sys;
mod tls;
mod transport;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
use sys::reactor;

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use protoloop_engine::{Engine, EngineOptions};

type Waker = ThreadsafeFunction<(), (), FnArgs<(RawValue, RawValue, RawValue, RawValue)>, Status, false, true>;

/// A value made with raw Node-API calls, handed back to JavaScript as it is.
pub(crate) struct RawValue(pub(crate) napi::sys::napi_value);

impl ToNapiValue for RawValue {
    unsafe fn to_napi_value(_env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        Ok(val.0)
    }
}

/// Payload memory that JavaScript has let go of, kept for the next batches: handing each batch's
/// payload over without a copy would otherwise mean fresh memory (and page faults) per batch. One pool
/// for the process, not per thread: a payload's finalizer may run after its thread's engine is gone.
static PAYLOAD_POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
const POOL_KEPT: usize = 32;

/// Payloads up to this size are copied into a Buffer of their own rather than handed over: copying a
/// few KiB costs less than an external Buffer with its finalizer, and handing over would tie up a
/// whole batch's vector (320 KiB) until a scavenge for a 1 KiB message; the queue keeps its vector,
/// still in cache, for the next batch.
const COPY_UP_TO: usize = 16 << 10;

/// What `onEvents` is called with for one batch: `(head, payload, start, length)`.
type BatchArgs = [napi::sys::napi_value; 4];

/// One batch as `onEvents`'s arguments. `head`: the number of u32 words of records (5 each) written
/// into this thread's records buffer (`eventRecords`), or, for a batch with more records than it
/// holds, an ArrayBuffer of them. The payload: when small (`COPY_UP_TO`), copied into this thread's
/// payload slab, passed as that ArrayBuffer with the `start` and `length` of the batch's bytes in it;
/// otherwise handed over without a copy as an external Buffer (`start` undefined) whose memory returns
/// to the pool when JavaScript has dropped every view of it (the queue then fills a pooled buffer next).
fn batch_buffers(env: &Env) -> Result<BatchArgs> {
    // Called from C (the threadsafe function, libuv's poll callback), where a panic would abort the
    // process: as a last resort it becomes an Error.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch_buffers_unguarded(env)))
        .unwrap_or_else(|panic| Err(Error::from_reason(format!("protoloop: internal error while handing events over: {}", panic_message(&panic)))))
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("(no message)")
}

fn batch_buffers_unguarded(env: &Env) -> Result<BatchArgs> {
    let instance = engine()?;
    instance.queue().drain_with(|batch| {
        let records: &[u8] = u32s_as_bytes(&batch.records);
        let mut data = std::ptr::null_mut();
        let mut head = std::ptr::null_mut();
        let mut payload = std::ptr::null_mut();
        let mut start = std::ptr::null_mut();
        let mut length = std::ptr::null_mut();
        // SAFETY (every Node-API call below): on the JavaScript thread with its env; out-pointers valid.
        unsafe {
            let mut lent = instance.lent.borrow_mut();
            if records.len() <= RECORDS_LEN {
                let table = lent.records.get_or_insert_with_env(env.raw(), RECORDS_LEN)?;
                // SAFETY: the records buffer holds RECORDS_LEN bytes; JavaScript reads it only during
                // the call this batch is for, which is over before the next batch is written.
                std::ptr::copy_nonoverlapping(records.as_ptr(), table.data, records.len());
                check_status!(napi::sys::napi_create_uint32(env.raw(), batch.records.len() as u32, &mut head))?;
            } else {
                // A plain ArrayBuffer: a Buffer's prototype change cost more than the copy (4% of the
                // samples of one-connection echo). Its length gives the number of records.
                check_status!(napi::sys::napi_create_arraybuffer(env.raw(), records.len(), &mut data, &mut head))?;
                std::ptr::copy_nonoverlapping(records.as_ptr(), data as *mut u8, records.len());
            }
            if batch.payload.len() <= COPY_UP_TO {
                let len = batch.payload.len();
                let slab = match lent.slab.as_mut() {
                    Some(slab) if slab.used + len <= slab.len => slab,
                    // A fresh slab: the old one lives on while JavaScript holds views of it.
                    _ => lent.slab.insert(Lent::new(env.raw(), SLAB_LEN)?),
                };
                let at = slab.used;
                if len > 0 {
                    // SAFETY: `at + len <= slab.len`; bytes handed out before `at` are never written again.
                    std::ptr::copy_nonoverlapping(batch.payload.as_ptr(), slab.data.add(at), len);
                }
                // The next batch starts 8-aligned, as Node's Buffer pool does.
                slab.used = (at + len).next_multiple_of(8).min(slab.len);
                payload = slab.value()?;
                check_status!(napi::sys::napi_create_uint32(env.raw(), at as u32, &mut start))?;
                check_status!(napi::sys::napi_create_uint32(env.raw(), len as u32, &mut length))?;
                return Ok([head, payload, start, length]);
            }
            check_status!(napi::sys::napi_get_undefined(env.raw(), &mut start))?;
            length = start;
        }
        {
            let next = PAYLOAD_POOL.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
            let vec = Box::new(std::mem::replace(&mut batch.payload, next));
            let (ptr, len) = (vec.as_ptr(), vec.len());
            // SAFETY: the Buffer borrows the Vec's heap memory, which the boxed Vec (the finalize hint)
            // owns and does not touch until `return_payload` takes it back after V8 is done with it.
            unsafe {
                let hint = Box::into_raw(vec);
                let status = napi::sys::napi_create_external_buffer(env.raw(), len, ptr as *mut _, Some(return_payload), hint as *mut _, &mut payload);
                if status != napi::sys::Status::napi_ok {
                    drop(Box::from_raw(hint));
                    check_status!(status)?;
                }
                // No `napi_adjust_external_memory`: Node makes an external Buffer a V8 backing store,
                // which V8 counts itself, and a young one dies in a scavenge. Reporting the bytes
                // again counted them twice and against the limit that starts a full mark-compact:
                // one every ~32 MiB received (30 per GiB through the callback proxy, 0 without).
            }
        }
        Ok([head, payload, start, length])
    })
}

/// Bytes of this thread's records buffer: 819 records, more than a busy batch has.
const RECORDS_LEN: usize = 16 << 10;
/// Bytes of a payload slab. Small batches are copied into one slab after the other, as Node's Buffer
/// pool does, so a 1 KiB message costs no allocation of its own (a fresh ArrayBuffer per batch was
/// a `malloc`, a backing store and their `free`s at the next scavenge: the largest item of user time
/// in a profile of one-connection echo). A view JavaScript keeps alive keeps its slab alive.
const SLAB_LEN: usize = 64 << 10;

/// An ArrayBuffer made here and kept alive by a reference, whose bytes Rust writes: the records
/// buffer and the payload slab. Made and used on its thread only. The reference is not deleted: the
/// environment's teardown deletes every reference it has.
pub(crate) struct Lent {
    reference: napi::sys::napi_ref,
    env: napi::sys::napi_env,
    data: *mut u8,
    len: usize,
    /// Bytes of the slab handed out so far.
    used: usize,
}

impl Lent {
    /// # Safety
    /// On the JavaScript thread of `env`.
    unsafe fn new(env: napi::sys::napi_env, len: usize) -> Result<Lent> {
        let (mut data, mut value, mut reference) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: Node-API calls on the JavaScript thread with its env; out-pointers valid.
        unsafe {
            check_status!(napi::sys::napi_create_arraybuffer(env, len, &mut data, &mut value))?;
            check_status!(napi::sys::napi_create_reference(env, value, 1, &mut reference))?;
        }
        Ok(Lent { reference, env, data: data as *mut u8, len, used: 0 })
    }

    /// # Safety
    /// On the JavaScript thread of its env, inside a handle scope.
    unsafe fn value(&self) -> Result<napi::sys::napi_value> {
        let mut value = std::ptr::null_mut();
        // SAFETY: the reference is strong (count 1), so the ArrayBuffer is alive.
        unsafe { check_status!(napi::sys::napi_get_reference_value(self.env, self.reference, &mut value))? };
        Ok(value)
    }
}

trait GetOrMake {
    /// # Safety
    /// On the JavaScript thread of `env`.
    unsafe fn get_or_insert_with_env(&mut self, env: napi::sys::napi_env, len: usize) -> Result<&mut Lent>;
}

impl GetOrMake for Option<Lent> {
    unsafe fn get_or_insert_with_env(&mut self, env: napi::sys::napi_env, len: usize) -> Result<&mut Lent> {
        if self.is_none() {
            // SAFETY: the caller's promise.
            *self = Some(unsafe { Lent::new(env, len)? });
        }
        Ok(self.as_mut().unwrap())
    }
}

/// This thread's reused buffers for batches (see `batch_buffers`).
#[derive(Default)]
pub(crate) struct LentBuffers {
    records: Option<Lent>,
    slab: Option<Lent>,
}

/// The ArrayBuffer whose first words hold each batch's records when `onEvents` gets their number (see
/// `batch_buffers`). The same one for the thread's life.
#[napi(catch_unwind, ts_return_type = "ArrayBuffer")]
pub(crate) fn event_records(env: Env) -> Result<RawValue> {
    let instance = engine()?;
    let mut lent = instance.lent.borrow_mut();
    // SAFETY: a binding runs on its JavaScript thread, inside Node's handle scope for the call.
    unsafe { Ok(RawValue(lent.records.get_or_insert_with_env(env.raw(), RECORDS_LEN)?.value()?)) }
}

/// Finalizer of a payload Buffer: its memory goes back to the pool.
unsafe extern "C" fn return_payload(_env: napi::sys::napi_env, _data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
    // SAFETY: `hint` is the boxed Vec made in `batch_buffers`, finalized exactly once.
    let mut vec = unsafe { Box::from_raw(hint as *mut Vec<u8>) };
    vec.clear();
    // A finalizer runs from C: a poisoned lock must not become a panic there (it would abort).
    let mut pool = PAYLOAD_POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < POOL_KEPT {
        pool.push(*vec);
    }
}

fn u32s_as_bytes(words: &[u32]) -> &[u8] {
    // SAFETY: u32 has no padding and any byte pattern is a valid u8; the length is scaled exactly.
    unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, std::mem::size_of_val(words)) }
}

/// One JavaScript thread's engine (the main thread's, or a worker's), and what ties it to the thread:
/// the wake-up that brings its events there, and with a host reactor the watch in the thread's loop.
pub(crate) struct Instance {
    engine: Engine,
    /// Shared with the engine's wake-up, which any thread may call; taken (and so released) when the
    /// thread's environment is torn down, after which wake-ups do nothing.
    waker: Arc<Mutex<Option<Waker>>>,
    watch: RefCell<Option<reactor::Watch>>,
    lent: RefCell<LentBuffers>,
}

impl std::ops::Deref for Instance {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

thread_local! {
    /// This thread's engine: every binding reaches the engine of the thread that calls it, and Node
    /// runs each environment (the main thread, each worker) on a thread of its own. Not dropped by
    /// the thread's exit (`ManuallyDrop`: a thread-local destructor runs after Node has torn the
    /// environment down, or inside `exit()`); the environment's cleanup hook, `tear_down`, takes it.
    static INSTANCE: ManuallyDrop<RefCell<Option<Rc<Instance>>>> = const { ManuallyDrop::new(RefCell::new(None)) };
}

/// The calling thread's engine.
pub(crate) fn engine() -> Result<Rc<Instance>> {
    INSTANCE
        .with(|i| i.borrow().clone())
        .ok_or_else(|| Error::new(Status::GenericFailure, "protoloop: init() was not called in this thread"))
}

/// The engine's settings, from the environment so that benchmarks can compare them:
/// `PROTOLOOP_REACTOR` (`host`, the default: the engine runs on the JavaScript thread, turned by
/// Node's event loop; `threads`: on I/O threads of its own), `PROTOLOOP_IO_THREADS` (with `threads`;
/// default 1: on a small machine one I/O thread beside the JavaScript thread leaves a core to the rest
/// of the process) and `PROTOLOOP_WRITE_PATH` (`direct`, the default: writes try the socket on the
/// JavaScript thread first; `engine`: every write goes to the engine's writer task).
fn engine_options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.host_reactor = std::env::var("PROTOLOOP_REACTOR").map_or(true, |r| r != "threads");
    if let Some(n) = std::env::var("PROTOLOOP_IO_THREADS").ok().and_then(|v| v.parse().ok()) {
        o.io_threads = n;
    }
    if let Ok(path) = std::env::var("PROTOLOOP_WRITE_PATH") {
        o.direct_writes = path != "engine";
    }
    o
}

/// Starts this thread's engine and registers `on_events(batch)` as the one receiver of its event
/// batches (see `batch_buffers` for the layout). Each JavaScript thread that loads protoloop calls it
/// once; its engine is torn down with the thread's environment (`tear_down`).
#[napi(
    catch_unwind,
    ts_args_type = "onEvents: (head: number | ArrayBuffer, payload: ArrayBuffer | Buffer, start: number | undefined, length: number | undefined) => void"
)]
pub fn init(env: Env, on_events: Function<FnArgs<(Buffer, Buffer)>, ()>) -> Result<()> {
    if INSTANCE.with(|i| i.borrow().is_some()) {
        return Ok(());
    }
    let waker: Waker = on_events
        .build_threadsafe_function::<()>()
        .weak::<true>()
        .callee_handled::<false>()
        .build_callback(|ctx| batch_buffers(&ctx.env).map(|[a, b, c, d]| FnArgs::from((RawValue(a), RawValue(b), RawValue(c), RawValue(d)))))?;
    let waker = Arc::new(Mutex::new(Some(waker)));
    let wake = || -> Box<dyn Fn() + Send + Sync> {
        let waker = waker.clone();
        Box::new(move || {
            if reactor::in_turn() {
                return;
            }
            if let Some(w) = waker.lock().unwrap().as_ref() {
                w.call((), ThreadsafeFunctionCallMode::NonBlocking);
            }
        })
    };
    let options = engine_options();
    let host = options.host_reactor;
    let threads = EngineOptions { host_reactor: false, ..options.clone() };
    let started = |o: EngineOptions| Engine::with_options(wake(), o).map_err(|e| Error::from_reason(format!("protoloop: cannot start the engine: {e}")));
    // A host reactor needs the runtime's poll descriptor (epoll through /proc on Linux, kqueue through
    // proc_pidinfo on macOS: protoloop_engine::sys), a build with tokio's metrics and libuv's poll
    // handle on it; without them, an I/O thread.
    let (engine, watch) = match started(options) {
        Ok(engine) => match engine.reactor_fd() {
            Some(fd) => match reactor::watch(&env, fd, on_events.value().value) {
                Ok(watch) => (engine, Some(watch)),
                Err(_) => (started(threads)?, None),
            },
            None => (engine, None),
        },
        Err(_) if host => (started(threads)?, None),
        Err(e) => return Err(e),
    };
    let instance = Rc::new(Instance { engine, waker, watch: RefCell::new(watch), lent: RefCell::default() });
    // SAFETY: registers a plain function without an argument; Node hands it the hook's handle.
    let status = unsafe { napi::sys::napi_add_async_cleanup_hook(env.raw(), Some(tear_down), std::ptr::null_mut(), std::ptr::null_mut()) };
    if status != napi::sys::Status::napi_ok {
        // Without a hook the engine would outlive the thread; refuse instead (its watch closes first).
        if let Some(w) = instance.watch.take() {
            w.close(Box::new(|| {}));
        }
        check_status!(status)?;
    }
    INSTANCE.with(|i| *i.borrow_mut() = Some(instance));
    Ok(())
}

/// The environment's cleanup hook (a worker that exits or is terminated; the main thread at exit):
/// closes everything the thread's engine owns (see `Engine`'s `Drop`), releases the threadsafe
/// function and closes the watch in the thread's loop, whose close callback finishes the hook, so that
/// Node closes the loop only after libuv is done with our handle.
unsafe extern "C" fn tear_down(hook: napi::sys::napi_async_cleanup_hook_handle, _arg: *mut std::ffi::c_void) {
    // SAFETY: `hook` is this hook's handle, removed exactly once (`finished` is FnOnce), when done.
    let finished = move || unsafe {
        napi::sys::napi_remove_async_cleanup_hook(hook);
    };
    let Some(instance) = INSTANCE.with(|i| i.borrow_mut().take()) else { return finished() };
    // From here the engine's wake-ups call nothing; Node may already be closing the function.
    // (A poisoned lock still holds the function: a panic here would abort the process.)
    drop(instance.waker.lock().unwrap_or_else(|e| e.into_inner()).take());
    // The watch stops before the engine closes the descriptor it watches. Dropping the instance drops
    // the engine: its last reference, as no JavaScript runs any more, so no binding holds one.
    match instance.watch.take() {
        Some(w) => {
            w.close(Box::new(finished));
            drop(instance);
        }
        None => {
            drop(instance);
            finished();
        }
    }
}

/// Whether the event wake-up keeps the Node process alive. TypeScript turns it on while any
/// transport or server is open, so an idle process exits on its own.
#[napi(catch_unwind)]
#[allow(deprecated)] // ref/unref of one long-lived function is exactly what these are for.
pub fn set_alive(env: Env, alive: bool) -> Result<()> {
    if let Some(w) = engine()?.waker.lock().unwrap().as_mut() {
        if alive {
            w.refer(&env)?;
        } else {
            w.unref(&env)?;
        }
    }
    Ok(())
}

/// Streams and servers the engine holds open (tests use it to prove nothing leaks).
#[napi(catch_unwind)]
pub fn open_handles() -> Result<u32> {
    Ok(engine()?.open_handles() as u32)
}

/// A negative errno as JavaScript receives it for a failed system call.
pub(crate) fn neg_errno(e: &std::io::Error) -> i64 {
    match e.raw_os_error() {
        // The errno on Unix; on Windows libuv's number for the Windows error.
        Some(_) => -(protoloop_engine::sys::errno_of(e) as i64),
        None if e.kind() == std::io::ErrorKind::NotFound => -(protoloop_engine::events::ENOTFOUND as i64),
        None => -(protoloop_engine::sys::errno::EINVAL as i64),
    }
}
