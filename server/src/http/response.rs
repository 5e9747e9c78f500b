//! Writing responses into a reusable output buffer.
//!
//! Every function appends to `out` and allocates nothing once `out` has grown to the
//! largest batch of responses. The driver clears `out` after the write completes.
//!
//! Responses carry `Content-Length`, `Content-Type` when there is a body, `Connection:
//! close` when the connection closes after them (`Connection: keep-alive` to an HTTP/1.0
//! client that keeps it), and `Allow` on 405. There is no `Date` header (RFC 9110 lets
//! a server without a reliable clock omit it; hyper sends one, cached per second).

/// The interim response to `Expect: 100-continue` ([`Event::Continue`](super::Event::Continue)).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How a response ends the exchange: the `Connection` header it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResponseMode {
    /// The connection closes after this response (`Connection: close`).
    pub close: bool,
    /// The request was HTTP/1.0, so a kept connection says `Connection: keep-alive`.
    pub http10: bool,
    /// The request was `HEAD`: the response has the head a `GET` would get
    /// (its `Content-Length` too) and no body.
    pub head: bool,
}

impl ResponseMode {
    /// HTTP/1.1, connection kept.
    pub const KEEP: ResponseMode = ResponseMode {
        close: false,
        http10: false,
        head: false,
    };
    /// The connection closes after the response (errors, timeouts).
    pub const CLOSE: ResponseMode = ResponseMode {
        close: true,
        http10: false,
        head: false,
    };
}

/// The reason phrase of the statuses this server sends (`""` for others, which the
/// status line allows).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Appends a status line and header fields, up to and including the blank line, for a
/// body of `content_length` bytes that the caller appends next.
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    mode: ResponseMode,
    content_type: Option<&str>,
    content_length: usize,
    allow: Option<&str>,
) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(num.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(num.format(content_length).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(content_type) = content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(allow) = allow {
        out.extend_from_slice(b"Allow: ");
        out.extend_from_slice(allow.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if mode.close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if mode.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a whole response: head and `body`.
pub fn write(out: &mut Vec<u8>, status: u16, mode: ResponseMode, content_type: &str, body: &[u8]) {
    write_head(out, status, mode, Some(content_type), body.len(), None);
    if !mode.head {
        out.extend_from_slice(body);
    }
}

/// Appends an error response: `status`, a one-line `text/plain` body (the reason
/// phrase), and `allow` as the `Allow` field (give it for 405).
pub fn write_error(out: &mut Vec<u8>, status: u16, mode: ResponseMode, allow: Option<&str>) {
    let text = reason(status);
    write_head(out, status, mode, Some("text/plain"), text.len() + 1, allow);
    if !mode.head {
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_fields() {
        let mut out = Vec::new();
        write(&mut out, 200, ResponseMode::KEEP, "text/plain", b"ok");
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
        );
        out.clear();
        write_error(&mut out, 405, ResponseMode::CLOSE, Some("GET"));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 19\r\nContent-Type: text/plain\r\n\
             Allow: GET\r\nConnection: close\r\n\r\nMethod Not Allowed\n"
        );
        out.clear();
        // HEAD: the same head, no body.
        let head = ResponseMode {
            head: true,
            ..ResponseMode::KEEP
        };
        write(&mut out, 200, head, "text/plain", b"ok");
        write_error(&mut out, 404, head, None);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\n\
             HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\n"
        );
        out.clear();
        let http10 = ResponseMode {
            close: false,
            http10: true,
            head: false,
        };
        write_head(&mut out, 200, http10, None, 0, None);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
    }
}
