//! `plumb backfill PIPELINE --from T --to T`: every instance of a date or time param in a range,
//! both ends included. A date param steps by a day, a time param by its `every`
//! ([`crate::slot::next`], so across a clock change it takes each slot the clock shows).
//!
//! Instances are run oldest first (`--reverse`: newest first), up to `--parallel` at once, each as
//! its own `plumb run` child. Instances that are already complete are skipped without starting
//! anything; a failed one does not stop the others. The end is a table value → outcome, and exit
//! 1 if any instance did not complete.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::exit;
use crate::instance::Instance;
use crate::pipeline::{Param, ParamKind, Pipeline};
use crate::plan::{Plan, PlanOptions};
use crate::project::{Locator, display_path};

/// A value of the param, with its place in time (0 = oldest), so that the table is printed oldest
/// first whatever order the runs finished in.
type Step = (usize, String);

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
    let param = over(&pipeline, a.param)?;
    if a.params.iter().any(|(k, _)| *k == param.name) {
        return Err(Error::usage(format!(
            "-p {}=... conflicts with the values backfill sets",
            param.name
        )));
    }
    let steps = steps(&pipeline, param, a.from, a.to)?;
    let param = param.name.clone();
    let mut values: Vec<Step> = steps.into_iter().enumerate().collect();
    if a.reverse {
        values.reverse();
    }
    let width = values
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(0)
        .max(param.len());
    let unit = match pipeline.param(&param).map(|p| p.kind) {
        Some(ParamKind::Date) => "date",
        _ => "instance",
    };

    // Which instances are complete already.
    let state = project.open_state()?;
    let mut outcomes: Vec<(Step, String)> = Vec::new();
    let mut todo = VecDeque::new();
    for value in &values {
        let mut params = a.params.to_vec();
        params.push((param.clone(), value.1.clone()));
        let inst = Instance::new(&pipeline, &params, chrono::Utc::now())?;
        let markers = state.markers(&pipeline.name, &inst.key(), pipeline.tasks.len())?;
        let plan = Plan::new(&inst, &project.root, &markers, &PlanOptions::default());
        if plan.states.iter().all(|s| s.is_done()) {
            println!("{}  complete already, skipped", value.1);
            outcomes.push((value.clone(), "complete (skipped)".into()));
        } else {
            todo.push_back((value.clone(), params));
        }
    }
    drop(state);
    println!(
        "backfill {} {param} {} .. {}: {} to run, {} complete, {} at a time",
        pipeline.name,
        values.first().expect("at least one value").1,
        values.last().expect("at least one value").1,
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
        let mut running: JoinSet<(Step, Option<i32>, PathBuf, f64)> = JoinSet::new();
        let mut pids = Vec::new();
        let mut stopping: Option<Signal> = None;
        loop {
            while stopping.is_none() && running.len() < a.parallel.max(1) {
                let Some((value, params)) = todo.pop_front() else { break };
                let out = project.state_dir.join("logs").join(&pipeline.name).join("backfill").join(format!("{}.txt", value.1.replace(':', "-")));
                let mut cmd = super::child::plumb(&project, &out)?;
                cmd.arg("run").arg(&pipeline.path);
                for (k, v) in &params {
                    cmd.arg("-p").arg(format!("{k}={v}"));
                }
                let mut child = cmd.spawn().map_err(|e| Error::Io(format!("cannot start plumb run: {e}")))?;
                if let Some(pid) = child.id() {
                    pids.push(pid);
                }
                println!("{}  started", value.1);
                running.spawn(async move {
                    let t = Instant::now();
                    let code = child.wait().await.ok().and_then(|s| s.code());
                    (value, code, out, t.elapsed().as_secs_f64())
                });
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = running.join_next() => {
                    let (value, code, out, secs) = done.map_err(|e| Error::Io(e.to_string()))?;
                    let word = super::child::outcome(code);
                    let line = if code == Some(exit::SUCCESS) {
                        format!("{word} ({secs:.1}s)")
                    } else {
                        format!("{word} (exit {}); output: {}", code.map_or("?".into(), |c| c.to_string()), display_path(&out).display())
                    };
                    println!("{}  {line}", value.1);
                    outcomes.push((value, line));
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
        for (value, _) in todo {
            outcomes.push((value, "not started (interrupted)".into()));
        }
        Ok::<_, Error>(stopping)
    })?;

    outcomes.sort_by_key(|((i, _), _)| *i);
    if a.reverse {
        outcomes.reverse();
    }
    let bad = outcomes
        .iter()
        .filter(|(_, o)| !(o.starts_with("done") || o.starts_with("complete")))
        .count();
    println!(
        "\nbackfill {} by {param}: {} {unit}{}, {bad} not complete",
        pipeline.name,
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" }
    );
    println!("  {param:<width$}  outcome");
    for ((_, value), o) in &outcomes {
        println!("  {value:<width$}  {o}");
    }
    Ok(match interrupted {
        Some(Signal::SIGINT) => exit::INTERRUPTED_INT,
        Some(_) => exit::INTERRUPTED_TERM,
        None if bad > 0 => exit::TASK_FAILED,
        None => exit::SUCCESS,
    })
}

/// The param `--over` names, or the pipeline's only date or time param.
fn over<'p>(pipeline: &'p Pipeline, name: Option<&str>) -> Result<&'p Param> {
    let steppable = |p: &&Param| matches!(p.kind, ParamKind::Date | ParamKind::Time { .. });
    if let Some(n) = name {
        return match pipeline.param(n) {
            Some(p) if steppable(&p) => Ok(p),
            Some(_) => Err(Error::usage(format!(
                "param `{n}` is not a date or time param (give it `type = \"date\"` or `type = \"time\"`)"
            ))),
            None => Err(Error::usage(format!(
                "pipeline `{}` has no param `{n}`",
                pipeline.name
            ))),
        };
    }
    let all: Vec<&Param> = pipeline.params.iter().filter(steppable).collect();
    match all.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::usage(format!(
            "pipeline `{}` has no date or time param to backfill",
            pipeline.name
        ))),
        many => {
            let dates = many.iter().filter(|p| p.kind == ParamKind::Date).count();
            let kinds = match dates {
                0 => "time",
                d if d == many.len() => "date",
                _ => "date and time",
            };
            let names: Vec<&str> = many.iter().map(|p| p.name.as_str()).collect();
            Err(Error::usage(format!(
                "pipeline `{}` has several {kinds} params ({}); choose one with --over",
                pipeline.name,
                names.join(", ")
            )))
        }
    }
}

