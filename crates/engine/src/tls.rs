//! TLS over a stream socket, on rustls (ring provider) through tokio-rustls.
//!
//! The engine owns the socket and the TLS session: it decrypts on its own threads and reports plaintext
//! with the same [`Kind::Data`], [`Kind::Eof`], [`Kind::Drained`] and [`Kind::Closed`] events as a plain
//! stream, so the host serves both with one transport class. Writes are plaintext handed to a writer
//! task, which reports them drained once rustls has encrypted them and the kernel has taken the records:
//! the host's write-buffer size counts plaintext not yet on the wire.
//!
//! Three ways in: [`spawn_connect`] (connect, then handshake as a client), [`spawn_accept`] (a server's
//! accepted socket, handshake as a server), and [`Engine::detach_for_tls`] + [`Engine::start_tls`]
//! (STARTTLS: a live plain stream hands its socket over, with any bytes already read).
//!
//! [`Engine::detach_for_tls`]: crate::Engine::detach_for_tls
//! [`Engine::start_tls`]: crate::Engine::start_tls

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, Interest, ReadBuf, WriteHalf};
use tokio::sync::Notify;

use crate::connect::{connect_any, interleave, resolve, ConnectError, ConnectOptions};
use crate::events::{Kind, Syscall};
use crate::forward::{ForwardRefused, ForwardSlot, Passed, Sink};
use crate::lifecycle::{Lifecycle, Transport};
use crate::registry::Handle;
use crate::stream::{errno_of, Stats};
use crate::sys::{self, errno, GuardOps, Io};
use crate::Core;

const READ_CHUNK: usize = 64 * 1024;

/// What the host asks for: asyncio's `ssl=` plus the TLS keyword arguments.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    pub server_side: bool,
    /// PEM blobs of trusted certificates; none: webpki's Mozilla roots (client side).
    pub ca: Vec<Vec<u8>>,
    /// PEM chain and key of our own certificate (required on the server side).
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
    pub reject_unauthorized: bool,
    pub alpn_protocols: Vec<Vec<u8>>,
    /// The name the client sends (SNI) and checks the certificate against.
    pub server_name: Option<String>,
    /// 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3); None: both.
    pub min_version: Option<u16>,
    pub max_version: Option<u16>,
    /// Server side: ask for a client certificate (verified against `ca` when `reject_unauthorized`).
    pub request_cert: bool,
    pub handshake_timeout: Duration,
    pub shutdown_timeout: Duration,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            server_side: false,
            ca: Vec::new(),
            cert: None,
            key: None,
            reject_unauthorized: true,
            alpn_protocols: Vec::new(),
            server_name: None,
            min_version: None,
            max_version: None,
            request_cert: false,
            handshake_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

enum Config {
    Client(Arc<ClientConfig>, ServerName<'static>),
    Server(Arc<ServerConfig>),
}

/// A built configuration, shared by every connection a server accepts.
pub struct TlsContext {
    config: Config,
    handshake_timeout: Duration,
    shutdown_timeout: Duration,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn versions(opts: &TlsOptions) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let (min, max) = (opts.min_version.unwrap_or(0x0303), opts.max_version.unwrap_or(0x0304));
    let v: Vec<_> = [(0x0303, &rustls::version::TLS12), (0x0304, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(n, _)| *n >= min && *n <= max)
        .map(|(_, v)| v)
        .collect();
    if v.is_empty() {
        return Err("minVersion is above maxVersion".into());
    }
    Ok(v)
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: not a PEM certificate ({e})"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate found"));
    }
    Ok(certs)
}

fn roots(opts: &TlsOptions) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if opts.ca.is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for pem in &opts.ca {
        for c in certs(pem, "ca")? {
            store.add(c).map_err(|e| format!("ca: {e}"))?;
        }
    }
    Ok(store)
}

impl TlsContext {
    /// Builds the rustls configuration; the error is a message for a `TypeError`-like failure.
    /// `host` is the connect target, the server name when neither option names one.
    pub fn new(opts: &TlsOptions, host: Option<&str>) -> Result<Arc<TlsContext>, String> {
        let versions = versions(opts)?;
        // A protocol name is 1 to 255 bytes on the wire (RFC 7301); rustls would send a broken hello.
        if let Some(p) = opts.alpn_protocols.iter().find(|p| p.is_empty() || p.len() > 255) {
            return Err(format!("alpnProtocols: a protocol name must be 1 to 255 bytes, not {}", p.len()));
        }
        let own = match (&opts.cert, &opts.key) {
            (Some(c), Some(k)) => Some((
                certs(c, "cert")?,
                PrivateKeyDer::from_pem_slice(k).map_err(|e| format!("key: not a PEM private key ({e})"))?,
            )),
            (None, None) => None,
            _ => return Err("cert and key must be given together".into()),
        };
        let config = if opts.server_side {
            let builder = ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(&versions)
                .map_err(|e| e.to_string())?;
            let builder = if opts.request_cert {
                let mut v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(opts)?), provider());
                if !opts.reject_unauthorized {
                    v = v.allow_unauthenticated();
                }
                builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
            } else {
                builder.with_no_client_auth()
            };
            let (chain, key) = own.ok_or("a TLS server needs cert and key")?;
            let mut cfg = builder.with_single_cert(chain, key).map_err(|e| format!("cert/key: {e}"))?;
            cfg.alpn_protocols = opts.alpn_protocols.clone();
            Config::Server(Arc::new(cfg))
        } else {
            let builder = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&versions)
                .map_err(|e| e.to_string())?;
            let builder = if opts.reject_unauthorized {
                builder.with_root_certificates(roots(opts)?)
            } else {
                builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
            };
            let mut cfg = match own {
                Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| format!("cert/key: {e}"))?,
                None => builder.with_no_client_auth(),
            };
            cfg.alpn_protocols = opts.alpn_protocols.clone();
            let name = opts.server_name.as_deref().or(host).ok_or("serverHostname is required")?;
            let name = ServerName::try_from(name.to_string()).map_err(|_| format!("invalid server name {name:?}"))?;
            Config::Client(Arc::new(cfg), name)
        };
        Ok(Arc::new(TlsContext { config, handshake_timeout: opts.handshake_timeout, shutdown_timeout: opts.shutdown_timeout }))
    }

    pub fn server_side(&self) -> bool {
        matches!(self.config, Config::Server(_))
    }
}

/// `rejectUnauthorized: false`: any certificate is taken, but handshake signatures are still checked,
/// so the peer must hold the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ---- the socket under the TLS session ----

