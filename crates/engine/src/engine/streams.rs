//! The engine's byte streams: connecting, adopting a descriptor, looking one up.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::lifecycle::Transport;
use crate::registry::Handle;
use crate::{adopt, connect, stream, ConnectOptions, Engine, FdKind, Refused, Stream};

impl Engine {
    /// The open transport `id`, whatever its kind (stream, TLS connection, datagram endpoint): what
    /// the host closes, aborts, pauses and resumes alike.
    pub fn transport(&self, id: u32) -> Option<Arc<dyn Transport>> {
        self.core.transport(id)
    }

    /// The open byte stream `id`, if there is one.
    pub fn stream(&self, id: u32) -> Option<Arc<Stream>> {
        self.core.find(id, |h| if let Handle::Stream(s) = h { Some(s.clone()) } else { None })
    }

    /// Starts connecting; the id is reported with `Connected` or `ConnectFailed`.
    pub fn connect(&self, host: String, port: u16, opts: ConnectOptions) -> u32 {
        let id = self.core.next_id();
        connect::spawn_connect(&self.core, id, host, port, opts);
        id
    }

    /// Makes a stream of a descriptor the caller hands over (asyncio's `sock=` and pipes). Refused, the
    /// descriptor is left open: it is still the caller's (see [`adopt`]).
    pub fn adopt(&self, fd: OwnedFd, kind: FdKind, readable: bool) -> Result<u32, Refused> {
        let fd = adopt::Handover::new(&self.core, fd)?;
        fd.set_nonblocking()?;
        let fd = fd.register(&self.core, stream::interest(readable))?;
        let id = self.core.next_id();
        Stream::registered(&self.core, id, fd, kind);
        Ok(id)
    }
}
