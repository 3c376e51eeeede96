//! One attempt of one task: a supervised child process.
//!
//! The command runs in its own process group (so a timeout or an interrupt reaches every process
//! it started, grandchildren included), with stdin from /dev/null and stdout+stderr going through
//! one pipe into the attempt's log file, in the order written. The log file is created when the
//! first byte arrives (or plumb has something to say, as it always does about a failure): on
//! ext4, creating a file for each silent task cost as much as a short task's own work. Stopping it sends SIGTERM to the whole group, waits the grace period,
//! then sends SIGKILL. When the command's main process exits, anything it left behind in its group
//! is stopped the same way, and so is anything it started outside its group (`setsid`), which
//! the runner, as child subreaper, has inherited and knows by its `PLUMB_*` variables: no process
//! of a task outlives its attempt.
//!
//! After exit 0 the declared outputs must exist, the `check` command must pass and the metrics
//! must meet the task's expectations ([`crate::watch`]); only then is the attempt a success. The attempt reports what happened; it never touches the state database.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use std::os::unix::process::ExitStatusExt;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

use crate::instance::ResolvedCommand;
use crate::process;
use crate::spawn::{self, Child};
use crate::state::AttemptState;

/// Everything needed to run one attempt.
#[derive(Debug, Clone)]
pub struct AttemptSpec {
    pub task: usize,
    pub command: ResolvedCommand,
    pub check: Option<ResolvedCommand>,
    pub outputs: Vec<PathBuf>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub log_path: PathBuf,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    /// A line written at the top of the log.
    pub header: String,
    /// `PLUMB_METRICS`: where the task may write what it measured.
    pub metrics: PathBuf,
    /// The task's expectations, for [`crate::watch::judge`].
    pub checks: std::sync::Arc<[crate::watch::Check]>,
}

/// What the runner asks of running attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep going.
    No,
    /// Terminate gracefully: SIGTERM, grace, SIGKILL.
    Terminate,
    /// Kill at once (a second Ctrl-C).
    Kill,
}

/// Reports from a running attempt.
#[derive(Debug)]
pub enum AttemptEvent {
    /// The command's process group exists: `pgid` with this start time.
    Spawned {
        task: usize,
        pgid: u32,
        start: u64,
    },
    Finished {
        task: usize,
        result: AttemptResult,
    },
}

#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub state: AttemptState,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration: Duration,
    /// Why it failed, in words ("exit 1", "timed out after 5s", "check failed: exit 2").
    pub error: Option<String>,
    /// What the task wrote to `PLUMB_METRICS`, read once it succeeded.
    pub metrics: Vec<(String, f64)>,
    /// Expectations with `anomaly = "warn"` that this success did not meet, in words.
    pub warnings: Vec<String>,
}

/// Run one attempt to its end and report it on `events`.
pub async fn run(
    spec: AttemptSpec,
    events: mpsc::UnboundedSender<AttemptEvent>,
    mut stop: watch::Receiver<Stop>,
) {
    let started = Instant::now();
    let task = spec.task;
    let result = supervise(&spec, &events, &mut stop, started).await;
    let _ = events.send(AttemptEvent::Finished { task, result });
}

