//! `plumb validate`: every error kind is reported with file:line:col and exit 2; every accepted
//! form loads.

use crate::support::Project;

/// Validate one pipeline and return (exit code, stderr).
fn check(toml: &str) -> (i32, String) {
    let p = Project::new();
    p.pipeline("p", toml);
    let out = p.plumb(&["validate", "p"]);
    (out.code, out.stderr)
}

fn assert_error(toml: &str, location: &str, words: &[&str]) {
    let (code, err) = check(toml);
    assert_eq!(code, 2, "stderr: {err}");
    assert!(
        err.contains(&format!("--> pipelines/p.toml:{location}")),
        "want {location} in:\n{err}"
    );
    for w in words {
        assert!(err.contains(w), "want {w:?} in:\n{err}");
    }
}

#[test]
fn unknown_key_suggests_the_right_one() {
    assert_error(
        "[tasks.a]\ncommand = 'x'\ntimout = '5m'\n",
        "3:1",
        &["unknown key `timout` in task `a`", "did you mean `timeout`?"],
    );
}

#[test]
fn unknown_top_level_table() {
    assert_error(
        "[taks.a]\ncommand = 'x'\n",
        "1:2",
        &["unknown key `taks` at the top level", "did you mean `tasks`?"],
    );
}

#[test]
fn wrong_type_names_key_and_types() {
    assert_error(
        "[tasks.a]\ncommand = 'x'\nretries = 'two'\n",
        "3:11",
        &[
            "`retries` in task `a`",
            "invalid type: string \"two\", expected an integer",
        ],
    );
    assert_error(
        "[tasks.a]\ncommand = 5\n",
        "2:11",
        &["`command` in task `a`", "a string (run by /bin/sh) or an array"],
    );
}

#[test]
fn requires_naming_no_task() {
    assert_error(
        "[tasks.extract]\ncommand = 'x'\n[tasks.load]\ncommand = 'y'\nrequires = ['extrct']\n",
        "5:13",
        &[
            "task `load` requires `extrct`, which is not a task",
            "did you mean `extract`?",
        ],
    );
}

#[test]
fn cycle_lists_every_task_on_it_in_order() {
    assert_error(
        "[tasks.a]\ncommand = 'x'\nrequires = ['c']\n[tasks.b]\ncommand = 'x'\nrequires = ['a']\n[tasks.c]\ncommand = 'x'\nrequires = ['b']\n",
        "3:13",
        &["dependency cycle: a -> c -> b -> a", "`a` requires `c` here"],
    );
    assert_error(
        "[tasks.a]\ncommand = 'x'\nrequires = ['a']\n",
        "3:13",
        &["dependency cycle: a -> a"],
    );
}

#[test]
fn unknown_placeholder_points_at_it() {
    assert_error(
        "[params]\ndate = { type = 'date', default = 'today' }\n[tasks.a]\ncommand = 'run {{dat}} now'\n",
        "4:16",
        &[
            "unknown placeholder `{{dat}}` in `command` of task `a`",
            "did you mean `{{date}}`?",
        ],
    );
    assert_error(
        "[tasks.a]\ncommand = 'x'\noutputs = ['out/{{nope}}']\n",
        "3:17",
        &["unknown placeholder `{{nope}}` in `outputs`"],
    );
}

#[test]
fn bare_number_duration_says_which_unit_was_meant() {
    assert_error(
        "[tasks.a]\ncommand = 'x'\ntimeout = 7\n",
        "3:11",
        &[
            "`timeout` of task `a`: duration 7 has no unit",
            "write \"7s\" for seconds",
        ],
    );
    assert_error(
        "[defaults]\nretry_delay = '30000'\n",
        "2:15",
        &[
            "`retry_delay` in [defaults]",
            "write \"30s\" if 30000 meant milliseconds",
        ],
    );
    assert_error(
        "[tasks.a]\ncommand = 'x'\nsla = '5 parsecs'\n",
        "3:7",
        &["invalid duration \"5 parsecs\""],
    );
}

