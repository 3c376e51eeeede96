//! Expected fire times, written by hand from Vixie cron's rules (DESIGN 2), not from any crate's
//! output.
//!
//! Each case: zone, schedule, a moment, and the fire times that follow it, in order and with
//! none between them. Times are written `YYYY-MM-DD HH:MM +hh:mm`, as `plumb next` prints them.
//!
//! The clock changes, as tzdata (and `zdump -v`) has them:
//! - Europe/Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 2026-10-25: 03:00 CEST
//!   falls back to 02:00 CET (01:00Z), so 02:00-02:59 happens at +02:00, then at +01:00.
//! - America/New_York 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z); 2026-11-01: 02:00 EDT
//!   falls back to 01:00 EST (06:00Z), so 01:00-01:59 happens twice.
//! - Australia/Lord_Howe 2026-04-05: 02:00 +11:00 falls back to 01:30 +10:30 (2026-04-04
//!   15:00Z), so 01:30-01:59 happens twice; 2026-10-04: 02:00 +10:30 jumps to 02:30 +11:00
//!   (2026-10-03 15:30Z).
//! - America/Havana 2026-03-08: 00:00 -05:00 jumps to 01:00 -04:00; 2026-11-01: 01:00 -04:00
//!   falls back to 00:00 -05:00 (midnight itself is skipped, then repeated).
//! - Pacific/Apia 2011-12-29 23:59 -10:00 was followed by 2011-12-31 00:00 +14:00 (a whole day
//!   skipped); Pacific/Kwajalein 1969-09-30 23:59 +11:00 was followed by 01:00 -12:00 of the same
//!   day (23 hours repeated).
//!
//! Vixie's rules: a *fixed-time* schedule (neither minute nor hour field starts with `*`) fires a
//! time skipped by a jump forward at the first valid minute after the jump, once however many of
//! its times were skipped, and a repeated time once, at its first occurrence. A *wildcard*
//! schedule (minute or hour field starts with `*`; `@hourly`) follows the wall clock: skipped
//! times are lost and repeated ones fire again. Jumps of 3 hours or more are taken as the clock
//! being set: nothing is caught up, and everything fires again after a step back of more than 3
//! hours. Day of month and day of week combine with AND when either field starts with `*`, and
//! with OR otherwise.

use chrono::DateTime;
use chrono_tz::Tz;

use super::Schedule;

const FORMAT: &str = "%Y-%m-%d %H:%M %:z";

/// One case: `ZONE `SCHEDULE` after TIME`, then one indented line per fire time, in order;
/// `#` starts a comment.
struct Case {
    zone: String,
    schedule: String,
    after: String,
    fires: Vec<String>,
}

fn cases(table: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for line in table.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match line.split('`').collect::<Vec<_>>()[..] {
            [zone, schedule, after] => cases.push(Case {
                zone: zone.trim().to_string(),
                schedule: schedule.to_string(),
                after: after.trim().strip_prefix("after ").expect(line).to_string(),
                fires: Vec::new(),
            }),
            _ => cases.last_mut().expect(line).fires.push(line.to_string()),
        }
    }
    cases
}

/// Every case whose computed fire times differ from the table, as text, so that one run shows
/// them all.
fn mismatches(table: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for case in cases(table) {
        let (zone, pattern) = (&case.zone, &case.schedule);
        let tz: Tz = zone.parse().expect("zone in table");
        let after = DateTime::parse_from_str(&case.after, FORMAT)
            .expect("time in table")
            .with_timezone(&tz);
        let schedule = match Schedule::parse(pattern) {
            Ok(s) => s,
            Err(e) => {
                bad.push(format!("{zone} `{pattern}`: {e}"));
                continue;
            }
        };
        let got: Vec<String> = schedule
            .fires_after(after)
            .take(case.fires.len())
            .map(|t| t.format(FORMAT).to_string())
            .collect();
        if got != case.fires {
            bad.push(format!(
                "{zone} `{pattern}` after {}:\n  expected {:?}\n  got      {got:?}",
                case.after, case.fires
            ));
        }
    }
    bad
}

fn check(table: &str) {
    let bad = mismatches(table);
    assert!(
        bad.is_empty(),
        "{} of {} cases differ:\n{}",
        bad.len(),
        cases(table).len(),
        bad.join("\n")
    );
}