/// A non-blocking stream socket (TCP or Unix) for tokio-rustls. Reads go through `ahead`: rustls asks
/// for about one record (16 KiB) at a time, so the socket is read up to [`READ_CHUNK`] at once and
/// rustls served from memory (a quarter of the `read` calls of a busy connection). It starts with the
/// bytes a plain transport had already read when it was upgraded.
struct FdIo {
    fd: Io,
    ahead: Vec<u8>,
    ahead_at: usize,
    /// The last read did not fill the chunk (the socket ran dry): `ahead`'s memory is let go once
    /// served, so that an idle connection keeps no buffer.
    ran_dry: bool,
}

impl FdIo {
    fn new(fd: sys::Owned, prefix: Vec<u8>) -> io::Result<FdIo> {
        sys::nonblocking(&fd)?;
        Ok(FdIo { fd: Io::register(fd, Interest::READABLE | Interest::WRITABLE)?, ahead: prefix, ahead_at: 0, ran_dry: true })
    }

    /// Serves what was read ahead into `buf`; false when there is nothing.
    fn serve(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let left = &self.ahead[self.ahead_at..];
        if left.is_empty() {
            return false;
        }
        let n = buf.remaining().min(left.len());
        buf.put_slice(&left[..n]);
        self.ahead_at += n;
        if self.ahead_at == self.ahead.len() {
            self.ahead_at = 0;
            if self.ran_dry {
                self.ahead = Vec::new();
            } else {
                self.ahead.clear();
            }
        }
        true
    }
}

impl AsyncRead for FdIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.serve(buf) {
            return Poll::Ready(Ok(()));
        }
        this.ahead.reserve(READ_CHUNK);
        loop {
            let mut guard = ready!(this.fd.poll_read_ready(cx))?;
            let spare = this.ahead.spare_capacity_mut();
            // SAFETY: the vector's spare capacity, `spare.len()` bytes, is ours to write.
            match unsafe { guard.try_read(spare.as_mut_ptr() as *mut u8, spare.len()) } {
                Ok(Ok(n)) => {
                    this.ran_dry = n < spare.len();
                    if this.ran_dry && n > 0 {
                        // A stream socket that gave less than asked has no more: skip the read that
                        // would say EAGAIN (as tokio's TcpStream does).
                        guard.clear_ready();
                    }
                    // SAFETY: `read` initialized the first `n` bytes of the spare capacity.
                    unsafe { this.ahead.set_len(n) };
                    this.serve(buf); // nothing for an EOF, which is what rustls must see
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for FdIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.fd.poll_write_ready(cx))?;
            // MSG_NOSIGNAL where there is one: a write to a closed peer is EPIPE, not SIGPIPE.
            match guard.try_send(data) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => {}
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.fd.shutdown_write())
    }
}

type Tls = tokio_rustls::TlsStream<FdIo>;

// ---- handshake failures as the host reports them ----

/// Why a handshake failed: Node's error code, a message, and the errno/syscall when the socket failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeError {
    pub code: String,
    pub message: String,
    pub errno: u32,
    pub syscall: Syscall,
}

impl HandshakeError {
    fn new(code: &str, message: impl Into<String>) -> Self {
        HandshakeError { code: code.into(), message: message.into(), errno: 0, syscall: Syscall::None }
    }

    /// The payload of a [`Kind::TlsFailed`] record: `code`, a tab, the message.
    pub fn payload(&self) -> Vec<u8> {
        format!("{}\t{}", self.code, self.message).into_bytes()
    }

    fn from_io(e: &io::Error) -> Self {
        if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return Self::from_rustls(tls);
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => HandshakeError {
                code: "ECONNRESET".into(),
                message: "Client network socket disconnected before secure TLS connection was established".into(),
                errno: errno::ECONNRESET as u32,
                syscall: Syscall::Handshake,
            },
            _ => HandshakeError { code: String::new(), message: e.to_string(), errno: errno_of(e), syscall: Syscall::Handshake },
        }
    }

    /// Node's (OpenSSL's) codes where one fits, so code written for `tls` keeps working.
    pub fn from_rustls(e: &rustls::Error) -> Self {
        use rustls::CertificateError as C;
        let code = match e {
            rustls::Error::InvalidCertificate(c) => match c {
                C::UnknownIssuer => "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
                C::NotValidForName | C::NotValidForNameContext { .. } => "ERR_TLS_CERT_ALTNAME_INVALID",
                C::Expired | C::ExpiredContext { .. } => "CERT_HAS_EXPIRED",
                C::NotValidYet | C::NotValidYetContext { .. } => "CERT_NOT_YET_VALID",
                C::BadSignature => "CERT_SIGNATURE_FAILURE",
                C::Revoked => "CERT_REVOKED",
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => "INVALID_PURPOSE",
                _ => "ERR_TLS_CERT_INVALID",
            },
            rustls::Error::NoCertificatesPresented => "ERR_TLS_NO_PEER_CERTIFICATE",
            rustls::Error::NoApplicationProtocol => "ERR_SSL_NO_APPLICATION_PROTOCOL",
            rustls::Error::DecryptError => "ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC",
            rustls::Error::AlertReceived(a) => return Self::new(&alert_code(*a), format!("peer sent alert: {a:?}")),
            rustls::Error::PeerIncompatible(_) => "ERR_SSL_UNSUPPORTED_PROTOCOL",
            _ => "ERR_SSL_PROTOCOL_ERROR",
        };
        Self::new(code, e.to_string())
    }
}

/// OpenSSL's spelling of a received alert, as Node reports it (`ERR_SSL_TLSV1_ALERT_UNKNOWN_CA`).
fn alert_code(a: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    let (prefix, name) = match a {
        A::BadCertificate => ("SSLV3", "BAD_CERTIFICATE"),
        A::UnsupportedCertificate => ("SSLV3", "UNSUPPORTED_CERTIFICATE"),
        A::CertificateRevoked => ("SSLV3", "CERTIFICATE_REVOKED"),
        A::CertificateExpired => ("SSLV3", "CERTIFICATE_EXPIRED"),
        A::CertificateUnknown => ("SSLV3", "CERTIFICATE_UNKNOWN"),
        A::HandshakeFailure => ("SSLV3", "HANDSHAKE_FAILURE"),
        A::UnknownCA => ("TLSV1", "UNKNOWN_CA"),
        A::AccessDenied => ("TLSV1", "ACCESS_DENIED"),
        A::DecryptError => ("TLSV1", "DECRYPT_ERROR"),
        A::ProtocolVersion => ("TLSV1", "PROTOCOL_VERSION"),
        A::InternalError => ("TLSV1", "INTERNAL_ERROR"),
        A::NoApplicationProtocol => ("TLSV1", "ALERT_NO_APPLICATION_PROTOCOL"),
        A::CertificateRequired => ("TLSV13", "CERTIFICATE_REQUIRED"),
        A::UnrecognisedName => ("TLSV1", "UNRECOGNIZED_NAME"),
        _ => ("SSLV3", "HANDSHAKE_FAILURE"),
    };
    if name.starts_with("ALERT_") {
        format!("ERR_SSL_{prefix}_{name}")
    } else {
        format!("ERR_SSL_{prefix}_ALERT_{name}")
    }
}

