//! The registry: what every task of one engine shares, and the handles it serves by id. One id space
//! and one map for every kind of handle, so that the host closes, aborts, pauses or resumes any
//! transport by its id alone.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle as Runtime;

use crate::events::EventQueue;
use crate::ids::IdMap;
use crate::lifecycle::Transport;
use crate::trim::HeapTrim;
use crate::sys;
use crate::{Datagram, Process, Server, Stream, TlsConn};

/// One entry of the registry: whatever an id names while it is open.
pub(crate) enum Handle {
    Stream(Arc<Stream>),
    Tls(Arc<TlsConn>),
    Datagram(Arc<Datagram>),
    Server(Arc<Server>),
    Process(Arc<Process>),
    /// STARTTLS: a socket detached from a plain stream, waiting for the host to start the handshake
    /// (keyed by the TLS connection's id).
    Detached(sys::Owned),
}

impl Handle {
    /// The transport behind this entry, for what every kind of transport does alike.
    fn transport(&self) -> Option<Arc<dyn Transport>> {
        match self {
            Handle::Stream(s) => Some(s.clone()),
            Handle::Tls(t) => Some(t.clone()),
            Handle::Datagram(d) => Some(d.clone()),
            Handle::Server(_) | Handle::Process(_) | Handle::Detached(_) => None,
        }
    }

    #[cfg_attr(not(unix), allow(dead_code))] // adoption's check, and only Unix adopts descriptors
    fn owns_fd(&self, fd: sys::RawFd) -> bool {
        match self {
            Handle::Server(s) => s.fds().contains(&fd),
            Handle::Detached(d) => sys::raw_of(d) == fd,
            Handle::Process(_) => false,
            _ => self.transport().is_some_and(|t| t.raw_fd() == fd),
        }
    }
}

/// What every task of the engine shares.
pub struct Core {
    /// Where the engine's events wait for the host.
    pub queue: Arc<EventQueue>,
    /// The runtime the engine's tasks run on.
    pub handle: Runtime,
    pub(crate) direct_writes: bool,
    handles: IdMap<Handle>,
    /// Socket files of Unix servers to remove if the engine is torn down while they listen
    /// ([`crate::Engine::remove_at_teardown`]), by server id.
    pub(crate) socket_files: IdMap<sys::SocketFile>,
    next_id: AtomicU32,
    /// When to give freed memory back as handles close.
    trim: HeapTrim,
}

impl Core {
    pub(crate) fn new(queue: Arc<EventQueue>, handle: Runtime, direct_writes: bool) -> Core {
        Core { queue, handle, direct_writes, handles: IdMap::default(), socket_files: IdMap::default(), next_id: AtomicU32::new(1), trim: HeapTrim::default() }
    }

    /// A fresh id: one space for every kind of handle, so an id alone names one.
    pub fn next_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes `handle` known as `id` until [`Core::unregister`].
    pub(crate) fn register(&self, id: u32, handle: Handle) {
        let open = {
            let mut handles = self.handles.lock().unwrap();
            handles.insert(id, handle);
            handles.len()
        };
        self.trim.opened(open);
    }

    pub(crate) fn unregister(&self, id: u32) {
        let open = {
            let mut handles = self.handles.lock().unwrap();
            handles.remove(&id);
            handles.len()
        };
        self.trim.closed(open, &self.handle);
    }

    /// What `pick` takes from entry `id`, if there is one.
    pub(crate) fn find<T>(&self, id: u32, pick: impl FnOnce(&Handle) -> Option<T>) -> Option<T> {
        self.handles.lock().unwrap().get(&id).and_then(pick)
    }

    /// The open transport `id`, of whatever kind.
    pub(crate) fn transport(&self, id: u32) -> Option<Arc<dyn Transport>> {
        self.find(id, Handle::transport)
    }

    /// STARTTLS: takes the socket detached for `id` out of the registry.
    pub(crate) fn take_detached(&self, id: u32) -> Option<sys::Owned> {
        let mut handles = self.handles.lock().unwrap();
        match handles.get(&id) {
            Some(Handle::Detached(_)) => match handles.remove(&id) {
                Some(Handle::Detached(fd)) => Some(fd),
                _ => None,
            },
            _ => None,
        }
    }

    /// Open handles of every kind.
    pub(crate) fn len(&self) -> usize {
        self.handles.lock().unwrap().len()
    }

    /// What `pick` takes from every entry, out of the registry's lock (closing one locks it again).
    fn each<T>(&self, pick: impl FnMut(&Handle) -> Option<T>) -> Vec<T> {
        self.handles.lock().unwrap().values().filter_map(pick).collect()
    }

    /// Whether a live stream, server, datagram endpoint or TLS connection (or a socket between the
    /// halves of STARTTLS) owns descriptor `fd`.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn owns_fd(&self, fd: sys::RawFd) -> bool {
        self.handles.lock().unwrap().values().any(|h| h.owns_fd(fd))
    }

    fn kill_processes(&self) {
        for process in self.each(|h| if let Handle::Process(p) = h { Some(p.clone()) } else { None }) {
            process.kill_and_reap();
        }
    }

    /// Teardown, first half, while the tasks may still run: no server accepts any more (its socket
    /// file goes), every child is killed and reaped, every transport aborted.
    pub(crate) fn close_everything(&self) {
        for server in self.each(|h| if let Handle::Server(s) = h { Some(s.clone()) } else { None }) {
            server.close(self);
        }
        for file in std::mem::take(&mut *self.socket_files.lock().unwrap()).into_values() {
            file.remove();
        }
        self.kill_processes();
        self.abort_transports();
    }

    /// Aborts every stream, TLS connection and datagram endpoint, which unregisters it and ends what
    /// ties it to others (forwarding): once their tasks are gone, nothing holds them any more.
    fn abort_transports(&self) {
        self.each(Handle::transport).iter().for_each(|t| t.abort());
    }

    /// Teardown, second half, once no task runs: what a task registered meanwhile (a connect that
    /// completed) goes the same way, and the registry lets go of everything (a handle holds its
    /// `Core`, so the registry would otherwise keep itself and every descriptor alive).
    pub(crate) fn release_everything(&self) {
        self.abort_transports();
        self.kill_processes();
        self.handles.lock().unwrap().clear();
    }
}
