//! plumb: a workflow runner. Tasks declared in TOML form a dependency graph; plumb runs them in
//! parallel, records a durable completion marker in SQLite for each task that succeeds, halts only
//! the dependents of a task that fails, and resumes where it stopped on the next invocation.
//!
//! Data flows one way: [`spec`] (the file as written) → [`pipeline`] (validated, expanded, graph
//! built) → [`instance`] (params bound) → [`plan`] (reads [`state`]) → [`executor`] → events →
//! {[`state`], [`report`]}.

pub mod alert;
pub mod attempt;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod diag;
pub mod duration;
pub mod error;
pub mod executor;
pub mod exit;
pub mod graph;
pub mod instance;
pub mod key;
pub mod lock;
pub mod mail;
pub mod pipeline;
pub mod plan;
pub mod process;
pub mod project;
pub mod report;
pub mod schedule;
pub mod slot;
pub mod spawn;
pub mod spec;
pub mod state;
pub mod template;
pub mod timefmt;
pub mod watch;
