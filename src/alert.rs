//! What alert e-mails say.
//!
//! One failure e-mail per run (never one per task), written when the run ends, so it is sent
//! only after every retry is exhausted. It must let the on-call engineer act from a phone: what
//! failed and how (exit status or signal, attempts, duration), why (the last lines of the log),
//! what is blocked, what succeeded, and the command that resumes. Plain text, short lines.
//!
//! Composing is pure: these functions turn facts into a [`NewAlert`]; the outbox
//! ([`crate::state`]) stores it and [`crate::mail`] delivers it.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::attempt::signal_name;
use crate::duration::human;
use crate::executor::{Fate, RunOutcome};
use crate::pipeline::Pipeline;
use crate::report::log_tail;
use crate::state::{AttemptState, NewAlert};

/// Lines of a failed task's log quoted in the e-mail.
pub const LOG_TAIL_LINES: usize = 20;

/// Everything an end-of-run alert says.
pub struct RunFacts<'a> {
    pub pipeline: &'a Pipeline,
    pub instance_key: &'a str,
    pub label: &'a str,
    pub run_id: &'a str,
    pub host: &'a str,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub outcome: &'a RunOutcome,
    pub resume: &'a str,
}

/// An alert of `event` for the pipeline's recipients.
fn new_alert(
    pipeline: &Pipeline,
    instance_key: &str,
    run_id: &str,
    event: &str,
    subject: String,
    body: String,
) -> NewAlert {
    NewAlert {
        event: event.to_string(),
        pipeline: pipeline.name.clone(),
        instance: instance_key.to_string(),
        run_id: Some(run_id.to_string()),
        recipients: pipeline.alerts.email.clone(),
        subject,
        body,
    }
}

