//! The Dagger plan model: task discovery, dependencies and the task graph.
//!
//! IO-free, on top of the evaluator's values. [`TaskGraph`] holds the tasks
//! of a plan and their dependencies; [`TaskValue`] is the owned, concrete
//! data exchanged with backends.

mod engine;
mod graph;
mod path;
mod value;

use crate::Location;

pub use engine::{
    cue_path, from_data, ActionNode, ActionOutput, Plan, PlanTask, CORE_PACKAGE, DAGGER_PACKAGE,
};
pub use graph::{DependencyReason, Task, TaskGraph, KNOWN_TASK_TYPES};
pub use path::{format_label, is_identifier, CuePath};
pub use value::{Declared, DeclaredKind, FsRef, SecretId, SocketId, TaskValue};

/// A field that must be concrete before the plan runs and is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetField {
    /// Its full CUE path.
    pub path: String,
    /// Why it is not concrete (e.g. an unresolved disjunction), if known.
    pub reason: Option<String>,
    /// Where the field and its parent are written.
    pub positions: Vec<Location>,
}

impl std::fmt::Display for UnsetField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\" is not set", self.path)?;
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        for position in &self.positions {
            write!(
                f,
                "\n    {}:{}:{}",
                position.file, position.line, position.col
            )?;
        }
        Ok(())
    }
}

fn join_unset(fields: &[UnsetField]) -> String {
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Errors of the plan model. Codes `P0xx` are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// P001: tasks depend on each other in a loop.
    #[error("dependency cycle between tasks: {}", paths.join(" -> "))]
    Cycle {
        /// The paths around the loop, first one repeated at the end.
        paths: Vec<String>,
    },
    /// P002: a `$dagger: task: _name` the runtime does not know.
    #[error("{path}: unknown type \"{name}\"")]
    UnknownTaskType {
        /// The task path.
        path: String,
        /// The type name.
        name: String,
        /// Where the task is written, if known.
        location: Option<Location>,
    },
    /// P003: required fields are neither concrete, defaulted nor references.
    #[error("{}", join_unset(fields))]
    NotSet {
        /// Every such field, reported together.
        fields: Vec<UnsetField>,
    },
    /// P004: the `do` target does not exist.
    #[error("action not found: {words}")]
    ActionNotFound {
        /// The words as typed.
        words: String,
    },
    /// P005: the plan could not be loaded or evaluated.
    #[error("{message}")]
    Load {
        /// The evaluator's located message.
        message: String,
    },
    /// P006: a task's value could not be turned into task data.
    #[error("{path}: {message}")]
    Task {
        /// The task path.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl PlanError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            PlanError::Cycle { .. } => "P001",
            PlanError::UnknownTaskType { .. } => "P002",
            PlanError::NotSet { .. } => "P003",
            PlanError::ActionNotFound { .. } => "P004",
            PlanError::Load { .. } => "P005",
            PlanError::Task { .. } => "P006",
        }
    }

    /// How to fix it, when there is something general to say.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            PlanError::Cycle { .. } => {
                Some("break the loop: a task cannot use, even indirectly, its own outputs")
            }
            PlanError::UnknownTaskType { .. } => Some(
                "task markers come from the vendored dagger.io packages; run `cuedag project update`",
            ),
            PlanError::NotSet { .. } => {
                Some("give these fields a value, a default, or set them with `--with`")
            }
            PlanError::ActionNotFound { .. } => Some("run `cuedag do` to list the actions"),
            PlanError::Load { .. } | PlanError::Task { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
