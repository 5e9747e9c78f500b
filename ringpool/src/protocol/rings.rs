//! The job path's two bounded rings, built so that a batch costs one
//! read-modify-write, not one per job:
//!
//! * [`Lane`]: one loop's queued jobs. One producer (the loop) writes
//!   entries with plain stores and publishes them with one `Release` store
//!   of `tail` per batch ([`Lane::publish`]); any number of consumers (the
//!   workers, and the loop itself at `close`) each claim up to a share of
//!   what is visible with one CAS on `head` ([`Lane::claim`]).
//! * [`ResultRing`]: one loop's finished jobs. Any number of producers (the
//!   workers) reserve room for a whole batch with one `fetch_add` on `tail`
//!   and fill it; one consumer (the loop) takes entries in order, an entry
//!   being ready once it is non-zero ([`ResultRing::pop`]).
//!
//! Entries are non-zero `usize`s (job pointers), held in atomics so that
//! every access is defined even when a consumer reads an entry it then
//! fails to claim. Both compile against loom's atomics (`crate::sync`), and
//! `tests/loom.rs` checks them (`lane_*`, `result_ring_*`).
//!
//! # Why a claim may read before it owns
//!
//! [`Lane::claim`] reads the entries `head..head + n` *before* its CAS moves
//! `head` past them, as a Chase-Lev steal does. The producer overwrites the
//! entry of position `p` (with `p + capacity`) only after it has seen
//! `head > p` with an `Acquire` load. `head` only grows, so a CAS that
//! expects `head <= p` and succeeds ran before that load, and the load reads
//! the CAS's value or a later one in the release sequence of `head`'s
//! read-modify-writes: the claimer's reads happen before the overwrite. A
//! claimer whose reads raced with an overwrite finds `head` moved, fails its
//! CAS and drops what it read.
//!
//! # Why a result producer need not check for room
//!
//! A [`ResultRing`] holds results of one loop's jobs, and a loop has at most
//! `capacity` jobs out (its slots): a job's slot is reused only after the
//! loop popped its result. So when a producer reserves position `q`, the
//! entry of `q - capacity` was popped and zeroed, and that zeroing happens
//! before the producer's store: among the `capacity + 1` positions
//! `q - capacity ..= q` two hold jobs of the same slot, the later of which
//! (`b`) was submitted after the loop popped the earlier (`a >= q -
//! capacity`, popped in order after `q - capacity`); its worker reserved `b`
//! after it received the job, and the reservation of `q`, at or after `b`'s
//! in `tail`'s modification order, synchronizes with it (`AcqRel`
//! read-modify-writes: one release sequence).

use crate::sync::AtomicUsize;
use crate::sync::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use crossbeam_utils::CachePadded;

/// `capacity` rounded up to a power of two (at least 1), and its mask.
fn ring_size(capacity: usize) -> usize {
    capacity.max(1).next_power_of_two()
}

/// A single-producer, multi-consumer bounded ring with batch publish and
/// batch claims. See the module docs.
pub(crate) struct Lane {
    /// The producer's own line: the next position it writes, and the last
    /// `head` it saw (to check for room without reading `head`'s line).
    write: CachePadded<ProducerSide>,
    /// Positions below `tail` are published.
    tail: CachePadded<AtomicUsize>,
    /// Positions below `head` are claimed.
    head: CachePadded<AtomicUsize>,
    entries: Box<[AtomicUsize]>,
    mask: usize,
}

/// What only the producer of a [`Lane`] writes.
struct ProducerSide {
    next: AtomicUsize,
    head_seen: AtomicUsize,
}

