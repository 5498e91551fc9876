//! The Dagger plan model: task discovery, dependencies and the task graph.
