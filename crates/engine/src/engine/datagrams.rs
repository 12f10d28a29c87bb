//! The engine's datagram endpoints: opening one, adopting a socket, looking one up.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::registry::Handle;
use crate::{adopt, datagram, Datagram, DatagramOptions, Engine, Refused};

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

    /// Makes a datagram endpoint of a socket the caller hands over (asyncio's `sock=`). Refused, the
    /// descriptor is left open.
    pub fn adopt_datagram(&self, fd: OwnedFd) -> Result<u32, Refused> {
        use crate::events::Syscall;
        let fd = adopt::Handover::new(&self.core, fd)?;
        let sock = socket2::SockRef::from(&fd);
        match sock.r#type() {
            Ok(t) if t == socket2::Type::DGRAM => {}
            Ok(_) => return Err(Refused::new(io::Error::from_raw_os_error(libc::EPROTOTYPE), Syscall::Getsockopt)),
            Err(e) => return Err(Refused::new(e, Syscall::Getsockopt)),
        }
        let place = datagram::Place::of(&sock).map_err(|e| Refused::new(e, Syscall::Getsockname))?;
        fd.set_nonblocking()?;
        let fd = fd.register(&self.core, datagram::INTEREST)?;
        let id = self.core.next_id();
        Datagram::registered(&self.core, id, fd, place, None).begin_reading();
        Ok(id)
    }
}
