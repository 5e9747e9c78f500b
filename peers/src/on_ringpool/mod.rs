//! hyper on ringpool's runtime: hyper's `rt` traits over ringpool's
//! runtime, and the CPU work on its pool through `offload(..).await`:
//! - I/O (`hyper::rt::Read` and `Write`): [`Io`], over ringpool's
//!   completion-based `TcpStream`;
//! - a timer (`hyper::rt::Timer`): [`RingpoolTimer`], so the server has
//!   the same `header_read_timeout` as the tokio peers;
//! - an executor (`hyper::rt::Executor`): [`LocalExec`], which spawns on
//!   the runtime's thread (hyper's HTTP/1 server needs none; its HTTP/2
//!   and its client do).
//!
//! The I/O adapter keeps at most one read and one write in flight. A read
//! asks for exactly what hyper's buffer has room for; a write copies hyper's
//! bytes into the adapter's own buffer (the kernel needs an owned one) and
//! reports them written at once; the next write or a flush waits for it.

mod timer;

pub use timer::RingpoolTimer;

use crate::{respond, Config, Shared, HEADER_TIMEOUT};
use bytes::Bytes;
use hyper::rt::ReadBufCursor;
use ringpool::runtime::net::{TcpListener, TcpStream};
use ringpool::runtime::time::sleep;
use ringpool::runtime::{self, offload, IoBuf, Runtime, Slice};
use ringpool_server::stats::Stats;
use ringpool_server::work::{Job, Output};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

type ReadFut = Pin<Box<dyn Future<Output = (io::Result<usize>, Slice<Vec<u8>>)>>>;
type WriteFut = Pin<Box<dyn Future<Output = (io::Result<()>, Vec<u8>)>>>;

/// hyper's I/O traits over a ringpool `TcpStream`.
pub struct Io {
    stream: Rc<TcpStream>,
    read: Option<ReadFut>,
    write: Option<WriteFut>,
    /// The write buffer between writes (kept to reuse its allocation).
    spare: Vec<u8>,
    /// Bytes a read brought in beyond the room hyper had when it ended
    /// (hyper may poll again with a smaller buffer), handed out first.
    leftover: Vec<u8>,
    taken: usize,
}

impl Io {
    /// Wraps `stream`.
    pub fn new(stream: TcpStream) -> Io {
        Io {
            stream: Rc::new(stream),
            read: None,
            write: None,
            spare: Vec::new(),
            leftover: Vec::new(),
            taken: 0,
        }
    }

    /// Drives the write in flight, if any, to its end.
    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(w) = self.write.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let (r, buf) = ready!(w.as_mut().poll(cx));
        self.write = None;
        self.spare = buf;
        Poll::Ready(r)
    }
}

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.taken < this.leftover.len() {
            let n = buf.remaining().min(this.leftover.len() - this.taken);
            buf.put_slice(&this.leftover[this.taken..this.taken + n]);
            this.taken += n;
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.read.is_none() {
            let room = buf.remaining();
            let stream = this.stream.clone();
            // A read of exactly `room` bytes: nothing read is ever dropped.
            let target = Vec::with_capacity(room).slice(..room);
            this.read = Some(Box::pin(async move { stream.read(target).await }));
        }
        let (r, target) = ready!(this.read.as_mut().expect("set above").as_mut().poll(cx));
        this.read = None;
        let n = r?;
        let got = target.into_inner();
        let fits = n.min(buf.remaining());
        buf.put_slice(&got[..fits]);
        if fits < n {
            this.leftover.clear();
            this.leftover.extend_from_slice(&got[fits..n]);
            this.taken = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_written(cx))?;
        let mut owned = std::mem::take(&mut this.spare);
        owned.clear();
        owned.extend_from_slice(buf);
        let stream = this.stream.clone();
        this.write = Some(Box::pin(async move { stream.write_all(owned).await }));
        // Start it now (its SQE goes out with the loop's next enter).
        if let Poll::Ready(Err(e)) = this.poll_written(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_written(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_written(cx))?;
        Poll::Ready(this.stream.shutdown(std::net::Shutdown::Write))
    }
}

