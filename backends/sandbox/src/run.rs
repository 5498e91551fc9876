//! Spawning the sandbox, streaming its output, waiting, signalling.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ExecError;
use crate::prepare::{prepare, Prepared, Tools};
use crate::spec::ExecSpec;

/// Which stream a line of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    /// The command's standard output.
    Stdout,
    /// The command's standard error.
    Stderr,
}

/// Receives every line the command prints (without the newline).
pub type OutputSink = Arc<dyn Fn(OutputStream, &str) + Send + Sync>;

/// A sink that drops every line.
pub fn discard_output() -> OutputSink {
    Arc::new(|_, _| {})
}

/// A sink that sends every line to `tx` (lines are dropped once the
/// receiver is gone).
pub fn channel_output(
    tx: tokio::sync::mpsc::UnboundedSender<(OutputStream, String)>,
) -> OutputSink {
    Arc::new(move |stream, line| {
        let _ = tx.send((stream, line.to_owned()));
    })
}

/// A successful run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecResult {
    /// Always 0 for [`Sandbox::run`]; the status for [`Running::wait`].
    pub exit_code: i32,
    /// Wall time from spawn to exit.
    pub duration: Duration,
}

/// Longest line handed to the sink; longer lines are split.
const MAX_LINE: usize = 64 * 1024;

/// The last bytes of output, kept for error messages.
struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
    limit: usize,
    first_stderr: Option<String>,
}

impl Tail {
    fn push(&mut self, stream: OutputStream, line: &str) {
        if stream == OutputStream::Stderr && self.first_stderr.is_none() {
            self.first_stderr = Some(line.to_owned());
        }
        self.bytes += line.len() + 1;
        self.lines.push_back(line.to_owned());
        while self.bytes > self.limit && self.lines.len() > 1 {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len() + 1;
            }
        }
    }

    fn text(&self) -> String {
        self.lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs commands in a sandbox: a private mount namespace (util-linux
/// `unshare`) where the layer stack is mounted with overlayfs, then
/// bubblewrap for the other namespaces, `/proc`, `/dev` and the mounts,
/// then `unshare --root` to enter the container's root as its user.
#[derive(Clone, Debug)]
pub struct Sandbox {
    tools: Tools,
    scratch_root: PathBuf,
    secret_root: PathBuf,
    tail_bytes: usize,
}

fn find_tool(name: &'static str, package: &'static str) -> Result<PathBuf, ExecError> {
    let dirs = ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"];
    for dir in dirs {
        let path = Path::new(dir).join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(ExecError::ToolMissing {
        tool: name,
        searched: dirs.join(", "),
        package,
    })
}

impl Sandbox {
    /// Checks that we are root and finds the host tools (`bwrap`, `unshare`,
    /// `setpriv`, `mount`, `sh`); per-exec
    /// scratch files go under the system temp directory, secrets under
    /// `/dev/shm` when it exists.
    pub fn new() -> Result<Self, ExecError> {
        if !rustix::process::geteuid().is_root() {
            return Err(ExecError::NotRoot);
        }
        let tools = Tools {
            bwrap: find_tool("bwrap", "bubblewrap")?,
            unshare: find_tool("unshare", "util-linux")?,
            setpriv: find_tool("setpriv", "util-linux")?,
            mount: find_tool("mount", "mount")?,
            sh: find_tool("sh", "dash")?,
        };
        let shm = Path::new("/dev/shm");
        let scratch_root = std::env::temp_dir();
        let secret_root = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            scratch_root.clone()
        };
        Ok(Self {
            tools,
            scratch_root,
            secret_root,
            tail_bytes: 16 * 1024,
        })
    }

    /// Puts per-exec scratch files (throwaway uppers of writable `Fs`
    /// mounts, mount points, file mounts) under `dir`. It must be on a file
    /// system overlayfs accepts as an upper (ext4, xfs, btrfs, tmpfs).
    pub fn with_scratch_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch_root = dir.into();
        self
    }

    /// How many bytes of output to keep for error messages (default 16 KiB).
    pub fn with_tail_bytes(mut self, bytes: usize) -> Self {
        self.tail_bytes = bytes.max(1);
        self
    }

    /// Runs `spec` to completion. A non-zero exit is an error carrying the
    /// tail of the output. Cancelling `cancel`, or dropping the future,
    /// kills the whole process tree.
    pub async fn run(
        &self,
        spec: &ExecSpec,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<ExecResult, ExecError> {
        let mut running = self.start(spec, output).await?;
        let status = tokio::select! {
            status = running.wait_status() => status?,
            () = cancel.cancelled() => {
                running.kill().await;
                return Err(ExecError::Cancelled);
            }
        };
        running.finish(status, true).await
    }

    /// Starts `spec` and returns as soon as the process is spawned
    /// (`core.#Start`). Output keeps streaming to `output`.
    pub async fn start(&self, spec: &ExecSpec, output: OutputSink) -> Result<Running, ExecError> {
        let tools = self.tools.clone();
        let scratch_root = self.scratch_root.clone();
        let secret_root = self.secret_root.clone();
        let owned_spec = spec.clone();
        let mut prepared = tokio::task::spawn_blocking(move || {
            prepare(&tools, &scratch_root, &secret_root, &owned_spec)
        })
        .await
        .map_err(|err| ExecError::io("preparing the sandbox", std::io::Error::other(err)))??;
        tracing::debug!(
            command = %spec.command_line(),
            bwrap_args = ?prepared.loggable_args,
            "starting sandboxed process"
        );
        let mut command = Command::new(&self.tools.unshare);
        command
            .arg("--mount")
            .arg("--propagation")
            .arg("private")
            .arg("--")
            .arg(&self.tools.sh)
            .arg("-c")
            .arg(&prepared.script)
            .arg("sh")
            .args(&prepared.command)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|err| ExecError::io("spawning the sandbox", err))?;
        if let Some(mut stdin) = child.stdin.take() {
            let payload = std::mem::take(&mut prepared.bwrap_args);
            tokio::spawn(async move {
                // The sandbox may die before reading everything; that shows
                // up as its exit status.
                let _ = stdin.write_all(&payload).await;
                let _ = stdin.shutdown().await;
            });
        }
        let tail = Arc::new(Mutex::new(Tail {
            lines: VecDeque::new(),
            bytes: 0,
            limit: self.tail_bytes,
            first_stderr: None,
        }));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(spawn_reader(
                stdout,
                OutputStream::Stdout,
                output.clone(),
                tail.clone(),
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(spawn_reader(
                stderr,
                OutputStream::Stderr,
                output,
                tail.clone(),
            ));
        }
        Ok(Running {
            child,
            readers,
            tail,
            command: spec.command_line(),
            program: spec.args.first().cloned().unwrap_or_default(),
            started,
            upper: spec.upper.clone(),
            _prepared: prepared,
        })
    }
}

fn spawn_reader<R>(
    reader: R,
    stream: OutputStream,
    sink: OutputSink,
    tail: Arc<Mutex<Tail>>,
) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(MAX_LINE, reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = {
                let mut limited = (&mut reader).take(MAX_LINE as u64);
                limited.read_until(b'\n', &mut buf).await
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if buf.last() == Some(&b'\n') {
                        buf.pop();
                    }
                    let line = String::from_utf8_lossy(&buf);
                    if let Ok(mut tail) = tail.lock() {
                        tail.push(stream, &line);
                    }
                    sink(stream, &line);
                }
            }
        }
    })
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 255,
    }
}

