//! Which words of a command are code for another interpreter.
//!
//! plumb can make a value data for the `/bin/sh` that runs a command, but not for a program that
//! parses a string as code of its own: `sh -c`, `bash -c`, `eval`, the remote shell of `ssh`,
//! `python -c`, `perl -e`, an `awk` program, and what such a program reads as code on standard
//! input (`sh <<EOF`, `... | bash`). A placeholder there is refused, and the refusal says how to
//! read the value from the environment in that language instead.
//!
//! The programs are recognised by name, as written (`/bin/bash` counts as `bash`), at the
//! command's position after assignments, reserved words and wrappers such as `sudo`, `env`,
//! `timeout` and `xargs`; a shell's `-c` counts anywhere in the command, so that
//! `docker exec box sh -c '...'` and `find -exec sh -c '...'` are caught too. This is a list of
//! well-known programs, not a proof: a program plumb does not know (or one named by a variable)
//! is taken to receive data.

/// One word of a simple command, as far as the lexer could tell.
#[derive(Debug, Clone, Default)]
pub struct Word {
    /// Its text after quote removal, when it holds no expansion.
    pub text: Option<String>,
    /// The literal text before its first expansion (`X=` of `X="{{v}}"`).
    pub lead: String,
    /// The placeholders inside it, at any depth.
    pub phs: Vec<usize>,
}

impl Word {
    pub(super) fn program(&self) -> Option<&str> {
        self.text.as_deref().map(|t| t.rsplit('/').next().unwrap_or(t))
    }

    pub(super) fn is_option(&self) -> bool {
        self.text
            .as_deref()
            .is_some_and(|t| t.len() > 1 && t.starts_with('-'))
    }
}

/// The interpreter that would parse a value as code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interp {
    /// How the user wrote it: `bash -c`, `eval`, `ssh`, `python3 -c`.
    pub shown: String,
    pub lang: Lang,
    /// The code is what the program reads on standard input.
    pub stdin: bool,
}

impl Interp {
    fn new(shown: String, lang: Lang) -> Interp {
        Interp {
            shown,
            lang,
            stdin: false,
        }
    }

    pub fn from_stdin(mut self) -> Interp {
        self.stdin = true;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Shell,
    Ssh,
    Python,
    Perl,
    Ruby,
    Node,
    Php,
    R,
    Lua,
    Awk,
}

impl Lang {
    /// How code in this language reads environment variable `var`.
    pub fn env_form(self, var: &str) -> String {
        match self {
            Lang::Shell | Lang::Ssh => format!("\"${var}\""),
            Lang::Python => format!("os.environ[\"{var}\"]"),
            Lang::Perl => format!("$ENV{{{var}}}"),
            Lang::Ruby => format!("ENV[\"{var}\"]"),
            Lang::Node => format!("process.env.{var}"),
            Lang::Php => format!("getenv(\"{var}\")"),
            Lang::R => format!("Sys.getenv(\"{var}\")"),
            Lang::Lua => format!("os.getenv(\"{var}\")"),
            Lang::Awk => format!("ENVIRON[\"{var}\"]"),
        }
    }
}

pub(super) const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "lksh", "oksh", "ash", "yash", "posh", "fish",
    "csh", "tcsh",
];

/// Words that may come before the command's program.
const RESERVED: &[&str] = &[
    "!", "{", "if", "then", "else", "elif", "do", "while", "until", "time",
];

