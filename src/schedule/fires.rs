//! From matching wall-clock minutes to fire times, across daylight-saving changes, as Vixie cron
//! does it.
//!
//! Vixie cron wakes each minute and compares the wall clock with the minute it expected. When
//! the clock has jumped forward, it runs the *fixed-time* jobs (neither minute nor hour field
//! starts with `*`) of every minute it jumped over, at once; *wildcard* jobs only get the new
//! minute. When the clock has stepped back, it runs only wildcard jobs until the wall clock is
//! past the minute it had reached. A jump of 3 hours or more either way is taken as the clock
//! being set: nothing is caught up, and after a step back everything fires again. A delay of
//! under 5 minutes is just a late wake-up, and every job catches up.
//!
//! So here, for each matching wall-clock minute in order:
//! - it exists once: it fires then;
//! - the clock jumped over it: a fixed-time schedule fires once at the first minute after the
//!   jump, standing for every time of it that was skipped (and for that minute, if it matches
//!   too); a wildcard schedule does not fire for it;
//! - it happens twice: its first occurrence fires, and the second too for a wildcard schedule.
//!   Every match within the repeated stretch is handled together, so that fires come out in
//!   time order: the first pass, then the second.

use std::collections::VecDeque;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::fields::Fields;

const MINUTE: TimeDelta = TimeDelta::minutes(1);
/// A jump shorter than this is a late wake-up to Vixie: every schedule catches up.
const LATE_WAKE_UP: TimeDelta = TimeDelta::minutes(5);
/// A jump of this much or more is the clock being set: no catch-up, no suppressed repeats.
const CLOCK_SET: TimeDelta = TimeDelta::hours(3);
/// A change of offset is under 48 hours (chrono's offsets are under 24 hours either way), so the
/// end of a skipped or repeated stretch is found within this.
const LONGEST_CHANGE: TimeDelta = TimeDelta::hours(48);

/// One fire time of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    pub at: DateTime<Tz>,
    /// The schedule's wall-clock times that the clock jumped over and that this fire catches
    /// up (empty for an ordinary fire).
    pub skipped: Vec<NaiveDateTime>,
}

/// The fire times of a schedule strictly after a moment, in order, in the moment's zone.
pub struct Fires {
    fields: Fields,
    tz: Tz,
    after: DateTime<Utc>,
    /// The next wall-clock minute to look at; `None` once the schedule never fires again.
    cursor: Option<NaiveDateTime>,
    /// Fires found and not yet returned, in time order.
    ready: VecDeque<Fire>,
}

impl Fires {
    pub fn new(fields: Fields, after: DateTime<Tz>) -> Fires {
        Fires {
            fields,
            tz: after.timezone(),
            after: after.with_timezone(&Utc),
            cursor: start(&after),
            ready: VecDeque::new(),
        }
    }

    fn push(&mut self, at: DateTime<Tz>, skipped: Vec<NaiveDateTime>) {
        self.ready.push_back(Fire { at, skipped });
    }

    /// Handle a matching wall-clock minute (and, at a change of offset, the matches up to the
    /// end of the skipped or repeated stretch), moving the cursor past what was handled.
    fn step(&mut self, wall: NaiveDateTime) {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(at) => {
                self.push(at, Vec::new());
                self.cursor = Some(wall + MINUTE);
            }
            LocalResult::None => self.skipped(wall),
            LocalResult::Ambiguous(..) => self.repeated(wall),
        }
    }

    /// The clock jumped over `wall`.
    fn skipped(&mut self, wall: NaiveDateTime) {
        let resumed = (1..=LONGEST_CHANGE.num_minutes())
            .map(|i| wall + MINUTE * i as i32)
            .find_map(|w| Some((w, self.tz.from_local_datetime(&w).earliest()?)));
        let Some((end, at)) = resumed else {
            self.cursor = Some(wall + MINUTE);
            return;
        };
        let last_before = (at - MINUTE).naive_local();
        let jump = end - last_before - MINUTE;
        let catch_up = jump < LATE_WAKE_UP || (!self.fields.wildcard && jump < CLOCK_SET);
        if !catch_up {
            self.cursor = Some(end);
            return;
        }
        let skipped: Vec<NaiveDateTime> =
            std::iter::successors(Some(wall), |w| self.fields.next_match(*w + MINUTE))
                .take_while(|w| *w < end)
                .collect();
        self.push(at, skipped);
        // `end` itself, if it matches, is this same fire.
        self.cursor = Some(end + MINUTE);
    }

    /// `wall` happens twice: the clock was set back over it.
    fn repeated(&mut self, wall: NaiveDateTime) {
        let end = (1..=LONGEST_CHANGE.num_minutes())
            .map(|i| wall + MINUTE * i as i32)
            .find(|w| !matches!(self.tz.from_local_datetime(w), LocalResult::Ambiguous(..)))
            .unwrap_or(wall + MINUTE);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        let matches = std::iter::successors(Some(wall), |w| self.fields.next_match(*w + MINUTE));
        for w in matches.take_while(|w| *w < end) {
            if let LocalResult::Ambiguous(a, b) = self.tz.from_local_datetime(&w) {
                first.push(a);
                second.push(b);
            }
        }
        let step_back = match (first.first(), second.first()) {
            (Some(a), Some(b)) => *b - *a,
            _ => TimeDelta::zero(),
        };
        let again = self.fields.wildcard || step_back > CLOCK_SET;
        for at in first {
            self.push(at, Vec::new());
        }
        if again {
            for at in second {
                self.push(at, Vec::new());
            }
        }
        self.cursor = Some(end);
    }
}

/// The first wall-clock minute that can fire after `after`: its own, or, when `after` is in the
/// first pass of a repeated stretch, one that far before it, since the times between come again
/// after `after` (and the handling of the stretch must start before it).
fn start(after: &DateTime<Tz>) -> Option<NaiveDateTime> {
    let wall = after.naive_local();
    let back = match after.timezone().from_local_datetime(&wall) {
        LocalResult::Ambiguous(first, second) if first == *after => second - first,
        _ => TimeDelta::zero(),
    };
    (wall - back).with_second(0)?.with_nanosecond(0)
}

impl Iterator for Fires {
    type Item = Fire;

    fn next(&mut self) -> Option<Fire> {
        loop {
            while let Some(fire) = self.ready.pop_front() {
                if fire.at > self.after {
                    return Some(fire);
                }
            }
            let wall = self.fields.next_match(self.cursor?);
            match wall {
                Some(wall) => self.step(wall),
                None => self.cursor = None,
            }
        }
    }
}
