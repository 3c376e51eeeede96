//! `plumb reset PIPELINE TASK... [--downstream]`: forget markers so tasks run again.

use crate::cli::InstanceArgs;
use crate::error::Result;
use crate::exit;
use crate::lock;
use crate::project::Locator;

pub fn run(
    locator: &Locator,
    name: &str,
    tasks: &[String],
    args: &InstanceArgs,
    downstream: bool,
) -> Result<i32> {
    let (project, pipeline) = locator.load(name)?;
    let instance = super::instance(&pipeline, args)?;
    let mut ids = super::task_ids(&pipeline, tasks)?;
    if downstream {
        ids.extend(pipeline.graph.downstream(&ids));
        ids.sort_unstable();
        ids.dedup();
    }
    // Never change markers under a running instance.
    let key = instance.key();
    // Opened before taking the lock, so that a lost database is judged the same way by every
    // command (our own lock file is no evidence of earlier use).
    let mut state = project.open_state()?;
    let _lock = lock::acquire(
        &lock::lock_path(&project.state_dir, &pipeline.name, &key),
        &instance.label(),
        pipeline.timezone,
        false,
        |_| {},
    )?;
    let names: Vec<&str> = ids.iter().map(|&t| pipeline.tasks[t].id.as_str()).collect();
    let n = state.delete_markers(&pipeline.name, &key, &names)?;
    println!(
        "reset {} task{} of {} ({} marker{} removed): {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        instance.label(),
        n,
        if n == 1 { "" } else { "s" },
        names.join(", ")
    );
    Ok(exit::SUCCESS)
}
