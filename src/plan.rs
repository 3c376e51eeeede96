//! What is done and what is left: an instance's tasks classified against the state.
//!
//! [`Plan`] is what `plan` prints and what `run` executes: a task is *done* when its marker exists
//! and every declared output still exists (a marker whose output was deleted does not count);
//! *changed* when done but its definition's fingerprint differs from the marker's; an external
//! input is done when its outputs exist. [`statuses`] adds what the attempt history says (failed,
//! interrupted, running, blocked) for `status` and `graph`.

use std::collections::HashMap;
use std::path::Path;

use crate::graph::Graph;
use crate::instance::Instance;
use crate::process;
use crate::state::{AttemptRow, AttemptState, Marker};

/// A task's state as `plan`, `status` and `graph` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Marker present and outputs exist (or an external input whose outputs exist).
    Done,
    /// Done, but the definition changed since.
    Changed,
    /// Will run (plan), or has not run yet (status).
    Pending,
    Running,
    Failed,
    /// Not started because a task it requires failed.
    Blocked,
    /// An external input whose outputs do not exist.
    Missing,
    /// Requires a missing external input (nothing failed).
    Waiting,
    /// Its last attempt was interrupted (signal, crash).
    Interrupted,
    /// Outside `--only`'s scope.
    Skipped,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Done => "done",
            TaskState::Changed => "changed",
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Failed => "failed",
            TaskState::Blocked => "blocked",
            TaskState::Missing => "missing",
            TaskState::Waiting => "waiting",
            TaskState::Interrupted => "interrupted",
            TaskState::Skipped => "skipped",
        }
    }

    /// Needs no work in a run.
    pub fn is_done(self) -> bool {
        matches!(self, TaskState::Done | TaskState::Changed)
    }
}

/// Each task's state before a run.
#[derive(Debug)]
pub struct Plan {
    pub states: Vec<TaskState>,
    /// Fingerprint of every task's current definition.
    pub fingerprints: Vec<String>,
    /// Tasks whose marker exists but whose outputs are gone.
    pub stale_markers: Vec<usize>,
}

/// Options that change what a run would do.
#[derive(Debug, Default, Clone)]
pub struct PlanOptions {
    pub rerun_changed: bool,
    /// `--only`: these tasks and what they require; everything else is skipped.
    pub only: Vec<usize>,
}

impl Plan {
    pub fn new(
        instance: &Instance<'_>,
        root: &Path,
        markers: &HashMap<String, Marker>,
        opts: &PlanOptions,
    ) -> Plan {
        let p = instance.pipeline;
        let n = p.tasks.len();
        let mut states = vec![TaskState::Pending; n];
        let mut fingerprints = Vec::with_capacity(n);
        let mut stale_markers = Vec::new();
        for t in 0..n {
            let fp = instance.fingerprint(t, root);
            let def = p.def(t);
            let outputs_exist = || instance.resolve(t, root, None).outputs.iter().all(|o| o.exists());
            states[t] = if def.command.is_none() {
                if outputs_exist() {
                    TaskState::Done
                } else {
                    TaskState::Missing
                }
            } else {
                match markers.get(&p.tasks[t].id) {
                    Some(m) if def.outputs.is_empty() || outputs_exist() => {
                        if m.fingerprint == fp {
                            TaskState::Done
                        } else {
                            TaskState::Changed
                        }
                    }
                    Some(_) => {
                        stale_markers.push(t);
                        TaskState::Pending
                    }
                    None => TaskState::Pending,
                }
            };
            fingerprints.push(fp);
        }
        if opts.rerun_changed {
            let changed: Vec<usize> = (0..n).filter(|&t| states[t] == TaskState::Changed).collect();
            for &t in changed.iter().chain(p.graph.downstream(&changed).iter()) {
                if p.def(t).command.is_some() {
                    states[t] = TaskState::Pending;
                }
            }
        }
        // Missing inputs make their not-done dependents wait (an input with `wait` is polled
        // by the run, so its dependents are still to run).
        let missing: Vec<usize> = (0..n)
            .filter(|&t| states[t] == TaskState::Missing && p.def(t).wait.is_none())
            .collect();
        for t in p.graph.downstream(&missing) {
            if !states[t].is_done() && states[t] != TaskState::Missing {
                states[t] = TaskState::Waiting;
            }
        }
        if !opts.only.is_empty() {
            let mut scope = vec![false; n];
            for t in opts.only.iter().copied().chain(p.graph.upstream(&opts.only)) {
                scope[t] = true;
            }
            for t in 0..n {
                if !scope[t] {
                    states[t] = TaskState::Skipped;
                }
            }
        }
        Plan {
            states,
            fingerprints,
            stale_markers,
        }
    }

    /// Tasks the run must execute (or poll, for inputs with `wait`).
    pub fn to_run(&self) -> impl Iterator<Item = usize> + '_ {
        self.states
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, TaskState::Pending | TaskState::Missing))
            .map(|(t, _)| t)
    }
}

/// One task's state with what its attempts say, for `status` and `graph`.
#[derive(Debug, Clone)]
pub struct TaskStatus {
    pub state: TaskState,
    pub attempts: usize,
    pub last: Option<AttemptRow>,
    /// For a blocked task: the failed task that blocks it.
    pub blocked_by: Option<usize>,
}

/// Combine a plan with the attempt history.
pub fn statuses(plan: &Plan, graph: &Graph, ids: &[&str], attempts: &[AttemptRow]) -> Vec<TaskStatus> {
    let index: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut out: Vec<TaskStatus> = plan
        .states
        .iter()
        .map(|&state| TaskStatus {
            state,
            attempts: 0,
            last: None,
            blocked_by: None,
        })
        .collect();
    for a in attempts {
        if let Some(&t) = index.get(a.task.as_str()) {
            out[t].attempts += 1;
            out[t].last = Some(a.clone());
        }
    }
    for s in out.iter_mut() {
        if s.state != TaskState::Pending {
            continue;
        }
        if let Some(last) = &s.last {
            s.state = match last.state {
                AttemptState::Running if process::same_process_alive(last.runner_pid, last.runner_start) => {
                    TaskState::Running
                }
                AttemptState::Running | AttemptState::Interrupted => TaskState::Interrupted,
                AttemptState::Failed | AttemptState::Timeout => TaskState::Failed,
                AttemptState::Success => TaskState::Pending,
            };
        }
    }
    let failed: Vec<usize> = (0..out.len())
        .filter(|&t| out[t].state == TaskState::Failed)
        .collect();
    for &f in &failed {
        for t in graph.downstream(&[f]) {
            if matches!(out[t].state, TaskState::Pending | TaskState::Waiting) {
                out[t].state = TaskState::Blocked;
                out[t].blocked_by = Some(f);
            }
        }
    }
    out
}
