//! Durable state in SQLite: runs, attempts and completion markers.
//!
//! One database, `state/plumb.db`, shared by every pipeline and instance of a project. It runs in
//! WAL mode with `synchronous=NORMAL`: every commit survives the process being killed at any
//! moment (the guarantee plumb makes); after a power loss the last commits may be rolled back,
//! which can only make a finished task run again, never mark an unfinished one done.
//!
//! A marker is written in the same transaction that records its attempt's success, so there is
//! never a successful attempt without its marker or a marker without its attempt.
//!
//! The schema is versioned with `PRAGMA user_version`; migrations are append-only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

mod attempts;
mod deadlines;
mod metrics;
mod outbox;
mod prune;
mod schedule;

pub use attempts::{AttemptHandle, NewMarker};
pub use metrics::MetricRow;
use outbox::enqueue;
pub use outbox::{NewAlert, OutboxRow};
pub use prune::OldRun;
pub use schedule::time_key;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "state database {path} has schema version {found}, newer than this plumb understands ({known}); upgrade plumb"
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error(
        "state database {} is {what}, but {} shows earlier use: {found}\n  \
         its markers are gone: restore it from a backup, or pass --new-state to start over with \
         an empty one (every task will run again)",
        path.display(), path.parent().map(|d| d.display().to_string()).unwrap_or_default()
    )]
    Emptied {
        path: PathBuf,
        /// `missing` or `empty (0 bytes)`.
        what: &'static str,
        /// What shows earlier use.
        found: String,
    },
}

pub type Result<T> = std::result::Result<T, StateError>;

