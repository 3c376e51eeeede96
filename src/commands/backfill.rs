//! `plumb backfill PIPELINE --from DATE --to DATE`: every date's instance, both ends included.
//!
//! Dates are run oldest first (`--reverse`: newest first), up to `--parallel` at once, each as
//! its own `plumb run` child. Instances that are already complete are skipped without starting
//! anything; a failed date does not stop the others. The end is a table date → outcome, and exit
//! 1 if any date did not complete.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{Days, NaiveDate};
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::exit;
use crate::instance::Instance;
use crate::pipeline::ParamKind;
use crate::plan::{Plan, PlanOptions};
use crate::project::{Locator, display_path};

pub struct Args<'a> {
    pub pipeline: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub param: Option<&'a str>,
    pub parallel: usize,
    pub reverse: bool,
    pub params: &'a [(String, String)],
}

pub fn run(locator: &Locator, a: &Args<'_>) -> Result<i32> {
    let (project, pipeline) = locator.load(a.pipeline)?;
    let dates_of: Vec<&str> = pipeline
        .params
        .iter()
        .filter(|p| p.kind == ParamKind::Date)
        .map(|p| p.name.as_str())
        .collect();
    let param = match a.param {
        Some(n) if dates_of.contains(&n) => n.to_string(),
        Some(n) if pipeline.param(n).is_some() => {
            return Err(Error::usage(format!(
                "param `{n}` is not a date param (give it `type = \"date\"`)"
            )));
        }
        Some(n) => {
            return Err(Error::usage(format!(
                "pipeline `{}` has no param `{n}`",
                pipeline.name
            )));
        }
        None => match dates_of.as_slice() {
            [one] => one.to_string(),
            [] => {
                return Err(Error::usage(format!(
                    "pipeline `{}` has no date param to backfill",
                    pipeline.name
                )));
            }
            many => {
                return Err(Error::usage(format!(
                    "pipeline `{}` has several date params ({}); choose one with --over",
                    pipeline.name,
                    many.join(", ")
                )));
            }
        },
    };
    if a.params.iter().any(|(k, _)| *k == param) {
        return Err(Error::usage(format!(
            "-p {param}=... conflicts with the dates backfill sets"
        )));
    }
    let day = |s: &str, flag: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| Error::usage(format!("{flag} {s:?} is not a date (YYYY-MM-DD)")))
    };
    let (from, to) = (day(a.from, "--from")?, day(a.to, "--to")?);
    if from > to {
        return Err(Error::usage(format!("--from {from} is after --to {to}")));
    }
    let mut dates = Vec::new();
    let mut d = from;
    while d <= to {
        dates.push(d);
        d = d.checked_add_days(Days::new(1)).expect("dates in range");
    }
    if a.reverse {
        dates.reverse();
    }

    // Which dates are complete already.
    let state = project.open_state()?;
    let mut outcomes: Vec<(NaiveDate, String)> = Vec::new();
    let mut todo = VecDeque::new();
    for &date in &dates {
        let mut params = a.params.to_vec();
        params.push((param.clone(), date.to_string()));
        let inst = Instance::new(&pipeline, &params, chrono::Utc::now())?;
        let markers = state.markers(&pipeline.name, &inst.key(), pipeline.tasks.len())?;
        let plan = Plan::new(&inst, &project.root, &markers, &PlanOptions::default());
        if plan.states.iter().all(|s| s.is_done()) {
            println!("{date}  complete already, skipped");
            outcomes.push((date, "complete (skipped)".into()));
        } else {
            todo.push_back((date, params));
        }
    }
    drop(state);
    println!(
        "backfill {} {param} {} .. {}: {} to run, {} complete, {} at a time",
        pipeline.name,
        dates.first().expect("at least one date"),
        dates.last().expect("at least one date"),
        todo.len(),
        outcomes.len(),
        a.parallel.max(1)
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("cannot start the runtime: {e}")))?;
    let interrupted = rt.block_on(async {
        let mut sigint = signal(SignalKind::interrupt()).map_err(|e| Error::Io(e.to_string()))?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(|e| Error::Io(e.to_string()))?;
        let mut running: JoinSet<(NaiveDate, Option<i32>, PathBuf, f64)> = JoinSet::new();
        let mut pids = Vec::new();
        let mut stopping: Option<Signal> = None;
        loop {
            while stopping.is_none() && running.len() < a.parallel.max(1) {
                let Some((date, params)) = todo.pop_front() else { break };
                let out = project.state_dir.join("logs").join(&pipeline.name).join("backfill").join(format!("{date}.txt"));
                let mut cmd = super::child::plumb(&project, &out)?;
                cmd.arg("run").arg(&pipeline.path);
                for (k, v) in &params {
                    cmd.arg("-p").arg(format!("{k}={v}"));
                }
                let mut child = cmd.spawn().map_err(|e| Error::Io(format!("cannot start plumb run: {e}")))?;
                if let Some(pid) = child.id() {
                    pids.push(pid);
                }
                println!("{date}  started");
                running.spawn(async move {
                    let t = Instant::now();
                    let code = child.wait().await.ok().and_then(|s| s.code());
                    (date, code, out, t.elapsed().as_secs_f64())
                });
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = running.join_next() => {
                    let (date, code, out, secs) = done.map_err(|e| Error::Io(e.to_string()))?;
                    let word = super::child::outcome(code);
                    let line = if code == Some(exit::SUCCESS) {
                        format!("{word} ({secs:.1}s)")
                    } else {
                        format!("{word} (exit {}); output: {}", code.map_or("?".into(), |c| c.to_string()), display_path(&out).display())
                    };
                    println!("{date}  {line}");
                    outcomes.push((date, line));
                }
                _ = sigint.recv() => { stopping = Some(Signal::SIGINT); }
                _ = sigterm.recv() => {
                    // Children run in our process group only for a terminal's Ctrl-C; pass
                    // SIGTERM on so each stops its tasks cleanly.
                    for &pid in &pids {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM);
                    }
                    stopping = Some(Signal::SIGTERM);
                }
            }
        }
        for (date, _) in todo {
            outcomes.push((date, "not started (interrupted)".into()));
        }
        Ok::<_, Error>(stopping)
    })?;

    outcomes.sort_by_key(|(d, _)| *d);
    if a.reverse {
        outcomes.reverse();
    }
    let bad = outcomes
        .iter()
        .filter(|(_, o)| !(o.starts_with("done") || o.starts_with("complete")))
        .count();
    println!(
        "\nbackfill {} by {param}: {} date{}, {bad} not complete",
        pipeline.name,
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" }
    );
    println!("  {param:<10}  outcome");
    for (date, o) in &outcomes {
        println!("  {:<10}  {o}", date.to_string());
    }
    Ok(match interrupted {
        Some(Signal::SIGINT) => exit::INTERRUPTED_INT,
        Some(_) => exit::INTERRUPTED_TERM,
        None if bad > 0 => exit::TASK_FAILED,
        None => exit::SUCCESS,
    })
}
