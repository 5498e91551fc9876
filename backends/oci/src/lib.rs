//! OCI images: a registry client (pull and push, Docker and OCI media types,
//! mirrors, auth), a content-addressed blob store verified by digest, and
//! layer extraction into overlayfs-format directories (plus the reverse:
//! packing such a directory into a deterministic layer, and flattening a
//! stack of layers).
//!
//! Depends on no other crate of ours. The registry API is async (tokio); the
//! layer functions are blocking and have `*_async` wrappers that run them on
//! the blocking pool.

pub mod auth;
pub mod client;
pub mod digest;
pub mod error;
pub mod export;
pub mod image;
pub mod layer;
pub mod media;
pub mod mirrors;
pub mod platform;
pub mod reference;
pub mod store;

pub use auth::{Credentials, DockerConfig, Secret};
pub use client::{
    LayerInfo, PullOptions, PulledImage, PushImage, RegistryClient, ResolveMode, Resolved,
};
pub use digest::Digest;
pub use error::{OciError, Result};
pub use layer::{extract_layer, flatten, pack_layer, PackedLayer};
pub use mirrors::{Endpoint, RegistryConfig};
pub use platform::Platform;
pub use reference::Reference;
pub use store::BlobStore;
