//! `plumb alerts list` and `plumb alerts flush`: the outbox.

use crate::error::{Error, Result};
use crate::exit;
use crate::mail::{self, SmtpConfig};
use crate::process;
use crate::project::Locator;
use crate::state::Runner;

pub fn list(locator: &Locator) -> Result<i32> {
    let project = locator.project()?;
    let state = project.open_state()?;
    let pending = state.pending_alerts()?;
    if pending.is_empty() {
        println!("no alerts waiting to be sent");
        return Ok(exit::SUCCESS);
    }
    println!(
        "{} alert{} waiting to be sent:",
        pending.len(),
        if pending.len() == 1 { "" } else { "s" }
    );
    let mut zones = crate::timefmt::Zones::new(&project);
    for a in pending {
        let tz = zones.of(&a.pipeline);
        let instance = if a.instance.is_empty() {
            a.pipeline.clone()
        } else {
            format!("{} {}", a.pipeline, a.instance)
        };
        println!(
            "  #{} {} {} [{}] to {}",
            a.id,
            crate::timefmt::stored(&a.created_at, tz),
            a.event,
            instance,
            a.recipients.join(", ")
        );
        println!("      {}", a.subject);
        match &a.last_error {
            Some(e) if a.status == "undeliverable" => {
                println!("      undeliverable, not retried: {e}")
            }
            Some(e) => println!(
                "      {} attempt{}, last error: {e}; next try after {}",
                a.attempts,
                if a.attempts == 1 { "" } else { "s" },
                crate::timefmt::stored(&a.next_attempt_at, tz)
            ),
            None => println!("      not tried yet"),
        }
    }
    Ok(exit::SUCCESS)
}

/// The longest `alerts flush` spends delivering; what is not sent by then stays queued.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

pub fn flush(locator: &Locator) -> Result<i32> {
    let project = locator.project()?;
    let Some(cfg) = SmtpConfig::from_env().map_err(Error::usage)? else {
        return Err(Error::usage(
            "PLUMB_SMTP_URL is not set: there is no mail server to send to (e.g. PLUMB_SMTP_URL=smtp://localhost:25)",
        ));
    };
    let me = Runner {
        pid: std::process::id(),
        start: process::start_ticks(std::process::id()).unwrap_or(0),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("cannot start the runtime: {e}")))?;
    let deadline = tokio::time::Instant::now() + FLUSH_LIMIT;
    let d = rt
        .block_on(mail::deliver(
            &project.state_dir,
            &cfg,
            me,
            true,
            &mut Default::default(),
            Some(deadline),
        ))
        .map_err(Error::Io)?;
    println!(
        "sent {} alert{} via {}",
        d.sent,
        if d.sent == 1 { "" } else { "s" },
        cfg.server()
    );
    for (id, subject, e) in &d.failed {
        println!("  not sent #{id} {subject}: {e}");
    }
    if let Some(why) = &d.why_untried {
        println!(
            "  {} more alert{} left queued untried: {why}",
            d.untried,
            if d.untried == 1 { "" } else { "s" }
        );
    }
    Ok(if d.failed.is_empty() && d.untried == 0 {
        exit::SUCCESS
    } else {
        exit::TASK_FAILED
    })
}
