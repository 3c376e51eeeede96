//! `plumb run PIPELINE`: lock the instance, recover from a dead runner, plan, execute, summarise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::alert::{self, RunFacts};
use crate::cli::{LogFormat, RunArgs};
use crate::error::{Error, Result};
use crate::executor::{self, Fate, RunConfig, RunEvent, Sink};
use crate::instance::Instance;
use crate::lock;
use crate::mail::{Courier, SmtpConfig};
use crate::pipeline::Executor;
use crate::plan::{Plan, PlanOptions};
use crate::process;
use crate::project::{Locator, Project};
use crate::report::{self, Reporter};
use crate::state::{AttemptHandle, AttemptState, Runner, State};
use crate::{attempt, exit};

pub fn run(locator: &Locator, args: &RunArgs, _log_format: LogFormat) -> Result<i32> {
    let (project, pipeline) = locator.load(&args.pipeline)?;
    if let Some(t) = (0..pipeline.tasks.len()).find(|&t| pipeline.def(t).executor == Executor::Slurm) {
        return Err(Error::usage(format!(
            "task `{}` uses executor \"slurm\", which this version of plumb cannot run yet; use \"local\"",
            pipeline.tasks[t].id
        )));
    }
    let logical = args.logical_time.unwrap_or_else(chrono::Utc::now);
    let instance = Instance::new(&pipeline, &args.instance.params, logical)?;
    let only = super::task_ids(&pipeline, &args.only)?;
    let key = instance.key();
    let label = instance.label();

    // Opened before taking the lock, so that a lost database is judged the same way by every
    // command (our own lock file is no evidence of earlier use).
    let mut state = project.open_state()?;
    let lock_path = lock::lock_path(&project.state_dir, &pipeline.name, &key);
    let _lock = lock::acquire(&lock_path, &label, pipeline.timezone, args.wait, |holder| {
        eprintln!("plumb: {label} is being run by pid {holder}; waiting for it to finish (--wait)");
    })?;
    let me = Runner {
        pid: std::process::id(),
        start: process::start_ticks(std::process::id()).unwrap_or(0),
    };
    let state_id = state.state_id()?;
    recover(&mut state, &pipeline.name, &key, me, &state_id)?;

    let markers = state.markers(&pipeline.name, &key, pipeline.tasks.len())?;
    let opts = PlanOptions {
        rerun_changed: args.rerun_changed,
        only,
    };
    let plan = Plan::new(&instance, &project.root, &markers, &opts);
    if !plan.stale_markers.is_empty() {
        let names: Vec<&str> = plan
            .stale_markers
            .iter()
            .map(|&t| pipeline.tasks[t].id.as_str())
            .collect();
        state.delete_markers(&pipeline.name, &key, &names)?;
    }
    if !plan.unrecorded_scripts.is_empty() {
        let rows: Vec<(&str, &str, &str)> = plan
            .unrecorded_scripts
            .iter()
            .filter_map(|&t| {
                let id = pipeline.tasks[t].id.as_str();
                let old = markers.get(id)?.fingerprint.as_str();
                Some((id, old, plan.fingerprints[t].as_str()))
            })
            .collect();
        state.update_fingerprints(&pipeline.name, &key, &rows)?;
    }

    let started_at = crate::state::now_rfc3339();
    let resume = resume_command(&project, &pipeline.name, &pipeline.path, &instance, &args.only);
    let params_json = instance.params_json().to_string();
    let run_id = loop {
        let id = new_run_id();
        if state.insert_run(&id, &pipeline.name, &key, &params_json, &started_at, me, &resume)? {
            break id;
        }
    };

    let workers = args
        .workers
        .map(|w| w as usize)
        .unwrap_or_else(|| pipeline.workers());
    let to_run = plan.to_run().count();
    if to_run > 0 {
        ensure_open_files(workers.min(to_run));
    }
    // A pass with nothing to run writes two rows: a second connection and thread for them would
    // cost more than the rest of the pass's writing, and so would checkpointing them at close.
    let checkpoints = if to_run > 0 {
        Some(state.background_checkpoints()?)
    } else {
        state.keep_small_wal_on_close()?;
        None
    };
    let done_before = plan.states.iter().filter(|s| s.is_done()).count();
    let changed = plan
        .states
        .iter()
        .filter(|&&s| s == crate::plan::TaskState::Changed)
        .count();
    let changed_note = match changed {
        0 => String::new(),
        1 => ", 1 of them with a changed definition (--rerun-changed re-runs it)".to_string(),
        n => format!(", {n} of them with a changed definition (--rerun-changed re-runs them)"),
    };
    let mut reporter = Reporter::new(&pipeline, to_run);
    reporter.note(&format!(
        "run {run_id}: {label}: {to_run} to run, {done_before} done before{changed_note}, {workers} worker{}",
        if workers == 1 { "" } else { "s" }
    ));
    reporter.flush();
    let log_dir = project.state_dir.join("logs").join(&pipeline.name).join(&run_id);
    let checks = load_checks(&state, &instance, &plan)?;
    // The deadline of this instance's logical time (a resume keeps it); watched by this run
    // only if it is still to come: one that passed before the run started is the scheduler's
    // to report for a scheduled fire, and a backfill of old days must not report every one.
    let deadline = pipeline
        .deadline
        .map(|d| d.at(logical, pipeline.timezone))
        .filter(|at| *at > chrono::Utc::now());
    let cfg = RunConfig {
        instance: &instance,
        root: &project.root,
        plan: &plan,
        workers,
        fail_fast: args.fail_fast,
        run_id: &run_id,
        state_id: &state_id,
        log_dir,
        checks: &checks,
        deadline: deadline.map(|at| Instant::now() + (at - chrono::Utc::now()).to_std().unwrap_or_default()),
    };
    tracing::info!(
        event = "run_started",
        run_id = %run_id,
        pipeline = %pipeline.name,
        instance = %key,
        to_run,
        done_before,
        workers
    );
    let clock = Instant::now();
    let smtp = match SmtpConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("plumb: warning: {e}; alerts stay queued in the outbox");
            None
        }
    };
    // Deliver alerts left queued by earlier runs, and this run's, on the side.
    let courier = smtp
        .clone()
        .map(|cfg| Courier::start(project.state_dir.clone(), cfg, me));
    let host = process::hostname();
    let started = chrono::Utc::now();
    let mut sink = Recorder {
        state: &mut state,
        reporter: &mut reporter,
        instance: &instance,
        run_id: &run_id,
        rows: vec![None; pipeline.tasks.len()],
        logs: vec![None; pipeline.tasks.len()],
        runner: me,
        courier: courier.as_ref(),
        host: &host,
        queued: 0,
        kick: false,
        deadline,
    };
    // Orphans of task processes become ours, not init's: each attempt stops what it started
    // outside its group, and what is left at the end (a process that also cleared its
    // environment) is stopped below.
    process::become_subreaper();
    let outcome = executor::execute(&cfg, &mut sink)
        .map_err(|e| Error::Io(format!("cannot start the runtime: {e}")))?;
    stop_leftovers();
    let mut queued = sink.queued;
    let elapsed = clock.elapsed();
    reporter.close();

    let mut code = outcome.exit_code();
    let counts: serde_json::Map<String, serde_json::Value> = report::counts(&outcome)
        .into_iter()
        .map(|(k, n)| (k.replace(' ', "_"), n.into()))
        .collect();
    let outcome_word = match code {
        exit::SUCCESS => "success",
        exit::MISSING_INPUT => "missing",
        exit::INTERRUPTED_INT | exit::INTERRUPTED_TERM => "interrupted",
        _ => "failed",
    };
    let counts = serde_json::Value::Object(counts).to_string();
    let facts = RunFacts {
        pipeline: &pipeline,
        instance_key: &key,
        label: &label,
        run_id: &run_id,
        host: &host,
        started,
        ended: chrono::Utc::now(),
        outcome: &outcome,
        resume: &resume,
    };
    let mut alerts = Vec::new();
    if wants(&pipeline, "failure") && outcome.tasks.iter().any(|t| t.fate == Fate::Failed) {
        alerts.push(facts.failure());
    }
    let warned = report::warnings(&outcome);
    if wants(&pipeline, "anomaly") && !warned.is_empty() {
        alerts.push(facts.anomaly(&warned));
    }
    if code == exit::SUCCESS {
        if wants(&pipeline, "success") {
            alerts.push(facts.success());
        }
        if wants(&pipeline, "recovery")
            && state.previous_outcome(&pipeline.name, &key, &run_id)?.as_deref() == Some("failed")
        {
            alerts.push(facts.recovery());
        }
    }
    // A run whose end cannot be recorded (a full disk, say) still ends as one: the summary is
    // printed, and its alerts, which could not be queued, are sent at once or named.
    let recorded = state.finish_run(&run_id, outcome_word, &counts, &alerts);
    match &recorded {
        Ok(()) => queued += alerts.len(),
        Err(_) if outcome.signal.is_none() => code = exit::INTERNAL,
        Err(_) => {}
    }
    drop(checkpoints);
    finish_alerts(courier, smtp.is_some(), queued);
    tracing::info!(
        event = "run_finished",
        run_id = %run_id,
        pipeline = %pipeline.name,
        instance = %key,
        outcome = outcome_word,
        exit_code = code,
        duration_s = elapsed.as_secs_f64(),
        counts = %counts
    );
    print!(
        "{}",
        report::summary(&pipeline, &label, &run_id, &outcome, elapsed, &resume)
    );
    if let Err(e) = recorded {
        unrecorded_end(&e, &alerts, smtp.as_ref());
    }
    // The process exits right after: freeing a large pipeline and plan piece by piece would
    // only cost time (about 3 ms at 10,000 tasks, a tenth of a resume pass).
    drop(state);
    std::mem::forget(outcome);
    std::mem::forget(plan);
    std::mem::forget(checks);
    std::mem::forget(markers);
    std::mem::forget(instance);
    std::mem::forget(pipeline);
    Ok(code)
}

