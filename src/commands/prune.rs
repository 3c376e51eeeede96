//! `plumb prune --older-than AGE [--dry-run]`: forget history older than AGE (DESIGN 8).
//!
//! Runs that ended longer ago go, with their attempts, metrics and log directories, except:
//! the latest run of each instance (what `status` and `logs` show), every run a current marker
//! names, and, for a pipeline with `anomaly` expectations, every run within the longest of
//! their `window`s (the history the next comparison needs). Markers are never touched.
//!
//! The rows go in one transaction; the log directories after it commits. A prune killed
//! between the two leaves directories whose runs are gone, and the next prune removes those
//! too (a directory named after a run id older than AGE with no run recorded).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::exit;
use crate::pipeline::Pipeline;
use crate::project::{Locator, Project, display_path};
use crate::state::State;
use crate::watch::Anomaly;

pub fn run(locator: &Locator, older_than: Duration, dry_run: bool) -> Result<i32> {
    let project = locator.project()?;
    let state = project.open_state()?;
    let now = Utc::now();
    let cutoff = before(now, older_than);
    let keep_for = metric_windows(&project);
    let logs = project.state_dir.join("logs");

    let mut doomed = Vec::new();
    let mut kept_for_history = 0usize;
    for r in state.old_runs(&stamp(cutoff))? {
        let protected = keep_for
            .iter()
            .find(|(p, _)| *p == r.pipeline)
            .is_some_and(|(_, w)| r.ended_at >= stamp(before(now, *w)));
        if protected {
            kept_for_history += 1;
        } else {
            doomed.push(r);
        }
    }
    let orphans = orphan_dirs(&state, &logs, cutoff)?;

    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut bytes = 0u64;
    let mut lines = Vec::new();
    let mut zones = crate::timefmt::Zones::new(&project);
    for r in &doomed {
        let dir = logs.join(&r.pipeline).join(&r.run_id);
        let size = dir_size(&dir);
        bytes += size;
        lines.push(format!(
            "  {}  {}{}  ended {}  {} attempt{}, {} metric value{}, {}",
            r.run_id,
            r.pipeline,
            if r.instance.is_empty() {
                String::new()
            } else {
                format!(" {}", r.instance)
            },
            crate::timefmt::stored(&r.ended_at, zones.of(&r.pipeline)),
            r.attempts,
            if r.attempts == 1 { "" } else { "s" },
            r.metrics,
            if r.metrics == 1 { "" } else { "s" },
            size_text(size)
        ));
    }
    for dir in &orphans {
        let size = dir_size(dir);
        bytes += size;
        lines.push(format!(
            "  {}  log directory of a run no longer recorded, {}",
            display_path(dir).display(),
            size_text(size)
        ));
    }
    if !dry_run {
        let ids: Vec<String> = doomed.iter().map(|r| r.run_id.clone()).collect();
        let mut state = state;
        if !ids.is_empty() {
            state.delete_runs(&ids)?;
        }
        for r in &doomed {
            // A run kept after all (it gained a marker meanwhile) keeps its logs.
            if !state.run_exists(&r.run_id)? {
                remove_dir(&logs.join(&r.pipeline).join(&r.run_id))?;
            }
        }
        for dir in &orphans {
            remove_dir(dir)?;
        }
    }
    let attempts: u64 = doomed.iter().map(|r| r.attempts).sum();
    let metrics: u64 = doomed.iter().map(|r| r.metrics).sum();
    println!(
        "{verb} {} run{} that ended before {} ({attempts} attempt{}, {metrics} metric value{}, {} of logs){}",
        doomed.len(),
        if doomed.len() == 1 { "" } else { "s" },
        // One moment for every pipeline, whatever their zones: in UTC, which its offset says.
        crate::timefmt::at(cutoff, chrono_tz::Tz::UTC),
        if attempts == 1 { "" } else { "s" },
        if metrics == 1 { "" } else { "s" },
        size_text(bytes),
        if orphans.is_empty() {
            String::new()
        } else {
            format!(
                ", and {} log director{} of runs no longer recorded",
                orphans.len(),
                if orphans.len() == 1 { "y" } else { "ies" }
            )
        }
    );
    for l in lines {
        println!("{l}");
    }
    if kept_for_history > 0 {
        println!(
            "kept {kept_for_history} older run{} within an anomaly expectation's window",
            if kept_for_history == 1 { "" } else { "s" }
        );
    }
    Ok(exit::SUCCESS)
}

fn before(now: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|a| now.checked_sub_signed(a))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A time as the state writes it, so that the two compare as text.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// For each pipeline with `anomaly` expectations, the longest of their windows. A pipeline
/// that does not load keeps the default window: its expectations cannot be read, so its
/// history is kept as if it had them.
fn metric_windows(project: &Project) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    for path in project.pipelines() {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let window = match Pipeline::load(&path, &display_path(&path), &project.config) {
            Ok(p) => p
                .defs
                .iter()
                .flat_map(|d| &d.expect)
                .filter(|e| e.anomaly != Anomaly::Off)
                .map(|e| e.window)
                .max(),
            Err(_) => Some(crate::watch::DEFAULT_WINDOW),
        };
        if let Some(w) = window {
            out.push((name, w));
        }
    }
    out
}

/// Log directories `logs/PIPELINE/RUN_ID` named after a run that started before `cutoff` and
/// is not recorded: left by a prune that was killed before it removed them.
fn orphan_dirs(state: &State, logs: &Path, cutoff: DateTime<Utc>) -> Result<Vec<PathBuf>> {
    let older = cutoff.format("%Y%m%dT%H%M%SZ").to_string();
    let mut out = Vec::new();
    let Ok(pipelines) = std::fs::read_dir(logs) else {
        return Ok(out);
    };
    for p in pipelines.flatten() {
        let Ok(runs) = std::fs::read_dir(p.path()) else {
            continue;
        };
        for r in runs.flatten() {
            let name = r.file_name().to_string_lossy().into_owned();
            let stamp = name.get(..16).unwrap_or("");
            let looks_like_a_run = stamp.len() == 16
                && chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").is_ok()
                && r.file_type().is_ok_and(|t| t.is_dir());
            if looks_like_a_run && *stamp < *older.as_str() && !state.run_exists(&name)? {
                out.push(r.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io(format!("cannot remove {}: {e}", dir.display()))),
    }
    // The pipeline's directory goes with its last run.
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

fn size_text(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
    }
}
