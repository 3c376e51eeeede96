//! Reading what tasks measured: the past values an expectation compares with, and the series
//! `plumb metrics` shows. `duration_s` is not in the metrics table: every attempt's duration is
//! in its own row already, and a second row per task would cost every run a write per task.

use rusqlite::params;

use super::{Result, State};

/// One recorded value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MetricRow {
    pub task: String,
    pub name: String,
    pub value: f64,
    pub run_id: String,
    pub instance: String,
    pub params: serde_json::Value,
    pub recorded_at: String,
}

impl State {
    /// The values of metric `name` of `task` recorded at `since` or later, any instance, oldest
    /// first. `duration_s` is every successful attempt's duration.
    pub fn metric_history(&self, pipeline: &str, task: &str, name: &str, since: &str) -> Result<Vec<f64>> {
        let sql = if name == crate::watch::metrics::DURATION {
            // No index leads here by task (attempts are indexed by instance first); this scan
            // runs once per run for each duration expectation with `anomaly`. (?3, the name, is
            // bound but unused.)
            "SELECT duration_s FROM attempts WHERE pipeline = ?1 AND task = ?2
               AND state = 'success' AND ended_at >= ?4 AND duration_s IS NOT NULL ORDER BY ended_at"
        } else {
            "SELECT value FROM metrics WHERE pipeline = ?1 AND task = ?2 AND name = ?3 AND recorded_at >= ?4
             ORDER BY recorded_at"
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.err())?;
        let rows = stmt
            .query_map(params![pipeline, task, name, since], |r| r.get(0))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Every recorded value of a pipeline's metrics, durations of successful attempts included,
    /// oldest first; only `task`'s and only metric `name` when given.
    pub fn metric_rows(
        &self,
        pipeline: &str,
        task: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<MetricRow>> {
        let sql = "SELECT task, name, value, run_id, instance, recorded_at FROM (
                 SELECT task, name, value, run_id, instance, recorded_at FROM metrics WHERE pipeline = ?1
                 UNION ALL
                 SELECT task, 'duration_s', duration_s, run_id, instance, ended_at FROM attempts
                  WHERE pipeline = ?1 AND state = 'success' AND duration_s IS NOT NULL AND ended_at IS NOT NULL
             ) WHERE (?2 IS NULL OR task = ?2) AND (?3 IS NULL OR name = ?3)
             ORDER BY recorded_at, task, name";
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let mut rows: Vec<MetricRow> = stmt
            .query_map(params![pipeline, task, name], |r| {
                Ok(MetricRow {
                    task: r.get(0)?,
                    name: r.get(1)?,
                    value: r.get(2)?,
                    run_id: r.get(3)?,
                    instance: r.get(4)?,
                    params: serde_json::Value::Null,
                    recorded_at: r.get(5)?,
                })
            })
            .map_err(self.err())?
            .collect::<rusqlite::Result<_>>()
            .map_err(self.err())?;
        // Each run's params, looked up once per run.
        let mut params_of: std::collections::HashMap<String, serde_json::Value> = Default::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT params FROM runs WHERE run_id = ?1")
            .map_err(self.err())?;
        for row in &mut rows {
            if !params_of.contains_key(&row.run_id) {
                let text: Option<String> = stmt.query_row(params![row.run_id], |r| r.get(0)).ok();
                let value = text
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(serde_json::Value::Null);
                params_of.insert(row.run_id.clone(), value);
            }
            row.params = params_of[&row.run_id].clone();
        }
        Ok(rows)
    }
}
