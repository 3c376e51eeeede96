//! The scheduler daemon, on a sped-up clock (PLUMB_TEST_CLOCK: one fake minute per real second),
//! and backfill.

use std::process::{Child, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::Project;

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A timeline where fake 2026-01-01T00:00:30Z is now and a fake minute lasts a real second.
fn timeline() -> String {
    format!("{:.3}=2026-01-01T00:00:30Z*60", unix_now())
}

/// A running scheduler; killed if a test fails before stopping it.
struct Daemon(Option<Child>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(p: &Project, clock: &str) -> Daemon {
    Daemon(Some(
        p.cmd(&["schedule"])
            .env("PLUMB_TEST_CLOCK", clock)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

fn stop(daemon: Daemon) -> String {
    stop_both(daemon).0
}

/// Stop the scheduler; its stdout and stderr.
fn stop_both(mut daemon: Daemon) -> (String, String) {
    let child = daemon.0.take().expect("running");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a SIGTERM'd scheduler exits 0 after stopping cleanly"
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fires(p: &Project, pipeline: &str) -> Vec<(String, String)> {
    let db = p.db();
    let mut s = db
        .prepare("SELECT fire_time, status FROM fires WHERE pipeline = ?1 ORDER BY fire_time")
        .unwrap();
    s.query_map([pipeline], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn minute(m: u32) -> String {
    format!("2026-01-01T00:{m:02}:00Z")
}

const EVERY_MINUTE: &str = "[pipeline]\nschedule = '* * * * *'\ncatchup = 'CATCHUP'\n\
    [params]\nday = { type = 'date', default = 'today' }\n\
    [tasks.a]\ncommand = 'echo {{scheduled_time}} >> fired-PIPE.txt'\n";

fn every_minute(p: &Project, name: &str, catchup: &str) {
    p.pipeline(
        name,
        &EVERY_MINUTE.replace("CATCHUP", catchup).replace("PIPE", name),
    );
}

#[test]
fn restarted_scheduler_neither_fires_twice_nor_misses_a_minute_and_catchup_policies_apply() {
    let p = Project::new();
    every_minute(&p, "all", "all");
    every_minute(&p, "latest", "latest");
    every_minute(&p, "none", "none");
    p.pipeline(
        "window",
        &EVERY_MINUTE
            .replace("CATCHUP'\n", "all'\ncatchup_window = '90s'\n")
            .replace("PIPE", "window"),
    );
    let clock = timeline();

    // Up from fake 00:00:30 to about 00:03:45: fires 00:01, 00:02, 00:03.
    let first = start(&p, &clock);
    std::thread::sleep(Duration::from_millis(3200));
    let log1 = stop(first);
    assert!(
        log1.contains("all: next fire 2026-01-01 00:01 +00:00 (* * * * *, UTC, catchup all)"),
        "{log1}"
    );

    // Down across 00:04, 00:05 and 00:06; up again from about 00:06:20 to 00:08:10.
    std::thread::sleep(Duration::from_millis(2600));
    let second = start(&p, &clock);
    std::thread::sleep(Duration::from_millis(1900));
    let log2 = stop(second);

    // Fired = launched (done, or interrupted by the test's SIGTERM if it was still running
    // on a loaded machine); skipped = missed while down. Each time appears once (the table's
    // key), so "never twice, never missed" is: fired + skipped covers minutes 1..8 exactly.
    let by = |f: &[(String, String)], skipped: bool| {
        f.iter()
            .filter(|(_, s)| (s == "skipped") == skipped)
            .map(|(t, _)| t.clone())
            .collect::<Vec<_>>()
    };
    let all = fires(&p, "all");
    assert_eq!(
        by(&all, false),
        (1..=8).map(minute).collect::<Vec<_>>(),
        "every minute once: {all:?}\n{log1}\n{log2}"
    );
    assert!(all.iter().take(7).all(|(_, s)| s == "done"), "{all:?}");
    let latest = fires(&p, "latest");
    assert_eq!(
        by(&latest, false),
        [1, 2, 3, 6, 7, 8].map(minute),
        "{latest:?}\n{log2}"
    );
    assert_eq!(by(&latest, true), [4, 5].map(minute), "{latest:?}");
    let none = fires(&p, "none");
    assert_eq!(by(&none, false), [1, 2, 3, 7, 8].map(minute), "{none:?}\n{log2}");
    assert_eq!(by(&none, true), [4, 5, 6].map(minute), "{none:?}");
    // catchup = "all" reaches back only catchup_window: restarted at about 00:06:20, a 90 s
    // window takes 00:05 and 00:06 and skips 00:04.
    let window = fires(&p, "window");
    assert_eq!(
        by(&window, false),
        [1, 2, 3, 5, 6, 7, 8].map(minute),
        "{window:?}\n{log2}"
    );
    assert_eq!(by(&window, true), [4].map(minute), "{window:?}");
    assert!(
        log2.contains("skip    none: 3 fire times missed while down (catchup none)"),
        "{log2}"
    );

    // Each fire ran `plumb run` for the instance of its logical day; only the first did work.
    let runs = p.count("SELECT COUNT(*) FROM runs WHERE pipeline = 'all'");
    // The last fire may have been stopped by the test before its run was recorded.
    assert!(runs == 7 || runs == 8, "{runs} runs");
    assert_eq!(p.lines("fired-all.txt"), ["2026-01-01T00:01:00+00:00"]);
}

#[test]
fn a_fire_resolves_dates_against_its_fire_time_in_the_pipeline_zone() {
    let p = Project::new();
    p.pipeline(
        "nightly",
        "[pipeline]\nschedule = '30 0 * * *'\ntimezone = 'Europe/Berlin'\n\
         [params]\ndate = { type = 'date', default = 'yesterday' }\n\
         [tasks.a]\ncommand = 'echo {{date}} {{scheduled_time}} >> fired.txt'\n",
    );
    // 2026-03-28T23:00:00Z is 00:00 in Berlin on the 29th; a fake hour per real second, so the
    // 00:30 fire comes half a second in.
    let clock = format!("{:.3}=2026-03-28T23:00:00Z*3600", unix_now());
    let child = start(&p, &clock);
    std::thread::sleep(Duration::from_millis(1500));
    stop(child);
    assert_eq!(p.lines("fired.txt"), ["2026-03-28 2026-03-29T00:30:00+01:00"]);
}

/// A daily pipeline in Berlin whose task writes its date param and fire time to `fired-NAME.txt`.
fn berlin_daily(p: &Project, name: &str, schedule: &str) {
    p.pipeline(
        name,
        &format!(
            "[pipeline]\nschedule = '{schedule}'\ntimezone = 'Europe/Berlin'\ncatchup = 'all'\n\
             [params]\nday = {{ type = 'date', default = 'today' }}\n\
             [tasks.a]\ncommand = 'echo {{{{day}}}} {{{{scheduled_time}}}} >> fired-{name}.txt'\n"
        ),
    );
}

fn done_fires(p: &Project, pipeline: &str) -> usize {
    fires(p, pipeline).iter().filter(|(_, s)| s == "done").count()
}

#[test]
fn a_day_whose_fire_times_the_clock_jumps_over_is_fired_once_after_the_jump_and_recorded() {
    let p = Project::new();
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:15 and 02:45 never happen.
    berlin_daily(&p, "skipped", "15,45 2 * * *");
    // Fires at 04:00 CEST, after the catch-up would have come: the test waits for it.
    berlin_daily(&p, "later", "0 4 * * *");
    // Fake 00:50 CET, a fake hour per real second: the catch-up comes 1.2 s after the start.
    let clock = format!("{:.3}=2026-03-28T23:50:00Z*3600", unix_now());
    let daemon = start(&p, &clock);
    crate::support::wait_for("the 04:00 fire to finish", Duration::from_secs(30), || {
        p.exists("fired-later.txt")
            && done_fires(&p, "later") == 1
            && fires(&p, "skipped")
                .iter()
                .all(|(_, s)| s != "queued" && s != "running")
    });
    let log = stop(daemon);
    assert_eq!(
        fires(&p, "skipped"),
        [("2026-03-29T01:00:00Z".to_string(), "done".to_string())],
        "{log}"
    );
    assert_eq!(
        p.lines("fired-skipped.txt"),
        ["2026-03-29 2026-03-29T03:00:00+02:00"],
        "the day's instance ran, at the first minute after the jump"
    );
}

#[test]
fn a_fixed_time_the_clock_falls_back_over_fires_once_and_the_next_hour_still_fires() {
    let p = Project::new();
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z); 02:00 happens twice.
    berlin_daily(&p, "range", "0 1-3 * * *");
    // Fake 00:00 CEST, a fake hour per real second: the first fire comes 1 s after the start.
    let clock = format!("{:.3}=2026-10-24T22:00:00Z*3600", unix_now());
    let daemon = start(&p, &clock);
    crate::support::wait_for("the 03:00 CET fire to finish", Duration::from_secs(30), || {
        p.exists("fired-range.txt") && done_fires(&p, "range") == 3
    });
    let log = stop(daemon);
    let done = |t: &str| (t.to_string(), "done".to_string());
    assert_eq!(
        fires(&p, "range"),
        [
            done("2026-10-24T23:00:00Z"),
            done("2026-10-25T00:00:00Z"),
            done("2026-10-25T02:00:00Z")
        ],
        "01:00 and 02:00 CEST, 03:00 CET; not 02:00 CET (01:00Z)\n{log}"
    );
}

#[test]
fn an_hourly_pipeline_fires_once_an_hour_with_the_hour_of_each_fire_even_when_it_repeats() {
    let p = Project::new();
    p.pipeline("hourly", crate::hourly::HOURLY);
    // The same schedule without a time param: one instance a day, and a warning at load.
    p.pipeline(
        "daily",
        &crate::hourly::HOURLY
            .replace(
                "hour = { type = 'time', every = '1h' }",
                "day = { type = 'date', default = 'today' }",
            )
            .replace("{{hour}} $PLUMB_PARAM_HOUR >> hours.txt", "{{day}} >> days.txt"),
    );
    // Fake 01:30 CEST on 2026-10-25, a fake hour every two real seconds: the fires at 02:00
    // CEST, 02:00 CET (the clock falls back at 01:00Z) and 03:00 CET come 1, 3 and 5 s in.
    let clock = format!("{:.3}=2026-10-24T23:30:00Z*1800", unix_now());
    let daemon = start(&p, &clock);
    crate::support::wait_for("three hourly fires", Duration::from_secs(60), || {
        p.lines("hours.txt").len() >= 3 && done_fires(&p, "hourly") >= 3
    });
    let (log, errors) = stop_both(daemon);
    assert_eq!(p.lines("days.txt"), ["2026-10-25"], "{log}");
    assert!(
        errors.starts_with(
            "warning: the schedule fires more often than the instance changes\n --> pipelines/daily.toml:2:12\n"
        ),
        "{errors}"
    );
    let hours = p.lines("hours.txt");
    assert_eq!(
        hours[..3],
        [
            "2026-10-25T02:00+02:00 2026-10-25T02:00+02:00",
            "2026-10-25T02:00+01:00 2026-10-25T02:00+01:00",
            "2026-10-25T03:00+01:00 2026-10-25T03:00+01:00"
        ],
        "{log}"
    );
    let mut distinct = hours.clone();
    distinct.dedup();
    assert_eq!(distinct, hours, "each hour once: {log}");
    assert!(
        log.contains("fire    hourly hour=2026-10-25T02:00+01:00 for 2026-10-25 02:00 +01:00"),
        "{log}"
    );
}

#[test]
fn edited_and_new_pipeline_files_are_picked_up_without_a_restart() {
    let p = Project::new();
    every_minute(&p, "first", "latest");
    let child = start(&p, &timeline());
    std::thread::sleep(Duration::from_millis(1200));
    every_minute(&p, "second", "latest");
    std::thread::sleep(Duration::from_millis(2600));
    let log = stop(child);
    assert!(log.contains("loaded  second (* * * * *)"), "{log}");
    assert!(fires(&p, "second").iter().any(|(_, s)| s == "done"), "{log}");
}

#[test]
fn max_active_runs_queues_later_fires() {
    let p = Project::new();
    // Each run takes 2.5 real seconds; fires come every second; one run at a time.
    p.pipeline(
        "slow",
        "[pipeline]\nschedule = '* * * * *'\n[tasks.a]\ncommand = 'echo start {{scheduled_time}} $(date +%s.%N) >> j.txt; sleep 2.5; echo end {{scheduled_time}} $(date +%s.%N) >> j.txt'\n",
    );
    let child = start(&p, &timeline());
    std::thread::sleep(Duration::from_millis(4000));
    stop(child);
    let lines = p.lines("j.txt");
    let iv = crate::support::intervals(
        &lines
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} slow-{} {}", f[0], f[1], f[2])
            })
            .collect::<Vec<_>>(),
        "slow",
    );
    assert!(!iv.is_empty());
    assert_eq!(crate::support::max_overlap(&iv), 1, "{lines:?}");
}

const DAILY: &str = "[params]\nday = { type = 'date', default = 'yesterday' }\nregion = 'eu'\n\
    [tasks.a]\ncommand = 'echo {{day}} {{region}} >> days.txt; test {{day}} != 2026-11-03'\n";

#[test]
fn backfill_runs_each_date_once_continues_past_a_failure_and_a_rerun_runs_nothing_new() {
    let p = Project::new();
    p.pipeline("daily", DAILY);
    let out = p.plumb(&[
        "backfill",
        "daily",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-05",
        "--parallel",
        "2",
        "-p",
        "region=us",
    ]);
    assert_eq!(out.code, 1, "{}", out.all());
    let mut days = p.lines("days.txt");
    days.sort();
    assert_eq!(
        days,
        [
            "2026-11-01 us",
            "2026-11-02 us",
            "2026-11-03 us",
            "2026-11-04 us",
            "2026-11-05 us"
        ]
    );
    let table = out
        .stdout
        .split("\nbackfill daily by day: 5 dates, 1 not complete\n")
        .nth(1)
        .expect(&out.stdout);
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "2026-11-01",
            "2026-11-02",
            "2026-11-03",
            "2026-11-04",
            "2026-11-05"
        ],
        "oldest first"
    );
    assert!(table.contains("2026-11-03  FAILED (exit 1)"), "{table}");

    p.file("days.txt", "");
    let again = p.plumb(&[
        "backfill",
        "daily",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-05",
        "-p",
        "region=us",
    ]);
    assert_eq!(again.code, 1);
    assert_eq!(
        p.lines("days.txt"),
        ["2026-11-03 us"],
        "complete dates are skipped; the failed one runs again"
    );
    assert_eq!(
        again.stdout.matches("complete already, skipped").count(),
        4,
        "{}",
        again.stdout
    );
    assert_eq!(
        again.stdout.matches("complete (skipped)").count(),
        4,
        "{}",
        again.stdout
    );
}

#[test]
fn backfill_reverse_and_its_usage_errors() {
    let p = Project::new();
    p.pipeline("daily", &DAILY.replace("; test {{day}} != 2026-11-03", ""));
    let out = p.plumb(&[
        "backfill",
        "daily",
        "--from",
        "2026-02-27",
        "--to",
        "2026-03-01",
        "--reverse",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        p.lines("days.txt"),
        ["2026-03-01 eu", "2026-02-28 eu", "2026-02-27 eu"]
    );
    let again = p.plumb(&["backfill", "daily", "--from", "2026-02-27", "--to", "2026-03-01"]);
    assert_eq!(again.code, 0);
    assert_eq!(
        p.lines("days.txt").len(),
        3,
        "a rerun of a complete range runs nothing"
    );
    assert!(
        again.stdout.contains(": 0 to run, 3 complete"),
        "{}",
        again.stdout
    );
    let bad = p.plumb(&["backfill", "daily", "--from", "2026-03-02", "--to", "2026-03-01"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("--from 2026-03-02 is after --to 2026-03-01"),
        "{}",
        bad.stderr
    );
    let wrong = p.plumb(&[
        "backfill",
        "daily",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-01",
        "--over",
        "region",
    ]);
    assert_eq!(wrong.code, 2);
    assert_eq!(
        wrong.stderr,
        "error: param `region` is not a date or time param (give it `type = \"date\"` or `type = \"time\"`)\n"
    );
}

#[test]
fn backfill_over_names_the_param_to_vary_and_the_old_param_spelling_still_works() {
    let p = Project::new();
    p.pipeline(
        "two",
        "[params]\nday = { type = 'date', default = '2026-05-05' }\nsince = { type = 'date', default = '2026-01-01' }\n\
         [tasks.a]\ncommand = 'echo {{day}} {{since}} >> days.txt'\n",
    );
    let ambiguous = p.plumb(&["backfill", "two", "--from", "2026-03-01", "--to", "2026-03-01"]);
    assert_eq!(ambiguous.code, 2);
    assert_eq!(
        ambiguous.stderr,
        "error: pipeline `two` has several date params (day, since); choose one with --over\n"
    );
    let out = p.plumb(&[
        "backfill",
        "two",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
        "--over",
        "since",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        p.lines("days.txt"),
        ["2026-05-05 2026-03-01", "2026-05-05 2026-03-02"]
    );
    let old = p.plumb(&[
        "backfill",
        "two",
        "--from",
        "2026-03-03",
        "--to",
        "2026-03-03",
        "--param",
        "since",
    ]);
    assert_eq!(old.code, 0, "{}", old.all());
    assert!(
        old.stdout
            .starts_with("backfill two since 2026-03-03 .. 2026-03-03: 1 to run"),
        "{}",
        old.stdout
    );
    let help = p.plumb(&["backfill", "--help"]);
    assert!(help.stdout.contains("      --over <NAME>"), "{}", help.stdout);
    assert!(
        !help.stdout.contains("--param"),
        "the old spelling is hidden: {}",
        help.stdout
    );
}

#[test]
fn sigterm_interrupts_a_running_fire_and_a_restart_resumes_it() {
    let p = Project::new();
    p.pipeline(
        "long",
        "[pipeline]\nschedule = '0 * * * *'\n[tasks.wait]\ncommand = 'echo started >> log.txt; while test ! -f release; do sleep 0.05; done'\n\
         [tasks.after]\ncommand = 'echo after >> log.txt'\nrequires = ['wait']\n",
    );
    // Fake 00:59:00: the 01:00 fire comes a real second after the start. A scheduler that starts
    // after it never fires it (a new schedule starts now), so the margin must outlast a start
    // on a busy machine; a sixth of a second did not.
    let clock = format!("{:.3}=2026-01-01T00:59:00Z*60", unix_now());
    let daemon = start(&p, &clock);
    crate::support::wait_for("the fire to start its task", Duration::from_secs(10), || {
        p.exists("log.txt")
    });
    let log = stop(daemon);
    assert!(
        log.contains("interrupted long fire 2026-01-01 01:00 +00:00 (exit 143)"),
        "{log}"
    );
    assert_eq!(
        fires(&p, "long"),
        [("2026-01-01T01:00:00Z".to_string(), "interrupted".to_string())]
    );
    let state: String = p
        .db()
        .query_row("SELECT state FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "interrupted");

    p.file("release", "");
    let daemon = start(&p, &clock);
    crate::support::wait_for("the resumed fire to finish", Duration::from_secs(10), || {
        fires(&p, "long").first().is_some_and(|(_, s)| s == "done")
    });
    let log = stop(daemon);
    assert!(log.contains("resume  long fire 2026-01-01 01:00 +00:00"), "{log}");
    assert_eq!(p.lines("log.txt"), ["started", "started", "after"]);
}

/// A bad file dropped into pipelines/ of a running scheduler takes a while to load (thousands
/// of errors); the fires that came due meanwhile are late, not "missed while down": the
/// scheduler was up.
#[test]
fn a_slow_load_delays_fires_but_never_counts_as_downtime() {
    let p = Project::new();
    every_minute(&p, "none", "none");
    let mut daemon = start(&p, &timeline());
    // The bad file's report is larger than a pipe holds: read it as it comes.
    let mut stderr = daemon.0.as_mut().unwrap().stderr.take().unwrap();
    let report = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    // Each fire is recorded whether or not its instance had anything left to run.
    let recorded = || {
        if !p.exists("state/plumb.db") {
            return 0;
        }
        p.db()
            .query_row("SELECT COUNT(*) FROM fires WHERE pipeline = 'none'", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_or(0)
    };
    crate::support::wait_for("the first fire", Duration::from_secs(20), || recorded() >= 1);
    let bad: String = (0..5000)
        .map(|i| format!("[tasks.t{i}]\ncommand = 'true'\ntimout = '5m'\n"))
        .collect();
    p.pipeline("bad", &bad);
    let before = recorded();
    crate::support::wait_for("fires after the bad file", Duration::from_secs(60), || {
        recorded() >= before + 3
    });
    let out = stop(daemon);
    let report = report.join().unwrap();
    assert!(
        report.contains("unknown key `timout` in task `t4999`"),
        "every error of the bad file is reported"
    );
    assert!(
        out.contains("invalid pipelines/bad.toml: not scheduled until it is fixed"),
        "{out}"
    );
    assert!(!out.contains("missed while down"), "{out}");
    let statuses: Vec<String> = fires(&p, "none").into_iter().map(|(_, s)| s).collect();
    assert!(
        statuses.iter().all(|s| s != "skipped"),
        "no fire of a running scheduler is skipped: {statuses:?}"
    );
}
