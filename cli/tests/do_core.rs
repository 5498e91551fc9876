//! Every core task through `cuedag do` on the local backend, with its
//! error cases: plans under `fixtures/plans/core/` or written by the test.
//!
//! Tests that pull images need what `.ci/run` sets up: root, bubblewrap and
//! `scripts/services up` (registry + stand-in images) with its settings in
//! the environment (`source .ci/state/env`). Without them they fail and say
//! so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

/// A project directory with a store of its own.
struct Project {
    dir: tempfile::TempDir,
    store: PathBuf,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join(".store");
        Project { dir, store }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `cuedag ARGS` run in `rel` below the project.
    fn run_at(&self, rel: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let store = self.store.to_string_lossy().into_owned();
        let mut all = vec![("CUEDAG_STORE", store.as_str())];
        all.extend_from_slice(env);
        let dir = self.path().join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        run_in_env(&dir, args, &all)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_at(".", args, &[])
    }
}

/// Fails, saying how to start them, when the registry and stand-in images
/// are not configured.
fn json_out(output: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|error| panic!("{error}: {}", text(output)))
}

/// Asserts a failed run whose stderr contains every one of `needles`.
fn assert_fails_with(output: &Output, needles: &[&str]) {
    assert_eq!(output.status.code(), Some(1), "{}", text(output));
    let err = stderr(output);
    for needle in needles {
        assert!(
            err.contains(needle),
            "missing {needle:?} in:\n{}",
            text(output)
        );
    }
}

/// Relative paths and contents of the files under `dir` (`a/b=contents`).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let file_type = entry.file_type().unwrap();
            if file_type.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(entry.path());
            } else if file_type.is_symlink() {
                let target = std::fs::read_link(entry.path()).unwrap();
                out.push(format!("{rel}->{}", target.display()));
            } else {
                let contents = std::fs::read(entry.path()).unwrap();
                out.push(format!("{rel}={}", String::from_utf8_lossy(&contents)));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn source_is_relative_to_the_plan_file_not_the_working_directory() {
    let project = Project::new();
    std::fs::create_dir_all(project.path().join("plans/app")).unwrap();
    copy_dir(
        &fixtures().join("plans/source/app"),
        &project.path().join("plans/app"),
    );
    // Run from a sibling directory, pointing at the plan with -p.
    let run = project.run_at("elsewhere", &["do", "-p", "../plans/app", "files"], &[]);
    assert_ok(&run);
    assert_eq!(
        listing(&project.path().join("elsewhere/out")),
        vec!["a.txt=alpha\n", "nested/", "nested/c.txt=beta\n"]
    );

    let missing = project.run_at("elsewhere", &["do", "-p", "../plans/app", "missing"], &[]);
    assert_fails_with(
        &missing,
        &[
            "actions.missing",
            "path \"nope\" does not exist (relative to the directory of ../plans/app/plan.cue:19:",
        ],
    );
    assert!(
        !stderr(&missing).contains("computing"),
        "{}",
        text(&missing)
    );
    let outside = project.run_at("elsewhere", &["do", "-p", "../plans/app", "outside"], &[]);
    assert_fails_with(
        &outside,
        &["actions.outside", "path \"../elsewhere\" is not relative (relative to the directory of ../plans/app/plan.cue:23:"],
    );
}

/// Universe packages that ship files (`netlify/deploy.sh`,
/// `aws/scripts/install.sh`) pass the pre-run check of their `#Source`
/// paths, which are resolved against the embedded package directories.
#[test]
fn universe_sources_pass_the_pre_run_check() {
    let project = Project::new();
    project.write(
        "plan.cue",
        r#"package main

import (
	"dagger.io/dagger"
	"universe.dagger.io/aws"
	"universe.dagger.io/netlify"
)

dagger.#Plan & {
	client: env: NETLIFY_TOKEN: dagger.#Secret
	actions: {
		deploy: netlify.#Deploy & {
			contents: dagger.#Scratch
			site:     "example"
			token:    client.env.NETLIFY_TOKEN
		}
		cli: aws.#Build
	}
}
"#,
    );
    for action in ["deploy", "cli"] {
        let run = project.run(&["do", action, "--dry-run"]);
        assert_ok(&run);
        assert!(
            stdout(&run).contains("._scripts"),
            "{action}: {}",
            text(&run)
        );
    }
}

