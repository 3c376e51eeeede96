//! Alerts: one clear e-mail per failed run, SLA misses while the task runs, recovery, and an
//! outbox that loses nothing when the mail server is down. Against a real SMTP server.

use std::process::Stdio;
use std::time::Duration;

use crate::smtp::{MailServer, free_port};
use crate::support::{Output, Project, run};

const TWO_FAIL: &str = "[alerts]\nemail = ['oncall@example.com', 'data@example.com']\n\
    [tasks.extract]\ncommand = 'echo extracted'\n\
    [tasks.load]\ncommand = 'echo \"ERROR: warehouse refused row 17\" >&2; exit 3'\nrequires = ['extract']\nretries = 1\nretry_delay = '50ms'\n\
    [tasks.verify]\ncommand = 'test -f fixed'\n\
    [tasks.report]\ncommand = 'echo report'\nrequires = ['load']\n";

/// Every alert of the project is sent, so the server holds all it will get: it stores a message
/// before acknowledging it, and plumb marks an alert sent only after the acknowledgement. The
/// event to wait for is the plumb process's exit, not a pause.
fn nothing_queued(p: &Project) {
    assert_eq!(
        p.count("SELECT COUNT(*) FROM alerts WHERE status != 'sent'"),
        0,
        "{}",
        p.plumb(&["alerts", "list"]).stdout
    );
}

fn with_smtp(p: &Project, port: u16, args: &[&str]) -> Output {
    let mut c = p.cmd(args);
    c.env("PLUMB_SMTP_URL", format!("smtp://127.0.0.1:{port}"))
        .env("PLUMB_ALERT_FROM", "plumb@test.example");
    run(c)
}

/// A project whose one task fails and alerts, trusting `server`'s private CA.
fn failing_project_trusting(server: &MailServer) -> Project {
    let p = Project::new();
    p.file("ca.pem", server.ca_pem.as_deref().unwrap());
    p.pipeline(
        "t",
        "[alerts]\nemail = ['oncall@example.com']\n[tasks.a]\ncommand = 'exit 1'\n",
    );
    p
}

/// `plumb ARGS` in `p`, sending mail to `url` with STARTTLS required and `p`'s ca.pem trusted.
fn over_tls(p: &Project, args: &[&str], url: String) -> std::process::Command {
    let mut c = p.cmd(args);
    c.env("PLUMB_SMTP_URL", format!("{url}?tls=required"))
        .env("PLUMB_SMTP_CA_FILE", p.path().join("ca.pem"));
    c
}

#[test]
fn a_run_with_two_failed_tasks_sends_exactly_one_email_naming_both() {
    let server = MailServer::start();
    let p = Project::new();
    p.pipeline("etl", TWO_FAIL);
    let out = with_smtp(&p, server.port, &["run", "etl"]);
    assert_eq!(out.code, 1, "{}", out.all());
    nothing_queued(&p);
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "one e-mail per run, not one per task: {mails:?}");
    let m = &mails[0];
    assert_eq!(m.subject(), "[plumb] etl FAILED: 2 failed, 1 blocked");
    assert_eq!(m.to, ["oncall@example.com", "data@example.com"]);
    let body = m.body();
    assert!(body.contains("load: exit 3 after 2 attempts"), "{body}");
    assert!(body.contains("verify: exit 1 after 1 attempt"), "{body}");
    assert!(
        body.contains("  | ERROR: warehouse refused row 17"),
        "a line from the failed log: {body}"
    );
    assert!(
        body.contains("BLOCKED (1)") && body.contains("  report  <- load"),
        "{body}"
    );
    assert!(
        body.contains("SUCCEEDED in this run: 1") && body.contains("  extract"),
        "{body}"
    );
    assert!(body.contains("TO RESUME") && body.contains(" run etl"), "{body}");
    assert!(
        body.contains("\nhost:    ") && body.contains("\nrun:     ") && body.contains("\nended:   "),
        "{body}"
    );
    assert_eq!(p.count("SELECT COUNT(*) FROM alerts WHERE status = 'sent'"), 1);
}

#[test]
fn nothing_is_sent_for_a_successful_run_by_default() {
    let server = MailServer::start();
    let p = Project::new();
    p.pipeline(
        "ok",
        "[alerts]\nemail = ['oncall@example.com']\n[tasks.a]\ncommand = 'true'\n",
    );
    assert_eq!(with_smtp(&p, server.port, &["run", "ok"]).code, 0);
    assert_eq!(p.count("SELECT COUNT(*) FROM alerts"), 0);
    assert!(server.mails().is_empty());
}

