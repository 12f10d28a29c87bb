//! TLS connections: connect, serve, STARTTLS, and the stream operations on a TLS connection's id.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use protoloop_engine::{ConnectOptions, TlsConn, TlsContext, TlsOptions};

use crate::engine;

/// asyncio's `ssl=` and TLS keyword arguments, checked and normalised by `ts/tls.ts`.
#[napi(object)]
pub struct TlsOpts {
    pub server_side: bool,
    pub ca: Vec<Buffer>,
    pub cert: Option<Buffer>,
    pub key: Option<Buffer>,
    pub reject_unauthorized: bool,
    pub alpn_protocols: Vec<String>,
    pub server_name: Option<String>,
    /// 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3).
    pub min_version: Option<u32>,
    pub max_version: Option<u32>,
    pub request_cert: bool,
    pub handshake_timeout_ms: f64,
    pub shutdown_timeout_ms: f64,
}

fn context(o: &TlsOpts, host: Option<&str>) -> Result<Arc<TlsContext>> {
    let opts = TlsOptions {
        server_side: o.server_side,
        ca: o.ca.iter().map(|b| b.to_vec()).collect(),
        cert: o.cert.as_ref().map(|b| b.to_vec()),
        key: o.key.as_ref().map(|b| b.to_vec()),
        reject_unauthorized: o.reject_unauthorized,
        alpn_protocols: o.alpn_protocols.iter().map(|p| p.as_bytes().to_vec()).collect(),
        server_name: o.server_name.clone(),
        min_version: o.min_version.map(|v| v as u16),
        max_version: o.max_version.map(|v| v as u16),
        request_cert: o.request_cert,
        handshake_timeout: crate::convert::duration("options.sslHandshakeTimeoutMs", o.handshake_timeout_ms)?,
        shutdown_timeout: crate::convert::duration("options.sslShutdownTimeoutMs", o.shutdown_timeout_ms)?,
    };
    TlsContext::new(&opts, host).map_err(|m| Error::new(Status::InvalidArg, m))
}

fn conn(id: u32) -> Option<Arc<TlsConn>> {
    engine().ok()?.tls(id)
}

/// Checks `opts` by building them; throws with the reason when they are unusable (bad PEM and such).
#[napi(catch_unwind)]
pub fn tls_check(opts: TlsOpts, host: Option<String>) -> Result<()> {
    context(&opts, host.as_deref()).map(|_| ())
}

/// Connects and runs a client handshake; the id is reported with `Connected`, `ConnectFailed` or
/// `TlsFailed`.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn tls_connect(
    host: String,
    port: u32,
    family: i32,
    local_host: Option<String>,
    local_port: u32,
    happy_eyeballs_delay_ms: Option<f64>,
    interleave: Option<u32>,
    opts: TlsOpts,
) -> Result<u32> {
    let ctx = context(&opts, Some(&host))?;
    let copts = ConnectOptions {
        family,
        local_addr: local_host.map(|h| (h, local_port as u16)),
        happy_eyeballs_delay: crate::convert::opt_duration("options.happyEyeballsDelayMs", happy_eyeballs_delay_ms)?,
        interleave: interleave.map(|n| n as usize),
    };
    Ok(engine()?.connect_tls(host, port as u16, copts, ctx))
}

/// Makes server `id` serve TLS (before it starts serving).
#[napi(catch_unwind)]
pub fn tls_serve(id: u32, opts: TlsOpts) -> Result<bool> {
    let ctx = context(&opts, None)?;
    Ok(engine()?.set_server_tls(id, ctx))
}

/// STARTTLS, first half: returns the id the TLS connection will have, or -1 when `id` is not open.
#[napi(catch_unwind)]
pub fn tls_detach(id: u32) -> Result<i64> {
    Ok(engine()?.detach_for_tls(id).map_or(-1, |n| n as i64))
}

/// STARTTLS, second half, after the `Detached` event: handshake on the detached socket, `prefix` first.
#[napi(catch_unwind)]
pub fn tls_upgrade(new_id: u32, prefix: &[u8], opts: TlsOpts, host: Option<String>) -> Result<bool> {
    let ctx = context(&opts, host.as_deref())?;
    Ok(engine()?.start_tls(new_id, prefix, ctx))
}

/// What the handshake settled, for `getExtraInfo`.
#[napi(object)]
pub struct TlsInfoJs {
    pub version: String,
    pub cipher: String,
    pub bits: u32,
    pub alpn_protocol: Option<String>,
    pub server_name: Option<String>,
    pub server_side: bool,
    /// The peer's certificate chain (DER), its own first.
    pub peer_certificates: Vec<Buffer>,
}

#[napi(catch_unwind)]
pub fn tls_info(id: u32) -> Option<TlsInfoJs> {
    conn(id).map(|c| {
        let i = &c.info;
        TlsInfoJs {
            version: i.version.clone(),
            cipher: i.cipher.clone(),
            bits: i.cipher_bits,
            alpn_protocol: i.alpn_protocol.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()),
            server_name: i.server_name.clone(),
            server_side: i.server_side,
            peer_certificates: i.peer_certificates.iter().map(|c| Buffer::from(c.clone())).collect(),
        }
    })
}

// The stream operations, by the same names as `stream.rs` with a `tls` prefix.

#[napi(catch_unwind)]
pub fn tls_write(id: u32, data: &[u8]) -> u32 {
    conn(id).map_or(0, |c| c.write(&[data]) as u32)
}

#[napi(catch_unwind)]
pub fn tls_writev(id: u32, data: Vec<Uint8Array>) -> u32 {
    let bufs: Vec<&[u8]> = data.iter().map(|b| &b[..]).collect();
    conn(id).map_or(0, |c| c.write(&bufs) as u32)
}

/// TLS cannot half-close; the TypeScript layer refuses `writeEof` before it gets here.
#[napi(catch_unwind)]
pub fn tls_write_eof(_id: u32) {}

#[napi(catch_unwind)]
pub fn tls_close(id: u32) {
    if let Some(c) = conn(id) {
        c.close();
    }
}

#[napi(catch_unwind)]
pub fn tls_abort(id: u32) {
    if let Some(c) = conn(id) {
        c.abort();
    }
}

/// Starts reading once the transport's protocol exists (`connectionMade` ran).
#[napi(catch_unwind)]
pub fn tls_start_reading(id: u32) {
    if let Some(c) = conn(id) {
        c.start_reading();
    }
}

#[napi(catch_unwind)]
pub fn tls_pause_reading(id: u32) {
    if let Some(c) = conn(id) {
        c.pause_reading();
    }
}

#[napi(catch_unwind)]
pub fn tls_resume_reading(id: u32) {
    if let Some(c) = conn(id) {
        c.resume_reading();
    }
}

#[napi(catch_unwind)]
pub fn tls_fd(id: u32) -> i32 {
    conn(id).map_or(-1, |c| c.raw_fd())
}
