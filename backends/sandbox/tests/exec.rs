//! Sandboxed exec over a busybox root filesystem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::time::Duration;

use common::{fixture, run, run_ok, sandbox, Collector};
use cuedag_sandbox::{
    changed_paths, diff_is_empty, CacheSharing, Change, ChangeKind, ExecError, Mount, SecretString,
};
use tokio_util::sync::CancellationToken;

fn paths(upper: &std::path::Path) -> Vec<String> {
    changed_paths(upper)
        .unwrap()
        .into_iter()
        .map(|c| c.path)
        .collect()
}

#[tokio::test]
async fn args_env_and_workdir() {
    let fx = fixture();
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        r#"echo "$GREETING $1"; pwd; echo "$PATH"; echo "$HOME""#,
    );
    spec.args.push("argv0".into());
    spec.args.push("world".into());
    spec.env.push(("GREETING".into(), "hello".into()));
    spec.workdir = "/data".into();
    let out = run_ok(&spec).await;
    assert_eq!(
        out,
        format!(
            "hello world\n/data\n{}\n/root\n",
            cuedag_sandbox::DEFAULT_PATH
        )
    );
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
}

#[tokio::test]
async fn missing_workdir_is_created_but_not_in_the_diff() {
    let fx = fixture();
    let mut spec = fx.sh(vec![fx.base.clone()], "pwd");
    spec.workdir = "/src/app".into();
    assert_eq!(run_ok(&spec).await, "/src/app\n");
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
}

#[tokio::test]
async fn user_by_name_and_number() {
    let fx = fixture();
    let cases = [
        ("root:root", "0 0 /root 0"),
        ("app", "1000 1000 /home/app 1000,50"),
        ("1000", "1000 1000 /home/app 1000,50"),
        ("app:staff", "1000 50 /home/app 50"),
        ("1234:4321", "1234 4321 / 4321"),
        ("nobody", "65534 65534 /nonexistent 65534"),
    ];
    for (user, expected) in cases {
        let mut spec = fx.sh(
            vec![fx.base.clone()],
            r#"echo "$(id -u) $(id -g) $HOME $(id -G | tr ' ' ,)""#,
        );
        spec.user = user.into();
        assert_eq!(run_ok(&spec).await, format!("{expected}\n"), "user {user}");
    }
}