/// hyper's [`Executor`](hyper::rt::Executor) on the ringpool runtime
/// running on the calling thread: each future becomes a detached local
/// task (outside a runtime it is dropped, as `runtime::spawn` does).
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExec;

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        drop(runtime::spawn(fut));
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Runs the CPU job on ringpool's pool.
async fn run(shared: &Shared, job: Job, body: Bytes) -> Output {
    shared.stats.job_started();
    let out = offload(move || job.run(&body)).await;
    shared.stats.job_completed();
    out.unwrap_or_else(|_| Output::internal_error())
}

/// Binds `addr` on a ringpool runtime (one ring thread, `config.workers`
/// pool workers), prints `listening on ADDR`, and serves until SIGINT or
/// SIGTERM.
///
/// # Errors
///
/// If the runtime cannot be built, `addr` cannot be bound, or accepting fails.
pub fn run_until_signal(config: Config, addr: SocketAddr) -> io::Result<()> {
    // SAFETY: installs an async-signal-safe handler (one atomic store).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let rt = Runtime::builder()
        .workers(config.workers.max(1))
        .build()
        .map_err(io::Error::from)?;
    let shared = Arc::new(Shared {
        config,
        stats: Stats::new(config.imp.handoff()),
    });
    rt.block_on(async move {
        let listener = TcpListener::bind(addr)?;
        println!("listening on {}", listener.local_addr()?);
        let (timer, timer_driver) = RingpoolTimer::spawn();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(timer)
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(true)
            .pipeline_flush(true)
            .auto_date_header(false)
            .max_header_size(config.limits.max_head)
            .max_buf_size(config.limits.max_head.max(8192) + 64 * 1024);
        let http = Rc::new(http);
        let accept = runtime::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                shared.stats.conn_accepted();
                let (shared, http) = (shared.clone(), http.clone());
                runtime::spawn(async move {
                    let service = hyper::service::service_fn(|req| {
                        let shared = shared.clone();
                        async move {
                            let r =
                                respond(req, &shared, |job, body| run(&shared, job, body)).await;
                            shared.stats.record_status(r.status().as_u16());
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = http.serve_connection(Io::new(stream), service).await;
                    shared.stats.conn_closed();
                });
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        });
        while !STOP.load(Ordering::SeqCst) {
            sleep(Duration::from_millis(50)).await;
        }
        accept.abort();
        timer_driver.abort();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;

    /// Polls `io` once for a read into `room` bytes: the poll, and what came.
    async fn read_once(io: &mut Io, room: usize) -> (Poll<io::Result<()>>, Vec<u8>) {
        let mut store = vec![0u8; room];
        let mut buf = hyper::rt::ReadBuf::new(&mut store);
        let p = std::future::poll_fn(|cx| {
            Poll::Ready(hyper::rt::Read::poll_read(
                Pin::new(&mut *io),
                cx,
                buf.unfilled(),
            ))
        })
        .await;
        let n = buf.filled().len();
        (p, store[..n].to_vec())
    }

    /// A read that ends after hyper's buffer shrank keeps what did not fit
    /// and hands it out first: nothing is dropped or written past the room.
    #[test]
    fn a_read_longer_than_the_room_keeps_the_rest() {
        let rt = Runtime::builder().workers(1).build().unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let mut io = Io::new(stream);
            // Starts a read of 8 bytes; nothing has come yet.
            let (p, got) = read_once(&mut io, 8).await;
            assert!(p.is_pending() && got.is_empty());
            std::io::Write::write_all(&mut peer, b"abcdefgh").unwrap();
            sleep(Duration::from_millis(20)).await;
            // Ends with room for 3: 3 now, the other 5 next.
            let (p, got) = read_once(&mut io, 3).await;
            assert!(matches!(p, Poll::Ready(Ok(()))));
            assert_eq!(got, b"abc");
            let (_, got) = read_once(&mut io, 4).await;
            assert_eq!(got, b"defg");
            let (_, got) = read_once(&mut io, 64).await;
            assert_eq!(got, b"h");
        });
    }

    /// `LocalExec` runs what hyper hands it as a task of the runtime.
    #[test]
    fn local_exec_spawns_on_the_runtime() {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let ran = Rc::new(std::cell::Cell::new(false));
        rt.block_on(async {
            let r = ran.clone();
            LocalExec.execute(async move { r.set(true) });
            sleep(Duration::from_millis(1)).await;
        });
        assert!(ran.get());
    }
}
