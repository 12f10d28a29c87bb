//! The engine's listening sockets: binding, closing (serving a descriptor handed over: `crate::adopt`).

use std::io;
use std::sync::Arc;

use crate::registry::Handle;
use crate::{server, Engine, ListenOptions, Server};

impl Engine {
    /// The listening server `id`, if there is one.
    pub fn server(&self, id: u32) -> Option<Arc<Server>> {
        self.core.find(id, |h| if let Handle::Server(s) = h { Some(s.clone()) } else { None })
    }

    /// Binds and listens on `hosts` (none: every interface). Serving starts with `start_serving`.
    pub fn listen(&self, hosts: &[String], port: u16, opts: &ListenOptions) -> io::Result<u32> {
        let addrs = server::bind_addresses(hosts, port, opts.family)?;
        let id = self.core.next_id();
        Server::bind(&self.core, id, &addrs, opts)?;
        Ok(id)
    }

    /// Stops server `id` listening (asyncio's `Server.close`); its accepted connections stay open.
    pub fn close_server(&self, id: u32) {
        if let Some(s) = self.server(id) {
            s.close(&self.core);
        }
        // Closed by its host, which removes the file itself if it wants to (`remove_at_teardown`).
        self.core.socket_files.lock().unwrap().remove(&id);
    }
}
