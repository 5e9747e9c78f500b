//! A blocking std TCP listener with the options the CLI's servers need,
//! made before any runtime exists (std's own `bind` sets no `SO_REUSEPORT`
//! and listens with a backlog of 128).

use std::io;
use std::net::{SocketAddr, TcpListener};

/// A listening socket on `addr` with `SO_REUSEADDR` (and `SO_REUSEPORT` if
/// `reuse_port`, so that other threads can bind the same port), close-on-exec,
/// listening with `backlog`.
///
/// # Errors
///
/// The errno of `socket(2)`, `setsockopt(2)`, `bind(2)` or `listen(2)`.
pub fn std_listener(addr: SocketAddr, reuse_port: bool, backlog: i32) -> io::Result<TcpListener> {
    use rustix::net::{bind, listen, socket_with, sockopt, AddressFamily, SocketFlags, SocketType};
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if reuse_port {
        sockopt::set_socket_reuseport(&fd, true)?;
    }
    bind(&fd, &addr)?;
    listen(&fd, backlog)?;
    Ok(TcpListener::from(fd))
}

/// What a server's accept loop does after `accept` failed.
#[derive(Debug, PartialEq, Eq)]
pub enum AcceptError {
    /// The connection failed before it was accepted (Linux reports the
    /// pending network errors of the new socket from `accept(2)`, which
    /// says to retry as for `EAGAIN`): accept the next one.
    Retry,
    /// Out of fds or memory: wait a little, then accept again (connections
    /// wait in the backlog meanwhile).
    Backoff,
    /// The listener itself is broken: stop serving, with the error.
    Fatal,
}

impl AcceptError {
    /// The class of `e`, an error of an accept on a listening socket.
    pub fn of(e: &io::Error) -> AcceptError {
        match e.raw_os_error() {
            Some(
                libc::ECONNABORTED
                | libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::ETIMEDOUT
                | libc::EPERM
                | libc::EINTR
                | libc::EAGAIN,
            ) => AcceptError::Retry,
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                AcceptError::Backoff
            }
            _ => AcceptError::Fatal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_classed() {
        let class = |errno| AcceptError::of(&io::Error::from_raw_os_error(errno));
        assert_eq!(class(libc::ECONNABORTED), AcceptError::Retry);
        assert_eq!(class(libc::EMFILE), AcceptError::Backoff);
        assert_eq!(class(libc::EINVAL), AcceptError::Fatal);
        assert_eq!(
            AcceptError::of(&io::Error::other("not an errno")),
            AcceptError::Fatal
        );
    }
}
