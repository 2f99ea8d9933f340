//! A global allocator that remembers the largest single allocation the current
//! thread asked for since [`reset`]: how the runner sees an input that makes a parser
//! allocate from a length it was told rather than from the bytes it has (a
//! "header bomb"). Thread-local, so parallel test threads do not see each other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: during thread teardown the slot may be gone; nothing to record.
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size);
        }
    });
}

// SAFETY: every call forwards to the system allocator unchanged; the bookkeeping
// touches only a const-initialized thread-local (no allocation inside).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Forgets the largest allocation so far (this thread).
pub fn reset() {
    LARGEST.with(|l| l.set(0));
}

/// The largest single allocation since [`reset`] (this thread).
pub fn largest() -> usize {
    LARGEST.with(Cell::get)
}
