//! The context scanner, checked against the real /bin/sh and bash.

use std::path::Path;
use std::process::Command;

use super::*;

const NASTY: &[&str] = &[
    "plain",
    "",
    "two  words",
    "it's",
    "say \"hi\"",
    "$(touch PWNED)",
    "`touch PWNED`",
    "$HOME and ${PATH}",
    "line1\nline2",
    "x\nEOF\ntouch PWNED\nEOF",
    "back\\slash",
    "\\",
    "semi; touch PWNED",
    "'",
    "\"",
    "*",
    "-n",
    "a'b\"c$d`e\\f",
    "x)\ntouch PWNED\n(",
];

fn shell(text: &str) -> Result<ShellTemplate, Vec<Refusal>> {
    ShellTemplate::new(Template::parse(text).expect("template"))
}

/// Where each placeholder of `text` stands, as a word for the table below.
fn places(text: &str) -> Vec<String> {
    match shell(text) {
        Ok(t) => t.places.iter().map(|p| format!("{p:?}")).collect(),
        Err(rs) => rs
            .iter()
            .map(|r| match &r.why {
                Why::Code(i) => format!("Code({}{})", i.shown, if i.stdin { ", stdin" } else { "" }),
                w => format!("{w:?}"),
            })
            .collect(),
    }
}

#[test]
fn each_placeholder_gets_the_place_the_shell_gives_it() {
    let table: &[(&str, &[&str])] = &[
        ("echo {{v}}", &["Word"]),
        ("echo x{{v}}y", &["Word"]),
        ("x={{v}} cmd", &["Word"]),
        ("echo \"a {{v}} b\"", &["Double"]),
        ("echo 'a {{v}} b'", &["Single"]),
        ("echo \"it's {{v}}\"", &["Double"]),
        ("echo '\"' {{v}}", &["Word"]),
        ("echo \\\"{{v}}", &["Word"]),
        ("echo \"\\\"\" {{v}}", &["Word"]),
        // A new command list inside "...": its words are words again.
        ("echo \"$(wc -l < {{v}})\"", &["Word"]),
        ("echo \"$(echo \"{{v}}\")\"", &["Double"]),
        ("echo \"$(echo '{{v}}')\"", &["Single"]),
        ("echo \"$(echo \")\" {{v}})\"", &["Word"]),
        ("echo \"`echo {{v}}`\"", &["Word"]),
        ("echo `echo \"{{v}}\"`", &["Double"]),
        ("echo \"`echo \\\"{{v}}\\\"`\"", &["Double"]),
        ("echo `echo \\`echo {{v}}\\``", &["Word"]),
        ("echo \"${x:-{{v}}}\"", &["Double"]),
        ("echo ${x:-{{v}}}", &["Word"]),
        ("echo ${x:-'{{v}}'}", &["Single"]),
        ("cat <<EOF\n{{v}}\nEOF\necho {{v}}", &["Heredoc", "Word"]),
        (
            "cat <<-EOF\n\t'{{v}}'\n\tEOF\necho '{{v}}'",
            &["Heredoc", "Single"],
        ),
        (
            "cat <<A; cat <<B\n{{v}}\nA\n\"{{v}}\"\nB\n{{v}}",
            &["Heredoc", "Heredoc", "Word"],
        ),
        ("cat <<EOF\n$(echo {{v}})\nEOF", &["Word"]),
        ("x=$(cat <<EOF\n{{v}})\nEOF\n) {{v}}", &["Heredoc", "Word"]),
        ("echo hi # {{v}}\necho {{v}}", &["Comment", "Word"]),
        ("echo a#{{v}} $#{{v}}", &["Word", "Word"]),
        ("echo $(# {{v}}\n)", &["Comment"]),
        (
            "case {{v}} in {{v}}) echo '{{v}}';; esac; echo \"{{v}}\"",
            &["Word", "Word", "Single", "Double"],
        ),
        ("x=$(case a in a) echo;; esac; echo \"{{v}}\")", &["Double"]),
        ("x=$( (echo) ; echo \"{{v}}\")", &["Double"]),
        ("echo 2>{{v}} >&2 {{v}}", &["Word", "Word"]),
        ("f() { echo {{v}}; }", &["Word"]),
        // Refused: the shell expands nothing there, or the text around it changes its meaning.
        ("cat <<'EOF'\n{{v}}\nEOF", &["QuotedHeredoc"]),
        ("cat <<\\EOF\n{{v}}\nEOF", &["QuotedHeredoc"]),
        ("cat <<\"E\"OF\n{{v}}\nEOF", &["QuotedHeredoc"]),
        ("cat <<{{v}}\nx\n", &["HeredocDelimiter"]),
        ("echo \\{{v}}", &["AfterBackslash"]),
        ("echo \"\\{{v}}\"", &["AfterBackslash"]),
        ("cat <<EOF\n\\{{v}}\nEOF", &["AfterBackslash"]),
        ("echo ${{v}}", &["AfterDollar"]),
        ("echo \"${{v}}\"", &["AfterDollar"]),
        ("echo $'{{v}}'", &["DollarSingle"]),
        ("echo $(( {{v}} + 1 ))", &["Arithmetic"]),
        (
            "echo ${x:{{v}}} \"${x:1:{{v}}}\" ${a[{{v}}]}",
            &["Evaluated", "Evaluated", "Evaluated"],
        ),
        (
            "echo ${x:-{{v}}} ${x:={{v}}} ${#x} {{v}}",
            &["Word", "Word", "Word"],
        ),
        // `$$` and a quoted string, not `$'...'`.
        ("printf %s $$'{{v}}'", &["Single"]),
        // Escaped, the backslash and the dollar are ordinary characters.
        (
            "echo \\\\{{v}} \\${{v}} \"\\\\{{v}}\"",
            &["Word", "Word", "Double"],
        ),
    ];
    for (text, want) in table {
        assert_eq!(places(text), *want, "in {text:?}");
    }
}