#[test]
fn success_and_recovery_when_selected() {
    let server = MailServer::start();
    let p = Project::new();
    p.pipeline(
        "r",
        "[alerts]\nemail = ['oncall@example.com']\non = ['failure', 'recovery']\n[tasks.a]\ncommand = 'test -f fixed'\n",
    );
    assert_eq!(with_smtp(&p, server.port, &["run", "r"]).code, 1);
    p.file("fixed", "");
    assert_eq!(with_smtp(&p, server.port, &["run", "r"]).code, 0);
    let mails = server.wait_for(2, Duration::from_secs(10));
    let subjects: Vec<String> = mails.iter().map(|m| m.subject()).collect();
    assert_eq!(
        subjects,
        [
            "[plumb] r FAILED: 1 failed, 0 blocked",
            "[plumb] r RECOVERED: all tasks done"
        ]
    );
    // A further successful run is no recovery.
    p.plumb(&["reset", "r", "a"]);
    assert_eq!(with_smtp(&p, server.port, &["run", "r"]).code, 0);
    nothing_queued(&p);
    assert_eq!(server.mails().len(), 2);

    p.pipeline(
        "s",
        "[alerts]\nemail = ['oncall@example.com']\non = ['success']\n[tasks.a]\ncommand = 'true'\n",
    );
    assert_eq!(with_smtp(&p, server.port, &["run", "s"]).code, 0);
    let mails = server.wait_for(3, Duration::from_secs(10));
    assert_eq!(mails[2].subject(), "[plumb] s succeeded: 1 tasks done");
}

#[test]
fn sla_miss_arrives_while_the_task_is_still_running() {
    let server = MailServer::start();
    let p = Project::new();
    p.pipeline(
        "sla",
        "[alerts]\nemail = ['oncall@example.com']\non = ['sla_miss']\n\
         [tasks.slow]\ncommand = 'echo working; while test ! -f release; do sleep 0.05; done'\nsla = '300ms'\n",
    );
    let mut c = p.cmd(&["run", "sla"]);
    c.env("PLUMB_SMTP_URL", format!("smtp://127.0.0.1:{}", server.port))
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mails = server.wait_for(1, Duration::from_secs(15));
    assert_eq!(mails.len(), 1, "the SLA e-mail comes while the task runs");
    assert!(child.try_wait().unwrap().is_none(), "the run is still going");
    let m = &mails[0];
    assert!(
        m.subject().starts_with("[plumb] sla SLA MISSED: slow running "),
        "{}",
        m.subject()
    );
    assert!(m.body().contains("past its SLA of 0.3s"), "{}", m.body());
    assert!(m.body().contains("  | working"), "{}", m.body());
    p.file("release", "");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    nothing_queued(&p);
    assert_eq!(server.mails().len(), 1, "once per attempt series");
    let missed: Option<String> = p
        .db()
        .query_row("SELECT sla_missed_at FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert!(missed.is_some());
}

#[test]
fn retry_alerts_when_selected() {
    let server = MailServer::start();
    let p = Project::new();
    p.pipeline(
        "rt",
        "[alerts]\nemail = ['oncall@example.com']\non = ['retry']\n\
         [tasks.flaky]\ncommand = 'test $PLUMB_ATTEMPT -ge 2'\nretries = 2\nretry_delay = '50ms'\n",
    );
    assert_eq!(with_smtp(&p, server.port, &["run", "rt"]).code, 0);
    let mails = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].subject(),
        "[plumb] rt RETRY: flaky attempt 1/3 failed (exit 1)"
    );
}

