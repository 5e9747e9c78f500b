//! TCP: [`TcpListener`] and [`TcpStream`].

use super::inbox::{Data, Inbox, MAX_QUEUED};
use super::waiters::Waiters;
use crate::runtime::buf::{IoBuf, IoBufMut};
use crate::runtime::bufs;
use crate::runtime::context;
use crate::runtime::core::Core;
use crate::runtime::op::{Op, Resources};
use crate::sys::net::{self as sys, RawAddr};
use io_uring::{cqueue, opcode, types};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::Poll;

/// Connections a listener may hold accepted before its multishot accept
/// is paused (the kernel's backlog holds the rest).
const MAX_ACCEPTED: usize = 64;

fn no_runtime() -> io::Error {
    io::Error::other("ringpool: no ringpool runtime is running on this thread")
}

pub(crate) fn core() -> io::Result<Rc<Core>> {
    context::current().ok_or_else(no_runtime)
}

fn resolve(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    })
}

// ---------------------------------------------------------------- listener

struct Accepted {
    conns: VecDeque<io::Result<OwnedFd>>,
    armed: Option<u64>,
    pausing: bool,
    orphans: usize,
    /// The tasks waiting to accept (two accepts on one listener may).
    waiters: Waiters,
}

struct ListenerInner {
    fd: Rc<OwnedFd>,
    core: Rc<Core>,
    accepted: RefCell<Accepted>,
}

/// A TCP socket listening for connections, accepted through the ring
/// (multishot `IORING_OP_ACCEPT`, Linux 5.19, where the kernel has it: one
/// SQE for every connection; otherwise one accept at a time).
pub struct TcpListener {
    inner: Rc<ListenerInner>,
}

impl TcpListener {
    /// Binds to `addr` and listens (backlog 1024). Needs a running runtime
    /// on this thread.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, false)
    }

    /// As [`bind`](TcpListener::bind), with `SO_REUSEPORT`: several
    /// runtimes (one per thread) can each bind the same address and the
    /// kernel spreads connections among them.
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, true)
    }

    fn bind_with(addr: impl ToSocketAddrs, reuse_port: bool) -> io::Result<TcpListener> {
        let core = core()?;
        let addr = resolve(addr)?;
        let fd = sys::listen(&addr, reuse_port, 1024)?;
        Ok(TcpListener::from_fd(core, fd))
    }

    fn from_fd(core: Rc<Core>, fd: OwnedFd) -> TcpListener {
        TcpListener {
            inner: Rc::new(ListenerInner {
                fd: Rc::new(fd),
                core,
                accepted: RefCell::new(Accepted {
                    conns: VecDeque::new(),
                    armed: None,
                    pausing: false,
                    orphans: 0,
                    waiters: Waiters::default(),
                }),
            }),
        }
    }

    /// Takes over a listening std socket (bound and listening already, e.g.
    /// with options this type does not set). Needs a running runtime on
    /// this thread.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        let core = core()?;
        // Blocking mode: the ring does the waiting.
        listener.set_nonblocking(false)?;
        Ok(TcpListener::from_fd(core, OwnedFd::from(listener)))
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::local_addr(self.inner.fd.as_raw_fd())
    }

    /// Waits for the next connection.
    ///
    /// Cancel-safe: a connection accepted after the future was dropped is
    /// kept for the next call.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let inner = &self.inner;
        loop {
            let next = inner.accepted.borrow_mut().conns.pop_front();
            if let Some(r) = next {
                let fd = r?;
                let peer = sys::peer_addr(fd.as_raw_fd())?;
                return Ok((TcpStream::from_fd(inner.core.clone(), fd), peer));
            }
            // Waiting needs this listener's runtime to be the one turning.
            inner.core.check_open()?;
            if inner.core.features.multishot_accept {
                inner.arm()?;
                inner.wait_accepted(|a| a.armed.is_none()).await?;
                continue;
            }
            if inner.accepted.borrow().orphans > 0 {
                // A dropped accept is still in flight; its connection comes first.
                inner.wait_accepted(|a| a.orphans == 0).await?;
                continue;
            }
            let sqe = opcode::Accept::new(
                types::Fd(inner.fd.as_raw_fd()),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
            .flags(libc::SOCK_CLOEXEC)
            .build();
            let data = AcceptOne {
                inner: inner.clone(),
            };
            // SAFETY: the SQE names no memory (null address pointers); the
            // listener's fd is kept open by `data.inner`.
            let op = unsafe { Op::submit(&inner.core, sqe, data) }.map_err(|(e, _)| e)?;
            let done = op.await;
            let fd = done.result()? as RawFd;
            // SAFETY: a successful accept returns a new fd nobody owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let peer = sys::peer_addr(fd.as_raw_fd())?;
            return Ok((TcpStream::from_fd(inner.core.clone(), fd), peer));
        }
    }
}

