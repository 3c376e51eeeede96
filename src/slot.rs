//! Time params: the slots `every` cuts a pipeline's wall clock into, and how their values are
//! written and read.
//!
//! A time param's value is the start of the slot the run's logical time falls in, written with
//! its offset (`2026-11-20T02:00+01:00`). Slots are cut on the pipeline zone's wall clock, not on
//! UTC: with `every = "1h"` in Asia/Kolkata (+05:30) a slot starts at 15:00 +05:30, not at 15:30.
//! `every` divides a day, so every day starts a slot at 00:00 and no slot spans midnight.
//!
//! A slot begins each time the wall clock shows a multiple of `every` since midnight (a
//! *boundary*). Across daylight-saving changes:
//! - a wall time that happens twice (the clock falls back) is two boundaries, told apart by their
//!   offsets: in Europe/Berlin on 2026-10-25 an hourly param has the two instances
//!   `02:00+02:00` and `02:00+01:00`;
//! - a wall time the clock jumps over begins its slot at the first moment after the jump: in
//!   Berlin on 2026-03-29 the hourly slot after `01:00+01:00` is `03:00+02:00`, and with
//!   `every = "2h"` the skipped 02:00 slot begins at `03:00+02:00`, the next at `04:00+02:00`.
//!
//! So a value is always a moment that happened, with the offset it had then, and each moment has
//! one spelling. Slots next to a change can be shorter or longer than `every`: Berlin's daily slot
//! on 2026-10-25 lasts 25 hours, the Lord Howe hourly slot from 01:00 +11:00 on 2026-04-05 (when
//! its clock falls back half an hour) 90 minutes. Written by hand here rather than taken from a
//! crate: none cuts a zone's wall clock into slots with these rules.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

const DAY: u32 = 24 * 60;

/// The values of `every` to suggest (any divisor of a day is accepted).
const USUAL: &[u32] = &[1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, DAY];

/// How a time value is written: minutes and the offset, never seconds.
const FORMAT: &str = "%Y-%m-%dT%H:%M%:z";

/// `every` in minutes, if it is one: whole minutes from 1m to 1d that divide a day. The error
/// says what to write instead.
pub fn every_minutes(d: std::time::Duration) -> Result<u32, String> {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || !secs.is_multiple_of(60) {
        return Err("must be whole minutes".into());
    }
    let minutes = secs / 60;
    if minutes == 0 || minutes > u64::from(DAY) {
        return Err("must be from 1m to 1d".into());
    }
    let m = minutes as u32;
    if !DAY.is_multiple_of(m) {
        let below = USUAL.iter().rev().find(|&&d| d < m).copied().unwrap_or(1);
        let above = USUAL.iter().find(|&&d| d > m).copied().unwrap_or(DAY);
        return Err(format!(
            "must divide a day evenly, so that each day starts a slot at 00:00; use {} or {}",
            every_text(below),
            every_text(above)
        ));
    }
    Ok(m)
}

/// `every` as written back: `1d`, `2h`, `1h30m`, `15m`.
pub fn every_text(minutes: u32) -> String {
    match (minutes / 60, minutes % 60) {
        (24, 0) => "1d".into(),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// A slot start as it is written: `2026-11-20T02:00+01:00`.
pub fn format(t: DateTime<Tz>) -> String {
    t.format(FORMAT).to_string()
}

/// The start of the slot `t` falls in: the last boundary at or before `t`. `None` only at the
/// ends of the calendar.
pub fn start(t: DateTime<Utc>, tz: Tz, every: u32) -> Option<DateTime<Tz>> {
    let offset = tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    let local = t.naive_utc().checked_add_offset(offset)?;
    let mut date = local.date();
    let minute = local.hour() * 60 + local.minute();
    let mut m = minute - minute % every;
    // The wall slot `t` shows almost always begins at or before it. It does not when the clock
    // fell back into it: then an earlier wall slot does; a day's worth of them is plenty.
    for _ in 0..=DAY / every + 1 {
        let wall = date.and_hms_opt(m / 60, m % 60, 0)?;
        if let Some(b) = boundaries(tz, wall)
            .into_iter()
            .rev()
            .find(|b| b.naive_utc() <= t.naive_utc())
        {
            return Some(b);
        }
        if m >= every {
            m -= every;
        } else {
            date = date.pred_opt()?;
            m = DAY - every;
        }
    }
    None
}

/// The start of the slot after the one that starts at `b` (a boundary).
pub fn next(b: DateTime<Tz>, every: u32) -> Option<DateTime<Tz>> {
    let tz = b.timezone();
    let step = Duration::minutes(i64::from(every));
    let mut t = b.with_timezone(&Utc).checked_add_signed(step)?;
    // The next boundary is usually `every` later; where the clock fell back it is later still,
    // where it jumped forward it can be sooner. Find one after `b`, then walk back to the first.
    for _ in 0..=DAY / every + 1 {
        let mut s = start(t, tz, every)?;
        if s > b {
            loop {
                let before = s.with_timezone(&Utc).checked_sub_signed(Duration::seconds(1))?;
                match start(before, tz, every) {
                    Some(p) if p > b => s = p,
                    _ => return Some(s),
                }
            }
        }
        t = t.checked_add_signed(step)?;
    }
    None
}

/// The start of the slot before the one that starts at `b`.
pub fn previous(b: DateTime<Tz>, every: u32) -> Option<DateTime<Tz>> {
    let before = b.with_timezone(&Utc).checked_sub_signed(Duration::seconds(1))?;
    start(before, b.timezone(), every)
}

/// The moments at which wall time `wall` begins a slot, earliest first: one; two where the
/// clock shows it twice; where the clock jumps over it, the first moment after the jump.
fn boundaries(tz: Tz, wall: NaiveDateTime) -> Vec<DateTime<Tz>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => vec![t],
        LocalResult::Ambiguous(a, b) => vec![a, b],
        LocalResult::None => after_jump(tz, wall).into_iter().collect(),
    }
}

