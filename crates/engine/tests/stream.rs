//! The engine without Node: real loopback sockets against std's blocking TCP, events read straight
//! off the queue.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use protoloop_engine::connect::{connect_any, ConnectOptions};
use protoloop_engine::events::{Kind, Syscall, ENOTFOUND};
use protoloop_engine::{Engine, FdKind, ListenOptions, Transport};

const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
struct Ev {
    kind: u32,
    id: u32,
    a: u32,
    b: u32,
    payload: Vec<u8>,
}

/// An engine whose wake-ups signal a condition variable, and the events it has reported so far.
struct Harness {
    engine: Engine,
    signal: Arc<(Mutex<bool>, Condvar)>,
    events: Vec<Ev>,
}

impl Harness {
    fn new() -> Harness {
        let signal = Arc::new((Mutex::new(false), Condvar::new()));
        let s = signal.clone();
        let engine = Engine::new(
            Box::new(move || {
                *s.0.lock().unwrap() = true;
                s.1.notify_all();
            }),
            1,
        )
        .unwrap();
        Harness { engine, signal, events: Vec::new() }
    }

    /// Moves whatever is queued into `events`; waits up to `wait` for a wake-up if nothing is.
    fn pump(&mut self, wait: Duration) {
        {
            let (lock, cv) = &*self.signal;
            let mut woken = lock.lock().unwrap();
            if !*woken {
                woken = cv.wait_timeout(woken, wait).unwrap().0;
            }
            *woken = false;
        }
        let batch = self.engine.queue().drain();
        let mut off = 0;
        for r in batch.records.chunks(5) {
            let len = r[4] as usize;
            self.events.push(Ev { kind: r[0], id: r[1], a: r[2], b: r[3], payload: batch.payload[off..off + len].to_vec() });
            off += len;
        }
        assert_eq!(off, batch.payload.len());
    }

    /// Removes and returns the first event of `kind` for `id`, waiting for it.
    fn expect(&mut self, kind: Kind, id: u32) -> Ev {
        let end = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.events.iter().position(|e| e.kind == kind as u32 && e.id == id) {
                return self.events.remove(i);
            }
            assert!(Instant::now() < end, "no {kind:?} event for {id}; have {:?}", self.kinds());
            self.pump(Duration::from_millis(100));
        }
    }

    /// Waits `d`, collecting events, and reports whether any of `kind` for `id` came.
    /// Data bytes of stream `id` among the events taken so far.
    fn data_bytes(&self, id: u32) -> usize {
        self.events.iter().filter(|e| e.id == id && e.kind == Kind::Data as u32).map(|e| e.payload.len()).sum()
    }

    fn none_for(&mut self, kind: Kind, id: u32, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.pump(Duration::from_millis(20));
        }
        !self.events.iter().any(|e| e.kind == kind as u32 && e.id == id)
    }

    /// Takes the data of stream `id` until `n` bytes or an EOF; returns the bytes and whether EOF came.
    fn read(&mut self, id: u32, n: usize) -> (Vec<u8>, bool) {
        let end = Instant::now() + TIMEOUT;
        let mut out = Vec::new();
        loop {
            let mut eof = false;
            self.events.retain(|e| {
                if e.id != id || eof {
                    return true;
                }
                if e.kind == Kind::Data as u32 {
                    assert_eq!(e.a as usize, e.payload.len());
                    out.extend_from_slice(&e.payload);
                    false
                } else if e.kind == Kind::Eof as u32 {
                    eof = true;
                    false
                } else {
                    true
                }
            });
            if eof || out.len() >= n {
                return (out, eof);
            }
            assert!(Instant::now() < end, "read {} of {n} bytes of stream {id}", out.len());
            self.pump(Duration::from_millis(100));
        }
    }

    /// Sum of the Drained events of `id` until they reach `n` bytes.
    fn drained(&mut self, id: u32, n: usize) {
        let mut total = 0usize;
        while total < n {
            total += self.expect(Kind::Drained, id).a as usize;
        }
        assert_eq!(total, n);
    }

    fn kinds(&self) -> Vec<(u32, u32)> {
        self.events.iter().map(|e| (e.kind, e.id)).collect()
    }

    /// Connects a stream to `listener`; returns its id and the accepted peer.
    fn connect(&mut self, listener: &TcpListener) -> (u32, TcpStream) {
        let port = listener.local_addr().unwrap().port();
        let id = self.engine.connect("127.0.0.1".into(), port, ConnectOptions::default());
        self.expect(Kind::Connected, id);
        // The host starts reading once its protocol exists.
        self.engine.stream(id).unwrap().start_reading(false);
        let (peer, _) = listener.accept().unwrap();
        (id, peer)
    }

    fn wait_no_handles(&mut self) {
        let end = Instant::now() + TIMEOUT;
        while self.engine.open_handles() != 0 {
            assert!(Instant::now() < end, "{} handles still open", self.engine.open_handles());
            self.pump(Duration::from_millis(20));
        }
    }
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// Writes 1 MiB chunks until the kernel stops taking them (the peer does not read). Returns the bytes
/// accepted and how many of them went straight to the kernel.
fn fill(h: &Harness, id: u32) -> (usize, usize) {
    let s = h.engine.stream(id).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let (mut total, mut now) = (0, 0);
    for _ in 0..256 {
        let n = s.write(&[&chunk]);
        total += chunk.len();
        now += n;
        if n < chunk.len() {
            return (total, now);
        }
    }
    panic!("the kernel took 256 MiB without the peer reading");
}

