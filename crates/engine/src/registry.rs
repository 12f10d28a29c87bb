//! The registry: what every task of one engine shares, and the handles it serves by id.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;

use crate::events::EventQueue;
use crate::ids::IdMap;
use crate::{subprocess, unix, Datagram, Server, Stream, TlsConn};

/// What every task of the engine shares.
pub struct Core {
    /// Where the engine's events wait for the host.
    pub queue: Arc<EventQueue>,
    /// The runtime the engine's tasks run on.
    pub handle: Handle,
    pub(crate) direct_writes: bool,
    pub(crate) streams: IdMap<Arc<Stream>>,
    pub(crate) servers: IdMap<Arc<Server>>,
    pub(crate) datagrams: IdMap<Arc<Datagram>>,
    pub(crate) tls: IdMap<Arc<TlsConn>>,
    /// STARTTLS: sockets detached from plain streams, with the bytes read after the detach, waiting
    /// for the host to start the handshake (keyed by the TLS connection's id).
    pub(crate) detached: IdMap<OwnedFd>,
    pub(crate) processes: IdMap<Arc<subprocess::Process>>,
    /// Socket files of Unix servers to remove if the engine is torn down while they listen
    /// ([`Engine::remove_at_teardown`]), by server id.
    pub(crate) socket_files: IdMap<unix::SocketFile>,
    pub(crate) next_id: AtomicU32,
}

impl Core {
    /// A fresh id: one space for every kind of handle, so an id alone names one.
    pub fn next_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a live stream, server, datagram endpoint or TLS connection (or a socket between the
    /// halves of STARTTLS) owns descriptor `fd`.
    pub(crate) fn owns_fd(&self, fd: std::os::fd::RawFd) -> bool {
        use std::os::fd::AsRawFd;
        self.streams.lock().unwrap().values().any(|s| s.raw_fd() == fd)
            || self.servers.lock().unwrap().values().any(|s| s.fds().contains(&fd))
            || self.datagrams.lock().unwrap().values().any(|d| d.raw_fd() == fd)
            || self.tls.lock().unwrap().values().any(|t| t.raw_fd() == fd)
            || self.detached.lock().unwrap().values().any(|d| d.as_raw_fd() == fd)
    }

    /// Teardown, first half, while the tasks may still run: no server accepts any more (its socket
    /// file goes), every child is killed and reaped, every transport aborted.
    pub(crate) fn close_everything(&self) {
        for server in values(&self.servers) {
            server.close(self);
        }
        for file in std::mem::take(&mut *self.socket_files.lock().unwrap()).into_values() {
            file.remove();
        }
        for process in values(&self.processes) {
            process.kill_and_reap();
        }
        self.abort_transports();
    }

    /// Aborts every stream, TLS connection and datagram endpoint, which unregisters it and ends what
    /// ties it to others (forwarding): once their tasks are gone, nothing holds them any more.
    fn abort_transports(&self) {
        values(&self.streams).iter().for_each(|s| s.abort());
        values(&self.tls).iter().for_each(|t| t.abort());
        values(&self.datagrams).iter().for_each(|d| d.abort());
    }

    /// Teardown, second half, once no task runs: what a task registered meanwhile (a connect that
    /// completed) goes the same way, and the registry lets go of everything (a handle holds its
    /// `Core`, so the registry would otherwise keep itself and every descriptor alive).
    pub(crate) fn release_everything(&self) {
        self.abort_transports();
        for process in values(&self.processes) {
            process.kill_and_reap();
        }
        self.streams.lock().unwrap().clear();
        self.tls.lock().unwrap().clear();
        self.datagrams.lock().unwrap().clear();
        self.servers.lock().unwrap().clear();
        self.processes.lock().unwrap().clear();
        self.detached.lock().unwrap().clear();
    }
}

/// The registry's handles, taken out of its lock (closing one locks the registry again).
fn values<V: Clone>(map: &IdMap<V>) -> Vec<V> {
    map.lock().unwrap().values().cloned().collect()
}