/// Stop every process still our child once no attempt runs: only task processes that left
/// their group and cleared their environment can be left (every other one was stopped by its
/// attempt), and none may outlive the run. Then reap whatever has exited.
fn stop_leftovers() {
    let left = process::children();
    if !left.is_empty() {
        let names: Vec<String> = left
            .iter()
            .map(|&pid| format!("{pid} ({})", process::comm(pid)))
            .collect();
        eprintln!(
            "plumb: stopping {} process{} that tasks left running without their environment: {}",
            left.len(),
            if left.len() == 1 { "" } else { "es" },
            names.join(", ")
        );
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(attempt::stop_processes(&left, LEFTOVER_GRACE));
        }
    }
    process::reap_all();
}

/// How long processes left at the end of a run get between SIGTERM and SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_secs(10);

/// The expectations of each task this run may start, with the past values its `anomaly`
/// tests compare with: read once, now, so that attempts never read the state.
fn load_checks(state: &State, instance: &Instance<'_>, plan: &Plan) -> Result<crate::watch::Checks> {
    let p = instance.pipeline;
    let now = chrono::Utc::now();
    let mut checks = crate::watch::Checks::default();
    for t in plan.to_run() {
        let def = p.def(t);
        if def.expect.is_empty() {
            continue;
        }
        let mut list = Vec::with_capacity(def.expect.len());
        for e in &def.expect {
            let past = if e.anomaly == crate::watch::Anomaly::Off {
                Vec::new()
            } else {
                let since = chrono::Duration::from_std(e.window)
                    .ok()
                    .and_then(|w| now.checked_sub_signed(w))
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                state.metric_history(&p.name, &p.tasks[t].id, &e.name, &since)?
            };
            list.push(crate::watch::Check {
                expect: e.clone(),
                past,
            });
        }
        checks.insert(t, list.into());
    }
    Ok(checks)
}

