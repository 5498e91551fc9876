//! Fixed overhead of one sandboxed `true`: overlay mount, bubblewrap,
//! chroot, exec, teardown. Needs root, bubblewrap and busybox-static.
//!
//! Run with `cargo bench -p cuedag-sandbox`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use cuedag_sandbox::{discard_output, ExecSpec, Mount, Sandbox};
use tokio_util::sync::CancellationToken;

fn main() {
    divan::main();
}

struct Setup {
    _dir: tempfile::TempDir,
    spec: ExecSpec,
    runtime: tokio::runtime::Runtime,
    sandbox: Sandbox,
}

fn setup(with_mounts: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    std::fs::create_dir_all(base.join("bin")).unwrap();
    std::fs::create_dir_all(base.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", base.join("bin/busybox"))
        .expect("/bin/busybox missing: apt-get install busybox-static");
    symlink("busybox", base.join("bin/true")).unwrap();
    std::fs::write(base.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let upper: PathBuf = dir.path().join("upper");
    let work: PathBuf = dir.path().join("work");
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let mut spec = ExecSpec::new(vec![base.clone()], upper, work, vec!["/bin/true".into()]);
    if with_mounts {
        spec.mounts.push(Mount::Cache {
            dest: "/cache".into(),
            host_dir: dir.path().join("cache"),
            sharing: Default::default(),
        });
        spec.mounts.push(Mount::Fs {
            dest: "/src".into(),
            lowers: vec![base],
            source_subpath: None,
            readonly: true,
        });
        spec.mounts.push(Mount::Tmp {
            dest: "/tmp".into(),
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sandbox = Sandbox::new().expect("bubblewrap missing: apt-get install bubblewrap");
    Setup {
        _dir: dir,
        spec,
        runtime,
        sandbox,
    }
}

fn run(setup: &Setup) {
    let cancel = CancellationToken::new();
    setup
        .runtime
        .block_on(setup.sandbox.run(&setup.spec, discard_output(), &cancel))
        .unwrap();
}

/// One `true` over a one-layer root, no mounts.
#[divan::bench(sample_count = 50)]
fn exec_true(bencher: divan::Bencher) {
    let setup = setup(false);
    bencher.bench_local(|| run(&setup));
}

/// One `true` with a cache, a read-only fs and a tmp mount.
#[divan::bench(sample_count = 50)]
fn exec_true_with_mounts(bencher: divan::Bencher) {
    let setup = setup(true);
    bencher.bench_local(|| run(&setup));
}
