//! The executor: walks a [`TaskGraph`] in dependency order, runs ready tasks
//! concurrently (capped by `--jobs`), fills each task's outputs back through
//! a [`PlanDriver`] before its dependents start, and cancels everything on
//! the first failure.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cuedag_evaluator::plan::{CuePath, TaskGraph, TaskValue};
use cuedag_evaluator::Location;
use petgraph::graph::NodeIndex;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backend::{Backend, SessionOptions, TaskContext, TaskRequest};
use crate::events::{Level, Progress, TaskState};
use crate::secret::{SecretStore, SocketStore};
use crate::BackendError;

/// The plan side of a run: gives each task its inputs once its dependencies
/// are filled, and takes its outputs back. Implemented over the evaluator.
pub trait PlanDriver {
    /// The task's inputs, re-evaluated with everything filled so far.
    fn inputs(&mut self, task: &TaskRequestInfo) -> Result<TaskValue, BackendError>;

    /// Fills a completed task's outputs into the plan.
    fn fill(&mut self, task: &TaskRequestInfo, outputs: &TaskValue) -> Result<(), BackendError>;

    /// Best-effort inputs for `--dry-run` (dependencies have not run, so
    /// their outputs show as declared types). Defaults to [`Self::inputs`].
    fn preview(&mut self, task: &TaskRequestInfo) -> Result<TaskValue, BackendError> {
        self.inputs(task)
    }

    /// Where the task's `path` value is written (see [`TaskRequest::origin`]).
    fn origin(&mut self, _task: &TaskRequestInfo) -> Option<Location> {
        None
    }
}

/// A task as the driver sees it: path and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRequestInfo {
    /// The task path.
    pub path: CuePath,
    /// The task type.
    pub task_type: String,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How many tasks may run at once (`--jobs`), at least 1.
    pub jobs: usize,
    /// Walk and log, run nothing (`--dry-run`).
    pub dry_run: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jobs: std::thread::available_parallelism().map_or(4, |n| n.get().max(4)),
            dry_run: false,
        }
    }
}

/// What happened to one task of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// The task path.
    pub path: CuePath,
    /// The task type.
    pub task_type: String,
    /// Its inputs as handed to the backend (or previewed in a dry run).
    pub inputs: TaskValue,
    /// Its outputs (`None` in a dry run).
    pub outputs: Option<TaskValue>,
    /// How long it ran.
    pub duration: Duration,
}

/// The tasks of a finished run, in the order they finished (topological
/// order in a dry run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    /// One record per task.
    pub tasks: Vec<TaskRecord>,
}

/// A failed run: the first failing task and why.
#[derive(Debug, thiserror::Error)]
#[error("{}{error}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct RunError {
    /// The failing task's path (empty for session errors, such as a failed
    /// cache export: then only the error is shown).
    pub path: String,
    /// The error.
    pub error: BackendError,
}

/// Runs task graphs on a backend.
pub struct Executor {
    backend: Arc<dyn Backend>,
    progress: Progress,
    secrets: SecretStore,
    sockets: SocketStore,
    session: Arc<SessionOptions>,
}

struct Finished {
    node: NodeIndex,
    request: TaskRequest,
    result: Result<TaskValue, BackendError>,
    duration: Duration,
}

impl Executor {
    /// An executor over `backend`, reporting to `progress`.
    pub fn new(backend: Arc<dyn Backend>, progress: Progress, session: SessionOptions) -> Self {
        Executor {
            backend,
            progress,
            secrets: SecretStore::new(),
            sockets: SocketStore::default(),
            session: Arc::new(session),
        }
    }

    /// The run's secret store.
    pub fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    /// Runs every task of `graph`. `interrupt` aborts the run from outside
    /// (Ctrl-C). Backends are prepared first and finished last.
    pub async fn run(
        &self,
        graph: &TaskGraph,
        driver: &mut dyn PlanDriver,
        options: &RunOptions,
        interrupt: CancellationToken,
    ) -> Result<RunReport, RunError> {
        if options.dry_run {
            return self.dry_run(graph, driver);
        }
        self.backend
            .prepare(&self.session)
            .await
            .map_err(|error| RunError {
                path: String::new(),
                error,
            })?;
        let result = self.run_graph(graph, driver, options, interrupt).await;
        let finished = self.backend.finish().await;
        let report = result?;
        finished.map_err(|error| RunError {
            path: String::new(),
            error,
        })?;
        Ok(report)
    }