impl RunFacts<'_> {
    fn alert(&self, event: &str, subject: String, body: String) -> NewAlert {
        new_alert(
            self.pipeline,
            self.instance_key,
            self.run_id,
            event,
            subject,
            body,
        )
    }

    fn time(&self, t: DateTime<Utc>) -> String {
        crate::timefmt::at(t, self.pipeline.timezone)
    }

    fn ids(&self, f: impl Fn(&Fate) -> bool) -> Vec<usize> {
        (0..self.outcome.tasks.len())
            .filter(|&t| f(&self.outcome.tasks[t].fate))
            .collect()
    }

    fn header(&self, out: &mut String, verdict: &str) {
        let _ = writeln!(out, "{} {verdict}\n", self.label);
        let _ = writeln!(out, "host:    {}", self.host);
        let _ = writeln!(out, "run:     {}", self.run_id);
        let _ = writeln!(out, "started: {}", self.time(self.started));
        let took = (self.ended - self.started).to_std().unwrap_or_default();
        let _ = writeln!(out, "ended:   {} ({})", self.time(self.ended), human(took));
    }

    /// The failure e-mail: one per run that ends with failed tasks.
    pub fn failure(&self) -> NewAlert {
        let p = self.pipeline;
        let failed = self.ids(|f| *f == Fate::Failed);
        let blocked = self.ids(|f| matches!(f, Fate::Blocked(_)));
        let counts = format!("{} failed, {} blocked", failed.len(), blocked.len());
        let subject = format!("[plumb] {} FAILED: {counts}", self.label);
        let mut b = String::new();
        self.header(&mut b, &format!("FAILED: {counts}"));
        let _ = writeln!(b, "\nFAILED TASKS");
        for &t in &failed {
            let o = &self.outcome.tasks[t];
            let how = o
                .last
                .as_ref()
                .map(|r| describe(r.state, r.exit_code, r.signal, r.error.as_deref()));
            let dur = o.last.as_ref().map(|r| human(r.duration)).unwrap_or_default();
            let _ = writeln!(
                b,
                "\n{}: {} after {} attempt{}, {dur}",
                p.tasks[t].id,
                how.unwrap_or_else(|| "failed".into()),
                o.attempts,
                if o.attempts == 1 { "" } else { "s" }
            );
            if let Some(log) = &o.log {
                let _ = writeln!(b, "  log: {}", log.display());
                quote_log(&mut b, log, "  last {n} lines:");
            }
        }
        if !blocked.is_empty() {
            let _ = writeln!(
                b,
                "\nBLOCKED ({}), not started because a task they need failed",
                blocked.len()
            );
            for &t in &blocked {
                if let Fate::Blocked(by) = self.outcome.tasks[t].fate {
                    let _ = writeln!(b, "  {}  <- {}", p.tasks[t].id, p.tasks[by].id);
                }
            }
        }
        let other = self.ids(|f| {
            matches!(
                f,
                Fate::Missing | Fate::Waiting(_) | Fate::Interrupted | Fate::NotStarted
            )
        });
        if !other.is_empty() {
            let _ = writeln!(b, "\nNOT DONE FOR OTHER REASONS");
            for &t in &other {
                let why = match self.outcome.tasks[t].fate {
                    Fate::Missing => "input missing".to_string(),
                    Fate::Waiting(by) => format!("waiting for input {}", p.tasks[by].id),
                    Fate::Interrupted => "interrupted".to_string(),
                    _ => "not started".to_string(),
                };
                let _ = writeln!(b, "  {}: {why}", p.tasks[t].id);
            }
        }
        self.succeeded_section(&mut b);
        let _ = writeln!(b, "\nTO RESUME, fix the cause, then run:\n  {}", self.resume);
        self.alert("failure", subject, b)
    }

    fn succeeded_section(&self, b: &mut String) {
        let ran = self.ids(|f| matches!(f, Fate::Ran | Fate::Arrived));
        let before = self.ids(|f| *f == Fate::DoneBefore).len();
        let _ = writeln!(
            b,
            "\nSUCCEEDED in this run: {}{}",
            ran.len(),
            if before > 0 {
                format!(" (and {before} done before)")
            } else {
                String::new()
            }
        );
        const SHOWN: usize = 30;
        for &t in ran.iter().take(SHOWN) {
            let _ = writeln!(b, "  {}", self.pipeline.tasks[t].id);
        }
        if ran.len() > SHOWN {
            let _ = writeln!(b, "  ... and {} more (plumb status shows all)", ran.len() - SHOWN);
        }
    }

    /// One per run whose tasks raised warnings (`anomaly = "warn"` expectations they did not
    /// meet), listing every one. The tasks are done: this says their data looks wrong.
    pub fn anomaly(&self, warned: &[(usize, &[String])]) -> NewAlert {
        let p = self.pipeline;
        let n: usize = warned.iter().map(|(_, w)| w.len()).sum();
        let plural = if n == 1 { "" } else { "s" };
        let mut tasks: Vec<&str> = warned.iter().map(|(t, _)| p.tasks[*t].id.as_str()).collect();
        if tasks.len() > 3 {
            tasks.truncate(3);
            tasks.push("...");
        }
        let subject = format!(
            "[plumb] {} ANOMALY: {n} warning{plural} ({})",
            self.label,
            tasks.join(", ")
        );
        let mut b = String::new();
        self.header(
            &mut b,
            &format!("ANOMALY: {n} value{plural} far from the past; the tasks are done"),
        );
        let _ = writeln!(b, "\nWARNINGS");
        for (t, ws) in warned {
            for w in *ws {
                let _ = writeln!(b, "  {}: {w}", p.tasks[*t].id);
            }
        }
        let first = warned.first().map_or("TASK", |(t, _)| p.tasks[*t].id.as_str());
        let _ = writeln!(
            b,
            "\nEach value with its history: plumb metrics {} {}",
            crate::template::quote(&p.name),
            crate::template::quote(first)
        );
        self.alert("anomaly", subject, b)
    }

    /// Sent when a run completes every task, if `success` is selected.
    pub fn success(&self) -> NewAlert {
        let n = self
            .outcome
            .tasks
            .iter()
            .filter(|t| t.fate != Fate::Skipped)
            .count();
        let subject = format!("[plumb] {} succeeded: {n} tasks done", self.label);
        let mut b = String::new();
        self.header(&mut b, "succeeded");
        self.succeeded_section(&mut b);
        self.alert("success", subject, b)
    }

    /// Sent when an instance whose previous run failed completes.
    pub fn recovery(&self) -> NewAlert {
        let subject = format!("[plumb] {} RECOVERED: all tasks done", self.label);
        let mut b = String::new();
        self.header(&mut b, "RECOVERED: every task is done again after a failed run");
        self.succeeded_section(&mut b);
        self.alert("recovery", subject, b)
    }
}

