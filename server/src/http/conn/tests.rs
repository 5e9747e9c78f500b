//! The connection state machine, case by case.

use super::*;

/// What a poll returned, owned (so a test can collect several).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    Req {
        method: Method,
        target: String,
        version: Version,
        keep_alive: bool,
        body: Vec<u8>,
    },
    Continue,
    NeedMore,
    Error(u16),
    Closed,
}

fn got(event: Event<'_>) -> Got {
    match event {
        Event::Request(r) => Got::Req {
            method: r.method,
            target: r.target.to_owned(),
            version: r.version,
            keep_alive: r.keep_alive,
            body: r.body.to_vec(),
        },
        Event::Continue => Got::Continue,
        Event::NeedMore => Got::NeedMore,
        Event::Error { status } => Got::Error(status),
        Event::Closed => Got::Closed,
    }
}

/// Every event until NeedMore or Closed (included), skipping Continue.
fn drain(conn: &mut Conn) -> Vec<Got> {
    let mut all = Vec::new();
    loop {
        let g = got(conn.poll());
        let stop = matches!(g, Got::NeedMore | Got::Closed | Got::Error(_));
        if g != Got::Continue {
            all.push(g);
        }
        if stop {
            return all;
        }
    }
}

fn small() -> Limits {
    Limits {
        max_head: 256,
        max_body: 64,
    }
}

fn feed(limits: Limits, input: &[u8]) -> Vec<Got> {
    let mut conn = Conn::new(limits);
    conn.push(input);
    drain(&mut conn)
}

/// The events of `input` fed one byte at a time, without the NeedMores.
fn feed_bytewise(limits: Limits, input: &[u8]) -> Vec<Got> {
    let mut conn = Conn::new(limits);
    let mut all = Vec::new();
    for b in input {
        conn.push(std::slice::from_ref(b));
        for g in drain(&mut conn) {
            if g != Got::NeedMore {
                all.push(g);
            }
        }
        if conn.phase() == Phase::Closed {
            break;
        }
    }
    all
}

fn req(method: Method, target: &str, keep_alive: bool, body: &[u8]) -> Got {
    Got::Req {
        method,
        target: target.into(),
        version: Version::Http11,
        keep_alive,
        body: body.to_vec(),
    }
}

fn status(input: &[u8]) -> Vec<Got> {
    feed(small(), input)
}

