//! Owned buffers for io_uring I/O: the kernel reads or writes them after
//! the call that submitted the operation has returned, so an operation
//! takes its buffer by value and gives it back with the result,
//! `(io::Result<usize>, B)`.
//!
//! [`IoBuf`] (read from, for writes) and [`IoBufMut`] (written into, for
//! reads) are implemented for `Vec<u8>`, `Box<[u8]>`, `&'static [u8]`,
//! `&'static str` (`IoBuf` only) and [`Slice`]s of any of them.

use std::ops::{Bound, RangeBounds};

/// A buffer the kernel may read from while an operation is in flight.
///
/// # Safety
///
/// `stable_ptr` must point to `bytes_init` initialised bytes that stay at
/// the same address, valid and unchanged, while the buffer is not accessed
/// through `&mut` and not dropped, even if the buffer value itself is
/// moved (heap or static memory).
pub unsafe trait IoBuf: 'static {
    /// Start of the bytes.
    fn stable_ptr(&self) -> *const u8;
    /// Initialised bytes (what a write sends).
    fn bytes_init(&self) -> usize;
    /// Capacity (what a read may fill).
    fn bytes_total(&self) -> usize;

    /// A view of `range` of the buffer (relative to its start), for reading
    /// into or writing from a part of it.
    ///
    /// # Panics
    ///
    /// If the range ends past `bytes_total` or starts after it ends.
    fn slice(self, range: impl RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => self.bytes_total(),
        };
        assert!(
            begin <= end && end <= self.bytes_total(),
            "ringpool: slice {begin}..{end} out of a buffer of {}",
            self.bytes_total()
        );
        Slice {
            buf: self,
            begin,
            end,
        }
    }
}

/// A buffer the kernel may write into while an operation is in flight.
///
/// # Safety
///
/// As [`IoBuf`], and `stable_mut_ptr` points to `bytes_total` writable
/// bytes; `set_init` only marks bytes the kernel has written.
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the writable bytes.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Marks the first `pos` bytes initialised (they were written), if that
    /// is more than already are.
    ///
    /// # Safety
    ///
    /// The first `pos` bytes have been written.
    unsafe fn set_init(&mut self, pos: usize);
}

// SAFETY: a Vec's heap buffer does not move when the Vec does; `len`
// bytes are initialised, `capacity` writable.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: a Vec's heap buffer does not move when the Vec does, and its
// `capacity` bytes are writable; `set_len` only grows to what was written,
// within the capacity.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        if pos > self.len() {
            // SAFETY: the caller says `pos` bytes were written, and
            // `pos <= capacity` (the kernel writes at most `bytes_total`).
            unsafe { self.set_len(pos) };
        }
    }
}

// SAFETY: a boxed slice's heap memory does not move with the box; all of
// it is initialised.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: a boxed slice's heap memory does not move with the box, all of
// it is writable, and every byte is always initialised.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

// SAFETY: static memory never moves or goes away.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: static memory never moves or goes away.
unsafe impl IoBuf for &'static str {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

/// A range of a buffer; see [`IoBuf::slice`]. Writes send its initialised
/// part; reads fill it from its start.
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B> Slice<B> {
    /// The whole buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
    /// The buffer.
    pub fn get_ref(&self) -> &B {
        &self.buf
    }
    /// Where the slice starts in the buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }
    /// Where it ends.
    pub fn end(&self) -> usize {
        self.end
    }
}

// SAFETY: a sub-range of `B`'s stable memory, so as stable as `B`'s.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: `begin <= bytes_total` of the buffer (checked in `slice`).
        unsafe { self.buf.stable_ptr().add(self.begin) }
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().clamp(self.begin, self.end) - self.begin
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: a sub-range of `B`'s stable, writable memory (`B: IoBufMut`);
// `set_init` forwards the written prefix, offset by `begin`.
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: `begin <= bytes_total` of the buffer (checked in `slice`),
        // so the offset stays inside its writable memory.
        unsafe { self.buf.stable_mut_ptr().add(self.begin) }
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: the caller says `pos` bytes from the slice's start were
        // written; and (for a `Vec`) the bytes before `begin` must be
        // initialised too, which they are if `begin <= bytes_init` (a read
        // into a slice past the initialised end marks nothing).
        if self.buf.bytes_init() >= self.begin {
            // SAFETY: bytes up to `begin` are initialised (checked) and the
            // `pos` after it were written (caller's obligation).
            unsafe { self.buf.set_init(self.begin + pos) };
        }
    }
}

/// Copies as much of `src` as fits into `buf`'s writable bytes from
/// offset `at` on; returns how many.
pub(crate) fn copy_at<B: IoBufMut>(buf: &mut B, at: usize, src: &[u8]) -> usize {
    let n = src.len().min(buf.bytes_total().saturating_sub(at));
    if n == 0 {
        return 0;
    }
    // SAFETY: `stable_mut_ptr` points to `bytes_total >= at + n` writable
    // bytes (the trait's contract), which cannot overlap `src` (we hold
    // `&mut buf`, and `src` is the runtime's own memory: a provided buffer
    // or saved bytes). The bytes before `at` were written by earlier calls
    // (callers copy from 0 upwards), so `at + n` bytes are initialised.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), buf.stable_mut_ptr().add(at), n);
        buf.set_init(at + n);
    }
    n
}
