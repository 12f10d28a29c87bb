//! Datagram endpoints: open (resolve, bind, connect), adopt a descriptor, sendto (close, abort and read pausing are every transport's: transport.rs).

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use protoloop_engine::datagram::{Dest, Endpoint, Sent};
use protoloop_engine::{sys, Datagram, DatagramOptions};

use crate::socket::{to_address, Address};
use crate::{engine, neg_errno};

fn datagram(id: u32) -> Option<Arc<Datagram>> {
    engine().ok()?.datagram(id)
}

fn endpoint(family: i32, host: Option<String>, port: u32) -> Option<Endpoint> {
    host.map(|h| if family == sys::AF_UNIX { Endpoint::Path(h) } else { Endpoint::Ip(h, port as u16) })
}

/// Starts opening an endpoint; returns the id that a `DatagramOpened` or `DatagramOpenFailed` event
/// reports on. For `AF_UNIX` the hosts are paths.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn datagram_open(
    family: i32,
    local_host: Option<String>,
    local_port: u32,
    remote_host: Option<String>,
    remote_port: u32,
    reuse_port: bool,
    allow_broadcast: bool,
) -> Result<u32> {
    if family == sys::AF_UNIX {
        crate::sys::unix_sockets()?;
    }
    let opts = DatagramOptions {
        family,
        local: endpoint(family, local_host, local_port),
        remote: endpoint(family, remote_host, remote_port),
        reuse_port,
        allow_broadcast,
    };
    Ok(engine()?.open_datagram(opts))
}

/// Makes an endpoint of datagram socket `fd`, which the engine owns from now on. Returns the id or a
/// refusal (`convert::refused`), which leaves the descriptor open. (Windows: `sys::windows`.)
#[cfg(unix)]
#[napi(catch_unwind)]
pub fn datagram_adopt(fd: i32) -> Result<i64> {
    let engine = engine()?;
    if let Err(e) = crate::sys::check_fd(fd, true) {
        return Ok(crate::convert::not_adoptable(e));
    }
    // SAFETY: `check_fd` proved the descriptor an open socket; the caller hands it over and gets it
    // back unclosed if the engine refuses it.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    Ok(match engine.adopt_datagram(owned) {
        Ok(id) => id as i64,
        Err(r) => crate::convert::refused(&r),
    })
}

/// Sends one datagram to `host` (null: the endpoint's remote address). Returns 0 when the kernel took
/// it, the buffer units queued (> 0) when it waits, or a negative errno when the send failed.
#[napi(catch_unwind)]
pub fn datagram_sendto(id: u32, data: &[u8], host: Option<String>, port: u32, flowinfo: u32, scope_id: u32) -> i64 {
    let Some(d) = datagram(id) else { return 0 };
    let dest = match host {
        None => Dest::Default,
        Some(path) if d.domain == sys::AF_UNIX => match crate::sys::unix_addr(&path) {
            Ok(a) => Dest::Addr(a),
            Err(e) => return neg_errno(&e),
        },
        Some(h) => d.ip_dest(&h, port as u16, flowinfo, scope_id),
    };
    match d.sendto(data, dest) {
        Sent::Now | Sent::Dropped => 0,
        Sent::Queued(units) => units as i64,
        Sent::Failed(e) => neg_errno(&e),
    }
}

/// Sends `rows` datagrams in order with as few syscalls as the kernel allows. `data` holds them back
/// to back; `table` has five u32 (native order) per datagram: length, index into `hosts` (u32::MAX:
/// the endpoint's remote address), port, flowinfo, scope id. Returns null when the kernel took every
/// one (or the endpoint is gone), else each one's outcome as `datagram_sendto` returns it.
#[napi(catch_unwind)]
pub fn datagram_sendmany(id: u32, data: &[u8], table: &[u8], rows: u32, hosts: Vec<Option<String>>) -> Option<Vec<i64>> {
    let d = datagram(id)?;
    let rows = rows as usize;
    if table.len() < rows * 20 {
        return None;
    }
    // In range: the length check above covers every word of `rows` rows.
    let word = |i: usize| table.get(i * 4..i * 4 + 4).and_then(|w| w.try_into().ok()).map_or(0, u32::from_ne_bytes);
    let mut items = Vec::with_capacity(rows);
    let mut bad: Vec<(usize, i64)> = Vec::new();
    let mut at = 0usize;
    for r in 0..rows {
        let len = word(r * 5) as usize;
        let bytes = data.get(at..at + len)?;
        at += len;
        let dest = match hosts.get(word(r * 5 + 1) as usize) {
            None | Some(None) => Dest::Default,
            Some(Some(path)) if d.domain == sys::AF_UNIX => match crate::sys::unix_addr(path) {
                Ok(a) => Dest::Addr(a),
                Err(e) => {
                    bad.push((r, neg_errno(&e)));
                    continue;
                }
            },
            Some(Some(h)) => d.ip_dest(h, word(r * 5 + 2) as u16, word(r * 5 + 3), word(r * 5 + 4)),
        };
        items.push((bytes, dest));
    }
    let sent = d.sendto_many(items);
    if bad.is_empty() && sent.iter().all(|s| matches!(s, Sent::Now | Sent::Dropped)) {
        return None;
    }
    let mut out = Vec::with_capacity(rows);
    let mut sent = sent.into_iter();
    for r in 0..rows {
        out.push(if let Some(&(_, errno)) = bad.iter().find(|b| b.0 == r) {
            errno
        } else {
            match sent.next() {
                Some(Sent::Queued(units)) => units as i64,
                Some(Sent::Failed(e)) => neg_errno(&e),
                _ => 0,
            }
        });
    }
    Some(out)
}

/// Where datagrams go when `sendto` names no address: the connected peer or the broadcast target.
#[napi(catch_unwind)]
pub fn datagram_remote(id: u32) -> Option<Address> {
    datagram(id).and_then(|d| d.remote().cloned()).and_then(to_address)
}
