//! An instance: a pipeline with every param bound, and its tasks rendered for running.
//!
//! Params come from `-p k=v`, else their defaults; date params accept `today`, `yesterday` or
//! `YYYY-MM-DD`, time params `current` (their default), `previous` or a slot start
//! ([`crate::slot`]), and both are resolved against the run's logical time in the pipeline's
//! zone. The
//! instance key (`date=2026-11-20 region=eu`) is what markers and locks are keyed by.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use crate::diag::did_you_mean;
use crate::error::{Error, Result};
use crate::pipeline::{Command, ParamKind, Pipeline};
use crate::template::{ShellCommand, Template};

#[derive(Debug)]
pub struct Instance<'p> {
    pub pipeline: &'p Pipeline,
    /// Every param with its resolved value, in declaration order.
    pub params: Vec<(String, String)>,
    /// The logical time of the run, in the pipeline's zone, as RFC 3339.
    pub scheduled_time: String,
}

/// A command ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedCommand {
    /// Run by `/bin/sh -c`, with the values in the environment.
    Shell(ShellCommand),
    /// Executed directly.
    Argv(Vec<String>),
}

impl ResolvedCommand {
    /// The command as a person reads it, with the values written in and quoted. For a shell
    /// command this is not what runs (the values stay out of the command text) but what it
    /// means.
    pub fn display(&self) -> String {
        match self {
            ResolvedCommand::Shell(s) => s.display.clone(),
            ResolvedCommand::Argv(v) => v
                .iter()
                .map(|a| crate::template::quote(a))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// One task with every placeholder substituted.
#[derive(Debug, Clone)]
pub struct ResolvedTask {
    pub command: Option<ResolvedCommand>,
    pub check: Option<ResolvedCommand>,
    /// Absolute paths (relative outputs are relative to the project root).
    pub outputs: Vec<PathBuf>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// The words of the command and the check that name files they execute
    /// ([`crate::template`]'s rule), each once, in order. Which of them are project files is
    /// the fingerprint's question.
    pub scripts: Vec<String>,
}

/// `run_id` and `attempt`, known only when an attempt starts.
#[derive(Debug, Clone, Copy)]
pub struct AttemptVars<'a> {
    pub run_id: &'a str,
    pub attempt: u32,
}

/// Parse `k=v` from the command line.
pub fn parse_assignment(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, found `{s}`")),
    }
}

impl<'p> Instance<'p> {
    /// Bind params: `overrides` from `-p`, defaults for the rest. `logical` is the run's logical
    /// time (the wall clock for a manual run).
    pub fn new(
        pipeline: &'p Pipeline,
        overrides: &[(String, String)],
        logical: DateTime<Utc>,
    ) -> Result<Instance<'p>> {
        let mut problems = Vec::new();
        for (k, _) in overrides {
            if pipeline.param(k).is_none() {
                let mut msg = format!("pipeline `{}` has no param `{k}`", pipeline.name);
                let names: Vec<&str> = pipeline.params.iter().map(|p| p.name.as_str()).collect();
                match did_you_mean(k, names.iter().copied()) {
                    Some(s) => msg.push_str(&format!(" (did you mean `{s}`?)")),
                    None if names.is_empty() => msg.push_str(" (it takes none)"),
                    None => msg.push_str(&format!(" (params: {})", names.join(", "))),
                }
                problems.push(msg);
            }
        }
        let local = logical.with_timezone(&pipeline.timezone);
        let today = local.date_naive();
        let mut params = Vec::with_capacity(pipeline.params.len());
        for p in &pipeline.params {
            let given = overrides
                .iter()
                .rev()
                .find(|(k, _)| k == &p.name)
                .map(|(_, v)| v.clone());
            // A time param without a default follows the logical time: its current slot.
            let implicit = matches!(p.kind, ParamKind::Time { .. }).then(|| "current".to_string());
            let Some(raw) = given.or_else(|| p.default.clone()).or(implicit) else {
                problems.push(format!(
                    "param `{}` has no default: pass -p {}=VALUE",
                    p.name, p.name
                ));
                continue;
            };
            let value = match p.kind {
                ParamKind::String => raw,
                ParamKind::Date => match resolve_date(&raw, today) {
                    Ok(d) => d.format("%Y-%m-%d").to_string(),
                    Err(e) => {
                        problems.push(format!(
                            "param `{}`: {e} (write YYYY-MM-DD, today or yesterday)",
                            p.name
                        ));
                        continue;
                    }
                },
                ParamKind::Time { every } => {
                    match crate::slot::resolve(&raw, logical, pipeline.timezone, every) {
                        Ok(t) => crate::slot::format(t),
                        Err(e) => {
                            problems.push(format!("param `{}`: {e}", p.name));
                            continue;
                        }
                    }
                }
            };
            params.push((p.name.clone(), value));
        }
        if !problems.is_empty() {
            return Err(Error::usage(problems.join("\n")));
        }
        Ok(Instance {
            pipeline,
            params,
            scheduled_time: local.to_rfc3339(),
        })
    }

