//! `plumb next PIPELINE [--count N] [--after TIME]`: the next fire times of a pipeline's
//! schedule, after now or after TIME, in the pipeline's zone. A fire that catches up times
//! skipped by a clock change says which.

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::exit;
use crate::project::Locator;
use crate::schedule::Fire;

pub fn run(locator: &Locator, name: &str, count: usize, after: Option<DateTime<Utc>>) -> Result<i32> {
    let (_, pipeline) = locator.load(name)?;
    let Some(schedule) = &pipeline.schedule else {
        return Err(Error::usage(format!(
            "pipeline `{}` has no `schedule`",
            pipeline.name
        )));
    };
    let after = after.unwrap_or_else(Utc::now).with_timezone(&pipeline.timezone);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for fire in schedule.fires(after).take(count) {
        writeln!(out, "{}", line(&fire)).map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(exit::SUCCESS)
}

fn write_error(e: std::io::Error) -> Error {
    Error::Io(format!("cannot write to stdout: {e}"))
}

/// `2026-03-29 03:00 +02:00 (Sun)`, or for a catch-up
/// `2026-03-29 03:00 +02:00 (Sun; catches up 02:15 and 02:45, skipped by the clock change)`.
fn line(fire: &Fire) -> String {
    let at = fire.at.format("%Y-%m-%d %H:%M %:z");
    let day = fire.at.format("%a");
    let times: Vec<String> = fire
        .skipped
        .iter()
        .map(|t| t.format("%H:%M").to_string())
        .collect();
    let listed = match &times[..] {
        [] => return format!("{at} ({day})"),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [a, b, c] => format!("{a}, {b} and {c}"),
        [a, b, c, rest @ ..] => format!("{a}, {b}, {c} and {} more", rest.len()),
    };
    format!("{at} ({day}; catches up {listed}, skipped by the clock change)")
}