#[test]
fn unset_list_and_struct_inputs_are_reported_before_anything_runs() {
    let project = Project::new();
    project.write(
        "plan.cue",
        r#"package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	actions: {
		_img: core.#Pull & {source: "alpine:3.15"}
		run: core.#Exec & {
			input: _img.output
			args: ["echo", string, "a" | "b"]
			mounts: m: {dest: string, contents: _img.output}
		}
		merge: core.#Merge & {inputs: [_img.output, _fs]}
		_fs: dagger.#FS
	}
}
"#,
    );
    let run = project.run(&["do", "run"]);
    assert_fails_with(
        &run,
        &[
            "\"actions.run.args.1\" is not set (incomplete value string)\n    ./plan.cue:13:19",
            "\"actions.run.args.2\" is not set (incomplete value \"a\" | \"b\")\n    ./plan.cue:13:",
            "\"actions.run.mounts.m.dest\" is not set (incomplete value string)\n    ./plan.cue:14:",
            "[P003]",
        ],
    );
    assert!(!stderr(&run).contains("computing"), "{}", text(&run));
    let merge = project.run(&["do", "merge"]);
    assert_fails_with(
        &merge,
        &["\"actions._fs\" is not set (dagger.#FS is not set)\n    ./plan.cue:17:3"],
    );
    assert!(!stderr(&merge).contains("computing"), "{}", text(&merge));
}

const FS_PLAN: &str = r#"package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	client: filesystem: {
		"./src": read: {
			contents: dagger.#FS
			exclude: ["skip"]
		}
		"./out/copy": write: contents:  actions.copy.output
		"./out/file": write: contents:  actions.file.output
		"./out/tree": write: contents:  actions.tree.output
		"./out/merge": write: contents: actions.merge.output
		"./out/diff": write: contents:  actions.diff.output
		"./out/sub": write: contents:   actions.sub.output
	}
	actions: {
		_src: client.filesystem."./src".read.contents
		// The text files below src/, except b.txt, into /app.
		copy: core.#Copy & {
			input:    dagger.#Scratch
			contents: _src
			dest:     "/app"
			include: ["**/*.txt"]
			exclude: ["b.txt"]
		}
		// One file copied into an existing directory.
		file: core.#Copy & {
			input:    _base.output
			contents: _src
			source:   "/a.txt"
			dest:     "/etc/"
		}
		_base: core.#Mkdir & {input: dagger.#Scratch, path: "/etc"}
		// Mkdir, WriteFile, Rm and ReadFile.
		tree: {
			_dir: core.#Mkdir & {input: dagger.#Scratch, path: "/a/b/c", permissions: 0o700}
			_hello: core.#WriteFile & {
				input:       _dir.output
				path:        "/a/b/c/hello.txt"
				contents:    "hello"
				permissions: 0o600
			}
			_extra: core.#WriteFile & {input: _hello.output, path: "/a/gone-1.log", contents: "x"}
			_more: core.#WriteFile & {input: _extra.output, path: "/a/gone-2.log", contents: "y"}
			_rm: core.#Rm & {input: _more.output, path: "/a/*.log"}
			_read: core.#ReadFile & {input: _rm.output, path: "/a/b/c/hello.txt"}
			output:   _rm.output
			contents: _read.contents
		}
		_one: core.#WriteFile & {input: dagger.#Scratch, path: "/x", contents: "one"}
		_two: core.#WriteFile & {input: _one.output, path: "/only-two", contents: "2"}
		_three: core.#WriteFile & {input: dagger.#Scratch, path: "/x", contents: "three"}
		// Later inputs win.
		merge: core.#Merge & {inputs: [_two.output, _three.output]}
		// What _two added to _one.
		diff: core.#Diff & {lower: _one.output, upper: _two.output}
		// A sub-directory as a root.
		sub: core.#Subdir & {input: tree.output, path: "/a/b"}

		badread: core.#ReadFile & {input: dagger.#Scratch, path: "/nope.txt"}
		badrm: core.#Rm & {input: dagger.#Scratch, path: "/nope"}
		badmkdir: core.#Mkdir & {input: dagger.#Scratch, path: "/x/y", parents: false}
		badcopy: core.#Copy & {input: dagger.#Scratch, contents: _src, source: "/missing"}
		badsub: core.#Subdir & {input: dagger.#Scratch, path: "/missing"}
	}
}
"#;

