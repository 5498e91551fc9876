//! The local backend against the local registry and the sandbox: pulls
//! through the docker.io mirror, execs, the step cache, push/pull round
//! trips. Needs root and `scripts/services up` (then `source .ci/state/env`).

mod local_common;

use cuedag_evaluator::plan::{FsRef, TaskValue};
use local_common::{out, require_registry, s, Harness};

fn nonce() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default()
    )
}

fn args(items: &[&str]) -> TaskValue {
    TaskValue::List(items.iter().map(|item| s(item)).collect())
}

async fn pull(h: &Harness, source: &str) -> TaskValue {
    h.run(
        "Pull",
        TaskValue::structure([("source", s(source)), ("resolveMode", s("default"))]),
    )
    .await
}

fn exec_inputs(input: &TaskValue, argv: &[&str], extra: Vec<(&str, TaskValue)>) -> TaskValue {
    let mut fields = vec![
        ("input", input.clone()),
        ("args", args(argv)),
        ("workdir", s("/")),
        ("user", s("root:root")),
        ("always", TaskValue::Bool(false)),
    ];
    for (key, value) in extra {
        fields.retain(|(k, _)| *k != key);
        fields.push((key, value));
    }
    TaskValue::structure(fields)
}

#[tokio::test]
async fn pull_golang_and_run_go_version() {
    require_registry();
    let mut h = Harness::shared();
    let pulled = pull(&h, "golang:1.18-alpine").await;
    let digest = pulled.get("digest").and_then(TaskValue::as_str).unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let path = pulled
        .lookup(&["config", "env", "PATH"])
        .and_then(TaskValue::as_str)
        .unwrap()
        .to_string();
    assert!(path.contains("/usr/local/go/bin"), "{path}");
    assert_eq!(pulled.lookup(&["config", "workdir"]), Some(&s("/go")));
    let image = out(&pulled);
    let nonce = nonce();
    let result = h
        .run(
            "Exec",
            exec_inputs(
                &image,
                &["sh", "-c", &format!("go version; echo {nonce} > /marker")],
                vec![("env", TaskValue::structure([("PATH", s(&path))]))],
            ),
        )
        .await;
    assert_eq!(result.get("exit"), Some(&TaskValue::Int(0)));
    let logs = h.logs();
    assert!(
        logs.iter().any(|line| line.starts_with("go version go1.")),
        "{logs:?}"
    );
    let marker = h
        .run(
            "ReadFile",
            TaskValue::structure([("input", out(&result)), ("path", s("/marker"))]),
        )
        .await;
    assert_eq!(marker.get("contents"), Some(&s(&format!("{nonce}\n"))));
}

