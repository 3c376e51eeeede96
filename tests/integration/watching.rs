//! Watching the data (DESIGN 7): what tasks write to PLUMB_METRICS is stored with their
//! successful attempts, and held to their expectations: bounds, and the task's own past.

use crate::support::*;

/// The run ids of a project's runs, oldest first.
fn run_ids(p: &Project) -> Vec<String> {
    let db = p.db();
    let mut stmt = db.prepare("SELECT run_id FROM runs ORDER BY rowid").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// `text` with what changes from run to run written as placeholders: each run id as RUN, each
/// duration (`0.0s`, `12s`, `1m05s`) as DUR, each clock time at a line's start as HH:MM:SS.
fn masked(text: &str, runs: &[String]) -> String {
    let mut s = text.to_string();
    for r in runs {
        s = s.replace(r.as_str(), "RUN");
    }
    let lines: Vec<String> = s
        .lines()
        .map(|l| {
            let l = match l.get(..8) {
                Some(t) if t.as_bytes()[2] == b':' && t.as_bytes()[5] == b':' => {
                    format!("HH:MM:SS{}", &l[8..])
                }
                _ => l.to_string(),
            };
            l.split(' ')
                .map(|w| {
                    let (pre, core, post) = trim_punct(w);
                    if is_duration(core) {
                        format!("{pre}DUR{post}")
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    lines.join("\n") + if s.ends_with('\n') { "\n" } else { "" }
}

fn trim_punct(w: &str) -> (&str, &str, &str) {
    let start = w.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
    let end = w.rfind('s').map_or(w.len(), |i| i + 1);
    if start < end {
        (&w[..start], &w[start..end], &w[end..])
    } else {
        ("", w, "")
    }
}

fn is_duration(w: &str) -> bool {
    let Some(body) = w.strip_suffix('s') else {
        return false;
    };
    !body.is_empty()
        && body.chars().next().is_some_and(|c| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == 'm' || c == 'h')
}

/// A log's text after plumb's header line (`# plumb: TASK attempt ...`).
fn log_body(p: &Project, pipeline: &str, run: &str, file: &str) -> String {
    let log = p.read(&format!("state/logs/{pipeline}/{run}/{file}"));
    assert!(log.starts_with("# plumb: "), "{log}");
    log.split_once('\n')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

#[test]
fn what_a_task_writes_to_plumb_metrics_is_stored_with_its_success() {
    let p = Project::new();
    p.pipeline(
        "m",
        "[tasks.load]\ncommand = 'echo rows 10450 >> \"$PLUMB_METRICS\"; printf \"# a comment\\n\\nbytes 5.2e9\\nrows 10451\\n\" >> \"$PLUMB_METRICS\"'\n\
         [tasks.quiet]\ncommand = 'true'\n",
    );
    let out = p.plumb(&["run", "m"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let run = &run_ids(&p)[0];
    // The file is beside the attempt's log, named after it.
    assert_eq!(
        p.read(&format!("state/logs/m/{run}/load.1.metrics")),
        "rows 10450\n# a comment\n\nbytes 5.2e9\nrows 10451\n"
    );
    let db = p.db();
    let mut stmt = db
        .prepare("SELECT task, name, value, run_id, instance FROM metrics ORDER BY name")
        .unwrap();
    let rows: Vec<(String, String, f64, String, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            ("load".into(), "bytes".into(), 5.2e9, run.clone(), String::new()),
            ("load".into(), "rows".into(), 10451.0, run.clone(), String::new()),
        ],
        "the last value of a repeated name counts"
    );
    assert_eq!(
        p.count("SELECT COUNT(*) FROM attempts WHERE duration_s IS NULL OR duration_s < 0"),
        0,
        "every attempt has its duration"
    );
    assert_eq!(
        log_body(&p, "m", run, "load.1.log"),
        "$ echo rows 10450 >> \"$PLUMB_METRICS\"; printf \"# a comment\\n\\nbytes 5.2e9\\nrows 10451\\n\" >> \"$PLUMB_METRICS\"\n\
         plumb: metrics: rows 10451, bytes 5200000000\n"
    );
    assert!(
        !p.exists(&format!("state/logs/m/{run}/quiet.1.log")),
        "a silent task still leaves no log"
    );
}

#[test]
fn a_malformed_metric_fails_the_attempt_naming_its_line() {
    let p = Project::new();
    p.pipeline(
        "m",
        "[tasks.load]\ncommand = 'printf \"rows 1\\nrows ten\\n\" >> \"$PLUMB_METRICS\"'\n\
         [tasks.report]\ncommand = 'true'\nrequires = ['load']\n",
    );
    let out = p.plumb(&["run", "m"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let runs = run_ids(&p);
    let why = "PLUMB_METRICS line 2 \"rows ten\": the value is not a number";
    let log = "state/logs/m/RUN/load.1.log";
    assert_eq!(
        masked(&out.stdout, &runs),
        format!(
            "HH:MM:SS run RUN: m: 2 to run, 0 done before, {workers} worker{s}\n\
             HH:MM:SS start   load\n\
             HH:MM:SS FAILED  load: {why} (DUR); log: {log}\n\
             HH:MM:SS blocked 1 task that require load\n\
             \n\
             m: FAILED in DUR (run RUN)\n  \
               2 tasks: 1 failed, 1 blocked\n\
             failed:\n  \
               load: {why} after 1 attempt\n    \
                 log: {log}\n    \
                 | # plumb: load attempt 1/1, run RUN, {time}\n    \
                 | $ printf \"rows 1\\nrows ten\\n\" >> \"$PLUMB_METRICS\"\n    \
                 | plumb: {why}; the task stays undone\n\
             blocked (not started because a task they require failed):\n  \
               report  <- load\n\
             resume with:\n  \
               plumb -C {root} run m\n",
            workers = workers(),
            s = if workers() == 1 { "" } else { "s" },
            time = log_time(&p.read(&log.replace("RUN", &runs[0]))),
            root = p.path().display(),
        )
    );
    assert_eq!(
        p.count("SELECT COUNT(*) FROM metrics"),
        0,
        "nothing of a failed attempt is kept"
    );
    assert_eq!(p.markers("m"), Vec::<String>::new());
}

/// The number of CPUs, as plumb counts its default workers.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The time in a log's header line.
fn log_time(log: &str) -> String {
    log.lines()
        .next()
        .and_then(|l| l.rsplit(", ").next())
        .unwrap_or("")
        .to_string()
}
