//! The one load generator every server of the benchmark faces: the same client for every peer, so
//! differences between rows are the servers'. It runs on one tokio thread by default (`--threads`),
//! measures its own CPU time and the server's (`--server-pid`, from /proc) over exactly the measured
//! window, and prints one JSON line.
//!
//! ```text
//! loadgen echo  --addr A --size N --conns C --duration S [--server-pid P]   vmbench: send N, read N, repeat
//!               [--message-hex H] [--reply-size R]                         send the bytes H instead of N
//!                                                                          `x`s (a line, an HTTP request),
//!                                                                          read R bytes back (default: as many)
//! loadgen bulk-up   --addr A --total N --chunk N                           send N bytes, half-close, wait for EOF
//! loadgen bulk-down --addr A --total N                                     read until EOF, expect N bytes
//! loadgen churn --addr A --conns C --size N --duration S                   connect, 1 request, close, repeat
//! loadgen idle  --addr A --conns C                                         open C connections, print READY, hold
//!                                                                          them until stdin closes
//! loadgen soak  --addr A --conns C --size N --duration S                   every connection writes N-byte chunks as
//!               [--read-every-ms M]                                        fast as the server takes them and reads
//!                                                                          back at most N bytes every M ms (slow
//!                                                                          readers), then closes
//! ```

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant as TInstant;

mod extra;

type Res<T> = Result<T, String>;

struct Args {
    cmd: String,
    kv: HashMap<String, String>,
}

impl Args {
    fn parse() -> Res<Args> {
        let mut it = std::env::args().skip(1);
        let cmd = it.next().ok_or("usage: loadgen <echo|bulk-up|bulk-down|churn|idle> --addr HOST:PORT ...")?;
        let mut kv = HashMap::new();
        while let Some(k) = it.next() {
            let k = k.strip_prefix("--").ok_or_else(|| format!("unexpected argument {k}"))?.to_string();
            let v = it.next().ok_or_else(|| format!("--{k} needs a value"))?;
            kv.insert(k, v);
        }
        Ok(Args { cmd, kv })
    }

    fn get<T: FromStr>(&self, k: &str, default: Option<T>) -> Res<T> {
        match self.kv.get(k) {
            Some(v) => v.parse().map_err(|_| format!("bad value for --{k}: {v}")),
            None => default.ok_or_else(|| format!("--{k} is required")),
        }
    }

    fn addr(&self) -> Res<SocketAddr> {
        self.get("addr", None)
    }

    fn duration(&self) -> Res<Duration> {
        Ok(Duration::from_secs_f64(self.get("duration", Some(1.0))?))
    }
}

/// CPU seconds (user, system) of this process and, when known, of the server.
#[derive(Clone, Copy, Default)]
struct Cpu {
    client: (f64, f64),
    server: Option<(f64, f64)>,
}

impl Cpu {
    fn now(server_pid: Option<i32>) -> Cpu {
        Cpu { client: self_cpu(), server: server_pid.and_then(proc_cpu) }
    }

    /// The JSON fields for the CPU spent between `self` and `end`.
    fn json_until(&self, end: &Cpu) -> String {
        let d = |a: (f64, f64), b: (f64, f64)| format!("{{\"user\":{:.4},\"sys\":{:.4}}}", b.0 - a.0, b.1 - a.1);
        let server = match (self.server, end.server) {
            (Some(a), Some(b)) => d(a, b),
            _ => "null".into(),
        };
        format!("\"client_cpu\":{},\"server_cpu\":{}", d(self.client, end.client), server)
    }
}

fn self_cpu() -> (f64, f64) {
    // SAFETY: getrusage fills the struct we hand it and reads nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(ru.ru_utime), s(ru.ru_stime))
}

/// utime and stime of every thread of process `pid` (fields 14 and 15 of /proc/<pid>/stat).
fn proc_cpu(pid: i32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((f.get(11)?.parse::<f64>().ok()? / hz, f.get(12)?.parse::<f64>().ok()? / hz))
}

