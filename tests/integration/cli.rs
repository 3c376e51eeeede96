//! Project discovery, state location, and the read-only commands: plan, status, history, logs,
//! graph, next.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::support::{PLUMB, Project, run};

const PIPE: &str = "[params]\nday = { type = 'date', default = '2026-11-20' }\n\
    [tasks.a]\ncommand = 'echo a >> ran.txt'\n[tasks.b]\ncommand = 'echo b >> ran.txt; exit 1'\nrequires = ['a']\n\
    [tasks.c]\ncommand = 'echo c >> ran.txt'\nrequires = ['b']\n";

#[test]
fn pipeline_by_name_from_any_directory_with_c() {
    let p = Project::new();
    p.pipeline("n", "[tasks.a]\ncommand = 'pwd > where.txt'\n");
    let mut c = Command::new(PLUMB);
    c.current_dir("/")
        .args(["-C", p.path().to_str().unwrap(), "run", "n"]);
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        p.read("where.txt").trim(),
        p.path().canonicalize().unwrap().to_str().unwrap()
    );
}

#[test]
fn pipeline_by_path_finds_the_root_upward() {
    let p = Project::new();
    p.pipeline("n", "[tasks.a]\ncommand = 'pwd > where.txt'\n");
    std::fs::create_dir(p.path().join("elsewhere")).unwrap();
    let mut c = Command::new(PLUMB);
    c.current_dir(p.path().join("elsewhere"))
        .args(["run", "../pipelines/n.toml"]);
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        p.exists("where.txt") && p.exists("state/plumb.db"),
        "root is the dir with plumb.toml"
    );
}

#[test]
fn state_dir_from_flag_env_and_plumb_toml() {
    let p = Project::new();
    p.pipeline("n", "[tasks.a]\ncommand = 'test -f ok'\n");
    let alt = tempfile::tempdir().unwrap();
    let out = p.plumb(&["--state-dir", alt.path().to_str().unwrap(), "run", "n"]);
    assert_eq!(out.code, 1);
    p.file("ok", "");
    assert!(alt.path().join("plumb.db").exists());
    assert!(!p.exists("state"));
    assert!(
        out.stdout
            .contains(&format!("--state-dir {} run n", alt.path().display())),
        "resume command repeats it: {}",
        out.stdout
    );

    let env = tempfile::tempdir().unwrap();
    let mut c = p.cmd(&["run", "n"]);
    c.env("PLUMB_STATE_DIR", env.path());
    assert_eq!(run(c).code, 0);
    assert!(env.path().join("plumb.db").exists());

    p.file("plumb.toml", "state_dir = 'var/plumb'\n");
    assert_eq!(p.plumb(&["run", "n"]).code, 0);
    assert!(p.exists("var/plumb/plumb.db"));
}

#[test]
fn plan_shows_what_run_would_do_without_running() {
    let p = Project::new();
    p.pipeline("p", PIPE);
    let out = p.plumb(&["plan", "p"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .starts_with("plan for p day=2026-11-20 (3 tasks): 0 done, 3 to run\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  run      a  echo a >> ran.txt"),
        "{}",
        out.stdout
    );
    assert!(!p.exists("ran.txt"));
    p.plumb(&["run", "p"]);
    let v: serde_json::Value = serde_json::from_str(&p.plumb(&["plan", "p", "--json"]).stdout).unwrap();
    let actions: Vec<&str> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["done", "run", "run"]);
    assert_eq!(v["params"]["day"], "2026-11-20");
}

