//! Listening TCP sockets: asyncio's `create_server` and the `Server` object's serving switch.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{watch, Notify};

use crate::events::Kind;
use crate::stream::{FdKind, Stream};
use crate::sys::{self, Listener};
use crate::Core;

/// asyncio's keyword arguments of `create_server`.
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// `AF_INET`, `AF_INET6`, or 0 for either.
    pub family: i32,
    pub backlog: i32,
    pub reuse_address: bool,
    pub reuse_port: bool,
    pub keep_alive: bool,
}

impl Default for ListenOptions {
    fn default() -> Self {
        // asyncio turns SO_REUSEADDR on by default on POSIX; on Windows it would let another socket
        // take the port over.
        ListenOptions { family: 0, backlog: 100, reuse_address: cfg!(unix), reuse_port: false, keep_alive: false }
    }
}

pub struct Server {
    pub id: u32,
    listeners: Vec<Arc<Listener>>,
    serving: watch::Sender<bool>,
    closed: AtomicBool,
    stop: Notify,
    keep_alive: bool,
    /// Set: accepted sockets run a TLS handshake first and are reported once it is done.
    tls: std::sync::Mutex<Option<Arc<crate::tls::TlsContext>>>,
}

/// The addresses `create_server` binds for `hosts`: every interface for no host (IPv4 and IPv6), else
/// each host's resolved addresses, without duplicates.
pub fn bind_addresses(hosts: &[String], port: u16, family: i32) -> io::Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    let mut add = |a: SocketAddr| crate::connect::add_of_family(&mut out, a, family);
    if hosts.is_empty() {
        add(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
        add(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
    }
    for h in hosts {
        match h.parse::<IpAddr>() {
            Ok(ip) => add(SocketAddr::new(ip, port)),
            Err(_) => (h.as_str(), port)
                .to_socket_addrs()
                .map_err(|_| io::Error::new(io::ErrorKind::NotFound, format!("getaddrinfo ENOTFOUND {h}")))?
                .for_each(&mut add),
        }
    }
    if out.is_empty() {
        return Err(io::Error::from_raw_os_error(sys::errno::EAFNOSUPPORT));
    }
    Ok(out)
}

fn listen_socket(addr: SocketAddr, opts: &ListenOptions) -> io::Result<Socket> {
    let sock = crate::sys::socket(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if opts.reuse_address {
        sock.set_reuse_address(true)?;
    }
    if opts.reuse_port {
        sys::set_reuse_port(&sock)?;
    }
    if addr.is_ipv6() {
        // As asyncio does: an IPv6 socket serves IPv6 only, so `::` and `0.0.0.0` can both be bound.
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(opts.backlog)?;
    Ok(sock)
}

impl Server {
    /// Binds and listens on every address; serving starts with [`Server::start_serving`].
    pub(crate) fn bind(core: &Arc<Core>, id: u32, addrs: &[SocketAddr], opts: &ListenOptions) -> io::Result<Arc<Server>> {
        let _rt = core.handle.enter();
        let listeners = addrs
            .iter()
            .map(|a| Ok(Arc::new(Listener::register(listen_socket(*a, opts)?)?)))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self::from_listeners(core, id, listeners, opts.keep_alive))
    }

    /// A server of registered listening sockets (an adopted one: `Engine::listen_on`).
    pub(crate) fn from_listeners(core: &Arc<Core>, id: u32, listeners: Vec<Arc<Listener>>, keep_alive: bool) -> Arc<Server> {
        let server = Arc::new(Server {
            id,
            listeners,
            serving: watch::Sender::new(false),
            closed: AtomicBool::new(false),
            stop: Notify::new(),
            keep_alive,
            tls: std::sync::Mutex::new(None),
        });
        for l in &server.listeners {
            core.handle.spawn(server.clone().accept_loop(core.clone(), l.clone()));
        }
        core.register(id, crate::registry::Handle::Server(server.clone()));
        server
    }

    pub fn fds(&self) -> Vec<sys::RawFd> {
        self.listeners.iter().map(|l| l.raw()).collect()
    }

    /// The addresses it listens on (a port of 0 asked for is the one the system chose).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    pub(crate) fn set_tls(&self, ctx: Arc<crate::tls::TlsContext>) {
        *self.tls.lock().unwrap() = Some(ctx);
    }

    pub fn start_serving(&self) {
        if !self.closed.load(Ordering::Acquire) {
            self.serving.send_replace(true);
        }
    }

    pub fn is_serving(&self) -> bool {
        *self.serving.borrow() && !self.closed.load(Ordering::Acquire)
    }

    /// Stops listening; accepted streams stay open. The listening sockets close with their tasks.
    pub(crate) fn close(&self, core: &Core) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.serving.send_replace(false);
        core.unregister(self.id);
        // Stop listening now, as asyncio's close() does, not when the accept tasks get round to
        // dropping the sockets (see `Listener::stop`). The sockets close with their tasks.
        for l in &self.listeners {
            l.stop();
        }
        self.stop.notify_waiters();
    }

    async fn stopped(&self) {
        crate::wait_until(&self.stop, || self.closed.load(Ordering::Acquire)).await
    }

    async fn accept_loop(self: Arc<Self>, core: Arc<Core>, listener: Arc<Listener>) {
        let mut serving = self.serving.subscribe();
        loop {
            if !*serving.borrow_and_update() {
                tokio::select! {
                    _ = self.stopped() => return,
                    r = serving.changed() => if r.is_err() { return } else { continue },
                }
            }
            // Biased, and re-checked after: a connection that arrives together with `close()` must not
            // be accepted by a closed server (select! would pick either branch at random).
            let mut guard = tokio::select! {
                biased;
                _ = self.stopped() => return,
                _ = serving.changed() => continue,
                g = listener.ready() => match g { Ok(g) => g, Err(_) => return },
            };
            if !self.is_serving() {
                continue;
            }
            match guard.try_accept() {
                Ok(Ok(sock)) => {
                    // Best effort, as asyncio: a socket that refuses an option still serves.
                    let _ = sock.set_tcp_nodelay(true);
                    if self.keep_alive {
                        let _ = sock.set_keepalive(true);
                    }
                    let id = core.next_id();
                    let tls = self.tls.lock().unwrap().clone();
                    if let Some(ctx) = tls {
                        crate::tls::spawn_accept(&core, self.id, id, sock.into(), ctx);
                    } else if Stream::start(&core, id, sock, FdKind::Socket, true).is_ok() {
                        core.queue.push(Kind::Accepted, self.id, id, 0);
                    }
                }
                Ok(Err(e)) => match e.raw_os_error().map(|_| sys::errno_of(&e) as i32) {
                    // Out of descriptors: asyncio waits a second before accepting again.
                    Some(sys::errno::EMFILE | sys::errno::ENFILE | sys::errno::ENOBUFS | sys::errno::ENOMEM) => {
                        tokio::select! {
                            _ = self.stopped() => return,
                            _ = crate::reactor::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    // The peer gave up before we accepted (ECONNABORTED and friends): keep going.
                    _ => {}
                },
                Err(_would_block) => {}
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any IP literals and family (the host's `createServer` hosts): each address once, only of the
        /// family asked for, or EAFNOSUPPORT when none is; never a panic.
        #[test]
        fn bind_addresses_of_ip_literals(
            ips in proptest::collection::vec(any::<IpAddr>(), 0..5),
            port in any::<u16>(),
            family in proptest::sample::select(vec![0, sys::AF_INET, sys::AF_INET6, 12345]),
        ) {
            let hosts: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
            let fits = |a: &SocketAddr| match family { sys::AF_INET => a.is_ipv4(), sys::AF_INET6 => a.is_ipv6(), _ => true };
            let mut expected: Vec<SocketAddr> = Vec::new();
            let all = if ips.is_empty() { vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)] } else { ips.clone() };
            for a in all.into_iter().map(|ip| SocketAddr::new(ip, port)).filter(fits) {
                if !expected.contains(&a) {
                    expected.push(a);
                }
            }
            match bind_addresses(&hosts, port, family) {
                Ok(v) => prop_assert_eq!(v, expected),
                Err(e) => prop_assert!(expected.is_empty() && e.raw_os_error() == Some(sys::errno::EAFNOSUPPORT)),
            }
        }
    }
}
