//! Running `plumb run` as a child process, for `backfill` and `schedule`.
//!
//! Each instance runs in its own `plumb run` process: exactly the code path a person or cron
//! uses (locks, markers, alerts, summary), isolated from its siblings, and stoppable with the
//! same signals. The child's output goes to a file.

use std::path::Path;
use std::process::Stdio;

use crate::error::{Error, Result};
use crate::exit;
use crate::project::Project;

/// A `plumb` command aimed at the same project and state as this process.
pub fn plumb(project: &Project, output: &Path) -> Result<tokio::process::Command> {
    let exe =
        std::env::current_exe().map_err(|e| Error::Io(format!("cannot find the plumb executable: {e}")))?;
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
    }
    let out = std::fs::File::create(output)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", output.display())))?;
    let err = out.try_clone().map_err(|e| Error::Io(e.to_string()))?;
    let mut c = tokio::process::Command::new(exe);
    c.arg("-C")
        .arg(&project.root)
        .arg("--state-dir")
        .arg(&project.state_dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(false);
    Ok(c)
}

/// A child's exit code in words.
pub fn outcome(code: Option<i32>) -> &'static str {
    match code {
        Some(exit::SUCCESS) => "done",
        Some(exit::TASK_FAILED) => "FAILED",
        Some(exit::USAGE) => "INVALID",
        Some(exit::LOCKED) => "LOCKED",
        Some(exit::MISSING_INPUT) => "MISSING INPUT",
        Some(exit::INTERRUPTED_INT) | Some(exit::INTERRUPTED_TERM) | None => "INTERRUPTED",
        Some(_) => "FAILED",
    }
}
