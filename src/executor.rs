//! The dispatcher: runs an instance's pending tasks in dependency order, in parallel.
//!
//! One `tokio::select!` loop on a single thread owns every piece of scheduling state and reacts
//! to four things: an attempt reporting (spawned, finished), a timer (a retry's backoff elapsed,
//! an external input is due for another look), SIGINT and SIGTERM. Attempts run as their own
//! futures ([`crate::attempt`]) and only report events.
//!
//! Scheduling is linear in tasks plus edges: a [`ReadyQueue`] with dependency counters, and for
//! each resource pool a heap of tasks parked until the pool has room. A pool's release wakes only
//! as many parked tasks as it can hold.
//!
//! The dispatcher hands every event to a [`Sink`] *before* acting on it, and a task's dependents
//! are released only after the sink has durably recorded its success: if recording fails, the
//! task counts as failed. An attempt's process starts before the commit that records it (a
//! later run finds it by `PLUMB_RUN_ID` if this one dies first). The executor itself never
//! touches storage or the terminal.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::attempt::{self, AttemptEvent, AttemptResult, AttemptSpec, Stop};
use crate::exit;
use crate::graph::ReadyQueue;
use crate::instance::{AttemptVars, Instance};
use crate::plan::{Plan, TaskState};
use crate::state::AttemptState;

/// How a task ended up in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Done before this run started.
    DoneBefore,
    /// Outside `--only`'s scope.
    Skipped,
    /// Not started (yet).
    Pending,
    Running,
    /// Failed an attempt; waiting out the backoff before the next.
    RetryWait,
    /// Ran and succeeded in this run.
    Ran,
    /// An external input that appeared while the run waited for it.
    Arrived,
    Failed,
    /// Not started: the task at this index failed.
    Blocked(usize),
    Missing,
    /// Not started: the external input at this index is missing.
    Waiting(usize),
    Interrupted,
    /// Not started because the run stopped early (`--fail-fast` or a signal).
    NotStarted,
}

/// What the dispatcher reports, in order.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// An attempt is about to be spawned. The sink records it first, so that a crash right after
    /// the spawn still leaves a row that says the task may be running.
    Starting {
        task: usize,
        attempt: u32,
        log: &'a Path,
    },
    /// The attempt's process group exists.
    Spawned {
        task: usize,
        pgid: u32,
        start: u64,
    },
    /// An attempt ended. On success `fingerprint` is set and the sink must commit the marker
    /// before returning. `retry_in` is set when another attempt will follow.
    Finished {
        task: usize,
        attempt: u32,
        result: &'a AttemptResult,
        fingerprint: Option<&'a str>,
        retry_in: Option<Duration>,
    },
    /// An external input is absent; the run polls for it until `deadline`.
    InputWaiting {
        task: usize,
        wait: Duration,
    },
    InputArrived {
        task: usize,
    },
    /// An external input is missing for good; `waiting` are the tasks that needed it.
    InputMissing {
        task: usize,
        waiting: &'a [usize],
    },
    /// A task failed for good; `blocked` will not start.
    Blocked {
        failed: usize,
        blocked: &'a [usize],
    },
    /// A signal arrived: running tasks are being stopped.
    Stopping {
        signal: Signal,
        hard: bool,
    },
    /// A task has been running (or retrying) for longer than its `sla` since its first attempt
    /// in this run started. Reported once per task per run, while it still runs.
    SlaMissed {
        task: usize,
        running_for: Duration,
    },
    /// The instance's deadline came while the run still goes on. `unfinished` are the tasks in
    /// the run's scope not done by then (those running first). Reported once per run.
    DeadlineMissed {
        unfinished: &'a [usize],
        running: usize,
    },
}

/// Consumes run events: records state, draws progress. An error while recording a success
/// turns it into a failure.
pub trait Sink {
    fn event(&mut self, event: RunEvent<'_>) -> Result<(), String>;
    /// Make durable everything recorded since the last commit. The dispatcher calls it when
    /// something waits for it (see `Dispatcher::commit_due`) and at least every `COMMIT_EVERY`.
    fn commit(&mut self) -> Result<(), String>;
}

pub struct RunConfig<'a> {
    pub instance: &'a Instance<'a>,
    pub root: &'a Path,
    pub plan: &'a Plan,
    pub workers: usize,
    pub fail_fast: bool,
    pub run_id: &'a str,
    /// The state database's id, carried by every task process (`PLUMB_STATE_ID`).
    pub state_id: &'a str,
    pub log_dir: PathBuf,
    /// Each task's expectations with their past values; tasks without any are absent.
    pub checks: &'a crate::watch::Checks,
    /// When the instance's deadline comes, if it is still to come when the run starts.
    pub deadline: Option<std::time::Instant>,
}