/// One step of the schema's history: SQL, or a Rust function where rows must be rewritten.
enum Migration {
    Sql(&'static str),
    Rows(fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>),
}

const MIGRATIONS: &[Migration] = &[
    // 1: runs, attempts, markers.
    Migration::Sql(
        "CREATE TABLE runs (
        run_id       TEXT PRIMARY KEY,
        pipeline     TEXT NOT NULL,
        instance     TEXT NOT NULL,
        params       TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        outcome      TEXT NOT NULL,
        host         TEXT NOT NULL,
        runner_pid   INTEGER NOT NULL,
        runner_start INTEGER NOT NULL,
        counts       TEXT,
        resume       TEXT
    );
    CREATE INDEX runs_by_instance ON runs(pipeline, instance, started_at);
    CREATE TABLE attempts (
        id           INTEGER PRIMARY KEY,
        run_id       TEXT NOT NULL REFERENCES runs(run_id),
        pipeline     TEXT NOT NULL,
        instance     TEXT NOT NULL,
        task         TEXT NOT NULL,
        attempt      INTEGER NOT NULL,
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        state        TEXT NOT NULL,
        exit_code    INTEGER,
        signal       INTEGER,
        duration_s   REAL,
        log_path     TEXT NOT NULL,
        runner_pid   INTEGER NOT NULL,
        runner_start INTEGER NOT NULL,
        pgid         INTEGER,
        pgid_start   INTEGER,
        error        TEXT
    );
    CREATE INDEX attempts_by_task ON attempts(pipeline, instance, task, id);
    CREATE INDEX attempts_running ON attempts(state) WHERE state = 'running';
    CREATE TABLE markers (
        pipeline     TEXT NOT NULL,
        instance     TEXT NOT NULL,
        task         TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        run_id       TEXT NOT NULL,
        finished_at  TEXT NOT NULL,
        PRIMARY KEY (pipeline, instance, task)
    ) WITHOUT ROWID;",
    ),
    // 2: the alert outbox, and when an attempt series missed its SLA.
    Migration::Sql(
        "CREATE TABLE alerts (
        id              INTEGER PRIMARY KEY,
        created_at      TEXT NOT NULL,
        event           TEXT NOT NULL,
        pipeline        TEXT NOT NULL,
        instance        TEXT NOT NULL,
        run_id          TEXT,
        recipients      TEXT NOT NULL,
        subject         TEXT NOT NULL,
        body            TEXT NOT NULL,
        status          TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        next_attempt_at TEXT NOT NULL,
        claimed_pid     INTEGER,
        claimed_start   INTEGER,
        sent_at         TEXT
    );
    CREATE INDEX alerts_pending ON alerts(status, next_attempt_at) WHERE status != 'sent';
        ALTER TABLE attempts ADD COLUMN sla_missed_at TEXT;",
    ),
    // 3: the scheduler: since when each pipeline is scheduled, and every fire time it handled.
    Migration::Sql(
        "CREATE TABLE schedules (
        pipeline  TEXT PRIMARY KEY,
        schedule  TEXT NOT NULL,
        since     TEXT NOT NULL
    );
    CREATE TABLE fires (
        pipeline   TEXT NOT NULL,
        fire_time  TEXT NOT NULL,
        status     TEXT NOT NULL,
        exit_code  INTEGER,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at   TEXT,
        PRIMARY KEY (pipeline, fire_time)
    ) WITHOUT ROWID;",
    ),
    // 4: no index of running attempts. It cost a page write per task (an entry added at the
    // start, removed at the end), and only recovery after a crash looks for running attempts,
    // by instance, which attempts_by_task serves.
    Migration::Sql("DROP INDEX attempts_running;"),
    // 5: instance keys in the unambiguous encoding of `key::encode`. Earlier keys joined values
    // unescaped, so two param sets could share one key; each run's own params say which instance
    // it was, and its attempts, markers and alerts follow it.
    Migration::Rows(reencode_instance_keys),
    // 6: settle attempts left `running` by a run that ended: a success whose marker could not be
    // committed (a full disk) in a run whose end later was. `finish_run` now settles them.
    Migration::Sql(
        "UPDATE attempts SET state = 'failed',
             ended_at = COALESCE(ended_at, (SELECT ended_at FROM runs WHERE runs.run_id = attempts.run_id)),
             error = COALESCE(error, 'its end could not be recorded when it finished')
         WHERE state = 'running'
           AND run_id IN (SELECT run_id FROM runs WHERE outcome != 'running');",
    ),
    // 7: what tasks measured (PLUMB_METRICS), kept for successful attempts, keyed for the
    // anomaly test's question: this task's values of this metric since a time, any instance.
    // And the warnings an attempt's expectations raised.
    Migration::Sql(
        "CREATE TABLE metrics (
        pipeline    TEXT NOT NULL,
        task        TEXT NOT NULL,
        name        TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        attempt_id  INTEGER NOT NULL REFERENCES attempts(id),
        run_id      TEXT NOT NULL,
        instance    TEXT NOT NULL,
        value       REAL NOT NULL,
        PRIMARY KEY (pipeline, task, name, recorded_at, attempt_id)
    ) WITHOUT ROWID;
    ALTER TABLE attempts ADD COLUMN warnings TEXT;",
    ),
    // 8: a random id of this database, which every task process carries (PLUMB_STATE_ID), so that
    // recovery after a runner's death stops only processes of this project's state: run ids are
    // unique within one database only.
    Migration::Sql(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
         INSERT OR IGNORE INTO meta (key, value) VALUES ('state_id', lower(hex(randomblob(16))));",
    ),
    // 9: deadlines (DESIGN 7): each instance's deadline once it passed, missed or met, so that it
    // is alerted once whoever watches and however often they restart; and which fires the
    // scheduler has yet to watch (every fire before this version counts as watched).
    Migration::Sql(
        "CREATE TABLE deadlines (
        pipeline    TEXT NOT NULL,
        instance    TEXT NOT NULL,
        deadline    TEXT NOT NULL,
        missed      INTEGER NOT NULL,
        run_id      TEXT,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (pipeline, instance, deadline)
    ) WITHOUT ROWID;
    ALTER TABLE fires ADD COLUMN deadline_watched INTEGER NOT NULL DEFAULT 0;
    UPDATE fires SET deadline_watched = 1;
    CREATE INDEX fires_unwatched ON fires(pipeline, fire_time) WHERE deadline_watched = 0;",
    ),
];

