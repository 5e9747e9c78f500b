//! A client for `examples/echo.rs`: opens connections, sends messages,
//! checks the echoes, prints round trips per second.
//!
//! ```text
//! cargo run --release --example echo_client -- [addr] [connections] [rounds]
//! ```

use ringpool::runtime::net::TcpStream;
use ringpool::runtime::{self, Runtime};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7878".into());
    let conns: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    runtime::raise_fd_limit()?;
    let rt = Runtime::new()?;
    let t0 = Instant::now();
    rt.block_on(async move {
        let tasks: Vec<_> = (0..conns)
            .map(|c| {
                let addr = addr.clone();
                runtime::spawn(async move {
                    let s = TcpStream::connect(addr.as_str()).await?;
                    s.set_nodelay(true)?;
                    let mut buf = Vec::with_capacity(64);
                    for r in 0..rounds {
                        let msg = format!("{c}:{r}").into_bytes();
                        let len = msg.len();
                        s.write_all(msg).await.0?;
                        let mut got = 0;
                        while got < len {
                            buf.clear();
                            let (res, b) = s.read(buf).await;
                            buf = b;
                            match res? {
                                0 => return Err(std::io::Error::other("server closed")),
                                n => got += n,
                            }
                        }
                    }
                    Ok::<_, std::io::Error>(())
                })
            })
            .collect();
        for t in tasks {
            t.await
                .map_err(|e| std::io::Error::other(e.to_string()))??;
        }
        Ok::<_, std::io::Error>(())
    })?;
    let el = t0.elapsed().as_secs_f64();
    let total = conns * rounds;
    println!(
        "{conns} connections x {rounds} round trips: {:.0} round trips/s",
        total as f64 / el
    );
    Ok(())
}