/// 10,000 idle connections need more descriptors than the usual soft limit of 1,024.
fn raise_nofile() {
    // SAFETY: get/setrlimit only read and write the struct we hand them.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

async fn connect(addr: SocketAddr) -> Res<TcpStream> {
    let s = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The echo case runs on raw level-triggered epoll rather than tokio: per request it costs one write,
/// one read and a share of one `epoll_wait`, with no speculative read that finds nothing. The client
/// shares the machine with the server, so every cycle it saves goes to the server under test.
fn echo(a: &Args) -> Res<String> {
    let addr = a.addr()?;
    let size: usize = a.get("size", Some(1024))?;
    let conns: usize = a.get("conns", Some(1))?;
    let threads: usize = a.get::<usize>("threads", Some(1))?.clamp(1, conns.max(1));
    let duration = a.duration()?;
    let server_pid: Option<i32> = a.get("server-pid", Some(0)).ok().filter(|p| *p > 0);
    let mut shards: Vec<Vec<std::net::TcpStream>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..conns {
        let s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        shards[i % threads].push(s);
    }
    let msg: Arc<[u8]> = match a.kv.get("message-hex") {
        Some(h) => unhex(h)?.into(),
        None => vec![b'x'; size].into(),
    };
    let size = msg.len();
    let reply: usize = a.get("reply-size", Some(size))?;
    let start = Instant::now();
    let deadline = start + duration;
    let cpu0 = Cpu::now(server_pid);
    let workers: Vec<_> = shards
        .into_iter()
        .map(|streams| {
            let msg = msg.clone();
            std::thread::spawn(move || echo_shard(streams, &msg, reply, deadline))
        })
        .collect();
    let end_cpu = std::thread::spawn(move || {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        Cpu::now(server_pid)
    });
    let mut requests = 0u64;
    let mut lat = Vec::new();
    for w in workers {
        let (n, l) = w.join().map_err(|_| "an echo thread panicked".to_string())??;
        requests += n;
        lat.extend(l);
    }
    let cpu1 = end_cpu.join().map_err(|_| "timer thread panicked".to_string())?;
    lat.sort_unstable();
    let secs = duration.as_secs_f64();
    Ok(format!(
        "{{\"requests\":{requests},\"seconds\":{secs},\"rps\":{:.1},\"bytes_per_s\":{:.1},\"lat_us\":{{\"p50\":{},\"p99\":{},\"max\":{}}},{}}}",
        requests as f64 / secs,
        (requests * (size + reply) as u64) as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0),
        cpu0.json_until(&cpu1)
    ))
}

struct EchoConn {
    s: std::net::TcpStream,
    sent: usize,
    got: usize,
    t0: Instant,
    want_out: bool,
}

/// One thread's connections, each with one request in flight. A request counts if its whole echo came
/// back before `deadline`; a connection that hears nothing for 10 s past the deadline is an error.
fn echo_shard(streams: Vec<std::net::TcpStream>, msg: &[u8], reply: usize, deadline: Instant) -> Res<(u64, Vec<u32>)> {
    use std::io::{ErrorKind, Read};
    let ep = Epoll::new()?;
    let mut conns: Vec<EchoConn> = Vec::with_capacity(streams.len());
    for (i, s) in streams.into_iter().enumerate() {
        ep.add(&s, i as u64)?;
        conns.push(EchoConn { s, sent: 0, got: 0, t0: Instant::now(), want_out: false });
    }
    let mut buf = vec![0u8; reply.clamp(1, 256 * 1024)];
    let mut lat = Vec::with_capacity(1 << 16);
    let mut requests = 0u64;
    let mut in_flight = 0usize;
    // Sends as much of the current request as the kernel takes; asks for EPOLLOUT while some is left.
    let send = |c: &mut EchoConn, i: usize, ep: &Epoll| -> Res<()> {
        while c.sent < msg.len() {
            match c.s.write(&msg[c.sent..]) {
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("echo write: {e}")),
            }
        }
        let want_out = c.sent < msg.len();
        if want_out != c.want_out {
            ep.modify(&c.s, i as u64, want_out)?;
            c.want_out = want_out;
        }
        Ok(())
    };
    for (i, c) in conns.iter_mut().enumerate() {
        c.t0 = Instant::now();
        send(c, i, &ep)?;
        in_flight += 1;
    }
    let mut events: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    let hard_stop = deadline + Duration::from_secs(10);
    while in_flight > 0 {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let timeout_ms = (deadline - now).as_millis().min(1000) as i32 + 1;
        let n = ep.wait(&mut events, timeout_ms)?;
        if n == 0 && Instant::now() > hard_stop {
            return Err("a connection stalled: no echo within 10 s".into());
        }
        for ev in &events[..n] {
            let (flags, i) = (ev.events, ev.u64 as usize);
            let c = &mut conns[i];
            if flags & libc::EPOLLOUT as u32 != 0 {
                send(c, i, &ep)?;
            }
            if flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 == 0 {
                continue;
            }
            loop {
                let want = (reply - c.got).min(buf.len());
                match c.s.read(&mut buf[..want]) {
                    Ok(0) => return Err("echo: the server closed a connection".into()),
                    Ok(n) => c.got += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("echo read: {e}")),
                }
                if c.got == reply {
                    let t1 = Instant::now();
                    if t1 > deadline {
                        in_flight -= 1;
                        break;
                    }
                    requests += 1;
                    lat.push((t1 - c.t0).as_micros().min(u32::MAX as u128) as u32);
                    c.got = 0;
                    c.sent = 0;
                    c.t0 = t1;
                    send(c, i, &ep)?;
                    break;
                }
            }
        }
    }
    Ok((requests, lat))
}