async fn supervise(
    spec: &AttemptSpec,
    events: &mpsc::UnboundedSender<AttemptEvent>,
    stop: &mut watch::Receiver<Stop>,
    started: Instant,
) -> AttemptResult {
    let fail = |state, error: String| AttemptResult {
        state,
        exit_code: None,
        signal: None,
        duration: started.elapsed(),
        error: Some(error),
        metrics: Vec::new(),
        warnings: Vec::new(),
    };
    let log = Mutex::new(Log {
        path: spec.log_path.clone(),
        pending: format!("{}\n$ {}\n", spec.header, spec.command.display()),
        file: None,
    });
    let note = |text: &str| log.lock().expect("log lock").line(&format!("plumb: {text}"));
    let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);

    let ended = match run_command(spec, &spec.command, &log, events, stop, deadline).await {
        Err(e) => {
            note(&e);
            return fail(AttemptState::Failed, e);
        }
        Ok(ended) => ended,
    };
    let duration = started.elapsed();
    let mut result = AttemptResult {
        state: AttemptState::Success,
        exit_code: ended.status.code(),
        signal: ended.status.signal(),
        duration,
        error: None,
        metrics: Vec::new(),
        warnings: Vec::new(),
    };
    match ended.why {
        Ended::Stopped => {
            result.state = AttemptState::Interrupted;
            result.error = Some("interrupted".into());
            note("interrupted, process group stopped");
            return result;
        }
        Ended::TimedOut => {
            result.state = AttemptState::Timeout;
            let t = spec.timeout.unwrap_or_default();
            result.error = Some(format!("timed out after {}", humantime::format_duration(t)));
            note(&format!(
                "timed out after {}, process group stopped",
                humantime::format_duration(t)
            ));
            return result;
        }
        Ended::Exited => {}
    }
    if !ended.status.success() {
        result.state = AttemptState::Failed;
        result.error = Some(describe_status(ended.status));
        note(&format!("the command failed: {}", describe_status(ended.status)));
        return result;
    }
    let missing: Vec<String> = spec
        .outputs
        .iter()
        .filter(|o| !o.exists())
        .map(|o| o.display().to_string())
        .collect();
    if !missing.is_empty() {
        let msg = format!(
            "exited 0 but did not create its declared output{}: {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        );
        note(&msg);
        result.state = AttemptState::Failed;
        result.error = Some(msg);
        return result;
    }
    if let Some(check) = &spec.check {
        log.lock()
            .expect("log lock")
            .pending
            .push_str(&format!("$ {}   # check\n", check.display()));
        match run_command(spec, check, &log, events, stop, deadline).await {
            Err(e) => {
                result.state = AttemptState::Failed;
                result.error = Some(format!("check could not start: {e}"));
            }
            Ok(c) => match c.why {
                Ended::Stopped => {
                    result.state = AttemptState::Interrupted;
                    result.error = Some("interrupted during check".into());
                }
                Ended::TimedOut => {
                    result.state = AttemptState::Timeout;
                    result.error = Some("timed out during check".into());
                }
                Ended::Exited if !c.status.success() => {
                    result.state = AttemptState::Failed;
                    result.error = Some(format!("check failed: {}", describe_status(c.status)));
                    note(&format!(
                        "check failed ({}); the task stays undone",
                        describe_status(c.status)
                    ));
                }
                Ended::Exited => {}
            },
        }
        result.duration = started.elapsed();
    }
    if result.state == AttemptState::Success {
        crate::watch::judge(&spec.metrics, &spec.checks, &mut result, &note);
    }
    result
}

pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by {}", signal_name(s)),
        _ => "ended abnormally".into(),
    }
}

pub fn signal_name(s: i32) -> String {
    Signal::try_from(s)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {s}"))
}

/// An attempt's log: created on the first write, which first puts down the pending header.
struct Log {
    path: PathBuf,
    /// Written before the next bytes (the header, then a check's command line).
    pending: String,
    file: Option<File>,
}

impl Log {
    fn write(&mut self, bytes: &[u8]) {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            self.file = OpenOptions::new().create(true).append(true).open(&self.path).ok();
        }
        if let Some(f) = &mut self.file {
            if !self.pending.is_empty() {
                let _ = f.write_all(std::mem::take(&mut self.pending).as_bytes());
            }
            let _ = f.write_all(bytes);
        }
    }

    fn line(&mut self, text: &str) {
        self.write(format!("{text}\n").as_bytes());
    }
}

/// The read end of a command's output pipe, copied into the attempt's log as bytes arrive.
///
/// plumb holds the pipe's write end itself until the command's main process has exited, so the
/// end of output does not wake the runner on its own: the exit does, and what is left is read
/// then, without waiting. (When the pipe's end and the exit each woke the runner, that was a
/// second sleep and wake-up per task.)
struct Output<'a> {
    rx: AsyncFd<File>,
    log: &'a Mutex<Log>,
    /// Allocated once the command prints more than a little: most tasks print nothing.
    buf: Vec<u8>,
    ended: bool,
}

impl<'a> Output<'a> {
    /// A non-blocking pipe end, watched by the runtime.
    fn new(rx: OwnedFd, log: &'a Mutex<Log>) -> std::io::Result<Self> {
        Ok(Output {
            // SAFETY: the File owns the descriptor, and the AsyncFd owns the File until it is
            // dropped: the descriptor is neither closed nor replaced while registered.
            rx: unsafe { AsyncFd::register_with_interest(File::from(rx), Interest::READABLE)? },
            log,
            buf: Vec::new(),
            ended: false,
        })
    }