#[test]
fn fields_lists_ranges_steps_names_and_aliases() {
    check(
        "
        # 2026-01-30 is a Friday, 2026-07-01 a Wednesday.
        UTC `*/15 9-17 * Jan,Jul Mon-Fri` after 2026-01-30 17:40 +00:00
            2026-01-30 17:45 +00:00
            2026-07-01 09:00 +00:00
            2026-07-01 09:15 +00:00
        UTC `0,30 8,20 * * *` after 2026-05-01 00:00 +00:00
            2026-05-01 08:00 +00:00
            2026-05-01 08:30 +00:00
            2026-05-01 20:00 +00:00
            2026-05-01 20:30 +00:00
            2026-05-02 08:00 +00:00
        UTC `10-40/15 * * * *` after 2026-05-01 00:00 +00:00
            2026-05-01 00:10 +00:00
            2026-05-01 00:25 +00:00
            2026-05-01 00:40 +00:00
            2026-05-01 01:10 +00:00
        UTC `0 */6 * * *` after 2026-01-01 01:00 +00:00
            2026-01-01 06:00 +00:00
            2026-01-01 12:00 +00:00
            2026-01-01 18:00 +00:00
            2026-01-02 00:00 +00:00
        UTC `0 0 1 Jan-Mar *` after 2026-02-15 00:00 +00:00
            2026-03-01 00:00 +00:00
            2027-01-01 00:00 +00:00
            2027-02-01 00:00 +00:00
        # 2026-11-21 is a Saturday.
        UTC `0 12 * * sat,SUN` after 2026-11-21 00:00 +00:00
            2026-11-21 12:00 +00:00
            2026-11-22 12:00 +00:00
            2026-11-28 12:00 +00:00
        UTC `0 12 * * 1-5` after 2026-11-21 00:00 +00:00
            2026-11-23 12:00 +00:00
            2026-11-24 12:00 +00:00
            2026-11-25 12:00 +00:00
            2026-11-26 12:00 +00:00
            2026-11-27 12:00 +00:00
            2026-11-30 12:00 +00:00
        # Sunday is 0 and 7; 2026-01-20 is a Tuesday.
        UTC `0 0 * * 7` after 2026-01-20 00:00 +00:00
            2026-01-25 00:00 +00:00
            2026-02-01 00:00 +00:00
        UTC `0 0 * * 0` after 2026-01-20 00:00 +00:00
            2026-01-25 00:00 +00:00
            2026-02-01 00:00 +00:00
        UTC `0 0 * * 5-7` after 2026-01-20 00:00 +00:00
            2026-01-23 00:00 +00:00
            2026-01-24 00:00 +00:00
            2026-01-25 00:00 +00:00
            2026-01-30 00:00 +00:00
        UTC `5 4 31 * *` after 2026-01-01 00:00 +00:00
            2026-01-31 04:05 +00:00
            2026-03-31 04:05 +00:00
            2026-05-31 04:05 +00:00
        UTC `0 0 29 2 *` after 2026-01-01 00:00 +00:00
            2028-02-29 00:00 +00:00
            2032-02-29 00:00 +00:00
        UTC `@hourly` after 2026-01-01 01:05 +00:00
            2026-01-01 02:00 +00:00
            2026-01-01 03:00 +00:00
        UTC `@daily` after 2026-05-01 00:00 +00:00
            2026-05-02 00:00 +00:00
            2026-05-03 00:00 +00:00
        UTC `@midnight` after 2026-05-01 00:00 +00:00
            2026-05-02 00:00 +00:00
        # Weeks start on Sunday; 2026-01-01 is a Thursday.
        UTC `@weekly` after 2026-01-01 00:00 +00:00
            2026-01-04 00:00 +00:00
            2026-01-11 00:00 +00:00
        UTC `@monthly` after 2026-01-15 00:00 +00:00
            2026-02-01 00:00 +00:00
            2026-03-01 00:00 +00:00
        UTC `@yearly` after 2026-01-01 00:00 +00:00
            2027-01-01 00:00 +00:00
        UTC `@annually` after 2026-01-01 00:00 +00:00
            2027-01-01 00:00 +00:00
        # In the schedule's zone, not UTC.
        Europe/Berlin `0 9 * * Mon` after 2026-01-04 23:30 +00:00
            2026-01-05 09:00 +01:00
            2026-01-12 09:00 +01:00
        ",
    );
}

