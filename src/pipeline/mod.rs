//! A validated pipeline: every value checked, `foreach` expanded, the graph built.
//!
//! This is the second loading phase. It takes the shapes read by [`crate::spec`] and checks what
//! they mean: durations have units, names refer to things that exist, placeholders are known,
//! schedules and zones parse, resources fit their pools, and the graph has no cycle. Every problem
//! is collected with the span it is about; a pipeline either loads completely or not at all.
//!
//! Templates are kept unrendered here: params are bound later, per instance
//! ([`crate::instance`]), and `run_id`/`attempt` per attempt.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diag::{Diagnostic, FileDiagnostics, SourceFile, did_you_mean};
use crate::duration::{self, RawDuration};
use crate::graph::Graph;
use crate::schedule::{self, Schedule};
use crate::spec::{self, DefaultsSection, ParamRaw, PipelineFile, ProjectFile};
use crate::template::{ShellTemplate, Template, is_identifier};

pub mod cache;
mod cadence;
mod expect;
mod tasks;

use tasks::cross_product;

/// Placeholders every task can use besides params and `foreach` variables.
pub const BUILTINS: &[&str] = &["pipeline", "task", "run_id", "attempt", "scheduled_time"];

/// The environment variable a task finds a placeholder's value in: `PLUMB_PARAM_<NAME>` for a
/// param, `PLUMB_FOREACH_<NAME>` for a `foreach` variable (upper-cased, `-` written `_` so that
/// sh can name it), and one for each built-in.
pub fn env_var(name: &str, foreach: bool) -> String {
    match name {
        "pipeline" => "PLUMB_PIPELINE".into(),
        "task" => "PLUMB_TASK".into(),
        "run_id" => "PLUMB_RUN_ID".into(),
        "attempt" => "PLUMB_ATTEMPT".into(),
        "scheduled_time" => "PLUMB_SCHEDULED_TIME".into(),
        _ => {
            let kind = if foreach { "FOREACH" } else { "PARAM" };
            format!("PLUMB_{kind}_{}", name.to_uppercase().replace('-', "_"))
        }
    }
}
/// Events an alert can be sent for.
pub const ALERT_EVENTS: &[&str] = &[
    "failure",
    "sla_miss",
    "retry",
    "success",
    "recovery",
    "anomaly",
    "deadline_miss",
];

/// Task ids to their indices.
pub type TaskIndex = rustc_hash::FxHashMap<String, usize>;