#[tokio::test]
async fn files_written_by_a_user_are_owned_by_it() {
    let fx = fixture();
    let mut spec = fx.sh(vec![fx.base.clone()], "echo hi > /home/app/mine");
    spec.user = "app".into();
    run_ok(&spec).await;
    let meta = std::fs::metadata(spec.upper.join("home/app/mine")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
}

#[tokio::test]
async fn unknown_user_is_a_clear_error() {
    let fx = fixture();
    let mut spec = fx.sh(vec![fx.base.clone()], "true");
    spec.user = "ghost".into();
    let (result, _) = run(&spec).await;
    let err = result.unwrap_err();
    assert_eq!(err.code(), "sandbox::unknown-user");
    assert!(err.to_string().contains("`ghost`"), "{err}");
    spec.user = "app:ghosts".into();
    let err = run(&spec).await.0.unwrap_err();
    assert_eq!(err.code(), "sandbox::unknown-group");
}

#[tokio::test]
async fn written_file_lands_in_the_upper_only() {
    let fx = fixture();
    let spec = fx.sh(
        vec![fx.base.clone()],
        "echo out > /data/new.txt && echo more >> /data/keep.txt",
    );
    run_ok(&spec).await;
    assert_eq!(
        std::fs::read_to_string(spec.upper.join("data/new.txt")).unwrap(),
        "out\n"
    );
    assert!(!fx.base.join("data/new.txt").exists());
    assert_eq!(
        std::fs::read_to_string(fx.base.join("data/keep.txt")).unwrap(),
        "lower data\n"
    );
    assert_eq!(
        std::fs::read_to_string(spec.upper.join("data/keep.txt")).unwrap(),
        "lower data\nmore\n"
    );
    assert_eq!(
        paths(&spec.upper),
        vec!["/data", "/data/keep.txt", "/data/new.txt"]
    );
}

#[tokio::test]
async fn deleting_a_lower_file_leaves_a_whiteout() {
    let fx = fixture();
    let spec = fx.sh(
        vec![fx.base.clone()],
        "rm /data/doomed.txt && rm -r /home/app && mkdir /home/app",
    );
    run_ok(&spec).await;
    let meta = std::fs::symlink_metadata(spec.upper.join("data/doomed.txt")).unwrap();
    assert!(meta.file_type().is_char_device() && meta.rdev() == 0);
    assert!(fx.base.join("data/doomed.txt").exists());
    let changes = changed_paths(&spec.upper).unwrap();
    assert!(
        changes.contains(&Change {
            path: "/data/doomed.txt".into(),
            kind: ChangeKind::Deleted
        }),
        "{changes:?}"
    );
    assert!(
        changes.contains(&Change {
            path: "/home/app".into(),
            kind: ChangeKind::OpaqueDir
        }),
        "{changes:?}"
    );
}

#[tokio::test]
async fn stacked_execs_see_each_other() {
    let fx = fixture();
    let first = fx.sh(
        vec![fx.base.clone()],
        "echo one > /data/one && rm /data/doomed.txt",
    );
    run_ok(&first).await;
    let second = fx.sh(
        vec![fx.base.clone(), first.upper.clone()],
        "cat /data/one; test -e /data/doomed.txt && echo present || echo gone; echo two > /data/two",
    );
    assert_eq!(run_ok(&second).await, "one\ngone\n");
    assert_eq!(paths(&second.upper), vec!["/data", "/data/two"]);
    let third = fx.sh(
        vec![fx.base.clone(), first.upper.clone(), second.upper.clone()],
        "cat /data/one /data/two",
    );
    assert_eq!(run_ok(&third).await, "one\ntwo\n");
}

#[tokio::test]
async fn system_mount_points_do_not_leak_into_the_diff() {
    let fx = fixture();
    // The base layer has no /proc, /dev, /sys nor /etc/hosts.
    let spec = fx.sh(
        vec![fx.base.clone()],
        "test -e /proc/self && test -e /dev/null && cat /etc/hosts >/dev/null",
    );
    run_ok(&spec).await;
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
    assert!(!fx.base.join("proc").exists());
}

#[tokio::test]
async fn empty_lower_stack_runs_nothing_but_mount_points() {
    let fx = fixture();
    let (upper, work) = fx.layer();
    let spec = cuedag_sandbox::ExecSpec::new(vec![], upper, work, vec!["/bin/sh".into()]);
    let err = run(&spec).await.0.unwrap_err();
    assert_eq!(err.code(), "sandbox::program-not-found", "{err}");
}

#[tokio::test]
async fn cache_mount_persists_and_stays_out_of_the_diff() {
    let fx = fixture();
    let cache = fx.dir.path().join("caches/go-build");
    for (i, sharing) in [
        CacheSharing::Shared,
        CacheSharing::Locked,
        CacheSharing::Private,
    ]
    .into_iter()
    .enumerate()
    {
        let mut spec = fx.sh(
            vec![fx.base.clone()],
            "cat /cache/count 2>/dev/null; echo x >> /cache/count",
        );
        spec.mounts.push(Mount::Cache {
            dest: "/cache".into(),
            host_dir: cache.clone(),
            sharing,
        });
        let out = run_ok(&spec).await;
        assert_eq!(out, "x\n".repeat(i), "run {i}");
        assert!(
            diff_is_empty(&spec.upper).unwrap(),
            "{:?}",
            paths(&spec.upper)
        );
    }
    assert_eq!(
        std::fs::read_to_string(cache.join("count")).unwrap(),
        "x\nx\nx\n"
    );
}

#[tokio::test]
async fn private_cache_in_use_gives_a_fresh_directory() {
    let fx = fixture();
    let cache = fx.dir.path().join("caches/private");
    let mut holder = fx.sh(vec![fx.base.clone()], "echo held > /cache/mark; sleep 30");
    holder.mounts.push(Mount::Cache {
        dest: "/cache".into(),
        host_dir: cache.clone(),
        sharing: CacheSharing::Locked,
    });
    let running = sandbox()
        .start(&holder, Collector::default().sink())
        .await
        .unwrap();
    // Wait for the holder to be inside.
    for _ in 0..500 {
        if cache.join("mark").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "ls /cache | wc -l; echo new > /cache/other",
    );
    spec.mounts.push(Mount::Cache {
        dest: "/cache".into(),
        host_dir: cache.clone(),
        sharing: CacheSharing::Private,
    });
    assert_eq!(run_ok(&spec).await.trim(), "0");
    assert!(!cache.join("other").exists());
    running.stop(Duration::ZERO).await.unwrap();
}

#[tokio::test]
async fn locked_cache_serialises_users() {
    let fx = fixture();
    let cache = fx.dir.path().join("caches/locked");
    let mut specs = Vec::new();
    for _ in 0..3 {
        let mut spec = fx.sh(
            vec![fx.base.clone()],
            "if test -e /cache/busy; then echo overlap; fi; touch /cache/busy; sleep 0.2; rm /cache/busy",
        );
        spec.mounts.push(Mount::Cache {
            dest: "/cache".into(),
            host_dir: cache.clone(),
            sharing: CacheSharing::Locked,
        });
        specs.push(spec);
    }
    let handles: Vec<_> = specs
        .into_iter()
        .map(|spec| tokio::spawn(async move { run_ok(&spec).await }))
        .collect();
    for handle in handles {
        assert_eq!(
            handle.await.unwrap(),
            "",
            "two users held the locked cache at once"
        );
    }
}

#[tokio::test]
async fn tmp_mount_is_not_in_the_diff() {
    let fx = fixture();
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "echo x > /scratch/file && stat -c %a /scratch && cat /scratch/file",
    );
    spec.mounts.push(Mount::Tmp {
        dest: "/scratch".into(),
    });
    assert_eq!(run_ok(&spec).await, "1777\nx\n");
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
}