#[test]
fn code_for_another_interpreter_is_refused() {
    let table: &[(&str, &[&str])] = &[
        ("sh -c 'echo {{v}}'", &["Code(sh -c)"]),
        ("bash -ec \"echo {{v}}\"", &["Code(bash -ec)"]),
        ("/bin/bash -o pipefail -c {{v}}", &["Code(bash -c)"]),
        ("sudo -u app bash -c 'x {{v}}'", &["Code(bash -c)"]),
        ("docker exec box sh -c 'x {{v}}'", &["Code(sh -c)"]),
        ("find . -exec sh -c 'x {{v}}' \\;", &["Code(sh -c)"]),
        ("sh -c \"$(echo {{v}})\"", &["Code(sh -c)"]),
        ("eval \"echo {{v}}\"", &["Code(eval)"]),
        ("if true; then eval {{v}}; fi", &["Code(eval)"]),
        ("ssh host 'ls {{v}}'", &["Code(ssh)"]),
        ("ssh -p 22 -i key host ls {{v}}", &["Code(ssh)"]),
        ("python3 -c 'print(\"{{v}}\")'", &["Code(python3 -c)"]),
        (
            "timeout 5 /usr/bin/python3.11 -c \"{{v}}\"",
            &["Code(python3.11 -c)"],
        ),
        ("env A=1 perl -ne 'print if /{{v}}/' f", &["Code(perl -ne)"]),
        ("ruby -e '{{v}}'", &["Code(ruby -e)"]),
        ("node --eval '{{v}}'", &["Code(node --eval)"]),
        ("awk '{print \"{{v}}\"}' f", &["Code(awk)"]),
        ("gawk -F: -v n=1 '/{{v}}/' f", &["Code(gawk)"]),
        ("su - pg -c 'psql {{v}}'", &["Code(su -c)"]),
        ("watch -n 5 'ls {{v}}'", &["Code(watch)"]),
        ("sh <<EOF\necho {{v}}\nEOF", &["Code(sh, stdin)"]),
        ("cat <<EOF | bash\necho {{v}}\nEOF", &["Code(bash, stdin)"]),
        ("printf '%s' {{v}} | sh -s", &["Code(sh, stdin)"]),
        ("bash <<< \"echo {{v}}\"", &["Code(bash, stdin)"]),
        ("python3 - <<EOF\nprint('{{v}}')\nEOF", &["Code(python3, stdin)"]),
        ("ssh host <<EOF\nls {{v}}\nEOF", &["Code(ssh, stdin)"]),
        // Shell code as the argument of a builtin.
        ("trap 'rm {{v}}' EXIT", &["Code(trap)"]),
        ("trap \"echo {{v}}\" EXIT", &["Code(trap)"]),
        ("alias e='echo {{v}}'", &["Code(alias)"]),
        // Code attached to its flag, and flags grouped with others.
        ("python3 -c\"print('{{v}}')\"", &["Code(python3 -c)"]),
        ("python3 '-cprint(\"{{v}}\")'", &["Code(python3 -c)"]),
        ("python3 -Ec '{{v}}'", &["Code(python3 -Ec)"]),
        ("perl -e'print \"{{v}}\"'", &["Code(perl -e)"]),
        ("perl -le'print \"{{v}}\"'", &["Code(perl -le)"]),
        ("node --eval=\"{{v}}\"", &["Code(node --eval)"]),
        ("node -pe \"{{v}}\"", &["Code(node -p)"]),
        ("script -qc 'ls {{v}}' /dev/null", &["Code(script -qc)"]),
        ("su root -lc 'ls {{v}}'", &["Code(su -lc)"]),
        ("su --command='ls {{v}}' root", &["Code(su --command)"]),
        ("gawk -e '{print \"{{v}}\"}' f", &["Code(gawk)"]),
        // Code read from a descriptor.
        ("sh /dev/stdin <<EOF\necho {{v}}\nEOF", &["Code(sh, stdin)"]),
        (". /dev/stdin <<EOF\necho {{v}}\nEOF", &["Code(., stdin)"]),
        ("sh /dev/fd/3 3<<EOF\necho {{v}}\nEOF", &["Code(sh, stdin)"]),
        (
            "python3 /dev/stdin <<EOF\nprint('{{v}}')\nEOF",
            &["Code(python3, stdin)"],
        ),
        // A pipe into a shell further along, or from a group.
        ("echo {{v}} | cat | sh", &["Code(sh, stdin)"]),
        ("echo {{v}} | tee /dev/null | sh", &["Code(sh, stdin)"]),
        ("{ echo {{v}}; } | sh", &["Code(sh, stdin)"]),
        ("(echo {{v}}) | sh", &["Code(sh, stdin)"]),
        ("echo {{v}} | (sh)", &["Code(sh, stdin)"]),
        ("echo \"$(echo {{v}})\" | sh", &["Code(sh, stdin)"]),
        // env -S splits its string into a command line.
        ("env -S 'sh -c {{v}}'", &["Code(env -S)"]),
        ("env -iS\"sh -c {{v}}\"", &["Code(env -iS)"]),
        // Data: arguments after the code, files, other programs, words that only look alike.
        ("sh -c 'echo \"$1\"' sh {{v}}", &["Word"]),
        ("X={{v}} sh -c 'echo \"$X\"'", &["Word"]),
        ("bash script.sh {{v}} <<EOF\n{{v}}\nEOF", &["Word", "Heredoc"]),
        ("python3 -c 'import sys; print(sys.argv[1])' {{v}}", &["Word"]),
        ("python3 -m json.tool {{v}}", &["Word"]),
        ("perl script.pl {{v}}", &["Word"]),
        ("awk -v x={{v}} '{print x}' f", &["Word"]),
        ("awk -f prog.awk {{v}}", &["Word"]),
        ("ssh {{v}} uptime", &["Word"]),
        ("rsync -e ssh {{v}} host:dst", &["Word"]),
        ("printf '%s' {{v}} | grep sh", &["Word"]),
        ("grep -c sh {{v}}", &["Word"]),
        ("echo {{v}} | ssh host 'cat > f'", &["Word"]),
        ("awk -F{{v}} '{print}' f", &["Word"]),
        ("awk --field-separator={{v}} '{print}' f", &["Word"]),
        ("perl -pi.bak -e 's/a/b/' {{v}}", &["Word"]),
        ("perl -Mstrict -le 'print 1' {{v}}", &["Word"]),
        ("python3 -W ignore script.py {{v}}", &["Word"]),
        ("node -r dotenv/config app.js {{v}}", &["Word"]),
        ("echo {{v}} > f; cat f | sort", &["Word"]),
        ("echo {{v}}; echo a | sh", &["Word"]),
        ("(echo {{v}}); echo a | sh", &["Word"]),
        ("{ echo {{v}}; }; echo a | sh", &["Word"]),
        ("sh /dev/null {{v}}", &["Word"]),
        ("env -u X -- ls {{v}}", &["Word"]),
    ];
    for (text, want) in table {
        assert_eq!(places(text), *want, "in {text:?}");
    }
}

