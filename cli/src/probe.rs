//! `ringpool probe`: the truth about this kernel.

use ringpool::{Capabilities, Handoff, Pool};
use std::error::Error;

/// "yes" or "no".
fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Prints what the running kernel supports, which handoff mechanisms are
/// available, and what `Handoff::Auto` picks and why.
pub fn run() -> Result<(), Box<dyn Error>> {
    let caps = Capabilities::get();
    println!("kernel release        {}", caps.release);
    match &caps.io_uring_error {
        None => println!("io_uring              yes"),
        Some(e) => println!("io_uring              no ({e})"),
    }
    println!("features");
    println!("  NODROP (5.5)        {}", yes(caps.nodrop));
    println!("  EXT_ARG (5.11)      {}", yes(caps.ext_arg));
    println!("  CQE_SKIP (5.17)     {}", yes(caps.cqe_skip));
    println!("opcodes and setup (probed)");
    println!(
        "  MSG_RING (5.18)                     {}",
        yes(caps.msg_ring)
    );
    println!(
        "  SEND_MSG_RING, ringless (6.13)      {}  (sent a real message to a ring built for the probe)",
        yes(caps.sync_msg_ring)
    );
    println!("  FUTEX_WAIT/FUTEX_WAKE (6.7)         {}", yes(caps.futex));
    println!(
        "  POLL_ADD (5.1), multishot (5.13)    {}, {}  (multishot from the release)",
        yes(caps.poll),
        yes(caps.poll_multishot)
    );
    println!(
        "  READ/WRITE (5.6)                    {}",
        yes(caps.read_write)
    );
    println!(
        "  SINGLE_ISSUER|DEFER_TASKRUN (6.1)   {}",
        yes(caps.defer_taskrun)
    );
    println!(
        "  eventfd(2)                          {}",
        yes(caps.eventfd)
    );
    println!("mechanisms");
    for handoff in Handoff::ALL {
        match handoff.unsupported_reason(caps) {
            None => println!("  {:<14} available", handoff.name()),
            Some(why) => println!("  {:<14} unavailable: {why}", handoff.name()),
        }
    }
    if let Ok(v) = std::env::var("RINGPOOL_HANDOFF") {
        println!("override              RINGPOOL_HANDOFF={v}");
    }
    if let Ok(v) = std::env::var("RINGPOOL_UNSUPPORTED") {
        println!("mask                  RINGPOOL_UNSUPPORTED={v}");
    }
    let pool = Pool::builder().workers(1).build()?;
    let selection = pool.selection();
    println!("auto picks            {}", selection.chosen);
    println!(
        "  order tried         {}",
        Handoff::AUTO_ORDER.map(|h| h.name()).join(" > ")
    );
    for (h, why) in &selection.skipped {
        println!("  skipped {:<12} {why}", h.name());
    }
    Ok(())
}