/// Programs that run another program: (name, options that take an argument, operands before the
/// program).
const WRAPPERS: &[(&str, &[&str], usize)] = &[
    (
        "sudo",
        &[
            "-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "-R", "--user", "--group",
        ],
        0,
    ),
    ("doas", &["-u", "-C"], 0),
    ("env", &["-u", "-C", "-P", "--unset", "--chdir"], 0),
    ("nice", &["-n", "--adjustment"], 0),
    ("nohup", &[], 0),
    ("setsid", &[], 0),
    ("exec", &["-a"], 0),
    ("command", &[], 0),
    ("builtin", &[], 0),
    ("time", &["-f", "-o", "--format", "--output"], 0),
    ("timeout", &["-s", "-k", "--signal", "--kill-after"], 1),
    ("stdbuf", &["-i", "-o", "-e"], 0),
    ("ionice", &["-c", "-n", "-p", "-P", "-u"], 0),
    ("chrt", &["-p"], 1),
    ("taskset", &[], 1),
    ("unbuffer", &[], 0),
    ("chroot", &["--userspec", "--groups"], 1),
    (
        "xargs",
        &[
            "-I",
            "-n",
            "-P",
            "-d",
            "-E",
            "-L",
            "-s",
            "-a",
            "--arg-file",
            "--delimiter",
            "--max-args",
        ],
        0,
    ),
];

/// The words of `words` that are code for another interpreter, with that interpreter.
pub fn code_words(words: &[Word]) -> Vec<(usize, Interp)> {
    let mut out = Vec::new();
    // A shell's -c, wherever it stands.
    for i in 0..words.len() {
        if let Some(p) = words[i].program()
            && SHELLS.contains(&p)
            && let Shell::Code(j, flag) = shell(words, i)
        {
            out.push((j, Interp::new(format!("{p} {flag}"), Lang::Shell)));
        }
    }
    let Some(i) = command_position(words) else {
        return out;
    };
    let program = words[i].program().expect("a command position has literal text");
    let rest = i + 1..words.len();
    match program {
        "eval" => out.extend(rest.map(|j| (j, Interp::new("eval".into(), Lang::Shell)))),
        "ssh" => {
            if let Some(dest) = ssh_destination(words, i) {
                out.extend((dest + 1..words.len()).map(|j| (j, Interp::new("ssh".into(), Lang::Ssh))));
            }
        }
        "su" | "runuser" | "flock" | "script" => {
            for j in rest {
                let flag = words[j].text.as_deref();
                if matches!(flag, Some("-c" | "--command")) && j + 1 < words.len() {
                    let shown = format!("{program} {}", flag.unwrap_or_default());
                    out.push((j + 1, Interp::new(shown, Lang::Shell)));
                }
            }
        }
        "watch" => {
            let mut j = i + 1;
            while j < words.len() {
                match words[j].text.as_deref() {
                    Some("-n" | "--interval") => j += 2,
                    _ if words[j].is_option() => j += 1,
                    _ => {
                        out.push((j, Interp::new("watch".into(), Lang::Shell)));
                        j += 1;
                    }
                }
            }
        }
        p if awk(p) => {
            if let Some(j) = awk_program(words, i) {
                out.push((j, Interp::new(p.to_string(), Lang::Awk)));
            }
        }
        p => {
            if let Some(lang) = language(p) {
                let (code, _) = flagged(words, i, lang);
                out.extend(
                    code.into_iter()
                        .map(|(j, flag)| (j, Interp::new(format!("{p} {flag}"), lang))),
                );
            }
        }
    }
    out
}

/// The interpreter that runs what this command reads on standard input, if it is one.
pub fn reads_code(words: &[Word]) -> Option<Interp> {
    let i = command_position(words)?;
    let p = words[i].program()?;
    if SHELLS.contains(&p) {
        return matches!(shell(words, i), Shell::Stdin).then(|| Interp::new(p.into(), Lang::Shell));
    }
    if p == "ssh" {
        let dest = ssh_destination(words, i)?;
        return (dest + 1 == words.len()).then(|| Interp::new("ssh".into(), Lang::Ssh));
    }
    let lang = language(p)?;
    let (code, operand) = flagged(words, i, lang);
    let stdin = code.is_empty() && operand.is_none_or(|j| words[j].text.as_deref() == Some("-"));
    stdin.then(|| Interp::new(p.into(), lang))
}

