//! `{{placeholder}}` templates, and the shell quoting that makes them safe.
//!
//! A template is parsed once when the pipeline loads (so an unknown name is an error that points
//! at the file) and rendered for every attempt. When the result is a shell command line, each
//! substituted value is quoted *for the position it lands in*: bare, inside '...' or inside
//! "...". The template's own text is scanned with a small state machine that follows sh's quoting
//! rules, so `echo "{{v}}"`, `echo '{{v}}'` and `echo {{v}}` all print the value literally,
//! whatever quotes, `$`, backticks or newlines it holds. A parameter can never inject shell code.

use std::ops::Range;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Segment {
    Text(String),
    /// A placeholder; `at` is the byte range of `{{...}}` inside the template text.
    Var {
        name: String,
        at: Range<usize>,
    },
}

/// A malformed template: where (byte range in the template text) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub at: Range<usize>,
    pub message: String,
}

/// How substituted values are written into the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// Values are inserted as they are (argv elements, paths, environment values).
    Raw,
    /// The result is a `/bin/sh -c` command line: values are quoted for where they land.
    Shell,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = 0;
        let mut literal = String::new();
        while let Some(open) = text[rest..].find("{{").map(|i| i + rest) {
            literal.push_str(&text[rest..open]);
            let Some(close) = text[open + 2..].find("}}").map(|i| i + open + 2) else {
                return Err(TemplateError {
                    at: open..text.len(),
                    message: "`{{` is never closed with `}}`".into(),
                });
            };
            let name = text[open + 2..close].trim();
            if !is_identifier(name) {
                return Err(TemplateError {
                    at: open..close + 2,
                    message: format!("`{{{{{name}}}}}` is not a placeholder name"),
                });
            }
            if !literal.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Var {
                name: name.to_string(),
                at: open..close + 2,
            });
            rest = close + 2;
        }
        literal.push_str(&text[rest..]);
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        Ok(Template { segments })
    }

    /// Each placeholder's name and its byte range in the template text.
    pub fn placeholders(&self) -> impl Iterator<Item = (&str, &Range<usize>)> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var { name, at } => Some((name.as_str(), at)),
            Segment::Text(_) => None,
        })
    }

    /// Substitute every placeholder with `lookup(name)`. Names were checked when the pipeline
    /// loaded; one that `lookup` does not know is left as written.
    pub fn render<'v>(&self, quoting: Quoting, lookup: impl Fn(&str) -> Option<&'v str>) -> String {
        let mut out = String::new();
        let mut state = ShellState::Unquoted;
        for seg in &self.segments {
            match seg {
                Segment::Text(t) => {
                    out.push_str(t);
                    if quoting == Quoting::Shell {
                        state = state.advance(t);
                    }
                }
                Segment::Var { name, .. } => match lookup(name) {
                    Some(v) if quoting == Quoting::Shell => quote_into(&mut out, v, state),
                    Some(v) => out.push_str(v),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                },
            }
        }
        out
    }
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Where the shell's lexer is at the end of some text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShellState {
    Unquoted,
    Single,
    Double,
}

impl ShellState {
    fn advance(self, text: &str) -> ShellState {
        let mut state = self;
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            state = match (state, c) {
                (ShellState::Unquoted, '\\') | (ShellState::Double, '\\') => {
                    chars.next();
                    state
                }
                (ShellState::Unquoted, '\'') => ShellState::Single,
                (ShellState::Unquoted, '"') => ShellState::Double,
                (ShellState::Single, '\'') => ShellState::Unquoted,
                (ShellState::Double, '"') => ShellState::Unquoted,
                (s, _) => s,
            };
        }
        state
    }
}

/// Write `value` so that sh reads it back literally at a position in state `state`.
fn quote_into(out: &mut String, value: &str, state: ShellState) {
    match state {
        ShellState::Unquoted => out.push_str(&quote(value)),
        // Inside '...': close, write an escaped quote, reopen.
        ShellState::Single => out.push_str(&value.replace('\'', r"'\''")),
        // Inside "...": only \ $ ` " are special.
        ShellState::Double => {
            for c in value.chars() {
                if matches!(c, '\\' | '$' | '`' | '"') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
}

/// Quote one word for sh: left bare when it is plainly safe, otherwise single-quoted.
pub fn quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if safe {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const NASTY: &[&str] = &[
        "plain",
        "two words",
        "it's",
        "say \"hi\"",
        "$(touch pwned)",
        "`touch pwned`",
        "$HOME and ${PATH}",
        "line1\nline2",
        "back\\slash",
        "semi; rm -rf /",
        "'",
        "\"",
        "",
        "a'b\"c$d`e\\f",
    ];

    fn sh(cmd: &str) -> String {
        let out = Command::new("/bin/sh").arg("-c").arg(cmd).output().unwrap();
        assert!(out.status.success(), "sh failed on {cmd:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn parses_placeholders_with_positions() {
        let t = Template::parse("run {{ date }} for {{region}}").unwrap();
        let names: Vec<_> = t
            .placeholders()
            .map(|(n, r)| (n.to_string(), r.clone()))
            .collect();
        assert_eq!(names, vec![("date".into(), 4..14), ("region".into(), 19..29)]);
    }

    #[test]
    fn rejects_unclosed_and_bad_names() {
        let e = Template::parse("echo {{date").unwrap_err();
        assert_eq!(e.at, 5..11);
        assert!(Template::parse("echo {{ no spaces }}").is_err());
        assert!(Template::parse("echo {{}}").is_err());
    }

    #[test]
    fn raw_rendering_inserts_values_verbatim() {
        let t = Template::parse("data/{{date}}/x.csv").unwrap();
        assert_eq!(t.render(Quoting::Raw, |_| Some("a b")), "data/a b/x.csv");
    }

    #[test]
    fn shell_values_reach_the_command_literally_in_every_quoting_context() {
        for value in NASTY {
            for template in [
                "printf '%s' {{v}}",
                "printf '%s' \"{{v}}\"",
                "printf '%s' '{{v}}'",
                "printf '%s' x{{v}}y",
                "printf '%s' \"pre {{v}} post\"",
                "printf '%s' 'pre {{v}} post'",
            ] {
                let t = Template::parse(template).unwrap();
                let cmd = t.render(Quoting::Shell, |_| Some(value));
                let expected = sh(&Template::parse(template)
                    .unwrap()
                    .render(Quoting::Raw, |_| Some("\u{1}")))
                .replace('\u{1}', value);
                assert_eq!(
                    sh(&cmd),
                    expected,
                    "template {template:?} value {value:?} → {cmd:?}"
                );
            }
        }
    }

    #[test]
    fn safe_words_stay_bare_for_readable_logs() {
        assert_eq!(quote("2026-11-20"), "2026-11-20");
        assert_eq!(quote("eu"), "eu");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn escaped_quotes_in_template_text_do_not_confuse_the_state() {
        // The \" does not open a double-quoted string, so the value lands unquoted.
        let t = Template::parse("printf '%s' \\\"{{v}}").unwrap();
        let cmd = t.render(Quoting::Shell, |_| Some("$(echo x)"));
        assert_eq!(sh(&cmd), "\"$(echo x)");
    }
}
