//! Cron schedules with crontab's meaning, in a pipeline's time zone.
//!
//! Parsing is croner's, restricted to crontab's five fields (no seconds, no years): croner
//! numbers weekdays as POSIX does (0 and 7 = Sunday, `1-5` = Monday to Friday), accepts names and
//! `@daily`-style aliases, ORs day-of-month with day-of-week as Vixie cron does, and resolves a
//! wall-clock time skipped by a daylight-saving jump to the first valid time after it.

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A checked crontab line.
/// Stored (in the compiled-pipeline cache) as its text, and parsed again when read.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Schedule {
    pub text: String,
    cron: Cron,
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.text
    }
}

impl TryFrom<String> for Schedule {
    type Error = String;
    fn try_from(text: String) -> Result<Schedule, String> {
        Schedule::parse(&text)
    }
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let t = text.trim();
        if !t.starts_with('@') {
            let fields = t.split_whitespace().count();
            if fields != 5 {
                return Err(format!(
                    "a schedule has 5 fields (minute hour day-of-month month day-of-week), found {fields}"
                ));
            }
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(t).map_err(|e| e.to_string())?;
        let schedule = Schedule {
            text: t.to_string(),
            cron,
        };
        // `0 0 30 2 *` parses but never fires; say so rather than wait forever.
        let from = chrono::Utc
            .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .expect("valid date");
        if schedule.fires_after(from).next().is_none() {
            return Err("this schedule never fires (no such date)".to_string());
        }
        Ok(schedule)
    }

    /// The fire times strictly after `after`, in `after`'s zone.
    pub fn fires_after<Z: TimeZone>(&self, after: DateTime<Z>) -> impl Iterator<Item = DateTime<Z>> {
        self.cron.clone().iter_after(after)
    }
}

/// Read an IANA zone name.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone `{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};

    #[test]
    fn five_fields_or_alias() {
        assert!(Schedule::parse("0 2 * * *").is_ok());
        assert!(Schedule::parse("@daily").is_ok());
        assert!(Schedule::parse("0 9 * * Mon-Fri").is_ok());
        assert!(Schedule::parse("0 0 2 * * *").unwrap_err().contains("found 6"));
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("* * *").unwrap_err().contains("5 fields"));
    }

    #[test]
    fn weekdays_are_posix() {
        let s = Schedule::parse("0 12 * * 1-5").unwrap();
        let tz: Tz = "UTC".parse().unwrap();
        // 2026-11-21 is a Saturday: the next fires are Monday to Friday.
        let start = tz.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        let days: Vec<_> = s
            .fires_after(start)
            .take(5)
            .map(|t| t.weekday().number_from_monday())
            .collect();
        assert_eq!(days, vec![1, 2, 3, 4, 5]);
        let sunday = Schedule::parse("0 12 * * 7").unwrap();
        assert_eq!(
            sunday.fires_after(start).next().unwrap().weekday(),
            chrono::Weekday::Sun
        );
    }

    #[test]
    fn spring_forward_gap_fires_at_next_valid_time() {
        let s = Schedule::parse("30 2 * * *").unwrap();
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let start = tz.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        let next: Vec<_> = s.fires_after(start).take(2).collect();
        assert_eq!((next[0].day(), next[0].hour(), next[0].minute()), (29, 3, 0));
        assert_eq!((next[1].day(), next[1].hour(), next[1].minute()), (30, 2, 30));
    }

    #[test]
    fn every_documented_alias_parses() {
        for a in ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"] {
            assert!(Schedule::parse(a).is_ok(), "{a}");
        }
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Tz> {
        Tz::UTC.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn next_n(pattern: &str, after: DateTime<Tz>, n: usize) -> Vec<String> {
        Schedule::parse(pattern)
            .unwrap()
            .fires_after(after)
            .take(n)
            .map(|t| t.to_rfc3339())
            .collect()
    }

    #[test]
    fn names_steps_and_ranges() {
        assert_eq!(
            next_n("*/15 9-17 * Jan,Jul Mon-Fri", utc(2026, 1, 30, 17, 40), 3),
            [
                "2026-01-30T17:45:00+00:00",
                "2026-07-01T09:00:00+00:00",
                "2026-07-01T09:15:00+00:00"
            ]
        );
        assert_eq!(
            next_n("0 */6 * * *", utc(2026, 1, 1, 1, 0), 2),
            ["2026-01-01T06:00:00+00:00", "2026-01-01T12:00:00+00:00"]
        );
        assert_eq!(
            next_n("@hourly", utc(2026, 1, 1, 1, 5), 1),
            ["2026-01-01T02:00:00+00:00"]
        );
        assert_eq!(
            next_n("@weekly", utc(2026, 1, 1, 0, 0), 1),
            ["2026-01-04T00:00:00+00:00"],
            "weeks start on Sunday"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_as_vixie_cron() {
        // Both restricted: either matches (the 1st, or any Monday).
        assert_eq!(
            next_n("0 0 1 * 1", utc(2026, 1, 20, 0, 0), 4),
            [
                "2026-01-26T00:00:00+00:00",
                "2026-02-01T00:00:00+00:00",
                "2026-02-02T00:00:00+00:00",
                "2026-02-09T00:00:00+00:00"
            ]
        );
    }

    #[test]
    fn month_ends_and_leap_days() {
        assert_eq!(
            next_n("0 0 31 * *", utc(2026, 1, 1, 0, 0), 3),
            [
                "2026-01-31T00:00:00+00:00",
                "2026-03-31T00:00:00+00:00",
                "2026-05-31T00:00:00+00:00"
            ]
        );
        assert_eq!(
            next_n("0 0 29 2 *", utc(2026, 1, 1, 0, 0), 2),
            ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]
        );
        assert!(Schedule::parse("0 0 30 2 *").unwrap_err().contains("never fires"));
    }

    #[test]
    fn sunday_is_0_and_7() {
        let a = next_n("0 0 * * 0", utc(2026, 1, 20, 0, 0), 2);
        assert_eq!(a, next_n("0 0 * * 7", utc(2026, 1, 20, 0, 0), 2));
        assert_eq!(a, next_n("0 0 * * Sun", utc(2026, 1, 20, 0, 0), 2));
        assert_eq!(a[0], "2026-01-25T00:00:00+00:00");
    }

    fn zoned(zone: &str, pattern: &str, y: i32, m: u32, d: u32, h: u32, n: usize) -> Vec<String> {
        let tz: Tz = zone.parse().unwrap();
        let start = tz.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
        Schedule::parse(pattern)
            .unwrap()
            .fires_after(start)
            .take(n)
            .map(|t| t.to_rfc3339())
            .collect()
    }

    #[test]
    fn berlin_fall_back_fires_a_fixed_time_once_and_hourly_each_real_hour() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        assert_eq!(
            zoned("Europe/Berlin", "30 2 * * *", 2026, 10, 24, 12, 2),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
        );
        assert_eq!(
            zoned("Europe/Berlin", "0 * * * *", 2026, 10, 25, 1, 3),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00"
            ]
        );
    }

    #[test]
    fn new_york_in_both_directions() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 fires at 03:00.
        assert_eq!(
            zoned("America/New_York", "30 2 * * *", 2026, 3, 7, 12, 2),
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
        );
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 fires once.
        assert_eq!(
            zoned("America/New_York", "30 1 * * *", 2026, 10, 31, 12, 2),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
    }

    #[test]
    fn zones_are_checked() {
        assert!(parse_zone("Europe/Berlin").is_ok());
        assert!(parse_zone("Mars/Olympus").is_err());
    }
}
