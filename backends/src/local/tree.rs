//! Reading a layer stack without mounting it, include/exclude filters, and
//! writing entries into a new layer directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use super::store::io_error;
use crate::BackendError;

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Whether `path` is a directory marked opaque for overlayfs.
pub fn is_opaque(path: &Path) -> bool {
    let mut value = [0u8; 4];
    matches!(rustix::fs::lgetxattr(path, OPAQUE_XATTR, &mut value[..]), Ok(1) if value[0] == b'y')
}

/// Whether this is an overlayfs whiteout (character device 0/0).
pub fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Splits a path inside a filesystem into normal components (`.` dropped,
/// `..` clamped at the root).
pub fn components(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other.to_string()),
        }
    }
    out
}

/// An entry of the merged view: where it lives and its metadata.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The host path of the entry in its layer.
    pub path: PathBuf,
    /// Its metadata (not following symlinks).
    pub meta: fs::Metadata,
}

/// The merged view of a layer stack (bottom first), read-only.
pub struct StackView<'a> {
    layers: &'a [PathBuf],
}

enum Probe {
    /// The layer has nothing at this path; `stop` when lower layers are
    /// hidden by an opaque ancestor.
    Absent { stop: bool },
    /// Deleted (whiteout) or shadowed by a non-directory ancestor.
    Deleted,
    /// Present.
    Found(Entry, bool),
}

impl<'a> StackView<'a> {
    /// A view of `layers`.
    pub fn new(layers: &'a [PathBuf]) -> Self {
        StackView { layers }
    }

    fn probe(layer: &Path, comps: &[String]) -> Probe {
        let mut path = layer.to_path_buf();
        let mut stop = false;
        for (i, comp) in comps.iter().enumerate() {
            path.push(comp);
            let Ok(meta) = fs::symlink_metadata(&path) else {
                return Probe::Absent { stop };
            };
            if is_whiteout(&meta) {
                return Probe::Deleted;
            }
            if i + 1 < comps.len() {
                if !meta.is_dir() {
                    return Probe::Deleted;
                }
                if is_opaque(&path) {
                    stop = true;
                }
            } else {
                let opaque = meta.is_dir() && is_opaque(&path);
                return Probe::Found(Entry { path, meta }, stop || opaque);
            }
        }
        Probe::Absent { stop }
    }

    /// The entry at `comps`, without following symlinks.
    pub fn lookup(&self, comps: &[String]) -> Option<Entry> {
        if comps.is_empty() {
            let root = self.layers.last()?;
            let meta = fs::symlink_metadata(root).ok()?;
            return Some(Entry {
                path: root.clone(),
                meta,
            });
        }
        for layer in self.layers.iter().rev() {
            match Self::probe(layer, comps) {
                Probe::Absent { stop: false } => continue,
                Probe::Absent { stop: true } | Probe::Deleted => return None,
                Probe::Found(entry, _) => return Some(entry),
            }
        }
        None
    }

    /// Resolves symlinks in `path` inside the view (absolute targets are
    /// relative to the view's root); the final component is followed when
    /// `follow_final`.
    pub fn resolve(&self, path: &str, follow_final: bool) -> Vec<String> {
        let mut pending: Vec<String> = components(path);
        pending.reverse();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => done.push(comp),
            }
            if pending.is_empty() && !follow_final {
                break;
            }
            let Some(entry) = self.lookup(&done) else {
                continue;
            };
            if !entry.meta.file_type().is_symlink() || hops >= 40 {
                continue;
            }
            hops += 1;
            let Ok(target) = fs::read_link(&entry.path) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            for part in target.split('/').rev() {
                pending.push(part.to_string());
            }
        }
        done
    }

    /// The merged children of the directory at `comps`.
    pub fn list(&self, comps: &[String]) -> BTreeMap<String, Entry> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut out = BTreeMap::new();
        for layer in self.layers.iter().rev() {
            let (dir, stop) = if comps.is_empty() {
                (layer.clone(), is_opaque(layer))
            } else {
                match Self::probe(layer, comps) {
                    Probe::Absent { stop: false } => continue,
                    Probe::Absent { stop: true } | Probe::Deleted => break,
                    Probe::Found(entry, stop) => {
                        if !entry.meta.is_dir() {
                            break;
                        }
                        (entry.path, stop)
                    }
                }
            };
            if let Ok(read) = fs::read_dir(&dir) {
                for item in read.flatten() {
                    let name = item.file_name().to_string_lossy().into_owned();
                    if !seen.insert(name.clone()) {
                        continue;
                    }
                    let path = item.path();
                    let Ok(meta) = fs::symlink_metadata(&path) else {
                        continue;
                    };
                    if is_whiteout(&meta) {
                        continue;
                    }
                    out.insert(name, Entry { path, meta });
                }
            }
            if stop {
                break;
            }
        }
        out
    }
}

