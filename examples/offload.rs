//! `offload(..).await` from many tasks on ringpool's runtime: each task
//! hands trivial jobs to the pool in a loop; prints jobs per second.
//!
//! ```text
//! cargo run --release --example offload -- [tasks] [seconds] [pin]
//! ```
//!
//! With `pin`, the loop runs on CPU 0 and the worker on CPU 1.

use ringpool::runtime::time::sleep;
use ringpool::runtime::{self, offload, Runtime};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let secs: f64 = args.next().map_or(Ok(2.0), |a| a.parse())?;
    let pin = args.next().as_deref() == Some("pin");
    let mut pool = ringpool::Pool::builder().workers(1);
    if pin {
        ringpool::affinity::pin_current_thread(0)?;
        pool = pool.pin_to(&[1]);
    }
    let rt = Runtime::builder().pool_builder(pool).build()?;
    let done = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    let t0 = Instant::now();
    rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let (done, stop) = (done.clone(), stop.clone());
                runtime::spawn(async move {
                    while !stop.get() {
                        let v = offload(move || i * 2).await.expect("the job ran");
                        assert_eq!(v, i * 2);
                        done.set(done.get() + 1);
                    }
                })
            })
            .collect();
        sleep(Duration::from_secs_f64(secs)).await;
        stop.set(true);
        for h in handles {
            h.await.expect("task");
        }
    });
    let el = t0.elapsed().as_secs_f64();
    println!(
        "{} tasks, handoff {}: {:.2} M jobs/s ({} jobs in {el:.2} s)",
        tasks,
        rt.handoff(),
        done.get() as f64 / el / 1e6,
        done.get()
    );
    println!("{:?}", rt.stats());
    Ok(())
}
