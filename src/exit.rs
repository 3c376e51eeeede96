//! Exit codes: what a cron job or a wrapper script may rely on. One place, documented.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | every task of the instance is done |
//! | 1 | a task failed, or is blocked by one that failed |
//! | 2 | usage error or invalid pipeline (nothing ran) |
//! | 3 | the instance is locked by another runner |
//! | 4 | nothing failed, but an external input is missing |
//! | 5 | plumb could not do its own job: state unreadable, corrupt or unwritable, disk full, internal error |
//! | 130 | interrupted by SIGINT (Ctrl-C), after cleaning up |
//! | 143 | interrupted by SIGTERM, after cleaning up |

/// Every task of the instance is done.
pub const SUCCESS: i32 = 0;
/// A task failed for good, or is blocked by one that did.
pub const TASK_FAILED: i32 = 1;
/// Bad command line or invalid pipeline; nothing ran.
pub const USAGE: i32 = 2;
/// Another runner holds the instance's lock.
pub const LOCKED: i32 = 3;
/// Nothing failed, but an external input is still missing.
pub const MISSING_INPUT: i32 = 4;
/// plumb itself could not do its job (its state, its disk, its runtime); the message names what.
pub const INTERNAL: i32 = 5;
/// Stopped by SIGINT.
pub const INTERRUPTED_INT: i32 = 130;
/// Stopped by SIGTERM.
pub const INTERRUPTED_TERM: i32 = 143;
