//! `plumb run`: order, parallelism, failure isolation, resume, markers, retries, timeouts.

use std::time::Duration;

use crate::support::{Project, intervals, journaled, max_overlap, wait_for};

fn ran(p: &Project) -> Vec<String> {
    p.lines("ran.txt")
}

#[test]
fn chain_runs_in_dependency_order() {
    let p = Project::new();
    p.pipeline(
        "chain",
        "[tasks.c]\ncommand = 'echo c >> ran.txt'\nrequires = ['b']\n\
         [tasks.a]\ncommand = 'echo a >> ran.txt'\n\
         [tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n",
    );
    let out = p.plumb(&["run", "chain"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(ran(&p), ["a", "b", "c"]);
    assert_eq!(p.markers("chain"), ["a", "b", "c"]);
    assert!(out.stdout.contains("chain: succeeded"), "{}", out.stdout);
    // Each attempt keeps the process group it ran in, however fast it ended (the group is
    // written with the next write: for a chain, the row's own end).
    let groups: Vec<(String, Option<i64>, Option<i64>)> = p
        .db()
        .prepare("SELECT task, pgid, pgid_start FROM attempts ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(groups.len(), 3, "{groups:?}");
    for (task, pgid, start) in &groups {
        assert!(pgid.is_some_and(|g| g > 1), "{task}: {groups:?}");
        assert!(start.is_some_and(|s| s > 0), "{task}: {groups:?}");
    }
}

#[test]
fn diamond_runs_its_shared_task_once() {
    let p = Project::new();
    p.pipeline(
        "d",
        "[tasks.top]\ncommand = 'echo top >> ran.txt'\n\
         [tasks.left]\ncommand = 'echo left >> ran.txt'\nrequires = ['top']\n\
         [tasks.right]\ncommand = 'echo right >> ran.txt'\nrequires = ['top']\n\
         [tasks.bottom]\ncommand = 'echo bottom >> ran.txt'\nrequires = ['left', 'right']\n",
    );
    assert_eq!(p.plumb(&["run", "d"]).code, 0);
    let r = ran(&p);
    assert_eq!(r.iter().filter(|l| *l == "top").count(), 1);
    assert_eq!(r.first().map(String::as_str), Some("top"));
    assert_eq!(r.last().map(String::as_str), Some("bottom"));
    assert_eq!(r.len(), 4);
}

const ISOLATION: &str = "[tasks.a]\ncommand = 'echo a >> ran.txt'\nrequires = ['b', 'c']\n\
    [tasks.b]\ncommand = 'echo b >> ran.txt; test -f fixed'\n\
    [tasks.c]\ncommand = 'sleep 0.3; echo c >> ran.txt'\n\
    [tasks.z]\ncommand = 'echo z >> ran.txt'\nrequires = ['a']\n";

#[test]
fn failure_blocks_only_dependents_and_the_rest_completes() {
    let p = Project::new();
    p.pipeline("iso", ISOLATION);
    let out = p.plumb(&["run", "iso"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let mut r = ran(&p);
    r.sort();
    assert_eq!(r, ["b", "c"], "c completes after b failed; a and z never start");
    assert_eq!(p.markers("iso"), ["c"]);
    let s = &out.stdout;
    assert!(s.contains("iso: FAILED"), "{s}");
    assert!(s.contains("4 tasks: 1 ran, 1 failed, 2 blocked"), "{s}");
    assert!(s.contains("failed:\n  b: exit 1 after 1 attempt"), "{s}");
    assert!(
        s.contains("  a  <- b\n") && s.contains("  z  <- b\n"),
        "transitively blocked: {s}"
    );
    assert!(s.contains("resume with:\n  plumb -C "), "{s}");
    assert!(s.contains(" run iso\n"), "{s}");
}

#[test]
fn resume_after_a_fix_runs_only_what_is_left_and_then_nothing() {
    let p = Project::new();
    p.pipeline("iso", ISOLATION);
    assert_eq!(p.plumb(&["run", "iso"]).code, 1);
    p.file("fixed", "");
    p.file("ran.txt", "");
    let out = p.plumb(&["run", "iso"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(ran(&p), ["b", "a", "z"]);
    assert!(
        out.stdout.contains("4 tasks: 1 done before, 3 ran"),
        "{}",
        out.stdout
    );
    p.file("ran.txt", "");
    let out = p.plumb(&["run", "iso"]);
    assert_eq!(out.code, 0);
    assert!(ran(&p).is_empty(), "third run runs nothing");
    assert!(out.stdout.contains("4 tasks: 4 done before"), "{}", out.stdout);
    // That pass leaves its rows in the WAL (no checkpoint at close): another connection, and
    // the next pass, still see all three runs and every marker.
    let wal = std::fs::metadata(p.path().join("state/plumb.db-wal")).map_or(0, |m| m.len());
    assert!(
        wal > 0,
        "the pass with nothing to run checkpointed its rows away at close"
    );
    let outcomes: Vec<String> = p
        .db()
        .prepare("SELECT outcome FROM runs ORDER BY started_at")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(outcomes, ["failed", "success", "success"]);
    assert_eq!(p.markers("iso"), ["a", "b", "c", "z"]);
    let out = p.plumb(&["run", "iso"]);
    assert!(out.stdout.contains("4 tasks: 4 done before"), "{}", out.stdout);
}

#[test]
fn passes_with_nothing_to_run_keep_the_wal_small() {
    let p = Project::new();
    p.pipeline("w", "[tasks.a]\ncommand = 'true'\n");
    assert_eq!(p.plumb(&["run", "w"]).code, 0);
    let wal = || std::fs::metadata(p.path().join("state/plumb.db-wal")).map_or(0, |m| m.len());
    // Each pass leaves its rows in the WAL until it passes 512 KiB; then one checkpoints it at
    // close, and the WAL starts over.
    let (mut largest, mut shrank, mut last) = (0, false, wal());
    for _ in 0..80 {
        let out = p.plumb(&["run", "w"]);
        assert!(out.stdout.contains(": 1 done before"), "{}", out.all());
        let now = wal();
        largest = largest.max(now);
        shrank |= now < last;
        last = now;
    }
    assert!(shrank, "the WAL only grew, to {last} bytes");
    assert!(largest < 640 << 10, "the WAL grew to {largest} bytes");
    assert_eq!(p.count("SELECT COUNT(*) FROM runs WHERE outcome = 'success'"), 81);
}

/// A run id is a second and a 16-bit salt, so two runs in one second can draw the same one
/// (2 passes of 3,000 did, before a taken id was drawn again). With every id of the next three
/// seconds taken, a run must still start, under an id from a later second.
#[test]
fn a_run_whose_id_is_taken_draws_another() {
    let p = Project::new();
    p.pipeline("w", "[tasks.a]\ncommand = 'true'\n");
    assert_eq!(p.plumb(&["run", "w"]).code, 0);
    let second = |at: chrono::DateTime<chrono::Utc>| at.format("%Y%m%dT%H%M%SZ").to_string();
    // Take every id of three seconds still ahead, then start the run once the clock has reached
    // the first of them. A machine so slow that taking them outlasted the lead takes three
    // seconds further ahead, doubling the lead each time.
    let mut lead = 2;
    let seconds = loop {
        let now = chrono::Utc::now();
        let seconds: Vec<String> = (lead..lead + 3)
            .map(|s| second(now + chrono::Duration::seconds(s)))
            .collect();
        let db = p.db();
        for s in &seconds {
            db.execute(
                "WITH RECURSIVE salt(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM salt WHERE n < 65535)
                 INSERT OR IGNORE INTO runs (run_id, pipeline, instance, params, started_at, ended_at, outcome, host, runner_pid, runner_start)
                 SELECT ?1 || '-' || printf('%04x', n), 'other', '', '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z', 'success', 'h', 1, 1 FROM salt",
                [s],
            )
            .unwrap();
        }
        if second(chrono::Utc::now()) < seconds[0] {
            break seconds;
        }
        lead *= 2;
    };
    wait_for(
        "the first taken second",
        Duration::from_secs(lead as u64 + 10),
        || second(chrono::Utc::now()) >= seconds[0],
    );
    let out = p.plumb(&["run", "w"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let id: String = p
        .db()
        .query_row(
            "SELECT run_id FROM runs WHERE pipeline = 'w' ORDER BY rowid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(id[..16] > *seconds[2], "{id}");
    assert!(out.stdout.contains(&format!("run {id}: ")), "{}", out.stdout);
}

#[test]
fn a_version_3_state_is_migrated_and_keeps_its_markers() {
    let p = Project::new();
    p.file("b.fail", "");
    p.pipeline("m", "[tasks.a]\ncommand = 'echo a >> ran.txt'\n[tasks.b]\ncommand = 'test ! -e b.fail && echo b >> ran.txt'\nrequires = ['a']\n");
    assert_eq!(p.plumb(&["run", "m"]).code, 1);
    // Version 3 is version 4 with the index of running attempts, and without what version 7
    // and 9 added (versions 5 and 6 only rewrite rows; 8 is written to be repeatable).
    {
        let db = p.db();
        db.execute_batch(
            "CREATE INDEX attempts_running ON attempts(state) WHERE state = 'running';
             DROP TABLE metrics; ALTER TABLE attempts DROP COLUMN warnings; DROP TABLE deadlines; \
             DROP INDEX fires_unwatched; ALTER TABLE fires DROP COLUMN deadline_watched; PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    std::fs::remove_file(p.path().join("b.fail")).unwrap();
    let out = p.plumb(&["run", "m"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("2 tasks: 1 done before, 1 ran"),
        "{}",
        out.stdout
    );
    assert_eq!(p.lines("ran.txt"), ["a", "b"]);
    let version: i64 = p.db().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 9, "migrated through every later schema");
    assert_eq!(
        p.count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'attempts_running'"),
        0
    );
}

#[test]
fn summary_shows_the_tail_of_the_failed_log() {
    let p = Project::new();
    p.pipeline(
        "t",
        "[tasks.noisy]\ncommand = 'for i in $(seq 1 30); do echo line $i; done; echo boom >&2; exit 7'\n",
    );
    let out = p.plumb(&["run", "t"]);
    assert_eq!(out.code, 1);
    let s = &out.stdout;
    assert!(s.contains("noisy: exit 7 after 1 attempt"), "{s}");
    assert!(s.contains("    | boom\n"), "{s}");
    assert!(s.contains("    | plumb: the command failed: exit 7\n"), "{s}");
    assert!(
        s.contains("    | line 30\n") && s.contains("    | line 23\n"),
        "{s}"
    );
    assert!(!s.contains("    | line 22\n"), "only the last 10 lines: {s}");
    assert!(s.contains("log: state/logs/t/"), "{s}");
    let log = p.plumb(&["logs", "t", "noisy"]);
    assert_eq!(log.code, 0);
    assert!(log.stdout.contains("line 1\n") && log.stdout.contains("boom\n"));
}

#[test]
fn exit_zero_without_the_declared_output_is_a_failure() {
    let p = Project::new();
    p.pipeline("o", "[tasks.a]\ncommand = 'true'\noutputs = ['out/a.txt']\n[tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n");
    let out = p.plumb(&["run", "o"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("did not create its declared output"),
        "{}",
        out.stdout
    );
    assert!(p.markers("o").is_empty());
    assert!(ran(&p).is_empty());
}

#[test]
fn failing_check_keeps_the_task_undone() {
    let p = Project::new();
    p.pipeline(
        "c",
        "[tasks.a]\ncommand = 'echo a >> ran.txt'\ncheck = 'test -f ok'\n",
    );
    let out = p.plumb(&["run", "c"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("check failed: exit 1"), "{}", out.stdout);
    assert!(p.markers("c").is_empty());
    p.file("ok", "");
    assert_eq!(p.plumb(&["run", "c"]).code, 0);
    assert_eq!(p.markers("c"), ["a"]);
    assert_eq!(ran(&p), ["a", "a"]);
}

#[test]
fn deleted_output_makes_the_task_run_again() {
    let p = Project::new();
    p.pipeline(
        "d",
        "[tasks.a]\ncommand = 'echo a >> ran.txt; mkdir -p out; echo x > out/a'\noutputs = ['out/a']\n\
         [tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n",
    );
    assert_eq!(p.plumb(&["run", "d"]).code, 0);
    std::fs::remove_file(p.path().join("out/a")).unwrap();
    let plan = p.plumb(&["plan", "d"]);
    assert!(plan.stdout.contains("  run      a"), "{}", plan.stdout);
    assert!(plan.stdout.contains("  done     b"), "{}", plan.stdout);
    assert_eq!(p.plumb(&["run", "d"]).code, 0);
    assert_eq!(ran(&p), ["a", "b", "a"]);
}

#[test]
fn workers_bound_concurrency() {
    let p = Project::new();
    let mut toml = String::from("[pipeline]\nworkers = 2\n");
    for i in 0..6 {
        toml.push_str(&format!(
            "[tasks.w{i}]\ncommand = '{}'\n",
            journaled(&format!("w{i}"), "sleep 0.3")
        ));
    }
    p.pipeline("w", &toml);
    assert_eq!(p.plumb(&["run", "w"]).code, 0);
    let iv = intervals(&p.lines("journal.txt"), "w");
    assert_eq!(iv.len(), 6);
    assert_eq!(max_overlap(&iv), 2, "{iv:?}");
    // --workers overrides the pipeline.
    p.plumb(&["reset", "w", "w0", "w1", "w2", "w3", "w4", "w5"]);
    p.file("journal.txt", "");
    assert_eq!(p.plumb(&["run", "w", "--workers", "3"]).code, 0);
    assert_eq!(max_overlap(&intervals(&p.lines("journal.txt"), "w")), 3);
}

#[test]
fn a_resource_pool_of_one_serialises_its_holders() {
    let p = Project::new();
    let mut toml = String::from("[pipeline]\nworkers = 4\n[resources]\ndb = 1\n");
    for i in 0..4 {
        toml.push_str(&format!(
            "[tasks.h{i}]\ncommand = '{}'\nresources = {{ db = 1 }}\n",
            journaled(&format!("h{i}"), "sleep 0.2")
        ));
    }
    toml.push_str(&format!(
        "[tasks.free]\ncommand = '{}'\n",
        journaled("free", "sleep 0.5")
    ));
    p.pipeline("r", &toml);
    assert_eq!(p.plumb(&["run", "r"]).code, 0);
    let lines = p.lines("journal.txt");
    let holders = intervals(&lines, "h");
    assert_eq!(holders.len(), 4);
    assert_eq!(max_overlap(&holders), 1, "{holders:?}");
    let all = intervals(&lines, "");
    assert!(max_overlap(&all) >= 2, "the free task overlaps a holder: {all:?}");
}

#[test]
fn priority_orders_ready_tasks() {
    let p = Project::new();
    p.pipeline(
        "pr",
        "[pipeline]\nworkers = 1\n[tasks.low]\ncommand = 'echo low >> ran.txt'\n\
         [tasks.high]\ncommand = 'echo high >> ran.txt'\npriority = 10\n\
         [tasks.mid]\ncommand = 'echo mid >> ran.txt'\npriority = 5\n",
    );
    assert_eq!(p.plumb(&["run", "pr"]).code, 0);
    assert_eq!(ran(&p), ["high", "mid", "low"]);
}

#[test]
fn retries_then_success() {
    let p = Project::new();
    // Fails on attempts 1 and 2, succeeds on 3.
    p.pipeline(
        "r",
        "[tasks.flaky]\ncommand = 'echo $PLUMB_ATTEMPT >> ran.txt; test $PLUMB_ATTEMPT -ge 3'\nretries = 2\nretry_delay = '100ms'\n",
    );
    let out = p.plumb(&["run", "r"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(ran(&p), ["1", "2", "3"]);
    assert!(out.stdout.contains("retry   flaky: exit 1"), "{}", out.stdout);
    let st = p.plumb(&["status", "r", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(v["tasks"][0]["state"], "done");
    assert_eq!(v["tasks"][0]["attempts"], 3);
}

#[test]
fn retries_exhausted_fail_the_task() {
    let p = Project::new();
    p.pipeline(
        "r",
        "[tasks.bad]\ncommand = 'echo x >> ran.txt; exit 3'\nretries = 1\nretry_delay = '50ms'\n",
    );
    let out = p.plumb(&["run", "r"]);
    assert_eq!(out.code, 1);
    assert_eq!(ran(&p).len(), 2);
    assert!(
        out.stdout.contains("bad: exit 3 after 2 attempts"),
        "{}",
        out.stdout
    );
    let logs = std::fs::read_dir(p.path().join("state/logs/r")).unwrap().count();
    assert_eq!(logs, 1, "one run directory");
}

#[test]
fn timeout_kills_the_whole_process_group_including_a_grandchild() {
    let p = Project::new();
    // The grandchild records its pid, ignores nothing, and would outlive a naive kill of sh.
    p.pipeline(
        "t",
        "[tasks.slow]\ncommand = 'sh -c \"echo $$ > grandchild.pid; exec sleep 30\" & wait'\ntimeout = '300ms'\ngrace = '1s'\n",
    );
    let start = std::time::Instant::now();
    let out = p.plumb(&["run", "t"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(start.elapsed().as_secs() < 10);
    assert!(out.stdout.contains("timed out after 300ms"), "{}", out.stdout);
    let pid: u32 = p.read("grandchild.pid").trim().parse().unwrap();
    crate::support::wait_for("grandchild to die", std::time::Duration::from_secs(5), || {
        !crate::support::alive(pid)
    });
}

#[test]
fn timeout_escalates_to_sigkill_when_sigterm_is_ignored() {
    let p = Project::new();
    p.pipeline(
        "t",
        "[tasks.stubborn]\ncommand = 'trap \"\" TERM; echo $$ > pid; while true; do sleep 0.05; done'\ntimeout = '200ms'\ngrace = '300ms'\n",
    );
    let out = p.plumb(&["run", "t"]);
    assert_eq!(out.code, 1);
    let pid: u32 = p.read("pid").trim().parse().unwrap();
    assert!(!crate::support::alive(pid));
    let db = p.db();
    let (state, signal): (String, Option<i32>) = db
        .query_row("SELECT state, signal FROM attempts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(state, "timeout");
    assert_eq!(signal, Some(9));
}

#[test]
fn shell_metacharacters_in_params_reach_the_task_literally() {
    let p = Project::new();
    p.pipeline(
        "q",
        "[params]\nregion = 'eu'\n[tasks.a]\ncommand = 'printf \"%s|\" {{region}} \"{{region}}\" > got.txt; printf %s \"$PLUMB_PARAM_REGION\" > env.txt'\n\
         [tasks.b]\ncommand = ['sh', '-c', 'printf %s \"$1\" > argv.txt', 'x', '{{region}}']\n",
    );
    let evil = "$(touch pwned) `touch pwned2` it's \"q\"; rm -rf x";
    let out = p.plumb(&["run", "q", "-p", &format!("region={evil}")]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.read("got.txt"), format!("{evil}|{evil}|"));
    assert_eq!(p.read("env.txt"), evil);
    assert_eq!(p.read("argv.txt"), evil);
    assert!(!p.exists("pwned") && !p.exists("pwned2"));
    // The resume command quotes the value too.
    assert!(out.stdout.contains("succeeded"));
}

#[test]
fn task_environment_and_cwd() {
    let p = Project::new();
    p.pipeline(
        "e",
        "[params]\nday = { type = 'date', default = '2026-02-28' }\n[defaults]\nenv = { SHARED = 's' }\n\
         [tasks.a]\ncommand = 'echo \"$PLUMB_PIPELINE $PLUMB_TASK $PLUMB_ATTEMPT $PLUMB_PARAM_DAY $SHARED $OWN {{run_id}}\" > ../env.txt; pwd > ../cwd.txt'\n\
         env = { OWN = 'o' }\ncwd = 'sub'\n",
    );
    std::fs::create_dir(p.path().join("sub")).unwrap();
    let out = p.plumb(&["run", "e"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let env = p.read("env.txt");
    let f: Vec<&str> = env.split_whitespace().collect();
    assert_eq!(&f[..6], &["e", "a", "1", "2026-02-28", "s", "o"]);
    assert!(
        out.stdout.contains(&format!("run {}", f[6])),
        "run id placeholder matches: {env} / {}",
        out.stdout
    );
    assert!(p.read("cwd.txt").trim().ends_with("/sub"));
}

#[test]
fn argv_commands_run_without_a_shell() {
    let p = Project::new();
    p.pipeline("a", "[tasks.a]\ncommand = ['/bin/echo', '$HOME', '*']\n");
    assert_eq!(p.plumb(&["run", "a"]).code, 0);
    let log = p.plumb(&["logs", "a", "a"]);
    assert!(log.stdout.contains("\n$HOME *\n"), "{}", log.stdout);
    p.pipeline("b", "[tasks.a]\ncommand = ['no-such-program-xyz']\n");
    let out = p.plumb(&["run", "b"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("cannot run `no-such-program-xyz`: not found in PATH ("),
        "{}",
        out.stdout
    );
    // A missing working directory is named as such, not as a missing /bin/sh.
    p.pipeline("c", "[tasks.a]\ncommand = 'echo hi'\ncwd = 'gone'\n");
    let out = p.plumb(&["run", "c"]);
    assert_eq!(out.code, 1);
    let want = format!(
        "its working directory {} does not exist",
        p.path().join("gone").display()
    );
    assert!(out.stdout.contains(&want), "{}", out.stdout);
}

#[test]
fn argv_names_are_found_on_the_tasks_path_and_sigpipe_behaves_as_in_a_shell() {
    let p = Project::new();
    p.file(
        "tools/say-hi",
        "#!/bin/sh\necho \"hi from $PLUMB_TASK\" > hi.txt\n",
    );
    let tool = p.path().join("tools/say-hi");
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", p.path().join("tools").display());
    p.pipeline(
        "t",
        &format!(
            "[tasks.hi]\ncommand = ['say-hi']\nenv = {{ PATH = '{path}' }}\n\
             [tasks.pipe]\ncommand = 'yes | head -n 1 > yes.txt'\n"
        ),
    );
    let out = p.plumb(&["run", "t"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.read("hi.txt"), "hi from hi\n");
    assert_eq!(p.read("yes.txt"), "y\n");
    // With SIGPIPE left ignored (Rust's default in plumb itself), `yes` would live on to
    // complain about a broken pipe in the log; at its default it dies quietly.
    let log = p.plumb(&["logs", "t", "pipe"]);
    assert!(!log.all().contains("Broken pipe"), "{}", log.all());
}

#[test]
fn only_runs_the_task_and_its_missing_upstream() {
    let p = Project::new();
    p.pipeline(
        "o",
        "[tasks.a]\ncommand = 'echo a >> ran.txt'\n[tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n\
         [tasks.c]\ncommand = 'echo c >> ran.txt'\nrequires = ['b']\n[tasks.x]\ncommand = 'echo x >> ran.txt'\n",
    );
    let out = p.plumb(&["run", "o", "--only", "b"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(ran(&p), ["a", "b"]);
    p.file("ran.txt", "");
    assert_eq!(p.plumb(&["run", "o", "--only", "c"]).code, 0);
    assert_eq!(ran(&p), ["c"], "a and b are done already");
}

#[test]
fn fail_fast_starts_nothing_after_the_first_failure() {
    let p = Project::new();
    p.pipeline(
        "f",
        "[pipeline]\nworkers = 1\n[tasks.a]\ncommand = 'echo a >> ran.txt; exit 1'\npriority = 9\n\
         [tasks.b]\ncommand = 'echo b >> ran.txt'\n[tasks.c]\ncommand = 'echo c >> ran.txt'\n",
    );
    let out = p.plumb(&["run", "f", "--fail-fast"]);
    assert_eq!(out.code, 1);
    assert_eq!(ran(&p), ["a"]);
    assert!(out.stdout.contains("2 not started"), "{}", out.stdout);
    // Without it, the others run.
    p.file("ran.txt", "");
    assert_eq!(p.plumb(&["run", "f"]).code, 1);
    assert_eq!(ran(&p), ["a", "b", "c"]);
}

#[test]
fn missing_external_input_exits_4_and_its_dependents_wait() {
    let p = Project::new();
    p.pipeline(
        "x",
        "[tasks.dump]\noutputs = ['inbox/dump.csv']\n[tasks.use]\ncommand = 'echo use >> ran.txt'\nrequires = ['dump']\n\
         [tasks.other]\ncommand = 'echo other >> ran.txt'\n",
    );
    let out = p.plumb(&["run", "x"]);
    assert_eq!(out.code, 4, "{}", out.all());
    assert_eq!(ran(&p), ["other"]);
    assert!(out.stdout.contains("missing inputs:\n  dump"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("waiting for a missing input:\n  use  <- dump"),
        "{}",
        out.stdout
    );
    let st: serde_json::Value = serde_json::from_str(&p.plumb(&["status", "x", "--json"]).stdout).unwrap();
    let states: Vec<&str> = st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["missing", "waiting", "done"], "dependency order");
    p.file("inbox/dump.csv", "x");
    assert_eq!(p.plumb(&["run", "x"]).code, 0);
    assert_eq!(ran(&p), ["other", "use"]);
}

#[test]
fn external_input_with_wait_is_polled_until_it_appears() {
    let p = Project::new();
    p.pipeline(
        "w",
        "[tasks.dump]\noutputs = ['inbox/dump.csv']\nwait = '20s'\n[tasks.use]\ncommand = 'echo use >> ran.txt'\nrequires = ['dump']\n",
    );
    let log = std::fs::File::create(p.path().join("run.out")).unwrap();
    let mut child = p.cmd(&["run", "w"]).stdout(log).spawn().unwrap();
    crate::support::wait_for(
        "the runner to poll for the input",
        Duration::from_secs(10),
        || {
            p.read("run.out")
                .contains("wait    dump: input not there yet; looking again until 20s from now")
        },
    );
    assert!(ran(&p).is_empty());
    p.file("inbox/dump.csv", "x");
    assert_eq!(child.wait().unwrap().code(), Some(0), "{}", p.read("run.out"));
    assert!(p.read("run.out").contains("input   dump is there\n"));
    assert_eq!(ran(&p), ["use"]);
}

#[test]
fn changed_definitions_are_flagged_and_rerun_on_request() {
    let p = Project::new();
    p.pipeline("c", "[tasks.a]\ncommand = 'echo a1 >> ran.txt'\n[tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n");
    assert_eq!(p.plumb(&["run", "c"]).code, 0);
    p.pipeline("c", "[tasks.a]\ncommand = 'echo a2 >> ran.txt'\n[tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n");
    let plan = p.plumb(&["plan", "c"]);
    assert!(plan.stdout.contains("  changed  a"), "{}", plan.stdout);
    assert_eq!(p.plumb(&["run", "c"]).code, 0);
    assert_eq!(ran(&p), ["a1", "b"], "a changed task stays done by default");
    assert_eq!(p.plumb(&["run", "c", "--rerun-changed"]).code, 0);
    assert_eq!(ran(&p), ["a1", "b", "a2", "b"]);
    assert!(p.plumb(&["plan", "c"]).stdout.contains("  done     a"));
}

#[test]
fn params_make_separate_instances() {
    let p = Project::new();
    p.pipeline("d", "[params]\nday = { type = 'date', default = 'today' }\n[tasks.a]\ncommand = 'echo {{day}} >> ran.txt'\n");
    assert_eq!(p.plumb(&["run", "d", "-p", "day=2026-01-01"]).code, 0);
    assert_eq!(p.plumb(&["run", "d", "-p", "day=2026-01-02"]).code, 0);
    assert_eq!(p.plumb(&["run", "d", "-p", "day=2026-01-01"]).code, 0);
    assert_eq!(ran(&p), ["2026-01-01", "2026-01-02"]);
    let bad = p.plumb(&["run", "d", "-p", "day=01/02/2026"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("param `day`: \"01/02/2026\" is not a date"),
        "{}",
        bad.stderr
    );
    let unknown = p.plumb(&["run", "d", "-p", "dy=2026-01-01"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("has no param `dy` (did you mean `day`?)"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn reset_downstream_forgets_markers() {
    let p = Project::new();
    p.pipeline(
        "r",
        "[tasks.a]\ncommand = 'echo a >> ran.txt'\n[tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n\
         [tasks.c]\ncommand = 'echo c >> ran.txt'\nrequires = ['b']\n",
    );
    assert_eq!(p.plumb(&["run", "r"]).code, 0);
    let out = p.plumb(&["reset", "r", "b", "--downstream"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("reset 2 tasks"), "{}", out.stdout);
    assert_eq!(p.markers("r"), ["a"]);
    assert_eq!(p.plumb(&["run", "r"]).code, 0);
    assert_eq!(ran(&p), ["a", "b", "c", "b", "c"]);
}

#[test]
fn foreach_instances_run_and_a_base_name_waits_for_all() {
    let p = Project::new();
    p.pipeline(
        "f",
        "[tasks.shard]\nforeach = { n = ['1', '2', '3'] }\ncommand = 'echo shard{{n}} >> ran.txt'\n\
         [tasks.join]\ncommand = 'echo join >> ran.txt'\nrequires = ['shard']\n",
    );
    assert_eq!(p.plumb(&["run", "f"]).code, 0);
    let r = ran(&p);
    assert_eq!(r.len(), 4);
    assert_eq!(r.last().map(String::as_str), Some("join"));
    assert_eq!(p.markers("f"), ["join", "shard[n=1]", "shard[n=2]", "shard[n=3]"]);
}

#[test]
fn a_silent_task_leaves_no_log_file_and_logs_says_so() {
    let p = Project::new();
    p.pipeline(
        "q",
        "[tasks.quiet]\ncommand = 'true'\n[tasks.loud]\ncommand = 'echo hello'\n",
    );
    assert_eq!(p.plumb(&["run", "q"]).code, 0);
    let quiet = p.plumb(&["logs", "q", "quiet"]);
    assert_eq!(quiet.code, 0);
    assert!(quiet.stderr.contains("printed nothing"), "{}", quiet.stderr);
    let loud = p.plumb(&["logs", "q", "loud"]);
    assert!(
        loud.stdout.starts_with("# plumb: loud attempt 1/1, run "),
        "{}",
        loud.stdout
    );
    assert!(loud.stdout.ends_with("$ echo hello\nhello\n"), "{}", loud.stdout);
    let files: Vec<String> = std::fs::read_dir(p.path().join("state/logs/q"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["loud.1.log"]);
}

#[test]
fn processes_a_successful_task_leaves_behind_are_stopped() {
    let p = Project::new();
    // The task exits 0 at once but leaves a background process in its group.
    p.pipeline(
        "bg",
        "[tasks.a]\ncommand = 'sleep 30 & echo $! > leftover.pid'\ngrace = '1s'\n[tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n",
    );
    let out = p.plumb(&["run", "bg"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let pid: u32 = p.read("leftover.pid").trim().parse().unwrap();
    assert!(
        !crate::support::alive(pid),
        "no process of a task outlives its attempt"
    );
    assert_eq!(ran(&p), ["b"]);
    let log = p.plumb(&["logs", "bg", "a"]);
    assert!(
        log.stdout
            .contains("plumb: processes of the task were still running after it ended; stopping them"),
        "{}",
        log.stdout
    );
}

#[test]
fn a_process_that_leaves_the_group_holding_the_output_is_stopped_with_the_attempt() {
    // The stray process escapes the group's stop with setsid (the task waits until it has)
    // and keeps the output pipe open; the runner, its subreaper, stops it when the command
    // ends, so its late line never comes and the run does not wait for it.
    let p = Project::new();
    p.pipeline(
        "stray",
        r#"[tasks.a]
command = """
setsid sh -c 'echo $$ > stray.pid; sleep 4; echo late' &
while [ ! -s stray.pid ]; do sleep 0.01; done
echo early"""
"#,
    );
    let out = p.plumb(&["run", "stray"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let stray: u32 = p.read("stray.pid").trim().parse().unwrap();
    assert!(!crate::support::alive(stray), "the stray was stopped");
    let log = p.plumb(&["logs", "stray", "a"]);
    assert!(
        log.stdout.ends_with(&format!(
            "early\nplumb: stopped 1 process the command left running outside its group: {stray} (sh)\n"
        )),
        "{}",
        log.stdout
    );
}

#[test]
fn a_task_that_prints_a_lot_has_all_of_it_in_its_log() {
    // More than the first small read of the output and more than the 64 KiB buffer after it.
    let p = Project::new();
    p.pipeline("n", "[tasks.lots]\ncommand = 'seq 1 40000'\n");
    assert_eq!(p.plumb(&["run", "n"]).code, 0);
    let out = p.plumb(&["logs", "n", "lots"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let expected: String = (1..=40000).map(|i| format!("{i}\n")).collect();
    assert!(expected.len() > 200_000);
    let body = out
        .stdout
        .split_once("$ seq 1 40000\n")
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no command line in the log: {}", &out.stdout[..200]));
    assert!(
        body == expected,
        "the log lost or changed output ({} of {} bytes)",
        body.len(),
        expected.len()
    );
}

#[test]
fn outputs_checked_by_listing_their_directory_follow_deletions_and_symlinks() {
    // 70 outputs in one directory: enough for planning to list it rather than stat each.
    let p = Project::new();
    let mut text = String::new();
    for i in 0..70 {
        text += &format!(
            "[tasks.t{i}]\ncommand = 'echo {i} >> ran.txt; touch out/t{i}'\noutputs = ['out/t{i}']\n"
        );
    }
    p.pipeline("o", &text);
    std::fs::create_dir(p.path().join("out")).unwrap();
    assert_eq!(p.plumb(&["run", "o"]).code, 0);
    assert_eq!(ran(&p).len(), 70);
    std::fs::write(p.path().join("ran.txt"), "").unwrap();

    let out = p.path().join("out");
    std::fs::remove_file(out.join("t33")).unwrap();
    std::fs::remove_file(out.join("t34")).unwrap();
    std::os::unix::fs::symlink(out.join("gone"), out.join("t34")).unwrap();
    std::fs::remove_file(out.join("t35")).unwrap();
    std::os::unix::fs::symlink(out.join("t36"), out.join("t35")).unwrap();

    let run = p.plumb(&["run", "o"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("2 to run, 68 done before"), "{}", run.stdout);
    // t33 was deleted and t34 is a dangling link: both run again; t35 links to a file that exists.
    let mut again = ran(&p);
    again.sort();
    assert_eq!(again, ["33", "34"]);
}

#[test]
fn many_workers_under_a_low_open_files_limit_raise_it_and_all_run() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    use std::os::unix::process::CommandExt;
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        hard >= 256,
        "the hard open-files limit here is {hard}; this test needs 256"
    );
    // 40 tasks at once need about 3 descriptors each; the runner starts with a soft limit of 64.
    let p = Project::new();
    let mut toml = String::from("[pipeline]\nworkers = 40\n");
    for i in 0..40 {
        toml.push_str(&format!(
            "[tasks.t{i}]\ncommand = 'sleep 0.5; ulimit -Sn > limit.t{i}'\n"
        ));
    }
    p.pipeline("many", &toml);
    let mut cmd = p.cmd(&["run", "many"]);
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || setrlimit(Resource::RLIMIT_NOFILE, 64, hard).map_err(std::io::Error::from));
    }
    let out = crate::support::run(cmd);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.markers("many").len(), 40, "{}", out.all());
    assert!(!out.stderr.contains("open files"), "{}", out.stderr);
    // The tasks inherit the raised soft limit (documented in running.md).
    assert_eq!(p.read("limit.t0").trim(), (40 * 3 + 64).to_string());
}

#[test]
fn plain_progress_lines_show_while_the_task_still_runs() {
    use std::io::BufRead;
    // Lines are gathered per wake-up and written before the runner waits again: the start
    // line of a long task is out while it runs, not held until the end of the run.
    let p = Project::new();
    p.pipeline("slow", "[tasks.a]\ncommand = 'sleep 5'\n");
    let mut child = p
        .cmd(&["run", "slow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !seen.iter().any(|l: &String| l.ends_with("start   a")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(still_running, "the run ended early: {seen:?}");
    assert!(
        seen.iter().any(|l| l.ends_with("start   a")),
        "no start line within 3 s of a 5 s task: {seen:?}"
    );
    assert!(
        seen[0].contains("run ") && seen[0].contains("1 to run"),
        "{seen:?}"
    );
}

#[test]
fn too_low_a_hard_open_files_limit_is_said_at_the_start() {
    use nix::sys::resource::{Resource, setrlimit};
    use std::os::unix::process::CommandExt;
    let p = Project::new();
    p.pipeline(
        "many",
        "[pipeline]\nworkers = 40\n[tasks.a]\ncommand = 'true'\n[tasks.b]\ncommand = 'true'\n",
    );
    let mut cmd = p.cmd(&["run", "many"]);
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| setrlimit(Resource::RLIMIT_NOFILE, 64, 64).map_err(std::io::Error::from));
    }
    let out = crate::support::run(cmd);
    // Two tasks fit in 64 files: they run; the warning counts the workers the tasks can use.
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("plumb: warning: 2 workers need about 70 open files, and the limit is 64 (ulimit -n)"),
        "{}",
        out.stderr
    );
}
