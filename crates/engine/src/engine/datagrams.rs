//! The engine's datagram endpoints: opening one, looking one up (adopting a socket: `crate::adopt`).

use std::sync::Arc;

use crate::registry::Handle;
use crate::{datagram, Datagram, DatagramOptions, Engine};

impl Engine {
    /// The open datagram endpoint `id`, if there is one.
    pub fn datagram(&self, id: u32) -> Option<Arc<Datagram>> {
        self.core.find(id, |h| if let Handle::Datagram(d) = h { Some(d.clone()) } else { None })
    }

    /// Starts opening a datagram endpoint; the id is reported with `DatagramOpened` or
    /// `DatagramOpenFailed`.
    pub fn open_datagram(&self, opts: DatagramOptions) -> u32 {
        let id = self.core.next_id();
        datagram::spawn_open(&self.core, id, opts);
        id
    }

}