/// A started sandboxed process (`core.#Start`).
pub struct Running {
    child: Child,
    readers: Vec<JoinHandle<()>>,
    tail: Arc<Mutex<Tail>>,
    command: String,
    program: String,
    started: Instant,
    upper: PathBuf,
    _prepared: Prepared,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("pid", &self.child.id())
            .field("command", &self.command)
            .finish()
    }
}

impl Running {
    /// The host pid of the sandbox's outer process, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The scratch directory of this run (mount points, file mounts).
    pub fn scratch_dir(&self) -> &Path {
        self.prepared_scratch()
    }

    fn prepared_scratch(&self) -> &Path {
        self._prepared
            .scratch
            .as_ref()
            .map_or(Path::new("/"), TempDir::path)
    }

    async fn wait_status(&mut self) -> Result<ExitStatus, ExecError> {
        self.child
            .wait()
            .await
            .map_err(|err| ExecError::io("waiting for the sandbox", err))
    }

    /// Kills the whole process tree. The outer process is stopped first so
    /// that it cannot create children while its descendants are collected,
    /// then every descendant gets SIGKILL (killing bubblewrap's init, pid 1
    /// of the sandbox, takes the whole pid namespace down, even when it was
    /// still setting up and `--die-with-parent` had not taken effect yet),
    /// then the outer process.
    fn kill_tree(&mut self) {
        if let Some(outer) = self.child.id().and_then(to_pid) {
            let _ = rustix::process::kill_process(outer, rustix::process::Signal::STOP);
            let table = process_table();
            let mut stack = vec![outer.as_raw_pid().unsigned_abs()];
            while let Some(pid) = stack.pop() {
                for child in children(&table, pid) {
                    if let Some(child_pid) = to_pid(child) {
                        let _ =
                            rustix::process::kill_process(child_pid, rustix::process::Signal::KILL);
                    }
                    stack.push(child);
                }
            }
        }
        let _ = self.child.start_kill();
    }

    async fn kill(&mut self) {
        self.kill_tree();
        let _ = self.child.wait().await;
        for reader in self.readers.drain(..) {
            reader.abort();
        }
    }

