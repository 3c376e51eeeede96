//! Time params: hourly (and finer) instances, from `run --logical-time`, `-p` and backfill
//! (the scheduler's are in schedule.rs); and the validate warning for a schedule that fires more
//! often than its instance changes.

use crate::support::Project;

/// An hourly pipeline in Berlin whose task appends its `hour` (placeholder and environment
/// variable) to `hours.txt`.
pub const HOURLY: &str = "[pipeline]\nschedule = '0 * * * *'\ntimezone = 'Europe/Berlin'\ncatchup = 'all'\n\
    [params]\nhour = { type = 'time', every = '1h' }\n\
    [tasks.a]\ncommand = 'echo {{hour}} $PLUMB_PARAM_HOUR >> hours.txt'\n";

fn instances(p: &Project) -> Vec<String> {
    let db = p.db();
    let mut s = db
        .prepare("SELECT DISTINCT instance FROM markers ORDER BY finished_at")
        .unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn an_hourly_pipeline_run_at_two_logical_times_is_two_instances_even_in_the_hour_that_repeats() {
    let p = Project::new();
    p.pipeline("hourly", HOURLY);
    // 2026-10-25 in Berlin: 03:00 CEST falls back to 02:00 CET at 01:00Z, so 00:30Z and 01:30Z
    // are both 02:30 on the wall clock.
    for t in [
        "2026-10-25T00:30:00Z",
        "2026-10-25T01:30:00Z",
        "2026-10-25T00:59:59Z",
    ] {
        let out = p.plumb(&["run", "hourly", "--logical-time", t]);
        assert_eq!(out.code, 0, "{}", out.all());
    }
    assert_eq!(
        p.lines("hours.txt"),
        [
            "2026-10-25T02:00+02:00 2026-10-25T02:00+02:00",
            "2026-10-25T02:00+01:00 2026-10-25T02:00+01:00"
        ],
        "the third run's hour was done already"
    );
    assert_eq!(
        instances(&p),
        ["hour=2026-10-25T02:00+02:00", "hour=2026-10-25T02:00+01:00"]
    );
    // `-p` names an instance, with its offset where the wall time happens twice.
    let again = p.plumb(&["run", "hourly", "-p", "hour=2026-10-25T02:00+01:00"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(
        again
            .stdout
            .contains("hourly hour=2026-10-25T02:00+01:00: succeeded"),
        "{}",
        again.stdout
    );
    let next = p.plumb(&["run", "hourly", "-p", "hour=2026-10-25T03:00"]);
    assert_eq!(next.code, 0, "{}", next.all());
    assert_eq!(p.lines("hours.txt").len(), 3);
}

#[test]
fn a_time_that_is_no_instance_is_a_usage_error_that_says_how_to_write_it() {
    let p = Project::new();
    p.pipeline("hourly", HOURLY);
    for (value, message) in [
        (
            "2026-10-25T02:00",
            "2026-10-25T02:00 happens twice in Europe/Berlin: write 2026-10-25T02:00+02:00 (the \
             first) or 2026-10-25T02:00+01:00 (the second)",
        ),
        (
            "2026-03-29T02:00",
            "2026-03-29T02:00 does not exist in Europe/Berlin (the clock jumps over it): write \
             2026-03-29T03:00+02:00, the slot the jump lands in",
        ),
        (
            "2026-11-20T02:30",
            "2026-11-20T02:30 is not where a 1h slot begins: write 2026-11-20T02:00+01:00 for the \
             slot it falls in",
        ),
        (
            "2026-11-20T02:00Z",
            "2026-11-20T02:00Z is 2026-11-20T03:00+01:00 in Europe/Berlin, the pipeline's zone: \
             write it so",
        ),
        (
            "yesterday",
            "\"yesterday\" is not a time: write YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM+HH:MM in \
             Europe/Berlin, current or previous",
        ),
    ] {
        let out = p.plumb(&["run", "hourly", "-p", &format!("hour={value}")]);
        assert_eq!(out.code, 2, "{value}: {}", out.all());
        assert_eq!(out.stderr, format!("error: param `hour`: {message}\n"), "{value}");
    }
    assert!(!p.exists("hours.txt"));
    // `previous` is the hour before the logical time's.
    let out = p.plumb(&[
        "run",
        "hourly",
        "-p",
        "hour=previous",
        "--logical-time",
        "2026-11-20T00:10:00+01:00",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        p.lines("hours.txt"),
        ["2026-11-19T23:00+01:00 2026-11-19T23:00+01:00"]
    );
}

#[test]
fn every_is_checked_like_any_other_key() {
    let p = Project::new();
    p.pipeline(
        "p",
        "[params]\nhour = { type = 'time' }\nslot = { type = 'time', every = '7m' }\n\
         fast = { type = 'time', every = '30s' }\nregion = { every = '1h' }\n\
         at = { type = 'time', every = '1h', default = '2026-11-20T02:30' }\n\
         [tasks.a]\ncommand = 'true'\n",
    );
    let out = p.plumb(&["validate", "p"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        r#"error: param `hour` is a time param without `every`
 --> pipelines/p.toml:2:1
  |
2 | hour = { type = 'time' }
  | ^^^^
  |
  = help: say how long each instance lasts: hour = { type = "time", every = "1h" } (from "1m" to "1d")

error: `every` of param `slot` must divide a day evenly, so that each day starts a slot at 00:00; use 5m or 10m
 --> pipelines/p.toml:3:33
  |
3 | slot = { type = 'time', every = '7m' }
  |                                 ^^^^
  |
  = help: a time param's instances are slots of the day: 1m, 5m, 15m, 30m, 1h, 2h, 6h, 12h, 1d...

error: `every` of param `fast` must be whole minutes
 --> pipelines/p.toml:4:33
  |
4 | fast = { type = 'time', every = '30s' }
  |                                 ^^^^^
  |
  = help: a time param's instances are slots of the day: 1m, 5m, 15m, 30m, 1h, 2h, 6h, 12h, 1d...

error: `every` of param `region`: only a time param has one
 --> pipelines/p.toml:5:20
  |
5 | region = { every = '1h' }
  |                    ^^^^
  |
  = help: write region = { type = "time", every = ... } for a param that follows the fire time

error: default of param `at`: 2026-11-20T02:30 is not where a 1h slot begins: write 2026-11-20T02:00+00:00 for the slot it falls in
 --> pipelines/p.toml:6:47
  |
6 | at = { type = 'time', every = '1h', default = '2026-11-20T02:30' }
  |                                               ^^^^^^^^^^^^^^^^^^
  |
  = help: without a default a time param is "current", the slot of the run's logical time; "previous" is the one before

5 errors in pipelines/p.toml
"#
    );
}

#[test]
fn validate_warns_when_a_schedule_fires_more_often_than_its_instance_changes() {
    let p = Project::new();
    // An hourly schedule whose only param is a date.
    p.pipeline(
        "daily_param",
        "[pipeline]\nschedule = '0 * * * *'\n[params]\nday = { type = 'date', default = 'today' }\n\
         [tasks.a]\ncommand = 'true'\n",
    );
    // A schedule, and no param at all.
    p.pipeline(
        "no_param",
        "[pipeline]\nschedule = '@daily'\n[tasks.a]\ncommand = 'true'\n",
    );
    // Every minute, with instances of an hour.
    p.pipeline(
        "too_coarse",
        "[pipeline]\ndescription = 'x'\nschedule = '* * * * *'\n\
         [params]\nhour = { type = 'time', every = '1h' }\n[tasks.a]\ncommand = 'true'\n",
    );
    // Fine: each fire is its own instance.
    p.pipeline("hourly", HOURLY);
    let out = p.plumb(&["validate"]);
    assert_eq!(out.code, 0, "warnings do not fail validate: {}", out.all());
    assert_eq!(
        out.stdout,
        "ok: pipelines/daily_param.toml (1 task, 0 edges, 1 warning)\n\
         ok: pipelines/hourly.toml (1 task, 0 edges)\n\
         ok: pipelines/no_param.toml (1 task, 0 edges, 1 warning)\n\
         ok: pipelines/too_coarse.toml (1 task, 0 edges, 1 warning)\n"
    );
    assert_eq!(
        out.stderr,
        r#"warning: the schedule fires more often than the instance changes
 --> pipelines/daily_param.toml:2:12
  |
2 | schedule = '0 * * * *'
  |            ^^^^^^^^^^^ fires at 00:00 and 01:00, both in one instance of `day` (a date)
  |
  = help: the fire at 01:00 finds the instance of 00:00 done; add a time param to [params]: hour = { type = "time", every = "1h" }
warning: the schedule fires again and again, but the instance never changes
 --> pipelines/no_param.toml:2:12
  |
2 | schedule = '@daily'
  |            ^^^^^^^^ no param follows the fire time
  |
  = help: every fire after the first finds the instance done; add a param that follows it to [params]: date = { type = "date", default = "today" }
warning: the schedule fires more often than the instance changes
 --> pipelines/too_coarse.toml:3:12
  |
3 | schedule = '* * * * *'
  |            ^^^^^^^^^^^ fires at 00:00 and 00:01, both in one instance of `hour` (every = "1h")
  |
  = help: the fire at 00:01 finds the instance of 00:00 done; give `hour` every = "1m"
"#
    );
}

#[test]
fn backfill_steps_a_time_param_by_its_every_across_the_hour_that_repeats() {
    let p = Project::new();
    p.pipeline("hourly", &HOURLY.replace("'1h'", "'30m'"));
    let out = p.plumb(&[
        "backfill",
        "hourly",
        "--from",
        "2026-10-25T01:30",
        "--to",
        "2026-10-25T03:00",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let values = [
        "2026-10-25T01:30+02:00",
        "2026-10-25T02:00+02:00",
        "2026-10-25T02:30+02:00",
        "2026-10-25T02:00+01:00",
        "2026-10-25T02:30+01:00",
        "2026-10-25T03:00+01:00",
    ];
    assert_eq!(
        p.lines("hours.txt"),
        values.map(|v| format!("{v} {v}")),
        "oldest first, each once"
    );
    let table = out
        .stdout
        .split("\nbackfill hourly by hour: 6 instances, 0 not complete\n")
        .nth(1)
        .expect(&out.stdout);
    let rows: Vec<&str> = table
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let mut want = vec!["hour"];
    want.extend(values);
    assert_eq!(rows, want, "{table}");

    // A rerun finds every instance complete; --over names the param; a date is not a time.
    let again = p.plumb(&[
        "backfill",
        "hourly",
        "--over",
        "hour",
        "--from",
        "2026-10-25T02:00+01:00",
        "--to",
        "2026-10-25T03:30",
    ]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(
        again.stdout.starts_with(
            "2026-10-25T02:00+01:00  complete already, skipped\n\
             2026-10-25T02:30+01:00  complete already, skipped\n\
             2026-10-25T03:00+01:00  complete already, skipped\n\
             backfill hourly hour 2026-10-25T02:00+01:00 .. 2026-10-25T03:30+01:00: 1 to run, 3 complete, 1 at a time\n"
        ),
        "{}",
        again.stdout
    );
    let years = p.plumb(&[
        "backfill",
        "hourly",
        "--from",
        "2020-01-01T00:00",
        "--to",
        "2026-01-01T00:00",
    ]);
    assert_eq!(years.code, 2);
    assert_eq!(
        years.stderr,
        "error: --from 2020-01-01T00:00 --to 2026-01-01T00:00 spans more than 100000 instances of \
         `hour`; backfill it in parts\n"
    );
    let bad = p.plumb(&["backfill", "hourly", "--from", "2026-10-25", "--to", "2026-10-26"]);
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "error: --from \"2026-10-25\" is not a time: write YYYY-MM-DDTHH:MM or \
         YYYY-MM-DDTHH:MM+HH:MM in Europe/Berlin, current or previous\n"
    );
}