/// Clean up after a runner of this instance that died (we hold the lock, so none is alive):
/// stop any process group its attempts left running, and record those attempts and the run as
/// interrupted. Only then may the tasks start again, so two attempts of a task never overlap.
fn recover(state: &mut State, pipeline: &str, key: &str, me: Runner, state_id: &str) -> Result<()> {
    let dead = state.running_runs(pipeline, key)?;
    for run in &dead {
        if process::same_process_alive(run.runner_pid, run.runner_start) && run.runner_pid != me.pid {
            return Err(Error::Io(format!(
                "run {} of this instance is recorded as running in pid {}, which is alive but does not hold the lock; \
                 is the same state directory used from two machines?",
                run.run_id, run.runner_pid
            )));
        }
    }
    if dead.is_empty() {
        // Attempts run only within a run, which stays recorded as running until they end.
        return Ok(());
    }
    let stale = state.running_attempts(pipeline, key)?;
    // Find what the dead runs left running by the PLUMB_RUN_ID every task process carries. An
    // attempt starts before the commit that records it, so a runner killed in between leaves a
    // process with no row at all; the search also catches descendants that moved to groups of
    // their own. Recorded groups are checked too, in case a task cleared its environment.
    let runs: std::collections::HashSet<String> = dead.iter().map(|r| r.run_id.clone()).collect();
    let mut groups = process::groups_with_env("PLUMB_RUN_ID", &runs, ("PLUMB_STATE_ID", state_id));
    let mut tasks = process::tasks_of(&groups);
    for a in &stale {
        let Some(pgid) = a.pgid else { continue };
        // The group id is the leader's pid. If a different process now has that pid, the
        // group is not ours; if no process has it, what is left in the group is ours
        // (a pid cannot be reused while a group of that id exists).
        let leader_is_ours = process::same_process_alive(pgid, a.pgid_start.unwrap_or(0));
        let pid_taken = process::start_ticks(pgid).is_some();
        if (leader_is_ours || !pid_taken)
            && process::group_alive(pgid)
            && !groups.iter().any(|(g, _)| *g == pgid)
        {
            groups.push((pgid, pgid));
            tasks.push(format!("{} (attempt {})", a.task, a.attempt));
        }
    }
    if !groups.is_empty() {
        tasks.sort();
        tasks.dedup();
        eprintln!(
            "plumb: stopping {} process group{} left by a runner that died{}{}",
            groups.len(),
            if groups.len() == 1 { "" } else { "s" },
            if tasks.is_empty() { "" } else { ": " },
            tasks.join(", ")
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Io(format!("cannot start the runtime: {e}")))?;
        rt.block_on(async {
            let mut stops = tokio::task::JoinSet::new();
            for &(g, _) in &groups {
                stops.spawn(attempt::stop_group(g, Duration::from_secs(10)));
            }
            while stops.join_next().await.is_some() {}
        });
    }
    if !stale.is_empty() {
        let ids: Vec<i64> = stale.iter().map(|a| a.id).collect();
        state.interrupt_attempts(&ids, "the runner died while the attempt ran")?;
        eprintln!(
            "plumb: recorded {} attempt{} of a runner that died as interrupted",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" }
        );
    }
    for run in dead {
        state.close_dead_run(&run.run_id)?;
    }
    Ok(())
}

