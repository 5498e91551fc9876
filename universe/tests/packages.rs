//! The embedded tree holds every package of Dagger 0.2.36 that cuedag
//! emulates, laid out by import path, each file in the package its
//! directory names.

use std::collections::BTreeSet;

/// Import paths of the packages, as in Dagger 0.2.36.
const PACKAGES: [&str; 15] = [
    "dagger.io/dagger",
    "dagger.io/dagger/core",
    "universe.dagger.io/alpine",
    "universe.dagger.io/aws",
    "universe.dagger.io/aws/cli",
    "universe.dagger.io/bash",
    "universe.dagger.io/docker",
    "universe.dagger.io/docker/cli",
    "universe.dagger.io/git",
    "universe.dagger.io/go",
    "universe.dagger.io/netlify",
    "universe.dagger.io/nginx",
    "universe.dagger.io/powershell",
    "universe.dagger.io/python",
    "universe.dagger.io/yarn",
];

/// The `package` clause of a CUE file.
fn package_clause(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|line| line.strip_prefix("package "))
        .map(str::trim)
}

#[test]
fn every_package_is_embedded_with_its_package_clause() {
    let mut dirs = BTreeSet::new();
    for (path, contents) in cuedag_universe::files() {
        let Some((dir, _file)) = path.rsplit_once('/') else {
            panic!("{path}: file at the root of pkg/");
        };
        if !path.ends_with(".cue") || dir.ends_with("cue.mod") {
            continue;
        }
        dirs.insert(dir.to_owned());
        let last = dir.rsplit('/').next().unwrap_or(dir);
        assert_eq!(package_clause(contents), Some(last), "{path}");
    }
    let expected: BTreeSet<String> = PACKAGES.iter().map(|path| (*path).to_owned()).collect();
    assert_eq!(dirs, expected);
}

#[test]
fn package_relative_scripts_are_embedded() {
    for path in [
        "universe.dagger.io/netlify/deploy.sh",
        "universe.dagger.io/aws/scripts/install.sh",
    ] {
        let script = cuedag_universe::file(path).unwrap_or_default();
        assert!(script.starts_with("#!/"), "{path}: {script:?}");
    }
}

#[test]
fn version_is_the_emulated_dagger_release() {
    assert_eq!(cuedag_universe::VERSION, "0.2.36");
}
