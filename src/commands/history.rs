//! `plumb history [PIPELINE]`: past runs, newest first.

use crate::error::Result;
use crate::exit;
use crate::project::Locator;

pub fn run(locator: &Locator, pipeline: Option<&str>, limit: usize, json: bool) -> Result<i32> {
    let (project, name) = match pipeline {
        Some(p) => {
            let (project, pipeline) = locator.load(p)?;
            (project, Some(pipeline.name))
        }
        None => (locator.project()?, None),
    };
    let state = project.open_state()?;
    let runs = state.history(name.as_deref(), limit)?;
    let mut zones = crate::timefmt::Zones::new(&project);
    if json {
        println!("{}", serde_json::to_string_pretty(&runs).expect("runs serialize"));
        return Ok(exit::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs recorded yet");
        return Ok(exit::SUCCESS);
    }
    println!(
        "{:<24}  {:<28}  {:<26}  {:>8}  {:<11}  counts",
        "run", "instance", "started", "duration", "outcome"
    );
    for r in runs {
        let duration = match (&r.ended_at, chrono::DateTime::parse_from_rfc3339(&r.started_at)) {
            (Some(e), Ok(s)) => chrono::DateTime::parse_from_rfc3339(e)
                .ok()
                .and_then(|e| (e - s).to_std().ok())
                .map(crate::duration::human)
                .unwrap_or_default(),
            _ => "-".into(),
        };
        let counts = match r.counts.as_object() {
            Some(m) => m
                .iter()
                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            None => String::new(),
        };
        let instance = if r.instance.is_empty() {
            r.pipeline.clone()
        } else {
            format!("{} {}", r.pipeline, r.instance)
        };
        let started = crate::timefmt::stored(&r.started_at, zones.of(&r.pipeline));
        println!(
            "{:<24}  {:<28}  {:<26}  {:>8}  {:<11}  {counts}",
            r.run_id, instance, started, duration, r.outcome
        );
    }
    Ok(exit::SUCCESS)
}
