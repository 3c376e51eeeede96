//! `plumb metrics PIPELINE [TASK] [--name NAME] [--limit N] [--json]`: what tasks measured.
//!
//! For each task and metric (what it wrote to `PLUMB_METRICS`, and `duration_s`), its last
//! values one per successful attempt, a sparkline of them, and the median and band the next
//! value will be compared with: from the values within the expectation's `window` (28 days
//! without one), with its `sensitivity` and `min_change` (the defaults without one), as
//! [`crate::watch::judge`] will compare it.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::exit;
use crate::pipeline::Pipeline;
use crate::project::Locator;
use crate::state::MetricRow;
use crate::watch::{self, Anomaly, Expectation, stats};

pub struct Args<'a> {
    pub pipeline: &'a str,
    pub task: Option<&'a str>,
    pub name: Option<&'a str>,
    pub limit: usize,
    pub json: bool,
}

pub fn run(locator: &Locator, args: &Args<'_>) -> Result<i32> {
    let (project, pipeline) = locator.load(args.pipeline)?;
    let only: Option<Vec<&str>> = match args.task {
        None => None,
        Some(t) => Some(
            super::task_ids(&pipeline, &[t.to_string()])?
                .into_iter()
                .map(|i| pipeline.tasks[i].id.as_str())
                .collect(),
        ),
    };
    if let Some(n) = args.name
        && !watch::metrics::is_metric_name(n)
    {
        return Err(Error::usage(format!(
            "`{n}` is not a metric name: lowercase letters, digits and _, not starting with a digit"
        )));
    }
    let state = project.open_state()?;
    let one_task = only.as_ref().filter(|o| o.len() == 1).map(|o| o[0]);
    let rows = state.metric_rows(&pipeline.name, one_task, args.name)?;
    let series = group(&pipeline, rows, only.as_deref());
    if args.json {
        let shown: Vec<&MetricRow> = series.iter().flat_map(|s| last(&s.rows, args.limit)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).expect("metric rows serialize")
        );
        return Ok(exit::SUCCESS);
    }
    if series.is_empty() {
        println!(
            "no metrics recorded for {}{}",
            pipeline.name,
            match args.task {
                Some(t) => format!(" {t}"),
                None => String::new(),
            }
        );
        return Ok(exit::SUCCESS);
    }
    let now = chrono::Utc::now();
    let mut out = String::new();
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render(&mut out, &pipeline, s, args.limit, now);
    }
    print!("{out}");
    Ok(exit::SUCCESS)
}

/// One task's values of one metric, oldest first.
struct Series {
    task: String,
    name: String,
    rows: Vec<MetricRow>,
}

/// Rows by task (in the pipeline's order; tasks it no longer has after, by name) and metric
/// (in the order first recorded, `duration_s` last).
fn group(pipeline: &Pipeline, rows: Vec<MetricRow>, only: Option<&[&str]>) -> Vec<Series> {
    let mut at: HashMap<(String, String), usize> = HashMap::new();
    let mut series: Vec<Series> = Vec::new();
    for row in rows {
        if only.is_some_and(|o| !o.contains(&row.task.as_str())) {
            continue;
        }
        let key = (row.task.clone(), row.name.clone());
        let i = *at.entry(key).or_insert_with(|| {
            series.push(Series {
                task: row.task.clone(),
                name: row.name.clone(),
                rows: Vec::new(),
            });
            series.len() - 1
        });
        series[i].rows.push(row);
    }
    let order = |task: &str| pipeline.index.get(task).copied().unwrap_or(usize::MAX);
    // Stable: within a task, the order first recorded stays.
    series.sort_by(|a, b| {
        (order(&a.task), &a.task, a.name == watch::metrics::DURATION).cmp(&(
            order(&b.task),
            &b.task,
            b.name == watch::metrics::DURATION,
        ))
    });
    series
}

fn last<T>(v: &[T], n: usize) -> &[T] {
    &v[v.len().saturating_sub(n)..]
}

