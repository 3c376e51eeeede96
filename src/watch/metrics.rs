//! The `PLUMB_METRICS` file: what a task measured, as `NAME VALUE` lines.
//!
//! The file is the task's to write and plumb reads it as hostile data: strictly (a line that is
//! not blank, not a `#` comment and not `NAME VALUE` fails the attempt with its line number,
//! rather than a typo silently losing the value an expectation guards), and bounded (a file
//! or a name list past [`MAX_BYTES`] or [`MAX_NAMES`] fails too, so a runaway task cannot fill
//! the state database).

use std::io::Read;
use std::path::Path;

/// A file longer than this is refused: metrics are a few numbers, not a data set.
pub const MAX_BYTES: u64 = 1 << 20;
/// At most this many distinct names per attempt.
pub const MAX_NAMES: usize = 1000;
/// At most this long a name.
pub const MAX_NAME_LEN: usize = 100;

/// The name plumb records for every attempt itself; a task may not write it.
pub const DURATION: &str = "duration_s";

/// Whether `name` is a metric name: `[a-z_][a-z0-9_]*`, at most [`MAX_NAME_LEN`] bytes.
pub fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= MAX_NAME_LEN
}

/// Read the metrics a task wrote to `path`, in the order each name first appears, a repeated
/// name keeping its last value. No file means no metrics. The error says which line is wrong
/// and how, in words fit for the attempt's log and the summary.
pub fn read(path: &Path) -> Result<Vec<(String, f64)>, String> {
    // Only a plain file is read: opening a FIFO would block the runner until someone writes
    // to it, and a symlink could show another file's first line in the summary and e-mail.
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Ok(m) if !m.file_type().is_file() => {
            return Err(format!(
                "PLUMB_METRICS file {} is not a regular file; write NAME VALUE lines into it",
                path.display()
            ));
        }
        _ => {}
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(format!(
                "PLUMB_METRICS file {} cannot be read: {e}",
                path.display()
            ));
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("PLUMB_METRICS file {} cannot be read: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!(
            "PLUMB_METRICS file is larger than {} KiB; write a few NAME VALUE lines",
            MAX_BYTES >> 10
        ));
    }
    parse(&bytes)
}

/// Parse the text of a metrics file (see [`read`]).
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, f64)>, String> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(format!("PLUMB_METRICS line {n} is not UTF-8 text"));
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        let text = line.trim_matches([' ', '\t']);
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("PLUMB_METRICS line {n} \"{}\": {why}", shown(line));
        let mut fields = text.split([' ', '\t']).filter(|f| !f.is_empty());
        let (Some(name), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad("expected NAME VALUE, e.g. \"rows 10450\""));
        };
        if !is_metric_name(name) {
            return Err(bad(&format!(
                "the name must be lowercase letters, digits and _ (not starting with a digit), at most {MAX_NAME_LEN} long"
            )));
        }
        if name == DURATION {
            return Err(bad("duration_s is measured by plumb itself; use another name"));
        }
        let value = number(value).ok_or_else(|| bad("the value is not a number"))?;
        match out.iter().position(|(k, _)| k == name) {
            Some(i) => out[i].1 = value,
            None if out.len() >= MAX_NAMES => {
                return Err(bad(&format!("more than {MAX_NAMES} names")));
            }
            None => out.push((name.to_string(), value)),
        }
    }
    Ok(out)
}

/// A finite decimal number as people and programs print them: `10450`, `-3`, `5.2e9`, `0.25`.
/// Rust's own parser also takes `inf`, `nan` and `infinity`, which are not measurements.
fn number(s: &str) -> Option<f64> {
    let plain = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    let v: f64 = s.parse().ok()?;
    (plain && v.is_finite()).then_some(v)
}

