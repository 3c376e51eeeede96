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
#[derive(Debug, Clone)]
pub struct Schedule {
    pub text: String,
    cron: Cron,
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
        Ok(Schedule {
            text: t.to_string(),
            cron,
        })
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

    #[test]
    fn zones_are_checked() {
        assert!(parse_zone("Europe/Berlin").is_ok());
        assert!(parse_zone("Mars/Olympus").is_err());
    }
}
