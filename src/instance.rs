//! An instance: a pipeline with every param bound, and its tasks rendered for running.
//!
//! Params come from `-p k=v`, else their defaults; date params accept `today`, `yesterday` or
//! `YYYY-MM-DD` and are resolved against the run's logical time in the pipeline's zone. The
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
            let Some(raw) = given.or_else(|| p.default.clone()) else {
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
        let command = |c: &Command| match c {
            Command::Shell(t) => ResolvedCommand::Shell(t.render(lookup)),
            Command::Argv(v) => ResolvedCommand::Argv(v.iter().map(|t| t.render(lookup)).collect()),
        };
        let raw = |t: &Template| t.render(lookup);
        let cwd = match &def.cwd {
            Some(c) => root.join(raw(c)),
            None => root.to_path_buf(),
        };
        ResolvedTask {
            command: def.command.as_ref().map(command),
            check: def.check.as_ref().map(command),
            outputs: def.outputs.iter().map(|o| root.join(raw(o))).collect(),
            env: def.env.iter().map(|(k, v)| (k.clone(), raw(v))).collect(),
            cwd,
        }
    }

    /// A digest of what task `t` would run: command, check, env and cwd. A marker stores it, so
    /// a later edit of the definition shows as `changed`. A shell command counts as it reads,
    /// with its values written in ([`ResolvedCommand::display`]): what the task means, not how
    /// plumb hands the values to the shell, so markers written before values moved out of the
    /// command text stay done when their values were plain words.
    pub fn fingerprint(&self, t: usize, root: &Path) -> String {
        fingerprint(&self.resolve(t, root, None))
    }
}

/// The fingerprint of a task resolved without attempt variables.
pub fn fingerprint(r: &ResolvedTask) -> String {
    let mut h = Sha256::new();
    let mut feed = |label: &str, s: &str| {
        h.update(label.as_bytes());
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    match &r.command {
        Some(ResolvedCommand::Shell(s)) => feed("sh", &s.display),
        Some(ResolvedCommand::Argv(v)) => v.iter().for_each(|a| feed("argv", a)),
        None => feed("external", ""),
    }
    match &r.check {
        Some(ResolvedCommand::Shell(s)) => feed("check-sh", &s.display),
        Some(ResolvedCommand::Argv(v)) => v.iter().for_each(|a| feed("check-argv", a)),
        None => {}
    }
    for (k, v) in &r.env {
        feed("env", k);
        feed("=", v);
    }
    feed("cwd", &r.cwd.to_string_lossy());
    let digest = h.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in &digest[..16] {
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
        };
        assert_eq!(fingerprint(&r), "9e38537810e0f3447ca1f174b7d04b11");
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
