//! Floor: a hand-written single-threaded epoll echo server (level-triggered,
//! one `read` and one `write` per readiness event, no runtime at all). It
//! is what a server on one CPU can hardly beat with readiness I/O, so its
//! row shows how far the client can drive any server: where it is not
//! faster than the others, the client is the limit.

use super::server::{bind_listener, ServeError, READ_BUF};
use rustix::event::epoll;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;

/// `EventData` of the listener (connections use their fd number).
const LISTENER: u64 = u64::MAX;

/// Serves echo on `addr` on the calling thread, forever.
///
/// # Errors
///
/// [`ServeError::Failed`] if bind, epoll or accept fails.
pub fn serve(addr: SocketAddr, ready: &mut dyn FnMut(SocketAddr)) -> Result<(), ServeError> {
    let listener = bind_listener(addr)?;
    listener.set_nonblocking(true)?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        &listener,
        epoll::EventData::new_u64(LISTENER),
        epoll::EventFlags::IN,
    )?;
    // Connections by fd number.
    let mut conns: Vec<Option<TcpStream>> = Vec::new();
    let mut events = Vec::with_capacity(256);
    let mut buf = vec![0u8; READ_BUF];
    ready(listener.local_addr()?);
    loop {
        events.clear();
        match epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(ServeError::Failed(format!("epoll_wait: {e}"))),
        }
        for ev in &events {
            let token = ev.data.u64();
            if token == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((sock, _)) => {
                            sock.set_nonblocking(true)?;
                            sock.set_nodelay(true)?;
                            let fd = sock.as_raw_fd() as usize;
                            epoll::add(
                                &ep,
                                &sock,
                                epoll::EventData::new_u64(fd as u64),
                                epoll::EventFlags::IN,
                            )?;
                            if conns.len() <= fd {
                                conns.resize_with(fd + 1, || None);
                            }
                            conns[fd] = Some(sock);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                continue;
            }
            let fd = token as usize;
            let Some(sock) = conns.get_mut(fd).and_then(Option::as_mut) else {
                continue;
            };
            let keep = match sock.read(&mut buf) {
                Ok(0) => false,
                Ok(n) => write_all(sock, &buf[..n]),
                Err(e) => matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted),
            };
            if !keep {
                // Closing the fd removes it from the epoll set.
                conns[fd] = None;
            }
        }
    }
}

/// Writes all of `data` to the non-blocking `sock`; if the send buffer is
/// full (never in a closed-loop echo of 4 KiB), finishes in blocking mode.
/// Returns whether the connection is still usable.
fn write_all(sock: &mut TcpStream, data: &[u8]) -> bool {
    match sock.write(data) {
        Ok(n) if n == data.len() => true,
        Ok(n) => finish_blocking(sock, &data[n..]),
        Err(e) if e.kind() == ErrorKind::WouldBlock => finish_blocking(sock, data),
        Err(_) => false,
    }
}

fn finish_blocking(sock: &mut TcpStream, rest: &[u8]) -> bool {
    sock.set_nonblocking(false).is_ok()
        && sock.write_all(rest).is_ok()
        && sock.set_nonblocking(true).is_ok()
}
