//! The http section's side of the load client: one HTTP/1.1 request per
//! keep-alive connection at a time, and the parser that says when its
//! response is whole. The closed loop itself (epoll, windows, histograms,
//! the server's `/proc` marks) is the echo client's
//! ([`crate::bench::echo::client`]), driven through [`Exchange`].
//!
//! The parser is minimal but strict: the head (status line and header
//! fields, parsed with `httparse`) must end within [`MAX_HEAD`] bytes, the
//! body is exactly `Content-Length` bytes, and nothing may follow it (one
//! request is in flight, so a byte after the body is not an answer to it).
//! What the client cannot frame without guessing, a chunked body, a body
//! without `Content-Length` or an interim `1xx` answer, stops the run with
//! the reason; a server that says `Connection: close` does too, since the
//! next request would find the connection gone. A whole answer whose status
//! is not 200 is counted as an error of its window.

use super::Endpoint;
use crate::bench::echo::client::Exchange;
use std::sync::Arc;

/// The longest response head the client accepts.
pub const MAX_HEAD: usize = 8 * 1024;

/// Header fields parsed at most (the servers send four or five).
const MAX_FIELDS: usize = 32;

/// One endpoint's request, repeated on every connection.
#[derive(Clone, Debug)]
pub struct Http {
    request: Arc<[u8]>,
}

impl Http {
    /// The request of `endpoint`.
    pub fn new(endpoint: Endpoint) -> Http {
        Http {
            request: endpoint.request().into(),
        }
    }
}

/// A connection's progress through one response.
#[derive(Debug, Default)]
pub struct Reading {
    /// The head so far (and any body bytes read with its end).
    head: Vec<u8>,
    /// Once the head is parsed: its status and the body bytes still to come.
    body: Option<(u16, usize)>,
}

impl Exchange for Http {
    type Reading = Reading;

    fn request(&self) -> &[u8] {
        &self.request
    }

    fn read_limit(&self, r: &Reading) -> usize {
        match r.body {
            Some((_, left)) => left.max(1),
            None => MAX_HEAD + 1 - r.head.len().min(MAX_HEAD),
        }
    }

    fn take(&self, r: &mut Reading, bytes: &[u8]) -> Result<Option<bool>, String> {
        let (status, left) = match r.body {
            Some((status, left)) => {
                let left = left
                    .checked_sub(bytes.len())
                    .ok_or("bytes after the end of a response")?;
                (status, left)
            }
            None => {
                // Search only where the end of the head can newly be.
                let from = r.head.len().saturating_sub(3);
                r.head.extend_from_slice(bytes);
                let Some(end) = find_head_end(&r.head, from) else {
                    if r.head.len() > MAX_HEAD {
                        return Err(format!("a response head over {MAX_HEAD} bytes"));
                    }
                    return Ok(None);
                };
                let head = parse_head(&r.head[..end])?;
                let read = r.head.len() - end;
                let left = head
                    .content_length
                    .checked_sub(read)
                    .ok_or("bytes after the end of a response")?;
                r.head.clear();
                (head.status, left)
            }
        };
        if left > 0 {
            r.body = Some((status, left));
            return Ok(None);
        }
        r.body = None;
        Ok(Some(status == 200))
    }
}

/// The end of the head (just past its blank line) in `buf`, searching from
/// `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4)
}

/// What the client needs of a response head.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The body's length.
    pub content_length: usize,
}

