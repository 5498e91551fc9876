//! OCI images: a registry client (pull and push, Docker and OCI media types,
//! mirrors, auth), a content-addressed blob store verified by digest, and
//! layer extraction into root filesystems.
//!
//! Depends on no other crate of ours.