#[test]
fn filesystem_tasks_and_their_errors() {
    let project = Project::new();
    project.write("plan.cue", FS_PLAN);
    project.write("src/a.txt", "a\n");
    project.write("src/b.txt", "b\n");
    project.write("src/deep/c.txt", "c\n");
    project.write("src/deep/d.md", "d\n");
    project.write("src/skip/e.txt", "e\n");

    let copy = project.run(&["do", "copy"]);
    assert_ok(&copy);
    assert_eq!(
        listing(&project.path().join("out/copy")),
        vec!["app/", "app/a.txt=a\n", "app/deep/", "app/deep/c.txt=c\n"]
    );
    let file = project.run(&["do", "file"]);
    assert_ok(&file);
    assert_eq!(
        listing(&project.path().join("out/file")),
        vec!["etc/", "etc/a.txt=a\n"]
    );

    let tree = project.run(&["do", "tree", "--output-format", "json"]);
    assert_ok(&tree);
    let printed: serde_json::Value = serde_json::from_str(&stdout(&tree)).unwrap();
    assert_eq!(printed["contents"], "hello", "{}", text(&tree));
    let out = project.path().join("out/tree");
    assert_eq!(
        listing(&out),
        vec!["a/", "a/b/", "a/b/c/", "a/b/c/hello.txt=hello"]
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode("a/b/c"), mode("a/b/c/hello.txt")), (0o700, 0o600));

    assert_ok(&project.run(&["do", "merge"]));
    assert_eq!(
        listing(&project.path().join("out/merge")),
        vec!["only-two=2", "x=three"]
    );
    assert_ok(&project.run(&["do", "diff"]));
    assert_eq!(
        listing(&project.path().join("out/diff")),
        vec!["only-two=2"]
    );
    assert_ok(&project.run(&["do", "sub"]));
    assert_eq!(
        listing(&project.path().join("out/sub")),
        vec!["c/", "c/hello.txt=hello"]
    );

    for (action, needles) in [
        ("badread", &["actions.badread", "ReadFile /nope.txt"][..]),
        ("badrm", &["actions.badrm", "/nope"][..]),
        (
            "badmkdir",
            &["actions.badmkdir", "mkdir /x/y: no such file or directory"][..],
        ),
        ("badcopy", &["actions.badcopy", "/missing"][..]),
        ("badsub", &["actions.badsub", "/missing"][..]),
    ] {
        let run = project.run(&["do", action]);
        assert_fails_with(&run, needles);
        assert!(
            stderr(&run).contains("failed to execute plan: actions."),
            "{}",
            text(&run)
        );
        // Located at the action in the plan (also for the task hidden
        // inside `core.#Subdir`).
        let line = FS_PLAN
            .lines()
            .position(|line| line.trim_start().starts_with(&format!("{action}: ")))
            .unwrap()
            + 1;
        assert!(
            stderr(&run).contains(&format!("\n    at ./plan.cue:{line}:3")),
            "{}",
            text(&run)
        );
    }
}

const IMAGE_PLAN: &str = r#"package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	client: filesystem: "./out/export": write: contents: actions.export.output
	actions: {
		params: pinned: string | *""
		_alpine: core.#Pull & {source: "alpine:3.15"}
		// Pull by tag.
		pull: {
			_pull:  core.#Pull & {source: "alpine:3.15"}
			digest: _pull.digest
			path:   _pull.config.env.PATH
		}
		// Pull by digest only.
		pinned: {
			_pull:  core.#Pull & {source: "alpine@\(params.pinned)"}
			digest: _pull.digest
		}
		badref: core.#Pull & {source: "Not A Ref!"}
		// exit, user by name (from /etc/passwd), workdir, env and hosts.
		run: {
			_users: core.#WriteFile & {
				input:    _alpine.output
				path:     "/etc/passwd"
				contents: "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n"
			}
			_home: core.#Mkdir & {input: _users.output, path: "/home/app", permissions: 0o777}
			_exec: core.#Exec & {
				input:   _home.output
				user:    "app"
				workdir: "/home/app"
				env: GREETING: "hi"
				hosts: "db.internal": "10.1.2.3"
				args: ["sh", "-c", "echo $(id -u):$(id -g):$(pwd):$GREETING:$(awk '/db.internal/ {print $1}' /etc/hosts) > out.txt"]
			}
			_read: core.#ReadFile & {input: _exec.output, path: "/home/app/out.txt"}
			result: _read.contents
		}
		nouser: core.#Exec & {
			input: _alpine.output
			user:  "ghost"
			args: ["true"]
		}
		fails: core.#Exec & {
			input: _alpine.output
			args: ["sh", "-c", "echo to-stderr-before-failing >&2; exit 3"]
		}
		// Start, signal, stop.
		service: {
			_start: core.#Start & {
				input: _alpine.output
				args: ["sleep", "300"]
			}
			_signal: core.#SendSignal & {input: _start, signal: core.#SIGTERM}
			_stop: core.#Stop & {
				input:   _start
				timeout: 10000000000
				_after:  _signal
			}
			exit: _stop.exit
		}
		// Image tarballs.
		export: {
			_docker: core.#Export & {
				input:  _alpine.output
				config: _alpine.config
				tag:    "example.com/e2e:docker"
				path:   "/docker.tar"
			}
			_oci: core.#Export & {
				input:  _alpine.output
				config: _alpine.config
				tag:    "example.com/e2e:oci"
				type:   "oci"
				path:   "/oci.tar"
			}
			_merge: core.#Merge & {inputs: [_docker.output, _oci.output]}
			output:  _merge.output
			imageID: _docker.imageID
		}
		badexport: core.#Export & {
			input:  _alpine.output
			config: _alpine.config
			tag:    "Bad Tag"
		}
		dockerfile: core.#Dockerfile & {
			source: dagger.#Scratch
			dockerfile: contents: "FROM alpine:3.15\n"
		}
	}
}
"#;