/// Writes `data` from a thread of its own, then half-closes; the join gives the peer back.
fn send_then_eof(mut peer: TcpStream, data: Vec<u8>) -> thread::JoinHandle<TcpStream> {
    thread::spawn(move || {
        peer.write_all(&data).unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        peer
    })
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn connect_write_read_eof_close() {
    let mut h = Harness::new();
    let l = listener();
    let (id, mut peer) = h.connect(&l);
    let s = h.engine.stream(id).unwrap();
    assert_eq!(s.kind, FdKind::Socket);
    assert_eq!(s.write(&[b"hel", b"lo"]), 5);
    assert_eq!(s.write_buffer_size(), 0);
    let mut buf = [0u8; 5];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    peer.write_all(b"world").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    let (data, eof) = h.read(id, usize::MAX);
    assert_eq!(data, b"world");
    assert!(eof);
    // Half-open: after the peer's EOF we can still send.
    assert_eq!(s.write(&[b"late"]), 4);
    let mut late = [0u8; 4];
    peer.read_exact(&mut late).unwrap();
    assert_eq!(&late, b"late");
    s.close();
    let closed = h.expect(Kind::Closed, id);
    assert_eq!((closed.a, closed.b), (0, Syscall::None as u32));
    assert!(s.is_closed());
    assert_eq!(s.stats.bytes_read.load(std::sync::atomic::Ordering::Relaxed), 5);
    assert_eq!(s.stats.bytes_written.load(std::sync::atomic::Ordering::Relaxed), 9);
    // The descriptor closes when the last holder of the stream lets go.
    drop(s);
    assert_eq!(peer.read(&mut buf).unwrap(), 0);
    h.wait_no_handles();
    assert!(h.engine.stream(id).is_none());
}

#[test]
fn writes_queue_and_drain_with_exact_accounting() {
    let mut h = Harness::new();
    let l = listener();
    let (id, peer) = h.connect(&l);
    let (total, now) = fill(&h, id);
    let s = h.engine.stream(id).unwrap();
    assert_eq!(s.write_buffer_size(), total - now);
    // Further writes queue entirely behind what is waiting.
    assert_eq!(s.write(&[b"tail"]), 0);
    let queued = total - now + 4;
    assert_eq!(s.write_buffer_size(), queued);
    let reader = thread::spawn(move || {
        let mut peer = peer;
        let mut n = 0;
        let mut buf = vec![0u8; 1 << 16];
        while n < total + 4 {
            n += peer.read(&mut buf).unwrap();
        }
        n
    });
    h.drained(id, queued);
    assert_eq!(s.write_buffer_size(), 0);
    assert_eq!(reader.join().unwrap(), total + 4);
    s.abort();
    h.expect(Kind::Closed, id);
}

#[test]
fn close_flushes_everything_queued() {
    let mut h = Harness::new();
    let l = listener();
    let (id, mut peer) = h.connect(&l);
    let data = pattern(16 << 20);
    let s = h.engine.stream(id).unwrap();
    let now = s.write(&[&data]);
    assert!(now < data.len(), "16 MiB went to the kernel at once");
    s.close();
    // Nothing more is accepted after close.
    assert_eq!(s.write(&[b"after close"]), 0);
    drop(s);
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    let closed = h.expect(Kind::Closed, id);
    assert_eq!(closed.a, 0);
    h.wait_no_handles();
}

#[test]
fn abort_drops_the_queue_and_finishes_at_once() {
    let mut h = Harness::new();
    let l = listener();
    let (id, mut peer) = h.connect(&l);
    let (total, _) = fill(&h, id);
    let s = h.engine.stream(id).unwrap();
    s.abort();
    assert!(s.is_closed());
    assert_eq!(s.write_buffer_size(), 0);
    assert_eq!(s.write(&[b"x"]), 0);
    drop(s);
    let closed = h.expect(Kind::Closed, id);
    assert_eq!(closed.a, 0);
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match peer.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < total, "the peer got {got} of {total}: the queue was sent");
    // Exactly one Closed event.
    assert!(h.none_for(Kind::Closed, id, Duration::from_millis(100)));
    h.wait_no_handles();
}

