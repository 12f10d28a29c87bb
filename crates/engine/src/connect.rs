//! Outgoing TCP connections: name resolution, address ordering and Happy Eyeballs (RFC 8305), as
//! asyncio's `create_connection` does them.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::task::JoinSet;

use crate::events::{Kind, Syscall, ENOTFOUND};
use crate::stream::{errno_of, FdKind, Stream};
use crate::sys::{self, errno};
use crate::Core;

/// asyncio's keyword arguments of `create_connection` that shape the attempt.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// `AF_INET`, `AF_INET6`, or 0 for either.
    pub family: i32,
    pub local_addr: Option<(String, u16)>,
    /// Start the next address this long after the previous one unless it has finished.
    pub happy_eyeballs_delay: Option<Duration>,
    /// How many addresses of the first family lead before the families alternate.
    pub interleave: Option<usize>,
}

/// Why a connect failed: an errno (or [`ENOTFOUND`]) and the call that failed.
#[derive(Debug)]
pub struct ConnectError {
    pub errno: u32,
    pub syscall: Syscall,
}

impl From<io::Error> for ConnectError {
    fn from(e: io::Error) -> Self {
        ConnectError { errno: errno_of(&e), syscall: Syscall::Connect }
    }
}

/// Resolves `host`, keeping addresses of `family` (0: all) in resolver order, without duplicates.
pub async fn resolve(host: &str, port: u16, family: i32) -> Result<Vec<SocketAddr>, ConnectError> {
    let found: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| ConnectError { errno: ENOTFOUND, syscall: Syscall::Getaddrinfo })?
            .collect(),
    };
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in found {
        add_of_family(&mut out, a, family);
    }
    if out.is_empty() {
        return Err(ConnectError { errno: ENOTFOUND, syscall: Syscall::Getaddrinfo });
    }
    Ok(out)
}

/// Appends `a` to `out` if it is of `family` (`AF_INET`, `AF_INET6`, 0: any) and not there yet.
pub(crate) fn add_of_family(out: &mut Vec<SocketAddr>, a: SocketAddr, family: i32) {
    let keep = match family {
        sys::AF_INET => a.is_ipv4(),
        sys::AF_INET6 => a.is_ipv6(),
        _ => true,
    };
    if keep && !out.contains(&a) {
        out.push(a);
    }
}