#[test]
fn smtp_down_keeps_the_alert_and_the_next_invocation_delivers_it_once() {
    let port = free_port();
    let p = Project::new();
    p.pipeline("etl", TWO_FAIL);
    p.pipeline("other", "[tasks.a]\ncommand = 'true'\n");
    let out = with_smtp(&p, port, &["run", "etl"]);
    assert_eq!(out.code, 1, "the run's own exit code: {}", out.all());
    assert!(out.stderr.contains("1 alert could not be sent"), "{}", out.stderr);
    let listed = p.plumb(&["alerts", "list"]);
    assert!(
        listed.stdout.contains("1 alert waiting to be sent"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("[plumb] etl FAILED: 2 failed, 1 blocked"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("1 attempt, last error: smtp://127.0.0.1:"),
        "{}",
        listed.stdout
    );

    let server = MailServer::start_at(port);
    // Any later run delivers what is queued (the first retry is due at once).
    assert_eq!(with_smtp(&p, port, &["run", "other"]).code, 0);
    let mails = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject(), "[plumb] etl FAILED: 2 failed, 1 blocked");
    assert_eq!(with_smtp(&p, port, &["run", "other"]).code, 0);
    assert_eq!(with_smtp(&p, port, &["alerts", "flush"]).code, 0);
    nothing_queued(&p);
    assert_eq!(server.mails().len(), 1, "none duplicated");
    assert!(p.plumb(&["alerts", "list"]).stdout.contains("no alerts waiting"));
}

#[test]
fn without_smtp_configured_alerts_wait_in_the_outbox_with_one_warning() {
    let p = Project::new();
    p.pipeline("etl", TWO_FAIL);
    let out = p.plumb(&["run", "etl"]);
    assert_eq!(out.code, 1);
    let warnings = out.stderr.matches("PLUMB_SMTP_URL is not set").count();
    assert_eq!(warnings, 1, "{}", out.stderr);
    assert!(p.plumb(&["alerts", "list"]).stdout.contains("not tried yet"));
    let none = p.plumb(&["alerts", "flush"]);
    assert_eq!(none.code, 2);
    let server = MailServer::start();
    let flushed = with_smtp(&p, server.port, &["alerts", "flush"]);
    assert_eq!(flushed.code, 0, "{}", flushed.all());
    assert!(
        flushed.stdout.contains("sent 1 alert via smtp://127.0.0.1:"),
        "{}",
        flushed.stdout
    );
    assert_eq!(server.wait_for(1, Duration::from_secs(5)).len(), 1);
}

#[test]
fn starttls_with_a_private_ca_and_auth_and_the_password_never_shows() {
    let secret = "s3cret-Pa55";
    let server = MailServer::start_tls_auth(secret);
    let p = failing_project_trusting(&server);
    let url = format!("smtp://plumb@localhost:{}", server.port);
    let mut c = over_tls(&p, &["--log-format", "json", "run", "t"], url.clone());
    c.env("PLUMB_SMTP_PASSWORD", secret);
    let out = run(c);
    assert_eq!(out.code, 1, "{}", out.all());
    let mails = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(
        mails.len(),
        1,
        "delivered over STARTTLS with AUTH: {}",
        out.stderr
    );
    assert!(!out.all().contains(secret));
    let db = std::fs::read(p.path().join("state/plumb.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&db).contains(secret),
        "the password is not stored"
    );

    // A wrong password is refused by the server and the alert stays queued.
    p.plumb(&["reset", "t", "a"]);
    let mut c = over_tls(&p, &["run", "t"], url);
    c.env("PLUMB_SMTP_PASSWORD", "wrong");
    let out = run(c);
    assert!(out.stderr.contains("could not be sent"), "{}", out.stderr);
    assert!(!out.all().contains("wrong"), "{}", out.all());
    assert_eq!(server.mails().len(), 1);
}

#[test]
fn project_wide_alert_settings_apply_and_a_pipeline_overrides_them() {
    let server = MailServer::start();
    let p = Project::new();
    p.file(
        "plumb.toml",
        "[alerts]\nemail = ['team@example.com']\non = ['failure']\n",
    );
    p.pipeline("inherits", "[tasks.a]\ncommand = 'exit 1'\n");
    p.pipeline(
        "own",
        "[alerts]\nemail = ['own@example.com']\n[tasks.a]\ncommand = 'exit 1'\n",
    );
    with_smtp(&p, server.port, &["run", "inherits"]);
    with_smtp(&p, server.port, &["run", "own"]);
    let mails = server.wait_for(2, Duration::from_secs(10));
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].to, ["team@example.com"]);
    assert_eq!(mails[1].to, ["own@example.com"]);
}

