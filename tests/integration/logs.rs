//! `plumb logs`: any attempt of any run, a running attempt's output as it comes, any size.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// A log's lines after plumb's two header lines (`# plumb: TASK attempt ...` and `$ COMMAND`),
/// checking that the first names `run`.
fn output_of(log: &str, run: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.len() >= 2
            && lines[0].starts_with("# plumb: a attempt ")
            && lines[0].contains(&format!(", run {run}, ")),
        "{log}"
    );
    assert!(lines[1].starts_with("$ "), "{log}");
    lines[2..].iter().map(|l| l.to_string()).collect()
}

fn run_ids(p: &Project) -> Vec<String> {
    let db = p.db();
    let mut stmt = db.prepare("SELECT run_id FROM runs ORDER BY rowid").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn logs_reaches_the_failed_attempt_of_an_earlier_run_after_a_resume() {
    let p = Project::new();
    p.pipeline(
        "p",
        "[params]\nday = { type = \"date\", default = \"today\" }\n\
         [tasks.a]\ncommand = 'if [ -e fixed ]; then echo second try; else echo first try; exit 3; fi'\n",
    );
    assert_eq!(p.plumb(&["run", "p", "-p", "day=2026-11-20"]).code, 1);
    p.file("fixed", "");
    assert_eq!(p.plumb(&["run", "p", "-p", "day=2026-11-20"]).code, 0);
    let runs = run_ids(&p);
    assert_eq!(runs.len(), 2);

    let latest = p.plumb(&["logs", "p", "a", "-p", "day=2026-11-20"]);
    assert_eq!(output_of(&latest.stdout, &runs[1]), ["second try"]);
    // The run id alone finds it, whatever `today` is now.
    let first = p.plumb(&["logs", "p", "a", "--run", &runs[0]]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(
        output_of(&first.stdout, &runs[0]),
        ["first try", "plumb: the command failed: exit 3"]
    );
    let log = format!("{}/state/logs/p/{}/a.1.log", p.path().display(), runs[0]);
    assert_eq!(
        first.stderr,
        format!("==> {log} (run {}, attempt 1, failed)\n", runs[0])
    );

    let unknown = p.plumb(&["logs", "p", "a", "--run", "20260101T000000Z-0000"]);
    assert_eq!(unknown.code, 2);
    assert_eq!(
        unknown.stderr,
        "error: pipeline `p` has no run 20260101T000000Z-0000 (plumb history p lists its runs)\n"
    );
    let both = p.plumb(&["logs", "p", "a", "--run", &runs[0], "-p", "day=2026-11-20"]);
    assert_eq!(both.code, 2, "--run names the instance already: {}", both.all());
}

#[test]
fn a_running_attempt_that_printed_nothing_yet_is_said_so_and_follow_prints_it_to_its_end() {
    let p = Project::new();
    p.pipeline(
        "p",
        "[tasks.a]\ncommand = 'while [ ! -e speak ]; do sleep 0.02; done; echo early; while [ ! -e go ]; do sleep 0.02; done; echo late; exit 3'\n",
    );
    let mut runner = p
        .cmd(&["run", "p"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("a's attempt row", Duration::from_secs(10), || {
        p.exists("state/plumb.db")
            && p.db()
                .query_row("SELECT COUNT(*) FROM attempts WHERE state = 'running'", [], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap_or(0)
                == 1
    });
    let run_id = run_ids(&p).pop().unwrap();
    let log = format!("{}/state/logs/p/{run_id}/a.1.log", p.path().display());

    let silent = p.plumb(&["logs", "p", "a"]);
    assert_eq!(silent.code, 0, "{}", silent.all());
    assert_eq!(silent.stdout, "");
    assert_eq!(
        silent.stderr,
        format!(
            "==> {log} (run {run_id}, attempt 1, running)\n==> nothing printed yet (--follow waits for it)\n"
        )
    );

    let mut follow = p
        .cmd(&["logs", "p", "a", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.file("speak", "");
    let mut out = BufReader::new(follow.stdout.take().unwrap());
    let mut early = String::new();
    while !early.ends_with("early\n") {
        assert!(out.read_line(&mut early).unwrap() > 0, "{early}");
    }
    assert_eq!(
        output_of(&early, &run_id),
        ["early"],
        "printed while the attempt runs"
    );
    p.file("go", "");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "late\nplumb: the command failed: exit 3\n");
    let mut err = String::new();
    follow.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(follow.wait().unwrap().success());
    assert_eq!(
        err,
        format!("==> {log} (run {run_id}, attempt 1, running)\n==> attempt 1 failed: exit 3\n")
    );
    assert_eq!(runner.wait().unwrap().code(), Some(1));
}
