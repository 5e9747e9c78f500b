//! `ringpool probe`: the truth about this kernel.

use ringpool::{Capabilities, Handoff, Pool};
use std::error::Error;

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

pub fn run() -> Result<(), Box<dyn Error>> {
    let c = Capabilities::get();
    println!("kernel release        {}", c.release);
    match &c.io_uring_error {
        None => println!("io_uring              yes"),
        Some(e) => println!("io_uring              no ({e})"),
    }
    println!("features");
    println!("  NODROP (5.5)        {}", yes(c.nodrop));
    println!("  EXT_ARG (5.11)      {}", yes(c.ext_arg));
    println!("  CQE_SKIP (5.17)     {}", yes(c.cqe_skip));
    println!("opcodes and setup (probed)");
    println!("  MSG_RING (5.18)                     {}", yes(c.msg_ring));
    println!(
        "  SEND_MSG_RING, ringless (6.13)      {}  (sent a real message to a scratch ring)",
        yes(c.sync_msg_ring)
    );
    println!("  FUTEX_WAIT/FUTEX_WAKE (6.7)         {}", yes(c.futex));
    println!(
        "  POLL_ADD (5.1), multishot (5.13)    {}, {}  (multishot from the release)",
        yes(c.poll),
        yes(c.poll_multishot)
    );
    println!(
        "  READ/WRITE (5.6)                    {}",
        yes(c.read_write)
    );
    println!(
        "  SINGLE_ISSUER|DEFER_TASKRUN (6.1)   {}",
        yes(c.defer_taskrun)
    );
    println!("  eventfd(2)                          {}", yes(c.eventfd));
    println!("mechanisms");
    for h in Handoff::ALL {
        match h.unsupported_reason(c) {
            None => println!("  {:<14} available", h.name()),
            Some(why) => println!("  {:<14} unavailable: {why}", h.name()),
        }
    }
    if let Ok(v) = std::env::var("RINGPOOL_HANDOFF") {
        println!("override              RINGPOOL_HANDOFF={v}");
    }
    if let Ok(v) = std::env::var("RINGPOOL_UNSUPPORTED") {
        println!("mask                  RINGPOOL_UNSUPPORTED={v}");
    }
    let pool = Pool::builder().workers(1).build()?;
    let s = pool.selection();
    println!("auto picks            {}", s.chosen);
    println!(
        "  order tried         {}",
        Handoff::AUTO_ORDER.map(|h| h.name()).join(" > ")
    );
    for (h, why) in &s.skipped {
        println!("  skipped {:<12} {why}", h.name());
    }
    Ok(())
}