// ---- the connection ----

/// What the handshake settled, for `getExtraInfo`.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// `'TLSv1.2'` or `'TLSv1.3'`.
    pub version: String,
    /// The IANA name (`TLS_AES_256_GCM_SHA384`).
    pub cipher: String,
    pub cipher_bits: u32,
    pub alpn_protocol: Option<Vec<u8>>,
    pub server_name: Option<String>,
    pub server_side: bool,
    /// DER certificates the peer presented, its own first.
    pub peer_certificates: Vec<Vec<u8>>,
}

fn info_of(tls: &Tls, server_side: bool, client_name: Option<String>) -> TlsInfo {
    let (_, state) = tls.get_ref();
    let version = match state.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    };
    let suite = state.negotiated_cipher_suite().map(|s| s.suite());
    let name = suite.and_then(|s| s.as_str()).unwrap_or("unknown");
    let cipher = name.replacen("TLS13_", "TLS_", 1);
    let cipher_bits = if cipher.contains("AES_128") { 128 } else if cipher.contains("AES_256") || cipher.contains("CHACHA20") { 256 } else { 0 };
    let server_name = match tls {
        tokio_rustls::TlsStream::Server(s) => s.get_ref().1.server_name().map(str::to_string),
        tokio_rustls::TlsStream::Client(_) => client_name,
    };
    TlsInfo {
        version: version.into(),
        cipher,
        cipher_bits,
        alpn_protocol: state.alpn_protocol().map(<[u8]>::to_vec),
        server_name,
        server_side,
        peer_certificates: state.peer_certificates().map(|c| c.iter().map(|c| c.to_vec()).collect()).unwrap_or_default(),
    }
}

/// Queued plaintext, and whether the host wrote it (its drains are reported) or a forward did.
struct Chunk {
    data: Vec<u8>,
    host: bool,
}

#[derive(Default)]
struct WriteState {
    chunks: VecDeque<Chunk>,
    /// Plaintext accepted by `write` that has not gone to the kernel (as records) yet.
    queued: usize,
    /// `close` was asked for: flush, send close_notify, then finish.
    closing: bool,
    /// The reader saw the end of the peer's stream (close_notify, EOF or an error).
    read_done: bool,
    /// The writer task has taken chunks (or `unflushed`) and is sending them.
    in_flight: bool,
    /// Plaintext a direct `write` gave the session whose records did not all reach the kernel: the
    /// writer task flushes them and reports them drained.
    unflushed: usize,
    /// Of `unflushed`, the bytes the host wrote (the rest came from a forward).
    unflushed_host: usize,
}

/// One TLS connection after its handshake.
pub struct TlsConn {
    /// Id, core, closed flag, stop signal, read pause: what every transport has.
    pub life: Lifecycle,
    pub info: TlsInfo,
    write: Mutex<WriteState>,
    /// The session's sending half: the writer task's, and the host thread's for direct writes while
    /// nothing is queued. Taken out when the connection finishes, so that the socket closes with the
    /// reader.
    wr: Mutex<Option<WriteHalf<Tls>>>,
    write_wake: Notify,
    /// Woken whenever queued plaintext reaches the kernel (and on finish): forwards into this
    /// connection wait on it for room.
    room: Notify,
    /// Where the reader sends the plaintext it decrypts instead of to the host (`forward_to`).
    forward: ForwardSlot,
    /// The host asked for reads ([`TlsConn::start_reading`], once its protocol exists) or closes: until
    /// then nothing is decrypted, so the first plaintext goes where the host says (its protocol, or a
    /// forward set up in `connection_made`), never into a `Data` event ahead of it.
    reading: AtomicBool,
    shutdown_timeout: Duration,
    pub stats: Stats,
}

impl TlsConn {
    pub fn write_buffer_size(&self) -> usize {
        self.write.lock().unwrap().queued
    }

    /// Sends plaintext: encrypted and written on the calling thread when nothing is queued ahead of it
    /// (as plain streams do: a reply costs no hop to the writer task), else queued for the writer task.
    /// Returns how many bytes reached the kernel now; the rest is reported through `Drained`.
    pub fn write(&self, bufs: &[&[u8]]) -> usize {
        self.write_from(bufs, true).unwrap_or(0)
    }

    /// `write` for the host (`host`: drains are reported) or for a forward into this connection. `None`
    /// when the bytes were not taken: the connection is closed or closing.
    pub(crate) fn write_from(&self, bufs: &[&[u8]], host: bool) -> Option<usize> {
        let mut st = self.write.lock().unwrap();
        if self.is_closed() || st.closing {
            return None;
        }
        let data: std::borrow::Cow<[u8]> = match bufs {
            [one] => (*one).into(),
            _ => bufs.concat().into(),
        };
        if data.is_empty() {
            return Some(0);
        }
        let (taken, flushed) = if st.chunks.is_empty() && !st.in_flight && st.unflushed == 0 { self.write_direct(&data) } else { (0, false) };
        if flushed {
            self.stats.bytes_written.fetch_add(taken as u64, Ordering::Relaxed);
        } else {
            st.unflushed += taken;
            if host {
                st.unflushed_host += taken;
            }
            st.queued += taken;
        }
        let rest = &data[taken..];
        if !rest.is_empty() {
            st.queued += rest.len();
            st.chunks.push_back(Chunk { data: rest.to_vec(), host });
        }
        drop(st);
        if !(flushed && rest.is_empty()) {
            self.write_wake.notify_one();
        }
        Some(if flushed { taken } else { 0 })
    }