/// Where the program of the command stands: after assignments, reserved words and wrappers.
fn command_position(words: &[Word]) -> Option<usize> {
    match position(words) {
        Position::At(i) => Some(i),
        Position::End | Position::Dynamic(_) => None,
    }
}

/// Where a command's program stands, if its words say.
pub(super) enum Position {
    /// The program is the word at this index, written literally.
    At(usize),
    /// The command has no program (only assignments, or nothing).
    End,
    /// The word at this index, which holds an expansion, stands where the program (or a
    /// wrapper's argument that decides where the program is) would.
    Dynamic(usize),
}

pub(super) fn position(words: &[Word]) -> Position {
    let mut i = 0;
    while i < words.len()
        && (is_assignment(&words[i]) || words[i].text.as_deref().is_some_and(|t| RESERVED.contains(&t)))
    {
        i += 1;
    }
    loop {
        let Some(w) = words.get(i) else {
            return Position::End;
        };
        let Some(p) = w.program() else {
            return Position::Dynamic(i);
        };
        let Some(&(_, takes_arg, operands)) = WRAPPERS.iter().find(|(w, _, _)| *w == p) else {
            return Position::At(i);
        };
        i += 1;
        while let Some(t) = words.get(i).and_then(|w| w.text.as_deref()) {
            if t == "--" {
                i += 1;
                break;
            }
            if t.len() > 1 && t.starts_with('-') {
                i += if takes_arg.contains(&t) { 2 } else { 1 };
            } else if p == "env" && t.contains('=') {
                i += 1;
            } else {
                break;
            }
        }
        i += operands;
    }
}

fn is_assignment(w: &Word) -> bool {
    let Some((name, _)) = w.lead.split_once('=') else {
        return false;
    };
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) enum Shell {
    /// The word at this index is the code of `-c` (the flag as written).
    Code(usize, String),
    /// The shell reads its commands from standard input.
    Stdin,
    /// It runs the script file named by the word at this index, or (`None`) the arguments
    /// could not be read.
    Other(Option<usize>),
}

/// What the shell named at `i` runs.
pub(super) fn shell(words: &[Word], i: usize) -> Shell {
    let mut code = None;
    let mut stdin = false;
    let mut j = i + 1;
    while let Some(w) = words.get(j) {
        let Some(t) = w.text.as_deref() else {
            break;
        };
        match t {
            "--" | "-" => {
                j += 1;
                if t == "-" {
                    stdin = true;
                }
                break;
            }
            "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file" => j += 2,
            _ if t.starts_with("--") => j += 1,
            _ if t.len() > 1 && (t.starts_with('-') || t.starts_with('+')) => {
                if t.starts_with('-') && t.contains('c') {
                    code = Some(t.to_string());
                }
                stdin |= t.contains('s');
                // `-eo pipefail`: the last option of the cluster takes the next word.
                j += if t.ends_with('o') || t.ends_with('O') {
                    2
                } else {
                    1
                };
            }
            _ => break,
        }
    }
    match code {
        Some(flag) if j < words.len() => Shell::Code(j, flag),
        Some(_) => Shell::Other(None),
        None if stdin || j >= words.len() => Shell::Stdin,
        None => Shell::Other(Some(j)),
    }
}

/// The index of the destination word of the `ssh` at `i`.
fn ssh_destination(words: &[Word], i: usize) -> Option<usize> {
    const TAKES_ARG: &str = "BbcDEeFIiJLlmOoPpQRSWw";
    let mut j = i + 1;
    while let Some(t) = words.get(j)?.text.as_deref() {
        if t == "--" {
            j += 1;
            break;
        }
        if !(t.len() > 1 && t.starts_with('-')) {
            break;
        }
        // In a cluster, the first option that takes an argument takes the rest of the word, or
        // the next word when it is last.
        let opts: Vec<char> = t[1..].chars().collect();
        let takes_next = opts
            .iter()
            .position(|c| TAKES_ARG.contains(*c))
            .is_some_and(|n| n + 1 == opts.len());
        j += if takes_next { 2 } else { 1 };
    }
    (j < words.len()).then_some(j)
}