    /// `date=2026-11-20 region=eu`: the params that identify this instance, encoded by
    /// [`crate::key::encode`] so that different values always give different keys.
    pub fn key(&self) -> String {
        crate::key::encode(&self.params)
    }

    /// The params as a JSON object.
    pub fn params_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }

    /// `nightly_etl date=2026-11-20`
    pub fn label(&self) -> String {
        let key = self.key();
        if key.is_empty() {
            self.pipeline.name.clone()
        } else {
            format!("{} {key}", self.pipeline.name)
        }
    }

    /// `-p date=2026-11-20 -p region=eu`, quoted for a shell.
    pub fn param_args(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| format!(" -p {}", crate::template::quote(&format!("{k}={v}"))))
            .collect()
    }

    /// Render task `t`. Without `attempt`, `{{run_id}}` and `{{attempt}}` stay as written (for
    /// fingerprints and plans).
    pub fn resolve(&self, t: usize, root: &Path, attempt: Option<AttemptVars<'_>>) -> ResolvedTask {
        let task = &self.pipeline.tasks[t];
        let def = &self.pipeline.defs[task.def];
        let attempt_text = attempt.map(|a| a.attempt.to_string());
        let lookup = |name: &str| -> Option<&str> {
            if let Some((_, v)) = task.vars.iter().find(|(k, _)| k == name) {
                return Some(v);
            }
            if let Some((_, v)) = self.params.iter().find(|(k, _)| k == name) {
                return Some(v);
            }
            match name {
                "pipeline" => Some(&self.pipeline.name),
                "task" => Some(&task.id),
                "scheduled_time" => Some(&self.scheduled_time),
                "run_id" => attempt.map(|a| a.run_id),
                "attempt" => attempt_text.as_deref(),
                _ => None,
            }
        };
        let mut scripts: Vec<String> = Vec::new();
        let mut command = |c: &Command| {
            let (resolved, words) = match c {
                Command::Shell(t) => {
                    let r = t.render(lookup);
                    let words = t.scripts(&r.display);
                    (ResolvedCommand::Shell(r), words)
                }
                Command::Argv(v) => {
                    let argv: Vec<String> = v.iter().map(|t| t.render(lookup)).collect();
                    let words = crate::template::argv_scripts(&argv);
                    (ResolvedCommand::Argv(argv), words)
                }
            };
            for w in words {
                if !scripts.contains(&w) {
                    scripts.push(w);
                }
            }
            resolved
        };
        let resolved_command = def.command.as_ref().map(&mut command);
        let resolved_check = def.check.as_ref().map(&mut command);
        let raw = |t: &Template| t.render(lookup);
        let cwd = match &def.cwd {
            Some(c) => root.join(raw(c)),
            None => root.to_path_buf(),
        };
        ResolvedTask {
            command: resolved_command,
            check: resolved_check,
            outputs: def.outputs.iter().map(|o| root.join(raw(o))).collect(),
            env: def.env.iter().map(|(k, v)| (k.clone(), raw(v))).collect(),
            cwd,
            scripts,
        }
    }

    /// A digest of what task `t` would run: command, check, env and cwd. A marker stores it, so
    /// a later edit of the definition shows as `changed`. A shell command counts as it reads,
    /// with its values written in ([`ResolvedCommand::display`]): what the task means, not how
    /// plumb hands the values to the shell, so markers written before values moved out of the
    /// command text stay done when their values were plain words.
    ///
    /// The content of the project files it executes counts too ([`Fingerprint`]).
    pub fn fingerprint(&self, t: usize, root: &Path) -> Fingerprint {
        fingerprint(&self.resolve(t, root, None), &ScriptDigests::new(root))
    }
}

