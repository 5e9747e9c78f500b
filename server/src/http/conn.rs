//! The sans-io HTTP/1.1 connection: bytes in, requests (or one error status) out.
//!
//! # Framing rules
//!
//! * The head (request line and header fields) is parsed by `httparse` into a stack array
//!   of [`MAX_HEADERS`] fields. More fields, or a head longer than [`Limits::max_head`]:
//!   431. Anything `httparse` rejects: 400.
//! * The body is framed by `Content-Length` or by `Transfer-Encoding: chunked`, never by
//!   both (400: the classic request-smuggling ambiguity). Duplicate `Content-Length`
//!   values must agree (400 otherwise); a transfer coding other than a lone `chunked`:
//!   400; `Transfer-Encoding` in an HTTP/1.0 request: 400.
//! * `Host` (RFC 9112, section 3.2): an HTTP/1.1 request without one, any request with
//!   more than one, or a value that is not a `uri-host [ ":" port ]`: 400. (Two `Host`
//!   fields are how a request means one host to a proxy and another to the server.)
//! * A `Content-Length` over [`Limits::max_body`] is answered with 413 as soon as the head
//!   is parsed, before any of the body is read. A chunked body is counted as its chunk
//!   sizes arrive: 413 the moment the declared total would pass the limit.
//! * Every error closes the connection: after [`Event::Error`], [`Conn::poll`] only returns
//!   [`Event::Closed`], whatever else is buffered.
//! * Keep-alive: HTTP/1.1 persists unless `Connection: close`; HTTP/1.0 closes unless
//!   `Connection: keep-alive`. After a request that does not keep the connection alive,
//!   the next poll returns [`Event::Closed`] (pipelined bytes after it are ignored).

use std::cmp::min;

use super::response::ResponseMode;
use super::{Method, Version};

/// How many header fields a request head may have (a stack array of this many
/// `httparse::Header`s). One more is answered with 431.
pub const MAX_HEADERS: usize = 32;

/// The smallest spare region [`Conn::read_buf`] hands out.
const MIN_READ: usize = 4096;

/// An input buffer grown past this (by one big request) goes back to its
/// first size once the connection is idle: an idle connection holds 8 KiB,
/// not the room of its largest request.
const KEEP_INPUT: usize = 64 * 1024;

/// The longest chunk-size line (size, extensions, CRLF) accepted; longer: 400.
const MAX_CHUNK_LINE: usize = 1024;

/// The limits a [`Conn`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest request head in bytes (request line, fields, the blank line; also the
    /// longest trailer section of a chunked body). Longer: 431.
    pub max_head: usize,
    /// The largest request body in bytes (after de-chunking). Larger: 413.
    pub max_body: usize,
}

impl Default for Limits {
    /// 8 KiB of head, 1 MiB of body.
    fn default() -> Self {
        Limits {
            max_head: 8 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

/// Where a connection is between two reads; the driver picks its timer from this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Between requests, nothing of the next one buffered: the keep-alive idle timeout
    /// applies (on expiry, close without a response).
    Idle,
    /// Part of a request head is buffered: the request timeout applies (on expiry, answer
    /// 408 with [`ResponseMode::CLOSE`] and close).
    Head,
    /// The head is parsed and the body is incomplete: the request timeout applies, as for
    /// [`Phase::Head`].
    Body,
    /// The connection is done (an error, or a request that did not keep it alive): write
    /// what is pending, then close.
    Closed,
}

impl Phase {
    /// Whether a timeout in this phase is answered with 408 (a request is under way)
    /// rather than a silent close.
    pub fn in_request(self) -> bool {
        matches!(self, Phase::Head | Phase::Body)
    }
}

/// What [`Conn::poll`] found in the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete request. It borrows the connection; answer it (or copy what a job needs)
    /// and poll again: pipelined requests come out one after the other, in order.
    Request(Request<'a>),
    /// The client sent `Expect: 100-continue` and its body is not buffered yet: write
    /// [`response::CONTINUE`](super::response::CONTINUE), then read on. Returned at most once
    /// per request, and never when the request is refused (413 comes instead).
    Continue,
    /// Every buffered byte is used: read more (into [`Conn::read_buf`]) and poll again.
    NeedMore,
    /// The request is malformed or over a limit: write this status (with
    /// [`ResponseMode::CLOSE`], e.g. by [`response::write_error`](super::response::write_error))
    /// and close the connection after writing. Every later poll returns [`Event::Closed`].
    Error {
        /// 400, 413 or 431.
        status: u16,
    },
    /// The connection takes no more requests: write what is pending, then close.
    Closed,
}

/// One parsed request, borrowing the [`Conn`] that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The request target as sent (path and query).
    pub target: &'a str,
    /// The HTTP version.
    pub version: Version,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The body (de-chunked if it was chunked); empty if there was none.
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The path: the target up to its query, if any.
    pub fn path(&self) -> &'a str {
        match self.target.find('?') {
            Some(i) => &self.target[..i],
            None => self.target,
        }
    }

