//! `plumb logs PIPELINE TASK [--attempt N]`: print an attempt's log.

use std::io::Write;

use crate::cli::InstanceArgs;
use crate::error::{Error, Result};
use crate::exit;
use crate::project::Locator;

pub fn run(
    locator: &Locator,
    name: &str,
    task: &str,
    args: &InstanceArgs,
    attempt: Option<u32>,
) -> Result<i32> {
    let (project, pipeline) = locator.load(name)?;
    let instance = super::instance(&pipeline, args)?;
    let ids = super::task_ids(&pipeline, &[task.to_string()])?;
    if ids.len() != 1 {
        return Err(Error::usage(format!(
            "`{task}` has {} instances; name one, e.g. `{}`",
            ids.len(),
            pipeline.tasks[ids[0]].id
        )));
    }
    let id = &pipeline.tasks[ids[0]].id;
    let state = project.open_state()?;
    let attempts = state.task_attempts(&pipeline.name, &instance.key(), id)?;
    let chosen = match attempt {
        None => attempts.last(),
        // The newest attempt with that number (numbers restart in every run).
        Some(n) => attempts.iter().rev().find(|a| a.attempt == n),
    };
    let Some(a) = chosen else {
        return Err(Error::usage(match attempt {
            Some(n) => format!("{id} in {} has no attempt {n}", instance.label()),
            None => format!("{id} in {} has not run yet", instance.label()),
        }));
    };
    let bytes = match std::fs::read(&a.log_path) {
        Ok(b) => b,
        // A silent attempt leaves no file (it is created on the first byte of output).
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && a.state != crate::state::AttemptState::Running =>
        {
            eprintln!(
                "==> attempt {} of {id} (run {}, {}) printed nothing",
                a.attempt,
                a.run_id,
                a.state.as_str()
            );
            return Ok(exit::SUCCESS);
        }
        Err(e) => return Err(Error::Io(format!("cannot read log {}: {e}", a.log_path))),
    };
    eprintln!(
        "==> {} (run {}, attempt {}, {})",
        a.log_path,
        a.run_id,
        a.attempt,
        a.state.as_str()
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&bytes);
    Ok(exit::SUCCESS)
}
