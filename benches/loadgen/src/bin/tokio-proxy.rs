//! The raw tokio proxy of the proxy case: a task per connection, `copy_bidirectional` between the
//! client and a fresh upstream connection to `--target HOST:PORT` (or, as the harness starts it, to
//! 127.0.0.1 at `--upstream-echo PORT` for `--mode proxy-echo`, `--upstream-sink PORT` for `proxy-sink`). What protoloop's `forwardTo` could
//! reach with no JavaScript at all. Same start-up line and stdin rule as every benchmark server.

use std::io::{Read, Write};

use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let mode = arg("--mode").unwrap_or_default();
    let target = arg("--target")
        .or_else(|| arg(&format!("--upstream-{}", mode.strip_prefix("proxy-")?)).map(|p| format!("127.0.0.1:{p}")))
        .expect("--target HOST:PORT (or --mode proxy-X with --upstream-X PORT) is required");
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(([127, 0, 0, 1], port).into())?;
    let listener: TcpListener = sock.listen(1024)?;
    println!("LISTENING {}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    loop {
        let (mut down, _) = listener.accept().await?;
        let target = target.clone();
        tokio::spawn(async move {
            let Ok(mut up) = TcpStream::connect(&target).await else { return };
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            // 64 KiB buffers (the default is 8 KiB), the size of the bulk case's writes and of
            // what the other proxies read at a time: a fair ceiling, not tokio's small default.
            let _ = tokio::io::copy_bidirectional_with_sizes(&mut down, &mut up, 64 << 10, 64 << 10).await;
        });
    }
}
