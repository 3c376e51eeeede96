//! What a person sees while a run goes and when it ends.
//!
//! On a terminal: live progress (indicatif) with each running task and its elapsed time, and
//! done/total. Without one (cron, CI, a pipe): one plain line per task start and finish, with no
//! escape codes. Either way, a closing summary: counts per outcome, each failed task with its exit
//! status, log path and the last lines of its log, each blocked task with what blocks it, the
//! total time, and the exact command that resumes the run.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::attempt::{AttemptResult, signal_name};
use crate::duration::human;
use crate::executor::{Fate, RunOutcome};
use crate::pipeline::Pipeline;
use crate::state::AttemptState;

/// Lines of a failed task's log shown in the summary.
pub const LOG_TAIL_LINES: usize = 10;

pub struct Reporter {
    clock: crate::timefmt::LineClock,
    ids: Vec<String>,
    total: usize,
    finished: usize,
    live: Option<Live>,
    /// Lines not yet written (plain output only): the runner writes them at each commit (at
    /// least every 20 ms while it runs), in `flush`, rather than one write per line.
    pending: String,
}

struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<usize, ProgressBar>,
}

impl Reporter {
    /// `total`: tasks this run has to do. Live progress only when stdout is a terminal.
    pub fn new(pipeline: &Pipeline, total: usize) -> Reporter {
        let live = std::io::stdout().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("{spinner} {pos}/{len} tasks done  [{elapsed_precise}] {msg}")
                    .expect("static template is valid"),
            );
            overall.enable_steady_tick(Duration::from_millis(120));
            Live {
                multi,
                overall,
                running: HashMap::new(),
            }
        });
        Reporter {
            clock: crate::timefmt::LineClock::new(pipeline.timezone),
            ids: pipeline.tasks.iter().map(|t| t.id.clone()).collect(),
            total,
            finished: 0,
            live,
            pending: String::new(),
        }
    }

    fn line(&mut self, text: &str) {
        let stamped = format!("{} {text}", self.clock.now());
        match &self.live {
            Some(l) => {
                let _ = l.multi.println(stamped);
            }
            None => {
                self.pending.push_str(&stamped);
                self.pending.push('\n');
            }
        }
    }

    /// Write the lines gathered since the last call. The runner calls it before it waits for
    /// anything, so a line is never held back longer than the work it reports.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(self.pending.as_bytes());
            let _ = out.flush();
            self.pending.clear();
        }
    }

    pub fn started(&mut self, t: usize, attempt: u32) {
        let id = &self.ids[t];
        let text = if attempt > 1 {
            format!("start   {id} (attempt {attempt})")
        } else {
            format!("start   {id}")
        };
        match &mut self.live {
            Some(l) => {
                let bar = l.multi.insert_before(&l.overall, ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                        .expect("static template is valid"),
                );
                bar.set_message(id.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                l.running.insert(t, bar);
            }
            None => self.line(&text),
        }
    }

    pub fn finished(&mut self, t: usize, result: &AttemptResult, retry_in: Option<Duration>, log: &Path) {
        if let Some(l) = &mut self.live
            && let Some(bar) = l.running.remove(&t)
        {
            bar.finish_and_clear();
            l.multi.remove(&bar);
        }
        let id = &self.ids[t];
        let took = human(result.duration);
        let text = match (result.state, retry_in) {
            (AttemptState::Success, _) => {
                self.finished += 1;
                format!("done    {id} ({took}{})", shown_metrics(&result.metrics))
            }
            (_, Some(delay)) => format!(
                "retry   {id}: {} ({took}); next attempt in {}",
                result.error.as_deref().unwrap_or("failed"),
                human(delay)
            ),
            (AttemptState::Interrupted, None) => format!("stopped {id} ({took})"),
            (_, None) => {
                self.finished += 1;
                format!(
                    "FAILED  {id}: {} ({took}); log: {}",
                    result.error.as_deref().unwrap_or("failed"),
                    crate::project::display_path(log).display()
                )
            }
        };
        self.line(&text);
        if result.state == AttemptState::Success {
            for w in &result.warnings {
                let line = format!("WARNING {}: {w}", self.ids[t]);
                self.line(&line);
            }
        }
        self.tick();
    }

    pub fn note(&mut self, text: &str) {
        self.line(text);
    }

    /// Tasks that will not run count towards done/total so the bar ends full.
    pub fn skipped(&mut self, n: usize) {
        self.finished += n;
        self.tick();
    }

    fn tick(&self) {
        if let Some(l) = &self.live {
            l.overall.set_position(self.finished.min(self.total) as u64);
        }
    }

    pub fn close(&mut self) {
        self.flush();
        if let Some(l) = self.live.take() {
            for (_, bar) in l.running {
                bar.finish_and_clear();
            }
            l.overall.finish_and_clear();
            let _ = l.multi.clear();
        }
    }
}

