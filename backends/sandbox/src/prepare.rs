//! Turning an [`ExecSpec`] into a scratch directory, a setup shell script
//! (overlay mounts in a private mount namespace) and bubblewrap's arguments.
//!
//! Layout of the per-exec scratch directory:
//!
//! ```text
//! scratch/
//!   mp/            throwaway top lower layer holding missing mount points
//!   root/0 … n     symlinks to the lowers (short overlay options)
//!   root/u, root/w symlinks to the upper and work directories
//!   root/merged    where the root overlay is mounted
//!   fs<i>/…        the same for each `Fs` mount (upper/work are throwaway)
//!   files/…        `File` mounts, `/etc/hosts`
//!   empty/         an empty directory
//! ```

use std::fmt::Write as _;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::os::unix::fs::{chown, symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::error::{ExecError, IoContext};
use crate::layers::{NodeKind, Stack};
use crate::spec::{CacheSharing, ExecSpec, Mount, Network};
use crate::user::resolve_user;

/// The `PATH` a command gets when the spec sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the container's root is mounted inside bubblewrap's own root.
const NEWROOT: &str = "/newroot";

/// Overlay options: no redirects or metacopy (so the upper stays a plain
/// overlayfs-format diff usable as a lower), no index, no uuid xattr.
/// (`uuid=off` is added when the kernel knows it.)
const OVERLAY_OPTS: &str = "redirect_dir=off,metacopy=off,index=off";

/// Docker's default capability set.
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Host paths of the tools the sandbox runs.
#[derive(Clone, Debug)]
pub(crate) struct Tools {
    pub bwrap: PathBuf,
    pub unshare: PathBuf,
    pub setpriv: PathBuf,
    pub mount: PathBuf,
    pub sh: PathBuf,
}

/// Everything needed to spawn one sandboxed process. Dropping it removes
/// the scratch files and releases the cache locks.
pub(crate) struct Prepared {
    /// The `sh -c` script run in the private mount namespace.
    pub script: String,
    /// bubblewrap's arguments, NUL-terminated; holds secrets: never log it.
    pub bwrap_args: Vec<u8>,
    /// The same arguments with secret values masked, for debug logs.
    pub loggable_args: Vec<String>,
    /// The command bubblewrap runs: the inner `unshare` and the argv.
    pub command: Vec<String>,
    /// Always `Some` until dropped.
    pub scratch: Option<TempDir>,
    _secrets: Option<TempDir>,
    _private_caches: Vec<TempDir>,
    _locks: Vec<File>,
}

impl Drop for Prepared {
    /// Removes the scratch directory in the background: removing the
    /// overlay's mount point waits for the kernel to tear down the exec's
    /// mount namespace (RCU grace periods, tens of ms under load), which the
    /// caller need not wait for. Secrets and cache locks go synchronously.
    fn drop(&mut self) {
        let Some(scratch) = self.scratch.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || drop(scratch));
            }
            Err(_) => drop(scratch),
        }
    }
}

#[derive(Clone, Copy)]
enum Want {
    Dir,
    File,
}

struct Args {
    args: Vec<String>,
    loggable: Vec<String>,
}

impl Args {
    fn push(&mut self, parts: &[&str]) {
        for part in parts {
            self.args.push((*part).to_owned());
            self.loggable.push((*part).to_owned());
        }
    }

    fn push_secret(&mut self, public: &[&str], secret: &str) {
        self.push(public);
        self.args.push(secret.to_owned());
        self.loggable.push("***".to_owned());
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Lexically normalises an absolute container path into components.
fn lexical(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other.to_owned()),
        }
    }
    out
}

fn join_container(components: &[String]) -> String {
    let mut out = String::from(NEWROOT);
    for comp in components {
        out.push('/');
        out.push_str(comp);
    }
    out
}