/// A line as quoted in a message: escaped, and cut after 60 characters.
fn shown(line: &str) -> String {
    let mut s: String = line
        .chars()
        .take(60)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if line.chars().count() > 60 {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("m.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let link = dir.path().join("m.link");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        for p in [&fifo, &link, &dir.path().to_path_buf()] {
            let e = read(p).unwrap_err();
            assert!(
                e.ends_with("is not a regular file; write NAME VALUE lines into it"),
                "{e}"
            );
        }
        assert_eq!(read(&dir.path().join("none")).unwrap(), vec![]);
    }

    #[test]
    fn reads_names_and_numbers_ignoring_blanks_and_comments() {
        let text =
            "# written by load.py\n\nrows 10450\nbytes\t5.2e9\r\n  ratio  0.25  \nrows 10451\nneg -3\n";
        assert_eq!(
            parse(text.as_bytes()).unwrap(),
            [
                ("rows".to_string(), 10451.0),
                ("bytes".to_string(), 5.2e9),
                ("ratio".to_string(), 0.25),
                ("neg".to_string(), -3.0),
            ]
        );
        assert_eq!(parse(b"").unwrap(), []);
    }

    #[test]
    fn a_malformed_line_is_refused_with_its_number() {
        for (text, why) in [
            (
                "rows 1\nrows ten\n",
                "PLUMB_METRICS line 2 \"rows ten\": the value is not a number",
            ),
            (
                "rows\n",
                "PLUMB_METRICS line 1 \"rows\": expected NAME VALUE, e.g. \"rows 10450\"",
            ),
            (
                "rows 1 2\n",
                "PLUMB_METRICS line 1 \"rows 1 2\": expected NAME VALUE, e.g. \"rows 10450\"",
            ),
            (
                "a 1\nRows 5\n",
                "PLUMB_METRICS line 2 \"Rows 5\": the name must be lowercase letters, digits and _ (not starting with a digit), at most 100 long",
            ),
            (
                "9lives 5\n",
                "PLUMB_METRICS line 1 \"9lives 5\": the name must be lowercase letters, digits and _ (not starting with a digit), at most 100 long",
            ),
            (
                "rows inf\n",
                "PLUMB_METRICS line 1 \"rows inf\": the value is not a number",
            ),
            (
                "rows NaN\n",
                "PLUMB_METRICS line 1 \"rows NaN\": the value is not a number",
            ),
            (
                "rows 1e999\n",
                "PLUMB_METRICS line 1 \"rows 1e999\": the value is not a number",
            ),
            (
                "rows 0x10\n",
                "PLUMB_METRICS line 1 \"rows 0x10\": the value is not a number",
            ),
            (
                "rows 1,5\n",
                "PLUMB_METRICS line 1 \"rows 1,5\": the value is not a number",
            ),
            (
                "duration_s 5\n",
                "PLUMB_METRICS line 1 \"duration_s 5\": duration_s is measured by plumb itself; use another name",
            ),
            (
                "x 1\n\u{1b}[31mrows 5\n",
                "PLUMB_METRICS line 2 \"\\u{1b}[31mrows 5\": the name must be lowercase letters, digits and _ (not starting with a digit), at most 100 long",
            ),
        ] {
            assert_eq!(parse(text.as_bytes()).unwrap_err(), why, "{text:?}");
        }
        assert_eq!(
            parse(b"rows 1\n\xff 2\n").unwrap_err(),
            "PLUMB_METRICS line 2 is not UTF-8 text"
        );
    }

    #[test]
    fn a_runaway_file_is_refused() {
        let many: String = (0..=MAX_NAMES).map(|i| format!("m{i} 1\n")).collect();
        assert_eq!(
            parse(many.as_bytes()).unwrap_err(),
            "PLUMB_METRICS line 1001 \"m1000 1\": more than 1000 names"
        );
        let long = format!("{} 1\n", "a".repeat(MAX_NAME_LEN + 1));
        assert!(parse(long.as_bytes()).unwrap_err().ends_with("at most 100 long"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        std::fs::write(&path, "x 1\n".repeat(300_000)).unwrap();
        assert_eq!(
            read(&path).unwrap_err(),
            "PLUMB_METRICS file is larger than 1024 KiB; write a few NAME VALUE lines"
        );
        assert_eq!(read(&dir.path().join("absent")).unwrap(), []);
    }
}
