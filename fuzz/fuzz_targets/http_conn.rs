//! libFuzzer target for ringpool-server's HTTP/1.1 framing (`http::Conn`).
//!
//! Input: byte 0 picks `max_head` (16 + 4 × b), byte 1 `max_body` (2 × b), byte 2 the
//! piece sizes the stream is cut into (a small LCG seeded by it); the rest is the byte
//! stream a client sends. Checked:
//! * no panic; no body over `max_body`; no head over `max_head` parsed;
//! * after `Error` or a request that closes, only `Closed`;
//! * fed whole or in pieces, the same requests come out, and the same final event
//!   (`Continue` aside, which depends on what is buffered);
//! * fed in pieces, each body is also taken out with `take_body` (the taken buffer
//!   becoming the next spare): it holds the body, and what follows parses the same;
//! * the pieces go in through `read_buf`, `take_input`/`put_input` or `push` alike.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringpool_server::http::{Conn, Event, Limits, Method, Version};

#[derive(Debug, PartialEq, Eq)]
enum Got {
    Req(Method, String, Version, bool, Vec<u8>),
    NeedMore,
    Error(u16),
    Closed,
}

/// Polls until NeedMore, Closed or Error; appends what came out. With `spare`, each
/// request's body is taken out of the connection, in exchange for it.
fn drain(conn: &mut Conn, limits: Limits, all: &mut Vec<Got>, mut spare: Option<&mut Vec<u8>>) {
    loop {
        let got = match conn.poll() {
            Event::Request(r) => {
                assert!(r.body.len() <= limits.max_body);
                assert!(r.target.len() < limits.max_head);
                Got::Req(
                    r.method,
                    r.target.to_owned(),
                    r.version,
                    r.keep_alive,
                    r.body.to_vec(),
                )
            }
            Event::Continue => continue,
            Event::NeedMore => Got::NeedMore,
            Event::Error { status } => {
                assert!(matches!(status, 400 | 413 | 431), "{status}");
                Got::Error(status)
            }
            Event::Closed => Got::Closed,
        };
        if let (Got::Req(_, _, _, _, body), Some(spare)) = (&got, spare.as_deref_mut()) {
            let (buf, range) = conn.take_body(std::mem::take(spare));
            assert_eq!(&buf[range], &body[..]);
            *spare = buf;
        }
        let stop = !matches!(got, Got::Req(..));
        let closes = matches!(got, Got::Req(_, _, _, false, _) | Got::Error(_));
        all.push(got);
        if closes {
            assert_eq!(conn.poll(), Event::Closed);
            assert_eq!(conn.poll(), Event::Closed);
            all.push(Got::Closed);
            return;
        }
        if stop {
            return;
        }
    }
}

/// The requests, and the last event.
fn summary(events: Vec<Got>) -> (Vec<Got>, Option<Got>) {
    let mut reqs = Vec::new();
    let mut last = None;
    for e in events {
        match e {
            Got::Req(..) => reqs.push(e),
            other => last = Some(other),
        }
    }
    (reqs, last)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let limits = Limits {
        max_head: 16 + 4 * usize::from(data[0]),
        max_body: 2 * usize::from(data[1]),
    };
    let mut seed = u32::from(data[2]) | 1;
    let stream = &data[3..];

    let mut whole = Conn::new(limits);
    whole.push(stream);
    let mut a = Vec::new();
    drain(&mut whole, limits, &mut a, None);

    let mut pieces = Conn::new(limits);
    let mut b = Vec::new();
    let mut spare = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (1 + (seed >> 16) as usize % 97).min(rest.len());
        // Through read_buf/filled, through take_input/put_input/filled (as
        // `ringpool serve` reads), or through push.
        match (seed >> 8) % 3 {
            0 => {
                let spare = pieces.read_buf();
                spare[..n].copy_from_slice(&rest[..n]);
                pieces.filled(n);
            }
            1 => {
                let (mut buf, room) = pieces.take_input();
                assert!(room.len() >= 4096 && room.end <= buf.len());
                buf[room.start..room.start + n].copy_from_slice(&rest[..n]);
                pieces.put_input(buf);
                pieces.filled(n);
            }
            _ => pieces.push(&rest[..n]),
        }
        rest = &rest[n..];
        drain(&mut pieces, limits, &mut b, Some(&mut spare));
        if matches!(b.last(), Some(Got::Closed)) {
            break;
        }
    }
    if stream.is_empty() {
        drain(&mut pieces, limits, &mut b, Some(&mut spare));
    }
    assert_eq!(summary(a), summary(b));
});