#[test]
fn write_eof_half_closes_and_the_peer_can_still_send() {
    let mut h = Harness::new();
    let l = listener();
    let (id, mut peer) = h.connect(&l);
    let s = h.engine.stream(id).unwrap();
    let data = pattern(8 << 20);
    s.write(&[&data]);
    s.write_eof();
    assert_eq!(s.write(&[b"after eof"]), 0);
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert!(got == data);
    peer.write_all(b"reply").unwrap();
    let (reply, _) = h.read(id, 5);
    assert_eq!(reply, b"reply");
    assert!(!s.is_closed());
    s.close();
    h.expect(Kind::Closed, id);
}

#[test]
fn connect_refused_reports_econnrefused_from_connect() {
    let mut h = Harness::new();
    let port = listener().local_addr().unwrap().port();
    let id = h.engine.connect("127.0.0.1".into(), port, ConnectOptions::default());
    let ev = h.expect(Kind::ConnectFailed, id);
    assert_eq!(ev.a, protoloop_engine::sys::errno::ECONNREFUSED as u32);
    assert_eq!(ev.b, Syscall::Connect as u32);
    assert!(h.engine.stream(id).is_none());
    assert_eq!(h.engine.open_handles(), 0);
}

#[test]
fn unknown_host_reports_enotfound() {
    let mut h = Harness::new();
    let id = h.engine.connect("nonexistent.invalid".into(), 80, ConnectOptions::default());
    let ev = h.expect(Kind::ConnectFailed, id);
    assert_eq!((ev.a, ev.b), (ENOTFOUND, Syscall::Getaddrinfo as u32));
}