/// Include/exclude glob filters with BuildKit's semantics: a path is kept
/// when it (or one of its parent directories) matches an include pattern
/// (or there are none), and not excluded by the last matching exclude
/// pattern (`!pattern` re-includes).
#[derive(Debug, Default)]
pub struct Filter {
    include: Vec<GlobMatcher>,
    exclude: Vec<(GlobMatcher, bool)>,
}

fn glob(pattern: &str) -> Result<GlobMatcher, BackendError> {
    let trimmed = pattern.trim_start_matches("./").trim_start_matches('/');
    let trimmed = trimmed.trim_end_matches('/');
    GlobBuilder::new(trimmed)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| BackendError::Failed(format!("invalid pattern `{pattern}`: {error}")))
}

impl Filter {
    /// A filter from the `include` and `exclude` lists.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, BackendError> {
        let include = include
            .iter()
            .map(|pattern| glob(pattern))
            .collect::<Result<_, _>>()?;
        let exclude = exclude
            .iter()
            .map(|pattern| match pattern.strip_prefix('!') {
                Some(rest) => Ok((glob(rest)?, true)),
                None => Ok((glob(pattern)?, false)),
            })
            .collect::<Result<_, BackendError>>()?;
        Ok(Filter { include, exclude })
    }

    fn prefixes(rel: &str) -> impl Iterator<Item = &str> {
        rel.match_indices('/')
            .map(move |(i, _)| &rel[..i])
            .chain(std::iter::once(rel))
    }

    /// Whether an include pattern matches `rel` or one of its parents.
    pub fn included(&self, rel: &str) -> bool {
        self.include.is_empty()
            || Self::prefixes(rel).any(|prefix| self.include.iter().any(|g| g.is_match(prefix)))
    }

    /// Whether `rel` is excluded (itself or through a parent).
    pub fn excluded(&self, rel: &str) -> bool {
        let mut excluded = false;
        for prefix in Self::prefixes(rel) {
            for (glob, negated) in &self.exclude {
                if glob.is_match(prefix) {
                    excluded = !negated;
                }
            }
        }
        excluded
    }

    /// Whether a directory's subtree may hold kept entries (so it is
    /// worth walking).
    pub fn may_descend(&self, rel: &str) -> bool {
        !self.excluded(rel) || self.exclude.iter().any(|(_, negated)| *negated)
    }

    /// Whether the entry `rel` is kept.
    pub fn keeps(&self, rel: &str) -> bool {
        self.included(rel) && !self.excluded(rel)
    }
}

