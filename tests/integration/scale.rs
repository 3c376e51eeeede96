//! Size: a 2,000-task wide graph runs to completion; large graphs validate.

use crate::support::Project;

#[test]
fn two_thousand_task_wide_graph_completes() {
    let p = Project::new();
    let mut toml = String::from("[pipeline]\nworkers = 8\n");
    for i in 0..2000 {
        toml.push_str(&format!("[tasks.t{i}]\ncommand = 'true'\n"));
    }
    toml.push_str("[tasks.sink]\ncommand = 'echo sink >> ran.txt'\nrequires = [");
    toml.push_str(&(0..2000).map(|i| format!("'t{i}'")).collect::<Vec<_>>().join(","));
    toml.push_str("]\n");
    p.pipeline("wide", &toml);
    let out = p.plumb(&["run", "wide"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("2001 tasks: 2001 ran"), "{}", out.stdout);
    assert_eq!(p.lines("ran.txt"), ["sink"]);
    assert_eq!(p.markers("wide").len(), 2001);
    let again = p.plumb(&["run", "wide"]);
    assert!(
        again.stdout.contains("2001 tasks: 2001 done before"),
        "{}",
        again.stdout
    );
}
