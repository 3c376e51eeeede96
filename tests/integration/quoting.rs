//! Param values never become shell code (issue 18, item 1).
//!
//! Every place a pipeline author may put a placeholder in a string `command` or `check` is tried
//! against values an attacker would pick. Where the shell expands the placeholder, the task must
//! receive the value byte for byte (each task writes what it got with `printf '%s'` into
//! `out/NAME`) and nothing may run (`touch PWNED` in any form). Where no quoting can make a value
//! safe, `validate` refuses the placement and says what to write instead.

use crate::support::Project;

/// Values an attacker would choose: quotes of both kinds, backslashes, command substitutions,
/// newlines, a here-document terminator, glob and option characters, the empty string.
const HOSTILE: &[&str] = &[
    "plain",
    "",
    "two  words",
    "it's",
    "say \"hi\"",
    "back\\slash",
    "trailing\\",
    "\\",
    "$(touch PWNED)",
    "`touch PWNED`",
    "$HOME ${PATH}",
    "; touch PWNED",
    "'; touch PWNED; '",
    "\"; touch PWNED; \"",
    "\\\"$(touch PWNED)\\\"",
    "a\nb",
    "\n",
    "x\nEOF\ntouch PWNED\nEOF",
    "EOF",
    "x\n\tEOF\ntouch PWNED",
    "*",
    "-n",
    "#",
    "x # y\ntouch PWNED",
    "|&;<>()",
    "x)\ntouch PWNED\n(",
    "~",
    "%s%n",
    "${x:-$(touch PWNED)}",
    "a'b\"c$d`e\\f\ng",
    "\t lead and trail \t",
];

/// What a task must write for value `v`.
type Want = fn(&str) -> String;