#[test]
fn argv_code_for_another_interpreter_is_refused() {
    let argv = |items: &[&str]| -> Vec<usize> {
        let t: Vec<Template> = items.iter().map(|i| Template::parse(i).unwrap()).collect();
        refuse_argv(&t).into_iter().map(|(i, _)| i).collect()
    };
    assert_eq!(argv(&["bash", "-c", "echo {{v}}"]), vec![2]);
    assert_eq!(
        argv(&["sh", "-c", "echo \"$1\"", "sh", "{{v}}"]),
        Vec::<usize>::new()
    );
    assert_eq!(argv(&["python3", "-c", "{{v}}"]), vec![2]);
    assert_eq!(argv(&["python3", "-c{{v}}"]), vec![1]);
    assert_eq!(argv(&["perl", "-e{{v}}"]), vec![1]);
    assert_eq!(argv(&["perl", "-le", "{{v}}"]), vec![2]);
    assert_eq!(argv(&["node", "-pe", "{{v}}"]), vec![2]);
    assert_eq!(argv(&["node", "--eval={{v}}"]), vec![1]);
    assert_eq!(argv(&["script", "-qc", "{{v}}", "/dev/null"]), vec![2]);
    assert_eq!(argv(&["su", "root", "-lc", "{{v}}"]), vec![3]);
    assert_eq!(argv(&["trap", "{{v}}", "EXIT"]), vec![1]);
    assert_eq!(argv(&["env", "-S", "sh -c {{v}}"]), vec![2]);
    assert_eq!(argv(&["awk", "-F{{v}}", "{print}"]), Vec::<usize>::new());
    assert_eq!(argv(&["tasks/load.py", "--date", "{{v}}"]), Vec::<usize>::new());
}