#[tokio::test]
async fn secret_mount_is_readable_private_and_never_stored_or_logged() {
    let fx = fixture();
    let secret = "s3cr3t-value-42";
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "stat -c '%a %u %g' /run/secrets/token; cat /run/secrets/token >/dev/null && echo read; echo \"$TOKEN\" | wc -c",
    );
    spec.mounts.push(Mount::Secret {
        dest: "/run/secrets/token".into(),
        contents: SecretString::new(secret),
        uid: 1000,
        gid: 1000,
        mode: 0o400,
    });
    spec.secret_env
        .push(("TOKEN".into(), SecretString::new(secret)));
    spec.user = "app".into();
    let (result, out) = run(&spec).await;
    result.unwrap();
    assert_eq!(
        out.stdout(),
        format!("400 1000 1000\nread\n{}\n", secret.len() + 1)
    );
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
    assert!(!format!("{spec:?}").contains(secret));
    assert!(!out.all().contains(secret));
    // Nothing under the scratch directories keeps it.
    for entry in walkdir::WalkDir::new(fx.dir.path()).into_iter().flatten() {
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{}",
                entry.path().display()
            );
        }
    }
}

#[tokio::test]
async fn secret_in_a_failing_exec_is_not_in_the_error() {
    let fx = fixture();
    let mut spec = fx.sh(vec![fx.base.clone()], "exit 3");
    spec.secret_env
        .push(("TOKEN".into(), SecretString::new("hunter2")));
    let err = run(&spec).await.0.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

fn fs_source(fx: &common::Fixture) -> PathBuf {
    let src = fx.dir.path().join("srclayer");
    std::fs::create_dir_all(src.join("pkg/sub")).unwrap();
    std::fs::write(src.join("pkg/main.go"), "package main\n").unwrap();
    std::fs::write(src.join("pkg/sub/util.go"), "package sub\n").unwrap();
    src
}

#[tokio::test]
async fn fs_mount_read_only() {
    let fx = fixture();
    let src = fs_source(&fx);
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "cat /src/pkg/main.go; touch /src/x 2>/dev/null && echo writable || echo readonly",
    );
    spec.mounts.push(Mount::Fs {
        dest: "/src".into(),
        lowers: vec![src.clone()],
        source_subpath: None,
        readonly: true,
    });
    assert_eq!(run_ok(&spec).await, "package main\nreadonly\n");
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
}

#[tokio::test]
async fn fs_mount_writable_is_throwaway_and_subpath_works() {
    let fx = fixture();
    let src = fs_source(&fx);
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "ls /src; echo changed > /src/util.go; rm /src/util.go; echo new > /src/new.go; ls /src",
    );
    spec.mounts.push(Mount::Fs {
        dest: "/src".into(),
        lowers: vec![src.clone()],
        source_subpath: Some("pkg/sub".into()),
        readonly: false,
    });
    assert_eq!(run_ok(&spec).await, "util.go\nnew.go\n");
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
    assert_eq!(
        std::fs::read_to_string(src.join("pkg/sub/util.go")).unwrap(),
        "package sub\n"
    );
    assert!(!src.join("pkg/sub/new.go").exists());
}

