//! One module per command. Each takes the parsed arguments and returns an exit code or an
//! [`Error`](crate::error::Error); `main` prints the error and maps it to its code.

mod alerts;
mod backfill;
mod child;
mod graph;
mod history;
mod logs;
mod metrics;
mod next;
mod plan;
mod prune;
mod reset;
mod run;
mod schedule;
mod status;
mod validate;

use crate::cli::{AlertsCommand, Cli, Command};
use crate::error::{Error, Result};
use crate::project::Locator;

pub fn run(cli: Cli) -> Result<i32> {
    let locator = Locator {
        root: cli.root.clone(),
        state_dir: cli.state_dir.clone(),
        new_state: cli.new_state,
    };
    match cli.command {
        Command::Validate { pipelines } => validate::run(&locator, &pipelines),
        Command::Graph {
            pipeline,
            instance,
            format,
        } => graph::run(&locator, &pipeline, &instance, format),
        Command::Plan {
            pipeline,
            instance,
            json,
        } => plan::run(&locator, &pipeline, &instance, json),
        Command::Run(args) => run::run(&locator, &args, cli.log_format),
        Command::Status {
            pipeline,
            instance,
            json,
        } => status::run(&locator, &pipeline, &instance, json),
        Command::History {
            pipeline,
            limit,
            json,
        } => history::run(&locator, pipeline.as_deref(), limit, json),
        Command::Logs {
            pipeline,
            task,
            instance,
            attempt,
            run,
            follow,
        } => logs::run(
            &locator,
            &pipeline,
            &task,
            &logs::Which {
                instance: &instance,
                attempt,
                run: run.as_deref(),
            },
            follow,
        ),
        Command::Reset {
            pipeline,
            tasks,
            instance,
            downstream,
        } => reset::run(&locator, &pipeline, &tasks, &instance, downstream),
        Command::Next {
            pipeline,
            count,
            after,
        } => next::run(&locator, &pipeline, count, after),
        Command::Backfill {
            pipeline,
            from,
            to,
            over,
            parallel,
            reverse,
            params,
        } => backfill::run(
            &locator,
            &backfill::Args {
                pipeline: &pipeline,
                from: &from,
                to: &to,
                param: over.as_deref(),
                parallel,
                reverse,
                params: &params,
            },
        ),
        Command::Metrics {
            pipeline,
            task,
            name,
            limit,
            json,
        } => metrics::run(
            &locator,
            &metrics::Args {
                pipeline: &pipeline,
                task: task.as_deref(),
                name: name.as_deref(),
                limit,
                json,
            },
        ),
        Command::Prune { older_than, dry_run } => prune::run(&locator, older_than, dry_run),
        Command::Schedule => schedule::run(&locator),
        Command::Alerts { command } => match command {
            AlertsCommand::List => alerts::list(&locator),
            AlertsCommand::Flush => alerts::flush(&locator),
        },
    }
}

/// Load a pipeline's current statuses: the plan against the markers, plus attempt history.
fn current_statuses(
    project: &crate::project::Project,
    instance: &crate::instance::Instance<'_>,
) -> Result<(crate::plan::Plan, Vec<crate::plan::TaskStatus>)> {
    let state = project.open_state()?;
    let key = instance.key();
    let p = instance.pipeline;
    let markers = state.markers(&p.name, &key, p.tasks.len())?;
    let plan = crate::plan::Plan::new(instance, &project.root, &markers, &Default::default());
    let attempts = state.attempts(&p.name, &key)?;
    let ids: Vec<&str> = p.tasks.iter().map(|t| t.id.as_str()).collect();
    let statuses = crate::plan::statuses(&plan, &p.graph, &ids, &attempts);
    Ok((plan, statuses))
}

/// Bind an instance's params for a command run now.
fn instance<'p>(
    pipeline: &'p crate::pipeline::Pipeline,
    args: &crate::cli::InstanceArgs,
) -> Result<crate::instance::Instance<'p>> {
    crate::instance::Instance::new(pipeline, &args.params, chrono::Utc::now())
}

/// Resolve task ids given on the command line; a foreach base name means all its instances.
fn task_ids(pipeline: &crate::pipeline::Pipeline, names: &[String]) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for name in names {
        if let Some(&t) = pipeline.index.get(name) {
            out.push(t);
            continue;
        }
        let all: Vec<usize> = pipeline
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| pipeline.defs[t.def].name == *name)
            .map(|(i, _)| i)
            .collect();
        if all.is_empty() {
            let mut msg = format!("pipeline `{}` has no task `{name}`", pipeline.name);
            if let Some(s) = crate::diag::did_you_mean(name, pipeline.tasks.iter().map(|t| t.id.as_str())) {
                msg.push_str(&format!(" (did you mean `{s}`?)"));
            }
            return Err(Error::usage(msg));
        }
        out.extend(all);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}