#[test]
fn image_exec_service_and_export_tasks() {
    require_services();
    let project = Project::new();
    project.write("plan.cue", IMAGE_PLAN);

    let pull = project.run(&["do", "pull", "--output-format", "json"]);
    assert_ok(&pull);
    let printed = json_out(&pull);
    let digest = printed["digest"].as_str().unwrap().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert!(
        printed["path"].as_str().unwrap().contains("/bin"),
        "{printed}"
    );

    // A digest-pinned reference without a tag is pulled by digest only.
    let with = format!("actions: params: pinned: \"{digest}\"");
    let pinned = project.run(&["do", "pinned", "--output-format", "json", "--with", &with]);
    assert_ok(&pinned);
    assert_eq!(json_out(&pinned)["digest"], digest.as_str());
    let bogus = format!("sha256:{}", "0".repeat(64));
    let with = format!("actions: params: pinned: \"{bogus}\"");
    let missing = project.run(&["do", "pinned", "--with", &with]);
    assert_fails_with(&missing, &["actions.pinned._pull", &bogus]);
    assert!(
        !stderr(&missing).contains("using tag"),
        "{}",
        text(&missing)
    );
    assert_fails_with(
        &project.run(&["do", "badref"]),
        &["actions.badref", "failed to parse ref Not A Ref!"],
    );

    let run = project.run(&["do", "run", "--output-format", "json"]);
    assert_ok(&run);
    assert_eq!(
        json_out(&run)["result"],
        "1234:2345:/home/app:hi:10.1.2.3\n"
    );
    assert_fails_with(
        &project.run(&["do", "nouser"]),
        &["actions.nouser", "ghost"],
    );
    let fails = project.run(&["do", "fails"]);
    assert_fails_with(
        &fails,
        &["actions.fails", "to-stderr-before-failing", "exit code: 3"],
    );

    let service = project.run(&["do", "service", "--output-format", "json"]);
    assert_ok(&service);
    // Killed by SIGTERM (not by the SIGKILL of the stop timeout).
    assert_eq!(json_out(&service)["exit"], 143, "{}", text(&service));

    let export = project.run(&["do", "export", "--output-format", "json"]);
    assert_ok(&export);
    let image_id = json_out(&export)["imageID"].as_str().unwrap().to_string();
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    let tar_list = |name: &str| {
        let output = std::process::Command::new("tar")
            .arg("-tf")
            .arg(project.path().join("out/export").join(name))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        stdout(&output)
    };
    let docker = tar_list("docker.tar");
    assert!(docker.lines().any(|l| l == "manifest.json"), "{docker}");
    let oci = tar_list("oci.tar");
    assert!(oci.lines().any(|l| l == "oci-layout"), "{oci}");
    assert!(oci.lines().any(|l| l == "index.json"), "{oci}");
    assert_fails_with(
        &project.run(&["do", "badexport"]),
        &["actions.badexport", "failed to parse ref Bad Tag"],
    );

    assert_fails_with(
        &project.run(&["do", "dockerfile"]),
        &["actions.dockerfile", "needs the BuildKit backend"],
    );
}

