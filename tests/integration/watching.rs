//! Watching the data (DESIGN 7): what tasks write to PLUMB_METRICS is stored with their
//! successful attempts, and held to their expectations: bounds, and the task's own past.

use crate::smtp::MailServer;
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
/// duration (`0.0s`, `12s`, `1m05s`) as DUR, each clock time at a line's start as HH:MM:SS (its offset stays).
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
            "HH:MM:SS +00:00 run RUN: m: 2 to run, 0 done before, {workers} worker{s}\n\
             HH:MM:SS +00:00 start   load\n\
             HH:MM:SS +00:00 FAILED  load: {why} (DUR); log: {log}\n\
             HH:MM:SS +00:00 blocked 1 task that require load\n\
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

/// `plumb ARGS` in `p`, sending mail to the server on `port`.
fn with_smtp(p: &Project, port: u16, args: &[&str]) -> Output {
    let mut c = p.cmd(args);
    c.env("PLUMB_SMTP_URL", format!("smtp://127.0.0.1:{port}"))
        .env("PLUMB_ALERT_FROM", "plumb@test.example");
    run(c)
}

/// A pipeline whose `load` records `rows` from rows.txt, one instance per `day`, with
/// `EXPECT` as its expectation of rows, and a `report` that requires it.
const LOADER: &str = "[params]\nday = { type = 'date', default = '2026-12-01' }\n\
    [alerts]\nemail = ['oncall@example.com']\n\
    [tasks.load]\ncommand = 'echo rows $(cat rows.txt) >> \"$PLUMB_METRICS\"'\nretries = 1\nretry_delay = '50ms'\n\
    [tasks.load.expect.rows]\nEXPECT\n\
    [tasks.report]\ncommand = 'true'\nrequires = ['load']\n";

fn loader(p: &Project, expect: &str) {
    p.pipeline("etl", &LOADER.replace("EXPECT", expect));
}

/// Run instances day=2026-11-01, -02, ... with these values of rows, each a success.
fn history(p: &Project, values: &[&str]) {
    for (i, v) in values.iter().enumerate() {
        p.file("rows.txt", v);
        let out = p.plumb(&["run", "etl", "-p", &format!("day=2026-11-{:02}", i + 1)]);
        assert_eq!(out.code, 0, "{}", out.all());
    }
}

/// The part of a summary from its verdict line on.
fn summary(stdout: &str) -> &str {
    stdout.split_once("\n\n").map_or("", |(_, s)| s)
}

/// Seven past values with median 10450 and MAD 150 (spread 1.4826 × 150 = 222.39).
const PAST: &[&str] = &["10000", "10400", "10450", "10500", "10900", "10300", "10600"];

