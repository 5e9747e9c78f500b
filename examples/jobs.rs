//! The question's C demo, on ringpool: 4 workers, 32 jobs, each doubles its
//! input; results are collected on the loop through its ring; the workers are
//! told to stop and joined; the same result line is printed.
//!
//! ```text
//! cargo run --example jobs                          # auto
//! RINGPOOL_HANDOFF=pipe cargo run --example jobs    # any mechanism
//! ```

use io_uring::IoUring;
use ringpool::Pool;

const NJOBS: usize = 32;
const NTHREADS: usize = 4;

/// The demo's `job_unit`: it travels to a worker and comes back mutated.
#[derive(Debug, Default)]
struct JobUnit {
    input: i32,
    output: i32,
    done: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The loop's ring, with the flags the answer used.
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_submit_all()
        .build(64)?;
    let pool = Pool::builder().workers(NTHREADS).build()?;
    eprintln!("handoff: {}", pool.selection());
    let mut lp = pool.register::<JobUnit>(&mut ring)?;

    // dispatch jobs
    for i in 0..NJOBS {
        let mut job = JobUnit {
            input: i as i32,
            ..JobUnit::default()
        };
        lp.submit(
            &mut ring,
            move || {
                job.output = job.input * 2; // the "work"
                job.done = true;
                job
            },
            |_| {},
        )
        .map_err(|e| e.to_string())?;
    }

    // collect results
    let mut jobs: Vec<Option<JobUnit>> = (0..NJOBS).map(|_| None).collect();
    let mut collected = 0;
    while collected < NJOBS {
        lp.submit_and_wait(&mut ring, 1)?;
        lp.reap(&mut ring, |cqe| panic!("unexpected CQE {cqe:?}"));
        for c in lp.completions() {
            let job = c.result.map_err(|e| e.to_string())?;
            println!("job {} done", job.input);
            assert!(job.done);
            let i = job.input as usize;
            jobs[i] = Some(job);
            collected += 1;
        }
    }

    // tell the workers to stop and join them: closing the last loop and
    // dropping the last pool handle does both.
    let leftover = lp.close(&mut ring, |_| {});
    assert!(leftover.is_empty());
    drop(pool);

    let line: Vec<String> = jobs
        .iter()
        .map(|j| format!("{:<2}", j.as_ref().expect("collected").output))
        .collect();
    println!("{} ", line.join(" "));
    Ok(())
}