#[test]
fn day_of_month_and_day_of_week_combine_as_in_vixie() {
    check(
        "
        # Neither field starts with `*`: either matches (the 1st, or a Monday).
        UTC `0 0 1 * 1` after 2026-01-20 00:00 +00:00
            2026-01-26 00:00 +00:00
            2026-02-01 00:00 +00:00
            2026-02-02 00:00 +00:00
            2026-02-09 00:00 +00:00
        # The 13th or a Friday; 2026-04-10 is a Friday, 2026-04-13 a Monday.
        UTC `0 0 13 * Fri` after 2026-04-08 00:00 +00:00
            2026-04-10 00:00 +00:00
            2026-04-13 00:00 +00:00
            2026-04-17 00:00 +00:00
        # Day of week starts with `*` (`*/2` = Sun, Tue, Thu, Sat): both must match. The 1st
        # and 15th of April to July 2026 fall on Wed, Fri, Mon, Wed; August 1st is a Saturday.
        UTC `0 0 1,15 * */2` after 2026-03-01 00:00 +00:00
            2026-03-15 00:00 +00:00
            2026-08-01 00:00 +00:00
            2026-08-15 00:00 +00:00
            2026-09-01 00:00 +00:00
        # Day of month starts with `*` (1, 11, 21, 31): only those that are Mondays.
        UTC `0 0 */10 * Mon` after 2026-01-01 00:00 +00:00
            2026-05-11 00:00 +00:00
            2026-06-01 00:00 +00:00
            2026-08-31 00:00 +00:00
        # `*/1` is every day, but starts with `*`: Fridays only.
        UTC `0 0 */1 * 5` after 2026-04-08 00:00 +00:00
            2026-04-10 00:00 +00:00
            2026-04-17 00:00 +00:00
        # A list that starts with `*` counts as `*` too.
        UTC `0 0 *,15 * Mon` after 2026-04-08 00:00 +00:00
            2026-04-13 00:00 +00:00
            2026-04-20 00:00 +00:00
        ",
    );
}

#[test]
fn berlin_spring_forward_2026() {
    check(
        "
        Europe/Berlin `30 2 * * *` after 2026-03-28 12:00 +01:00
            2026-03-29 03:00 +02:00
            2026-03-30 02:30 +02:00
        Europe/Berlin `0 1,2 * * *` after 2026-03-28 12:00 +01:00
            2026-03-29 01:00 +01:00
            2026-03-29 03:00 +02:00   # for the skipped 02:00
            2026-03-30 01:00 +02:00
            2026-03-30 02:00 +02:00
        # Two skipped times, one fire.
        Europe/Berlin `15,45 2 * * *` after 2026-03-28 12:00 +01:00
            2026-03-29 03:00 +02:00
            2026-03-30 02:15 +02:00
            2026-03-30 02:45 +02:00
        # The skipped 02:00 and the 03:00 itself: one fire.
        Europe/Berlin `0 2,3 * * *` after 2026-03-28 12:00 +01:00
            2026-03-29 03:00 +02:00
            2026-03-30 02:00 +02:00
            2026-03-30 03:00 +02:00
        Europe/Berlin `30 1-3 * * *` after 2026-03-28 12:00 +01:00
            2026-03-29 01:30 +01:00
            2026-03-29 03:00 +02:00
            2026-03-29 03:30 +02:00
            2026-03-30 01:30 +02:00
        Europe/Berlin `0-59/20 2 * * *` after 2026-03-28 12:00 +01:00
            2026-03-29 03:00 +02:00
            2026-03-30 02:00 +02:00
            2026-03-30 02:20 +02:00
        # Wildcard schedules lose the skipped hour.
        Europe/Berlin `*/30 * * * *` after 2026-03-29 01:00 +01:00
            2026-03-29 01:30 +01:00
            2026-03-29 03:00 +02:00
            2026-03-29 03:30 +02:00
        Europe/Berlin `30 * * * *` after 2026-03-29 01:00 +01:00
            2026-03-29 01:30 +01:00
            2026-03-29 03:30 +02:00
        Europe/Berlin `*/20 2 * * *` after 2026-03-28 12:00 +01:00
            2026-03-30 02:00 +02:00
            2026-03-30 02:20 +02:00
            2026-03-30 02:40 +02:00
        Europe/Berlin `@hourly` after 2026-03-29 00:30 +01:00
            2026-03-29 01:00 +01:00
            2026-03-29 03:00 +02:00
            2026-03-29 04:00 +02:00
        # Just before the jump (01:00Z) and at it: the catch-up fire is at the jump itself.
        Europe/Berlin `0 2 * * *` after 2026-03-29 00:59 +00:00
            2026-03-29 03:00 +02:00
            2026-03-30 02:00 +02:00
        Europe/Berlin `0 2 * * *` after 2026-03-29 01:00 +00:00
            2026-03-30 02:00 +02:00
        ",
    );
}

