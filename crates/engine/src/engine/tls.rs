//! The engine's TLS connections: connecting, serving, and STARTTLS on a plain stream.

use std::sync::Arc;

use crate::registry::Handle;
use crate::{events, tls, ConnectOptions, Engine, TlsConn, TlsContext};

impl Engine {
    /// The open TLS connection `id`, if there is one.
    pub fn tls(&self, id: u32) -> Option<Arc<TlsConn>> {
        self.core.find(id, |h| if let Handle::Tls(t) = h { Some(t.clone()) } else { None })
    }

    /// Connects and runs a TLS client handshake; reported as `Connected`, `ConnectFailed` or `TlsFailed`.
    pub fn connect_tls(&self, host: String, port: u16, opts: ConnectOptions, ctx: Arc<TlsContext>) -> u32 {
        let id = self.core.next_id();
        tls::spawn_connect(&self.core, id, host, port, opts, ctx);
        id
    }

    /// Serves TLS on server `id`: each accepted socket is reported once its handshake is done.
    pub fn set_server_tls(&self, id: u32, ctx: Arc<TlsContext>) -> bool {
        self.server(id).map(|s| s.set_tls(ctx)).is_some()
    }

    /// STARTTLS, first half: plain stream `id` stops reading, flushes what it has queued and gives its
    /// socket up without a `Closed` event; `Detached(id, new_id)` follows every event it sent. Returns
    /// the id of the TLS connection to come, or `None` when no such stream is open.
    pub fn detach_for_tls(&self, id: u32) -> Option<u32> {
        let stream = self.stream(id)?;
        let new_id = self.core.next_id();
        stream.begin_detach();
        let core = self.core.clone();
        self.core.handle.spawn(async move {
            if let Some(fd) = stream.detach().await {
                core.register(new_id, Handle::Detached(fd));
                core.queue.push(events::Kind::Detached, id, new_id, 0);
            }
        });
        Some(new_id)
    }

    /// STARTTLS, second half: the handshake on the socket detached for `new_id`, replaying `prefix`
    /// (bytes the host had received but not delivered to its protocol) before the socket's.
    pub fn start_tls(&self, new_id: u32, prefix: &[u8], ctx: Arc<TlsContext>) -> bool {
        let Some(fd) = self.core.take_detached(new_id) else { return false };
        tls::spawn_upgrade(&self.core, new_id, fd, prefix.to_vec(), ctx);
        true
    }
}
