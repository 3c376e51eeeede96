//! The state database as plumb's own responsibility: a lost database is refused, not silently
//! replaced, and plumb's failure to keep its state exits 5, not 1.

use crate::support::*;

#[test]
fn an_emptied_database_in_a_used_state_directory_is_refused_until_new_state_is_asked() {
    let p = Project::new();
    p.pipeline(
        "p",
        "[tasks.a]\ncommand = 'echo a; echo a >> ran.txt'\n[tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n",
    );
    assert_eq!(p.plumb(&["run", "p"]).code, 0);
    let db = p.path().join("state/plumb.db");
    std::fs::write(&db, "").unwrap();
    for wal in ["state/plumb.db-wal", "state/plumb.db-shm"] {
        let _ = std::fs::remove_file(p.path().join(wal));
    }

    let state = p.path().join("state").display().to_string();
    for args in [&["run", "p"][..], &["status", "p"], &["history"], &["plan", "p"]] {
        let out = p.plumb(args);
        assert_eq!(out.code, 5, "{args:?}: {}", out.all());
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(
            out.stderr,
            format!(
                "error: state database {state}/plumb.db is empty (0 bytes), but {state} shows earlier use: \
                 1 task log file under logs/, 1 lock file of earlier runners under locks/\n  \
                 its markers are gone: restore it from a backup, or pass --new-state to start over \
                 with an empty one (every task will run again)\n"
            ),
            "{args:?}"
        );
    }
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "left as found");
    assert_eq!(p.lines("ran.txt"), ["a", "b"], "nothing ran again");

    let out = p.plumb(&["--new-state", "run", "p"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.lines("ran.txt"), ["a", "b", "a", "b"]);
    assert_eq!(p.plumb(&["run", "p"]).code, 0, "an ordinary database again");
}

#[test]
fn a_deleted_database_is_refused_too_but_a_new_project_needs_no_flag() {
    let p = Project::new();
    p.pipeline("p", "[tasks.a]\ncommand = 'echo a'\n");
    let first = p.plumb(&["run", "p"]);
    assert_eq!(first.code, 0, "a new project starts its state: {}", first.all());
    for f in ["state/plumb.db", "state/plumb.db-wal", "state/plumb.db-shm"] {
        let _ = std::fs::remove_file(p.path().join(f));
    }
    let out = p.plumb(&["run", "p"]);
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(
        out.stderr.starts_with(&format!(
            "error: state database {}/state/plumb.db is missing, but ",
            p.path().display()
        )),
        "{}",
        out.stderr
    );
    assert!(!p.exists("state/plumb.db"), "nothing created");
}
