//! Size: a 2,000-task wide graph runs to completion; a long run keeps its WAL bounded.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

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

/// The WAL's salt (bytes 16..24 of its header), which SQLite changes each time the WAL starts
/// over from its beginning; `None` while there is no WAL.
fn wal_salt(path: &std::path::Path) -> Option<[u8; 8]> {
    use std::io::Read;
    let mut header = [0u8; 32];
    std::fs::File::open(path).ok()?.read_exact(&mut header).ok()?;
    header[16..24].try_into().ok()
}

#[test]
fn a_long_run_starts_its_wal_over_instead_of_growing_it() {
    // A chain commits once per task (each marker before its dependent starts). Without
    // restarts the WAL of 8,000 such commits grows to about 140 MB (measured), well past the
    // 64 MiB at which the run makes it start over.
    let p = Project::new();
    let mut toml = String::from("[pipeline]\nworkers = 2\n");
    for i in 0..8000 {
        toml.push_str(&format!("[tasks.t{i}]\ncommand = ['true']\n"));
        if i > 0 {
            toml.push_str(&format!("requires = ['t{}']\n", i - 1));
        }
    }
    p.pipeline("long", &toml);
    let wal = p.path().join("state/plumb.db-wal");
    let mut run = p
        .cmd(&["run", "long"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut salts, mut largest) = (HashSet::new(), 0);
    while run.try_wait().unwrap().is_none() {
        salts.extend(wal_salt(&wal));
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(p.markers("long").len(), 8000);
    assert!(
        salts.len() >= 2,
        "the WAL never started over; it grew to {largest} bytes"
    );
    assert!(largest < 96 << 20, "the WAL grew to {largest} bytes");
}
