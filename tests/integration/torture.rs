//! Crash torture: a random 200-task graph, the runner SIGKILLed at random moments (during
//! spawns, commits, anything), resumed, again and again until the instance is done.
//!
//! Each task takes an exclusive `flock` on its own lock file while it runs, so a second attempt
//! that starts while an earlier one still runs cannot go unnoticed: it writes `overlap`. Tasks
//! journal `start`/`end` with nanosecond timestamps; after each kill the test snapshots the
//! committed markers: no task may have one while a task it requires has none, and no task with
//! a committed marker may start again afterwards.
//!
//! CI runs 10 kills; `PLUMB_TORTURE_KILLS=500 cargo test --release torture` runs more
//! (bench/README.md).

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::Project;

/// xorshift64*: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// The pipeline's text, and each task's requirements (`requires[i]` for `t{i}`).
fn pipeline(rng: &mut Rng, n: usize) -> (String, Vec<Vec<u64>>) {
    let mut requires = Vec::with_capacity(n);
    let mut s = String::from("[pipeline]\nworkers = 4\n[params]\nround = '0'\n");
    for i in 0..n {
        let sleep = 2 + rng.below(18);
        s.push_str(&format!(
            "[tasks.t{i}]\ncommand = \"flock -n locks/{{{{round}}}}-t{i} sh -c 'echo start $PLUMB_PARAM_ROUND-t{i} $(date +%s%N) >> journal.txt; sleep 0.{sleep:03}; echo end $PLUMB_PARAM_ROUND-t{i} $(date +%s%N) >> journal.txt' || echo overlap {{{{round}}}}-t{i} >> journal.txt\"\n"
        ));
        if i > 0 {
            let k = rng.below(4).min(i as u64);
            let deps: HashSet<u64> = (0..k).map(|_| rng.below(i as u64)).collect();
            let list: Vec<String> = deps.iter().map(|d| format!("\"t{d}\"")).collect();
            s.push_str(&format!("requires = [{}]\n", list.join(", ")));
            requires.push(deps.into_iter().collect());
        } else {
            requires.push(Vec::new());
        }
    }
    (s, requires)
}

/// Markers of one round's instance, as journal names (`3-t17`). A runner killed before it made
/// the state (or its schema) has committed none; the test must not create the file itself.
fn markers(p: &Project, round: usize) -> HashSet<String> {
    let path = p.path().join("state/plumb.db");
    let Ok(db) = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return HashSet::new();
    };
    let Ok(mut stmt) = db.prepare("SELECT task FROM markers WHERE pipeline = 'torture' AND instance = ?1")
    else {
        return HashSet::new();
    };
    stmt.query_map([format!("round={round}")], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|t| format!("{round}-{}", t.unwrap()))
        .collect()
}

#[test]
fn sigkill_at_random_moments_never_loses_a_marker_or_overlaps_attempts() {
    let kills: usize = std::env::var("PLUMB_TORTURE_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(10);
    let seed = now_ns() as u64 | 1;
    eprintln!("torture seed {seed}, {kills} kills");
    let mut rng = Rng(seed);
    let p = Project::new();
    std::fs::create_dir(p.path().join("locks")).unwrap();
    let (text, requires) = pipeline(&mut rng, 200);
    p.pipeline("torture", &text);

    // (kill time, markers committed at that moment)
    let mut snapshots: Vec<(u128, HashSet<String>)> = Vec::new();
    let mut round = 0;
    // Each round is a fresh instance, killed until it completes; rounds go on until every kill
    // has been made.
    while snapshots.len() < kills {
        round += 1;
        let arg = format!("round={round}");
        let mut done = false;
        while snapshots.len() < kills {
            let mut child = p
                .cmd(&["run", "torture", "-p", &arg])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(rng.below(120_000)));
            let killed = child.try_wait().unwrap().is_none();
            let _ = child.kill();
            let status = child.wait().unwrap();
            let at = now_ns();
            if !killed && status.code() == Some(0) {
                done = true;
                break;
            }
            let committed = markers(&p, round);
            // Dependents start before their requirements' markers are committed, but are
            // recorded after them: what a kill leaves is never a dependent done without them.
            for (i, reqs) in requires.iter().enumerate() {
                if committed.contains(&format!("{round}-t{i}")) {
                    for r in reqs {
                        assert!(
                            committed.contains(&format!("{round}-t{r}")),
                            "t{i} has a marker but t{r}, which it requires, has none (round {round}, seed {seed})"
                        );
                    }
                }
            }
            snapshots.push((at, committed));
        }
        // Finish the round: resume until done.
        for _ in 0..5 {
            if done {
                break;
            }
            let out = p.plumb(&["run", "torture", "-p", &arg]);
            assert!(out.code == 0 || out.code == 1, "{}", out.all());
            done = out.code == 0;
        }
        assert!(done, "round {round} completes after its kills (seed {seed})");
        assert_eq!(
            markers(&p, round).len(),
            200,
            "every task completed (round {round}, seed {seed})"
        );
        let last = p.plumb(&["run", "torture", "-p", &arg]);
        assert_eq!(last.code, 0);
        assert!(
            last.stdout.contains("200 tasks: 200 done before"),
            "{}",
            last.stdout
        );
    }

    let journal = p.lines("journal.txt");
    let overlaps: Vec<&String> = journal.iter().filter(|l| l.starts_with("overlap")).collect();
    assert!(
        overlaps.is_empty(),
        "two attempts of a task overlapped (seed {seed}): {overlaps:?}"
    );

    // No task with a committed marker ran again after that commit was seen.
    let mut starts: HashMap<&str, Vec<u128>> = HashMap::new();
    for l in &journal {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f[0] == "start" {
            starts.entry(f[1]).or_default().push(f[2].parse().unwrap());
        }
    }
    for (at, committed) in &snapshots {
        for task in committed {
            let again: Vec<&u128> = starts
                .get(task.as_str())
                .map_or(vec![], |s| s.iter().filter(|t| *t > at).collect());
            assert!(
                again.is_empty(),
                "{task} had a marker at {at} but started again at {again:?} (seed {seed})"
            );
        }
    }

    let ok: String = p
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let running = p.count("SELECT COUNT(*) FROM attempts WHERE state = 'running'");
    assert_eq!(
        running, 0,
        "every attempt of a dead runner is recorded as interrupted"
    );
    let attempts = p.count("SELECT COUNT(*) FROM attempts");
    let interrupted = p.count("SELECT COUNT(*) FROM attempts WHERE state = 'interrupted'");
    eprintln!(
        "torture: {} kills over {round} rounds of 200 tasks: {attempts} attempts ({interrupted} interrupted), no overlap, no marker lost or rerun, integrity ok",
        snapshots.len()
    );
}
