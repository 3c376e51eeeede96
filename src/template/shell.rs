//! Placeholders in a `/bin/sh -c` command: the value is handed to the shell as data.
//!
//! A value is never written into the command text. Each placeholder is replaced by a reference
//! to an environment variable (`PLUMB_VALUE_1`, ...) that the attempt's environment holds the
//! value in, and the shell *expands* that reference. Expansion results are never parsed again as
//! shell source (only eval and other interpreters would do that, see [`super::interp`]), so
//! a value cannot run anything wherever it lands, whatever it holds.
//!
//! What the reference looks like depends on where it stands, so the command text is scanned
//! with a lexer that follows sh's own rules: quotes, backslashes, `$(...)`, backticks (whose
//! body is unescaped and lexed again, as the shell does), `${...}`, `$((...))`, here-documents
//! and their delimiters, comments and `case` patterns. A bare word gets `"${PLUMB_VALUE_1}"`
//! (quoted, so no field splitting or globbing), a place already inside double quotes or an
//! unquoted here-document body gets `${PLUMB_VALUE_1}`, and inside single quotes the quote is
//! closed around `"${PLUMB_VALUE_1}"`. Each of these renderings is also harmless in the
//! neighbouring contexts: if the lexer ever misjudged a place, the value would come out wrong
//! (split, or as the literal reference text), never as code.
//!
//! Where the shell expands nothing (a quoted here-document delimiter, `$'...'`), where the
//! surrounding text would change what the reference means (right after a backslash or a `$`),
//! where the shell evaluates the text (`$((...))`) and where the text is code for another
//! interpreter, the placement is refused when the pipeline loads: a [`Refusal`] says which
//! placeholder and why.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::interp::{self, Interp};
use super::{Segment, Template, quote};

/// A template for a `/bin/sh -c` command whose every placeholder has a safe place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellTemplate {
    template: Template,
    /// Where each placeholder stands, in order of appearance.
    places: Vec<Place>,
    /// The files the command executes ([`super::scripts`]), as far as its text tells.
    scripts: Scripts,
}

/// The words of a command that name files it executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Scripts {
    /// Written literally: the same for every value (the common `tasks/x.sh {{date}}`).
    Literal(Vec<String>),
    /// A placeholder stands where the program or its script does (`tasks/{{table}}.sh`):
    /// only the command with its values written in can say.
    PerValue,
}

/// Where a placeholder stands, for the places where the shell expands a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Place {
    /// A word of its own or part of one: an argument, an assignment, a `case` word or pattern,
    /// a redirection target, the word of `${x:-...}` outside quotes.
    Word,
    /// Inside "..." (also in `${...}` within "...").
    Double,
    /// Inside '...'.
    Single,
    /// In the body of a here-document with an unquoted delimiter.
    Heredoc,
    /// In a comment, which the shell skips.
    Comment,
}

/// Why a placeholder cannot stand where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `\{{v}}`: the backslash would apply to the value's first character.
    AfterBackslash,
    /// `${{v}}`: the `$` would join with the reference.
    AfterDollar,
    /// Inside `$'...'`, where the shell expands nothing.
    DollarSingle,
    /// In the body of a here-document whose delimiter is quoted (`<<'EOF'`).
    QuotedHeredoc,
    /// Part of a here-document's delimiter.
    HeredocDelimiter,
    /// Inside `$((...))`, which the shell evaluates as an expression.
    Arithmetic,
    /// In a `${x:offset:length}` or an array subscript `${a[i]}`, which bash evaluates as an
    /// expression.
    Evaluated,
    /// Inside code handed to another interpreter.
    Code(Interp),
}

/// A placeholder that cannot stand where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub name: String,
    /// The byte range of `{{...}}` in the template text.
    pub at: Range<usize>,
    pub why: Why,
}

/// A command ready for `/bin/sh -c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// What the shell runs: the command text with references in place of the values.
    pub script: String,
    /// Variables the references name, with their values, for the shell's environment.
    pub env: Vec<(String, String)>,
    /// The command with its values written in, quoted for reading: for logs, `plan` and the
    /// fingerprint. It is never executed.
    pub display: String,
}

