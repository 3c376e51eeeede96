//! The alert outbox: alerts are queued in the transaction that causes them (see the callers in
//! the parent module), then claimed, sent and marked by [`crate::mail`].

use rusqlite::params;

use super::{Result, Runner, State, now_rfc3339};

/// An alert to queue.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub event: String,
    pub pipeline: String,
    pub instance: String,
    pub run_id: Option<String>,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// A row of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub created_at: String,
    pub event: String,
    pub pipeline: String,
    pub instance: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: String,
    pub claimed: Option<(u32, u64)>,
}

pub(super) fn enqueue(tx: &rusqlite::Connection, a: &NewAlert) -> rusqlite::Result<()> {
    let now = now_rfc3339();
    tx.prepare_cached(
        "INSERT INTO alerts (created_at, event, pipeline, instance, run_id, recipients, subject, body, status, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?1)",
    )?
    .execute(params![
        now,
        a.event,
        a.pipeline,
        a.instance,
        a.run_id,
        serde_json::to_string(&a.recipients).expect("strings serialize"),
        a.subject,
        a.body
    ])?;
    Ok(())
}

impl State {
    /// Alerts not yet sent, oldest first.
    pub fn pending_alerts(&self) -> Result<Vec<OutboxRow>> {
        self.outbox_where("status != 'sent'")
    }

    /// Alerts that may be sent now: queued and due, or claimed by a sender that died.
    pub fn due_alerts(&self, now: &str) -> Result<Vec<OutboxRow>> {
        let rows = self.outbox_where("status != 'sent'")?;
        Ok(rows
            .into_iter()
            .filter(|a| match a.status.as_str() {
                "queued" => a.next_attempt_at.as_str() <= now,
                "undeliverable" => false,
                // Claimed by a sender: only if that sender is dead (it may have sent it; at least
                // once is the promise, so it is sent again).
                _ => !a
                    .claimed
                    .is_some_and(|(pid, start)| crate::process::same_process_alive(pid, start)),
            })
            .collect())
    }

    fn outbox_where(&self, cond: &str) -> Result<Vec<OutboxRow>> {
        let sql = format!(
            "SELECT id, created_at, event, pipeline, instance, recipients, subject, body, status, attempts,
                    last_error, next_attempt_at, claimed_pid, claimed_start
             FROM alerts WHERE {cond} ORDER BY id"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                let recipients: String = r.get(5)?;
                let pid: Option<u32> = r.get(12)?;
                let start: Option<i64> = r.get(13)?;
                Ok(OutboxRow {
                    id: r.get(0)?,
                    created_at: r.get(1)?,
                    event: r.get(2)?,
                    pipeline: r.get(3)?,
                    instance: r.get(4)?,
                    recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                    subject: r.get(6)?,
                    body: r.get(7)?,
                    status: r.get(8)?,
                    attempts: r.get(9)?,
                    last_error: r.get(10)?,
                    next_attempt_at: r.get(11)?,
                    claimed: pid.zip(start.map(|s| s as u64)),
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Take an alert for sending. False when another live sender holds it.
    pub fn claim_alert(&self, id: i64, me: Runner) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE alerts SET status = 'sending', claimed_pid = ?2, claimed_start = ?3
                 WHERE id = ?1 AND status != 'sent'
                   AND (status = 'queued' OR claimed_pid IS NOT ?2 OR claimed_start IS NOT ?3)",
                params![id, me.pid, me.start as i64],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    pub fn alert_sent(&self, id: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE alerts SET status = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                params![id, now_rfc3339()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// A delivery that no later try can make: kept, listed, never tried again.
    pub fn alert_undeliverable(&self, id: i64, error: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE alerts SET status = 'undeliverable', attempts = attempts + 1, last_error = ?2,
                        claimed_pid = NULL, claimed_start = NULL WHERE id = ?1",
                params![id, error],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// A delivery failed: back to the queue with the error, due again after a backoff that is
    /// zero after the first failure, then 1 minute, doubling, capped at an hour.
    pub fn alert_failed(&self, id: i64, error: &str) -> Result<()> {
        let attempts: u32 = self
            .conn
            .query_row("SELECT attempts FROM alerts WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .map_err(self.err())?;
        let attempts = attempts + 1;
        let wait = if attempts <= 1 {
            0
        } else {
            (60u64 << (attempts - 2).min(6)).min(3600)
        };
        let due = (chrono::Utc::now() + chrono::Duration::seconds(wait as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.conn
            .execute(
                "UPDATE alerts SET status = 'queued', attempts = ?2, last_error = ?3, next_attempt_at = ?4,
                        claimed_pid = NULL, claimed_start = NULL WHERE id = ?1",
                params![id, attempts, error, due],
            )
            .map_err(self.err())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> NewAlert {
        NewAlert {
            event: "failure".into(),
            pipeline: "p".into(),
            instance: "".into(),
            run_id: Some("r1".into()),
            recipients: vec!["a@example.com".into()],
            subject: "s".into(),
            body: "b".into(),
        }
    }

    fn me() -> Runner {
        Runner {
            pid: std::process::id(),
            start: crate::process::start_ticks(std::process::id()).unwrap(),
        }
    }

    #[test]
    fn alerts_queue_with_their_run_and_back_off_after_failures() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.insert_run("r1", "p", "", "{}", "2026-01-01T00:00:00Z", me(), "x")
            .unwrap();
        s.finish_run("r1", "failed", "{}", &[alert()]).unwrap();
        let far = "9999-01-01T00:00:00Z";
        let due = s.due_alerts(far).unwrap();
        assert_eq!(due.len(), 1);
        assert!(s.claim_alert(due[0].id, me()).unwrap());
        assert!(
            !s.claim_alert(due[0].id, me()).unwrap(),
            "a claimed alert is not claimed twice"
        );
        assert!(s.due_alerts(far).unwrap().is_empty(), "claimed by a live sender");
        s.alert_failed(due[0].id, "connection refused").unwrap();
        assert_eq!(
            s.due_alerts(&now_rfc3339()).unwrap().len(),
            1,
            "the first retry is due at once"
        );
        assert!(s.claim_alert(due[0].id, me()).unwrap());
        s.alert_failed(due[0].id, "connection refused").unwrap();
        assert!(
            s.due_alerts(&now_rfc3339()).unwrap().is_empty(),
            "then it backs off"
        );
        let row = &s.pending_alerts().unwrap()[0];
        assert_eq!(row.attempts, 2);
        assert_eq!(row.last_error.as_deref(), Some("connection refused"));
        assert!(s.claim_alert(row.id, me()).unwrap());
        s.alert_sent(row.id).unwrap();
        assert!(s.pending_alerts().unwrap().is_empty());
    }

    #[test]
    fn an_alert_claimed_by_a_dead_sender_is_due_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        let dead = Runner {
            pid: u32::MAX - 1,
            start: 1,
        };
        s.insert_run("r1", "p", "", "{}", "2026-01-01T00:00:00Z", dead, "x")
            .unwrap();
        s.finish_run("r1", "failed", "{}", &[alert()]).unwrap();
        let id = s.pending_alerts().unwrap()[0].id;
        assert!(s.claim_alert(id, dead).unwrap());
        assert_eq!(s.due_alerts(&now_rfc3339()).unwrap().len(), 1);
    }
}
