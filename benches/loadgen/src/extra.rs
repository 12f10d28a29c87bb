//! The load generator's modes for the cases that came with the other transports: UDP echo with a
//! window of datagrams in flight, and TLS (rustls, the same client for every server) echo and bulk.
//!
//! ```text
//! loadgen udp      --addr A --size N --window W --duration S      W datagrams in flight, each echo sends the next
//! loadgen tls-echo --addr A --ca PEM --size N --conns C --duration S
//! loadgen tls-bulk-up --addr A --ca PEM --total N --chunk N       send N bytes, close_notify, wait for EOF
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant as TInstant;
use tokio_rustls::rustls;

use super::{connect, Args, Cpu, Res};

/// A connected UDP socket keeps `window` datagrams in flight: each echo that comes back sends the
/// next. A datagram the kernel drops would shrink the window for good, so when nothing arrives for
/// 20 ms the window is refilled (counted as `refills`; a stall refills too, and `lost`, what never
/// came back by the end, tells the two apart).
pub fn udp(a: &Args) -> Res<String> {
    use std::io::ErrorKind;
    let addr = a.addr()?;
    let size: usize = a.get("size", Some(64))?;
    let window: usize = a.get("window", Some(64))?;
    let duration = a.duration()?;
    let server_pid: Option<i32> = a.get("server-pid", Some(0)).ok().filter(|p| *p > 0);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    sock.connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let msg = vec![b'x'; size];
    let mut buf = vec![0u8; 65536];
    // The server must answer one datagram before the clock starts.
    sock.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
    let mut answered = false;
    for _ in 0..50 {
        sock.send(&msg).map_err(|e| format!("send: {e}"))?;
        if sock.recv(&mut buf).is_ok() {
            answered = true;
            break;
        }
    }
    if !answered {
        return Err("udp: the server answered no datagram within 5 s".into());
    }
    // Let stragglers of the probe arrive and drain them.
    sock.set_read_timeout(Some(Duration::from_millis(5))).map_err(|e| e.to_string())?;
    while sock.recv(&mut buf).is_ok() {}
    sock.set_read_timeout(Some(Duration::from_millis(20))).map_err(|e| e.to_string())?;
    let cpu0 = Cpu::now(server_pid);
    let t0 = Instant::now();
    let deadline = t0 + duration;
    let (mut received, mut refills, mut short, mut sent, mut seen) = (0u64, 0u64, 0u64, 0u64, 0u64);
    // Never more than `window` in flight: an echo that was only late (not lost) when the window was
    // refilled must not grow the window for the rest of the run.
    let mut in_flight = 0usize;
    let send = |in_flight: &mut usize, sent: &mut u64| -> Res<()> {
        while *in_flight < window {
            sock.send(&msg).map_err(|e| format!("send: {e}"))?;
            *in_flight += 1;
            *sent += 1;
        }
        Ok(())
    };
    send(&mut in_flight, &mut sent)?;
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => {
                seen += 1;
                if Instant::now() >= deadline {
                    break;
                }
                if n == size {
                    received += 1;
                } else {
                    short += 1;
                }
                in_flight = in_flight.saturating_sub(1);
                send(&mut in_flight, &mut sent)?;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    break;
                }
                refills += 1;
                if refills > 1000 {
                    return Err("udp: the server stopped answering".into());
                }
                in_flight = 0;
                send(&mut in_flight, &mut sent)?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = Cpu::now(server_pid);
    // Whatever is still on its way, to tell datagrams lost from datagrams late.
    while sock.recv(&mut buf).is_ok() {
        seen += 1;
    }
    let lost = sent.saturating_sub(seen);
    Ok(format!(
        "{{\"datagrams\":{received},\"sent\":{sent},\"lost\":{lost},\"refills\":{refills},\"wrong_size\":{short},\"seconds\":{secs:.6},\"pps\":{:.1},{}}}",
        received as f64 / secs,
        cpu0.json_until(&cpu1)
    ))
}

fn connector(a: &Args) -> Res<tokio_rustls::TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let ca: String = a.get("ca", None)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).map_err(|e| format!("{ca}: {e}"))? {
        roots.add(cert.map_err(|e| format!("{ca}: {e}"))?).map_err(|e| format!("{ca}: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn tls_connect(
    tls: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
) -> Res<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let s = connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    tls.connect(name, s).await.map_err(|e| format!("TLS handshake: {e}"))
}

/// vmbench's echo over TLS: every connection (handshake done before the clock starts) sends N bytes,
/// waits for N back, repeats.
pub async fn tls_echo(a: &Args) -> Res<String> {
    let addr = a.addr()?;
    let tls = connector(a)?;
    let size: usize = a.get("size", Some(1024))?;
    let conns: usize = a.get("conns", Some(1))?;
    let duration = a.duration()?;
    let server_pid: Option<i32> = a.get("server-pid", Some(0)).ok().filter(|p| *p > 0);
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        streams.push(tls_connect(&tls, addr).await?);
    }
    let cpu0 = Cpu::now(server_pid);
    let start = TInstant::now();
    let deadline = start + duration;
    let timer = tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        Cpu::now(server_pid)
    });
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let msg = vec![b'x'; size];
                let mut buf = vec![0u8; size];
                let mut n = 0u64;
                loop {
                    s.write_all(&msg).await.map_err(|e| format!("write: {e}"))?;
                    s.read_exact(&mut buf).await.map_err(|e| format!("read: {e}"))?;
                    if TInstant::now() > deadline {
                        return Ok::<u64, String>(n);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let cpu1 = timer.await.map_err(|e| e.to_string())?;
    let mut requests = 0u64;
    for t in tasks {
        requests += tokio::time::timeout_at(deadline + Duration::from_secs(10), t)
            .await
            .map_err(|_| "tls-echo: a connection stalled".to_string())?
            .map_err(|e| e.to_string())??;
    }
    let secs = duration.as_secs_f64();
    Ok(format!(
        "{{\"requests\":{requests},\"seconds\":{secs},\"rps\":{:.1},{}}}",
        requests as f64 / secs,
        cpu0.json_until(&cpu1)
    ))
}

/// One TLS connection sends N bytes in `chunk` writes, then close_notify; the server closes once it
/// has read everything. Timed from connect (handshake included) to the server's close.
pub async fn tls_bulk_up(a: &Args) -> Res<String> {
    let tls = connector(a)?;
    super::bulk_up_over(a, |addr| tls_connect(&tls, addr)).await
}