#[test]
fn happy_eyeballs_passes_over_addresses_that_fail_or_hang() {
    let l = listener();
    let good = l.local_addr().unwrap();
    let refused: SocketAddr = format!("127.0.0.1:{}", listener().local_addr().unwrap().port()).parse().unwrap();
    // An address whose connects hang: only the delay gets past it.
    let (_full, _fillers, blackhole) = hanging_address();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for (addrs, delay) in [
            (vec![blackhole, good], Some(Duration::from_millis(50))),
            (vec![refused, good], None),
            (vec![refused, blackhole, good], Some(Duration::from_millis(20))),
        ] {
            let sock: socket2::Socket = tokio::time::timeout(TIMEOUT, connect_any(&addrs, &[], delay)).await.unwrap().unwrap();
            let peer = sock.peer_addr().unwrap();
            assert_eq!(peer.as_socket().unwrap(), good);
            l.accept().unwrap();
        }
        let err = connect_any(&[refused], &[], Some(Duration::from_millis(10))).await.unwrap_err();
        assert_eq!(err.errno, protoloop_engine::sys::errno::ECONNREFUSED as u32);
    });
    // And through the engine, by name, with the options set.
    let mut h = Harness::new();
    let opts = ConnectOptions { happy_eyeballs_delay: Some(Duration::from_millis(50)), interleave: Some(1), ..Default::default() };
    let id = h.engine.connect("localhost".into(), good.port(), opts);
    h.expect(Kind::Connected, id);
    h.engine.stream(id).unwrap().abort();
    h.expect(Kind::Closed, id);
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so connecting to it hangs.
fn hanging_address() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(c) => fillers.push(c),
            Err(_) => return (s, fillers, addr),
        }
    }
    panic!("the accept queue of a listen(0) socket never filled");
}

fn server_port(h: &Harness, id: u32) -> u16 {
    h.engine.server(id).unwrap().local_addrs()[0].port()
}

/// `f` on the socket of a live transport's descriptor (a socket handle on Windows).
fn with_socket<T>(fd: protoloop_engine::sys::RawFd, f: impl FnOnce(socket2::SockRef<'_>) -> T) -> T {
    // SAFETY: the transport owns the socket and stays open for this borrow.
    #[cfg(unix)]
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    #[cfg(windows)]
    let borrowed = unsafe { std::os::windows::io::BorrowedSocket::borrow_raw(fd) };
    f(socket2::SockRef::from(&borrowed))
}

#[test]
fn server_accepts_only_while_serving_and_close_keeps_accepted_streams() {
    let mut h = Harness::new();
    let sid = h.engine.listen(&["127.0.0.1".into()], 0, &ListenOptions::default()).unwrap();
    let port = server_port(&h, sid);
    assert!(!h.engine.server(sid).unwrap().is_serving());
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"early").unwrap();
    assert!(h.none_for(Kind::Accepted, sid, Duration::from_millis(200)));
    h.engine.server(sid).unwrap().start_serving();
    assert!(h.engine.server(sid).unwrap().is_serving());
    let id = h.expect(Kind::Accepted, sid).a;
    h.engine.stream(id).unwrap().start_reading(false);
    let (data, _) = h.read(id, 5);
    assert_eq!(data, b"early");
    // Accepted streams start with Nagle off, as asyncio's.
    let fd = h.engine.stream(id).unwrap().raw_fd();
    assert!(with_socket(fd, |s| s.tcp_nodelay().unwrap()));
    h.engine.close_server(sid);
    assert!(h.engine.server(sid).is_none());
    // close() stops listening at once: the very next connect is refused.
    let refused = TcpStream::connect(("127.0.0.1", port));
    assert!(refused.is_err(), "the closed server still accepts connections");
    assert!(h.none_for(Kind::Accepted, sid, Duration::from_millis(50)), "a closed server accepted a connection");
    // The accepted stream lives on.
    h.engine.stream(id).unwrap().write(&[b"still"]);
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still");
    drop(c);
    let (_, eof) = h.read(id, usize::MAX);
    assert!(eof);
    h.engine.stream(id).unwrap().close();
    h.expect(Kind::Closed, id);
    h.wait_no_handles();
}

#[test]
fn server_keep_alive_and_options() {
    let mut h = Harness::new();
    let opts = ListenOptions { keep_alive: true, reuse_port: true, backlog: 5, ..Default::default() };
    let sid = h.engine.listen(&["127.0.0.1".into(), "::1".into()], 0, &opts).unwrap();
    assert_eq!(h.engine.server(sid).unwrap().fds().len(), 2);
    h.engine.server(sid).unwrap().start_serving();
    let _c = TcpStream::connect(("127.0.0.1", server_port(&h, sid))).unwrap();
    let id = h.expect(Kind::Accepted, sid).a;
    let fd = h.engine.stream(id).unwrap().raw_fd();
    assert!(with_socket(fd, |s| s.keepalive().unwrap()));
    h.engine.stream(id).unwrap().abort();
    h.engine.close_server(sid);
    h.wait_no_handles();
}

