//! Where things are: the project root, its `plumb.toml`, the state directory, and which file a
//! pipeline argument names.
//!
//! Rules (DESIGN §1): the root is the nearest directory at or above the pipeline file holding
//! `plumb.toml`, or the pipeline file's own directory when there is none; `-C DIR` sets it
//! explicitly. A pipeline is named by a path (anything with a `/` or ending in `.toml`) or by a
//! name, looked up as `pipelines/NAME.toml` under the root, so cron can run
//! `plumb -C /srv/etl run nightly_etl` from any working directory. The state lives in
//! `--state-dir`, else `$PLUMB_STATE_DIR`, else plumb.toml's `state_dir`, else `ROOT/state`.

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, FileDiagnostics, SourceFile};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::spec::{self, ProjectFile};
use crate::state::{State, StateError};

pub const PROJECT_FILE: &str = "plumb.toml";

/// How the user located things on the command line.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    /// `-C DIR`
    pub root: Option<PathBuf>,
    /// `--state-dir` or `PLUMB_STATE_DIR` (clap reads both).
    pub state_dir: Option<PathBuf>,
    /// `--new-state`: an empty or missing database may start over although the state
    /// directory shows earlier use.
    pub new_state: bool,
}

#[derive(Debug)]
pub struct Project {
    /// Absolute project root; tasks run here unless they set `cwd`.
    pub root: PathBuf,
    /// Absolute state directory.
    pub state_dir: PathBuf,
    /// Whether the state dir was chosen on the command line or in the environment, so the
    /// resume command can repeat it.
    pub state_dir_explicit: bool,
    /// See [`Locator::new_state`].
    pub new_state: bool,
    pub config: ProjectFile,
}

impl Locator {
    /// The project for commands that name no pipeline (`validate` with no argument, `history`).
    pub fn project(&self) -> Result<Project> {
        let cwd = current_dir()?;
        let root = match &self.root {
            Some(r) => absolute(&cwd, r),
            None => find_root(&cwd).unwrap_or(cwd.clone()),
        };
        self.open(root)
    }

    /// The project and pipeline file that `arg` names.
    pub fn pipeline_path(&self, arg: &str) -> Result<(Project, PathBuf)> {
        let cwd = current_dir()?;
        let base = match &self.root {
            Some(r) => absolute(&cwd, r),
            None => cwd.clone(),
        };
        let by_path = arg.contains('/') || arg.ends_with(".toml");
        if by_path {
            let path = absolute(&base, Path::new(arg));
            if !path.is_file() {
                return Err(Error::usage(format!("no pipeline file at {}", path.display())));
            }
            let root = match &self.root {
                Some(_) => base,
                None => {
                    let dir = path.parent().map(Path::to_path_buf).unwrap_or(cwd);
                    find_root(&dir).unwrap_or(dir)
                }
            };
            Ok((self.open(root)?, path))
        } else {
            let root = match &self.root {
                Some(_) => base,
                None => find_root(&cwd).unwrap_or(cwd),
            };
            let path = root.join("pipelines").join(format!("{arg}.toml"));
            if !path.is_file() {
                let known = list_pipelines(&root);
                let mut msg = format!("no pipeline named `{arg}`: {} does not exist", path.display());
                let names: Vec<String> = known
                    .iter()
                    .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                    .collect();
                if let Some(s) = crate::diag::did_you_mean(arg, names.iter().map(String::as_str)) {
                    msg.push_str(&format!("\n  did you mean `{s}`?"));
                } else if !names.is_empty() {
                    msg.push_str(&format!("\n  pipelines here: {}", names.join(", ")));
                } else if self.root.is_none() {
                    msg.push_str("\n  run from the project directory, or pass -C DIR");
                }
                return Err(Error::usage(msg));
            }
            Ok((self.open(root)?, path))
        }
    }

    /// Load the pipeline `arg` names, with its project.
    pub fn load(&self, arg: &str) -> Result<(Project, Pipeline)> {
        let (project, path) = self.pipeline_path(arg)?;
        let pipeline = crate::pipeline::cache::load(&path, &display_path(&path), &project)?;
        Ok((project, pipeline))
    }

