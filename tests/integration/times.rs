//! One clock on screen: every time a person reads (run lines, `status`, `history`, log headers,
//! `alerts list`, the e-mail, the lock holder) is in the pipeline's zone with its offset,
//! whatever zone the machine is in; JSON keeps RFC 3339.
//!
//! The pipeline is in Asia/Kolkata (+05:30 all year) and plumb runs with TZ=America/New_York,
//! so a time in the machine's zone or in UTC cannot pass for it.

use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveTime, Utc};

use crate::smtp::MailServer;
use crate::support::{Output, Project, run, wait_for};

const KOLKATA: &str = "[pipeline]\ntimezone = 'Asia/Kolkata'\nworkers = 1\n\
    [alerts]\nemail = ['oncall@example.com']\n\
    [tasks.a]\ncommand = 'echo a'\n[tasks.b]\ncommand = 'exit 3'\nrequires = ['a']\n";

fn plumb(p: &Project, args: &[&str]) -> Output {
    let mut c = p.cmd(args);
    c.env("TZ", "America/New_York");
    run(c)
}

/// A window of real time around what a test did.
struct Window(DateTime<Utc>, DateTime<Utc>);

impl Window {
    /// `shown` is `YYYY-MM-DD HH:MM:SS +05:30` and names an instant within the window (shown
    /// times are cut to the second).
    fn holds(&self, shown: &str) {
        let t = DateTime::parse_from_str(shown, "%Y-%m-%d %H:%M:%S %:z")
            .unwrap_or_else(|e| panic!("{shown:?} is not YYYY-MM-DD HH:MM:SS +HH:MM: {e}"));
        assert_eq!(
            t.offset(),
            &FixedOffset::east_opt(5 * 3600 + 1800).unwrap(),
            "{shown}"
        );
        self.contains(t.with_timezone(&Utc), shown);
    }

    /// `shown` is `HH:MM:SS +05:30`, a run line's clock.
    fn holds_clock(&self, shown: &str) {
        let (time, offset) = shown.split_once(' ').unwrap();
        assert_eq!(offset, "+05:30", "{shown}");
        let time = NaiveTime::parse_from_str(time, "%H:%M:%S").unwrap();
        let tz = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        let found = [self.0, self.1].iter().any(|edge| {
            let day = edge.with_timezone(&tz).date_naive();
            let t = day
                .and_time(time)
                .and_local_timezone(tz)
                .unwrap()
                .with_timezone(&Utc);
            self.0 - chrono::Duration::seconds(1) <= t && t <= self.1
        });
        assert!(found, "{shown} is not within {}..{}", self.0, self.1);
    }

    fn contains(&self, t: DateTime<Utc>, shown: &str) {
        assert!(
            self.0 - chrono::Duration::seconds(1) <= t && t <= self.1,
            "{shown} is not within {}..{}",
            self.0,
            self.1
        );
    }
}

/// The same instant as a stored RFC 3339 time, shown as a person reads it in Kolkata.
fn in_kolkata(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?} is not RFC 3339: {e}"))
        .with_timezone(&FixedOffset::east_opt(5 * 3600 + 1800).unwrap())
        .format("%Y-%m-%d %H:%M:%S +05:30")
        .to_string()
}

