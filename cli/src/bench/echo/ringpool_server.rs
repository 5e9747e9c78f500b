//! The echo server on ringpool's own runtime (`ringpool::runtime`, issue 9):
//! the contender slot the other servers are compared with.
//!
//! The harness already starts it as
//! `ringpool echo-server --impl ringpool --addr 127.0.0.1:0 --cpu 1`, in a
//! process of its own that is already pinned to the server CPU (the main
//! thread is pinned before anything else starts, so every thread inherits
//! the CPU) and already has `RLIMIT_NOFILE` raised to its hard limit. The
//! process exits when the harness closes its stdin, so the function may
//! serve forever.

use super::server::{bind_listener, ServeError, READ_BUF};
use ringpool::runtime::net::{TcpListener, TcpStream};
use ringpool::runtime::{self, Runtime};
use std::cell::RefCell;
use std::net::SocketAddr;

/// Serves TCP echo on ringpool's runtime, with one ring thread.
///
/// The contract every server of this benchmark keeps (see the tokio ones in
/// `tokio_servers.rs` and `super::server::bind_listener`, which a runtime
/// may use to get a std listener with a deep backlog):
/// * bind a listener on `listener_addr` (port 0: any free port), with a
///   backlog of at least [`BACKLOG`](super::server::BACKLOG);
/// * call `ready(bound_addr)` once, when connections can be accepted (it
///   prints `listening <addr>` on stdout line 1, which the harness waits for);
/// * accept every connection, set `TCP_NODELAY` on it, and echo every byte
///   it reads back on the same connection, until the peer closes; buffers
///   of up to 4 KiB per read (a 4 KiB message is one read);
/// * keep going until the process is stopped.
///
/// `cpu` is the CPU the process is pinned to (`None` with `--no-pin`), for
/// a runtime that wants to pin its ring thread itself.
///
/// # Errors
///
/// [`ServeError::Failed`] if the runtime cannot be built or accepting fails.
pub fn echo_server_ringpool(
    listener_addr: SocketAddr,
    cpu: Option<usize>,
    ready: &mut dyn FnMut(SocketAddr),
) -> Result<(), ServeError> {
    let _ = cpu; // the process is pinned already; the ring thread is this one
    let std_listener = bind_listener(listener_addr)?;
    let bound = std_listener.local_addr()?;
    // An echo server offloads nothing: one worker, asleep.
    let rt = Runtime::builder()
        .workers(1)
        .build()
        .map_err(|e| ServeError::Failed(format!("ringpool runtime: {e}")))?;
    let served: std::io::Result<()> = rt.block_on(async move {
        let listener = TcpListener::from_std(std_listener)?;
        ready(bound);
        loop {
            let (conn, _) = listener.accept().await?;
            conn.set_nodelay(true)?;
            runtime::spawn(echo(conn));
        }
    });
    served.map_err(ServeError::from)
}

/// Echoes what `conn` sends until it closes. An idle connection holds no
/// buffer: it waits with `readable` (the bytes wait in the runtime's shared
/// provided buffers), then borrows one from the thread's free list for the
/// read and the echo.
async fn echo(conn: TcpStream) {
    loop {
        if conn.readable().await.is_err() {
            return;
        }
        let buf = take_buf();
        let (r, b) = conn.read(buf).await;
        let n = match r {
            Ok(0) | Err(_) => return give_buf(b),
            Ok(n) => n,
        };
        debug_assert_eq!(b.len(), n);
        let (w, b) = conn.write_all(b).await;
        give_buf(b);
        if w.is_err() {
            return;
        }
    }
}

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn take_buf() -> Vec<u8> {
    FREE.with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(READ_BUF))
}

fn give_buf(mut b: Vec<u8>) {
    b.clear();
    FREE.with(|f| f.borrow_mut().push(b));
}
