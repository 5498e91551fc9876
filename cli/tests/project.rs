//! End-to-end tests of `cuedag project init` and `cuedag project update`,
//! running the built binary in scratch directories.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cuedag-project-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn cuedag(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cuedag"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn init_creates_the_module_and_keeps_an_existing_one() {
    let scratch = Scratch::new();
    let output = cuedag(
        scratch.path(),
        &["project", "init", "--name", "example.com/app"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Project initialized! To install dagger packages, run `dagger project update`\n"
    );
    let module_file = scratch.path().join("cue.mod/module.cue");
    assert_eq!(
        fs::read_to_string(&module_file).unwrap(),
        "module: \"example.com/app\"\n"
    );
    assert!(scratch.path().join("cue.mod/pkg").is_dir());

    let output = cuedag(scratch.path(), &["project", "init", "-n", "other"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        fs::read_to_string(&module_file).unwrap(),
        "module: \"example.com/app\"\n"
    );
}

#[test]
fn init_in_a_new_directory_with_the_hello_template() {
    let scratch = Scratch::new();
    let output = cuedag(scratch.path(), &["project", "init", "ci", "-t", "hello"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("Project initialized in \"ci\"!"));
    assert_eq!(
        fs::read_to_string(scratch.path().join("ci/cue.mod/module.cue")).unwrap(),
        "module: \"\"\n"
    );
    let plan = fs::read_to_string(scratch.path().join("ci/hello.cue")).unwrap();
    assert!(plan.contains("hello: bash.#Run"), "{plan}");

    let output = cuedag(scratch.path(), &["project", "init", "-t", "nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("unknown template `nope`"));
}

#[test]
fn update_vendors_every_embedded_file_atomically() {
    let scratch = Scratch::new();
    assert!(cuedag(scratch.path(), &["project", "init"])
        .status
        .success());
    let pkg = scratch.path().join("cue.mod/pkg");
    // A stale file of an older vendoring, and a third-party package.
    fs::create_dir_all(pkg.join("universe.dagger.io/old")).unwrap();
    fs::write(pkg.join("universe.dagger.io/old/old.cue"), "package old\n").unwrap();
    fs::create_dir_all(pkg.join("example.com/lib")).unwrap();
    fs::write(pkg.join("example.com/lib/lib.cue"), "package lib\n").unwrap();

    // Run from a sub-directory: the project is found upwards.
    let sub = scratch.path().join("ci/deep");
    fs::create_dir_all(&sub).unwrap();
    let output = cuedag(&sub, &["project", "update"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("Project updated!"));

    let mut n_files = 0;
    for (path, contents) in cuedag_universe::files() {
        assert_eq!(
            fs::read_to_string(pkg.join(path)).unwrap(),
            contents,
            "{path}"
        );
        n_files += 1;
    }
    assert!(n_files > 30);
    for module in cuedag_universe::MODULES {
        let version = fs::read_to_string(pkg.join(module).join("cue.mod/version.txt")).unwrap();
        assert_eq!(version, cuedag_universe::VERSION);
    }
    assert!(!pkg.join("universe.dagger.io/old").exists());
    assert!(pkg.join("example.com/lib/lib.cue").is_file());
    assert!(pkg.join("dagger.lock").is_file());
    let attributes = fs::read_to_string(pkg.join(".gitattributes")).unwrap();
    assert!(attributes.contains("/universe.dagger.io/** linguist-generated=true"));
    assert!(attributes.contains("/dagger.io/** linguist-generated=true"));
    // No staging directories are left behind.
    let leftovers: Vec<String> = fs::read_dir(&pkg)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') && name != ".gitattributes")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(pkg.join("universe.dagger.io/aws/scripts/install.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    // A second update gives the same tree.
    let output = cuedag(scratch.path(), &["project", "update"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        fs::read_to_string(pkg.join("universe.dagger.io/go/build.cue")).unwrap(),
        cuedag_universe::file("universe.dagger.io/go/build.cue").unwrap()
    );
}

#[cfg(unix)]
#[test]
fn update_leaves_a_symlinked_module_alone() {
    let scratch = Scratch::new();
    assert!(cuedag(scratch.path(), &["project", "init"])
        .status
        .success());
    let checkout = scratch.path().join("my-universe");
    fs::create_dir_all(&checkout).unwrap();
    fs::write(checkout.join("mine.cue"), "package mine\n").unwrap();
    let pkg = scratch.path().join("cue.mod/pkg");
    std::os::unix::fs::symlink(&checkout, pkg.join("universe.dagger.io")).unwrap();

    let output = cuedag(scratch.path(), &["project", "update"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(fs::symlink_metadata(pkg.join("universe.dagger.io"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(checkout.join("mine.cue").is_file());
    assert!(!checkout.join("go").exists());
    assert!(pkg.join("dagger.io/dagger/plan.cue").is_file());
}

#[test]
fn update_outside_a_project_fails_with_a_hint() {
    let scratch = Scratch::new();
    let output = cuedag(scratch.path(), &["project", "update"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("dagger project not found"), "{message}");
    assert!(message.contains("cuedag project init"), "{message}");
}

#[test]
fn update_of_a_third_party_package_is_refused() {
    let scratch = Scratch::new();
    assert!(cuedag(scratch.path(), &["project", "init"])
        .status
        .success());
    let output = cuedag(
        scratch.path(),
        &["project", "update", "github.com/org/repo@v1"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("project::third-party-packages"));
    assert!(!scratch.path().join("cue.mod/pkg/dagger.io").exists());
}

#[test]
fn info_shows_the_project_and_its_packages() {
    let scratch = Scratch::new();
    assert!(
        cuedag(scratch.path(), &["project", "init", "-n", "example.com/ci"])
            .status
            .success()
    );
    let plan_dir = scratch.path().join("ci");
    fs::create_dir_all(&plan_dir).unwrap();
    fs::write(plan_dir.join("build.cue"), "package ci\n").unwrap();

    let output = cuedag(scratch.path(), &["project", "info", "-p", "ci/build.cue"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let root = fs::canonicalize(scratch.path()).unwrap();
    assert!(
        text.contains(&format!("Current dagger project in: {}\n", root.display())),
        "{text}"
    );
    assert!(text.contains("Module: \"example.com/ci\"\n"), "{text}");
    assert!(
        text.contains("Package universe.dagger.io: 0.2.36 (embedded in cuedag)\n"),
        "{text}"
    );

    assert!(cuedag(scratch.path(), &["project", "update"])
        .status
        .success());
    let output = cuedag(&plan_dir, &["project", "info"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("Package dagger.io: 0.2.36 (vendored)\n"),
        "{text}"
    );
    assert!(
        text.contains("Package universe.dagger.io: 0.2.36 (vendored)\n"),
        "{text}"
    );
}