    /// How the response to this request is framed (`Connection` header).
    pub fn mode(&self) -> ResponseMode {
        ResponseMode {
            close: !self.keep_alive,
            http10: self.version == Version::Http10,
            head: self.method == Method::Head,
        }
    }
}

/// Where a connection's parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a request head.
    Head,
    /// The head is parsed; the body is the next `len` bytes of the buffer.
    Body { len: usize },
    /// The head is parsed; a chunk-size line comes next.
    ChunkSize,
    /// Inside a chunk's data, `left` bytes to go.
    ChunkData { left: usize },
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailer fields, then a blank line.
    Trailers,
    /// No more requests.
    Closed,
}

/// One step of the parser, without borrows (so `poll` can loop, then borrow).
enum Step {
    Again,
    NeedMore,
    Continue,
    Error(u16),
    Closed,
    /// A request is complete; its body is `buf[start..start + len]`.
    Input {
        start: usize,
        len: usize,
    },
    /// A request is complete; its body is `self.body` (de-chunked).
    Decoded,
}

/// What the parsed head said, kept until the body is complete.
#[derive(Clone, Copy, Debug)]
struct Head {
    method: Method,
    version: Version,
    keep_alive: bool,
    expect_continue: bool,
}

/// A sans-io HTTP/1.1 server connection.
///
/// The driver reads into [`read_buf`](Conn::read_buf) and reports the byte count with
/// [`filled`](Conn::filled) (or copies with [`push`](Conn::push)), then calls
/// [`poll`](Conn::poll) until it returns [`Event::NeedMore`] or [`Event::Closed`],
/// answering each [`Event::Request`] into one output buffer, and writes that buffer in
/// one write.
///
/// The input buffer and the de-chunked body buffer are allocated once and reused: a
/// request without a chunked body costs no allocation once the buffers have grown to the
/// connection's largest request.
///
/// # Examples
///
/// ```
/// use ringpool_server::http::{Conn, Event, Limits, Method};
///
/// let mut conn = Conn::new(Limits::default());
/// conn.push(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /stats HTTP/1.1\r\nHost: x\r\n\r\n");
/// let Event::Request(req) = conn.poll() else { panic!() };
/// assert_eq!((req.method, req.target), (Method::Get, "/health"));
/// let Event::Request(req) = conn.poll() else { panic!() };
/// assert_eq!(req.target, "/stats");
/// assert_eq!(conn.poll(), Event::NeedMore);
/// ```
#[derive(Debug)]
pub struct Conn {
    limits: Limits,
    /// The input buffer: `buf[start..end]` is received and not yet consumed. Its length is
    /// its allocated (zeroed) size, so spare room can be handed out as `&mut [u8]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    state: State,
    /// The current request's target, copied out of `buf` (reused).
    target: String,
    /// The current request's de-chunked body (reused).
    body: Vec<u8>,
    head: Head,
    /// Where the body of the request `poll` returned last is, for
    /// [`take_body`](Conn::take_body); reset by every `poll`.
    last_body: LastBody,
}

