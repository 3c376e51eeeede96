//! `plumb next PIPELINE [--count N]`: the next fire times of a pipeline's schedule.

use crate::error::{Error, Result};
use crate::exit;
use crate::project::Locator;

pub fn run(locator: &Locator, name: &str, count: usize) -> Result<i32> {
    let (_, pipeline) = locator.load(name)?;
    let Some(schedule) = &pipeline.schedule else {
        return Err(Error::usage(format!(
            "pipeline `{}` has no `schedule`",
            pipeline.name
        )));
    };
    let now = chrono::Utc::now().with_timezone(&pipeline.timezone);
    for t in schedule.fires_after(now).take(count) {
        println!("{}", t.format("%Y-%m-%d %H:%M %:z (%a)"));
    }
    Ok(exit::SUCCESS)
}