#[test]
fn a_value_out_of_bounds_fails_the_attempt_retries_and_blocks_its_dependents() {
    let p = Project::new();
    loader(&p, "min = 1\nmax = 1e9");
    p.file("rows.txt", "0");
    let out = p.plumb(&["run", "etl"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let runs = run_ids(&p);
    let why = "rows = 0 is below min 1";
    assert_eq!(
        masked(summary(&out.stdout), &runs),
        format!(
            "etl day=2026-12-01: FAILED in DUR (run RUN)\n  \
               2 tasks: 1 failed, 1 blocked\n\
             failed:\n  \
               load: {why} after 2 attempts\n    \
                 log: state/logs/etl/RUN/load.2.log\n    \
                 | # plumb: load attempt 2/2, run RUN, {time}\n    \
                 | $ echo rows $(cat rows.txt) >> \"$PLUMB_METRICS\"\n    \
                 | plumb: metrics: rows 0\n    \
                 | plumb: {why}; the task stays undone\n\
             blocked (not started because a task they require failed):\n  \
               report  <- load\n\
             resume with:\n  \
               plumb -C {root} run etl -p day=2026-12-01\n",
            time = log_time(&p.read(&format!("state/logs/etl/{}/load.2.log", runs[0]))),
            root = p.path().display(),
        )
    );
    assert!(
        out.stdout.contains(&format!("retry   load: {why} (")),
        "retried per the policy: {}",
        out.stdout
    );
    let status = p.plumb(&["status", "etl"]).stdout;
    assert!(status.contains(&format!("\n    error: {why}\n")), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&p.plumb(&["status", "etl", "--json"]).stdout).unwrap();
    assert_eq!(json["tasks"][0]["error"], why);
    assert_eq!(json["tasks"][1]["state"], "blocked");

    p.file("rows.txt", "2000000000");
    let out = p.plumb(&["run", "etl"]);
    assert!(
        out.stdout
            .contains("  load: rows = 2000000000 is above max 1000000000 after 2 attempts\n"),
        "{}",
        out.stdout
    );
    p.file("rows.txt", "10450");
    let out = p.plumb(&["run", "etl"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("done    load (") && out.stdout.contains("; rows 10450)\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_expected_metric_the_task_did_not_write_fails_it() {
    let p = Project::new();
    p.pipeline(
        "etl",
        &LOADER
            .replace("EXPECT", "min = 1")
            .replace("echo rows $(cat rows.txt) >> \"$PLUMB_METRICS\"", "echo nothing"),
    );
    let out = p.plumb(&["run", "etl"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains(
            "\n  load: rows was not recorded: the task wrote no \"rows VALUE\" line to $PLUMB_METRICS after 2 attempts\n"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn an_anomaly_with_error_fails_the_attempt_and_the_failure_email_says_why() {
    let server = MailServer::start();
    let p = Project::new();
    loader(&p, "min = 1\nanomaly = 'error'");
    history(&p, PAST);
    p.file("rows.txt", "12");
    let out = with_smtp(&p, server.port, &["run", "etl"]);
    assert_eq!(out.code, 1, "{}", out.all());
    // |12 - 10450| / 222.39 = 46.94.
    let why = "rows = 12: median of the last 7 runs is 10450 (z 46.9)";
    assert!(
        out.stdout
            .contains(&format!("\n  load: {why} after 2 attempts\n")),
        "{}",
        out.stdout
    );
    let mails = server.wait_for(1, std::time::Duration::from_secs(10));
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(
        mails[0].subject(),
        "[plumb] etl day=2026-12-01 FAILED: 1 failed, 1 blocked"
    );
    let runs = run_ids(&p);
    let body = masked(&mails[0].body(), &runs);
    assert!(
        body.contains(&format!(
            "\nFAILED TASKS\n\nload: {why} after 2 attempts, DUR\n  log: {}/state/logs/etl/RUN/load.2.log\n",
            p.path().display()
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("  | plumb: {why}; the task stays undone\n")),
        "{body}"
    );
    // The log says it, and the failed value is not part of the task's history.
    let logs = p.plumb(&["logs", "etl", "load"]);
    assert_eq!(
        logs.stdout.lines().skip(1).collect::<Vec<_>>(),
        [
            "$ echo rows $(cat rows.txt) >> \"$PLUMB_METRICS\"",
            "plumb: metrics: rows 12",
            &format!("plumb: {why}; the task stays undone"),
        ]
    );
    assert_eq!(p.count("SELECT COUNT(*) FROM metrics"), 7);
    let json: serde_json::Value =
        serde_json::from_str(&p.plumb(&["status", "etl", "--json"]).stdout).unwrap();
    assert_eq!(json["tasks"][0]["error"], why);
    // A value like the others passes, and the log says how it compared.
    p.file("rows.txt", "10420");
    assert_eq!(p.plumb(&["run", "etl"]).code, 0);
    let runs = run_ids(&p);
    assert_eq!(
        log_body(&p, "etl", runs.last().unwrap(), "load.1.log"),
        "$ echo rows $(cat rows.txt) >> \"$PLUMB_METRICS\"\n\
         plumb: metrics: rows 10420\n\
         plumb: rows = 10420: median of the last 7 runs is 10450 (z 0.1): as expected (within 8360..12540)\n"
    );
}

#[test]
fn an_anomaly_with_warn_leaves_the_task_done_and_sends_one_alert_listing_every_warning() {
    let server = MailServer::start();
    let p = Project::new();
    p.pipeline(
        "etl",
        "[params]\nday = { type = 'date', default = '2026-12-01' }\n\
         [alerts]\nemail = ['oncall@example.com']\n\
         [tasks.load]\ncommand = 'echo rows $(cat rows.txt) >> \"$PLUMB_METRICS\"; echo bytes $(cat rows.txt)000 >> \"$PLUMB_METRICS\"'\n\
         [tasks.load.expect.rows]\nanomaly = 'warn'\n\
         [tasks.load.expect.bytes]\nanomaly = 'warn'\nmin_change = '50%'\n\
         [tasks.report]\ncommand = 'true'\nrequires = ['load']\n",
    );
    history(&p, PAST);
    p.file("rows.txt", "12");
    let out = with_smtp(&p, server.port, &["run", "etl"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let rows = "rows = 12: median of the last 7 runs is 10450 (z 46.9)";
    let bytes = "bytes = 12000: median of the last 7 runs is 10450000 (z 46.9)";
    let runs = run_ids(&p);
    assert_eq!(
        masked(summary(&out.stdout), &runs),
        format!(
            "etl day=2026-12-01: succeeded with 2 warnings in DUR (run RUN)\n  \
               2 tasks: 2 ran\n\
             warnings (the tasks are done):\n  \
               load: {rows}\n  \
               load: {bytes}\n"
        )
    );
    assert!(
        out.stdout.contains(&format!(" WARNING load: {rows}\n")),
        "{}",
        out.stdout
    );
    assert_eq!(p.markers("etl").len(), 2 * (PAST.len() + 1), "the tasks are done");
    // The run has exited and its alerts are marked sent: the server, which stores a message
    // before acknowledging it, holds all of them.
    assert_eq!(p.count("SELECT COUNT(*) FROM alerts WHERE status != 'sent'"), 0);
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "one anomaly alert per run: {mails:?}");
    assert_eq!(
        mails[0].subject(),
        "[plumb] etl day=2026-12-01 ANOMALY: 2 warnings (load)"
    );
    let body = mails[0].body();
    assert!(
        body.starts_with(
            "etl day=2026-12-01 ANOMALY: 2 values far from the past; the tasks are done\n\nhost:    "
        ),
        "{body}"
    );
    assert!(
        body.trim_end().ends_with(&format!(
            "\n\nWARNINGS\n  load: {rows}\n  load: {bytes}\n\nEach value with its history: plumb metrics etl load"
        )),
        "{body}"
    );
    let status = p.plumb(&["status", "etl"]).stdout;
    assert!(
        status.contains(&format!("\n    warning: {rows}\n    warning: {bytes}\n")),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&p.plumb(&["status", "etl", "--json"]).stdout).unwrap();
    assert_eq!(json["tasks"][0]["warnings"], serde_json::json!([rows, bytes]));
    let log = p.plumb(&["logs", "etl", "load"]).stdout;
    assert!(
        log.ends_with(&format!("plumb: warning: {rows}\nplumb: warning: {bytes}\n")),
        "{log}"
    );
    // The warned value is done, so it is part of the history from now on.
    assert_eq!(p.count("SELECT COUNT(*) FROM metrics WHERE name = 'rows'"), 8);
}

#[test]
fn a_steady_series_does_not_cry_wolf_but_a_real_change_on_it_is_caught() {
    let p = Project::new();
    loader(&p, "anomaly = 'error'");
    // Every past value 100: the MAD is zero, and so is the mean absolute deviation.
    history(&p, &["100"; 7]);
    p.file("rows.txt", "101");
    let out = p.plumb(&["run", "etl"]);
    assert_eq!(out.code, 0, "1 % off a flat series is no anomaly: {}", out.all());
    let runs = run_ids(&p);
    assert!(
        log_body(&p, "etl", runs.last().unwrap(), "load.1.log").ends_with(
            "plumb: rows = 101: median of the last 7 runs is 100 (z inf): as expected (within 80..120)\n"
        ),
        "{}",
        log_body(&p, "etl", runs.last().unwrap(), "load.1.log")
    );
    // Now seven 100s and a 101: the MAD is still zero, the mean absolute deviation 1/8, so
    // the spread is 1.2533 / 8 = 0.1567 and 50 scores 50 / 0.1567 = 319.2, 50 % away.
    p.file("rows.txt", "50");
    let out = p.plumb(&["run", "etl", "-p", "day=2026-12-02"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("\n  load: rows = 50: median of the last 8 runs is 100 (z 319.2) after 2 attempts\n"),
        "{}",
        out.stdout
    );
    // Against a flat series alone, the score is infinite.
    let q = Project::new();
    loader(&q, "anomaly = 'error'");
    history(&q, &["100"; 7]);
    q.file("rows.txt", "50");
    let out = q.plumb(&["run", "etl"]);
    assert!(
        out.stdout
            .contains("\n  load: rows = 50: median of the last 7 runs is 100 (z inf) after 2 attempts\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn with_fewer_past_values_than_min_history_the_comparison_is_skipped_and_the_log_says_so() {
    let p = Project::new();
    loader(&p, "anomaly = 'error'\nmin_history = 3\nwindow = '90d'");
    history(&p, &["10000", "10400"]);
    p.file("rows.txt", "12");
    let out = p.plumb(&["run", "etl"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let runs = run_ids(&p);
    assert_eq!(
        log_body(&p, "etl", runs.last().unwrap(), "load.1.log"),
        "$ echo rows $(cat rows.txt) >> \"$PLUMB_METRICS\"\n\
         plumb: metrics: rows 12\n\
         plumb: rows = 12: anomaly check skipped: 2 past values within 90d, min_history is 3\n"
    );
    // The third value counts: the next run compares.
    p.file("rows.txt", "10");
    let out = p.plumb(&["run", "etl", "-p", "day=2026-12-02"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("rows = 10: median of the last 3 runs is 10000 (z "),
        "{}",
        out.stdout
    );
}

#[test]
fn every_expect_key_is_checked_where_it_is_written() {
    let p = Project::new();
    p.pipeline(
        "x",
        concat!(
            "[tasks.load]
",
            "command = \"true\"
",
            "
",
            "[tasks.load.expect.rows]
",
            "min = 10
",
            "max = 5
",
            "anomaly = \"warning\"
",
            "window = \"0s\"
",
            "min_history = 0
",
            "sensitivity = -1
",
            "min_change = 0.2
",
            "mni = 3
",
            "
",
            "[tasks.load.expect.Bytes]
",
            "max = 1
",
            "
",
            "[tasks.load.expect.lag]
",
            "window = \"7d\"
",
            "min = \"x\"
",
            "
",
            "[tasks.feed]
",
            "outputs = [\"f\"]
",
            "[tasks.feed.expect.rows]
",
            "min = 1
",
            "
",
            "[tasks.other]
",
            "command = \"true\"
",
            "expect = 3
",
            "expct = 1
"
        ),
    );
    let out = p.plumb(&["validate", "x"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr, concat!(
            "error: `max` of `expect.rows` of task `load` is 5, below its `min` of 10
",
            " --> pipelines/x.toml:6:7
",
            "  |
",
            "6 | max = 5
",
            "  |       ^
",
            "  |
",
            "  = help: no value could pass; swap them, or drop one
",
            "
",
            "error: `anomaly` cannot be \"warning\"
",
            " --> pipelines/x.toml:7:11
",
            "  |
",
            "7 | anomaly = \"warning\"
",
            "  |           ^^^^^^^^^ did you mean \"warn\"?
",
            "
",
            "error: `window` of `expect.rows` of task `load` must be longer than 0s
",
            " --> pipelines/x.toml:8:10
",
            "  |
",
            "8 | window = \"0s\"
",
            "  |          ^^^^
",
            "
",
            "error: `min_history` of `expect.rows` of task `load` must be at least 1
",
            " --> pipelines/x.toml:9:15
",
            "  |
",
            "9 | min_history = 0
",
            "  |               ^
",
            "
",
            "error: `sensitivity` of `expect.rows` of task `load` must be more than 0
",
            "  --> pipelines/x.toml:10:15
",
            "   |
",
            "10 | sensitivity = -1
",
            "   |               ^^
",
            "   |
",
            "   = help: it is how many spreads from the median a value may be; 3.5 is usual
",
            "
",
            "error: `min_change` of `expect.rows` of task `load`: 0.2 has no unit
",
            "  --> pipelines/x.toml:11:14
",
            "   |
",
            "11 | min_change = 0.2
",
            "   |              ^^^
",
            "   |
",
            "   = help: write \"20%\" for 20 percent
",
            "
",
            "error: unknown key `mni` in `expect.rows` of task `load`
",
            "  --> pipelines/x.toml:12:1
",
            "   |
",
            "12 | mni = 3
",
            "   | ^^^ did you mean `min`?
",
            "
",
            "error: metric name `Bytes` in task `load` is not a metric name
",
            "  --> pipelines/x.toml:14:20
",
            "   |
",
            "14 | [tasks.load.expect.Bytes]
",
            "   |                    ^^^^^
",
            "   |
",
            "   = help: names are lowercase letters, digits and _, not starting with a digit, as the task writes them to PLUMB_METRICS
",
            "
",
            "error: `window` of `expect.lag` of task `load` has no effect without `anomaly`
",
            "  --> pipelines/x.toml:18:10
",
            "   |
",
            "18 | window = \"7d\"
",
            "   |          ^^^^
",
            "   |
",
            "   = help: add anomaly = \"warn\" (or \"error\") to compare the value with the task's past
",
            "
",
            "error: `min` in `expect.lag` of task `load`: invalid type: string \"x\", expected a number
",
            "  --> pipelines/x.toml:19:7
",
            "   |
",
            "19 | min = \"x\"
",
            "   |       ^^^
",
            "
",
            "error: `expect.rows` of task `feed` needs a `command`
",
            "  --> pipelines/x.toml:23:20
",
            "   |
",
            "23 | [tasks.feed.expect.rows]
",
            "   |                    ^^^^
",
            "   |
",
            "   = help: a task without `command` is an external input; it runs nothing, so it records no metrics
",
            "
",
            "error: `expect` in task `other` must be a table of metrics, like [tasks.load.expect.rows], found integer
",
            "  --> pipelines/x.toml:28:1
",
            "   |
",
            "28 | expect = 3
",
            "   | ^^^^^^
",
            "
",
            "error: unknown key `expct` in task `other`
",
            "  --> pipelines/x.toml:29:1
",
            "   |
",
            "29 | expct = 1
",
            "   | ^^^^^ did you mean `expect`?
",
            "
",
            "13 errors in pipelines/x.toml
"
        ));
}

#[test]
fn plumb_metrics_shows_each_value_with_a_sparkline_the_median_and_the_band() {
    let p = Project::new();
    loader(&p, "anomaly = 'warn'");
    history(&p, PAST);
    let json = p.plumb(&["metrics", "etl", "load", "--name", "rows", "--json"]);
    assert_eq!(json.code, 0, "{}", json.all());
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 7);
    let runs = run_ids(&p);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["task"], "load");
        assert_eq!(r["name"], "rows");
        assert_eq!(r["value"].as_f64().unwrap(), PAST[i].parse::<f64>().unwrap());
        assert_eq!(r["run_id"], runs[i].as_str());
        assert_eq!(r["params"]["day"], format!("2026-11-{:02}", i + 1));
        assert!(r["recorded_at"].as_str().unwrap().ends_with('Z'));
    }
    // Shown in the pipeline's zone (UTC here), with the offset, to the second.
    let shown = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S +00:00")
            .to_string()
    };
    let line = |i: usize| {
        format!(
            "  {}  {}  day=2026-11-{:02}  {}\n",
            shown(rows[i]["recorded_at"].as_str().unwrap()),
            runs[i],
            i + 1,
            PAST[i]
        )
    };
    let out = p.plumb(&["metrics", "etl", "load", "--name", "rows", "--limit", "3"]);
    assert_eq!(
        out.stdout,
        format!(
            "load rows: 7 values, the last 3 shown\n  \
               █▁▅  10300..10900\n  \
               median 10450, band 8360..12540 (anomaly = \"warn\": 7 values within 28d, sensitivity 3.5, min_change 20%)\n\
             {}{}{}",
            line(4),
            line(5),
            line(6)
        )
    );
    // Every task's durations come too, after its own metrics.
    let all = p.plumb(&["metrics", "etl"]).stdout;
    let heads: Vec<&str> = all
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .collect();
    assert_eq!(
        heads,
        [
            "load rows: 7 values",
            "load duration_s: 7 values",
            "report duration_s: 7 values"
        ]
    );
    assert_eq!(
        p.plumb(&["metrics", "etl", "nope"]).stderr,
        "error: pipeline `etl` has no task `nope`\n"
    );
    let q = Project::new();
    loader(&q, "min = 1");
    assert_eq!(
        q.plumb(&["metrics", "etl"]).stdout,
        "no metrics recorded for etl\n"
    );
}

/// Every recorded time moved back to 2025-01-01, as if all of it were long ago.
fn backdate(p: &Project) {
    p.db()
        .execute_batch(
            "UPDATE runs SET started_at = '2025-01-01T00:00:00.000Z', ended_at = '2025-01-01T00:01:00.000Z';
             UPDATE attempts SET started_at = '2025-01-01T00:00:00.000Z', ended_at = '2025-01-01T00:01:00.000Z';
             UPDATE metrics SET recorded_at = '2025-01-01T00:01:00.000Z';",
        )
        .unwrap();
}

/// The bytes of the files in a directory.
fn dir_bytes(p: &Project, rel: &str) -> u64 {
    std::fs::read_dir(p.path().join(rel))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn prune_deletes_old_runs_but_never_a_marker_nor_the_latest_run_and_dry_run_deletes_nothing() {
    let p = Project::new();
    p.pipeline(
        "p",
        "[params]\nday = { type = 'date', default = '2026-12-01' }\n\
         [tasks.a]\ncommand = 'echo rows 1 >> \"$PLUMB_METRICS\"'\n",
    );
    // A pipeline whose anomaly test compares with ten years of history.
    p.pipeline(
        "q",
        "[tasks.a]\ncommand = 'echo rows 1 >> \"$PLUMB_METRICS\"'\n\
         [tasks.a.expect.rows]\nanomaly = 'warn'\nwindow = '3650d'\n",
    );
    for args in [
        &["run", "p", "-p", "day=2026-11-01"][..],
        &["reset", "p", "a", "-p", "day=2026-11-01"],
        &["run", "p", "-p", "day=2026-11-01"],
        &["run", "p", "-p", "day=2026-11-02"],
        &["run", "q"],
        &["reset", "q", "a"],
        &["run", "q"],
    ] {
        assert_eq!(p.plumb(args).code, 0, "{args:?}");
    }
    let runs = run_ids(&p);
    let (old, q_old) = (&runs[0], &runs[3]);
    backdate(&p);
    p.file(
        "state/logs/p/20200101T000000Z-dead/a.1.log",
        "left by a prune that was killed\n",
    );
    let markers = || p.count("SELECT COUNT(*) FROM markers");
    assert_eq!(markers(), 3);
    let size = dir_bytes(&p, &format!("state/logs/p/{old}"));

    let dry = p.plumb(&["prune", "--older-than", "90d", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.all());
    let expected = |verb: &str| {
        format!(
            "{verb} 1 run that ended before CUTOFF (1 attempt, 1 metric value, {} of logs), and 1 log directory of runs no longer recorded\n  \
               {old}  p day=2026-11-01  ended 2025-01-01 00:01:00 +00:00  1 attempt, 1 metric value, {size} B\n  \
               state/logs/p/20200101T000000Z-dead  log directory of a run no longer recorded, 32 B\n\
             kept 1 older run within an anomaly expectation's window\n",
            if size + 32 < 1024 {
                format!("{} B", size + 32)
            } else {
                format!("{:.1} KiB", (size + 32) as f64 / 1024.0)
            },
        )
    };
    // The cutoff is a moment shown in UTC: `2026-09-05 02:00:00 +00:00`.
    let no_cutoff = |s: &str| {
        let t = s
            .split("ended before ")
            .nth(1)
            .and_then(|t| t.get(..26))
            .unwrap_or("");
        assert!(t.ends_with(" +00:00"), "{s}");
        s.replacen(t, "CUTOFF", 1)
    };
    assert_eq!(no_cutoff(&dry.stdout), expected("would delete"));
    assert_eq!(
        p.count("SELECT COUNT(*) FROM runs"),
        5,
        "a dry run deletes nothing"
    );
    assert!(p.exists(&format!("state/logs/p/{old}")) && p.exists("state/logs/p/20200101T000000Z-dead"));

    let out = p.plumb(&["prune", "--older-than", "90d"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(no_cutoff(&out.stdout), expected("deleted"));
    assert_eq!(markers(), 3, "never a marker");
    assert_eq!(
        p.count(&format!("SELECT COUNT(*) FROM runs WHERE run_id = '{old}'")),
        0
    );
    assert_eq!(
        p.count(&format!("SELECT COUNT(*) FROM attempts WHERE run_id = '{old}'")),
        0
    );
    assert_eq!(
        p.count(&format!("SELECT COUNT(*) FROM metrics WHERE run_id = '{old}'")),
        0
    );
    assert_eq!(
        p.count(&format!("SELECT COUNT(*) FROM runs WHERE run_id = '{q_old}'")),
        1
    );
    assert_eq!(p.count("SELECT COUNT(*) FROM runs"), 4);
    assert!(!p.exists(&format!("state/logs/p/{old}")) && !p.exists("state/logs/p/20200101T000000Z-dead"));
    // What is left still says how each instance got done, and runs resume as before.
    let status = p.plumb(&["status", "p", "-p", "day=2026-11-01"]).stdout;
    assert!(status.starts_with("p day=2026-11-01: 1 done\n"), "{status}");
    assert!(
        p.plumb(&["run", "p", "-p", "day=2026-11-01"])
            .stdout
            .contains("1 task: 1 done before")
    );
    let again = p.plumb(&["prune", "--older-than", "90d"]);
    assert!(
        again.stdout.starts_with("deleted 0 runs that ended before "),
        "{}",
        again.stdout
    );
    let bad = p.plumb(&["prune", "--older-than", "90"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("duration 90 has no unit; write \"90s\" for seconds"),
        "{}",
        bad.stderr
    );
}

#[test]
fn deadline_miss_arrives_while_the_run_is_still_going_and_once() {
    let server = MailServer::start();
    let p = Project::new();
    p.pipeline(
        "dl",
        "[pipeline]\ndeadline = '2s'\n[alerts]\nemail = ['oncall@example.com']\n\
         [tasks.first]\ncommand = 'true'\n\
         [tasks.wait]\ncommand = 'while test ! -f release; do sleep 0.05; done'\nrequires = ['first']\n\
         [tasks.after]\ncommand = 'true'\nrequires = ['wait']\n",
    );
    let mut c = p.cmd(&["run", "dl"]);
    c.env("PLUMB_SMTP_URL", format!("smtp://127.0.0.1:{}", server.port))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let mails = server.wait_for(1, std::time::Duration::from_secs(30));
    assert_eq!(mails.len(), 1, "the deadline e-mail comes while the task waits");
    assert!(child.try_wait().unwrap().is_none(), "the run is still going");
    let m = &mails[0];
    assert!(
        m.subject()
            .starts_with("[plumb] dl DEADLINE MISSED: not complete by "),
        "{}",
        m.subject()
    );
    let run: String = p
        .db()
        .query_row("SELECT run_id FROM runs", [], |r| r.get(0))
        .unwrap();
    let due: String = p
        .db()
        .query_row("SELECT deadline FROM deadlines WHERE missed = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let due_shown = chrono::DateTime::parse_from_rfc3339(&due)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S +00:00")
        .to_string();
    let file = p.path().join("pipelines/dl.toml");
    assert_eq!(
        m.body().trim_end(),
        format!(
            "dl was not complete by its deadline, {due_shown} (deadline \"2s\" in {}).\n\n\
             The run is still going: 1 task running (wait), 1 task more not done (after).\n\nrun: {run}",
            file.display()
        )
    );
    p.file("release", "");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "DEADLINE dl not complete by {due_shown} (deadline \"2s\"): 1 task running (wait), 1 task more not done (after)"
        )),
        "{stdout}"
    );
    // The run's courier has delivered everything it queued before it exited.
    assert_eq!(server.mails().len(), 1, "one deadline e-mail");
    assert_eq!(
        p.count("SELECT COUNT(*) FROM alerts WHERE event = 'deadline_miss'"),
        1
    );
}

#[test]
fn a_deadline_that_is_not_a_time_nor_a_duration_is_refused_where_it_is_written() {
    let p = Project::new();
    p.pipeline(
        "bad",
        "[pipeline]\ndeadline = '25:00'\n[tasks.a]\ncommand = 'true'\n",
    );
    let out = p.plumb(&["validate", "bad"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("`deadline` in [pipeline]: \"25:00\": there is no such time of day (00:00 to 23:59)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pipelines/bad.toml:2:12"), "{}", out.stderr);
}

/// A running scheduler on a sped-up clock (one fake minute per real second); killed if the test
/// fails before stopping it.
struct Scheduler(Option<std::process::Child>);

impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Scheduler {
    fn start(p: &Project, clock: &str, smtp: u16) -> Scheduler {
        Scheduler(Some(
            p.cmd(&["schedule"])
                .env("PLUMB_TEST_CLOCK", clock)
                .env("PLUMB_SMTP_URL", format!("smtp://127.0.0.1:{smtp}"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        ))
    }

    fn stop(mut self) -> String {
        let child = self.0.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[test]
fn the_scheduler_alerts_a_fire_that_never_started_and_one_still_running_once_across_a_restart() {
    let server = MailServer::start();
    let p = Project::new();
    // Every fire's run waits for `release`: the 00:01 fire runs past its deadline (00:01:30),
    // and the 00:02 fire waits behind it (max_active_runs 1), never starting before its own.
    p.pipeline(
        "sched",
        "[pipeline]\nschedule = '* * * * *'\ndeadline = '30s'\n[alerts]\nemail = ['oncall@example.com']\n\
         [tasks.a]\ncommand = 'while test ! -f release; do sleep 0.05; done'\n",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let clock = format!("{now:.3}=2026-01-01T00:00:30Z*60");
    let limit = std::time::Duration::from_secs(60);

    let first = Scheduler::start(&p, &clock, server.port);
    let mails = server.wait_for(2, limit);
    let log1 = first.stop();
    let subjects = |mails: &[crate::smtp::Mail]| mails.iter().map(|m| m.subject()).collect::<Vec<_>>();
    assert_eq!(
        subjects(&mails[..2]),
        [
            "[plumb] sched DEADLINE MISSED: not complete by 2026-01-01 00:01:30 +00:00",
            "[plumb] sched DEADLINE MISSED: not complete by 2026-01-01 00:02:30 +00:00",
        ],
        "{log1}"
    );
    let file = p.path().join("pipelines/sched.toml");
    assert_eq!(
        mails[0].body().trim_end(),
        format!(
            "sched was not complete by its deadline, 2026-01-01 00:01:30 +00:00 (deadline \"30s\" in {}).\n\n\
             Its scheduled run (fire 2026-01-01 00:01 +00:00) is still going.",
            file.display()
        )
    );
    assert!(
        mails[1].body().contains(
            "Its scheduled run (fire 2026-01-01 00:02 +00:00) never started: it is still queued.\n"
        ),
        "{}",
        mails[1].body()
    );
    assert!(
        log1.contains("DEADLINE sched not complete by 2026-01-01 00:02:30 +00:00: Its scheduled run (fire 2026-01-01 00:02 +00:00) never started: it is still queued."),
        "{log1}"
    );

    // Restarted on the same timeline: the deadlines already alerted are not alerted again,
    // while the next one is (which shows the restarted scheduler watches).
    let before = server.mails().len();
    let second = Scheduler::start(&p, &clock, server.port);
    let mails = server.wait_for(before + 1, limit);
    p.file("release", "");
    let log2 = second.stop();
    let subjects = subjects(&mails);
    assert!(mails.len() > before, "{log2}");
    for due in ["00:01:30", "00:02:30"] {
        assert_eq!(
            subjects
                .iter()
                .filter(|s| s.ends_with(&format!("2026-01-01 {due} +00:00")))
                .count(),
            1,
            "{subjects:?}\n{log2}"
        );
    }
    let queued = p.count("SELECT COUNT(*) FROM alerts WHERE event = 'deadline_miss'") as usize;
    let all = subjects_of(&server.wait_for(queued, limit));
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(all.len(), queued, "every queued deadline alert was delivered");
    assert_eq!(unique, all, "none twice");
}

fn subjects_of(mails: &[crate::smtp::Mail]) -> Vec<String> {
    let mut s: Vec<String> = mails.iter().map(|m| m.subject()).collect();
    s.sort();
    s
}