/// The expectation the task holds this metric to, if any.
fn expectation<'p>(pipeline: &'p Pipeline, task: &str, name: &str) -> Option<&'p Expectation> {
    let t = *pipeline.index.get(task)?;
    pipeline.def(t).expect.iter().find(|e| e.name == name)
}

fn render(
    out: &mut String,
    pipeline: &Pipeline,
    s: &Series,
    limit: usize,
    now: chrono::DateTime<chrono::Utc>,
) {
    let shown = last(&s.rows, limit);
    let values: Vec<f64> = shown.iter().map(|r| r.value).collect();
    let _ = writeln!(
        out,
        "{} {}: {} value{}{}",
        s.task,
        s.name,
        s.rows.len(),
        if s.rows.len() == 1 { "" } else { "s" },
        if shown.len() < s.rows.len() {
            format!(", the last {} shown", shown.len())
        } else {
            String::new()
        }
    );
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let _ = writeln!(
        out,
        "  {}  {}..{}",
        sparkline(&values),
        watch::num(lo),
        watch::num(hi)
    );
    let _ = writeln!(out, "  {}", judged_by(pipeline, s, now));
    let width = shown.iter().map(|r| r.instance.len()).max().unwrap_or(0).max(8);
    for r in shown {
        let instance = if r.instance.is_empty() {
            "-"
        } else {
            r.instance.as_str()
        };
        let _ = writeln!(
            out,
            "  {}  {}  {instance:<width$}  {}",
            crate::timefmt::stored(&r.recorded_at, pipeline.timezone),
            r.run_id,
            watch::num(r.value)
        );
    }
}

/// What the next value is compared with, in words: the median and band from the values within
/// the window, and under which settings.
fn judged_by(pipeline: &Pipeline, s: &Series, now: chrono::DateTime<chrono::Utc>) -> String {
    let e = expectation(pipeline, &s.task, &s.name);
    let (window, min_history, sensitivity, min_change) = match e {
        Some(e) => (e.window, e.min_history, e.sensitivity, e.min_change),
        None => (
            watch::DEFAULT_WINDOW,
            watch::DEFAULT_MIN_HISTORY,
            watch::DEFAULT_SENSITIVITY,
            watch::DEFAULT_MIN_CHANGE,
        ),
    };
    let since = chrono::Duration::from_std(window)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let past: Vec<f64> = s
        .rows
        .iter()
        .filter(|r| r.recorded_at >= since)
        .map(|r| r.value)
        .collect();
    let test = match e {
        Some(e) if e.anomaly != Anomaly::Off => format!(
            "anomaly = \"{}\"",
            if e.anomaly == Anomaly::Warn {
                "warn"
            } else {
                "error"
            }
        ),
        _ => "no anomaly test; at the defaults".to_string(),
    };
    let within = format!(
        "{} value{} within {}",
        past.len(),
        if past.len() == 1 { "" } else { "s" },
        watch::window(window)
    );
    let Some(c) = past.first().and_then(|&x| stats::compare(x, &past)) else {
        return format!(
            "next value: no past values within {} ({test})",
            watch::window(window)
        );
    };
    let (lo, hi) = c.band(sensitivity, min_change);
    let waits = if past.len() < min_history as usize {
        format!("; compared once there are {min_history}")
    } else {
        String::new()
    };
    format!(
        "median {}, band {}..{} ({test}: {within}, sensitivity {}, min_change {}%{waits})",
        watch::num(c.median),
        watch::num(lo),
        watch::num(hi),
        watch::num(sensitivity),
        watch::num(min_change * 100.0)
    )
}

/// One block character per value, from ▁ (the smallest shown) to █ (the largest).
fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|&v| {
            if hi > lo {
                BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize]
            } else {
                BARS[3]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_span_the_values_shown() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[10.0, 0.0, 5.0]), "█▁▅");
        assert_eq!(sparkline(&[3.0, 3.0]), "▄▄");
        assert_eq!(sparkline(&[]), "");
    }
}