const REGISTRY_PLAN: &str = r#"package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	actions: {
		params: {
			dest:  string | *""
			nonce: string | *""
			mode:  *"default" | "forcePull" | "preferLocal"
		}
		_alpine: core.#Pull & {source: "alpine:3.15"}
		// A pull with the chosen resolve mode.
		mode: {
			_pull: core.#Pull & {
				source:      "alpine:3.15"
				resolveMode: params.mode
			}
			digest: _pull.digest
		}
		// Push an image, pull it back by the pushed reference.
		push: {
			_file: core.#WriteFile & {
				input:    _alpine.output
				path:     "/hello.txt"
				contents: params.nonce
			}
			_push: core.#Push & {
				dest:  params.dest
				input: _file.output
				config: {
					env: GREETING: "hi"
					cmd: ["cat", "/hello.txt"]
				}
			}
			_pull: core.#Pull & {source: _push.result}
			_read: core.#ReadFile & {input: _pull.output, path: "/hello.txt"}
			result:   _push.result
			digest:   _pull.digest
			contents: _read.contents
			greeting: _pull.config.env.GREETING
		}
		badpush: core.#Push & {
			dest:  "127.0.0.1:1/nowhere/x:y"
			input: _alpine.output
			config: {}
		}
	}
}
"#;

#[test]
fn push_then_pull_round_trip_and_resolve_modes() {
    let registry = require_services();
    let project = Project::new();
    project.write("plan.cue", REGISTRY_PLAN);
    let nonce = unique("core");
    let dest = format!("{registry}/cuedag-test/core-e2e:t{nonce}");
    let with = format!("actions: params: {{dest: \"{dest}\", nonce: \"{nonce}\"}}");
    let push = project.run(&["do", "push", "--output-format", "json", "--with", &with]);
    assert_ok(&push);
    let printed = json_out(&push);
    let result = printed["result"].as_str().unwrap();
    let digest = printed["digest"].as_str().unwrap();
    assert_eq!(
        result,
        format!("{registry}/cuedag-test/core-e2e@{digest}"),
        "{printed}"
    );
    assert_eq!(printed["contents"], nonce.as_str());
    assert_eq!(printed["greeting"], "hi");
    // The registry serves the pushed manifest under the tag too.
    let tag = dest.rsplit(':').next().unwrap();
    let manifest = std::process::Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!(
            "http://{registry}/v2/cuedag-test/core-e2e/manifests/{tag}"
        ))
        .args(["-H", "Accept: application/vnd.oci.image.manifest.v1+json"])
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&manifest), "200", "{}", text(&manifest));

    assert_fails_with(
        &project.run(&["do", "badpush"]),
        &["actions.badpush", "127.0.0.1:1"],
    );

    // Resolve modes, with every registry unreachable after a first pull.
    assert_ok(&project.run(&["do", "mode"]));
    let offline = [
        ("CUEDAG_REGISTRY_MIRRORS", "docker.io=http://127.0.0.1:1"),
        ("CUEDAG_OFFLINE", "1"),
    ];
    let mode = |mode: &str| {
        let with = format!("actions: params: mode: \"{mode}\"");
        project.run_at(".", &["do", "mode", "--with", &with], &offline)
    };
    let prefer = mode("preferLocal");
    assert_ok(&prefer);
    assert!(!stderr(&prefer).contains("WARN"), "{}", text(&prefer));
    let default = mode("default");
    assert_ok(&default);
    assert!(
        stderr(&default).contains("registry unreachable; using the image `docker.io/library/alpine:3.15` recorded in the store"),
        "{}",
        text(&default)
    );
    let forced = mode("forcePull");
    assert_fails_with(&forced, &["actions.mode._pull", "127.0.0.1:1"]);
}

