//! The protoloop engine: a tokio runtime that owns sockets, pipes and processes and reports what
//! happens to them as a stream of events (see [`events`]). It knows nothing of JavaScript; the
//! bindings drive it through ids and turn its event batches into protocol callbacks.
//!
//! ```
//! use std::sync::Arc;
//! use protoloop_engine::{Engine, events::Kind};
//!
//! let engine = Engine::new(Box::new(|| {}), 1).unwrap();
//! let server = engine.listen(&["127.0.0.1".into()], 0, &Default::default()).unwrap();
//! assert!(!engine.server(server).unwrap().fds().is_empty());
//! ```

#[cfg(unix)]
pub mod adopt;
pub mod connect;
pub mod convert;
pub mod datagram;
mod engine;
pub mod events;
pub mod forward;
mod ids;
pub mod lifecycle;
#[cfg(unix)]
pub mod pipe;
pub mod reactor;
pub mod registry;
pub mod server;
pub mod stream;
pub mod subprocess;
pub mod sys;
#[cfg(unix)]
pub mod unix;
pub mod tls;
mod trim;

#[cfg(unix)]
pub use adopt::Refused;
pub use connect::ConnectOptions;
pub use datagram::{Datagram, DatagramOptions};
pub use engine::{Engine, EngineOptions};
pub use lifecycle::{Lifecycle, Transport};
#[cfg(unix)]
pub use pipe::PipeEnd;
pub use reactor::Reactor;
pub use registry::Core;
pub use server::{ListenOptions, Server};
pub use stream::{FdKind, Stream};
pub use subprocess::{Process, SpawnOptions, Spawned};
pub use tls::{TlsConn, TlsContext, TlsOptions};

pub(crate) use lifecycle::wait_until;
#[cfg(unix)]
pub(crate) use sys::register;
