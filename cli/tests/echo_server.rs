//! The hidden `ringpool echo-server` subcommand, as the bench's echo
//! section drives it: the `listening` line, echo, the stop on stdin close,
//! for every server, ringpool's runtime among them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn echo_once(imp: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringpool"))
        .args(["echo-server", "--impl", imp, "--addr", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().strip_prefix("listening ").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    let msg: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    s.write_all(&msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, msg, "{imp}");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "{imp}");
}

#[test]
fn tokio_ct_echoes_and_stops_on_stdin_close() {
    echo_once("tokio-ct");
}

#[test]
fn tokio_mt_echoes_and_stops_on_stdin_close() {
    echo_once("tokio-mt");
}

#[test]
fn floor_epoll_echoes_and_stops_on_stdin_close() {
    echo_once("floor-epoll");
}

#[test]
fn ringpool_echoes_and_stops_on_stdin_close() {
    echo_once("ringpool");
}