pub(super) fn awk(p: &str) -> bool {
    matches!(p, "awk" | "gawk" | "mawk" | "nawk")
}

/// The program operand of the `awk` at `i`, unless it reads its program from a file.
fn awk_program(words: &[Word], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while let Some(t) = words.get(j)?.text.as_deref() {
        match t {
            "--" => {
                j += 1;
                break;
            }
            "-f" | "--file" | "-E" | "--exec" | "-e" | "--source" => return None,
            "-v" | "-F" | "-W" | "-i" | "-l" | "--assign" | "--field-separator" | "--include" | "--load" => {
                j += 2
            }
            _ if t.starts_with("-f") => return None,
            _ if t.len() > 1 && t.starts_with('-') => j += 1,
            _ => break,
        }
    }
    (j < words.len()).then_some(j)
}

/// Interpreters whose code comes after a flag, and which read code on standard input without
/// one.
pub(super) fn language(p: &str) -> Option<Lang> {
    let versioned = |base: &str| {
        p.strip_prefix(base)
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    Some(match p {
        _ if versioned("python") || versioned("pypy") => Lang::Python,
        _ if versioned("perl") => Lang::Perl,
        _ if versioned("ruby") => Lang::Ruby,
        "node" | "nodejs" | "bun" => Lang::Node,
        _ if versioned("php") => Lang::Php,
        "Rscript" | "R" => Lang::R,
        _ if versioned("lua") || p == "luajit" => Lang::Lua,
        _ => return None,
    })
}

/// For the interpreter at `i`: the words that are code (with the flag that makes them so), and
/// the first operand (a script file, or `-`), if any.
pub(super) fn flagged(words: &[Word], i: usize, lang: Lang) -> (Vec<(usize, String)>, Option<usize>) {
    let mut code = Vec::new();
    let mut j = i + 1;
    while let Some(t) = words.get(j).map(|w| w.text.as_deref()) {
        let Some(t) = t else {
            return (code, Some(j));
        };
        if t == "--" {
            j += 1;
            break;
        }
        if !(t.len() > 1 && t.starts_with('-')) {
            return (code, Some(j));
        }
        let is_code = match lang {
            Lang::Python => t == "-c" || (!t.starts_with("--") && t.ends_with('c')),
            // `-e`, `-ne`, `-lane`, `-E`, but not `-Mfeature=e`.
            Lang::Perl | Lang::Ruby => {
                !t.starts_with("--")
                    && t[1..].chars().all(|c| c.is_ascii_alphabetic())
                    && (t.ends_with('e') || (lang == Lang::Perl && t.ends_with('E')))
                    && !t[1..].starts_with(['M', 'm', 'I', 'i', 'x', 'd', 'r'])
            }
            Lang::Node => matches!(t, "-e" | "--eval" | "-p" | "--print"),
            Lang::Php => t == "-r",
            Lang::R | Lang::Lua => t == "-e",
            Lang::Shell | Lang::Ssh | Lang::Awk => false,
        };
        let takes_arg = match lang {
            Lang::Python => matches!(t, "-W" | "-X"),
            Lang::Node => matches!(t, "-r" | "--require" | "--import" | "--loader"),
            _ => false,
        };
        if is_code {
            if j + 1 < words.len() {
                code.push((j + 1, t.to_string()));
            }
            j += 2;
            if lang == Lang::Python {
                // Everything after python's -c CODE is sys.argv.
                return (code, None);
            }
        } else if lang == Lang::Python && t == "-m" {
            return (code, Some(j));
        } else {
            j += if takes_arg { 2 } else { 1 };
        }
    }
    let operand = (j < words.len()).then_some(j);
    (code, operand)
}
