//! The raw tokio proxy of the proxy case: a task per connection, `copy_bidirectional` between the
//! client and a fresh upstream connection to `--target HOST:PORT` (or, as the harness starts it, to
//! 127.0.0.1 at `--upstream-echo PORT` for `--mode proxy-echo`, `--upstream-sink PORT` for `proxy-sink`). What protoloop's `forwardTo` could
//! reach with no JavaScript at all. Same start-up line and stdin rule as every benchmark server.

#[path = "../peer.rs"]
mod peer;

use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let mode = arg("--mode").unwrap_or_default();
    let target = arg("--target")
        .or_else(|| arg(&format!("--upstream-{}", mode.strip_prefix("proxy-")?)).map(|p| format!("127.0.0.1:{p}")))
        .expect("--target HOST:PORT (or --mode proxy-X with --upstream-X PORT) is required");
    let listener = peer::listen(port)?;
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
