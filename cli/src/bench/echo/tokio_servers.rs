//! The tokio echo servers: `current_thread` and multi-thread runtimes, each
//! written the idiomatic way (a task per connection, `read` then
//! `write_all` on a 4 KiB buffer owned by the task).
//!
//! The multi-thread runtime is built after the process pinned itself to one
//! CPU, so tokio sizes it from `available_parallelism` (which honours the
//! affinity mask) to one worker thread; the accept loop runs on a worker
//! too, so the main thread only waits in `block_on`.

use super::server::{bind_listener, ServeError, READ_BUF};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves echo on `addr` with a tokio `current_thread` runtime, or with a
/// multi-thread one if `multi_thread`.
///
/// # Errors
///
/// [`ServeError::Failed`] if the runtime cannot be built or bind/accept fails.
pub fn serve(
    addr: SocketAddr,
    multi_thread: bool,
    ready: &mut dyn FnMut(SocketAddr),
) -> Result<(), ServeError> {
    let listener = bind_listener(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let rt = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_io()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?
    };
    let accept = async move {
        let listener = TcpListener::from_std(listener)?;
        loop {
            let (sock, _) = listener.accept().await?;
            sock.set_nodelay(true)?;
            tokio::spawn(echo(sock));
        }
    };
    ready(bound);
    let r: std::io::Result<()> = if multi_thread {
        rt.block_on(async { tokio::spawn(accept).await })
            .map_err(std::io::Error::other)
            .and_then(|r| r)
    } else {
        rt.block_on(accept)
    };
    r.map_err(ServeError::from)
}

/// Echoes what `sock` sends until it closes.
async fn echo(mut sock: TcpStream) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if sock.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