/// At most this many instances in one backfill: a range of years by the minute is a typo, and
/// would be listed in memory before anything runs.
const MAX_STEPS: usize = 100_000;

/// The values of `param` from `from` to `to`, both included, oldest first: every date, or every
/// slot start of a time param, stepped by its `every` across clock changes.
fn steps(pipeline: &Pipeline, param: &Param, from: &str, to: &str) -> Result<Vec<String>> {
    let too_many = || {
        Error::usage(format!(
            "--from {from} --to {to} spans more than {MAX_STEPS} instances of `{}`; backfill it in parts",
            param.name
        ))
    };
    let mut out = Vec::new();
    match param.kind {
        ParamKind::Time { every } => {
            let tz = pipeline.timezone;
            let now = chrono::Utc::now();
            let slot = |s: &str, flag: &str| {
                crate::slot::resolve(s, now, tz, every).map_err(|e| Error::usage(format!("{flag} {e}")))
            };
            let (first, last) = (slot(from, "--from")?, slot(to, "--to")?);
            if first > last {
                return Err(Error::usage(format!(
                    "--from {} is after --to {}",
                    crate::slot::format(first),
                    crate::slot::format(last)
                )));
            }
            let mut t = Some(first);
            while let Some(s) = t.filter(|s| *s <= last) {
                if out.len() == MAX_STEPS {
                    return Err(too_many());
                }
                out.push(crate::slot::format(s));
                t = crate::slot::next(s, every);
            }
        }
        _ => {
            let day = |s: &str, flag: &str| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| Error::usage(format!("{flag} {s:?} is not a date (YYYY-MM-DD)")))
            };
            let (first, last) = (day(from, "--from")?, day(to, "--to")?);
            if first > last {
                return Err(Error::usage(format!("--from {first} is after --to {last}")));
            }
            let mut d = Some(first);
            while let Some(date) = d.filter(|d| *d <= last) {
                if out.len() == MAX_STEPS {
                    return Err(too_many());
                }
                out.push(date.to_string());
                d = date.succ_opt();
            }
        }
    }
    Ok(out)
}
