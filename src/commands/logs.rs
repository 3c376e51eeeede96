//! `plumb logs PIPELINE TASK [--attempt N] [--run RUN_ID] [--follow]`: print an attempt's log.
//!
//! The log is copied to stdout as it is on disk, in pieces, so a log of any size costs a small
//! buffer. With `--follow` the command keeps copying what a running attempt appends, until the
//! attempt's row says it ended (or its runner is gone), then prints how it ended.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::cli::InstanceArgs;
use crate::error::{Error, Result};
use crate::exit;
use crate::process;
use crate::project::Locator;
use crate::state::{AttemptRow, AttemptState, State};

/// How often `--follow` looks for more output and for the attempt's end.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Which attempt the user asked for.
pub struct Which<'a> {
    pub instance: &'a InstanceArgs,
    pub attempt: Option<u32>,
    pub run: Option<&'a str>,
}

pub fn run(locator: &Locator, name: &str, task: &str, which: &Which<'_>, follow: bool) -> Result<i32> {
    let (project, pipeline) = locator.load(name)?;
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
    let (attempts, whose) = match which.run {
        Some(run_id) => {
            if !state.has_run(&pipeline.name, run_id)? {
                return Err(Error::usage(format!(
                    "pipeline `{}` has no run {run_id} (plumb history {} lists its runs)",
                    pipeline.name, pipeline.name
                )));
            }
            let attempts = state.run_task_attempts(run_id, &pipeline.name, id)?;
            (attempts, format!("run {run_id}"))
        }
        None => {
            let instance = super::instance(&pipeline, which.instance)?;
            let attempts = state.task_attempts(&pipeline.name, &instance.key(), id)?;
            (attempts, instance.label())
        }
    };
    let chosen = match which.attempt {
        None => attempts.last(),
        // The newest attempt with that number (numbers restart in every run).
        Some(n) => attempts.iter().rev().find(|a| a.attempt == n),
    };
    let Some(a) = chosen else {
        return Err(Error::usage(match which.attempt {
            Some(n) => format!("{id} in {whose} has no attempt {n}"),
            None => format!("{id} in {whose} has not run"),
        }));
    };
    let running = |a: &AttemptRow| {
        a.state == AttemptState::Running && process::same_process_alive(a.runner_pid, a.runner_start)
    };
    eprintln!(
        "==> {} (run {}, attempt {}, {})",
        a.log_path,
        a.run_id,
        a.attempt,
        if running(a) { "running" } else { a.state.as_str() }
    );
    let mut out = std::io::stdout().lock();
    let mut copied = 0u64;
    copy_from(Path::new(&a.log_path), &mut copied, &mut out)?;
    if !follow || !running(a) {
        if copied == 0 {
            // A silent attempt leaves no file: it is created on the first byte of output.
            eprintln!(
                "==> {}",
                if running(a) {
                    "nothing printed yet (--follow waits for it)"
                } else {
                    "it printed nothing"
                }
            );
        }
        return Ok(exit::SUCCESS);
    }
    let ended = follow_until_end(&state, a, &mut copied, &mut out)?;
    let _ = out.flush();
    eprintln!("==> {}", how_it_ended(&ended));
    Ok(exit::SUCCESS)
}

/// Copy what the attempt appends until its row says it ended or its runner is gone; the row as
/// it was then.
fn follow_until_end(
    state: &State,
    a: &AttemptRow,
    copied: &mut u64,
    out: &mut impl Write,
) -> Result<AttemptRow> {
    loop {
        let now = state.attempt(a.id)?.unwrap_or_else(|| a.clone());
        let alive = process::same_process_alive(now.runner_pid, now.runner_start);
        // Read after looking at the row: whatever was written before the end is copied.
        copy_from(Path::new(&a.log_path), copied, out)?;
        let _ = out.flush();
        if now.state != AttemptState::Running || !alive {
            return Ok(now);
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

fn how_it_ended(a: &AttemptRow) -> String {
    let mut s = match a.state {
        AttemptState::Running => "its runner is gone; the attempt's end was not recorded".to_string(),
        state => format!("attempt {} {}", a.attempt, state.as_str()),
    };
    // The recorded error already names the exit status or signal when there is one.
    match (&a.error, a.exit_code, a.signal) {
        (Some(e), _, _) => s.push_str(&format!(": {e}")),
        (None, _, Some(sig)) => s.push_str(&format!(": signal {sig}")),
        (None, Some(code), _) if a.state != AttemptState::Success => s.push_str(&format!(": exit {code}")),
        _ => {}
    }
    s
}

/// Copy the log from byte `*copied` to its current end, in pieces. A log that does not exist
/// (yet) has nothing to copy.
fn copy_from(path: &Path, copied: &mut u64, out: &mut impl Write) -> Result<()> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Io(format!("cannot read log {}: {e}", path.display()))),
    };
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(*copied))
        .map_err(|e| Error::Io(format!("cannot read log {}: {e}", path.display())))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::Io(format!("cannot read log {}: {e}", path.display())))?;
        if n == 0 {
            return Ok(());
        }
        // A reader that went away (`| head`) ends the command by SIGPIPE, as for other printers.
        if out.write_all(&buf[..n]).is_err() {
            return Ok(());
        }
        *copied += n as u64;
    }
}