/// The first moment after the jump over `wall`: the first wall minute after it that exists.
/// Offsets change on whole minutes (in every zone since 1972), so that is the moment of the jump.
fn after_jump(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    (1..=i64::from(DAY)).find_map(|k| {
        match tz.from_local_datetime(&wall.checked_add_signed(Duration::minutes(k))?) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
            LocalResult::None => None,
        }
    })
}

/// A time param's value as given (a default or `-p`): `current` (the slot of `logical`),
/// `previous` (the one before), or a slot start, with or without its offset. The error says
/// how to write it.
pub fn resolve(raw: &str, logical: DateTime<Utc>, tz: Tz, every: u32) -> Result<DateTime<Tz>, String> {
    let out_of_range = || "time out of range".to_string();
    match raw {
        "current" => start(logical, tz, every).ok_or_else(out_of_range),
        "previous" => start(logical, tz, every)
            .and_then(|s| previous(s, every))
            .ok_or_else(out_of_range),
        _ => parse(raw, tz, every),
    }
}

/// A slot start written as a time: `2026-11-20T02:00`, `2026-11-20T02:00+01:00` (seconds, `Z`
/// and a space for the `T` are read too).
pub fn parse(raw: &str, tz: Tz, every: u32) -> Result<DateTime<Tz>, String> {
    let text = normalize(raw);
    let slot = every_text(every);
    let not_start = |t: DateTime<Tz>, also: Option<DateTime<Tz>>| -> String {
        let s = start(t.with_timezone(&Utc), tz, every);
        let other = also
            .and_then(|a| start(a.with_timezone(&Utc), tz, every))
            .filter(|o| Some(*o) != s);
        match (s, other) {
            (Some(s), Some(o)) => format!(
                "{raw} is not where a {slot} slot begins: write {} or {} for the slot it falls in",
                format(s),
                format(o)
            ),
            (Some(s), None) => format!(
                "{raw} is not where a {slot} slot begins: write {} for the slot it falls in",
                format(s)
            ),
            _ => "time out of range".into(),
        }
    };
    let is_start = |t: DateTime<Tz>| start(t.with_timezone(&Utc), tz, every) == Some(t);
    // Values a person could mean; beyond them chrono's arithmetic runs out of calendar.
    let in_range = |t: NaiveDateTime| (1..=9999).contains(&t.year());
    let out_of_range = || format!("{raw} is out of range: years 0001 to 9999 only");
    for f in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M:%S%.f%:z"] {
        if let Ok(given) = DateTime::parse_from_str(&text, f) {
            if !in_range(given.naive_local()) {
                return Err(out_of_range());
            }
            // The occurrence of that wall time with that offset. Offsets are compared in whole
            // minutes, as they are written: a value before 1893 in Berlin (local mean time,
            // +00:53:28) reads back as itself.
            let minutes = |o: chrono::FixedOffset| o.local_minus_utc() / 60;
            let wall = given.naive_local();
            let found = match tz.from_local_datetime(&wall) {
                LocalResult::Single(t) => vec![t],
                LocalResult::Ambiguous(a, b) => vec![a, b],
                LocalResult::None => vec![],
            }
            .into_iter()
            .find(|t| minutes(t.offset().fix()) == minutes(*given.offset()));
            let Some(t) = found else {
                return Err(format!(
                    "{raw} is {} in {tz}, the pipeline's zone: write it so",
                    given.with_timezone(&tz).format(FORMAT)
                ));
            };
            return if is_start(t) {
                Ok(t)
            } else {
                Err(not_start(t, None))
            };
        }
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%.f"] {
        let Ok(wall) = NaiveDateTime::parse_from_str(&text, f) else {
            continue;
        };
        if !in_range(wall) {
            return Err(out_of_range());
        }
        return match tz.from_local_datetime(&wall) {
            LocalResult::Single(t) if is_start(t) => Ok(t),
            LocalResult::Single(t) => Err(not_start(t, None)),
            LocalResult::Ambiguous(a, b) if is_start(a) && is_start(b) => Err(format!(
                "{raw} happens twice in {tz}: write {} (the first) or {} (the second)",
                format(a),
                format(b)
            )),
            LocalResult::Ambiguous(a, b) => Err(not_start(a, Some(b))),
            LocalResult::None => {
                match after_jump(tz, wall).and_then(|j| start(j.with_timezone(&Utc), tz, every)) {
                    Some(s) => Err(format!(
                        "{raw} does not exist in {tz} (the clock jumps over it): write {}, the slot the jump lands in",
                        format(s)
                    )),
                    None => Err("time out of range".into()),
                }
            }
        };
    }
    Err(format!(
        "\"{}\" is not a time: write YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM+HH:MM in {tz}, current or previous",
        raw.escape_debug()
    ))
}