#[derive(Debug, Clone)]
pub struct TaskOutcome {
    pub fate: Fate,
    /// Attempts made in this run.
    pub attempts: u32,
    pub last: Option<AttemptResult>,
    pub log: Option<PathBuf>,
}

#[derive(Debug)]
pub struct RunOutcome {
    pub tasks: Vec<TaskOutcome>,
    /// The signal that stopped the run, if one did.
    pub signal: Option<Signal>,
    /// The first failure to record an event or commit a batch: the run could not keep its
    /// state, which is plumb's fault, not a task's.
    pub storage_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Retry(usize),
    Poll(usize),
    Sla(usize),
    Deadline,
}

impl RunOutcome {
    /// The outcome once nothing runs any more: a task still waiting to start (or to retry) did
    /// not start, or was interrupted if a signal stopped it between attempts.
    fn settled(
        mut tasks: Vec<TaskOutcome>,
        signal: Option<Signal>,
        storage_error: Option<String>,
    ) -> RunOutcome {
        for t in &mut tasks {
            if matches!(t.fate, Fate::Pending | Fate::RetryWait) {
                t.fate = if t.attempts > 0 && signal.is_some() {
                    Fate::Interrupted
                } else {
                    Fate::NotStarted
                };
            }
        }
        RunOutcome {
            tasks,
            signal,
            storage_error,
        }
    }

    /// The exit code of the run (DESIGN 4): a signal first, then a state plumb could not keep,
    /// then a failed or blocked task, then a missing input.
    pub fn exit_code(&self) -> i32 {
        match self.signal {
            Some(Signal::SIGINT) => return exit::INTERRUPTED_INT,
            Some(_) => return exit::INTERRUPTED_TERM,
            None => {}
        }
        if self.storage_error.is_some() {
            return exit::INTERNAL;
        }
        let any = |f: &dyn Fn(&Fate) -> bool| self.tasks.iter().any(|t| f(&t.fate));
        if any(&|f| {
            matches!(
                f,
                Fate::Failed | Fate::Blocked(_) | Fate::NotStarted | Fate::Interrupted
            )
        }) {
            exit::TASK_FAILED
        } else if any(&|f| matches!(f, Fate::Missing | Fate::Waiting(_))) {
            exit::MISSING_INPUT
        } else {
            exit::SUCCESS
        }
    }
}

