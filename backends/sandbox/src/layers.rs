//! Reading a stack of overlayfs-format layer directories without mounting
//! it: path resolution inside the merged view (whiteouts, opaque
//! directories and symlinks honoured), and inspecting a diff.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{ExecError, IoContext};

/// The xattr overlayfs puts on a directory that hides the lower layers.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Whether `meta` is an overlayfs whiteout (a character device 0/0).
pub fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory at `path` carries `trusted.overlay.opaque=y`.
pub fn is_opaque_dir(path: &Path) -> bool {
    let mut buf = [0u8; 4];
    match rustix::fs::lgetxattr(path, OPAQUE_XATTR, &mut buf[..]) {
        Ok(n) => buf.get(..n) == Some(b"y"),
        Err(_) => false,
    }
}

/// The kind of a node in the merged view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// A directory (possibly merged from several layers).
    Dir,
    /// Anything else that is not a symlink.
    File,
    /// A symlink with its target.
    Symlink(PathBuf),
}

/// A node found in the stack: its kind and the topmost layer path holding it.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub kind: NodeKind,
    /// The path of the entry in the topmost layer that holds it.
    pub host_path: PathBuf,
    /// For directories: the layer indices (top first) merged into it.
    layers: Vec<usize>,
}

/// The result of resolving a path in the merged view.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// Physical components from the root (no symlinks, no `.`/`..`).
    pub components: Vec<String>,
    /// The node, or `None` when the path (from `first_missing`) does not exist.
    pub node: Option<Node>,
    /// Index in `components` of the first component that does not exist.
    pub first_missing: usize,
}

/// A read-only view of a layer stack.
pub(crate) struct Stack<'a> {
    /// Layer directories, bottom first.
    layers: &'a [PathBuf],
}

const MAX_SYMLINKS: usize = 40;

impl<'a> Stack<'a> {
    pub fn new(layers: &'a [PathBuf]) -> Self {
        Self { layers }
    }

    fn root(&self) -> Node {
        let top = self.layers.last().cloned().unwrap_or_default();
        Node {
            kind: NodeKind::Dir,
            host_path: top,
            layers: (0..self.layers.len()).rev().collect(),
        }
    }

    /// Metadata of the root directory in the topmost layer, if any.
    pub fn root_metadata(&self) -> Option<Metadata> {
        self.layers.iter().rev().find_map(|l| fs::metadata(l).ok())
    }