/// Each of `inputs`, on a fresh connection, gives `want`.
fn each_is(inputs: &[&[u8]], want: &[Got]) {
    for input in inputs {
        assert_eq!(status(input), want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn one_get() {
    assert_eq!(
        status(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n"),
        [req(Method::Get, "/health", true, b""), Got::NeedMore]
    );
}

#[test]
fn pipelined_in_order() {
    let input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
        POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz\
        POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n\
        GET /d HTTP/1.1\r\nHost: x\r\n\r\nGET /e HT";
    let want = vec![
        req(Method::Get, "/a", true, b""),
        req(Method::Post, "/b", true, b"xyz"),
        req(Method::Post, "/c", true, b"hi"),
        req(Method::Get, "/d", true, b""),
        Got::NeedMore,
    ];
    assert_eq!(feed(small(), input), want);
    assert_eq!(feed_bytewise(small(), input), want[..4]);
}

#[test]
fn split_anywhere() {
    let input: &[u8] = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
        POST /y HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n3;a=b\r\nabc\r\n1\r\nd\r\n0\r\nT: v\r\n\r\n";
    let whole = feed(small(), input);
    for cut in 0..input.len() {
        let mut conn = Conn::new(small());
        conn.push(&input[..cut]);
        let mut all: Vec<Got> = drain(&mut conn)
            .into_iter()
            .filter(|g| *g != Got::NeedMore)
            .collect();
        conn.push(&input[cut..]);
        all.extend(drain(&mut conn));
        assert_eq!(all, whole, "cut at {cut}");
    }
}

#[test]
fn keep_alive_rules() {
    let v10 = |keep_alive| Got::Req {
        method: Method::Get,
        target: "/".into(),
        version: Version::Http10,
        keep_alive,
        body: vec![],
    };
    assert_eq!(
        status(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        [v10(false), Got::Closed]
    );
    assert_eq!(
        status(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
        [v10(true), Got::NeedMore]
    );
    assert_eq!(
        status(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"),
        [v10(false), Got::Closed]
    );
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, CLOSE\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        [req(Method::Get, "/", false, b""), Got::Closed]
    );
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"),
        [req(Method::Get, "/", true, b""), Got::NeedMore]
    );
    // Closed stays closed.
    let mut conn = Conn::new(small());
    conn.push(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(matches!(conn.poll(), Event::Request(r) if !r.keep_alive && r.mode().close));
    assert_eq!(conn.phase(), Phase::Closed);
    conn.push(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(conn.poll(), Event::Closed);
}

#[test]
fn host_is_required_once_in_http11() {
    // RFC 9112, section 3.2: no Host in HTTP/1.1, two of them, or a value that is
    // not `uri-host [":" port]` is answered 400 (and the connection closes).
    each_is(
        &[
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhOsT: b\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\"\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ],
        &[Got::Error(400)],
    );
    let get = |version| Got::Req {
        method: Method::Get,
        target: "/".into(),
        version,
        keep_alive: version == Version::Http11,
        body: Vec::new(),
    };
    each_is(
        &[
            &b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHOST:  127.0.0.1:8080 \r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: xn--bcher-kva.example\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        ],
        &[get(Version::Http11), Got::NeedMore],
    );
    // HTTP/1.0 predates Host: none is fine.
    assert_eq!(
        status(b"GET / HTTP/1.0\r\n\r\n"),
        [get(Version::Http10), Got::Closed]
    );
}

#[test]
fn malformed_heads_are_400() {
    each_is(
        &[
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n : x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ],
        &[Got::Error(400)],
    );
}

#[test]
fn leading_blank_lines_are_skipped() {
    assert_eq!(
        status(b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        [req(Method::Get, "/", true, b""), Got::NeedMore]
    );
}

#[test]
fn error_closes() {
    let mut conn = Conn::new(small());
    conn.push(b"BAD\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(conn.poll(), Event::Error { status: 400 });
    assert_eq!(conn.phase(), Phase::Closed);
    assert_eq!(conn.poll(), Event::Closed);
    assert_eq!(conn.poll(), Event::Closed);
}

#[test]
fn content_length_rules() {
    // Agreeing duplicates are one length.
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab"),
        [req(Method::Post, "/", true, b"ab"), Got::NeedMore]
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab"),
        [req(Method::Post, "/", true, b"ab"), Got::NeedMore]
    );
    each_is(
        &[
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nab",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x2\r\n\r\nab",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2 2\r\n\r\nab",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ],
        &[Got::Error(400)],
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
        [req(Method::Post, "/", true, b""), Got::NeedMore]
    );
}

#[test]
fn smuggling_is_400() {
    each_is(
        &[
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ],
        &[Got::Error(400)],
    );
}

#[test]
fn content_length_over_limit_is_413_before_the_body() {
    let mut conn = Conn::new(small());
    conn.push(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n");
    assert_eq!(conn.poll(), Event::Error { status: 413 });
    assert_eq!(conn.poll(), Event::Closed);
    // At the limit it is read.
    let body = [b'x'; 64];
    let mut input = b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n".to_vec();
    input.extend_from_slice(&body);
    assert_eq!(
        status(&input),
        [req(Method::Post, "/hash", true, &body), Got::NeedMore]
    );
}

#[test]
fn chunked_bodies() {
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        [req(Method::Post, "/", true, b""), Got::NeedMore]
    );
    // Extensions, upper-case hex, whitespace before ';', trailers.
    assert_eq!(
        status(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked \r\n\r\n\
              A;name=\"quoted;value\"\r\n0123456789\r\n1 ;x\r\n!\r\n0;last\r\n\
              Trailer-One: 1\r\nTrailer-Two: 2\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
        [
            req(Method::Post, "/", true, b"0123456789!"),
            req(Method::Get, "/", true, b""),
            Got::NeedMore
        ]
    );
    // Exactly max_body across chunks.
    let mut input = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        input.extend_from_slice(b"10\r\n0123456789abcdef\r\n");
    }
    input.extend_from_slice(b"0\r\n\r\n");
    assert!(matches!(&status(&input)[0], Got::Req { body, .. } if body.len() == 64));
}

#[test]
fn chunked_over_limit_is_413() {
    // The declared size alone passes the limit: 413 before its data.
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n"),
        [Got::Error(413)]
    );
    // The running total passes it.
    let mut input = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        input.extend_from_slice(b"10\r\n0123456789abcdef\r\n");
    }
    input.extend_from_slice(b"1\r\n");
    assert_eq!(status(&input), [Got::Error(413)]);
    assert_eq!(
        status(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n"
        ),
        [Got::Error(413)]
    );
}

#[test]
fn bad_chunks_are_400() {
    for bad in [
        &b"\r\n"[..],
        b";ext\r\n",
        b"g\r\n",
        b"-1\r\n",
        b"1x\r\n",
        b"1\n",
        b"1\rx",
        b"1000000000000000\r\n",
        b"1;a\nb\r\n",
        b"1;a\x00\r\n",
        b"3\r\nabcX\r\n",
        b"3\r\nabc\rX",
        b"0\r\nBad Trailer\r\n\r\n",
        b"0\r\n: x\r\n\r\n",
    ] {
        let mut input =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        input.extend_from_slice(bad);
        assert_eq!(
            status(&input),
            [Got::Error(400)],
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // A chunk-size line over 1 KiB (long extensions).
    let mut input = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    input.resize(input.len() + 2000, b'e');
    assert_eq!(status(&input), [Got::Error(400)]);
}

#[test]
fn head_over_limit_is_431() {
    let mut input = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
    input.resize(300, b'a');
    assert_eq!(status(&input), [Got::Error(431)]);
    // Incomplete and under the limit: wait.
    assert_eq!(status(&input[..200]), [Got::NeedMore]);
    // Exactly at the limit is fine.
    let mut input = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
    input.resize(256 - 4, b'a');
    input.extend_from_slice(b"\r\n\r\n");
    assert!(matches!(status(&input)[0], Got::Req { .. }));
    input.insert(20, b'a');
    assert_eq!(status(&input), [Got::Error(431)]);
    // Too many fields.
    let mut input = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for _ in 0..=MAX_HEADERS {
        input.extend_from_slice(b"A: b\r\n");
    }
    input.extend_from_slice(b"\r\n");
    assert_eq!(status(&input), [Got::Error(431)]);
    // Trailers over the head limit.
    let mut input =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ".to_vec();
    input.resize(input.len() + 300, b't');
    assert_eq!(status(&input), [Got::Error(431)]);
}

#[test]
fn phases() {
    let mut conn = Conn::new(small());
    assert_eq!(conn.phase(), Phase::Idle);
    assert!(!conn.phase().in_request());
    conn.push(b"POST / HTTP/1.1\r\nHost: x\r\nContent-");
    assert_eq!(conn.poll(), Event::NeedMore);
    assert_eq!(conn.phase(), Phase::Head);
    assert!(conn.phase().in_request());
    conn.push(b"Length: 4\r\n\r\nab");
    assert_eq!(conn.poll(), Event::NeedMore);
    assert_eq!(conn.phase(), Phase::Body);
    conn.push(b"cd");
    assert!(matches!(conn.poll(), Event::Request(r) if r.body == b"abcd"));
    assert_eq!(conn.phase(), Phase::Idle);
    assert_eq!(conn.buffered(), 0);
    conn.push(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
    assert_eq!(conn.poll(), Event::NeedMore);
    assert_eq!(conn.phase(), Phase::Body);
}

#[test]
fn expect_continue() {
    let mut conn = Conn::new(small());
    conn.push(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(conn.poll(), Event::Continue);
    assert_eq!(conn.poll(), Event::NeedMore);
    conn.push(b"ok");
    assert!(matches!(conn.poll(), Event::Request(r) if r.body == b"ok"));
    // Body already here: no Continue.
    let mut conn = Conn::new(small());
    conn.push(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok");
    assert!(matches!(conn.poll(), Event::Request(_)));
    // Refused: 413, no Continue.
    let mut conn = Conn::new(small());
    conn.push(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99\r\n\r\n");
    assert_eq!(conn.poll(), Event::Error { status: 413 });
    // No body: no Continue.
    let mut conn = Conn::new(small());
    conn.push(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
    assert!(matches!(conn.poll(), Event::Request(_)));
}

#[test]
fn target_and_path() {
    let mut conn = Conn::new(small());
    conn.push(b"GET /health?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    let Event::Request(r) = conn.poll() else {
        panic!()
    };
    assert_eq!((r.target, r.path()), ("/health?probe=1", "/health"));
    assert_eq!(Method::from_token("PATCH"), Method::Other);
}

#[test]
fn read_buf_grows_for_big_bodies_and_compacts() {
    let limits = Limits {
        max_head: 1024,
        max_body: 100_000,
    };
    let mut conn = Conn::new(limits);
    let body = vec![b'z'; 100_000];
    let mut input = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".to_vec();
    input.extend_from_slice(&body);
    input.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    // Read in uneven pieces through read_buf/filled.
    let mut rest = &input[..];
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let spare = conn.read_buf();
        assert!(spare.len() >= 4096);
        let n = spare.len().min(rest.len()).min(3000);
        spare[..n].copy_from_slice(&rest[..n]);
        conn.filled(n);
        rest = &rest[n..];
        for g in drain(&mut conn) {
            if g != Got::NeedMore {
                seen.push(g);
            }
        }
    }
    assert_eq!(
        seen,
        [
            req(Method::Post, "/", true, &body),
            req(Method::Get, "/next", true, b"")
        ]
    );
}

#[test]
fn trim_and_content_length() {
    assert_eq!(trim(b" \t a b \t"), b"a b");
    assert_eq!(trim(b"  "), b"");
    assert_eq!(parse_content_length(b"0"), Some(0));
    assert_eq!(parse_content_length(b"18446744073709551615"), None);
    assert_eq!(
        parse_content_length(b"1234567890123456789"),
        Some(1234567890123456789)
    );
    assert_eq!(parse_chunk_line(b"a"), Ok(None));
    assert_eq!(parse_chunk_line(b"a\r"), Ok(None));
    assert_eq!(parse_chunk_line(b"a\r\n"), Ok(Some((3, 10))));
    assert_eq!(parse_chunk_line(b"a ; x=y \r\n"), Ok(Some((10, 10))));
}

/// A big request grows the input buffer; once it is consumed and the
/// connection is idle, the buffer goes back to its first size (an idle
/// connection does not keep the room of its largest request). A small one
/// keeps its buffer (no allocation per request).
#[test]
fn an_idle_connection_gives_back_a_grown_buffer() {
    let mut conn = Conn::new(Limits::default());
    let first = conn.buf.len();
    let body = vec![b'x'; 300 * 1024];
    let mut req = format!(
        "POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    conn.push(&req);
    assert!(matches!(
        drain(&mut conn)[..],
        [Got::Req { .. }, Got::NeedMore]
    ));
    assert!(conn.buf.len() > KEEP_INPUT);
    let _ = conn.read_buf();
    assert_eq!(conn.buf.len(), first);
    conn.push(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(
        drain(&mut conn)[..],
        [Got::Req { .. }, Got::NeedMore]
    ));
    let before = conn.buf.as_ptr();
    let _ = conn.read_buf();
    assert_eq!(conn.buf.as_ptr(), before, "a small buffer was reallocated");
}

#[test]
fn take_body_moves_a_length_body_and_keeps_what_follows() {
    let mut conn = Conn::new(Limits::default());
    // The second request arrives in part: its head, half its body.
    conn.push(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPOST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nwor");
    let Event::Request(req) = conn.poll() else {
        panic!("the first request is complete")
    };
    assert_eq!(req.body, b"hello");
    let (first, range) = conn.take_body(Vec::new());
    assert_eq!(&first[range], b"hello");
    assert_eq!(conn.poll(), Event::NeedMore);
    conn.push(b"ld!");
    let Event::Request(req) = conn.poll() else {
        panic!("the second request is complete")
    };
    assert_eq!(req.body, b"world!");
    // The first request's buffer goes back in as the spare.
    let (second, range) = conn.take_body(first);
    assert_eq!(&second[range], b"world!");
    assert_eq!(conn.poll(), Event::NeedMore);
    assert_eq!(conn.phase(), Phase::Idle);
}

#[test]
fn take_body_moves_a_chunked_body() {
    let mut conn = Conn::new(Limits::default());
    conn.push(b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let Event::Request(req) = conn.poll() else {
        panic!("the chunked request is complete")
    };
    assert_eq!(req.body, b"abcde");
    let (body, range) = conn.take_body(vec![7; 3]);
    assert_eq!(&body[range], b"abcde");
    let Event::Request(req) = conn.poll() else {
        panic!("the next request follows")
    };
    assert_eq!((req.target, req.body), ("/health", &b""[..]));
}

#[test]
fn take_body_without_a_body_gives_the_spare_back() {
    let mut conn = Conn::new(Limits::default());
    let (spare, range) = conn.take_body(vec![1, 2, 3]);
    assert_eq!((spare, range), (vec![1, 2, 3], 0..0));
    conn.push(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    assert!(matches!(conn.poll(), Event::Request(_)));
    let (body, range) = conn.take_body(Vec::new());
    assert_eq!(&body[range], b"hi");
    // Taken once: a second call has nothing to take.
    let (spare, range) = conn.take_body(vec![9]);
    assert_eq!((spare, range), (vec![9], 0..0));
    // Nor after a poll that returned no request.
    assert_eq!(conn.poll(), Event::NeedMore);
    assert_eq!(conn.take_body(Vec::new()).1, 0..0);
}

#[test]
fn taken_bodies_reuse_their_buffers() {
    let mut conn = Conn::new(Limits::default());
    let mut spare = Vec::new();
    for i in 0..1000usize {
        let body = vec![(i % 251) as u8; 1 + i * 37 % 20_000];
        let mut msg = format!(
            "POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        msg.extend_from_slice(&body);
        // Arrives in pieces, as reads do.
        for piece in msg.chunks(3000) {
            conn.push(piece);
        }
        let Event::Request(req) = conn.poll() else {
            panic!("request {i} is complete")
        };
        assert_eq!(req.body.len(), body.len());
        let (buf, range) = conn.take_body(std::mem::take(&mut spare));
        assert_eq!(&buf[range], &body[..], "request {i}");
        spare = buf;
        assert_eq!(conn.poll(), Event::NeedMore);
    }
}

#[test]
fn read_buf_has_room_for_the_rest_of_a_known_body() {
    let mut conn = Conn::new(Limits::default());
    conn.push(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\nabc");
    assert_eq!(conn.poll(), Event::NeedMore);
    let rest = vec![b'z'; 50_000 - 3];
    let room = conn.read_buf();
    assert!(room.len() >= rest.len(), "room for {} bytes", room.len());
    // One read of the whole rest completes the request.
    room[..rest.len()].copy_from_slice(&rest);
    conn.filled(rest.len());
    let Event::Request(req) = conn.poll() else {
        panic!("the request is complete")
    };
    assert_eq!(req.body.len(), 50_000);
    assert_eq!(&req.body[..4], b"abcz");
}

#[test]
fn a_declared_body_is_not_allocated_before_it_arrives() {
    let mut conn = Conn::new(Limits::default());
    conn.push(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    assert_eq!(conn.poll(), Event::NeedMore);
    let room = conn.read_buf().len();
    assert!(
        (64 * 1024..128 * 1024).contains(&room),
        "room for {room} bytes of a 1 MB body that has not come"
    );
}

#[test]
fn a_read_into_the_taken_input_buffer_is_parsed() {
    let mut conn = Conn::new(Limits::default());
    // A partial head stays buffered while the buffer is out.
    conn.push(b"GET /hea");
    assert_eq!(conn.poll(), Event::NeedMore);
    let (mut buf, room) = conn.take_input();
    assert!(room.len() >= 4096);
    assert_eq!(&buf[..room.start], b"GET /hea");
    let rest = b"lth HTTP/1.1\r\nHost: x\r\n\r\n";
    buf[room.start..room.start + rest.len()].copy_from_slice(rest);
    conn.put_input(buf);
    conn.filled(rest.len());
    let Event::Request(req) = conn.poll() else {
        panic!("the request is complete")
    };
    assert_eq!(req.target, "/health");
    assert_eq!(conn.poll(), Event::NeedMore);
}

/// A connection with a partial head buffered, its input buffer taken out.
fn with_input_out() -> (Conn, Vec<u8>) {
    let mut conn = Conn::new(Limits::default());
    conn.push(b"GET /hea");
    let (buf, _room) = conn.take_input();
    (conn, buf)
}

#[test]
#[should_panic(expected = "not the input buffer")]
fn put_input_refuses_another_buffer() {
    let (mut conn, _buf) = with_input_out();
    conn.put_input(Vec::new());
}

#[test]
#[should_panic(expected = "while its input buffer is taken")]
fn polling_with_the_input_buffer_out_says_why() {
    let (mut conn, _buf) = with_input_out();
    let _ = conn.poll();
}