impl ShellTemplate {
    /// Find where every placeholder of `template` stands; refuse the ones with no safe place.
    pub fn new(template: Template) -> Result<ShellTemplate, Vec<Refusal>> {
        let toks = tokens(&template);
        let count = template.placeholders().count();
        let mut a = Analysis::new(count);
        Lexer {
            t: &toks,
            i: 0,
            a: &mut a,
        }
        .list(Closer::End);
        a.apply_interpreters();
        let scripts = a.scripts();
        let mut places = Vec::with_capacity(count);
        let mut refusals = Vec::new();
        for ((name, at), place) in template.placeholders().zip(a.place) {
            // The lexer visits every placeholder; were one missed, a quoted word is the reading
            // that is safe everywhere.
            match place.unwrap_or(Ok(Place::Word)) {
                Ok(p) => places.push(p),
                Err(why) => refusals.push(Refusal {
                    name: name.to_string(),
                    at: at.clone(),
                    why,
                }),
            }
        }
        if refusals.is_empty() {
            Ok(ShellTemplate {
                template,
                places,
                scripts,
            })
        } else {
            Err(refusals)
        }
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The words (after quote removal) that name files this command executes, for its
    /// rendering `display` ([`ShellCommand::display`]). See [`super::scripts`].
    pub fn scripts(&self, display: &str) -> Vec<String> {
        match &self.scripts {
            Scripts::Literal(words) => words.clone(),
            Scripts::PerValue => {
                // The display quotes every value for sh, so lexed again it gives the words
                // the shell will see; `{{run_id}}` left as written is literal text here.
                let toks: Vec<Tok> = display.chars().map(Tok::C).collect();
                let mut a = Analysis::new(0);
                Lexer {
                    t: &toks,
                    i: 0,
                    a: &mut a,
                }
                .list(Closer::End);
                match a.scripts() {
                    Scripts::Literal(words) => words,
                    Scripts::PerValue => unreachable!("a text without placeholders is literal"),
                }
            }
        }
    }

    /// The command for these values. Names were checked when the pipeline loaded; one that
    /// `lookup` does not know (`run_id` outside an attempt) is shown as written.
    pub fn render<'v>(&self, lookup: impl Fn(&str) -> Option<&'v str>) -> ShellCommand {
        let mut script = String::new();
        let mut display = String::new();
        let mut names: Vec<&str> = Vec::new();
        let mut k = 0;
        for seg in &self.template.segments {
            match seg {
                Segment::Text(t) => {
                    script.push_str(t);
                    display.push_str(t);
                }
                Segment::Var { name, .. } => {
                    let n = match names.iter().position(|x| x == name) {
                        Some(n) => n,
                        None => {
                            names.push(name);
                            names.len() - 1
                        }
                    };
                    let place = self.places[k];
                    k += 1;
                    reference(&mut script, place, &variable(n));
                    match lookup(name) {
                        Some(v) => shown(&mut display, place, v),
                        None => {
                            display.push_str("{{");
                            display.push_str(name);
                            display.push_str("}}");
                        }
                    }
                }
            }
        }
        let env = names
            .iter()
            .enumerate()
            .map(|(n, name)| {
                let value = lookup(name).map_or_else(|| format!("{{{{{name}}}}}"), str::to_string);
                (variable(n), value)
            })
            .collect();
        ShellCommand { script, env, display }
    }
}

/// Refusals for placeholders in an array command that hands code to another interpreter
/// (`["bash", "-c", "... {{v}}"]`): the element index and the refusal.
pub fn refuse_argv(items: &[Template]) -> Vec<(usize, Refusal)> {
    let words: Vec<interp::Word> = items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let text = (t.placeholders().count() == 0).then(|| t.render(|_| None));
            let lead = match t.segments.first() {
                Some(Segment::Text(s)) => s.clone(),
                _ => String::new(),
            };
            interp::Word {
                lead,
                text,
                phs: vec![i],
            }
        })
        .collect();
    let mut out = Vec::new();
    for (w, how) in interp::code_words(&words) {
        for (name, at) in items[w].placeholders() {
            out.push((
                w,
                Refusal {
                    name: name.to_string(),
                    at: at.clone(),
                    why: Why::Code(how.clone()),
                },
            ));
        }
    }
    out
}