/// Interop with an independent server: Debian's python3-aiosmtpd, which `.ci/run` starts and
/// announces as PLUMB_TEST_AIOSMTPD=PORT:MAILDIR.
#[test]
#[ignore = "needs python3-aiosmtpd, which .ci/run starts (PLUMB_TEST_AIOSMTPD)"]
fn delivery_to_an_independent_server_aiosmtpd() {
    let spec = std::env::var("PLUMB_TEST_AIOSMTPD")
        .expect("PLUMB_TEST_AIOSMTPD=PORT:MAILDIR: .ci/run starts python3-aiosmtpd and sets it");
    let (port, maildir) = spec.split_once(':').expect("PORT:MAILDIR");
    let p = Project::new();
    let name = format!("interop{}", std::process::id());
    p.pipeline(
        &name,
        "[alerts]\nemail = ['oncall@example.com']\n[tasks.a]\ncommand = 'echo interop-log-line; exit 4'\n",
    );
    let out = with_smtp(&p, port.parse().unwrap(), &["run", &name]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(!out.stderr.contains("could not be sent"), "{}", out.stderr);
    let subject = format!("Subject: [plumb] {name} FAILED: 1 failed, 0 blocked");
    let found: Vec<String> = std::fs::read_dir(std::path::Path::new(maildir).join("new"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|m| m.contains(&subject))
        .collect();
    assert_eq!(found.len(), 1, "exactly one message in {maildir}");
    assert!(found[0].contains("interop-log-line"), "{}", found[0]);
}

#[test]
fn a_password_written_into_the_url_is_used_but_never_shown_or_stored() {
    let secret = "in-url-s3cret";
    let server = MailServer::start_tls_auth(secret);
    let p = failing_project_trusting(&server);
    let url = format!("smtp://plumb:{secret}@localhost:{}", server.port);
    let out = run(over_tls(&p, &["--log-format", "json", "run", "t"], url));
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        server.wait_for(1, Duration::from_secs(10)).len(),
        1,
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(secret));
    let listed = p.plumb(&["alerts", "list"]);
    assert!(!listed.all().contains(secret));
    let db = std::fs::read(p.path().join("state/plumb.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(secret));
}

/// A tmpfs of `size` mounted on `dir` for as long as it lives. Mounting needs root: the tests
/// that use it are ignored by a plain `cargo test` and run by `.ci/run` (`--include-ignored`),
/// where failing to mount fails the test.
struct SmallDisk(std::path::PathBuf);

/// Why the full-disk tests are ignored by default.
const NEEDS_ROOT: &str = "needs root to mount a tmpfs; .ci/run runs it";

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot mount a tmpfs on {}: {NEEDS_ROOT}", dir.display());
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A project whose state directory is a 512 KiB disk, with a first task that fills it (on its
/// first run only): that task's marker, and the run's end with its failure alert, cannot be
/// written.
fn filling_project() -> (Project, SmallDisk) {
    let p = Project::new();
    let disk = SmallDisk::mount(&p.path().join("state"), "512k");
    p.pipeline(
        "p",
        "[alerts]\nemail = ['oncall@example.com']\n\
         [tasks.fill]\ncommand = '[ -e once ] || { touch once; head -c 2000000 /dev/zero > state/filler 2>/dev/null; }; echo fill >> ran.txt'\n\
         [tasks.after]\ncommand = 'echo after >> ran.txt'\nrequires = ['fill']\n",
    );
    (p, disk)
}

#[test]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it"]
fn a_state_disk_that_fills_up_still_ends_the_run_with_its_summary_and_its_alert() {
    let server = MailServer::start();
    let (p, _disk) = filling_project();
    let out = with_smtp(&p, server.port, &["run", "p"]);
    assert_eq!(out.code, 5, "plumb could not keep its state: {}", out.all());
    assert!(
        out.stdout
            .contains("succeeded, but its marker could not be recorded")
            && out.stdout.contains("database or disk is full"),
        "{}",
        out.all()
    );
    // The summary, with the command that resumes, as after any failed run.
    assert!(out.stdout.contains("resume with:"), "{}", out.all());
    assert!(
        out.stderr.contains("the end of this run could not be recorded")
            && out
                .stderr
                .contains("the failure alert could not be queued, so it was sent directly"),
        "{}",
        out.all()
    );
    let mails = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].subject().starts_with("[plumb] p FAILED"),
        "{}",
        mails[0].subject()
    );

    // With room again, the next run runs both again (no marker was recorded), and ends clean.
    std::fs::remove_file(p.path().join("state/filler")).unwrap();
    let out = with_smtp(&p, server.port, &["run", "p"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.lines("ran.txt"), ["fill", "after", "fill", "after"]);
    assert_eq!(p.markers("p"), ["after", "fill"]);
    assert_eq!(
        p.count("SELECT count(*) FROM runs WHERE outcome = 'interrupted'"),
        1
    );
    let check: String = p
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let out = with_smtp(&p, server.port, &["run", "p"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.lines("ran.txt").len(), 4, "a done instance runs nothing");
}

#[test]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it"]
fn an_alert_that_can_be_neither_queued_nor_sent_is_named_on_stderr() {
    // No mail server at all, then one that does not answer: the failure alert of a run whose
    // end could not be recorded is not dropped in silence.
    let (p, _disk) = filling_project();
    let out = p.plumb(&["run", "p"]);
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(out.stdout.contains("resume with:"), "{}", out.all());
    assert!(
        out.stderr.contains(
            "the failure alert could not be queued and PLUMB_SMTP_URL is not set: [plumb] p FAILED"
        ),
        "{}",
        out.all()
    );

    let (p, _disk) = filling_project();
    let out = with_smtp(&p, free_port(), &["run", "p"]);
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(
        out.stderr
            .contains("the failure alert could neither be queued nor sent (smtp://127.0.0.1:")
            && out.stderr.contains("): [plumb] p FAILED"),
        "{}",
        out.all()
    );
}

#[test]
fn plumbs_smtp_secrets_never_reach_a_task_its_log_or_the_failure_email() {
    let secret = "pw-in-env-s3cret";
    let server = MailServer::start_tls_auth(secret);
    let p = Project::new();
    p.file("ca.pem", server.ca_pem.as_deref().unwrap());
    p.pipeline(
        "t",
        "[alerts]\nemail = ['oncall@example.com']\n\
         [tasks.dump]\ncommand = 'env > dumped-env; env; test -f fixed'\ncheck = 'env > check-env'\n\
         [tasks.own]\ncommand = 'env > own-env'\nenv = { PLUMB_SMTP_URL = 'smtp://relay.example:25' }\n",
    );
    let url = format!("smtp://plumb@localhost:{}", server.port);
    let mut c = over_tls(&p, &["run", "t"], url);
    c.env("PLUMB_SMTP_PASSWORD", secret)
        .env("PLUMB_SERVE_TOKEN", "serve-t0ken");
    let out = run(c);
    assert_eq!(out.code, 1, "{}", out.all());
    let mails = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1, "{}", out.all());

    let env = p.read("dumped-env");
    assert!(
        env.contains("PLUMB_TASK=dump"),
        "the task did print its environment: {env}"
    );
    for name in ["PLUMB_SMTP_URL=", "PLUMB_SMTP_PASSWORD=", "PLUMB_SERVE_TOKEN="] {
        assert!(!env.contains(name), "{name} reached the task: {env}");
    }
    // A task's own `env` still applies, secrets' names included.
    assert!(
        p.read("own-env")
            .contains("PLUMB_SMTP_URL=smtp://relay.example:25\n")
    );

    let log = p.plumb(&["logs", "t", "dump"]);
    let db = String::from_utf8_lossy(&std::fs::read(p.path().join("state/plumb.db")).unwrap()).into_owned();
    let body = mails[0].body();
    assert!(
        body.contains("PLUMB_TASK=dump"),
        "the log tail is in the e-mail: {body}"
    );
    for s in [secret, "serve-t0ken"] {
        assert!(!out.all().contains(s), "{s} in the run's output");
        assert!(!log.all().contains(s), "{s} in the task's log");
        assert!(!body.contains(s), "{s} in the failure e-mail");
        assert!(!db.contains(s), "{s} in state/plumb.db");
    }

    // The check runs under the same environment once the task passes.
    p.file("fixed", "");
    let mut c = p.cmd(&["run", "t"]);
    c.env("PLUMB_SMTP_PASSWORD", secret);
    assert_eq!(run(c).code, 0);
    let check_env = p.read("check-env");
    assert!(check_env.contains("PLUMB_TASK=dump"), "{check_env}");
    assert!(!check_env.contains("PLUMB_SMTP_PASSWORD="), "{check_env}");
}

#[test]
fn a_url_password_with_plus_and_ampersand_logs_in_as_written() {
    let secret = "p+w&rd";
    let server = MailServer::start_tls_auth(secret);
    let p = failing_project_trusting(&server);
    let url = format!("smtp://plumb:{secret}@localhost:{}", server.port);
    let out = run(over_tls(&p, &["run", "t"], url));
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        server.wait_for(1, Duration::from_secs(10)).len(),
        1,
        "the server accepted the password: {}",
        out.stderr
    );
    assert!(!out.all().contains(secret));
}

/// A server that accepts connections and sends its greeting one byte at a time, a third of a
/// second apart, never finishing it: each read is answered well within a command timeout.
fn dripping_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                use std::io::Write;
                while conn.write_all(b"2").is_ok() {
                    std::thread::sleep(Duration::from_millis(300));
                }
            });
        }
    });
    port
}