    fn open(&self, root: PathBuf) -> Result<Project> {
        let config = load_project_file(&root)?;
        let cwd = current_dir()?;
        let (state_dir, explicit) = match (&self.state_dir, &config.project.state_dir) {
            (Some(s), _) => (absolute(&cwd, s), true),
            (None, Some(s)) => (absolute(&root, Path::new(s.get_ref())), false),
            (None, None) => (root.join("state"), false),
        };
        Ok(Project {
            root,
            state_dir,
            state_dir_explicit: explicit,
            new_state: self.new_state,
            config,
        })
    }
}

impl Project {
    /// Open the state database. A database that is missing or empty while the state directory
    /// shows earlier use (task logs, lock files of runners that are gone) was lost, not never
    /// made: opening it would silently drop every marker, so that is refused unless
    /// `--new-state` says to start over.
    pub fn open_state(&self) -> Result<State> {
        if !self.new_state
            && let Some(what) = State::holds_nothing(&self.state_dir)
            && let Some(found) = earlier_use(&self.state_dir)
        {
            return Err(Error::State(StateError::Emptied {
                path: self.state_dir.join("plumb.db"),
                what,
                found,
            }));
        }
        Ok(State::open(&self.state_dir)?)
    }

    pub fn pipelines(&self) -> Vec<PathBuf> {
        list_pipelines(&self.root)
    }
}

fn list_pipelines(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join("pipelines"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    out.sort();
    out
}

/// What in the state directory shows it was used before: log files of tasks, and lock files
/// written by runners that are gone.
fn earlier_use(state_dir: &Path) -> Option<String> {
    fn files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() && depth > 0 => files(&path, depth - 1, out),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    let mut logs = Vec::new();
    files(&state_dir.join("logs"), 3, &mut logs);
    let mut locks = Vec::new();
    files(&state_dir.join("locks"), 1, &mut locks);
    let stale = locks
        .iter()
        .filter(|l| crate::lock::left_by_a_gone_runner(l))
        .count();
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut found = Vec::new();
    if !logs.is_empty() {
        found.push(format!("{} under logs/", plural(logs.len(), "task log file")));
    }
    if stale > 0 {
        found.push(format!(
            "{} of earlier runners under locks/",
            plural(stale, "lock file")
        ));
    }
    (!found.is_empty()).then(|| found.join(", "))
}

fn load_project_file(root: &Path) -> Result<ProjectFile> {
    let path = root.join(PROJECT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProjectFile::default()),
        Err(e) => return Err(Error::Io(format!("cannot read {}: {e}", path.display()))),
    };
    let mut diags = Vec::new();
    let file = spec::parse_project(&text, &mut diags);
    // Defaults written in plumb.toml are checked here, where their spans point.
    if let Some(f) = &file {
        for (key, d) in [
            ("timeout", &f.defaults.timeout),
            ("grace", &f.defaults.grace),
            ("retry_delay", &f.defaults.retry_delay),
            ("max_retry_delay", &f.defaults.max_retry_delay),
            ("sla", &f.defaults.sla),
        ] {
            if let Some(d) = d
                && let Err(e) = crate::duration::parse(d.get_ref())
            {
                diags.push(
                    Diagnostic::new(format!("`{key}`: {}", e.message))
                        .at(d.span())
                        .help(e.help),
                );
            }
        }
        if let Some(r) = &f.defaults.retries
            && *r.get_ref() < 0
        {
            diags.push(Diagnostic::new("`retries` must be 0 or more").at(r.span()));
        }
        if let Some(e) = f.alerts.as_ref().and_then(|a| a.email.as_ref()) {
            diags.extend(crate::pipeline::address_problems(e));
        }
    }
    match file {
        Some(f) if diags.is_empty() => Ok(f),
        _ => Err(Error::Invalid(vec![FileDiagnostics {
            source: SourceFile::new(display_path(&path), text),
            items: diags,
        }])),
    }
}

/// Nearest directory at or above `dir` that holds plumb.toml.
fn find_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(PROJECT_FILE).is_file())
        .map(Path::to_path_buf)
}

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|e| Error::Io(format!("cannot read the working directory: {e}")))
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    normalize(&joined)
}

/// Remove `.` and `..` without touching the file system (symlinks are kept as written).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A path as the user should read it: relative to the working directory when below it.
pub fn display_path(p: &Path) -> PathBuf {
    match std::env::current_dir() {
        Ok(cwd) => match p.strip_prefix(&cwd) {
            Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
            Ok(rel) => rel.to_path_buf(),
            Err(_) => p.to_path_buf(),
        },
        Err(_) => p.to_path_buf(),
    }
}