#[test]
fn berlin_fall_back_2026() {
    check(
        "
        Europe/Berlin `30 2 * * *` after 2026-10-24 12:00 +02:00
            2026-10-25 02:30 +02:00
            2026-10-26 02:30 +01:00
        Europe/Berlin `0 1-3 * * *` after 2026-10-24 12:00 +02:00
            2026-10-25 01:00 +02:00
            2026-10-25 02:00 +02:00   # not again at 02:00 +01:00
            2026-10-25 03:00 +01:00
            2026-10-26 01:00 +01:00
        Europe/Berlin `15,45 2 * * *` after 2026-10-24 12:00 +02:00
            2026-10-25 02:15 +02:00
            2026-10-25 02:45 +02:00
            2026-10-26 02:15 +01:00
        # From between the two passes, a fixed time waits for the next day.
        Europe/Berlin `0,30 2 * * *` after 2026-10-25 02:15 +01:00
            2026-10-26 02:00 +01:00
        # Wildcard schedules fire the repeated hour again.
        Europe/Berlin `0 * * * *` after 2026-10-25 01:00 +02:00
            2026-10-25 02:00 +02:00
            2026-10-25 02:00 +01:00
            2026-10-25 03:00 +01:00
        Europe/Berlin `*/30 * * * *` after 2026-10-25 01:45 +02:00
            2026-10-25 02:00 +02:00
            2026-10-25 02:30 +02:00
            2026-10-25 02:00 +01:00
            2026-10-25 02:30 +01:00
            2026-10-25 03:00 +01:00
        Europe/Berlin `*/30 * * * *` after 2026-10-25 02:45 +02:00
            2026-10-25 02:00 +01:00
            2026-10-25 02:30 +01:00
            2026-10-25 03:00 +01:00
        Europe/Berlin `*/30 * * * *` after 2026-10-25 02:15 +01:00
            2026-10-25 02:30 +01:00
            2026-10-25 03:00 +01:00
        Europe/Berlin `@hourly` after 2026-10-25 01:30 +02:00
            2026-10-25 02:00 +02:00
            2026-10-25 02:00 +01:00
            2026-10-25 03:00 +01:00
        ",
    );
}

#[test]
fn new_york_2026() {
    check(
        "
        America/New_York `30 2 * * *` after 2026-03-07 12:00 -05:00
            2026-03-08 03:00 -04:00
            2026-03-09 02:30 -04:00
        America/New_York `0 1,2 * * *` after 2026-03-07 12:00 -05:00
            2026-03-08 01:00 -05:00
            2026-03-08 03:00 -04:00
            2026-03-09 01:00 -04:00
        America/New_York `15,45 2 * * *` after 2026-03-07 12:00 -05:00
            2026-03-08 03:00 -04:00
            2026-03-09 02:15 -04:00
        America/New_York `*/30 * * * *` after 2026-03-08 01:00 -05:00
            2026-03-08 01:30 -05:00
            2026-03-08 03:00 -04:00
        America/New_York `30 1 * * *` after 2026-10-31 12:00 -04:00
            2026-11-01 01:30 -04:00
            2026-11-02 01:30 -05:00
        America/New_York `0 0-2 * * *` after 2026-10-31 12:00 -04:00
            2026-11-01 00:00 -04:00
            2026-11-01 01:00 -04:00
            2026-11-01 02:00 -05:00
            2026-11-02 00:00 -05:00
        America/New_York `0,30 * * * *` after 2026-11-01 00:45 -04:00
            2026-11-01 01:00 -04:00
            2026-11-01 01:30 -04:00
            2026-11-01 01:00 -05:00
            2026-11-01 01:30 -05:00
            2026-11-01 02:00 -05:00
        America/New_York `*/20 1 * * *` after 2026-11-01 00:00 -04:00
            2026-11-01 01:00 -04:00
            2026-11-01 01:20 -04:00
            2026-11-01 01:40 -04:00
            2026-11-01 01:00 -05:00
            2026-11-01 01:20 -05:00
            2026-11-01 01:40 -05:00
            2026-11-02 01:00 -05:00
        ",
    );
}

