//! Embeds every file below `pkg/` into the crate.
//!
//! Writes `$OUT_DIR/files.rs`: a sorted array of `(relative path, contents)`
//! pairs, each contents an `include_str!` of the file, so the packages are
//! part of the binary and a change to any file rebuilds the crate.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, io};

fn main() -> io::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(io::Error::other)?);
    let pkg_dir = manifest_dir.join("pkg");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", pkg_dir.display());

    let mut files = Vec::new();
    collect(&pkg_dir, &pkg_dir, &mut files)?;
    files.sort();

    let mut code = String::from("/// Every embedded file, sorted by path.\n");
    let _ = writeln!(code, "static FILES: [(&str, &str); {}] = [", files.len());
    for (relative, absolute) in &files {
        println!("cargo:rerun-if-changed={}", absolute.display());
        let _ = writeln!(
            code,
            "    ({relative:?}, include_str!({:?})),",
            absolute.display().to_string()
        );
    }
    code.push_str("];\n");

    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(io::Error::other)?);
    fs::write(out_dir.join("files.rs"), code)
}

/// Collects `(path relative to root with `/` separators, absolute path)`
/// for every regular file below `dir`, and asks cargo to watch every
/// directory (so added files are seen too).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect(root, &path, files)?;
        } else if file_type.is_file() {
            let relative = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .components()
                .map(|component| component.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((relative, path));
        }
    }
    Ok(())
}
