//! Network I/O through the runtime's ring, with owned buffers:
//! [`TcpListener`], [`TcpStream`], [`UdpSocket`].

mod inbox;
mod tcp;
mod udp;
mod waiters;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
