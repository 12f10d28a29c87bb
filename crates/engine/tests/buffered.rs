//! Zero-copy receive in the engine alone: reads go into lent targets, one read per target, and the
//! `TargetMode` marker orders a mid-stream switch behind the copied data.

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protoloop_engine::events::{Batch, Kind};
use protoloop_engine::stream::ReadTarget;
use protoloop_engine::{Engine, Transport};

/// Collects events until `done` says the wanted one arrived.
fn events_until(engine: &Engine, seen: &mut Vec<[u32; 5]>, payload: &mut Vec<u8>, done: impl Fn(&[[u32; 5]]) -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !done(seen) {
        assert!(Instant::now() < end, "timed out; events so far: {seen:?}");
        let Batch { records, payload: p } = engine.queue().drain();
        seen.extend(records.chunks(5).map(|r| [r[0], r[1], r[2], r[3], r[4]]));
        payload.extend_from_slice(&p);
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn has(kind: Kind) -> impl Fn(&[[u32; 5]]) -> bool {
    move |e| e.iter().any(|r| r[0] == kind as u32)
}

#[test]
fn reads_into_each_lent_target_once_then_waits_for_the_next() {
    let engine = Engine::new(Box::new(|| {}), 1).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let id = engine.connect("127.0.0.1".into(), port, Default::default());
    let (mut peer, _) = listener.accept().unwrap();
    let (mut seen, mut payload) = (Vec::new(), Vec::new());
    events_until(&engine, &mut seen, &mut payload, has(Kind::Connected));

    let stream = engine.stream(id).unwrap();
    stream.start_reading(true);
    peer.write_all(b"hello world").unwrap();
    // Nothing is read without a target.
    std::thread::sleep(Duration::from_millis(50));
    assert!(engine.queue().drain().is_empty());

    let memory = Arc::new(Mutex::new(vec![0u8; 5]));
    let ptr = memory.lock().unwrap().as_mut_ptr();
    // SAFETY: `memory` outlives the target (it is the owner) and is only read after the fill event.
    assert!(stream.set_target(unsafe { ReadTarget::new(ptr, 5, Some(memory.clone())) }));
    events_until(&engine, &mut seen, &mut payload, has(Kind::BufferFilled));
    let fill = seen.iter().find(|r| r[0] == Kind::BufferFilled as u32).unwrap();
    assert_eq!(fill[2], 5);
    assert_eq!(&memory.lock().unwrap()[..], b"hello");
    assert_eq!(stream.stats.bytes_copied_on_receive.load(std::sync::atomic::Ordering::Relaxed), 0);

    // Switching back to copies: the rest arrives as Data.
    assert!(!stream.set_target_mode(false));
    seen.clear();
    events_until(&engine, &mut seen, &mut payload, has(Kind::Data));
    assert_eq!(payload, b" world");

    // Switching on again: the marker comes after the Data already queued.
    peer.write_all(b"!").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.set_target_mode(true);
    seen.clear();
    payload.clear();
    events_until(&engine, &mut seen, &mut payload, has(Kind::TargetMode));
    let kinds: Vec<u32> = seen.iter().map(|r| r[0]).collect();
    assert_eq!(kinds, vec![Kind::Data as u32, Kind::TargetMode as u32]);
    assert_eq!(payload, b"!");
    stream.abort();
}