impl ListenerInner {
    /// Waits until a connection is queued or `done` holds of the accept
    /// state (an error instead if this runtime stops being the one turning).
    async fn wait_accepted(&self, done: impl Fn(&Accepted) -> bool) -> io::Result<()> {
        self.core
            .wait_until(|cx| {
                let mut a = self.accepted.borrow_mut();
                if !a.conns.is_empty() || done(&a) {
                    return Poll::Ready(());
                }
                a.waiters.register(cx.waker());
                Poll::Pending
            })
            .await
    }

    /// Arms the multishot accept if it is not.
    fn arm(self: &Rc<Self>) -> io::Result<()> {
        if self.accepted.borrow().armed.is_some() {
            return Ok(());
        }
        let me = self.clone();
        let handler = Box::new(move |res: i32, flags: u32| me.on_accept(res, flags));
        let sqe = opcode::AcceptMulti::new(types::Fd(self.fd.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build();
        // SAFETY: a multishot accept names no memory; the handler keeps the
        // listener (and its fd) alive until the final CQE.
        let ud = unsafe { self.core.submit_multi(sqe, handler)? };
        self.accepted.borrow_mut().armed = Some(ud);
        Ok(())
    }

    fn on_accept(&self, res: i32, flags: u32) {
        let mut a = self.accepted.borrow_mut();
        if res >= 0 {
            // SAFETY: a successful accept CQE carries a new fd nobody owns.
            a.conns.push_back(Ok(unsafe { OwnedFd::from_raw_fd(res) }));
        } else if res != -libc::ECANCELED {
            a.conns.push_back(Err(io::Error::from_raw_os_error(-res)));
        }
        if !cqueue::more(flags) {
            a.armed = None;
            a.pausing = false;
        } else if a.conns.len() >= MAX_ACCEPTED && !a.pausing {
            a.pausing = true;
            if let Some(ud) = a.armed {
                self.core.cancel(ud);
            }
        }
        a.waiters.wake_all();
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        if let Some(ud) = self.inner.accepted.borrow().armed {
            self.inner.core.cancel(ud);
        }
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.inner.fd.as_raw_fd())
            .finish()
    }
}

/// A single-shot accept's resources: a connection it brings in after its
/// future was dropped goes to the listener's queue.
struct AcceptOne {
    inner: Rc<ListenerInner>,
}

impl Resources for AcceptOne {
    fn abandoned(&self) {
        self.inner.accepted.borrow_mut().orphans += 1;
    }

    fn orphaned(self, res: i32, _flags: u32) {
        let mut a = self.inner.accepted.borrow_mut();
        if res >= 0 {
            // SAFETY: a successful accept returns a new fd nobody owns.
            a.conns.push_back(Ok(unsafe { OwnedFd::from_raw_fd(res) }));
        }
        a.orphans -= 1;
        a.waiters.wake_all();
    }
}

// ---------------------------------------------------------------- stream

pub(crate) struct StreamInner {
    fd: Rc<OwnedFd>,
    core: Rc<Core>,
    inbox: RefCell<Inbox>,
    /// `read_into`'s buffer for plain receives (without provided buffers),
    /// kept between reads.
    scratch: Cell<Vec<u8>>,
}

/// A TCP connection.
///
/// Reads and writes take owned buffers and give them back with the result.
/// Dropping a read's future in flight loses nothing: bytes the kernel
/// delivers afterwards are returned first by the next read. The socket is
/// closed when the stream and every operation on it are gone, so its
/// number is never reused under an operation in flight.
pub struct TcpStream {
    inner: Rc<StreamInner>,
}

impl TcpStream {
    fn from_fd(core: Rc<Core>, fd: OwnedFd) -> TcpStream {
        TcpStream {
            inner: Rc::new(StreamInner {
                fd: Rc::new(fd),
                core,
                inbox: RefCell::new(Inbox::default()),
                scratch: Cell::new(Vec::new()),
            }),
        }
    }