/// `Z` as `+00:00` and a space as `T`, so that one set of formats reads every spelling.
fn normalize(raw: &str) -> String {
    let mut s = raw.trim().to_string();
    if s.len() > 10 && s.as_bytes()[10] == b' ' {
        s.replace_range(10..11, "T");
    }
    if let Some(rest) = s.strip_suffix(['Z', 'z']) {
        s = format!("{rest}+00:00");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn zone(name: &str) -> Tz {
        name.parse().unwrap()
    }

    /// The slot start of `t`, as written.
    fn slot(t: &str, z: &str, every: u32) -> String {
        format(start(at(t), zone(z), every).unwrap())
    }

    /// The slot starts from the one `first` falls in, `n` of them.
    fn walk(first: &str, z: &str, every: u32, n: usize) -> Vec<String> {
        let mut s = start(at(first), zone(z), every).unwrap();
        let mut out = vec![format(s)];
        for _ in 1..n {
            let after = next(s, every).unwrap();
            assert_eq!(
                previous(after, every),
                Some(s),
                "previous undoes next at {}",
                format(after)
            );
            s = after;
            out.push(format(s));
        }
        out
    }

    #[test]
    fn slots_are_cut_on_the_zones_wall_clock() {
        assert_eq!(slot("2026-11-20T02:37:12Z", "UTC", 60), "2026-11-20T02:00+00:00");
        assert_eq!(slot("2026-11-20T02:37:12Z", "UTC", 15), "2026-11-20T02:30+00:00");
        assert_eq!(slot("2026-11-20T02:00:00Z", "UTC", 60), "2026-11-20T02:00+00:00");
        assert_eq!(slot("2026-11-20T01:59:59Z", "UTC", 60), "2026-11-20T01:00+00:00");
        assert_eq!(slot("2026-11-20T23:59:00Z", "UTC", DAY), "2026-11-20T00:00+00:00");
        // Berlin is at +01:00 in November: 01:30Z is 02:30 there.
        assert_eq!(
            slot("2026-11-20T01:30:00Z", "Europe/Berlin", 60),
            "2026-11-20T02:00+01:00"
        );
        assert_eq!(
            slot("2026-11-20T01:30:00Z", "Europe/Berlin", DAY),
            "2026-11-20T00:00+01:00"
        );
        // Half-hour offsets: the slots follow the local clock, not UTC's hours.
        assert_eq!(
            slot("2026-11-20T10:15:00Z", "Asia/Kolkata", 60),
            "2026-11-20T15:00+05:30"
        );
        assert_eq!(
            slot("2026-11-20T10:29:00Z", "Asia/Kolkata", 60),
            "2026-11-20T15:00+05:30"
        );
        assert_eq!(
            slot("2026-11-20T10:30:00Z", "Asia/Kolkata", 60),
            "2026-11-20T16:00+05:30"
        );
        assert_eq!(
            slot("2026-11-20T10:15:00Z", "Asia/Kolkata", 2 * 60),
            "2026-11-20T14:00+05:30"
        );
        assert_eq!(
            slot("2026-11-20T20:00:00Z", "Asia/Kolkata", DAY),
            "2026-11-21T00:00+05:30"
        );
        assert_eq!(
            slot("2026-11-20T10:15:00Z", "Asia/Kathmandu", 60),
            "2026-11-20T16:00+05:45"
        );
    }

    #[test]
    fn the_hour_berlin_repeats_is_two_slots_told_apart_by_the_offset() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00Z.
        let z = "Europe/Berlin";
        assert_eq!(slot("2026-10-25T00:30:00Z", z, 60), "2026-10-25T02:00+02:00");
        assert_eq!(slot("2026-10-25T01:30:00Z", z, 60), "2026-10-25T02:00+01:00");
        assert_eq!(
            walk("2026-10-24T23:00:00Z", z, 60, 4),
            [
                "2026-10-25T01:00+02:00",
                "2026-10-25T02:00+02:00",
                "2026-10-25T02:00+01:00",
                "2026-10-25T03:00+01:00"
            ]
        );
        assert_eq!(
            walk("2026-10-25T00:00:00Z", z, 30, 5),
            [
                "2026-10-25T02:00+02:00",
                "2026-10-25T02:30+02:00",
                "2026-10-25T02:00+01:00",
                "2026-10-25T02:30+01:00",
                "2026-10-25T03:00+01:00"
            ]
        );
        // Every two hours: 02:00 happens twice, so it begins two slots; the second lasts two
        // hours (02:00 to 04:00 CET).
        assert_eq!(
            walk("2026-10-24T22:00:00Z", z, 120, 4),
            [
                "2026-10-25T00:00+02:00",
                "2026-10-25T02:00+02:00",
                "2026-10-25T02:00+01:00",
                "2026-10-25T04:00+01:00"
            ]
        );
        // Every three hours: 03:00 happens once (CET); the 00:00 slot lasts four hours.
        assert_eq!(
            walk("2026-10-24T22:00:00Z", z, 180, 3),
            [
                "2026-10-25T00:00+02:00",
                "2026-10-25T03:00+01:00",
                "2026-10-25T06:00+01:00"
            ]
        );
        // The day has 25 hours, and is one slot.
        assert_eq!(slot("2026-10-25T22:59:00Z", z, DAY), "2026-10-25T00:00+02:00");
        assert_eq!(
            walk("2026-10-25T12:00:00Z", z, DAY, 2),
            ["2026-10-25T00:00+02:00", "2026-10-26T00:00+01:00"]
        );
    }

    #[test]
    fn an_hour_berlin_skips_begins_its_slot_after_the_jump() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z.
        let z = "Europe/Berlin";
        assert_eq!(slot("2026-03-29T00:59:59Z", z, 60), "2026-03-29T01:00+01:00");
        assert_eq!(slot("2026-03-29T01:00:00Z", z, 60), "2026-03-29T03:00+02:00");
        assert_eq!(
            walk("2026-03-29T00:00:00Z", z, 60, 3),
            [
                "2026-03-29T01:00+01:00",
                "2026-03-29T03:00+02:00",
                "2026-03-29T04:00+02:00"
            ]
        );
        // Every two hours: the skipped 02:00 slot begins at the jump, and lasts one hour.
        assert_eq!(
            walk("2026-03-28T23:00:00Z", z, 120, 3),
            [
                "2026-03-29T00:00+01:00",
                "2026-03-29T03:00+02:00",
                "2026-03-29T04:00+02:00"
            ]
        );
        // Every 15 minutes: the four skipped slots all begin at the jump, which is one moment.
        assert_eq!(
            walk("2026-03-29T00:45:00Z", z, 15, 3),
            [
                "2026-03-29T01:45+01:00",
                "2026-03-29T03:00+02:00",
                "2026-03-29T03:15+02:00"
            ]
        );
        assert_eq!(
            walk("2026-03-29T12:00:00Z", z, DAY, 2),
            ["2026-03-29T00:00+01:00", "2026-03-30T00:00+02:00"]
        );
    }

    #[test]
    fn lord_howe_moves_its_clock_by_half_an_hour() {
        let z = "Australia/Lord_Howe";
        // 2026-04-05: 02:00 +11:00 falls back to 01:30 +10:30 (15:00Z); 01:30-02:00 twice.
        assert_eq!(
            walk("2026-04-04T14:00:00Z", z, 60, 3),
            [
                "2026-04-05T01:00+11:00",
                "2026-04-05T02:00+10:30",
                "2026-04-05T03:00+10:30"
            ],
            "the 01:00 slot lasts 90 minutes"
        );
        assert_eq!(
            walk("2026-04-04T14:00:00Z", z, 30, 4),
            [
                "2026-04-05T01:00+11:00",
                "2026-04-05T01:30+11:00",
                "2026-04-05T01:30+10:30",
                "2026-04-05T02:00+10:30"
            ]
        );
        assert_eq!(slot("2026-04-04T15:10:00Z", z, 60), "2026-04-05T01:00+11:00");
        // 2026-10-04: 02:00 +10:30 jumps to 02:30 +11:00 (15:30Z).
        assert_eq!(
            walk("2026-10-03T14:30:00Z", z, 60, 3),
            [
                "2026-10-04T01:00+10:30",
                "2026-10-04T02:30+11:00",
                "2026-10-04T03:00+11:00"
            ],
            "the skipped 02:00 slot begins at the jump, and lasts half an hour"
        );
        assert_eq!(
            walk("2026-10-03T15:00:00Z", z, 30, 3),
            [
                "2026-10-04T01:30+10:30",
                "2026-10-04T02:30+11:00",
                "2026-10-04T03:00+11:00"
            ],
            "02:00 is skipped; 02:30 is the jump itself"
        );
    }

    #[test]
    fn a_day_that_starts_after_a_jump_at_midnight_starts_its_slot_then() {
        // America/Santiago, 2026-09-06: 00:00 -04:00 jumps to 01:00 -03:00.
        assert_eq!(
            walk("2026-09-05T12:00:00Z", "America/Santiago", DAY, 3),
            [
                "2026-09-05T00:00-04:00",
                "2026-09-06T01:00-03:00",
                "2026-09-07T00:00-03:00"
            ]
        );
    }

    fn parsed(raw: &str, z: &str, every: u32) -> Result<String, String> {
        parse(raw, zone(z), every).map(format)
    }

    #[test]
    fn values_are_read_in_every_spelling_of_a_slot_start() {
        let z = "Europe/Berlin";
        for raw in [
            "2026-11-20T02:00",
            "2026-11-20 02:00",
            "2026-11-20T02:00:00",
            "2026-11-20T02:00+01:00",
            "2026-11-20T02:00:00+01:00",
            "2026-11-20T01:00Z",
            " 2026-11-20T01:00:00z ",
        ] {
            let want = if raw.contains('Z') || raw.contains('z') {
                Err(format!(
                    "{raw} is 2026-11-20T02:00+01:00 in Europe/Berlin, the pipeline's zone: write it so"
                ))
            } else {
                Ok("2026-11-20T02:00+01:00".to_string())
            };
            assert_eq!(parsed(raw, z, 60), want, "{raw}");
        }
        assert_eq!(
            parsed("2026-11-20T01:00Z", "UTC", 60).unwrap(),
            "2026-11-20T01:00+00:00"
        );
        assert_eq!(
            parsed("2026-11-20T15:00", "Asia/Kolkata", 60).unwrap(),
            "2026-11-20T15:00+05:30"
        );
        // Canonical values read back as themselves.
        for s in walk("2026-10-24T22:00:00Z", z, 30, 12) {
            assert_eq!(parsed(&s, z, 30).unwrap(), s);
        }
        let logical = at("2026-11-20T01:30:00Z");
        let resolved = |raw| resolve(raw, logical, zone(z), 60).map(format);
        assert_eq!(resolved("current").unwrap(), "2026-11-20T02:00+01:00");
        assert_eq!(resolved("previous").unwrap(), "2026-11-20T01:00+01:00");
    }

    #[test]
    fn a_value_that_is_no_slot_start_says_how_to_write_it() {
        let z = "Europe/Berlin";
        assert_eq!(
            parsed("2026-10-25T02:00", z, 60).unwrap_err(),
            "2026-10-25T02:00 happens twice in Europe/Berlin: write 2026-10-25T02:00+02:00 (the first) \
             or 2026-10-25T02:00+01:00 (the second)"
        );
        assert_eq!(
            parsed("2026-10-25T02:00+01:00", z, 60).unwrap(),
            "2026-10-25T02:00+01:00"
        );
        assert_eq!(
            parsed("2026-10-25T02:30", z, 60).unwrap_err(),
            "2026-10-25T02:30 is not where a 1h slot begins: write 2026-10-25T02:00+02:00 or \
             2026-10-25T02:00+01:00 for the slot it falls in"
        );
        assert_eq!(
            parsed("2026-03-29T02:00", z, 60).unwrap_err(),
            "2026-03-29T02:00 does not exist in Europe/Berlin (the clock jumps over it): write \
             2026-03-29T03:00+02:00, the slot the jump lands in"
        );
        assert_eq!(
            parsed("2026-11-20T02:30", z, 60).unwrap_err(),
            "2026-11-20T02:30 is not where a 1h slot begins: write 2026-11-20T02:00+01:00 for the slot it falls in"
        );
        assert_eq!(
            parsed("2026-11-20T02:00:30", z, 60).unwrap_err(),
            "2026-11-20T02:00:30 is not where a 1h slot begins: write 2026-11-20T02:00+01:00 for the slot it falls in"
        );
        assert_eq!(
            parsed("2026-11-20T02:00+02:00", z, 60).unwrap_err(),
            "2026-11-20T02:00+02:00 is 2026-11-20T01:00+01:00 in Europe/Berlin, the pipeline's zone: write it so"
        );
        for bad in [
            "2026-11-20",
            "tomorrow",
            "2026-11-20T25:00",
            "2026-02-30T01:00",
            "",
            "2026-11-20T02:00+1",
        ] {
            assert_eq!(
                parsed(bad, z, 60).unwrap_err(),
                format!(
                    "\"{bad}\" is not a time: write YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM+HH:MM in Europe/Berlin, \
                     current or previous"
                ),
                "{bad}"
            );
        }
        // Hostile values: the ends of the calendar are errors, never a panic.
        for far in [
            "+262142-12-31T23:59",
            "-262143-01-01T00:00",
            "+10000-01-01T05:00+01:00",
        ] {
            assert_eq!(
                parsed(far, z, 1).unwrap_err(),
                format!("{far} is out of range: years 0001 to 9999 only")
            );
        }
        assert_eq!(
            parsed("9999-12-31T23:59", z, 1).unwrap(),
            "9999-12-31T23:59+01:00"
        );
        assert_eq!(
            parsed("0001-01-01T01:00", z, DAY).unwrap_err(),
            "0001-01-01T01:00 is not where a 1d slot begins: write 0001-01-01T00:00+00:53 for the slot it falls in"
        );
        assert_eq!(
            parsed("0001-01-01T00:00+00:53", z, DAY).unwrap(),
            "0001-01-01T00:00+00:53"
        );
        assert_eq!(
            parsed("2026-03-29T02:00+01:00", z, 60).unwrap_err(),
            "2026-03-29T02:00+01:00 is 2026-03-29T03:00+02:00 in Europe/Berlin, the pipeline's zone: write it so"
        );
        let _ = start(DateTime::<Utc>::MIN_UTC, zone(z), 60);
        if let Some(last) = start(DateTime::<Utc>::MAX_UTC, zone(z), 60) {
            assert_eq!(next(last, 60), None);
        }
    }

    #[test]
    fn every_divides_a_day_in_whole_minutes() {
        let m = |s: &str| every_minutes(humantime::parse_duration(s).unwrap());
        assert_eq!(m("1m"), Ok(1));
        assert_eq!(m("15m"), Ok(15));
        assert_eq!(m("1h"), Ok(60));
        assert_eq!(m("90m"), Ok(90));
        assert_eq!(m("1d"), Ok(DAY));
        assert_eq!(m("24h"), Ok(DAY));
        assert_eq!(m("30s").unwrap_err(), "must be whole minutes");
        assert_eq!(m("90s").unwrap_err(), "must be whole minutes");
        assert_eq!(m("0s").unwrap_err(), "must be from 1m to 1d");
        assert_eq!(m("2d").unwrap_err(), "must be from 1m to 1d");
        assert_eq!(
            m("7m").unwrap_err(),
            "must divide a day evenly, so that each day starts a slot at 00:00; use 5m or 10m"
        );
        assert_eq!(
            m("5h").unwrap_err(),
            "must divide a day evenly, so that each day starts a slot at 00:00; use 4h or 6h"
        );
        assert_eq!(every_text(90), "1h30m");
    }
}
