//! Time params: hourly (and finer) instances, from `run --logical-time` and `-p` (the scheduler's
//! are in schedule.rs).

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
