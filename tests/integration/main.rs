//! Integration tests: the real `plumb` binary on temporary projects.
//!
//! One test binary (as in `just`), one module per feature. Tasks append to files so a test can
//! see what ran and when; assertions are on what a user observes: exit codes, output, files and
//! the SQLite state.

mod smtp;
mod support;

mod alerts;
mod cache;
mod changed;
mod cli;
mod engine;
mod example;
mod hourly;
mod keys;
mod locks;
mod logs;
mod quoting;
mod scale;
mod schedule;
mod signals;
mod state;
mod times;
mod torture;
mod validate;
mod watching;