fn mounts_plan(socket: &str, cache_id: &str) -> String {
    r#"package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	client: {
		env: TOKEN: dagger.#Secret
		network: "unix://SOCKET": connect: dagger.#Socket
		network: "unix:///nonexistent/cuedag.sock": connect: dagger.#Socket
	}
	actions: {
		_alpine: core.#Pull & {source: "alpine:3.15"}
		_sub: core.#Mkdir & {input: dagger.#Scratch, path: "/sub"}
		_data: core.#WriteFile & {input: _sub.output, path: "/sub/data.txt", contents: "from-fs"}
		// Every mount kind but cache.
		mounts: {
			_exec: core.#Exec & {
				input: _alpine.output
				env: TOKEN: client.env.TOKEN
				mounts: {
					data: {dest: "/data", contents: _data.output, source: "/sub", ro: true}
					rw: {dest: "/rw", contents: _data.output}
					file: {dest: "/etc/app.conf", contents: "key=value", permissions: 0o600}
					tmp: {dest: "/scratch", contents: core.#TempDir}
					secret: {dest: "/run/secrets/token", contents: client.env.TOKEN}
					socket: {dest: "/run/app.sock", contents: client.network."unix://SOCKET".connect}
				}
				args: ["sh", "-c", """
					set -e
					echo "token is $TOKEN"
					{
						cat /data/data.txt; echo
						if touch /data/new 2>/dev/null; then echo data-rw; else echo data-ro; fi
						touch /rw/new && echo rw-ok
						echo "$(cat /etc/app.conf) $(stat -c %a /etc/app.conf)"
						touch /scratch/x && echo tmp-ok
						test "$(cat /run/secrets/token)" = "$TOKEN" && echo secret-ok
						stat -c %a /run/secrets/token
						test -S /run/app.sock && echo socket-ok
					} > /result.txt
					"""]
			}
			_read: core.#ReadFile & {input: _exec.output, path: "/result.txt"}
			result: _read.contents
		}
		// Mounted paths are not part of the output.
		tmpgone: core.#ReadFile & {input: mounts._exec.output, path: "/scratch/x"}
		rwgone: core.#ReadFile & {input: mounts._exec.output, path: "/rw/new"}
		// Cache mounts, one per sharing mode, kept between runs; two
		// execs share the locked one in one run.
		cache: {
			_shared: core.#Exec & {
				input:  _alpine.output
				always: true
				mounts: c: {dest: "/c", contents: core.#CacheDir & {id: "CACHE-shared"}}
				args: ["sh", "-c", "echo x >> /c/log; wc -l < /c/log > /count"]
			}
			_private: core.#Exec & {
				input:  _alpine.output
				always: true
				mounts: c: {dest: "/c", contents: core.#CacheDir & {id: "CACHE-private", concurrency: "private"}}
				args: ["sh", "-c", "echo x >> /c/log; wc -l < /c/log > /count"]
			}
			_locked1: core.#Exec & {
				input:  _alpine.output
				always: true
				mounts: c: {dest: "/c", contents: core.#CacheDir & {id: "CACHE-locked", concurrency: "locked"}}
				args: ["sh", "-c", "echo x >> /c/log"]
			}
			_locked2: core.#Exec & {
				input:  _alpine.output
				always: true
				mounts: c: {dest: "/c", contents: core.#CacheDir & {id: "CACHE-locked", concurrency: "locked"}}
				args: ["sh", "-c", "echo x >> /c/log"]
			}
			_count: core.#Exec & {
				input:  _alpine.output
				always: true
				env: AFTER: "\(_locked1.exit)\(_locked2.exit)"
				mounts: c: {dest: "/c", contents: core.#CacheDir & {id: "CACHE-locked", concurrency: "locked"}}
				args: ["sh", "-c", "wc -l < /c/log > /count"]
			}
			_s: core.#ReadFile & {input: _shared.output, path: "/count"}
			_p: core.#ReadFile & {input: _private.output, path: "/count"}
			_l: core.#ReadFile & {input: _count.output, path: "/count"}
			shared:  _s.contents
			private: _p.contents
			locked:  _l.contents
		}
		nosock: core.#Exec & {
			input: _alpine.output
			mounts: s: {dest: "/s", contents: client.network."unix:///nonexistent/cuedag.sock".connect}
			args: ["true"]
		}
	}
}
"#
    .replace("SOCKET", socket)
    .replace("CACHE", cache_id)
}