    /// Whether a forward into this connection may start: it is open and not closing.
    pub(crate) fn takes_bytes(&self) -> Result<(), ForwardRefused> {
        let st = self.write.lock().unwrap();
        if self.is_closed() {
            return Err(ForwardRefused::Closed);
        }
        if st.closing {
            return Err(ForwardRefused::TargetShut);
        }
        Ok(())
    }

    /// Waits until at most `low` bytes of plaintext are queued (or the connection is gone).
    pub(crate) async fn wait_for_room(&self, low: usize) {
        crate::wait_until(&self.room, || self.is_closed() || self.write.lock().unwrap().queued <= low).await
    }

    /// Sends the plaintext read from now on to `to` (see [`crate::forward`]) until the peer's
    /// close_notify (or EOF), an error, or `to` refusing bytes. Reports [`Kind::ForwardEnded`] with the
    /// count, or [`Kind::ForwardFailed`].
    pub fn forward_to(&self, to: impl Into<Sink>, high: usize, low: usize) -> Result<(), ForwardRefused> {
        self.forward.start(to.into(), high, low, || self.is_closed(), || self.write.lock().unwrap().read_done)?;
        self.read_wake.notify_one();
        Ok(())
    }

    /// Gives `data` to the session and flushes, without waiting: how much the session took, and whether
    /// all its records are in the kernel. A full socket, the reader holding the session or an error all
    /// just stop it here; the writer task carries on from there (and meets the error again).
    fn write_direct(&self, data: &[u8]) -> (usize, bool) {
        let Ok(mut guard) = self.wr.try_lock() else { return (0, false) };
        let Some(wr) = guard.as_mut() else { return (0, false) };
        // The writer task polls again with its own waker whenever it is handed the rest.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut taken = 0;
        while taken < data.len() {
            match Pin::new(&mut *wr).poll_write(&mut cx, &data[taken..]) {
                Poll::Ready(Ok(n)) if n > 0 => taken += n,
                _ => break,
            }
        }
        let flushed = taken > 0 && matches!(Pin::new(&mut *wr).poll_flush(&mut cx), Poll::Ready(Ok(())));
        (taken, flushed)
    }

    /// One poll of the sending half, under its lock (never held across an await).
    fn poll_wr<T>(&self, f: impl FnOnce(Pin<&mut WriteHalf<Tls>>) -> Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match self.wr.lock().unwrap().as_mut() {
            Some(wr) => f(Pin::new(wr)),
            None => Poll::Ready(Err(io::Error::from_raw_os_error(errno::EPIPE))),
        }
    }

    async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match std::future::poll_fn(|cx| self.poll_wr(|w| w.poll_write(cx, data))).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => data = &data[n..],
            }
        }
        Ok(())
    }

    /// Starts the reader (the host's protocol exists now); later calls do nothing.
    pub fn start_reading(&self) {
        if !self.reading.swap(true, Ordering::AcqRel) {
            self.read_wake.notify_one();
        }
    }

    /// The reader saw the end; returns whether a close is under way (then the connection is done).
    fn read_ended(&self) -> bool {
        let closing = {
            let mut st = self.write.lock().unwrap();
            st.read_done = true;
            st.closing
        };
        // The writer may be waiting for it after its close_notify.
        self.write_wake.notify_waiters();
        closing
    }

    async fn read_loop(self: Arc<Self>, mut rd: tokio::io::ReadHalf<Tls>) {
        let mut buf = vec![0u8; READ_CHUNK];
        // Made once, not a wait per read (see `Lifecycle::reader_stopped`); asked first in each select.
        let mut stop = self.life.reader_stopped();
        loop {
            if self.life.read_paused() || !self.reading.load(Ordering::Acquire) {
                tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    _ = self.read_wake.notified() => continue,
                }
            }
            let r = tokio::select! {
                biased;
                _ = &mut stop => return,
                r = rd.read(&mut buf) => r,
            };
            match r {
                // A close_notify, or (leniently, as Node) a bare TCP EOF: both end the peer's stream.
                Ok(0) => return self.peer_ended(None),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return self.peer_ended(None),
                Err(e) => return self.peer_ended(Some(e)),
                Ok(n) => {
                    match self.forward.pass(&buf[..n], self.id, &self.core.queue) {
                        Passed::NotForwarding => {}
                        Passed::Sent | Passed::Refused => {
                            self.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                            continue;
                        }
                        // Back-pressure: read no more until the other side drained to its low mark.
                        Passed::Full { to, low } => {
                            self.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                            tokio::select! {
                                biased;
                                _ = &mut stop => return,
                                _ = to.wait_for_room(low) => {}
                            }
                            continue;
                        }
                    }
                    if self.write.lock().unwrap().closing {
                        continue;
                    }
                    self.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                    self.stats.bytes_copied_on_receive.fetch_add(n as u64, Ordering::Relaxed);
                    self.core.queue.push_data(self.id, &buf[..n]);
                    tokio::select! {
                        biased;
                        _ = &mut stop => return,
                        _ = self.core.queue.wait_for_room() => {}
                    }
                }
            }
        }
    }

    fn peer_ended(&self, err: Option<io::Error>) {
        let closing = self.read_ended();
        // After `read_done` is set: `forward_to` checks it under the forward's lock, so a forward is
        // either ended here or refused there. A clean end ends the other side too (EOF, or close_notify
        // for TLS); an error leaves it to the host, as a plain stream's does.
        if err.is_none() {
            self.forward.end(true, self.id, &self.core.queue);
        }
        match err {
            _ if closing => self.finish(None, Syscall::None),
            Some(e) => self.finish(Some(e), Syscall::Read),
            // TLS cannot half-close: the host closes after eofReceived, whatever it returns.
            None => self.core.queue.push(Kind::Eof, self.id, 0, 0),
        }
    }

    async fn write_loop(self: Arc<Self>) {
        loop {
            let (batch, unflushed, unflushed_host): (Vec<Chunk>, usize, usize) = {
                let mut st = self.write.lock().unwrap();
                if st.chunks.is_empty() && st.unflushed == 0 {
                    if st.closing {
                        break;
                    }
                    (Vec::new(), 0, 0)
                } else {
                    st.in_flight = true;
                    (st.chunks.drain(..).collect(), std::mem::take(&mut st.unflushed), std::mem::take(&mut st.unflushed_host))
                }
            };
            if batch.is_empty() && unflushed == 0 {
                tokio::select! {
                    _ = self.stopped() => return,
                    _ = self.write_wake.notified() => continue,
                }
            }
            let n: usize = batch.iter().map(|c| c.data.len()).sum::<usize>() + unflushed;
            // Only the host's bytes are reported drained: it never counted a forward's.
            let n_host: usize = batch.iter().filter(|c| c.host).map(|c| c.data.len()).sum::<usize>() + unflushed_host;
            let r = tokio::select! {
                _ = self.stopped() => return,
                r = async {
                    for c in &batch {
                        self.write_all(&c.data).await?;
                    }
                    std::future::poll_fn(|cx| self.poll_wr(|w| w.poll_flush(cx))).await
                } => r,
            };
            if let Err(e) = r {
                return self.finish(Some(e), Syscall::Write);
            }
            self.stats.bytes_written.fetch_add(n as u64, Ordering::Relaxed);
            {
                let mut st = self.write.lock().unwrap();
                st.queued = st.queued.saturating_sub(n);
                st.in_flight = false;
            }
            self.room.notify_waiters();
            if n_host > 0 {
                self.core.queue.push(Kind::Drained, self.id, n_host as u32, 0);
            }
        }
        // Everything is sent: close_notify, then wait for the peer's (or its EOF), bounded.
        let timeout = self.shutdown_timeout;
        tokio::select! {
            _ = self.stopped() => return,
            _ = crate::reactor::timeout(timeout, async {
                let _ = std::future::poll_fn(|cx| self.poll_wr(|w| w.poll_shutdown(cx))).await;
                crate::wait_until(&self.write_wake, || self.write.lock().unwrap().read_done).await;
            }) => {}
        }
        self.finish(None, Syscall::None);
    }
}

