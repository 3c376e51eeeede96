//! Which words of a command name a file that it executes: the scripts a task's fingerprint
//! covers, so that editing `tasks/load.py` shows the task as `changed`.
//!
//! The rule is deliberately narrow, because a file named on a command line is as often data
//! (`--db data/warehouse.db`, which the task rewrites on every run) as code. For each simple
//! command, at the program's position (after assignments, reserved words and the wrappers
//! [`super::interp`] knows: `env`, `exec`, `nice`, `timeout`, `sudo`, `xargs`, ...), a word
//! counts when it is:
//! - the program itself, written with a `/` (`tasks/extract.sh`, `./run`): sh and execve run
//!   such a word as a path, never from `PATH`;
//! - the script a shell runs (`bash -e tasks/x.sh`), unless it runs `-c` code or standard input;
//! - the script an interpreter runs (`python3 -u tasks/load.py`, `perl`, `ruby`, `node`, `php`,
//!   `Rscript`, `lua`): its first operand after its options, unless the code is given inline
//!   (`-c`, `-e`) or is a module (`python3 -m`);
//! - the file of `.` or `source`, and the program file of `awk -f FILE`.
//!
//! Whether such a word names a project file is decided by the caller, against the filesystem.

use super::interp::{self, Position, SHELLS, Shell, Word};

/// What a simple command executes from files.
#[derive(Debug, PartialEq, Eq)]
pub enum Runs {
    /// The indices of the words that name executed files (possibly none).
    Files(Vec<usize>),
    /// The word at this index holds an expansion and decides what runs: only its value can say.
    Unknown(usize),
}

/// The words of one simple command that name files it executes.
pub fn executed(words: &[Word]) -> Runs {
    let i = match interp::position(words) {
        Position::At(i) => i,
        Position::End => return Runs::Files(Vec::new()),
        Position::Dynamic(j) => return Runs::Unknown(j),
    };
    let program = words[i].program().expect("a command position has literal text");
    let mut files = Vec::new();
    if words[i].text.as_deref().is_some_and(|t| t.contains('/')) {
        files.push(i);
    }
    let operand = |j: usize| match words.get(j) {
        Some(w) if w.text.as_deref().is_some_and(|t| t != "-") => Ok(Some(j)),
        Some(w) if w.text.is_none() => Err(Runs::Unknown(j)),
        _ => Ok(None),
    };
    let script = match program {
        "." | "source" => {
            let j = if words.get(i + 1).and_then(|w| w.text.as_deref()) == Some("--") {
                i + 2
            } else {
                i + 1
            };
            operand(j)
        }
        p if SHELLS.contains(&p) => match interp::shell(words, i) {
            Shell::Other(Some(j)) => operand(j),
            _ => Ok(None),
        },
        p if interp::awk(p) => awk_file(words, i),
        p => match interp::language(p) {
            Some(lang) => match interp::flagged(words, i, lang) {
                (code, Some(j)) if code.is_empty() && words[j].text.as_deref() != Some("-m") => operand(j),
                _ => Ok(None),
            },
            None => Ok(None),
        },
    };
    match script {
        Ok(Some(j)) => files.push(j),
        Ok(None) => {}
        Err(unknown) => return unknown,
    }
    Runs::Files(files)
}

/// The word after `awk -f` (or `--file`), if the program comes from a file.
fn awk_file(words: &[Word], i: usize) -> Result<Option<usize>, Runs> {
    let mut j = i + 1;
    while let Some(t) = words.get(j).and_then(|w| w.text.as_deref()) {
        match t {
            "-f" | "--file" => {
                return match words.get(j + 1) {
                    Some(w) if w.text.is_some() => Ok(Some(j + 1)),
                    Some(_) => Err(Runs::Unknown(j + 1)),
                    None => Ok(None),
                };
            }
            "-v" | "-F" | "-W" | "-i" | "-l" | "--assign" | "--field-separator" | "--include" | "--load" => {
                j += 2
            }
            _ if t.len() > 1 && t.starts_with('-') && t != "--" => j += 1,
            _ => break,
        }
    }
    Ok(None)
}

/// The words of an array command, all literal once rendered.
pub fn argv_words(argv: &[String]) -> Vec<Word> {
    argv.iter()
        .map(|a| Word {
            text: Some(a.clone()),
            lead: a.clone(),
            phs: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Word> {
        argv_words(&line.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    fn files(line: &str) -> Vec<String> {
        let w = words(line);
        match executed(&w) {
            Runs::Files(js) => js.iter().map(|&j| w[j].text.clone().unwrap()).collect(),
            Runs::Unknown(j) => panic!("unknown at {j} in {line}"),
        }
    }

    #[test]
    fn programs_with_a_slash_and_the_scripts_interpreters_run() {
        let cases: &[(&str, &[&str])] = &[
            ("tasks/extract.sh orders 2026-11-20", &["tasks/extract.sh"]),
            ("./run.sh", &["./run.sh"]),
            ("extract.sh orders", &[]),
            ("python3 tasks/load.py --db data/warehouse.db", &["tasks/load.py"]),
            ("python3.12 -u -W ignore::x tasks/load.py", &["tasks/load.py"]),
            (
                "/usr/bin/python3 -X dev tasks/load.py",
                &["/usr/bin/python3", "tasks/load.py"],
            ),
            ("python3 -m tasks.load data/x.csv", &[]),
            ("python3 -c print(1) tasks/x.py", &[]),
            ("python3", &[]),
            ("python3 - data/x", &[]),
            ("bash -eu tasks/x.sh a b", &["tasks/x.sh"]),
            ("sh -c tasks/x.sh", &[]),
            ("bash -o pipefail tasks/x.sh", &["tasks/x.sh"]),
            ("perl -w tasks/x.pl data/in", &["tasks/x.pl"]),
            ("perl -ne print data/in", &[]),
            ("node --require ./hook.js tasks/x.js", &["tasks/x.js"]),
            ("Rscript tasks/model.R", &["tasks/model.R"]),
            ("awk -F , -f tasks/sum.awk data/x.csv", &["tasks/sum.awk"]),
            ("awk {print} data/x.csv", &[]),
            (". tasks/env.sh", &["tasks/env.sh"]),
            ("source -- tasks/env.sh", &["tasks/env.sh"]),
            (
                "env -u HOME A=1 timeout -s KILL 60 nice -n 5 python3 tasks/x.py",
                &["tasks/x.py"],
            ),
            ("X=1 exec tasks/x.sh", &["tasks/x.sh"]),
            ("sqlite3 data/warehouse.db", &[]),
            ("cp tasks/x.sh data/", &[]),
            ("A=1", &[]),
        ];
        for (line, want) in cases {
            assert_eq!(files(line), *want, "{line}");
        }
    }

    #[test]
    fn an_expansion_where_the_program_or_script_stands_is_unknown() {
        let mut w = words("python3 SCRIPT data/x");
        w[1].text = None;
        assert_eq!(executed(&w), Runs::Unknown(1));
        let mut w = words("PROG --x");
        w[0].text = None;
        assert_eq!(executed(&w), Runs::Unknown(0));
        // An expansion among the data does not matter.
        let mut w = words("tasks/x.sh DATA");
        w[1].text = None;
        assert_eq!(executed(&w), Runs::Files(vec![0]));
    }
}