/// `--message-hex`: the bytes of an even-length hexadecimal string.
fn unhex(h: &str) -> Res<Vec<u8>> {
    if h.len() % 2 != 0 || h.is_empty() {
        return Err("--message-hex needs a non-empty even number of hex digits".into());
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| format!("bad hex in --message-hex at {i}")))
        .collect()
}

/// A thin owner of an epoll descriptor.
struct Epoll(std::os::fd::OwnedFd);

impl Epoll {
    fn new() -> Res<Epoll> {
        use std::os::fd::FromRawFd;
        // SAFETY: epoll_create1 has no memory arguments; a non-negative result is a descriptor we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(format!("epoll_create1: {}", std::io::Error::last_os_error()));
        }
        Ok(Epoll(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: i32, s: &std::net::TcpStream, key: u64, out: bool) -> Res<()> {
        use std::os::fd::AsRawFd;
        let events = libc::EPOLLIN as u32 | if out { libc::EPOLLOUT as u32 } else { 0 };
        let mut ev = libc::epoll_event { events, u64: key };
        // SAFETY: both descriptors are open for the duration of the call; `ev` is a valid epoll_event.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, s.as_raw_fd(), &mut ev) } < 0 {
            return Err(format!("epoll_ctl: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    fn add(&self, s: &std::net::TcpStream, key: u64) -> Res<()> {
        self.ctl(libc::EPOLL_CTL_ADD, s, key, false)
    }

    fn modify(&self, s: &std::net::TcpStream, key: u64, out: bool) -> Res<()> {
        self.ctl(libc::EPOLL_CTL_MOD, s, key, out)
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> Res<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: the kernel writes at most `events.len()` entries into the slice.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, timeout_ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == std::io::ErrorKind::Interrupted { Ok(0) } else { Err(format!("epoll_wait: {e}")) };
        }
        Ok(n as usize)
    }
}

async fn bulk_up(a: &Args) -> Res<String> {
    bulk_up_over(a, connect).await
}

/// One connection opened by `open` (timed from there, so a TLS handshake counts) sends N bytes in
/// `chunk` writes, then half-closes; the server closes once it has read everything: that is when the
/// bytes have arrived.
pub(crate) async fn bulk_up_over<S, F, Fut>(a: &Args, open: F) -> Res<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    F: FnOnce(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Res<S>>,
{
    let addr = a.addr()?;
    let total: u64 = a.get("total", None)?;
    let chunk: usize = a.get("chunk", Some(64 * 1024))?;
    let server_pid: Option<i32> = a.get("server-pid", Some(0)).ok().filter(|p| *p > 0);
    let buf = vec![b'x'; chunk];
    let cpu0 = Cpu::now(server_pid);
    let t0 = Instant::now();
    let mut s = open(addr).await?;
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk as u64) as usize;
        s.write_all(&buf[..n]).await.map_err(|e| format!("write: {e}"))?;
        left -= n as u64;
    }
    s.shutdown().await.map_err(|e| format!("shutdown: {e}"))?;
    let mut sink = [0u8; 1024];
    loop {
        match s.read(&mut sink).await {
            Ok(0) => break,
            Ok(_) => {}
            // A TLS peer that closes without its own close_notify ends the stream just as well here.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof) => break,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = Cpu::now(server_pid);
    Ok(format!("{{\"bytes\":{total},\"seconds\":{secs:.6},\"bytes_per_s\":{:.1},{}}}", total as f64 / secs, cpu0.json_until(&cpu1)))
}

async fn bulk_down(a: &Args) -> Res<String> {
    let addr = a.addr()?;
    let total: u64 = a.get("total", None)?;
    let server_pid: Option<i32> = a.get("server-pid", Some(0)).ok().filter(|p| *p > 0);
    let mut buf = vec![0u8; 64 * 1024];
    let cpu0 = Cpu::now(server_pid);
    let t0 = Instant::now();
    let mut s = connect(addr).await?;
    let mut got = 0u64;
    loop {
        let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = Cpu::now(server_pid);
    if got != total {
        return Err(format!("bulk-down: expected {total} bytes, got {got}"));
    }
    Ok(format!("{{\"bytes\":{total},\"seconds\":{secs:.6},\"bytes_per_s\":{:.1},{}}}", total as f64 / secs, cpu0.json_until(&cpu1)))
}

async fn churn(a: &Args) -> Res<String> {
    let addr = a.addr()?;
    let workers: usize = a.get("conns", Some(16))?;
    let size: usize = a.get("size", Some(16))?;
    let duration = a.duration()?;
    let server_pid: Option<i32> = a.get("server-pid", Some(0)).ok().filter(|p| *p > 0);
    let start = TInstant::now();
    let deadline = start + duration;
    let cpu0 = Cpu::now(server_pid);
    let timer = tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        Cpu::now(server_pid)
    });
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            tokio::spawn(async move {
                let msg = vec![b'x'; size];
                let mut buf = vec![0u8; size];
                let (mut n, mut errors) = (0u64, 0u64);
                while TInstant::now() < deadline {
                    let r: std::io::Result<()> = async {
                        let mut s = TcpStream::connect(addr).await?;
                        s.set_nodelay(true)?;
                        s.write_all(&msg).await?;
                        s.read_exact(&mut buf).await?;
                        Ok(())
                    }
                    .await;
                    match r {
                        Ok(()) if TInstant::now() <= deadline => n += 1,
                        Ok(()) => {}
                        Err(_) => {
                            errors += 1;
                            if errors > 1000 {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
                (n, errors)
            })
        })
        .collect();
    let cpu1 = timer.await.map_err(|e| e.to_string())?;
    let (mut conns, mut errors) = (0u64, 0u64);
    for t in tasks {
        let (n, e) = tokio::time::timeout_at(deadline + Duration::from_secs(10), t)
            .await
            .map_err(|_| "churn: a connection stalled".to_string())?
            .map_err(|e| e.to_string())?;
        conns += n;
        errors += e;
    }
    let secs = duration.as_secs_f64();
    Ok(format!(
        "{{\"connections\":{conns},\"errors\":{errors},\"seconds\":{secs},\"cps\":{:.1},{}}}",
        conns as f64 / secs,
        cpu0.json_until(&cpu1)
    ))
}

async fn idle(a: &Args) -> Res<String> {
    let addr = a.addr()?;
    let conns: usize = a.get("conns", Some(10_000))?;
    let t0 = Instant::now();
    let mut streams = Vec::with_capacity(conns);
    // A few hundred connects in flight at a time: enough to be quick, few enough for any backlog.
    for batch in (0..conns).collect::<Vec<_>>().chunks(200) {
        let tasks: Vec<_> = batch
            .iter()
            .map(|_| {
                tokio::spawn(async move {
                    let mut s = connect(addr).await?;
                    let mut buf = [0u8; 16];
                    s.write_all(b"0123456789abcdef").await.map_err(|e| e.to_string())?;
                    s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
                    Ok::<_, String>(s)
                })
            })
            .collect();
        for t in tasks {
            streams.push(t.await.map_err(|e| e.to_string())??);
        }
    }
    println!("READY {{\"conns\":{},\"connect_seconds\":{:.3}}}", streams.len(), t0.elapsed().as_secs_f64());
    std::io::stdout().flush().ok();
    // Hold every connection open until the harness has measured the server and closes our stdin.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    })
    .await
    .map_err(|e| e.to_string())?;
    drop(streams);
    Ok(format!("{{\"conns\":{conns}}}"))
}

/// Slow readers: the echo server's writes back pile up behind them, its flow control has to stop
/// reading, and its memory shows how much it buffered meanwhile and whether it gives it back.
async fn soak(a: &Args) -> Res<String> {
    let addr = a.addr()?;
    let conns: usize = a.get("conns", Some(1000))?;
    let size: usize = a.get("size", Some(16 * 1024))?;
    let read_every = Duration::from_millis(a.get("read-every-ms", Some(100))?);
    let duration = a.duration()?;
    let mut streams = Vec::with_capacity(conns);
    for batch in (0..conns).collect::<Vec<_>>().chunks(200) {
        let tasks: Vec<_> = batch.iter().map(|_| tokio::spawn(connect(addr))).collect();
        for t in tasks {
            streams.push(t.await.map_err(|e| e.to_string())??);
        }
    }
    let deadline = TInstant::now() + duration;
    let t0 = Instant::now();
    let chunk: Arc<[u8]> = vec![b'x'; size].into();
    let mut tasks = Vec::with_capacity(conns * 2);
    for s in streams {
        let (mut r, mut w) = s.into_split();
        let chunk = chunk.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while let Ok(Ok(())) = tokio::time::timeout_at(deadline, w.write_all(&chunk)).await {
                n += chunk.len() as u64;
            }
            drop(w);
            n
        }));
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; size];
            let mut n = 0u64;
            while TInstant::now() < deadline {
                match tokio::time::timeout_at(deadline, r.read(&mut buf)).await {
                    Ok(Ok(k)) if k > 0 => n += k as u64,
                    _ => break,
                }
                tokio::time::sleep(read_every).await;
            }
            n
        }));
    }
    let (mut written, mut read) = (0u64, 0u64);
    for (i, t) in tasks.into_iter().enumerate() {
        let n = t.await.map_err(|e| e.to_string())?;
        if i % 2 == 0 { written += n } else { read += n }
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(format!("{{\"conns\":{conns},\"written\":{written},\"read\":{read},\"seconds\":{secs:.3}}}"))
}

fn main() {
    let result = Args::parse().and_then(|a| {
        raise_nofile();
        let threads: usize = a.get("threads", Some(1))?;
        let rt = if threads <= 1 || a.cmd == "echo" {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        } else {
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
        }
        .map_err(|e| e.to_string())?;
        if a.cmd == "echo" {
            return echo(&a);
        }
        if a.cmd == "udp" {
            return extra::udp(&a);
        }
        rt.block_on(async {
            match a.cmd.as_str() {
                "bulk-up" => bulk_up(&a).await,
                "bulk-down" => bulk_down(&a).await,
                "churn" => churn(&a).await,
                "idle" => idle(&a).await,
                "soak" => soak(&a).await,
                "tls-echo" => extra::tls_echo(&a).await,
                "tls-bulk-up" => extra::tls_bulk_up(&a).await,
                other => Err(format!("unknown command {other}")),
            }
        })
    });
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}