/// Where the body of the last [`Event::Request`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LastBody {
    /// No request since the last `poll`, or its body was taken.
    None,
    /// `buf[start..start + len]`, already consumed.
    Input { start: usize, len: usize },
    /// `body`, de-chunked.
    Decoded,
}

impl Conn {
    /// A connection in [`Phase::Idle`] that enforces `limits`.
    pub fn new(limits: Limits) -> Conn {
        Conn {
            limits,
            buf: vec![0; 2 * MIN_READ],
            start: 0,
            end: 0,
            state: State::Head,
            target: String::with_capacity(256),
            body: Vec::new(),
            head: Head {
                method: Method::Other,
                version: Version::Http11,
                keep_alive: true,
                expect_continue: false,
            },
            last_body: LastBody::None,
        }
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Where the connection is: pick the idle or the request timeout from this.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Closed => Phase::Closed,
            State::Head if self.start == self.end => Phase::Idle,
            State::Head => Phase::Head,
            _ => Phase::Body,
        }
    }

    /// How many received bytes are not yet consumed by [`poll`](Conn::poll).
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Spare room at the end of the input buffer to read into (at least 4 KiB, and room
    /// for the rest of a body of known length, up to 64 KiB); report how much was read
    /// with [`filled`](Conn::filled).
    ///
    /// Moves unconsumed bytes to the front of the buffer, or grows it, when the spare room
    /// is short. It stays bounded because [`poll`](Conn::poll) refuses a head or body over
    /// the limits before asking for more, and once nothing is buffered a buffer grown past
    /// 64 KiB goes back to its first size.
    ///
    /// # Panics
    ///
    /// While the input buffer is out ([`take_input`](Conn::take_input)) with bytes in it.
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.check_input();
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP_INPUT {
                self.buf = vec![0; 2 * MIN_READ];
            }
        }
        // Room for the rest of a body of known length (it is buffered whole
        // anyway, so one read can take it all), up to `KEEP_INPUT`: a client
        // that declares a big body and sends nothing does not get the
        // server to allocate it. At least `MIN_READ`.
        let want = match self.state {
            State::Body { len } => (self.start + len)
                .saturating_sub(self.end)
                .clamp(MIN_READ, KEEP_INPUT),
            _ => MIN_READ,
        };
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < want {
                let len = (self.buf.len() * 2).max(self.end + want);
                self.buf.resize(len, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// The input buffer itself, for a read that owns its buffer while the
    /// kernel writes into it (an io_uring receive straight into the
    /// connection's buffer, no copy): read into `buf[room]`, give the buffer
    /// back with [`put_input`](Conn::put_input), then report the bytes with
    /// [`filled`](Conn::filled). Prepares the room as
    /// [`read_buf`](Conn::read_buf) does. Until the buffer is back the
    /// connection has no input buffer: [`poll`](Conn::poll),
    /// [`read_buf`](Conn::read_buf) and [`filled`](Conn::filled) panic if
    /// bytes were buffered in it (drop the connection instead, if the read
    /// never returns the buffer).
    pub fn take_input(&mut self) -> (Vec<u8>, std::ops::Range<usize>) {
        let room = self.read_buf().len();
        let end = self.end;
        (std::mem::take(&mut self.buf), end..end + room)
    }

    /// Panics, saying why, if the input buffer is out ([`take_input`](Conn::take_input)
    /// without [`put_input`](Conn::put_input)) while bytes are buffered in it.
    #[inline]
    fn check_input(&self) {
        assert!(
            self.buf.len() >= self.end,
            "Conn used while its input buffer is taken (take_input without put_input)"
        );
    }

    /// Gives back the buffer [`take_input`](Conn::take_input) took.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than the buffer taken (it is not that buffer).
    pub fn put_input(&mut self, buf: Vec<u8>) {
        assert!(buf.len() >= self.end, "put_input: not the input buffer");
        self.buf = buf;
    }

    /// Records that `n` bytes were read into the front of the last
    /// [`read_buf`](Conn::read_buf).
    ///
    /// # Panics
    ///
    /// If `n` is larger than that region, or while the input buffer is out
    /// ([`take_input`](Conn::take_input)) with bytes in it.
    pub fn filled(&mut self, n: usize) {
        self.check_input();
        assert!(n <= self.buf.len() - self.end, "filled past read_buf");
        self.end += n;
    }

    /// Copies `data` into the input buffer (a convenience over
    /// [`read_buf`](Conn::read_buf) + [`filled`](Conn::filled)).
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let spare = self.read_buf();
            let n = min(spare.len(), data.len());
            spare[..n].copy_from_slice(&data[..n]);
            self.filled(n);
            data = &data[n..];
        }
    }

    /// Parses what is buffered: the next request, or what the driver must do first.
    ///
    /// # Panics
    ///
    /// While the input buffer is out ([`take_input`](Conn::take_input)) with bytes in it.
    pub fn poll(&mut self) -> Event<'_> {
        self.check_input();
        self.last_body = LastBody::None;
        let step = loop {
            match self.step() {
                Step::Again => continue,
                step => break step,
            }
        };
        match step {
            Step::Again => unreachable!("the loop above skips Again"),
            Step::NeedMore => Event::NeedMore,
            Step::Continue => Event::Continue,
            Step::Error(status) => {
                self.state = State::Closed;
                Event::Error { status }
            }
            Step::Closed => Event::Closed,
            Step::Input { start, len } => {
                self.last_body = LastBody::Input { start, len };
                self.request(&self.buf[start..start + len])
            }
            Step::Decoded => {
                self.last_body = LastBody::Decoded;
                self.request(&self.body)
            }
        }
    }

    /// Moves the body of the request the last [`poll`](Conn::poll) returned out of the
    /// connection without copying it (to hand it to another thread, say): returns a
    /// buffer and the body's range in it. `spare` takes the buffer's place in the
    /// connection; its contents do not matter, and a buffer an earlier call returned
    /// makes the next one free of allocation and zeroing.
    ///
    /// A body of `Content-Length` bytes leaves with the whole input buffer: the bytes
    /// received after it (pipelined requests) are copied into `spare`, usually none.
    /// A chunked body leaves with the buffer it was de-chunked into. With no body to
    /// take (the last `poll` returned no request, or this was called already), `spare`
    /// comes back with an empty range.
    ///
    /// ```
    /// use ringpool_server::http::{Conn, Event, Limits};
    ///
    /// let mut conn = Conn::new(Limits::default());
    /// conn.push(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    /// let Event::Request(req) = conn.poll() else { panic!() };
    /// assert_eq!(req.body, b"hello");
    /// let (buf, range) = conn.take_body(Vec::new());
    /// assert_eq!(&buf[range], b"hello");
    /// let Event::Request(req) = conn.poll() else { panic!() };
    /// assert_eq!(req.target, "/health");
    /// ```
    pub fn take_body(&mut self, mut spare: Vec<u8>) -> (Vec<u8>, std::ops::Range<usize>) {
        match std::mem::replace(&mut self.last_body, LastBody::None) {
            LastBody::None => (spare, 0..0),
            LastBody::Decoded => {
                spare.clear();
                let body = std::mem::replace(&mut self.body, spare);
                let len = body.len();
                (body, 0..len)
            }
            LastBody::Input { start, len } => {
                // The new input buffer keeps the invariant: its length is its zeroed
                // size, with room to read into after what is buffered.
                let rest = self.end - self.start;
                let need = (2 * MIN_READ).max(rest + MIN_READ);
                if spare.len() < need {
                    spare.resize(need, 0);
                }
                spare[..rest].copy_from_slice(&self.buf[self.start..self.end]);
                let buf = std::mem::replace(&mut self.buf, spare);
                self.start = 0;
                self.end = rest;
                (buf, start..start + len)
            }
        }
    }

    fn request<'a>(&'a self, body: &'a [u8]) -> Event<'a> {
        Event::Request(Request {
            method: self.head.method,
            target: &self.target,
            version: self.head.version,
            keep_alive: self.head.keep_alive,
            body,
        })
    }

    /// The request is complete: the next state is the next head, or closed.
    fn finish(&mut self) {
        self.state = if self.head.keep_alive {
            State::Head
        } else {
            State::Closed
        };
    }

    /// `NeedMore` inside a body, or `Continue` once if the client asked for it.
    fn body_pending(&mut self) -> Step {
        if self.head.expect_continue {
            self.head.expect_continue = false;
            Step::Continue
        } else {
            Step::NeedMore
        }
    }

    fn step(&mut self) -> Step {
        let avail = self.end - self.start;
        match self.state {
            State::Closed => Step::Closed,
            State::Head => self.parse_head(),
            State::Body { len } => {
                if avail < len {
                    return self.body_pending();
                }
                let start = self.start;
                self.start += len;
                self.finish();
                Step::Input { start, len }
            }
            State::ChunkSize => {
                let window = &self.buf[self.start..self.start + min(avail, MAX_CHUNK_LINE)];
                match parse_chunk_line(window) {
                    Err(()) => Step::Error(400),
                    Ok(None) if window.len() == MAX_CHUNK_LINE => Step::Error(400),
                    Ok(None) => self.body_pending(),
                    Ok(Some((n, size))) => {
                        self.start += n;
                        if size == 0 {
                            self.state = State::Trailers;
                        } else if size > (self.limits.max_body - self.body.len()) as u64 {
                            return Step::Error(413);
                        } else {
                            self.state = State::ChunkData {
                                left: size as usize,
                            };
                        }
                        Step::Again
                    }
                }
            }
            State::ChunkData { left } => {
                let take = min(left, avail);
                if take == 0 {
                    return self.body_pending();
                }
                self.body
                    .extend_from_slice(&self.buf[self.start..self.start + take]);
                self.start += take;
                self.state = if take == left {
                    State::ChunkEnd
                } else {
                    State::ChunkData { left: left - take }
                };
                Step::Again
            }
            State::ChunkEnd => {
                let got = &self.buf[self.start..self.end];
                match got {
                    [b'\r', b'\n', ..] => {
                        self.start += 2;
                        self.state = State::ChunkSize;
                        Step::Again
                    }
                    [] | [b'\r'] => self.body_pending(),
                    _ => Step::Error(400),
                }
            }
            State::Trailers => {
                let window = &self.buf[self.start..self.start + min(avail, self.limits.max_head)];
                let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                match httparse::parse_headers(window, &mut fields) {
                    Ok(httparse::Status::Complete((n, _))) => {
                        self.start += n;
                        self.finish();
                        Step::Decoded
                    }
                    Ok(httparse::Status::Partial) if window.len() == self.limits.max_head => {
                        Step::Error(431)
                    }
                    Ok(httparse::Status::Partial) => self.body_pending(),
                    Err(httparse::Error::TooManyHeaders) => Step::Error(431),
                    Err(_) => Step::Error(400),
                }
            }
        }
    }

    fn parse_head(&mut self) -> Step {
        let avail = self.end - self.start;
        if avail == 0 {
            return Step::NeedMore;
        }
        let window = &self.buf[self.start..self.start + min(avail, self.limits.max_head)];
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        let n = match req.parse(window) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if window.len() == self.limits.max_head => {
                return Step::Error(431)
            }
            Ok(httparse::Status::Partial) => return Step::NeedMore,
            Err(httparse::Error::TooManyHeaders) => return Step::Error(431),
            Err(_) => return Step::Error(400),
        };
        // A complete parse fills all three.
        let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version)
        else {
            return Step::Error(400);
        };
        let version = if version == 0 {
            Version::Http10
        } else {
            Version::Http11
        };

        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut close = false;
        let mut keep_alive = false;
        let mut expect_continue = false;
        let mut hosts = 0;
        for field in req.headers.iter() {
            let name = field.name.as_bytes();
            if name.eq_ignore_ascii_case(b"content-length") {
                let Some(len) = parse_content_length(field.value) else {
                    return Step::Error(400);
                };
                if content_length.is_some_and(|prev| prev != len) {
                    return Step::Error(400);
                }
                content_length = Some(len);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // One field, one coding, and it is `chunked`: anything else is either a
                // coding we do not decode or a smuggling attempt.
                if chunked || !trim(field.value).eq_ignore_ascii_case(b"chunked") {
                    return Step::Error(400);
                }
                chunked = true;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in field.value.split(|&b| b == b',').map(trim) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case(b"expect") {
                expect_continue = trim(field.value).eq_ignore_ascii_case(b"100-continue");
            } else if name.eq_ignore_ascii_case(b"host") {
                if !valid_host(trim(field.value)) {
                    return Step::Error(400);
                }
                hosts += 1;
            }
        }
        if hosts > 1 || (hosts == 0 && version == Version::Http11) {
            return Step::Error(400);
        }
        if chunked && (content_length.is_some() || version == Version::Http10) {
            return Step::Error(400);
        }
        let body_len = match content_length {
            Some(len) if len > self.limits.max_body as u64 => return Step::Error(413),
            Some(len) => len as usize,
            None => 0,
        };

        self.target.clear();
        self.target.push_str(target);
        self.head = Head {
            method: Method::from_token(method),
            version,
            keep_alive: match version {
                Version::Http11 => !close,
                Version::Http10 => keep_alive && !close,
            },
            expect_continue: expect_continue
                && version == Version::Http11
                && (chunked || body_len > 0),
        };
        self.start += n;
        if chunked {
            self.body.clear();
            self.state = State::ChunkSize;
        } else {
            self.state = State::Body { len: body_len };
        }
        Step::Again
    }
}

