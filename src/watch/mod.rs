//! Watching the data (DESIGN 7): what tasks measure, and whether it looks right.
//!
//! Every attempt gets `PLUMB_METRICS`, a file beside its log to which the task writes
//! `NAME VALUE` lines ([`metrics`]). When the command, its outputs and its `check` have
//! succeeded, [`judge`] reads the file and holds each value to the task's expectations: hard
//! bounds (`min`, `max`) and, with `anomaly`, the task's own past values ([`stats`]). A failed
//! `error` expectation fails the attempt before its marker, as a failed `check` does; a failed
//! `warn` expectation leaves it a success and says so.
//!
//! Judging is pure given the past values, which the runner reads from the state once, when a
//! run starts ([`Check::past`]): the attempt itself never touches storage.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::attempt::AttemptResult;
use crate::state::AttemptState;

pub mod deadline;
pub mod metrics;
pub mod stats;

/// What to do with a value far from the task's past values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Anomaly {
    Off,
    Warn,
    Error,
}

/// One `[tasks.X.expect.NAME]`, checked, with defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    pub name: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub anomaly: Anomaly,
    /// Past values count when their attempt ended at most this long before the run started.
    pub window: Duration,
    pub min_history: u32,
    pub sensitivity: f64,
    /// A fraction: 0.2 for `"20%"`.
    pub min_change: f64,
}

/// Defaults of DESIGN 7.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(28 * 86400);
pub const DEFAULT_MIN_HISTORY: u32 = 7;
pub const DEFAULT_SENSITIVITY: f64 = 3.5;
pub const DEFAULT_MIN_CHANGE: f64 = 0.2;

/// An expectation with the values it is compared against.
#[derive(Debug, Clone)]
pub struct Check {
    pub expect: Expectation,
    /// The task's successful past values within the window, any instance (empty unless
    /// `anomaly` is on).
    pub past: Vec<f64>,
}

/// Each task's checks, by task index; a task without expectations is absent.
pub type Checks = rustc_hash::FxHashMap<usize, std::sync::Arc<[Check]>>;