#[tokio::test]
async fn exec_is_cached_between_runs_and_always_reruns() {
    require_registry();
    let h = Harness::shared();
    let image = out(&pull(&h, "alpine:3.15").await);
    let nonce = nonce();
    let cache_id = format!("counter-{nonce}");
    let inputs = |always: bool| {
        exec_inputs(
            &image,
            &[
                "sh",
                "-c",
                &format!("echo run >> /cache/count; echo {nonce} > /out"),
            ],
            vec![
                ("always", TaskValue::Bool(always)),
                (
                    "mounts",
                    TaskValue::structure([(
                        "counter",
                        TaskValue::structure([
                            ("dest", s("/cache")),
                            ("type", s("cache")),
                            (
                                "contents",
                                TaskValue::structure([
                                    ("id", s(&cache_id)),
                                    ("concurrency", s("shared")),
                                ]),
                            ),
                        ]),
                    )]),
                ),
            ],
        )
    };
    let count = |h: &Harness| {
        let dir = h.backend.store().cache_mount_path(&cache_id);
        std::fs::read_to_string(dir.join("count"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let first = h.run("Exec", inputs(false)).await;
    assert_eq!(count(&h), 1);
    let mut h = h.rerun();
    let second = h.run("Exec", inputs(false)).await;
    assert_eq!(first, second);
    assert_eq!(count(&h), 1, "the exec ran again");
    assert!(h.logs().iter().any(|line| line == "CACHED"));
    h.run("Exec", inputs(true)).await;
    assert_eq!(count(&h), 2, "`always: true` must rerun");
}

#[tokio::test]
async fn failing_exec_reports_exit_code_and_output() {
    require_registry();
    let h = Harness::shared();
    let image = out(&pull(&h, "alpine:3.15").await);
    let err = h
        .try_run(
            "Exec",
            exec_inputs(
                &image,
                &["sh", "-c", &format!("echo boom-{} >&2; exit 3", nonce())],
                vec![],
            ),
        )
        .await
        .unwrap_err();
    assert!(
        err.contains("did not complete successfully: exit code: 3"),
        "{err}"
    );
    assert!(err.contains("boom-"), "{err}");
}

#[tokio::test]
async fn exec_mounts_and_secret_env() {
    require_registry();
    let h = Harness::shared();
    let image = out(&pull(&h, "alpine:3.15").await);
    let data = out(&h
        .run(
            "WriteFile",
            TaskValue::structure([
                ("input", TaskValue::Fs(FsRef::Scratch)),
                ("path", s("/data.txt")),
                ("contents", s("from-fs")),
            ]),
        )
        .await);
    let secret = h.context.secrets.register("s3cr3t-value");
    let nonce = nonce();
    let result = h
        .run(
            "Exec",
            exec_inputs(
                &image,
                &[
                    "sh",
                    "-c",
                    &format!(
                        "cat /mnt/data.txt /run/file.txt > /result; echo \"-$TOKEN-{nonce}\" >> /result; cat /run/secret >> /result; touch /tmp/x"
                    ),
                ],
                vec![
                    ("env", TaskValue::structure([("TOKEN", TaskValue::Secret(secret.clone()))])),
                    (
                        "mounts",
                        TaskValue::structure([
                            (
                                "data",
                                TaskValue::structure([
                                    ("dest", s("/mnt")),
                                    ("type", s("fs")),
                                    ("contents", data.clone()),
                                    ("ro", TaskValue::Bool(true)),
                                ]),
                            ),
                            (
                                "file",
                                TaskValue::structure([
                                    ("dest", s("/run/file.txt")),
                                    ("type", s("file")),
                                    ("contents", s("+file")),
                                    ("permissions", TaskValue::Int(0o644)),
                                ]),
                            ),
                            (
                                "secret",
                                TaskValue::structure([
                                    ("dest", s("/run/secret")),
                                    ("type", s("secret")),
                                    ("contents", TaskValue::Secret(secret)),
                                ]),
                            ),
                            (
                                "tmp",
                                TaskValue::structure([
                                    ("dest", s("/tmp")),
                                    ("type", s("tmp")),
                                    ("contents", TaskValue::structure([("size", TaskValue::Int(0))])),
                                ]),
                            ),
                        ]),
                    ),
                ],
            ),
        )
        .await;
    let read = h
        .run(
            "ReadFile",
            TaskValue::structure([("input", out(&result)), ("path", s("/result"))]),
        )
        .await;
    assert_eq!(
        read.get("contents"),
        Some(&s(&format!(
            "from-fs+file-s3cr3t-value-{nonce}\ns3cr3t-value"
        )))
    );
    // Mounted paths are not part of the output.
    let err = h
        .try_run(
            "ReadFile",
            TaskValue::structure([("input", out(&result)), ("path", s("/tmp/x"))]),
        )
        .await
        .unwrap_err();
    assert!(err.contains("no such file"), "{err}");
}

#[tokio::test]
async fn push_then_pull_round_trip() {
    require_registry();
    let h = Harness::shared();
    let registry =
        std::env::var("CUEDAG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let nonce = nonce();
    let content = out(&h
        .run(
            "WriteFile",
            TaskValue::structure([
                ("input", TaskValue::Fs(FsRef::Scratch)),
                ("path", s("/hello.txt")),
                ("contents", s(&nonce)),
            ]),
        )
        .await);
    let dest = format!(
        "{registry}/cuedag-test/local-roundtrip:t{}",
        &nonce[..8.min(nonce.len())]
    );
    let pushed = h
        .run(
            "Push",
            TaskValue::structure([
                ("dest", s(&dest)),
                ("input", content),
                (
                    "config",
                    TaskValue::structure([
                        ("env", TaskValue::structure([("GREETING", s("hi"))])),
                        ("cmd", args(&["cat", "/hello.txt"])),
                    ]),
                ),
            ]),
        )
        .await;
    let result = pushed
        .get("result")
        .and_then(TaskValue::as_str)
        .unwrap()
        .to_string();
    assert!(
        result.starts_with(&format!("{registry}/cuedag-test/local-roundtrip@sha256:")),
        "{result}"
    );
    let pulled = pull(&h, &result).await;
    assert_eq!(
        pulled.lookup(&["config", "env", "GREETING"]),
        Some(&s("hi"))
    );
    assert_eq!(
        pulled.lookup(&["config", "cmd"]),
        Some(&args(&["cat", "/hello.txt"]))
    );
    let read = h
        .run(
            "ReadFile",
            TaskValue::structure([("input", out(&pulled)), ("path", s("/hello.txt"))]),
        )
        .await;
    assert_eq!(read.get("contents"), Some(&s(&nonce)));
}

#[tokio::test]
async fn start_signal_stop() {
    require_registry();
    let mut h = Harness::shared();
    let image = out(&pull(&h, "alpine:3.15").await);
    let ready = format!("ready-{}", nonce());
    let start = TaskValue::structure([
        ("input", image),
        (
            "args",
            args(&[
                "sh",
                "-c",
                &format!("trap 'exit 7' USR1; echo {ready}; while true; do sleep 0.1; done"),
            ]),
        ),
        ("workdir", s("/")),
        ("user", s("root:root")),
    ]);
    let started = h.run("Start", start.clone()).await;
    assert_eq!(started, TaskValue::empty_struct());
    // Wait until the shell has installed its trap (it prints `ready` after).
    let mut seen = false;
    for _ in 0..200 {
        if h.logs().iter().any(|line| line == &ready) {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen, "the started command never printed `{ready}`");
    h.run(
        "SendSignal",
        TaskValue::structure([("input", start.clone()), ("signal", TaskValue::Int(10))]),
    )
    .await;
    let stopped = h
        .run(
            "Stop",
            TaskValue::structure([
                ("input", start.clone()),
                ("timeout", TaskValue::Int(5_000_000_000)),
            ]),
        )
        .await;
    assert_eq!(stopped.get("exit"), Some(&TaskValue::Int(7)));
    let err = h
        .try_run(
            "Stop",
            TaskValue::structure([("input", start), ("timeout", TaskValue::Int(0))]),
        )
        .await
        .unwrap_err();
    assert!(err.starts_with("failed to stop"), "{err}");
}

#[tokio::test]
async fn http_fetch_with_checksum() {
    require_registry();
    let h = Harness::shared();
    let registry =
        std::env::var("CUEDAG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let url = format!("http://{registry}/v2/");
    let body = "{}";
    let checksum = {
        use sha2::Digest as _;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(body.as_bytes()))
        )
    };
    let fetched = h
        .run(
            "HTTPFetch",
            TaskValue::structure([
                ("source", s(&url)),
                ("dest", s("/dl/v2.json")),
                ("checksum", s(&checksum)),
                ("permissions", TaskValue::Int(0o644)),
            ]),
        )
        .await;
    let read = h
        .run(
            "ReadFile",
            TaskValue::structure([("input", out(&fetched)), ("path", s("/dl/v2.json"))]),
        )
        .await;
    assert_eq!(read.get("contents"), Some(&s(body)));
    let err = h
        .try_run(
            "HTTPFetch",
            TaskValue::structure([
                ("source", s(&url)),
                ("dest", s("/x")),
                ("checksum", s(&format!("sha256:{}", "0".repeat(64)))),
            ]),
        )
        .await
        .unwrap_err();
    assert!(err.contains("digest mismatch"), "{err}");
}

#[tokio::test]
async fn concurrent_runs_on_one_store_run_a_step_once() {
    require_registry();
    let a = Harness::shared();
    let b = Harness::shared();
    let image = out(&pull(&a, "alpine:3.15").await);
    let nonce = nonce();
    let cache_id = format!("concurrent-{nonce}");
    let inputs = exec_inputs(
        &image,
        &[
            "sh",
            "-c",
            &format!("echo run >> /cache/count; sleep 0.3; echo {nonce} > /out"),
        ],
        vec![(
            "mounts",
            TaskValue::structure([(
                "counter",
                TaskValue::structure([
                    ("dest", s("/cache")),
                    ("type", s("cache")),
                    ("contents", TaskValue::structure([("id", s(&cache_id))])),
                ]),
            )]),
        )],
    );
    let (first, second) = tokio::join!(a.run("Exec", inputs.clone()), b.run("Exec", inputs));
    assert_eq!(first, second);
    let count =
        std::fs::read_to_string(a.backend.store().cache_mount_path(&cache_id).join("count"))
            .unwrap();
    assert_eq!(count.lines().count(), 1, "the step ran twice");
}