#[test]
fn invalid_schedule() {
    assert_error(
        "[pipeline]\nschedule = '0 2 * *'\n",
        "2:12",
        &["invalid schedule \"0 2 * *\"", "5 fields", "found 4"],
    );
    assert_error(
        "[pipeline]\nschedule = '0 25 * * *'\n",
        "2:12",
        &["invalid schedule"],
    );
}

#[test]
fn unknown_time_zone() {
    assert_error(
        "[pipeline]\ntimezone = 'Europe/Berln'\n",
        "2:12",
        &["unknown time zone `Europe/Berln`", "IANA"],
    );
}

#[test]
fn resource_not_declared_or_too_large() {
    assert_error(
        "[resources]\ndb = 1\n[tasks.a]\ncommand = 'x'\nresources = { dbx = 1 }\n",
        "5:21",
        &["uses resource `dbx`, which is not declared", "did you mean `db`?"],
    );
    assert_error(
        "[resources]\ndb = 2\n[tasks.a]\ncommand = 'x'\nresources = { db = 3 }\n",
        "5:20",
        &["asks for 3 of resource `db`, but the pool holds only 2"],
    );
}

#[test]
fn foreach_with_an_empty_list() {
    assert_error(
        "[tasks.a]\nforeach = { shard = [] }\ncommand = 'x'\n",
        "2:21",
        &["foreach variable `shard` has an empty list"],
    );
}

#[test]
fn task_id_must_be_an_identifier() {
    assert_error(
        "[tasks.\"load data\"]\ncommand = 'x'\n",
        "1:8",
        &["task id `load data` is not a plain identifier"],
    );
}

#[test]
fn toml_syntax_error() {
    assert_error("[tasks.a]\ncommand = 'x\n", "2:", &["invalid TOML"]);
}

#[test]
fn external_input_needs_outputs_and_wait_needs_no_command() {
    // Pointed at the task's name (it used to point at 1:1).
    assert_error(
        "[pipeline]\nworkers = 1\n[tasks.a]\nrequires = []\n",
        "3:8",
        &["task `a` has neither `command` nor `outputs`"],
    );
    assert_error(
        "[tasks.a]\ncommand = 'x'\nwait = '1h'\n",
        "3:8",
        &["`wait` applies only to tasks without `command`"],
    );
}

#[test]
fn every_error_in_a_file_is_reported_at_once_in_file_order() {
    let (code, err) = check(
        "[pipeline]\nworkres = 2\n[tasks.a]\ncommand = 'echo {{x}}'\ntimeout = 7\nretries = 'no'\n[tasks.b]\ncommand = 'y'\nrequires = ['zz']\n",
    );
    assert_eq!(code, 2);
    let locations: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("--> "))
        .map(|l| l.trim())
        .collect();
    assert_eq!(
        locations,
        vec![
            "--> pipelines/p.toml:2:1",
            "--> pipelines/p.toml:4:17",
            "--> pipelines/p.toml:5:11",
            "--> pipelines/p.toml:6:11",
            "--> pipelines/p.toml:9:13",
        ],
        "{err}"
    );
    assert!(err.contains("5 errors in pipelines/p.toml"), "{err}");
}

#[test]
fn rendered_error_shows_the_line_and_a_caret() {
    let (_, err) = check("[tasks.a]\ncommand = 'x'\ntimeout = 7\n");
    let expected = "error: `timeout` of task `a`: duration 7 has no unit
 --> pipelines/p.toml:3:11
  |
3 | timeout = 7
  |           ^
  |
  = help: write \"7s\" for seconds (or \"7m\" for minutes, \"7ms\" for milliseconds)
";
    assert!(err.starts_with(expected), "got:\n{err}");
}

