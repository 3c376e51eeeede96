//! Deadlines watched (DESIGN 7): one row per instance and deadline once that deadline has
//! passed, saying whether it was missed (and alerted) or met, so that neither a restart nor a
//! second watcher (the run and the scheduler both watch a scheduled run) alerts twice. And which
//! scheduled fires the scheduler has yet to watch.

use rusqlite::params;

use super::{NewAlert, Result, State, enqueue, now_rfc3339};

impl State {
    /// Record what became of `instance`'s deadline `deadline` (a `time_key`), with the alert
    /// that says it was missed, in one transaction. False, and nothing queued, when that
    /// deadline was recorded before.
    pub fn record_deadline(
        &mut self,
        pipeline: &str,
        instance: &str,
        deadline: &str,
        run_id: Option<&str>,
        missed: Option<&NewAlert>,
        was_missed: bool,
    ) -> Result<bool> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        let new = tx
            .execute(
                "INSERT OR IGNORE INTO deadlines (pipeline, instance, deadline, missed, run_id, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![pipeline, instance, deadline, was_missed, run_id, now_rfc3339()],
            )
            .map_err(&err)?
            == 1;
        if new && let Some(a) = missed {
            enqueue(&tx, a).map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(new)
    }

    /// Whether `instance`'s deadline `deadline` was recorded, missed or met.
    pub fn deadline_recorded(&self, pipeline: &str, instance: &str, deadline: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM deadlines WHERE pipeline = ?1 AND instance = ?2 AND deadline = ?3",
                params![pipeline, instance, deadline],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(self.err())
    }

    /// (fire time, status) of the fires of `pipeline` whose deadline the scheduler has yet to
    /// watch, oldest first.
    pub fn unwatched_fires(&self, pipeline: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT fire_time, status FROM fires WHERE pipeline = ?1 AND deadline_watched = 0 ORDER BY fire_time",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![pipeline], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Stop watching fires of `pipeline`: `fire`, or every one (a pipeline without a deadline).
    pub fn fire_watched(&self, pipeline: &str, fire: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE fires SET deadline_watched = 1
                 WHERE pipeline = ?1 AND deadline_watched = 0 AND (?2 IS NULL OR fire_time = ?2)",
                params![pipeline, fire],
            )
            .map_err(self.err())?;
        Ok(())
    }
}