/// asyncio's `_interleave_addrinfos`: the first `first_count` addresses of the first family, then the
/// families take turns.
pub fn interleave(addrs: Vec<SocketAddr>, first_count: usize) -> Vec<SocketAddr> {
    let first_is_v4 = match addrs.first() {
        Some(a) => a.is_ipv4(),
        None => return addrs,
    };
    let (mut first, mut other): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| a.is_ipv4() == first_is_v4);
    let mut out: Vec<SocketAddr> = first.drain(..first_count.saturating_sub(1).min(first.len())).collect();
    let mut a = first.into_iter();
    let mut b = other.drain(..);
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// One connection attempt to `addr`, optionally bound to `local` first (a failed bind says `bind`, as
/// Node's errors do).
async fn attempt(addr: SocketAddr, local: Option<SocketAddr>) -> Result<Socket, ConnectError> {
    let sock = crate::sys::socket(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(local) = local {
        sys::reuse_local_address(&sock)?;
        sock.bind(&local.into()).map_err(|e| ConnectError { errno: errno_of(&e), syscall: Syscall::Bind })?;
    }
    Ok(connect_socket(sock, addr).await?)
}

async fn connect_socket(sock: Socket, addr: SocketAddr) -> io::Result<Socket> {
    let sock = sys::connect(sock, &addr.into()).await?;
    // asyncio's TCP transports start with Nagle off.
    sock.set_tcp_nodelay(true)?;
    Ok(sock)
}

/// Tries `addrs` in order; with a delay, starts the next attempt whenever the current one has not
/// finished within it (Happy Eyeballs). The first success wins and the other attempts are dropped.
pub async fn connect_any(
    addrs: &[SocketAddr],
    local: &[SocketAddr],
    delay: Option<Duration>,
) -> Result<Socket, ConnectError> {
    let local_for = |a: &SocketAddr| -> Result<Option<SocketAddr>, ConnectError> {
        if local.is_empty() {
            return Ok(None);
        }
        local
            .iter()
            .find(|l| l.is_ipv4() == a.is_ipv4())
            .copied()
            .map(Some)
            .ok_or(ConnectError { errno: errno::EAFNOSUPPORT as u32, syscall: Syscall::Connect })
    };
    let mut first_error: Option<ConnectError> = None;
    let Some(delay) = delay else {
        for a in addrs {
            let result = match local_for(a) {
                Ok(l) => attempt(*a, l).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(fd) => return Ok(fd),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        return Err(first_error.unwrap_or(ConnectError { errno: ENOTFOUND, syscall: Syscall::Getaddrinfo }));
    };
    let mut pending = addrs.iter();
    let mut running: JoinSet<Result<Socket, ConnectError>> = JoinSet::new();
    let mut start_next = |running: &mut JoinSet<_>| -> bool {
        match pending.next() {
            Some(a) => {
                let (a, l) = (*a, local_for(a));
                running.spawn(async move { attempt(a, l?).await });
                true
            }
            None => false,
        }
    };
    start_next(&mut running);
    loop {
        tokio::select! {
            done = running.join_next() => match done {
                Some(Ok(Ok(fd))) => return Ok(fd),
                Some(Ok(Err(e))) => {
                    first_error.get_or_insert(e);
                    // A failure starts the next attempt at once (RFC 8305, section 5).
                    if !start_next(&mut running) && running.is_empty() {
                        break;
                    }
                }
                Some(Err(_panicked)) => {}
                None => break,
            },
            _ = crate::reactor::sleep(delay), if !running.is_empty() => {
                start_next(&mut running);
            }
        }
    }
    Err(first_error.unwrap_or(ConnectError { errno: errno::ECONNREFUSED as u32, syscall: Syscall::Connect }))
}

/// Starts connecting stream `id`; reports [`Kind::Connected`] or [`Kind::ConnectFailed`].
pub(crate) fn spawn_connect(core: &Arc<Core>, id: u32, host: String, port: u16, opts: ConnectOptions) {
    let core2 = core.clone();
    core.handle.spawn(async move {
        let result = async {
            let mut addrs = resolve(&host, port, opts.family).await?;
            let first_count = match (opts.interleave, opts.happy_eyeballs_delay) {
                (Some(n), _) => n,
                (None, Some(_)) => 1,
                (None, None) => 0,
            };
            if first_count > 0 {
                addrs = interleave(addrs, first_count);
            }
            let local = match &opts.local_addr {
                Some((h, p)) => resolve(h, *p, opts.family).await?,
                None => Vec::new(),
            };
            connect_any(&addrs, &local, opts.happy_eyeballs_delay).await
        }
        .await;
        match result.and_then(|fd| Stream::start(&core2, id, fd, FdKind::Socket, true).map_err(ConnectError::from)) {
            Ok(_) => core2.queue.push(Kind::Connected, id, 0, 0),
            Err(e) => core2.queue.push(Kind::ConnectFailed, id, e.errno, e.syscall as u32),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn interleave_alternates_families_like_asyncio() {
        let addrs = vec![a("[::1]:1"), a("[::2]:1"), a("[::3]:1"), a("1.0.0.1:1"), a("1.0.0.2:1")];
        assert_eq!(
            interleave(addrs.clone(), 1),
            vec![a("[::1]:1"), a("1.0.0.1:1"), a("[::2]:1"), a("1.0.0.2:1"), a("[::3]:1")]
        );
        assert_eq!(
            interleave(addrs, 2),
            vec![a("[::1]:1"), a("[::2]:1"), a("1.0.0.1:1"), a("[::3]:1"), a("1.0.0.2:1")]
        );
    }

    proptest::proptest! {
        /// Any addresses and any count (the host's `interleave`): the same addresses reordered, the
        /// first family's first `count - 1` kept in front; never a panic.
        #[test]
        fn interleave_reorders_any_addresses(
            v4 in proptest::collection::vec(proptest::prelude::any::<std::net::SocketAddrV4>(), 0..6),
            v6 in proptest::collection::vec(proptest::prelude::any::<std::net::SocketAddrV6>(), 0..6),
            v6_first in proptest::prelude::any::<bool>(),
            count in proptest::prelude::any::<u32>(),
        ) {
            let (v4, v6): (Vec<SocketAddr>, Vec<SocketAddr>) = (v4.into_iter().map(Into::into).collect(), v6.into_iter().map(Into::into).collect());
            let addrs: Vec<SocketAddr> = if v6_first { v6.iter().chain(&v4).copied().collect() } else { v4.iter().chain(&v6).copied().collect() };
            let out = interleave(addrs.clone(), count as usize);
            let (mut a, mut b) = (addrs.clone(), out.clone());
            a.sort();
            b.sort();
            proptest::prop_assert_eq!(a, b);
            let front = (count as usize).saturating_sub(1).min(if v6_first { v6.len() } else { v4.len() });
            proptest::prop_assert_eq!(&out[..front], &addrs[..front]);
        }

        /// Host strings that are IP literals resolve to themselves, of the family asked for.
        #[test]
        fn ip_literals_resolve_to_themselves(ip in proptest::prelude::any::<std::net::IpAddr>(), port in proptest::prelude::any::<u16>(), family in proptest::sample::select(vec![0, sys::AF_INET, sys::AF_INET6, 12345])) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let r = rt.block_on(resolve(&ip.to_string(), port, family));
            let fits = match family { sys::AF_INET => ip.is_ipv4(), sys::AF_INET6 => ip.is_ipv6(), _ => true };
            match r {
                Ok(v) => proptest::prop_assert!(fits && v == vec![SocketAddr::new(ip, port)]),
                Err(e) => proptest::prop_assert!(!fits && e.errno == ENOTFOUND),
            }
        }
    }
}
