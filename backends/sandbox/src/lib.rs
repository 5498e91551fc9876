//! Sandboxed process execution over a layered root filesystem, with
//! Debian's bubblewrap.
//!
//! Depends on no other crate of ours.
