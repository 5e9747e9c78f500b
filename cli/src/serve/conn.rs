//! One HTTP connection: read, parse (sans-io), answer inline or offload,
//! write every response of a pipelined batch in one write.

use super::Shared;
use ringpool::runtime::net::TcpStream;
use ringpool::runtime::offload;
use ringpool::runtime::time::timeout;
use ringpool::runtime::IoBuf;
use ringpool_server::http::{response, Conn, Event, ResponseMode};
use ringpool_server::routes::{respond_inline, route, Route};
use ringpool_server::work::Output;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The largest job buffer a connection keeps for its next job (a 16 KiB
/// `/hash` body fits; a 1 MiB upload's copy is freed after its job).
const KEEP_JOB_BUF: usize = 64 * 1024;

/// Counts the connection in and out of `Shared::conns`.
struct Open<'a>(&'a Shared);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.conns.fetch_sub(1, Ordering::SeqCst);
        self.0.stats.conn_closed();
    }
}

/// Serves `stream` until it closes, errs, times out, or the server drains.
pub(crate) async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    if shared.conns.fetch_add(1, Ordering::SeqCst) >= shared.max_conns {
        shared.conns.fetch_sub(1, Ordering::SeqCst);
        shared.stats.conn_refused();
        let mut out = Vec::new();
        response::write_error(&mut out, 503, ResponseMode::CLOSE, None);
        let _ = write_all(&stream, out, shared.write).await;
        return;
    }
    shared.stats.conn_accepted();
    let _open = Open(&shared);
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(shared.limits);
    let mut out = Vec::with_capacity(4096);
    // A job's body buffer (the input buffer it was received in) and its
    // answer's body: they go to the pool and come back with the result, so
    // a connection's jobs reuse them (up to `KEEP_JOB_BUF` each: an idle
    // connection does not hold on to the room of one big request). The body
    // buffer becomes the connection's input buffer at the next job.
    let mut job_bufs = (Vec::new(), Vec::new());
    // When the request being received must be in (head and body).
    let mut arrives_by: Option<Instant> = None;
    loop {
        // Answer everything buffered (pipelining), then write once.
        let close = loop {
            match conn.poll() {
                Event::Request(req) => {
                    arrives_by = None;
                    let mode = req.mode();
                    if shared.panic_route && req.path() == "/__panic" {
                        let done = offload(|| -> u32 { panic!("a handler job panicked") }).await;
                        let status = if done.is_err() { 500 } else { 200 };
                        response::write_error(&mut out, status, mode, None);
                        shared.stats.record_status(status);
                        continue;
                    }
                    let r = route(req.method, req.target);
                    if r == Route::Stats {
                        let p = shared.pool.stats();
                        shared
                            .stats
                            .set_wakes(p.doorbells_sent, p.doorbells_skipped);
                    }
                    let Some(job) = respond_inline(r, mode, &shared.stats, &mut out) else {
                        if mode.close {
                            break true;
                        }
                        continue;
                    };
                    let (spare, mut answer) = std::mem::take(&mut job_bufs);
                    // The body goes to the pool where it was received: the
                    // connection's input buffer, or its de-chunked body
                    // (no copy); a spare buffer takes its place.
                    let (body, range) = conn.take_body(spare);
                    shared.stats.job_started();
                    let password = shared.password;
                    let done = offload(move || {
                        let (status, content_type) =
                            job.run_into(&body[range], password, &mut answer);
                        (status, content_type, body, answer)
                    })
                    .await;
                    shared.stats.job_completed();
                    let status = match done {
                        Ok((status, content_type, body, answer)) => {
                            response::write(&mut out, status, mode, content_type, &answer);
                            let keep = |b: Vec<u8>| {
                                if b.capacity() <= KEEP_JOB_BUF {
                                    b
                                } else {
                                    Vec::new()
                                }
                            };
                            job_bufs = (keep(body), keep(answer));
                            status
                        }
                        // A panicked job, or one that never ran (the pool
                        // shut down): 500.
                        Err(_) => {
                            let e = Output::internal_error();
                            response::write(&mut out, e.status, mode, e.content_type, &e.body);
                            e.status
                        }
                    };
                    shared.stats.record_status(status);
                    if mode.close {
                        break true;
                    }
                }
                Event::Continue => out.extend_from_slice(response::CONTINUE),
                Event::NeedMore => break false,
                Event::Error { status } => {
                    response::write_error(&mut out, status, ResponseMode::CLOSE, None);
                    shared.stats.record_status(status);
                    break true;
                }
                Event::Closed => break true,
            }
        };
        if !out.is_empty() {
            match write_all(&stream, std::mem::take(&mut out), shared.write).await {
                Some(mut b) => {
                    b.clear();
                    out = b;
                }
                None => return,
            }
        }
        if close {
            return;
        }
        if shared.stopping.load(Ordering::SeqCst) && !conn.phase().in_request() {
            return; // draining: idle connections close
        }
        let phase = conn.phase();
        let limit = if phase.in_request() {
            // One deadline for the whole request, not one per read: a
            // client that trickles a byte now and then cannot hold its
            // connection for ever.
            let now = Instant::now();
            let by = *arrives_by.get_or_insert(now + shared.request);
            by.saturating_duration_since(now)
        } else {
            arrives_by = None;
            shared.idle
        };
        // Straight into the parser's buffer, which the receive owns while
        // it is in flight (the runtime has no provided buffers: see `run`).
        // A read that times out keeps the buffer until the kernel lets it
        // go; the connection is done then.
        let (buf, room) = conn.take_input();
        let read = timeout(limit, stream.read(buf.slice(room)))
            .await
            .map(|(r, slice)| {
                conn.put_input(slice.into_inner());
                r
            });
        match read {
            Err(_elapsed) => {
                if phase.in_request() {
                    response::write_error(&mut out, 408, ResponseMode::CLOSE, None);
                    shared.stats.record_status(408);
                    let _ = write_all(&stream, std::mem::take(&mut out), shared.write).await;
                }
                return;
            }
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => conn.filled(n),
        }
    }
}

/// Writes all of `buf`, each send allowed `limit` to make progress: a
/// client that stops reading its answers is dropped instead of holding its
/// connection (and a place under the connection limit) for ever. The
/// buffer back, or `None` if the write failed or stalled (the connection
/// is then done; a stalled send's buffer stays with its operation until
/// the kernel lets it go).
async fn write_all(
    stream: &TcpStream,
    mut buf: Vec<u8>,
    limit: std::time::Duration,
) -> Option<Vec<u8>> {
    let mut at = 0;
    while at < buf.len() {
        let (r, slice) = timeout(limit, stream.write(buf.slice(at..))).await.ok()?;
        buf = slice.into_inner();
        match r {
            Ok(0) | Err(_) => return None,
            Ok(n) => at += n,
        }
    }
    Some(buf)
}