async fn handshake(ctx: &TlsContext, io: FdIo) -> Result<(Tls, Option<String>), HandshakeError> {
    let fut = async {
        match &ctx.config {
            Config::Client(cfg, name) => {
                let s = tokio_rustls::TlsConnector::from(cfg.clone()).connect(name.clone(), io).await?;
                let name = match name {
                    ServerName::DnsName(d) => Some(d.as_ref().to_string()),
                    _ => None,
                };
                Ok::<_, io::Error>((tokio_rustls::TlsStream::Client(s), name))
            }
            Config::Server(cfg) => {
                let s = tokio_rustls::TlsAcceptor::from(cfg.clone()).accept(io).await?;
                Ok((tokio_rustls::TlsStream::Server(s), None))
            }
        }
    };
    match crate::reactor::timeout(ctx.handshake_timeout, fut).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(HandshakeError::from_io(&e)),
        Err(_elapsed) => Err(HandshakeError {
            code: "ETIMEDOUT".into(),
            message: format!("TLS handshake is taking longer than {} ms: aborting the connection", ctx.handshake_timeout.as_millis()),
            errno: errno::ETIMEDOUT as u32,
            syscall: Syscall::Handshake,
        }),
    }
}

impl Transport for TlsConn {
    /// Flushes, sends close_notify, waits (bounded by the shutdown timeout) for the peer's, then finishes.
    fn close(&self) {
        let mut st = self.write.lock().unwrap();
        if st.closing || self.is_closed() {
            return;
        }
        st.closing = true;
        drop(st);
        self.reading.store(true, Ordering::Release);
        // Reading goes on while closing, to see the peer's close_notify, but nothing more is reported
        // (a forward from this connection still passes on what it reads).
        self.life.resume_reading();
        self.write_wake.notify_one();
    }

    fn finish(&self, err: Option<io::Error>, syscall: Syscall) {
        if !self.life.end() {
            return;
        }
        {
            let mut st = self.write.lock().unwrap();
            st.chunks.clear();
            st.queued = 0;
            st.unflushed = 0;
            st.unflushed_host = 0;
        }
        self.wr.lock().unwrap().take();
        self.life.stopped_now();
        self.room.notify_waiters();
        self.forward.end(false, self.id, &self.core.queue);
        // A TLS-level failure (a bad record, an alert) has no errno: its code goes first, in the same
        // `TlsFailed` record a handshake failure uses, and the `Closed` that follows carries EPROTO.
        let tls_error = err.as_ref().and_then(|e| e.get_ref()).and_then(|i| i.downcast_ref::<rustls::Error>());
        let errno = match (tls_error, &err) {
            (Some(t), _) => {
                let e = HandshakeError::from_rustls(t);
                self.core.queue.push_with(Kind::TlsFailed, self.id, 0, syscall as u32, &e.payload());
                errno::EPROTO as u32
            }
            (None, Some(e)) => errno_of(e),
            (None, None) => 0,
        };
        self.core.queue.push(Kind::Closed, self.id, errno, syscall as u32);
    }
}

crate::lifecycle::lifecycle_of!(TlsConn);

/// Runs the handshake on `fd`; on success registers connection `id` and reports it with `ok` (on
/// `report_id`), on failure reports [`Kind::TlsFailed`] on `report_id`.
async fn establish(core: Arc<Core>, ctx: Arc<TlsContext>, id: u32, fd: sys::Owned, prefix: Vec<u8>, ok: (Kind, u32, u32)) -> Result<(), HandshakeError> {
    let io = FdIo::new(fd, prefix).map_err(|e| HandshakeError::from_io(&e))?;
    let raw_fd = io.fd.raw();
    let (tls, client_name) = handshake(&ctx, io).await?;
    let info = info_of(&tls, ctx.server_side(), client_name);
    let (rd, wr) = tokio::io::split(tls);
    let conn = Arc::new(TlsConn {
        life: Lifecycle::new(&core, id, raw_fd),
        info,
        write: Mutex::new(WriteState::default()),
        wr: Mutex::new(Some(wr)),
        write_wake: Notify::new(),
        room: Notify::new(),
        forward: ForwardSlot::default(),
        reading: AtomicBool::new(false),
        shutdown_timeout: ctx.shutdown_timeout,
        stats: Stats::default(),
    });
    core.register(id, Handle::Tls(conn.clone()));
    // Announce first: no Data of a connection may precede the event that makes it known.
    core.queue.push(ok.0, ok.1, ok.2, 0);
    core.handle.spawn(conn.clone().write_loop());
    core.handle.spawn(conn.read_loop(rd));
    Ok(())
}

fn report_failure(core: &Core, report_id: u32, e: &HandshakeError) {
    core.queue.push_with(Kind::TlsFailed, report_id, e.errno, e.syscall as u32, &e.payload());
}

