//! Forgetting old history (DESIGN 8): which runs may go, and their removal in one transaction.

use rusqlite::params;

use super::{Result, State};

/// A run that may be deleted, with what goes with it.
#[derive(Debug, Clone)]
pub struct OldRun {
    pub run_id: String,
    pub pipeline: String,
    pub instance: String,
    pub ended_at: String,
    pub attempts: u64,
    pub metrics: u64,
}

impl State {
    /// Runs that ended before `ended_before`, except the latest run of each instance and every
    /// run a current marker names (its record is what says how the task got done). Oldest first.
    pub fn old_runs(&self, ended_before: &str) -> Result<Vec<OldRun>> {
        let sql = "WITH latest AS (
                 SELECT run_id FROM (
                     SELECT run_id, ROW_NUMBER() OVER (
                         PARTITION BY pipeline, instance ORDER BY started_at DESC, rowid DESC) AS n
                     FROM runs)
                 WHERE n = 1),
             n_attempts AS (SELECT run_id, COUNT(*) AS n FROM attempts GROUP BY run_id),
             n_metrics AS (SELECT run_id, COUNT(*) AS n FROM metrics GROUP BY run_id)
             SELECT r.run_id, r.pipeline, r.instance, r.ended_at, COALESCE(a.n, 0), COALESCE(m.n, 0)
             FROM runs r
             LEFT JOIN n_attempts a ON a.run_id = r.run_id
             LEFT JOIN n_metrics m ON m.run_id = r.run_id
             WHERE r.outcome != 'running' AND r.ended_at IS NOT NULL AND r.ended_at < ?1
               AND r.run_id NOT IN (SELECT run_id FROM latest)
               AND r.run_id NOT IN (SELECT run_id FROM markers)
             ORDER BY r.started_at, r.rowid";
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt
            .query_map(params![ended_before], |r| {
                Ok(OldRun {
                    run_id: r.get(0)?,
                    pipeline: r.get(1)?,
                    instance: r.get(2)?,
                    ended_at: r.get(3)?,
                    attempts: r.get::<_, i64>(4)? as u64,
                    metrics: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Delete these runs with their attempts and metrics, all in one transaction: a prune
    /// killed at any moment leaves every run either whole or gone. Runs that started again
    /// meanwhile (a resume) or gained a marker are kept.
    pub fn delete_runs(&mut self, run_ids: &[String]) -> Result<usize> {
        self.write(|tx| {
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS doomed (run_id TEXT PRIMARY KEY); DELETE FROM doomed;",
            )?;
            {
                let mut insert = tx.prepare("INSERT OR IGNORE INTO doomed (run_id) VALUES (?1)")?;
                for id in run_ids {
                    insert.execute(params![id])?;
                }
            }
            // What changed since the list was drawn decides, not the list.
            tx.execute_batch(
                "DELETE FROM doomed WHERE run_id IN (SELECT run_id FROM markers)
                    OR run_id IN (SELECT run_id FROM runs WHERE outcome = 'running');",
            )?;
            tx.execute(
                "DELETE FROM metrics WHERE run_id IN (SELECT run_id FROM doomed)",
                [],
            )?;
            tx.execute(
                "DELETE FROM attempts WHERE run_id IN (SELECT run_id FROM doomed)",
                [],
            )?;
            let n = tx.execute("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM doomed)", [])?;
            tx.execute_batch("DROP TABLE doomed;")?;
            Ok(n)
        })
    }

    /// Whether a run with this id is recorded.
    pub fn run_exists(&self, run_id: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM runs WHERE run_id = ?1",
                params![run_id],
                |_| Ok(()),
            )
            .map(|_| true)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(false),
                e => Err(e),
            })
            .map_err(self.err())
    }
}
