//! `[pipeline] deadline`: when an instance should be complete, relative to its logical time.
//!
//! `"06:00"` is a time of day in the pipeline's zone, the first one strictly after the logical
//! time (a nightly fire at 02:00 must be done by 06:00 that morning; one at 23:00 by 06:00 the
//! next morning). `"4h"` is a duration after the logical time. Either way the deadline is one
//! instant per logical time, so a resume of the instance keeps it, and the state can record
//! "this deadline of this instance was alerted" once.

use std::time::Duration;

use chrono::{DateTime, Days, LocalResult, NaiveTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::duration::{self, RawDuration};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Deadline {
    /// A local time of day: hour and minute.
    TimeOfDay(u32, u32),
    /// A duration after the logical time.
    After(Duration),
}

/// Why a deadline was refused: a message and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineError {
    pub message: String,
    pub help: String,
}

const HELP: &str = "write a time of day in the pipeline's zone, like \"06:00\", or a duration after the logical time, like \"4h\"";

/// Read a deadline as written.
pub fn parse(raw: &RawDuration) -> Result<Deadline, DeadlineError> {
    if let RawDuration::Text(s) = raw
        && let Some((h, m)) = s.trim().split_once(':')
    {
        let digits = |x: &str, len: std::ops::RangeInclusive<usize>| {
            len.contains(&x.len()) && x.bytes().all(|b| b.is_ascii_digit())
        };
        let refuse = |why: &str| DeadlineError {
            message: format!("\"{s}\": {why}"),
            help: HELP.into(),
        };
        if !digits(h, 1..=2) || !digits(m, 2..=2) {
            return Err(refuse("a time of day is HH:MM"));
        }
        let (h, m): (u32, u32) = (h.parse().expect("digits"), m.parse().expect("digits"));
        if h > 23 || m > 59 {
            return Err(refuse("there is no such time of day (00:00 to 23:59)"));
        }
        return Ok(Deadline::TimeOfDay(h, m));
    }
    match duration::parse(raw) {
        Ok(d) if d.is_zero() => Err(DeadlineError {
            message: "a deadline after the logical time must be longer than 0s".into(),
            help: HELP.into(),
        }),
        Ok(d) => Ok(Deadline::After(d)),
        Err(e) => Err(DeadlineError {
            message: e.message,
            help: HELP.into(),
        }),
    }
}

impl Deadline {
    /// The deadline of the instance whose logical time is `logical`, in zone `tz`.
    pub fn at(&self, logical: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        match *self {
            Deadline::After(d) => logical + TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX / 2),
            Deadline::TimeOfDay(h, m) => {
                let time = NaiveTime::from_hms_opt(h, m, 0).expect("validated when parsed");
                let day = logical.with_timezone(&tz).date_naive();
                // The first such local time after `logical`: today's, or tomorrow's (or the
                // day after, when a zone skipped a whole day).
                (0..=3)
                    .filter_map(|k| day.checked_add_days(Days::new(k)))
                    .map(|d| local(tz, d.and_time(time)))
                    .find(|t| *t > logical)
                    .expect("a time of day comes within three days")
            }
        }
    }

    /// As written back to people: `06:00` or `4h`.
    pub fn text(&self) -> String {
        match *self {
            Deadline::TimeOfDay(h, m) => format!("{h:02}:{m:02}"),
            Deadline::After(d) => humantime::format_duration(d).to_string(),
        }
    }
}

/// A local wall-clock time as an instant: the earlier of two when clocks go back; when they go
/// forward over it, the moment the skipped hour ends (as cron fires a skipped 02:30 at 03:00).
fn local(tz: Tz, naive: chrono::NaiveDateTime) -> DateTime<Utc> {
    let mut t = naive;
    loop {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => {
                return x.with_timezone(&Utc);
            }
            LocalResult::None => {
                // Inside a gap: step to the next whole minute that exists.
                t = (t + TimeDelta::minutes(1))
                    .with_second(0)
                    .expect("0 is a valid second");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn text(s: &str) -> RawDuration {
        RawDuration::Text(s.into())
    }

    #[test]
    fn a_time_of_day_is_the_first_one_after_the_logical_time() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let six = parse(&text("06:00")).unwrap();
        // 02:00 CET on 2026-01-10: 06:00 that morning.
        assert_eq!(
            six.at(utc("2026-01-10T01:00:00Z"), berlin),
            utc("2026-01-10T05:00:00Z")
        );
        // 23:00 CET: 06:00 the next morning.
        assert_eq!(
            six.at(utc("2026-01-10T22:00:00Z"), berlin),
            utc("2026-01-11T05:00:00Z")
        );
        // Exactly 06:00: the next day's (strictly after).
        assert_eq!(
            six.at(utc("2026-01-10T05:00:00Z"), berlin),
            utc("2026-01-11T05:00:00Z")
        );
        // Summer time: 06:00 CEST is 04:00 UTC.
        assert_eq!(
            six.at(utc("2026-07-10T00:00:00Z"), berlin),
            utc("2026-07-10T04:00:00Z")
        );
    }

    #[test]
    fn a_skipped_or_repeated_local_time_resolves_like_cron() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-29 02:30 does not exist in Berlin: 03:00 CEST.
        let half_two = parse(&text("2:30")).unwrap();
        assert_eq!(
            half_two.at(utc("2026-03-28T23:00:00Z"), berlin),
            utc("2026-03-29T01:00:00Z")
        );
        // 2026-10-25 02:30 happens twice: the first, CEST.
        assert_eq!(
            half_two.at(utc("2026-10-24T23:00:00Z"), berlin),
            utc("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn a_duration_counts_from_the_logical_time() {
        let d = parse(&text("4h")).unwrap();
        assert_eq!(d, Deadline::After(Duration::from_secs(4 * 3600)));
        assert_eq!(
            d.at(utc("2026-01-10T22:00:00Z"), Tz::UTC),
            utc("2026-01-11T02:00:00Z")
        );
        assert_eq!(d.text(), "4h");
        assert_eq!(parse(&text("06:05")).unwrap().text(), "06:05");
    }

    #[test]
    fn malformed_deadlines_are_refused() {
        let msg = |s: &str| parse(&text(s)).unwrap_err().message;
        assert_eq!(
            msg("25:00"),
            "\"25:00\": there is no such time of day (00:00 to 23:59)"
        );
        assert_eq!(msg("6:0"), "\"6:0\": a time of day is HH:MM");
        assert_eq!(msg("06:00:00"), "\"06:00:00\": a time of day is HH:MM");
        assert_eq!(
            msg("0s"),
            "a deadline after the logical time must be longer than 0s"
        );
        assert_eq!(msg("4"), "duration 4 has no unit");
        assert_eq!(
            parse(&RawDuration::Integer(6)).unwrap_err().message,
            "duration 6 has no unit"
        );
    }
}