/// Copies the attributes (mode, owner, mtime) of `meta` onto `path`.
pub fn copy_attributes(path: &Path, meta: &fs::Metadata) -> Result<(), BackendError> {
    if meta.file_type().is_symlink() {
        let _ = std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()));
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))
        .map_err(io_error(format!("chown `{}`", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io_error(format!("chmod `{}`", path.display())))?;
    set_mtime(path, meta);
    Ok(())
}

/// Sets the mtime of `path` to the one in `meta` (best effort).
pub fn set_mtime(path: &Path, meta: &fs::Metadata) {
    if let (Ok(file), Ok(modified)) = (fs::File::open(path), meta.modified()) {
        let _ = file.set_times(fs::FileTimes::new().set_modified(modified));
    }
}

/// Creates the parent directories of `comps` inside the new layer `layer`,
/// mirroring the attributes the view has for them (so the new layer does
/// not change them); missing ones get mode 0755, owner root.
pub fn ensure_parents(
    view: &StackView<'_>,
    layer: &Path,
    comps: &[String],
) -> Result<(), BackendError> {
    let n_parents = comps.len().saturating_sub(1);
    for depth in 1..=n_parents {
        ensure_dir(view, layer, &comps[..depth], 0o755)?;
    }
    Ok(())
}

/// Creates the directory `comps` in `layer` (mirroring the view's
/// attributes when it has one, else `mode`, owner root).
pub fn ensure_dir(
    view: &StackView<'_>,
    layer: &Path,
    comps: &[String],
    mode: u32,
) -> Result<(), BackendError> {
    let path = join(layer, comps);
    if fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir()) {
        return Ok(());
    }
    fs::create_dir_all(&path).map_err(io_error(format!("creating `{}`", path.display())))?;
    match view.lookup(comps).filter(|entry| entry.meta.is_dir()) {
        Some(entry) => copy_attributes(&path, &entry.meta)?,
        None => fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(io_error(format!("chmod `{}`", path.display())))?,
    }
    Ok(())
}

/// `base` joined with `comps`.
pub fn join(base: &Path, comps: &[String]) -> PathBuf {
    let mut path = base.to_path_buf();
    for comp in comps {
        path.push(comp);
    }
    path
}

/// Places the file or symlink `entry` at `dest`: a hard link for regular
/// files (layers are immutable), a copy when linking fails.
pub fn place_entry(entry: &Entry, dest: &Path) -> Result<(), BackendError> {
    // Never write through an entry placed earlier (a symlink could point
    // out of the layer).
    if fs::symlink_metadata(dest).is_ok_and(|meta| !meta.is_dir()) {
        fs::remove_file(dest).map_err(io_error(format!("replacing `{}`", dest.display())))?;
    }
    let file_type = entry.meta.file_type();
    if file_type.is_symlink() {
        let target = fs::read_link(&entry.path)
            .map_err(io_error(format!("reading `{}`", entry.path.display())))?;
        std::os::unix::fs::symlink(&target, dest)
            .map_err(io_error(format!("creating `{}`", dest.display())))?;
        copy_attributes(dest, &entry.meta)?;
    } else if file_type.is_file() {
        if fs::hard_link(&entry.path, dest).is_err() {
            fs::copy(&entry.path, dest)
                .map_err(io_error(format!("copying to `{}`", dest.display())))?;
            copy_attributes(dest, &entry.meta)?;
        }
    } else if file_type.is_fifo() || file_type.is_char_device() || file_type.is_block_device() {
        let kind = if file_type.is_fifo() {
            rustix::fs::FileType::Fifo
        } else if file_type.is_char_device() {
            rustix::fs::FileType::CharacterDevice
        } else {
            rustix::fs::FileType::BlockDevice
        };
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dest,
            kind,
            rustix::fs::Mode::from_raw_mode(entry.meta.mode() & 0o7777),
            entry.meta.rdev(),
        )
        .map_err(|error| {
            BackendError::io(format!("creating `{}`", dest.display()), error.into())
        })?;
        copy_attributes(dest, &entry.meta)?;
    }
    Ok(())
}

/// Copies the merged subtree of `view` at `src` into the directory `dest`
/// (created by the caller), keeping entries `filter` keeps (`rel` is the
/// path relative to the copy's source). Returns whether anything was kept.
pub fn copy_tree(
    view: &StackView<'_>,
    src: &mut Vec<String>,
    dest: &Path,
    filter: &Filter,
    rel: &str,
) -> Result<bool, BackendError> {
    let mut kept_any = false;
    for (name, entry) in view.list(src) {
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let target = dest.join(&name);
        if entry.meta.is_dir() {
            if !filter.may_descend(&child_rel) {
                continue;
            }
            fs::create_dir(&target)
                .map_err(io_error(format!("creating `{}`", target.display())))?;
            src.push(name);
            let kept = copy_tree(view, src, &target, filter, &child_rel)?;
            src.pop();
            if kept || filter.keeps(&child_rel) {
                copy_attributes(&target, &entry.meta)?;
                kept_any = true;
            } else {
                let _ = fs::remove_dir_all(&target);
            }
        } else if filter.keeps(&child_rel) {
            place_entry(&entry, &target)?;
            kept_any = true;
        }
    }
    Ok(kept_any)
}