/// What a marker records of a task's definition, and how an earlier plumb recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Command, check, env, cwd and the content of each project file the task executes.
    pub current: String,
    /// The same without the files' content, which is what plumb recorded before it read
    /// scripts: set only when the task executes a project file (otherwise both are one).
    pub without_scripts: Option<String>,
}

/// The SHA-256 of each project file tasks execute, read once per path for a whole plan.
pub struct ScriptDigests {
    /// The project root with its symbolic links resolved; `None` if it cannot be.
    root: Option<PathBuf>,
    seen: std::sync::Mutex<rustc_hash::FxHashMap<PathBuf, Option<String>>>,
}

impl ScriptDigests {
    pub fn new(root: &Path) -> ScriptDigests {
        ScriptDigests {
            root: std::fs::canonicalize(root).ok(),
            seen: Default::default(),
        }
    }

    /// The digest of `path` if it is a regular file whose real path lies under the project
    /// root; `None` for anything else (missing, a directory, outside the project).
    fn digest(&self, path: &Path) -> Option<String> {
        if let Some(d) = self
            .seen
            .lock()
            .expect("digest cache is never poisoned")
            .get(path)
        {
            return d.clone();
        }
        let d = self.read(path);
        self.seen
            .lock()
            .expect("digest cache is never poisoned")
            .insert(path.to_path_buf(), d.clone());
        d
    }

    fn read(&self, path: &Path) -> Option<String> {
        let real = std::fs::canonicalize(path).ok()?;
        if !real.starts_with(self.root.as_ref()?) || !std::fs::metadata(&real).ok()?.is_file() {
            return None;
        }
        // A project file that cannot be read still counts, as such: the task would fail.
        let Ok(mut f) = std::fs::File::open(&real) else {
            return Some("unreadable".into());
        };
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match std::io::Read::read(&mut f, &mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Some("unreadable".into()),
            }
        }
        Some(hex(&h.finalize()))
    }
}