#[test]
fn exec_mounts_and_secrets() {
    require_services();
    let project = Project::new();
    let socket_path = project.path().join("app.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let nonce = unique("core");
    project.write(
        "plan.cue",
        &mounts_plan(&socket_path.to_string_lossy(), &format!("e2e-{nonce}")),
    );
    let secret = format!("s3cr3t-{nonce}");
    let env = [("TOKEN", secret.as_str())];

    let run = project.run_at(".", &["do", "mounts", "--output-format", "json"], &env);
    assert_ok(&run);
    assert_eq!(
        json_out(&run)["result"],
        "from-fs\ndata-ro\nrw-ok\nkey=value 600\ntmp-ok\nsecret-ok\n400\nsocket-ok\n"
    );
    assert!(stderr(&run).contains("token is ***"), "{}", text(&run));
    assert_fails_with(
        &project.run_at(".", &["do", "tmpgone"], &env),
        &["actions.tmpgone", "/scratch/x"],
    );
    assert_fails_with(
        &project.run_at(".", &["do", "rwgone"], &env),
        &["actions.rwgone", "/rw/new"],
    );

    // The secret is in no log and nowhere in the store.
    let json_log = project.run_at(".", &["do", "mounts", "--log-format", "json"], &env);
    assert_ok(&json_log);
    for output in [&run, &json_log] {
        assert!(!text(output).contains(&secret), "{}", text(output));
    }
    let grep = std::process::Command::new("grep")
        .args(["-r", "-l", "-a", "-F", &secret])
        .arg(&project.store)
        .output()
        .unwrap();
    assert_eq!(
        grep.status.code(),
        Some(1),
        "secret found in the store:\n{}",
        text(&grep)
    );

    // The debugging record of execs (`benches/seed.sh`) skips execs with
    // secrets and keeps the others' argv.
    let specs = project.path().join("specs.jsonl");
    let specs_text = specs.to_string_lossy().into_owned();
    let recorded = [
        ("TOKEN", secret.as_str()),
        ("CUEDAG_DEBUG_EXEC_SPECS", &specs_text),
    ];
    assert_ok(&project.run_at(".", &["do", "mounts", "--no-cache"], &recorded));
    assert!(!specs.exists(), "an exec with secrets was recorded");

    for round in 1..=2 {
        let cache = project.run_at(
            ".",
            &["do", "cache", "--output-format", "json"],
            if round == 1 { &recorded[..] } else { &env[..] },
        );
        assert_ok(&cache);
        let printed = json_out(&cache);
        let count = |name: &str| printed[name].as_str().unwrap().trim().to_string();
        assert_eq!(count("shared"), round.to_string(), "{printed}");
        assert_eq!(count("private"), round.to_string(), "{printed}");
        assert_eq!(count("locked"), (2 * round).to_string(), "{printed}");
    }
    let specs_text = std::fs::read_to_string(&specs).unwrap();
    assert_eq!(specs_text.lines().count(), 5, "{specs_text}");
    assert!(
        specs_text.contains("\"wc -l < /c/log > /count\""),
        "{specs_text}"
    );
    assert!(!specs_text.contains(&secret));

    assert_fails_with(
        &project.run_at(".", &["do", "nosock"], &env),
        &["/nonexistent/cuedag.sock", "does not exist"],
    );
    let missing_env = project.run(&["do", "mounts"]);
    assert_fails_with(&missing_env, &["environment variable \"TOKEN\" not set"]);
}

const NETWORK_PLAN: &str = r#"package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	client: filesystem: {
		"./out/git": write: contents:  actions.git.output
		"./out/http": write: contents: actions.http.output
	}
	actions: {
		params: {
			remote:   string | *""
			ref:      string | *"main"
			url:      string | *""
			checksum: string | *""
		}
		// A git checkout.
		git: core.#GitPull & {
			remote: params.remote
			ref:    params.ref
		}
		// A downloaded file.
		http: core.#HTTPFetch & {
			source:      params.url
			dest:        "/dl/file.txt"
			checksum:    params.checksum
			permissions: 0o640
		}
	}
}
"#;

