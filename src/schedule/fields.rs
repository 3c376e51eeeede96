//! The five fields of a crontab line, read as Vixie cron reads them, and the wall-clock minutes
//! they match.
//!
//! Grammar (crontab(5)): a field is a comma-separated list of items; an item is `*`, a value or a
//! range `A-B`, optionally followed by a step `/N`. Values are numbers, or for month and day of
//! week three-letter English names in any case. Day of week runs 0-7, where 0 and 7 are Sunday.
//! Anything else (croner's `L`, `W`, `#`, `?`, seconds) is not crontab and is rejected.
//!
//! Two things are kept from the text besides the matched values, because Vixie decides by them:
//! whether the minute or hour field starts with `*` (a *wildcard* schedule, see `fires`), and
//! whether the day-of-month or day-of-week field starts with `*` (then the two combine with AND,
//! else with OR). `*/10` and `*,5` start with `*`.

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, Timelike};

/// A set of small numbers (0-63).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bits(u64);

impl Bits {
    fn has(self, n: u32) -> bool {
        n < 64 && self.0 >> n & 1 == 1
    }

    /// The smallest member that is `n` or more.
    fn first_from(self, n: u32) -> Option<u32> {
        let rest = self.0.checked_shr(n).unwrap_or(0);
        (rest != 0).then(|| n + rest.trailing_zeros())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    minute: Bits,
    hour: Bits,
    /// Days 1-31.
    day: Bits,
    /// Months 1-12.
    month: Bits,
    /// 0 = Sunday .. 6 = Saturday (7 is folded into 0).
    weekday: Bits,
    /// The minute or hour field starts with `*`.
    pub wildcard: bool,
    /// Either day field starts with `*`: day of month AND day of week must match.
    days_and: bool,
}

struct Spec {
    name: &'static str,
    low: u32,
    high: u32,
    names: &'static [&'static str],
}

const MINUTE: Spec = Spec {
    name: "minute",
    low: 0,
    high: 59,
    names: &[],
};
const HOUR: Spec = Spec {
    name: "hour",
    low: 0,
    high: 23,
    names: &[],
};
const DAY: Spec = Spec {
    name: "day-of-month",
    low: 1,
    high: 31,
    names: &[],
};
const MONTH: Spec = Spec {
    name: "month",
    low: 1,
    high: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const WEEKDAY: Spec = Spec {
    name: "day-of-week",
    low: 0,
    high: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Fields {
    /// Read five whitespace-separated fields.
    pub fn parse(line: &str) -> Result<Fields, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "a schedule has 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        };
        let mut weekdays = parse_field(weekday, &WEEKDAY)?;
        if weekdays.has(7) {
            weekdays = Bits((weekdays.0 | 1) & !(1 << 7));
        }
        let star = |f: &str| f.starts_with('*');
        Ok(Fields {
            minute: parse_field(minute, &MINUTE)?,
            hour: parse_field(hour, &HOUR)?,
            day: parse_field(day, &DAY)?,
            month: parse_field(month, &MONTH)?,
            weekday: weekdays,
            wildcard: star(minute) || star(hour),
            days_and: star(day) || star(weekday),
        })
    }

    /// The wall-clock times of day it matches, as minutes since midnight, in order. They are the
    /// same on every day it matches: the minute and hour fields do not depend on the day.
    pub fn times_of_day(&self) -> Vec<u32> {
        (0..24)
            .filter(|&h| self.hour.has(h))
            .flat_map(|h| (0..60).filter(|&m| self.minute.has(m)).map(move |m| h * 60 + m))
            .collect()
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let by_day = self.day.has(date.day());
        let by_weekday = self.weekday.has(date.weekday().num_days_from_sunday());
        if self.days_and {
            by_day && by_weekday
        } else {
            by_day || by_weekday
        }
    }

    /// The first matching wall-clock minute at or after `from`'s minute, or `None` if none comes
    /// within 400 years (a whole Gregorian cycle, after which dates and weekdays repeat: so
    /// `None` means never).
    pub fn next_match(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let limit = from.year().checked_add(400)?;
        let mut date = from.date();
        let (mut hour, mut minute) = (from.hour(), from.minute());
        while date.year() <= limit {
            if !self.month.has(date.month()) {
                date = date.with_day(1)?.checked_add_months(Months::new(1))?;
                (hour, minute) = (0, 0);
                continue;
            }
            if !self.day_matches(date) {
                date = date.succ_opt()?;
                (hour, minute) = (0, 0);
                continue;
            }
            match self.hour.first_from(hour) {
                None => {
                    date = date.succ_opt()?;
                    (hour, minute) = (0, 0);
                }
                Some(h) => {
                    let from_minute = if h == hour { minute } else { 0 };
                    match self.minute.first_from(from_minute) {
                        Some(m) => return date.and_hms_opt(h, m, 0),
                        None => (hour, minute) = (h + 1, 0),
                    }
                }
            }
        }
        None
    }
}

fn parse_field(text: &str, spec: &Spec) -> Result<Bits, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        let (low, high, step) =
            item_range(item, spec).map_err(|why| format!("{} field: {why}", spec.name))?;
        for v in (low..=high).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(Bits(bits))
}

