//! What is done and what is left: an instance's tasks classified against the state.
//!
//! [`Plan`] is what `plan` prints and what `run` executes: a task is *done* when its marker exists
//! and every declared output still exists (a marker whose output was deleted does not count);
//! *changed* when done but its definition's fingerprint differs from the marker's; an external
//! input is done when its outputs exist. [`statuses`] adds what the attempt history says (failed,
//! interrupted, running, blocked) for `status` and `graph`.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustc_hash::FxHashMap;

use crate::graph::Graph;
use crate::instance::Instance;
use crate::process;
use crate::state::{AttemptRow, AttemptState, Markers};

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
    /// Done tasks whose marker an earlier plumb wrote without the content of the project files
    /// they execute: taken as done, and `run` records their current fingerprint in the marker
    /// so that a later edit of such a file shows.
    pub unrecorded_scripts: Vec<usize>,
}

/// Options that change what a run would do.
#[derive(Debug, Default, Clone)]
pub struct PlanOptions {
    pub rerun_changed: bool,
    /// `--only`: these tasks and what they require; everything else is skipped.
    pub only: Vec<usize>,
}

impl Plan {
    pub fn new(instance: &Instance<'_>, root: &Path, markers: &Markers, opts: &PlanOptions) -> Plan {
        let p = instance.pipeline;
        let n = p.tasks.len();
        // Each task's state needs its rendered command (independent work, split over the
        // machine's cores), then whether its outputs exist, checked for all tasks at once.
        let digests = crate::instance::ScriptDigests::new(root);
        let classify = |t: usize| -> (String, bool, Need, Vec<std::path::PathBuf>) {
            let resolved = instance.resolve(t, root, None);
            let fp = crate::instance::fingerprint(&resolved, &digests);
            let def = p.def(t);
            let mut unrecorded = false;
            let need = if def.command.is_none() {
                Need::Outputs {
                    exist: TaskState::Done,
                    gone: TaskState::Missing,
                }
            } else {
                match markers.get(&p.tasks[t].id) {
                    Some(m) => {
                        let done = if m.fingerprint == fp.current {
                            TaskState::Done
                        } else if fp.without_scripts.as_ref() == Some(&m.fingerprint) {
                            // Recorded before scripts counted: what it ran cannot be known,
                            // and an upgrade must not make every scripted task `changed`.
                            unrecorded = true;
                            TaskState::Done
                        } else {
                            TaskState::Changed
                        };
                        if def.outputs.is_empty() {
                            Need::Nothing(done)
                        } else {
                            // A marker whose output is gone: not done, and the marker is stale.
                            Need::Outputs {
                                exist: done,
                                gone: TaskState::Interrupted,
                            }
                        }
                    }
                    None => Need::Nothing(TaskState::Pending),
                }
            };
            let outputs = match need {
                Need::Outputs { .. } => resolved.outputs,
                Need::Nothing(_) => Vec::new(),
            };
            (fp.current, unrecorded, need, outputs)
        };
        let threads = std::thread::available_parallelism().map_or(1, |c| c.get()).min(8);
        let chunk = n.div_ceil(threads).max(1024);
        let mut results: Vec<(String, bool, Need, Vec<std::path::PathBuf>)> = Vec::with_capacity(n);
        std::thread::scope(|scope| {
            // The first part is this thread's own: one thread fewer to start, and its memory
            // comes from the main heap, already in use, rather than a new thread's arena.
            let mut starts = (0..n).step_by(chunk);
            let first = starts.next();
            let parts: Vec<_> = starts
                .map(|start| {
                    scope.spawn(move || (start..(start + chunk).min(n)).map(classify).collect::<Vec<_>>())
                })
                .collect();
            if let Some(start) = first {
                results.extend((start..(start + chunk).min(n)).map(classify));
            }
            for part in parts {
                results.extend(part.join().expect("planning threads do not panic"));
            }
        });
        let exists = existing(
            &results
                .iter()
                .flat_map(|(_, _, _, outputs)| outputs.iter().map(|o| o.as_path()))
                .collect::<Vec<_>>(),
        );
        let mut next = 0;
        let mut states = Vec::with_capacity(n);
        let mut fingerprints = Vec::with_capacity(n);
        let mut stale_markers = Vec::new();
        let mut unrecorded_scripts = Vec::new();
        for (t, (fp, unrecorded, need, outputs)) in results.into_iter().enumerate() {
            let state = match need {
                Need::Nothing(state) => state,
                Need::Outputs { exist, gone } => {
                    let all = exists[next..next + outputs.len()].iter().all(|&e| e);
                    next += outputs.len();
                    if all { exist } else { gone }
                }
            };
            if state == TaskState::Interrupted {
                stale_markers.push(t);
                states.push(TaskState::Pending);
            } else {
                if unrecorded && state == TaskState::Done {
                    unrecorded_scripts.push(t);
                }
                states.push(state);
            }
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
            unrecorded_scripts,
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

/// What decides a task's state once its command is rendered.
#[derive(Debug, Clone, Copy)]
enum Need {
    Nothing(TaskState),
    /// `exist` if every output exists, else `gone`.
    Outputs {
        exist: TaskState,
        gone: TaskState,
    },
}

/// Directories holding at least this many of the paths asked about are listed, not stat-ed.
const LIST_AT: usize = 64;

/// Whether each of `paths` exists, as [`Path::exists`] says (following symlinks). A directory
/// holding many of them is listed once instead: on this machine a stat costs 2-5 us, so the
/// 10,000 outputs of a finished 10,000-task run took 12 ms of a resume pass on two cores,
/// while listing their directory takes 2-6 ms. A symlink found in a listing is still
/// stat-ed, so a dangling one does not count as existing.
///
/// Paths are grouped by their directory's bytes and the listing's names are matched without
/// copying them: grouping by `Path` (which hashes and compares component by component) and an
/// owned name per entry were most of this function's own time on a resume pass.
pub fn existing(paths: &[&Path]) -> Vec<bool> {
    use nix::dir::{Dir, Type};
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;

    let mut groups: Vec<DirGroup<'_>> = Vec::new();
    // Where each directory is in `groups`.
    let mut group_of: FxHashMap<&[u8], usize> = FxHashMap::default();
    let mut single = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match split_dir(path) {
            Some((dir, name)) => {
                // Outputs of one directory mostly come one after another.
                let g = match groups.last() {
                    Some((last, _)) if *last == dir => groups.len() - 1,
                    _ => *group_of.entry(dir).or_insert_with(|| {
                        groups.push((dir, Vec::new()));
                        groups.len() - 1
                    }),
                };
                groups[g].1.push((i, name));
            }
            None => single.push(i),
        }
    }
    let mut out = vec![false; paths.len()];
    for (dir, idx) in groups {
        if idx.len() < LIST_AT {
            single.extend(idx.iter().map(|&(i, _)| i));
            continue;
        }
        // The first of the paths with each name; `first[k]` for the k-th path of the group.
        let mut wanted: FxHashMap<&[u8], usize> =
            FxHashMap::with_capacity_and_hasher(idx.len(), Default::default());
        let first: Vec<usize> = idx
            .iter()
            .enumerate()
            .map(|(k, &(_, name))| *wanted.entry(name).or_insert(k))
            .collect();
        // 0: not listed, 1: listed, 2: listed but a symlink or of unknown type (stat it).
        let mut found = vec![0u8; idx.len()];
        let listed = Dir::open(
            std::ffi::OsStr::from_bytes(dir),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .and_then(|mut d| {
            for entry in d.iter() {
                let entry = entry?;
                if let Some(&k) = wanted.get(entry.file_name().to_bytes()) {
                    found[k] = match entry.file_type() {
                        None | Some(Type::Symlink) => 2,
                        Some(_) => 1,
                    };
                }
            }
            Ok(())
        });
        if listed.is_err() {
            single.extend(idx.iter().map(|&(i, _)| i));
            continue;
        }
        for (k, &(i, _)) in idx.iter().enumerate() {
            out[i] = match found[first[k]] {
                0 => false,
                1 => true,
                _ => paths[i].exists(),
            };
        }
    }
    for i in single {
        out[i] = paths[i].exists();
    }
    out
}

/// A directory, and the index and name of each path asked about in it.
type DirGroup<'a> = (&'a [u8], Vec<(usize, &'a [u8])>);

/// A path's directory and last component, by bytes, when the last component is a plain name
/// (not `.`, `..`, nor followed by a slash) and the directory is not empty or the root.
fn split_dir(path: &Path) -> Option<(&[u8], &[u8])> {
    let bytes = path.as_os_str().as_bytes();
    let slash = bytes.iter().rposition(|&b| b == b'/')?;
    let (dir, name) = (&bytes[..slash], &bytes[slash + 1..]);
    if dir.is_empty() || name.is_empty() || name == b"." || name == b".." {
        return None;
    }
    Some((dir, name))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Marker;

    #[test]
    fn existing_agrees_with_path_exists_when_listing_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let big = d.join("big");
        std::fs::create_dir(&big).unwrap();
        for i in 0..(LIST_AT + 10) {
            if i % 3 != 0 {
                std::fs::write(big.join(format!("f{i}")), "").unwrap();
            }
        }
        std::fs::create_dir(big.join("sub")).unwrap();
        std::os::unix::fs::symlink(big.join("f1"), big.join("good-link")).unwrap();
        std::os::unix::fs::symlink(big.join("gone"), big.join("dangling")).unwrap();
        std::fs::write(d.join("small"), "").unwrap();
        let mut paths: Vec<std::path::PathBuf> =
            (0..(LIST_AT + 10)).map(|i| big.join(format!("f{i}"))).collect();
        // f1 and f3 a second time: one present, one absent.
        for extra in [
            "sub",
            "sub/",
            "good-link",
            "dangling",
            "f1/",
            "no-such",
            "f2/..",
            "f1",
            "f3",
        ] {
            paths.push(big.join(extra));
        }
        paths.push(d.join("small"));
        paths.push(d.join("missing-dir/f1"));
        paths.push("relative-that-does-not-exist".into());
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let got = existing(&refs);
        let want: Vec<bool> = paths.iter().map(|p| p.exists()).collect();
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(got[i], want[i], "{}", p.display());
        }
        // More than LIST_AT paths share `big`, so it was listed. Absent: every third file, 5 of
        // the extras (dangling, f1/, no-such, f2/.., f3) and the 2 outside `big`.
        assert_eq!(
            got.iter().filter(|&&e| !e).count(),
            (LIST_AT + 10).div_ceil(3) + 7
        );
    }
    use crate::pipeline::Pipeline;
    use crate::spec::ProjectFile;

    const P: &str = "[tasks.input]\noutputs = ['in.csv']\n\
        [tasks.a]\ncommand = 'a'\noutputs = ['a.out']\n\
        [tasks.b]\ncommand = 'b'\nrequires = ['a']\n\
        [tasks.c]\ncommand = 'c'\nrequires = ['input', 'b']\n\
        [tasks.d]\ncommand = 'd'\n";

    fn pipeline(text: &str) -> Pipeline {
        Pipeline::from_text(
            Path::new("/x/p.toml"),
            Path::new("p.toml"),
            text.to_string(),
            &ProjectFile::default(),
        )
        .expect("valid pipeline")
    }

    fn marker(fp: &str) -> Marker {
        Marker {
            fingerprint: fp.to_string(),
        }
    }

    fn plan(p: &Pipeline, root: &Path, done: &[&str], opts: &PlanOptions) -> Plan {
        let inst = Instance::new(p, &[], chrono::Utc::now()).unwrap();
        let markers = done
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    marker(&inst.fingerprint(p.index[*t], root).current),
                )
            })
            .collect();
        Plan::new(&inst, root, &markers, opts)
    }

    fn states(p: &Pipeline, plan: &Plan) -> Vec<(String, &'static str)> {
        p.tasks
            .iter()
            .zip(&plan.states)
            .map(|(t, s)| (t.id.clone(), s.as_str()))
            .collect()
    }

    #[test]
    fn markers_and_outputs_decide_done() {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(P);
        // a's marker exists but its output does not: not done, and the marker is stale.
        let pl = plan(&p, dir.path(), &["a", "b", "d"], &PlanOptions::default());
        assert_eq!(pl.stale_markers, vec![p.index["a"]]);
        assert_eq!(pl.states[p.index["a"]], TaskState::Pending);
        assert_eq!(
            pl.states[p.index["b"]],
            TaskState::Done,
            "b has no outputs: its marker suffices"
        );
        std::fs::write(dir.path().join("a.out"), "").unwrap();
        let pl = plan(&p, dir.path(), &["a", "b", "d"], &PlanOptions::default());
        assert!(pl.stale_markers.is_empty());
        assert_eq!(pl.states[p.index["a"]], TaskState::Done);
    }

    #[test]
    fn missing_input_makes_dependents_wait_unless_it_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(P);
        let pl = plan(&p, dir.path(), &[], &PlanOptions::default());
        assert_eq!(
            states(&p, &pl),
            vec![
                ("input".into(), "missing"),
                ("a".into(), "pending"),
                ("b".into(), "pending"),
                ("c".into(), "waiting"),
                ("d".into(), "pending"),
            ]
        );
        let waited = pipeline(&P.replace("outputs = ['in.csv']", "outputs = ['in.csv']\nwait = '1m'"));
        let pl = plan(&waited, dir.path(), &[], &PlanOptions::default());
        assert_eq!(pl.states[waited.index["c"]], TaskState::Pending);
        std::fs::write(dir.path().join("in.csv"), "").unwrap();
        let pl = plan(&p, dir.path(), &[], &PlanOptions::default());
        assert_eq!(pl.states[p.index["input"]], TaskState::Done);
        assert_eq!(pl.states[p.index["c"]], TaskState::Pending);
    }

    #[test]
    fn changed_stays_done_unless_rerun_changed_which_takes_dependents_along() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.out"), "").unwrap();
        std::fs::write(dir.path().join("in.csv"), "").unwrap();
        let p = pipeline(P);
        let inst = Instance::new(&p, &[], chrono::Utc::now()).unwrap();
        let mut markers: Markers = ["a", "b", "c", "d"]
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    marker(&inst.fingerprint(p.index[*t], dir.path()).current),
                )
            })
            .collect();
        markers.insert("a".into(), marker("old"));
        let pl = Plan::new(&inst, dir.path(), &markers, &PlanOptions::default());
        assert_eq!(pl.states[p.index["a"]], TaskState::Changed);
        assert!(pl.states.iter().all(|s| s.is_done()));
        let opts = PlanOptions {
            rerun_changed: true,
            ..Default::default()
        };
        let pl = Plan::new(&inst, dir.path(), &markers, &opts);
        let to_run: Vec<&str> = pl.to_run().map(|t| p.tasks[t].id.as_str()).collect();
        assert_eq!(to_run, vec!["a", "b", "c"]);
    }

    #[test]
    fn only_limits_the_plan_to_a_task_and_its_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(P);
        let opts = PlanOptions {
            only: vec![p.index["b"]],
            ..Default::default()
        };
        let pl = plan(&p, dir.path(), &[], &opts);
        let to_run: Vec<&str> = pl.to_run().map(|t| p.tasks[t].id.as_str()).collect();
        assert_eq!(to_run, vec!["a", "b"]);
        assert_eq!(pl.states[p.index["d"]], TaskState::Skipped);
    }
}
