//! Sandboxed process execution over a layered root filesystem.
//!
//! A root filesystem is a stack of layer directories in overlayfs format
//! (bottom first; deletions are whiteouts, opaque directories carry
//! `trusted.overlay.opaque=y`). An exec mounts those layers plus a fresh
//! upper directory with overlayfs in a private mount namespace, runs the
//! command there with Debian's bubblewrap, and leaves its changes (its diff)
//! in the upper directory, which becomes a new layer. The image is never
//! copied. See `README.md` for the design and its trade-offs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cuedag_sandbox::ExecError> {
//! use cuedag_sandbox::{discard_output, ExecSpec, Sandbox};
//! let sandbox = Sandbox::new()?;
//! let spec = ExecSpec::new(
//!     vec!["/store/layers/base".into()],
//!     "/store/layers/new".into(),
//!     "/store/work/new".into(),
//!     vec!["/bin/sh".into(), "-c".into(), "echo hi > /greeting".into()],
//! );
//! let cancel = tokio_util::sync::CancellationToken::new();
//! sandbox.run(&spec, discard_output(), &cancel).await?;
//! # Ok(()) }
//! ```
//!
//! Depends on no other crate of ours.

mod error;
mod layers;
mod prepare;
mod run;
mod spec;
mod user;

pub use error::ExecError;
pub use layers::{
    changed_paths, diff_is_empty, is_opaque_dir, is_whiteout, read_stack_file, Change, ChangeKind,
};
pub use prepare::DEFAULT_PATH;
pub use run::{
    channel_output, discard_output, ExecResult, OutputSink, OutputStream, Running, Sandbox,
};
pub use spec::{host_proxy_env, CacheSharing, ExecSpec, Mount, Network, SecretString};
