//! A loaded plan: task discovery (§4.1), dependencies (§4.2), validation
//! (§6.1), task inputs as [`TaskValue`]s and fill-back of outputs (§4.4).

use std::collections::{BTreeMap, BTreeSet};

use crate::value::Value;
use crate::{
    load_instance, Error, EvalError, Evaluation, FieldInfo, Instance, Kind, LoadOptions, Loader,
    Location, Path, Selector, ValueId,
};

use super::graph::{DependencyReason, Task, TaskGraph, KNOWN_TASK_TYPES};
use super::path::CuePath;
use super::value::{Declared, DeclaredKind, FsRef, SecretId, SocketId, TaskValue};
use super::{PlanError, UnsetField};

/// The import path of the package whose hidden fields mark tasks and ids.
pub const DAGGER_PACKAGE: &str = "dagger.io/dagger";
/// Also accepted for task markers.
pub const CORE_PACKAGE: &str = "dagger.io/dagger/core";

const MAX_DEPTH: usize = 256;

/// Past this many vertices in the evaluation's arena (old values of the
/// main package pile up there at each fill), a fill evaluates in a new one.
const MAX_VERTICES: usize = 250_000;

/// A task found in the plan.
#[derive(Debug, Clone)]
pub struct PlanTask {
    /// Its path as printed.
    pub path: CuePath,
    /// Its path for the evaluator (hidden labels carry their package).
    pub eval_path: Path,
    /// The task type.
    pub task_type: String,
    /// Where the task struct is written.
    pub locations: Vec<Location>,
}

/// An action as `do` lists it: a node on the way from `actions` to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionNode {
    /// The field name (`build`).
    pub name: String,
    /// Its path (`actions.build`).
    pub path: CuePath,
    /// The first paragraph of its doc comment.
    pub doc: String,
    /// Sub-actions, in declaration order.
    pub children: Vec<ActionNode>,
    /// Whether the node itself is a task.
    pub is_task: bool,
}

impl ActionNode {
    /// The node at `words` below this one.
    pub fn find(&self, words: &[String]) -> Option<&ActionNode> {
        match words.split_first() {
            None => Some(self),
            Some((first, rest)) => self
                .children
                .iter()
                .find(|child| child.name == *first)?
                .find(rest),
        }
    }

    /// The deepest existing node along `words`, and how many words matched.
    pub fn nearest(&self, words: &[String]) -> (&ActionNode, usize) {
        let mut node = self;
        let mut matched = 0;
        for word in words {
            match node.children.iter().find(|child| child.name == *word) {
                Some(child) => {
                    node = child;
                    matched += 1;
                }
                None => break,
            }
        }
        (node, matched)
    }
}

/// An output of the target printed after a run (§5.4).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutput {
    /// The field name.
    pub name: String,
    /// Its final value.
    pub value: TaskValue,
}

/// A loaded, evaluated plan with its tasks and full dependency graph.
pub struct Plan {
    instance: Instance,
    fills: Vec<(Path, Value)>,
    eval: Evaluation,
    tasks: Vec<PlanTask>,
    graph: TaskGraph,
}

fn dagger_hidden(name: &str) -> Selector {
    Selector::Hidden {
        name: name.to_string(),
        pkg: DAGGER_PACKAGE.to_string(),
    }
}

fn field(name: &str) -> Selector {
    Selector::Field(name.to_string())
}

fn id_path(kind: &str) -> Path {
    Path(vec![field("$dagger"), field(kind), dagger_hidden("_id")])
}

/// Prints an evaluator path the way task paths print.
pub fn cue_path(path: &Path) -> CuePath {
    CuePath(
        path.0
            .iter()
            .map(|selector| match selector {
                Selector::Field(name) | Selector::Def(name) => name.clone(),
                Selector::Hidden { name, .. } => name.clone(),
                Selector::Index(i) => i.to_string(),
            })
            .collect(),
    )
}

fn render_load_error(error: Error) -> PlanError {
    match error {
        Error::Load(problems) => PlanError::Load {
            message: problems
                .iter()
                .map(|problem| {
                    let mut line = match &problem.location {
                        Some(l) => format!(
                            "{}:{}:{}: {}",
                            l.file, l.line, l.col, problem.diagnostic.message
                        ),
                        None => match &problem.file {
                            Some(file) => format!("{file}: {}", problem.diagnostic.message),
                            None => problem.diagnostic.message.clone(),
                        },
                    };
                    if let Some(help) = &problem.diagnostic.help {
                        line.push_str(&format!("\n    help: {help}"));
                    }
                    line
                })
                .collect::<Vec<_>>()
                .join("\n"),
        },
        Error::Eval(errors) => eval_errors(&errors),
        Error::Path(path) => PlanError::Load {
            message: format!("invalid path `{path}`"),
        },
    }
}