#[tokio::test]
async fn fs_mount_missing_subpath_is_an_error() {
    let fx = fixture();
    let src = fs_source(&fx);
    let mut spec = fx.sh(vec![fx.base.clone()], "true");
    spec.mounts.push(Mount::Fs {
        dest: "/src".into(),
        lowers: vec![src],
        source_subpath: Some("nope".into()),
        readonly: true,
    });
    let err = run(&spec).await.0.unwrap_err();
    assert_eq!(err.code(), "sandbox::invalid-mount");
    assert!(err.to_string().contains("`nope`"), "{err}");
}

#[tokio::test]
async fn nested_mounts_inside_a_read_only_fs_mount() {
    let fx = fixture();
    let src = fs_source(&fx);
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "echo c > /src/cache/f && cat /src/cache/f && cat /src/pkg/main.go",
    );
    spec.mounts.push(Mount::Fs {
        dest: "/src".into(),
        lowers: vec![src.clone()],
        source_subpath: None,
        readonly: true,
    });
    spec.mounts.push(Mount::Tmp {
        dest: "/src/cache".into(),
    });
    assert_eq!(run_ok(&spec).await, "c\npackage main\n");
    assert!(!src.join("cache").exists());
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
}

#[tokio::test]
async fn file_mount() {
    let fx = fixture();
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "stat -c %a /etc/app.conf; cat /etc/app.conf",
    );
    spec.mounts.push(Mount::File {
        dest: "/etc/app.conf".into(),
        contents: "key=value\n".into(),
        mode: 0o640,
    });
    assert_eq!(run_ok(&spec).await, "640\nkey=value\n");
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
}

#[tokio::test]
async fn socket_mount() {
    let fx = fixture();
    let sock_path = fx.dir.path().join("test.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "test -S /var/run/test.sock && echo socket",
    );
    spec.mounts.push(Mount::Socket {
        dest: "/var/run/test.sock".into(),
        host_path: sock_path,
    });
    assert_eq!(run_ok(&spec).await, "socket\n");
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
}

#[tokio::test]
async fn hosts_entries_and_hostname() {
    let fx = fixture();
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "hostname; grep -c localhost /etc/hosts; grep registry /etc/hosts",
    );
    spec.hosts
        .push(("registry.local".into(), "10.1.2.3".into()));
    assert_eq!(
        run_ok(&spec).await,
        "buildkitsandbox\n2\n10.1.2.3\tregistry.local\n"
    );
}

#[tokio::test]
async fn non_zero_exit_carries_the_output_tail() {
    let fx = fixture();
    let spec = fx.sh(
        vec![fx.base.clone()],
        "echo building; echo 'main.go:3: undefined: foo' >&2; exit 2",
    );
    let err = run(&spec).await.0.unwrap_err();
    match &err {
        ExecError::NonZeroExit {
            code, output_tail, ..
        } => {
            assert_eq!(*code, 2);
            assert!(
                output_tail.contains("main.go:3: undefined: foo"),
                "{output_tail}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.starts_with("process \"/bin/sh -c echo building; echo 'main.go:3: undefined: foo' >&2; exit 2\" did not complete successfully: exit code: 2\n"),
        "{message}"
    );
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let fx = fixture();
    let (upper, work) = fx.layer();
    let spec = cuedag_sandbox::ExecSpec::new(
        vec![fx.base.clone()],
        upper,
        work,
        vec!["go".into(), "build".into()],
    );
    let err = run(&spec).await.0.unwrap_err();
    assert_eq!(err.code(), "sandbox::program-not-found", "{err}");
    assert!(
        err.to_string()
            .starts_with("exec: \"go\": executable file not found in $PATH"),
        "{err}"
    );
    let (upper, work) = fx.layer();
    let spec = cuedag_sandbox::ExecSpec::new(
        vec![fx.base.clone()],
        upper,
        work,
        vec!["/usr/local/go/bin/go".into()],
    );
    let err = run(&spec).await.0.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("exec: \"/usr/local/go/bin/go\": No such file or directory"),
        "{err}"
    );
}