/// Records run events in the state and shows them to the user.
struct Recorder<'a> {
    state: &'a mut State,
    reporter: &'a mut Reporter,
    instance: &'a Instance<'a>,
    run_id: &'a str,
    /// Each task's current attempt.
    rows: Vec<Option<AttemptHandle>>,
    logs: Vec<Option<PathBuf>>,
    runner: Runner,
    courier: Option<&'a Courier>,
    host: &'a str,
    /// Alerts this run queued so far.
    queued: usize,
    /// An alert was queued since the last commit: wake the courier after it.
    kick: bool,
    /// The instance's deadline, when this run watches it.
    deadline: Option<chrono::DateTime<chrono::Utc>>,
}

impl Recorder<'_> {
    /// The courier is woken at the next commit, when the alert's row is visible to it.
    fn alert_queued(&mut self) {
        self.queued += 1;
        self.kick = true;
    }
}

/// Whether the pipeline sends e-mail for `event`.
fn wants(p: &crate::pipeline::Pipeline, event: &str) -> bool {
    !p.alerts.email.is_empty() && p.alerts.on.iter().any(|e| e == event)
}

/// Say that the state database refused the run's end, and deliver what it refused of the alerts.
fn unrecorded_end(e: &dyn std::fmt::Display, alerts: &[crate::state::NewAlert], smtp: Option<&SmtpConfig>) {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    eprintln!(
        "plumb: error: the end of this run could not be recorded: {e}\n\
         plumb: the next run counts this one as interrupted and runs again every task without a marker"
    );
    for a in alerts {
        match smtp.map(|cfg| crate::mail::send_unqueued(cfg, a)) {
            Some(Ok(())) => eprintln!(
                "plumb: the {} alert could not be queued, so it was sent directly: {}",
                a.event, a.subject
            ),
            Some(Err(err)) => eprintln!(
                "plumb: error: the {} alert could neither be queued nor sent ({err}): {}",
                a.event, a.subject
            ),
            None => eprintln!(
                "plumb: error: the {} alert could not be queued and PLUMB_SMTP_URL is not set: {}",
                a.event, a.subject
            ),
        }
    }
}