/// Rewrite every run's instance key from its recorded params, with the rows that belong to it.
fn reencode_instance_keys(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut renamed = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT run_id, pipeline, instance, params FROM runs")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (run_id, pipeline, old, params): (String, String, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&params) else {
                continue;
            };
            let pairs: Vec<(String, String)> = map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                .collect();
            let Some(ordered) = crate::key::legacy_order(&old, &pairs) else {
                continue;
            };
            let new = crate::key::encode(&ordered);
            if new != old {
                renamed.push((run_id, pipeline, old, new));
            }
        }
    }
    for (run_id, pipeline, old, new) in renamed {
        tx.execute(
            "UPDATE runs SET instance = ?1 WHERE run_id = ?2",
            params![new, run_id],
        )?;
        for table in ["attempts", "markers", "alerts"] {
            tx.execute(
                &format!(
                    "UPDATE {table} SET instance = ?1 \
                     WHERE run_id = ?2 AND pipeline = ?3 AND instance = ?4"
                ),
                params![new, run_id, pipeline, old],
            )?;
        }
    }
    Ok(())
}

/// A pass with nothing to run leaves the WAL unchecked at close while it is smaller than this.
const KEEP_WAL_BYTES: u64 = 512 << 10;

/// A run restarts the WAL from its beginning once it holds this many frames (64 MiB).
const RESTART_FRAMES: i64 = 16_384;

pub struct State {
    conn: Connection,
    path: PathBuf,
    /// Attempt writes waiting for `commit_batch`.
    batch: attempts::Batch,
}

/// What planning needs of a marker (the table also keeps its run and finish time).
#[derive(Debug, Clone)]
pub struct Marker {
    pub fingerprint: String,
}

/// An instance's markers by task id.
pub type Markers = rustc_hash::FxHashMap<String, Marker>;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptState {
    Running,
    Success,
    Failed,
    Timeout,
    Interrupted,
}

impl AttemptState {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Running => "running",
            AttemptState::Success => "success",
            AttemptState::Failed => "failed",
            AttemptState::Timeout => "timeout",
            AttemptState::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> AttemptState {
        match s {
            "running" => AttemptState::Running,
            "success" => AttemptState::Success,
            "timeout" => AttemptState::Timeout,
            "interrupted" => AttemptState::Interrupted,
            _ => AttemptState::Failed,
        }
    }
}

/// One recorded attempt.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub id: i64,
    pub run_id: String,
    pub task: String,
    pub attempt: u32,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub state: AttemptState,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_s: Option<f64>,
    pub log_path: String,
    pub runner_pid: u32,
    pub runner_start: u64,
    pub pgid: Option<u32>,
    pub pgid_start: Option<u64>,
    pub error: Option<String>,
    /// What `anomaly = "warn"` expectations found about this attempt.
    pub warnings: Vec<String>,
}

/// One recorded run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub pipeline: String,
    pub instance: String,
    pub params: serde_json::Value,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: String,
    pub host: String,
    pub counts: serde_json::Value,
    #[serde(skip)]
    pub runner_pid: u32,
    #[serde(skip)]
    pub runner_start: u64,
}

/// Who is running: recorded with each run and attempt.
#[derive(Debug, Clone, Copy)]
pub struct Runner {
    pub pid: u32,
    pub start: u64,
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl State {
    /// How the database under `dir` holds nothing: `missing`, `empty (0 bytes)`, or `None` when
    /// it (or its write-ahead log) holds data.
    pub fn holds_nothing(dir: &Path) -> Option<&'static str> {
        let size = |name: &str| std::fs::metadata(dir.join(name)).ok().map(|m| m.len());
        let wal = size("plumb.db-wal").unwrap_or(0);
        match size("plumb.db") {
            _ if wal > 0 => None,
            None => Some("missing"),
            Some(0) => Some("empty (0 bytes)"),
            Some(_) => None,
        }
    }

