//! The engine's byte streams: connecting, looking one up (adopting a descriptor: `crate::adopt`), forwarding one into
//! another (plain or TLS).

use std::sync::Arc;

use crate::lifecycle::Transport;
use crate::registry::Handle;
use crate::forward::{ForwardRefused, Sink};
use crate::{connect, ConnectOptions, Engine, Stream};

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

    /// Forwards everything stream transport `from` reads to stream transport `to` (plain or TLS, in any
    /// combination; see [`crate::forward`]), reading no more while `to` has over `high` bytes queued
    /// until it drained to `low`.
    pub fn forward_to(&self, from: u32, to: u32, high: usize, low: usize) -> Result<(), ForwardRefused> {
        let Some(sink) = self.stream_transport(to) else { return Err(ForwardRefused::Closed) };
        match self.stream_transport(from) {
            Some(Sink::Stream(s)) => s.forward_to(sink, high, low),
            Some(Sink::Tls(t)) => t.forward_to(sink, high, low),
            None => Err(ForwardRefused::Closed),
        }
    }

    /// The open stream transport `id`, plain or TLS, as the sending side of a forward.
    fn stream_transport(&self, id: u32) -> Option<Sink> {
        self.core.find(id, |h| match h {
            Handle::Stream(s) => Some(Sink::Stream(s.clone())),
            Handle::Tls(t) => Some(Sink::Tls(t.clone())),
            _ => None,
        })
    }
}
