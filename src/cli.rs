//! The command line: every command and flag, with the help text users read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::instance::parse_assignment;

/// plumb runs pipelines of tasks declared in TOML: in parallel, in dependency order, with a
/// durable completion marker per task, so that the next invocation resumes where the last one
/// stopped.
///
/// Exit codes: 0 every task done; 1 a task failed (or is blocked by one); 2 usage error or
/// invalid pipeline; 3 instance locked by another runner; 4 an external input is missing;
/// 5 plumb could not do its own job (state unreadable or unwritable, disk full); 130/143
/// interrupted by SIGINT/SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "plumb", version, max_term_width = 100)]
pub struct Cli {
    /// Project root: the directory holding plumb.toml and pipelines/. Default: the nearest
    /// directory at or above the pipeline file (or the working directory) with a plumb.toml.
    #[arg(short = 'C', long = "directory", value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,

    /// Where plumb keeps its SQLite state and task logs. Default: ROOT/state (or plumb.toml's
    /// `state_dir`).
    #[arg(long, env = "PLUMB_STATE_DIR", value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,

    /// Start a new, empty state database where the old one is missing or empty although the
    /// state directory shows earlier use (task logs, lock files). Without it plumb refuses
    /// (exit 5) rather than forget every marker.
    #[arg(long, global = true)]
    pub new_state: bool,

