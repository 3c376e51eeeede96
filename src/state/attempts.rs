//! What a run records about its attempts, held in memory and written in one transaction at
//! [`State::commit_batch`].
//!
//! The runner commits when something waits for it (the dependents of a success, news that
//! should not wait) and at least every `executor::COMMIT_EVERY`, and starts an attempt's process
//! before the commit that records it. The write lock is taken only inside `commit_batch`, so
//! another runner of the same state (a different instance) is never kept waiting longer than
//! one commit. An attempt that starts and ends between two commits is one row insert, with no
//! update after it.

use rusqlite::{Connection, params};

use super::{Result, Runner, State, enqueue, now_rfc3339};
use crate::attempt::AttemptResult;
use crate::state::{AttemptState, NewAlert};

/// An attempt recorded through this state: its row, once a commit has inserted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptHandle(usize);

/// The marker a success writes: (pipeline, instance, task, fingerprint, run id).
pub type NewMarker<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// Attempt writes waiting for the next commit, in the order they were made.
#[derive(Default)]
pub(super) struct Batch {
    ops: Vec<Op>,
    /// Handles from this one on were begun in this batch; `begun[h - first]` is the index of
    /// the op that inserts h.
    first: usize,
    begun: Vec<usize>,
    /// Each handle's row id; `None` before its insert is committed, and for good if that
    /// commit failed.
    rows: Vec<Option<i64>>,
}

enum Op {
    Begin(Box<NewAttempt>),
    Group {
        h: usize,
        pgid: u32,
        start: u64,
    },
    Finish {
        h: usize,
        end: Box<End>,
    },
    SlaMiss {
        h: usize,
        at: String,
        alert: Option<Box<NewAlert>>,
    },
}

struct NewAttempt {
    h: usize,
    run_id: String,
    pipeline: String,
    instance: String,
    task: String,
    attempt: u32,
    started_at: String,
    log_path: String,
    runner: Runner,
    group: Option<(u32, u64)>,
    end: Option<Box<End>>,
}

struct End {
    at: String,
    result: AttemptResult,
    marker: Option<[String; 5]>,
    alert: Option<NewAlert>,
}

impl State {
    /// Record that an attempt starts (written at the next `commit_batch`).
    #[allow(clippy::too_many_arguments)]
    pub fn begin_attempt(
        &mut self,
        run_id: &str,
        pipeline: &str,
        instance: &str,
        task: &str,
        attempt: u32,
        log_path: &str,
        runner: Runner,
    ) -> AttemptHandle {
        let b = &mut self.batch;
        let h = b.rows.len();
        b.rows.push(None);
        // Every handle from `first` on was begun in this batch, so `begun[h - first]` is h's.
        b.begun.push(b.ops.len());
        b.ops.push(Op::Begin(Box::new(NewAttempt {
            h,
            run_id: run_id.to_string(),
            pipeline: pipeline.to_string(),
            instance: instance.to_string(),
            task: task.to_string(),
            attempt,
            started_at: now_rfc3339(),
            log_path: log_path.to_string(),
            runner,
            group: None,
            end: None,
        })));
        AttemptHandle(h)
    }

    /// Note the process group an attempt's command runs in.
    pub fn set_attempt_group(&mut self, h: AttemptHandle, pgid: u32, start: u64) {
        match self.batch.begun_here(h.0) {
            Some(a) => a.group = Some((pgid, start)),
            None => self.batch.ops.push(Op::Group { h: h.0, pgid, start }),
        }
    }

    /// Record how an attempt ended and, for a success, its marker (with it in one transaction).
    pub fn finish_attempt(
        &mut self,
        h: AttemptHandle,
        result: &AttemptResult,
        marker: Option<NewMarker<'_>>,
        alert: Option<&NewAlert>,
    ) {
        let end = Box::new(End {
            at: now_rfc3339(),
            result: result.clone(),
            marker: marker.map(|(p, i, t, f, r)| [p, i, t, f, r].map(str::to_string)),
            alert: alert.cloned(),
        });
        match self.batch.begun_here(h.0) {
            Some(a) => a.end = Some(end),
            None => self.batch.ops.push(Op::Finish { h: h.0, end }),
        }
    }

    /// Record that an attempt missed its SLA, with the alert that says so.
    pub fn record_sla_miss(&mut self, h: AttemptHandle, alert: Option<&NewAlert>) {
        self.batch.ops.push(Op::SlaMiss {
            h: h.0,
            at: now_rfc3339(),
            alert: alert.cloned().map(Box::new),
        });
    }

    /// Write everything recorded since the last commit in one transaction. On error none of
    /// it is kept: attempts begun in it never get a row, and later writes about them are
    /// dropped.
    pub fn commit_batch(&mut self) -> Result<()> {
        if self.batch.ops.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut self.batch.ops);
        self.batch.first = self.batch.rows.len();
        self.batch.begun.clear();
        let err = self.err();
        // IMMEDIATE: the write lock is taken at BEGIN, where SQLite waits for it (busy
        // timeout) while another writer, such as a RESTART checkpoint, holds it.
        let written = self
            .conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .and_then(|_| write_ops(&self.conn, &ops, &self.batch.rows))
            .and_then(|inserted| {
                self.conn.prepare_cached("COMMIT")?.execute([])?;
                Ok(inserted)
            });
        match written {
            Ok(inserted) => {
                for (h, id) in inserted {
                    self.batch.rows[h] = Some(id);
                }
                Ok(())
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(err(e))
            }
        }
    }
}