/// The fingerprint of a task resolved without attempt variables.
pub fn fingerprint(r: &ResolvedTask, digests: &ScriptDigests) -> Fingerprint {
    fn feed(h: &mut Sha256, label: &str, s: &str) {
        h.update(label.as_bytes());
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    let mut h = Sha256::new();
    match &r.command {
        Some(ResolvedCommand::Shell(s)) => feed(&mut h, "sh", &s.display),
        Some(ResolvedCommand::Argv(v)) => v.iter().for_each(|a| feed(&mut h, "argv", a)),
        None => feed(&mut h, "external", ""),
    }
    match &r.check {
        Some(ResolvedCommand::Shell(s)) => feed(&mut h, "check-sh", &s.display),
        Some(ResolvedCommand::Argv(v)) => v.iter().for_each(|a| feed(&mut h, "check-argv", a)),
        None => {}
    }
    for (k, v) in &r.env {
        feed(&mut h, "env", k);
        feed(&mut h, "=", v);
    }
    feed(&mut h, "cwd", &r.cwd.to_string_lossy());
    // Files go last, and only those that exist: a task that executes no project file keeps the
    // encoding plumb used before it read scripts, so its old markers stay done.
    let files: Vec<(&str, String)> = r
        .scripts
        .iter()
        .filter_map(|w| Some((w.as_str(), digests.digest(&r.cwd.join(w))?)))
        .collect();
    if files.is_empty() {
        return Fingerprint {
            current: hex(&h.finalize()[..16]),
            without_scripts: None,
        };
    }
    let without_scripts = hex(&h.clone().finalize()[..16]);
    for (word, digest) in &files {
        feed(&mut h, "file", word);
        feed(&mut h, "sha256", digest);
    }
    Fingerprint {
        current: hex(&h.finalize()[..16]),
        without_scripts: Some(without_scripts),
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// `today`, `yesterday` or `YYYY-MM-DD`, relative to `today`.
pub fn resolve_date(raw: &str, today: NaiveDate) -> std::result::Result<NaiveDate, String> {
    match raw {
        "today" => Ok(today),
        "yesterday" => today
            .checked_sub_days(Days::new(1))
            .ok_or_else(|| "date out of range".to_string()),
        s => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("\"{s}\" is not a date")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_keep_their_encoding_so_old_markers_stay_done() {
        // Computed outside plumb (Python hashlib) from the documented feed: label, length as
        // u64 little-endian, bytes; first 16 bytes of the SHA-256 in lowercase hex. A change
        // here would make every marker written by an earlier plumb read as `changed`.
        let r = ResolvedTask {
            command: Some(ResolvedCommand::Shell(ShellCommand {
                script: "different text: not part of the fingerprint".into(),
                env: vec![("PLUMB_VALUE_1".into(), "x".into())],
                display: "echo hi > out/a".into(),
            })),
            check: None,
            outputs: vec![PathBuf::from("/srv/p/out/a")],
            env: vec![("K".into(), "v".into())],
            cwd: PathBuf::from("/srv/p"),
            scripts: vec![],
        };
        let fp = fingerprint(&r, &ScriptDigests::new(Path::new("/srv/p")));
        assert_eq!(fp.current, "9e38537810e0f3447ca1f174b7d04b11");
        assert_eq!(fp.without_scripts, None);
    }

    #[test]
    fn the_project_files_a_task_executes_count_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        std::fs::create_dir_all(root.join("tasks")).unwrap();
        std::fs::write(root.join("tasks/x.sh"), "echo 1\n").unwrap();
        let outside = dir.path().join("outside.sh");
        std::fs::write(&outside, "echo out\n").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("tasks/link.sh")).unwrap();
        let task = |scripts: &[&str]| ResolvedTask {
            command: Some(ResolvedCommand::Argv(vec!["tasks/x.sh".into()])),
            check: None,
            outputs: vec![],
            env: vec![],
            cwd: root.clone(),
            scripts: scripts.iter().map(|s| s.to_string()).collect(),
        };
        let fp = |scripts: &[&str]| fingerprint(&task(scripts), &ScriptDigests::new(&root));
        let none = fp(&[]);
        // Words naming nothing, a directory, or a file whose real path is outside the
        // project: the encoding without scripts, unchanged.
        assert_eq!(
            fp(&["tasks/nope.sh", "tasks", "../outside.sh", "tasks/link.sh"]),
            none
        );
        let with = fp(&["tasks/x.sh"]);
        assert_eq!(with.without_scripts.as_deref(), Some(none.current.as_str()));
        assert_ne!(with.current, none.current);
        std::fs::write(root.join("tasks/x.sh"), "echo 2\n").unwrap();
        let edited = fp(&["tasks/x.sh"]);
        assert_ne!(edited.current, with.current, "an edit of the script changes it");
        assert_eq!(edited.without_scripts, with.without_scripts);
        std::fs::write(root.join("tasks/x.sh"), "echo 1\n").unwrap();
        assert_eq!(fp(&["tasks/x.sh"]), with, "the content decides, not the time");
    }

    #[test]
    fn dates_resolve_against_the_logical_day() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(resolve_date("today", d).unwrap(), d);
        assert_eq!(
            resolve_date("yesterday", d).unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
        assert_eq!(
            resolve_date("2024-02-29", d).unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert!(resolve_date("2023-02-29", d).is_err());
        assert!(resolve_date("20/11/2026", d).is_err());
    }

    #[test]
    fn assignments() {
        assert_eq!(parse_assignment("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_assignment("a=").unwrap(), ("a".into(), "".into()));
        assert!(parse_assignment("=x").is_err());
        assert!(parse_assignment("nox").is_err());
    }
}