#[tokio::test]
async fn concurrent_execs_on_the_same_lowers() {
    let fx = fixture();
    let specs: Vec<_> = (0..4)
        .map(|i| {
            fx.sh(
                vec![fx.base.clone()],
                &format!("echo {i} > /data/n; cat /data/n"),
            )
        })
        .collect();
    let mut handles = Vec::new();
    for spec in specs.clone() {
        handles.push(tokio::spawn(async move { run_ok(&spec).await }));
    }
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap(), format!("{i}\n"));
        assert_eq!(
            std::fs::read_to_string(specs[i].upper.join("data/n")).unwrap(),
            format!("{i}\n")
        );
    }
}

#[tokio::test]
async fn start_signal_and_stop() {
    let fx = fixture();
    let spec = fx.sh(
        vec![fx.base.clone()],
        "trap 'echo got usr1' USR1; echo ready; while true; do sleep 0.05; done",
    );
    let out = Collector::default();
    let running = sandbox().start(&spec, out.sink()).await.unwrap();
    for _ in 0..500 {
        if out.stdout().contains("ready") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.signal(10).await.unwrap();
    for _ in 0..500 {
        if out.stdout().contains("got usr1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(out.stdout(), "ready\ngot usr1\n");
    assert_eq!(
        running.signal(0).await.unwrap_err().code(),
        "sandbox::invalid-signal"
    );
    let code = running.stop(Duration::from_millis(100)).await.unwrap();
    assert_eq!(code, 137);
}

#[tokio::test]
async fn stop_returns_the_exit_code_of_a_process_that_ends() {
    let fx = fixture();
    let spec = fx.sh(vec![fx.base.clone()], "sleep 5");
    let running = sandbox()
        .start(&spec, Collector::default().sink())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.signal(15).await.unwrap();
    let code = running.stop(Duration::from_secs(5)).await.unwrap();
    assert_eq!(code, 143);
}

#[tokio::test]
async fn cancellation_kills_the_process_tree() {
    let fx = fixture();
    // A unique duration identifies the process in /proc.
    let marker = "61.424242";
    let spec = fx.sh(vec![fx.base.clone()], &format!("sleep {marker}; echo done"));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let err = sandbox()
        .run(&spec, Collector::default().sink(), &cancel)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "sandbox::cancelled");
    let mut alive = true;
    for _ in 0..100 {
        alive = process_alive(marker);
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive, "the sandboxed process survived cancellation");
}

#[tokio::test]
async fn nul_bytes_cannot_inject_sandbox_options() {
    let fx = fixture();
    let mut spec = fx.sh(vec![fx.base.clone()], "true");
    spec.env
        .push(("X".into(), "a\0--bind\0/\0/newroot/host".into()));
    let err = run(&spec).await.0.unwrap_err();
    assert_eq!(err.code(), "sandbox::invalid-spec", "{err}");
    let mut spec = fx.sh(vec![fx.base.clone()], "true");
    spec.hosts.push(("evil\n1.2.3.4".into(), "5.6.7.8".into()));
    assert_eq!(
        run(&spec).await.0.unwrap_err().code(),
        "sandbox::invalid-spec"
    );
}

#[tokio::test]
async fn upper_root_keeps_no_overlay_xattrs_and_takes_the_lower_root_mode() {
    let fx = fixture();
    let spec = fx.sh(vec![fx.base.clone()], "echo x > /top");
    std::fs::set_permissions(
        &spec.upper,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    run_ok(&spec).await;
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(&spec.upper, &mut buf[..]).unwrap();
    let names = String::from_utf8_lossy(&buf[..n]).replace('\0', " ");
    assert!(!names.contains("trusted.overlay"), "{names}");
    let mode = std::fs::metadata(&spec.upper).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o755);
}

#[tokio::test]
async fn mount_points_follow_symlinks_inside_the_root() {
    let fx = fixture();
    let links = fx.dir.path().join("links");
    std::fs::create_dir_all(links.join("var")).unwrap();
    std::os::unix::fs::symlink("/run", links.join("var/run")).unwrap();
    std::os::unix::fs::symlink("../data", links.join("var/data")).unwrap();
    let sock_path = fx.dir.path().join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let mut spec = fx.sh(
        vec![fx.base.clone(), links.clone()],
        "test -S /run/test.sock && cat /data/conf/f && echo ok",
    );
    spec.mounts.push(Mount::Socket {
        dest: "/var/run/test.sock".into(),
        host_path: sock_path,
    });
    spec.mounts.push(Mount::File {
        dest: "/var/data/conf/f".into(),
        contents: "via link\n".into(),
        mode: 0o644,
    });
    assert_eq!(run_ok(&spec).await, "via link\nok\n");
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
    // Nothing was created on the host through the absolute symlink.
    assert!(!std::path::Path::new("/run/test.sock").exists());
}

#[tokio::test]
async fn mount_points_keep_the_attributes_of_existing_parents() {
    let fx = fixture();
    std::fs::set_permissions(
        fx.base.join("home/app"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "stat -c '%u %g %a' /home/app; touch /home/app/.cache/x",
    );
    spec.mounts.push(Mount::Tmp {
        dest: "/home/app/.cache".into(),
    });
    assert_eq!(run_ok(&spec).await, "1000 1000 750\n");
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
}

#[tokio::test]
async fn user_lookup_honours_whiteouts_in_upper_layers() {
    let fx = fixture();
    let deleted = fx.sh(vec![fx.base.clone()], "rm /etc/passwd");
    run_ok(&deleted).await;
    let mut after_delete = fx.sh(vec![fx.base.clone(), deleted.upper.clone()], "id -u");
    after_delete.user = "app".into();
    assert_eq!(
        run(&after_delete).await.0.unwrap_err().code(),
        "sandbox::unknown-user"
    );
    // A later layer that recreates the file is read instead of the lower one.
    let recreated = fx.sh(
        vec![fx.base.clone(), deleted.upper.clone()],
        "echo 'app:x:2000:2000::/home/app:/bin/sh' > /etc/passwd",
    );
    run_ok(&recreated).await;
    let mut last = fx.sh(
        vec![
            fx.base.clone(),
            deleted.upper.clone(),
            recreated.upper.clone(),
        ],
        "id -u",
    );
    last.user = "app".into();
    assert_eq!(run_ok(&last).await, "2000\n");
}

fn process_alive(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(marker))
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn dropping_the_run_future_kills_the_process_tree() {
    let fx = fixture();
    // A unique duration identifies the processes in /proc.
    let marker = "62.515151";
    let spec = fx.sh(
        vec![fx.base.clone()],
        &format!("sleep {marker} & sleep {marker}; echo done"),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let _ = sandbox()
            .run(
                &spec,
                cuedag_sandbox::channel_output(tx),
                &CancellationToken::new(),
            )
            .await;
    });
    for _ in 0..300 {
        if process_alive(marker) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(process_alive(marker), "the sandboxed process never started");
    task.abort();
    let _ = task.await;
    let mut gone = false;
    for _ in 0..100 {
        if !process_alive(marker) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        gone,
        "sandboxed processes survived the dropped future: {}",
        survivors(marker)
    );
    assert!(rx.try_recv().is_err(), "no output was expected");
}

#[tokio::test]
async fn network_none_has_only_loopback() {
    let fx = fixture();
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "grep -c : /proc/net/dev; grep -o 'lo:' /proc/net/dev",
    );
    spec.network = cuedag_sandbox::Network::None;
    assert_eq!(run_ok(&spec).await, "1\nlo:\n");
}

fn survivors(marker: &str) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            out.push_str(&format!("[{stat}] "));
        }
    }
    out
}

