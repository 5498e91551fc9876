//! The local backend's filesystem tasks, client reads and writes, and the
//! step cache, called directly with task requests (no CUE, no registry).

mod local_common;

use cuedag_evaluator::plan::{CuePath, FsRef, TaskValue};
use local_common::{listing, out, s, write, Harness};

#[tokio::test]
async fn client_read_filters_and_is_keyed_by_content() {
    let h = Harness::new();
    let src = h.work.path().join("src");
    write(&src, "main.go", "package main\n");
    write(&src, "greet/greet.go", "package greet\n");
    write(&src, "greet/greet_test.go", "package greet\n");
    write(&src, "go.mod", "module x\n");
    write(&src, "README.md", "docs\n");
    write(&src, "vendor/dep/dep.go", "package dep\n");
    write(&src, "sub/go.mod", "nested\n");

    let fs = h
        .read_dir("src", &["**/*.go", "go.mod"], &["vendor", "**/*_test.go"])
        .await;
    let written = h.write_dir(&fs, "out").await;
    assert_eq!(
        listing(&written),
        vec![
            "go.mod=module x\n",
            "greet/",
            "greet/greet.go=package greet\n",
            "main.go=package main\n",
        ]
    );

    // Same contents, new mtimes: same id. Changed contents: another id.
    let again = h
        .read_dir("src", &["**/*.go", "go.mod"], &["vendor", "**/*_test.go"])
        .await;
    assert_eq!(fs, again);
    write(&src, "README.md", "changed docs\n");
    let filtered_change = h
        .read_dir("src", &["**/*.go", "go.mod"], &["vendor", "**/*_test.go"])
        .await;
    assert_eq!(
        fs, filtered_change,
        "an excluded file must not change the id"
    );
    write(&src, "main.go", "package main // edited\n");
    let edited = h
        .read_dir("src", &["**/*.go", "go.mod"], &["vendor", "**/*_test.go"])
        .await;
    assert_ne!(fs, edited);

    let err = h
        .try_run(
            "ClientFilesystemRead",
            TaskValue::structure([
                ("path", s("nope")),
                (
                    "contents",
                    TaskValue::Declared(cuedag_evaluator::plan::Declared::new(
                        cuedag_evaluator::plan::DeclaredKind::Fs,
                    )),
                ),
            ]),
        )
        .await
        .unwrap_err();
    assert!(err.ends_with("nope\" does not exist"), "{err}");
}

#[tokio::test]
async fn client_write_merges_into_existing_output() {
    let h = Harness::new();
    write(h.work.path(), "src/a.txt", "new a\n");
    write(h.work.path(), "src/d/b.txt", "new b\n");
    write(h.work.path(), "output/a.txt", "old a\n");
    write(h.work.path(), "output/keep.txt", "kept\n");
    write(h.work.path(), "output/d/c.txt", "kept c\n");
    let fs = h.read_dir("src", &[], &[]).await;
    let written = h.write_dir(&fs, "output").await;
    assert_eq!(
        listing(&written),
        vec![
            "a.txt=new a\n",
            "d/",
            "d/b.txt=new b\n",
            "d/c.txt=kept c\n",
            "keep.txt=kept\n",
        ]
    );
    // No temp directory is left next to the output.
    let siblings: Vec<String> = std::fs::read_dir(h.work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".cuedag"))
        .collect();
    assert!(siblings.is_empty(), "{siblings:?}");

    // A write over a file fails and leaves it untouched.
    write(h.work.path(), "file", "plain\n");
    let err = h
        .try_run(
            "ClientFilesystemWrite",
            TaskValue::structure([("path", s("file")), ("contents", fs.clone())]),
        )
        .await
        .unwrap_err();
    assert!(err.contains("is not a directory"), "{err}");
    assert_eq!(
        std::fs::read_to_string(h.work.path().join("file")).unwrap(),
        "plain\n"
    );
}

