//! `TransportSocket`: addresses and integer socket options of a socket the engine owns (how the
//! number is borrowed and asked differs by system: `crate::sys`).

use napi_derive::napi;
use protoloop_engine::sys;
use socket2::SockAddr;

use crate::sys::{getsockopt, setsockopt, with_sock};

/// An address as `[family, host, port, flowinfo, scopeId]` (IP) or `[family, path]` (Unix).
#[napi(object)]
pub struct Address {
    pub family: i32,
    pub host: String,
    pub port: u32,
    pub flowinfo: u32,
    pub scope_id: u32,
}

pub(crate) fn to_address(a: SockAddr) -> Option<Address> {
    if let Some(sa) = a.as_socket() {
        let (flowinfo, scope_id) = match sa {
            std::net::SocketAddr::V6(v6) => (v6.flowinfo(), v6.scope_id()),
            _ => (0, 0),
        };
        return Some(Address {
            family: if sa.is_ipv4() { sys::AF_INET } else { sys::AF_INET6 },
            host: sa.ip().to_string(),
            port: sa.port() as u32,
            flowinfo,
            scope_id,
        });
    }
    #[cfg(unix)]
    if a.is_unix() {
        let host = match a.as_abstract_namespace() {
            Some(name) => format!("\0{}", String::from_utf8_lossy(name)),
            None => a.as_pathname().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
        };
        return Some(Address { family: sys::AF_UNIX, host, port: 0, flowinfo: 0, scope_id: 0 });
    }
    None
}

#[napi(catch_unwind)]
pub fn sockname(fd: i32) -> Option<Address> {
    with_sock(fd, |s| s.local_addr()).ok().and_then(to_address)
}

#[napi(catch_unwind)]
pub fn peername(fd: i32) -> Option<Address> {
    with_sock(fd, |s| s.peer_addr()).ok().and_then(to_address)
}

/// `[domain, type, protocol]` of a socket.
#[napi(catch_unwind)]
pub fn socket_kind(fd: i32) -> Option<Vec<i32>> {
    crate::sys::socket_kind(fd).ok().map(Vec::from)
}

/// An integer option's value; a negative errno when the call fails.
#[napi(js_name = "getsockopt", catch_unwind)]
pub fn get_sock_opt(fd: i32, level: i32, opt: i32) -> i64 {
    match getsockopt(fd, level, opt) {
        Ok(v) => v as i64,
        Err(e) => crate::neg_errno(&e) - (1i64 << 40),
    }
}

/// Sets an integer option; 0 or a negative errno.
#[napi(js_name = "setsockopt", catch_unwind)]
pub fn set_sock_opt(fd: i32, level: i32, opt: i32, value: i32) -> i64 {
    match setsockopt(fd, level, opt, value) {
        Ok(()) => 0,
        Err(e) => crate::neg_errno(&e),
    }
}

/// The platform's socket numbers for `constants` (`AF_*`, `SOCK_*`, `SOL_*`, `SO_*`, `IPPROTO_*`,
/// `TCP_*`, `IPV6_*`), as Python's `socket` module lists what the platform defines.
#[napi(catch_unwind)]
pub fn socket_constants() -> std::collections::HashMap<String, i32> {
    crate::sys::socket_constants()
}
