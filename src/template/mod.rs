//! `{{placeholder}}` templates.
//!
//! A template is parsed once when the pipeline loads (so an unknown name is an error that points
//! at the file) and rendered for every attempt. Rendered as they are, values go into argv
//! elements, paths and environment values, where no shell reads them. A `/bin/sh -c` command is
//! different: there a value must never become shell source text, and [`shell`] owns that.

use std::ops::Range;

mod interp;
mod scripts;
pub mod shell;

pub use interp::{Interp, Lang};

/// The words of an array command that name files it executes (see [`scripts`]).
pub fn argv_scripts(argv: &[String]) -> Vec<String> {
    let words = scripts::argv_words(argv);
    match scripts::executed(&words) {
        scripts::Runs::Files(js) => js.into_iter().map(|j| argv[j].clone()).collect(),
        scripts::Runs::Unknown(_) => unreachable!("rendered words are literal"),
    }
}
pub use shell::{Refusal, ShellCommand, ShellTemplate, Why};

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

    /// Substitute every placeholder with `lookup(name)`, as it is. Names were checked when the
    /// pipeline loaded; one that `lookup` does not know is left as written.
    pub fn render<'v>(&self, lookup: impl Fn(&str) -> Option<&'v str>) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Var { name, .. } => match lookup(name) {
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
        assert_eq!(t.render(|_| Some("a b")), "data/a b/x.csv");
        let t = Template::parse("{{run_id}}/{{x}}").unwrap();
        assert_eq!(t.render(|n| (n == "x").then_some("1")), "{{run_id}}/1");
    }

    #[test]
    fn safe_words_stay_bare_for_readable_logs() {
        assert_eq!(quote("2026-11-20"), "2026-11-20");
        assert_eq!(quote("eu"), "eu");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
