//! `plumb validate [PIPELINE...]`: load pipelines and report every problem.

use crate::error::{Error, Result};
use crate::exit;
use crate::pipeline::Pipeline;
use crate::project::{Locator, display_path};

pub fn run(locator: &Locator, names: &[String]) -> Result<i32> {
    let mut files = Vec::new();
    if names.is_empty() {
        let project = locator.project()?;
        let found = project.pipelines();
        if found.is_empty() {
            return Err(Error::usage(format!(
                "no pipelines to validate: {} holds no *.toml files",
                display_path(&project.root.join("pipelines")).display()
            )));
        }
        for path in found {
            files.push((path, project.config.clone()));
        }
    } else {
        for name in names {
            let (project, path) = locator.pipeline_path(name)?;
            files.push((path, project.config));
        }
    }
    let mut problems = Vec::new();
    for (path, config) in &files {
        match Pipeline::load(path, &display_path(path), config) {
            Ok(p) => {
                // Warnings go with the errors, on stderr; they do not change the exit code.
                for w in &p.warnings {
                    eprint!("{w}");
                }
                println!(
                    "ok: {} ({} task{}, {} edge{}{})",
                    display_path(path).display(),
                    p.tasks.len(),
                    if p.tasks.len() == 1 { "" } else { "s" },
                    p.graph.edge_count(),
                    if p.graph.edge_count() == 1 { "" } else { "s" },
                    match p.warnings.len() {
                        0 => String::new(),
                        1 => ", 1 warning".to_string(),
                        n => format!(", {n} warnings"),
                    }
                )
            }
            Err(d) => problems.push(*d),
        }
    }
    if problems.is_empty() {
        Ok(exit::SUCCESS)
    } else {
        Err(Error::Invalid(problems))
    }
}