/// Serves `/file.txt` (`payload\n`) and 404 for anything else, on
/// 127.0.0.1; returns the base URL.
fn serve_http() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == "/file.txt" {
                ("200 OK", "payload\n")
            } else {
                ("404 Not Found", "not here\n")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

#[test]
fn git_pull_and_http_fetch() {
    let project = Project::new();
    project.write("plan.cue", NETWORK_PLAN);

    let repo = project
        .write("repo/README", "v1\n")
        .parent()
        .unwrap()
        .to_path_buf();
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@e"])
            .args(["-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {}", text(&output));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    git(&["tag", "v1"]);
    std::fs::write(repo.join("README"), "v2\n").unwrap();
    git(&["commit", "-q", "-am", "two"]);
    let remote = format!("file://{}", repo.display());
    for (reference, expected) in [("v1", "README=v1\n"), ("main", "README=v2\n")] {
        let with = format!("actions: params: {{remote: \"{remote}\", ref: \"{reference}\"}}");
        assert_ok(&project.run(&["do", "git", "--with", &with]));
        assert_eq!(listing(&project.path().join("out/git")), vec![expected]);
    }
    let with = format!("actions: params: {{remote: \"{remote}\", ref: \"nope\"}}");
    assert_fails_with(
        &project.run(&["do", "git", "--with", &with]),
        &["actions.git", "nope"],
    );
    let with = "actions: params: remote: \"file:///nonexistent/repo\"";
    assert_fails_with(
        &project.run(&["do", "git", "--with", with]),
        &["actions.git", "/nonexistent/repo"],
    );

    let base = serve_http();
    let good = "sha256:b4a0f3c8f3c1d4a0f3e1a5e4a4b0c4a5ec1bd44a5e1b6c7e8e6a9c5bdc0e1e2f";
    let payload_sum = {
        let output = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"payload\n")?;
                child.wait_with_output()
            })
            .unwrap();
        format!(
            "sha256:{}",
            stdout(&output).split_whitespace().next().unwrap()
        )
    };
    let fetch = |path: &str, checksum: &str| {
        let with = format!("actions: params: {{url: \"{base}{path}\", checksum: \"{checksum}\"}}");
        project.run(&["do", "http", "--with", &with])
    };
    assert_ok(&fetch("/file.txt", &payload_sum));
    let out = project.path().join("out/http");
    assert_eq!(listing(&out), vec!["dl/", "dl/file.txt=payload\n"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("dl/file.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_fails_with(
        &fetch("/file.txt", good),
        &["actions.http", "digest mismatch", &payload_sum[7..]],
    );
    assert_fails_with(&fetch("/missing", &payload_sum), &["actions.http", "404"]);
    assert_fails_with(
        &fetch("/file.txt", "md5:zz"),
        &["actions.http", "invalid checksum \"md5:zz\""],
    );
}

const CLIENT_FS_PLAN: &str = r#"package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	client: filesystem: {
		"./src": read: {
			contents: dagger.#FS
			include: ["**/*.go", "go.mod"]
			exclude: ["vendor", "**/*_test.go"]
		}
		"./missing": read: contents: dagger.#FS
		"./out": write: contents: actions.build.output
	}
	actions: {
		params: probe: string | *"/go.mod"
		// The Go sources, plus a file made from one of them.
		build: {
			_read: core.#ReadFile & {input: client.filesystem."./src".read.contents, path: params.probe}
			_write: core.#WriteFile & {
				input:    client.filesystem."./src".read.contents
				path:     "/probe.txt"
				contents: _read.contents
			}
			output: _write.output
		}
		missing: core.#Copy & {
			input:    dagger.#Scratch
			contents: client.filesystem."./missing".read.contents
		}
	}
}
"#;

#[test]
fn client_filesystem_read_and_atomic_write() {
    let project = Project::new();
    project.write("plan.cue", CLIENT_FS_PLAN);
    project.write("src/go.mod", "module x\n");
    project.write("src/main.go", "package main\n");
    project.write("src/main_test.go", "package main\n");
    project.write("src/vendor/dep/dep.go", "package dep\n");
    project.write("src/README.md", "docs\n");
    project.write("src/pkg/lib.go", "package pkg\n");

    assert_ok(&project.run(&["do", "build"]));
    let expected = vec![
        "go.mod=module x\n",
        "main.go=package main\n",
        "pkg/",
        "pkg/lib.go=package pkg\n",
        "probe.txt=module x\n",
    ];
    let out = project.path().join("out");
    assert_eq!(listing(&out), expected);

    // A run that fails before the write leaves ./out as it was.
    let failed = project.run(&[
        "do",
        "build",
        "--with",
        "actions: params: probe: \"/README.md\"",
    ]);
    assert_fails_with(&failed, &["actions.build._read", "ReadFile /README.md"]);
    assert_eq!(listing(&out), expected);
    // The next good run replaces it.
    assert_ok(&project.run(&[
        "do",
        "build",
        "--with",
        "actions: params: probe: \"/main.go\"",
    ]));
    assert_eq!(
        listing(&out).last().map(String::as_str),
        Some("probe.txt=package main\n")
    );
    // No temporary directory is left next to the output.
    let leftovers: Vec<String> = std::fs::read_dir(project.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') && name != ".store")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    assert_fails_with(
        &project.run(&["do", "missing"]),
        &["client.filesystem.\"./missing\".read", "does not exist"],
    );
}
