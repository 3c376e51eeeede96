//! A tiny builder for temporary projects, and a runner for the real binary.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const PLUMB: &str = env!("CARGO_BIN_EXE_plumb");

pub struct Project {
    pub dir: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout and stderr together, for assertions that do not care which.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Project {
    /// An empty project: `plumb.toml` (empty) and `pipelines/`.
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("plumb.toml"), "").expect("write plumb.toml");
        std::fs::create_dir(dir.path().join("pipelines")).expect("mkdir pipelines");
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str, text: &str) -> &Project {
        let p = self.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write file");
        self
    }

    /// Write `pipelines/NAME.toml`.
    pub fn pipeline(&self, name: &str, text: &str) -> &Project {
        self.file(&format!("pipelines/{name}.toml"), text)
    }

    /// A command for the binary, run in the project directory with a clean plumb environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(PLUMB);
        c.args(args)
            .current_dir(self.path())
            .env_remove("PLUMB_STATE_DIR")
            .env_remove("PLUMB_LOG")
            .stdin(Stdio::null());
        c
    }

    pub fn plumb(&self, args: &[&str]) -> Output {
        run(self.cmd(args))
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_default()
    }

    pub fn lines(&self, rel: &str) -> Vec<String> {
        self.read(rel).lines().map(str::to_string).collect()
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join("state/plumb.db")).expect("open state db")
    }

    /// The number a `SELECT COUNT(*) ...` on the state database returns.
    pub fn count(&self, sql: &str) -> i64 {
        self.db()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Task ids with a marker in the state.
    pub fn markers(&self, pipeline: &str) -> Vec<String> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT task FROM markers WHERE pipeline = ?1 ORDER BY task")
            .expect("query markers");
        stmt.query_map([pipeline], |r| r.get(0))
            .expect("markers")
            .map(|r| r.expect("row"))
            .collect()
    }
}

pub fn run(mut c: Command) -> Output {
    let out = c.output().expect("run plumb");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Wait until `cond` holds, or panic after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `true` while a process with this pid exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

/// Intervals (start, end) in seconds that tasks wrote as "start END" lines to a journal.
pub fn intervals(lines: &[String], task_prefix: &str) -> Vec<(String, f64, f64)> {
    let mut starts = std::collections::HashMap::new();
    let mut out = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 3 || !f[1].starts_with(task_prefix) {
            continue;
        }
        let t: f64 = f[2].parse().expect("timestamp");
        match f[0] {
            "start" => {
                starts.insert(f[1].to_string(), t);
            }
            "end" => out.push((f[1].to_string(), starts[f[1]], t)),
            _ => {}
        }
    }
    out
}

/// The most tasks that overlapped in time.
pub fn max_overlap(iv: &[(String, f64, f64)]) -> usize {
    let mut events: Vec<(f64, i32)> = iv.iter().flat_map(|(_, s, e)| [(*s, 1), (*e, -1)]).collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut cur, mut best) = (0i32, 0i32);
    for (_, d) in events {
        cur += d;
        best = best.max(cur);
    }
    best as usize
}

/// A shell snippet that journals a task's start and end with sub-second timestamps.
pub fn journaled(name: &str, body: &str) -> String {
    format!(
        "echo start {name} $(date +%s.%N) >> journal.txt; {body}; echo end {name} $(date +%s.%N) >> journal.txt"
    )
}
