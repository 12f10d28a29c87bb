//! Zero-copy receive: memory the engine may read into, and lending it to a stream.
//!
//! `allocBuffer` memory is co-owned: JavaScript's `ArrayBuffer` and the engine each hold an `Arc` of the
//! slab, so a read in progress can never outlive it, whatever JavaScript does with the buffer. Views
//! over a `SharedArrayBuffer` (which cannot be detached or moved) are pinned instead: a reference held
//! here, on the JavaScript thread, until the stream is done with them. Any other memory is not lent; the
//! TypeScript layer copies into it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use protoloop_engine::stream::ReadTarget;

use crate::engine;

/// One allocation handed to JavaScript as an external `ArrayBuffer`.
struct Slab {
    ptr: *mut u8,
    len: usize,
    mapped: bool,
}

/// Slabs this large get their own pages (`mmap` on Unix: `crate::sys::map_pages`), so that freeing one
/// gives the memory back to the system at once; from the heap, glibc keeps freed blocks of this size
/// around and RSS stays high.
const MMAP_FROM: usize = 64 * 1024;

impl Slab {
    fn new(len: usize) -> Result<Slab> {
        if len >= MMAP_FROM {
            match crate::sys::map_pages(len) {
                Ok(Some(ptr)) => return Ok(Slab { ptr, len, mapped: true }),
                Ok(None) => {}
                Err(e) => return Err(Error::from_reason(format!("allocBuffer: {e}"))),
            }
        }
        let ptr = Box::into_raw(vec![0u8; len].into_boxed_slice()) as *mut u8;
        Ok(Slab { ptr, len, mapped: false })
    }
}

// SAFETY: the slab is plain heap memory; who writes it when is ruled by the target protocol (one
// reader at a time, under the stream's read lock), not by the slab itself.
unsafe impl Send for Slab {}
unsafe impl Sync for Slab {}

impl Drop for Slab {
    fn drop(&mut self) {
        if self.mapped {
            // SAFETY: `ptr`/`len` are exactly the mapping made in `Slab::new`, unmapped once.
            unsafe { crate::sys::unmap_pages(self.ptr, self.len) };
        } else {
            // SAFETY: `ptr`/`len` came from `Box::into_raw` of a boxed slice in `Slab::new`.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len)) });
        }
    }
}

/// Live slabs by start address, so a view handed back can be traced to the memory it lies on.
static SLABS: Mutex<BTreeMap<usize, std::sync::Weak<Slab>>> = Mutex::new(BTreeMap::new());

thread_local! {
    /// SharedArrayBuffer views lent to streams, by stream id; dropped on the JavaScript thread only.
    static PINS: RefCell<HashMap<u32, Uint8Array>> = RefCell::new(HashMap::new());
}

/// A `Uint8Array` of `size` zeroed bytes that the engine can receive into without a copy. The memory is
/// freed when JavaScript drops the array and no stream still reads into it.
#[napi(catch_unwind)]
pub fn alloc_buffer(env: &Env, size: u32) -> Result<Uint8ArraySlice<'_>> {
    if size == 0 {
        return Err(Error::new(Status::InvalidArg, "size must be at least 1"));
    }
    let slab = Arc::new(Slab::new(size as usize)?);
    let (ptr, len) = (slab.ptr, slab.len);
    SLABS.lock().unwrap().insert(ptr as usize, Arc::downgrade(&slab));
    // V8 counts the slab itself (an external ArrayBuffer is a backing store it accounts for), so it is
    // not reported again with `adjust_external_memory`, which would count it twice (see `batch_buffers`).
    // SAFETY: the slab's memory is valid for `len` bytes while the `Arc` lives; the finalizer holds one.
    unsafe {
        Uint8ArraySlice::from_external(env, ptr, len, slab, |_env, slab: Arc<Slab>| {
            SLABS.lock().unwrap().remove(&(slab.ptr as usize));
            drop(slab);
        })
    }
}

/// The slab that holds all of `[ptr, ptr + len)`, if any.
fn slab_of(ptr: *const u8, len: usize) -> Option<Arc<Slab>> {
    let addr = ptr as usize;
    let slabs = SLABS.lock().unwrap();
    let (start, weak) = slabs.range(..=addr).next_back()?;
    let slab = weak.upgrade()?;
    (addr + len <= start + slab.len).then_some(slab)
}

/// Switches stream `id` between copied reads and reads into lent memory. Returns true when a lent
/// target was taken back unfilled (no fill event will come for it).
#[napi(catch_unwind)]
pub fn set_target_mode(id: u32, on: bool) -> Result<bool> {
    let dropped = engine()?.stream(id).is_some_and(|s| s.set_target_mode(on));
    release_pin(id);
    Ok(dropped)
}

/// Lends `view` to stream `id` for its next read if it lies on `allocBuffer` memory. Returns false when
/// it does not (or the stream is not in target mode): the caller then copies.
#[napi(catch_unwind)]
pub fn set_read_target(id: u32, view: Uint8ArraySlice) -> Result<bool> {
    let (ptr, len) = (view.as_ptr(), view.len());
    let Some(slab) = slab_of(ptr, len) else { return Ok(false) };
    let Some(stream) = engine()?.stream(id) else { return Ok(false) };
    // SAFETY: the slab (held by the target) keeps the memory valid; the host touches these bytes only
    // after the fill event, per the BufferedProtocol contract the TypeScript layer enforces.
    let target = unsafe { ReadTarget::new(ptr as *mut u8, len, Some(slab)) };
    let lent = stream.set_target(target);
    // Only now is a previously lent SharedArrayBuffer view out of the engine's hands.
    release_pin(id);
    Ok(lent)
}

/// Lends a view over a `SharedArrayBuffer` to stream `id` for its next read, pinning it until the
/// stream moves on (next target, mode change, or `releaseReadTarget` after `Closed`).
#[napi(catch_unwind)]
pub fn set_shared_read_target(id: u32, view: Uint8Array) -> Result<bool> {
    let Some(stream) = engine()?.stream(id) else { return Ok(false) };
    let (ptr, len) = (view.as_ptr() as *mut u8, view.len());
    if len == 0 {
        return Ok(false);
    }
    // SAFETY: a SharedArrayBuffer is never detached or moved, and the pin below keeps it alive until the
    // engine has dropped this target (it drops it before reporting the fill, a mode change or `Closed`).
    let target = unsafe { ReadTarget::new(ptr, len, None) };
    let lent = stream.set_target(target);
    PINS.with(|p| {
        let mut p = p.borrow_mut();
        // The previous pin's target was spent or replaced under the read lock above.
        p.remove(&id);
        if lent {
            p.insert(id, view);
        }
    });
    Ok(lent)
}

/// Drops the pin of stream `id` (after its `Closed` event).
#[napi(catch_unwind)]
pub fn release_read_target(id: u32) {
    release_pin(id);
}

fn release_pin(id: u32) {
    PINS.with(|p| p.borrow_mut().remove(&id));
}