#[derive(Debug, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    /// Absolute path of the pipeline file.
    pub path: PathBuf,
    pub description: Option<String>,
    pub schedule: Option<Schedule>,
    pub timezone: Tz,
    pub workers: Option<usize>,
    pub catchup: Catchup,
    pub catchup_window: Duration,
    pub max_active_runs: usize,
    /// When an instance should be complete, after its logical time (DESIGN 7).
    pub deadline: Option<crate::watch::deadline::Deadline>,
    pub params: Vec<Param>,
    /// Resource pools: name and capacity, in file order.
    pub resources: Vec<(String, u32)>,
    pub alerts: Alerts,
    /// One definition per `[tasks.ID]`.
    pub defs: Vec<TaskDef>,
    /// Expanded tasks in declaration order; indices are the graph's node ids.
    pub tasks: Vec<Task>,
    /// Task id to index.
    pub index: TaskIndex,
    pub graph: Graph,
    /// Warnings, rendered: what loads and runs but likely not as meant (a schedule that fires
    /// more often than its instance changes). `validate` and `schedule` print them.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Catchup {
    Latest,
    All,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub default: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamKind {
    String,
    Date,
    /// Slot starts of `every` minutes on the pipeline's wall clock ([`crate::slot`]).
    Time {
        every: u32,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Alerts {
    pub email: Vec<String>,
    pub on: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Executor {
    Local,
    Slurm,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    /// Run by `/bin/sh -c`; every placeholder stands where the shell expands it as data.
    Shell(ShellTemplate),
    Argv(Vec<Template>),
}

/// What one `[tasks.ID]` says, with defaults applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDef {
    pub name: String,
    pub description: Option<String>,
    /// `None`: an external input, done when its outputs exist.
    pub command: Option<Command>,
    pub check: Option<Command>,
    pub outputs: Vec<Template>,
    pub env: Vec<(String, Template)>,
    pub cwd: Option<Template>,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// (pool index, amount)
    pub resources: Vec<(usize, u32)>,
    pub priority: i64,
    pub sla: Option<Duration>,
    pub wait: Option<Duration>,
    pub executor: Executor,
    /// `[tasks.ID.expect.NAME]`, in file order.
    pub expect: Vec<crate::watch::Expectation>,
}

/// One node of the graph: a definition, bound to one combination of `foreach` values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub def: usize,
    pub vars: Vec<(String, String)>,
}

impl Pipeline {
    /// Load and check a pipeline file. `display` is the path to show in errors.
    pub fn load(
        path: &Path,
        display: &Path,
        project: &ProjectFile,
    ) -> Result<Pipeline, Box<FileDiagnostics>> {
        Self::from_text(path, display, read_text(path, display)?, project)
    }

    pub fn from_text(
        path: &Path,
        display: &Path,
        text: String,
        project: &ProjectFile,
    ) -> Result<Pipeline, Box<FileDiagnostics>> {
        // A big file is read in pieces to bound memory; if that finds anything amiss, the file is
        // read whole, so that every problem is reported where it is.
        if text.len() >= 4 * spec::PIECE_BYTES
            && let Some(p) = Self::from_pieces(path, display, &text, spec::PIECE_BYTES, project)
        {
            return Ok(p);
        }
        let mut diags = Vec::new();
        let file = spec::parse_pipeline(&text, &mut diags);
        let source = SourceFile::new(display, text);
        let pipeline = file.map(|file| check(path, &source, file, project, &mut diags));
        match pipeline {
            Some(p) if diags.is_empty() => Ok(p),
            _ => {
                // In file order, whatever phase found them.
                diags.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
                Err(Box::new(FileDiagnostics { source, items: diags }))
            }
        }
    }

    /// The pipeline, if `text` reads in pieces of about `piece` bytes and builds without a problem.
    fn from_pieces(
        path: &Path,
        display: &Path,
        text: &str,
        piece: usize,
        project: &ProjectFile,
    ) -> Option<Pipeline> {
        let file = spec::parse_pipeline_in_pieces(text, piece)?;
        // Spans are relative to their piece: an empty source, as no problem will be shown.
        let source = SourceFile::new(display, String::new());
        let mut diags = Vec::new();
        let p = check(path, &source, file, project, &mut diags);
        // A warning points into the file too.
        (diags.is_empty() && p.warnings.is_empty()).then_some(p)
    }

    pub fn def(&self, task: usize) -> &TaskDef {
        &self.defs[self.tasks[task].def]
    }

    pub fn workers(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Build and check the pipeline a file's shape describes; problems go to `diags`.
fn check(
    path: &Path,
    source: &SourceFile,
    file: PipelineFile,
    project: &ProjectFile,
    diags: &mut Vec<Diagnostic>,
) -> Pipeline {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Builder {
        source,
        diags,
        seen: HashSet::new(),
    }
    .build(name, path, file, project)
}

/// A pipeline file's text; a file that cannot be read is a diagnostic like any other.
fn read_text(path: &Path, display: &Path) -> Result<String, Box<FileDiagnostics>> {
    std::fs::read_to_string(path).map_err(|e| {
        Box::new(FileDiagnostics {
            source: SourceFile::new(display, String::new()),
            items: vec![Diagnostic::new(format!("cannot read pipeline file: {e}"))],
        })
    })
}

struct Builder<'a> {
    source: &'a SourceFile,
    diags: &'a mut Vec<Diagnostic>,
    /// (message, span start) of every error so far: a shared setting or a `foreach` task
    /// repeats the same mistake once per task, and it is reported once.
    seen: HashSet<(String, usize)>,
}

/// Task settings after `[defaults]` (from plumb.toml, then the pipeline) are applied.
#[derive(Default, Clone)]
struct Inherited {
    timeout: Option<Spanned<RawDuration>>,
    grace: Option<Spanned<RawDuration>>,
    retries: Option<Spanned<i64>>,
    retry_delay: Option<Spanned<RawDuration>>,
    max_retry_delay: Option<Spanned<RawDuration>>,
    sla: Option<Spanned<RawDuration>>,
    env: Vec<(String, Spanned<String>)>,
    cwd: Option<Spanned<String>>,
    executor: Option<Spanned<String>>,
}

impl Inherited {
    /// Layer `d` over `self`. Spans from plumb.toml point into another file, so project
    /// defaults are checked when plumb.toml loads and only their values are carried here.
    fn layer(&mut self, d: &DefaultsSection) {
        fn pick<T: Clone>(a: &mut Option<T>, b: &Option<T>) {
            if b.is_some() {
                a.clone_from(b);
            }
        }
        pick(&mut self.timeout, &d.timeout);
        pick(&mut self.grace, &d.grace);
        pick(&mut self.retries, &d.retries);
        pick(&mut self.retry_delay, &d.retry_delay);
        pick(&mut self.max_retry_delay, &d.max_retry_delay);
        pick(&mut self.sla, &d.sla);
        pick(&mut self.cwd, &d.cwd);
        pick(&mut self.executor, &d.executor);
        for (k, v) in d.env.iter().flatten() {
            self.env.retain(|(ek, _)| ek != k);
            self.env.push((k.clone(), v.clone()));
        }
    }
}

impl Builder<'_> {
    fn error(&mut self, d: Diagnostic) {
        let key = (d.message.clone(), d.span.as_ref().map_or(0, |s| s.start));
        if self.seen.insert(key) {
            self.diags.push(d);
        }
    }

    fn build(
        &mut self,
        name: String,
        path: &Path,
        mut file: PipelineFile,
        project: &ProjectFile,
    ) -> Pipeline {
        let p = &file.pipeline;
        let schedule = p
            .schedule
            .as_ref()
            .and_then(|s| match Schedule::parse(s.get_ref()) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.error(
                        Diagnostic::new(format!("invalid schedule \"{}\": {e}", s.get_ref()))
                            .at(s.span())
                            .help("write a crontab line like \"0 2 * * *\" (02:00 daily) or \"@daily\""),
                    );
                    None
                }
            });
        let timezone = match &p.timezone {
            Some(z) => schedule::parse_zone(z.get_ref()).unwrap_or_else(|e| {
                self.error(
                    Diagnostic::new(e)
                        .at(z.span())
                        .help("use an IANA zone name such as \"Europe/Berlin\" or \"UTC\""),
                );
                Tz::UTC
            }),
            None => Tz::UTC,
        };
        let workers = p.workers.as_ref().and_then(|w| self.positive(w, "`workers`"));
        let max_active_runs = p
            .max_active_runs
            .as_ref()
            .and_then(|w| self.positive(w, "`max_active_runs`"))
            .unwrap_or(1);
        let catchup = match p.catchup.as_ref() {
            None => Catchup::Latest,
            Some(c) => match c.get_ref().as_str() {
                "latest" => Catchup::Latest,
                "all" => Catchup::All,
                "none" => Catchup::None,
                other => {
                    self.error(self.choice_error("catchup", other, c.span(), &["latest", "all", "none"]));
                    Catchup::Latest
                }
            },
        };
        let catchup_window = self
            .duration(p.catchup_window.as_ref(), "catchup_window", "in [pipeline]")
            .unwrap_or(Duration::from_secs(7 * 86400));
        if let Some(e) = &p.executor {
            self.executor(e);
        }
        let deadline = p.deadline.as_ref().and_then(|raw| {
            crate::watch::deadline::parse(raw.get_ref())
                .map_err(|e| {
                    self.error(
                        Diagnostic::new(format!("`deadline` in [pipeline]: {}", e.message))
                            .at(raw.span())
                            .help(e.help),
                    )
                })
                .ok()
        });

        let params = self.params(&file.params, timezone);
        let resources = self.resources(&file.resources);
        let mut warnings = Vec::new();
        if let (Some(s), Some(written)) = (&schedule, &p.schedule)
            && let Some(w) = cadence::warning(s, written.span(), &params)
        {
            let mut text = String::new();
            w.render_warning(self.source, &mut text);
            warnings.push(text);
        }
        let alerts = self.alerts(project, file.alerts.as_ref());

        let d = &file.defaults;
        for (key, value) in [
            ("timeout", &d.timeout),
            ("grace", &d.grace),
            ("retry_delay", &d.retry_delay),
            ("max_retry_delay", &d.max_retry_delay),
            ("sla", &d.sla),
        ] {
            if self.duration(value.as_ref(), key, "in [defaults]") == Some(Duration::ZERO) && key == "timeout"
            {
                let span = value.as_ref().map_or(0..0, |v| v.span());
                self.error(Diagnostic::new("`timeout` in [defaults] must be longer than 0s").at(span));
            }
        }
        if let Some(e) = &d.executor {
            self.executor(e);
        }
        // Project defaults were checked when plumb.toml loaded (their spans point into that
        // file); the pipeline's own [defaults] are layered over them.
        let mut inherited = Inherited::default();
        inherited.layer(&project.defaults);
        inherited.layer(&file.defaults);
        if inherited.executor.is_none() {
            inherited.executor = p.executor.clone();
        }

        let param_names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        let mut defs = Vec::with_capacity(file.tasks.len());
        let mut tasks: Vec<Task> = Vec::with_capacity(file.tasks.len());
        let mut index = TaskIndex::with_capacity_and_hasher(file.tasks.len(), Default::default());
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::with_capacity(file.tasks.len());
        let mut def_spans = Vec::with_capacity(file.tasks.len());
        // Each section is dropped once its definition is built.
        for (key, mut section) in std::mem::take(&mut file.tasks) {
            let id = key.get_ref();
            if !is_identifier(id) {
                self.error(
                    Diagnostic::new(format!("task id `{id}` is not a plain identifier"))
                        .at(key.span())
                        .help("use letters, digits, `_` and `-`, starting with a letter or `_`"),
                );
                continue;
            }
            let vars = self.foreach(&section, &param_names);
            let def = self.task_def(
                (id, key.span()),
                &section,
                &inherited,
                &resources,
                &param_names,
                &vars,
            );
            let def_index = defs.len();
            defs.push(def);
            // Keep only what resolving `requires` needs, not a copy of the section.
            def_spans.push((key.span(), section.requires.take().unwrap_or_default()));
            let mut ids = Vec::new();
            for combo in cross_product(&vars) {
                let task_id = if combo.is_empty() {
                    id.clone()
                } else {
                    let inner: Vec<String> = combo.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{id}[{}]", inner.join(","))
                };
                let i = tasks.len();
                if index.insert(task_id.clone(), i).is_some() {
                    self.error(
                        Diagnostic::new(format!("task `{task_id}` is defined twice"))
                            .at(key.span())
                            .help("foreach values must be distinct"),
                    );
                }
                ids.push(i);
                tasks.push(Task {
                    id: task_id,
                    def: def_index,
                    vars: combo,
                });
            }
            by_name.insert(id.clone(), ids);
        }

        let deps = self.requires(&tasks, &def_spans, &index, &by_name);
        let graph = Graph::new(tasks.len(), deps.iter().map(|d| d.iter().map(|(t, _)| *t)));
        for cycle in graph.cycles() {
            self.cycle_error(&cycle, &tasks, &deps, &def_spans);
        }

        Pipeline {
            name,
            path: path.to_path_buf(),
            description: p.description.as_ref().map(|d| d.get_ref().clone()),
            schedule,
            timezone,
            workers,
            catchup,
            catchup_window,
            max_active_runs,
            deadline,
            params,
            resources,
            alerts,
            defs,
            tasks,
            index,
            graph,
            warnings,
        }
    }

    fn positive(&mut self, v: &Spanned<i64>, what: &str) -> Option<usize> {
        match usize::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.error(Diagnostic::new(format!("{what} must be at least 1")).at(v.span()));
                None
            }
        }
    }

    fn choice_error(&self, key: &str, got: &str, span: Range<usize>, choices: &[&str]) -> Diagnostic {
        let d = Diagnostic::new(format!("`{key}` cannot be \"{got}\"")).at(span);
        match did_you_mean(got, choices.iter().copied()) {
            Some(s) => d.label(format!("did you mean \"{s}\"?")),
            None => d.help(format!("one of: {}", choices.join(", "))),
        }
    }

    fn executor(&mut self, e: &Spanned<String>) -> Executor {
        match e.get_ref().as_str() {
            "local" => Executor::Local,
            "slurm" => Executor::Slurm,
            other => {
                let d = self.choice_error("executor", other, e.span(), &["local", "slurm"]);
                self.error(d);
                Executor::Local
            }
        }
    }

    fn duration(&mut self, raw: Option<&Spanned<RawDuration>>, key: &str, place: &str) -> Option<Duration> {
        let raw = raw?;
        match duration::parse(raw.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    Diagnostic::new(format!("`{key}` {place}: {}", e.message))
                        .at(raw.span())
                        .help(e.help),
                );
                None
            }
        }
    }

    fn params(&mut self, raw: &[(Spanned<String>, Spanned<ParamRaw>)], timezone: Tz) -> Vec<Param> {
        let mut out = Vec::new();
        for (key, value) in raw {
            let name = key.get_ref();
            if !is_identifier(name) {
                self.error(
                    Diagnostic::new(format!("param name `{name}` is not a plain identifier")).at(key.span()),
                );
                continue;
            }
            if BUILTINS.contains(&name.as_str()) {
                self.error(
                    Diagnostic::new(format!(
                        "param `{name}` hides the built-in placeholder of that name"
                    ))
                    .at(key.span())
                    .help("rename the param"),
                );
                continue;
            }
            let var = env_var(name, false);
            if let Some(other) = out.iter().find(|p: &&Param| env_var(&p.name, false) == var) {
                self.error(
                    Diagnostic::new(format!(
                        "params `{}` and `{name}` would share the environment variable {var}",
                        other.name
                    ))
                    .at(key.span())
                    .help("a task could not tell them apart there; rename one of them"),
                );
            }
            let default_span = match value.get_ref() {
                ParamRaw::Plain(s) => s.contains('\0').then(|| value.span()),
                ParamRaw::Typed(t) => t
                    .default
                    .as_ref()
                    .filter(|d| d.get_ref().contains('\0'))
                    .map(|d| d.span()),
            };
            if let Some(span) = default_span {
                self.error(
                    Diagnostic::new(format!(
                        "the default of param `{name}` holds a NUL byte, which no command can be given"
                    ))
                    .at(span),
                );
            }
            let param = match value.get_ref() {
                ParamRaw::Plain(s) => Param {
                    name: name.clone(),
                    kind: ParamKind::String,
                    default: Some(s.clone()),
                    description: None,
                },
                ParamRaw::Typed(t) => {
                    let kind = match t.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
                        None | Some(("string", _)) => ParamKind::String,
                        Some(("date", _)) => ParamKind::Date,
                        Some(("time", _)) => self.every(name, key.span(), t.every.as_ref()),
                        Some((other, span)) => {
                            let d = self.choice_error("type", other, span, &["string", "date", "time"]);
                            self.error(d);
                            ParamKind::String
                        }
                    };
                    if let (false, Some(e)) = (matches!(kind, ParamKind::Time { .. }), &t.every) {
                        self.error(
                            Diagnostic::new(format!("`every` of param `{name}`: only a time param has one"))
                                .at(e.span())
                                .help(format!(
                                    "write {name} = {{ type = \"time\", every = ... }} for a param that follows the fire time"
                                )),
                        );
                    }
                    match (kind, &t.default) {
                        (ParamKind::Date, Some(d)) => {
                            if let Err(e) = check_date_value(d.get_ref()) {
                                self.error(
                                    Diagnostic::new(format!("default of param `{name}`: {e}"))
                                        .at(d.span())
                                        .help("write \"today\", \"yesterday\" or a date like \"2026-11-20\""),
                                );
                            }
                        }
                        (ParamKind::Time { every }, Some(d)) => {
                            if let Err(e) =
                                crate::slot::resolve(d.get_ref(), chrono::Utc::now(), timezone, every)
                            {
                                self.error(
                                    Diagnostic::new(format!("default of param `{name}`: {e}"))
                                        .at(d.span())
                                        .help("without a default a time param is \"current\", the slot of the run's logical time; \"previous\" is the one before"),
                                );
                            }
                        }
                        _ => {}
                    }
                    Param {
                        name: name.clone(),
                        kind,
                        default: t.default.as_ref().map(|d| d.get_ref().clone()),
                        description: t.description.as_ref().map(|d| d.get_ref().clone()),
                    }
                }
            };
            out.push(param);
        }
        out
    }

    /// A time param's kind, from its `every` (required: a slot length is not guessed).
    fn every(&mut self, name: &str, key: Range<usize>, every: Option<&Spanned<RawDuration>>) -> ParamKind {
        let fallback = ParamKind::Time { every: 60 };
        let Some(raw) = every else {
            self.error(
                Diagnostic::new(format!("param `{name}` is a time param without `every`"))
                    .at(key)
                    .help(format!(
                        "say how long each instance lasts: {name} = {{ type = \"time\", every = \"1h\" }} (from \"1m\" to \"1d\")"
                    )),
            );
            return fallback;
        };
        let Some(d) = self.duration(Some(raw), "every", &format!("of param `{name}`")) else {
            return fallback;
        };
        match crate::slot::every_minutes(d) {
            Ok(every) => ParamKind::Time { every },
            Err(e) => {
                self.error(
                    Diagnostic::new(format!("`every` of param `{name}` {e}"))
                        .at(raw.span())
                        .help("a time param's instances are slots of the day: 1m, 5m, 15m, 30m, 1h, 2h, 6h, 12h, 1d..."),
                );
                fallback
            }
        }
    }

    fn resources(&mut self, raw: &[(Spanned<String>, Spanned<i64>)]) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for (key, n) in raw {
            if !is_identifier(key.get_ref()) {
                self.error(
                    Diagnostic::new(format!(
                        "resource name `{}` is not a plain identifier",
                        key.get_ref()
                    ))
                    .at(key.span()),
                );
            }
            match u32::try_from(*n.get_ref()) {
                Ok(c) if c > 0 => out.push((key.get_ref().clone(), c)),
                _ => self.error(
                    Diagnostic::new(format!("resource `{}` must hold at least 1", key.get_ref()))
                        .at(n.span()),
                ),
            }
        }
        out
    }

    fn alerts(&mut self, project: &ProjectFile, own: Option<&spec::AlertsSection>) -> Alerts {
        let mut alerts = Alerts {
            email: Vec::new(),
            on: vec![
                "failure".to_string(),
                "anomaly".to_string(),
                "deadline_miss".to_string(),
            ],
        };
        if let Some(p) = &project.alerts {
            if let Some(e) = &p.email {
                alerts.email = e.get_ref().0.clone();
            }
            if let Some(on) = &p.on {
                alerts.on = on.iter().map(|s| s.get_ref().clone()).collect();
            }
        }
        if let Some(a) = own {
            if let Some(e) = &a.email {
                for d in address_problems(e) {
                    self.error(d);
                }
                alerts.email = e.get_ref().0.clone();
            }
            if let Some(on) = &a.on {
                for ev in on {
                    if !ALERT_EVENTS.contains(&ev.get_ref().as_str()) {
                        let d = self.choice_error("on", ev.get_ref(), ev.span(), ALERT_EVENTS);
                        self.error(d);
                    }
                }
                alerts.on = on.iter().map(|s| s.get_ref().clone()).collect();
            }
        }
        alerts
    }
}

