//! Facts about processes read from /proc, and signalling process groups.
//!
//! A pid alone does not identify a process: pids are reused. A process is identified by its pid
//! together with its start time (field 22 of /proc/PID/stat, in clock ticks since boot), which is
//! what the state records for runners and for each attempt's process group leader.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The start time of process `pid` in clock ticks since boot, if it exists.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let after = &stat[stat.rfind(')')? + 2..];
    // `after` starts at field 3; the start time is field 22.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that had `pid` and started at `ticks` is still alive (and not a zombie).
pub fn same_process_alive(pid: u32, ticks: u64) -> bool {
    if start_ticks(pid) != Some(ticks) {
        return false;
    }
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    !state
        .as_deref()
        .and_then(|s| s.rfind(')').map(|i| &s[i + 2..]))
        .is_some_and(|rest| rest.starts_with('Z'))
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
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s[s.rfind(')')? + 2..].to_string();
                    let mut f = rest.split_whitespace();
                    let state = f.next()?.to_string();
                    let _ppid = f.next()?;
                    let group: u32 = f.next()?.parse().ok()?;
                    Some(group == pgid && state != "Z")
                })
                .unwrap_or(false)
        })
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
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for pid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
    {
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
        let Some((state, pgid)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = s[s.rfind(')')? + 2..].to_string();
                let mut f = rest.split_whitespace();
                let state = f.next()?.to_string();
                let _ppid = f.next()?;
                Some((state, f.next()?.parse::<u32>().ok()?))
            })
        else {
            continue;
        };
        if state != "Z" && pgid != my_group && !groups.iter().any(|(g, _)| *g == pgid) {
            groups.push((pgid, pid));
        }
    }
    groups
}
