//! Stack growth for the recursive parts of the parser and the evaluator.
//!
//! Nesting in CUE sources (brackets, operator chains, reference chains) is
//! bounded by explicit depth limits that report a located error; within
//! those limits recursion may still need more stack than a thread has (a
//! test thread has 2 MiB; debug builds use large frames). [`grow`] runs a
//! closure on a fresh heap-allocated stack segment when the current one is
//! nearly used up, so any thread can evaluate anything the limits allow.

/// Free stack below which [`grow`] switches to a new segment.
const RED_ZONE: usize = 256 * 1024;
/// Size of each new stack segment.
const SEGMENT: usize = 4 * 1024 * 1024;

/// Runs `f`, first moving to a new stack segment if little stack is left.
#[inline]
pub fn grow<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}
