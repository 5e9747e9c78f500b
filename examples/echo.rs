//! A TCP echo server on ringpool's runtime: every connection is a task; a
//! client's `SUM` line is answered by summing its bytes on the worker pool.
//!
//! ```text
//! cargo run --release --example echo -- [addr]          # default 127.0.0.1:7878
//! cargo run --release --example echo_client -- [addr] [connections] [rounds]
//! ```

use ringpool::runtime::net::{TcpListener, TcpStream};
use ringpool::runtime::{self, offload, IoBuf, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    runtime::raise_fd_limit()?;
    let rt = Runtime::new()?;
    println!("echo: listening on {addr} (handoff {})", rt.handoff());
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr)?;
        loop {
            let (conn, peer) = listener.accept().await?;
            conn.set_nodelay(true)?;
            runtime::spawn(async move {
                if let Err(e) = serve(conn).await {
                    eprintln!("echo: {peer}: {e}");
                }
            });
        }
    })
}

async fn serve(conn: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let (r, b) = conn.read(buf).await;
        let n = r?;
        if n == 0 {
            return Ok(());
        }
        if b.starts_with(b"SUM ") {
            // CPU work goes to the pool; the ring keeps serving the others.
            let data = b.clone();
            let sum = offload(move || data[4..].iter().map(|&x| x as u64).sum::<u64>())
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            conn.write_all(format!("{sum}\n").into_bytes()).await.0?;
            buf = b;
            continue;
        }
        let (w, b) = conn.write_all(b.slice(..n)).await;
        w?;
        buf = b.into_inner();
    }
}