/// A task still running past its SLA.
#[allow(clippy::too_many_arguments)]
pub fn sla_miss(
    pipeline: &Pipeline,
    instance_key: &str,
    label: &str,
    run_id: &str,
    host: &str,
    task: usize,
    running_for: Duration,
    sla: Duration,
    log: Option<&std::path::Path>,
) -> NewAlert {
    let id = &pipeline.tasks[task].id;
    let subject = format!("[plumb] {label} SLA MISSED: {id} running {}", human(running_for));
    let mut b = String::new();
    let _ = writeln!(
        b,
        "{label}: task {id} has been running for {}, past its SLA of {}.\n",
        human(running_for),
        human(sla)
    );
    let _ = writeln!(b, "host: {host}\nrun:  {run_id}");
    if let Some(log) = log {
        let _ = writeln!(b, "log:  {}", log.display());
        quote_log(&mut b, log, "\nlast {n} lines so far:");
    }
    let _ = writeln!(
        b,
        "\nIt is still running; you will get the run's outcome separately if it fails."
    );
    new_alert(pipeline, instance_key, run_id, "sla_miss", subject, b)
}

/// An instance not complete by its deadline (DESIGN 7). `how` says where it stands: a line
/// or two, such as which tasks are still running, or that its scheduled run never started.
pub fn deadline_miss(
    pipeline: &Pipeline,
    instance_key: &str,
    label: &str,
    run_id: Option<&str>,
    deadline: DateTime<Utc>,
    how: &str,
) -> NewAlert {
    let due = crate::timefmt::at(deadline, pipeline.timezone);
    let written = pipeline.deadline.map(|d| d.text()).unwrap_or_default();
    let subject = format!("[plumb] {label} DEADLINE MISSED: not complete by {due}");
    let mut b = String::new();
    let _ = writeln!(
        b,
        "{label} was not complete by its deadline, {due} (deadline \"{written}\" in {}).\n",
        pipeline.path.display()
    );
    let _ = writeln!(b, "{how}");
    if let Some(run_id) = run_id {
        let _ = writeln!(b, "\nrun: {run_id}");
    }
    let mut alert = new_alert(
        pipeline,
        instance_key,
        run_id.unwrap_or(""),
        "deadline_miss",
        subject,
        b,
    );
    alert.run_id = run_id.map(str::to_string);
    alert
}

/// An attempt failed and another will follow.
#[allow(clippy::too_many_arguments)]
pub fn retry(
    pipeline: &Pipeline,
    instance_key: &str,
    label: &str,
    run_id: &str,
    task: usize,
    attempt: u32,
    why: &str,
    retry_in: Duration,
    log: &std::path::Path,
) -> NewAlert {
    let id = &pipeline.tasks[task].id;
    let of = pipeline.def(task).retries + 1;
    let subject = format!("[plumb] {label} RETRY: {id} attempt {attempt}/{of} failed ({why})");
    let mut b = String::new();
    let _ = writeln!(
        b,
        "{label}: attempt {attempt} of {of} of task {id} failed: {why}."
    );
    let _ = writeln!(
        b,
        "The next attempt starts in {}.\n\nrun: {run_id}\nlog: {}",
        human(retry_in),
        log.display()
    );
    quote_log(&mut b, log, "");
    new_alert(pipeline, instance_key, run_id, "retry", subject, b)
}

/// The last lines of a log, quoted, under `heading` (`{n}` is the number of lines; an empty
/// heading prints none). Nothing at all for an empty or missing log.
fn quote_log(b: &mut String, log: &std::path::Path, heading: &str) {
    let tail = log_tail(log, LOG_TAIL_LINES);
    if tail.is_empty() {
        return;
    }
    if !heading.is_empty() {
        let _ = writeln!(b, "{}", heading.replace("{n}", &tail.len().to_string()));
    }
    for line in tail {
        let _ = writeln!(b, "  | {line}");
    }
}

fn describe(state: AttemptState, exit: Option<i32>, signal: Option<i32>, error: Option<&str>) -> String {
    match (state, exit, signal, error) {
        (AttemptState::Failed, Some(c), _, Some(e)) if e == format!("exit {c}") => format!("exit {c}"),
        (AttemptState::Timeout, _, Some(s), Some(e)) => format!("{e} (killed by {})", signal_name(s)),
        (_, _, _, Some(e)) => e.to_string(),
        (_, Some(c), _, None) => format!("exit {c}"),
        (_, None, Some(s), None) => format!("killed by {}", signal_name(s)),
        _ => "failed".to_string(),
    }
}