fn eval_errors(errors: &[EvalError]) -> PlanError {
    PlanError::Load {
        message: errors
            .iter()
            .map(EvalError::render)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

impl Plan {
    /// Loads the plan made of `args` (a directory or `.cue` files), with
    /// `options` (embedded packages, `--with` overlays), evaluates it,
    /// reports conflicts, discovers its tasks and their dependencies.
    pub fn load(
        loader: &dyn Loader,
        args: &[String],
        options: &LoadOptions,
    ) -> Result<Plan, PlanError> {
        let instance = load_instance(loader, args, options).map_err(render_load_error)?;
        let mut eval = instance.evaluate();
        let errors: Vec<EvalError> = eval
            .errors()
            .into_iter()
            .filter(|error| !error.incomplete)
            .collect();
        if !errors.is_empty() {
            return Err(eval_errors(&errors));
        }
        let mut plan = Plan {
            instance,
            fills: Vec::new(),
            eval,
            tasks: Vec::new(),
            graph: TaskGraph::default(),
        };
        plan.tasks = plan.discover()?;
        plan.graph = plan.dependencies()?;
        Ok(plan)
    }

    /// Every task of the plan, in discovery order (graph node order).
    pub fn tasks(&self) -> &[PlanTask] {
        &self.tasks
    }

    /// The full dependency graph.
    pub fn graph(&self) -> &TaskGraph {
        &self.graph
    }

    /// The evaluation as it stands (with everything filled so far).
    pub fn evaluation(&mut self) -> &mut Evaluation {
        &mut self.eval
    }

    /// The field at `path` below `value`, navigating by fields so that an
    /// unresolved disjunction (whose arms share the field) still works.
    fn descend(&mut self, value: ValueId, path: &[Selector]) -> Option<ValueId> {
        let mut current = value;
        for selector in path {
            // A direct lookup (no field list to build) finds the field
            // unless the value is a disjunction with no default.
            current = match self
                .eval
                .lookup_from(current, &Path(vec![selector.clone()]))
            {
                Some(next) => next,
                None => {
                    self.eval
                        .field_values(current)
                        .into_iter()
                        .find(|info| info.selector == *selector)?
                        .value
                }
            };
        }
        Some(current)
    }

    fn task_type(&mut self, value: ValueId) -> Option<String> {
        for pkg in [DAGGER_PACKAGE, CORE_PACKAGE] {
            let marker = [
                field("$dagger"),
                field("task"),
                Selector::Hidden {
                    name: "_name".into(),
                    pkg: pkg.into(),
                },
            ];
            if let Some(name) = self.descend(value, &marker) {
                if let Some(text) = self.eval.as_string(name) {
                    return Some(text);
                }
            }
        }
        None
    }

    fn discover(&mut self) -> Result<Vec<PlanTask>, PlanError> {
        let mut tasks = Vec::new();
        let root = self.eval.root();
        let mut stack: Vec<(ValueId, Path, usize)> = Vec::new();
        // Selectors and values only: positions are looked up for tasks.
        let mut fields = self.eval.field_values(root);
        fields.reverse();
        for info in fields {
            if info.definition {
                continue;
            }
            stack.push((info.value, Path(vec![info.selector]), 0));
        }
        while let Some((value, path, depth)) = stack.pop() {
            if depth > MAX_DEPTH
                || !matches!(self.eval.kind(value), Kind::Struct | Kind::Disjunction)
            {
                continue;
            }
            if let Some(task_type) = self.task_type(value) {
                let printed = cue_path(&path);
                let locations = self.eval.locations(value);
                if !KNOWN_TASK_TYPES.contains(&task_type.as_str()) {
                    return Err(PlanError::UnknownTaskType {
                        path: printed.to_string(),
                        name: task_type,
                        location: locations.first().cloned(),
                    });
                }
                tasks.push(PlanTask {
                    path: printed,
                    eval_path: path,
                    task_type,
                    locations,
                });
                continue;
            }
            let mut children = self.eval.field_values(value);
            children.reverse();
            for info in children {
                if info.definition || info.optional || matches!(info.selector, Selector::Index(_)) {
                    continue;
                }
                if info.selector == field("$dagger") {
                    continue;
                }
                stack.push((info.value, path.child(info.selector), depth + 1));
            }
        }
        Ok(tasks)
    }

    /// Indices of the tasks whose subtree contains `path`, or that lie under
    /// `path` (a reference to a composite reaches its tasks).
    fn tasks_at(&self, path: &Path) -> Vec<usize> {
        self.tasks
            .iter()
            .enumerate()
            .filter(|(_, task)| {
                path.0.starts_with(&task.eval_path.0) || task.eval_path.0.starts_with(&path.0)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The tasks a value reaches through its references, transitively
    /// through non-task values. `owner` (the referencing task) is skipped.
    fn reached_tasks(
        &mut self,
        start: ValueId,
        owner: Option<usize>,
        memo: &mut BTreeMap<Path, BTreeSet<usize>>,
    ) -> BTreeSet<usize> {
        let mut reached = BTreeSet::new();
        let mut visited: BTreeSet<Path> = BTreeSet::new();
        let mut climbing: BTreeSet<Path> = BTreeSet::new();
        let mut queue: Vec<Path> = self.references(start);
        while let Some(reference) = queue.pop() {
            if !visited.insert(reference.clone()) {
                continue;
            }
            if let Some(known) = memo.get(&reference) {
                reached.extend(known.iter().copied().filter(|&i| Some(i) != owner));
                continue;
            }
            let owner_path = owner.map(|i| self.tasks[i].eval_path.clone());
            if let Some(owner_path) = &owner_path {
                // A reference inside the task itself, or to one of its
                // ancestors, is not a dependency.
                if reference.0.starts_with(&owner_path.0) || owner_path.0.starts_with(&reference.0)
                {
                    continue;
                }
            }
            let hits = self.tasks_at(&reference);
            if !hits.is_empty() {
                reached.extend(hits.into_iter().filter(|&i| Some(i) != owner));
                continue;
            }
            if let Some(value) = self.eval.lookup(&reference) {
                let next = self.references(value);
                if next.is_empty() && (climbing.contains(&reference) || !self.is_complete(value)) {
                    // A value made by a comprehension records its references
                    // on the enclosing struct: look there (not above the
                    // referencing task's own ancestors).
                    if let Some(parent) = reference.0.split_last().map(|(_, p)| Path(p.to_vec())) {
                        let is_owner_ancestor = owner_path
                            .as_ref()
                            .is_some_and(|o| o.0.starts_with(&parent.0));
                        if parent.0.len() > 1 && !is_owner_ancestor {
                            climbing.insert(parent.clone());
                            queue.push(parent);
                        }
                    }
                }
                queue.extend(next);
            }
        }
        reached
    }

    /// The references of a subtree, without the prefixes of selector
    /// chains: `client.env.NAME` also records `client` and `client.env`,
    /// which would otherwise reach every task under `client`.
    fn references(&mut self, value: ValueId) -> Vec<Path> {
        let references = self.eval.references(value);
        references
            .iter()
            .filter(|reference| {
                !references.iter().any(|other| {
                    other.0.len() > reference.0.len() && other.0.starts_with(&reference.0)
                })
            })
            .cloned()
            .collect()
    }

    fn dependencies(&mut self) -> Result<TaskGraph, PlanError> {
        let mut edges = Vec::new();
        let mut memo = BTreeMap::new();
        for index in 0..self.tasks.len() {
            let path = self.tasks[index].eval_path.clone();
            let Some(value) = self.eval.lookup(&path) else {
                continue;
            };
            for dependency in self.reached_tasks(value, Some(index), &mut memo) {
                edges.push((index, dependency, DependencyReason::Reference));
            }
        }
        // A write of a `client.filesystem` key runs after the read of it.
        let mut reads = BTreeMap::new();
        for (index, task) in self.tasks.iter().enumerate() {
            if let [client, filesystem, key, op] = task.path.labels() {
                if client == "client" && filesystem == "filesystem" && op == "read" {
                    reads.insert(key.clone(), index);
                }
            }
        }
        for (index, task) in self.tasks.iter().enumerate() {
            if let [client, filesystem, key, op] = task.path.labels() {
                if client == "client" && filesystem == "filesystem" && op == "write" {
                    if let Some(&read) = reads.get(key) {
                        edges.push((index, read, DependencyReason::ReadBeforeWrite));
                    }
                }
            }
        }
        let tasks = self
            .tasks
            .iter()
            .map(|task| Task {
                path: task.path.clone(),
                task_type: task.task_type.clone(),
            })
            .collect();
        TaskGraph::new(tasks, &edges)
    }

    fn task_index(&self, path: &CuePath) -> Option<usize> {
        self.tasks.iter().position(|task| task.path == *path)
    }

    /// The action tree under `actions`: non-hidden fields on the way to a
    /// task, with their doc comments.
    pub fn actions(&mut self) -> ActionNode {
        let mut root = ActionNode {
            name: "actions".into(),
            path: CuePath::new(["actions"]),
            doc: String::new(),
            children: Vec::new(),
            is_task: false,
        };
        let task_paths: Vec<CuePath> = self.tasks.iter().map(|task| task.path.clone()).collect();
        if let Some(actions) = self.eval.lookup(&Path(vec![field("actions")])) {
            root.children = self.action_children(actions, &root.path, &task_paths, 0);
        }
        root
    }

    fn action_children(
        &mut self,
        value: ValueId,
        path: &CuePath,
        task_paths: &[CuePath],
        depth: usize,
    ) -> Vec<ActionNode> {
        if depth > MAX_DEPTH {
            return Vec::new();
        }
        let mut children = Vec::new();
        for info in self.eval.fields(value) {
            let Selector::Field(name) = &info.selector else {
                continue;
            };
            if name == "$dagger" {
                continue;
            }
            let child_path = path.child(name.clone());
            if !task_paths.iter().any(|task| task.starts_with(&child_path)) {
                continue;
            }
            let is_task = task_paths.contains(&child_path);
            let grandchildren = if is_task {
                Vec::new()
            } else {
                self.action_children(info.value, &child_path, task_paths, depth + 1)
            };
            children.push(ActionNode {
                name: name.clone(),
                path: child_path,
                doc: first_paragraph(&info.docs),
                children: grandchildren,
                is_task,
            });
        }
        children
    }

    /// Checks, before anything runs, that every input of the given tasks is
    /// concrete, has a default, or will be computed by another task. All
    /// offending fields are reported together (§6.1).
    pub fn validate(&mut self, selected: &TaskGraph) -> Result<(), PlanError> {
        let mut unset = Vec::new();
        let mut memo = BTreeMap::new();
        for (_, task) in selected.tasks() {
            let Some(index) = self.task_index(&task.path) else {
                continue;
            };
            let eval_path = self.tasks[index].eval_path.clone();
            let Some(value) = self.eval.lookup(&eval_path) else {
                continue;
            };
            let exempt: &[&str] = match task.task_type.as_str() {
                "ClientEnv" => continue,
                "ClientFilesystemRead" => &["contents"],
                _ => &[],
            };
            let shown = task.path.to_string();
            self.check_fields(value, &shown, index, exempt, &mut unset, &mut memo, 0);
        }
        if unset.is_empty() {
            Ok(())
        } else {
            Err(PlanError::NotSet { fields: unset })
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_fields(
        &mut self,
        value: ValueId,
        path: &str,
        owner: usize,
        exempt: &[&str],
        unset: &mut Vec<UnsetField>,
        memo: &mut BTreeMap<Path, BTreeSet<usize>>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        for info in self.eval.fields(value) {
            let Selector::Field(name) = &info.selector else {
                continue;
            };
            if name == "$dagger"
                || info.optional
                || is_generated(&info)
                || exempt.contains(&name.as_str())
            {
                continue;
            }
            let child_path = format!("{path}.{}", super::format_label(name));
            self.check_value(
                info.value,
                &child_path,
                &info.locations,
                owner,
                unset,
                memo,
                depth,
            );
        }
    }

    /// Checks one input value (a field or a list element): concrete, a
    /// reference with its id, a struct or list whose parts all are, or
    /// computed from another task's outputs. Else reports what is missing.
    #[allow(clippy::too_many_arguments)]
    fn check_value(
        &mut self,
        value: ValueId,
        path: &str,
        locations: &[Location],
        owner: usize,
        unset: &mut Vec<UnsetField>,
        memo: &mut BTreeMap<Path, BTreeSet<usize>>,
        depth: usize,
    ) {
        let reference = self.reference_kind(value);
        // Hidden ids are not exported, so references are checked by id;
        // structs and lists are checked part by part, since a struct holding
        // an unset reference still exports as concrete.
        if let Some(kind) = &reference {
            if self.reference_id(value, kind).is_some() {
                return;
            }
        } else {
            match self.eval.kind(value) {
                Kind::Struct => {
                    self.check_fields(value, path, owner, &[], unset, memo, depth + 1);
                    return;
                }
                Kind::List if depth < MAX_DEPTH => {
                    for info in self.eval.fields(value) {
                        let Selector::Index(index) = info.selector else {
                            continue;
                        };
                        let mut element_locations = self.eval.value_locations(info.value);
                        element_locations.retain(|location| {
                            !locations.contains(location)
                                && !location.file.starts_with("<embedded>")
                        });
                        if element_locations.is_empty() {
                            element_locations = info.locations.clone();
                        }
                        element_locations.extend(locations.iter().cloned());
                        self.check_value(
                            info.value,
                            &format!("{path}.{index}"),
                            &element_locations,
                            owner,
                            unset,
                            memo,
                            depth + 1,
                        );
                    }
                    return;
                }
                _ => {}
            }
            if self.eval.is_concrete(value) {
                return;
            }
            if self.eval.has_default(value) {
                let default = self.eval.default_value(value);
                if self.eval.is_concrete(default) {
                    return;
                }
            }
        }
        if !self.reached_tasks(value, Some(owner), memo).is_empty() {
            return;
        }
        // Report the unset values the field is computed from (such as
        // `actions.params.name: string`), else the field itself.
        let sources = self.unset_sources(value);
        if !sources.is_empty() {
            for source in sources {
                if !unset.iter().any(|field| field.path == source.path) {
                    unset.push(source);
                }
            }
            return;
        }
        let reason = match &reference {
            Some(kind) => Some(format!("{} is not set", kind.name())),
            None => self
                .eval
                .not_concrete_reason(value)
                .map(|error| error.message)
                .filter(|message| !message.is_empty()),
        };
        let path = path.to_string();
        if !unset.iter().any(|field| field.path == path) {
            unset.push(UnsetField {
                path,
                reason,
                positions: locations.to_vec(),
            });
        }
    }

    /// The non-concrete values that `value` references, transitively, and
    /// that reference nothing themselves: where a value is missing.
    fn unset_sources(&mut self, value: ValueId) -> Vec<UnsetField> {
        let mut sources = Vec::new();
        let mut visited = BTreeSet::new();
        let mut queue = self.references(value);
        while let Some(reference) = queue.pop() {
            if !visited.insert(reference.clone()) || visited.len() > 1000 {
                continue;
            }
            let Some(target) = self.eval.lookup(&reference) else {
                continue;
            };
            if let Some(kind) = self.reference_kind(target) {
                // A declared `dagger.#FS` (or secret, socket) that nothing
                // sets is where the value is missing.
                if self.reference_id(target, &kind).is_none() && self.references(target).is_empty()
                {
                    sources.push(UnsetField {
                        path: cue_path(&reference).to_string(),
                        reason: Some(format!("{} is not set", kind.name())),
                        positions: self.field_locations(&reference),
                    });
                }
                continue;
            }
            if self.eval.is_concrete(target) {
                continue;
            }
            let next = self.references(target);
            if next.is_empty() && self.eval.kind(target) == Kind::Struct {
                // A struct referenced as a whole (`params.name` records
                // `params`): its unset fields are the sources.
                for info in self.eval.fields(target) {
                    if matches!(info.selector, Selector::Field(_)) && !info.optional {
                        queue.push(reference.child(info.selector));
                    }
                }
            } else if next.is_empty() {
                let reason = self
                    .eval
                    .not_concrete_reason(target)
                    .map(|error| error.message)
                    .filter(|message| !message.is_empty());
                sources.push(UnsetField {
                    path: cue_path(&reference).to_string(),
                    reason,
                    positions: self.field_locations(&reference),
                });
            } else {
                queue.extend(next);
            }
        }
        sources.sort_by(|a, b| a.path.cmp(&b.path));
        sources
    }

    fn field_locations(&mut self, path: &Path) -> Vec<Location> {
        let Some((last, parent)) = path.0.split_last() else {
            return Vec::new();
        };
        let Some(parent) = self.eval.lookup(&Path(parent.to_vec())) else {
            return Vec::new();
        };
        self.eval
            .fields(parent)
            .into_iter()
            .find(|info| info.selector == *last)
            .map(|info| info.locations)
            .unwrap_or_default()
    }

    fn reference_kind(&mut self, value: ValueId) -> Option<DeclaredKind> {
        if self.eval.kind(value) != Kind::Struct {
            return None;
        }
        for (name, kind) in [
            ("fs", DeclaredKind::Fs),
            ("secret", DeclaredKind::Secret),
            ("socket", DeclaredKind::Socket),
        ] {
            let Some(dagger) = self
                .eval
                .lookup_from(value, &Path(vec![field("$dagger"), field(name)]))
            else {
                continue;
            };
            let _ = dagger;
            return Some(kind);
        }
        None
    }

    /// Whether a value is concrete; a reference when its hidden id is.
    fn is_complete(&mut self, value: ValueId) -> bool {
        match self.reference_kind(value) {
            Some(kind) => self.reference_id(value, &kind).is_some(),
            None => self.eval.is_concrete(value),
        }
    }

    /// The concrete id of a reference (`Value::Null` for `#Scratch`).
    fn reference_id(&mut self, value: ValueId, kind: &DeclaredKind) -> Option<Value> {
        let label = match kind {
            DeclaredKind::Fs => "fs",
            DeclaredKind::Secret => "secret",
            _ => "socket",
        };
        let id = self.eval.lookup_from(value, &id_path(label))?;
        match self.eval.to_value(id).ok()? {
            Value::Null if *kind == DeclaredKind::Fs => Some(Value::Null),
            Value::String(text) => Some(Value::String(text)),
            _ => None,
        }
    }

    /// The task's fields as task data, re-evaluated with everything filled
    /// so far. Outputs not computed yet appear as [`TaskValue::Declared`].
    /// Fails if a non-generated input is still not concrete (except the
    /// fields whose declared type selects a client task's mode).
    pub fn task_inputs(&mut self, path: &CuePath) -> Result<TaskValue, PlanError> {
        let (value, task_type) = self.task_value(path)?;
        let mut unset = Vec::new();
        let client_env = task_type == "ClientEnv";
        let inputs = self.extract(value, path, client_env, &mut unset, 0);
        let type_requests: &[&str] = match task_type.as_str() {
            "ClientFilesystemRead" => &["contents"],
            _ => &[],
        };
        unset.retain(|field| {
            let leaf = field.path.rsplit('.').next().unwrap_or_default();
            !client_env && !type_requests.contains(&leaf)
        });
        if !unset.is_empty() {
            return Err(PlanError::NotSet { fields: unset });
        }
        Ok(inputs)
    }

    /// Where the concrete value of the task's field `name` is written: the
    /// string literal (or interpolation) that sets it, else the field's
    /// first declaration outside the `dagger.io` packages, else its first
    /// declaration. `core.#Source` resolves `path` against that file's
    /// directory, as Dagger did.
    pub fn field_origin(&mut self, task: &CuePath, name: &str) -> Option<Location> {
        let (value, _) = self.task_value(task).ok()?;
        let info = self
            .eval
            .fields(value)
            .into_iter()
            .find(|info| info.selector == field(name))?;
        let is_literal = |plan: &Plan, location: &Location| {
            plan.eval
                .sources()
                .files
                .iter()
                .find(|file| file.path == location.file)
                .and_then(|file| file.text.get(location.span.start as usize..))
                .is_some_and(|text| {
                    text.starts_with('"') || text.starts_with('#') || text.starts_with('\'')
                })
        };
        let values = self.eval.value_locations(info.value);
        if let Some(location) = values.iter().rev().find(|l| is_literal(self, l)) {
            return Some(location.clone());
        }
        let outside_dagger = |location: &&Location| {
            !location.file.contains("dagger.io/dagger/")
                && !location.file.contains("dagger.io/dagger\\")
        };
        values
            .iter()
            .find(outside_dagger)
            .or_else(|| info.locations.iter().find(outside_dagger))
            .or_else(|| info.locations.first())
            .cloned()
    }

    /// Like [`Plan::task_inputs`] but never fails on missing inputs (for
    /// `--dry-run`, where dependencies have not run).
    pub fn preview_inputs(&mut self, path: &CuePath) -> Result<TaskValue, PlanError> {
        let (value, task_type) = self.task_value(path)?;
        let mut unset = Vec::new();
        Ok(self.extract(value, path, task_type == "ClientEnv", &mut unset, 0))
    }

    fn task_value(&mut self, path: &CuePath) -> Result<(ValueId, String), PlanError> {
        let index = self.task_index(path).ok_or_else(|| PlanError::Task {
            path: path.to_string(),
            message: "no such task".into(),
        })?;
        let task = self.tasks[index].clone();
        let value = self
            .eval
            .lookup(&task.eval_path)
            .ok_or_else(|| PlanError::Task {
                path: path.to_string(),
                message: "the task disappeared from the plan".into(),
            })?;
        Ok((value, task.task_type))
    }

    fn declared(&mut self, value: ValueId, optional: bool) -> TaskValue {
        let kind = match self.reference_kind(value) {
            Some(kind) => kind,
            None => match self.eval.kind(value) {
                Kind::String => DeclaredKind::String,
                Kind::Bytes => DeclaredKind::Bytes,
                Kind::Int => DeclaredKind::Int,
                Kind::Float | Kind::Number => DeclaredKind::Number,
                Kind::Bool => DeclaredKind::Bool,
                Kind::Null => DeclaredKind::Other("null".into()),
                Kind::List => DeclaredKind::Other("list".into()),
                Kind::Struct => DeclaredKind::Other("struct".into()),
                Kind::Top => DeclaredKind::Other("_".into()),
                Kind::Bottom => DeclaredKind::Other("incomplete".into()),
                Kind::Disjunction => DeclaredKind::Other(self.eval.disjuncts(value).join(" | ")),
            },
        };
        let default = if self.eval.has_default(value) {
            let default = self.eval.default_value(value);
            self.eval
                .to_value(default)
                .ok()
                .map(|data| Box::new(from_data(&data)))
        } else {
            None
        };
        TaskValue::Declared(Declared {
            kind,
            default,
            optional,
        })
    }

    fn extract(
        &mut self,
        value: ValueId,
        path: &CuePath,
        keep_optional: bool,
        unset: &mut Vec<UnsetField>,
        depth: usize,
    ) -> TaskValue {
        if let Some(kind) = self.reference_kind(value) {
            return match (self.reference_id(value, &kind), kind) {
                (Some(Value::Null), DeclaredKind::Fs) => TaskValue::Fs(FsRef::Scratch),
                (Some(Value::String(id)), DeclaredKind::Fs) => TaskValue::Fs(FsRef::Id(id)),
                (Some(Value::String(id)), DeclaredKind::Secret) => TaskValue::Secret(SecretId(id)),
                (Some(Value::String(id)), DeclaredKind::Socket) => TaskValue::Socket(SocketId(id)),
                (_, kind) => {
                    unset.push(UnsetField {
                        path: path.to_string(),
                        reason: Some(format!("{} is not set", kind.name())),
                        positions: Vec::new(),
                    });
                    TaskValue::Declared(Declared::new(kind))
                }
            };
        }
        let kind = match self.eval.kind(value) {
            // An unresolved disjunction of structs (a client write before
            // its contents are known) shows its common fields.
            Kind::Disjunction if !self.eval.field_values(value).is_empty() => Kind::Struct,
            kind => kind,
        };
        match kind {
            Kind::Struct if depth < MAX_DEPTH => {
                let mut fields = indexmap::IndexMap::new();
                // Positions are looked up only for fields reported unset.
                for info in self.eval.fields_with_attrs(value) {
                    let Selector::Field(name) = &info.selector else {
                        continue;
                    };
                    if name == "$dagger" {
                        continue;
                    }
                    let child_path = path.child(name.clone());
                    let generated = is_generated(&info);
                    if info.optional {
                        if keep_optional && depth == 0 && !self.eval.is_concrete(info.value) {
                            let declared = self.declared(info.value, true);
                            fields.insert(name.clone(), declared);
                        }
                        continue;
                    }
                    let mut child_unset = Vec::new();
                    let child = self.extract(
                        info.value,
                        &child_path,
                        keep_optional,
                        &mut child_unset,
                        depth + 1,
                    );
                    if !generated {
                        for mut field in child_unset {
                            if field.positions.is_empty() {
                                field.positions = self.eval.locations(info.value);
                            }
                            unset.push(field);
                        }
                    }
                    fields.insert(name.clone(), child);
                }
                TaskValue::Struct(fields)
            }
            Kind::List if depth < MAX_DEPTH => {
                let mut items = Vec::new();
                for info in self.eval.field_values(value) {
                    let index = match &info.selector {
                        Selector::Index(i) => i.to_string(),
                        _ => continue,
                    };
                    items.push(self.extract(
                        info.value,
                        &path.child(index),
                        keep_optional,
                        unset,
                        depth + 1,
                    ));
                }
                TaskValue::List(items)
            }
            // A client env variable with a default (`*"x" | string`) stays
            // a type request: the host value wins when set.
            _ if keep_optional
                && depth == 1
                && self.eval.has_default(value)
                && self.eval.disjuncts(value).len() > 1 =>
            {
                self.declared(value, false)
            }
            _ => match self.eval.to_value(value) {
                Ok(data) => from_data(&data),
                Err(_) => {
                    let reason = self
                        .eval
                        .not_concrete_reason(value)
                        .map(|error| error.message);
                    unset.push(UnsetField {
                        path: path.to_string(),
                        reason,
                        positions: Vec::new(),
                    });
                    self.declared(value, false)
                }
            },
        }
    }

    /// Fills a task's outputs into the plan and re-evaluates it, so that
    /// dependents see them (§4.4). Non-concrete parts are not filled.
    pub fn fill(&mut self, path: &CuePath, outputs: &TaskValue) -> Result<(), PlanError> {
        let index = self.task_index(path).ok_or_else(|| PlanError::Task {
            path: path.to_string(),
            message: "no such task".into(),
        })?;
        let base = self.tasks[index].eval_path.clone();
        let mut fills = Vec::new();
        flatten_fills(&base, outputs, &mut fills);
        if fills.is_empty() {
            return Ok(());
        }
        let filled: Vec<Path> = fills.iter().map(|(fill, _)| fill.clone()).collect();
        self.fills.extend(fills);
        self.instance
            .reevaluate_with_fills(&mut self.eval, &self.fills, MAX_VERTICES)
            .map_err(|error| PlanError::Task {
                path: path.to_string(),
                message: render_load_error(error).to_string(),
            })?;
        // An output conflicting with the plan shows where it is filled (or
        // on the way there, for a struct that no longer unifies): check
        // those values only, not the whole task.
        for fill in &filled {
            if let Some(error) = self.fill_error(&base, fill) {
                return Err(PlanError::Task {
                    path: path.to_string(),
                    message: error.render(),
                });
            }
        }
        Ok(())
    }

    /// The first non-incomplete error on the way from the task at `base`
    /// down to the filled value at `fill` (included).
    fn fill_error(&mut self, base: &Path, fill: &Path) -> Option<EvalError> {
        let mut value = self.eval.lookup(base)?;
        let rest = fill.0.get(base.0.len()..).unwrap_or_default();
        for selector in rest {
            if self.eval.kind(value) == Kind::Bottom {
                break;
            }
            match self.eval.lookup_from(value, &Path(vec![selector.clone()])) {
                Some(next) => value = next,
                None => break,
            }
        }
        self.eval
            .not_concrete_reason(value)
            .filter(|error| !error.incomplete)
    }

    /// Names of the direct children of `target` that are outputs: generated,
    /// or not concrete now. Call before running; pass to [`Plan::outputs`].
    pub fn pending_outputs(&mut self, target: &CuePath) -> Vec<String> {
        let Some(value) = self.lookup_printed(target) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for info in self.eval.fields(value) {
            let Selector::Field(name) = &info.selector else {
                continue;
            };
            if info.optional || name == "$dagger" {
                continue;
            }
            if is_generated(&info) || !self.eval.is_concrete(info.value) {
                names.push(name.clone());
            }
        }
        names
    }

    /// The final values of the named children of `target` that are scalars
    /// or references (§5.4).
    pub fn outputs(&mut self, target: &CuePath, names: &[String]) -> Vec<ActionOutput> {
        let Some(value) = self.lookup_printed(target) else {
            return Vec::new();
        };
        let mut outputs = Vec::new();
        for info in self.eval.fields(value) {
            let Selector::Field(name) = &info.selector else {
                continue;
            };
            if !names.contains(name) {
                continue;
            }
            let mut unset = Vec::new();
            let child = self.extract(
                info.value,
                &target.child(name.clone()),
                false,
                &mut unset,
                0,
            );
            // Scalars, and references only when marked generated.
            let printable = match child {
                TaskValue::Bool(_)
                | TaskValue::Int(_)
                | TaskValue::Float(_)
                | TaskValue::String(_) => true,
                TaskValue::Fs(_) | TaskValue::Secret(_) | TaskValue::Socket(_) => {
                    is_generated(&info)
                }
                _ => false,
            };
            if printable {
                outputs.push(ActionOutput {
                    name: name.clone(),
                    value: child,
                });
            }
        }
        outputs
    }

    fn lookup_printed(&mut self, target: &CuePath) -> Option<ValueId> {
        let mut value = self.eval.root();
        for label in target.labels() {
            let next = self
                .eval
                .fields(value)
                .into_iter()
                .find(|info| match &info.selector {
                    Selector::Field(name) | Selector::Def(name) => name == label,
                    Selector::Hidden { name, .. } => name == label,
                    Selector::Index(i) => i.to_string() == *label,
                })?;
            value = next.value;
        }
        Some(value)
    }

    /// The action input flags of `target` (§5.2): its direct children that
    /// are scalar, not concrete, not references and not generated, with
    /// their type and the first paragraph of their doc comment.
    pub fn input_flags(&mut self, target: &CuePath) -> Vec<(String, DeclaredKind, String)> {
        let Some(value) = self.lookup_printed(target) else {
            return Vec::new();
        };
        let mut flags = Vec::new();
        for info in self.eval.fields(value) {
            let Selector::Field(name) = &info.selector else {
                continue;
            };
            if info.optional || is_generated(&info) || self.eval.is_concrete(info.value) {
                continue;
            }
            let kind = match self.eval.kind(info.value) {
                Kind::String => DeclaredKind::String,
                Kind::Int => DeclaredKind::Int,
                Kind::Float | Kind::Number => DeclaredKind::Number,
                Kind::Bool => DeclaredKind::Bool,
                _ => continue,
            };
            if !self.eval.references(info.value).is_empty() {
                continue;
            }
            flags.push((name.clone(), kind, first_paragraph(&info.docs)));
        }
        flags
    }

    /// Whether a path exists in the plan.
    pub fn exists(&mut self, target: &CuePath) -> bool {
        self.lookup_printed(target).is_some()
    }
}

fn is_generated(info: &FieldInfo) -> bool {
    info.attrs.iter().any(|attr| {
        attr.name == "dagger" && attr.body.split(',').any(|part| part.trim() == "generated")
    })
}

fn first_paragraph(docs: &[String]) -> String {
    let Some(doc) = docs.iter().find(|doc| !doc.trim().is_empty()) else {
        return String::new();
    };
    doc.split("\n\n")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|line| line.trim().trim_start_matches("//").trim())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

/// Concrete evaluator data as task data.
pub fn from_data(data: &Value) -> TaskValue {
    match data {
        Value::Null => TaskValue::Null,
        Value::Bool(b) => TaskValue::Bool(*b),
        Value::Int(i) => i64::try_from(*i).map_or(TaskValue::Float(*i as f64), TaskValue::Int),
        Value::BigInt(d) | Value::Float(d) => TaskValue::Float(d.to_f64()),
        Value::String(s) => TaskValue::String(s.clone()),
        Value::Bytes(b) => TaskValue::Bytes(b.clone()),
        Value::List(items) => TaskValue::List(items.iter().map(from_data).collect()),
        Value::Struct(fields) => TaskValue::Struct(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), from_data(value)))
                .collect(),
        ),
    }
}

/// Turns task outputs into `(path, data)` fills: references become their
/// hidden `$dagger.<kind>._id`; declared (non-concrete) parts are skipped.
fn flatten_fills(base: &Path, value: &TaskValue, out: &mut Vec<(Path, Value)>) {
    let reference = |kind: &str, id: Value, out: &mut Vec<(Path, Value)>| {
        let mut path = base.clone();
        path.0.extend(id_path(kind).0);
        out.push((path, id));
    };
    match value {
        TaskValue::Declared(_) => {}
        TaskValue::Fs(FsRef::Scratch) => reference("fs", Value::Null, out),
        TaskValue::Fs(FsRef::Id(id)) => reference("fs", Value::String(id.clone()), out),
        TaskValue::Secret(SecretId(id)) => reference("secret", Value::String(id.clone()), out),
        TaskValue::Socket(SocketId(id)) => reference("socket", Value::String(id.clone()), out),
        TaskValue::Struct(fields) => {
            for (name, field_value) in fields {
                flatten_fills(&base.child(field(name)), field_value, out);
            }
        }
        other => {
            if let Some(data) = to_data(other) {
                out.push((base.clone(), data));
            }
        }
    }
}

/// Task data without references as evaluator data.
fn to_data(value: &TaskValue) -> Option<Value> {
    Some(match value {
        TaskValue::Null => Value::Null,
        TaskValue::Bool(b) => Value::Bool(*b),
        TaskValue::Int(i) => Value::Int(i128::from(*i)),
        TaskValue::Float(f) => Value::float_from_f64(*f),
        TaskValue::String(s) => Value::String(s.clone()),
        TaskValue::Bytes(b) => Value::Bytes(b.clone()),
        TaskValue::List(items) => Value::List(items.iter().map(to_data).collect::<Option<_>>()?),
        TaskValue::Struct(fields) => Value::Struct(
            fields
                .iter()
                .map(|(name, value)| Some((name.clone(), to_data(value)?)))
                .collect::<Option<_>>()?,
        ),
        TaskValue::Fs(_) | TaskValue::Secret(_) | TaskValue::Socket(_) | TaskValue::Declared(_) => {
            return None
        }
    })
}