/// Run `cmd` under `sh` in an empty directory; its output, and whether anything ran `touch`.
fn run(sh: &str, cmd: &ShellCommand, dir: &Path) -> String {
    let out = Command::new(sh)
        .arg("-c")
        .arg(&cmd.script)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sh} failed on {:?}: {}",
        cmd.script,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("PWNED").exists(), "{sh} ran code from {cmd:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn values_reach_the_command_literally_under_dash_and_bash() {
    let templates = [
        "printf '%s|' {{v}}",
        "printf '%s|' \"{{v}}\" '{{v}}' x{{v}}y \"pre {{v}} post\" 'pre {{v}} post'",
        "printf '%s|' \"$(printf '%s' {{v}})\" \"$(printf '%s' \"{{v}}\")\" \"$(printf '%s' '{{v}}')\"",
        "x=`printf '%s' \"{{v}}\"`; printf '%s|' \"`printf '%s' {{v}}`\" \"$x\"",
        "printf '%s|' \"`printf '%s' \\\"{{v}}\\\"`\"",
        "cat <<EOF\n{{v}}\n'{{v}}' \"{{v}}\" $(printf '%s' {{v}})\nEOF",
        "cat <<-EOF\n\t{{v}}\n\tEOF",
        "printf '%s|' \"${UNSET:-{{v}}}\" ${UNSET:-{{v}}} ${UNSET:-'{{v}}'}",
        "case {{v}} in \"$PLUMB_VALUE_1\") echo same;; esac",
        "case lit in {{v}}) echo glob;; *) echo literal;; esac",
        "echo ok # {{v}}",
        "f() { printf '%s|' {{v}}; }; set -- a b; f c",
        "x={{v}}; printf '%s|' \"$x\"",
    ];
    let dir = tempfile::tempdir().unwrap();
    let shells: Vec<&str> = ["/bin/sh", "/bin/bash"]
        .into_iter()
        .filter(|s| Path::new(s).exists())
        .collect();
    const MARK: &str = "QvalueQ";
    for text in templates {
        let t = shell(text).unwrap();
        for sh in &shells {
            let expected_shape = run(sh, &t.render(|_| Some(MARK)), dir.path());
            for value in NASTY {
                let got = run(sh, &t.render(|_| Some(value)), dir.path());
                assert_eq!(
                    got,
                    expected_shape.replace(MARK, value),
                    "{sh}: template {text:?} value {value:?}"
                );
            }
        }
    }
}

