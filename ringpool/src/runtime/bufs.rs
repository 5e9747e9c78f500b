//! The provided-buffer ring (`IORING_REGISTER_PBUF_RING`, Linux 5.19) that
//! multishot receives fill: one pool of buffers for every connection of a
//! runtime, so that an idle connection holds no read buffer of its own.
//!
//! A buffer is the kernel's while it sits in the ring. A receive CQE hands
//! one to the runtime (its id in the CQE flags); it becomes a [`Chunk`],
//! whose drop gives it back to the ring. Both the ring and the buffers are
//! anonymous mappings, so buffer memory is only resident once the kernel
//! has written into it.

use io_uring::types::BufRingEntry;
use io_uring::IoUring;
use std::cell::Cell;
use std::io;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering::Release};

/// The buffer group id of a runtime's ring (one group per ring).
pub(crate) const GROUP: u16 = 0;

/// An anonymous private mapping of `len` bytes.
struct Map {
    ptr: NonNull<u8>,
    len: usize,
}

impl Map {
    fn new(len: usize) -> io::Result<Map> {
        // SAFETY: an anonymous private mapping with no address hint; the
        // kernel picks a fresh, page-aligned range that nothing else uses.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Map {
            ptr: NonNull::new(p.cast()).expect("mmap never returns null on success"),
            len,
        })
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly one mapping made in `new`, and
        // the owner only drops it once the kernel no longer uses it
        // (`BufRing`'s `leaked` rule).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A runtime's provided buffers.
pub(crate) struct BufRing {
    ring: Map,
    bufs: Map,
    entries: u16,
    size: usize,
    /// The tail as published to the kernel (entries added so far, mod 2^16).
    tail: Cell<u16>,
    /// The kernel may still use the memory (shutdown could not finish the
    /// operations): never unmap it.
    leaked: Cell<bool>,
    registered: Cell<bool>,
}

impl BufRing {
    /// `entries` buffers (a power of two, at most 32768) of `size` bytes,
    /// registered on `ring` as group [`GROUP`], all given to the kernel.
    pub(crate) fn new(ring: &IoUring, entries: u16, size: usize) -> io::Result<Rc<BufRing>> {
        if !entries.is_power_of_two() || entries > 32768 || size == 0 || size > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "provided buffers: the count must be a power of two up to 32768, the size 1..4 GiB",
            ));
        }
        let ring_map = Map::new(entries as usize * std::mem::size_of::<BufRingEntry>())?;
        let bufs = Map::new(entries as usize * size)?;
        // SAFETY: the ring mapping holds `entries` entries, page-aligned, and
        // lives until `unregister` (or is leaked, never unmapped, if the
        // kernel may still use it).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                ring_map.ptr.as_ptr() as u64,
                entries,
                GROUP,
                0,
            )?
        };
        let br = BufRing {
            ring: ring_map,
            bufs,
            entries,
            size,
            tail: Cell::new(0),
            leaked: Cell::new(false),
            registered: Cell::new(true),
        };
        for bid in 0..entries {
            br.put(bid);
        }
        br.publish();
        Ok(Rc::new(br))
    }

    fn entry(&self, i: u16) -> *mut BufRingEntry {
        let i = (i & (self.entries - 1)) as usize;
        // SAFETY: `i` is below `entries`, the ring mapping's length in entries.
        unsafe { self.ring.ptr.as_ptr().cast::<BufRingEntry>().add(i) }
    }

    /// Writes buffer `bid` at the tail (not yet visible to the kernel).
    fn put(&self, bid: u16) {
        let t = self.tail.get();
        let e = self.entry(t);
        // SAFETY: the entry at the tail is not the kernel's (the kernel
        // consumes entries before the tail only); `bid` < `entries`, so the
        // address is inside the buffers mapping. Entries are written with
        // raw pointers, and the tail (which aliases entry 0's `resv`) only
        // through the atomic in `publish`: field writes do not touch `resv`.
        unsafe {
            (*e).set_addr(self.bufs.ptr.as_ptr().add(bid as usize * self.size) as u64);
            (*e).set_len(self.size as u32);
            (*e).set_bid(bid);
        }
        self.tail.set(t.wrapping_add(1));
    }

    /// Makes every `put` so far visible to the kernel (a release store of
    /// the tail).
    fn publish(&self) {
        // SAFETY: the tail is the `resv` field of entry 0, a `u16` the
        // kernel reads with acquire; the ring mapping is live.
        let tail = unsafe { BufRingEntry::tail(self.ring.ptr.as_ptr().cast()) };
        // SAFETY: `tail` is a live, aligned `u16` that userspace alone
        // writes; an `AtomicU16` has the same layout.
        unsafe { (*(tail as *const AtomicU16)).store(self.tail.get(), Release) };
    }

    /// The chunk a receive CQE handed over: buffer `bid`, `len` bytes.
    /// `None` if the CQE names no valid buffer.
    pub(crate) fn chunk(self: &Rc<Self>, bid: u16, len: usize) -> Option<Chunk> {
        if bid >= self.entries || len > self.size {
            return None;
        }
        Some(Chunk {
            ring: self.clone(),
            bid,
            len,
            pos: 0,
        })
    }

    /// Unregisters the group (shutdown, once no receive is in flight).
    pub(crate) fn unregister(&self, ring: &IoUring) {
        if self.registered.replace(false) && ring.submitter().unregister_buf_ring(GROUP).is_err() {
            self.leaked.set(true);
        }
    }

    /// The kernel may still use the buffers: never unmap them.
    pub(crate) fn leak(&self) {
        self.leaked.set(true);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.leaked.get() {
            // Still the kernel's, for all we know.
            std::mem::forget(std::mem::replace(
                &mut self.ring,
                Map {
                    ptr: NonNull::dangling(),
                    len: 0,
                },
            ));
            std::mem::forget(std::mem::replace(
                &mut self.bufs,
                Map {
                    ptr: NonNull::dangling(),
                    len: 0,
                },
            ));
        }
    }
}

/// One received buffer, handed over by the kernel; given back on drop.
pub(crate) struct Chunk {
    ring: Rc<BufRing>,
    bid: u16,
    len: usize,
    pos: usize,
}

impl Chunk {
    /// The bytes not yet consumed.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the kernel handed buffer `bid` over with `len` bytes
        // written (the CQE), and does not touch it until `drop` puts it
        // back in the ring; `bid < entries` and `len <= size` (checked in
        // `BufRing::chunk`), so the range is inside the buffers mapping.
        let all = unsafe {
            std::slice::from_raw_parts(
                self.ring
                    .bufs
                    .ptr
                    .as_ptr()
                    .add(self.bid as usize * self.ring.size),
                self.len,
            )
        };
        &all[self.pos..]
    }

    /// Marks `n` more bytes consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.ring.put(self.bid);
        self.ring.publish();
    }
}