    /// Connects to `addr` (`IORING_OP_CONNECT`, 5.5).
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let core = core()?;
        let addr = resolve(addr)?;
        let fd = Rc::new(sys::socket(&addr, libc::SOCK_STREAM)?);
        let raw = Box::new(RawAddr::from_std(&addr));
        let sqe = opcode::Connect::new(types::Fd(fd.as_raw_fd()), raw.as_ptr(), raw.len).build();
        let data = Connect {
            _fd: fd,
            _addr: raw,
        };
        // SAFETY: the SQE points into `data._addr` (a box: stable), and the
        // fd is kept open by `data._fd`.
        let op = unsafe { Op::submit(&core, sqe, data) }.map_err(|(e, _)| e)?;
        let done = op.await;
        done.result()?;
        let fd = Rc::try_unwrap(done.data._fd)
            .map_err(|_| io::Error::other("connect: the socket is still shared"))?;
        Ok(TcpStream::from_fd(core, fd))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::local_addr(self.inner.fd.as_raw_fd())
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::peer_addr(self.inner.fd.as_raw_fd())
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sys::set_nodelay(self.inner.fd.as_raw_fd(), on)
    }

    /// Shuts down the read half, the write half, or both (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        sys::shutdown(self.inner.fd.as_raw_fd(), how)
    }

    /// Closes the stream (the same as dropping it).
    pub fn close(self) {}

    /// Reads into `buf` (from its start, up to its capacity); `Ok(0)` at
    /// the end of the stream.
    ///
    /// With provided buffers (the default where the kernel has multishot
    /// receive, 6.0) the bytes arrive in the runtime's shared buffers and
    /// are copied into `buf`; otherwise the kernel writes into `buf`
    /// itself. Cancel-safe either way: see [`TcpStream`].
    pub async fn read<B: IoBufMut>(&self, mut buf: B) -> (io::Result<usize>, B) {
        let inner = &self.inner;
        if buf.bytes_total() == 0 {
            return (Ok(0), buf);
        }
        loop {
            if let Some(r) = inner.inbox.borrow_mut().take_into(&mut buf) {
                return (r, buf);
            }
            // Waiting needs this stream's runtime to be the one turning.
            if let Err(e) = inner.core.check_open() {
                return (Err(e), buf);
            }
            let (orphans, no_buffers) = {
                let i = inner.inbox.borrow();
                (i.orphans, i.no_buffers)
            };
            if orphans > 0 || (inner.multishot() && !no_buffers) {
                if orphans == 0 {
                    if let Err(e) = inner.arm() {
                        return (Err(e), buf);
                    }
                }
                let waited = inner
                    .core
                    .wait_until(|cx| inner.inbox.borrow_mut().poll_ready(cx))
                    .await;
                if let Err(e) = waited {
                    return (Err(e), buf);
                }
                continue;
            }
            inner.inbox.borrow_mut().no_buffers = false;
            let len = buf.bytes_total().min(u32::MAX as usize) as u32;
            let sqe = opcode::Recv::new(types::Fd(inner.fd.as_raw_fd()), buf.stable_mut_ptr(), len)
                .build();
            let data = Read {
                buf,
                inner: inner.clone(),
            };
            // SAFETY: the SQE points into `data.buf`'s stable memory
            // (`IoBufMut`'s contract), `len` at most its capacity; the fd is
            // kept open by `data.inner`.
            let op = match unsafe { Op::submit(&inner.core, sqe, data) } {
                Ok(op) => op,
                Err((e, data)) => return (Err(e), data.buf),
            };
            let done = op.await;
            let res = done.result();
            let mut buf = done.data.buf;
            if let Ok(n) = res {
                // SAFETY: the kernel wrote `n` bytes at the buffer's start.
                unsafe { buf.set_init(n as usize) };
            }
            return (res.map(|n| n as usize), buf);
        }
    }

    /// Reads into a borrowed `dst`, for a parser that keeps its own input
    /// buffer; `Ok(0)` at the end of the stream (or if `dst` is empty).
    ///
    /// With provided buffers the bytes are copied from the runtime's shared
    /// buffers straight into `dst`: one copy fewer than a [`read`](Self::read)
    /// into a buffer of one's own, then into the parser's. No operation
    /// ever holds `dst`, so it is the caller's again as soon as the future
    /// resolves or is dropped, and a dropped `read_into` loses nothing.
    /// Without provided buffers, a plain receive goes into a buffer of the
    /// stream's own (allocated once, kept) and is copied into `dst`; a
    /// dropped one keeps its bytes for the next read, as [`read`](Self::read)
    /// does.
    pub async fn read_into(&self, dst: &mut [u8]) -> io::Result<usize> {
        let inner = &self.inner;
        if dst.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(r) = inner.inbox.borrow_mut().take_into_slice(dst) {
                return r;
            }
            if !inner.reads_from_inbox() {
                break;
            }
            self.readable().await?;
        }
        let mut scratch = inner.scratch.take();
        scratch.clear();
        scratch.reserve(dst.len());
        let (r, buf) = self.read(scratch.slice(..dst.len())).await;
        let scratch = buf.into_inner();
        let r = r.inspect(|&n| dst[..n].copy_from_slice(&scratch[..n]));
        inner.scratch.set(scratch);
        r
    }

    /// Waits until a read would not wait: bytes are in (or the end of the
    /// stream, or an error). With provided buffers the bytes sit in the
    /// runtime's shared buffers meanwhile, so a server can wait on many idle
    /// connections without a read buffer for each, and take one only when
    /// there is something to read. Without them (plain reads) it returns at
    /// once: a read then waits in the caller's buffer.
    pub async fn readable(&self) -> io::Result<()> {
        let inner = &self.inner;
        loop {
            {
                let i = inner.inbox.borrow();
                if !i.data.is_empty() || i.eof || i.error.is_some() {
                    return Ok(());
                }
            }
            if !inner.reads_from_inbox() {
                return Ok(());
            }
            inner.core.check_open()?;
            if inner.inbox.borrow().orphans == 0 {
                inner.arm()?;
            }
            inner
                .core
                .wait_until(|cx| inner.inbox.borrow_mut().poll_ready(cx))
                .await?;
        }
    }

    /// Writes (some of) `buf`'s initialised bytes; returns how many.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        let (r, buf) = self.send_from(buf, 0).await;
        (r, buf)
    }

    /// Writes all of `buf`'s initialised bytes.
    pub async fn write_all<B: IoBuf>(&self, mut buf: B) -> (io::Result<()>, B) {
        let mut at = 0;
        while at < buf.bytes_init() {
            let (r, b) = self.send_from(buf, at).await;
            buf = b;
            match r {
                Ok(0) => {
                    return (
                        Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "the peer accepts no more",
                        )),
                        buf,
                    )
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    async fn send_from<B: IoBuf>(&self, buf: B, at: usize) -> (io::Result<usize>, B) {
        let inner = &self.inner;
        let len = (buf.bytes_init() - at).min(u32::MAX as usize) as u32;
        // SAFETY: `at < bytes_init`, inside the buffer.
        let ptr = unsafe { buf.stable_ptr().add(at) };
        let sqe = opcode::Send::new(types::Fd(inner.fd.as_raw_fd()), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        let data = Write {
            buf,
            _fd: inner.fd.clone(),
        };
        // SAFETY: the SQE points into `data.buf`'s stable memory (`IoBuf`'s
        // contract), `len` bytes from `at`, all initialised; the fd is kept
        // open by `data._fd`.
        let op = match unsafe { Op::submit(&inner.core, sqe, data) } {
            Ok(op) => op,
            Err((e, data)) => return (Err(e), data.buf),
        };
        let done = op.await;
        (done.result().map(|n| n as usize), done.data.buf)
    }
}

impl StreamInner {
    /// Reads go through multishot receives into provided buffers.
    fn multishot(&self) -> bool {
        self.core.features.recv_multishot && self.core.bufs.is_some()
    }

    /// A read waits for the inbox (bytes in provided buffers, or a dropped
    /// read's) rather than in a buffer of its own: multishot, and not
    /// fallen back to a plain receive for want of buffers.
    fn reads_from_inbox(&self) -> bool {
        let i = self.inbox.borrow();
        self.multishot() && !(i.no_buffers && i.orphans == 0)
    }

    /// Arms the multishot receive if it is not.
    fn arm(self: &Rc<Self>) -> io::Result<()> {
        if self.inbox.borrow().armed.is_some() {
            return Ok(());
        }
        let me = self.clone();
        let handler = Box::new(move |res: i32, flags: u32| me.on_recv(res, flags));
        let sqe = opcode::RecvMulti::new(types::Fd(self.fd.as_raw_fd()), bufs::GROUP).build();
        // SAFETY: a multishot receive names no memory of ours but the
        // registered provided buffers, which live as long as the ring; the
        // handler keeps the stream (and its fd) alive until the final CQE.
        let ud = unsafe { self.core.submit_multi(sqe, handler)? };
        self.inbox.borrow_mut().armed = Some(ud);
        Ok(())
    }

    fn on_recv(&self, res: i32, flags: u32) {
        let mut inbox = self.inbox.borrow_mut();
        if res > 0 {
            let chunk = cqueue::buffer_select(flags)
                .and_then(|bid| self.core.bufs.as_ref()?.chunk(bid, res as usize));
            match chunk {
                Some(c) => inbox.data.push_back(Data::Chunk(c)),
                None => {
                    inbox.error = Some(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a receive CQE named no provided buffer",
                    ))
                }
            }
        } else if res == 0 {
            inbox.eof = true;
        } else if res == -libc::ENOBUFS {
            inbox.no_buffers = true;
        } else if res != -libc::ECANCELED {
            inbox.error = Some(io::Error::from_raw_os_error(-res));
        }
        if !cqueue::more(flags) {
            inbox.armed = None;
            inbox.pausing = false;
        } else if inbox.data.len() >= MAX_QUEUED && !inbox.pausing {
            inbox.pausing = true;
            if let Some(ud) = inbox.armed {
                self.core.cancel(ud);
            }
        }
        inbox.wake();
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        if let Some(ud) = self.inner.inbox.borrow().armed {
            self.inner.core.cancel(ud);
        }
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.inner.fd.as_raw_fd())
            .finish()
    }
}