#[test]
fn the_command_text_holds_references_never_values() {
    let t = shell("echo {{a}} \"{{b}}\" '{{a}}' # {{b}}").unwrap();
    let c = t.render(|n| Some(if n == "a" { "$(x)" } else { "it's" }));
    assert_eq!(
        c.script,
        r#"echo "${PLUMB_VALUE_1}" "${PLUMB_VALUE_2}" ''"${PLUMB_VALUE_1}"'' # "${PLUMB_VALUE_2}""#
    );
    assert_eq!(
        c.env,
        vec![
            ("PLUMB_VALUE_1".to_string(), "$(x)".to_string()),
            ("PLUMB_VALUE_2".to_string(), "it's".to_string())
        ]
    );
    let t = shell("cat <<EOF\n{{a}}\nEOF").unwrap();
    assert_eq!(t.render(|_| Some("v")).script, "cat <<EOF\n${PLUMB_VALUE_1}\nEOF");
}

#[test]
fn the_display_reads_as_the_command_did_before_values_left_it() {
    // These are the texts the earlier quoting wrote into the command itself; fingerprints are
    // taken of the display, so markers from then stay done.
    let show = |text: &str, v: &str| shell(text).unwrap().render(|_| Some(v)).display;
    assert_eq!(
        show("tasks/extract.sh orders {{v}} --x={{v}}", "2026-11-20"),
        "tasks/extract.sh orders 2026-11-20 --x=2026-11-20"
    );
    assert_eq!(show("echo {{v}}", "a b"), "echo 'a b'");
    assert_eq!(
        show("echo \"{{v}}\"", "say \"hi\" $x"),
        r#"echo "say \"hi\" \$x""#
    );
    assert_eq!(show("echo '{{v}}'", "it's"), r"echo 'it'\''s'");
    assert_eq!(show("cat <<EOF\n{{v}}\nEOF", "eu"), "cat <<EOF\neu\nEOF");
    // Outside an attempt, run_id and attempt are shown as written.
    let t = shell("echo {{run_id}} {{v}}").unwrap();
    assert_eq!(
        t.render(|n| (n == "v").then_some("x")).display,
        "echo {{run_id}} x"
    );
}