/// Copies mode, owner and mtime of `meta` onto `path`.
fn copy_attrs(path: &Path, meta: &fs::Metadata) -> Result<(), ExecError> {
    chown(path, Some(meta.uid()), Some(meta.gid()))
        .context(|| format!("setting owner of `{}`", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .context(|| format!("setting mode of `{}`", path.display()))?;
    if let Ok(modified) = meta.modified() {
        let file = File::open(path).context(|| format!("opening `{}`", path.display()))?;
        file.set_times(FileTimes::new().set_modified(modified))
            .context(|| format!("setting mtime of `{}`", path.display()))?;
    }
    Ok(())
}

/// Makes sure `dest` exists in the merged root so that it can be mounted
/// on, creating what is missing in the throwaway `mp` layer (so that mount
/// points never leak into the diff). Returns the physical components.
/// The throwaway mount-point layer and the existing directories it mirrors.
struct MountPoints {
    root: PathBuf,
    /// Mirrored directories and their original attributes, to restore the
    /// mtimes that creating children in them changed.
    mirrored: Vec<(PathBuf, fs::Metadata)>,
}

impl MountPoints {
    fn restore_times(&self) -> Result<(), ExecError> {
        for (path, meta) in &self.mirrored {
            copy_attrs(path, meta)?;
        }
        Ok(())
    }
}

fn ensure_mountpoint(
    stack: &Stack<'_>,
    mps: &mut MountPoints,
    dest: &str,
    want: Want,
) -> Result<Vec<String>, ExecError> {
    let resolved = stack.resolve(dest, true).map_err(|err| match err {
        ExecError::InvalidPath { reason, .. } => ExecError::InvalidMount {
            dest: dest.to_owned(),
            reason,
        },
        other => other,
    })?;
    if let Some(node) = &resolved.node {
        let ok = matches!(
            (&want, &node.kind),
            (Want::Dir, NodeKind::Dir) | (Want::File, NodeKind::File)
        );
        if !ok {
            let reason = match want {
                Want::Dir => "the mount point exists and is not a directory",
                Want::File => "the mount point exists and is a directory, but a file is mounted",
            };
            return Err(ExecError::InvalidMount {
                dest: dest.to_owned(),
                reason: reason.to_owned(),
            });
        }
        return Ok(resolved.components);
    }
    let n = resolved.components.len();
    let mut host = mps.root.clone();
    for (i, comp) in resolved.components.iter().enumerate() {
        host.push(comp);
        let last = i + 1 == n;
        if i < resolved.first_missing {
            // An existing directory: mirror it with its attributes so the
            // merged view is unchanged.
            if !host.exists() {
                fs::create_dir(&host).context(|| format!("creating `{}`", host.display()))?;
                if let Some(meta) = resolved
                    .components
                    .get(..=i)
                    .and_then(|c| stack.dir_metadata(c))
                {
                    copy_attrs(&host, &meta)?;
                    mps.mirrored.push((host.clone(), meta));
                }
            }
        } else if last && matches!(want, Want::File) {
            if !host.exists() {
                File::create(&host).context(|| format!("creating `{}`", host.display()))?;
            }
        } else if !host.exists() {
            fs::create_dir(&host).context(|| format!("creating `{}`", host.display()))?;
        }
    }
    Ok(resolved.components)
}

/// Creates `dir/<name>` symlinks to `targets` and returns the overlay
/// `lowerdir` value (top first), relative to the scratch directory.
fn link_lowers(
    scratch: &Path,
    dir_name: &str,
    lowers_bottom_first: &[PathBuf],
    extra_top: Option<&str>,
    extra_bottom: Option<&str>,
) -> Result<String, ExecError> {
    let dir = scratch.join(dir_name);
    let mut names = Vec::new();
    if let Some(top) = extra_top {
        names.push(top.to_owned());
    }
    for (i, lower) in lowers_bottom_first.iter().enumerate().rev() {
        let link = dir.join(i.to_string());
        symlink(lower, &link).context(|| format!("creating `{}`", link.display()))?;
        names.push(format!("{dir_name}/{i}"));
    }
    if let Some(bottom) = extra_bottom {
        names.push(bottom.to_owned());
    }
    Ok(names.join(":"))
}

/// Appends an overlay mount to the setup script, retrying without
/// `uuid=off` for kernels that do not know it.
fn push_overlay_mount(script: &mut String, tools: &Tools, dirs: &str, target: &str, what: &str) {
    let mount = shell_quote(&path_str(&tools.mount));
    let _ = writeln!(
        script,
        "{mount} -t overlay overlay -o {} {target} 2>/dev/null || {mount} -t overlay overlay -o {} {target} || fail {}",
        shell_quote(&format!("{dirs},{OVERLAY_OPTS},uuid=off")),
        shell_quote(&format!("{dirs},{OVERLAY_OPTS}")),
        shell_quote(what),
    );
}

fn absolute(path: &Path) -> Result<PathBuf, ExecError> {
    fs::canonicalize(path).context(|| format!("resolving `{}`", path.display()))
}

fn lock_file(host_dir: &Path) -> Result<File, ExecError> {
    let mut name = host_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let path = host_dir.with_file_name(name);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .context(|| format!("opening cache lock `{}`", path.display()))
}

fn check_text(field: &'static str, value: &str, what: &str) -> Result<(), ExecError> {
    if value.contains('\0') {
        return Err(ExecError::InvalidSpec {
            field,
            reason: format!("{what} contains a NUL byte"),
        });
    }
    Ok(())
}

/// Rejects values that cannot be passed through bubblewrap's NUL-separated
/// `--args` stream or `/etc/hosts` (they could otherwise inject options).
fn validate(spec: &ExecSpec) -> Result<(), ExecError> {
    if spec.args.is_empty() {
        return Err(ExecError::EmptyArgs);
    }
    for arg in &spec.args {
        check_text("args", arg, "an argument")?;
    }
    let secret_keys = spec.secret_env.iter().map(|(k, v)| (k, v.expose()));
    for (key, value) in spec
        .env
        .iter()
        .map(|(k, v)| (k, v.as_str()))
        .chain(secret_keys)
    {
        if key.is_empty() || key.contains('=') {
            return Err(ExecError::InvalidSpec {
                field: "env",
                reason: format!("`{key}` is not a valid variable name"),
            });
        }
        check_text("env", key, "a variable name")?;
        check_text("env", value, &format!("the value of `{key}`"))?;
    }
    for (name, ip) in &spec.hosts {
        let bad = |s: &str| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '\0');
        if bad(name) || bad(ip) {
            return Err(ExecError::InvalidSpec {
                field: "hosts",
                reason: format!(
                    "`{name}` → `{ip}` must be a host name and an address without spaces"
                ),
            });
        }
    }
    if spec.hostname.is_empty()
        || spec
            .hostname
            .chars()
            .any(|c| c.is_whitespace() || c == '\0')
    {
        return Err(ExecError::InvalidSpec {
            field: "hostname",
            reason: format!("`{}` is not a valid host name", spec.hostname),
        });
    }
    check_text("workdir", &spec.workdir, "the working directory")?;
    check_text("user", &spec.user, "the user")?;
    for mount in &spec.mounts {
        check_text("mounts", mount.dest(), "a mount point")?;
    }
    Ok(())
}

/// Prepares a sandboxed run. Blocking: call it from `spawn_blocking`
/// (waiting for a `Locked` cache happens here).
pub(crate) fn prepare(
    tools: &Tools,
    scratch_root: &Path,
    secret_root: &Path,
    spec: &ExecSpec,
) -> Result<Prepared, ExecError> {
    validate(spec)?;
    let lowers: Vec<PathBuf> = spec
        .lowers
        .iter()
        .map(|l| absolute(l))
        .collect::<Result<_, _>>()?;
    let upper = absolute(&spec.upper)?;
    let work = absolute(&spec.work)?;
    let stack = Stack::new(&lowers);
    let identity = resolve_user(&stack, &spec.user)?;

    fs::create_dir_all(scratch_root)
        .context(|| format!("creating `{}`", scratch_root.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix("cuedag-exec-")
        .tempdir_in(scratch_root)
        .context(|| {
            format!(
                "creating a scratch directory in `{}`",
                scratch_root.display()
            )
        })?;
    let s = scratch.path();
    for dir in ["mp", "root", "root/merged", "files", "empty"] {
        fs::create_dir(s.join(dir)).context(|| format!("creating `{}`", s.join(dir).display()))?;
    }
    let mp = s.join("mp");
    let mut mps = MountPoints {
        root: mp.clone(),
        mirrored: Vec::new(),
    };
    if let Some(meta) = stack.root_metadata() {
        copy_attrs(&mp, &meta)?;
        if crate::layers::diff_is_empty(&upper)? {
            copy_attrs(&upper, &meta)?;
        }
    } else {
        fs::set_permissions(&mp, fs::Permissions::from_mode(0o755))
            .context(|| format!("setting mode of `{}`", mp.display()))?;
    }

    let mut script = String::from("cd ");
    script.push_str(&shell_quote(&path_str(s)));
    script.push_str(" || exit 125\n");
    script.push_str("fail() { echo \"cuedag-sandbox: $1\" >&2; exit 125; }\n");

    // Root overlay.
    let lowerdir = link_lowers(s, "root", &lowers, Some("mp"), None)?;
    symlink(&upper, s.join("root/u")).context(|| "linking the upper directory".to_owned())?;
    symlink(&work, s.join("root/w")).context(|| "linking the work directory".to_owned())?;
    push_overlay_mount(
        &mut script,
        tools,
        &format!("lowerdir={lowerdir},upperdir=root/u,workdir=root/w"),
        "root/merged",
        "cannot mount the root overlay",
    );

    let mut args = Args {
        args: Vec::new(),
        loggable: Vec::new(),
    };
    args.push(&[
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        &spec.hostname,
        "--die-with-parent",
        "--new-session",
    ]);
    if spec.network == Network::None {
        args.push(&["--unshare-net"]);
    }
    // The host's /usr and friends, for the inner `unshare` only: the
    // command itself is chrooted into the container's root.
    for dir in [
        "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
    ] {
        let Ok(meta) = fs::symlink_metadata(dir) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(target) = fs::read_link(dir) {
                args.push(&["--symlink", &path_str(&target), dir]);
            }
        } else if meta.is_dir() {
            args.push(&["--ro-bind", dir, dir]);
        }
    }
    let merged = path_str(&s.join("root/merged"));
    args.push(&["--bind", &merged, NEWROOT]);

    // Standard mounts.
    let proc_point = ensure_mountpoint(&stack, &mut mps, "/proc", Want::Dir)?;
    args.push(&["--proc", &join_container(&proc_point)]);
    let dev_point = ensure_mountpoint(&stack, &mut mps, "/dev", Want::Dir)?;
    args.push(&["--dev", &join_container(&dev_point)]);
    if Path::new("/sys").is_dir() {
        let sys_point = ensure_mountpoint(&stack, &mut mps, "/sys", Want::Dir)?;
        args.push(&["--ro-bind", "/sys", &join_container(&sys_point)]);
    }
    let hosts_file = s.join("files/hosts");
    let mut hosts = format!(
        "127.0.0.1\tlocalhost {0}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        spec.hostname
    );
    for (name, ip) in &spec.hosts {
        let _ = writeln!(hosts, "{ip}\t{name}");
    }
    fs::write(&hosts_file, hosts).context(|| "writing the hosts file".to_owned())?;
    fs::set_permissions(&hosts_file, fs::Permissions::from_mode(0o644))
        .context(|| "setting the hosts file mode".to_owned())?;
    let hosts_point = ensure_mountpoint(&stack, &mut mps, "/etc/hosts", Want::File)?;
    args.push(&[
        "--ro-bind",
        &path_str(&hosts_file),
        &join_container(&hosts_point),
    ]);
    if spec.network == Network::Host && Path::new("/etc/resolv.conf").exists() {
        let resolv_point = ensure_mountpoint(&stack, &mut mps, "/etc/resolv.conf", Want::File)?;
        args.push(&[
            "--ro-bind",
            "/etc/resolv.conf",
            &join_container(&resolv_point),
        ]);
    }

    // User mounts, parents first.
    let mut mounts: Vec<&Mount> = spec.mounts.iter().collect();
    mounts.sort_by_key(|m| lexical(m.dest()).len());
    let mut dir_mounts: Vec<Vec<String>> = Vec::new();
    let mut remount_ro: Vec<String> = Vec::new();
    let mut secrets: Option<TempDir> = None;
    let mut private_caches = Vec::new();
    let mut locks = Vec::new();
    for (index, mount) in mounts.iter().enumerate() {
        let dest = mount.dest();
        if !dest.starts_with('/') {
            return Err(ExecError::InvalidMount {
                dest: dest.to_owned(),
                reason: "the mount point must be an absolute path".to_owned(),
            });
        }
        let lex = lexical(dest);
        if lex.is_empty() {
            return Err(ExecError::InvalidMount {
                dest: dest.to_owned(),
                reason: "cannot mount over the root directory".to_owned(),
            });
        }
        let want = match mount {
            Mount::Secret { .. } | Mount::File { .. } | Mount::Socket { .. } => Want::File,
            Mount::Fs {
                lowers,
                source_subpath: Some(sub),
                ..
            } => {
                let fs_lowers: Vec<PathBuf> = lowers
                    .iter()
                    .map(|l| absolute(l))
                    .collect::<Result<_, _>>()?;
                match Stack::new(&fs_lowers).resolve(sub, true)?.node {
                    Some(node) if node.kind != NodeKind::Dir => Want::File,
                    _ => Want::Dir,
                }
            }
            _ => Want::Dir,
        };
        // Inside another directory mount, bubblewrap creates the mount point
        // in that mount (throwaway); otherwise it goes to the `mp` layer.
        let nested = dir_mounts.iter().any(|parent| lex.starts_with(parent));
        let point = if nested {
            join_container(&lex)
        } else {
            join_container(&ensure_mountpoint(&stack, &mut mps, dest, want)?)
        };
        match mount {
            Mount::Cache {
                host_dir, sharing, ..
            } => {
                fs::create_dir_all(host_dir)
                    .context(|| format!("creating cache directory `{}`", host_dir.display()))?;
                let lock = lock_file(host_dir)?;
                let source = match sharing {
                    CacheSharing::Shared => {
                        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared)
                            .map_err(|e| ExecError::io("locking a cache", e.into()))?;
                        locks.push(lock);
                        host_dir.clone()
                    }
                    CacheSharing::Locked => {
                        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                            .map_err(|e| ExecError::io("locking a cache", e.into()))?;
                        locks.push(lock);
                        host_dir.clone()
                    }
                    CacheSharing::Private => {
                        match rustix::fs::flock(
                            &lock,
                            rustix::fs::FlockOperation::NonBlockingLockExclusive,
                        ) {
                            Ok(()) => {
                                locks.push(lock);
                                host_dir.clone()
                            }
                            Err(_) => {
                                let fresh = tempfile::Builder::new()
                                    .prefix("cuedag-private-cache-")
                                    .tempdir_in(s)
                                    .context(|| "creating a private cache".to_owned())?;
                                fs::set_permissions(
                                    fresh.path(),
                                    fs::Permissions::from_mode(0o755),
                                )
                                .context(|| "setting a private cache mode".to_owned())?;
                                let path = fresh.path().to_path_buf();
                                private_caches.push(fresh);
                                path
                            }
                        }
                    }
                };
                args.push(&["--bind", &path_str(&source), &point]);
                dir_mounts.push(lex);
            }
            Mount::Tmp { .. } => {
                args.push(&["--perms", "1777", "--tmpfs", &point]);
                dir_mounts.push(lex);
            }
            Mount::Secret {
                contents,
                uid,
                gid,
                mode,
                ..
            } => {
                if secrets.is_none() {
                    secrets = Some(
                        tempfile::Builder::new()
                            .prefix("cuedag-secrets-")
                            .tempdir_in(secret_root)
                            .context(|| "creating the secrets directory".to_owned())?,
                    );
                }
                let dir = secrets.as_ref().map(TempDir::path).unwrap_or(s);
                let file = dir.join(format!("secret-{index}"));
                let mut options = OpenOptions::new();
                options.write(true).create_new(true).mode(0o600);
                let mut handle = options
                    .open(&file)
                    .context(|| "creating a secret file".to_owned())?;
                std::io::Write::write_all(&mut handle, contents.expose().as_bytes())
                    .context(|| "writing a secret file".to_owned())?;
                drop(handle);
                chown(&file, Some(*uid), Some(*gid))
                    .context(|| "setting a secret file's owner".to_owned())?;
                fs::set_permissions(&file, fs::Permissions::from_mode(mode & 0o7777))
                    .context(|| "setting a secret file's mode".to_owned())?;
                args.push(&["--ro-bind", &path_str(&file), &point]);
            }
            Mount::Socket { host_path, .. } => {
                if !host_path.exists() {
                    return Err(ExecError::InvalidMount {
                        dest: dest.to_owned(),
                        reason: format!("socket `{}` does not exist", host_path.display()),
                    });
                }
                args.push(&["--bind", &path_str(host_path), &point]);
            }
            Mount::File { contents, mode, .. } => {
                let file = s.join(format!("files/file-{index}"));
                fs::write(&file, contents).context(|| "writing a file mount".to_owned())?;
                fs::set_permissions(&file, fs::Permissions::from_mode(mode & 0o7777))
                    .context(|| "setting a file mount's mode".to_owned())?;
                args.push(&["--bind", &path_str(&file), &point]);
            }
            Mount::Fs {
                lowers: fs_lowers,
                source_subpath,
                readonly,
                ..
            } => {
                let fs_lowers: Vec<PathBuf> = fs_lowers
                    .iter()
                    .map(|l| absolute(l))
                    .collect::<Result<_, _>>()?;
                let name = format!("fs{index}");
                for dir in ["", "/u", "/w", "/merged"] {
                    let path = s.join(format!("{name}{dir}"));
                    fs::create_dir(&path).context(|| format!("creating `{}`", path.display()))?;
                }
                let fs_stack = Stack::new(&fs_lowers);
                if let Some(meta) = fs_stack.root_metadata() {
                    copy_attrs(&s.join(format!("{name}/u")), &meta)?;
                }
                let lowerdir = link_lowers(s, &name, &fs_lowers, None, Some("empty"))?;
                push_overlay_mount(
                    &mut script,
                    tools,
                    &format!("lowerdir={lowerdir},upperdir={name}/u,workdir={name}/w"),
                    &format!("{name}/merged"),
                    &format!("cannot mount the overlay for `{dest}`"),
                );
                let mut source = s.join(format!("{name}/merged"));
                if let Some(sub) = source_subpath {
                    let resolved = fs_stack.resolve(sub, true)?;
                    if resolved.node.is_none() {
                        return Err(ExecError::InvalidMount {
                            dest: dest.to_owned(),
                            reason: format!(
                                "source path `{sub}` does not exist in the mounted filesystem"
                            ),
                        });
                    }
                    for comp in &resolved.components {
                        source.push(comp);
                    }
                }
                args.push(&["--bind", &path_str(&source), &point]);
                if *readonly {
                    remount_ro.push(point.clone());
                }
                if matches!(want, Want::Dir) {
                    dir_mounts.push(lex);
                }
            }
        }
    }
    for point in &remount_ro {
        args.push(&["--remount-ro", point]);
    }

    // The working directory.
    let workdir = if spec.workdir.is_empty() {
        "/".to_owned()
    } else if spec.workdir.starts_with('/') {
        spec.workdir.clone()
    } else {
        format!("/{}", spec.workdir)
    };
    let work_lex = lexical(&workdir);
    if !dir_mounts.iter().any(|parent| work_lex.starts_with(parent)) {
        ensure_mountpoint(&stack, &mut mps, &workdir, Want::Dir).map_err(|err| match err {
            ExecError::InvalidMount { reason, .. } => ExecError::InvalidPath {
                path: workdir.clone(),
                reason: format!("cannot use it as the working directory: {reason}"),
            },
            other => other,
        })?;
    }

    mps.restore_times()?;

    args.push(&["--cap-drop", "ALL"]);
    for cap in CAPS {
        args.push(&["--cap-add", cap]);
    }

    // Environment: defaults, then the spec's, then secrets (later wins).
    args.push(&["--clearenv"]);
    let has = |key: &str| {
        spec.env.iter().any(|(k, _)| k == key) || spec.secret_env.iter().any(|(k, _)| k == key)
    };
    if !has("PATH") {
        args.push(&["--setenv", "PATH", DEFAULT_PATH]);
    }
    if !has("HOME") {
        args.push(&["--setenv", "HOME", &identity.home]);
    }
    for (key, value) in &spec.env {
        args.push(&["--setenv", key, value]);
    }
    for (key, value) in &spec.secret_env {
        args.push_secret(&["--setenv", key], value.expose());
    }

    // bubblewrap takes the command on its own command line, not from
    // `--args`: it is passed to the script as positional parameters.
    // `setpriv` sets the gid and supplementary groups, then `unshare`
    // chroots, changes directory and sets the uid.
    let groups: Vec<String> = identity.groups.iter().map(u32::to_string).collect();
    let mut command = vec![
        path_str(&tools.setpriv),
        "--regid".to_owned(),
        identity.gid.to_string(),
        "--groups".to_owned(),
        groups.join(","),
        "--".to_owned(),
        path_str(&tools.unshare),
        format!("--root={NEWROOT}"),
        format!("--wd={workdir}"),
        "--setuid".to_owned(),
        identity.uid.to_string(),
        "--".to_owned(),
    ];
    command.extend(spec.args.iter().cloned());

    script.push_str("cd / || exit 125\n");
    let _ = writeln!(
        script,
        "exec {} --args 0 -- \"$@\"",
        shell_quote(&path_str(&tools.bwrap))
    );

    let mut bwrap_args = Vec::new();
    for arg in &args.args {
        bwrap_args.extend_from_slice(arg.as_bytes());
        bwrap_args.push(0);
    }
    Ok(Prepared {
        script,
        bwrap_args,
        loggable_args: args.loggable,
        command,
        scratch: Some(scratch),
        _secrets: secrets,
        _private_caches: private_caches,
        _locks: locks,
    })
}
