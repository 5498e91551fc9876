//! The `dagger.io` and `universe.dagger.io` CUE packages, embedded in the binary.
//!
//! Depends on nothing. The package sources live under `universe/pkg/`, laid
//! out by import path (`pkg/dagger.io/dagger/plan.cue`,
//! `pkg/universe.dagger.io/go/build.cue`, ...), each module root holding a
//! `cue.mod/module.cue` as in Dagger. `build.rs` embeds every file of that
//! tree with `include_str!`, so the packages need no installation.
//!
//! The packages are written for cuedag and follow the interface of Dagger
//! 0.2.36 (same definitions, fields, types, defaults and composition).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/files.rs"));

/// The Dagger version whose `dagger.io` and `universe.dagger.io` packages
/// these packages emulate.
pub const VERSION: &str = "0.2.36";

/// The CUE modules embedded, by module path: `dagger.io` and `universe.dagger.io`.
pub const MODULES: [&str; 2] = ["dagger.io", "universe.dagger.io"];

/// Every embedded file as `(path, contents)`, sorted by path.
///
/// Paths are relative to `universe/pkg/` and use `/`, for example
/// `"universe.dagger.io/go/build.cue"`; they include the modules'
/// `cue.mod/module.cue` and the package-relative scripts
/// (`universe.dagger.io/netlify/deploy.sh`, ...).
pub fn files() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILES.iter().copied()
}

/// The contents of the embedded file at `path` (relative to `universe/pkg/`,
/// with `/` separators), if there is one.
pub fn file(path: &str) -> Option<&'static str> {
    FILES
        .binary_search_by(|(candidate, _)| (*candidate).cmp(path))
        .ok()
        .and_then(|index| FILES.get(index))
        .map(|(_, contents)| *contents)
}

/// The Unix mode an embedded file gets when written out: `0o755` for the
/// shell scripts the packages run (such as
/// `universe.dagger.io/aws/scripts/install.sh`), `0o644` for the rest.
pub fn file_mode(path: &str) -> u32 {
    if path.ends_with(".sh") {
        0o755
    } else {
        0o644
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_sorted_and_unique() {
        let paths: Vec<&str> = files().map(|(path, _)| path).collect();
        assert!(paths.windows(2).all(|pair| pair[0] < pair[1]), "{paths:?}");
    }

    #[test]
    fn file_finds_every_file_and_nothing_else() {
        for (path, contents) in files() {
            assert_eq!(file(path), Some(contents), "{path}");
        }
        assert_eq!(file("universe.dagger.io/go/nope.cue"), None);
        assert_eq!(file(""), None);
    }

    #[test]
    fn scripts_are_executable() {
        assert_eq!(
            file_mode("universe.dagger.io/aws/scripts/install.sh"),
            0o755
        );
        assert_eq!(file_mode("universe.dagger.io/go/build.cue"), 0o644);
    }

    #[test]
    fn module_roots_declare_their_module() {
        for module in MODULES {
            let text = file(&format!("{module}/cue.mod/module.cue"));
            assert_eq!(text, Some(format!("module: \"{module}\"\n").as_str()));
        }
    }
}