#[tokio::test]
async fn overlay_setup_failure_is_reported_as_such() {
    let fx = fixture();
    let (upper, _) = fx.layer();
    // The work directory must be on the upper's file system; /dev/shm is not.
    let work = tempfile::Builder::new()
        .prefix("sandbox-test-work-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let spec = cuedag_sandbox::ExecSpec::new(
        vec![fx.base.clone()],
        upper,
        work.path().to_path_buf(),
        vec!["/bin/true".into()],
    );
    let err = run(&spec).await.0.unwrap_err();
    assert_eq!(err.code(), "sandbox::setup", "{err}");
    assert!(
        err.to_string().contains("cannot mount the root overlay"),
        "{err}"
    );
}

#[tokio::test]
async fn reading_a_file_from_a_layer_stack() {
    let fx = fixture();
    let spec = fx.sh(
        vec![fx.base.clone()],
        "echo v2 > /data/keep.txt; rm /data/doomed.txt; ln -s /data/keep.txt /link",
    );
    run_ok(&spec).await;
    let lowers = vec![fx.base.clone(), spec.upper.clone()];
    let read = |p: &str| cuedag_sandbox::read_stack_file(&lowers, p).unwrap();
    assert_eq!(read("/data/keep.txt").as_deref(), Some(&b"v2\n"[..]));
    assert_eq!(read("/link").as_deref(), Some(&b"v2\n"[..]));
    assert_eq!(read("/data/doomed.txt"), None);
    assert_eq!(read("/data"), None);
    assert_eq!(
        cuedag_sandbox::read_stack_file(std::slice::from_ref(&fx.base), "/data/doomed.txt")
            .unwrap()
            .as_deref(),
        Some(&b"to delete\n"[..])
    );
}