/// The variable that holds the value of the `n`th distinct placeholder of a command.
fn variable(n: usize) -> String {
    format!("PLUMB_VALUE_{}", n + 1)
}

/// Write the reference to `var` for a placeholder at `place`.
fn reference(out: &mut String, place: Place, var: &str) {
    match place {
        // Quoted, so the value is one field, never split or globbed; a comment ignores it.
        Place::Word | Place::Comment => {
            out.push_str("\"${");
            out.push_str(var);
            out.push_str("}\"");
        }
        // Already quoted (a here-document body is expanded as if it were); the braces keep the
        // name from running into the text after it.
        Place::Double | Place::Heredoc => {
            out.push_str("${");
            out.push_str(var);
            out.push('}');
        }
        // Close the single quote, expand in double quotes, reopen.
        Place::Single => {
            out.push_str("'\"${");
            out.push_str(var);
            out.push_str("}\"'");
        }
    }
}

/// Write `value` for a person to read, quoted as sh would need it at `place` (for display only).
fn shown(out: &mut String, place: Place, value: &str) {
    match place {
        Place::Word | Place::Comment => out.push_str(&quote(value)),
        Place::Single => out.push_str(&value.replace('\'', r"'\''")),
        Place::Double | Place::Heredoc => {
            for c in value.chars() {
                let special = match place {
                    Place::Double => matches!(c, '\\' | '$' | '`' | '"'),
                    _ => matches!(c, '\\' | '$' | '`'),
                };
                if special {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
}

/// The template as the lexer sees it: characters, and placeholders by their index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    C(char),
    P(usize),
}

fn tokens(t: &Template) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut k = 0;
    for seg in &t.segments {
        match seg {
            Segment::Text(s) => out.extend(s.chars().map(Tok::C)),
            Segment::Var { .. } => {
                out.push(Tok::P(k));
                k += 1;
            }
        }
    }
    out
}

/// What the lexer learns: each placeholder's place, and the simple commands (for the check for
/// other interpreters).
struct Analysis {
    place: Vec<Option<Result<Place, Why>>>,
    commands: Vec<Command>,
    /// The placeholders of every word still being read, innermost last: a placeholder inside
    /// `$(...)` belongs to each word that holds the substitution.
    open: Vec<Vec<usize>>,
}

#[derive(Default)]
struct Command {
    words: Vec<interp::Word>,
    /// Placeholders in what the command reads on standard input (here-documents, `<<<`).
    stdin: Vec<usize>,
    /// Where the pipeline that feeds its standard input begins: every command from that index
    /// up to this one (groups and substitutions included) writes to that pipe.
    upstream: Option<usize>,
}

impl Analysis {
    fn new(count: usize) -> Analysis {
        Analysis {
            place: vec![None; count],
            commands: Vec::new(),
            open: Vec::new(),
        }
    }

    fn seen(&mut self, k: usize, place: Result<Place, Why>) {
        self.place[k] = Some(place);
        for w in &mut self.open {
            w.push(k);
        }
    }

    fn command(&mut self, upstream: Option<usize>) -> usize {
        self.commands.push(Command {
            upstream,
            ..Command::default()
        });
        self.commands.len() - 1
    }

    /// The words of every simple command that name files it executes. A word that holds an
    /// expansion and decides what runs makes it [`Scripts::PerValue`] when the expansion is a
    /// placeholder; a shell expansion (`$DIR/x.sh`) cannot be known, and that command counts
    /// no file.
    fn scripts(&self) -> Scripts {
        let mut out: Vec<String> = Vec::new();
        for c in &self.commands {
            match super::scripts::executed(&c.words) {
                super::scripts::Runs::Files(js) => {
                    for j in js {
                        let t = c.words[j].text.as_ref().expect("executed words are literal");
                        if !out.contains(t) {
                            out.push(t.clone());
                        }
                    }
                }
                super::scripts::Runs::Unknown(j) if !c.words[j].phs.is_empty() => return Scripts::PerValue,
                super::scripts::Runs::Unknown(_) => {}
            }
        }
        Scripts::Literal(out)
    }

    /// Refuse every placeholder that ends up in code for another interpreter: an argument it
    /// runs as code, or what it reads as code on standard input.
    fn apply_interpreters(&mut self) {
        let mut code: Vec<(usize, Interp)> = Vec::new();
        for (n, c) in self.commands.iter().enumerate() {
            for (w, how) in interp::code_words(&c.words) {
                code.extend(c.words[w].phs.iter().map(|&k| (k, how.clone())));
            }
            if let Some(how) = interp::reads_code(&c.words) {
                let how = how.from_stdin();
                code.extend(c.stdin.iter().map(|&k| (k, how.clone())));
                if let Some(p) = c.upstream {
                    let all = self.commands[p..n]
                        .iter()
                        .flat_map(|b| b.words.iter().flat_map(|w| w.phs.iter()).chain(&b.stdin));
                    code.extend(all.map(|&k| (k, how.clone())));
                }
            }
        }
        for (k, how) in code {
            // A placement refused for its own reason keeps that reason.
            if matches!(self.place[k], Some(Ok(_)) | None) {
                self.place[k] = Some(Err(Why::Code(how)));
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Closer {
    /// The whole token list.
    End,
    /// The `)` of `$(`.
    Paren,
}

/// The quoting a `$` construct stands in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Word,
    Double,
    Heredoc,
}

impl Mode {
    fn place(self) -> Place {
        match self {
            Mode::Word => Place::Word,
            Mode::Double => Place::Double,
            Mode::Heredoc => Place::Heredoc,
        }
    }
}

/// What the next word of a command is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Arg,
    /// The target of `>`, `<`, `2>&` and the like.
    Redirect,
    /// A here-document delimiter; `strip` for `<<-`.
    Delimiter {
        strip: bool,
    },
    /// The word of `<<<`, read by the command on standard input.
    HereString,
}

/// A word being read.
struct WordBuf {
    /// Its text after quote removal, while it is all literal.
    text: Option<String>,
    /// The literal text before the first expansion.
    lead: String,
    quoted: bool,
    role: Role,
}

impl WordBuf {
    fn new(role: Role) -> WordBuf {
        WordBuf {
            text: Some(String::new()),
            lead: String::new(),
            quoted: false,
            role,
        }
    }

    fn push(&mut self, c: char) {
        if let Some(t) = &mut self.text {
            t.push(c);
            self.lead.push(c);
        }
    }

    fn dynamic(&mut self) {
        self.text = None;
    }
}

struct Heredoc {
    delimiter: String,
    quoted: bool,
    strip: bool,
    command: usize,
}

/// The state of one command list (the whole text, or the inside of `$(...)`).
struct Level {
    /// `case` nesting inside each open `(`; a `)` while a `case` is open ends a pattern.
    frames: Vec<u32>,
    command: usize,
    word: Option<WordBuf>,
    role: Option<Role>,
    heredocs: Vec<Heredoc>,
    /// The first command of the pipeline being read.
    pipe_start: usize,
    /// For each open `(` or `{`, the `pipe_start` when it opened: a pipe after the group's
    /// close is fed by the whole group.
    groups: Vec<usize>,
}

struct Lexer<'t, 'a> {
    t: &'t [Tok],
    i: usize,
    a: &'a mut Analysis,
}

impl Lexer<'_, '_> {
    fn peek(&self) -> Option<Tok> {
        self.t.get(self.i).copied()
    }

    fn at(&self, n: usize) -> Option<Tok> {
        self.t.get(self.i + n).copied()
    }

    fn is(&self, n: usize, c: char) -> bool {
        self.at(n) == Some(Tok::C(c))
    }

    /// A command list, up to the end or the `)` that closes `$(`.
    fn list(&mut self, closer: Closer) {
        let command = self.a.command(None);
        let mut l = Level {
            frames: vec![0],
            command,
            word: None,
            role: None,
            heredocs: Vec::new(),
            pipe_start: command,
            groups: Vec::new(),
        };
        while let Some(t) = self.peek() {
            match t {
                Tok::C(' ' | '\t' | '\r') => {
                    self.end_word(&mut l);
                    self.i += 1;
                }
                Tok::C('\n') => {
                    self.end_word(&mut l);
                    self.end_command(&mut l, false);
                    self.i += 1;
                    self.heredoc_bodies(&mut l);
                }
                Tok::C(';' | '&') => {
                    self.end_word(&mut l);
                    self.end_command(&mut l, false);
                    self.i += 1;
                }
                Tok::C('|') => {
                    self.end_word(&mut l);
                    let piped = !self.is(1, '|');
                    self.i += if piped { 1 } else { 2 };
                    self.end_command(&mut l, piped);
                }
                Tok::C('(') => {
                    self.end_word(&mut l);
                    // `a | (sh)`: the subshell is still the pipe's reader.
                    let c = &self.a.commands[l.command];
                    let piped = c.words.is_empty() && c.upstream.is_some();
                    self.end_command(&mut l, piped);
                    l.groups.push(l.pipe_start);
                    l.frames.push(0);
                    self.i += 1;
                }
                Tok::C(')') => {
                    self.end_word(&mut l);
                    self.end_command(&mut l, false);
                    self.i += 1;
                    let cases = *l.frames.last().expect("the base frame stays");
                    if cases > 0 {
                        // The end of a `case` pattern.
                    } else if l.frames.len() > 1 {
                        l.frames.pop();
                        if let Some(g) = l.groups.pop() {
                            l.pipe_start = g;
                        }
                    } else if closer == Closer::Paren {
                        return;
                    }
                }
                Tok::C('<' | '>') => self.redirection(&mut l),
                Tok::C('#') if l.word.is_none() => self.comment(),
                _ => {
                    let mut w = match l.word.take() {
                        Some(w) => w,
                        None => {
                            self.a.open.push(Vec::new());
                            WordBuf::new(l.role.take().unwrap_or(Role::Arg))
                        }
                    };
                    self.piece(&mut w);
                    l.word = Some(w);
                }
            }
        }
        self.end_word(&mut l);
        self.end_command(&mut l, false);
    }

    fn end_word(&mut self, l: &mut Level) {
        let Some(w) = l.word.take() else {
            return;
        };
        let phs = self.a.open.pop().expect("a word was opened");
        let command = &mut self.a.commands[l.command];
        match w.role {
            Role::Arg => {
                let first = command.words.is_empty();
                let cases = l.frames.last_mut().expect("the base frame stays");
                match w.text.as_deref() {
                    Some("case") if first => *cases += 1,
                    Some("esac") if first && *cases > 0 => *cases -= 1,
                    Some("{") if first => l.groups.push(l.pipe_start),
                    Some("}") if first => {
                        if let Some(g) = l.groups.pop() {
                            l.pipe_start = g;
                        }
                    }
                    _ => {}
                }
                command.words.push(interp::Word {
                    text: w.text,
                    lead: w.lead,
                    phs,
                });
            }
            Role::Redirect => {}
            Role::HereString => command.stdin.extend(phs),
            Role::Delimiter { strip } => {
                for &k in &phs {
                    self.a.place[k] = Some(Err(Why::HeredocDelimiter));
                }
                l.heredocs.push(Heredoc {
                    delimiter: w.text.unwrap_or_default(),
                    quoted: w.quoted,
                    strip,
                    command: l.command,
                });
            }
        }
    }

    fn end_command(&mut self, l: &mut Level, piped: bool) {
        l.role = None;
        l.command = self.a.command(piped.then_some(l.pipe_start));
        if !piped {
            l.pipe_start = l.command;
        }
    }

    /// `<`, `>`, `>>`, `<&`, `>&`, `<>`, `>|`, `<<`, `<<-`, `<<<`.
    fn redirection(&mut self, l: &mut Level) {
        // An io number written right before the operator (`2>file`) is not an argument.
        if let Some(w) = &l.word
            && w.role == Role::Arg
            && !w.quoted
            && w.text
                .as_deref()
                .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        {
            l.word = None;
            self.a.open.pop();
        }
        self.end_word(l);
        if self.is(0, '<') && self.is(1, '<') {
            if self.is(2, '<') {
                self.i += 3;
                l.role = Some(Role::HereString);
            } else {
                self.i += 2;
                let strip = self.is(0, '-');
                if strip {
                    self.i += 1;
                }
                l.role = Some(Role::Delimiter { strip });
            }
            return;
        }
        let first = self.peek();
        self.i += 1;
        let more = match first {
            Some(Tok::C('>')) => ">&|",
            _ => "&>",
        };
        if let Some(Tok::C(c)) = self.peek()
            && more.contains(c)
        {
            self.i += 1;
        }
        l.role = Some(Role::Redirect);
    }

    /// A comment, to the end of the line.
    fn comment(&mut self) {
        while let Some(t) = self.peek() {
            match t {
                Tok::C('\n') => return,
                Tok::P(k) => self.a.seen(k, Ok(Place::Comment)),
                Tok::C(_) => {}
            }
            self.i += 1;
        }
    }

    /// Read the bodies of the here-documents whose operators were on the line just ended.
    fn heredoc_bodies(&mut self, l: &mut Level) {
        for h in std::mem::take(&mut l.heredocs) {
            let t = self.t;
            let start = self.i;
            let (mut end, mut after) = (t.len(), t.len());
            let mut line = start;
            while line < t.len() {
                let eol = t[line..]
                    .iter()
                    .position(|&x| x == Tok::C('\n'))
                    .map_or(t.len(), |n| line + n);
                if ends_heredoc(&t[line..eol], &h) {
                    end = line;
                    after = (eol + 1).min(t.len());
                    break;
                }
                line = eol + 1;
            }
            let body = &t[start..end];
            if h.quoted {
                for &x in body {
                    if let Tok::P(k) = x {
                        self.a.seen(k, Err(Why::QuotedHeredoc));
                    }
                }
            } else {
                Lexer {
                    t: body,
                    i: 0,
                    a: &mut *self.a,
                }
                .heredoc_text();
            }
            let inside = body.iter().filter_map(|x| match x {
                Tok::P(k) => Some(*k),
                Tok::C(_) => None,
            });
            self.a.commands[h.command].stdin.extend(inside);
            self.i = after;
        }
    }

    /// The body of a here-document with an unquoted delimiter: like "..." except that `"` is
    /// an ordinary character.
    fn heredoc_text(&mut self) {
        let mut w = WordBuf::new(Role::Arg);
        while let Some(t) = self.peek() {
            match t {
                Tok::C('\\') => self.backslash(&mut w, |_| true),
                Tok::C('$') => self.dollar(&mut w, Mode::Heredoc),
                Tok::C('`') => self.backtick(false),
                Tok::P(k) => {
                    self.a.seen(k, Ok(Place::Heredoc));
                    self.i += 1;
                }
                Tok::C(_) => self.i += 1,
            }
        }
    }

    /// One piece of an unquoted word.
    fn piece(&mut self, w: &mut WordBuf) {
        match self.peek().expect("called at a token") {
            Tok::C('\\') => {
                w.quoted = true;
                self.backslash(w, |_| true);
            }
            Tok::C('\'') => {
                w.quoted = true;
                self.i += 1;
                self.single(w);
            }
            Tok::C('"') => {
                w.quoted = true;
                self.i += 1;
                self.double(w);
            }
            Tok::C('$') => self.dollar(w, Mode::Word),
            Tok::C('`') => {
                w.dynamic();
                self.backtick(false);
            }
            Tok::P(k) => {
                w.dynamic();
                self.a.seen(k, Ok(Place::Word));
                self.i += 1;
            }
            Tok::C(c) => {
                w.push(c);
                self.i += 1;
            }
        }
    }

    /// A backslash; `escapes(c)` says whether it quotes the character after it here.
    fn backslash(&mut self, w: &mut WordBuf, escapes: impl Fn(char) -> bool) {
        match self.at(1) {
            Some(Tok::P(k)) => {
                w.dynamic();
                self.a.seen(k, Err(Why::AfterBackslash));
                self.i += 2;
            }
            Some(Tok::C('\n')) => self.i += 2,
            Some(Tok::C(c)) if escapes(c) => {
                w.push(c);
                self.i += 2;
            }
            _ => {
                w.push('\\');
                self.i += 1;
            }
        }
    }

    /// After an opening `'`.
    fn single(&mut self, w: &mut WordBuf) {
        while let Some(t) = self.peek() {
            self.i += 1;
            match t {
                Tok::C('\'') => return,
                Tok::P(k) => {
                    w.dynamic();
                    self.a.seen(k, Ok(Place::Single));
                }
                Tok::C(c) => w.push(c),
            }
        }
    }

    /// After an opening `"`.
    fn double(&mut self, w: &mut WordBuf) {
        while let Some(t) = self.peek() {
            match t {
                Tok::C('"') => {
                    self.i += 1;
                    return;
                }
                Tok::C('\\') => self.backslash(w, |c| matches!(c, '$' | '`' | '"' | '\\')),
                Tok::C('$') => self.dollar(w, Mode::Double),
                Tok::C('`') => {
                    w.dynamic();
                    self.backtick(true);
                }
                Tok::P(k) => {
                    w.dynamic();
                    self.a.seen(k, Ok(Place::Double));
                    self.i += 1;
                }
                Tok::C(c) => {
                    w.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// At a `$`.
    fn dollar(&mut self, w: &mut WordBuf, mode: Mode) {
        match self.at(1) {
            Some(Tok::P(k)) => {
                w.dynamic();
                self.a.seen(k, Err(Why::AfterDollar));
                self.i += 2;
            }
            Some(Tok::C('(')) if self.is(2, '(') => {
                w.dynamic();
                self.i += 3;
                self.arithmetic();
            }
            Some(Tok::C('(')) => {
                w.dynamic();
                self.i += 2;
                self.list(Closer::Paren);
            }
            Some(Tok::C('{')) => {
                w.dynamic();
                self.i += 2;
                self.braced(mode);
            }
            Some(Tok::C('\'')) if mode == Mode::Word => {
                w.dynamic();
                w.quoted = true;
                self.i += 2;
                self.dollar_single();
            }
            // `$"..."` (bash's translated string): the quote follows as usual.
            Some(Tok::C('"')) if mode == Mode::Word => {
                w.dynamic();
                self.i += 1;
            }
            // `$$'...'` is `$$` and a quoted string: the character is part of the expansion.
            Some(Tok::C(c)) if c.is_ascii_alphanumeric() || "_@*#?$!-".contains(c) => {
                w.dynamic();
                self.i += 2;
            }
            _ => {
                w.push('$');
                self.i += 1;
            }
        }
    }

    /// After `$((`, to the matching `))`.
    fn arithmetic(&mut self) {
        let mut depth = 0u32;
        while let Some(t) = self.peek() {
            self.i += 1;
            match t {
                Tok::C('(') => depth += 1,
                Tok::C(')') if depth == 0 => {
                    if self.is(0, ')') {
                        self.i += 1;
                    }
                    return;
                }
                Tok::C(')') => depth -= 1,
                Tok::P(k) => self.a.seen(k, Err(Why::Arithmetic)),
                Tok::C(_) => {}
            }
        }
    }

    /// After `${`, to the matching `}`.
    fn braced(&mut self, mode: Mode) {
        // The parameter: `${#x}`, `${!x}`, a name, a digit run or one special character.
        if self.is(0, '#') || self.is(0, '!') {
            self.i += 1;
        }
        let name_start = self.i;
        while let Some(Tok::C(c)) = self.peek()
            && (c.is_ascii_alphanumeric() || c == '_')
        {
            self.i += 1;
        }
        if self.i == name_start
            && let Some(Tok::C(c)) = self.peek()
            && "@*#?$!-".contains(c)
        {
            self.i += 1;
        }
        // bash evaluates an array subscript and a `${x:offset:length}` as arithmetic.
        if self.is(0, '[') {
            self.i += 1;
            self.evaluated('[', ']');
        }
        if self.is(0, ':') && !matches!(self.at(1), Some(Tok::C('-' | '=' | '?' | '+'))) {
            self.i += 1;
            self.evaluated('{', '}');
            return;
        }
        let mut w = WordBuf::new(Role::Arg);
        while let Some(t) = self.peek() {
            match t {
                Tok::C('}') => {
                    self.i += 1;
                    return;
                }
                Tok::C('\\') => self.backslash(&mut w, |_| true),
                Tok::C('\'') if mode == Mode::Word => {
                    self.i += 1;
                    self.single(&mut w);
                }
                Tok::C('"') if mode != Mode::Heredoc => {
                    self.i += 1;
                    self.double(&mut w);
                }
                Tok::C('$') => self.dollar(&mut w, mode),
                Tok::C('`') => self.backtick(mode == Mode::Double),
                Tok::P(k) => {
                    self.a.seen(k, Ok(mode.place()));
                    self.i += 1;
                }
                Tok::C(_) => self.i += 1,
            }
        }
    }

    /// Text that bash evaluates as arithmetic, to the `close` that matches: every placeholder
    /// in it is refused, inside substitutions too (their output is evaluated as well).
    fn evaluated(&mut self, open: char, close: char) {
        let mut depth = 0u32;
        while let Some(t) = self.peek() {
            self.i += 1;
            match t {
                Tok::C(c) if c == close && depth == 0 => return,
                Tok::C(c) if c == close => depth -= 1,
                Tok::C(c) if c == open => depth += 1,
                Tok::P(k) => self.a.seen(k, Err(Why::Evaluated)),
                Tok::C(_) => {}
            }
        }
    }

    /// After `$'`, to the closing `'`.
    fn dollar_single(&mut self) {
        while let Some(t) = self.peek() {
            self.i += 1;
            match t {
                Tok::C('\'') => return,
                Tok::C('\\') => {
                    if let Some(Tok::P(k)) = self.peek() {
                        self.a.seen(k, Err(Why::DollarSingle));
                    }
                    self.i += 1;
                }
                Tok::P(k) => self.a.seen(k, Err(Why::DollarSingle)),
                Tok::C(_) => {}
            }
        }
    }

    /// After an opening backtick: the body, unescaped as the shell does (`\$`, `` \` ``, `\\`,
    /// and `\"` within "..."), is lexed again as a command list.
    fn backtick(&mut self, in_double: bool) {
        self.i += 1;
        let mut body = Vec::new();
        while let Some(t) = self.peek() {
            match t {
                Tok::C('`') => {
                    self.i += 1;
                    break;
                }
                Tok::C('\\') => match self.at(1) {
                    Some(Tok::C(c)) if matches!(c, '$' | '`' | '\\') || (in_double && c == '"') => {
                        body.push(Tok::C(c));
                        self.i += 2;
                    }
                    _ => {
                        body.push(t);
                        self.i += 1;
                    }
                },
                _ => {
                    body.push(t);
                    self.i += 1;
                }
            }
        }
        Lexer {
            t: &body,
            i: 0,
            a: &mut *self.a,
        }
        .list(Closer::End);
    }
}

/// Whether `line` is the delimiter line of here-document `h`.
fn ends_heredoc(line: &[Tok], h: &Heredoc) -> bool {
    let mut line = line;
    if h.strip {
        while let [Tok::C('\t'), rest @ ..] = line {
            line = rest;
        }
    }
    let mut text = String::new();
    for t in line {
        match t {
            Tok::C(c) => text.push(*c),
            Tok::P(_) => return false,
        }
    }
    text.strip_suffix('\r').unwrap_or(&text) == h.delimiter
}

#[cfg(test)]
mod tests;