/// Parses a whole response head (through its blank line).
///
/// # Errors
///
/// A malformed head, an interim `1xx` status, a chunked body, a missing or
/// bad `Content-Length` (two that differ included), or `Connection: close`.
pub fn parse_head(head: &[u8]) -> Result<Head, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("a partial response head".into()),
        Err(e) => return Err(format!("a malformed response head: {e}")),
    }
    let status = response.code.ok_or("a response head without status")?;
    if (100..200).contains(&status) {
        return Err(format!("an interim {status} response (none was asked for)"));
    }
    let mut content_length = None;
    for f in response.headers.iter() {
        let value = std::str::from_utf8(f.value).unwrap_or("").trim();
        if f.name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| format!("a bad Content-Length {value:?}"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err("two different Content-Length fields".into());
            }
            content_length = Some(n);
        } else if f.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!(
                "a response body in Transfer-Encoding {value:?} (the bench client frames only Content-Length)"
            ));
        } else if f.name.eq_ignore_ascii_case("connection")
            && value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
        {
            return Err(format!(
                "a {status} response with Connection: close (the server ends the keep-alive connection)"
            ));
        }
    }
    let content_length =
        content_length.ok_or(format!("a {status} response without Content-Length"))?;
    Ok(Head {
        status,
        content_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` to a fresh reading, one `take` each.
    fn feed(chunks: &[&[u8]]) -> Vec<Result<Option<bool>, String>> {
        let http = Http::new(Endpoint::Health);
        let mut r = Reading::default();
        chunks.iter().map(|c| http.take(&mut r, c)).collect()
    }

    #[test]
    fn heads_parse() {
        let h =
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(
            h,
            Ok(Head {
                status: 200,
                content_length: 3
            })
        );
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\nCONTENT-LENGTH:  10 \r\n\r\n").unwrap();
        assert_eq!((h.status, h.content_length), (404, 10));
        // The same length twice is allowed (RFC 9110 8.6), two lengths are not.
        let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(parse_head(twice).unwrap().content_length, 3);
        let differ = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert!(parse_head(differ).is_err());
    }

    #[test]
    fn unframeable_heads_are_errors() {
        for head in [
            &b"HTTP/1.1 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
            b"SMTP 200 OK\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert!(
                parse_head(head).is_err(),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn a_response_in_pieces_is_whole_once() {
        let r = feed(&[
            b"HTTP/1.1 200 OK\r",
            b"\nContent-Length: 3\r\n\r",
            b"\nok",
            b"\n",
        ]);
        assert_eq!(r, [Ok(None), Ok(None), Ok(None), Ok(Some(true))]);
        // Head and body in one read.
        let r = feed(&[b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"]);
        assert_eq!(r, [Ok(Some(true))]);
    }

    #[test]
    fn non_200_is_whole_but_unexpected_and_the_next_one_parses() {
        let r = feed(&[
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
            b"ok",
        ]);
        assert_eq!(r, [Ok(Some(false)), Ok(None), Ok(Some(true))]);
    }

    #[test]
    fn bytes_past_the_body_and_long_heads_are_errors() {
        let r = feed(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nok"]);
        assert!(r[0].is_err());
        let r = feed(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", b"ok"]);
        assert!(r[1].is_err());
        let long = vec![b'a'; MAX_HEAD + 1];
        assert!(feed(&[&long])[0].is_err());
    }

    /// The load client with this exchange against a hyper peer on a
    /// thread of this process: every answer is counted once, and a status
    /// other than 200 as an error.
    #[test]
    fn the_load_client_counts_answers_and_errors() {
        use crate::bench::echo::client::{run, Load};
        use ringpool_peers::{Config, Impl};
        use std::net::SocketAddr;
        use std::time::Duration;
        let config = Config {
            imp: Impl::HyperInline,
            threads: 1,
            workers: 1,
            limits: ringpool_server::http::Limits::default(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = ringpool_peers::runtime(&config).unwrap();
            rt.block_on(async {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                ringpool_peers::serve(l, config, std::future::pending()).await
            })
        });
        let addr: SocketAddr = rx.recv().unwrap();
        let load = Load {
            connections: 4,
            warmup: Duration::from_millis(5),
            window: Duration::from_millis(20),
            reps: 2,
        };
        let pid = std::process::id();
        let not_found = Http {
            request: b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".as_slice().into(),
        };
        for (http, all_errors) in [(Http::new(Endpoint::Hash), false), (not_found, true)] {
            let windows = run(addr, pid, &http, load, &[None]).unwrap();
            assert_eq!(windows.len(), 2);
            for w in &windows {
                assert_eq!(w.hist.len(), w.round_trips);
                let errors = if all_errors { w.round_trips } else { 0 };
                assert_eq!(w.errors, errors);
            }
        }
    }

    #[test]
    fn reads_never_take_more_than_the_body() {
        let http = Http::new(Endpoint::Hash);
        let mut r = Reading::default();
        assert_eq!(http.read_limit(&r), MAX_HEAD + 1);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n";
        assert_eq!(http.take(&mut r, head), Ok(None));
        assert_eq!(http.read_limit(&r), 65);
        assert!(http.request().starts_with(b"POST /hash HTTP/1.1\r\n"));
    }
}
