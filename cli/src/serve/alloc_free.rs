//! The real driver answers `GET /health` with no heap allocation per
//! request: [`serve_on`] runs on a ring thread of its own (through
//! `runtime::per_core`, as `run` starts it), and a counting global allocator
//! (this test binary's only) counts the allocations made on that thread, and
//! on the pool's one worker, while a plain `std` client sends requests over
//! one keep-alive connection after a warm-up.
//!
//! Counting is per thread: a thread-local role marks the ring thread (set by
//! its main future) and the worker (set by a job offloaded to it, the only
//! worker there is), so the client and the other tests of this binary, on
//! threads of their own, are not counted.
//!
//! The bound is zero, with no allowance for growth: once warm, everything
//! the path touches is reused at its size (the connection's input and output
//! buffers, the op table's and the timer table's slots and free lists, the
//! timer heap, which compacts its stale entries in place, the ready queue,
//! the CQE batch), and this steady traffic never needs more of any of them.
//! Both read paths are measured: multishot receive on the provided buffers,
//! and the plain single-shot receive into the connection's buffer.
//!
//! `RINGPOOL_ALLOC_TRACE=N` prints the backtraces of the first `N`
//! allocations the ring thread makes after the warm-up (to find where they
//! come from; the allocations the printing itself makes are not counted).

use super::{build_pool, serve_on, ServeArgs, Shared};
use clap::Parser;
use ringpool::runtime::{self, net::TcpListener, offload, Runtime};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// A thread whose allocations are not counted.
const UNCOUNTED: usize = 0;
/// The ring thread.
const RING: usize = 1;
/// The pool's worker.
const WORKER: usize = 2;