/// Connects to `host:port` and runs a client handshake: [`Kind::Connected`] on success;
/// [`Kind::ConnectFailed`] when the TCP connect fails, [`Kind::TlsFailed`] when the handshake does.
pub(crate) fn spawn_connect(core: &Arc<Core>, id: u32, host: String, port: u16, opts: ConnectOptions, ctx: Arc<TlsContext>) {
    let core2 = core.clone();
    core.handle.spawn(async move {
        let tcp: Result<socket2::Socket, ConnectError> = async {
            let mut addrs = resolve(&host, port, opts.family).await?;
            let first = opts.interleave.unwrap_or(if opts.happy_eyeballs_delay.is_some() { 1 } else { 0 });
            if first > 0 {
                addrs = interleave(addrs, first);
            }
            let local = match &opts.local_addr {
                Some((h, p)) => resolve(h, *p, opts.family).await?,
                None => Vec::new(),
            };
            connect_any(&addrs, &local, opts.happy_eyeballs_delay).await
        }
        .await;
        match tcp {
            Err(e) => core2.queue.push(Kind::ConnectFailed, id, e.errno, e.syscall as u32),
            Ok(fd) => {
                if let Err(e) = establish(core2.clone(), ctx, id, fd.into(), Vec::new(), (Kind::Connected, id, 0)).await {
                    report_failure(&core2, id, &e);
                }
            }
        }
    });
}

/// Runs the handshake of a socket that server `server_id` accepted: [`Kind::Accepted`] on success,
/// [`Kind::TlsFailed`] on the server's id on failure (asyncio logs those and serves on).
pub(crate) fn spawn_accept(core: &Arc<Core>, server_id: u32, id: u32, fd: sys::Owned, ctx: Arc<TlsContext>) {
    let core2 = core.clone();
    core.handle.spawn(async move {
        if let Err(e) = establish(core2.clone(), ctx, id, fd, Vec::new(), (Kind::Accepted, server_id, id)).await {
            report_failure(&core2, server_id, &e);
        }
    });
}