/// The value of a `Content-Length` field: digits only; a list (`5, 5`) only if every
/// element agrees. `None` if malformed.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut len = None;
    for part in value.split(|&b| b == b',').map(trim) {
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = part
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        if len.is_some_and(|prev| prev != n) {
            return None;
        }
        len = Some(n);
    }
    len
}

/// A chunk-size line: `1*15HEXDIG [BWS ";" ext] CRLF`. `Ok(None)` if incomplete,
/// `Ok(Some((line length, size)))` if complete, `Err` if malformed. Stricter than
/// `httparse::parse_chunk_size`, which takes an empty size for 0.
fn parse_chunk_line(buf: &[u8]) -> Result<Option<(usize, u64)>, ()> {
    let mut size = 0u64;
    let mut digits = 0;
    let mut i = 0;
    while i < buf.len() && buf[i].is_ascii_hexdigit() {
        if digits == 15 {
            return Err(());
        }
        size = size * 16 + u64::from((buf[i] as char).to_digit(16).unwrap_or(0));
        digits += 1;
        i += 1;
    }
    if i == buf.len() {
        return Ok(None);
    }
    if digits == 0 {
        return Err(());
    }
    while i < buf.len() && matches!(buf[i], b' ' | b'\t') {
        i += 1;
    }
    if i < buf.len() && buf[i] == b';' {
        // Extensions are ignored; only their bytes are checked (no bare CR, LF, NUL).
        while i < buf.len() && buf[i] != b'\r' {
            if buf[i] == b'\n' || (buf[i] < b' ' && buf[i] != b'\t') || buf[i] == 0x7f {
                return Err(());
            }
            i += 1;
        }
    }
    match &buf[i..] {
        [] | [b'\r'] => Ok(None),
        [b'\r', b'\n', ..] => Ok(Some((i + 2, size))),
        _ => Err(()),
    }
}

/// `bytes` without leading and trailing spaces and tabs.
/// A `Host` value: `uri-host [ ":" port ]` (RFC 3986), checked by its characters
/// (a reg-name's, an IP literal's brackets, the port's colon), empty allowed (RFC 9112
/// asks clients to send an empty `Host` when the target has no authority).
fn valid_host(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests;