thread_local! {
    /// This thread's role: which of [`COUNTS`] its allocations go to.
    static ROLE: Cell<usize> = const { Cell::new(UNCOUNTED) };
    /// This thread is printing a backtrace (whose allocations are not
    /// counted, and print no backtrace of their own).
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// Allocations (`alloc`, `alloc_zeroed`, `realloc`) by role.
static COUNTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Backtraces still to print for ring-thread allocations.
static TRACE_LEFT: AtomicU64 = AtomicU64::new(0);

/// `System`, counting allocations by the calling thread's [`ROLE`].
struct Counting;

impl Counting {
    fn count(&self) {
        // `const` thread-locals with no destructor are plain TLS slots: no
        // allocation, and `try_with` fails only at thread exit.
        let role = ROLE.try_with(Cell::get).unwrap_or(UNCOUNTED);
        if role == UNCOUNTED || TRACING.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        COUNTS[role].fetch_add(1, Relaxed);
        if role == RING && TRACE_LEFT.load(Relaxed) > 0 {
            TRACING.set(true);
            if TRACE_LEFT
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let bt = std::backtrace::Backtrace::force_capture();
                eprintln!("alloc_free: an allocation on the ring thread:\n{bt}");
            }
            TRACING.set(false);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; counting touches only
// atomics and thread-locals, never the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: the caller's contract for `alloc` is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: the caller's contract for `alloc_zeroed` is `System`'s.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout` (every allocation
        // of this program goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count();
        // SAFETY: `ptr` came from `System` with `layout` (every allocation
        // goes there), and the caller's contract for `realloc` is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations so far on the ring thread and on the worker.
fn counts() -> (u64, u64) {
    (COUNTS[RING].load(Relaxed), COUNTS[WORKER].load(Relaxed))
}

/// One request, as a load generator sends it.
const REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: alloc_free\r\n\r\n";
/// Its whole response (`response::write` of `HEALTH_BODY`: no `Date`, so
/// every answer is these bytes).
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n";
/// Requests per pipelined write.
const BATCH: usize = 16;

/// `ringpool serve`'s options, parsed as its command line would be.
#[derive(Parser)]
pub(super) struct Serve {
    #[command(flatten)]
    pub(super) args: ServeArgs,
}

/// The client: one keep-alive connection, its buffers allocated up front.
struct Client {
    stream: TcpStream,
    batch: Vec<u8>,
    answer: Vec<u8>,
}

impl Client {
    fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        // Only so that a broken server fails the test instead of hanging it.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            stream,
            batch: REQUEST.repeat(BATCH),
            answer: vec![0; RESPONSE.len() * BATCH],
        }
    }

    /// Sends `n` requests in one write (`n` is 1 or [`BATCH`]) and reads
    /// their `n` responses in full.
    fn exchange(&mut self, n: usize) {
        self.stream
            .write_all(&self.batch[..REQUEST.len() * n])
            .unwrap();
        let answer = &mut self.answer[..RESPONSE.len() * n];
        self.stream.read_exact(answer).unwrap();
        for r in answer.chunks(RESPONSE.len()) {
            assert_eq!(r, RESPONSE, "{}", String::from_utf8_lossy(r));
        }
    }

    /// Sends `POST /hash` and `GET /stats` (closing), reads to the end.
    fn control(mut self) {
        let reqs: &[u8] = b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
            GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        self.stream.write_all(reqs).unwrap();
        let mut all = Vec::new();
        self.stream.read_to_end(&mut all).unwrap();
        let all = String::from_utf8(all).unwrap();
        assert_eq!(all.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{all}");
    }
}

/// What one run counted: ring-thread allocations in the warm-up, in 2,000
/// single requests and in 100 pipelined batches; worker allocations in
/// both; and the ring's and the worker's in the control requests.
#[derive(Debug)]
struct Counted {
    warm_up: u64,
    single: u64,
    pipelined: u64,
    worker: u64,
    control: (u64, u64),
}

/// Starts the driver on one ring (multishot accept and receive on the
/// provided buffers, or the plain single-shot paths), runs the client,
/// shuts the server down, and returns the counts.
fn serve_and_count(multishot: bool) -> Counted {
    let args = Serve::parse_from(["serve", "--workers", "1"]).args;
    let pool = build_pool(&args).unwrap();
    let shared = Arc::new(Shared::new(&args, pool.clone()).expect("the default arguments"));
    let listener = Arc::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let builder = Runtime::builder().pool(pool).multishot(multishot);
    let ring = {
        let (shared, stop) = (shared.clone(), stop.clone());
        runtime::per_core(1, false, builder, move |_| {
            let (listener, shared, stop) = (listener.clone(), shared.clone(), stop.clone());
            async move {
                ROLE.set(RING);
                // The pool has one worker: this job runs there.
                offload(|| ROLE.set(WORKER)).await.expect("the job ran");
                let listener = TcpListener::from_std(listener.try_clone()?)?;
                serve_on(0, listener, shared, &stop).await
            }
        })
        .unwrap()
    };

    let mut client = Client::connect(addr);
    let (start, _) = counts();
    // Warm-up: the connection's task, its buffers, the op and timer tables
    // and the runtime's queues reach their working size.
    for _ in 0..200 {
        client.exchange(1);
    }
    client.exchange(BATCH);
    let trace = std::env::var("RINGPOOL_ALLOC_TRACE").map_or(0, |v| v.parse().unwrap_or(1));
    TRACE_LEFT.store(trace, Relaxed);
    let jobs = shared.pool.stats().jobs_run;

    let (ring0, worker0) = counts();
    for _ in 0..2000 {
        client.exchange(1);
    }
    let (ring1, _) = counts();
    for _ in 0..100 {
        client.exchange(BATCH);
    }
    let (ring2, worker2) = counts();
    assert_eq!(shared.pool.stats().jobs_run, jobs, "/health ran a job");

    // The control: the counters do see the driver's allocations. `/hash`
    // copies its body into the job (ring) and hexes the digest into a new
    // String (worker); `/stats` builds its JSON in a new String (ring).
    client.control();
    let (ring3, worker3) = counts();
    TRACE_LEFT.store(0, Relaxed);

    stop.store(true, Relaxed);
    for r in ring.join() {
        r.unwrap().unwrap();
    }
    let served = shared.stats.status_count(200);
    assert_eq!(served, 200 + BATCH as u64 + 2000 + 100 * BATCH as u64 + 2);
    drop(shared); // the last pool handle: its worker is joined here
    Counted {
        warm_up: ring0 - start,
        single: ring1 - ring0,
        pipelined: ring2 - ring1,
        worker: worker2 - worker0,
        control: (ring3 - ring2, worker3 - worker2),
    }
}

#[test]
fn health_allocates_nothing_per_request() {
    for multishot in [true, false] {
        let c = serve_and_count(multishot);
        println!("alloc_free (multishot {multishot}): {c:?}");
        assert_eq!(c.single, 0, "ring thread, 2000 requests: {c:?}");
        assert_eq!(c.pipelined, 0, "ring thread, 100 batches of 16: {c:?}");
        assert_eq!(c.worker, 0, "worker, while /health ran: {c:?}");
        // The counters see allocations: the connection's own (its task,
        // its buffers) in the warm-up, and the control requests'.
        assert!(
            c.warm_up > 0 && c.control.0 > 0 && c.control.1 > 0,
            "the counters are blind: {c:?}"
        );
    }
}
