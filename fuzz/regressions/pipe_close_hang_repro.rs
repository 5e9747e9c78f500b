// Repro of the pipe-backend hang found by the fuzzer (not compiled by any target:
// copy to tests/ and run: cargo test --no-default-features --test <name> -- --nocapture).
use io_uring::IoUring;
use ringpool::{Handoff, Pool};
use std::time::Duration;
#[test]
fn repro() {
    let pool = Pool::builder().workers(2).handoff(Handoff::Pipe).max_in_flight(8)
        .spin(Duration::from_micros(5)).loop_spin(Duration::from_micros(5)).build().unwrap();
    let mut r0 = IoUring::new(8).unwrap();
    let mut l0 = pool.register::<u64>(&mut r0).unwrap();
    for i in 0..4u64 { l0.try_submit(move || i).unwrap(); }
    let mut r1 = IoUring::new(8).unwrap();
    let mut l1 = pool.register::<u64>(&mut r1).unwrap();
    let wait = |l: &mut ringpool::LoopHandle<u64>, r: &mut IoUring| {
        if l.in_flight() > 0 { l.submit_and_wait(r, 1).unwrap(); }
        l.reap(r, |c| panic!("{c:?}"));
        eprintln!("after wait: in_flight {} ready {} {:?}", l.in_flight(), l.ready(), l.stats());
    };
    wait(&mut l0, &mut r0);
    l1.submit(&mut r1, || 100, |_| {}).unwrap();
    wait(&mut l0, &mut r0);
    l0.submit(&mut r0, || 5, |_| {}).unwrap();
    wait(&mut l0, &mut r0);
    wait(&mut l0, &mut r0);
    {
        l0.flush(&mut r0).unwrap();
        let ts = io_uring::types::Timespec::new().sec(2);
        let args = io_uring::types::SubmitArgs::new().timespec(&ts);
        let e = r0.submitter().submit_with_args(1, &args);
        eprintln!("raw wait: {e:?}, cq len {}", r0.completion().len());
        l0.reap(&mut r0, |c| panic!("{c:?}"));
        eprintln!("after raw wait: in_flight {} ready {} {:?}", l0.in_flight(), l0.ready(), l0.stats());
    }
    l0.submit(&mut r0, || 6, |_| {}).unwrap();
    eprintln!("closing l0: in_flight {} ready {}", l0.in_flight(), l0.ready());
    let got = l0.close(&mut r0, |_| {});
    eprintln!("l0 closed: {}", got.len());
    let got = l1.close(&mut r1, |_| {});
    eprintln!("l1 closed: {}", got.len());
}