    /// Looks up `name` in the merged directory `dir` whose physical path
    /// relative to the root is `rel`.
    fn child(&self, dir: &Node, rel: &Path, name: &str) -> Result<Option<Node>, ExecError> {
        let mut dir_layers = Vec::new();
        let mut top_dir: Option<PathBuf> = None;
        for &idx in &dir.layers {
            let Some(layer) = self.layers.get(idx) else {
                continue;
            };
            let candidate = layer.join(rel).join(name);
            let meta = match fs::symlink_metadata(&candidate) {
                Ok(meta) => meta,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) if err.raw_os_error() == Some(20) => continue, // ENOTDIR
                Err(err) => {
                    return Err(ExecError::io(
                        format!("reading layer entry `{}`", candidate.display()),
                        err,
                    ))
                }
            };
            if meta.is_dir() {
                if top_dir.is_none() {
                    top_dir = Some(candidate.clone());
                }
                dir_layers.push(idx);
                if is_opaque_dir(&candidate) {
                    break;
                }
                continue;
            }
            if !dir_layers.is_empty() {
                // A directory above hides this non-directory.
                break;
            }
            if is_whiteout(&meta) {
                return Ok(None);
            }
            let kind = if meta.file_type().is_symlink() {
                let target = fs::read_link(&candidate)
                    .context(|| format!("reading symlink `{}`", candidate.display()))?;
                NodeKind::Symlink(target)
            } else {
                NodeKind::File
            };
            return Ok(Some(Node {
                kind,
                host_path: candidate,
                layers: Vec::new(),
            }));
        }
        Ok(top_dir.map(|host_path| Node {
            kind: NodeKind::Dir,
            host_path,
            layers: dir_layers,
        }))
    }

    /// Resolves `path` (absolute or relative to `/`) like the kernel would
    /// inside a chroot on the merged view: `..` stops at the root, symlinks
    /// are followed inside the root (the last one only if `follow_final`).
    pub fn resolve(&self, path: &str, follow_final: bool) -> Result<Resolved, ExecError> {
        let mut pending: Vec<String> = split(path).into_iter().rev().collect();
        let mut components: Vec<String> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut links = 0usize;
        while let Some(comp) = pending.pop() {
            if comp == "." {
                continue;
            }
            if comp == ".." {
                components.pop();
                nodes.pop();
                continue;
            }
            let parent = nodes.last().cloned().unwrap_or_else(|| self.root());
            if parent.kind != NodeKind::Dir {
                return Err(ExecError::InvalidPath {
                    path: path.to_owned(),
                    reason: format!("`{}` is not a directory", slash_join(&components)),
                });
            }
            let rel: PathBuf = components.iter().collect();
            match self.child(&parent, &rel, &comp)? {
                None => {
                    let first_missing = components.len();
                    components.push(comp);
                    // The rest does not exist: normalise it lexically.
                    while let Some(rest) = pending.pop() {
                        match rest.as_str() {
                            "." => {}
                            ".." => {
                                if components.len() > first_missing {
                                    components.pop();
                                } else {
                                    return Err(ExecError::InvalidPath {
                                        path: path.to_owned(),
                                        reason: "`..` after a missing directory".to_owned(),
                                    });
                                }
                            }
                            _ => components.push(rest),
                        }
                    }
                    return Ok(Resolved {
                        components,
                        node: None,
                        first_missing,
                    });
                }
                Some(node) => {
                    if let NodeKind::Symlink(target) = &node.kind {
                        if follow_final || !pending.is_empty() {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(ExecError::InvalidPath {
                                    path: path.to_owned(),
                                    reason: "too many levels of symbolic links".to_owned(),
                                });
                            }
                            let target = target.to_string_lossy().into_owned();
                            if target.starts_with('/') {
                                components.clear();
                                nodes.clear();
                            }
                            for part in split(&target).into_iter().rev() {
                                pending.push(part);
                            }
                            continue;
                        }
                    }
                    components.push(comp);
                    nodes.push(node);
                }
            }
        }
        let first_missing = components.len();
        let node = nodes.pop().unwrap_or_else(|| self.root());
        Ok(Resolved {
            components,
            node: Some(node),
            first_missing,
        })
    }

    /// Reads a regular file of the merged view, following symlinks.
    /// `Ok(None)` when it does not exist.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, ExecError> {
        let resolved = match self.resolve(path, true) {
            Ok(resolved) => resolved,
            Err(ExecError::InvalidPath { .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        match resolved.node {
            Some(Node {
                kind: NodeKind::File,
                host_path,
                ..
            }) => fs::read(&host_path)
                .map(Some)
                .context(|| format!("reading `{}`", host_path.display())),
            _ => Ok(None),
        }
    }

    /// Metadata of the topmost entry for a physical path (no symlinks), if
    /// it exists as a directory.
    pub fn dir_metadata(&self, components: &[String]) -> Option<Metadata> {
        let rel: PathBuf = components.iter().collect();
        for layer in self.layers.iter().rev() {
            if let Ok(meta) = fs::symlink_metadata(layer.join(&rel)) {
                return meta.is_dir().then_some(meta);
            }
        }
        None
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

fn slash_join(components: &[String]) -> String {
    if components.is_empty() {
        return "/".to_owned();
    }
    components.iter().map(|c| format!("/{c}")).collect()
}

/// Reads a regular file from a layer stack (bottom first) without mounting
/// it: whiteouts, opaque directories and symlinks (inside the root) are
/// honoured. `Ok(None)` when the path does not exist or is not a file.
pub fn read_stack_file(lowers: &[PathBuf], path: &str) -> Result<Option<Vec<u8>>, ExecError> {
    Stack::new(lowers).read_file(path)
}

/// What a diff (an upper directory) records for one path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// The path was deleted (an overlayfs whiteout).
    Deleted,
    /// The directory replaced the lower one entirely (opaque directory).
    OpaqueDir,
    /// The path was added or modified (directories included).
    Changed,
}

/// One entry of a diff.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Absolute path inside the root filesystem.
    pub path: String,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// Lists the paths a diff (an exec's upper directory) records, sorted.
pub fn changed_paths(upper: &Path) -> Result<Vec<Change>, ExecError> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(upper).min_depth(1) {
        let entry = entry.map_err(|err| {
            let path = err.path().map(Path::to_path_buf).unwrap_or_default();
            ExecError::io(
                format!("walking diff `{}`", path.display()),
                err.into_io_error()
                    .unwrap_or_else(|| io::Error::other("file system loop")),
            )
        })?;
        let rel = entry.path().strip_prefix(upper).unwrap_or(entry.path());
        let path = format!("/{}", rel.to_string_lossy());
        let meta = entry
            .path()
            .symlink_metadata()
            .context(|| format!("reading `{}`", entry.path().display()))?;
        let kind = if is_whiteout(&meta) {
            ChangeKind::Deleted
        } else if meta.is_dir() && is_opaque_dir(entry.path()) {
            ChangeKind::OpaqueDir
        } else {
            ChangeKind::Changed
        };
        out.push(Change { path, kind });
    }
    out.sort();
    Ok(out)
}

/// Whether a diff records no change at all.
pub fn diff_is_empty(upper: &Path) -> Result<bool, ExecError> {
    let mut entries =
        fs::read_dir(upper).context(|| format!("reading diff `{}`", upper.display()))?;
    Ok(entries.next().is_none())
}
