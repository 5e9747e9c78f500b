//! The bench's http section: the hidden `ringpool http-server` subcommand
//! (the `listening` line after a ready check, the work, the stop on stdin
//! close) for every server, and the section's smoke run end to end.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

fn hash_once(imp: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringpool"))
        .args(["http-server", "--impl", imp, "--workers", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // A peer prints its own `listening on ADDR` first; the harness's line is
    // `listening ADDR`.
    let addr = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .find_map(|l| l.strip_prefix("listening ")?.parse::<SocketAddr>().ok())
        .unwrap();
    let body = vec![7u8; 16 * 1024];
    let resp = ureq::post(&format!("http://{addr}/hash"))
        .send_bytes(&body)
        .unwrap();
    assert_eq!(resp.status(), 200, "{imp}");
    let want = ringpool_server::work::Job::Hash.run(&body).body;
    assert_eq!(resp.into_string().unwrap().as_bytes(), want, "{imp}");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "{imp}");
}

#[test]
fn ringpool_serve_hashes_and_stops_on_stdin_close() {
    hash_once("ringpool");
}

#[test]
fn hyper_blocking_hashes_and_stops_on_stdin_close() {
    hash_once("hyper-blocking");
}

#[test]
fn hyper_inline_hashes_and_stops_on_stdin_close() {
    hash_once("hyper-inline");
}

/// `ringpool bench --smoke --section http`: every server on every endpoint
/// has a cell (or is listed as not measured, with the reason), no answer
/// is an error, and the targets are there. Nothing here depends on speed.
#[test]
fn the_smoke_section_measures_every_server_on_every_endpoint() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringpool"))
        .args(["bench", "--smoke", "--section", "http", "--json", "-"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], 4);
    let cells = doc["results"]["http"]["cells"].as_array().unwrap();
    let skipped = doc["results"]["skipped"].as_array().unwrap();
    assert!(skipped.is_empty(), "{skipped:#?}");
    assert_eq!(cells.len(), 6);
    for server in ["ringpool", "hyper-blocking", "hyper-inline"] {
        for endpoint in ["health", "hash"] {
            let c = cells
                .iter()
                .find(|c| c["server"] == server && c["endpoint"] == endpoint)
                .unwrap_or_else(|| panic!("no cell for {server} {endpoint}"));
            assert!(c["requests"].as_u64().unwrap() > 0, "{c}");
            assert_eq!(c["errors"], 0, "{c}");
        }
    }
    let targets = doc["targets"].as_array().unwrap();
    assert!(targets
        .iter()
        .any(|t| t["rule"].as_str().unwrap().contains("/hash 16 KiB")));
}
