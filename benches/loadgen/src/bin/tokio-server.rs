//! The raw tokio peer: what the engine could do with no JavaScript at all, written the way a tokio
//! user would (`#[tokio::main]`, a task per connection). Same modes and start-up line as every server
//! in benches/servers: `--mode echo|sink|source --total N --port P`, prints `LISTENING <port>`, exits
//! when its stdin closes.

#[path = "../peer.rs"]
mod peer;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy)]
enum Mode {
    Echo,
    Sink,
    Source(u64),
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let total: u64 = arg("--total").and_then(|p| p.parse().ok()).unwrap_or(0);
    let mode = match arg("--mode").as_deref().unwrap_or("echo") {
        "echo" => Mode::Echo,
        // The read buffer is ours already: BufferedProtocol's zero-copy receive is what tokio does anyway.
        "sink" | "sink-buffered" => Mode::Sink,
        "source" => Mode::Source(total),
        m => panic!("unknown mode {m}"),
    };
    let listener = peer::listen(port)?;
    loop {
        let (s, _) = listener.accept().await?;
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let _ = serve(s, mode).await;
        });
    }
}

async fn serve(mut s: TcpStream, mode: Mode) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    match mode {
        Mode::Echo => loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n]).await?;
        },
        Mode::Sink => while s.read(&mut buf).await? > 0 {},
        Mode::Source(total) => {
            let mut left = total;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                s.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
            s.shutdown().await?;
        }
    }
    Ok(())
}