    /// Open (creating if needed) the state database under `dir`.
    pub fn open(dir: &Path) -> Result<State> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("plumb.db");
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        let mut state = State {
            conn,
            path,
            batch: attempts::Batch::default(),
        };
        state.migrate()?;
        Ok(state)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StateError + use<> {
        let path = self.path.clone();
        move |source| StateError::Sqlite {
            path: path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StateError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(err)?;
            // Another process may have migrated while we waited for the write lock.
            let now: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(err)?;
            if now > i as i64 {
                continue;
            }
            match step {
                Migration::Sql(sql) => tx.execute_batch(sql),
                Migration::Rows(rewrite) => rewrite(&tx),
            }
            .map_err(err)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    /// The markers of an instance, by task id. `tasks`, the pipeline's task count, sizes the
    /// map up front: growing it by doubling re-hashed and touched fresh memory.
    pub fn markers(&self, pipeline: &str, instance: &str, tasks: usize) -> Result<Markers> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT task, fingerprint FROM markers WHERE pipeline = ?1 AND instance = ?2")
            .map_err(&err)?;
        let mut rows = stmt.query(params![pipeline, instance]).map_err(&err)?;
        let mut markers = Markers::with_capacity_and_hasher(tasks, Default::default());
        while let Some(row) = rows.next().map_err(&err)? {
            let task: String = row.get(0).map_err(&err)?;
            markers.insert(
                task,
                Marker {
                    fingerprint: row.get(1).map_err(&err)?,
                },
            );
        }
        Ok(markers)
    }

    /// Forget markers. Returns how many existed.
    pub fn delete_markers(&mut self, pipeline: &str, instance: &str, tasks: &[&str]) -> Result<usize> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM markers WHERE pipeline = ?1 AND instance = ?2 AND task = ?3")
                .map_err(&err)?;
            for t in tasks {
                n += stmt.execute(params![pipeline, instance, t]).map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)?;
        Ok(n)
    }