/// One list item as (first, last, step).
fn item_range(item: &str, spec: &Spec) -> Result<(u32, u32, u32), String> {
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => match s.parse::<u32>() {
            Ok(n) if n > 0 => (r, Some(n)),
            _ => return Err(format!("step `{s}` is not a whole number from 1")),
        },
        None => (item, None),
    };
    let (low, high) = if range == "*" {
        (spec.low, spec.high)
    } else if let Some((a, b)) = range.split_once('-') {
        let (a, b) = (value(a, spec)?, value(b, spec)?);
        if a > b {
            return Err(format!("the range {range} runs backwards"));
        }
        (a, b)
    } else {
        let v = value(range, spec)?;
        if let Some(n) = step {
            return Err(format!(
                "`{item}`: a step follows `*` or a range, as in {v}-{}/{n}",
                spec.high
            ));
        }
        (v, v)
    };
    Ok((low, high, step.unwrap_or(1)))
}

fn value(text: &str, spec: &Spec) -> Result<u32, String> {
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(spec.low + i as u32);
    }
    if text.is_empty() {
        return Err("a value is missing".to_string());
    }
    let n: u32 = text
        .parse()
        .map_err(|_| match (spec.names.first(), spec.names.last()) {
            (Some(first), Some(last)) => {
                format!("`{text}` is not a number or a name ({first}-{last})")
            }
            _ => format!("`{text}` is not a number"),
        })?;
    if n < spec.low || n > spec.high {
        return Err(format!("{n} is out of range {}-{}", spec.low, spec.high));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        Fields::parse(line).unwrap_err()
    }

    #[test]
    fn grammar_errors_name_the_field() {
        assert_eq!(err("61 * * * *"), "minute field: 61 is out of range 0-59");
        assert_eq!(err("0 25 * * *"), "hour field: 25 is out of range 0-23");
        assert_eq!(err("0 0 0 * *"), "day-of-month field: 0 is out of range 1-31");
        assert_eq!(err("0 0 * 13 *"), "month field: 13 is out of range 1-12");
        assert_eq!(err("0 0 * * 8"), "day-of-week field: 8 is out of range 0-7");
        assert_eq!(err("0 5-1 * * *"), "hour field: the range 5-1 runs backwards");
        assert_eq!(
            err("5/15 * * * *"),
            "minute field: `5/15`: a step follows `*` or a range, as in 5-59/15"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "minute field: step `0` is not a whole number from 1"
        );
        assert_eq!(err("0 0,,1 * * *"), "hour field: a value is missing");
        assert_eq!(
            err("0 0 * * Monday"),
            "day-of-week field: `Monday` is not a number or a name (sun-sat)"
        );
        assert_eq!(err("0 0 L * *"), "day-of-month field: `L` is not a number");
        assert_eq!(
            err("0 0 * * 5#2"),
            "day-of-week field: `5#2` is not a number or a name (sun-sat)"
        );
        assert_eq!(err("0 0 ? * *"), "day-of-month field: `?` is not a number");
        assert_eq!(
            err("0 0 * *"),
            "a schedule has 5 fields (minute hour day-of-month month day-of-week), found 4"
        );
    }

    #[test]
    fn names_and_numbers_mean_the_same() {
        assert_eq!(
            Fields::parse("0 0 * Jan-Mar Mon-Fri"),
            Fields::parse("0 0 * 1-3 1-5")
        );
        assert_eq!(Fields::parse("0 0 * * 7"), Fields::parse("0 0 * * 0"));
        assert_eq!(Fields::parse("0 0 * * sun"), Fields::parse("0 0 * * 0"));
        assert_eq!(Fields::parse("0 0 * DEC *"), Fields::parse("0 0 * 12 *"));
    }

    #[test]
    fn wildcard_means_the_minute_or_hour_field_starts_with_a_star() {
        let w = |l: &str| Fields::parse(l).unwrap().wildcard;
        assert!(w("* 2 * * *") && w("0 * * * *") && w("*/5 2 * * *") && w("0 */2 * * *"));
        assert!(!w("0 2 * * *") && !w("0-59 2 * * *") && !w("0,30 1-3 * * *"));
    }
}
