//! Facts about processes read from /proc, and signalling process groups.
//!
//! A pid alone does not identify a process: pids are reused. A process is identified by its pid
//! together with its start time (field 22 of /proc/PID/stat, in clock ticks since boot), which is
//! what the state records for runners and for each attempt's process group leader.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The fields of /proc/PID/stat that plumb uses.
#[derive(Debug, Clone, Copy)]
struct Stat {
    /// `Z` for a zombie.
    state: char,
    pgid: u32,
    /// Clock ticks since boot.
    start: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    // `fields[0]` is field 3 (state); the group is field 5, the start time field 22.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgid: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The start time of process `pid` in clock ticks since boot, if it exists.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.start)
}

/// Whether the process that had `pid` and started at `ticks` is still alive (and not a zombie).
pub fn same_process_alive(pid: u32, ticks: u64) -> bool {
    stat(pid).is_some_and(|s| s.start == ticks && s.state != 'Z')
}

/// Pids of every process, from /proc.
fn all_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
}

/// Send `sig` to process group `pgid`. Returns false when the group no longer exists.
pub fn signal_group(pgid: u32, sig: Signal) -> bool {
    match killpg(Pid::from_raw(pgid as i32), sig) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => true,
    }
}

/// Whether a live (non-zombie) process is still in group `pgid`. The cheap signal-0 probe
/// answers the common case (the group is gone); only when it says yes is /proc scanned, because
/// zombies awaiting their reaper also answer signal 0.
pub fn group_alive(pgid: u32) -> bool {
    if !matches!(
        killpg(Pid::from_raw(pgid as i32), None),
        Ok(()) | Err(Errno::EPERM)
    ) {
        return false;
    }
    all_pids().any(|pid| stat(pid).is_some_and(|s| s.pgid == pgid && s.state != 'Z'))
}

/// This host's name, for run records and alerts.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable_and_identifies_us() {
        let me = std::process::id();
        let t = start_ticks(me).expect("own /proc entry");
        assert!(same_process_alive(me, t));
        assert!(!same_process_alive(me, t + 1));
    }
}

/// Process groups of live processes whose environment has `var` set to one of `values`, with
/// one example pid each. Every task process inherits `PLUMB_RUN_ID`, so this finds what a dead
/// runner's attempts left behind even when the runner died between starting a task and
/// recording its process group, and even descendants that moved to groups of their own.
/// Processes of other users (unreadable environ) and zombies are skipped.
pub fn groups_with_env(var: &str, values: &std::collections::HashSet<String>) -> Vec<(u32, u32)> {
    let me = std::process::id();
    let my_group = nix::unistd::getpgrp().as_raw() as u32;
    let prefix = format!("{var}=");
    let mut groups: Vec<(u32, u32)> = Vec::new();
    for pid in all_pids() {
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let tagged = env.split(|&b| b == 0).any(|kv| {
            std::str::from_utf8(kv)
                .ok()
                .and_then(|s| s.strip_prefix(&prefix))
                .is_some_and(|v| values.contains(v))
        });
        if !tagged {
            continue;
        }
        let Some(st) = stat(pid) else { continue };
        if st.state != 'Z' && st.pgid != my_group && !groups.iter().any(|(g, _)| *g == st.pgid) {
            groups.push((st.pgid, pid));
        }
    }
    groups
}