/// A small deterministic generator (no crate needed for a test).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn random_shell_text_never_runs_a_value() {
    const PIECES: &[&str] = &[
        "'",
        "\"",
        "\\",
        "$",
        "(",
        ")",
        "`",
        "{",
        "}",
        "#",
        ";",
        "|",
        "&",
        "<",
        ">",
        " ",
        "\n",
        "\t",
        "<<EOF\n",
        "\nEOF\n",
        "<<-EOF\n",
        "<<'EOF'\n",
        "echo ",
        "printf %s ",
        "cat ",
        "x",
        "=",
        "-",
        "$(",
        "${x:-",
        "$((",
        "case ",
        " in ",
        ") ;; ",
        "esac",
        "{{v}}",
        "{{v}}",
        "{{v}}",
        "{{w}}",
    ];
    const VALUES: &[&str] = &[
        "$(touch PWNED)",
        "`touch PWNED`",
        "';touch PWNED;'",
        "\";touch PWNED;\"",
        "x\nEOF\ntouch PWNED\n",
        ")\ntouch PWNED\n(",
        "\\\";touch PWNED;#",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(0x5eed);
    let mut accepted = 0;
    for _ in 0..300 {
        let text: String = (0..1 + rng.below(14))
            .map(|_| PIECES[rng.below(PIECES.len())])
            .collect();
        let Ok(template) = Template::parse(&text) else {
            continue;
        };
        // Never panics, whatever the text.
        let Ok(t) = ShellTemplate::new(template) else {
            continue;
        };
        accepted += 1;
        for value in VALUES {
            let c = t.render(|_| Some(value));
            let _ = Command::new("/bin/sh")
                .arg("-c")
                .arg(&c.script)
                .envs(c.env.iter().map(|(k, v)| (k, v)))
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                !dir.path().join("PWNED").exists(),
                "{text:?} with {value:?} ran it: {c:?}"
            );
        }
    }
    assert!(accepted > 100, "only {accepted} templates accepted");
}

#[test]
fn the_files_a_shell_command_executes_are_found_in_every_simple_command() {
    let values = |name: &str| match name {
        "table" => Some("orders"),
        "date" => Some("2026-11-20"),
        "dir" => Some("my tasks"),
        _ => None,
    };
    let table: &[(&str, &[&str])] = &[
        (
            "tasks/extract.sh {{table}} {{date}} > data/{{date}}.csv",
            &["tasks/extract.sh"],
        ),
        (
            "python3 tasks/load.py --db data/w.db && ./tasks/report.sh | gzip > r.gz",
            &["tasks/load.py", "./tasks/report.sh"],
        ),
        ("x=$(tasks/count.sh {{date}}); echo $x", &["tasks/count.sh"]),
        (
            "if test -f data/x; then bash 'tasks/a b.sh'; fi",
            &["tasks/a b.sh"],
        ),
        ("cat tasks/notes.txt; sqlite3 data/w.db < tasks/q.sql", &[]),
        ("sh -c 'tasks/x.sh'", &[]),
        // A placeholder where the script stands: the rendered command decides.
        ("tasks/{{table}}.sh {{date}}", &["tasks/orders.sh"]),
        ("python3 {{dir}}/load.py", &["my tasks/load.py"]),
        // A shell expansion cannot be known.
        ("$TASKS/x.sh; tasks/y.sh", &["tasks/y.sh"]),
        ("tasks/x.sh {{run_id}}; tasks/x.sh again", &["tasks/x.sh"]),
    ];
    for (text, want) in table {
        let t = shell(text).expect("valid");
        let display = t.render(values).display;
        assert_eq!(t.scripts(&display), *want, "{text}");
    }
    assert!(matches!(
        shell("tasks/x.sh {{date}}").unwrap().scripts,
        Scripts::Literal(_)
    ));
    assert_eq!(shell("tasks/{{table}}.sh").unwrap().scripts, Scripts::PerValue);
}
