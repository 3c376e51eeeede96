//! The scheduler's records: since when each pipeline is scheduled, and every fire time it
//! handled (queued, running, done, failed, interrupted, skipped).

use rusqlite::{OptionalExtension, params};

use super::{Result, State, now_rfc3339};

/// Times are stored as RFC 3339 UTC with fixed precision, so they sort as text.
pub fn time_key(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl State {
    /// Since when `pipeline` has been scheduled with `schedule`: the stored time, or `now` when
    /// it is new or its schedule changed (so an edited schedule never fires its past).
    pub fn schedule_since(&self, pipeline: &str, schedule: &str, now: &str) -> Result<String> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT schedule, since FROM schedules WHERE pipeline = ?1",
                params![pipeline],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err())?;
        match row {
            Some((s, since)) if s == schedule => Ok(since),
            _ => {
                self.conn
                    .execute(
                        "INSERT OR REPLACE INTO schedules (pipeline, schedule, since) VALUES (?1, ?2, ?3)",
                        params![pipeline, schedule, now],
                    )
                    .map_err(self.err())?;
                Ok(now.to_string())
            }
        }
    }

    /// The newest fire time handled for `pipeline`.
    pub fn last_fire(&self, pipeline: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT MAX(fire_time) FROM fires WHERE pipeline = ?1",
                params![pipeline],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    /// Record fire times with their status (`queued` or `skipped`), all or none. A time already
    /// recorded is left alone: no time is ever handled twice.
    pub fn record_fires(&mut self, pipeline: &str, fires: &[(String, &str)]) -> Result<Vec<String>> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        let mut queued = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO fires (pipeline, fire_time, status, created_at) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(&err)?;
            let now = now_rfc3339();
            for (t, status) in fires {
                if stmt.execute(params![pipeline, t, status, now]).map_err(&err)? == 1 && *status == "queued"
                {
                    queued.push(t.clone());
                }
            }
        }
        tx.commit().map_err(&err)?;
        Ok(queued)
    }

    /// Fires recorded but not finished: queued, or started by a scheduler that stopped (they
    /// resume), oldest first.
    pub fn unfinished_fires(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT pipeline, fire_time FROM fires WHERE status IN ('queued', 'running', 'interrupted') ORDER BY fire_time",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    pub fn set_fire(
        &self,
        pipeline: &str,
        fire_time: &str,
        status: &str,
        exit_code: Option<i32>,
    ) -> Result<()> {
        let now = now_rfc3339();
        let (started, ended) = if status == "running" {
            (Some(&now), None)
        } else {
            (None, Some(&now))
        };
        self.conn
            .execute(
                "UPDATE fires SET status = ?3, exit_code = ?4, started_at = COALESCE(?5, started_at),
                        ended_at = COALESCE(?6, ended_at) WHERE pipeline = ?1 AND fire_time = ?2",
                params![pipeline, fire_time, status, exit_code, started, ended],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// (fire time, status) of every fire of `pipeline`, oldest first.
    pub fn fires(&self, pipeline: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT fire_time, status FROM fires WHERE pipeline = ?1 ORDER BY fire_time")
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![pipeline], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }
}
