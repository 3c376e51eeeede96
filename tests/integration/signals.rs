//! SIGINT, SIGTERM and SIGKILL of the runner; cron-like invocation.

use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{PLUMB, Project, alive, intervals, journaled, run, wait_for};

fn signal(child: &std::process::Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
}

const LONG: &str = "[tasks.quick]\ncommand = 'echo quick >> ran.txt'\n\
    [tasks.long]\ncommand = 'sh -c \"echo $$ > grandchild.pid; exec sleep 30\" & echo $$ > leader.pid; wait'\nrequires = ['quick']\n\
    [tasks.after]\ncommand = 'echo after >> ran.txt'\nrequires = ['long']\n";

fn start_long(p: &Project) -> std::process::Child {
    p.pipeline("s", LONG);
    let child = p
        .cmd(&["run", "s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The runner handles signals from before its first task starts.
    // And quick's marker is committed: the long task may start before that commit.
    wait_for(
        "the long task's leader and grandchild",
        Duration::from_secs(10),
        || {
            !p.read("grandchild.pid").trim().is_empty()
                && p.read("leader.pid").ends_with('\n')
                && p.markers("s") == ["quick"]
        },
    );
    child
}

fn pid(p: &Project, f: &str) -> u32 {
    p.read(f).trim().parse().unwrap()
}

#[test]
fn sigterm_stops_the_task_group_records_interrupted_and_exits_143() {
    let p = Project::new();
    let child = start_long(&p);
    signal(&child, Signal::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let code = out.status.code();
    assert_eq!(code, Some(143), "{}", String::from_utf8_lossy(&out.stdout));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("s: INTERRUPTED by SIGTERM"), "{stdout}");
    assert!(stdout.contains("interrupted:\n  long"), "{stdout}");
    assert!(stdout.contains("resume with:"), "{stdout}");
    wait_for("grandchild gone", Duration::from_secs(5), || {
        !alive(pid(&p, "grandchild.pid"))
    });
    assert!(!alive(pid(&p, "leader.pid")));
    let state: String = p
        .db()
        .query_row("SELECT state FROM attempts WHERE task = 'long'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "interrupted");
    assert_eq!(p.markers("s"), ["quick"]);
    let outcome: String = p
        .db()
        .query_row("SELECT outcome FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(outcome, "interrupted");
}

#[test]
fn sigint_exits_130_and_a_second_one_kills_at_once() {
    let p = Project::new();
    p.pipeline(
        "i",
        "[tasks.stubborn]\ncommand = 'trap \"echo term >> got\" TERM; trap \"\" INT; echo $$ > pid; while true; do sleep 0.05; done'\ngrace = '60s'\n",
    );
    let child = p.cmd(&["run", "i"]).stdout(Stdio::piped()).spawn().unwrap();
    wait_for("task to start", Duration::from_secs(10), || {
        !p.read("pid").trim().is_empty()
    });
    signal(&child, Signal::SIGINT);
    wait_for("the task to be sent SIGTERM", Duration::from_secs(10), || {
        p.read("got").contains("term")
    });
    assert!(
        alive(pid(&p, "pid")),
        "the task ignores SIGTERM and has 60s of grace"
    );
    signal(&child, Signal::SIGINT);
    // Well inside the 60 s of grace: only the second Ctrl-C can have killed it.
    wait_for(
        "the second Ctrl-C to kill the task",
        Duration::from_secs(30),
        || !alive(pid(&p, "pid")),
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(!alive(pid(&p, "pid")));
}

#[test]
fn sigkill_of_the_runner_then_a_rerun_finishes_without_rerunning_done_tasks() {
    let p = Project::new();
    let mut child = start_long(&p);
    let first_leader = pid(&p, "leader.pid");
    let first_grandchild = pid(&p, "grandchild.pid");
    signal(&child, Signal::SIGKILL);
    child.wait().unwrap();
    assert!(alive(first_grandchild), "SIGKILL leaves the task's group running");

    // Make the task quick now, and record each attempt's start/end.
    p.pipeline(
        "s",
        &format!(
            "[tasks.quick]\ncommand = 'echo quick >> ran.txt'\n[tasks.long]\ncommand = '{}'\nrequires = ['quick']\n\
             [tasks.after]\ncommand = 'echo after >> ran.txt'\nrequires = ['long']\n",
            journaled("long", "true")
        ),
    );
    let out = p.plumb(&["run", "s"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("stopping 1 process group left by a runner that died: long (attempt 1)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("recorded 1 attempt of a runner that died as interrupted"),
        "{}",
        out.stderr
    );
    assert!(
        !alive(first_grandchild) && !alive(first_leader),
        "the old group is gone before the task reruns"
    );
    assert_eq!(
        p.lines("ran.txt"),
        ["quick", "after"],
        "quick ran once, in the first run"
    );
    assert_eq!(intervals(&p.lines("journal.txt"), "long").len(), 1);
    let states: Vec<String> = {
        let db = p.db();
        let mut s = db
            .prepare("SELECT state FROM attempts WHERE task = 'long' ORDER BY id")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(states, ["interrupted", "success"]);
    let outcomes: Vec<String> = {
        let db = p.db();
        let mut s = db
            .prepare("SELECT outcome FROM runs ORDER BY started_at")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(outcomes, ["interrupted", "success"]);
    let ok: String = p
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn cron_like_invocation_prints_plain_text() {
    let p = Project::new();
    p.pipeline(
        "c",
        "[tasks.a]\ncommand = 'echo a >> ran.txt'\n[tasks.b]\ncommand = 'exit 1'\n",
    );
    let root = p.path().to_str().unwrap();
    let mut c = Command::new(PLUMB);
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .args(["-C", root, "run", "c"])
        .stdin(Stdio::null());
    let out = run(c);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(!out.all().contains('\x1b'), "no escape codes: {:?}", out.all());
    assert!(
        out.stdout.contains("start   a") && out.stdout.contains("done    a"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("resume with:\n  plumb -C {root} run c\n")),
        "{}",
        out.stdout
    );
    assert_eq!(p.lines("ran.txt"), ["a"]);
    assert!(
        p.exists("state/plumb.db"),
        "state lives under the project, not the cwd"
    );
}

/// Field 22 of /proc/PID/stat: the process's start time in clock ticks since boot.
fn start_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn a_task_that_cleared_its_environment_is_found_by_its_recorded_group_after_a_sigkill() {
    let p = Project::new();
    // `hidden` ends up as a sleep with an empty environment (no PLUMB_RUN_ID to find it by);
    // `quick` ends meanwhile, and its commit carries hidden's process group and start time.
    p.pipeline(
        "e",
        "[pipeline]\nworkers = 2\n\
         [tasks.hidden]\ncommand = 'echo $$ > hidden.pid; exec env -i /bin/sleep 30'\n\
         [tasks.quick]\ncommand = 'sleep 0.3; echo quick >> ran.txt'\n",
    );
    let mut child = p
        .cmd(&["run", "e"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // hidden's pid file first: it exists only once the runner has created its tables, which a
    // query of the markers needs (the database file appears before them).
    wait_for("quick's marker", Duration::from_secs(10), || {
        !p.read("hidden.pid").trim().is_empty() && p.markers("e").contains(&"quick".to_string())
    });
    let hidden = pid(&p, "hidden.pid");
    // The start time plumb recorded without reading /proc is the one /proc has.
    let recorded: (u32, i64) = p
        .db()
        .query_row(
            "SELECT pgid, pgid_start FROM attempts WHERE task = 'hidden'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(recorded, (hidden, start_ticks(hidden) as i64));
    let environ = std::fs::read(format!("/proc/{hidden}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains("PLUMB_RUN_ID"));

    signal(&child, Signal::SIGKILL);
    child.wait().unwrap();
    assert!(alive(hidden), "SIGKILL of the runner leaves the task running");

    p.pipeline(
        "e",
        "[tasks.hidden]\ncommand = 'true'\n[tasks.quick]\ncommand = 'echo quick >> ran.txt'\n",
    );
    let out = p.plumb(&["run", "e"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("stopping 1 process group left by a runner that died: hidden (attempt 1)"),
        "{}",
        out.stderr
    );
    assert!(
        !alive(hidden),
        "the hidden sleep is stopped before hidden runs again"
    );
    assert_eq!(p.lines("ran.txt"), ["quick"], "quick's marker was kept");
}

#[test]
fn a_task_whose_runner_died_before_recording_it_is_found_and_stopped() {
    let p = Project::new();
    // The task SIGKILLs its own runner ($PPID) a moment after it starts, well inside the 20 ms
    // before the runner commits the attempt's row, then lingers. Only its PLUMB_RUN_ID can
    // lead the next run to it. The second time it just succeeds.
    p.pipeline(
        "d",
        "[tasks.orphan]\ncommand = 'if [ -e once ]; then echo ok >> ran.txt; exit 0; fi; \
         touch once; echo $$ > orphan.pid; kill -9 $PPID; exec sleep 30'\n",
    );
    let first = p.plumb(&["run", "d"]);
    assert_eq!(first.code, -1, "the runner dies by a signal: {}", first.all());
    let orphan = pid(&p, "orphan.pid");
    assert!(alive(orphan), "the orphan outlives its runner");
    let rows = p.count("SELECT count(*) FROM attempts WHERE task = 'orphan'");
    // Usually 0: the runner died before its first commit. Should a slow machine have let it
    // commit, the recorded group leads to the orphan as well; the rerun must stop it either way.
    eprintln!("rows recorded for the orphan before recovery: {rows}");

    let out = p.plumb(&["run", "d"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("stopping 1 process group left by a runner that died: orphan (attempt 1)"),
        "{}",
        out.stderr
    );
    assert!(!alive(orphan), "the orphan is stopped before the task runs again");
    assert_eq!(p.lines("ran.txt"), ["ok"]);
}

/// Run ids are unique only within one database: recovery in one project after a dead runner
/// never stops another project's task whose run happens to have the same id.
#[test]
fn recovery_stops_only_processes_of_its_own_state() {
    let a = Project::new();
    a.pipeline("p", "[tasks.t]\ncommand = 'echo $$ > t.pid; exec sleep 60'\n");
    let mut runner = a
        .cmd(&["run", "p"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("a's task", Duration::from_secs(10), || {
        !a.read("t.pid").trim().is_empty()
    });
    let task = pid(&a, "t.pid");
    signal(&runner, Signal::SIGKILL);
    runner.wait().unwrap();
    let run_id: String = a
        .db()
        .query_row("SELECT run_id FROM runs", [], |r| r.get(0))
        .unwrap();

    // Project b has a dead run of its own under the very same id.
    let b = Project::new();
    b.pipeline("p", "[tasks.t]\ncommand = 'true'\n");
    assert_eq!(b.plumb(&["plan", "p"]).code, 0, "b's state exists");
    b.db()
        .execute(
            "INSERT INTO runs (run_id, pipeline, instance, params, started_at, outcome, host, runner_pid, runner_start)
             VALUES (?1, 'p', '', '{}', '2026-01-01T00:00:00Z', 'running', 'h', ?2, 1)",
            rusqlite::params![run_id, runner.id()],
        )
        .unwrap();
    let out = b.plumb(&["run", "p"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stderr.contains("stopping"), "{}", out.stderr);
    assert!(alive(task), "b's recovery left a's task alone");

    a.pipeline("p", "[tasks.t]\ncommand = 'true'\n");
    let out = a.plumb(&["run", "p"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("stopping 1 process group left by a runner that died: t (attempt 1)"),
        "{}",
        out.stderr
    );
    wait_for("a's own task to be stopped", Duration::from_secs(5), || {
        !alive(task)
    });
}

/// A process a task starts in a session of its own (`setsid`) outlives neither the task's
/// attempt nor, when it also cleared its environment, the run.
#[test]
fn processes_that_leave_the_task_group_are_stopped_when_the_attempt_ends() {
    let p = Project::new();
    p.pipeline(
        "e",
        "[tasks.daemon]\ncommand = \"setsid sh -c 'echo $$ > daemon.pid; exec sleep 1001' & while [ ! -s daemon.pid ]; do sleep 0.01; done; echo started\"\n\
         [tasks.stubborn]\ntimeout = '1s'\ngrace = '1s'\n\
         command = \"setsid sh -c 'trap \\\"\\\" TERM; echo $$ > stubborn.pid; while :; do sleep 0.1; done' & sleep 100\"\n\
         [tasks.hidden]\ncommand = \"setsid env -i /bin/sh -c 'echo $$ > hidden.pid; exec sleep 1002' & while [ ! -s hidden.pid ]; do sleep 0.01; done\"\n",
    );
    let out = p.plumb(&["run", "e"]);
    assert_eq!(out.code, 1, "stubborn timed out: {}", out.all());
    let (daemon, stubborn, hidden) = (
        pid(&p, "daemon.pid"),
        pid(&p, "stubborn.pid"),
        pid(&p, "hidden.pid"),
    );
    assert!(!alive(daemon), "the setsid daemon was stopped with its attempt");
    assert!(
        !alive(stubborn),
        "the TERM-ignoring one was killed after the grace"
    );
    assert!(
        !alive(hidden),
        "the one without plumb's environment was stopped at the run's end"
    );
    assert!(
        out.stderr.contains(&format!(
            "plumb: stopping 1 process that tasks left running without their environment: {hidden} (sleep)"
        )),
        "{}",
        out.stderr
    );
    let log = p.plumb(&["logs", "e", "daemon"]);
    assert!(
        log.stdout.contains(&format!(
            "plumb: stopped 1 process the command left running outside its group: {daemon} (sleep)\n"
        )),
        "{}",
        log.stdout
    );
    assert_eq!(p.markers("e"), ["daemon", "hidden"]);
}