    /// Finds the host pid of the command (the child of bubblewrap's init),
    /// waiting briefly for it to appear.
    async fn command_pid(&self) -> Result<u32, ExecError> {
        let Some(outer) = self.child.id() else {
            return Err(ExecError::NotRunning);
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = tokio::task::spawn_blocking(move || {
                let table = process_table();
                let inits = children(&table, outer);
                inits
                    .iter()
                    .flat_map(|init| children(&table, *init))
                    .map(|pid| (pid, comm(pid)))
                    .next()
            })
            .await
            .ok()
            .flatten();
            match found {
                Some((pid, name)) if name != "unshare" && name != "setpriv" => return Ok(pid),
                Some((pid, _)) if Instant::now() >= deadline => return Ok(pid),
                None if Instant::now() >= deadline => return Err(ExecError::NotRunning),
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// Sends signal `signal` (1–31) to the command.
    pub async fn signal(&self, signal: i32) -> Result<(), ExecError> {
        let sig = if (1..=31).contains(&signal) {
            rustix::process::Signal::from_named_raw(signal)
        } else {
            None
        };
        let Some(sig) = sig else {
            return Err(ExecError::InvalidSignal(signal));
        };
        let pid = self.command_pid().await?;
        let raw = i32::try_from(pid).map_err(|_| ExecError::NotRunning)?;
        let Some(pid) = rustix::process::Pid::from_raw(raw) else {
            return Err(ExecError::NotRunning);
        };
        rustix::process::kill_process(pid, sig)
            .map_err(|err| ExecError::io(format!("sending signal {signal}"), err.into()))
    }

    /// Waits up to `timeout` for the command to exit on its own, then kills
    /// it; returns its exit code (128 + signal when killed).
    pub async fn stop(mut self, timeout: Duration) -> Result<i32, ExecError> {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.map_err(|err| ExecError::io("waiting for the sandbox", err))?,
            Err(_) => {
                if let Ok(pid) = self.command_pid().await {
                    if let Some(pid) = i32::try_from(pid)
                        .ok()
                        .and_then(rustix::process::Pid::from_raw)
                    {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
                match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
                    Ok(status) => {
                        status.map_err(|err| ExecError::io("waiting for the sandbox", err))?
                    }
                    Err(_) => {
                        self.kill_tree();
                        self.wait_status().await?
                    }
                }
            }
        };
        self.join_readers().await;
        Ok(exit_code(status))
    }

    /// Waits for the command to exit and returns its status, even non-zero.
    pub async fn wait(mut self) -> Result<ExecResult, ExecError> {
        let status = self.wait_status().await?;
        self.finish(status, false).await
    }

    /// Waits for the output readers, then strips the xattrs overlayfs may
    /// leave on the upper's root (older kernels without `uuid=off`).
    async fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        for name in ["trusted.overlay.uuid", "trusted.overlay.origin"] {
            let _ = rustix::fs::lremovexattr(&self.upper, name);
        }
    }

    async fn finish(mut self, status: ExitStatus, check: bool) -> Result<ExecResult, ExecError> {
        self.join_readers().await;
        let duration = self.started.elapsed();
        let code = exit_code(status);
        tracing::debug!(command = %self.command, code, ?duration, "sandboxed process exited");
        let (tail, first_stderr) = match self.tail.lock() {
            Ok(tail) => (tail.text(), tail.first_stderr.clone()),
            Err(_) => (String::new(), None),
        };
        let first_stderr = first_stderr.unwrap_or_default();
        let setup_failed = match code {
            125 => {
                first_stderr.starts_with("cuedag-sandbox: ") || first_stderr.starts_with("mount: ")
            }
            1 => {
                first_stderr.starts_with("bwrap: ")
                    || first_stderr.starts_with("unshare: ")
                    || first_stderr.starts_with("setpriv: ")
            }
            _ => false,
        };
        if setup_failed {
            return Err(ExecError::Setup { message: tail });
        }
        let exec_prefix = format!("unshare: failed to execute {}: ", self.program);
        if (code == 126 || code == 127) && first_stderr.starts_with(&exec_prefix) {
            let reason = first_stderr.get(exec_prefix.len()..).unwrap_or_default();
            // Say it like runc when `PATH` was searched.
            let reason = if !self.program.contains('/') && reason == "No such file or directory" {
                "executable file not found in $PATH"
            } else {
                reason
            };
            return Err(ExecError::ProgramNotFound {
                program: self.program.clone(),
                reason: reason.to_owned(),
            });
        }
        if check && code != 0 {
            return Err(ExecError::NonZeroExit {
                command: self.command.clone(),
                code,
                output_tail: tail,
            });
        }
        Ok(ExecResult {
            exit_code: code,
            duration,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill_tree();
        }
    }
}

fn to_pid(pid: u32) -> Option<rustix::process::Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
}

type ProcTable = Vec<(u32, u32)>;

/// (pid, ppid) of every process.
fn process_table() -> ProcTable {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces.
        let Some(after) = stat.rfind(')').and_then(|i| stat.get(i + 1..)) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let _state = fields.next();
        if let Some(ppid) = fields.next().and_then(|p| p.parse::<u32>().ok()) {
            out.push((pid, ppid));
        }
    }
    out
}

fn children(table: &ProcTable, parent: u32) -> Vec<u32> {
    table
        .iter()
        .filter(|(_, ppid)| *ppid == parent)
        .map(|(pid, _)| *pid)
        .collect()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
