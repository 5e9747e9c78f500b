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