#[test]
fn a_flush_against_a_dripping_server_makes_one_bounded_attempt_and_keeps_the_rest_queued() {
    let p = Project::new();
    p.pipeline(
        "p",
        "[alerts]\nemail = ['oncall@example.com']\n[tasks.t]\ncommand = 'exit 1'\n",
    );
    for _ in 0..4 {
        assert_eq!(p.plumb(&["run", "p"]).code, 1);
    }
    assert_eq!(p.count("SELECT COUNT(*) FROM alerts WHERE status != 'sent'"), 4);
    let port = dripping_server();
    let mut c = p.cmd(&["alerts", "flush"]);
    c.env("PLUMB_SMTP_URL", format!("smtp://127.0.0.1:{port}"))
        .env("PLUMB_SMTP_TIMEOUT", "1s");
    let out = run(c);
    assert_eq!(out.code, 1, "{}", out.all());
    let server = format!("smtp://127.0.0.1:{port}");
    let why = "the server did not finish the exchange within 3s";
    assert_eq!(
        out.stdout,
        format!(
            "sent 0 alerts via {server}\n  \
             not sent #1 [plumb] p FAILED: 1 failed, 0 blocked: {server}: {why}\n  \
             3 more alerts left queued untried: {server} failed: {why}\n"
        )
    );
    let tries: Vec<i64> = {
        let db = p.db();
        let mut stmt = db
            .prepare("SELECT attempts FROM alerts WHERE status != 'sent' ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(tries, [1, 0, 0, 0], "only the first was tried; none is lost");
    let bad = {
        let mut c = p.cmd(&["alerts", "flush"]);
        c.env("PLUMB_SMTP_URL", &server).env("PLUMB_SMTP_TIMEOUT", "soon");
        run(c)
    };
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert_eq!(
        bad.stderr,
        "error: PLUMB_SMTP_TIMEOUT \"soon\" is not a duration; write e.g. 10s or 1m\n"
    );
}

/// An alert queued with an address no mailer can parse (written before validate refused such
/// addresses) is reported and kept, but never tried again, instead of waiting forever.
#[test]
fn an_alert_that_can_never_be_delivered_is_reported_once_and_not_retried() {
    let p = Project::new();
    p.pipeline(
        "p",
        "[alerts]\nemail = ['oncall@example.com']\n[tasks.t]\ncommand = 'exit 1'\n",
    );
    assert_eq!(p.plumb(&["run", "p"]).code, 1);
    p.db()
        .execute(
            "UPDATE alerts SET recipients = '[\"a@x.example, b@y.example\"]'",
            [],
        )
        .unwrap();
    let server = MailServer::start();
    let out = with_smtp(&p, server.port, &["alerts", "flush"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let first = out.stdout.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        first.starts_with(
            "  not sent #1 [plumb] p FAILED: 1 failed, 0 blocked: can never be delivered: recipient \"a@x.example, b@y.example\": "
        ),
        "{}",
        out.stdout
    );
    let listed = p.plumb(&["alerts", "list"]);
    assert!(
        listed.stdout.contains(&format!(
            "      undeliverable, not retried: {}",
            &first[first.find("can never").unwrap()..]
        )),
        "{}",
        listed.stdout
    );
    let again = with_smtp(&p, server.port, &["alerts", "flush"]);
    assert_eq!(
        again.stdout,
        format!("sent 0 alerts via smtp://127.0.0.1:{}\n", server.port)
    );
    assert_eq!(again.code, 0);
    assert_eq!(p.count("SELECT attempts FROM alerts"), 1);
    assert!(server.mails().is_empty());
}

#[test]
fn a_task_id_too_long_for_a_file_name_still_keeps_its_log() {
    let p = Project::new();
    let id = "t".repeat(300);
    p.pipeline(
        "p",
        &format!("[tasks.{id}]\ncommand = 'echo the output; exit 2'\n"),
    );
    let out = p.plumb(&["run", "p"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("the output"),
        "the summary's log tail: {}",
        out.stdout
    );
    let log = p.plumb(&["logs", "p", &id]);
    assert_eq!(log.code, 0, "{}", log.all());
    assert!(log.stdout.contains("\nthe output\n"), "{}", log.stdout);
}