#[test]
fn status_json_has_the_contract_fields() {
    let p = Project::new();
    p.pipeline("p", PIPE);
    assert_eq!(p.plumb(&["run", "p"]).code, 1);
    let out = p.plumb(&["status", "p", "--json"]);
    assert_eq!(out.code, 0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let tasks = v["tasks"].as_array().unwrap();
    let get = |i: usize, k: &str| tasks[i][k].clone();
    assert_eq!(get(0, "task"), "a");
    assert_eq!(get(0, "state"), "done");
    assert_eq!(get(0, "attempts"), 1);
    assert!(get(0, "duration_s").is_f64());
    assert!(get(0, "finished_at").is_string());
    assert_eq!(get(1, "state"), "failed");
    assert_eq!(get(1, "exit_code"), 1);
    assert_eq!(get(2, "state"), "blocked");
    assert_eq!(get(2, "blocked_by"), "b");
    assert_eq!(get(2, "attempts"), 0);
    let text = p.plumb(&["status", "p"]).stdout;
    assert!(
        text.starts_with("p day=2026-11-20: 1 done, 1 failed, 1 blocked\n"),
        "{text}"
    );
    assert!(text.contains("(blocked by b)"), "{text}");
}

#[test]
fn history_lists_runs_newest_first() {
    let p = Project::new();
    p.pipeline("p", PIPE);
    p.plumb(&["run", "p"]);
    p.plumb(&["run", "p", "-p", "day=2026-11-21"]);
    let v: serde_json::Value = serde_json::from_str(&p.plumb(&["history", "--json"]).stdout).unwrap();
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["params"]["day"], "2026-11-21");
    for r in runs {
        for k in [
            "run_id",
            "pipeline",
            "params",
            "started_at",
            "ended_at",
            "outcome",
        ] {
            assert!(!r[k].is_null(), "{k} in {r}");
        }
        assert_eq!(r["outcome"], "failed");
        assert_eq!(r["counts"]["blocked"], 1);
    }
    let limited: serde_json::Value =
        serde_json::from_str(&p.plumb(&["history", "p", "--limit", "1", "--json"]).stdout).unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 1);
}

