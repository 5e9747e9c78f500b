//! What a stream has received and nobody has read yet: the bytes of
//! multishot receives (provided buffers), of reads whose future was dropped
//! in flight, the end of the stream or an error. A read takes from here
//! first, so no byte the kernel delivered is ever lost or reordered.

use super::waiters::Waiters;
use crate::runtime::buf::{copy_at, IoBufMut};
use crate::runtime::bufs::Chunk;
use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll};

/// Chunks a stream may hold before its multishot receive is paused
/// (cancelled, re-armed by the next read): a reader that does not keep up
/// must not take every provided buffer from the other connections.
pub(crate) const MAX_QUEUED: usize = 8;

pub(crate) enum Data {
    /// A provided buffer, given back when consumed.
    Chunk(Chunk),
    /// Bytes saved from a dropped read, and how many are consumed.
    Owned(Vec<u8>, usize),
}

#[derive(Default)]
pub(crate) struct Inbox {
    pub(crate) data: VecDeque<Data>,
    pub(crate) eof: bool,
    pub(crate) error: Option<io::Error>,
    /// The armed multishot receive's `user_data`.
    pub(crate) armed: Option<u64>,
    /// A cancel of it is on its way.
    pub(crate) pausing: bool,
    /// The last multishot ended for want of buffers: the next read goes
    /// through a plain receive into the caller's buffer.
    pub(crate) no_buffers: bool,
    /// Reads dropped in flight whose final CQE has not come: a new read
    /// waits for them, so that bytes stay in order.
    pub(crate) orphans: usize,
    /// The tasks waiting for any of that (two reads of one stream may).
    pub(crate) waiters: Waiters,
}

impl Inbox {
    /// Copies queued bytes into `buf`: `Some` if there was something to
    /// report (bytes, the error, or the end of the stream).
    pub(crate) fn take_into<B: IoBufMut>(&mut self, buf: &mut B) -> Option<io::Result<usize>> {
        let room = buf.bytes_total();
        self.take(room, |at, src| {
            copy_at(buf, at, src);
        })
    }

    /// [`take_into`](Inbox::take_into) for a borrowed slice.
    pub(crate) fn take_into_slice(&mut self, dst: &mut [u8]) -> Option<io::Result<usize>> {
        let room = dst.len();
        self.take(room, |at, src| dst[at..at + src.len()].copy_from_slice(src))
    }

    /// Hands up to `room` queued bytes to `put(offset, bytes)`, in order,
    /// and consumes them; `Some` if there was something to report.
    fn take(
        &mut self,
        room: usize,
        mut put: impl FnMut(usize, &[u8]),
    ) -> Option<io::Result<usize>> {
        let mut n = 0;
        while n < room {
            let Some(front) = self.data.front_mut() else {
                break;
            };
            let src = match front {
                Data::Chunk(c) => c.bytes(),
                Data::Owned(v, pos) => &v[*pos..],
            };
            let k = src.len().min(room - n);
            put(n, &src[..k]);
            n += k;
            match front {
                Data::Chunk(c) => {
                    c.consume(k);
                    if c.bytes().is_empty() {
                        self.data.pop_front();
                    }
                }
                Data::Owned(v, pos) => {
                    *pos += k;
                    if *pos == v.len() {
                        self.data.pop_front();
                    }
                }
            }
        }
        if n > 0 {
            return Some(Ok(n));
        }
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        if self.eof {
            return Some(Ok(0));
        }
        None
    }

    /// Ready when a read has something to look at: data, an error, the
    /// end, or the multishot is no longer armed; and no dropped read is
    /// still in flight.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let something = !self.data.is_empty() || self.error.is_some() || self.eof;
        if self.orphans == 0 && (something || self.armed.is_none()) {
            return Poll::Ready(());
        }
        self.waiters.register(cx.waker());
        Poll::Pending
    }

    /// Wakes every task waiting on the inbox.
    pub(crate) fn wake(&mut self) {
        self.waiters.wake_all();
    }
}