/// A success's metrics as its `done` line shows them: `; rows 10450, bytes 5200000000`, the
/// first three of them.
fn shown_metrics(metrics: &[(String, f64)]) -> String {
    const SHOWN: usize = 3;
    if metrics.is_empty() {
        return String::new();
    }
    let mut parts: Vec<String> = metrics
        .iter()
        .take(SHOWN)
        .map(|(k, v)| format!("{k} {}", crate::watch::num(*v)))
        .collect();
    if metrics.len() > SHOWN {
        parts.push(format!("{} more", metrics.len() - SHOWN));
    }
    format!("; {}", parts.join(", "))
}

/// The warnings of the tasks that ran and succeeded in this run, by task, in task order.
pub fn warnings(outcome: &RunOutcome) -> Vec<(usize, &[String])> {
    outcome
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.fate == Fate::Ran)
        .filter_map(|(i, t)| {
            let w = &t.last.as_ref()?.warnings;
            (!w.is_empty()).then_some((i, w.as_slice()))
        })
        .collect()
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.close();
    }
}

/// The last `n` lines of a log file (reading at most its last 64 KiB).
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.replace(|c: char| c.is_control() && c != '\t', "?"))
        .collect()
}

/// Counts per outcome, in the order the summary prints them.
pub fn counts(outcome: &RunOutcome) -> Vec<(&'static str, usize)> {
    let mut c = [
        ("done before", 0),
        ("ran", 0),
        ("failed", 0),
        ("blocked", 0),
        ("missing", 0),
        ("waiting", 0),
        ("interrupted", 0),
        ("not started", 0),
    ];
    for t in &outcome.tasks {
        let i = match t.fate {
            Fate::DoneBefore => 0,
            Fate::Ran | Fate::Arrived => 1,
            Fate::Failed => 2,
            Fate::Blocked(_) => 3,
            Fate::Missing => 4,
            Fate::Waiting(_) => 5,
            Fate::Interrupted | Fate::Running | Fate::RetryWait => 6,
            Fate::Pending | Fate::NotStarted => 7,
            Fate::Skipped => continue,
        };
        c[i].1 += 1;
    }
    c.to_vec()
}

