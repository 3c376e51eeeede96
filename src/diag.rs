//! Diagnostics that point into a file the user wrote.
//!
//! Every problem found while loading a pipeline becomes a [`Diagnostic`]: a message, the byte
//! span it is about, an optional label under the caret and an optional help line. They are
//! collected (never thrown one at a time) and rendered together in the style of rustc:
//!
//! ```text
//! error: `timeout` needs a unit
//!   --> pipelines/etl.toml:12:11
//!    |
//! 12 | timeout = 7
//!    |           ^ a bare number
//!    |
//!    = help: write "7s" for seconds
//! ```
//!
//! The renderer is written here rather than taken from miette or annotate-snippets on purpose:
//! the output must stay plain ASCII (cron mails it, tests compare it verbatim) and stable across
//! crate upgrades, and the whole of it is the function below.

use std::fmt::{self, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A file's text together with the path to show for it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user should read it (relative to the working directory when possible).
    pub display: PathBuf,
    pub text: String,
    /// Byte offset where each line starts, built at the first lookup, so that placing many
    /// diagnostics costs one pass over the text rather than one per diagnostic.
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    pub fn new(display: impl Into<PathBuf>, text: String) -> Self {
        Self {
            display: display.into(),
            text,
            line_starts: std::sync::OnceLock::new(),
        }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.line_starts();
        // The last line start at or before the offset.
        let line = starts.partition_point(|&s| s <= offset);
        let col = self.text[starts[line - 1]..offset].chars().count() + 1;
        (line, col)
    }

    /// The text of the 1-based line `line`, without its newline.
    fn line_text(&self, line: usize) -> &str {
        let starts = self.line_starts();
        let Some(&start) = starts.get(line - 1) else {
            return "";
        };
        let end = starts.get(line).map_or(self.text.len(), |&next| next - 1);
        self.text[start..end].trim_end_matches('\r')
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One problem in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Option<Range<usize>>,
    pub label: Option<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            span: None,
            label: None,
            help: None,
        }
    }

    pub fn at(mut self, span: Range<usize>) -> Self {
        self.span = Some(span);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Render against the file it points into.
    pub fn render(&self, source: &SourceFile, out: &mut String) {
        self.render_as("error", source, out);
    }

    /// Render as a warning: something that loads and runs, but not as its author likely meant.
    pub fn render_warning(&self, source: &SourceFile, out: &mut String) {
        self.render_as("warning", source, out);
    }

    fn render_as(&self, kind: &str, source: &SourceFile, out: &mut String) {
        let _ = writeln!(out, "{kind}: {}", self.message);
        let Some(span) = &self.span else {
            let _ = writeln!(out, "  --> {}", source.display.display());
            if let Some(help) = &self.help {
                let _ = writeln!(out, "   = help: {help}");
            }
            return;
        };
        let (line, col) = source.line_col(span.start);
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad}--> {}:{line}:{col}", source.display.display());
        let text = source.line_text(line);
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{line} | {text}");
        // The caret covers the span, clipped to the first line it touches.
        let line_chars = text.chars().count();
        let (_, end_col) = source.line_col(span.end.max(span.start + 1));
        let same_line = source.line_col(span.end.saturating_sub(1).max(span.start)).0 == line;
        let width = if same_line && end_col > col {
            end_col - col
        } else {
            line_chars.saturating_sub(col - 1).max(1)
        };
        let carets = "^".repeat(width.max(1));
        let label = self.label.as_deref().map(|l| format!(" {l}")).unwrap_or_default();
        let _ = writeln!(out, "{pad} | {}{carets}{label}", " ".repeat(col - 1));
        if let Some(help) = &self.help {
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{pad} = help: {help}");
        }
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone)]
pub struct FileDiagnostics {
    pub source: SourceFile,
    pub items: Vec<Diagnostic>,
}

impl FileDiagnostics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            d.render(&self.source, &mut out);
        }
        out
    }

    pub fn path(&self) -> &Path {
        &self.source.display
    }
}

impl fmt::Display for FileDiagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be what was meant: a few
/// edits away (one per three letters, at least one), or a strong Jaro-Winkler match (which
/// catches a prefix typed differently, like `timout` for `timeout`).
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter_map(|c| {
            let edits = strsim::damerau_levenshtein(word, c);
            let allowed = (word.len().max(c.len()) / 3).max(1);
            let jw = strsim::jaro_winkler(word, c);
            (edits <= allowed || jw > 0.85).then_some((edits, c))
        })
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_column_and_caret() {
        let src = SourceFile::new("p.toml", "[tasks.a]\ntimeout = 7\n".to_string());
        let start = src.text.find('7').unwrap();
        let d = Diagnostic::new("`timeout` needs a unit")
            .at(start..start + 1)
            .label("a bare number")
            .help("write \"7s\" for seconds");
        let mut out = String::new();
        d.render(&src, &mut out);
        assert_eq!(
            out,
            "error: `timeout` needs a unit\n --> p.toml:2:11\n  |\n2 | timeout = 7\n  |           ^ a bare number\n  |\n  = help: write \"7s\" for seconds\n"
        );
    }

    #[test]
    fn lines_and_columns_at_every_edge() {
        let src = SourceFile::new("p.toml", "ab\r\n\né x\nlast".to_string());
        let at = |needle: &str| src.text.find(needle).unwrap();
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(at("\r")), (1, 3));
        assert_eq!(src.line_col(at("\n\n") + 1), (2, 1), "an empty line");
        assert_eq!(src.line_col(at("x")), (3, 3), "columns count characters");
        assert_eq!(src.line_col(at("x") - 1), (3, 2));
        assert_eq!(src.line_col(at("é") + 1), (3, 1), "inside a character: its start");
        assert_eq!(src.line_col(src.text.len()), (4, 5));
        assert_eq!(src.line_col(usize::MAX), (4, 5));
        assert_eq!(src.line_text(1), "ab");
        assert_eq!(src.line_text(2), "");
        assert_eq!(src.line_text(3), "é x");
        assert_eq!(src.line_text(4), "last");
        assert_eq!(src.line_text(5), "");
    }

    #[test]
    fn suggestion_only_when_close() {
        assert_eq!(did_you_mean("timout", ["timeout", "retries"]), Some("timeout"));
        assert_eq!(did_you_mean("zzz", ["timeout", "retries"]), None);
        assert_eq!(did_you_mean("dy", ["day", "region"]), Some("day"));
        assert_eq!(did_you_mean("extrct", ["extract", "load"]), Some("extract"));
    }
}