/// Give queued alerts a bounded time to go out, and say plainly when they cannot.
fn finish_alerts(courier: Option<Courier>, configured: bool, queued: usize) {
    if let Some(c) = courier {
        match c.finish(Duration::from_secs(20)) {
            Some(d) if !d.failed.is_empty() => eprintln!(
                "plumb: warning: {} alert{} could not be sent ({}); kept in the outbox, retried by the next run or `plumb alerts flush`",
                d.failed.len(),
                if d.failed.len() == 1 { "" } else { "s" },
                d.failed[0].2
            ),
            Some(_) => {}
            None => eprintln!(
                "plumb: warning: the mail server is slow; unsent alerts stay in the outbox for the next run"
            ),
        }
    } else if !configured && queued > 0 {
        eprintln!(
            "plumb: warning: {queued} alert{} queued but PLUMB_SMTP_URL is not set, so nothing was sent; \
             they stay in the outbox (`plumb alerts list`) until a run or `plumb alerts flush` with PLUMB_SMTP_URL set",
            if queued == 1 { "" } else { "s" }
        );
    }
}

impl Recorder<'_> {
    /// Say that the deadline passed with `unfinished` tasks not done (the first `running` of
    /// them running), and alert once per instance and deadline: the state refuses a second
    /// record, made by a restarted run or the scheduler.
    fn deadline_missed(&mut self, unfinished: &[usize], running: usize) {
        let p = self.instance.pipeline;
        let key = self.instance.key();
        let label = self.instance.label();
        let at = self
            .deadline
            .expect("the deadline timer is set only with a deadline");
        let due = crate::timefmt::at(at, p.timezone);
        let names = |ts: &[usize]| {
            let mut s: Vec<&str> = ts.iter().take(5).map(|&t| p.tasks[t].id.as_str()).collect();
            let more = ts.len().saturating_sub(5);
            let more = format!("{more} more");
            if ts.len() > 5 {
                s.push(&more);
            }
            s.join(", ")
        };
        let tasks = |n: usize| {
            if n == 1 {
                "1 task".to_string()
            } else {
                format!("{n} tasks")
            }
        };
        let (run, rest) = unfinished.split_at(running);
        let mut how = format!("The run is still going: {} running", tasks(run.len()));
        if !run.is_empty() {
            how += &format!(" ({})", names(run));
        }
        if !rest.is_empty() {
            how += &format!(", {} more not done ({})", tasks(rest.len()), names(rest));
        }
        how.push('.');
        self.reporter.note(&format!(
            "DEADLINE {label} not complete by {due} (deadline \"{}\"): {}",
            p.deadline.map(|d| d.text()).unwrap_or_default(),
            how.trim_start_matches("The run is still going: ")
                .trim_end_matches('.')
        ));
        tracing::info!(event = "deadline_missed", run_id = self.run_id, pipeline = %p.name, instance = %key, deadline = %crate::state::time_key(at), unfinished = unfinished.len());
        let alert = wants(p, "deadline_miss")
            .then(|| alert::deadline_miss(p, &key, &label, Some(self.run_id), at, &how));
        match self.state.record_deadline(
            &p.name,
            &key,
            &crate::state::time_key(at),
            Some(self.run_id),
            alert.as_ref(),
            true,
        ) {
            Ok(true) if alert.is_some() => {
                // Committed already: the courier may send it now.
                self.queued += 1;
                if let Some(c) = self.courier {
                    c.kick();
                }
            }
            Ok(_) => {}
            Err(e) => self.reporter.note(&format!(
                "plumb: warning: the missed deadline could not be recorded: {e}"
            )),
        }
    }
}