/// A plain read's resources: bytes it brings in after its future was
/// dropped are saved in the stream's inbox.
struct Read<B> {
    buf: B,
    inner: Rc<StreamInner>,
}

impl<B: IoBufMut> Resources for Read<B> {
    fn abandoned(&self) {
        self.inner.inbox.borrow_mut().orphans += 1;
    }

    fn orphaned(self, res: i32, _flags: u32) {
        let mut inbox = self.inner.inbox.borrow_mut();
        if res > 0 {
            let n = res as usize;
            // SAFETY: the kernel wrote `n` bytes at the buffer's start.
            let bytes = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), n) };
            inbox.data.push_back(Data::Owned(bytes.to_vec(), 0));
        } else if res == 0 {
            inbox.eof = true;
        } else if res != -libc::ECANCELED {
            inbox.error = Some(io::Error::from_raw_os_error(-res));
        }
        inbox.orphans -= 1;
        inbox.wake();
    }
}

struct Write<B> {
    buf: B,
    _fd: Rc<OwnedFd>,
}

impl<B: IoBuf> Resources for Write<B> {}

struct Connect {
    _fd: Rc<OwnedFd>,
    _addr: Box<RawAddr>,
}

impl Resources for Connect {}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd.as_raw_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd.as_raw_fd()
    }
}
