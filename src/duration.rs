//! Durations as users write them: strings with units, never bare numbers.
//!
//! `"500ms"`, `"30s"`, `"5m"`, `"1h30m"` are read with humantime. A bare number (`timeout = 7`
//! or `timeout = "7"`) is refused with a suggestion, because the unit a number "obviously" has
//! differs between tools (seconds in cron wrappers, milliseconds in JavaScript), and guessing
//! wrong is the bug this project exists to prevent.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// A duration exactly as written in the file, before it is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum RawDuration {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl<'de> serde::Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string with a unit, like \"30s\" or \"1h30m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDuration, E> {
                Ok(RawDuration::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDuration, E> {
                Ok(RawDuration::Integer(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawDuration, E> {
                Ok(RawDuration::Float(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Why a duration was refused: a message and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    pub message: String,
    pub help: String,
}

/// Check a duration as written and turn it into a [`Duration`].
pub fn parse(raw: &RawDuration) -> Result<Duration, DurationError> {
    match raw {
        RawDuration::Integer(n) => Err(bare_number(&n.to_string())),
        RawDuration::Float(x) => Err(bare_number(&x.to_string())),
        RawDuration::Text(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Err(DurationError {
                    message: "empty duration".into(),
                    help: "write a number with a unit, like \"30s\", \"5m\" or \"1h30m\"".into(),
                });
            }
            if t.parse::<f64>().is_ok() {
                return Err(bare_number(t));
            }
            humantime::parse_duration(t).map_err(|e| DurationError {
                message: format!("invalid duration \"{s}\": {e}"),
                help: "units are ms, s, m, h, d (for example \"500ms\", \"30s\", \"1h30m\")".into(),
            })
        }
    }
}

fn bare_number(n: &str) -> DurationError {
    let help = match n.parse::<f64>() {
        Ok(v) if v >= 1000.0 && v.fract() == 0.0 && (v as u64).is_multiple_of(1000) => format!(
            "write \"{}s\" if {n} meant milliseconds, or \"{n}s\" if it meant seconds",
            (v as u64) / 1000
        ),
        _ => format!("write \"{n}s\" for seconds (or \"{n}m\" for minutes, \"{n}ms\" for milliseconds)"),
    };
    DurationError {
        message: format!("duration {n} has no unit"),
        help,
    }
}

/// Render a duration compactly for people: `1.2s`, `3m04s`, `2h05m`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else if secs < 60.0 {
        format!("{}s", secs.round() as u64)
    } else if secs < 3600.0 {
        let s = secs.round() as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = (secs / 60.0).round() as u64;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> RawDuration {
        RawDuration::Text(s.into())
    }

    #[test]
    fn accepts_units() {
        assert_eq!(parse(&text("500ms")), Ok(Duration::from_millis(500)));
        assert_eq!(parse(&text("30s")), Ok(Duration::from_secs(30)));
        assert_eq!(parse(&text("5m")), Ok(Duration::from_secs(300)));
        assert_eq!(parse(&text("1h30m")), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(&text("2h")), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn bare_integer_suggests_seconds() {
        let e = parse(&RawDuration::Integer(7)).unwrap_err();
        assert_eq!(e.message, "duration 7 has no unit");
        assert!(e.help.starts_with("write \"7s\" for seconds"), "{}", e.help);
    }

    #[test]
    fn bare_string_number_is_refused_too() {
        let e = parse(&text("7")).unwrap_err();
        assert!(e.help.contains("\"7s\""));
        let e = parse(&text("1.5")).unwrap_err();
        assert!(e.help.contains("\"1.5s\""));
    }

    #[test]
    fn thousands_suggest_milliseconds_were_meant() {
        let e = parse(&RawDuration::Integer(30000)).unwrap_err();
        assert_eq!(
            e.help,
            "write \"30s\" if 30000 meant milliseconds, or \"30000s\" if it meant seconds"
        );
    }

    #[test]
    fn float_and_garbage_are_refused() {
        assert!(parse(&RawDuration::Float(2.5)).is_err());
        let e = parse(&text("5 parsecs")).unwrap_err();
        assert!(e.message.contains("invalid duration"));
        assert!(parse(&text("")).is_err());
    }

    #[test]
    fn human_is_compact() {
        assert_eq!(human(Duration::from_millis(1234)), "1.2s");
        assert_eq!(human(Duration::from_secs(184)), "3m04s");
        assert_eq!(human(Duration::from_secs(7500)), "2h05m");
    }
}