impl Sink for Recorder<'_> {
    fn commit(&mut self) -> std::result::Result<(), String> {
        let committed = self.state.commit_batch().map_err(|e| e.to_string());
        self.reporter.flush();
        if std::mem::take(&mut self.kick)
            && let Some(c) = self.courier
        {
            c.kick();
        }
        committed
    }

    fn event(&mut self, event: RunEvent<'_>) -> std::result::Result<(), String> {
        let p = self.instance.pipeline;
        let key = self.instance.key();
        match event {
            RunEvent::Starting { task, attempt, log } => {
                let id = self.state.begin_attempt(
                    self.run_id,
                    &p.name,
                    &key,
                    &p.tasks[task].id,
                    attempt,
                    &log.to_string_lossy(),
                    self.runner,
                );
                self.rows[task] = Some(id);
                self.logs[task] = Some(log.to_path_buf());
                tracing::info!(
                    event = "task_started",
                    run_id = self.run_id,
                    pipeline = %p.name,
                    instance = %key,
                    task = %p.tasks[task].id,
                    attempt,
                    log = %log.display()
                );
                self.reporter.started(task, attempt);
            }
            RunEvent::Spawned { task, pgid, start } => {
                if let Some(id) = self.rows[task] {
                    self.state.set_attempt_group(id, pgid, start);
                }
            }
            RunEvent::Finished {
                task,
                attempt,
                result,
                fingerprint,
                retry_in,
            } => {
                if let Some(id) = self.rows[task] {
                    let marker = fingerprint.map(|fp| (p.name.as_str(), key.as_str(), p.tasks[task].id.as_str(), fp, self.run_id));
                    let alert = match retry_in {
                        Some(delay) if wants(p, "retry") => Some(alert::retry(
                            p,
                            &key,
                            &self.instance.label(),
                            self.run_id,
                            task,
                            attempt,
                            result.error.as_deref().unwrap_or("failed"),
                            delay,
                            self.logs[task].as_deref().unwrap_or(Path::new("")),
                        )),
                        _ => None,
                    };
                    self.state.finish_attempt(id, result, marker, alert.as_ref());
                    if alert.is_some() {
                        self.alert_queued();
                    }
                }
                let log = self.logs[task].clone().unwrap_or_default();
                let event = match (result.state, retry_in) {
                    (AttemptState::Success, _) => "task_succeeded",
                    (_, Some(_)) => "task_retrying",
                    (AttemptState::Interrupted, None) => "task_interrupted",
                    (_, None) => "task_failed",
                };
                tracing::info!(
                    event,
                    run_id = self.run_id,
                    pipeline = %p.name,
                    instance = %key,
                    task = %p.tasks[task].id,
                    attempt,
                    state = result.state.as_str(),
                    exit_code = result.exit_code,
                    signal = result.signal,
                    duration_s = result.duration.as_secs_f64(),
                    error = result.error.as_deref(),
                    retry_in_s = retry_in.map(|d| d.as_secs_f64()),
                    log = %log.display()
                );
                self.reporter.finished(task, result, retry_in, &log);
            }
            RunEvent::InputWaiting { task, wait } => self.reporter.note(&format!(
                "wait    {}: input not there yet; looking again until {} from now",
                p.tasks[task].id,
                crate::duration::human(wait)
            )),
            RunEvent::InputArrived { task } => {
                self.reporter.note(&format!("input   {} is there", p.tasks[task].id));
                self.reporter.skipped(1);
            }
            RunEvent::InputMissing { task, waiting } => {
                self.reporter.note(&format!(
                    "MISSING {}: input not there; {} task{} cannot start",
                    p.tasks[task].id,
                    waiting.len(),
                    if waiting.len() == 1 { "" } else { "s" }
                ));
                self.reporter.skipped(1 + waiting.len());
            }
            RunEvent::Blocked { failed, blocked } => {
                for &b in blocked {
                    tracing::info!(
                        event = "task_blocked",
                        run_id = self.run_id,
                        pipeline = %p.name,
                        instance = %key,
                        task = %p.tasks[b].id,
                        blocked_by = %p.tasks[failed].id
                    );
                }
                self.reporter.note(&format!(
                    "blocked {} task{} that require {}",
                    blocked.len(),
                    if blocked.len() == 1 { "" } else { "s" },
                    p.tasks[failed].id
                ));
                self.reporter.skipped(blocked.len());
            }
                        RunEvent::SlaMissed { task, running_for } => {
                let sla = p.def(task).sla.unwrap_or_default();
                self.reporter.note(&format!(
                    "SLA     {} still running after {} (sla {})",
                    p.tasks[task].id,
                    crate::duration::human(running_for),
                    crate::duration::human(sla)
                ));
                tracing::info!(event = "sla_missed", run_id = self.run_id, task = %p.tasks[task].id, running_for_s = running_for.as_secs_f64());
                let alert = wants(p, "sla_miss").then(|| {
                    alert::sla_miss(
                        p,
                        &key,
                        &self.instance.label(),
                        self.run_id,
                        self.host,
                        task,
                        running_for,
                        sla,
                        self.logs[task].as_deref(),
                    )
                });
                if let Some(id) = self.rows[task] {
                    self.state.record_sla_miss(id, alert.as_ref());
                    if alert.is_some() {
                        self.alert_queued();
                    }
                }
            }
            RunEvent::DeadlineMissed { unfinished, running } => self.deadline_missed(unfinished, running),
            RunEvent::Stopping { signal, hard } => self.reporter.note(&if hard {
                format!("{} again: killing every running task now", signal.as_str())
            } else {
                format!("{}: stopping running tasks (SIGTERM, then SIGKILL after their grace period); press Ctrl-C again to kill at once", signal.as_str())
            }),
        }
        Ok(())
    }
}