impl Lane {
    /// An empty lane with room for at least `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Lane {
        let size = ring_size(capacity);
        Lane {
            write: CachePadded::new(ProducerSide {
                next: AtomicUsize::new(0),
                head_seen: AtomicUsize::new(0),
            }),
            tail: CachePadded::new(AtomicUsize::new(0)),
            head: CachePadded::new(AtomicUsize::new(0)),
            entries: (0..size).map(|_| AtomicUsize::new(0)).collect(),
            mask: size - 1,
        }
    }

    /// Producer side: writes `v` (not zero) at the next position, unpublished
    /// until [`publish`](Lane::publish). Only one thread may push and publish
    /// on a lane (its loop's; a second producer would overwrite entries: a
    /// lost job, never a wrong one, since entries are only ever read whole).
    ///
    /// Waits (yielding) while the lane is full, which its loop's in-flight
    /// limit makes unreachable when the lane is at least that big.
    #[inline]
    pub(crate) fn push(&self, v: usize) {
        debug_assert_ne!(v, 0);
        let p = self.write.next.load(Relaxed);
        if p - self.write.head_seen.load(Relaxed) > self.mask {
            // Apparently full: look at the real `head` (Acquire: the
            // claimers' reads of the entry about to be overwritten happen
            // before this store; see the module docs).
            loop {
                let h = self.head.load(Acquire);
                self.write.head_seen.store(h, Relaxed);
                if p - h <= self.mask {
                    break;
                }
                yield_now();
            }
        }
        self.entries[p & self.mask].store(v, Relaxed);
        self.write.next.store(p + 1, Relaxed);
    }

    /// Producer side: makes every pushed entry visible to consumers. A
    /// `Release` store, one per batch; the park protocol's Dekker handshake
    /// gets its `SeqCst` fence from `Sleepers::claim`, which the loop runs
    /// after publishing, before it decides whether a worker needs a wake.
    #[inline]
    pub(crate) fn publish(&self) {
        let p = self.write.next.load(Relaxed);
        if self.tail.load(Relaxed) != p {
            self.tail.store(p, Release);
        }
    }

    /// Consumer side: claims up to `max` published entries, and at most
    /// `ceil(visible / share)` of them (so that `share` consumers each get
    /// some of a burst), passing each to `take` in order. Returns how many;
    /// `0` when nothing is published. One CAS per call (retried when another
    /// consumer moved `head`).
    #[inline]
    pub(crate) fn claim(&self, max: usize, share: usize, mut take: impl FnMut(usize)) -> usize {
        let share = share.max(1);
        let mut h = self.head.load(Acquire);
        loop {
            let t = self.tail.load(Acquire);
            if t == h {
                return 0;
            }
            let visible = t.wrapping_sub(h);
            if visible > self.mask + 1 {
                // `h` is stale beyond a whole lap (it moved and `tail` with
                // it): read it again.
                h = self.head.load(Acquire);
                continue;
            }
            let n = visible.div_ceil(share).min(max.max(1));
            // Read before owning (the module docs say why this is sound);
            // collect locally so a failed claim hands nothing out.
            let mut got = [0usize; CLAIM_MAX];
            let n = n.min(CLAIM_MAX);
            for (i, g) in got.iter_mut().enumerate().take(n) {
                *g = self.entries[(h + i) & self.mask].load(Relaxed);
            }
            match self.head.compare_exchange(h, h + n, AcqRel, Acquire) {
                Ok(_) => {
                    got[..n].iter().for_each(|&v| take(v));
                    return n;
                }
                Err(now) => h = now,
            }
        }
    }

    /// Nothing is published and unclaimed (`SeqCst` loads: the park
    /// protocol's re-check).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(SeqCst) == self.tail.load(SeqCst)
    }
}

/// The most entries one [`Lane::claim`] takes.
pub(crate) const CLAIM_MAX: usize = 32;

/// A multi-producer, single-consumer bounded ring: producers reserve a batch
/// with one `fetch_add`, the consumer takes entries in order. Its capacity
/// bounds how many entries may be in it *or reserved* at once, and producers
/// rely on that bound instead of checking for room (module docs).
pub(crate) struct ResultRing {
    /// The next position to reserve.
    tail: CachePadded<AtomicUsize>,
    /// The consumer's next position (written by the consumer only).
    head: CachePadded<AtomicUsize>,
    entries: Box<[AtomicUsize]>,
    mask: usize,
}

impl ResultRing {
    /// An empty ring for at most `capacity` outstanding entries.
    pub(crate) fn new(capacity: usize) -> ResultRing {
        let size = ring_size(capacity);
        ResultRing {
            tail: CachePadded::new(AtomicUsize::new(0)),
            head: CachePadded::new(AtomicUsize::new(0)),
            entries: (0..size).map(|_| AtomicUsize::new(0)).collect(),
            mask: size - 1,
        }
    }

    /// Producer side: appends every value of `vals` (none zero), reserving
    /// their room with one `fetch_add`. The caller guarantees the bound: at
    /// most `capacity` entries are ever pushed and not yet popped.
    #[inline]
    pub(crate) fn push_all(&self, vals: &[usize]) {
        if vals.is_empty() {
            return;
        }
        let p = self.tail.fetch_add(vals.len(), AcqRel);
        for (i, &v) in vals.iter().enumerate() {
            debug_assert_ne!(v, 0);
            // Release: the job's final state and outcome, written before,
            // are visible to the consumer's Acquire load of this entry.
            self.entries[(p + i) & self.mask].store(v, Release);
        }
    }

    /// Consumer side: takes the next entry if it is ready. Only one thread
    /// may pop (the loop's).
    #[inline]
    pub(crate) fn pop(&self) -> Option<usize> {
        self.take().map(|(v, _)| v)
    }

    /// Consumer side: [`pop`](Self::pop), and with the entry taken, the
    /// entry `ahead` places after it if it is ready ([`peek`](Self::peek)
    /// once the entry is taken), with one read of the head.
    // Unused by the loom models (the loop's prefetching is compiled out).
    #[cfg_attr(loom, allow(dead_code))]
    #[inline]
    pub(crate) fn pop_peeking(&self, ahead: usize) -> Option<(usize, Option<usize>)> {
        let (v, next) = self.take()?;
        Some((v, self.peek_at(next, ahead)))
    }

    /// Consumer side: the entry `ahead` places after the next one, if it is
    /// ready, without taking it (to prefetch what it points to). Only the
    /// consumer may peek; `None` if `ahead` is not below the capacity.
    // Unused by the loom models (the loop's prefetching is compiled out).
    #[cfg_attr(loom, allow(dead_code))]
    #[inline]
    pub(crate) fn peek(&self, ahead: usize) -> Option<usize> {
        self.peek_at(self.head.load(Relaxed), ahead)
    }

