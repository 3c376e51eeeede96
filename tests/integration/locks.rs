//! One runner per instance; different instances side by side; --wait.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{Project, run, wait_for};

/// A task that runs until the test creates `release-DAY`.
const SLOW: &str = "[params]\nday = 'a'\n[tasks.slow]\ncommand = 'echo {{day}} >> started.txt; \
    echo start slow-{{day}} $(date +%s.%N) >> journal.txt; \
    while [ ! -e release-{{day}} ]; do sleep 0.01; done; \
    echo end slow-{{day}} $(date +%s.%N) >> journal.txt; echo {{day}} >> ran.txt'\n";

#[test]
fn a_second_runner_on_the_same_instance_exits_3_at_once_while_another_instance_runs() {
    let p = Project::new();
    p.pipeline("l", SLOW);
    let mut first = p.cmd(&["run", "l"]).stdout(Stdio::null()).spawn().unwrap();
    wait_for("first runner to start its task", Duration::from_secs(10), || {
        p.exists("started.txt")
    });

    // The first runner's task runs until released: the second is refused without waiting.
    let second = p.plumb(&["run", "l"]);
    assert_eq!(second.code, 3, "{}", second.all());
    assert!(
        second
            .stderr
            .contains("l day=a is already being run by another plumb"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        second.stderr
    );

    // A different instance of the same pipeline runs side by side.
    p.file("release-b", "");
    let other = p.plumb(&["run", "l", "-p", "day=b"]);
    assert_eq!(other.code, 0, "{}", other.all());
    p.file("release-a", "");
    assert_eq!(first.wait().unwrap().code(), Some(0));
    let iv = crate::support::intervals(&p.lines("journal.txt"), "slow");
    assert_eq!(iv.len(), 2);
    assert_eq!(
        crate::support::max_overlap(&iv),
        2,
        "the two instances ran side by side: {iv:?}"
    );
    let mut r = p.lines("ran.txt");
    r.sort();
    assert_eq!(r, ["a", "b"]);
}

#[test]
fn wait_queues_behind_the_holder() {
    let p = Project::new();
    p.pipeline("l", SLOW);
    let mut first = p.cmd(&["run", "l"]).stdout(Stdio::null()).spawn().unwrap();
    wait_for("first runner to start", Duration::from_secs(10), || {
        p.exists("started.txt")
    });
    let err = std::fs::File::create(p.path().join("second.err")).unwrap();
    let waiting = p
        .cmd(&["run", "l", "--wait"])
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .unwrap();
    wait_for("the second runner to wait", Duration::from_secs(10), || {
        p.read("second.err").contains("waiting for it to finish (--wait)")
    });
    p.file("release-a", "");
    let second = waiting.wait_with_output().unwrap();
    assert_eq!(second.status.code(), Some(0), "{}", p.read("second.err"));
    let second = crate::support::Output {
        code: 0,
        stdout: String::from_utf8_lossy(&second.stdout).into_owned(),
        stderr: p.read("second.err"),
    };
    assert!(
        second.stdout.contains("1 done before"),
        "the holder finished the task: {}",
        second.stdout
    );
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(p.lines("ran.txt"), ["a"]);
}

#[test]
fn a_runner_killed_with_sigkill_leaves_no_lock() {
    let p = Project::new();
    p.pipeline("l", SLOW);
    let mut first = p.cmd(&["run", "l"]).stdout(Stdio::null()).spawn().unwrap();
    wait_for("first runner to start", Duration::from_secs(10), || {
        p.exists("started.txt")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    p.file("release-a", "");
    let mut c = p.cmd(&["run", "l"]);
    c.stdout(Stdio::piped());
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn status_shows_a_task_running_in_a_live_runner() {
    let p = Project::new();
    p.pipeline("l", SLOW);
    let mut first = p.cmd(&["run", "l"]).stdout(Stdio::null()).spawn().unwrap();
    wait_for("first runner to start", Duration::from_secs(10), || {
        p.exists("started.txt")
    });
    // The attempt's row is committed within COMMIT_EVERY (20 ms) of its start.
    wait_for("status to show the task running", Duration::from_secs(10), || {
        let st: serde_json::Value =
            serde_json::from_str(&p.plumb(&["status", "l", "--json"]).stdout).unwrap();
        st["tasks"][0]["state"] == "running"
    });
    p.file("release-a", "");
    first.wait().unwrap();
    let st: serde_json::Value = serde_json::from_str(&p.plumb(&["status", "l", "--json"]).stdout).unwrap();
    assert_eq!(st["tasks"][0]["state"], "done");
}
