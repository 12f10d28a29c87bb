//! Dropping an engine (what the Node bindings do when the thread that used it ends) closes everything
//! it owns. One test in its own binary: it counts the process's descriptors and threads. Unix: it
//! counts them in /proc or /dev/fd, and tears down a Unix server's socket file.
#![cfg(unix)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use protoloop_engine::events::Kind;
use protoloop_engine::subprocess::{SpawnOptions, Stdio};
use protoloop_engine::{Engine, EngineOptions};

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn io_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| std::fs::read_to_string(t.as_ref().unwrap().path().join("comm")).is_ok_and(|n| n.trim() == "protoloop-io"))
        .count()
}

/// Drains events into `seen` until one of `kind` for `id` is there.
fn wait_for(engine: &Engine, seen: &mut Vec<u32>, kind: Kind, id: u32) {
    let end = Instant::now() + Duration::from_secs(10);
    while !seen.chunks(5).any(|r| r[0] == kind as u32 && r[1] == id) {
        assert!(Instant::now() < end, "no {kind:?} for {id}");
        seen.extend(engine.queue().drain().records);
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn dropping_an_engine_closes_its_sockets_and_servers_and_kills_its_children() {
    let before = fds();
    let path = format!("{}/protoloop-teardown-{}.sock", std::env::temp_dir().display(), std::process::id());
    let engine = Engine::with_options(Box::new(|| {}), EngineOptions { io_threads: 2, ..Default::default() }).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while io_threads() != 2 {
        assert!(Instant::now() < end, "{} I/O threads", io_threads());
        std::thread::sleep(Duration::from_millis(2));
    }

    let server = engine.listen(&["127.0.0.1".into()], 0, &Default::default()).unwrap();
    engine.server(server).unwrap().start_serving();
    // SAFETY: the server's listening descriptor, open while the engine is; only borrowed here.
    let listening = unsafe { std::os::fd::BorrowedFd::borrow_raw(engine.server(server).unwrap().fds()[0]) };
    let port = socket2::SockRef::from(&listening).local_addr().unwrap().as_socket().unwrap().port();
    let unix = engine.listen_unix(&path, 16).unwrap();
    engine.remove_at_teardown(unix, &path).unwrap();

    // A connection from outside to the server, and two of the engine's own, forwarding into each
    // other (each then holds the other).
    let mut outside = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut seen = Vec::new();
    wait_for(&engine, &mut seen, Kind::Accepted, server);
    let accepted = seen.chunks(5).find(|r| r[0] == Kind::Accepted as u32).unwrap()[2];
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (engine.connect("127.0.0.1".into(), peer.local_addr().unwrap().port(), Default::default()), engine.connect("127.0.0.1".into(), peer.local_addr().unwrap().port(), Default::default()));
    let (_pa, _pb) = (peer.accept().unwrap(), peer.accept().unwrap());
    wait_for(&engine, &mut seen, Kind::Connected, a);
    wait_for(&engine, &mut seen, Kind::Connected, b);
    let (sa, sb) = (engine.stream(a).unwrap(), engine.stream(b).unwrap());
    assert!(sa.forward_to(sb.clone(), 1 << 20, 1 << 10).is_ok() && sb.forward_to(sa.clone(), 1 << 20, 1 << 10).is_ok());
    sa.start_reading(false);
    sb.start_reading(false);
    drop((sa, sb));
    engine.stream(accepted).unwrap().start_reading(false);

    let mut sleep = SpawnOptions::new("sleep", vec!["30".into()]);
    sleep.stdin = Stdio::DevNull;
    let child = engine.spawn(&sleep).unwrap();

    drop(engine);

    // SAFETY: kill with signal 0 only asks whether the pid exists (a zombie would).
    assert_ne!(unsafe { libc::kill(child.pid as i32, 0) }, 0, "the child (or its zombie) outlived the engine");
    outside.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(outside.read(&mut [0; 16]), Ok(0) | Err(_)), "the accepted connection is still open");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the server still listens");
    assert!(!std::path::Path::new(&path).exists(), "the Unix socket file is still there");
    assert_eq!(io_threads(), 0);
    drop((outside, _pa, _pb, peer));
    assert_eq!(fds(), before);
}