    /// Replace the fingerprints of existing markers, `(task, old, new)`: a marker whose
    /// fingerprint is no longer `old` (another writer got there first) is left alone.
    pub fn update_fingerprints(
        &mut self,
        pipeline: &str,
        instance: &str,
        tasks: &[(&str, &str, &str)],
    ) -> Result<usize> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE markers SET fingerprint = ?5
                     WHERE pipeline = ?1 AND instance = ?2 AND task = ?3 AND fingerprint = ?4",
                )
                .map_err(&err)?;
            for (t, old, new) in tasks {
                n += stmt
                    .execute(params![pipeline, instance, t, old, new])
                    .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)?;
        Ok(n)
    }

    /// Record a run's start. False, with nothing written, when `run_id` is taken already: the
    /// caller draws another.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_run(
        &self,
        run_id: &str,
        pipeline: &str,
        instance: &str,
        params_json: &str,
        started_at: &str,
        runner: Runner,
        resume: &str,
    ) -> Result<bool> {
        let inserted = self
            .conn
            .execute(
                "INSERT INTO runs (run_id, pipeline, instance, params, started_at, outcome, host, runner_pid, runner_start, resume)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9)
                 ON CONFLICT (run_id) DO NOTHING",
                params![
                    run_id,
                    pipeline,
                    instance,
                    params_json,
                    started_at,
                    crate::process::hostname(),
                    runner.pid,
                    runner.start as i64,
                    resume
                ],
            )
            .map_err(self.err())?;
        Ok(inserted == 1)
    }

    /// Record a run's end, and queue the alerts it causes, in one transaction.
    pub fn finish_run(
        &mut self,
        run_id: &str,
        outcome: &str,
        counts_json: &str,
        alerts: &[NewAlert],
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE runs SET ended_at = ?2, outcome = ?3, counts = ?4 WHERE run_id = ?1",
                params![run_id, now_rfc3339(), outcome, counts_json],
            )?;
            // Every attempt has ended by now; one still `running` is one whose end could not be
            // committed (its marker neither: it counts as failed and runs again).
            tx.execute(
                "UPDATE attempts SET state = 'failed', ended_at = ?2,
                     error = COALESCE(error, 'its end could not be recorded when it finished')
                 WHERE run_id = ?1 AND state = 'running'",
                params![run_id, now_rfc3339()],
            )?;
            for a in alerts {
                enqueue(tx, a)?;
            }
            Ok(())
        })
    }

    /// The outcome of the newest finished run of an instance before `run_id`.
    pub fn previous_outcome(&self, pipeline: &str, instance: &str, run_id: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT outcome FROM runs WHERE pipeline = ?1 AND instance = ?2 AND run_id != ?3
                   AND outcome != 'running' ORDER BY started_at DESC, rowid DESC LIMIT 1",
                params![pipeline, instance, run_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Run `f` in a transaction of its own.
    fn write<T>(&mut self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let err = self.err();
        // IMMEDIATE: the write lock is taken at BEGIN, where SQLite waits for it (busy timeout)
        // while another writer, such as a RESTART checkpoint, holds it.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        let out = f(&tx).map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(out)
    }

    /// Leave a small WAL as it is when this connection closes. By default the last connection
    /// to close checkpoints it, with four fsyncs: on a pass that only recorded its run that was
    /// 1.6 ms of a 30 ms pass; a reader sees the rows in the WAL just as well. But the first
    /// connection to open the database rebuilds its index of the WAL by reading every frame, so
    /// a WAL that every such pass left to grow made each pass slower (286 reads with 12 frames
    /// in it, 550 with 270). Past `KEEP_WAL_BYTES` the close checkpoints as usual: once every
    /// thirty or so passes.
    pub fn keep_small_wal_on_close(&self) -> Result<()> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let small = std::fs::metadata(&wal).map_or(true, |m| m.len() < KEEP_WAL_BYTES);
        if small {
            self.conn
                .set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
                .map_err(self.err())?;
        }
        Ok(())
    }

    /// Checkpoint the WAL from a background thread while this connection writes, instead of
    /// SQLite's automatic checkpoints, whose fsyncs would stall the dispatcher every few dozen
    /// tasks. The returned guard checkpoints once more and stops the thread when dropped.
    ///
    /// A passive checkpoint never blocks the writer, but neither does it let the WAL start
    /// over: SQLite rewinds the WAL only when a write begins with every frame copied back, and
    /// a dispatcher that commits every millisecond always has written more by then. So the WAL
    /// grows by every page written (207 MB for 10,000 tasks, measured). Once it holds
    /// `RESTART_FRAMES`, the thread runs a RESTART checkpoint, which makes the dispatcher wait
    /// for the few frames written since the passive one and the database's fsync (and for
    /// readers still on the WAL, up to 100 ms); the next commit then writes from the WAL's
    /// start again, in pages already cached. Doing that more often cost more than it saved:
    /// at every 1,000 frames wide-10000 took 4 % longer (A/B, 3 pairs).
    pub fn background_checkpoints(&self) -> Result<Checkpointer> {
        self.checkpoints_restarting_at(RESTART_FRAMES)
    }

    fn checkpoints_restarting_at(&self, restart_frames: i64) -> Result<Checkpointer> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(self.err())?;
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let path = self.path.clone();
        let handle = std::thread::spawn(move || {
            let Ok(conn) = Connection::open(&path) else { return };
            let _ = conn.busy_timeout(Duration::from_millis(100));
            let checkpoint = || {
                let frames = conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
                    .unwrap_or(0);
                if frames >= restart_frames {
                    let _ = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
                }
            };
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_millis(250))
            {
                checkpoint();
            }
            checkpoint();
        });
        Ok(Checkpointer {
            stop: Some(stop),
            handle: Some(handle),
        })
    }

    /// Attempts of an instance still recorded as running.
    pub fn running_attempts(&self, pipeline: &str, instance: &str) -> Result<Vec<AttemptRow>> {
        self.attempts_where(
            "state = 'running' AND pipeline = ?1 AND instance = ?2",
            params![pipeline, instance],
        )
    }

    /// Every attempt of an instance, oldest first.
    pub fn attempts(&self, pipeline: &str, instance: &str) -> Result<Vec<AttemptRow>> {
        self.attempts_where("pipeline = ?1 AND instance = ?2", params![pipeline, instance])
    }

    /// The attempts of one task, oldest first.
    pub fn task_attempts(&self, pipeline: &str, instance: &str, task: &str) -> Result<Vec<AttemptRow>> {
        self.attempts_where(
            "pipeline = ?1 AND instance = ?2 AND task = ?3",
            params![pipeline, instance, task],
        )
    }

    /// The random id of this database (see migration 8).
    pub fn state_id(&self) -> Result<String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'state_id'", [], |r| r.get(0))
            .map_err(self.err())
    }

    /// The attempts of one task in one run, oldest first.
    pub fn run_task_attempts(&self, run_id: &str, pipeline: &str, task: &str) -> Result<Vec<AttemptRow>> {
        self.attempts_where(
            "run_id = ?1 AND pipeline = ?2 AND task = ?3",
            params![run_id, pipeline, task],
        )
    }

    /// One attempt, as it is now.
    pub fn attempt(&self, id: i64) -> Result<Option<AttemptRow>> {
        Ok(self.attempts_where("id = ?1", params![id])?.pop())
    }

    /// Whether a run of this pipeline has that id.
    pub fn has_run(&self, pipeline: &str, run_id: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM runs WHERE pipeline = ?1 AND run_id = ?2",
                params![pipeline, run_id],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(self.err())
    }

    fn attempts_where(&self, cond: &str, p: impl rusqlite::Params) -> Result<Vec<AttemptRow>> {
        let sql = format!(
            "SELECT id, run_id, task, attempt, started_at, ended_at, state, exit_code, signal, duration_s, log_path,
                    runner_pid, runner_start, pgid, pgid_start, error, warnings
             FROM attempts WHERE {cond} ORDER BY id"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map(p, |r| {
                Ok(AttemptRow {
                    id: r.get(0)?,
                    run_id: r.get(1)?,
                    task: r.get(2)?,
                    attempt: r.get(3)?,
                    started_at: r.get(4)?,
                    ended_at: r.get(5)?,
                    state: AttemptState::parse(&r.get::<_, String>(6)?),
                    exit_code: r.get(7)?,
                    signal: r.get(8)?,
                    duration_s: r.get(9)?,
                    log_path: r.get(10)?,
                    runner_pid: r.get(11)?,
                    runner_start: r.get::<_, i64>(12)? as u64,
                    pgid: r.get(13)?,
                    pgid_start: r.get::<_, Option<i64>>(14)?.map(|v| v as u64),
                    error: r.get(15)?,
                    warnings: r
                        .get::<_, Option<String>>(16)?
                        .and_then(|w| serde_json::from_str(&w).ok())
                        .unwrap_or_default(),
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Mark attempts as interrupted (their runner is gone), with a reason.
    pub fn interrupt_attempts(&mut self, ids: &[i64], reason: &str) -> Result<()> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE attempts SET state = 'interrupted', ended_at = ?2, error = ?3 WHERE id = ?1 AND state = 'running'",
                )
                .map_err(&err)?;
            let now = now_rfc3339();
            for id in ids {
                stmt.execute(params![id, now, reason]).map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)?;
        Ok(())
    }

    /// Runs of an instance still recorded as running whose runner is not `me`.
    pub fn running_runs(&self, pipeline: &str, instance: &str) -> Result<Vec<RunRow>> {
        self.runs_where(
            "outcome = 'running' AND pipeline = ?1 AND instance = ?2",
            params![pipeline, instance],
            usize::MAX,
        )
    }

    pub fn history(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<RunRow>> {
        match pipeline {
            Some(p) => self.runs_where("pipeline = ?1", params![p], limit),
            None => self.runs_where("1 = 1", params![], limit),
        }
    }

    fn runs_where(&self, cond: &str, p: impl rusqlite::Params, limit: usize) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT run_id, pipeline, instance, params, started_at, ended_at, outcome, host, counts, runner_pid, runner_start
             FROM runs WHERE {cond} ORDER BY started_at DESC, rowid DESC LIMIT {}",
            limit.min(i64::MAX as usize)
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map(p, |r| {
                let params: String = r.get(3)?;
                let counts: Option<String> = r.get(8)?;
                Ok(RunRow {
                    run_id: r.get(0)?,
                    pipeline: r.get(1)?,
                    instance: r.get(2)?,
                    params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
                    started_at: r.get(4)?,
                    ended_at: r.get(5)?,
                    outcome: r.get(6)?,
                    host: r.get(7)?,
                    counts: counts
                        .and_then(|c| serde_json::from_str(&c).ok())
                        .unwrap_or(serde_json::Value::Null),
                    runner_pid: r.get(9)?,
                    runner_start: r.get::<_, i64>(10)? as u64,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Record a run whose runner died as interrupted.
    pub fn close_dead_run(&self, run_id: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET outcome = 'interrupted', ended_at = COALESCE(
                     (SELECT MAX(COALESCE(ended_at, started_at)) FROM attempts WHERE run_id = ?1), started_at)
                 WHERE run_id = ?1 AND outcome = 'running'",
                params![run_id],
            )
            .map_err(self.err())?;
        Ok(())
    }
}

/// Stops the background checkpoint thread (after a last checkpoint) when dropped.
pub struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::AttemptResult;

    const ME: Runner = Runner { pid: 1, start: 2 };

    /// The state in `dir`, with run `r1` of instance `instance` of pipeline `p` recorded.
    fn with_run(dir: &Path, instance: &str) -> State {
        let s = State::open(dir).unwrap();
        s.insert_run(
            "r1",
            "p",
            instance,
            "{}",
            "2026-01-01T00:00:00Z",
            ME,
            "plumb run p",
        )
        .unwrap();
        s
    }

    fn success() -> AttemptResult {
        AttemptResult {
            state: AttemptState::Success,
            exit_code: Some(0),
            signal: None,
            duration: Duration::from_millis(5),
            error: None,
            metrics: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn an_attempt_begun_and_ended_in_one_batch_is_one_finished_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = with_run(dir.path(), "");
        let id = s.begin_attempt("r1", "p", "", "t", 1, "log", ME);
        s.set_attempt_group(id, 4242, 77);
        s.finish_attempt(id, &success(), Some(("p", "", "t", "fp", "r1")), None);
        s.commit_batch().unwrap();
        let rows = s.attempts("p", "").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, AttemptState::Success);
        assert_eq!((rows[0].pgid, rows[0].pgid_start), (Some(4242), Some(77)));
        assert!(rows[0].ended_at.is_some());
        assert_eq!(s.markers("p", "", 1).unwrap()["t"].fingerprint, "fp");
        // Its group noted after the commit updates the same row.
        s.set_attempt_group(id, 4343, 78);
        s.commit_batch().unwrap();
        assert_eq!(s.attempts("p", "").unwrap()[0].pgid, Some(4343));
    }

    #[test]
    fn a_failed_commit_keeps_nothing_and_what_follows_about_its_attempts_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = with_run(dir.path(), "");
        s.conn.busy_timeout(Duration::ZERO).unwrap();
        let lost = s.begin_attempt("r1", "p", "", "lost", 1, "log", ME);
        // Another connection holds the write lock: the commit cannot begin.
        let other = Connection::open(dir.path().join("plumb.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert!(s.commit_batch().is_err());
        other.execute_batch("ROLLBACK").unwrap();
        // The lost attempt ends; another begins and takes the row id the lost one would have had.
        s.finish_attempt(lost, &success(), Some(("p", "", "lost", "fp", "r1")), None);
        let kept = s.begin_attempt("r1", "p", "", "kept", 1, "log", ME);
        s.commit_batch().unwrap();
        s.finish_attempt(kept, &success(), Some(("p", "", "kept", "fp", "r1")), None);
        s.commit_batch().unwrap();
        let rows = s.attempts("p", "").unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].task.as_str(), rows[0].state),
            ("kept", AttemptState::Success)
        );
        let markers = s.markers("p", "", 2).unwrap();
        assert!(markers.contains_key("kept") && !markers.contains_key("lost"));
    }

    #[test]
    fn a_run_that_ends_settles_an_attempt_whose_end_could_not_be_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = with_run(dir.path(), "");
        let id = s.begin_attempt("r1", "p", "", "t", 1, "log", ME);
        s.commit_batch().unwrap();
        // Its success and marker went into a batch that failed to commit: nothing of it is kept.
        s.finish_attempt(id, &success(), Some(("p", "", "t", "fp", "r1")), None);
        s.batch = attempts::Batch::default();
        assert_eq!(s.running_attempts("p", "").unwrap().len(), 1);
        s.finish_run("r1", "failed", "{}", &[]).unwrap();
        let rows = s.attempts("p", "").unwrap();
        assert_eq!(rows[0].state, AttemptState::Failed);
        assert_eq!(
            rows[0].error.as_deref(),
            Some("its end could not be recorded when it finished")
        );
        assert!(rows[0].ended_at.is_some());
        assert!(s.markers("p", "", 1).unwrap().is_empty());
    }

    #[test]
    fn migration_6_settles_attempts_left_running_by_runs_that_ended() {
        // A database at schema 5: what later migrations add is taken away again.
        let dir = tempfile::tempdir().unwrap();
        let mut s = with_run(dir.path(), "");
        s.insert_run("r2", "p", "", "{}", "2026-01-01T00:00:01Z", ME, "plumb run p")
            .unwrap();
        s.begin_attempt("r1", "p", "", "ended", 1, "log", ME);
        s.begin_attempt("r2", "p", "", "live", 1, "log", ME);
        s.commit_batch().unwrap();
        s.conn
            .execute_batch(
                "UPDATE runs SET outcome = 'failed', ended_at = '2026-01-01T00:01:00Z' WHERE run_id = 'r1';
                 DROP TABLE metrics;
                 ALTER TABLE attempts DROP COLUMN warnings;
                 DROP TABLE deadlines;
                 DROP INDEX fires_unwatched;
                 ALTER TABLE fires DROP COLUMN deadline_watched;
                 PRAGMA user_version = 5;",
            )
            .unwrap();
        drop(s);
        let s = State::open(dir.path()).unwrap();
        let rows = s.attempts("p", "").unwrap();
        let got: Vec<(&str, AttemptState, Option<&str>)> = rows
            .iter()
            .map(|r| (r.task.as_str(), r.state, r.ended_at.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("ended", AttemptState::Failed, Some("2026-01-01T00:01:00Z")),
                ("live", AttemptState::Running, None),
            ],
            "an attempt of a run still running is recovery's to judge"
        );
    }

    #[test]
    fn marker_commits_with_its_attempt_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = with_run(dir.path(), "d=1");
            let id = s.begin_attempt("r1", "p", "d=1", "t", 1, "log", ME);
            assert!(
                s.running_attempts("p", "d=1").unwrap().is_empty(),
                "nothing before the commit"
            );
            s.commit_batch().unwrap();
            assert_eq!(s.running_attempts("p", "d=1").unwrap().len(), 1);
            s.finish_attempt(id, &success(), Some(("p", "d=1", "t", "fp", "r1")), None);
            s.commit_batch().unwrap();
        }
        let s = State::open(dir.path()).unwrap();
        let m = s.markers("p", "d=1", 4).unwrap();
        assert_eq!(m["t"].fingerprint, "fp");
        assert!(s.running_attempts("p", "d=1").unwrap().is_empty());
        assert!(s.markers("p", "d=2", 4).unwrap().is_empty());
    }

    #[test]
    fn a_taken_run_id_is_refused_and_the_first_run_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = with_run(dir.path(), "d=1");
        let again = s.insert_run("r1", "q", "d=2", "{}", "2026-01-02T00:00:00Z", ME, "plumb run q");
        assert!(!again.unwrap());
        let kept: (String, String) = s
            .conn
            .query_row(
                "SELECT pipeline, instance FROM runs WHERE run_id = 'r1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(kept, ("p".to_string(), "d=1".to_string()));
        assert!(
            s.insert_run("r2", "q", "d=2", "{}", "2026-01-02T00:00:00Z", ME, "x")
                .unwrap()
        );
    }

    /// The WAL's salt (bytes 16..24 of its header) changes each time it starts over.
    fn wal_salt(path: &Path) -> Option<[u8; 8]> {
        use std::io::Read;
        let mut header = [0u8; 32];
        std::fs::File::open(path).ok()?.read_exact(&mut header).ok()?;
        header[16..24].try_into().ok()
    }

    #[test]
    fn the_wal_starts_over_while_a_run_keeps_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = with_run(dir.path(), "");
        let checkpoints = s.checkpoints_restarting_at(500).unwrap();
        let wal = dir.path().join("plumb.db-wal");
        let (mut salts, mut largest) = (std::collections::HashSet::new(), 0);
        // 3,000 tasks as the dispatcher records them: at 3 or 4 pages each, 36-48 MB of WAL if
        // it never started over. Paced (~1,500 a second) so that the checkpoints, every 250 ms,
        // see it.
        for t in 0..3000 {
            // As a chain records them: the start in one commit, the end in the next.
            let task = format!("t{t}");
            let id = s.begin_attempt("r1", "p", "", &task, 1, "log", ME);
            s.commit_batch().expect("no commit fails while the WAL restarts");
            s.finish_attempt(id, &success(), Some(("p", "", &task, "fp", "r1")), None);
            s.commit_batch().expect("no commit fails while the WAL restarts");
            salts.extend(wal_salt(&wal));
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            std::thread::sleep(Duration::from_micros(500));
        }
        drop(checkpoints);
        assert!(salts.len() >= 2, "the WAL never started over");
        assert!(largest < 24 << 20, "the WAL grew to {largest} bytes");
        assert_eq!(s.markers("p", "", 3000).unwrap().len(), 3000);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(State::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join("plumb.db")).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(
            State::open(dir.path()),
            Err(StateError::TooNew { found: 99, .. })
        ));
    }
}
