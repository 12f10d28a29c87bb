//! What the raw tokio peers share with every benchmark server: a listener on 127.0.0.1 with the
//! backlog every peer uses, the `LISTENING <port>` start-up line the harness waits for, and exiting
//! when stdin closes, so that no server outlives the harness.

use std::io::{Read, Write};

use tokio::net::TcpListener;

/// Listens on `port` (0: any), announces the port and arranges the exit on end of stdin.
pub fn listen(port: u16) -> std::io::Result<TcpListener> {
    // The same backlog as every other peer: `TcpListener::bind`'s smaller queue overflowed when the
    // memory case opened 200 connections at a time (10,000 connects took 20 s instead of 1).
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(([127, 0, 0, 1], port).into())?;
    let listener = sock.listen(1024)?;
    println!("LISTENING {}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    Ok(listener)
}
