//! The plan side of a run over the evaluator: [`PlanDriver`] for
//! [`Plan`], so the executor can ask a loaded plan for task inputs and fill
//! outputs back.

use cuedag_evaluator::plan::{Plan, TaskValue};
use cuedag_evaluator::Location;

use crate::executor::{PlanDriver, TaskRequestInfo};
use crate::BackendError;

impl PlanDriver for Plan {
    fn inputs(&mut self, task: &TaskRequestInfo) -> Result<TaskValue, BackendError> {
        self.task_inputs(&task.path)
            .map_err(|error| BackendError::Plan(error.to_string()))
    }

    fn fill(&mut self, task: &TaskRequestInfo, outputs: &TaskValue) -> Result<(), BackendError> {
        Plan::fill(self, &task.path, outputs).map_err(|error| BackendError::Plan(error.to_string()))
    }

    fn preview(&mut self, task: &TaskRequestInfo) -> Result<TaskValue, BackendError> {
        self.preview_inputs(&task.path)
            .map_err(|error| BackendError::Plan(error.to_string()))
    }

    fn origin(&mut self, task: &TaskRequestInfo) -> Option<Location> {
        (task.task_type == "Source")
            .then(|| self.field_origin(&task.path, "path"))
            .flatten()
    }
}
