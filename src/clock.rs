//! The scheduler's clock, injectable for tests.
//!
//! `PLUMB_TEST_CLOCK=REAL=FAKE*SPEED` (e.g. `1795240000.250=2026-01-01T00:00:30Z*60`) makes "now"
//! equal `FAKE` at the real Unix time `REAL` (seconds, fractions allowed) and run `SPEED` times faster than real time, so an
//! every-minute schedule can be exercised once a second and a restart continues the same
//! timeline. It exists for tests; without it the clock is the system's.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy)]
struct TestClock {
    real: DateTime<Utc>,
    fake: DateTime<Utc>,
    speed: f64,
}

fn test_clock() -> Option<TestClock> {
    static CLOCK: OnceLock<Option<TestClock>> = OnceLock::new();
    *CLOCK.get_or_init(|| {
        let spec = std::env::var("PLUMB_TEST_CLOCK").ok()?;
        let (real, rest) = spec.split_once('=')?;
        let (fake, speed) = rest.split_once('*')?;
        Some(TestClock {
            real: {
                let secs: f64 = real.parse().ok()?;
                DateTime::from_timestamp_millis((secs * 1000.0) as i64)?
            },
            fake: DateTime::parse_from_rfc3339(fake).ok()?.with_timezone(&Utc),
            speed: speed.parse().ok().filter(|s: &f64| *s > 0.0)?,
        })
    })
}

/// The current time.
pub fn now() -> DateTime<Utc> {
    match test_clock() {
        None => Utc::now(),
        Some(c) => {
            let real_ms = (Utc::now() - c.real).num_milliseconds() as f64;
            c.fake + chrono::Duration::milliseconds((real_ms * c.speed) as i64)
        }
    }
}

/// Real time to wait until the clock shows `t` (zero if it already does).
pub fn real_until(t: DateTime<Utc>) -> Duration {
    let d = (t - now()).to_std().unwrap_or_default();
    match test_clock() {
        None => d,
        Some(c) => d.div_f64(c.speed),
    }
}