#[test]
fn lord_howe_half_hour_shift_2026() {
    check(
        "
        # 01:30-01:59 happens twice on 2026-04-05.
        Australia/Lord_Howe `45 1 * * *` after 2026-04-04 12:00 +11:00
            2026-04-05 01:45 +11:00
            2026-04-06 01:45 +10:30
        Australia/Lord_Howe `0,30 1 * * *` after 2026-04-04 12:00 +11:00
            2026-04-05 01:00 +11:00
            2026-04-05 01:30 +11:00
            2026-04-06 01:00 +10:30
        Australia/Lord_Howe `*/15 * * * *` after 2026-04-05 01:10 +11:00
            2026-04-05 01:15 +11:00
            2026-04-05 01:30 +11:00
            2026-04-05 01:45 +11:00
            2026-04-05 01:30 +10:30
            2026-04-05 01:45 +10:30
            2026-04-05 02:00 +10:30
        # The repeated half hour holds no full hour: @hourly fires as usual.
        Australia/Lord_Howe `@hourly` after 2026-04-05 00:30 +11:00
            2026-04-05 01:00 +11:00
            2026-04-05 02:00 +10:30
        # 02:00-02:29 is skipped on 2026-10-04.
        Australia/Lord_Howe `15 2 * * *` after 2026-10-03 12:00 +10:30
            2026-10-04 02:30 +11:00
            2026-10-05 02:15 +11:00
        Australia/Lord_Howe `0,30 2 * * *` after 2026-10-03 12:00 +10:30
            2026-10-04 02:30 +11:00
            2026-10-05 02:00 +11:00
            2026-10-05 02:30 +11:00
        Australia/Lord_Howe `0 1-3 * * *` after 2026-10-03 12:00 +10:30
            2026-10-04 01:00 +10:30
            2026-10-04 02:30 +11:00
            2026-10-04 03:00 +11:00
            2026-10-05 01:00 +11:00
        Australia/Lord_Howe `*/10 2 * * *` after 2026-10-03 12:00 +10:30
            2026-10-04 02:30 +11:00
            2026-10-04 02:40 +11:00
            2026-10-04 02:50 +11:00
            2026-10-05 02:00 +11:00
        Australia/Lord_Howe `@hourly` after 2026-10-04 01:30 +10:30
            2026-10-04 03:00 +11:00
            2026-10-04 04:00 +11:00
        ",
    );
}

#[test]
fn midnight_changes_and_jumps_of_three_hours_or_more() {
    check(
        "
        # Havana skips midnight on 2026-03-08 (a Sunday) and repeats it on 2026-11-01.
        America/Havana `@daily` after 2026-03-07 12:00 -05:00
            2026-03-08 01:00 -04:00
            2026-03-09 00:00 -04:00
        America/Havana `30 0 * * Sun` after 2026-03-07 12:00 -05:00
            2026-03-08 01:00 -04:00
            2026-03-15 00:30 -04:00
        America/Havana `@daily` after 2026-10-31 12:00 -04:00
            2026-11-01 00:00 -04:00
            2026-11-02 00:00 -05:00
        # A skipped day is not caught up.
        Pacific/Apia `0 12 * * *` after 2011-12-29 00:00 -10:00
            2011-12-29 12:00 -10:00
            2011-12-31 12:00 +14:00
        # 23 repeated hours fire again.
        Pacific/Kwajalein `0 12 * * *` after 1969-09-30 00:00 +11:00
            1969-09-30 12:00 +11:00
            1969-09-30 12:00 -12:00
            1969-10-01 12:00 -12:00
        ",
    );
}