#[tokio::test]
async fn mkdir_writefile_readfile_rm() {
    let h = Harness::new();
    let scratch = TaskValue::Fs(FsRef::Scratch);
    let dir = out(&h
        .run(
            "Mkdir",
            TaskValue::structure([
                ("input", scratch.clone()),
                ("path", s("/a/b/c")),
                ("permissions", TaskValue::Int(0o700)),
                ("parents", TaskValue::Bool(true)),
            ]),
        )
        .await);
    let err = h
        .try_run(
            "Mkdir",
            TaskValue::structure([
                ("input", dir.clone()),
                ("path", s("/x/y")),
                ("parents", TaskValue::Bool(false)),
            ]),
        )
        .await
        .unwrap_err();
    assert_eq!(err, "mkdir /x/y: no such file or directory");

    let file = out(&h
        .run(
            "WriteFile",
            TaskValue::structure([
                ("input", dir.clone()),
                ("path", s("/a/b/c/hello.txt")),
                ("contents", s("hello\n")),
                ("permissions", TaskValue::Int(0o640)),
            ]),
        )
        .await);
    let file2 = out(&h
        .run(
            "WriteFile",
            TaskValue::structure([
                ("input", file.clone()),
                ("path", s("/a/other.txt")),
                ("contents", s("other\n")),
            ]),
        )
        .await);
    let read = h
        .run(
            "ReadFile",
            TaskValue::structure([("input", file2.clone()), ("path", s("/a/b/c/hello.txt"))]),
        )
        .await;
    assert_eq!(read.get("contents"), Some(&s("hello\n")));
    let err = h
        .try_run(
            "ReadFile",
            TaskValue::structure([("input", file2.clone()), ("path", s("/missing"))]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "ReadFile /missing: open /missing: no such file or directory"
    );
    let err = h
        .try_run(
            "WriteFile",
            TaskValue::structure([
                ("input", scratch.clone()),
                ("path", s("/no/parent.txt")),
                ("contents", s("x")),
            ]),
        )
        .await
        .unwrap_err();
    assert!(err.contains("no such file or directory"), "{err}");

    let removed = out(&h
        .run(
            "Rm",
            TaskValue::structure([
                ("input", file2.clone()),
                ("path", s("/a/b/c/*.txt")),
                ("allowWildcard", TaskValue::Bool(true)),
            ]),
        )
        .await);
    let written = h.write_dir(&removed, "rm").await;
    assert_eq!(
        listing(&written),
        vec!["a/", "a/b/", "a/b/c/", "a/other.txt=other\n"]
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(written.join("a/b/c"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let err = h
        .try_run(
            "Rm",
            TaskValue::structure([("input", removed.clone()), ("path", s("/a/b/c/hello.txt"))]),
        )
        .await
        .unwrap_err();
    assert!(err.contains("no such file or directory"), "{err}");
}

#[tokio::test]
async fn copy_semantics() {
    let h = Harness::new();
    write(h.work.path(), "src/app/main.go", "main\n");
    write(h.work.path(), "src/app/util.go", "util\n");
    write(h.work.path(), "src/app/notes.md", "notes\n");
    write(h.work.path(), "src/single.txt", "single\n");
    write(h.work.path(), "base/etc/conf", "conf\n");
    let contents = h.read_dir("src", &[], &[]).await;
    let base = h.read_dir("base", &[], &[]).await;

    // A directory's contents into dest, with filters.
    let copied = out(&h
        .run(
            "Copy",
            TaskValue::structure([
                ("input", base.clone()),
                ("contents", contents.clone()),
                ("source", s("/app")),
                ("dest", s("/srv/app")),
                ("include", TaskValue::List(vec![s("*.go")])),
                ("exclude", TaskValue::List(vec![s("util.go")])),
            ]),
        )
        .await);
    assert_eq!(
        listing(&h.write_dir(&copied, "c1").await),
        vec![
            "etc/",
            "etc/conf=conf\n",
            "srv/",
            "srv/app/",
            "srv/app/main.go=main\n"
        ]
    );

    // A file into an existing directory, and to a new name.
    let into_dir = out(&h
        .run(
            "Copy",
            TaskValue::structure([
                ("input", base.clone()),
                ("contents", contents.clone()),
                ("source", s("/single.txt")),
                ("dest", s("/etc")),
            ]),
        )
        .await);
    assert_eq!(
        listing(&h.write_dir(&into_dir, "c2").await),
        vec!["etc/", "etc/conf=conf\n", "etc/single.txt=single\n"]
    );
    let renamed = out(&h
        .run(
            "Copy",
            TaskValue::structure([
                ("input", base.clone()),
                ("contents", contents.clone()),
                ("source", s("/single.txt")),
                ("dest", s("/renamed.txt")),
            ]),
        )
        .await);
    assert_eq!(
        listing(&h.write_dir(&renamed, "c3").await),
        vec!["etc/", "etc/conf=conf\n", "renamed.txt=single\n"]
    );

    // Subdir: a Copy into Scratch.
    let subdir = out(&h
        .run(
            "Copy",
            TaskValue::structure([
                ("input", TaskValue::Fs(FsRef::Scratch)),
                ("contents", contents.clone()),
                ("source", s("/app")),
                ("dest", s("/")),
            ]),
        )
        .await);
    assert_eq!(
        listing(&h.write_dir(&subdir, "c4").await),
        vec!["main.go=main\n", "notes.md=notes\n", "util.go=util\n"]
    );

    let err = h
        .try_run(
            "Copy",
            TaskValue::structure([
                ("input", base.clone()),
                ("contents", contents.clone()),
                ("source", s("/missing")),
                ("dest", s("/")),
            ]),
        )
        .await
        .unwrap_err();
    assert!(err.contains("no such file or directory"), "{err}");
}

#[tokio::test]
async fn merge_and_diff() {
    let h = Harness::new();
    write(h.work.path(), "one/a.txt", "a1\n");
    write(h.work.path(), "one/b.txt", "b1\n");
    write(h.work.path(), "two/a.txt", "a2\n");
    write(h.work.path(), "two/c.txt", "c2\n");
    let one = h.read_dir("one", &[], &[]).await;
    let two = h.read_dir("two", &[], &[]).await;
    let merged = out(&h
        .run(
            "Merge",
            TaskValue::structure([("inputs", TaskValue::List(vec![one.clone(), two.clone()]))]),
        )
        .await);
    assert_eq!(
        listing(&h.write_dir(&merged, "m").await),
        vec!["a.txt=a2\n", "b.txt=b1\n", "c.txt=c2\n"]
    );

    // Upper built on lower: only the new layer.
    let upper = out(&h
        .run(
            "WriteFile",
            TaskValue::structure([
                ("input", one.clone()),
                ("path", s("/new.txt")),
                ("contents", s("new\n")),
            ]),
        )
        .await);
    let diff = out(&h
        .run(
            "Diff",
            TaskValue::structure([("lower", one.clone()), ("upper", upper.clone())]),
        )
        .await);
    assert_eq!(
        listing(&h.write_dir(&diff, "d1").await),
        vec!["new.txt=new\n"]
    );

    // Unrelated stacks: a computed diff.
    let diff = out(&h
        .run(
            "Diff",
            TaskValue::structure([("lower", one.clone()), ("upper", merged.clone())]),
        )
        .await);
    assert_eq!(
        listing(&h.write_dir(&diff, "d2").await),
        vec!["a.txt=a2\n", "c.txt=c2\n"]
    );
}

#[tokio::test]
async fn steps_are_cached_across_runs_unless_no_cache() {
    let mut h = Harness::new();
    let inputs = TaskValue::structure([
        ("input", TaskValue::Fs(FsRef::Scratch)),
        ("path", s("/f")),
        ("contents", s("x")),
    ]);
    let first = h.run("WriteFile", inputs.clone()).await;
    assert!(!h.logs().iter().any(|line| line == "CACHED"));
    let mut h = h.rerun();
    let second = h.run("WriteFile", inputs.clone()).await;
    assert_eq!(first, second);
    assert_eq!(h.logs(), vec!["CACHED".to_string()]);
    h.no_cache();
    let third = h.run("WriteFile", inputs).await;
    assert_eq!(first, third);
    assert!(h.logs().is_empty());

    // A step whose layers were pruned is a miss, not an error.
    let report = cuedag_backends::local::prune(h.store.path(), 0).unwrap();
    assert!(report.removed > 0 && report.kept_bytes == 0, "{report:?}");
    let mut h = h.rerun();
    let fourth = h
        .run(
            "WriteFile",
            TaskValue::structure([
                ("input", TaskValue::Fs(FsRef::Scratch)),
                ("path", s("/f")),
                ("contents", s("x")),
            ]),
        )
        .await;
    assert_eq!(first, fourth);
    assert!(h.logs().is_empty());
}

#[test]
fn sizes_parse() {
    use cuedag_backends::local::parse_size;
    assert_eq!(parse_size("1024").unwrap(), 1024);
    assert_eq!(parse_size("10GB").unwrap(), 10_000_000_000);
    assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
    assert!(parse_size("ten").is_err());
    assert!(parse_size("3parsecs").is_err());
}

#[tokio::test]
async fn dockerfile_needs_buildkit() {
    let h = Harness::new();
    let err = h
        .try_run(
            "Dockerfile",
            TaskValue::structure([("source", TaskValue::Fs(FsRef::Scratch))]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "`core.#Dockerfile` needs the BuildKit backend (not available yet)"
    );
}

#[tokio::test]
async fn git_pull_from_a_local_repository() {
    let h = Harness::new();
    let repo = h.work.path().join("repo");
    write(&repo, "README", "v1\n");
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}: {status:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    git(&["tag", "v1"]);
    write(&repo, "README", "v2\n");
    git(&["commit", "-q", "-am", "two"]);
    let remote = format!("file://{}", repo.display());
    for (reference, expected) in [("v1", "README=v1\n"), ("main", "README=v2\n")] {
        let pulled = h
            .run(
                "GitPull",
                TaskValue::structure([
                    ("remote", s(&remote)),
                    ("ref", s(reference)),
                    ("keepGitDir", TaskValue::Bool(false)),
                ]),
            )
            .await;
        let written = h
            .write_dir(&out(&pulled), &format!("git-{reference}"))
            .await;
        assert_eq!(listing(&written), vec![expected.to_string()]);
    }
    let err = h
        .try_run(
            "GitPull",
            TaskValue::structure([("remote", s(&remote)), ("ref", s("no-such-ref"))]),
        )
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!("GitPull {remote}@no-such-ref:")),
        "{err}"
    );
}

#[tokio::test]
async fn export_writes_an_image_archive() {
    let h = Harness::new();
    write(h.work.path(), "img/app/hello.txt", "hi\n");
    let fs = h.read_dir("img", &[], &[]).await;
    let exported = h
        .run(
            "Export",
            TaskValue::structure([
                ("input", fs),
                (
                    "config",
                    TaskValue::structure([("cmd", TaskValue::List(vec![s("/app")]))]),
                ),
                ("tag", s("example.com/app:v1")),
                ("type", s("oci")),
                ("path", s("/out/image.tar")),
            ]),
        )
        .await;
    let image_id = exported.get("imageID").and_then(TaskValue::as_str).unwrap();
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    let written = h.write_dir(&out(&exported), "exported").await;
    let tar = std::fs::File::open(written.join("out/image.tar")).unwrap();
    let names: Vec<String> = tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(names.contains(&"index.json".to_string()), "{names:?}");
    assert!(names.contains(&"oci-layout".to_string()), "{names:?}");
    let err = h
        .try_run(
            "Export",
            TaskValue::structure([
                ("input", TaskValue::Fs(FsRef::Scratch)),
                ("tag", s("x:y")),
                ("type", s("zip")),
            ]),
        )
        .await
        .unwrap_err();
    assert_eq!(err, "unsupported export type");
}

#[tokio::test]
async fn source_and_new_secret() {
    let h = Harness::new();
    write(h.work.path(), "files/token.txt", "  t0ken\n");
    write(h.work.path(), "files/skip.md", "x");
    let source = h
        .run(
            "Source",
            TaskValue::structure([
                ("path", s("./files")),
                ("include", TaskValue::List(vec![s("*.txt")])),
                ("exclude", TaskValue::List(vec![])),
            ]),
        )
        .await;
    assert_eq!(
        listing(&h.write_dir(&out(&source), "src-out").await),
        vec!["token.txt=  t0ken\n"]
    );
    let err = h
        .try_run("Source", TaskValue::structure([("path", s("../outside"))]))
        .await
        .unwrap_err();
    assert_eq!(err, "path \"../outside\" is not relative");

    let secret = h
        .run(
            "NewSecret",
            TaskValue::structure([
                ("input", out(&source)),
                ("path", s("/token.txt")),
                ("trimSpace", TaskValue::Bool(true)),
            ]),
        )
        .await;
    let Some(TaskValue::Secret(id)) = secret.get("output") else {
        panic!("{secret:?}")
    };
    assert_eq!(h.context.secrets.get(id).unwrap().expose(), "t0ken");
}

/// `core.#Source` inside universe packages reads the files the package
/// ships (`netlify/deploy.sh`, `aws/scripts/install.sh`) from the embedded
/// copy written into the store, whatever the working directory holds.
#[tokio::test]
async fn universe_sources_read_the_files_shipped_with_the_package() {
    use cuedag_backends::TaskRequest;
    use cuedag_evaluator::plan::Plan;
    use cuedag_evaluator::{LoadOptions, MemLoader};

    let mut loader = MemLoader::default();
    loader.add(
        "plan/main.cue",
        r#"
package main

import (
	"dagger.io/dagger"
	"universe.dagger.io/aws"
	"universe.dagger.io/netlify"
)

dagger.#Plan & {
	actions: {
		deploy: netlify.#Deploy & {
			contents: dagger.#Scratch
			site:     "s"
			token:    _token
		}
		_token: dagger.#Secret
		cli: aws.#Build
	}
}
"#,
    );
    let options = LoadOptions {
        embedded: cuedag_universe::files()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect(),
        overlays: Vec::new(),
    };
    let mut plan = Plan::load(&loader, &["plan".to_string()], &options).unwrap();
    let sources: Vec<_> = plan
        .tasks()
        .iter()
        .filter(|task| task.task_type == "Source")
        .map(|task| task.path.clone())
        .collect();
    assert_eq!(sources.len(), 2, "{sources:?}");

    let h = Harness::new();
    let mut shipped = Vec::new();
    let first = sources[0].clone();
    for path in sources {
        let origin = plan.field_origin(&path, "path");
        assert!(
            origin
                .as_ref()
                .is_some_and(|o| o.file.starts_with("<embedded>/universe.dagger.io/")),
            "{origin:?}"
        );
        let inputs = plan.task_inputs(&path).unwrap();
        let output = h
            .try_run_request(TaskRequest {
                path: path.clone(),
                task_type: "Source".into(),
                inputs,
                origin,
            })
            .await
            .unwrap();
        let dir = h
            .write_dir(&out(&output), &format!("out-{}", shipped.len()))
            .await;
        shipped.extend(
            listing(&dir)
                .into_iter()
                .map(|entry| entry.split('=').next().unwrap_or_default().to_string()),
        );
    }
    shipped.sort();
    assert_eq!(shipped, vec!["deploy.sh", "install.sh"]);
    let install = std::fs::read_dir(h.work.path().join("out-0"))
        .unwrap()
        .chain(std::fs::read_dir(h.work.path().join("out-1")).unwrap())
        .map(|entry| entry.unwrap().path())
        .find(|path| path.ends_with("install.sh"))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(install).unwrap().permissions().mode() & 0o777,
        0o755
    );

    // A path that the declaring file's directory lacks is a clear error.
    let err = h
        .try_run_request(TaskRequest {
            path: CuePath::new(["actions", "missing"]),
            task_type: "Source".into(),
            inputs: TaskValue::structure([("path", s("nope"))]),
            origin: plan.field_origin(&first, "path"),
        })
        .await
        .unwrap_err();
    assert!(
        err.starts_with("path \"nope\" does not exist (relative to the directory of <embedded>/universe.dagger.io/"),
        "{err}"
    );
}