/// STARTTLS, second half: runs the handshake on socket `fd` (detached from a plain stream), replaying
/// `prefix` first; reports [`Kind::Connected`] or [`Kind::TlsFailed`] on `id`.
pub(crate) fn spawn_upgrade(core: &Arc<Core>, id: u32, fd: sys::Owned, prefix: Vec<u8>, ctx: Arc<TlsContext>) {
    let core2 = core.clone();
    core.handle.spawn(async move {
        if let Err(e) = establish(core2.clone(), ctx, id, fd, prefix, (Kind::Connected, id, 0)).await {
            report_failure(&core2, id, &e);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Batch;
    use crate::Engine;
    #[cfg(unix)]
    use std::os::fd::OwnedFd;
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::Instant;

    #[test]
    fn received_alerts_are_spelled_as_openssl_does() {
        use rustls::AlertDescription as A;
        assert_eq!(alert_code(A::UnknownCA), "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA");
        assert_eq!(alert_code(A::BadCertificate), "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE");
        assert_eq!(alert_code(A::CertificateRequired), "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED");
        assert_eq!(alert_code(A::NoApplicationProtocol), "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL");
        let e = HandshakeError::from_rustls(&rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        assert_eq!(e.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
        assert!(String::from_utf8(e.payload()).unwrap().starts_with("UNABLE_TO_VERIFY_LEAF_SIGNATURE\t"));
    }

    #[test]
    fn unusable_options_are_refused_with_a_reason() {
        let client = |f: &dyn Fn(&mut TlsOptions)| {
            let mut o = TlsOptions::default();
            f(&mut o);
            TlsContext::new(&o, Some("localhost")).err()
        };
        assert!(client(&|_| {}).is_none());
        assert!(client(&|o| o.ca = vec![b"not pem".to_vec()]).unwrap().contains("ca"));
        assert!(client(&|o| o.cert = Some(b"x".to_vec())).unwrap().contains("together"));
        assert!(client(&|o| {
            o.min_version = Some(0x0304);
            o.max_version = Some(0x0303);
        })
        .is_some());
        let server = TlsOptions { server_side: true, ..Default::default() };
        assert!(TlsContext::new(&server, None).err().unwrap().contains("cert and key"));
    }

    /// PEM-shaped bytes around arbitrary base64-ish content, or arbitrary bytes.
    fn pem_like() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            ("(CERTIFICATE|PRIVATE KEY|EC PRIVATE KEY|RSA PRIVATE KEY)", "[A-Za-z0-9+/=\\n]{0,300}")
                .prop_map(|(label, body)| format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n").into_bytes()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Any options at all: a context or a reason, never a panic; a client context starts a
        /// handshake (encodes its ClientHello: ALPN names, SNI) without one either.
        #[test]
        fn any_options_build_a_context_or_say_why(
            server_side in proptest::prelude::any::<bool>(),
            ca in proptest::collection::vec(pem_like(), 0..3),
            cert in proptest::option::of(pem_like()),
            key in proptest::option::of(pem_like()),
            reject_unauthorized in proptest::prelude::any::<bool>(),
            alpn in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..4),
            server_name in proptest::option::of("\\PC{0,80}|[a-z0-9.-]{1,40}|[0-9.:]{1,30}"),
            min_version in proptest::option::of(proptest::prelude::any::<u16>()),
            max_version in proptest::option::of(proptest::prelude::any::<u16>()),
            request_cert in proptest::prelude::any::<bool>(),
        ) {
            let o = TlsOptions {
                server_side, ca, cert, key, reject_unauthorized, alpn_protocols: alpn.clone(), server_name,
                min_version, max_version, request_cert, ..Default::default()
            };
            let bad_alpn = alpn.iter().any(|p| p.is_empty() || p.len() > 255);
            match TlsContext::new(&o, Some("localhost")) {
                Ok(ctx) => {
                    proptest::prop_assert!(!bad_alpn, "an unusable ALPN name was accepted");
                    if let Config::Client(cfg, name) = &ctx.config {
                        proptest::prop_assert!(rustls::ClientConnection::new(cfg.clone(), name.clone()).is_ok());
                    }
                }
                Err(reason) => proptest::prop_assert!(!reason.is_empty()),
            }
        }
    }

    struct Pki {
        dir: PathBuf,
    }

    impl Pki {
        /// A CA and a localhost certificate it signed, made with the openssl command line.
        fn new() -> Pki {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("protoloop-engine-tls-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let run = |args: &[&str]| {
                let ok = Command::new("openssl").args(args).current_dir(&dir).output().unwrap().status.success();
                assert!(ok, "openssl {args:?}");
            };
            let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend(["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=engine test CA"]);
            run(&a);
            let mut a = vec!["req"];
            a.extend(ec);
            a.extend(["-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost"]);
            run(&a);
            std::fs::write(dir.join("srv.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
            run(&["x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", "srv.crt", "-extfile", "srv.ext"]);
            Pki { dir }
        }
        fn read(&self, f: &str) -> Vec<u8> {
            std::fs::read(self.dir.join(f)).unwrap()
        }
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    type Rec = (u32, u32, u32, u32, Vec<u8>);

    /// Drains the queue until `done` holds for what was seen so far.
    fn wait(engine: &Engine, seen: &mut Vec<Rec>, done: impl Fn(&[Rec]) -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !done(seen) {
            assert!(Instant::now() < end, "timed out; saw {seen:?}");
            let Batch { records, payload } = engine.queue().drain();
            let mut off = 0;
            for r in records.chunks(5) {
                let len = r[4] as usize;
                seen.push((r[0], r[1], r[2], r[3], payload[off..off + len].to_vec()));
                off += len;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A TLS server of `engine` on loopback with `pki`'s certificate, serving: its id and port.
    fn tls_server(engine: &Engine, pki: &Pki) -> (u32, u16) {
        let server = engine.listen(&["127.0.0.1".into()], 0, &Default::default()).unwrap();
        let sopts = TlsOptions { server_side: true, cert: Some(pki.read("srv.crt")), key: Some(pki.read("srv.key")), ..Default::default() };
        assert!(engine.set_server_tls(server, TlsContext::new(&sopts, None).unwrap()));
        engine.server(server).unwrap().start_serving();
        let port = engine.server(server).unwrap().local_addrs()[0].port();
        (server, port)
    }

    #[test]
    fn a_client_and_a_server_of_the_engine_talk_tls_and_a_wrong_name_is_refused() {
        let pki = Pki::new();
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let (server, port) = tls_server(&engine, &pki);

        let copts = TlsOptions { ca: vec![pki.read("ca.crt")], alpn_protocols: vec![], ..Default::default() };
        let client = engine.connect_tls("127.0.0.1".into(), port, Default::default(), TlsContext::new(&copts, Some("localhost")).unwrap());
        let mut seen = Vec::new();
        let connected = |s: &[Rec]| s.iter().any(|r| r.0 == Kind::Connected as u32 && r.1 == client);
        let accepted = |s: &[Rec]| s.iter().find(|r| r.0 == Kind::Accepted as u32 && r.1 == server).map(|r| r.2);
        wait(&engine, &mut seen, |s| connected(s) && accepted(s).is_some());
        let peer = accepted(&seen).unwrap();
        let c = engine.tls(client).unwrap();
        assert_eq!(c.info.version, "TLSv1.3");
        assert_eq!(c.info.server_name.as_deref(), Some("localhost"));
        assert_eq!(c.info.peer_certificates.len(), 1);
        assert!(engine.tls(peer).unwrap().info.server_side);
        // As the host does once each protocol exists.
        c.start_reading();
        engine.tls(peer).unwrap().start_reading();

        // Sent on this thread when the session is free (9 bytes reported now), else by the writer task
        // (reported by `Drained`).
        let now = c.write(&[b"hello ", b"tls"]);
        assert!(now == 0 || now == 9, "{now}");
        let data_on = |id: u32| move |s: &[Rec]| s.iter().filter(|r| r.0 == Kind::Data as u32 && r.1 == id).flat_map(|r| r.4.clone()).collect::<Vec<u8>>();
        wait(&engine, &mut seen, |s| data_on(peer)(s) == b"hello tls");
        if now == 0 {
            wait(&engine, &mut seen, |s| s.iter().any(|r| r.0 == Kind::Drained as u32 && r.1 == client));
        }
        assert_eq!(c.write_buffer_size(), 0);

        // close: close_notify reaches the server as the end of the stream; it closes too; both finish.
        c.close();
        wait(&engine, &mut seen, |s| s.iter().any(|r| r.0 == Kind::Eof as u32 && r.1 == peer));
        engine.tls(peer).unwrap().close();
        let closed = |id: u32| move |s: &[Rec]| s.iter().any(|r| r.0 == Kind::Closed as u32 && r.1 == id && r.2 == 0);
        wait(&engine, &mut seen, |s| closed(client)(s) && closed(peer)(s));
        assert!(engine.tls(client).is_none() && engine.tls(peer).is_none());

        let wrong = TlsOptions { ca: vec![pki.read("ca.crt")], server_name: Some("wrong.example".into()), ..Default::default() };
        let bad = engine.connect_tls("127.0.0.1".into(), port, Default::default(), TlsContext::new(&wrong, None).unwrap());
        wait(&engine, &mut seen, |s| s.iter().any(|r| r.0 == Kind::TlsFailed as u32 && r.1 == bad));
        let rec = seen.iter().find(|r| r.0 == Kind::TlsFailed as u32 && r.1 == bad).unwrap();
        assert!(String::from_utf8_lossy(&rec.4).starts_with("ERR_TLS_CERT_ALTNAME_INVALID\t"));
        // The server side saw the client's alert and reports its failure on the server's id.
        wait(&engine, &mut seen, |s| s.iter().any(|r| r.0 == Kind::TlsFailed as u32 && r.1 == server));
        engine.close_server(server);
        assert_eq!(engine.open_handles(), 0);
    }

    #[test]
    fn starttls_upgrades_both_ends_of_a_plain_connection() {
        let pki = Pki::new();
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let server = engine.listen(&["127.0.0.1".into()], 0, &Default::default()).unwrap();
        engine.server(server).unwrap().start_serving();
        let port = engine.server(server).unwrap().local_addrs()[0].port();
        let client = engine.connect("127.0.0.1".into(), port, Default::default());
        let mut seen = Vec::new();
        let accepted = |s: &[Rec]| s.iter().find(|r| r.0 == Kind::Accepted as u32 && r.1 == server).map(|r| r.2);
        wait(&engine, &mut seen, |s| accepted(s).is_some() && s.iter().any(|r| r.0 == Kind::Connected as u32 && r.1 == client));
        let peer = accepted(&seen).unwrap();
        engine.stream(peer).unwrap().start_reading(false);
        engine.stream(client).unwrap().write(&[b"STARTTLS"]);
        let data_on = |id: u32| move |s: &[Rec]| s.iter().filter(|r| r.0 == Kind::Data as u32 && r.1 == id).flat_map(|r| r.4.clone()).collect::<Vec<u8>>();
        wait(&engine, &mut seen, |s| data_on(peer)(s) == b"STARTTLS");

        // Both ends give their sockets up; each reports Detached after its last plain event.
        let tls_peer = engine.detach_for_tls(peer).unwrap();
        let tls_client = engine.detach_for_tls(client).unwrap();
        let detached = |id: u32| move |s: &[Rec]| s.iter().any(|r| r.0 == Kind::Detached as u32 && r.1 == id);
        wait(&engine, &mut seen, |s| detached(peer)(s) && detached(client)(s));
        assert!(engine.stream(peer).is_none() && engine.stream(client).is_none());
        assert!(!seen.iter().any(|r| r.0 == Kind::Closed as u32), "a detached stream reports no Closed");

        let sopts = TlsOptions { server_side: true, cert: Some(pki.read("srv.crt")), key: Some(pki.read("srv.key")), ..Default::default() };
        let copts = TlsOptions { ca: vec![pki.read("ca.crt")], ..Default::default() };
        assert!(engine.start_tls(tls_peer, b"", TlsContext::new(&sopts, None).unwrap()));
        assert!(engine.start_tls(tls_client, b"", TlsContext::new(&copts, Some("localhost")).unwrap()));
        let connected = |id: u32| move |s: &[Rec]| s.iter().any(|r| r.0 == Kind::Connected as u32 && r.1 == id);
        wait(&engine, &mut seen, |s| connected(tls_peer)(s) && connected(tls_client)(s));
        engine.tls(tls_peer).unwrap().start_reading();
        engine.tls(tls_client).unwrap().start_reading();
        engine.tls(tls_client).unwrap().write(&[b"secret"]);
        wait(&engine, &mut seen, |s| data_on(tls_peer)(s) == b"secret");
        engine.tls(tls_client).unwrap().abort();
        engine.tls(tls_peer).unwrap().abort();
        engine.close_server(server);
        assert_eq!(engine.open_handles(), 0);
    }

    // Unix: the plain ends are socket pairs.
    #[cfg(unix)]
    #[test]
    fn forwards_run_between_tls_and_plain_streams_and_pass_their_ends_on() {
        use std::io::{Read, Write};
        let pki = Pki::new();
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let (server, port) = tls_server(&engine, &pki);
        let copts = TlsOptions { ca: vec![pki.read("ca.crt")], ..Default::default() };
        let client = engine.connect_tls("127.0.0.1".into(), port, Default::default(), TlsContext::new(&copts, Some("localhost")).unwrap());
        let mut seen = Vec::new();
        let accepted = |s: &[Rec]| s.iter().find(|r| r.0 == Kind::Accepted as u32 && r.1 == server).map(|r| r.2);
        wait(&engine, &mut seen, |s| accepted(s).is_some() && s.iter().any(|r| r.0 == Kind::Connected as u32 && r.1 == client));
        let peer = accepted(&seen).unwrap();

        // TLS -> plain: what the client sends reaches a plain stream; its close_notify half-closes it.
        let (plain, mut far) = std::os::unix::net::UnixStream::pair().unwrap();
        let plain = engine.adopt(OwnedFd::from(plain), crate::FdKind::Socket, true).unwrap();
        engine.stream(plain).unwrap().start_reading(false);
        engine.forward_to(peer, plain, 64 << 10, 16 << 10).unwrap();
        engine.tls(peer).unwrap().start_reading();
        let c = engine.tls(client).unwrap();
        c.start_reading();
        c.write(&[b"through tls"]);
        c.close();
        let mut got = Vec::new();
        far.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        far.read_to_end(&mut got).unwrap(); // to EOF: the half-close came through
        assert_eq!(got, b"through tls");
        let ended = |id: u32, n: u32| move |s: &[Rec]| s.iter().any(|r| r.0 == Kind::ForwardEnded as u32 && r.1 == id && r.2 == n);
        wait(&engine, &mut seen, ended(peer, 11));

        // plain -> TLS: a plain stream's EOF flushes what it forwarded, then closes the TLS side with
        // close_notify (the other end sees the bytes, then its end of stream).
        let client2 = engine.connect_tls("127.0.0.1".into(), port, Default::default(), TlsContext::new(&copts, Some("localhost")).unwrap());
        let accepted2 = |s: &[Rec]| s.iter().filter(|r| r.0 == Kind::Accepted as u32 && r.1 == server).nth(1).map(|r| r.2);
        wait(&engine, &mut seen, |s| accepted2(s).is_some() && s.iter().any(|r| r.0 == Kind::Connected as u32 && r.1 == client2));
        let peer2 = accepted2(&seen).unwrap();
        engine.tls(peer2).unwrap().start_reading();
        let (plain2, mut far2) = std::os::unix::net::UnixStream::pair().unwrap();
        let plain2 = engine.adopt(OwnedFd::from(plain2), crate::FdKind::Socket, true).unwrap();
        engine.forward_to(plain2, client2, 64 << 10, 16 << 10).unwrap();
        engine.stream(plain2).unwrap().start_reading(false);
        engine.tls(client2).unwrap().start_reading();
        far2.write_all(&vec![7u8; 1 << 20]).unwrap();
        far2.shutdown(std::net::Shutdown::Write).unwrap();
        let data_len = |id: u32| move |s: &[Rec]| s.iter().filter(|r| r.0 == Kind::Data as u32 && r.1 == id).map(|r| r.4.len()).sum::<usize>();
        wait(&engine, &mut seen, |s| data_len(peer2)(s) == 1 << 20 && s.iter().any(|r| r.0 == Kind::Eof as u32 && r.1 == peer2));
        wait(&engine, &mut seen, ended(plain2, 1 << 20));
        // The close_notify exchange finishes the TLS side once its peer answers.
        engine.tls(peer2).unwrap().close();
        wait(&engine, &mut seen, |s| s.iter().any(|r| r.0 == Kind::Closed as u32 && r.1 == client2));
        for id in [plain, plain2] {
            engine.stream(id).unwrap().abort();
        }
        if let Some(t) = engine.tls(peer) {
            t.abort();
        }
        engine.close_server(server);
    }

    #[cfg(unix)]
    #[test]
    fn fd_io_replays_the_prefix_before_the_socket() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            std::io::Write::write_all(&mut &b, b" world").unwrap();
            let mut io = FdIo::new(OwnedFd::from(a), b"hello".to_vec()).unwrap();
            let mut got = vec![0u8; 11];
            io.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"hello world");
        });
    }
}
