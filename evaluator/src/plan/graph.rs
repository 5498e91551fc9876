//! The task graph: tasks in discovery order, dependency edges, the subset a
//! `do` target needs (§4.3), topological order, cycles, DOT and Mermaid.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt::Write as _;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::path::CuePath;
use super::PlanError;

/// Every task type the runtime knows (`$dagger: task: _name`).
pub const KNOWN_TASK_TYPES: &[&str] = &[
    "ClientCommand",
    "ClientEnv",
    "ClientFilesystemRead",
    "ClientFilesystemWrite",
    "ClientNetwork",
    "ClientPlatform",
    "Copy",
    "DecodeSecret",
    "Diff",
    "Dockerfile",
    "Exec",
    "Export",
    "GitPull",
    "HTTPFetch",
    "Merge",
    "Mkdir",
    "NewSecret",
    "Nop",
    "Pull",
    "Push",
    "ReadFile",
    "Rm",
    "SendSignal",
    "Source",
    "Start",
    "Stop",
    "TransformSecret",
    "TrimSecret",
    "WriteFile",
];

/// One runnable task of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Its identity: the CUE path of the task struct.
    pub path: CuePath,
    /// The task type (`Exec`, `ClientFilesystemRead`, …).
    pub task_type: String,
}

/// Why one task depends on another (shown in `plan graph` and debug logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyReason {
    /// A field of the dependent references a value inside the dependency.
    Reference,
    /// A client write ordered after the read of the same key (§1.1).
    ReadBeforeWrite,
}

/// Tasks (nodes, in discovery order) and dependencies (edges point from a
/// dependency to its dependent).
#[derive(Debug, Clone, Default)]
pub struct TaskGraph {
    /// The graph itself.
    pub graph: DiGraph<Task, DependencyReason>,
}

impl TaskGraph {
    /// Builds a graph from tasks in discovery order and `(dependent,
    /// dependency, reason)` index triples; rejects cycles, naming their paths.
    pub fn new(
        tasks: Vec<Task>,
        dependencies: &[(usize, usize, DependencyReason)],
    ) -> Result<Self, PlanError> {
        let mut graph = DiGraph::with_capacity(tasks.len(), dependencies.len());
        let nodes: Vec<NodeIndex> = tasks.into_iter().map(|task| graph.add_node(task)).collect();
        let mut seen = BTreeSet::new();
        for (dependent, dependency, reason) in dependencies {
            let (Some(&to), Some(&from)) = (nodes.get(*dependent), nodes.get(*dependency)) else {
                continue;
            };
            if from == to && *reason == DependencyReason::Reference {
                // A task referencing its own fields is not a dependency.
                continue;
            }
            if seen.insert((from, to)) {
                graph.add_edge(from, to, reason.clone());
            }
        }
        let task_graph = TaskGraph { graph };
        task_graph.check_cycles()?;
        Ok(task_graph)
    }

