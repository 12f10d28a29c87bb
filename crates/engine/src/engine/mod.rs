//! One engine: its reactor and its registry. Each family of handles adds its own methods in a file
//! of its own beside this one (child processes in theirs, and on Unix pipes by descriptor, Unix
//! sockets and descriptors handed over in theirs).

mod datagrams;
mod servers;
mod streams;
mod tls;

use std::io;
use std::sync::Arc;

use crate::events::EventQueue;
use crate::registry::Core;
use crate::Reactor;

/// How the engine runs; the defaults are what measurement chose (see the README's benchmarks).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Run on the host's thread ([`Reactor::host`]): the host turns the engine when [`Engine::reactor_fd`]
    /// is readable. Otherwise on `io_threads` threads of its own ([`Reactor::threads`]).
    pub host_reactor: bool,
    /// Worker threads of the tokio runtime when it has threads of its own.
    pub io_threads: usize,
    /// `write()` tries the socket on the calling (host) thread when nothing is queued; otherwise every
    /// write is handed to the engine's writer task.
    pub direct_writes: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { host_reactor: false, io_threads: 1, direct_writes: true }
    }
}

/// One engine: a reactor, and the handles it serves. Dropping it closes them all (see `Drop`).
pub struct Engine {
    pub(crate) core: Arc<Core>,
    reactor: Reactor,
}

impl Drop for Engine {
    /// Closes everything the engine owns, as a host needs when the thread that used the engine ends
    /// (a Node worker): servers stop listening and their Unix socket files go, children are killed
    /// and reaped, transports are aborted, the reactor's tasks are dropped and its threads joined, so
    /// that no descriptor, child or thread outlives the engine. Events this pushes are not delivered.
    /// With a host reactor, the host must have stopped watching [`Engine::reactor_fd`].
    fn drop(&mut self) {
        self.core.close_everything();
        self.reactor.shut_down();
        self.core.release_everything();
    }
}

impl Engine {
    /// Starts the runtime on `threads` worker threads; `wake` is called whenever events are waiting.
    pub fn new(wake: Box<dyn Fn() + Send + Sync>, threads: usize) -> io::Result<Engine> {
        Self::with_options(wake, EngineOptions { io_threads: threads, ..Default::default() })
    }

    /// Starts the engine as `options` say; `wake` is called whenever events are waiting.
    pub fn with_options(wake: Box<dyn Fn() + Send + Sync>, options: EngineOptions) -> io::Result<Engine> {
        let reactor = if options.host_reactor { Reactor::host()? } else { Reactor::threads(options.io_threads)? };
        let core = Arc::new(Core::new(EventQueue::new(wake), reactor.handle().clone(), options.direct_writes));
        Ok(Engine { core, reactor })
    }

    /// With a host reactor: the descriptor that turns readable when [`Engine::turn`] has work.
    pub fn reactor_fd(&self) -> Option<std::ffi::c_int> {
        self.reactor.fd()
    }

    /// With a host reactor: does what is ready, calling `deliver` whenever the tasks are idle (see
    /// [`Reactor::turn_with`]).
    pub fn turn(&self, deliver: impl FnMut() -> bool) {
        self.reactor.turn_with(deliver)
    }

    /// With a host reactor: asks for another turn (see [`Reactor::wake`]).
    pub fn wake(&self) {
        self.reactor.wake()
    }

    /// The queue the engine's events wait in for the host.
    pub fn queue(&self) -> &EventQueue {
        &self.core.queue
    }

    /// Open streams, servers, datagram endpoints and unreaped children; the host keeps its process alive while this is
    /// not zero.
    pub fn open_handles(&self) -> usize {
        self.core.len()
    }
}