#[test]
fn logs_shows_a_chosen_attempt() {
    let p = Project::new();
    p.pipeline(
        "l",
        "[tasks.a]\ncommand = 'echo attempt $PLUMB_ATTEMPT; exit 1'\nretries = 1\nretry_delay = '10ms'\n",
    );
    p.plumb(&["run", "l"]);
    let last = p.plumb(&["logs", "l", "a"]);
    assert!(last.stdout.contains("attempt 2\n"), "{}", last.stdout);
    let first = p.plumb(&["logs", "l", "a", "--attempt", "1"]);
    assert!(
        first.stdout.contains("attempt 1\n") && !first.stdout.contains("attempt 2\n"),
        "{}",
        first.stdout
    );
    let none = p.plumb(&["logs", "l", "a", "--attempt", "5"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("has no attempt 5"), "{}", none.stderr);
}

#[test]
fn graph_in_dot_and_mermaid_coloured_by_state() {
    let p = Project::new();
    p.pipeline("p", PIPE);
    p.plumb(&["run", "p"]);
    let dot = p.plumb(&["graph", "p"]).stdout;
    assert!(dot.starts_with("digraph \"p day=2026-11-20\" {"), "{dot}");
    assert!(
        dot.contains("\"a\" -> \"b\";") && dot.contains("\"b\" -> \"c\";"),
        "{dot}"
    );
    assert!(
        dot.contains("\"b\" [label=\"b\\nfailed\", fillcolor=\"#f08f8f\"];"),
        "{dot}"
    );
    let mm = p.plumb(&["graph", "p", "--format", "mermaid"]).stdout;
    assert!(mm.starts_with("flowchart LR\n"), "{mm}");
    assert!(
        mm.contains("t0 --> t1") && mm.contains("t1[\"b (failed)\"]:::failed"),
        "{mm}"
    );
}

#[test]
fn next_prints_fire_times_in_the_pipeline_zone() {
    let p = Project::new();
    p.pipeline(
        "s",
        "[pipeline]\nschedule = '30 2 * * *'\ntimezone = 'Europe/Berlin'\n",
    );
    let out = p.plumb(&["next", "s", "--count", "3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    for l in lines {
        assert!(
            l.contains(" 02:30 +01:00 ") || l.contains(" 02:30 +02:00 ") || l.contains(" 03:00 +02:00 "),
            "{l}"
        );
    }
}

#[test]
fn next_after_lists_the_fire_times_around_a_clock_change() {
    let p = Project::new();
    p.pipeline(
        "twice",
        "[pipeline]\nschedule = '15,45 2 * * *'\ntimezone = 'Europe/Berlin'\n",
    );
    p.pipeline(
        "range",
        "[pipeline]\nschedule = '0 1-3 * * *'\ntimezone = 'Europe/Berlin'\n",
    );
    p.pipeline(
        "hourly",
        "[pipeline]\nschedule = '@hourly'\ntimezone = 'America/New_York'\n",
    );
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST. Both skipped times fire once, after the jump.
    let out = p.plumb(&[
        "next",
        "twice",
        "--after",
        "2026-03-28T03:00:00+01:00",
        "--count",
        "3",
    ]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(
        out.stdout,
        "2026-03-29 03:00 +02:00 (Sun; catches up 02:15 and 02:45, skipped by the clock change)\n\
         2026-03-30 02:15 +02:00 (Mon)\n\
         2026-03-30 02:45 +02:00 (Mon)\n"
    );
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:00 fires once. The moment may be given
    // in any offset (here UTC); times are shown in the pipeline's zone.
    let out = p.plumb(&["next", "range", "--after", "2026-10-24T22:30:00Z", "--count", "4"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(
        out.stdout,
        "2026-10-25 01:00 +02:00 (Sun)\n\
         2026-10-25 02:00 +02:00 (Sun)\n\
         2026-10-25 03:00 +01:00 (Sun)\n\
         2026-10-26 01:00 +01:00 (Mon)\n"
    );
    // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; @hourly follows the wall clock.
    let out = p.plumb(&[
        "next",
        "hourly",
        "--after",
        "2026-11-01T00:30:00-04:00",
        "--count",
        "3",
    ]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(
        out.stdout,
        "2026-11-01 01:00 -04:00 (Sun)\n\
         2026-11-01 01:00 -05:00 (Sun)\n\
         2026-11-01 02:00 -05:00 (Sun)\n"
    );
}

#[test]
fn next_after_refuses_a_time_without_an_offset_or_no_time_at_all() {
    let p = Project::new();
    p.pipeline(
        "s",
        "[pipeline]\nschedule = '30 2 * * *'\ntimezone = 'Europe/Berlin'\n",
    );
    for (after, why) in [
        (
            "2026-03-29T02:30:00",
            "it has no offset; write it with one, e.g. 2026-03-29T01:30:00+01:00 or \
             2026-03-29T00:30:00Z",
        ),
        (
            "2026-03-29",
            "a date, not a time; write e.g. 2026-03-29T00:00:00+01:00 (a time with its offset)",
        ),
        (
            "tomorrow",
            "not an RFC 3339 time; write e.g. 2026-03-29T01:30:00+01:00",
        ),
    ] {
        let out = p.plumb(&["next", "s", "--after", after]);
        assert_eq!(out.code, 2, "usage error: {}", out.all());
        assert_eq!(out.stdout, "");
        assert_eq!(
            out.stderr,
            format!(
                "error: invalid value '{after}' for '--after <TIME>': {why}\n\n\
                 For more information, try '--help'.\n"
            )
        );
    }
}

#[test]
fn help_explains_every_command() {
    let out = Command::new(PLUMB).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for c in [
        "validate", "plan", "run", "status", "history", "logs", "reset", "graph", "backfill", "schedule",
        "next", "alerts", "metrics", "prune",
    ] {
        assert!(help.contains(&format!("  {c} ")), "{c} in {help}");
    }
    assert!(
        help.contains("Exit codes: 0 every task done; 1 a task failed"),
        "{help}"
    );
    let run_help = String::from_utf8_lossy(
        &Command::new(PLUMB)
            .args(["run", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    for f in [
        "--only",
        "--fail-fast",
        "--wait",
        "--rerun-changed",
        "--workers",
        "--param",
    ] {
        assert!(run_help.contains(f), "{f} in {run_help}");
    }
}

#[test]
fn json_log_format_emits_one_record_per_run_and_task_event() {
    let p = Project::new();
    p.pipeline("j", "[tasks.a]\ncommand = 'true'\n[tasks.b]\ncommand = 'exit 2'\n[tasks.c]\ncommand = 'true'\nrequires = ['b']\n");
    let out = p.plumb(&["--log-format", "json", "run", "j"]);
    assert_eq!(out.code, 1);
    let records: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let events: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            let f = &r["fields"];
            (
                f["event"].as_str().unwrap().to_string(),
                f["task"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(events.first().unwrap().0, "run_started");
    assert_eq!(events.last().unwrap().0, "run_finished");
    assert!(
        events.contains(&("task_succeeded".into(), "a".into())),
        "{events:?}"
    );
    assert!(events.contains(&("task_failed".into(), "b".into())), "{events:?}");
    assert!(
        events.contains(&("task_blocked".into(), "c".into())),
        "{events:?}"
    );
    let failed = records
        .iter()
        .find(|r| r["fields"]["event"] == "task_failed")
        .unwrap();
    assert_eq!(failed["fields"]["exit_code"], 2);
    assert_eq!(records.last().unwrap()["fields"]["outcome"], "failed");
}

#[test]
fn a_terminal_gets_live_progress() {
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "`script` (Debian's bsdutils) is needed to give plumb a pseudo-terminal; README lists the test needs"
    );
    let p = Project::new();
    p.pipeline(
        "t",
        "[tasks.a]\ncommand = 'sleep 0.5'\n[tasks.b]\ncommand = 'true'\nrequires = ['a']\n",
    );
    let cmd = format!("{PLUMB} run t");
    let mut c = Command::new("script");
    c.current_dir(p.path())
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm");
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains('\x1b'),
        "progress is drawn with terminal codes: {:?}",
        out.stdout
    );
    assert!(out.stdout.contains("tasks done"), "{:?}", out.stdout);
    assert!(out.stdout.contains("t: succeeded"), "{:?}", out.stdout);
}

#[test]
fn logical_time_decides_what_yesterday_means_in_the_pipeline_zone() {
    let p = Project::new();
    p.pipeline(
        "lt",
        "[pipeline]\ntimezone = 'Europe/Berlin'\n[params]\ndate = { type = 'date', default = 'yesterday' }\n\
         [tasks.a]\ncommand = 'echo {{date}} {{scheduled_time}} > out.txt'\n",
    );
    // 23:30 UTC on the 28th is already the 29th in Berlin: yesterday is the 28th.
    let out = p.plumb(&["run", "lt", "--logical-time", "2026-03-28T23:30:00Z"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.read("out.txt"), "2026-03-28 2026-03-29T00:30:00+01:00\n");
    let bad = p.plumb(&["run", "lt", "--logical-time", "tomorrow"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--logical-time"), "{}", bad.stderr);
}

#[test]
fn started_with_stdin_closed_tasks_still_read_dev_null_and_their_output_is_logged() {
    // Some supervisors start plumb with descriptor 0 closed. Rust's runtime opens /dev/null
    // there before main, so plumb's own descriptors (its /dev/null, a task's output pipe) never
    // take the number a task's stdin needs; the spawn relies on that.
    let p = Project::new();
    p.pipeline(
        "c",
        "[tasks.a]\ncommand = 'cat; readlink /proc/self/fd/0; echo to-out; echo to-err >&2'\n\
         [tasks.b]\ncommand = 'cat && echo b-read-eof'\nrequires = ['a']\n",
    );
    let mut c = p.cmd(&["run", "c"]);
    // SAFETY: `close` is async-signal-safe; it runs in the child after its stdio is set up.
    unsafe {
        c.pre_exec(|| {
            libc::close(0);
            Ok(())
        });
    }
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.all());
    let a = p.plumb(&["logs", "c", "a"]);
    assert!(
        a.stdout.contains("/dev/null\nto-out\nto-err\n"),
        "stdin is /dev/null and both streams are captured: {}",
        a.stdout
    );
    let b = p.plumb(&["logs", "c", "b"]);
    assert!(b.stdout.contains("b-read-eof"), "{}", b.stdout);
}

/// Regression: `plumb next p --count N | head -1` panicked with exit 101 once head had gone.
#[test]
fn a_reader_that_closes_stdout_early_ends_a_printing_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let p = Project::new();
    p.pipeline(
        "p",
        "[pipeline]\nschedule = '* * * * *'\n[tasks.a]\ncommand = 'true'\n",
    );
    let mut c = p.cmd(&["next", "p", "--count", "200000"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut first).unwrap();
    assert!(first.ends_with(")\n"), "a fire time: {first:?}");
    // 200,000 lines are far more than a pipe holds: plumb is still writing when the reader goes.
    drop(out);
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(stderr, "", "nothing on stderr");
    assert_eq!(
        result.status.signal(),
        Some(nix::sys::signal::Signal::SIGPIPE as i32),
        "ended by SIGPIPE as `ls | head` is: {:?}",
        result.status
    );
}
