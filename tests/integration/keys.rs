//! Instance keys: two different sets of param values are always two instances, whatever the
//! values hold, and state written before the keys were encoded keeps every marker.

use crate::support::*;

const PIPELINE: &str = r#"
[params]
a = "x"
b = "z"

[tasks.t]
command = "printf '%s|%s\n' {{a}} {{b}} >> ran.txt"
"#;

fn first_line(out: &Output) -> String {
    assert_eq!(out.code, 0, "{}", out.all());
    out.stdout.lines().next().unwrap_or_default().to_string()
}

#[test]
fn values_that_join_to_the_same_text_are_two_instances() {
    let p = Project::new();
    p.pipeline("p", PIPELINE);
    let first = p.plumb(&["run", "p", "-p", "a=x b=y", "-p", "b=z"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let second = p.plumb(&["run", "p", "-p", "a=x", "-p", "b=y b=z"]);
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second
            .stdout
            .contains(r#": p a=x b="y b=z": 1 to run, 0 done before"#),
        "{}",
        second.stdout
    );
    assert_eq!(p.lines("ran.txt"), ["x b=y|z", "x|y b=z"]);
    assert_eq!(
        first_line(&p.plumb(&["status", "p", "-p", "a=x b=y", "-p", "b=z"])),
        r#"p a="x b=y" b=z: 1 done"#
    );
    assert_eq!(
        first_line(&p.plumb(&["status", "p", "-p", "a=x", "-p", "b=y b=z"])),
        r#"p a=x b="y b=z": 1 done"#
    );
    assert_eq!(p.count("SELECT COUNT(*) FROM markers"), 2);
}

#[test]
fn a_database_written_before_keys_were_encoded_keeps_its_markers() {
    // Written by plumb at 74248ad (schema 4), which ran, in this order:
    //   run p -p 'a=x b=y' -p b=z         (ran t)
    //   run p -p a=x -p 'b=y b=z'         (same old key `a=x b=y b=z`: "1 done before")
    //   run p -p 'a=two words'; run p; run p -p a=
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v4-colliding-keys/state/plumb.db");
    let p = Project::new();
    p.pipeline("p", PIPELINE);
    std::fs::create_dir(p.path().join("state")).unwrap();
    std::fs::copy(&fixture, p.path().join("state/plumb.db")).unwrap();

    // Every instance that ran keeps its marker under its new key. The fixture was written in
    // another directory, and the working directory is part of a task's fingerprint, so each
    // marker reads as `changed` (done, with a definition that differs), not as missing.
    for (args, line) in [
        (
            vec!["-p", "a=x b=y", "-p", "b=z"],
            r#"p a="x b=y" b=z: 1 changed"#,
        ),
        (vec!["-p", "a=two words"], r#"p a="two words" b=z: 1 changed"#),
        (vec![], "p a=x b=z: 1 changed"),
        (vec!["-p", "a="], r#"p a="" b=z: 1 changed"#),
    ] {
        let mut cmd = vec!["status", "p"];
        cmd.extend(args);
        assert_eq!(first_line(&p.plumb(&cmd)), line);
    }
    assert!(
        p.count("SELECT user_version FROM pragma_user_version") >= 5,
        "migrated"
    );

    // The instance that was wrongly taken for done now runs, and nothing else does.
    let run = p.plumb(&["run", "p", "-p", "a=x", "-p", "b=y b=z"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(p.lines("ran.txt"), ["x|y b=z"]);
    for args in [
        vec!["-p", "a=x b=y", "-p", "b=z"],
        vec!["-p", "a=two words"],
        vec![],
    ] {
        let mut cmd = vec!["run", "p"];
        cmd.extend(args);
        let out = p.plumb(&cmd);
        assert!(out.stdout.contains("0 to run, 1 done before"), "{}", out.all());
    }
    assert_eq!(p.lines("ran.txt"), ["x|y b=z"]);

    // History keeps the earlier runs, each under the instance it really was.
    let rows: Vec<(String, String)> = {
        let db = p.db();
        let mut stmt = db
            .prepare(
                "SELECT instance, (SELECT COUNT(*) FROM attempts a WHERE a.run_id = r.run_id) \
                 FROM runs r ORDER BY started_at, run_id LIMIT 5",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.to_string())))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        rows,
        [
            (r#"a="x b=y" b=z"#, "1"),
            (r#"a=x b="y b=z""#, "0"),
            (r#"a="two words" b=z"#, "1"),
            ("a=x b=z", "1"),
            (r#"a="" b=z"#, "1"),
        ]
    );
}