#[tokio::test]
async fn mount_points_do_not_change_parent_mtimes() {
    let fx = fixture();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let etc = std::fs::File::open(fx.base.join("etc")).unwrap();
    etc.set_times(std::fs::FileTimes::new().set_modified(old))
        .unwrap();
    let mut spec = fx.sh(vec![fx.base.clone()], "stat -c %Y /etc; echo x > /etc/new");
    spec.mounts.push(Mount::File {
        dest: "/etc/app/conf".into(),
        contents: "c".into(),
        mode: 0o644,
    });
    assert_eq!(run_ok(&spec).await, "1000000000\n");
    assert_eq!(paths(&spec.upper), vec!["/etc", "/etc/new"]);
}

#[tokio::test]
async fn secret_env_is_in_no_command_line() {
    let fx = fixture();
    let secret = "argv-secret-77aa";
    let mut spec = fx.sh(vec![fx.base.clone()], "echo ready; sleep 5");
    spec.secret_env
        .push(("TOKEN".into(), SecretString::new(secret)));
    let out = Collector::default();
    let running = sandbox().start(&spec, out.sink()).await.unwrap();
    for _ in 0..500 {
        if out.stdout().contains("ready") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(out.stdout(), "ready\n");
    assert!(!process_alive(secret), "a command line holds the secret");
    running.stop(Duration::ZERO).await.unwrap();
}

#[tokio::test]
async fn background_processes_do_not_keep_the_exec_alive() {
    let fx = fixture();
    let marker = "63.737373";
    let spec = fx.sh(
        vec![fx.base.clone()],
        &format!("sleep {marker} & echo started"),
    );
    // A hang guard, not a speed check: without pid-namespace teardown the
    // background sleep would keep stdout open for a minute.
    let result = tokio::time::timeout(Duration::from_secs(50), run_ok(&spec)).await;
    assert_eq!(
        result.expect("the exec waited for its background process"),
        "started\n"
    );
    assert!(!process_alive(marker));
}

#[tokio::test]
async fn fs_mount_of_an_empty_stack() {
    let fx = fixture();
    let mut spec = fx.sh(
        vec![fx.base.clone()],
        "ls /out | wc -l; echo x > /out/f && cat /out/f",
    );
    spec.mounts.push(Mount::Fs {
        dest: "/out".into(),
        lowers: vec![],
        source_subpath: None,
        readonly: false,
    });
    assert_eq!(run_ok(&spec).await, "0\nx\n");
    assert!(
        diff_is_empty(&spec.upper).unwrap(),
        "{:?}",
        paths(&spec.upper)
    );
}

#[tokio::test]
async fn a_command_killed_by_a_signal_reports_128_plus_the_signal() {
    let fx = fixture();
    let spec = fx.sh(vec![fx.base.clone()], "kill -SEGV $$");
    match run(&spec).await.0.unwrap_err() {
        ExecError::NonZeroExit { code, .. } => assert_eq!(code, 139),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn many_layers_with_long_paths() {
    let fx = fixture();
    // 80 layers whose absolute paths add up to far more than the one page
    // the kernel accepts for mount options.
    let long = "a-rather-long-directory-name-for-a-layer-that-pads-the-overlay-options".repeat(2);
    let mut lowers = vec![fx.base.clone()];
    for i in 0..80 {
        let layer = fx.dir.path().join(format!("{long}-{i:03}"));
        std::fs::create_dir_all(layer.join("l")).unwrap();
        std::fs::write(layer.join(format!("l/{i:03}")), format!("{i}\n")).unwrap();
        lowers.push(layer);
    }
    let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > 8192, "{total}");
    let spec = fx.sh(lowers, "ls /l | wc -l; cat /l/079");
    assert_eq!(run_ok(&spec).await, "80\n79\n");
}
