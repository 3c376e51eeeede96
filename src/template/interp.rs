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
    // `env -S STRING` splits the string into a command line of its own.
    for i in 0..words.len() {
        if words[i].program() == Some("env") {
            let flags = Flags {
                code: "S",
                long_code: &["--split-string"],
                arg: "uCP",
                long_arg: &["--unset", "--chdir"],
                ..Flags::NONE
            };
            let mut j = i + 1;
            while j < words.len() && is_option(&words[j]) {
                match option(&words[j], &flags) {
                    Opt::Code(flag, attached) => {
                        let at = if attached { j } else { j + 1 };
                        if at < words.len() {
                            out.push((at, Interp::new(format!("env {flag}"), Lang::Shell)));
                        }
                        break;
                    }
                    Opt::Arg(_, attached) => j += if attached { 1 } else { 2 },
                    Opt::Plain => j += 1,
                }
            }
        }
    }
    let Some(i) = command_position(words) else {
        return out;
    };
    let program = words[i].program().expect("a command position has literal text");
    let rest = i + 1..words.len();
    match program {
        // Each takes shell code as an argument: the action of a trap, the value of an alias.
        "eval" | "trap" | "alias" => out.extend(rest.map(|j| (j, Interp::new(program.into(), Lang::Shell)))),
        "ssh" => {
            if let Some(dest) = ssh_destination(words, i) {
                out.extend((dest + 1..words.len()).map(|j| (j, Interp::new("ssh".into(), Lang::Ssh))));
            }
        }
        "su" | "runuser" | "flock" | "script" => {
            let arg = match program {
                "su" | "runuser" => "gGsw",
                "script" => "EIOBTm",
                _ => "wE",
            };
            let flags = Flags {
                code: "c",
                long_code: &["--command"],
                arg,
                ..Flags::NONE
            };
            for j in rest {
                if is_option(&words[j])
                    && let Opt::Code(flag, attached) = option(&words[j], &flags)
                {
                    let at = if attached { j } else { j + 1 };
                    if at < words.len() {
                        out.push((at, Interp::new(format!("{program} {flag}"), Lang::Shell)));
                    }
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
        let stdin = match shell(words, i) {
            Shell::Stdin => true,
            Shell::Other(Some(j)) => reads_descriptor(&words[j]),
            _ => false,
        };
        return stdin.then(|| Interp::new(p.into(), Lang::Shell));
    }
    if matches!(p, "." | "source") {
        let stdin = words.get(i + 1).is_some_and(reads_descriptor);
        return stdin.then(|| Interp::new(p.into(), Lang::Shell));
    }
    if p == "ssh" {
        let dest = ssh_destination(words, i)?;
        return (dest + 1 == words.len()).then(|| Interp::new("ssh".into(), Lang::Ssh));
    }
    let lang = language(p)?;
    let (code, operand) = flagged(words, i, lang);
    let stdin = code.is_empty()
        && operand.is_none_or(|j| words[j].text.as_deref() == Some("-") || reads_descriptor(&words[j]));
    stdin.then(|| Interp::new(p.into(), lang))
}

/// Whether a script operand names standard input or another descriptor (`/dev/stdin`,
/// `/dev/fd/3`): what the command reads there is its here-documents and pipes.
fn reads_descriptor(w: &Word) -> bool {
    w.text
        .as_deref()
        .is_some_and(|t| t == "/dev/stdin" || t.starts_with("/dev/fd/") || t.starts_with("/proc/self/fd/"))
}

/// The options of a program that takes code as the argument of a flag.
struct Flags {
    /// Short options whose argument is code: the rest of the word, or the next word.
    code: &'static str,
    /// Long options whose argument is code: after `=`, or the next word.
    long_code: &'static [&'static str],
    /// Short options that take an argument: the rest of the word, or the next word.
    arg: &'static str,
    long_arg: &'static [&'static str],
    /// Short options that take the rest of the word, if any, as their argument.
    rest: &'static str,
    /// Whether a short option's argument may be attached (`-cCODE`); node's may not, and its
    /// `-pe` is `-p -e`, with the code in the next word.
    attach: bool,
}

impl Flags {
    const NONE: Flags = Flags {
        code: "",
        long_code: &[],
        arg: "",
        long_arg: &[],
        rest: "",
        attach: true,
    };
}

/// What an option word is.
enum Opt {
    /// Its argument is code: the flag as written up to the code letter, and whether the code
    /// is attached (`-cCODE`, `--eval=CODE`) rather than the next word.
    Code(String, bool),
    /// An option with an argument (the letter, `-` for a long one), attached or not.
    Arg(char, bool),
    /// Options without arguments.
    Plain,
}

/// Whether `w` reads as an option: `-x...` or `--x...`, written literally at least up to the
/// first expansion.
fn is_option(w: &Word) -> bool {
    let t = w.text.as_deref().unwrap_or(&w.lead);
    t.len() > 1 && t.starts_with('-') && t != "--"
}