/// A number as messages show it: whole numbers whole (`10450`, not `10450.0`), others with
/// at most four decimals, very large or small ones in exponent form.
pub fn num(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    if x.abs() >= 1e15 || x.abs() < 1e-4 {
        return format!("{x:e}");
    }
    let s = format!("{x:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A window as people write it: `28d`, `12h`, `90m`.
pub fn window(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if d.subsec_nanos() != 0 || s == 0 => humantime::format_duration(d).to_string(),
        _ if s.is_multiple_of(86400) => format!("{}d", s / 86400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A score as messages show it: its size with one decimal (the sign is plain from the value
/// and the median), `inf` when the past values do not vary at all.
fn score(z: f64) -> String {
    if z.is_infinite() {
        "inf".into()
    } else {
        format!("{:.1}", z.abs())
    }
}

/// What an expectation found, when it found something.
enum Finding {
    /// Outside the bounds, or not written at all: always fails the attempt.
    Bound(String),
    /// Far from the past, with what `anomaly` says to do about it.
    Anomaly(Anomaly, String),
}

/// Hold a successful attempt's metrics to its task's expectations, writing what is decided to
/// the attempt's log (`note`). The metrics file that cannot be read, an expectation on a
/// metric not written, a value out of bounds or an anomaly with `anomaly = "error"` fails the
/// attempt; an anomaly with `"warn"` adds a warning.
pub fn judge(path: &Path, checks: &[Check], result: &mut AttemptResult, note: &dyn Fn(&str)) {
    let written = match metrics::read(path) {
        Ok(m) => m,
        Err(e) => {
            note(&format!("{e}; the task stays undone"));
            result.state = AttemptState::Failed;
            result.error = Some(e);
            return;
        }
    };
    if !written.is_empty() {
        let shown: Vec<String> = written.iter().map(|(k, v)| format!("{k} {}", num(*v))).collect();
        note(&format!("metrics: {}", shown.join(", ")));
    }
    let mut errors = Vec::new();
    for check in checks {
        let e = &check.expect;
        let value = if e.name == metrics::DURATION {
            Some(result.duration.as_secs_f64())
        } else {
            written.iter().find(|(k, _)| *k == e.name).map(|(_, v)| *v)
        };
        for finding in findings(check, value, note) {
            match finding {
                Finding::Bound(m) | Finding::Anomaly(Anomaly::Error, m) => {
                    note(&format!("{m}; the task stays undone"));
                    errors.push(m);
                }
                Finding::Anomaly(_, m) => {
                    note(&format!("warning: {m}"));
                    result.warnings.push(m);
                }
            }
        }
    }
    result.metrics = written;
    if !errors.is_empty() {
        result.state = AttemptState::Failed;
        result.error = Some(errors.join("; "));
    }
}

/// What one expectation finds about `value` (`None`: the metric was not written).
fn findings(check: &Check, value: Option<f64>, note: &dyn Fn(&str)) -> Vec<Finding> {
    let e = &check.expect;
    let name = &e.name;
    let Some(value) = value else {
        return vec![Finding::Bound(format!(
            "{name} was not recorded: the task wrote no \"{name} VALUE\" line to $PLUMB_METRICS"
        ))];
    };
    let mut out = Vec::new();
    let v = num(value);
    if let Some(min) = e.min.filter(|&m| value < m) {
        out.push(Finding::Bound(format!("{name} = {v} is below min {}", num(min))));
    }
    if let Some(max) = e.max.filter(|&m| value > m) {
        out.push(Finding::Bound(format!("{name} = {v} is above max {}", num(max))));
    }
    if e.anomaly == Anomaly::Off {
        return out;
    }
    let n = check.past.len();
    if n < e.min_history as usize || n == 0 {
        note(&format!(
            "{name} = {v}: anomaly check skipped: {n} past value{} within {}, min_history is {}",
            if n == 1 { "" } else { "s" },
            window(e.window),
            e.min_history
        ));
        return out;
    }
    let c = stats::compare(value, &check.past).expect("the past is not empty");
    let words = format!(
        "{name} = {v}: median of the last {n} run{} is {} (z {})",
        if n == 1 { "" } else { "s" },
        num(c.median),
        score(c.score)
    );
    if c.is_anomaly(e.sensitivity, e.min_change) {
        out.push(Finding::Anomaly(e.anomaly, words));
    } else {
        let (lo, hi) = c.band(e.sensitivity, e.min_change);
        note(&format!("{words}: as expected (within {}..{})", num(lo), num(hi)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn expect(name: &str) -> Expectation {
        Expectation {
            name: name.into(),
            min: None,
            max: None,
            anomaly: Anomaly::Off,
            window: DEFAULT_WINDOW,
            min_history: DEFAULT_MIN_HISTORY,
            sensitivity: DEFAULT_SENSITIVITY,
            min_change: DEFAULT_MIN_CHANGE,
        }
    }

    fn success() -> AttemptResult {
        AttemptResult {
            state: AttemptState::Success,
            exit_code: Some(0),
            signal: None,
            duration: Duration::from_millis(1500),
            error: None,
            metrics: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Judge metrics `text` against `checks`: the result and the log's notes.
    fn judged(text: &str, checks: &[Check]) -> (AttemptResult, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        std::fs::write(&path, text).unwrap();
        let notes = RefCell::new(Vec::new());
        let mut r = success();
        judge(&path, checks, &mut r, &|t| notes.borrow_mut().push(t.to_string()));
        (r, notes.into_inner())
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(num(10450.0), "10450");
        assert_eq!(num(-3.0), "-3");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(1.0 / 3.0), "0.3333");
        assert_eq!(num(5.2e9), "5200000000");
        assert_eq!(num(1e20), "1e20");
        assert_eq!(num(2e-7), "2e-7");
    }

    #[test]
    fn bounds_missing_metrics_and_anomalies_in_words() {
        let bounded = Check {
            expect: Expectation {
                min: Some(1.0),
                max: Some(1e9),
                ..expect("rows")
            },
            past: Vec::new(),
        };
        let (r, notes) = judged("rows 0\n", std::slice::from_ref(&bounded));
        assert_eq!(r.state, AttemptState::Failed);
        assert_eq!(r.error.as_deref(), Some("rows = 0 is below min 1"));
        assert_eq!(
            notes,
            [
                "metrics: rows 0",
                "rows = 0 is below min 1; the task stays undone"
            ]
        );
        let (r, _) = judged("rows 2e9\n", std::slice::from_ref(&bounded));
        assert_eq!(
            r.error.as_deref(),
            Some("rows = 2000000000 is above max 1000000000")
        );
        let (r, notes) = judged("", std::slice::from_ref(&bounded));
        let missing = "rows was not recorded: the task wrote no \"rows VALUE\" line to $PLUMB_METRICS";
        assert_eq!(r.error.as_deref(), Some(missing));
        assert_eq!(notes, [format!("{missing}; the task stays undone")]);

        let watched = |anomaly| Check {
            expect: Expectation {
                anomaly,
                min_history: 3,
                ..expect("rows")
            },
            past: vec![10000.0, 10400.0, 10450.0, 10500.0, 10900.0],
        };
        let (r, notes) = judged("rows 12\n", &[watched(Anomaly::Error)]);
        // Median 10450, MAD 50: (12 - 10450) / 74.13 = -140.8.
        let words = "rows = 12: median of the last 5 runs is 10450 (z 140.8)";
        assert_eq!(r.error.as_deref(), Some(words));
        assert_eq!(notes[1], format!("{words}; the task stays undone"));
        let (r, notes) = judged("rows 12\n", &[watched(Anomaly::Warn)]);
        assert_eq!(
            (r.state, r.warnings.as_slice()),
            (AttemptState::Success, [words.to_string()].as_slice())
        );
        assert_eq!(notes[1], format!("warning: {words}"));
        assert_eq!(r.metrics, [("rows".to_string(), 12.0)]);
        let (r, notes) = judged("rows 10420\n", &[watched(Anomaly::Error)]);
        assert_eq!(r.state, AttemptState::Success);
        assert_eq!(
            notes[1],
            "rows = 10420: median of the last 5 runs is 10450 (z 0.4): as expected (within 8360..12540)"
        );

        let young = Check {
            past: vec![1.0, 2.0],
            ..watched(Anomaly::Error)
        };
        let (r, notes) = judged("rows 12\n", &[young]);
        assert_eq!(r.state, AttemptState::Success);
        assert_eq!(
            notes[1],
            "rows = 12: anomaly check skipped: 2 past values within 28d, min_history is 3"
        );
    }

    #[test]
    fn duration_is_measured_not_written_and_a_bad_file_fails() {
        let slow = Check {
            expect: Expectation {
                max: Some(1.0),
                ..expect("duration_s")
            },
            past: Vec::new(),
        };
        let (r, _) = judged("", &[slow]);
        assert_eq!(r.error.as_deref(), Some("duration_s = 1.5 is above max 1"));
        let (r, notes) = judged("rows x\n", &[]);
        assert_eq!(r.state, AttemptState::Failed);
        let why = "PLUMB_METRICS line 1 \"rows x\": the value is not a number";
        assert_eq!(r.error.as_deref(), Some(why));
        assert_eq!(notes, [format!("{why}; the task stays undone")]);
    }
}
