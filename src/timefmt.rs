//! Times as people read them: one clock, the pipeline's zone, always with the offset.
//!
//! A person reading a run's lines, `status`, `history`, a log header or the failure e-mail at
//! 3 a.m. should never have to work out which zone a time is in, nor meet three zones for one
//! run (the machine's, UTC and the pipeline's). So every time shown to a person is in the zone
//! of the pipeline it belongs to, written with its offset: `2026-11-21 03:00:12 +01:00`, and
//! in a run's lines `03:00:12 +01:00`. The state keeps UTC RFC 3339, and JSON shows that.

use std::collections::HashMap;

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::project::Project;

/// `2026-11-21 03:00:12 +01:00`.
pub fn at(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

/// A time as the state stores it (RFC 3339), shown in `tz`. One that does not parse is shown
/// as stored rather than hidden.
pub fn stored(s: &str, tz: Tz) -> String {
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => at(t.with_timezone(&Utc), tz),
        Err(_) => s.to_string(),
    }
}

/// The zone of each pipeline named in the state, for commands that list several (`history`,
/// `alerts list`): read from its file under `pipelines/`, once per name. A pipeline whose file
/// is gone or does not load is shown in UTC, which its offset (`+00:00`) says.
pub struct Zones<'p> {
    project: &'p Project,
    known: HashMap<String, Tz>,
}

impl<'p> Zones<'p> {
    pub fn new(project: &'p Project) -> Zones<'p> {
        Zones {
            project,
            known: HashMap::new(),
        }
    }

    pub fn of(&mut self, pipeline: &str) -> Tz {
        if let Some(&tz) = self.known.get(pipeline) {
            return tz;
        }
        let path = self
            .project
            .root
            .join("pipelines")
            .join(format!("{pipeline}.toml"));
        let tz = if path.is_file() {
            crate::pipeline::cache::load(&path, &crate::project::display_path(&path), self.project)
                .map_or(Tz::UTC, |p| p.timezone)
        } else {
            Tz::UTC
        };
        self.known.insert(pipeline.to_string(), tz);
        tz
    }
}

/// `03:00:12 +01:00` for a run's lines, without asking the zone's rules for every line: the
/// offset is looked up again once a minute. A time and the offset it is written with always
/// agree, so around a clock change a line may show the old offset for up to a minute, but
/// never a wrong instant.
pub struct LineClock {
    tz: Tz,
    offset: std::cell::Cell<Option<(i64, i32)>>,
}

impl LineClock {
    pub fn new(tz: Tz) -> LineClock {
        LineClock {
            tz,
            offset: std::cell::Cell::new(None),
        }
    }

    pub fn now(&self) -> String {
        self.show(Utc::now().timestamp())
    }

    fn show(&self, now: i64) -> String {
        let off = match self.offset.get() {
            Some((at, off)) if (0..60).contains(&(now - at)) => off,
            _ => {
                let utc = DateTime::from_timestamp(now, 0).unwrap_or_default().naive_utc();
                let off = self.tz.offset_from_utc_datetime(&utc).fix().local_minus_utc();
                self.offset.set(Some((now, off)));
                off
            }
        };
        let t = (now + i64::from(off)).rem_euclid(86_400);
        let (sign, o) = if off < 0 { ('-', -off) } else { ('+', off) };
        format!(
            "{:02}:{:02}:{:02} {sign}{:02}:{:02}",
            t / 3600,
            t / 60 % 60,
            t % 60,
            o / 3600,
            o / 60 % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_zone_with_its_offset() {
        let t = DateTime::parse_from_rfc3339("2026-03-29T00:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(at(t, berlin), "2026-03-29 01:59:59 +01:00");
        assert_eq!(
            stored("2026-03-29T01:00:00.250Z", berlin),
            "2026-03-29 03:00:00 +02:00"
        );
        assert_eq!(
            stored("2026-03-29T01:00:00+00:00", Tz::UTC),
            "2026-03-29 01:00:00 +00:00"
        );
        assert_eq!(stored("garbage", berlin), "garbage");
        let st_johns: Tz = "America/St_Johns".parse().unwrap();
        let clock = LineClock::new(st_johns);
        assert_eq!(clock.show(t.timestamp()), "22:29:59 -02:30");
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(LineClock::new(kolkata).show(t.timestamp()), "06:29:59 +05:30");
    }

    #[test]
    fn a_run_line_and_its_offset_always_name_the_same_instant() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let clock = LineClock::new(berlin);
        let before = DateTime::parse_from_rfc3339("2026-03-29T00:59:30Z")
            .unwrap()
            .timestamp();
        assert_eq!(clock.show(before), "01:59:30 +01:00");
        // Within the minute the cached offset is kept: the old offset, the right instant.
        assert_eq!(clock.show(before + 40), "02:00:10 +01:00");
        // Looked up again after a minute.
        assert_eq!(clock.show(before + 60), "03:00:30 +02:00");
    }
}