#[test]
fn every_accepted_form_loads() {
    let p = Project::new();
    p.pipeline(
        "full",
        r#"
[pipeline]
description = "everything the contract shows"
schedule    = "0 2 * * Mon-Fri"
timezone    = "Europe/Berlin"
workers     = 4
catchup     = "latest"
catchup_window = "3d"
max_active_runs = 1
executor    = "local"

[params]
date   = { type = "date", default = "yesterday" }
day2   = { type = "date", default = "2026-02-28" }
region = "eu"
label  = { type = "string", default = "x", description = "free text" }

[defaults]
retries     = 2
retry_delay = "30s"
max_retry_delay = "10m"
timeout     = "1h"
grace       = "5s"
env         = { A = "1" }

[resources]
warehouse = 2
object_store_cp = 1

[alerts]
email = ["data-infra@example.com"]
on    = ["failure", "sla_miss", "retry", "success", "recovery"]

[tasks.raw_dump]
outputs = ["/data/upstream/{{date}}/dump.csv"]
wait    = "2h"

[tasks.extract_orders]
command   = "tasks/extract.sh orders {{date}} {{region}}"
requires  = ["raw_dump"]
priority  = 10
outputs   = ["data/{{date}}/orders.csv"]
resources = { warehouse = 1 }
timeout   = "20m"
sla       = "15m"

[tasks.copy_shard]
foreach = { shard = ["0", "1", "2", "3"], kind = [1, 2] }
command = "tasks/copy.sh --shard {{shard}} --kind {{kind}} --date {{date}}"
requires = ["extract_orders"]
resources = { object_store_cp = 1 }

[tasks.per_shard]
foreach  = { shard = ["0", "1", "2", "3"] }
command  = "echo {{shard}} {{pipeline}} {{task}} {{run_id}} {{attempt}} {{scheduled_time}}"
requires = ["copy_shard[shard={{shard}},kind=1]"]

[tasks.load]
command  = ["tasks/load.py", "--date", "{{date}}"]
requires = ["copy_shard", "per_shard"]
check    = "tasks/verify_counts.sh {{date}}"
env      = { BATCH_SIZE = "5000" }
cwd      = "work/{{region}}"
executor = "local"
retries  = 0
"#,
    );
    let out = p.plumb(&["validate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "ok: pipelines/full.toml (15 tasks, 25 edges)\n");
}

#[test]
fn empty_plumb_toml_and_empty_pipeline_are_valid() {
    let p = Project::new();
    p.pipeline("empty", "");
    let out = p.plumb(&["validate", "pipelines/empty.toml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn validate_without_arguments_checks_every_pipeline() {
    let p = Project::new();
    p.pipeline("good", "[tasks.a]\ncommand = 'x'\n");
    p.pipeline("bad", "[tasks.a]\ncommand = 'x'\ntimeout = 3\n");
    let out = p.plumb(&["validate"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("ok: pipelines/good.toml"), "{}", out.stdout);
    assert!(
        out.stderr.contains("--> pipelines/bad.toml:3:11"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_plumb_toml_is_reported_against_itself() {
    let p = Project::new();
    p.file("plumb.toml", "state_dri = 'x'\n");
    p.pipeline("a", "");
    let out = p.plumb(&["validate", "a"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--> plumb.toml:1:1"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `state_dir`?"), "{}", out.stderr);
}

#[test]
fn unknown_pipeline_name_is_a_usage_error() {
    let p = Project::new();
    p.pipeline("nightly_etl", "");
    let out = p.plumb(&["validate", "nightly_elt"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no pipeline named `nightly_elt`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `nightly_etl`?"),
        "{}",
        out.stderr
    );
}

/// A pipeline file of more than 1 MiB: `tasks` tasks, then `tail`.
fn big_pipeline(tasks: usize, tail: &str) -> String {
    let mut t = String::from("[pipeline]\nworkers = 2\n");
    for i in 0..tasks {
        t += &format!("[tasks.t{i}]\ncommand = 'echo {i} > out/t{i}'\noutputs = ['out/t{i}']\n");
        if i > 0 {
            t += &format!("requires = ['t{}']\n", i - 1);
        }
    }
    t += tail;
    assert!(t.len() > 1 << 20, "only {} bytes", t.len());
    t
}

#[test]
fn a_big_file_read_in_pieces_still_reports_a_late_mistake_at_its_line() {
    let p = Project::new();
    let text = big_pipeline(16_000, "[tasks.last]\ncomand = 'x'\nrequires = ['t15999']\n");
    let line = text.lines().count() - 1;
    p.pipeline("big", &text);
    let out = p.plumb(&["validate", "big"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains(&format!("--> pipelines/big.toml:{line}:1")),
        "want line {line} in:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unknown key `comand` in task `last`"),
        "{}",
        out.stderr
    );

    // Fixed, it loads: 16,001 tasks, and the plan says all of them will run.
    p.pipeline("big", &text.replace("comand = 'x'", "command = 'true'"));
    let out = p.plumb(&["validate", "big"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let plan = p.plumb(&["plan", "big"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("16001 to run"), "{}", plan.stdout);
}

/// What validate accepts, run can honour: an address is one mailbox (no header injection, no
/// list in one string), in a pipeline and in plumb.toml alike, and no NUL reaches a command.
#[test]
fn addresses_and_nul_bytes_that_could_never_be_used_are_refused_where_written() {
    let p = Project::new();
    p.pipeline(
        "p",
        "[alerts]\nemail = [\"a@x.example\\r\\nBcc: evil@x.example\", \"a@x.example, b@y.example\", \"ok@example.com\"]\n\
         [tasks.t]\nforeach = { v = [\"a\\u0000b\"] }\ncommand = \"echo {{v}}\"\n\
         [tasks.u]\ncommand = \"echo \\u0000\"\n",
    );
    let out = p.plumb(&["validate", "p"]);
    assert_eq!(out.code, 2);
    let line2 =
        r#"email = ["a@x.example\r\nBcc: evil@x.example", "a@x.example, b@y.example", "ok@example.com"]"#;
    let under2 = format!("        {}", "^".repeat(line2.len() - 8));
    let help =
        r#"  = help: write each address as its own string: email = ["a@example.com", "b@example.com"]"#;
    let expected = [
        r#"error: "a@x.example\r\nBcc: evil@x.example" is not one e-mail address"#.to_string(),
        " --> pipelines/p.toml:2:9".into(),
        "  |".into(),
        format!("2 | {line2}"),
        format!("  | {under2}"),
        "  |".into(),
        help.into(),
        "".into(),
        r#"error: "a@x.example, b@y.example" is not one e-mail address"#.into(),
        " --> pipelines/p.toml:2:9".into(),
        "  |".into(),
        format!("2 | {line2}"),
        format!("  | {under2}"),
        "  |".into(),
        help.into(),
        "".into(),
        r#"error: foreach value "a\0b" cannot be part of a task id"#.into(),
        " --> pipelines/p.toml:4:18".into(),
        "  |".into(),
        r#"4 | foreach = { v = ["a\u0000b"] }"#.into(),
        "  |                  ^^^^^^^^^^".into(),
        "  |".into(),
        "  = help: values must be non-empty and free of `[`, `]`, `,`, `=`, `/` and control characters"
            .into(),
        "".into(),
        "error: `command` of task `u` holds a NUL byte, which no command can be given".into(),
        " --> pipelines/p.toml:7:11".into(),
        "  |".into(),
        r#"7 | command = "echo \u0000""#.into(),
        "  |           ^^^^^^^^^^^^^".into(),
        "".into(),
        "4 errors in pipelines/p.toml".into(),
    ];
    assert_eq!(out.stderr.lines().collect::<Vec<_>>(), expected);

    let p = Project::new();
    p.file("plumb.toml", "[alerts]\nemail = [\"not an address\"]\n");
    p.pipeline("q", "[tasks.a]\ncommand = 'true'\n");
    let out = p.plumb(&["validate", "q"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: \"not an address\" is not one e-mail address\n --> plumb.toml:2:9\n  |\n\
         2 | email = [\"not an address\"]\n  |         ^^^^^^^^^^^^^^^^^^\n  |\n  \
         = help: write each address as its own string: email = [\"a@example.com\", \"b@example.com\"]\n\
         \n1 error in plumb.toml\n"
    );
}
