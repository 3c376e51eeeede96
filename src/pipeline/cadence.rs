//! Whether a schedule's fires find new instances: a schedule that fires more often than any
//! param that follows the fire time changes runs once and then finds its instance done at every
//! later fire of the same slot, silently. `validate` warns about it.
//!
//! A param follows the fire time when it resolves against the logical time: a date param that
//! defaults to `today` or `yesterday` changes once a day, a time param that defaults to its
//! current or previous slot once per `every`. Slots of both are cut on the wall clock from
//! midnight ([`crate::slot`]), and a schedule fires at the same times of day on every day it
//! fires, so two fires share an instance exactly when two of those times fall in one slot of
//! the finest such param. Clock changes rarely change that: a skipped slot begins at the jump,
//! and a repeated slot start is two slots. The exception is a fall back to a wall time that
//! starts no slot: Australia/Lord_Howe goes from 02:00 +11:00 back to 01:30 +10:30, so its
//! hourly 01:00 slot lasts 90 minutes, and `45 * * * *` fires twice in it (01:45 at each
//! offset). The second fire finds the hour done, which is what that hour is; once a year, and
//! not warned about.

use std::ops::Range;

use super::{Param, ParamKind};
use crate::diag::Diagnostic;
use crate::schedule::Schedule;
use crate::slot;

const DAY: u32 = 24 * 60;

/// The values of `every` to suggest, longest first.
const SUGGEST: &[u32] = &[DAY, 720, 360, 240, 180, 120, 60, 30, 20, 15, 10, 5, 2, 1];

/// The warning for `schedule` (written at `span`) if it fires more often than `params` let the
/// instance change.
pub fn warning(schedule: &Schedule, span: Range<usize>, params: &[Param]) -> Option<Diagnostic> {
    let times = schedule.times_of_day();
    // The first two fires of a day that share a slot of `every` minutes.
    let shared = |every: u32| {
        times
            .windows(2)
            .find(|w| w[0] / every == w[1] / every)
            .map(|w| (w[0], w[1]))
    };
    // The longest usual slot that gives each fire its own instance.
    let fits = SUGGEST
        .iter()
        .copied()
        .find(|&e| shared(e).is_none())
        .unwrap_or(1);
    let taken = |n: &str| params.iter().any(|p| p.name == n);
    let suggestion = || {
        if fits == DAY {
            let name = ["date", "day", "fire_date"]
                .into_iter()
                .find(|n| !taken(n))
                .unwrap_or("fire_date");
            format!("{name} = {{ type = \"date\", default = \"today\" }}")
        } else {
            let candidates = if fits < 60 {
                ["minute", "slot", "fire_slot"]
            } else {
                ["hour", "slot", "fire_slot"]
            };
            let name = candidates.into_iter().find(|n| !taken(n)).unwrap_or("fire_slot");
            format!(
                "{name} = {{ type = \"time\", every = \"{}\" }}",
                slot::every_text(fits)
            )
        }
    };
    let finest = params
        .iter()
        .filter_map(|p| follows(p).map(|every| (every, p)))
        .min_by_key(|(every, _)| *every);
    let Some((every, param)) = finest else {
        return Some(
            Diagnostic::new("the schedule fires again and again, but the instance never changes")
                .at(span)
                .label("no param follows the fire time")
                .help(format!(
                    "every fire after the first finds the instance done; add a param that follows it to [params]: {}",
                    suggestion()
                )),
        );
    };
    let (first, second) = shared(every)?;
    let what = match param.kind {
        ParamKind::Time { every } => format!("`{}` (every = \"{}\")", param.name, slot::every_text(every)),
        _ => format!("`{}` (a date)", param.name),
    };
    let fix = match param.kind {
        ParamKind::Time { .. } => format!("give `{}` every = \"{}\"", param.name, slot::every_text(fits)),
        _ => format!("add a time param to [params]: {}", suggestion()),
    };
    Some(
        Diagnostic::new("the schedule fires more often than the instance changes")
            .at(span)
            .label(format!(
                "fires at {} and {}, both in one instance of {what}",
                clock(first),
                clock(second)
            ))
            .help(format!(
                "the fire at {} finds the instance of {} done; {fix}",
                clock(second),
                clock(first)
            )),
    )
}

/// How often `p` changes with the logical time, in minutes; `None` if it does not.
fn follows(p: &Param) -> Option<u32> {
    match (p.kind, p.default.as_deref()) {
        (ParamKind::Date, Some("today" | "yesterday")) => Some(DAY),
        (ParamKind::Time { every }, None | Some("current" | "previous")) => Some(every),
        _ => None,
    }
}

fn clock(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, kind: ParamKind, default: Option<&str>) -> Param {
        Param {
            name: name.into(),
            kind,
            default: default.map(str::to_string),
            description: None,
        }
    }

    /// (label, help) of the warning, if any.
    fn warn(schedule: &str, params: &[Param]) -> Option<(String, String)> {
        let s = Schedule::parse(schedule).unwrap();
        warning(&s, 0..1, params).map(|d| (d.label.unwrap(), d.help.unwrap()))
    }

    #[test]
    fn a_schedule_warns_when_two_fires_share_an_instance() {
        let day = param("day", ParamKind::Date, Some("yesterday"));
        let hour = param("hour", ParamKind::Time { every: 60 }, None);
        assert_eq!(warn("0 2 * * *", std::slice::from_ref(&day)), None);
        assert_eq!(warn("@weekly", std::slice::from_ref(&day)), None);
        assert_eq!(warn("0 * * * *", &[day.clone(), hour.clone()]), None);
        assert_eq!(warn("59 * * * *", std::slice::from_ref(&hour)), None);
        assert_eq!(
            warn("0 0,12 * * *", std::slice::from_ref(&day)),
            Some((
                "fires at 00:00 and 12:00, both in one instance of `day` (a date)".into(),
                "the fire at 12:00 finds the instance of 00:00 done; add a time param to [params]: \
                 hour = { type = \"time\", every = \"12h\" }"
                    .into()
            ))
        );
        assert_eq!(
            warn("0,5 * * * *", std::slice::from_ref(&hour)).unwrap().1,
            "the fire at 00:05 finds the instance of 00:00 done; give `hour` every = \"5m\""
        );
        assert_eq!(
            warn("*/15 9-17 * * *", std::slice::from_ref(&day)).unwrap().1,
            "the fire at 09:15 finds the instance of 09:00 done; add a time param to [params]: \
             minute = { type = \"time\", every = \"15m\" }"
        );
        // Params that never change with the fire time do not count.
        let fixed = param("day", ParamKind::Date, Some("2026-01-01"));
        let region = param("region", ParamKind::String, Some("eu"));
        let pinned = param("hour", ParamKind::Time { every: 60 }, Some("2026-01-01T00:00"));
        for ps in [vec![], vec![fixed, region.clone()], vec![pinned]] {
            let (label, _) = warn("0 3 * * *", &ps).expect("a warning");
            assert_eq!(label, "no param follows the fire time");
        }
        assert_eq!(
            warn("0 3 * * *", std::slice::from_ref(&region)).unwrap().1,
            "every fire after the first finds the instance done; add a param that follows it to \
             [params]: date = { type = \"date\", default = \"today\" }"
        );
    }
}