    /// Read all the pipe holds now. True at the end of output (every writer is gone).
    fn drain(&mut self) -> bool {
        let mut small = [0u8; 512];
        loop {
            let buf: &mut [u8] = if self.buf.is_empty() {
                &mut small
            } else {
                &mut self.buf
            };
            match self.rx.get_ref().read(buf) {
                Ok(0) => return true,
                Ok(n) => {
                    self.log.lock().expect("log lock").write(&buf[..n]);
                    if self.buf.is_empty() && n == small.len() {
                        self.buf = vec![0u8; 64 * 1024];
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    /// Copy output into the log until its end.
    async fn until_end(&mut self) {
        while !self.ended {
            let Ok(mut ready) = self.rx.readable().await else {
                self.ended = true;
                break;
            };
            ready.clear_ready();
            drop(ready);
            // Read after clearing: output that arrives meanwhile sets readiness again.
            self.ended = self.drain();
        }
    }

    /// Run `work` while copying output, so a command that prints while it is being waited for
    /// or stopped never blocks on a full pipe.
    async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        tokio::select! {
            v = &mut work => v,
            _ = async {
                self.until_end().await;
                std::future::pending::<()>().await
            } => unreachable!("copying the output never finishes on its own"),
        }
    }

    /// Take the rest once the main process is gone and plumb's write end is closed: at once if
    /// no one else holds the pipe; a process that left the group holding it gets `linger`, then
    /// is cut off.
    async fn finish(&mut self, linger: Duration) {
        if self.ended || self.drain() {
            return;
        }
        let _ = tokio::time::timeout(linger, self.until_end()).await;
    }
}

enum Ended {
    Exited,
    TimedOut,
    Stopped,
}

struct CommandEnd {
    status: ExitStatus,
    why: Ended,
}

/// A pipe for a command's output: plumb's read end (first) does not block, the command's write
/// end does, as any stdout would. Both close on exec; the spawn puts the write end on 1 and 2.
fn output_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    fcntl(&tx, FcntlArg::F_SETFL(OFlag::empty()))?;
    Ok((rx, tx))
}

/// Spawn `cmd` in a new process group and wait for it, honouring the deadline and stop requests.
async fn run_command(
    spec: &AttemptSpec,
    cmd: &ResolvedCommand,
    log: &Mutex<Log>,
    events: &mpsc::UnboundedSender<AttemptEvent>,
    stop: &mut watch::Receiver<Stop>,
    deadline: Option<tokio::time::Instant>,
) -> Result<CommandEnd, String> {
    // A shell command's values travel in its environment, after the task's own variables so
    // that the references always name them.
    let shell_env;
    let (argv, env): (Vec<&OsStr>, &[(String, String)]) = match cmd {
        ResolvedCommand::Shell(s) if s.env.is_empty() => (
            vec![OsStr::new("/bin/sh"), OsStr::new("-c"), OsStr::new(&s.script)],
            &spec.env,
        ),
        ResolvedCommand::Shell(s) => {
            shell_env = spec.env.iter().chain(&s.env).cloned().collect::<Vec<_>>();
            (
                vec![OsStr::new("/bin/sh"), OsStr::new("-c"), OsStr::new(&s.script)],
                &shell_env,
            )
        }
        ResolvedCommand::Argv(argv) => (argv.iter().map(OsStr::new).collect(), &spec.env),
    };
    let (rx, tx) = output_pipe().map_err(|e| format!("cannot make a pipe for the output: {e}"))?;
    let mut out = Output::new(rx, log).map_err(|e| format!("cannot watch the output pipe: {e}"))?;
    let before = process::boot_ticks_now();
    let spawned = spawn::spawn(&spawn::Spec {
        argv: &argv,
        env,
        cwd: &spec.cwd,
        output: &tx,
    });
    let after = process::boot_ticks_now();
    let mut child = spawned.map_err(|e| {
        // The child's chdir fails with the same ENOENT as a missing program: say which it was.
        if !spec.cwd.is_dir() {
            return format!(
                "cannot run the command: its working directory {} does not exist",
                spec.cwd.display()
            );
        }
        match cmd {
            ResolvedCommand::Argv(a) => format!("cannot run `{}`: {e}", a[0]),
            ResolvedCommand::Shell(_) => format!("cannot run /bin/sh: {e}"),
        }
    })?;
    let pgid = child.id();
    let _ = events.send(AttemptEvent::Spawned {
        task: spec.task,
        pgid,
        start: match (before, after) {
            (Some(b), Some(a)) if a == b => b,
            _ => process::start_ticks(pgid).unwrap_or(0),
        },
    });

    let timeout = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timeout);
    let (status, why) = out
        .alongside(async {
            let stop_requested = async {
                loop {
                    if *stop.borrow_and_update() != Stop::No {
                        return;
                    }
                    if stop.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            Ok::<_, String>(tokio::select! {
                s = child.wait() => (s.map_err(|e| format!("waiting for the command failed: {e}"))?, Ended::Exited),
                _ = &mut timeout => (terminate(pgid, &mut child, spec.grace, stop).await, Ended::TimedOut),
                _ = stop_requested => (terminate(pgid, &mut child, spec.grace, stop).await, Ended::Stopped),
            })
        })
        .await?;
    // Whatever the command left running in its group goes too.
    if process::group_alive(pgid) {
        log.lock()
            .expect("log lock")
            .line("plumb: processes of the task were still running after it ended; stopping them");
        out.alongside(stop_group(pgid, spec.grace)).await;
    }
    out.alongside(stop_escaped(spec, log)).await;
    // All output is in once every writer is gone.
    drop(tx);
    out.finish(Duration::from_secs(1)).await;
    Ok(CommandEnd { status, why })
}

/// Stop what the attempt started outside its process group (`setsid cmd &`, a double fork)
/// once its parent is gone: the runner is the child subreaper, so such a process became the
/// runner's child, and its `PLUMB_*` variables say whose. SIGTERM, up to `grace`, SIGKILL, then
/// reaped. Rounds repeat because a stopped process's own children are orphaned in their turn.
async fn stop_escaped(spec: &AttemptSpec, log: &Mutex<Log>) {
    let var = |k: &str| {
        spec.env
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let (Some(run), Some(state), Some(task), Some(attempt)) = (
        var("PLUMB_RUN_ID"),
        var("PLUMB_STATE_ID"),
        var("PLUMB_TASK"),
        var("PLUMB_ATTEMPT"),
    ) else {
        return;
    };
    let wanted = [
        ("PLUMB_RUN_ID", run),
        ("PLUMB_STATE_ID", state),
        ("PLUMB_TASK", task),
        ("PLUMB_ATTEMPT", attempt),
    ];
    let mut stopped = Vec::new();
    for _ in 0..10 {
        let found: Vec<u32> = process::children()
            .into_iter()
            .filter(|&pid| process::env_matches(pid, &wanted))
            .collect();
        if found.is_empty() {
            break;
        }
        stopped.extend(found.iter().map(|&pid| format!("{pid} ({})", process::comm(pid))));
        stop_processes(&found, spec.grace).await;
    }
    if !stopped.is_empty() {
        log.lock().expect("log lock").line(&format!(
            "plumb: stopped {} process{} the command left running outside its group: {}",
            stopped.len(),
            if stopped.len() == 1 { "" } else { "es" },
            stopped.join(", ")
        ));
    }
}

/// SIGTERM each of `pids` (with its group, when it leads one), SIGKILL what is left after
/// `grace`, and reap them.
pub async fn stop_processes(pids: &[u32], grace: Duration) {
    for &pid in pids {
        process::signal_escaped(pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    loop {
        for &pid in pids {
            process::reap(pid);
        }
        let left: Vec<u32> = pids.iter().copied().filter(|&p| process::running(p)).collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for &pid in &left {
                process::signal_escaped(pid, Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            for &pid in pids {
                process::reap(pid);
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM the group, wait up to `grace` for the leader, then SIGKILL. A `Stop::Kill` request
/// during the grace period kills at once.
async fn terminate(
    pgid: u32,
    child: &mut Child,
    grace: Duration,
    stop: &mut watch::Receiver<Stop>,
) -> ExitStatus {
    let kill_now = *stop.borrow() == Stop::Kill;
    if !kill_now {
        process::signal_group(pgid, Signal::SIGTERM);
        let escalate = async {
            loop {
                if *stop.borrow_and_update() == Stop::Kill {
                    return;
                }
                if stop.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            s = child.wait() => {
                if let Ok(s) = s {
                    return s;
                }
            }
            _ = tokio::time::sleep(grace) => {}
            _ = escalate => {}
        }
    }
    process::signal_group(pgid, Signal::SIGKILL);
    child.wait().await.unwrap_or_else(|_| ExitStatus::from_raw(9))
}

/// Stop every process left in group `pgid` (its leader has exited): SIGTERM, then SIGKILL once
/// `grace` has passed.
pub async fn stop_group(pgid: u32, grace: Duration) {
    process::signal_group(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while process::group_alive(pgid) {
        if Instant::now() >= deadline {
            process::signal_group(pgid, Signal::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
