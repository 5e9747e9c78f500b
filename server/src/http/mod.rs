//! HTTP/1.1 framing: the connection state machine ([`Conn`]), the response writer
//! ([`response`]) and the in-order output queue ([`Outbox`]).
//!
//! Nothing here does I/O. The driver moves bytes between a socket and a [`Conn`]
//! (reads) or an output `Vec<u8>` (writes); see `docs/design/http.md`.

mod conn;
mod outbox;
pub mod response;

pub use conn::{Conn, Event, Limits, Phase, Request, MAX_HEADERS};
pub use outbox::{Outbox, Ticket};
pub use response::ResponseMode;

/// A request method. Only the methods the routes use are told apart; every other
/// token is [`Method::Other`] (routing answers it with 405).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// Any other method token (`OPTIONS`, `PATCH`, extensions, …).
    Other,
}

impl Method {
    /// The method named by `token` (case-sensitive, as RFC 9110 says methods are).
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }
}

/// The HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// `HTTP/1.0`: the connection closes after the response unless the request says
    /// `Connection: keep-alive`.
    Http10,
    /// `HTTP/1.1`: the connection persists unless a side says `Connection: close`.
    Http11,
}
