//! Changed definitions: what counts as one (the command, and the project files it executes),
//! what a plain `run` says about them, and how markers written by an earlier plumb fare.

use sha2::{Digest, Sha256};

use crate::support::{Output, Project};

/// The run's header line, from `run ` on, with the run id written RUN.
fn header(out: &Output) -> String {
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(" run 20"))
        .unwrap_or_else(|| panic!("no header in {}", out.stdout));
    let from = &line[line.find("run 20").unwrap()..];
    let id_end = from.find(':').unwrap();
    format!("run RUN{}", &from[id_end..])
}

fn ran(p: &Project) -> Vec<String> {
    p.lines("ran.txt")
}

#[test]
fn a_plain_run_says_how_many_done_tasks_have_a_changed_definition() {
    let p = Project::new();
    let two = |a: &str, b: &str| {
        format!(
            "[pipeline]\nworkers = 1\n[tasks.a]\ncommand = 'echo {a} >> ran.txt'\n\
             [tasks.b]\ncommand = 'echo {b} >> ran.txt'\n[tasks.c]\ncommand = 'echo c >> ran.txt'\n"
        )
    };
    p.pipeline("c", &two("a1", "b1"));
    assert_eq!(p.plumb(&["run", "c"]).code, 0);
    let same = p.plumb(&["run", "c"]);
    assert_eq!(header(&same), "run RUN: c: 0 to run, 3 done before, 1 worker");
    p.pipeline("c", &two("a2", "b1"));
    assert_eq!(
        header(&p.plumb(&["run", "c"])),
        "run RUN: c: 0 to run, 3 done before, 1 of them with a changed definition \
         (--rerun-changed re-runs it), 1 worker"
    );
    p.pipeline("c", &two("a2", "b2"));
    let out = p.plumb(&["run", "c"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        header(&out),
        "run RUN: c: 0 to run, 3 done before, 2 of them with a changed definition \
         (--rerun-changed re-runs them), 1 worker"
    );
    assert_eq!(ran(&p), ["a1", "b1", "c"], "changed tasks stay done by default");
    let rerun = p.plumb(&["run", "c", "--rerun-changed"]);
    assert_eq!(header(&rerun), "run RUN: c: 2 to run, 1 done before, 1 worker");
    assert_eq!(ran(&p), ["a1", "b1", "c", "a2", "b2"]);
}

const SCRIPTED: &str = "[pipeline]\nworkers = 1\n\
    [tasks.extract]\ncommand = 'tasks/extract.sh orders >> ran.txt'\n\
    [tasks.load]\ncommand = ['python3', 'tasks/load.py', '--db', 'data/w.db']\n\
    [tasks.notes]\ncommand = 'cat tasks/notes.txt >> ran.txt'\n\
    [tasks.per_table]\nforeach = { table = ['a', 'b'] }\ncommand = 'tasks/{{table}}.sh >> ran.txt'\n\
    check = 'sh tasks/check.sh'\n";

fn scripted() -> Project {
    let p = Project::new();
    p.pipeline("s", SCRIPTED)
        .file("tasks/extract.sh", "#!/bin/sh\necho extract $1\n")
        // The database it names is data, rewritten by every run: it must not count.
        .file(
            "tasks/load.py",
            "import sys\nopen(sys.argv[2], 'a').write('row\\n')\nopen('ran.txt', 'a').write('load\\n')\n",
        )
        .file("tasks/notes.txt", "notes\n")
        .file("tasks/a.sh", "#!/bin/sh\necho a\n")
        .file("tasks/b.sh", "#!/bin/sh\necho b\n")
        .file("tasks/check.sh", "exit 0\n")
        .file("data/w.db", "");
    for s in ["tasks/extract.sh", "tasks/a.sh", "tasks/b.sh"] {
        executable(&p, s);
    }
    p
}

fn executable(p: &Project, rel: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.path().join(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn editing_a_script_a_task_executes_shows_the_task_changed_and_data_it_names_does_not() {
    let p = scripted();
    let first = p.plumb(&["run", "s"]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(ran(&p), ["extract orders", "load", "notes", "a", "b"]);
    let again = p.plumb(&["plan", "s"]);
    // Rows as `plan` pads them: state to 8, task id to the longest id (18 here), then detail.
    let row = |state: &str, id: &str, detail: &str| format!("  {state:<8} {id:<18}  {detail}\n");
    let all_done: String = [
        "extract",
        "load",
        "notes",
        "per_table[table=a]",
        "per_table[table=b]",
    ]
    .iter()
    .map(|id| row("done", id, ""))
    .collect();
    assert_eq!(
        again.stdout,
        format!("plan for s (5 tasks): 5 done, 0 to run\n{all_done}")
    );
    p.file("tasks/extract.sh", "#!/bin/sh\necho extract v2 $1\n")
        .file(
            "tasks/load.py",
            "import sys\nopen('ran.txt', 'a').write('load v2\\n')\n",
        )
        .file("tasks/b.sh", "#!/bin/sh\necho b v2\n")
        .file("tasks/notes.txt", "other notes\n");
    let edited = p.plumb(&["plan", "s"]);
    let why = "definition changed since it ran; `run --rerun-changed` runs it again";
    assert_eq!(
        edited.stdout,
        [
            "plan for s (5 tasks): 5 done, 0 to run, 3 changed\n".to_string(),
            row("changed", "extract", why),
            row("changed", "load", why),
            row("done", "notes", ""),
            row("done", "per_table[table=a]", ""),
            row("changed", "per_table[table=b]", why),
        ]
        .concat()
    );
    let run = p.plumb(&["run", "s"]);
    assert_eq!(
        header(&run),
        "run RUN: s: 0 to run, 5 done before, 3 of them with a changed definition \
         (--rerun-changed re-runs them), 1 worker"
    );
    let rerun = p.plumb(&["run", "s", "--rerun-changed"]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    assert_eq!(ran(&p)[5..], ["extract v2 orders", "load v2", "b v2"]);
    assert!(
        p.plumb(&["plan", "s"])
            .stdout
            .starts_with("plan for s (5 tasks): 5 done, 0 to run\n")
    );
    // The check's script counts for both tasks that run it.
    p.file("tasks/check.sh", "exit 0 # v2\n");
    let status = p.plumb(&["status", "s", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let states: Vec<(&str, &str)> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["task"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("extract", "done"),
            ("load", "done"),
            ("notes", "done"),
            ("per_table[table=a]", "changed"),
            ("per_table[table=b]", "changed"),
        ]
    );
}

/// The fingerprint plumb wrote before it read scripts, computed from its documented encoding
/// (label, length as u64 little-endian, bytes; the first 16 bytes of the SHA-256 in hex).
fn fingerprint_before_scripts(shell_command: &str, cwd: &str) -> String {
    let mut h = Sha256::new();
    for (label, s) in [("sh", shell_command), ("cwd", cwd)] {
        h.update(label.as_bytes());
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn markers_written_before_scripts_counted_stay_done_and_a_run_records_the_scripts() {
    let p = Project::new();
    p.pipeline(
        "u",
        "[pipeline]\nworkers = 1\n[tasks.a]\ncommand = 'tasks/a.sh'\n[tasks.b]\ncommand = 'echo b >> ran.txt'\n",
    )
    .file("tasks/a.sh", "echo a >> ran.txt\n");
    executable(&p, "tasks/a.sh");
    assert_eq!(p.plumb(&["run", "u"]).code, 0);
    let root = p.path().to_string_lossy().into_owned();
    let stored = |task: &str| -> String {
        p.db()
            .query_row("SELECT fingerprint FROM markers WHERE task = ?1", [task], |r| {
                r.get(0)
            })
            .unwrap()
    };
    // A task that executes no project file keeps the encoding it always had.
    assert_eq!(
        stored("b"),
        fingerprint_before_scripts("echo b >> ran.txt", &root)
    );
    // Make a's marker one that an earlier plumb wrote.
    let old = fingerprint_before_scripts("tasks/a.sh", &root);
    assert_ne!(stored("a"), old, "a's fingerprint now covers tasks/a.sh");
    p.db()
        .execute("UPDATE markers SET fingerprint = ?1 WHERE task = 'a'", [&old])
        .unwrap();
    assert!(
        p.plumb(&["plan", "u"])
            .stdout
            .starts_with("plan for u (2 tasks): 2 done, 0 to run\n")
    );
    let run = p.plumb(&["run", "u"]);
    assert_eq!(header(&run), "run RUN: u: 0 to run, 2 done before, 1 worker");
    assert_ne!(stored("a"), old, "the run recorded the script's content");
    assert_eq!(ran(&p), ["a", "b"], "nothing ran again");
    p.file("tasks/a.sh", "echo a2 >> ran.txt\n");
    let plan = p.plumb(&["plan", "u"]);
    assert!(
        plan.stdout
            .starts_with("plan for u (2 tasks): 2 done, 0 to run, 1 changed\n  changed  a "),
        "{}",
        plan.stdout
    );
}
