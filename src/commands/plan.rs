//! `plumb plan PIPELINE`: what `run` would do, in dependency order, without running anything.

use crate::cli::InstanceArgs;
use crate::error::Result;
use crate::exit;
use crate::plan::{Plan, TaskState};
use crate::project::Locator;

fn word(s: TaskState, waits: bool) -> &'static str {
    match s {
        TaskState::Done => "done",
        TaskState::Changed => "changed",
        TaskState::Missing if waits => "wait",
        TaskState::Missing => "missing",
        TaskState::Waiting => "waiting",
        TaskState::Skipped => "skipped",
        _ => "run",
    }
}

pub fn run(locator: &Locator, name: &str, args: &InstanceArgs, json: bool) -> Result<i32> {
    let (project, pipeline) = locator.load(name)?;
    let instance = super::instance(&pipeline, args)?;
    let state = project.open_state()?;
    let markers = state.markers(&pipeline.name, &instance.key(), pipeline.tasks.len())?;
    let plan = Plan::new(&instance, &project.root, &markers, &Default::default());
    let order = pipeline.graph.topological_order();
    if json {
        let tasks: Vec<serde_json::Value> = order
            .iter()
            .map(|&t| {
                let s = plan.states[t];
                serde_json::json!({
                    "task": pipeline.tasks[t].id,
                    "action": word(s, pipeline.def(t).wait.is_some()),
                    "state": s.as_str(),
                    "command": instance.resolve(t, &project.root, None).command.map(|c| c.display()),
                    "requires": pipeline.graph.deps(t).iter().map(|&d| pipeline.tasks[d as usize].id.clone()).collect::<Vec<_>>(),
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
    let count = |w: &str| {
        order
            .iter()
            .filter(|&&t| word(plan.states[t], pipeline.def(t).wait.is_some()) == w)
            .count()
    };
    let mut summary = vec![format!("{} done", count("done") + count("changed"))];
    summary.push(format!("{} to run", count("run")));
    for w in ["changed", "missing", "wait", "waiting", "skipped"] {
        let n = count(w);
        if n > 0 {
            summary.push(format!("{n} {w}"));
        }
    }
    println!(
        "plan for {} ({} tasks): {}",
        instance.label(),
        order.len(),
        summary.join(", ")
    );
    let width = order
        .iter()
        .map(|&t| pipeline.tasks[t].id.len())
        .max()
        .unwrap_or(0);
    for &t in &order {
        let s = plan.states[t];
        let w = word(s, pipeline.def(t).wait.is_some());
        let detail = match (w, instance.resolve(t, &project.root, None).command) {
            ("run", Some(c)) => c.display(),
            ("missing", _) | ("wait", _) => {
                let outs = instance.resolve(t, &project.root, None).outputs;
                let missing: Vec<String> = outs
                    .iter()
                    .filter(|o| !o.exists())
                    .map(|o| o.display().to_string())
                    .collect();
                format!("input not there: {}", missing.join(", "))
            }
            ("changed", _) => {
                "definition changed since it ran; `run --rerun-changed` runs it again".to_string()
            }
            _ => String::new(),
        };
        println!("  {w:<8} {:<width$}  {detail}", pipeline.tasks[t].id);
    }
    Ok(exit::SUCCESS)
}