/// Run the plan's pending tasks. Blocks until every one has an outcome.
pub fn execute(cfg: &RunConfig<'_>, sink: &mut dyn Sink) -> std::io::Result<RunOutcome> {
    if cfg.plan.to_run().next().is_none() {
        // Nothing to start or to wait for (every task done or out of scope): no runtime, whose
        // epoll, signal pipe and handlers were a few percent of a resume pass.
        return Ok(RunOutcome::settled(initial_outcomes(cfg.plan), None, None));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(Dispatcher::new(cfg, sink).run())
}

/// Each task's outcome before anything runs: done before, out of scope, or still to run.
fn initial_outcomes(plan: &Plan) -> Vec<TaskOutcome> {
    plan.states
        .iter()
        .map(|s| TaskOutcome {
            fate: match s {
                TaskState::Done | TaskState::Changed => Fate::DoneBefore,
                TaskState::Skipped => Fate::Skipped,
                _ => Fate::Pending,
            },
            attempts: 0,
            last: None,
            log: None,
        })
        .collect()
}

struct Dispatcher<'a, 's> {
    cfg: &'a RunConfig<'a>,
    sink: &'s mut dyn Sink,
    tasks: Vec<TaskOutcome>,
    ready: ReadyQueue,
    running: usize,
    pools: Vec<u32>,
    parked: Vec<BinaryHeap<(i64, Reverse<usize>)>>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    poll_deadline: Vec<Option<Instant>>,
    /// When each task's first attempt in this run started (for its SLA).
    first_start: Vec<Option<Instant>>,
    failed_any: bool,
    stopping: Option<Signal>,
    events_tx: mpsc::UnboundedSender<AttemptEvent>,
    /// Each running attempt's stop channel, by task.
    stops: Vec<Option<watch::Sender<Stop>>>,
    /// When the first record of the open batch (not yet committed) was made.
    batch_since: Option<Instant>,
    /// The open batch holds something that should not wait: a failure, a retry, an alert, an
    /// external input's news, a signal.
    urgent: bool,
    /// Attempts started in the open batch: their rows are not durable yet.
    started: Vec<usize>,
    /// Successes whose markers are in the open batch: undone if its commit fails.
    committing: Vec<usize>,
    /// Attempts stopped because the batch that recorded their start failed to commit: why.
    unrecorded: Vec<Option<String>>,
    /// Attempts were queued since the dispatcher last yielded to them.
    queued: bool,
    /// The first error of the sink, for the outcome.
    storage_error: Option<String>,
    /// The run's log directory exists (attempts' metrics files go there before any output).
    log_dir_made: bool,
    /// The expectations of a task without any, shared.
    no_checks: std::sync::Arc<[crate::watch::Check]>,
}

/// The longest a record waits for its commit while the run goes on: a runner killed outright
/// loses at most this much (successes then run again, as everything not done does).
pub const COMMIT_EVERY: Duration = Duration::from_millis(20);

impl<'a, 's> Dispatcher<'a, 's> {
    fn new(cfg: &'a RunConfig<'a>, sink: &'s mut dyn Sink) -> Self {
        let p = cfg.instance.pipeline;
        let n = p.tasks.len();
        let tasks = initial_outcomes(cfg.plan);
        let to_run: Vec<bool> = (0..n).map(|t| tasks[t].fate == Fate::Pending).collect();
        let ready = ReadyQueue::new(
            &p.graph,
            |t| !to_run[t] && tasks[t].fate != Fate::Pending,
            |t| (p.def(t).priority, t),
        );
        let (events_tx, _) = mpsc::unbounded_channel();
        Dispatcher {
            cfg,
            sink,
            tasks,
            ready,
            running: 0,
            pools: p.resources.iter().map(|(_, c)| *c).collect(),
            parked: vec![BinaryHeap::new(); p.resources.len()],
            timers: BinaryHeap::new(),
            poll_deadline: vec![None; n],
            first_start: vec![None; n],
            failed_any: false,
            stopping: None,
            events_tx,
            stops: (0..n).map(|_| None).collect(),
            batch_since: None,
            urgent: false,
            started: Vec::new(),
            committing: Vec::new(),
            unrecorded: vec![None; n],
            queued: false,
            storage_error: None,
            log_dir_made: false,
            no_checks: std::sync::Arc::from([]),
        }
    }

    async fn run(mut self) -> std::io::Result<RunOutcome> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.events_tx = tx;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        if let Some(at) = self.cfg.deadline {
            self.timers
                .push(Reverse((Instant::from_std(at), Timer::Deadline)));
        }
        loop {
            self.dispatch();
            while self.commit_due() {
                if std::mem::take(&mut self.queued) {
                    // Let the attempts just queued start their processes first: their rows
                    // go into this commit all the same.
                    tokio::task::yield_now().await;
                }
                self.commit();
                // The commit released dependents, or its failure freed workers.
                self.dispatch();
            }
            let idle = self.running == 0
                && !self.timers.iter().any(|Reverse((_, t))| self.keeps_alive(*t))
                && (self.ready.is_empty() || self.stopping.is_some() || self.halted());
            if idle {
                break;
            }
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let commit_at = self.batch_since.map(|since| since + COMMIT_EVERY);
            self.queued = false;
            tokio::select! {
                Some(ev) = rx.recv() => {
                    // Everything that has happened goes into one commit.
                    self.on_attempt_event(ev);
                    while let Ok(ev) = rx.try_recv() {
                        self.on_attempt_event(ev);
                    }
                }
                _ = sleep_until_opt(next_timer) => self.on_timer(),
                // The open batch is due: `commit_due` says so now.
                _ = sleep_until_opt(commit_at) => {}
                _ = sigint.recv() => self.on_signal(Signal::SIGINT),
                _ = sigterm.recv() => self.on_signal(Signal::SIGTERM),
            }
        }
        Ok(RunOutcome::settled(self.tasks, self.stopping, self.storage_error))
    }

    /// `--fail-fast` after a failure: start nothing new.
    fn halted(&self) -> bool {
        self.cfg.fail_fast && self.failed_any
    }

    fn dispatch(&mut self) {
        if self.stopping.is_some() || self.halted() {
            return;
        }
        let p = self.cfg.instance.pipeline;
        while self.running < self.cfg.workers {
            let Some(t) = self.ready.pop() else { break };
            if self.tasks[t].fate != Fate::Pending {
                // Blocked after it became ready: its success was undone by a failed commit.
                continue;
            }
            let def = p.def(t);
            if def.command.is_none() {
                self.start_input(t);
                continue;
            }
            if let Some(&(pool, _)) = def
                .resources
                .iter()
                .find(|(pool, amount)| self.pools[*pool] < *amount)
            {
                self.parked[pool].push((def.priority, Reverse(t)));
                continue;
            }
            for &(pool, amount) in &def.resources {
                self.pools[pool] -= amount;
            }
            self.start_attempt(t);
        }
    }

    fn start_input(&mut self, t: usize) {
        let def = self.cfg.instance.pipeline.def(t);
        if self.outputs_exist(t) {
            let _ = self.record(RunEvent::InputArrived { task: t });
            self.tasks[t].fate = Fate::Arrived;
            self.ready.complete(&self.cfg.instance.pipeline.graph, t);
            return;
        }
        match def.wait {
            Some(wait) => {
                let _ = self.record(RunEvent::InputWaiting { task: t, wait });
                self.tasks[t].fate = Fate::Running;
                self.poll_deadline[t] = Some(Instant::now() + wait);
                self.timers
                    .push(Reverse((Instant::now() + poll_interval(wait), Timer::Poll(t))));
            }
            None => self.input_missing(t),
        }
    }

    fn input_missing(&mut self, t: usize) {
        self.tasks[t].fate = Fate::Missing;
        let waiting: Vec<usize> = self
            .cfg
            .instance
            .pipeline
            .graph
            .downstream(&[t])
            .into_iter()
            .filter(|&d| self.tasks[d].fate == Fate::Pending)
            .collect();
        for &d in &waiting {
            self.tasks[d].fate = Fate::Waiting(t);
        }
        let _ = self.record(RunEvent::InputMissing {
            task: t,
            waiting: &waiting,
        });
    }

    fn outputs_exist(&self, t: usize) -> bool {
        self.cfg
            .instance
            .resolve(t, self.cfg.root, None)
            .outputs
            .iter()
            .all(|o| o.exists())
    }

    fn start_attempt(&mut self, t: usize) {
        let inst = self.cfg.instance;
        let p = inst.pipeline;
        let def = p.def(t);
        let attempt = self.tasks[t].attempts + 1;
        self.tasks[t].attempts = attempt;
        if attempt == 1 {
            let now = Instant::now();
            self.first_start[t] = Some(now);
            if let Some(sla) = def.sla {
                self.timers.push(Reverse((now + sla, Timer::Sla(t))));
            }
        }
        self.tasks[t].fate = Fate::Running;
        self.running += 1;
        let log = self.cfg.log_dir.join(log_file_name(&p.tasks[t].id, attempt));
        self.tasks[t].log = Some(log.clone());
        let resolved = inst.resolve(
            t,
            self.cfg.root,
            Some(AttemptVars {
                run_id: self.cfg.run_id,
                attempt,
            }),
        );
        if !self.log_dir_made {
            // A task may write its metrics before it prints anything; if the directory cannot
            // be made, its write fails, and so does the task, saying why.
            self.log_dir_made = std::fs::create_dir_all(&self.cfg.log_dir).is_ok();
        }
        let metrics = log.with_extension("metrics");
        let mut env = resolved.env;
        env.push(("PLUMB_METRICS".into(), metrics.to_string_lossy().into_owned()));
        env.push(("PLUMB_PIPELINE".into(), p.name.clone()));
        env.push(("PLUMB_TASK".into(), p.tasks[t].id.clone()));
        env.push(("PLUMB_RUN_ID".into(), self.cfg.run_id.to_string()));
        env.push(("PLUMB_STATE_ID".into(), self.cfg.state_id.to_string()));
        env.push(("PLUMB_ATTEMPT".into(), attempt.to_string()));
        env.push(("PLUMB_SCHEDULED_TIME".into(), inst.scheduled_time.clone()));
        for (k, v) in &inst.params {
            // `PLUMB_PARAM_MY-DAY` as it always was, and `PLUMB_PARAM_MY_DAY`, which sh can name.
            let var = crate::pipeline::env_var(k, false);
            if k.contains('-') {
                env.push((format!("PLUMB_PARAM_{}", k.to_uppercase()), v.clone()));
            }
            env.push((var, v.clone()));
        }
        for (k, v) in &p.tasks[t].vars {
            env.push((crate::pipeline::env_var(k, true), v.clone()));
        }
        let spec = AttemptSpec {
            task: t,
            command: resolved.command.expect("only tasks with a command get attempts"),
            check: resolved.check,
            outputs: resolved.outputs,
            env,
            cwd: resolved.cwd,
            log_path: log.clone(),
            timeout: def.timeout,
            grace: def.grace,
            header: format!(
                "# plumb: {} attempt {attempt}/{}, run {}, {}",
                p.tasks[t].id,
                def.retries + 1,
                self.cfg.run_id,
                crate::timefmt::at(chrono::Utc::now(), p.timezone)
            ),
            metrics,
            checks: self.cfg.checks.get(&t).unwrap_or(&self.no_checks).clone(),
        };
        if let Err(e) = self.record(RunEvent::Starting {
            task: t,
            attempt,
            log: &log,
        }) {
            // Without a row recording it, the attempt must not run.
            self.running -= 1;
            self.release(t);
            let result = AttemptResult {
                state: AttemptState::Failed,
                exit_code: None,
                signal: None,
                duration: Duration::ZERO,
                error: Some(format!("could not record the attempt: {e}")),
                metrics: Vec::new(),
                warnings: Vec::new(),
            };
            self.fail(t, result);
            return;
        }
        let (stop_tx, stop_rx) = watch::channel(self.stopping.map_or(Stop::No, |_| Stop::Terminate));
        self.stops[t] = Some(stop_tx);
        tokio::spawn(attempt::run(spec, self.events_tx.clone(), stop_rx));
        self.started.push(t);
        self.queued = true;
    }

    /// Hand an event to the sink, into the open batch.
    fn record(&mut self, event: RunEvent<'_>) -> Result<(), String> {
        let routine = matches!(
            event,
            RunEvent::Starting { .. }
                | RunEvent::Spawned { .. }
                | RunEvent::Finished {
                    fingerprint: Some(_),
                    ..
                }
        );
        self.urgent |= !routine;
        self.batch_since.get_or_insert_with(Instant::now);
        let recorded = self.sink.event(event);
        if let Err(e) = &recorded {
            self.storage_error.get_or_insert_with(|| e.clone());
        }
        recorded
    }

    /// Whether the open batch must be committed now. Attempts start before their rows are
    /// committed (recovery finds their processes by `PLUMB_RUN_ID`), and dependents of a success
    /// before its marker is (both go into one batch, the marker first, so a dependent's row or
    /// marker is never durable without it). A commit is due for news that should not wait, at
    /// the end of the run, or once the batch is `COMMIT_EVERY` old.
    fn commit_due(&self) -> bool {
        let Some(since) = self.batch_since else {
            return false;
        };
        self.urgent || self.stopping.is_some() || self.running == 0 || since.elapsed() >= COMMIT_EVERY
    }

    /// Commit the open batch. If the commit failed, none of it counts: its successes fail (they
    /// run again next time), blocking their dependents, and the attempts it started (dependents
    /// of those successes among them) are stopped and fail, for they have no row.
    fn commit(&mut self) {
        self.batch_since = None;
        self.urgent = false;
        match self.sink.commit() {
            Ok(()) => {
                self.started.clear();
                self.committing.clear();
            }
            Err(e) => {
                self.storage_error.get_or_insert_with(|| e.clone());
                for t in std::mem::take(&mut self.committing) {
                    let result = self.tasks[t].last.take().expect("a success has its result");
                    let failed = AttemptResult {
                        state: AttemptState::Failed,
                        error: Some(format!("succeeded, but its marker could not be recorded: {e}")),
                        ..result
                    };
                    self.fail(t, failed);
                }
                for t in std::mem::take(&mut self.started) {
                    if let Some(stop) = &self.stops[t] {
                        self.unrecorded[t] = Some(e.clone());
                        let _ = stop.send(Stop::Terminate);
                    }
                }
                // Best effort: record those failures.
                let _ = self.sink.commit();
                self.batch_since = None;
                self.urgent = false;
            }
        }
    }

    fn release(&mut self, t: usize) {
        let def = self.cfg.instance.pipeline.def(t);
        for &(pool, amount) in &def.resources {
            self.pools[pool] += amount;
            // Wake as many parked tasks as the pool can now hold, best first.
            let mut room = self.pools[pool];
            while let Some(&(_, Reverse(w))) = self.parked[pool].peek() {
                let need = self
                    .cfg
                    .instance
                    .pipeline
                    .def(w)
                    .resources
                    .iter()
                    .find(|(p, _)| *p == pool)
                    .map_or(0, |r| r.1);
                if need > room {
                    break;
                }
                room -= need;
                self.parked[pool].pop();
                self.ready.push_back(w);
            }
        }
    }

    fn on_attempt_event(&mut self, ev: AttemptEvent) {
        match ev {
            AttemptEvent::Spawned { task, pgid, start } => {
                let _ = self.record(RunEvent::Spawned { task, pgid, start });
            }
            AttemptEvent::Finished { task, result } => {
                self.running -= 1;
                self.stops[task] = None;
                self.release(task);
                if let Some(e) = self.unrecorded[task].take() {
                    let failed = AttemptResult {
                        state: AttemptState::Failed,
                        error: Some(format!("could not record the attempt: {e}")),
                        ..result
                    };
                    self.fail(task, failed);
                } else {
                    self.finished(task, result);
                }
            }
        }
    }

    fn finished(&mut self, t: usize, result: AttemptResult) {
        let attempt = self.tasks[t].attempts;
        if result.state == AttemptState::Success {
            let cfg = self.cfg;
            let fp = &cfg.plan.fingerprints[t];
            let recorded = self.record(RunEvent::Finished {
                task: t,
                attempt,
                result: &result,
                fingerprint: Some(fp),
                retry_in: None,
            });
            match recorded {
                Ok(()) => {
                    self.tasks[t].fate = Fate::Ran;
                    self.tasks[t].last = Some(result);
                    self.committing.push(t);
                    // Dependents start now, not after the commit: their starts follow the
                    // marker in the batch, and a failed commit stops them.
                    self.ready.complete(&cfg.instance.pipeline.graph, t);
                }
                Err(e) => {
                    let failed = AttemptResult {
                        state: AttemptState::Failed,
                        error: Some(format!("succeeded, but its marker could not be recorded: {e}")),
                        ..result
                    };
                    self.fail(t, failed);
                }
            }
            return;
        }
        let def = self.cfg.instance.pipeline.def(t);
        let may_retry = result.state != AttemptState::Interrupted
            && attempt <= def.retries
            && self.stopping.is_none()
            && !self.halted();
        if may_retry {
            let delay = backoff(def.retry_delay, def.max_retry_delay, attempt);
            let _ = self.record(RunEvent::Finished {
                task: t,
                attempt,
                result: &result,
                fingerprint: None,
                retry_in: Some(delay),
            });
            self.tasks[t].fate = Fate::RetryWait;
            self.tasks[t].last = Some(result);
            self.timers
                .push(Reverse((Instant::now() + delay, Timer::Retry(t))));
            return;
        }
        if result.state == AttemptState::Interrupted {
            let _ = self.record(RunEvent::Finished {
                task: t,
                attempt,
                result: &result,
                fingerprint: None,
                retry_in: None,
            });
            self.tasks[t].fate = Fate::Interrupted;
            self.tasks[t].last = Some(result);
            return;
        }
        self.fail(t, result);
    }

    /// `t` failed for good: record it and block everything downstream.
    fn fail(&mut self, t: usize, result: AttemptResult) {
        let attempt = self.tasks[t].attempts;
        let _ = self.record(RunEvent::Finished {
            task: t,
            attempt,
            result: &result,
            fingerprint: None,
            retry_in: None,
        });
        self.tasks[t].fate = Fate::Failed;
        self.tasks[t].last = Some(result);
        self.failed_any = true;
        let blocked: Vec<usize> = self
            .cfg
            .instance
            .pipeline
            .graph
            .downstream(&[t])
            .into_iter()
            .filter(|&d| self.not_started(d))
            .collect();
        for &d in &blocked {
            self.tasks[d].fate = Fate::Blocked(t);
        }
        if !blocked.is_empty() {
            let _ = self.record(RunEvent::Blocked {
                failed: t,
                blocked: &blocked,
            });
        }
    }

    /// Whether `t` has yet to start for good: pending, waiting out a retry's backoff, or an
    /// external input still being polled for. (A dependent can be any of these when a failed
    /// commit undoes the success it started after.)
    fn not_started(&self, t: usize) -> bool {
        match self.tasks[t].fate {
            Fate::Pending | Fate::RetryWait => true,
            Fate::Running => self.cfg.instance.pipeline.def(t).command.is_none(),
            _ => false,
        }
    }

    /// Whether `timer` is something the run must wait for: a retry or a poll of a task still
    /// waiting for it. SLA timers never keep a run alive.
    fn keeps_alive(&self, timer: Timer) -> bool {
        match timer {
            Timer::Retry(t) => self.tasks[t].fate == Fate::RetryWait,
            Timer::Poll(t) => self.tasks[t].fate == Fate::Running,
            Timer::Sla(_) | Timer::Deadline => false,
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            // A task blocked meanwhile (by a failed commit) neither retries nor polls.
            if !matches!(timer, Timer::Sla(_) | Timer::Deadline) && !self.keeps_alive(timer) {
                continue;
            }
            match timer {
                Timer::Retry(t) => {
                    if self.stopping.is_some() || self.halted() {
                        let last = self.tasks[t]
                            .last
                            .clone()
                            .expect("a task waiting to retry has failed once");
                        self.fail(t, last);
                    } else {
                        self.tasks[t].fate = Fate::Pending;
                        self.ready.push_back(t);
                    }
                }
                Timer::Deadline => self.deadline_came(),
                Timer::Sla(t) => {
                    if matches!(self.tasks[t].fate, Fate::Running | Fate::RetryWait) {
                        let running_for = self.first_start[t].map(|s| s.elapsed()).unwrap_or_default();
                        let _ = self.record(RunEvent::SlaMissed { task: t, running_for });
                    }
                }
                Timer::Poll(t) => {
                    if self.outputs_exist(t) {
                        let _ = self.record(RunEvent::InputArrived { task: t });
                        self.tasks[t].fate = Fate::Arrived;
                        self.ready.complete(&self.cfg.instance.pipeline.graph, t);
                    } else if self.stopping.is_some() || self.poll_deadline[t].is_some_and(|d| now >= d) {
                        self.input_missing(t);
                    } else {
                        let wait = self.cfg.instance.pipeline.def(t).wait.unwrap_or_default();
                        self.timers
                            .push(Reverse((now + poll_interval(wait), Timer::Poll(t))));
                    }
                }
            }
        }
    }

    /// The deadline came: report what is not done, if anything (a run about to end may have
    /// finished everything).
    fn deadline_came(&mut self) {
        let done = |f: &Fate| matches!(f, Fate::DoneBefore | Fate::Ran | Fate::Arrived | Fate::Skipped);
        let running = |f: &Fate| matches!(f, Fate::Running | Fate::RetryWait);
        let mut unfinished: Vec<usize> = (0..self.tasks.len())
            .filter(|&t| !done(&self.tasks[t].fate))
            .collect();
        if unfinished.is_empty() {
            return;
        }
        unfinished.sort_by_key(|&t| !running(&self.tasks[t].fate));
        let running = unfinished
            .iter()
            .take_while(|&&t| running(&self.tasks[t].fate))
            .count();
        let _ = self.record(RunEvent::DeadlineMissed {
            unfinished: &unfinished,
            running,
        });
    }

    fn on_signal(&mut self, sig: Signal) {
        let hard = self.stopping.is_some();
        if !hard {
            self.stopping = Some(sig);
        }
        let _ = self.record(RunEvent::Stopping { signal: sig, hard });
        for stop in self.stops.iter().flatten() {
            let _ = stop.send(if hard { Stop::Kill } else { Stop::Terminate });
        }
        // Nothing waits any longer: backoffs end as failures, inputs as missing.
        let pending: Vec<Timer> = self.timers.drain().map(|Reverse((_, t))| t).collect();
        for timer in pending {
            match timer {
                Timer::Retry(t) => {
                    self.tasks[t].fate = Fate::Interrupted;
                }
                Timer::Poll(t) => self.input_missing(t),
                Timer::Sla(_) | Timer::Deadline => {}
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How often an external input is looked for while the run waits for it.
fn poll_interval(wait: Duration) -> Duration {
    (wait / 20).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// Delay before attempt `failed + 1`: `retry_delay` doubled for each failure after the first,
/// capped at `max_retry_delay`.
pub fn backoff(base: Duration, max: Duration, failed: u32) -> Duration {
    let factor = 2u32.saturating_pow(failed.saturating_sub(1));
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// The file name of a task's attempt log: the id with `%` and `/` escaped, so that every id
/// has its own name; an id too long for a file name (most file systems take 255 bytes) keeps
/// its first 120 bytes and gets a digest of the whole id in place of the rest.
pub fn log_file_name(id: &str, attempt: u32) -> String {
    const KEEP: usize = 120;
    const LONGEST: usize = 200;
    let escaped = id.replace('%', "%25").replace('/', "%2F");
    if escaped.len() <= LONGEST {
        return format!("{escaped}.{attempt}.log");
    }
    let mut cut = KEEP;
    while !escaped.is_char_boundary(cut) {
        cut -= 1;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}~{hex}.{attempt}.log", &escaped[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_id_gets_a_log_name_of_its_own_that_fits() {
        assert_eq!(log_file_name("load", 1), "load.1.log");
        assert_eq!(log_file_name("copy[shard=2]", 3), "copy[shard=2].3.log");
        assert_eq!(log_file_name("a/b", 1), "a%2Fb.1.log");
        assert_eq!(log_file_name("a%2Fb", 1), "a%252Fb.1.log");
        let long = "t".repeat(300);
        let longer = "t".repeat(301);
        let name = log_file_name(&long, 12);
        assert!(name.len() <= 255, "{}", name.len());
        assert!(
            name.starts_with(&"t".repeat(120)) && name.ends_with(".12.log"),
            "{name}"
        );
        assert_ne!(name, log_file_name(&longer, 12));
        let wide = "é".repeat(150);
        assert!(log_file_name(&wide, 1).len() <= 255);
    }
    use crate::instance::Instance;
    use crate::pipeline::Pipeline;
    use crate::plan::{Plan, PlanOptions};
    use crate::spec::ProjectFile;

    /// Records nothing, and fails the first commit that holds a success's marker: the
    /// dispatcher's answer to a commit that did not happen (disk full, I/O error) is the logic
    /// under test, with real processes. Failing at the first marker, not at the first commit,
    /// keeps the test independent of how fast the machine runs the first task.
    #[derive(Default)]
    struct FailingCommit {
        marker: bool,
        failed: bool,
    }

    impl Sink for FailingCommit {
        fn event(&mut self, event: RunEvent<'_>) -> Result<(), String> {
            if matches!(
                event,
                RunEvent::Finished {
                    fingerprint: Some(_),
                    ..
                }
            ) {
                self.marker = true;
            }
            Ok(())
        }

        fn commit(&mut self) -> Result<(), String> {
            if !std::mem::take(&mut self.marker) || std::mem::replace(&mut self.failed, true) {
                return Ok(());
            }
            Err("disk I/O error".into())
        }
    }

    /// Run pipeline `text` with one worker in a new directory, with a sink whose first commit
    /// fails ("disk I/O error").
    fn run_failing_commit(text: &str) -> (tempfile::TempDir, Pipeline, RunOutcome) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let p = Pipeline::from_text(
            &root.join("p.toml"),
            Path::new("p.toml"),
            text.into(),
            &ProjectFile::default(),
        )
        .unwrap_or_else(|d| panic!("{d}"));
        // Tests run side by side in one process, and an attempt stops the processes it left
        // by their run id: each run has its own.
        let run_id = dir.path().file_name().unwrap().to_string_lossy().into_owned();
        let out = {
            let instance = Instance::new(&p, &[], chrono::Utc::now()).unwrap();
            let plan = Plan::new(&instance, root, &Default::default(), &PlanOptions::default());
            let cfg = RunConfig {
                instance: &instance,
                root,
                plan: &plan,
                workers: 1,
                fail_fast: false,
                run_id: &run_id,
                state_id: "test",
                log_dir: root.join("logs"),
                checks: &Default::default(),
                deadline: None,
            };
            let mut sink = FailingCommit::default();
            execute(&cfg, &mut sink).unwrap()
        };
        (dir, p, out)
    }

    fn assert_failed_with(t: &TaskOutcome, why: &str) {
        assert_eq!(t.fate, Fate::Failed);
        let error = t
            .last
            .as_ref()
            .and_then(|r| r.error.as_deref())
            .unwrap_or_default();
        assert!(error.contains(why), "{error}");
    }

    #[test]
    fn a_failed_commit_undoes_the_successes_in_it_and_stops_the_attempts_it_started() {
        // One worker. a succeeds; b needs a and goes first (priority), so it starts at once,
        // before a's marker is committed. The commit (a's start and marker, b's start) fails
        // 20 ms later: a fails, b is stopped and fails. c, ready all along, runs after, in
        // commits that succeed.
        let (dir, p, out) = run_failing_commit(
            "[pipeline]\nworkers = 1\n\
            [tasks.a]\ncommand = 'touch a.ran'\n\
            [tasks.b]\ncommand = 'sleep 5; touch b.ran'\nrequires = ['a']\npriority = 1\n\
            [tasks.c]\ncommand = 'touch c.ran'\n",
        );
        let (t, root) = (|id: &str| &out.tasks[p.index[id]], dir.path());

        assert!(root.join("a.ran").exists(), "a ran before the failed commit");
        assert_failed_with(
            t("a"),
            "succeeded, but its marker could not be recorded: disk I/O error",
        );
        assert_failed_with(t("b"), "could not record the attempt: disk I/O error");
        assert!(!root.join("b.ran").exists(), "b was stopped, not left to finish");
        assert!(root.join("c.ran").exists(), "c started after the failure");
        assert_eq!(t("c").fate, Fate::Ran);
    }

    #[test]
    fn a_dependent_waiting_to_retry_is_blocked_when_the_success_it_followed_is_undone() {
        // b starts right after a succeeds and fails at once; its retry makes the commit
        // urgent, and that commit fails, undoing a's success. b must not retry: a failed.
        // (On a machine too slow for b to fail within 20 ms, the commit fails first and b is
        // stopped instead; either way b runs once.)
        let (dir, p, out) = run_failing_commit(
            "[pipeline]\nworkers = 1\n\
            [tasks.a]\ncommand = 'touch a.ran'\n\
            [tasks.b]\ncommand = 'echo x >> b.tries; exit 1'\nrequires = ['a']\npriority = 1\n\
            retries = 1\nretry_delay = '1s'\n",
        );
        let t = |id: &str| &out.tasks[p.index[id]];

        assert_eq!(t("a").fate, Fate::Failed);
        // b may be stopped before its shell wrote anything: at most once, never retried.
        let tries = std::fs::read_to_string(dir.path().join("b.tries")).unwrap_or_default();
        assert!(
            tries.is_empty() || tries == "x\n",
            "b did not retry after a failed: {tries:?}"
        );
        assert_ne!(t("b").fate, Fate::Ran);
    }

    #[test]
    fn an_input_polled_for_is_blocked_when_the_success_it_followed_is_undone() {
        // The external input starts being polled for as soon as a succeeds; its news makes the
        // commit urgent, and that commit fails. The input is blocked by a, not left to time out
        // as missing 2 s later.
        let (_dir, p, out) = run_failing_commit(
            "[pipeline]\nworkers = 1\n\
            [tasks.a]\ncommand = 'touch a.ran'\n\
            [tasks.feed]\noutputs = ['never']\nwait = '2s'\nrequires = ['a']\n",
        );
        assert_eq!(out.tasks[p.index["a"]].fate, Fate::Failed);
        assert_eq!(out.tasks[p.index["feed"]].fate, Fate::Blocked(p.index["a"]));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(10), s(600), 1), s(10));
        assert_eq!(backoff(s(10), s(600), 2), s(20));
        assert_eq!(backoff(s(10), s(600), 3), s(40));
        assert_eq!(backoff(s(10), s(600), 7), s(600));
        assert_eq!(backoff(s(10), s(600), 40), s(600));
    }
}
