//! The compiled-pipeline cache in `state/cache/`: never stale, never in the way.

use crate::support::Project;

fn entry(p: &Project, name: &str) -> std::path::PathBuf {
    p.path().join("state/cache").join(format!("{name}.pipeline"))
}

#[test]
fn an_edited_pipeline_is_read_again_and_an_error_in_it_still_shows() {
    let p = Project::new();
    p.pipeline("c", "[tasks.a]\ncommand = 'echo a >> ran.txt'\n");
    assert_eq!(p.plumb(&["run", "c"]).code, 0);
    // The first run creates the state directory; the next load stores the checked pipeline.
    assert_eq!(p.plumb(&["run", "c"]).code, 0);
    assert!(entry(&p, "c").is_file(), "no cache entry was written");

    p.pipeline(
        "c",
        "[tasks.a]\ncommand = 'echo a >> ran.txt'\n[tasks.b]\ncommand = 'echo b >> ran.txt'\nrequires = ['a']\n",
    );
    let out = p.plumb(&["run", "c"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.lines("ran.txt"), ["a", "b"], "the new task b did not run");

    p.pipeline("c", "[tasks.a]\ncommand = 'echo a >> ran.txt'\ncomand = 'typo'\n");
    let out = p.plumb(&["run", "c"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("pipelines/c.toml:3"), "{}", out.stderr);
    assert!(out.stderr.contains("comand"), "{}", out.stderr);
}

#[test]
fn a_changed_project_file_is_read_again() {
    let p = Project::new();
    p.pipeline(
        "c",
        "[tasks.f]\ncommand = 'echo try >> tries.txt; exit 1'\nretry_delay = '0s'\n",
    );
    assert_eq!(p.plumb(&["run", "c"]).code, 1);
    assert_eq!(p.plumb(&["run", "c"]).code, 1);
    assert!(entry(&p, "c").is_file());
    assert_eq!(
        p.lines("tries.txt").len(),
        2,
        "one attempt per run without retries"
    );

    p.file("plumb.toml", "[defaults]\nretries = 2\n");
    assert_eq!(p.plumb(&["run", "c"]).code, 1);
    assert_eq!(
        p.lines("tries.txt").len(),
        5,
        "the project's retries = 2 was not applied"
    );
}

#[test]
fn a_damaged_cache_entry_is_ignored_and_replaced() {
    let p = Project::new();
    p.pipeline("c", "[tasks.a]\ncommand = 'echo a >> ran.txt'\n");
    assert_eq!(p.plumb(&["run", "c"]).code, 0);
    assert_eq!(p.plumb(&["run", "c"]).code, 0);
    let good = std::fs::read(entry(&p, "c")).unwrap();

    // The right key (its first 32 bytes) in front of garbage: the pipeline is read again.
    for bad in [
        [&good[..32], b"\xff\xff\xff\xff not a pipeline".as_slice()].concat(),
        b"short".to_vec(),
    ] {
        std::fs::write(entry(&p, "c"), &bad).unwrap();
        let out = p.plumb(&["run", "c"]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(out.stdout.contains("0 to run, 1 done before"), "{}", out.stdout);
        assert_eq!(
            std::fs::read(entry(&p, "c")).unwrap(),
            good,
            "the entry was not rewritten"
        );
    }
    assert_eq!(p.lines("ran.txt"), ["a"]);
}