/// Read an option word (see [`is_option`]). A cluster of short options is read letter by
/// letter as getopt does: the first letter that takes an argument takes the rest of the word,
/// or the next word when it is last.
fn option(w: &Word, f: &Flags) -> Opt {
    let t = w.text.as_deref().unwrap_or(&w.lead);
    // An expansion after the literal lead continues the word.
    let more = |end: usize| w.text.is_none() || end < t.len();
    if t.starts_with("--") {
        let (name, eq) = match t.split_once('=') {
            Some((n, _)) => (n, true),
            None => (t, false),
        };
        if f.long_code.contains(&name) {
            return Opt::Code(name.to_string(), eq);
        }
        if f.long_arg.contains(&name) {
            return Opt::Arg('-', eq);
        }
        return Opt::Plain;
    }
    for (n, c) in t.char_indices().skip(1) {
        let end = n + c.len_utf8();
        if f.code.contains(c) {
            return Opt::Code(t[..end].to_string(), f.attach && more(end));
        }
        if f.arg.contains(c) {
            return Opt::Arg(c, more(end));
        }
        if f.rest.contains(c) {
            return Opt::Arg(c, true);
        }
    }
    Opt::Plain
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

/// The program of the `awk` at `i` (the operand, or gawk's `-e TEXT`), unless it reads its
/// program from a file. A field separator or an assignment (`-F{{v}}`, `-v x={{v}}`) is data.
fn awk_program(words: &[Word], i: usize) -> Option<usize> {
    let flags = Flags {
        code: "e",
        long_code: &["--source"],
        arg: "fEvFWil",
        long_arg: &[
            "--file",
            "--exec",
            "--assign",
            "--field-separator",
            "--include",
            "--load",
        ],
        ..Flags::NONE
    };
    let mut j = i + 1;
    while let Some(w) = words.get(j) {
        if w.text.as_deref() == Some("--") {
            j += 1;
            break;
        }
        if !is_option(w) {
            break;
        }
        let t = w.text.as_deref().unwrap_or(&w.lead);
        match option(w, &flags) {
            Opt::Code(_, attached) => {
                return Some(if attached { j } else { j + 1 }).filter(|&k| k < words.len());
            }
            Opt::Arg('f' | 'E', _) => return None,
            Opt::Arg('-', _) if t.starts_with("--file") || t.starts_with("--exec") => return None,
            Opt::Arg(_, attached) => j += if attached { 1 } else { 2 },
            Opt::Plain => j += 1,
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

/// The options of the interpreters of [`language`].
fn lang_flags(lang: Lang) -> Flags {
    match lang {
        Lang::Python => Flags {
            code: "c",
            arg: "WXm",
            ..Flags::NONE
        },
        // `-e`, `-ne`, `-lane`, `-E`, but not `-Mfeature=e` or `-pi.bak`.
        Lang::Perl => Flags {
            code: "eE",
            rest: "MmIxdDiCF",
            ..Flags::NONE
        },
        Lang::Ruby => Flags {
            code: "e",
            arg: "IrCE",
            rest: "KWTFix",
            ..Flags::NONE
        },
        Lang::Node => Flags {
            code: "ep",
            long_code: &["--eval", "--print"],
            arg: "r",
            long_arg: &["--require", "--import", "--loader"],
            rest: "",
            attach: false,
        },
        Lang::Php => Flags {
            code: "rBRE",
            arg: "cdzt",
            ..Flags::NONE
        },
        Lang::R => Flags {
            code: "e",
            ..Flags::NONE
        },
        Lang::Lua => Flags {
            code: "e",
            arg: "l",
            ..Flags::NONE
        },
        Lang::Shell | Lang::Ssh | Lang::Awk => Flags::NONE,
    }
}

/// For the interpreter at `i`: the words that are code (with the flag that makes them so), and
/// the first operand (a script file, or `-`), if any.
pub(super) fn flagged(words: &[Word], i: usize, lang: Lang) -> (Vec<(usize, String)>, Option<usize>) {
    let flags = lang_flags(lang);
    let mut code = Vec::new();
    let mut j = i + 1;
    while let Some(w) = words.get(j) {
        if w.text.as_deref() == Some("--") {
            j += 1;
            break;
        }
        if !is_option(w) {
            return (code, Some(j));
        }
        match option(w, &flags) {
            Opt::Code(flag, attached) => {
                let at = if attached { j } else { j + 1 };
                if at < words.len() {
                    code.push((at, flag));
                }
                j = at + 1;
                if lang == Lang::Python {
                    // Everything after python's -c CODE is sys.argv.
                    return (code, None);
                }
            }
            Opt::Arg('m', _) if lang == Lang::Python => return (code, Some(j)),
            Opt::Arg(_, attached) => j += if attached { 1 } else { 2 },
            Opt::Plain => j += 1,
        }
    }
    let operand = (j < words.len()).then_some(j);
    (code, operand)
}
