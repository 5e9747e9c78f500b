//! `ringpool bench` checks where its results go before it measures: a run
//! of minutes must not end in a path error.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn unwritable_outputs_fail_before_the_run() {
    for args in [
        ["--json", "/nonexistent/dir/results.json"],
        ["--svg-dir", "/proc/no/charts"],
    ] {
        let t0 = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_ringpool"))
            .args(["bench", "--full"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[1]), "{args:?}: {err}");
        // A full run takes minutes; this ended before its first figure.
        assert!(t0.elapsed() < Duration::from_secs(20), "{args:?}");
    }
}