/// (task, command, what the task must write)
fn contexts() -> Vec<(&'static str, &'static str, Want)> {
    fn same(v: &str) -> String {
        v.to_string()
    }
    fn bar(v: &str) -> String {
        format!("{v}|")
    }
    fn line(v: &str) -> String {
        format!("{v}\n")
    }
    vec![
        ("bare", r#"printf '%s' {{v}} > out/bare"#, same),
        ("joined", r#"printf '%s' x{{v}}y > out/joined"#, |v| {
            format!("x{v}y")
        }),
        ("single", r#"printf '%s' '{{v}}' > out/single"#, same),
        (
            "single_text",
            r#"printf '%s' 'pre {{v}} post' > out/single_text"#,
            |v| format!("pre {v} post"),
        ),
        ("double", r#"printf '%s' "<{{v}}>" > out/double"#, |v| {
            format!("<{v}>")
        }),
        (
            "double_var",
            r#"x=1; printf '%s' "$x{{v}}${x}" > out/double_var"#,
            |v| format!("1{v}1"),
        ),
        // The issue's first reproduction: `$(...)` inside "...".
        (
            "subst_in_double",
            r#"printf '%s' "$(printf '%s|' {{v}})" > out/subst_in_double"#,
            bar,
        ),
        (
            "subst_quoted_in_double",
            r#"printf '%s' "$(printf '%s|' "{{v}}")" > out/subst_quoted_in_double"#,
            bar,
        ),
        (
            "subst_bare",
            r#"x=$(printf '%s|' {{v}}); printf '%s' "$x" > out/subst_bare"#,
            bar,
        ),
        (
            "subst_nested",
            r#"printf '%s' "$(printf '%s' "$(printf '%s|' {{v}})")" > out/subst_nested"#,
            bar,
        ),
        (
            "backtick_in_double",
            r#"printf '%s' "`printf '%s|' {{v}}`" > out/backtick_in_double"#,
            bar,
        ),
        (
            "backtick_bare",
            r#"x=`printf '%s|' "{{v}}"`; printf '%s' "$x" > out/backtick_bare"#,
            bar,
        ),
        // The issue's second reproduction: a here-document body.
        ("heredoc", "cat > out/heredoc <<EOF\nname={{v}}\nEOF", |v| {
            format!("name={v}\n")
        }),
        (
            "heredoc_tabs",
            "cat > out/heredoc_tabs <<-EOF\n\t{{v}}\n\tEOF",
            line,
        ),
        (
            "heredoc_two",
            "cat <<A > out/heredoc_two; cat <<B >> out/heredoc_two\n{{v}}\nA\n{{v}}\nB",
            |v| format!("{v}\n{v}\n"),
        ),
        (
            "heredoc_in_subst",
            "x=$(cat <<EOF\n{{v}}|\nEOF\n); printf '%s' \"$x\" > out/heredoc_in_subst",
            bar,
        ),
        (
            "heredoc_subst",
            "cat > out/heredoc_subst <<EOF\n$(printf '%s|' {{v}})\nEOF",
            |v| format!("{v}|\n"),
        ),
        ("comment", "printf '%s' ok > out/comment # {{v}}", |_| "ok".into()),
        (
            "comment_line",
            "# {{v}}\nprintf '%s' ok > out/comment_line",
            |_| "ok".into(),
        ),
        ("assign", r#"x={{v}}; printf '%s' "$x" > out/assign"#, same),
        (
            "assign_double",
            r#"x="{{v}}"; printf '%s' "$x" > out/assign_double"#,
            same,
        ),
        ("export", r#"export X={{v}}; printf '%s' "$X" > out/export"#, same),
        (
            "env_prefix",
            r#"X={{v}} sh -c 'printf "%s" "$X"' > out/env_prefix"#,
            same,
        ),
        (
            "default",
            r#"printf '%s' "${UNSET_X:-{{v}}}" > out/default"#,
            same,
        ),
        (
            "default_bare",
            r#"printf '%s|' ${UNSET_X:-{{v}}} > out/default_bare"#,
            bar,
        ),
        (
            "case_word",
            r#"case {{v}} in "$PLUMB_PARAM_V") r=same;; *) r=differ;; esac; printf '%s' "$r" > out/case_word"#,
            |_| "same".into(),
        ),
        (
            "case_pattern",
            r#"case lit in {{v}}) r=glob;; *) r=literal;; esac; printf '%s' "$r" > out/case_pattern"#,
            |_| "literal".into(),
        ),
        (
            "case_in_subst",
            r#"r=$(case "$PLUMB_PARAM_V" in {{v}}) echo same;; *) echo differ;; esac); printf '%s' "$r|{{v}}" > out/case_in_subst"#,
            |v| format!("same|{v}"),
        ),
        ("pipe", r#"printf '%s' {{v}} | cat > out/pipe"#, same),
        (
            "twice",
            r#"printf '%s' {{v}} > out/twice; printf '%s' "{{v}}" >> out/twice"#,
            |v| format!("{v}{v}"),
        ),
        (
            "function",
            r#"f() { printf '%s' {{v}}; }; set -- one two; f three > out/function"#,
            same,
        ),
        ("subshell", r#"(printf '%s' {{v}}) > out/subshell"#, same),
        ("group", r#"{ printf '%s' {{v}}; } > out/group"#, same),
        ("if", r#"if true; then printf '%s' {{v}}; fi > out/if"#, same),
        (
            "for",
            r#"for x in {{v}}; do printf '%s' "$x"; done > out/for"#,
            same,
        ),
        (
            "two_names",
            r#"printf '%s|%s' {{v}} "{{task}}" > out/two_names"#,
            |v| format!("{v}|two_names"),
        ),
        // Data after the code of `sh -c` is an argument, not code.
        (
            "sh_c_argument",
            r#"sh -c 'printf "%s" "$1"' sh {{v}} > out/sh_c_argument"#,
            same,
        ),
    ]
}

fn pipeline() -> String {
    let mut toml = String::from("[params]\nv = ''\n");
    for (task, command, _) in contexts() {
        toml.push_str(&format!("[tasks.{task}]\ncommand = {}\n", toml_string(command)));
    }
    // Array commands: values are whole arguments, no shell in between.
    toml.push_str("[tasks.argv]\ncommand = ['sh', '-c', 'printf \"%s\" \"$1\" > out/argv', 'sh', '{{v}}']\n");
    // `check` is rendered the same way as `command`.
    toml.push_str(&format!(
        "[tasks.check]\ncommand = 'true'\ncheck = {}\n",
        toml_string(r#"printf '%s' "$(printf '%s|' {{v}})" > out/check"#)
    ));
    toml.push_str(&format!(
        "[tasks.check_heredoc]\ncommand = 'true'\ncheck = {}\n",
        toml_string("cat > out/check_heredoc <<EOF\n{{v}}\nEOF")
    ));
    toml
}

/// A TOML basic string holding `s` exactly.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn expected() -> Vec<(String, Want)> {
    let mut all: Vec<(String, Want)> = contexts()
        .into_iter()
        .map(|(t, _, f)| (t.to_string(), f))
        .collect();
    all.push(("argv".into(), |v| v.to_string()));
    all.push(("check".into(), |v| format!("{v}|")));
    all.push(("check_heredoc".into(), |v| format!("{v}\n")));
    all
}

#[test]
fn hostile_values_reach_the_task_byte_for_byte_in_every_quote_context() {
    let pipeline = pipeline();
    let mut wrong = Vec::new();
    for value in HOSTILE {
        let p = Project::new();
        p.pipeline("q", &pipeline);
        std::fs::create_dir(p.path().join("out")).unwrap();
        let out = p.plumb(&["run", "q", "-p", &format!("v={value}")]);
        if p.exists("PWNED") {
            wrong.push(format!("value {value:?}: PWNED was created"));
        }
        if out.code != 0 {
            wrong.push(format!("value {value:?}: exit {}\n{}", out.code, out.all()));
        }
        for (task, want) in expected() {
            let got = std::fs::read(p.path().join("out").join(&task)).unwrap_or_default();
            if got != want(value).as_bytes() {
                wrong.push(format!(
                    "value {value:?}, task {task}: got {:?}, want {:?}",
                    String::from_utf8_lossy(&got),
                    want(value)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} problems:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_issues_reproductions_run_nothing() {
    let p = Project::new();
    p.pipeline(
        "r",
        "[params]\nfile = 'in.csv'\nname = 'app'\n\
         [tasks.rows]\ncommand = \"echo \\\"rows: $(wc -l < {{file}})\\\" > rows.txt\"\n\
         [tasks.cfg]\ncommand = \"cat > app.cfg <<EOF\\nname={{name}}\\nEOF\"\n",
    );
    p.file("in.csv; touch PWNED", "a\nb\n");
    let out = p.plumb(&[
        "run",
        "r",
        "-p",
        "file=in.csv; touch PWNED",
        "-p",
        "name=$(touch PWNED)",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!p.exists("PWNED"));
    assert_eq!(p.read("rows.txt"), "rows: 2\n");
    assert_eq!(p.read("app.cfg"), "name=$(touch PWNED)\n");
}

#[test]
fn hostile_foreach_values_are_data_too() {
    let p = Project::new();
    p.pipeline(
        "f",
        "[tasks.t]\nforeach = { s = ['$(touch PWNED)', \"it's\", '`touch PWNED`', 'a  b'] }\n\
         command = \"printf '%s\\\\n' \\\"$(printf '%s' {{s}})\\\" >> got.txt\"\n",
    );
    let out = p.plumb(&["run", "f", "--workers", "1"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!p.exists("PWNED"));
    let mut got = p.lines("got.txt");
    got.sort();
    assert_eq!(got, vec!["$(touch PWNED)", "`touch PWNED`", "a  b", "it's"]);
}

/// `plumb validate` on one pipeline: its exit code and stderr.
fn validate(toml: &str) -> (i32, String) {
    let p = Project::new();
    p.pipeline("p", toml);
    let out = p.plumb(&["validate", "p"]);
    (out.code, out.stderr)
}

fn refused(toml: &str, want: &str) {
    assert_eq!(validate(toml), (2, want.to_string()), "for:\n{toml}");
}

#[test]
fn code_for_another_interpreter_is_refused_with_the_environment_form_to_use() {
    refused(
        "[params]\nv = ''\n[tasks.a]\ncommand = \"sh -c 'grep {{v}} f'\"\n",
        r#"error: `{{v}}` in `command` of task `a` is inside code that `sh -c` runs
 --> pipelines/p.toml:4:24
  |
4 | command = "sh -c 'grep {{v}} f'"
  |                        ^^^^^
  |
  = help: plumb cannot quote for another interpreter: read the value from the environment there, inside single quotes so that only `sh -c` expands it: '... "$PLUMB_PARAM_V" ...'

1 error in pipelines/p.toml
"#,
    );
    // A foreach variable, a param whose name sh cannot spell, a built-in; `check` and arrays too.
    refused(
        "[params]\nmy-day = ''\n[tasks.a]\nforeach = { s = ['1'] }\ncommand = 'bash -ec \"cp {{s}} x\"'\n\
         check = \"python3 -c 'print(\\\"{{my-day}}\\\")'\"\n\
         [tasks.b]\ncommand = ['ssh', 'host', 'ls {{task}}']\n",
        r#"error: `{{s}}` in `command` of task `a` is inside code that `bash -ec` runs
 --> pipelines/p.toml:5:25
  |
5 | command = 'bash -ec "cp {{s}} x"'
  |                         ^^^^^
  |
  = help: plumb cannot quote for another interpreter: read the value from the environment there, inside single quotes so that only `bash -ec` expands it: '... "$PLUMB_FOREACH_S" ...'

error: `{{my-day}}` in `check` of task `a` is inside code that `python3 -c` runs
 --> pipelines/p.toml:6:30
  |
6 | check = "python3 -c 'print(\"{{my-day}}\")'"
  |                              ^^^^^^^^^^
  |
  = help: plumb cannot quote for another interpreter: read the value from the environment there: os.environ["PLUMB_PARAM_MY_DAY"]

error: `{{task}}` in `command` of task `b` is inside the command that `ssh` hands to the remote shell
 --> pipelines/p.toml:8:31
  |
8 | command = ['ssh', 'host', 'ls {{task}}']
  |                               ^^^^^^^^
  |
  = help: that shell parses the text, and no quoting by plumb makes a value safe there; send the value as data on standard input instead: printf '%s' "$PLUMB_TASK" | ssh HOST 'v=$(cat); ... "$v" ...'

3 errors in pipelines/p.toml
"#,
    );
    refused(
        "[params]\nv = ''\n[tasks.a]\ncommand = '''\ncat <<EOF | sh\necho {{v}}\nEOF\neval \"ls {{v}}\"\n'''\n",
        r#"error: `{{v}}` in `command` of task `a` is inside code that `sh` reads on its standard input
 --> pipelines/p.toml:6:6
  |
6 | echo {{v}}
  |      ^^^^^
  |
  = help: plumb cannot quote for another interpreter: read the value from the environment there as "$PLUMB_PARAM_V", and quote the here-document's delimiter (<<'EOF') so that only `sh` expands it

error: `{{v}}` in `command` of task `a` is inside code that `eval` runs
 --> pipelines/p.toml:8:10
  |
8 | eval "ls {{v}}"
  |          ^^^^^
  |
  = help: plumb cannot quote for another interpreter: read the value from the environment there, inside single quotes so that only `eval` expands it: '... "$PLUMB_PARAM_V" ...'

2 errors in pipelines/p.toml
"#,
    );
}

#[test]
fn code_passed_the_less_obvious_ways_is_refused() {
    // Each of these ran a value such as `x$(touch canary)` before: a trap action, code attached
    // to its flag, a pipe into sh further along, a script read from /dev/stdin, env -S, and a
    // substring offset that bash evaluates.
    refused(
        r#"[params]
v = ''
[tasks.a]
command = '''
trap 'echo {{v}}' EXIT
python3 -c"print('{{v}}')"
echo {{v}} | cat | sh
sh /dev/stdin <<EOF
echo {{v}}
EOF
env -S 'sh -c {{v}}'
echo ${x:{{v}}}
'''
[tasks.b]
command = ['perl', '-le{{v}}']
"#,
        r#"error: `{{v}}` in `command` of task `a` is inside code that `trap` runs
 --> pipelines/p.toml:5:12
  |
5 | trap 'echo {{v}}' EXIT
  |            ^^^^^
  |
  = help: plumb cannot quote for another interpreter: read the value from the environment there, inside single quotes so that only `trap` expands it: '... "$PLUMB_PARAM_V" ...'

error: `{{v}}` in `command` of task `a` is inside code that `python3 -c` runs
 --> pipelines/p.toml:6:19
  |
6 | python3 -c"print('{{v}}')"
  |                   ^^^^^
  |
  = help: plumb cannot quote for another interpreter: read the value from the environment there: os.environ["PLUMB_PARAM_V"]

error: `{{v}}` in `command` of task `a` is inside code that `sh` reads on its standard input
 --> pipelines/p.toml:7:6
  |
7 | echo {{v}} | cat | sh
  |      ^^^^^
  |
  = help: plumb cannot quote for another interpreter: read the value from the environment there as "$PLUMB_PARAM_V", and quote the here-document's delimiter (<<'EOF') so that only `sh` expands it

error: `{{v}}` in `command` of task `a` is inside code that `sh` reads on its standard input
 --> pipelines/p.toml:9:6
  |
9 | echo {{v}}
  |      ^^^^^
  |
  = help: plumb cannot quote for another interpreter: read the value from the environment there as "$PLUMB_PARAM_V", and quote the here-document's delimiter (<<'EOF') so that only `sh` expands it

error: `{{v}}` in `command` of task `a` is inside code that `env -S` runs
  --> pipelines/p.toml:11:15
   |
11 | env -S 'sh -c {{v}}'
   |               ^^^^^
   |
   = help: `env -S` splits its string into a command line, so a value there is parsed as words and code: drop -S and write the command's words after env, the placeholder as an argument of its own

error: `{{v}}` in `command` of task `a` stands in a ${x:offset} or an array subscript ${a[i]}, which bash evaluates as an arithmetic expression (and runs commands named in it)
  --> pipelines/p.toml:12:10
   |
12 | echo ${x:{{v}}}
   |          ^^^^^
   |
   = help: check that the value is a number first: n="$PLUMB_PARAM_V"; case $n in ''|*[!0-9]*) exit 2;; esac; echo "${x:n}"

error: `{{v}}` in `command` of task `b` is inside code that `perl -le` runs
  --> pipelines/p.toml:15:24
   |
15 | command = ['perl', '-le{{v}}']
   |                        ^^^^^
   |
   = help: plumb cannot quote for another interpreter: read the value from the environment there: $ENV{PLUMB_PARAM_V}

7 errors in pipelines/p.toml
"#,
    );
    // Data where the review found refusals: a field separator, `$$` before a quoted string.
    let p = Project::new();
    p.pipeline(
        "p",
        r#"[params]
v = ''
[tasks.a]
command = '''printf 'a,b\n' | awk -F{{v}} '{print $2}' > got.txt; printf %s $$'{{v}}' > /dev/null'''
"#,
    );
    let out = p.plumb(&["run", "p", "-p", "v=,"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(p.lines("got.txt"), vec!["b"]);
}

#[test]
fn places_where_the_shell_expands_nothing_are_refused() {
    refused(
        "[params]\nv = ''\n[tasks.a]\ncommand = '''\ncat > f <<'EOF'\nname={{v}}\nEOF'''\n",
        r#"error: `{{v}}` in `command` of task `a` stands in a here-document whose delimiter is quoted, so the shell leaves its body as written
 --> pipelines/p.toml:6:6
  |
6 | name={{v}}
  |      ^^^^^
  |
  = help: unquote the delimiter (<<EOF), and write \$, \` and \\ where the body means them literally

1 error in pipelines/p.toml
"#,
    );
    refused(
        "[params]\nv = ''\n[tasks.a]\ncommand = \"echo \\\\{{v}} ${{v}} $'{{v}}' $(( {{v}} + 1 ))\"\n",
        r#"error: `{{v}}` in `command` of task `a` follows a backslash, which would apply to the value's first character
 --> pipelines/p.toml:4:19
  |
4 | command = "echo \\{{v}} ${{v}} $'{{v}}' $(( {{v}} + 1 ))"
  |                   ^^^^^
  |
  = help: remove the backslash (the value reaches the command as it is), or double it for a literal backslash

error: `{{v}}` in `command` of task `a` follows a `$`, which would join with it
 --> pipelines/p.toml:4:26
  |
4 | command = "echo \\{{v}} ${{v}} $'{{v}}' $(( {{v}} + 1 ))"
  |                          ^^^^^
  |
  = help: write \$ for a literal dollar sign

error: `{{v}}` in `command` of task `a` stands inside $'...', where the shell expands nothing
 --> pipelines/p.toml:4:34
  |
4 | command = "echo \\{{v}} ${{v}} $'{{v}}' $(( {{v}} + 1 ))"
  |                                  ^^^^^
  |
  = help: end the $'...' string before the placeholder: $'...'"{{v}}"$'...'

error: `{{v}}` in `command` of task `a` stands inside $((...)), where the shell evaluates the text as an expression (bash even runs commands named in it)
 --> pipelines/p.toml:4:45
  |
4 | command = "echo \\{{v}} ${{v}} $'{{v}}' $(( {{v}} + 1 ))"
  |                                             ^^^^^
  |
  = help: check that the value is a number first: n="$PLUMB_PARAM_V"; case $n in ''|*[!0-9]*) exit 2;; esac; echo $((n + 1))

4 errors in pipelines/p.toml
"#,
    );
}

#[test]
fn the_environment_forms_the_refusals_suggest_hold_the_values() {
    let p = Project::new();
    p.pipeline(
        "e",
        "[params]\nmy-day = 'x'\n[tasks.t]\nforeach = { s = ['a b'] }\n\
         command = '''sh -c 'printf \"%s|\" \"$PLUMB_PARAM_MY_DAY\" \"$PLUMB_FOREACH_S\" \"$PLUMB_TASK\" \"$PLUMB_PIPELINE\" \"$PLUMB_ATTEMPT\" \"$PLUMB_SCHEDULED_TIME\" > got.txt' '''\n",
    );
    let out = p.plumb(&["run", "e", "-p", "my-day=$(touch PWNED)"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let got = p.read("got.txt");
    let f: Vec<&str> = got.split('|').collect();
    assert_eq!(&f[..5], &["$(touch PWNED)", "a b", "t[s=a b]", "e", "1"]);
    assert!(f[5].starts_with("20"), "scheduled time: {got}");
    assert!(!p.exists("PWNED"));
}

#[test]
fn plan_and_logs_show_the_command_with_its_values() {
    let p = Project::new();
    p.pipeline(
        "s",
        "[params]\nv = ''\n[tasks.t]\ncommand = \"echo \\\"rows: $(wc -l < {{v}})\\\" {{v}}\"\n",
    );
    p.file("a b", "1\n");
    let plan = p.plumb(&["plan", "s", "-p", "v=a b"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(
        plan.stdout.contains("echo \"rows: $(wc -l < 'a b')\" 'a b'"),
        "{}",
        plan.stdout
    );
    let out = p.plumb(&["run", "s", "-p", "v=a b"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let logs = p.plumb(&["logs", "s", "t", "-p", "v=a b"]);
    assert!(
        logs.stdout
            .contains("$ echo \"rows: $(wc -l < 'a b')\" 'a b'\nrows: 1 a b\n"),
        "{}",
        logs.all()
    );
}

#[test]
fn names_that_would_share_an_environment_variable_are_refused() {
    refused(
        "[params]\nmy-day = 'a'\nmy_day = 'b'\n[tasks.t]\nforeach = { Shard = ['1'], shard = ['2'] }\ncommand = 'true'\n",
        r#"error: params `my-day` and `my_day` would share the environment variable PLUMB_PARAM_MY_DAY
 --> pipelines/p.toml:3:1
  |
3 | my_day = 'b'
  | ^^^^^^
  |
  = help: a task could not tell them apart there; rename one of them

error: foreach variables `Shard` and `shard` would share the environment variable PLUMB_FOREACH_SHARD
 --> pipelines/p.toml:5:36
  |
5 | foreach = { Shard = ['1'], shard = ['2'] }
  |                                    ^^^^^
  |
  = help: a task could not tell them apart there; rename one of them

2 errors in pipelines/p.toml
"#,
    );
}
