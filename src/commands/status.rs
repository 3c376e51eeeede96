//! `plumb status PIPELINE`: every task's state, attempts, last duration and finish time.

use crate::cli::InstanceArgs;
use crate::duration::human;
use crate::error::Result;
use crate::exit;
use crate::plan::TaskState;
use crate::project::Locator;

pub fn run(locator: &Locator, name: &str, args: &InstanceArgs, json: bool) -> Result<i32> {
    let (project, pipeline) = locator.load(name)?;
    let instance = super::instance(&pipeline, args)?;
    let (_, statuses) = super::current_statuses(&project, &instance)?;
    let order = pipeline.graph.topological_order();
    if json {
        let tasks: Vec<serde_json::Value> = order
            .iter()
            .map(|&t| {
                let s = &statuses[t];
                let last = s.last.as_ref();
                serde_json::json!({
                    "task": pipeline.tasks[t].id,
                    "state": s.state.as_str(),
                    "attempts": s.attempts,
                    "duration_s": last.and_then(|a| a.duration_s),
                    "finished_at": last.and_then(|a| a.ended_at.clone()),
                    "exit_code": last.and_then(|a| a.exit_code),
                    "signal": last.and_then(|a| a.signal),
                    "log": last.map(|a| a.log_path.clone()),
                    "blocked_by": s.blocked_by.map(|b| pipeline.tasks[b].id.clone()),
                    "error": last.and_then(|a| a.error.clone()),
                    "warnings": last.map(|a| a.warnings.clone()).unwrap_or_default(),
                })
            })
            .collect();
        let out = serde_json::json!({
            "pipeline": pipeline.name,
            "instance": instance.key(),
            "params": instance.params_json(),
            "tasks": tasks,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("json values serialize")
        );
        return Ok(exit::SUCCESS);
    }
    let mut counts: Vec<(TaskState, usize)> = Vec::new();
    for s in &statuses {
        match counts.iter_mut().find(|(k, _)| *k == s.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.state, 1)),
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    println!("{}: {}", instance.label(), summary.join(", "));
    let width = order
        .iter()
        .map(|&t| pipeline.tasks[t].id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "  {:<width$}  {:<11}  {:>8}  {:>8}  finished",
        "task", "state", "attempts", "last"
    );
    for &t in &order {
        let s = &statuses[t];
        let last = s.last.as_ref();
        let dur = last
            .and_then(|a| a.duration_s)
            .map(|d| human(std::time::Duration::from_secs_f64(d)))
            .unwrap_or_else(|| "-".into());
        let fin = last
            .and_then(|a| a.ended_at.as_deref())
            .map_or_else(|| "-".into(), |t| crate::timefmt::stored(t, pipeline.timezone));
        let extra = match s.blocked_by {
            Some(b) => format!("  (blocked by {})", pipeline.tasks[b].id),
            None => String::new(),
        };
        println!(
            "  {:<width$}  {:<11}  {:>8}  {:>8}  {fin}{extra}",
            pipeline.tasks[t].id,
            s.state.as_str(),
            s.attempts,
            dur
        );
        // Why it failed, or what its success warned about, in the words of the run's summary.
        if let Some(a) = last {
            if matches!(s.state, TaskState::Failed)
                && let Some(e) = &a.error
            {
                println!("    error: {e}");
            }
            if s.state.is_done() {
                for w in &a.warnings {
                    println!("    warning: {w}");
                }
            }
        }
    }
    Ok(exit::SUCCESS)
}
