//! Attempts lined up for the next free worker: recorded before they start, shown as pending
//! until they do, withdrawn when the run stops, closed after a crash.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Project, alive, wait_for};

/// One worker: `first` holds it (until `release` exists), `second` and `third` wait in line.
const LINE: &str = "[pipeline]\nworkers = 1\n\
    [tasks.first]\ncommand = 'echo $$ > first.pid; while [ ! -e release ]; do sleep 0.02; done; echo first >> ran.txt'\n\
    [tasks.second]\ncommand = 'echo second >> ran.txt'\n\
    [tasks.third]\ncommand = 'echo third >> ran.txt'\n";

/// (task, attempt, state, started_at, ended_at, error) of every attempt row, oldest first.
type Row = (String, u32, String, String, Option<String>, Option<String>);

fn attempts(p: &Project) -> Vec<Row> {
    let db = p.db();
    let mut s = db
        .prepare("SELECT task, attempt, state, started_at, ended_at, error FROM attempts ORDER BY id")
        .unwrap();
    s.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn start(p: &Project) -> std::process::Child {
    p.pipeline("l", LINE);
    let child = p
        .cmd(&["run", "l"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first task", Duration::from_secs(10), || {
        !p.read("first.pid").trim().is_empty()
    });
    // The next task is lined up in the same commit that started the first: give it a moment.
    wait_for("a lined-up attempt", Duration::from_secs(5), || {
        attempts(p).iter().any(|a| a.2 == "starting")
    });
    child
}

#[test]
fn a_lined_up_task_shows_as_pending_and_is_recorded_from_when_it_starts() {
    let p = Project::new();
    let child = start(&p);
    let rows = attempts(&p);
    assert_eq!(rows.len(), 2, "first runs, second is lined up: {rows:?}");
    assert_eq!((rows[1].0.as_str(), rows[1].2.as_str()), ("second", "starting"));

    // While it waits, status says pending, not running, and counts no attempt.
    let status = p.plumb(&["status", "l"]);
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(
        status.stdout.contains("1 running, 2 pending"),
        "{}",
        status.stdout
    );
    let second = status
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("second"))
        .unwrap();
    assert!(second.contains("pending") && second.contains(" 0 "), "{second}");

    std::thread::sleep(Duration::from_millis(300));
    p.file("release", "");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(p.lines("ran.txt"), ["first", "second", "third"]);
    // The progress says the first ended before the second started.
    let done_first = stdout.find("done    first").expect("first's end");
    let start_second = stdout.find("start   second").expect("second's start");
    assert!(done_first < start_second, "{stdout}");

    let rows = attempts(&p);
    assert_eq!(rows.len(), 3, "one attempt each: {rows:?}");
    for r in &rows {
        assert_eq!((r.1, r.2.as_str()), (1, "success"), "{r:?}");
    }
    // Lined up 300 ms before it could start, the second is recorded from its real start.
    let first_end = rows[0].4.clone().unwrap();
    assert!(
        rows[1].3 >= first_end,
        "second started {} before first ended {}",
        rows[1].3,
        first_end
    );
    assert!(rows[2].3 >= rows[1].4.clone().unwrap(), "{rows:?}");
}

#[test]
fn sigterm_withdraws_lined_up_attempts() {
    let p = Project::new();
    let child = start(&p);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(143), "{stdout}");
    assert!(
        stdout.contains("3 tasks: 1 interrupted, 2 not started"),
        "{stdout}"
    );
    let rows = attempts(&p);
    assert_eq!(rows.len(), 1, "only the attempt that ran is recorded: {rows:?}");
    assert_eq!((rows[0].0.as_str(), rows[0].2.as_str()), ("first", "interrupted"));
    assert!(!p.exists("ran.txt"), "nothing else ran");

    // The next run starts from there, with nothing left over.
    p.file("release", "");
    let again = p.plumb(&["run", "l"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(!again.stderr.contains("died"), "{}", again.stderr);
    assert_eq!(p.lines("ran.txt"), ["first", "second", "third"]);
}

#[test]
fn after_a_sigkill_a_lined_up_attempt_is_closed_as_maybe_not_started() {
    let p = Project::new();
    let mut child = start(&p);
    let first = p.read("first.pid").trim().parse::<u32>().unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert!(alive(first), "SIGKILL leaves the task running");

    p.file("release", "");
    let out = p.plumb(&["run", "l"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("recorded 2 attempts of a runner that died as interrupted"),
        "{}",
        out.stderr
    );
    let rows = attempts(&p);
    let second: Vec<&Row> = rows.iter().filter(|r| r.0 == "second").collect();
    assert_eq!(second.len(), 2, "{rows:?}");
    assert_eq!(second[0].2, "interrupted");
    assert!(
        second[0]
            .5
            .as_deref()
            .unwrap_or("")
            .contains("about to start; it may not have started"),
        "{:?}",
        second[0]
    );
    assert_eq!(
        (second[1].1, second[1].2.as_str()),
        (1, "success"),
        "attempts count per run"
    );
    let first_rows: Vec<&Row> = rows.iter().filter(|r| r.0 == "first").collect();
    assert_eq!(
        first_rows[0].5.as_deref(),
        Some("the runner died while the attempt ran")
    );
    assert!(
        !rows.iter().any(|r| r.2 == "starting" || r.2 == "running"),
        "{rows:?}"
    );
    assert_eq!(p.markers("l"), ["first", "second", "third"]);
}