    fn check_cycles(&self) -> Result<(), PlanError> {
        for component in tarjan_scc(&self.graph) {
            let is_cycle = component.len() > 1
                || component
                    .first()
                    .is_some_and(|&node| self.graph.contains_edge(node, node));
            if !is_cycle {
                continue;
            }
            let mut members: Vec<NodeIndex> = component;
            members.sort();
            // Walk the cycle from its first member along "depends on" edges.
            let start = members[0];
            let in_component: BTreeSet<NodeIndex> = members.iter().copied().collect();
            let mut cycle = vec![start];
            let mut current = start;
            loop {
                let next = self
                    .graph
                    .neighbors_directed(current, Direction::Incoming)
                    .filter(|n| in_component.contains(n))
                    .min_by_key(|n| (*n != start, !cycle.contains(n), n.index()));
                match next {
                    Some(n) if n == start || cycle.contains(&n) => {
                        cycle.push(n);
                        break;
                    }
                    Some(n) => {
                        cycle.push(n);
                        current = n;
                    }
                    None => break,
                }
            }
            return Err(PlanError::Cycle {
                paths: cycle
                    .iter()
                    .map(|&node| self.graph[node].path.to_string())
                    .collect(),
            });
        }
        Ok(())
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether there is no task.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The tasks, in discovery order.
    pub fn tasks(&self) -> impl Iterator<Item = (NodeIndex, &Task)> {
        self.graph
            .node_indices()
            .map(move |node| (node, &self.graph[node]))
    }

    /// The node of the task at `path`.
    pub fn find(&self, path: &CuePath) -> Option<NodeIndex> {
        self.graph
            .node_indices()
            .find(|&node| self.graph[node].path == *path)
    }

    /// Direct dependencies of `node`.
    pub fn dependencies(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut deps: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(node, Direction::Incoming)
            .collect();
        deps.sort();
        deps
    }

    /// Direct dependents of `node`.
    pub fn dependents(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut deps: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(node, Direction::Outgoing)
            .collect();
        deps.sort();
        deps
    }

    fn add_with_dependencies(&self, node: NodeIndex, allowed: &mut BTreeSet<NodeIndex>) {
        let mut stack = vec![node];
        while let Some(current) = stack.pop() {
            if allowed.insert(current) {
                stack.extend(self.graph.neighbors_directed(current, Direction::Incoming));
            }
        }
    }

    /// The sub-graph `do <target>` runs (§4.3): every task under `target`,
    /// their transitive dependencies, and every `client` task one of whose
    /// dependencies is in that set (with its own dependencies).
    pub fn select(&self, target: &CuePath) -> TaskGraph {
        let mut allowed = BTreeSet::new();
        for node in self.graph.node_indices() {
            if self.graph[node].path.starts_with(target) {
                self.add_with_dependencies(node, &mut allowed);
            }
        }
        let client = CuePath::new(["client"]);
        loop {
            let before = allowed.len();
            for node in self.graph.node_indices() {
                if allowed.contains(&node) || !self.graph[node].path.starts_with(&client) {
                    continue;
                }
                let needed = self
                    .graph
                    .neighbors_directed(node, Direction::Incoming)
                    .any(|dep| allowed.contains(&dep));
                if needed {
                    self.add_with_dependencies(node, &mut allowed);
                }
            }
            if allowed.len() == before {
                break;
            }
        }
        self.restrict(&allowed)
    }

    /// The sub-graph of the given nodes (kept in discovery order).
    pub fn restrict(&self, keep: &BTreeSet<NodeIndex>) -> TaskGraph {
        let mut graph = DiGraph::new();
        let mut mapping = std::collections::BTreeMap::new();
        for node in self.graph.node_indices() {
            if keep.contains(&node) {
                mapping.insert(node, graph.add_node(self.graph[node].clone()));
            }
        }
        for edge in self.graph.edge_references() {
            if let (Some(&from), Some(&to)) =
                (mapping.get(&edge.source()), mapping.get(&edge.target()))
            {
                graph.add_edge(from, to, edge.weight().clone());
            }
        }
        TaskGraph { graph }
    }

    /// A topological order; ties broken by discovery order, so it is stable.
    pub fn topological_order(&self) -> Vec<NodeIndex> {
        let mut indegree: Vec<usize> = self
            .graph
            .node_indices()
            .map(|node| {
                self.graph
                    .neighbors_directed(node, Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<NodeIndex>> = self
            .graph
            .node_indices()
            .filter(|node| indegree[node.index()] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(Reverse(node)) = ready.pop() {
            order.push(node);
            for next in self.graph.neighbors_directed(node, Direction::Outgoing) {
                let count = &mut indegree[next.index()];
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.push(Reverse(next));
                }
            }
        }
        order
    }

    /// The graph in Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph plan {\n  rankdir=LR;\n  node [shape=box];\n");
        for node in self.graph.node_indices() {
            let task = &self.graph[node];
            let label = format!("{}\n{}", task.path, task.task_type);
            let _ = writeln!(out, "  n{} [label={}];", node.index(), dot_quote(&label));
        }
        for edge in self.graph.edge_references() {
            let style = match edge.weight() {
                DependencyReason::Reference => "",
                DependencyReason::ReadBeforeWrite => " [style=dashed]",
            };
            let _ = writeln!(
                out,
                "  n{} -> n{}{};",
                edge.source().index(),
                edge.target().index(),
                style
            );
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for node in self.graph.node_indices() {
            let task = &self.graph[node];
            let label = format!("{}<br/>{}", task.path, task.task_type).replace('"', "#quot;");
            let _ = writeln!(out, "  n{}[\"{}\"]", node.index(), label);
        }
        for edge in self.graph.edge_references() {
            let arrow = match edge.weight() {
                DependencyReason::Reference => "-->",
                DependencyReason::ReadBeforeWrite => "-.->",
            };
            let _ = writeln!(
                out,
                "  n{} {} n{}",
                edge.source().index(),
                arrow,
                edge.target().index()
            );
        }
        out
    }
}

fn dot_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(path: &str, task_type: &str) -> Task {
        Task {
            path: CuePath::new(path.split('.')),
            task_type: task_type.to_string(),
        }
    }

    fn paths(graph: &TaskGraph, order: &[NodeIndex]) -> Vec<String> {
        order
            .iter()
            .map(|&n| graph.graph[n].path.to_string())
            .collect()
    }

    fn seed_like() -> TaskGraph {
        // 0 read, 1 write, 2 pull, 3 exec, 4 other action, 5 other write, 6 env
        let tasks = vec![
            task("client.filesystem.src.read", "ClientFilesystemRead"),
            task("client.filesystem.out.write", "ClientFilesystemWrite"),
            task("actions.build._pull", "Pull"),
            task("actions.build._exec", "Exec"),
            task("actions.other", "Nop"),
            task("client.filesystem.other.write", "ClientFilesystemWrite"),
            task("client.env", "ClientEnv"),
        ];
        let r = DependencyReason::Reference;
        TaskGraph::new(
            tasks,
            &[
                (3, 2, r.clone()),
                (3, 0, r.clone()),
                (1, 3, r.clone()),
                (5, 4, r.clone()),
                (4, 6, r.clone()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn selects_target_dependencies_and_client_consumers() {
        let graph = seed_like();
        let selected = graph.select(&CuePath::new(["actions", "build"]));
        let order = selected.topological_order();
        assert_eq!(
            paths(&selected, &order),
            [
                "client.filesystem.src.read",
                "actions.build._pull",
                "actions.build._exec",
                "client.filesystem.out.write"
            ]
        );
        let other = graph.select(&CuePath::new(["actions", "other"]));
        assert_eq!(
            paths(&other, &other.topological_order()),
            [
                "client.env",
                "actions.other",
                "client.filesystem.other.write"
            ]
        );
    }

    #[test]
    fn reports_cycles_by_path() {
        let tasks = vec![
            task("actions.a", "Nop"),
            task("actions.b", "Nop"),
            task("actions.c", "Nop"),
        ];
        let r = DependencyReason::Reference;
        let err =
            TaskGraph::new(tasks, &[(0, 1, r.clone()), (1, 2, r.clone()), (2, 0, r)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle between tasks: actions.a -> actions.b -> actions.c -> actions.a"
        );
    }

    #[test]
    fn renders_dot_and_mermaid() {
        let graph = seed_like().select(&CuePath::new(["actions", "other"]));
        let dot = graph.to_dot();
        assert!(
            dot.contains("n2 [label=\"client.env\\nClientEnv\"];"),
            "{dot}"
        );
        assert!(dot.contains("n2 -> n0;"), "{dot}");
        let mermaid = graph.to_mermaid();
        assert!(mermaid.contains("n0 --> n1"), "{mermaid}");
    }
}
