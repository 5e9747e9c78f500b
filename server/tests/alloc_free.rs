//! The `/health` path allocates nothing per request: a counting global allocator
//! watches a connection answer thousands of requests (single, pipelined, HTTP/1.0
//! keep-alive, routed 404/405, and a `Content-Length` body) after one warm-up round.
//!
//! `harness = false`: no test threads allocate behind the counter's back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ringpool_server::http::{Conn, Event, Limits, Outbox};
use ringpool_server::routes;
use ringpool_server::stats::Stats;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are ours; the counter has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract for `alloc` is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: `ptr` came from `System` with `layout` (every allocation goes
        // there), and the caller's contract for `realloc` is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Feeds `input`, answers every request into the outbox (as a driver would, then
/// "writes" it); returns how many were answered.
fn serve(conn: &mut Conn, stats: &Stats, outbox: &mut Outbox, input: &[u8]) -> usize {
    let n = outbox.ready().len();
    outbox.written(n);
    conn.push(input);
    let mut n = 0;
    loop {
        match conn.poll() {
            Event::Request(req) => {
                let route = routes::route(req.method, req.target);
                assert!(routes::respond_inline(route, req.mode(), stats, outbox.buf()).is_none());
                n += 1;
            }
            Event::NeedMore => return n,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn main() {
    let stats = Stats::new("test");
    let mut conn = Conn::new(Limits::default());
    let mut outbox = Outbox::new();
    let one = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n";
    let mut batch = Vec::new();
    for _ in 0..16 {
        batch.extend_from_slice(one);
    }
    let mixed: &[u8] = b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
        GET /nope HTTP/1.1\r\nHost: x\r\n\r\nPOST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
        GET /health?x=1 HTTP/1.1\r\nHost: x\r\n\r\n";

    // Warm up: the buffers reach their working size.
    serve(&mut conn, &stats, &mut outbox, one);
    serve(&mut conn, &stats, &mut outbox, &batch);
    serve(&mut conn, &stats, &mut outbox, mixed);

    let before = ALLOCS.load(Relaxed);
    let mut answered = 0;
    for _ in 0..1000 {
        answered += serve(&mut conn, &stats, &mut outbox, one);
        answered += serve(&mut conn, &stats, &mut outbox, &batch);
        answered += serve(&mut conn, &stats, &mut outbox, mixed);
        // Split across reads.
        conn.push(&one[..20]);
        assert!(matches!(conn.poll(), Event::NeedMore));
        answered += serve(&mut conn, &stats, &mut outbox, &one[20..]);
    }
    let allocs = ALLOCS.load(Relaxed) - before;
    assert_eq!(answered, 1000 * (1 + 16 + 4 + 1));
    assert_eq!(allocs, 0, "{allocs} allocations for {answered} requests");
    // The counter sees allocations: `/stats` builds its JSON in a new String.
    let before = ALLOCS.load(Relaxed);
    serve(
        &mut conn,
        &stats,
        &mut outbox,
        b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(ALLOCS.load(Relaxed) > before);
    println!("alloc_free: {answered} requests, 0 allocations: ok");
}