#[test]
fn every_time_a_person_reads_is_in_the_pipelines_zone_with_its_offset() {
    let server = MailServer::start();
    let p = Project::new();
    p.pipeline("k", KOLKATA);
    let before = Utc::now();
    let out = plumb(&p, &["run", "k"]);
    let w = Window(before, Utc::now());
    assert_eq!(out.code, 1, "{}", out.all());
    let run_id: String = p
        .db()
        .query_row("SELECT run_id FROM runs", [], |r| r.get(0))
        .unwrap();

    // Run lines: the clock, the offset, then what happened.
    let lines: Vec<&str> = out.stdout.lines().take_while(|l| !l.is_empty()).collect();
    let log = format!("state/logs/k/{run_id}/b.1.log");
    let events: Vec<String> = lines
        .iter()
        .map(|l| {
            w.holds_clock(&l[..15]);
            l[16..].replace(&log, "LOG").replace(&run_id, "RUN")
        })
        .map(|l| l.replacen(" (0.0s)", " (DUR)", 1))
        .collect();
    assert_eq!(
        events,
        [
            "run RUN: k: 2 to run, 0 done before, 1 worker",
            "start   a",
            "done    a (DUR)",
            "start   b",
            "FAILED  b: exit 3 (DUR); log: LOG",
        ]
    );

    // The log header, as `logs` and the summary show it.
    let header = p.read(&log).lines().next().unwrap().to_string();
    let prefix = format!("# plumb: b attempt 1/1, run {run_id}, ");
    assert!(header.starts_with(&prefix), "{header}");
    w.holds(&header[prefix.len()..]);
    assert!(
        out.stdout.contains(&format!("    | {header}\n")),
        "{}",
        out.stdout
    );

    // status: the finish time as the JSON's instant, in the zone.
    let json: serde_json::Value =
        serde_json::from_str(&plumb(&p, &["status", "k", "--json"]).stdout).unwrap();
    let finished: Vec<String> = json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| in_kolkata(t["finished_at"].as_str().unwrap()))
        .collect();
    let status = plumb(&p, &["status", "k"]).stdout;
    let rows: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("  a ") || l.starts_with("  b "))
        .collect();
    assert_eq!(rows.len(), 2, "{status}");
    for (row, at) in rows.iter().zip(&finished) {
        assert!(row.ends_with(&format!("  {at}")), "{row} should end with {at}");
        w.holds(at);
    }

    // history: the start time likewise.
    let runs: serde_json::Value = serde_json::from_str(&plumb(&p, &["history", "--json"]).stdout).unwrap();
    let started = in_kolkata(runs[0]["started_at"].as_str().unwrap());
    w.holds(&started);
    let history = plumb(&p, &["history"]).stdout;
    let row = history.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&format!("{run_id:<24}  {:<28}  {started}  ", "k")),
        "{history}"
    );

    // The alert waits in the outbox (no mail server was set); its queue time is shown alike.
    let list = plumb(&p, &["alerts", "list"]).stdout;
    let queued = list.lines().nth(1).unwrap();
    let at = queued
        .strip_prefix("  #1 ")
        .and_then(|r| r.strip_suffix(" failure [k] to oncall@example.com"))
        .unwrap_or_else(|| panic!("{list}"));
    w.holds(at);

    // The e-mail.
    let mut c = p.cmd(&["alerts", "flush"]);
    c.env("TZ", "America/New_York")
        .env("PLUMB_SMTP_URL", format!("smtp://127.0.0.1:{}", server.port));
    assert_eq!(run(c).code, 0);
    let mails = server.wait_for(1, Duration::from_secs(10));
    let body = mails[0].body();
    let field = |name: &str| -> String {
        let line = body
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {body}"));
        line[..26].to_string()
    };
    assert_eq!(field("started: "), started);
    w.holds(&field("ended:   "));
}

#[test]
fn a_second_runner_names_the_holders_start_in_the_pipelines_zone() {
    let p = Project::new();
    p.pipeline(
        "k",
        "[pipeline]\ntimezone = 'Asia/Kolkata'\n\
         [tasks.slow]\ncommand = 'touch started; while test ! -f release; do sleep 0.05; done'\n",
    );
    let before = Utc::now();
    let mut first = p.cmd(&["run", "k"]);
    first.env("TZ", "America/New_York").stdout(Stdio::null());
    let mut first = first.spawn().unwrap();
    wait_for("the first run to start", Duration::from_secs(10), || {
        p.exists("started")
    });
    let w = Window(before, Utc::now());
    let second = plumb(&p, &["run", "k"]);
    p.file("release", "");
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(second.code, 3, "{}", second.all());
    let holder = format!("pid {}, started ", first.id());
    let at = second
        .stderr
        .split_once(&holder)
        .map(|(_, rest)| &rest[..26])
        .unwrap_or_else(|| panic!("{}", second.stderr));
    w.holds(at);
}
