//! The example pipeline in pipelines/ runs as README says, on a copy of the project.

use std::path::Path;

use crate::support::Project;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn nightly_etl_runs_end_to_end_then_has_nothing_to_do() {
    assert!(
        std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_ok(),
        "python3 is needed: the example's load step runs it; README lists the test needs"
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Project::new();
    for d in ["pipelines", "tasks"] {
        copy_dir(&repo.join(d), &p.path().join(d));
    }
    std::fs::copy(repo.join("plumb.toml"), p.path().join("plumb.toml")).unwrap();
    assert_eq!(p.plumb(&["validate"]).code, 0);
    let out = p.plumb(&["run", "nightly_etl", "-p", "date=2026-11-20"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("8 tasks: 8 ran"), "{}", out.stdout);
    let report = p.read("data/2026-11-20/report.txt");
    assert!(report.starts_with("orders on 2026-11-20: "), "{report}");
    let again = p.plumb(&["run", "nightly_etl", "-p", "date=2026-11-20"]);
    assert!(
        again.stdout.contains("8 tasks: 8 done before"),
        "{}",
        again.stdout
    );
    // The warehouse holds exactly the extract's rows for the day (what the `check` verified).
    let extracted = p.lines("data/2026-11-20/raw/orders.csv").len() - 1;
    let db = rusqlite::Connection::open(p.path().join("data/warehouse.db")).unwrap();
    let loaded: i64 = db
        .query_row("SELECT COUNT(*) FROM orders WHERE day = '2026-11-20'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(loaded as usize, extracted);
    // The load recorded its rows, held them to `min = 1`, and had no past to compare with yet.
    assert!(
        out.stdout.contains(&format!("; rows {extracted})\n")),
        "{}",
        out.stdout
    );
    let metrics = p.plumb(&["metrics", "nightly_etl", "load", "--name", "rows", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&metrics.stdout).unwrap();
    assert_eq!(
        v[0]["value"].as_f64(),
        Some(extracted as f64),
        "{}",
        metrics.stdout
    );
    let log = p
        .plumb(&["logs", "nightly_etl", "load", "-p", "date=2026-11-20"])
        .stdout;
    assert!(
        log.contains(&format!(
            "plumb: rows = {extracted}: anomaly check skipped: 0 past values within 28d, min_history is 7\n"
        )),
        "{log}"
    );
}