/// `20261121T060312Z-4f2a`: sortable and readable; the salt is random, and the state refuses
/// an id already taken, so a caller draws again.
fn new_run_id() -> String {
    use std::hash::BuildHasher;
    // std seeds each RandomState from the OS once per thread and steps it on every `new()`.
    let salt = std::collections::hash_map::RandomState::new().hash_one(std::process::id()) & 0xffff;
    format!("{}-{salt:04x}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))
}

/// The exact command that resumes this instance, runnable from any directory.
fn resume_command(
    project: &Project,
    name: &str,
    path: &std::path::Path,
    instance: &Instance<'_>,
    only: &[String],
) -> String {
    let q = |s: &str| crate::template::quote(s);
    let mut cmd = format!("plumb -C {}", q(&project.root.to_string_lossy()));
    if project.state_dir_explicit {
        cmd.push_str(&format!(
            " --state-dir {}",
            q(&project.state_dir.to_string_lossy())
        ));
    }
    let by_name = project.root.join("pipelines").join(format!("{name}.toml")) == path;
    let target = if by_name {
        name.to_string()
    } else {
        path.strip_prefix(&project.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| path.to_string_lossy().into_owned())
    };
    cmd.push_str(&format!(" run {}", q(&target)));
    cmd.push_str(&instance.param_args());
    for o in only {
        cmd.push_str(&format!(" --only {}", q(o)));
    }
    cmd
}

/// Each running attempt holds three descriptors: its output pipe's two ends and a pidfd. When the
/// soft limit on open files is too low for `workers` of them (1,024 is a common default, so about
/// 330 workers), raise it, up to the hard limit; tasks inherit the raised soft limit. When even
/// the hard limit is too low, say so before any attempt fails for want of a pipe.
fn ensure_open_files(workers: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let need = workers as u64 * 3 + 64;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= need {
        return;
    }
    let raised = need.min(hard);
    let limit = if setrlimit(Resource::RLIMIT_NOFILE, raised, hard).is_ok() {
        raised
    } else {
        soft
    };
    if limit < need {
        eprintln!(
            "plumb: warning: {workers} workers need about {need} open files, and the limit is {limit} (ulimit -n); attempts may fail with \"Too many open files\""
        );
    }
}

#[cfg(test)]
mod tests {
    /// Ids drawn in one tight loop differ in their salt about as often as 16 random bits do
    /// (about 30 of 2,000 collide). The state refuses a taken id and the run draws again; this
    /// keeps that rare, as a salt from a coarse clock would not.
    #[test]
    fn run_ids_drawn_together_mostly_differ() {
        let ids: std::collections::HashSet<String> = (0..2000).map(|_| super::new_run_id()).collect();
        let salts: std::collections::HashSet<&str> = ids.iter().map(|id| &id[id.len() - 4..]).collect();
        assert!(salts.len() > 1900, "{} distinct salts in 2,000 ids", salts.len());
    }
}
