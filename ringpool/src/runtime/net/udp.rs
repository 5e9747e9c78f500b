//! UDP: [`UdpSocket`].

use super::tcp::core;
use super::waiters::Waiters;
use crate::runtime::buf::{IoBuf, IoBufMut};
use crate::runtime::core::Core;
use crate::runtime::op::{Op, Resources};
use crate::sys::net::{self as sys, RawAddr};
use io_uring::{opcode, types};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::task::Poll;

#[derive(Default)]
struct Saved {
    /// Datagrams received by a `recv_from` whose future was dropped.
    datagrams: VecDeque<(Vec<u8>, io::Result<SocketAddr>)>,
    orphans: usize,
    /// The tasks waiting for the orphans (two receives may).
    waiters: Waiters,
}

struct Inner {
    fd: Rc<OwnedFd>,
    core: Rc<Core>,
    saved: RefCell<Saved>,
}

/// A UDP socket; datagrams go through the ring (`IORING_OP_SENDMSG` /
/// `IORING_OP_RECVMSG`, 5.3).
pub struct UdpSocket {
    inner: Rc<Inner>,
}

/// What the kernel reads and writes for one message: kept in one box that
/// the operation owns, so that its pointers to itself stay valid.
struct Msg {
    hdr: libc::msghdr,
    iov: libc::iovec,
    addr: RawAddr,
}

impl Msg {
    fn new(ptr: *mut u8, len: usize, addr: RawAddr) -> Box<Msg> {
        // SAFETY: msghdr is plain old data; all-zero is a valid value.
        let hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        let mut m = Box::new(Msg {
            hdr,
            iov: libc::iovec {
                iov_base: ptr.cast(),
                iov_len: len,
            },
            addr,
        });
        m.hdr.msg_name = (&mut m.addr.storage as *mut libc::sockaddr_storage).cast();
        m.hdr.msg_namelen = m.addr.len;
        m.hdr.msg_iov = &mut m.iov;
        m.hdr.msg_iovlen = 1;
        m
    }
}

impl UdpSocket {
    /// Binds a UDP socket to `addr`. Needs a running runtime on this thread.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let core = core()?;
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the address resolved to nothing",
            )
        })?;
        let fd = sys::socket(&addr, libc::SOCK_DGRAM)?;
        sys::bind(&fd, &addr, false)?;
        Ok(UdpSocket {
            inner: Rc::new(Inner {
                fd: Rc::new(fd),
                core,
                saved: RefCell::new(Saved::default()),
            }),
        })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::local_addr(self.inner.fd.as_raw_fd())
    }

    /// Sends `buf`'s initialised bytes as one datagram to `target`.
    pub async fn send_to<B: IoBuf>(&self, buf: B, target: SocketAddr) -> (io::Result<usize>, B) {
        let inner = &self.inner;
        let msg = Msg::new(
            buf.stable_ptr().cast_mut(),
            buf.bytes_init(),
            RawAddr::from_std(&target),
        );
        let sqe = opcode::SendMsg::new(types::Fd(inner.fd.as_raw_fd()), &msg.hdr)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build();
        let data = Send {
            buf,
            _msg: msg,
            _fd: inner.fd.clone(),
        };
        // SAFETY: the SQE points to `data._msg` (a box: stable), which points
        // into itself and into `data.buf`'s stable memory (`IoBuf`); the
        // kernel only reads the buffer. The fd is kept open by `data._fd`.
        let op = match unsafe { Op::submit(&inner.core, sqe, data) } {
            Ok(op) => op,
            Err((e, d)) => return (Err(e), d.buf),
        };
        let done = op.await;
        (done.result().map(|n| n as usize), done.data.buf)
    }

    /// Receives one datagram into `buf` (from its start); returns its
    /// length and sender. Cancel-safe: a datagram that arrives after the
    /// future was dropped is returned by the next call.
    pub async fn recv_from<B: IoBufMut>(&self, mut buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
        let inner = &self.inner;
        loop {
            let saved = inner.saved.borrow_mut().datagrams.pop_front();
            if let Some((bytes, from)) = saved {
                let n = crate::runtime::buf::copy_at(&mut buf, 0, &bytes);
                return (from.map(|a| (n, a)), buf);
            }
            if inner.saved.borrow().orphans == 0 {
                break;
            }
            // Waiting needs this socket's runtime to be the one turning.
            if let Err(e) = inner.core.check_open() {
                return (Err(e), buf);
            }
            let waited = inner
                .core
                .wait_until(|cx| {
                    let mut s = inner.saved.borrow_mut();
                    if !s.datagrams.is_empty() || s.orphans == 0 {
                        return Poll::Ready(());
                    }
                    s.waiters.register(cx.waker());
                    Poll::Pending
                })
                .await;
            if let Err(e) = waited {
                return (Err(e), buf);
            }
        }
        let msg = Msg::new(buf.stable_mut_ptr(), buf.bytes_total(), RawAddr::empty());
        let sqe = opcode::RecvMsg::new(
            types::Fd(inner.fd.as_raw_fd()),
            &msg.hdr as *const _ as *mut _,
        )
        .build();
        let data = Recv {
            buf,
            msg,
            inner: inner.clone(),
        };
        // SAFETY: the SQE points to `data.msg` (a box: stable), which points
        // into itself and into `data.buf`'s stable writable memory
        // (`IoBufMut`). The fd is kept open by `data.inner`.
        let op = match unsafe { Op::submit(&inner.core, sqe, data) } {
            Ok(op) => op,
            Err((e, d)) => return (Err(e), d.buf),
        };
        let done = op.await;
        let Recv {
            mut buf, mut msg, ..
        } = done.data;
        match done.res {
            n if n >= 0 => {
                // SAFETY: the kernel wrote `n` bytes at the buffer's start.
                unsafe { buf.set_init(n as usize) };
                msg.addr.len = msg.hdr.msg_namelen;
                (msg.addr.to_std().map(|a| (n as usize, a)), buf)
            }
            e => (Err(io::Error::from_raw_os_error(-e)), buf),
        }
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &self.inner.fd.as_raw_fd())
            .finish()
    }
}

struct Send<B> {
    buf: B,
    _msg: Box<Msg>,
    _fd: Rc<OwnedFd>,
}

impl<B: IoBuf> Resources for Send<B> {}

struct Recv<B> {
    buf: B,
    msg: Box<Msg>,
    inner: Rc<Inner>,
}

impl<B: IoBufMut> Resources for Recv<B> {
    fn abandoned(&self) {
        self.inner.saved.borrow_mut().orphans += 1;
    }

    fn orphaned(mut self, res: i32, _flags: u32) {
        let mut s = self.inner.saved.borrow_mut();
        if res >= 0 {
            // SAFETY: the kernel wrote `res` bytes at the buffer's start.
            let bytes = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), res as usize) };
            self.msg.addr.len = self.msg.hdr.msg_namelen;
            s.datagrams
                .push_back((bytes.to_vec(), self.msg.addr.to_std()));
        }
        s.orphans -= 1;
        s.waiters.wake_all();
    }
}

impl std::os::fd::AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.inner.fd.as_raw_fd()
    }
}