/// Creates an overlayfs whiteout at `path`.
pub fn make_whiteout(path: &Path) -> Result<(), BackendError> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .map_err(|error| {
        BackendError::io(
            format!("creating whiteout `{}`", path.display()),
            error.into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> Filter {
        let own = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Filter::new(&own(include), &own(exclude)).unwrap()
    }

    #[test]
    fn include_patterns_follow_buildkit() {
        let f = filter(&["**/*.go", "go.mod"], &[]);
        assert!(f.keeps("main.go"));
        assert!(f.keeps("a/b/c.go"));
        assert!(f.keeps("go.mod"));
        assert!(
            !f.keeps("sub/go.mod"),
            "a plain name matches at the root only"
        );
        assert!(!f.keeps("README.md"));
        let dir = filter(&["src"], &[]);
        assert!(
            dir.keeps("src/deep/file.txt"),
            "a matched directory keeps its subtree"
        );
        assert!(!dir.keeps("other/file.txt"));
        assert!(filter(&[], &[]).keeps("anything/at/all"));
    }

    #[test]
    fn exclude_patterns_with_negation() {
        let f = filter(&[], &["vendor", "**/*_test.go", "!keep_test.go"]);
        assert!(!f.keeps("vendor/x/y.go"));
        assert!(
            f.excluded("vendor") && f.may_descend("vendor"),
            "negations may re-include"
        );
        assert!(!f.keeps("pkg/a_test.go"));
        assert!(f.keeps("keep_test.go"));
        assert!(f.keeps("pkg/a.go"));
        let plain = filter(&[], &["node_modules"]);
        assert!(!plain.may_descend("node_modules"));
        assert!(plain.may_descend("src"));
    }

    #[test]
    fn components_clamp_at_the_root() {
        assert_eq!(components("/a/./b/../c/"), vec!["a", "c"]);
        assert_eq!(components("../../etc"), vec!["etc"]);
        assert!(components("/").is_empty());
    }

    #[test]
    fn view_honours_whiteouts_and_opaque_dirs() {
        let base = tempfile::tempdir().unwrap();
        let lower = base.path().join("lower");
        let upper = base.path().join("upper");
        fs::create_dir_all(lower.join("d")).unwrap();
        fs::write(lower.join("d/old"), "old").unwrap();
        fs::write(lower.join("gone"), "x").unwrap();
        fs::create_dir_all(lower.join("o")).unwrap();
        fs::write(lower.join("o/hidden"), "h").unwrap();
        fs::create_dir_all(upper.join("d")).unwrap();
        fs::write(upper.join("d/new"), "new").unwrap();
        make_whiteout(&upper.join("gone")).unwrap();
        fs::create_dir_all(upper.join("o")).unwrap();
        rustix::fs::setxattr(
            upper.join("o").as_path(),
            OPAQUE_XATTR,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        fs::write(upper.join("o/shown"), "s").unwrap();
        let layers = vec![lower, upper];
        let view = StackView::new(&layers);
        let names = |path: &str| view.list(&components(path)).into_keys().collect::<Vec<_>>();
        assert_eq!(names("/"), vec!["d", "o"]);
        assert_eq!(names("/d"), vec!["new", "old"]);
        assert_eq!(names("/o"), vec!["shown"]);
        assert!(view.lookup(&components("/gone")).is_none());
        assert!(view.lookup(&components("/o/hidden")).is_none());
        assert!(view.lookup(&components("/d/old")).is_some());
    }
}