#[test]
fn pause_reading_stops_reading_until_resumed() {
    let mut h = Harness::new();
    let l = listener();
    let (id, peer) = h.connect(&l);
    let s = h.engine.stream(id).unwrap();
    s.pause_reading();
    let data = pattern(4 << 20);
    let writer = send_then_eof(peer, data.clone());
    // A read already under way may finish, but no more than one chunk, and no EOF.
    assert!(h.none_for(Kind::Eof, id, Duration::from_millis(300)));
    let early = h.data_bytes(id);
    assert!(early <= 64 * 1024, "{early} bytes read while paused");
    s.resume_reading();
    let (got, eof) = h.read(id, usize::MAX);
    assert!(eof);
    assert!(got == data);
    let _peer = writer.join().unwrap();
    s.close();
    h.expect(Kind::Closed, id);
}

/// What a flow-controlled protocol holds while paused is what the engine read ahead of the pause: after
/// a pause, a stream's bytes come one 64 KiB chunk per batch, doubling with each batch the host takes
/// without pausing it (without the bound, one batch took 256 KiB of it and more).
#[test]
fn after_a_pause_a_stream_reads_one_chunk_ahead_per_batch() {
    let mut h = Harness::new();
    let l = listener();
    let (id, peer) = h.connect(&l);
    let s = h.engine.stream(id).unwrap();
    s.pause_reading();
    s.resume_reading();
    let data = pattern(4 << 20);
    let writer = send_then_eof(peer, data.clone());
    let queued = |h: &Harness| h.data_bytes(id);
    // The batch is not taken meanwhile: the reader reads its share and waits.
    thread::sleep(Duration::from_millis(300));
    h.pump(Duration::from_secs(5));
    let first = queued(&h);
    assert!(first > 0 && first <= 64 * 1024, "{first} bytes in the first batch after a pause");
    thread::sleep(Duration::from_millis(300));
    h.pump(Duration::from_secs(5));
    let second = queued(&h) - first;
    assert!(second > 64 * 1024 && second <= 128 * 1024, "{second} bytes in the second batch");
    let (got, eof) = h.read(id, usize::MAX);
    assert!(eof);
    assert!(got == data);
    let _peer = writer.join().unwrap();
    s.close();
    h.expect(Kind::Closed, id);
}

// Unix: Windows adopts no sockets.
#[cfg(unix)]
#[test]
fn adopted_socket_is_a_stream() {
    let mut h = Harness::new();
    let l = listener();
    let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    let id = h.engine.adopt(std::os::fd::OwnedFd::from(b), FdKind::Socket, true).unwrap();
    h.engine.stream(id).unwrap().start_reading(false);
    a.write_all(b"adopted").unwrap();
    let (got, _) = h.read(id, 7);
    assert_eq!(got, b"adopted");
    h.engine.stream(id).unwrap().write(&[b"back"]);
    let mut buf = [0u8; 4];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"back");
    drop(a);
    let (_, eof) = h.read(id, usize::MAX);
    assert!(eof);
    h.engine.stream(id).unwrap().close();
    h.expect(Kind::Closed, id);
}

#[test]
fn peer_reset_reports_econnreset_from_read() {
    let mut h = Harness::new();
    let l = listener();
    let (id, peer) = h.connect(&l);
    // SO_LINGER with a zero timeout makes close() send RST.
    socket2::SockRef::from(&peer).set_linger(Some(Duration::ZERO)).unwrap();
    drop(peer);
    let ev = h.expect(Kind::Closed, id);
    assert_eq!(ev.a, protoloop_engine::sys::errno::ECONNRESET as u32);
    assert_eq!(ev.b, Syscall::Read as u32);
    h.wait_no_handles();
}