/// The closing summary.
pub fn summary(
    pipeline: &Pipeline,
    label: &str,
    run_id: &str,
    outcome: &RunOutcome,
    elapsed: Duration,
    resume: &str,
) -> String {
    let mut s = String::new();
    let c = counts(outcome);
    let get = |name: &str| c.iter().find(|(k, _)| *k == name).map_or(0, |(_, n)| *n);
    let verdict = match outcome.signal {
        Some(sig) => format!("INTERRUPTED by {}", sig.as_str()),
        None if get("failed") + get("blocked") > 0 => "FAILED".to_string(),
        None if get("missing") + get("waiting") > 0 => "INCOMPLETE: an input is missing".to_string(),
        None if get("not started") > 0 => "STOPPED".to_string(),
        None => "succeeded".to_string(),
    };
    let warned = warnings(outcome);
    let n_warnings: usize = warned.iter().map(|(_, w)| w.len()).sum();
    let verdict_shown = if n_warnings > 0 {
        format!(
            "{verdict} with {n_warnings} warning{}",
            if n_warnings == 1 { "" } else { "s" }
        )
    } else {
        verdict.clone()
    };
    let _ = writeln!(
        s,
        "\n{label}: {verdict_shown} in {} (run {run_id})",
        human(elapsed)
    );
    let listed: Vec<String> = c
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let total: usize = c.iter().map(|(_, n)| n).sum();
    let _ = writeln!(
        s,
        "  {total} task{}: {}",
        if total == 1 { "" } else { "s" },
        if listed.is_empty() {
            "nothing to do".to_string()
        } else {
            listed.join(", ")
        }
    );

    let ids = |f: &dyn Fn(&Fate) -> bool| -> Vec<usize> {
        outcome
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| f(&t.fate))
            .map(|(i, _)| i)
            .collect()
    };
    let failed = ids(&|f| *f == Fate::Failed);
    if !failed.is_empty() {
        let _ = writeln!(s, "failed:");
        for t in failed {
            let o = &outcome.tasks[t];
            let last = o.last.as_ref();
            let status = last.map(describe).unwrap_or_else(|| "failed".into());
            let _ = writeln!(
                s,
                "  {}: {status} after {} attempt{}",
                pipeline.tasks[t].id,
                o.attempts,
                if o.attempts == 1 { "" } else { "s" }
            );
            if let Some(log) = &o.log {
                let _ = writeln!(s, "    log: {}", crate::project::display_path(log).display());
                for line in log_tail(log, LOG_TAIL_LINES) {
                    let _ = writeln!(s, "    | {line}");
                }
            }
        }
    }
    let blocked = ids(&|f| matches!(f, Fate::Blocked(_)));
    if !blocked.is_empty() {
        let _ = writeln!(s, "blocked (not started because a task they require failed):");
        for t in blocked {
            if let Fate::Blocked(by) = outcome.tasks[t].fate {
                let _ = writeln!(s, "  {}  <- {}", pipeline.tasks[t].id, pipeline.tasks[by].id);
            }
        }
    }
    let missing = ids(&|f| *f == Fate::Missing);
    if !missing.is_empty() {
        let _ = writeln!(s, "missing inputs:");
        for t in missing {
            let _ = writeln!(s, "  {}", pipeline.tasks[t].id);
        }
    }
    let waiting = ids(&|f| matches!(f, Fate::Waiting(_)));
    if !waiting.is_empty() {
        let _ = writeln!(s, "waiting for a missing input:");
        for t in waiting {
            if let Fate::Waiting(by) = outcome.tasks[t].fate {
                let _ = writeln!(s, "  {}  <- {}", pipeline.tasks[t].id, pipeline.tasks[by].id);
            }
        }
    }
    let interrupted = ids(&|f| matches!(f, Fate::Interrupted | Fate::Running | Fate::RetryWait));
    if !interrupted.is_empty() {
        let _ = writeln!(s, "interrupted:");
        for t in interrupted {
            let _ = writeln!(s, "  {}", pipeline.tasks[t].id);
        }
    }
    if !warned.is_empty() {
        let _ = writeln!(s, "warnings (the tasks are done):");
        for (t, ws) in &warned {
            for w in *ws {
                let _ = writeln!(s, "  {}: {w}", pipeline.tasks[*t].id);
            }
        }
    }
    if verdict != "succeeded" {
        let _ = writeln!(s, "resume with:\n  {resume}");
    }
    s
}

fn describe(r: &AttemptResult) -> String {
    match (r.state, r.exit_code, r.signal) {
        (AttemptState::Failed, Some(c), _) if r.error.as_deref() == Some(&format!("exit {c}")) => {
            format!("exit {c}")
        }
        (AttemptState::Failed, None, Some(sig)) => format!("killed by {}", signal_name(sig)),
        _ => r.error.clone().unwrap_or_else(|| "failed".into()),
    }
}
