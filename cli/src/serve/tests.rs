//! The accept loop's end: a listener that breaks ends its ring with the
//! error and stops the other rings (the process then fails) instead of
//! leaving a server that no longer accepts and says nothing.

use super::alloc_free::Serve;
use super::{build_pool, serve_on, Shared};
use clap::Parser;
use ringpool::runtime::net::TcpListener;
use ringpool::runtime::{self, Runtime};
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_broken_listener_ends_the_ring_with_its_error() {
    let args = Serve::parse_from(["serve", "--workers", "1"]).args;
    let pool = build_pool(&args).unwrap();
    let shared = Arc::new(Shared::new(&args, pool.clone()).unwrap());
    let rt = Runtime::builder().pool(pool).build().unwrap();
    // Set after 10 s, so that a ring that ignores the broken listener
    // returns Ok (and fails the test) instead of hanging it.
    static STOP: AtomicBool = AtomicBool::new(false);
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(10));
        STOP.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let t0 = Instant::now();
    let served = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = listener.as_raw_fd();
        runtime::spawn(async move {
            ringpool::runtime::time::sleep(Duration::from_millis(20)).await;
            // A listening socket shut down is closed: accept gets EINVAL.
            // SAFETY: `fd` is the listener's, open until `serve_on` returns.
            assert_eq!(unsafe { libc::shutdown(fd, libc::SHUT_RDWR) }, 0);
        });
        serve_on(0, listener, shared, &STOP).await
    });
    let e = served.expect_err("the ring reports the broken listener");
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(9));
    // And it told the other rings to stop.
    assert!(STOP.load(std::sync::atomic::Ordering::SeqCst));
}
