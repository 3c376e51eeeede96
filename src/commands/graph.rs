//! `plumb graph PIPELINE --format dot|mermaid`: the graph, each task coloured by its state.

use std::fmt::Write as _;

use crate::cli::{GraphFormat, InstanceArgs};
use crate::error::Result;
use crate::exit;
use crate::plan::TaskState;
use crate::project::Locator;

fn colour(state: TaskState) -> &'static str {
    match state {
        TaskState::Done => "#8fd18f",
        TaskState::Changed => "#d8e68a",
        TaskState::Pending | TaskState::Skipped => "#e8e8e8",
        TaskState::Running => "#8fb8f0",
        TaskState::Failed => "#f08f8f",
        TaskState::Blocked => "#f5c27a",
        TaskState::Missing | TaskState::Waiting => "#c9a6e8",
        TaskState::Interrupted => "#f0d38f",
    }
}

pub fn run(locator: &Locator, name: &str, args: &InstanceArgs, format: GraphFormat) -> Result<i32> {
    let (project, pipeline) = locator.load(name)?;
    let instance = super::instance(&pipeline, args)?;
    let (_, statuses) = super::current_statuses(&project, &instance)?;
    let mut out = String::new();
    match format {
        GraphFormat::Dot => {
            let _ = writeln!(out, "digraph \"{}\" {{", escape(&instance.label()));
            let _ = writeln!(out, "  rankdir=LR;");
            let _ = writeln!(
                out,
                "  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];"
            );
            for (t, task) in pipeline.tasks.iter().enumerate() {
                let s = statuses[t].state;
                let _ = writeln!(
                    out,
                    "  \"{}\" [label=\"{}\\n{}\", fillcolor=\"{}\"];",
                    escape(&task.id),
                    escape(&task.id),
                    s.as_str(),
                    colour(s)
                );
            }
            for t in 0..pipeline.tasks.len() {
                for &d in pipeline.graph.deps(t) {
                    let _ = writeln!(
                        out,
                        "  \"{}\" -> \"{}\";",
                        escape(&pipeline.tasks[d as usize].id),
                        escape(&pipeline.tasks[t].id)
                    );
                }
            }
            out.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            for (t, task) in pipeline.tasks.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  t{t}[\"{} ({})\"]:::{}",
                    mermaid_text(&task.id),
                    statuses[t].state.as_str(),
                    statuses[t].state.as_str()
                );
            }
            for t in 0..pipeline.tasks.len() {
                for &d in pipeline.graph.deps(t) {
                    let _ = writeln!(out, "  t{d} --> t{t}");
                }
            }
            for s in [
                TaskState::Done,
                TaskState::Changed,
                TaskState::Pending,
                TaskState::Running,
                TaskState::Failed,
                TaskState::Blocked,
                TaskState::Missing,
                TaskState::Waiting,
                TaskState::Interrupted,
                TaskState::Skipped,
            ] {
                let _ = writeln!(out, "  classDef {} fill:{}", s.as_str(), colour(s));
            }
        }
    }
    print!("{out}");
    Ok(exit::SUCCESS)
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;")
}