impl Batch {
    /// The insert of handle `h`, if it is in this batch.
    fn begun_here(&mut self, h: usize) -> Option<&mut NewAttempt> {
        if h < self.first {
            return None;
        }
        match self.ops.get_mut(*self.begun.get(h - self.first)?) {
            Some(Op::Begin(a)) if a.h == h => Some(a),
            _ => None,
        }
    }
}

/// Run `ops` inside the open transaction; the row ids of the attempts inserted.
fn write_ops(tx: &Connection, ops: &[Op], rows: &[Option<i64>]) -> rusqlite::Result<Vec<(usize, i64)>> {
    let mut inserted: Vec<(usize, i64)> = Vec::new();
    let row = |h: usize, inserted: &[(usize, i64)]| {
        rows[h].or_else(|| inserted.iter().rev().find(|(i, _)| *i == h).map(|(_, id)| *id))
    };
    for op in ops {
        match op {
            Op::Begin(a) => {
                let e = a.end.as_deref();
                tx.prepare_cached(
                    "INSERT INTO attempts (run_id, pipeline, instance, task, attempt, started_at, state, log_path,
                        runner_pid, runner_start, pgid, pgid_start, ended_at, exit_code, signal, duration_s, error,
                        warnings)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )?
                .execute(params![
                    a.run_id,
                    a.pipeline,
                    a.instance,
                    a.task,
                    a.attempt,
                    a.started_at,
                    e.map_or("running", |e| e.result.state.as_str()),
                    a.log_path,
                    a.runner.pid,
                    a.runner.start as i64,
                    a.group.map(|g| g.0),
                    a.group.map(|g| g.1 as i64),
                    e.map(|e| &e.at),
                    e.and_then(|e| e.result.exit_code),
                    e.and_then(|e| e.result.signal),
                    e.map(|e| e.result.duration.as_secs_f64()),
                    e.and_then(|e| e.result.error.as_deref()),
                    e.and_then(|e| warnings_json(&e.result)),
                ])?;
                let id = tx.last_insert_rowid();
                inserted.push((a.h, id));
                if let Some(e) = e {
                    end_extras(tx, id, e)?;
                }
            }
            Op::Group { h, pgid, start } => {
                if let Some(id) = row(*h, &inserted) {
                    tx.prepare_cached("UPDATE attempts SET pgid = ?2, pgid_start = ?3 WHERE id = ?1")?
                        .execute(params![id, pgid, *start as i64])?;
                }
            }
            Op::Finish { h, end } => {
                // An attempt whose insert was lost with a failed commit has no row to finish,
                // and its success no marker.
                if let Some(id) = row(*h, &inserted) {
                    let r = &end.result;
                    tx.prepare_cached(
                        "UPDATE attempts SET ended_at = ?2, state = ?3, exit_code = ?4, signal = ?5, duration_s = ?6, error = ?7,
                             warnings = ?8
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        id,
                        end.at,
                        r.state.as_str(),
                        r.exit_code,
                        r.signal,
                        r.duration.as_secs_f64(),
                        r.error,
                        warnings_json(r),
                    ])?;
                    end_extras(tx, id, end)?;
                }
            }
            Op::SlaMiss { h, at, alert } => {
                if let Some(id) = row(*h, &inserted) {
                    tx.prepare_cached("UPDATE attempts SET sla_missed_at = ?2 WHERE id = ?1")?
                        .execute(params![id, at])?;
                }
                if let Some(a) = alert {
                    enqueue(tx, a)?;
                }
            }
        }
    }
    Ok(inserted)
}

/// An attempt's warnings as stored: a JSON array of strings, or nothing when there are none.
fn warnings_json(r: &AttemptResult) -> Option<String> {
    (!r.warnings.is_empty()).then(|| serde_json::to_string(&r.warnings).expect("strings serialize"))
}

/// The metrics, the marker and the alert that go with attempt `id`'s end. Metrics are kept
/// only for a success: they are what expectations later compare with.
fn end_extras(tx: &Connection, id: i64, end: &End) -> rusqlite::Result<()> {
    if end.result.state == AttemptState::Success && !end.result.metrics.is_empty() {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO metrics (pipeline, task, name, recorded_at, attempt_id, run_id, instance, value)
             SELECT pipeline, task, ?2, ?3, id, run_id, instance, ?4 FROM attempts WHERE id = ?1",
        )?;
        for (name, value) in &end.result.metrics {
            stmt.execute(params![id, name, end.at, value])?;
        }
    }
    if let Some([pipeline, instance, task, fingerprint, run_id]) = &end.marker {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO markers (pipeline, instance, task, fingerprint, run_id, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![pipeline, instance, task, fingerprint, run_id, end.at])?;
    }
    if let Some(a) = &end.alert {
        enqueue(tx, a)?;
    }
    Ok(())
}
