//! Responses in request order when some of them wait for a job.
//!
//! A pipelined batch may hold `/hash, /health, /hash`: the two jobs finish on the pool in
//! any order, but the responses must leave in request order. An [`Outbox`] keeps a slot
//! per job; inline responses behind an unfinished job wait in the queue; everything in
//! order in front of the first unfinished job is in [`Outbox::ready`], to be written in one
//! write.

use std::collections::VecDeque;

use super::response::{self, ResponseMode};
use crate::work::Output;

/// A job's place in an [`Outbox`], handed back with its output to
/// [`Outbox::complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

#[derive(Debug)]
enum Entry {
    /// A job's response: its mode, and its output once it came back.
    Job(ResponseMode, Option<Output>),
    /// Inline responses that came after an unfinished job.
    Bytes(Vec<u8>),
}

/// A connection's output: ready bytes, then responses waiting for jobs.
///
/// # Examples
///
/// ```
/// use ringpool_server::http::{Outbox, ResponseMode};
/// use ringpool_server::work::Job;
///
/// let mut outbox = Outbox::new();
/// let ticket = outbox.job(ResponseMode::KEEP);
/// outbox.buf().extend_from_slice(b"(second response)");
/// assert!(outbox.ready().is_empty()); // the first one is not done
/// outbox.complete(ticket, Job::Hash.run(b"abc"));
/// assert!(outbox.ready().starts_with(b"HTTP/1.1 200 OK\r\n"));
/// assert!(outbox.ready().ends_with(b"(second response)"));
/// ```
#[derive(Debug, Default)]
pub struct Outbox {
    ready: Vec<u8>,
    queue: VecDeque<Entry>,
    /// The ticket of `queue[0]` if it is a job (entries count from here).
    first: u64,
    /// Spare buffers for `Entry::Bytes`, reused.
    spare: Vec<Vec<u8>>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Where to write the next inline response (e.g. with
    /// [`routes::respond_inline`](crate::routes::respond_inline)): the ready bytes if no
    /// job is pending, else a buffer behind the last pending job.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        if self.queue.is_empty() {
            return &mut self.ready;
        }
        if !matches!(self.queue.back(), Some(Entry::Bytes(_))) {
            let buf = self.spare.pop().unwrap_or_default();
            self.queue.push_back(Entry::Bytes(buf));
        }
        match self.queue.back_mut() {
            Some(Entry::Bytes(buf)) => buf,
            _ => unreachable!("pushed above"),
        }
    }

    /// Reserves the next response for a job; its response is written with `mode` when
    /// [`complete`](Outbox::complete) brings the output.
    pub fn job(&mut self, mode: ResponseMode) -> Ticket {
        let ticket = Ticket(self.first + self.queue.len() as u64);
        self.queue.push_back(Entry::Job(mode, None));
        ticket
    }

    /// The job of `ticket` finished with `output`: its response, and every response in
    /// order behind it up to the next unfinished job, become ready.
    ///
    /// # Panics
    ///
    /// If `ticket` is not a pending job of this outbox.
    pub fn complete(&mut self, ticket: Ticket, output: Output) {
        let index = ticket
            .0
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.queue.len());
        match index.map(|i| &mut self.queue[i]) {
            Some(Entry::Job(_, slot @ None)) => *slot = Some(output),
            _ => panic!("complete: {ticket:?} is not a pending job"),
        }
        while let Some(front) = self.queue.front() {
            match front {
                Entry::Job(_, None) => break,
                Entry::Job(mode, Some(out)) => response::write(
                    &mut self.ready,
                    out.status,
                    *mode,
                    out.content_type,
                    &out.body,
                ),
                Entry::Bytes(bytes) => self.ready.extend_from_slice(bytes),
            }
            if let Some(Entry::Bytes(mut buf)) = self.queue.pop_front() {
                buf.clear();
                self.spare.push(buf);
            }
            self.first += 1;
        }
    }

    /// How many jobs are still to complete.
    pub fn pending_jobs(&self) -> usize {
        self.queue
            .iter()
            .filter(|e| matches!(e, Entry::Job(_, None)))
            .count()
    }

    /// Bytes ready to write, in request order.
    pub fn ready(&self) -> &[u8] {
        &self.ready
    }

    /// The first `n` ready bytes were written (a short write leaves the rest ready).
    ///
    /// # Panics
    ///
    /// If `n` is more than [`ready`](Outbox::ready) holds.
    pub fn written(&mut self, n: usize) {
        assert!(n <= self.ready.len(), "written past ready");
        if n == self.ready.len() {
            self.ready.clear();
        } else {
            self.ready.drain(..n);
        }
    }

    /// Nothing ready and nothing pending.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(body: &[u8]) -> Output {
        Output {
            status: 200,
            content_type: "text/plain",
            body: body.to_vec(),
        }
    }

    fn bodies(ready: &[u8]) -> Vec<String> {
        let text = String::from_utf8(ready.to_vec()).unwrap();
        text.split("HTTP/1.1 ")
            .filter(|r| !r.is_empty())
            .map(|r| r.rsplit("\r\n\r\n").next().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn in_request_order() {
        let mut outbox = Outbox::new();
        response::write(outbox.buf(), 200, ResponseMode::KEEP, "text/plain", b"0");
        let a = outbox.job(ResponseMode::KEEP);
        response::write(outbox.buf(), 200, ResponseMode::KEEP, "text/plain", b"2");
        response::write(outbox.buf(), 200, ResponseMode::KEEP, "text/plain", b"3");
        let b = outbox.job(ResponseMode::KEEP);
        let c = outbox.job(ResponseMode::CLOSE);
        response::write(outbox.buf(), 200, ResponseMode::KEEP, "text/plain", b"6");
        assert_eq!(bodies(outbox.ready()), ["0"]);
        assert_eq!(outbox.pending_jobs(), 3);

        outbox.complete(c, out(b"5"));
        outbox.complete(b, out(b"4"));
        assert_eq!(bodies(outbox.ready()), ["0"]);
        outbox.complete(a, out(b"1"));
        assert_eq!(bodies(outbox.ready()), ["0", "1", "2", "3", "4", "5", "6"]);
        assert!(String::from_utf8_lossy(outbox.ready()).contains("Connection: close\r\n\r\n5"));
        assert_eq!(outbox.pending_jobs(), 0);

        let n = outbox.ready().len();
        outbox.written(10);
        assert_eq!(outbox.ready().len(), n - 10);
        outbox.written(n - 10);
        assert!(outbox.is_empty());

        // Tickets go on counting across batches.
        let d = outbox.job(ResponseMode::KEEP);
        outbox.complete(d, out(b"7"));
        assert_eq!(bodies(outbox.ready()), ["7"]);
    }

    #[test]
    #[should_panic(expected = "not a pending job")]
    fn twice_is_a_bug() {
        let mut outbox = Outbox::new();
        let a = outbox.job(ResponseMode::KEEP);
        let _b = outbox.job(ResponseMode::KEEP);
        outbox.complete(a, out(b""));
        outbox.complete(a, out(b""));
    }
}