    fn dry_run(
        &self,
        graph: &TaskGraph,
        driver: &mut dyn PlanDriver,
    ) -> Result<RunReport, RunError> {
        let mut report = RunReport::default();
        for node in graph.topological_order() {
            let task = &graph.graph[node];
            let info = TaskRequestInfo {
                path: task.path.clone(),
                task_type: task.task_type.clone(),
            };
            let path = task.path.to_string();
            let inputs = driver.preview(&info).map_err(|error| RunError {
                path: path.clone(),
                error,
            })?;
            self.progress.state(&path, TaskState::Skipped, None, None);
            report.tasks.push(TaskRecord {
                path: info.path,
                task_type: info.task_type,
                inputs,
                outputs: None,
                duration: Duration::ZERO,
            });
        }
        Ok(report)
    }

    async fn run_graph(
        &self,
        graph: &TaskGraph,
        driver: &mut dyn PlanDriver,
        options: &RunOptions,
        interrupt: CancellationToken,
    ) -> Result<RunReport, RunError> {
        let cancel = interrupt.child_token();
        let semaphore = Arc::new(Semaphore::new(options.jobs.max(1)));
        let mut remaining_deps: Vec<usize> = graph
            .graph
            .node_indices()
            .map(|node| graph.dependencies(node).len())
            .collect();
        let mut ready: BTreeSet<NodeIndex> = graph
            .graph
            .node_indices()
            .filter(|node| remaining_deps[node.index()] == 0)
            .collect();
        let mut running: JoinSet<Finished> = JoinSet::new();
        let mut report = RunReport::default();
        let mut first_error: Option<RunError> = None;

        loop {
            // Start every ready task (in discovery order) unless aborting.
            while first_error.is_none() && !cancel.is_cancelled() {
                let Some(node) = ready.pop_first() else { break };
                let task = &graph.graph[node];
                let info = TaskRequestInfo {
                    path: task.path.clone(),
                    task_type: task.task_type.clone(),
                };
                let path = task.path.to_string();
                for dep in graph.dependencies(node) {
                    self.progress.log_with(
                        Some(&path),
                        Level::Debug,
                        "dependency detected",
                        vec![("dependency".into(), graph.graph[dep].path.to_string())],
                    );
                }
                match driver.inputs(&info) {
                    Ok(inputs) => {
                        let origin = driver.origin(&info);
                        let request = TaskRequest {
                            path: info.path,
                            task_type: info.task_type,
                            inputs,
                            origin,
                        };
                        self.spawn(&mut running, node, request, &semaphore, &cancel);
                    }
                    Err(error) => {
                        self.progress.state(
                            &path,
                            TaskState::Failed,
                            None,
                            Some(error.to_string()),
                        );
                        first_error = Some(RunError { path, error });
                        cancel.cancel();
                    }
                }
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let finished = match joined {
                Ok(finished) => finished,
                Err(join_error) => {
                    if first_error.is_none() {
                        first_error = Some(RunError {
                            path: String::new(),
                            error: BackendError::Failed(format!("task panicked: {join_error}")),
                        });
                    }
                    cancel.cancel();
                    continue;
                }
            };
            let path = finished.request.path.to_string();
            match finished.result {
                Ok(outputs) => {
                    if let Err(error) = driver.fill(
                        &TaskRequestInfo {
                            path: finished.request.path.clone(),
                            task_type: finished.request.task_type.clone(),
                        },
                        &outputs,
                    ) {
                        self.progress.state(
                            &path,
                            TaskState::Failed,
                            Some(finished.duration),
                            Some(error.to_string()),
                        );
                        if first_error.is_none() {
                            first_error = Some(RunError { path, error });
                        }
                        cancel.cancel();
                        continue;
                    }
                    self.progress
                        .state(&path, TaskState::Completed, Some(finished.duration), None);
                    for next in graph.dependents(finished.node) {
                        let count = &mut remaining_deps[next.index()];
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            ready.insert(next);
                        }
                    }
                    report.tasks.push(TaskRecord {
                        path: finished.request.path,
                        task_type: finished.request.task_type,
                        inputs: finished.request.inputs,
                        outputs: Some(outputs),
                        duration: finished.duration,
                    });
                }
                Err(BackendError::Cancelled) => {
                    self.progress
                        .state(&path, TaskState::Cancelled, Some(finished.duration), None);
                }
                Err(error) => {
                    self.progress.state(
                        &path,
                        TaskState::Failed,
                        Some(finished.duration),
                        Some(error.to_string()),
                    );
                    if first_error.is_none() {
                        first_error = Some(RunError { path, error });
                    }
                    cancel.cancel();
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        if interrupt.is_cancelled() {
            return Err(RunError {
                path: String::new(),
                error: BackendError::Cancelled,
            });
        }
        Ok(report)
    }

    fn spawn(
        &self,
        running: &mut JoinSet<Finished>,
        node: NodeIndex,
        request: TaskRequest,
        semaphore: &Arc<Semaphore>,
        cancel: &CancellationToken,
    ) {
        let backend = Arc::clone(&self.backend);
        let semaphore = Arc::clone(semaphore);
        let context = TaskContext {
            task: request.path.to_string(),
            progress: self.progress.clone(),
            secrets: self.secrets.clone(),
            sockets: self.sockets.clone(),
            cancel: cancel.clone(),
            session: Arc::clone(&self.session),
        };
        let span = tracing::info_span!("task", task = %context.task, r#type = %request.task_type);
        running.spawn(
            async move {
                let permit = tokio::select! {
                    permit = semaphore.acquire_owned() => permit.ok(),
                    () = context.cancel.cancelled() => None,
                };
                let start = Instant::now();
                let result = match permit {
                    None => Err(BackendError::Cancelled),
                    Some(_permit) => {
                        context
                            .progress
                            .state(&context.task, TaskState::Computing, None, None);
                        tokio::select! {
                            result = backend.run(&request, &context) => result,
                            () = context.cancel.cancelled() => Err(BackendError::Cancelled),
                        }
                    }
                };
                Finished {
                    node,
                    duration: start.elapsed(),
                    request,
                    result,
                }
            }
            .instrument(span),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use cuedag_evaluator::plan::{DependencyReason, Task};

    use super::*;
    use crate::backend::BoxFuture;
    use crate::events::{EventKind, Progress};

    /// Sleeps per task; fails tasks whose path ends with `fail`; tasks whose
    /// path ends with `hang` wait until cancelled.
    #[derive(Default)]
    struct FakeBackend {
        running: AtomicUsize,
        max_running: AtomicUsize,
    }

    impl Backend for FakeBackend {
        fn name(&self) -> &'static str {
            "fake"
        }

        fn handles(&self, _task: &TaskRequest) -> bool {
            true
        }

        fn run<'a>(
            &'a self,
            task: &'a TaskRequest,
            context: &'a TaskContext,
        ) -> BoxFuture<'a, Result<TaskValue, BackendError>> {
            Box::pin(async move {
                let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_running.fetch_max(now, Ordering::SeqCst);
                context.log(Level::Info, "working");
                let path = task.path.to_string();
                let result = if path.ends_with("fail") {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err(BackendError::Failed("boom".into()))
                } else if path.ends_with("hang") {
                    std::future::pending::<()>().await;
                    Ok(TaskValue::Null)
                } else {
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    Ok(TaskValue::structure([(
                        "output",
                        TaskValue::string(format!("out-of-{path}")),
                    )]))
                };
                self.running.fetch_sub(1, Ordering::SeqCst);
                result
            })
        }
    }

    /// Inputs of a task = the outputs of its dependencies, which must have
    /// been filled already.
    struct FakeDriver {
        deps: BTreeMap<String, Vec<String>>,
        filled: BTreeMap<String, TaskValue>,
        fill_order: Vec<String>,
    }

    impl PlanDriver for FakeDriver {
        fn inputs(&mut self, task: &TaskRequestInfo) -> Result<TaskValue, BackendError> {
            let mut fields = Vec::new();
            for dep in self
                .deps
                .get(&task.path.to_string())
                .cloned()
                .unwrap_or_default()
            {
                let value = self
                    .filled
                    .get(&dep)
                    .cloned()
                    .ok_or_else(|| BackendError::Plan(format!("{dep} not filled yet")))?;
                fields.push((dep, value));
            }
            Ok(TaskValue::structure(fields))
        }

        fn fill(
            &mut self,
            task: &TaskRequestInfo,
            outputs: &TaskValue,
        ) -> Result<(), BackendError> {
            self.fill_order.push(task.path.to_string());
            self.filled.insert(task.path.to_string(), outputs.clone());
            Ok(())
        }
    }

    fn graph(paths: &[&str], edges: &[(usize, usize)]) -> (TaskGraph, FakeDriver) {
        let tasks = paths
            .iter()
            .map(|path| Task {
                path: CuePath::new([*path]),
                task_type: "Fake".into(),
            })
            .collect();
        let triples: Vec<_> = edges
            .iter()
            .map(|&(dependent, dependency)| (dependent, dependency, DependencyReason::Reference))
            .collect();
        let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for &(dependent, dependency) in edges {
            deps.entry(paths[dependent].to_string())
                .or_default()
                .push(paths[dependency].to_string());
        }
        let driver = FakeDriver {
            deps,
            filled: BTreeMap::new(),
            fill_order: Vec::new(),
        };
        (TaskGraph::new(tasks, &triples).unwrap(), driver)
    }

    fn states(
        events: &mut tokio::sync::mpsc::UnboundedReceiver<crate::events::Event>,
    ) -> Vec<(String, TaskState)> {
        let mut out = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let EventKind::State { state, .. } = event.kind {
                out.push((event.task.unwrap_or_default(), state));
            }
        }
        out
    }

    #[tokio::test]
    async fn runs_in_dependency_order_with_fill_back() {
        // a → b → d, a → c → d
        let (graph, mut driver) = graph(&["a", "b", "c", "d"], &[(1, 0), (2, 0), (3, 1), (3, 2)]);
        let backend = Arc::new(FakeBackend::default());
        let (progress, mut events) = Progress::channel();
        let executor = Executor::new(backend.clone(), progress, SessionOptions::default());
        let options = RunOptions {
            jobs: 4,
            dry_run: false,
        };
        let report = executor
            .run(&graph, &mut driver, &options, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(driver.fill_order.first().map(String::as_str), Some("a"));
        assert_eq!(driver.fill_order.last().map(String::as_str), Some("d"));
        let d = report
            .tasks
            .iter()
            .find(|t| t.path.to_string() == "d")
            .unwrap();
        assert_eq!(
            d.inputs.get("b").and_then(|v| v.get("output")),
            Some(&TaskValue::string("out-of-b"))
        );
        // b and c ran at the same time.
        assert_eq!(backend.max_running.load(Ordering::SeqCst), 2);
        let states = states(&mut events);
        assert_eq!(
            states
                .iter()
                .filter(|(_, s)| *s == TaskState::Completed)
                .count(),
            4
        );
        assert_eq!(
            states.first(),
            Some(&("a".to_string(), TaskState::Computing))
        );
    }

    #[tokio::test]
    async fn caps_concurrency_at_jobs() {
        let names: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        let paths: Vec<&str> = names.iter().map(String::as_str).collect();
        let (graph, mut driver) = graph(&paths, &[]);
        let backend = Arc::new(FakeBackend::default());
        let executor = Executor::new(
            backend.clone(),
            Progress::disabled(),
            SessionOptions::default(),
        );
        let options = RunOptions {
            jobs: 3,
            dry_run: false,
        };
        let report = executor
            .run(&graph, &mut driver, &options, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(report.tasks.len(), 8);
        assert_eq!(backend.max_running.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn first_failure_cancels_siblings_and_skips_dependents() {
        // fail and hang run together; after depends on fail.
        let (graph, mut driver) = graph(&["x_fail", "y_hang", "after"], &[(2, 0)]);
        let backend = Arc::new(FakeBackend::default());
        let (progress, mut events) = Progress::channel();
        let executor = Executor::new(backend, progress, SessionOptions::default());
        let err = executor
            .run(
                &graph,
                &mut driver,
                &RunOptions::default(),
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "x_fail: boom");
        let states = states(&mut events);
        assert!(
            states.contains(&("x_fail".into(), TaskState::Failed)),
            "{states:?}"
        );
        assert!(
            states.contains(&("y_hang".into(), TaskState::Cancelled)),
            "{states:?}"
        );
        assert!(
            !states.iter().any(|(path, _)| path == "after"),
            "{states:?}"
        );
    }

    #[tokio::test]
    async fn interrupt_cancels_the_run() {
        let (graph, mut driver) = graph(&["only_hang"], &[]);
        let executor = Executor::new(
            Arc::new(FakeBackend::default()),
            Progress::disabled(),
            SessionOptions::default(),
        );
        let interrupt = CancellationToken::new();
        let trigger = interrupt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            trigger.cancel();
        });
        let err = executor
            .run(&graph, &mut driver, &RunOptions::default(), interrupt)
            .await
            .unwrap_err();
        assert!(matches!(err.error, BackendError::Cancelled), "{err}");
    }

    #[tokio::test]
    async fn dry_run_skips_everything_in_topological_order() {
        struct Preview(Mutex<Vec<String>>);
        impl PlanDriver for Preview {
            fn inputs(&mut self, task: &TaskRequestInfo) -> Result<TaskValue, BackendError> {
                self.0.lock().unwrap().push(task.path.to_string());
                Ok(TaskValue::Null)
            }
            fn fill(&mut self, _: &TaskRequestInfo, _: &TaskValue) -> Result<(), BackendError> {
                Err(BackendError::Plan("dry run must not fill".into()))
            }
        }
        let (graph, _) = graph(&["w", "r", "p"], &[(0, 2), (2, 1)]);
        let backend = Arc::new(FakeBackend::default());
        let (progress, mut events) = Progress::channel();
        let executor = Executor::new(backend.clone(), progress, SessionOptions::default());
        let mut driver = Preview(Mutex::new(Vec::new()));
        let report = executor
            .run(
                &graph,
                &mut driver,
                &RunOptions {
                    jobs: 2,
                    dry_run: true,
                },
                CancellationToken::new(),
            )
            .await
            .unwrap();
        let order: Vec<String> = report.tasks.iter().map(|t| t.path.to_string()).collect();
        assert_eq!(order, ["r", "p", "w"]);
        assert_eq!(backend.max_running.load(Ordering::SeqCst), 0);
        assert!(states(&mut events)
            .iter()
            .all(|(_, s)| *s == TaskState::Skipped));
    }
}
