//! Progress events: task lifecycle and log lines attributed to tasks.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Started.
    Computing,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Stopped because another task failed or the run was interrupted.
    Cancelled,
    /// Not run (`--dry-run`).
    Skipped,
}

impl TaskState {
    /// The word Dagger logs for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Computing => "computing",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
            TaskState::Skipped => "skipped",
        }
    }
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal.
    Info,
    /// Suspicious.
    Warn,
    /// Wrong.
    Error,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A task changed state.
    State {
        /// The new state.
        state: TaskState,
        /// How long the task ran (for completed, failed and cancelled).
        duration: Option<Duration>,
        /// The error (for failed).
        error: Option<String>,
    },
    /// A log line (a command's output, a remark).
    Log {
        /// Its level.
        level: Level,
        /// The line, secrets redacted.
        message: String,
        /// Extra `key=value` fields, e.g. `dependency`.
        fields: Vec<(String, String)>,
    },
}

/// One progress event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When.
    pub time: SystemTime,
    /// The task path, or `None` for the system.
    pub task: Option<String>,
    /// What.
    pub kind: EventKind,
}

/// A cheap, cloneable sink of progress events. A disabled sink drops them.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    sender: Option<mpsc::UnboundedSender<Event>>,
}

impl Progress {
    /// A sink and the receiving end the renderer reads.
    pub fn channel() -> (Progress, mpsc::UnboundedReceiver<Event>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            Progress {
                sender: Some(sender),
            },
            receiver,
        )
    }

    /// A sink that drops everything.
    pub fn disabled() -> Self {
        Progress { sender: None }
    }

    /// Sends an event (dropped if nobody listens).
    pub fn emit(&self, event: Event) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(event);
        }
    }

    /// Sends a state change of `task`.
    pub fn state(
        &self,
        task: &str,
        state: TaskState,
        duration: Option<Duration>,
        error: Option<String>,
    ) {
        self.emit(Event {
            time: SystemTime::now(),
            task: Some(task.to_string()),
            kind: EventKind::State {
                state,
                duration,
                error,
            },
        });
    }

    /// Sends a log line, attributed to `task` (or the system).
    pub fn log(&self, task: Option<&str>, level: Level, message: impl Into<String>) {
        self.log_with(task, level, message, Vec::new());
    }

    /// Sends a log line with extra fields.
    pub fn log_with(
        &self,
        task: Option<&str>,
        level: Level,
        message: impl Into<String>,
        fields: Vec<(String, String)>,
    ) {
        self.emit(Event {
            time: SystemTime::now(),
            task: task.map(str::to_string),
            kind: EventKind::Log {
                level,
                message: message.into(),
                fields,
            },
        });
    }
}