    /// Format of plumb's own diagnostic log lines on stderr (`json` for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone, Default)]
pub struct InstanceArgs {
    /// Set a param for this instance, as NAME=VALUE (repeatable). Date params take YYYY-MM-DD,
    /// `today` or `yesterday`; time params a slot start, YYYY-MM-DDTHH:MM (with its offset where
    /// the clock shows it twice), `current` or `previous`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check pipeline files; print every error with file:line:col. Checks every pipeline under
    /// pipelines/ when none is named. Exit 0 when all are valid, 2 otherwise.
    Validate {
        /// Pipeline files or names (pipelines/NAME.toml under the root).
        pipelines: Vec<String>,
    },
    /// Show what `run` would do, without running anything: each task as done, changed, to run,
    /// missing or waiting, in dependency order.
    Plan {
        /// Pipeline file or name.
        pipeline: String,
        #[command(flatten)]
        instance: InstanceArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run an instance of a pipeline, resuming it: tasks already done are skipped.
    Run(RunArgs),
    /// Show every task's state, attempts, last duration and finish time.
    Status {
        /// Pipeline file or name.
        pipeline: String,
        #[command(flatten)]
        instance: InstanceArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List past runs, newest first: instance, start, duration, outcome, task counts.
    History {
        /// Only runs of this pipeline.
        pipeline: Option<String>,
        /// Show at most N runs.
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the log of a task's attempt (the latest attempt by default).
    Logs {
        /// Pipeline file or name.
        pipeline: String,
        /// Task id, e.g. `load` or `copy_shard[shard=2]`.
        task: String,
        #[command(flatten)]
        instance: InstanceArgs,
        /// Which attempt, counting from 1 within its run. Default: the latest attempt.
        #[arg(long, value_name = "N")]
        attempt: Option<u32>,
        /// The attempts of this run (see `plumb history`), whatever its params were: last
        /// night's failure after a resume, or a `yesterday` run read today.
        #[arg(long, value_name = "RUN_ID", conflicts_with = "params")]
        run: Option<String>,
        /// Keep printing what a running attempt writes until it ends, as `tail -f` does.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Forget the completion markers of tasks so that the next run runs them again.
    Reset {
        /// Pipeline file or name.
        pipeline: String,
        /// Task ids (a foreach base name means every instance).
        #[arg(required = true)]
        tasks: Vec<String>,
        #[command(flatten)]
        instance: InstanceArgs,
        /// Also forget every task that depends on them, directly or transitively.
        #[arg(long)]
        downstream: bool,
    },
    /// Print the task graph, coloured by each task's state.
    Graph {
        /// Pipeline file or name.
        pipeline: String,
        #[command(flatten)]
        instance: InstanceArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Run one instance per date (or per slot of a time param) in a range, both ends included,
    /// oldest first.
    Backfill {
        /// Pipeline file or name.
        pipeline: String,
        /// First date, YYYY-MM-DD; for a time param its first slot, YYYY-MM-DDTHH:MM.
        #[arg(long)]
        from: String,
        /// Last date or slot (included).
        #[arg(long)]
        to: String,
        /// The date or time param to vary. Default: the pipeline's only one.
        // Named `--param` in 0.1, which everywhere else means NAME=VALUE; that spelling stays
        // as a hidden alias for one release (drop it in 0.3).
        #[arg(long, alias = "param", value_name = "NAME")]
        over: Option<String>,
        /// Run up to N instances at once.
        #[arg(long, default_value_t = 1, value_name = "N")]
        parallel: usize,
        /// Newest first.
        #[arg(long)]
        reverse: bool,
        /// Set another param for every instance, as NAME=VALUE (repeatable).
        #[arg(short = 'p', value_name = "NAME=VALUE", value_parser = parse_assignment)]
        params: Vec<(String, String)>,
    },
    /// Long-running scheduler: fires every pipeline that has a `schedule`, per its catch-up policy.
    Schedule,
    /// Print the next fire times of a pipeline's schedule, in its time zone with offset.
    Next {
        /// Pipeline file or name.
        pipeline: String,
        /// How many fire times to print.
        #[arg(long, default_value_t = 5, value_name = "N")]
        count: usize,
        /// List the fire times after this moment instead of after now: RFC 3339 with its
        /// offset, e.g. 2026-03-29T00:00:00+01:00, to check a schedule around a clock change.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        after: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Show what tasks measured (their PLUMB_METRICS values and durations), per run, with a
    /// sparkline, the median and the band the next value is compared with.
    Metrics {
        /// Pipeline file or name.
        pipeline: String,
        /// Only this task (a foreach base name means every instance).
        task: Option<String>,
        /// Only this metric, e.g. `rows` or `duration_s`.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Show the last N values of each metric.
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: usize,
        /// Print JSON instead: an array of task, name, value, run_id, instance, params, recorded_at.
        #[arg(long)]
        json: bool,
    },
    /// Delete runs that ended longer ago than AGE, with their attempts, metrics and logs,
    /// except the latest run of each instance, runs that current markers name, and history an
    /// anomaly expectation still compares with. Never a marker.
    Prune {
        /// How old a run must be to go, with a unit: `90d`, `12h`.
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: std::time::Duration,
        /// List what would go, with sizes, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Inspect or deliver queued alert e-mails.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pipeline file or name.
    pub pipeline: String,
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Run at most N tasks at once (overrides the pipeline's `workers`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: Option<u32>,
    /// Run only TASK and whatever it requires that is not done yet (repeatable).
    #[arg(long, value_name = "TASK")]
    pub only: Vec<String>,
    /// Stop starting new tasks after the first failure (running tasks finish).
    #[arg(long)]
    pub fail_fast: bool,
    /// If another runner holds this instance, wait for it instead of exiting with code 3.
    #[arg(long)]
    pub wait: bool,
    /// Re-run done tasks whose definition changed since they ran, and their dependents.
    #[arg(long)]
    pub rerun_changed: bool,
    /// The run's logical time (RFC 3339): date params defaulting to today/yesterday and time
    /// params resolve against it, and {{scheduled_time}} shows it. Default: now. The scheduler passes the
    /// fire time, so a 02:00 run that starts late still processes the right date.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub logical_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// An RFC 3339 time with its offset. A wall-clock time without one is refused rather than
/// guessed: on the day the clock changes it may happen twice or not at all.
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let wall_clock = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .any(|f| chrono::NaiveDateTime::parse_from_str(s, f).is_ok());
    if wall_clock {
        Err(
            "it has no offset; write it with one, e.g. 2026-03-29T01:30:00+01:00 or \
             2026-03-29T00:30:00Z"
                .to_string(),
        )
    } else if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
        Err(format!(
            "a date, not a time; write e.g. {s}T00:00:00+01:00 (a time with its offset)"
        ))
    } else {
        Err("not an RFC 3339 time; write e.g. 2026-03-29T01:30:00+01:00".to_string())
    }
}

/// An age with a unit, read as durations in pipeline files are: a bare number is refused.
fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse(&crate::duration::RawDuration::Text(s.to_string()))
        .map_err(|e| format!("{}; {}", e.message, e.help))
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Show queued alerts.
    List,
    /// Try to deliver every queued alert now.
    Flush,
}

impl Command {
    /// Commands that only print what they read: when their stdout is closed early (`plumb next
    /// p | head -1`) they end there, as `ls | head` does, instead of failing on the write.
    /// Commands that act (run, reset, backfill, schedule, alerts flush) keep going and report.
    pub fn only_prints(&self) -> bool {
        match self {
            Command::Validate { .. }
            | Command::Plan { .. }
            | Command::Status { .. }
            | Command::History { .. }
            | Command::Logs { .. }
            | Command::Graph { .. }
            | Command::Next { .. }
            | Command::Metrics { .. } => true,
            Command::Alerts { command } => matches!(command, AlertsCommand::List),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}