/// The addresses of an `email` list that could never be delivered to: each must be one mailbox
/// (`oncall@example.com` or `On call <oncall@example.com>`), as the mailer parses it when it
/// sends, so that what validates can be sent. A list in one string, or a line break, is refused.
pub fn address_problems(list: &Spanned<spec::StringList>) -> Vec<Diagnostic> {
    list.get_ref()
        .0
        .iter()
        .filter(|addr| addr.contains(['\r', '\n', ',']) || addr.parse::<lettre::message::Mailbox>().is_err())
        .map(|addr| {
            Diagnostic::new(format!("\"{}\" is not one e-mail address", addr.escape_debug()))
                .at(list.span())
                .help("write each address as its own string: email = [\"a@example.com\", \"b@example.com\"]")
        })
        .collect()
}

/// A date param's value: `today`, `yesterday` or `YYYY-MM-DD`.
pub fn check_date_value(v: &str) -> Result<(), String> {
    match v {
        "today" | "yesterday" => Ok(()),
        _ => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(|_| ())
            .map_err(|_| format!("\"{v}\" is not a date")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a pipeline says, in a form two loads can be compared by.
    fn shape(p: &Pipeline) -> String {
        format!(
            "{:?}",
            (
                (
                    &p.name,
                    &p.description,
                    &p.schedule,
                    p.timezone,
                    p.workers,
                    p.catchup
                ),
                (
                    p.catchup_window,
                    p.max_active_runs,
                    p.deadline,
                    &p.params,
                    &p.resources,
                    &p.alerts
                ),
                (&p.defs, &p.tasks, &p.graph),
            )
        )
    }

    fn whole(text: &str) -> Pipeline {
        let (path, display) = (Path::new("/p/big.toml"), Path::new("big.toml"));
        Pipeline::from_text(path, display, text.to_string(), &ProjectFile::default())
            .unwrap_or_else(|d| panic!("{d}"))
    }

    fn pieces(text: &str, piece: usize) -> Option<Pipeline> {
        let (path, display) = (Path::new("/p/big.toml"), Path::new("big.toml"));
        Pipeline::from_pieces(path, display, text, piece, &ProjectFile::default())
    }

    const HEAD: &str = "# a pipeline\n[pipeline]\ndescription = 'big'\nworkers = 3\n\
        [params]\nregion = { default = 'eu' }\n[defaults]\nretries = 1\n[resources]\ndb = 2\n";

    fn many_tasks(n: usize) -> String {
        let mut t = String::from(HEAD);
        for i in 0..n {
            t += &format!("[tasks.t{i}]\ncommand = 'echo {i} {{{{region}}}}'\noutputs = ['out/t{i}']\n");
            if i > 0 {
                t += &format!("requires = [\n  't{}',\n]\n", i - 1);
            }
            if i % 7 == 0 {
                t += &format!("[tasks.t{i}.env]\nN = '{i}'\n");
            }
        }
        t
    }

    #[test]
    fn pieces_read_the_same_pipeline_as_the_whole_file() {
        let mut text = many_tasks(40);
        // A header-looking line inside a multi-line string, an array across lines, a foreach
        // task, and a table after the tasks: none may be cut or misread.
        text += "[tasks.tricky]\ncommand = '''\necho start\n[tasks.fake]\nx = 1\n'''\n\
                 foreach = { shard = [\n'a',\n'b'] }\nresources = { db = 1 }\n\
                 [tasks.tricky.env]\nA = 'x'\n[alerts]\nemail = ['a@example.com']\n";
        let w = whole(&text);
        for piece in [1, 64, 300, 1000] {
            let p = pieces(&text, piece).unwrap_or_else(|| panic!("piece size {piece}: not read in pieces"));
            assert_eq!(shape(&p), shape(&w), "piece size {piece}");
        }
        assert!(w.index.contains_key("tricky[shard=b]") && !w.index.contains_key("fake"));
        assert_eq!(w.tasks.len(), 42);
    }

    #[test]
    fn what_pieces_cannot_read_alone_is_read_whole() {
        for text in [
            // A task defined in two places.
            "[tasks.a]\ncommand = 'a'\n[tasks.b]\ncommand = 'b'\n[tasks.a.env]\nX = '1'\n",
            // A top-level table defined in two places.
            "[pipeline]\nworkers = 1\n[tasks.a]\ncommand = 'a'\n[pipeline.x]\n",
            // A quoted header key.
            "[tasks.a]\ncommand = 'a'\n[tasks.\"b c\"]\ncommand = 'b'\n",
            // An array of tables.
            "[tasks.a]\ncommand = 'a'\n[[tasks.b]]\ncommand = 'b'\n",
            // A problem: pieces never report one.
            "[tasks.a]\ncommand = 'a'\n[tasks.b]\ncomand = 'b'\n",
        ] {
            assert!(pieces(text, 1).is_none(), "read in pieces: {text}");
        }
    }

    #[test]
    fn a_problem_in_a_big_file_is_reported_where_it_is() {
        let mut text = many_tasks(20_000);
        assert!(text.len() >= 4 * spec::PIECE_BYTES, "only {} bytes", text.len());
        text += "[tasks.last]\ncomand = 'typo'\n";
        let (path, display) = (Path::new("/p/big.toml"), Path::new("big.toml"));
        let err = Pipeline::from_text(path, display, text.clone(), &ProjectFile::default())
            .expect_err("the typo must be found");
        // The typo, and its consequence (no command), each where it is in the whole file.
        let places: Vec<&str> = err
            .items
            .iter()
            .map(|d| &text[d.span.clone().expect("a place")])
            .collect();
        assert_eq!(places, ["last", "comand"], "{err}");
        // Without the typo the same file loads, and reads the same in pieces.
        let ok = text.replace("comand = 'typo'", "command = 'fixed'");
        let p = pieces(&ok, spec::PIECE_BYTES).expect("read in pieces");
        assert_eq!(shape(&whole(&ok)), shape(&p));
    }
}
