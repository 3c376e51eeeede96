//! Cron schedules with Vixie cron's meaning (Debian's `cron`), in a pipeline's time zone.
//!
//! `fields` reads a crontab line and finds the wall-clock minutes it matches; `fires` turns
//! those into fire times across daylight-saving changes the way Vixie cron does (DESIGN 2).
//! Both are written here rather than taken from croner or cron: their grammars are supersets
//! of crontab's (`L`, `W`, `#`, seconds), they combine day of month and day of week by other
//! rules (croner ORs `*/10` with a weekday, Vixie ANDs), and neither tells a fixed-time schedule
//! from a wildcard one at a clock change, which Vixie does.

mod fields;
mod fires;

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;

pub use fires::{Fire, Fires};

use fields::Fields;

/// A checked crontab line.
/// Stored (in the compiled-pipeline cache) as its text, and parsed again when read.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Schedule {
    pub text: String,
    fields: Fields,
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

/// Vixie's `@` names, as the five fields each stands for. `@hourly`'s hour field is `*`, so it
/// is a wildcard schedule; the others are fixed-time.
const ALIASES: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let t = text.trim();
        let line = if t.starts_with('@') {
            let alias = ALIASES.iter().find(|(name, _)| name.eq_ignore_ascii_case(t));
            match alias {
                Some((_, line)) => *line,
                None if t.eq_ignore_ascii_case("@reboot") => {
                    return Err("@reboot is not a time: plumb schedules by the clock".to_string());
                }
                None => {
                    let names: Vec<&str> = ALIASES.iter().map(|(n, _)| *n).collect();
                    return Err(format!("unknown `{t}`; known: {}", names.join(", ")));
                }
            }
        } else {
            t
        };
        let fields = Fields::parse(line)?;
        // `0 0 30 2 *` parses but never fires; say so rather than wait forever.
        let from = NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid date");
        if fields.next_match(from).is_none() {
            return Err("this schedule never fires (no such date)".to_string());
        }
        Ok(Schedule {
            text: t.to_string(),
            fields,
        })
    }

    /// The wall-clock times of day it fires at, as minutes since midnight, in order, on every
    /// day it fires (clock changes aside).
    pub fn times_of_day(&self) -> Vec<u32> {
        self.fields.times_of_day()
    }

    /// The fire times strictly after `after`, in `after`'s zone.
    pub fn fires_after(&self, after: DateTime<Tz>) -> impl Iterator<Item = DateTime<Tz>> + use<> {
        self.fires(after).map(|f| f.at)
    }

    /// The fires strictly after `after`, each with the skipped times it catches up.
    pub fn fires(&self, after: DateTime<Tz>) -> Fires {
        Fires::new(self.fields, after)
    }
}

/// Read an IANA zone name.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone `{name}`"))
}

#[cfg(test)]
mod table;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_or_alias() {
        assert!(Schedule::parse("0 2 * * *").is_ok());
        assert!(Schedule::parse(" @daily ").is_ok());
        assert!(Schedule::parse("0 9 * * Mon-Fri").is_ok());
        assert!(Schedule::parse("0 0 2 * * *").unwrap_err().contains("found 6"));
        assert!(Schedule::parse("* * *").unwrap_err().contains("5 fields"));
        assert_eq!(
            Schedule::parse("@fortnightly").unwrap_err(),
            "unknown `@fortnightly`; known: @yearly, @annually, @monthly, @weekly, @daily, \
             @midnight, @hourly"
        );
        assert_eq!(
            Schedule::parse("@reboot").unwrap_err(),
            "@reboot is not a time: plumb schedules by the clock"
        );
        for (alias, _) in ALIASES {
            assert!(Schedule::parse(alias).is_ok(), "{alias}");
        }
    }

    #[test]
    fn a_schedule_that_never_fires_is_refused() {
        for never in ["0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
            let e = Schedule::parse(never).unwrap_err();
            assert_eq!(e, "this schedule never fires (no such date)", "{never}");
        }
        // Rare is not never: the 31st of an odd month that is a Sunday.
        assert!(Schedule::parse("0 0 31 */2 */7").is_ok());
    }

    #[test]
    fn a_catch_up_fire_names_the_times_it_stands_for() {
        let fire = |zone: &str, pattern: &str, after: &str| {
            let tz: Tz = zone.parse().unwrap();
            let after = DateTime::parse_from_rfc3339(after).unwrap().with_timezone(&tz);
            let f = Schedule::parse(pattern).unwrap().fires(after).next().unwrap();
            let skipped: Vec<String> = f.skipped.iter().map(|t| t.to_string()).collect();
            (f.at.to_rfc3339(), skipped)
        };
        assert_eq!(
            fire("Europe/Berlin", "15,45 2 * * *", "2026-03-29T00:00:00+01:00"),
            (
                "2026-03-29T03:00:00+02:00".to_string(),
                vec![
                    "2026-03-29 02:15:00".to_string(),
                    "2026-03-29 02:45:00".to_string()
                ]
            )
        );
        // 02:30 exists (it is the first minute after the jump), so it is not a skipped time.
        assert_eq!(
            fire("Australia/Lord_Howe", "0,30 2 * * *", "2026-10-04T00:00:00+10:30"),
            (
                "2026-10-04T02:30:00+11:00".to_string(),
                vec!["2026-10-04 02:00:00".to_string()]
            )
        );
        assert_eq!(
            fire("Europe/Berlin", "0 3 * * *", "2026-03-29T00:00:00+01:00"),
            ("2026-03-29T03:00:00+02:00".to_string(), vec![])
        );
    }

    #[test]
    fn zones_are_checked() {
        assert!(parse_zone("Europe/Berlin").is_ok());
        assert!(parse_zone("Mars/Olympus").is_err());
    }
}