    /// Takes the entry at the head if it is ready: it and the new head.
    #[inline]
    fn take(&self) -> Option<(usize, usize)> {
        let h = self.head.load(Relaxed);
        let e = &self.entries[h & self.mask];
        let v = e.load(Acquire);
        if v == 0 {
            return None;
        }
        e.store(0, Relaxed);
        self.head.store(h + 1, Relaxed);
        Some((v, h + 1))
    }

    /// The entry `ahead` places after position `head` if it is ready
    /// (`Relaxed`: a hint's read, never dereferenced by the caller).
    // Unused by the loom models (the loop's prefetching is compiled out).
    #[cfg_attr(loom, allow(dead_code))]
    #[inline]
    fn peek_at(&self, head: usize, ahead: usize) -> Option<usize> {
        if ahead > self.mask {
            return None;
        }
        let v = self.entries[(head + ahead) & self.mask].load(Relaxed);
        (v != 0).then_some(v)
    }

    /// Consumer side: the next entry is not ready (`SeqCst`: the doorbell's
    /// and the spinning loop's re-check).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        let h = self.head.load(Relaxed);
        self.entries[h & self.mask].load(SeqCst) == 0
    }
}

#[cfg(not(loom))]
fn yield_now() {
    std::thread::yield_now()
}

#[cfg(loom)]
fn yield_now() {
    loom::thread::yield_now()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn lane_claims_in_order_and_shares() {
        let lane = Lane::new(8);
        for v in 1..=6 {
            lane.push(v);
        }
        let mut got = Vec::new();
        assert_eq!(
            lane.claim(32, 1, |v| got.push(v)),
            0,
            "nothing published yet"
        );
        lane.publish();
        assert_eq!(
            lane.claim(32, 2, |v| got.push(v)),
            3,
            "half of six, rounded up"
        );
        assert_eq!(lane.claim(2, 1, |v| got.push(v)), 2, "capped by max");
        assert_eq!(lane.claim(32, 4, |v| got.push(v)), 1);
        assert!(lane.is_empty());
        assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn lane_wraps() {
        let lane = Lane::new(4);
        let mut got = Vec::new();
        for round in 0..10 {
            for v in 1..=3 {
                lane.push(round * 10 + v);
            }
            lane.publish();
            while lane.claim(32, 1, |v| got.push(v)) > 0 {}
        }
        let want: Vec<usize> = (0..10)
            .flat_map(|r| (1..=3).map(move |v| r * 10 + v))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn result_ring_in_order_and_wraps() {
        let ring = ResultRing::new(4);
        assert!(ring.is_empty());
        for round in 0..10 {
            ring.push_all(&[round * 10 + 1, round * 10 + 2]);
            ring.push_all(&[round * 10 + 3]);
            assert!(!ring.is_empty());
            let got: Vec<usize> = std::iter::from_fn(|| ring.pop()).collect();
            assert_eq!(got, [round * 10 + 1, round * 10 + 2, round * 10 + 3]);
            assert!(ring.is_empty());
        }
    }

    #[test]
    fn result_ring_peeks_ahead_without_taking() {
        let ring = ResultRing::new(4);
        assert_eq!(ring.peek(0), None);
        ring.push_all(&[11, 12, 13]);
        assert_eq!(ring.peek(0), Some(11));
        assert_eq!(ring.peek(2), Some(13));
        assert_eq!(ring.peek(3), None, "not pushed yet");
        assert_eq!(ring.peek(4), None, "beyond the capacity");
        assert_eq!(ring.pop_peeking(1), Some((11, Some(13))));
        assert_eq!(ring.pop_peeking(1), Some((12, None)));
        ring.push_all(&[14, 15]);
        // Across the wrap: 13 is at position 2, 14 at 3, 15 at 0.
        assert_eq!(ring.pop_peeking(1), Some((13, Some(15))));
        assert_eq!(ring.pop_peeking(9), Some((14, None)));
        assert_eq!(ring.pop(), Some(15));
        assert_eq!(ring.pop_peeking(0), None);
        assert!(ring.is_empty());
    }

    #[test]
    fn lane_many_consumers_take_each_once() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let lane = Arc::new(Lane::new(64));
        let done = Arc::new(AtomicBool::new(false));
        let total = 200_000usize;
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let lane = lane.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while !done.load(Acquire) || !lane.is_empty() {
                        if lane.claim(CLAIM_MAX, 3, |v| got.push(v)) == 0 {
                            std::thread::yield_now();
                        }
                    }
                    got
                })
            })
            .collect();
        let mut pushed = 0;
        while pushed < total {
            // Never more than 64 unclaimed (the in-flight bound), as a loop.
            while pushed < total && pushed - lane.head.load(Acquire) < 64 {
                pushed += 1;
                lane.push(pushed);
            }
            lane.publish();
        }
        done.store(true, Release);
        let mut all: Vec<usize> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=total).collect::<Vec<_>>());
    }
}
